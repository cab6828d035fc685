#!/usr/bin/env bash
# End-to-end demo: ensures a Redis answers at the configured URL (starting a throwaway
# redis-server on a free loopback port if none does), then runs the five notebooks in
# notebooks/ in order, as plain Python. Outputs go under data/ (Delta tables, MLflow SQLite
# store and artifacts).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${1:-$ROOT/.venv/bin/python}"
cd "$ROOT"
export FSTORE_CONFIG="${FSTORE_CONFIG:-$ROOT/conf/feature_store.yaml}"
URL="${FSTORE_REDIS_URL:-redis://127.0.0.1:6379/0}"

redis_up() { "$PY" -c 'import redis,sys; redis.Redis.from_url(sys.argv[1], socket_connect_timeout=1).ping()' "$1" 2>/dev/null; }
REDIS_PID=""
cleanup() { if [[ -n "$REDIS_PID" ]]; then kill "$REDIS_PID" 2>/dev/null || true; fi; }
trap cleanup EXIT
if redis_up "$URL"; then
  echo "demo: using the Redis that answers at $URL"
else
  command -v redis-server >/dev/null || { echo "demo: no Redis at $URL and redis-server is not installed (apt-get install redis-server)" >&2; exit 1; }
  PORT="$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
  redis-server --port "$PORT" --bind 127.0.0.1 --save "" --appendonly no >/dev/null &
  REDIS_PID=$!
  URL="redis://127.0.0.1:$PORT/0"
  for _ in $(seq 50); do redis_up "$URL" && break; sleep 0.1; done
  redis_up "$URL" || { echo "demo: throwaway redis-server did not start" >&2; exit 1; }
  echo "demo: started a throwaway redis-server at $URL (stopped when the demo ends)"
fi
export FSTORE_REDIS_URL="$URL"
# one Python process (one Spark session) runs them one after the other, each in a fresh
# namespace, as tasks of a Databricks job share a cluster
"$PY" - notebooks/01_quickstart.py notebooks/02_training_with_mlflow.py \
  notebooks/03_online_serving.py notebooks/04_quality_and_monitoring.py notebooks/05_ab_test.py <<'EOF_PY'
import runpy
import sys

for path in sys.argv[1:]:
    print(f"demo: {path}", flush=True)
    runpy.run_path(path, run_name="__main__")
EOF_PY
