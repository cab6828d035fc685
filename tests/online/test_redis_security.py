"""Redis security against real redis-servers: ACL users, TLS, the waiting pool, executor secrets.

The ACL lines are read from ``docs/security.md``, so the documented users are the tested ones.
Certificates are made here with ``cryptography``; every redis-server listens on a free loopback
port and is stopped by its fixture. Spark data is a handful of rows.
"""

from __future__ import annotations

import os
import pickle
import secrets
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
import redis
from conftest import free_port

from fstore_spark.config import FeatureStoreConfig, OnlineStoreConfig
from fstore_spark.core import DeltaSource, Entity, FeatureRef, FeatureView, Field
from fstore_spark.errors import OnlineStoreError
from fstore_spark.online.client import OnlineStore
from fstore_spark.online.connection import ConnectionSpec
from fstore_spark.online.layout import KeyLayout
from fstore_spark.online.writer import EXP_COL, KEY_COL, OP_COL, TS_COL, WriterSpec, write_batches
from fstore_spark.store import FeatureStore

DOCS = Path(__file__).resolve().parents[2] / "docs" / "security.md"
PROJECT = "shop"  # the project of the documented ACL lines (prefix: the default, fstore)
DAY = timedelta(days=1)
NOW = datetime.now(UTC).replace(microsecond=0)
ROWS = [(f"c{i}", NOW - (i + 1) * DAY, 30 + i, f"city{i}") for i in range(4)]
EXPECTED = {
    "customer_id": ["c0", "c3", "c9"],
    "age": [30, 33, None],
    "city": ["city0", "city3", None],
}

# Executors of the shared local Spark session inherit the environment the JVM was started with;
# this module is imported (collected) before any test starts Spark, so a variable set here
# reaches them. The sync with ship_password: false reads its password from it.
EXECUTOR_PASSWORD_ENV = "FSTORE_TEST_EXECUTOR_REDIS_PASSWORD"
EXECUTOR_PASSWORD = os.environ.setdefault(EXECUTOR_PASSWORD_ENV, secrets.token_hex(16))


# ---------------------------------------------------------------- redis-servers


def _wait_listening(port: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 10
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                pytest.fail(f"redis-server did not start on port {port}")
            time.sleep(0.05)


@contextmanager
def start_redis(workdir: Path, *args: str, port: int | None = None) -> Iterator[int]:
    """A redis-server on loopback (``args``: extra options); yields its (TLS) port."""
    exe = shutil.which("redis-server")
    if exe is None:
        pytest.fail("redis-server is not installed: run `apt-get install redis-server`")
    workdir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    base = ["--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(workdir)]
    if "--tls-port" not in args:
        base += ["--port", str(port)]
    proc = subprocess.Popen(
        [exe, *base, *args], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT
    )
    try:
        _wait_listening(port, proc)
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


# ---------------------------------------------------------------- the documented ACL users


def acl_lines() -> list[str]:
    """The ``ACL SETUSER`` lines of docs/security.md."""
    text = DOCS.read_text()
    return [line.strip() for line in text.splitlines() if line.startswith("ACL SETUSER ")]


@pytest.fixture(scope="module")
def acl_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A redis-server with the documented users; yields url and the users' passwords."""
    passwords = {"sync": secrets.token_hex(12), "read": secrets.token_hex(12)}
    with start_redis(tmp_path_factory.mktemp("redis_acl")) as port:
        admin = redis.Redis(host="127.0.0.1", port=port)
        for line in acl_lines():
            line = line.replace("<sync-password>", passwords["sync"])
            line = line.replace("<read-password>", passwords["read"])
            assert admin.execute_command(*line.split()) == b"OK", line
        yield {"url": f"redis://127.0.0.1:{port}/0", **passwords}
        admin.close()


# ---------------------------------------------------------------- certificates


def _name(cn: str) -> Any:
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _key() -> Any:
    from cryptography.hazmat.primitives.asymmetric import ec

    return ec.generate_private_key(ec.SECP256R1())


def _write_pem(path: Path, cert: Any, key: Any | None = None) -> None:
    from cryptography.hazmat.primitives import serialization

    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    if key is not None:
        path.with_suffix(".key").write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )


def make_ca(folder: Path, cn: str) -> tuple[Any, Any]:
    """A self-signed CA: ``folder/<cn>.pem``; returns (cert, key)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    key = _key()
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(_name(cn))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - DAY)
        .not_valid_after(now + DAY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    _write_pem(folder / f"{cn}.pem", cert)
    return cert, key


def make_leaf(folder: Path, cn: str, ca: tuple[Any, Any], server: bool) -> Path:
    """A certificate signed by ``ca`` (server: SAN localhost / 127.0.0.1); its PEM path."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import ExtendedKeyUsageOID

    key = _key()
    now = datetime.now(UTC)
    usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(ca[0].subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - DAY)
        .not_valid_after(now + DAY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    )
    if server:
        san = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
        builder = builder.add_extension(x509.SubjectAlternativeName(san), critical=False)
    cert = builder.sign(ca[1], hashes.SHA256())
    path = folder / f"{cn}.pem"
    _write_pem(path, cert, key)
    return path


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A CA, a server and a client certificate it signed, and an unrelated CA."""
    folder = tmp_path_factory.mktemp("certs")
    ca = make_ca(folder, "ca")
    make_ca(folder, "other-ca")
    return {
        "ca": folder / "ca.pem",
        "other_ca": folder / "other-ca.pem",
        "server": make_leaf(folder, "server", ca, server=True),
        "client": make_leaf(folder, "client", ca, server=False),
    }


def tls_server(workdir: Path, certs: dict[str, Path], auth_clients: str) -> Iterator[int]:
    port = free_port()
    with start_redis(
        workdir,
        *("--port", "0", "--tls-port", str(port)),
        *("--tls-cert-file", str(certs["server"])),
        *("--tls-key-file", str(certs["server"].with_suffix(".key"))),
        *("--tls-ca-cert-file", str(certs["ca"])),
        *("--tls-auth-clients", auth_clients),
        port=port,
    ):
        yield port


@pytest.fixture(scope="module")
def tls_port(tmp_path_factory: pytest.TempPathFactory, certs: dict[str, Path]) -> Iterator[int]:
    yield from tls_server(tmp_path_factory.mktemp("redis_tls"), certs, "no")


@pytest.fixture(scope="module")
def mtls_port(tmp_path_factory: pytest.TempPathFactory, certs: dict[str, Path]) -> Iterator[int]:
    yield from tls_server(tmp_path_factory.mktemp("redis_mtls"), certs, "yes")


@pytest.fixture(scope="module")
def password_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A redis-server whose default user needs ``EXECUTOR_PASSWORD``; yields its URL."""
    workdir = tmp_path_factory.mktemp("redis_pw")
    with start_redis(workdir, "--requirepass", EXECUTOR_PASSWORD) as port:
        yield f"redis://127.0.0.1:{port}/0"


# ---------------------------------------------------------------- a tiny synced view


@pytest.fixture(scope="module")
def lakehouse_root(spark, redis_server: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A lakehouse with a materialized 4-entity view ``profile`` of project ``shop``."""
    root = tmp_path_factory.mktemp("security_lake")
    store = open_store(spark, root, {"url": redis_server})
    customer = Entity(name="customer", join_keys=["customer_id"])
    profile = FeatureView(
        name="profile",
        entities=[customer],
        source=DeltaSource(name="profiles", path="raw/profiles", timestamp_column="ts"),
        ttl="30d",
        features=[Field(name="age", dtype="int64"), Field(name="city", dtype="string")],
    )
    store.apply([customer, profile])
    schema = "customer_id string, ts timestamp, age bigint, city string"
    df = spark.createDataFrame(ROWS, schema)
    df.write.format("delta").mode("overwrite").save(store.table_path("raw/profiles"))
    store.materialize("profile", NOW - 10 * DAY, NOW)
    return root


def open_store(spark, root: Path, online: dict[str, Any]) -> FeatureStore:
    cfg = FeatureStoreConfig.for_local(root, project=PROJECT, online_store=online)
    return FeatureStore(config=cfg, spark=spark)


def read_profile(store: FeatureStore) -> dict[str, list[Any]]:
    rows = [{"customer_id": c} for c in ("c0", "c3", "c9")]
    return store.get_online_features(["profile:age", "profile:city"], rows).to_dict()


# ---------------------------------------------------------------- ACL


def test_the_documented_acl_users_sync_read_and_nothing_else(
    spark, lakehouse_root: Path, acl_server: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sync user syncs, the read user reads; neither can do more (NOPERM), no ACL denials."""
    assert [line.split()[2] for line in acl_lines()] == ["fstore-sync", "fstore-read"]
    monkeypatch.setenv("FSTORE_TEST_SYNC_PW", acl_server["sync"])
    monkeypatch.setenv("FSTORE_TEST_READ_PW", acl_server["read"])
    url = acl_server["url"]
    sync_cfg = {"url": url, "username": "fstore-sync", "password_env": "FSTORE_TEST_SYNC_PW"}
    read_cfg = {"url": url, "username": "fstore-read", "password_env": "FSTORE_TEST_READ_PW"}
    admin = redis.Redis.from_url(url)
    admin.acl_log_reset()

    syncer = open_store(spark, lakehouse_root, sync_cfg)
    result = syncer.sync_online("profile")
    assert result.mode == "full" and result.keys_written == 4
    assert syncer.sync_online("profile").mode == "noop"  # state read back as the sync user
    reader = open_store(spark, lakehouse_root, read_cfg)
    assert read_profile(reader) == EXPECTED
    assert read_profile(reader) == EXPECTED  # cached namespaces
    assert admin.acl_log() == []  # nothing was refused

    read_client = ConnectionSpec.from_config(OnlineStoreConfig(**read_cfg)).client()
    key = f"fstore:{PROJECT}:profile:_ns".encode()
    assert read_client.get(key) is not None  # it reads the project's keys
    for write in (
        lambda: read_client.set(key, b"9"),
        lambda: read_client.hset(key + b"x", "a", 1),
        lambda: read_client.delete(key),
        lambda: read_client.eval("return 1", 0),
    ):
        with pytest.raises(redis.exceptions.NoPermissionError, match="no permissions"):
            write()
    refused = (redis.exceptions.NoPermissionError, OnlineStoreError)
    with pytest.raises(refused, match="no permissions"):  # nor sync (its lease is a SET)
        reader.sync_online("profile", mode="full")
    assert read_profile(reader) == EXPECTED

    sync_client = ConnectionSpec.from_config(OnlineStoreConfig(**sync_cfg)).client()
    for other in (b"other:shop:x", b"fstore:otherproject:x", b"x"):
        with pytest.raises(redis.exceptions.NoPermissionError, match="no permissions"):
            sync_client.set(other, b"1")
        with pytest.raises(redis.exceptions.NoPermissionError, match="no permissions"):
            sync_client.get(other)
    for admin_only in (("FLUSHALL",), ("CONFIG", "GET", "*"), ("KEYS", "*")):
        with pytest.raises(redis.exceptions.NoPermissionError):
            sync_client.execute_command(*admin_only)
    assert admin.exists(b"other:shop:x") == 0
    for c in (admin, read_client, sync_client):
        c.close()


def test_a_refused_user_is_a_typed_error_naming_it(acl_server: dict[str, str]) -> None:
    cfg = OnlineStoreConfig(url=acl_server["url"], username="fstore-read", password_env=None)
    with pytest.raises(OnlineStoreError, match="fstore-read") as err:  # no password
        OnlineStore(cfg, PROJECT).ping()
    assert "ACL" in str(err.value)


def test_a_sync_to_a_read_only_replica_is_a_typed_error_with_the_fix(
    spark, lakehouse_root: Path, tmp_path: Path
) -> None:
    # a replica of a primary that is not there: it answers reads, and refuses every write
    with start_redis(tmp_path, "--replicaof", "127.0.0.1", str(free_port())) as port:
        store = open_store(spark, lakehouse_root, {"url": f"redis://127.0.0.1:{port}/0"})
        with pytest.raises(OnlineStoreError, match="read-only replica") as err:
            store.sync_online("profile")
        assert "take the sync lease of view 'profile'" in str(err.value)
        assert "online_store.url" in str(err.value)  # the fix
        assert isinstance(err.value.__cause__, redis.exceptions.ReadOnlyError)


# ---------------------------------------------------------------- TLS


def test_tls_serves_the_same_reads_and_a_wrong_ca_is_a_typed_error(
    spark, lakehouse_root: Path, tls_port: int, certs: dict[str, Path]
) -> None:
    url = f"rediss://127.0.0.1:{tls_port}/0"
    online = {"url": url, "tls_ca_file": str(certs["ca"])}
    store = open_store(spark, lakehouse_root, online)
    assert store.sync_online("profile").keys_written == 4  # driver and executors over TLS
    assert read_profile(store) == EXPECTED
    # tls: true turns a redis:// URL into TLS; the certificate also names "localhost"
    forced = {**online, "url": f"redis://localhost:{tls_port}/0", "tls": True}
    assert read_profile(open_store(spark, lakehouse_root, forced)) == EXPECTED

    wrong = open_store(spark, lakehouse_root, {**online, "tls_ca_file": str(certs["other_ca"])})
    with pytest.raises(OnlineStoreError, match="tls_ca_file") as err:
        read_profile(wrong)
    assert "certificate verify failed" in str(err.value)
    plain = OnlineStoreConfig(url=f"redis://127.0.0.1:{tls_port}/0", socket_timeout_ms=500)
    with pytest.raises(OnlineStoreError):  # not speaking TLS to a TLS port
        OnlineStore(plain, PROJECT).ping()


def test_a_server_that_verifies_clients_takes_the_client_certificate(
    mtls_port: int, certs: dict[str, Path]
) -> None:
    url = f"rediss://127.0.0.1:{mtls_port}/0"
    without = OnlineStoreConfig(url=url, tls_ca_file=str(certs["ca"]))
    with pytest.raises(OnlineStoreError):
        OnlineStore(without, PROJECT).ping()
    with_cert = without.model_copy(
        update={
            "tls_cert_file": str(certs["client"]),
            "tls_key_file": str(certs["client"].with_suffix(".key")),
        }
    )
    online = OnlineStore(with_cert, PROJECT)
    assert online.ping() < 1
    online.client.set(b"k", b"v")
    assert online.client.get(b"k") == b"v"
    online.close()


# ---------------------------------------------------------------- the pool waits


def _written_view(url: str, n: int) -> tuple[Any, list[dict[str, str]]]:
    """Entities ``e0..`` of view ``v`` written by the real writer; (plan, entity rows)."""
    layout = KeyLayout("fstore", PROJECT)
    prefix = layout.data_prefix("v", 1)
    now_us = time.time_ns() // 1000
    batch = pa.RecordBatch.from_pydict(
        {
            KEY_COL: pa.array([prefix + f"e{i}".encode() for i in range(n)]),
            OP_COL: pa.array(["U"] * n),
            TS_COL: pa.array([now_us] * n, pa.int64()),
            EXP_COL: pa.array([0] * n, pa.int64()),
            "a": pa.array(list(range(n)), pa.int64()),
        }
    )
    spec = WriterSpec(conn=ConnectionSpec(url), version=1, features=("a",))
    assert list(write_batches(iter([batch]), spec))[0].to_pydict()["written"] == [n]
    with redis.Redis.from_url(url) as r:
        r.set(layout.pointer_key("v"), 1)
    view = FeatureView(
        name="v",
        entities=["customer"],
        source=DeltaSource(name="s", path="/x", timestamp_column="ts"),
        ttl="1h",
        features=[Field(name="a", dtype="int64")],
    )
    plan = OnlineStore(OnlineStoreConfig(url=url), PROJECT).plan(  # plans without Redis
        [FeatureRef.parse("v:a")], {"v": view}, {"v": [("customer_id", "string")]}
    )
    return plan, [{"customer_id": f"e{i}"} for i in range(n)]


def test_concurrent_reads_beyond_the_pool_wait_for_a_connection(redis_url: str) -> None:
    plan, rows = _written_view(redis_url, 50)
    online = OnlineStore(OnlineStoreConfig(url=redis_url, pool_size=2), PROJECT)
    admin = redis.Redis.from_url(redis_url)
    admin.ping()
    before = {c["id"] for c in admin.client_list()}  # the admin's and other tests' clients
    admin_lock = threading.Lock()
    errors: list[BaseException] = []
    seen_clients: list[int] = []
    start = threading.Barrier(16)

    def reader(t: int) -> None:
        start.wait()
        try:
            for i in range(20):
                got = online.read(plan, rows[t : t + 3]).to_dict()
                assert got["a"] == [t, t + 1, t + 2], got
                if i == 10:
                    with admin_lock:  # one admin connection
                        ids = {c["id"] for c in admin.client_list()} - before
                    seen_clients.append(len(ids))
        except BaseException as exc:  # noqa: BLE001 - collected and reported below
            errors.append(exc)

    threads = [threading.Thread(target=reader, args=(t,)) for t in range(16)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == []
    assert max(seen_clients) == 2  # the pool's connections, never more
    online.close()
    admin.close()


def test_a_pool_busy_beyond_pool_timeout_is_a_typed_error(redis_url: str) -> None:
    plan, rows = _written_view(redis_url, 2)
    cfg = OnlineStoreConfig(url=redis_url, pool_size=2, pool_timeout_ms=200)
    online = OnlineStore(cfg, PROJECT)
    assert online.read(plan, rows).to_dict()["a"] == [0, 1]
    pool = online.client.connection_pool
    held = [pool.get_connection(), pool.get_connection()]
    t0 = time.perf_counter()
    with pytest.raises(OnlineStoreError, match="pooled connections stayed busy") as err:
        online.read(plan, rows)
    assert 0.2 <= time.perf_counter() - t0 < 1.5
    assert "pool_size" in str(err.value) and "pool_timeout_ms" in str(err.value)
    for conn in held:
        pool.release(conn)
    assert online.read(plan, rows).to_dict()["a"] == [0, 1]
    online.close()


# ---------------------------------------------------------------- executor secrets


def _batch(prefix: bytes) -> pa.RecordBatch:
    return pa.RecordBatch.from_pydict(
        {
            KEY_COL: pa.array([prefix + b"e1"]),
            OP_COL: pa.array(["U"]),
            TS_COL: pa.array([time.time_ns() // 1000], pa.int64()),
            EXP_COL: pa.array([0], pa.int64()),
            "a": pa.array([7], pa.int64()),
        }
    )


def test_without_ship_password_executors_read_the_password_from_their_environment(
    password_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The executor side run in this process: what is pickled holds no password."""
    var = "FSTORE_TEST_EXEC_PW_DIRECT"
    monkeypatch.setenv(var, EXECUTOR_PASSWORD)
    secret = EXECUTOR_PASSWORD.encode()
    cfg = OnlineStoreConfig(
        url=password_server, username="default", password_env=var, ship_password=False
    )
    spec = ConnectionSpec.from_config(cfg)
    shipped = spec.for_executors()
    assert spec.password == EXECUTOR_PASSWORD and shipped.password is None
    task = pickle.dumps(WriterSpec(conn=shipped, version=1, features=("a",)))
    assert secret not in task and var.encode() in task
    shipping = cfg.model_copy(update={"ship_password": True})  # the default ships it
    assert secret in pickle.dumps(ConnectionSpec.from_config(shipping).for_executors())

    prefix = KeyLayout("fstore", PROJECT).data_prefix("direct", 1)
    executor = pickle.loads(task)
    out = list(write_batches(iter([_batch(prefix)]), executor))[0].to_pydict()
    assert out["written"] == [1]
    admin = redis.Redis.from_url(password_server, password=EXECUTOR_PASSWORD)
    assert admin.hget(prefix + b"e1", "a") == b"7"

    monkeypatch.delenv(var)  # an executor without the variable: a clear, typed error
    with pytest.raises(OnlineStoreError) as err:
        list(write_batches(iter([_batch(prefix)]), executor))
    msg = str(err.value)
    assert f"spark.executorEnv.{var}" in msg and repr(var) in msg
    for text in (msg, repr(spec), repr(shipped), spec.scrub(f"auth {EXECUTOR_PASSWORD}")):
        assert EXECUTOR_PASSWORD not in text
    admin.close()


def test_a_password_in_the_url_is_never_shipped_without_ship_password(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url = "redis://fstore-sync:s3cr3t@127.0.0.1:1/0?password=s3cr3t"
    cfg = OnlineStoreConfig(url=url, ship_password=False)
    spec = ConnectionSpec.from_config(cfg)
    with pytest.raises(OnlineStoreError, match="password_env") as err:
        spec.for_executors()
    assert "s3cr3t" not in str(err.value)
    monkeypatch.setenv("FSTORE_TEST_URL_PW", "s3cr3t")
    with_env = cfg.model_copy(update={"password_env": "FSTORE_TEST_URL_PW"})
    shipped = ConnectionSpec.from_config(with_env).for_executors()
    assert shipped.url == "redis://fstore-sync@127.0.0.1:1/0"
    assert b"s3cr3t" not in pickle.dumps(shipped)


def test_a_sync_without_ship_password_works_and_its_tasks_hold_no_password(
    spark, lakehouse_root: Path, password_server: str
) -> None:
    """Local executors read the variable set before the Spark JVM started (module import)."""
    from fstore_spark.online.sync_job import SyncJob

    online = {
        "url": password_server,
        "password_env": EXECUTOR_PASSWORD_ENV,
        "ship_password": False,
    }
    store = open_store(spark, lakehouse_root, online)
    cat = store._serving_catalog()
    job = SyncJob(
        spark,
        store.config.project_root,
        cat.view("profile"),
        cat.join_keys["profile"],
        store.online_store,
        None,
        1,
    )
    task = pickle.dumps(job.spec(1))
    assert EXECUTOR_PASSWORD.encode() not in task and EXECUTOR_PASSWORD_ENV.encode() in task
    assert store.sync_online("profile").keys_written == 4
    assert read_profile(store) == EXPECTED
