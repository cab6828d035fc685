"""Run every benchmark at one scale, one after the other (never two Spark jobs at once).

.venv/bin/python bench/run_all.py --scale S
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--scale", default="S")
    args = p.parse_args()
    for script in ("bench_aggregation.py", "bench_aggregation_hot.py", "bench_asof.py"):
        print(f"== {script} --scale {args.scale}", flush=True)
        subprocess.run([sys.executable, str(HERE / script), "--scale", args.scale], check=True)


if __name__ == "__main__":
    main()
