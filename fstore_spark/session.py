"""The one place that builds the SparkSession.

:func:`get_spark` returns a SparkSession with Delta Lake enabled:

* If a session is already active (Databricks, a notebook, ``spark-submit`` that created it, a
  test fixture) it is returned as it is: fstore_spark never mutates a session it did not build.
* If ``SPARK_REMOTE`` is set, a Spark Connect session is created against it.
* Otherwise a session is built from :class:`~fstore_spark.config.SparkConfig`. Under a
  launcher (``spark-submit``, the ``pyspark`` shell) everything it set wins: its master, JARs,
  packages, app name and ``--conf`` settings; the config only fills what it left unset. Jobs
  therefore run on whatever master they were submitted to.
  Unless the launcher provided Delta (``--packages``/``--jars``), the Delta JARs come from the
  local cache filled once by ``scripts/fetch_jars.sh`` (``make jars``) and are added with
  ``spark.jars``, so the session starts with **no network**; when the cache is missing the
  error says exactly how to fill it.

Local defaults: UTC session time zone (every timestamp is an instant), shuffle partitions
scaled to the cores, UI off, driver bound to 127.0.0.1.

Example::

    from fstore_spark.session import get_spark
    spark = get_spark()                       # local[*], Delta on
    spark.range(3).write.format("delta").save("/tmp/t")
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from fstore_spark.errors import SessionError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from fstore_spark.config import SparkConfig

__all__ = [
    "get_spark",
    "is_connect",
    "delta_jars",
    "default_jars_dir",
    "DELTA_EXTENSION",
    "DELTA_CATALOG",
]

DELTA_EXTENSION = "io.delta.sql.DeltaSparkSessionExtension"
DELTA_CATALOG = "org.apache.spark.sql.delta.catalog.DeltaCatalog"
_MANIFEST = "MANIFEST"


LOG4J_FILE = Path(__file__).with_name("log4j2.properties")
"""Spark's log settings for sessions built here: errors only (see the file)."""


def default_jars_dir() -> Path:
    """Folder of the Delta JAR cache: ``$FSTORE_JARS_DIR`` or ``<checkout>/.cache/jars``."""
    env = os.environ.get("FSTORE_JARS_DIR")
    if env:
        return Path(env)
    return Path(__file__).resolve().parent.parent / ".cache" / "jars"


def delta_jars(jars_dir: str | os.PathLike[str] | None = None) -> list[str]:
    """Return the absolute paths of the cached Delta JARs, in manifest order.

    Raises:
        SessionError: the cache is missing or incomplete, with the command that fills it.
    """
    folder = Path(jars_dir) if jars_dir else default_jars_dir()
    manifest = folder / _MANIFEST
    fix = (
        f"Fix: run `make jars` (or `scripts/fetch_jars.sh`) once with network access; it "
        f"fetches the Delta artifacts from Maven Central into {folder}. "
        "Or set FSTORE_JARS_DIR to a folder that holds them."
    )
    if not manifest.is_file():
        raise SessionError(f"Delta JARs not found: {manifest} does not exist. {fix}")
    names = [ln.strip() for ln in manifest.read_text().splitlines()[1:] if ln.strip()]
    missing = [n for n in names if not (folder / n).is_file()]
    if not names or missing:
        raise SessionError(f"Delta JAR cache {folder} is incomplete (missing {missing}). {fix}")
    return [str((folder / n).resolve()) for n in names]


def is_connect(spark: SparkSession) -> bool:
    """Whether ``spark`` is a Spark Connect session (no SparkContext, no JVM in this process)."""
    return type(spark).__module__.startswith("pyspark.sql.connect")


def launched_by_spark() -> bool:
    """Whether a Spark launcher (``spark-submit``, the ``pyspark`` shell) started this process.

    The launcher's JVM is then already running and handed this process its gateway.
    """
    return bool(os.environ.get("PYSPARK_GATEWAY_PORT"))


def _launcher_conf() -> dict[str, str]:
    """Settings a launcher gave its JVM (``--master``, ``--jars``, ``--packages``, ``--conf``).

    ``spark-submit`` passes them to the driver JVM as system properties, which a ``SparkConf``
    reads only once Python is connected to that JVM: connect first (no new JVM is started, the
    launcher's is reused). Without a launcher there is no JVM yet, and nothing was set.
    """
    if not launched_by_spark():
        return {}
    from pyspark import SparkConf, SparkContext

    SparkContext._ensure_initialized()  # type: ignore[attr-defined]
    return dict(SparkConf().getAll())


def _delta_provided(conf: dict[str, str]) -> bool:
    packages = conf.get("spark.jars.packages", "") + "," + conf.get("spark.jars", "")
    return "delta-spark" in packages or "delta-core" in packages


def get_spark(
    config: SparkConfig | None = None,
    *,
    extra_conf: dict[str, str] | None = None,
) -> SparkSession:
    """Return the active SparkSession, or build one with Delta Lake enabled.

    Args:
        config: Spark settings; default :class:`SparkConfig` defaults (``local[*]``).
        extra_conf: Further ``spark.*`` settings for a session built here (ignored when a
            session is already active).

    Returns:
        A SparkSession whose ``spark_catalog`` is Delta's and whose time zone is UTC (for a
        session built here; an active session is returned unchanged).

    Raises:
        SessionError: the Delta JARs are not cached and no launcher provided them.
    """
    from pyspark.sql import SparkSession

    from fstore_spark.config import SparkConfig

    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    remote = os.environ.get("SPARK_REMOTE")
    if remote:
        return SparkSession.builder.remote(remote).getOrCreate()
    launcher = _launcher_conf()
    wanted = _wanted_conf(config or SparkConfig(), launcher)
    wanted.update(extra_conf or {})
    return _build(wanted, launcher)


def _wanted_conf(cfg: SparkConfig, launcher: dict[str, str]) -> dict[str, str]:
    """The settings a session built here asks for (Delta, UTC, local-mode sizing, JARs)."""
    wanted: dict[str, str] = {
        "spark.app.name": cfg.app_name,
        "spark.sql.extensions": DELTA_EXTENSION,
        "spark.sql.catalog.spark_catalog": DELTA_CATALOG,
        "spark.sql.session.timeZone": "UTC",
        "spark.ui.enabled": str(cfg.ui_enabled).lower(),
        "spark.sql.adaptive.enabled": "true",
        "spark.databricks.delta.schema.autoMerge.enabled": "false",
        "spark.sql.execution.arrow.pyspark.enabled": "true",
    }
    master = launcher.get("spark.master") or cfg.master
    if master == "local" or master.startswith("local["):  # not local-cluster[...]: a cluster
        wanted.update(_local_conf(cfg, master))
    elif cfg.shuffle_partitions:
        wanted["spark.sql.shuffle.partitions"] = str(cfg.shuffle_partitions)
    if cfg.driver_memory:
        wanted["spark.driver.memory"] = cfg.driver_memory
    if not launcher:  # this process starts the driver JVM: quiet Spark's own logging
        wanted["spark.driver.extraJavaOptions"] = f"-Dlog4j2.configurationFile={LOG4J_FILE}"
    if not _delta_provided(launcher):
        jars = delta_jars(cfg.jars_dir)
        existing = launcher.get("spark.jars")
        wanted["spark.jars"] = ",".join([existing, *jars] if existing else jars)
    wanted.update(cfg.options)
    return wanted


def _local_conf(cfg: SparkConfig, master: str) -> dict[str, str]:
    """Local-mode settings: loopback driver, partitions sized to this machine's cores."""
    cores = os.cpu_count() or 2
    # Python workers (the online sync's mapInArrow, score_batch's model UDF) must run this
    # interpreter, which has pyarrow, MLflow and fstore_spark, not whatever `python3` is
    # first on PATH. PySpark reads the variable when the context starts (the
    # spark.pyspark.python conf only serves spark-submit).
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    return {
        "spark.master": master,
        "spark.driver.bindAddress": "127.0.0.1",
        "spark.driver.host": "127.0.0.1",
        "spark.sql.shuffle.partitions": str(cfg.shuffle_partitions or 2 * cores),
        "spark.default.parallelism": str(2 * cores),
        # Delta's log replay defaults to 50 partitions: far too many on a laptop.
        "spark.databricks.delta.snapshotPartitions": "2",
    }


def _build(wanted: dict[str, str], launcher: dict[str, str]) -> SparkSession:
    """Start the session; what the launcher set wins, except ``spark.jars`` (extended)."""
    from pyspark.sql import SparkSession

    builder = SparkSession.builder
    for key, value in wanted.items():
        if key in launcher and key != "spark.jars":
            continue
        builder = builder.config(key, value)
    try:
        spark = builder.getOrCreate()
    except Exception as exc:  # JVM failed to start: surface it as a typed, actionable error
        master = wanted.get("spark.master", launcher.get("spark.master"))
        raise SessionError(
            f"could not start Spark (master={master!r}): {exc}. Fix: check that Java 17 is on "
            "PATH (java -version) and that spark.* options in the config are valid."
        ) from exc
    quiet = wanted.get("spark.driver.extraJavaOptions", "").endswith(str(LOG4J_FILE))
    spark.sparkContext.setLogLevel("ERROR" if quiet and not launcher else "WARN")
    return spark
