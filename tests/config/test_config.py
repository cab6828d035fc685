"""Config loading: interpolation, path resolution, and one clear error per kind of mistake."""

from __future__ import annotations

from pathlib import Path

import pytest

from fstore_spark.config import FeatureStoreConfig, load_config
from fstore_spark.errors import ConfigError

GOOD = """
project: demo
lakehouse:
  root: ${LAKE_ROOT:-lake}
online_store:
  url: redis://127.0.0.1:6380/1
  timeout_ms_placeholder: 1
"""


def write(tmp_path: Path, text: str) -> Path:
    conf = tmp_path / "conf"
    conf.mkdir(exist_ok=True)
    path = conf / "feature_store.yaml"
    path.write_text(text)
    return path


def test_repo_config_file_loads() -> None:
    cfg = load_config(Path(__file__).resolve().parents[2] / "conf" / "feature_store.yaml")
    assert cfg.project == "fstore_demo"
    assert cfg.online_store.type == "redis"
    assert cfg.tracking_uri.startswith("sqlite:////")


def test_defaults_interpolation_and_relative_paths(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LAKE_ROOT", raising=False)
    path = write(tmp_path, "project: demo\nlakehouse:\n  root: ${LAKE_ROOT:-../lake}\n")
    cfg = load_config(path)
    assert cfg.lakehouse.root == str((tmp_path / "lake").resolve())
    assert cfg.registry_path == f"{cfg.lakehouse.root}/demo/_registry"
    assert cfg.online_store.url == "redis://127.0.0.1:6379/0"
    assert cfg.tracking_uri == "sqlite:///" + str((tmp_path / "conf" / "mlflow.db").resolve())
    monkeypatch.setenv("LAKE_ROOT", "s3://bucket/fs")
    assert load_config(path).lakehouse.root == "s3://bucket/fs"


def test_unknown_key_names_file_key_and_valid_keys(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD)
    with pytest.raises(ConfigError) as exc:
        load_config(path)
    msg = str(exc.value)
    assert str(path) in msg
    assert "unknown key 'online_store.timeout_ms_placeholder'" in msg
    assert "socket_timeout_ms" in msg  # lists the valid keys as the fix


def test_unknown_top_level_key(tmp_path: Path) -> None:
    path = write(tmp_path, "project: demo\nlakehouse: {root: x}\nregistery: {}\n")
    with pytest.raises(ConfigError, match=r"unknown key 'registery'.*registry"):
        load_config(path)


def test_wrong_type_names_key(tmp_path: Path) -> None:
    path = write(tmp_path, "project: demo\nlakehouse: {root: x}\nonline_store: {pool_size: many}\n")
    with pytest.raises(ConfigError) as exc:
        load_config(path)
    msg = str(exc.value)
    assert str(path) in msg and "key 'online_store.pool_size'" in msg and "'many'" in msg


def test_missing_env_var_names_key_and_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FSTORE_TEST_UNSET", raising=False)
    path = write(tmp_path, "project: demo\nlakehouse:\n  root: ${FSTORE_TEST_UNSET}\n")
    with pytest.raises(ConfigError) as exc:
        load_config(path)
    msg = str(exc.value)
    assert str(path) in msg
    assert "key 'lakehouse.root'" in msg
    assert "FSTORE_TEST_UNSET is not set" in msg


def test_missing_required_key(tmp_path: Path) -> None:
    path = write(tmp_path, "project: demo\n")
    with pytest.raises(ConfigError, match=r"key 'lakehouse' is required"):
        load_config(path)


def test_bad_redis_url_and_project_name(tmp_path: Path) -> None:
    path = write(tmp_path, "project: demo\nlakehouse: {root: x}\nonline_store: {url: 'http://x'}\n")
    with pytest.raises(ConfigError, match=r"online_store.url"):
        load_config(path)
    path = write(tmp_path, "project: 'drop table;'\nlakehouse: {root: x}\n")
    with pytest.raises(ConfigError, match=r"key 'project'"):
        load_config(path)


def test_missing_file_and_bad_yaml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")
    path = write(tmp_path, "project: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(path)


def test_password_from_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    cfg = FeatureStoreConfig.for_local(tmp_path, online_store={"password_env": "FS_PW"})
    monkeypatch.setenv("FS_PW", "s3cret")
    assert cfg.online_store.password() == "s3cret"
    monkeypatch.delenv("FS_PW")
    with pytest.raises(ConfigError, match="FS_PW"):
        cfg.online_store.password()


def test_a_feast_feature_store_yaml_loads(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "project: customer_features\nregistry: data/registry.db\nprovider: local\n"
        "online_store:\n  type: redis\n  connection_string: 'localhost:6379,db=2'\n",
    )
    cfg = load_config(path)
    assert cfg.online_store.url == "redis://localhost:6379/2"
    conf = tmp_path.resolve() / "conf"
    assert cfg.registry_path == str(conf / "data" / "registry.db")
    assert cfg.project_root == str(conf / "customer_features")
    with pytest.raises(ConfigError, match="provider 'gcp'"):
        load_config(write(tmp_path, "project: p\nprovider: gcp\n"))
    secret = "project: p\nonline_store: {connection_string: 'h:1,password=hunter2'}\n"
    with pytest.raises(ConfigError, match="password_env") as err:
        load_config(write(tmp_path, secret))
    assert "hunter2" not in str(err.value)
