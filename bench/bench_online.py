"""Benchmark: Redis sync and online reads, against a redis-server started here.

    .venv/bin/python bench/bench_online.py                      # 100k and 1M entities
    .venv/bin/python bench/bench_online.py --sizes 100000       # quicker

Prints, in one process on one machine:

* full sync seconds and rows/s for each size (4 features; the Spark job included: Delta read,
  latest-per-entity aggregation, executor-side Lua writes, pointer flip), next to raw
  pipelined redis-py writes of the same rows from one client (``HSET`` in pipelines of
  ``batch`` commands, no Delta, no Spark, no compare-and-set) into another Redis database;
* incremental sync after 1% of the entities got a newer row (a Delta append: change data feed),
  and a second full sync (new namespace, flip, unlink of the old one);
* ``get_online_features`` latency p50/p95/p99 for 1 entity x 10 features from 2 views and for
  100 entities, next to raw redis-py on the same keys in the same run (pipelined ``HGETALL``
  and pipelined ``HMGET`` of the same fields, bytes not decoded);
* HTTP ``POST /get-online-features`` p50/p99 under a bounded load (``--clients`` concurrent
  keep-alive clients in another process, for ``--http-seconds``), uvicorn in this process;
* ``redis-benchmark -q`` on the same server as the ceiling;
* peak memory: Spark JVM, this Python process, redis ``used_memory_peak``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from _common import jvm_peak_rss_mb, python_peak_rss_mb, report

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_redis(workdir: Path) -> tuple[subprocess.Popen, int]:
    import redis

    port = free_port()
    proc = subprocess.Popen(
        [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(workdir),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    client = redis.Redis(port=port)
    for _ in range(200):
        try:
            client.ping()
            return proc, port
        except redis.ConnectionError:
            time.sleep(0.05)
    raise SystemExit("redis-server did not start")


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


def lat(variants: dict, n: int, warm: int = 200) -> dict[str, dict[str, float]]:
    """Latency percentiles of each variant, the variants interleaved call by call.

    Each round times every variant once, in an order that rotates from round to round, so the
    machine's drift (other jobs, the Spark JVM's threads, CPU frequency) reaches every variant
    alike instead of whichever block of calls it happened to fall in.
    """
    fns = list(variants.items())
    for _ in range(warm):
        for _, fn in fns:
            fn()
    out: dict[str, list[float]] = {name: [] for name in variants}
    for i in range(n):
        k = i % len(fns)
        for name, fn in fns[k:] + fns[:k]:
            t0 = time.perf_counter_ns()
            fn()
            out[name].append((time.perf_counter_ns() - t0) / 1e6)
    return {
        name: {"p50_ms": pct(v, 0.5), "p95_ms": pct(v, 0.95), "p99_ms": pct(v, 0.99)}
        for name, v in out.items()
    }


def write_table(
    spark, path: str, n: int, feats: int, t0: datetime, seed: int, letter: str = "f"
) -> None:
    """A feature table as materialization writes it (Delta, change data feed on)."""
    from pyspark.sql import functions as F

    cols = []
    for i in range(feats):
        if i % 4 == 2:
            cols.append((F.rand(seed + i) * 1000).cast("long").alias(f"{letter}{i}"))
        elif i % 4 == 3:
            s = F.concat(F.lit("s"), (F.rand(seed + i) * 50).cast("int"))
            cols.append(s.alias(f"{letter}{i}"))
        else:
            cols.append(F.rand(seed + i).alias(f"{letter}{i}"))
    (
        spark.range(n, numPartitions=4)
        .select(
            F.concat(F.lit("e"), F.col("id").cast("string")).alias("entity_id"),
            F.timestamp_micros(
                F.lit(int(t0.timestamp() * 1e6)) + (F.rand(seed) * 3_600e6).cast("long")
            ).alias("feature_timestamp"),
            *cols,
        )
        .withColumn("created_timestamp", F.col("feature_timestamp"))
        .write.format("delta")
        .mode("overwrite")
        .option("delta.enableChangeDataFeed", "true")
        .save(path)
    )


def change_one_percent(spark, path: str, n: int, t1: datetime) -> int:
    """Append a newer row for 1% of the entities (a new Delta version)."""
    from pyspark.sql import functions as F

    k = n // 100
    (
        spark.range(k, numPartitions=2)
        .select(
            F.concat(F.lit("e"), (F.col("id") * 100).cast("string")).alias("entity_id"),
            F.lit(t1.replace(tzinfo=None)).cast("timestamp").alias("feature_timestamp"),
            F.lit(-1.0).alias("f0"),
            F.lit(-2.0).alias("f1"),
            F.lit(-3).cast("long").alias("f2"),
            F.lit("changed").alias("f3"),
        )
        .withColumn("created_timestamp", F.col("feature_timestamp"))
        .write.format("delta")
        .mode("append")
        .save(path)
    )
    return k


def raw_writes(spark, path: str, port: int, batch: int) -> tuple[float, int]:
    """One client, redis-py pipelines of HSET (same rows and values, db 1), no Delta/Spark."""
    import redis

    pdf = spark.read.format("delta").load(path).toPandas()  # outside the timing
    rows = list(
        zip(
            pdf.entity_id,
            (pdf.feature_timestamp.astype("int64") // 1000).tolist(),
            pdf.f0.tolist(),
            pdf.f1.tolist(),
            pdf.f2.tolist(),
            pdf.f3.tolist(),
            strict=True,
        )
    )
    r = redis.Redis(port=port, db=1)
    r.flushdb()
    t0 = time.perf_counter()
    pipe = r.pipeline(transaction=False)
    for i, (k, ts, a, b, c, d) in enumerate(rows, 1):
        pipe.hset(
            b"raw:" + k.encode(), mapping={"@ts": ts, "@v": 1, "f0": a, "f1": b, "f2": c, "f3": d}
        )
        if i % batch == 0:
            pipe.execute()
    pipe.execute()
    seconds = time.perf_counter() - t0
    r.flushdb()
    return seconds, len(rows)


def http_load(url: str, body: str, clients: int, seconds: float) -> None:
    """Run in a child process: ``clients`` threads post ``body`` until ``seconds`` elapse."""
    import httpx

    lats: list[float] = []
    errors = [0]
    lock = threading.Lock()
    stop = time.perf_counter() + seconds

    def worker() -> None:
        mine = []
        headers = {"content-type": "application/json"}
        with httpx.Client(base_url=url, timeout=10, headers=headers) as c:
            for _ in range(20):  # warm up the connection
                c.post("/get-online-features", content=body)
            while time.perf_counter() < stop:
                t0 = time.perf_counter_ns()
                resp = c.post("/get-online-features", content=body)
                mine.append((time.perf_counter_ns() - t0) / 1e6)
                if resp.status_code != 200:
                    errors[0] += 1
        with lock:
            lats.extend(mine)

    ts = [threading.Thread(target=worker) for _ in range(clients)]
    t0 = time.perf_counter()
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    wall = time.perf_counter() - t0
    print(
        json.dumps(
            {
                "requests": len(lats),
                "errors": errors[0],
                "rps": len(lats) / wall,
                "p50_ms": pct(lats, 0.5),
                "p99_ms": pct(lats, 0.99),
            }
        )
    )


def redis_benchmark(port: int) -> dict[str, float]:
    out = {}
    for label, extra in (("", []), (" -P 16", ["-P", "16"])):
        res = subprocess.run(
            ["redis-benchmark", "-p", str(port), "-q", "-n", "200000", "-t", "get,hset", *extra],
            capture_output=True,
            text=True,
            timeout=600,
        )
        for line in res.stdout.replace("\r", "\n").splitlines():
            if "requests per second" in line:
                name, rest = line.split(":", 1)
                out[name.strip() + label] = float(rest.split()[0])
    return out


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--sizes", default="100000,1000000")
    p.add_argument("--reads", type=int, default=5000, help="timed reads per read variant")
    p.add_argument("--clients", type=int, default=8)
    p.add_argument("--http-seconds", type=float, default=10.0)
    p.add_argument("--driver-memory", default="4g")
    p.add_argument("--http-load", nargs=4, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.http_load:
        url, body_file, clients, seconds = args.http_load
        http_load(url, Path(body_file).read_text(), int(clients), float(seconds))
        return

    import redis

    from fstore_spark.config import FeatureStoreConfig, SparkConfig
    from fstore_spark.core import DeltaSource, Entity, FeatureView, Field
    from fstore_spark.lakehouse.tables import feature_table_path
    from fstore_spark.ml.ab_test import ABTest
    from fstore_spark.session import get_spark
    from fstore_spark.store import FeatureStore

    spark = get_spark(
        SparkConfig(
            master="local[2]",
            app_name="bench_online",
            shuffle_partitions=8,
            driver_memory=args.driver_memory,
            options={"spark.ui.showConsoleProgress": "false"},
        )
    )
    tmp = Path(tempfile.mkdtemp(prefix="bench_online_"))
    proc, port = start_redis(tmp)
    rows_out: list[dict] = []
    try:
        url = f"redis://127.0.0.1:{port}/0"
        cfg = FeatureStoreConfig.for_local(
            tmp / "lake", project="bench", online_store={"url": url, "batch_size": 1000}
        )
        store = FeatureStore(config=cfg, spark=spark)
        ent = Entity(name="entity", join_keys=["entity_id"])

        def view(name: str, feats: int, letter: str = "f") -> FeatureView:
            types = ["float64", "float64", "int64", "string"]
            return FeatureView(
                name=name,
                entities=["entity"],
                source=DeltaSource(name=f"src_{name}", path=f"raw/{name}", timestamp_column="ts"),
                ttl="30d",
                features=[Field(name=f"{letter}{i}", dtype=types[i % 4]) for i in range(feats)],
            )

        sizes = [int(s) for s in args.sizes.split(",")]
        store.apply([ent] + [view(f"a{n}", 4) for n in sizes] + [view("b", 6, "g")])
        now = datetime.now(UTC)
        t0 = now - timedelta(days=1)
        r = redis.Redis(port=port)
        for n in sizes:
            path = feature_table_path(cfg.project_root, f"a{n}")
            write_table(spark, path, n, 4, t0, seed=n % 97)
            full = store.sync_online(f"a{n}")
            raw_s, raw_n = raw_writes(spark, path, port, 1000)
            changed = change_one_percent(spark, path, n, now - timedelta(minutes=5))
            inc = store.sync_online(f"a{n}")
            # a second round (another 1% appended a minute later): the run-to-run spread
            change_one_percent(spark, path, n, now - timedelta(minutes=4))
            inc2 = store.sync_online(f"a{n}")
            full2 = store.sync_online(f"a{n}", mode="full")
            rows_out += [
                {
                    "run": f"full sync {n:,} x 4 (Spark job, Lua CAS writes)",
                    "seconds": full.seconds,
                    "rows_per_s": n / full.seconds,
                    "keys": full.keys_written,
                    "vs_raw": full.seconds / raw_s,
                },
                {
                    "run": f"raw redis-py pipelined HSET {raw_n:,} rows, 1 client",
                    "seconds": raw_s,
                    "rows_per_s": raw_n / raw_s,
                    "keys": raw_n,
                    "vs_raw": 1.0,
                },
                {
                    "run": f"incremental sync, {changed:,} changed (1%)",
                    "seconds": inc.seconds,
                    "rows_per_s": changed / inc.seconds,
                    "keys": inc.keys_written,
                    "vs_raw": inc.seconds / full.seconds,  # here: vs the full sync
                },
                {
                    "run": f"incremental sync again, {changed:,} changed (1%)",
                    "seconds": inc2.seconds,
                    "rows_per_s": changed / inc2.seconds,
                    "keys": inc2.keys_written,
                    "vs_raw": inc2.seconds / full.seconds,  # here: vs the full sync
                },
                {
                    "run": f"full reload {n:,} (new namespace + unlink old)",
                    "seconds": full2.seconds,
                    "rows_per_s": n / full2.seconds,
                    "keys": full2.keys_written,
                    "vs_raw": full2.seconds / raw_s,
                },
            ]
            assert inc.keys_written == changed == inc2.keys_written, (inc, inc2)
            print(json.dumps(rows_out[-5:], default=str), flush=True)

        # ------------------------------------------------------------ reads
        nb = min(sizes)
        write_table(spark, feature_table_path(cfg.project_root, "b"), nb, 6, t0, seed=5, letter="g")
        store.sync_online("b")
        va = f"a{nb}"
        refs = [f"{va}:f{i}" for i in range(4)] + [f"b:g{i}" for i in range(6)]
        one = [{"entity_id": "e123"}]
        hundred = [{"entity_id": f"e{i * 7 + 1}"} for i in range(100)]
        got = store.get_online_features(refs, one).to_dict()
        assert got["f0"][0] is not None, got
        ns_a = r.get(f"fstore:bench:{va}:_ns".encode()).decode()
        ns_b = r.get(b"fstore:bench:b:_ns").decode()
        fa = ["f0", "f1", "f2", "f3", "@ts"]
        fb = ["g0", "g1", "g2", "g3", "g4", "g5", "@ts"]
        rp = redis.Redis(port=port)

        def raw_hgetall(ka, kb):
            pipe = rp.pipeline(transaction=False)
            for a, b in zip(ka, kb, strict=True):
                pipe.hgetall(a)
                pipe.hgetall(b)
            return pipe.execute()

        def raw_hmget(ka, kb):
            pipe = rp.pipeline(transaction=False)
            for a, b in zip(ka, kb, strict=True):
                pipe.hmget(a, fa)
                pipe.hmget(b, fb)
            return pipe.execute()

        # an A/B test of two feature sets with the same 10 features: variant lookup overhead
        store.create_feature_set("bench_ctrl", refs)
        store.create_feature_set("bench_treat", refs)
        store.start_ab_test(
            ABTest(
                name="bench_ab", feature_sets={"control": "bench_ctrl", "treatment": "bench_treat"}
            )
        )
        assert store.get_ab_online_features("bench_ab", one[0])["features"]["f0"] is not None

        reads = []
        shapes = (
            ("1 entity x 10 features, 2 views", one),
            ("100 entities x 10 features, 2 views", hundred),
        )
        for label, rows in shapes:
            k1a = [f"fstore:bench:{va}:{ns_a}:{row['entity_id']}".encode() for row in rows]
            k1b = [f"fstore:bench:b:{ns_b}:{row['entity_id']}".encode() for row in rows]
            variants = {
                "get_online_features": lambda rows=rows: store.get_online_features(refs, rows),
                "raw pipelined HGETALL": lambda a=k1a, b=k1b: raw_hgetall(a, b),
                "raw pipelined HMGET": lambda a=k1a, b=k1b: raw_hmget(a, b),
            }
            if rows is one:
                variants["get_ab_online_features (A/B test)"] = lambda: (
                    store.get_ab_online_features("bench_ab", one[0])
                )
            res = lat(variants, args.reads)
            for name, q in res.items():
                reads.append(
                    {
                        "read": f"{label}: {name}",
                        **q,
                        "p99_vs_raw_hmget": q["p99_ms"] / res["raw pipelined HMGET"]["p99_ms"],
                    }
                )
        print(json.dumps(reads), flush=True)

        # ------------------------------------------------------------ HTTP
        import uvicorn

        from fstore_spark.server import create_app

        hport = free_port()
        server = uvicorn.Server(
            uvicorn.Config(
                create_app(store, refresh_seconds=None),
                host="127.0.0.1",
                port=hport,
                log_level="warning",
            )
        )
        th = threading.Thread(target=server.run, daemon=True)
        th.start()
        while not server.started:
            time.sleep(0.05)
        http = []
        for label, rows in (("1 entity x 10 features", one), ("100 entities", hundred)):
            body = tmp / "body.json"
            body.write_text(json.dumps({"features": refs, "entity_rows": rows}))
            out = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--http-load",
                    f"http://127.0.0.1:{hport}",
                    str(body),
                    str(args.clients),
                    str(args.http_seconds),
                ],
                capture_output=True,
                text=True,
                timeout=600,
            )
            res = json.loads(out.stdout.strip().splitlines()[-1])
            http.append({"http": f"{label}, {args.clients} clients", **res})
        server.should_exit = True
        th.join(timeout=10)
        print(json.dumps(http), flush=True)

        ceiling = redis_benchmark(port)
        info = r.info("memory")
        mem = {
            "jvm_peak_rss_mb": jvm_peak_rss_mb(spark),
            "python_peak_rss_mb": python_peak_rss_mb(),
            "redis_used_memory_peak_mb": info["used_memory_peak"] / 2**20,
        }
        print()
        report("online_sync", rows_out)
        print()
        report("online_reads", reads)
        print()
        report("online_http", http)
        print()
        print("redis-benchmark -q (requests/s):", json.dumps(ceiling))
        print("memory:", json.dumps(mem))
        report("online_env", [{**ceiling, **mem, "at": datetime.now(UTC).isoformat()}])
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
