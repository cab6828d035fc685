"""Under spark-submit, the launcher's settings win: master, executors, JARs, app name.

The probe builds its session through :func:`fstore_spark.get_spark` with a config that asks for
``local[2]`` and its own app name; the launcher said otherwise, and the launcher must win. It is
submitted with Delta given only by ``--jars`` (no ``spark-defaults.conf``, an empty JAR cache),
which must be enough.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fstore_spark.session import delta_jars

ROOT = Path(__file__).resolve().parents[2]

PROBE = r"""
import json, sys
from fstore_spark.config import SparkConfig
from fstore_spark.session import get_spark
spark = get_spark(SparkConfig(master="local[2]", app_name="from_config"))
path = sys.argv[1]
spark.range(40).repartition(4).write.format("delta").save(path)
jsc = spark.sparkContext._jsc.sc()  # test probe only: the executor count needs the JVM
print("PROBE " + json.dumps({
    "master": spark.conf.get("spark.master"),
    "executors": jsc.getExecutorMemoryStatus().size() - 1,  # minus the driver
    "app_name": spark.sparkContext.appName,
    "rows": spark.read.format("delta").load(path).count(),
}))
spark.stop()
"""


@pytest.mark.slow
def test_spark_submit_on_local_cluster_keeps_the_launchers_settings(tmp_path: Path) -> None:
    script = tmp_path / "probe.py"
    script.write_text(PROBE)
    empty_cache = tmp_path / "no_jars"
    empty_cache.mkdir()
    properties = tmp_path / "spark.properties"  # replaces spark-defaults.conf (its JAR list)
    properties.write_text("spark.ui.showConsoleProgress false\n")
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "PYSPARK_PYTHON": sys.executable,
        "FSTORE_JARS_DIR": str(empty_cache),
    }
    env.pop("SPARK_REMOTE", None)
    cmd = [
        str(Path(sys.executable).parent / "spark-submit"),
        "--master",
        "local-cluster[2,1,1024]",
        "--properties-file",
        str(properties),
        "--jars",
        ",".join(delta_jars()),
        str(script),
        str(tmp_path / "t"),
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-5000:]
    line = next(ln for ln in out.stdout.splitlines() if ln.startswith("PROBE "))
    probe = json.loads(line.removeprefix("PROBE "))
    assert probe == {
        "master": "local-cluster[2,1,1024]",
        "executors": 2,
        "app_name": "probe.py",  # spark-submit names the application after the script
        "rows": 40,
    }
