#!/usr/bin/env bash
# Feast's Spark offline store beside ours: its own virtualenv (.cache/feast-venv, feast[spark]
# 0.67.0), then bench_asof.py with --feast-python. Usage: bench/run_feast_asof.sh [SCALE] [VARIANTS]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.cache/feast-venv"
if [[ ! -x "$VENV/bin/python" ]]; then
  python3.11 -m venv "$VENV"
  "$VENV/bin/pip" install -q "feast[spark]==0.67.0"
fi
"$ROOT/.venv/bin/python" "$ROOT/bench/bench_asof.py" --scale "${1:-S}" --variants "${2:-uniform}" \
  --feast-python "$VENV/bin/python"
