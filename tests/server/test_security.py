"""The feature server under its keys and limits, as a real process on loopback.

One project (three views, one feature set) is materialized and synced once; one
``fstore serve`` process is started for the module with API keys in its config file. The tests
send real HTTP requests and read the server's resident memory from ``/proc``.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
from conftest import free_port

from fstore_spark import DeltaSource, Entity, FeatureSet, FeatureView, Field
from fstore_spark.config import FeatureStoreConfig
from fstore_spark.errors import ConfigError
from fstore_spark.server import serve
from fstore_spark.store import FeatureStore

NOW = datetime.now(UTC).replace(microsecond=0)
KEY_A = "key-a-" + "x" * 30  # may read view 'profile'
KEY_A2 = "key-a2-" + "y" * 30  # replaces KEY_A after rotation
KEY_SET = "key-set-" + "z" * 30  # may read feature set 'fs_profile' only
KEY_ENV = "key-env-" + "w" * 30  # every view; given to the server through an env variable
WIDE = [f"f{i}" for i in range(12)]


def _sha(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _server_section(first_key: str) -> str:
    return (
        "server:\n"
        "  reload_seconds: 3600\n"  # rotation in these tests is by SIGHUP
        "  max_body_bytes: 262144\n"
        "  max_entity_rows: 500\n"
        "  api_keys:\n"
        f"    - {{name: app-a, sha256: {_sha(first_key)}, views: [profile]}}\n"
        f"    - {{name: set-only, sha256: {_sha(KEY_SET)}, feature_sets: [fs_profile]}}\n"
        "    - {name: everything, key_env: FSTORE_TEST_SERVER_KEY, views: ['*']}\n"
    )


def _definitions() -> list[Any]:
    customer = Entity(name="customer", join_keys={"customer_id": "string"})
    src = DeltaSource(
        name="profiles",
        path="raw/profiles",
        timestamp_column="event_timestamp",
        schema={"customer_id": "string", "age": "int64", "score": "float64"}
        | dict.fromkeys(WIDE, "float64"),
    )
    profile = FeatureView(
        name="profile",
        entities=[customer],
        source=src,
        features=[
            Field(name="age", dtype="int64"),
            *[Field(name=f, dtype="float64") for f in WIDE],
        ],
    )
    risk = FeatureView(
        name="risk",
        entities=[customer],
        source=src,
        features=[Field(name="score", dtype="float64")],
    )
    cold = FeatureView(
        name="cold",
        entities=[customer],
        source=src,
        online=False,
        features=[Field(name="score", dtype="float64")],
    )
    fs = FeatureSet(name="fs_profile", features=["profile:age", "profile:f0"])
    return [customer, src, profile, risk, cold, fs]


@pytest.fixture(scope="module")
def project(spark, redis_server: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    redis.Redis.from_url(redis_server).flushall()
    conf = tmp_path_factory.mktemp("secure") / "conf"
    conf.mkdir()
    cfg_file = conf / "feature_store.yaml"
    base = (
        "project: secure\n"
        "lakehouse:\n  root: ../lake\n"
        f"online_store:\n  url: {redis_server}\n"
        "spark:\n  master: local[1]\n  shuffle_partitions: 1\n  driver_memory: 512m\n"
        "  options:\n    spark.ui.showConsoleProgress: 'false'\n"
    )
    cfg_file.write_text(base + _server_section(KEY_A))
    store = FeatureStore(config=cfg_file, spark=spark)
    rows = [
        (f"c{i}", NOW - timedelta(hours=i + 1), 20 + i, i / 10, *[float(i * j) for j in range(12)])
        for i in range(50)
    ]
    cols = "customer_id string, event_timestamp timestamp, age bigint, score double, "
    cols += ", ".join(f"{f} double" for f in WIDE)
    spark.createDataFrame(rows, cols).write.format("delta").save(store.table_path("raw/profiles"))
    store.apply(_definitions())
    for view in ("profile", "risk", "cold"):
        store.materialize(view, NOW - timedelta(days=3), NOW)
    store.sync_online()
    return cfg_file


@pytest.fixture(scope="module")
def server(project: Path) -> Iterator[dict[str, Any]]:
    """``fstore serve`` on a free loopback port, with the project's keys."""
    port = free_port()
    log = project.parent / "server.log"
    env = {**os.environ, "FSTORE_TEST_SERVER_KEY": KEY_ENV}
    with log.open("w") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "fstore_spark.cli",
                "--config",
                str(project),
                "serve",
                "--port",
                str(port),
                "--refresh-seconds",
                "0",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
    deadline = time.monotonic() + 240
    while True:
        try:
            status, _ = _request(port, "GET", "/health")
            if status == 200:
                break
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"server did not start:\n{log.read_text()[-3000:]}")
        time.sleep(0.5)
    yield {"port": port, "proc": proc, "config": project, "log": log}
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()


def _request(
    port: int,
    method: str,
    path: str,
    body: Any = None,
    key: str | None = None,
    conn: http.client.HTTPConnection | None = None,
) -> tuple[int, Any]:
    own = conn is None
    conn = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Content-Type": "application/json"}
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    try:
        conn.request(method, path, body=None if body is None else json.dumps(body), headers=headers)
        resp = conn.getresponse()
        raw = resp.read()
        return resp.status, json.loads(raw) if raw else None
    finally:
        if own:
            conn.close()


def _read(port: int, features: list[str], key: str | None, n: int = 2, **kw: Any) -> Any:
    body = {"features": features, "entity_rows": [{"customer_id": f"c{i}"} for i in range(n)]}
    return _request(port, "POST", "/get-online-features", body, key, **kw)


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def test_keys_decide_who_reads_what(server: dict[str, Any]) -> None:
    port = server["port"]
    status, body = _read(port, ["profile:age"], key=None)
    assert status == 401 and body["error"] == "Unauthorized"
    assert "Authorization: Bearer" in body["detail"]
    assert _read(port, ["profile:age"], key="not-a-key")[0] == 401

    status, body = _read(port, ["profile:age"], key=KEY_A)
    assert status == 200, body
    assert body["results"][1]["values"] == [20, 21]

    status, body = _read(port, ["profile:age", "risk:score"], key=KEY_A)
    assert status == 403 and body["error"] == "Forbidden"
    assert "'risk'" in body["detail"] and "'profile'" not in body["detail"]

    set_body = {"feature_set": "fs_profile", "entity_rows": [{"customer_id": "c1"}]}
    status, body = _request(port, "POST", "/get-online-features", set_body, KEY_SET)
    assert status == 200 and body["metadata"]["feature_names"] == ["customer_id", "age", "f0"]
    assert _read(port, ["profile:age"], key=KEY_SET)[0] == 403
    # a key granted the set's only view may read the set too
    assert _request(port, "POST", "/get-online-features", set_body, KEY_A)[0] == 200

    status, body = _read(port, ["risk:score"], key=KEY_ENV)
    assert status == 200 and body["results"][1]["values"] == [0.0, 0.1]
    # X-API-Key works as well as a bearer token
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    payload = json.dumps({"features": ["risk:score"], "entity_rows": [{"customer_id": "c2"}]})
    conn.request(
        "POST",
        "/get-online-features",
        payload,
        {"X-API-Key": KEY_ENV, "Content-Type": "application/json"},
    )
    assert conn.getresponse().status == 200
    conn.close()

    assert _request(port, "GET", "/health")[0] == 200  # open without a key
    log = server["log"].read_text()
    assert "http://127.0.0.1:" in log  # the address it serves
    assert '"POST /get-online-features HTTP/1.1" 401' in log  # requests are logged
    assert KEY_A not in log and KEY_ENV not in log


def test_client_mistakes_are_4xx(server: dict[str, Any]) -> None:
    port = server["port"]
    status, body = _read(port, [], key=KEY_ENV)
    assert status == 422, body
    status, body = _read(port, ["cold:score"], key=KEY_ENV)
    assert status == 400 and body["error"] == "NotServedError", body
    assert "online=False" in body["detail"]
    status, body = _read(port, ["nope:x"], key=KEY_ENV)
    assert status == 400 and body["error"] == "NotFoundError"


def test_a_rotated_key_works_without_restart(server: dict[str, Any]) -> None:
    port, cfg = server["port"], server["config"]
    text = cfg.read_text()
    assert _read(port, ["profile:age"], key=KEY_A2)[0] == 401
    try:
        cfg.write_text(text.replace(_sha(KEY_A), _sha(KEY_A2)))
        server["proc"].send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 20
        while _read(port, ["profile:age"], key=KEY_A2)[0] != 200:
            assert time.monotonic() < deadline, "the rotated key was not picked up"
            time.sleep(0.2)
        assert _read(port, ["profile:age"], key=KEY_A)[0] == 401  # the old key is revoked
        assert _read(port, ["risk:score"], key=KEY_A2)[0] == 403  # same grant as before
        # a broken file keeps the keys in force
        cfg.write_text("project: [unterminated\n")
        server["proc"].send_signal(signal.SIGHUP)
        time.sleep(2)
        assert _read(port, ["profile:age"], key=KEY_A2)[0] == 200
    finally:
        cfg.write_text(text)
        server["proc"].send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 20
        while _read(port, ["profile:age"], key=KEY_A)[0] != 200:
            assert time.monotonic() < deadline
            time.sleep(0.2)


def test_limits_keep_memory_bounded(server: dict[str, Any]) -> None:
    port, pid = server["port"], server["proc"].pid
    rng = random.Random(7)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    seen: set[tuple[str, ...]] = set()

    def distinct_lists(n: int) -> None:
        while n:
            feats = tuple(f"profile:{f}" for f in rng.sample(WIDE, rng.randint(1, 6)))
            if feats in seen:
                continue
            seen.add(feats)
            n -= 1
            status, body = _read(port, list(feats), KEY_ENV, conn=conn)
            assert status == 200, body

    distinct_lists(400)  # more than the plan cache holds: it is full from here on
    before = _rss_mb(pid)
    distinct_lists(1600)
    after_lists = _rss_mb(pid)
    assert len(seen) == 2000

    big_rows = [{"customer_id": f"c{i % 50}", "pad": "p" * 40} for i in range(200_000)]
    for _ in range(5):  # ~10 MB each, announced by Content-Length: refused before reading
        status, body = _request(
            port,
            "POST",
            "/get-online-features",
            {"features": ["profile:age"], "entity_rows": big_rows},
            KEY_ENV,
        )
        assert status == 413 and body["error"] == "RequestTooLarge"
        assert "max_body_bytes" in body["detail"]
    for _ in range(3):  # chunked, no length: read only up to the limit
        status = _chunked(port, json.dumps({"features": ["profile:age"], "entity_rows": big_rows}))
        assert status == 413
    rows = [{"customer_id": f"c{i % 50}"} for i in range(501)]  # small body, too many rows
    status, body = _request(
        port,
        "POST",
        "/get-online-features",
        {"features": ["profile:age"], "entity_rows": rows},
        KEY_ENV,
    )
    assert status == 413 and "max_entity_rows" in body["detail"]
    assert _read(port, ["profile:age"], KEY_ENV, n=500)[0] == 200
    after = _rss_mb(pid)
    conn.close()
    print(f"server RSS: {before:.1f} MB -> {after_lists:.1f} MB (2000 lists) -> {after:.1f} MB")
    assert after_lists < before * 1.10
    assert after < before * 1.10


def _chunked(port: int, payload: str) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {KEY_ENV}"}

    def chunks() -> Iterator[bytes]:
        data = payload.encode()
        for i in range(0, len(data), 65536):
            yield data[i : i + 65536]

    try:
        conn.request(
            "POST", "/get-online-features", body=chunks(), headers=headers, encode_chunked=True
        )
        return conn.getresponse().status
    except (BrokenPipeError, ConnectionResetError):
        return 413  # the server answered and closed while we were still sending
    finally:
        conn.close()


def test_32_clients_for_60_seconds_get_no_errors(server: dict[str, Any]) -> None:
    port, pid = server["port"], server["proc"].pid
    stop = threading.Event()
    counts = {"ok": 0, "errors": 0}
    problems: list[str] = []
    lock = threading.Lock()

    def client(i: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        rng = random.Random(i)
        while not stop.is_set():
            feats = ["profile:age", "profile:f1"] if i % 2 else ["risk:score"]
            try:
                status, body = _read(port, feats, KEY_ENV, n=rng.randint(1, 20), conn=conn)
            except (OSError, http.client.HTTPException) as exc:
                status, body = 0, repr(exc)
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            with lock:
                if status == 200:
                    counts["ok"] += 1
                else:
                    counts["errors"] += 1
                    problems.append(f"{status}: {body}"[:300])
        conn.close()

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(32)]
    for t in threads:
        t.start()
    time.sleep(5)  # warm-up: pools and threads fill
    before = _rss_mb(pid)
    time.sleep(55)
    after = _rss_mb(pid)
    stop.set()
    for t in threads:
        t.join(timeout=60)
    print(f"32 clients, 60 s: {counts}, server RSS {before:.1f} -> {after:.1f} MB")
    assert counts["errors"] == 0, problems[:5]
    assert counts["ok"] > 1000
    assert after < before * 1.10


def test_serving_beyond_loopback_needs_keys(tmp_path: Path) -> None:
    store = FeatureStore(config=FeatureStoreConfig.for_local(tmp_path, project="p"))
    with pytest.raises(ConfigError, match="server.api_keys"):
        serve(store, host="0.0.0.0", port=free_port())


def test_docs_work_offline_from_the_servers_own_assets(server: dict[str, Any]) -> None:
    import re

    port = server["port"]
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", "/")
    resp = conn.getresponse()
    resp.read()
    assert resp.status in (302, 307) and resp.getheader("location") == "/docs"
    conn.request("GET", "/docs")
    html = conn.getresponse().read().decode()
    assert re.findall(r"https?://", html) == []  # no CDN
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert any(a.endswith("swagger-ui-bundle.js") for a in assets)
    assert any(a.endswith("swagger-ui.css") for a in assets)
    for asset in assets:
        conn.request("GET", asset)
        got = conn.getresponse()
        body = got.read()
        assert got.status == 200 and len(body) > 500, asset
    conn.request("GET", "/openapi.json")
    spec = json.loads(conn.getresponse().read())
    conn.close()
    example = spec["components"]["schemas"]["GetOnlineFeaturesRequest"]["properties"]
    assert example["entity_rows"]["examples"]  # request examples in the schema
