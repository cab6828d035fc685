"""Schedules: online syncs and monitors with a frequency, run by ``fstore scheduler``.

What runs is kept in the registry: every feature set with online serving settings is synced
at its ``update_frequency`` (``configure_online_serving``), and every monitor started with
``FeatureMonitor.start_monitoring(..., frequency=...)`` is checked at its frequency.

* ``jobs``: the scheduled jobs read from the registry, their time slots, and the same schedule
  exported as Databricks Asset Bundle jobs or crontab lines for production schedulers;
* ``lease``: one scheduler at a time, through a lease row in a Delta table (a second
  scheduler waits; a killed one's lease expires and another takes over);
* ``runner``: the loop that runs each job once per slot and logs every run with its result.
"""

from fstore_spark.scheduler.jobs import Job, export_crontab, export_databricks, scheduled_jobs
from fstore_spark.scheduler.lease import Lease
from fstore_spark.scheduler.runner import Scheduler, run_job

__all__ = [
    "Job",
    "Lease",
    "Scheduler",
    "export_crontab",
    "export_databricks",
    "run_job",
    "scheduled_jobs",
]
