#!/usr/bin/env bash
# Install fstore_spark into an environment that already has other supported versions of
# pyspark's companions (delta-spark, mlflow), as a Databricks runtime or a team's environment
# does, and check that the install keeps them: the package's ranges must not force an upgrade.
#
#   scripts/check_install.sh [python]     (default .venv/bin/python, which must have uv)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PY=${1:-.venv/bin/python}
UV="$(dirname "$PY")/uv"
ENV=build/install-check
PYSPARK=4.2.0 DELTA=4.4.1 MLFLOW=3.10.1  # supported, and not the versions constraints.txt pins

rm -rf "$ENV"
"$UV" venv -q --python "$PY" "$ENV"
"$UV" pip install -q --python "$ENV/bin/python" \
  "pyspark==$PYSPARK" "delta-spark==$DELTA" "mlflow==$MLFLOW"
"$UV" pip install -q --python "$ENV/bin/python" .
"$ENV/bin/python" - "$PYSPARK" "$DELTA" "$MLFLOW" <<'EOF'
import sys
from importlib.metadata import version

import fstore_spark

wanted = dict(zip(("pyspark", "delta-spark", "mlflow"), sys.argv[1:]))
got = {name: version(name) for name in wanted}
if got != wanted:
    sys.exit(f"check_install: installing fstore_spark changed {wanted} to {got}")
print(f"check_install: fstore_spark {fstore_spark.__version__} installed next to {got}")
EOF
rm -rf "$ENV"
