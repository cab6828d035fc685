"""The scheduled jobs of a store, their time slots, and their export to other schedulers.

A job runs once per *slot*: the frequency's multiples counted from the Unix epoch (UTC), so
every scheduler process computes the same slots. A job is due when its current slot has no
logged run; slots missed while no scheduler ran are not replayed one by one: the current
one runs once.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from fstore_spark.core import format_duration, parse_duration
from fstore_spark.errors import ConfigError, NotFoundError

if TYPE_CHECKING:
    from fstore_spark.store import FeatureStore

__all__ = ["Job", "export_crontab", "export_databricks", "scheduled_jobs"]

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Job:
    """One scheduled job.

    Attributes:
        name: ``sync:<feature set>`` or ``monitor:<target>``.
        kind: ``sync`` (the set's online views to Redis) or ``monitor``.
        target: The feature set (or view) it works on.
        every: Its frequency.
        spec: The registry entry it comes from.
    """

    name: str
    kind: str
    target: str
    every: timedelta
    spec: dict[str, Any] = field(default_factory=dict, compare=False)

    def slot(self, now: datetime) -> datetime:
        """The start of the slot ``now`` falls in."""
        periods = (now - EPOCH) // self.every
        return EPOCH + periods * self.every


def scheduled_jobs(store: FeatureStore) -> list[Job]:
    """Every job the registry schedules, by name."""
    jobs = [
        Job(f"sync:{e.name}", "sync", e.name, parse_duration(e.definition["update_frequency"]))
        for e in store.registry.list("online_serving")
    ]
    jobs += [
        Job(
            e.name,
            str(e.definition["kind"]),
            str(e.definition["target"]),
            parse_duration(e.definition["frequency"]),
            dict(e.definition),
        )
        for e in store.registry.list("schedule")
    ]
    return sorted(jobs, key=lambda j: j.name)


def find_job(store: FeatureStore, name: str) -> Job:
    """The job called ``name`` (``NotFoundError`` listing the scheduled ones)."""
    jobs = {j.name: j for j in scheduled_jobs(store)}
    if name not in jobs:
        raise NotFoundError(f"no scheduled job {name!r}; scheduled: {', '.join(jobs) or '-'}.")
    return jobs[name]


def _cron_step(every: timedelta) -> tuple[str, int]:
    """The cron unit (``minute``, ``hour``, ``day``) and step of a frequency."""
    secs = int(every.total_seconds())
    for unit, size in (("day", 86_400), ("hour", 3_600), ("minute", 60)):
        if secs % size == 0:
            return unit, secs // size
    raise ConfigError(
        f"a frequency of {format_duration(every)} is below a minute or not a whole number of "
        "minutes: cron cannot express it. Fix: use minutes, hours or days, or fstore scheduler."
    )


def export_crontab(jobs: list[Job], command: list[str]) -> str:
    """Crontab lines (UTC) running each job with ``<command> schedule run <job>``."""
    fields = {"minute": "*/{n} * * * *", "hour": "0 */{n} * * *", "day": "0 0 */{n} * *"}
    lines = ["# fstore_spark schedules (times in UTC: set CRON_TZ=UTC where cron supports it)"]
    for job in jobs:
        unit, n = _cron_step(job.every)
        run = shlex.join([*command, "schedule", "run", job.name])
        lines.append(
            f"{fields[unit].format(n=n)} {run}  # {job.name} every {format_duration(job.every)}"
        )
    return "\n".join(lines) + "\n"


def export_databricks(jobs: list[Job], project: str, parameters: list[str]) -> str:
    """A Databricks Asset Bundle ``resources`` file: one job per schedule (Quartz cron, UTC).

    Each job runs the ``fstore`` entry point of the ``fstore_spark`` wheel with
    ``<parameters> schedule run <job>``; the wheel must be installed on the job's compute.
    """
    quartz = {"minute": "0 0/{n} * * * ?", "hour": "0 0 0/{n} * * ?", "day": "0 0 0 1/{n} * ?"}
    out = ["resources:", "  jobs:"]
    for job in jobs:
        unit, n = _cron_step(job.every)
        key = "fstore_" + "".join(c if c.isalnum() else "_" for c in f"{project}_{job.name}")
        params = ", ".join(f'"{p}"' for p in [*parameters, "schedule", "run", job.name])
        out += [
            f"    {key}:",
            f'      name: "fstore {project} {job.name}"',
            "      schedule:",
            f'        quartz_cron_expression: "{quartz[unit].format(n=n)}"',
            "        timezone_id: UTC",
            "      max_concurrent_runs: 1",
            "      tasks:",
            "        - task_key: run",
            "          python_wheel_task:",
            "            package_name: fstore_spark",
            "            entry_point: fstore",
            f"            parameters: [{params}]",
        ]
    return "\n".join(out) + "\n"
