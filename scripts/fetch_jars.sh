#!/usr/bin/env bash
# Fetch the Delta Lake JVM artifacts (and their runtime dependencies) once into .cache/jars/.
#
# delta-spark's pip package ships no JARs. This resolves the exact artifact pinned in
# jars/pom.xml from Maven Central with `mvn dependency:copy-dependencies`, then drops every JAR
# whose artifact pyspark already ships (Spark's own Hadoop, Jackson, Parquet, Scala... win on the
# classpath anyway, and a second copy of them only invites conflicts). After this, a Spark
# session with Delta starts with no network: fstore_spark.session adds the JARs with spark.jars.
#
# Usage: scripts/fetch_jars.sh [PYTHON]   (PYTHON defaults to .venv/bin/python)
# Env:   FSTORE_JARS_DIR (default .cache/jars), FSTORE_M2_REPO (default .cache/m2)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${1:-$ROOT/.venv/bin/python}"
JARS_DIR="${FSTORE_JARS_DIR:-$ROOT/.cache/jars}"
M2_REPO="${FSTORE_M2_REPO:-$ROOT/.cache/m2}"
POM="$ROOT/jars/pom.xml"
DELTA_ARTIFACT="$(sed -n 's:.*<delta.artifact>\(.*\)</delta.artifact>.*:\1:p' "$POM")"
DELTA_VERSION="$(sed -n 's:.*<delta.version>\(.*\)</delta.version>.*:\1:p' "$POM")"
STAMP="$JARS_DIR/MANIFEST"

# spark-submit (and pyspark started from plain Python) read $SPARK_HOME/conf/spark-defaults.conf:
# listing the cached JARs there puts Delta on the driver's classpath at JVM launch, which is the
# only moment it can be added (spark.jars set later reaches executors, not the py4j driver).
write_spark_defaults() {
  local home conf tmp
  home="$("$PY" -c 'import os, pyspark; print(os.path.dirname(pyspark.__file__))')"
  mkdir -p "$home/conf"
  conf="$home/conf/spark-defaults.conf"
  tmp="$(mktemp)"
  if [[ -f "$conf" ]]; then sed '/# >>> fstore_spark delta jars/,/# <<< fstore_spark delta jars/d' "$conf" > "$tmp"; fi
  {
    echo "# >>> fstore_spark delta jars (written by scripts/fetch_jars.sh)"
    printf 'spark.jars %s\n' "$(tail -n +2 "$JARS_DIR/MANIFEST" | sed "s|^|$JARS_DIR/|" | paste -sd, -)"
    echo "# <<< fstore_spark delta jars"
  } >> "$tmp"
  mv "$tmp" "$conf"
  echo "fetch_jars: Delta JARs listed in $conf (spark-submit picks them up offline)"
}

if [[ -f "$STAMP" ]] && grep -qx "io.delta:$DELTA_ARTIFACT:$DELTA_VERSION" "$STAMP"; then
  echo "fetch_jars: Delta JARs already in $JARS_DIR ($DELTA_ARTIFACT $DELTA_VERSION)"
  write_spark_defaults
  exit 0
fi
command -v mvn >/dev/null || { echo "fetch_jars: mvn not found; install Maven (apt-get install maven)" >&2; exit 1; }

TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
echo "fetch_jars: resolving io.delta:$DELTA_ARTIFACT:$DELTA_VERSION from Maven Central into $JARS_DIR"
mvn -B -q -f "$POM" dependency:copy-dependencies -DincludeScope=runtime \
  -DoutputDirectory="$TMP/jars" -Dmaven.repo.local="$M2_REPO"

SPARK_JARS="$("$PY" -c 'import os, pyspark; print(os.path.join(os.path.dirname(pyspark.__file__), "jars"))')"
# artifact name of a jar = file name without "-<version>.jar"
artifact() { basename "$1" .jar | sed -E 's/-[0-9][0-9A-Za-z.+_-]*$//'; }
declare -A SHIPPED=()
for j in "$SPARK_JARS"/*.jar; do SHIPPED["$(artifact "$j")"]=1; done

rm -rf "$JARS_DIR.new" && mkdir -p "$JARS_DIR.new"
kept=0; skipped=0
for j in "$TMP"/jars/*.jar; do
  if [[ -n "${SHIPPED[$(artifact "$j")]:-}" ]]; then skipped=$((skipped + 1)); continue; fi
  cp "$j" "$JARS_DIR.new/"; kept=$((kept + 1))
done
echo "io.delta:$DELTA_ARTIFACT:$DELTA_VERSION" > "$JARS_DIR.new/MANIFEST"
(cd "$JARS_DIR.new" && ls *.jar >> MANIFEST)
# swap in atomically so a crash never leaves a half-filled cache that looks complete
rm -rf "$JARS_DIR" && mv "$JARS_DIR.new" "$JARS_DIR"
echo "fetch_jars: kept $kept JARs, skipped $skipped already shipped by pyspark -> $JARS_DIR"
write_spark_defaults
