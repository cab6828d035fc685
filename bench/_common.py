"""Shared helpers for benchmarks: timing, peak memory, result printing."""

from __future__ import annotations

import json
import resource
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def jvm_peak_rss_mb(spark: Any) -> float:
    """Peak resident memory (VmHWM) of the Spark driver JVM, in MiB."""
    pid = spark.sparkContext._jvm.java.lang.ProcessHandle.current().pid()
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def python_peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@contextmanager
def timed() -> Iterator[dict[str, float]]:
    out: dict[str, float] = {}
    t0 = time.perf_counter()
    try:
        yield out
    finally:
        out["seconds"] = time.perf_counter() - t0


def report(name: str, rows: list[dict[str, Any]]) -> None:
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.jsonl"
    with path.open("a") as f:
        for r in rows:
            f.write(json.dumps(r, default=str) + "\n")
    keys = list(rows[0])
    print(" | ".join(keys))
    for r in rows:
        print(" | ".join(f"{r[k]:.2f}" if isinstance(r[k], float) else str(r[k]) for k in keys))


def reset_jvm_peak_rss(spark: Any) -> bool:
    """Reset the driver JVM's peak RSS to its current RSS (Linux ``clear_refs``).

    Called before a run, :func:`jvm_peak_rss_mb` afterwards gives that run's peak instead of
    the process's. Returns False where the kernel does not allow it (the peak then stays the
    process's).
    """
    pid = spark.sparkContext._jvm.java.lang.ProcessHandle.current().pid()
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def last_stage_id(spark: Any) -> int:
    """The id of the newest stage the Spark UI knows (-1 before any); needs the UI enabled."""
    stages = _ui_get(spark, "stages")
    return max((s["stageId"] for s in stages), default=-1)


def task_skew(spark: Any, after: int) -> dict[str, float]:
    """How evenly the stages after stage ``after`` spread their work over their tasks.

    From the Spark UI's REST API, for the stage with the longest task: that task's seconds, the
    stage's number of tasks and its median task's seconds. A key that holds much of the data
    and lands in one task shows as a longest task far above its stage's median.
    """
    worst = {"longest_task_s": 0.0, "its_stage_tasks": 0, "its_stage_median_s": 0.0}
    for s in _ui_get(spark, "stages?status=complete"):
        if s["stageId"] <= after:
            continue
        q = _ui_get(spark, f"stages/{s['stageId']}/{s['attemptId']}/taskSummary?quantiles=0.5,1.0")
        median, top = (v / 1000 for v in q["executorRunTime"])
        if top > worst["longest_task_s"]:
            worst = {
                "longest_task_s": top,
                "its_stage_tasks": s["numTasks"],
                "its_stage_median_s": median,
            }
    return worst


def _ui_get(spark: Any, path: str) -> Any:
    import urllib.request

    sc = spark.sparkContext
    url = f"{sc.uiWebUrl}/api/v1/applications/{sc.applicationId}/{path}"
    with urllib.request.urlopen(url, timeout=30) as r:
        return json.loads(r.read())


def bench_spark(driver_memory: str, ui: bool = False) -> Any:
    """The benchmarks' session: ``local[2]``, 8 shuffle partitions, no console progress bar.

    ``ui``: start the Spark UI on a free port (:func:`task_skew` reads its REST API).
    """
    from fstore_spark.config import SparkConfig
    from fstore_spark.session import get_spark

    options = {"spark.ui.showConsoleProgress": "false"}
    if ui:
        options["spark.ui.port"] = "0"
    return get_spark(
        SparkConfig(
            master="local[2]",
            shuffle_partitions=8,
            driver_memory=driver_memory,
            ui_enabled=ui,
            options=options,
        )
    )
