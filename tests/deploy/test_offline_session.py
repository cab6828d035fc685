"""After set-up, a Delta session starts with no network at all.

The child process runs in a fresh network namespace (``unshare --net``) that has only a
loopback interface, so any attempt to reach Maven Central (``spark.jars.packages``) or any other
host fails. It builds the session through :func:`fstore_spark.get_spark` (JARs from the local
cache via ``spark.jars``), writes a Delta table, time-travels it, and prints a marker.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

CHILD = r"""
import socket, sys
from fstore_spark.config import SparkConfig
from fstore_spark.session import get_spark
# prove the sandbox really has no network: DNS resolution of a public host must fail
try:
    socket.getaddrinfo("repo.maven.apache.org", 443)
    print("NETWORK-AVAILABLE"); sys.exit(3)
except OSError:
    pass
spark = get_spark(SparkConfig(master="local[1]", shuffle_partitions=1,
                              options={"spark.ui.showConsoleProgress": "false"}))
assert spark.conf.get("spark.jars.packages", None) in (None, ""), "must not resolve packages"
assert "delta-spark" in spark.conf.get("spark.jars")
path = sys.argv[1]
spark.range(3).write.format("delta").save(path)
spark.range(5).write.format("delta").mode("overwrite").save(path)
n0 = spark.read.format("delta").option("versionAsOf", 0).load(path).count()
print("OFFLINE-DELTA-OK", n0)
spark.stop()
"""


@pytest.mark.slow
def test_delta_session_starts_without_network(tmp_path: Path) -> None:
    unshare = shutil.which("unshare")
    ip = shutil.which("ip")
    if unshare is None or ip is None:
        pytest.skip("unshare/ip not available to create a network namespace")
    probe = subprocess.run([unshare, "--net", "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip(f"cannot create a network namespace here: {probe.stderr.decode().strip()}")
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    env.pop("SPARK_REMOTE", None)
    cmd = [
        unshare,
        "--net",
        "sh",
        "-c",
        f'{ip} link set lo up && exec "$0" "$@"',
        sys.executable,
        str(script),
        str(tmp_path / "t"),
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-4000:]
    assert "OFFLINE-DELTA-OK 3" in out.stdout
