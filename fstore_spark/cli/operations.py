"""The commands of ``fstore`` that run things: sync, serve, the scheduler, keys."""

from __future__ import annotations

import json
import os
import sys
import time

import click

from fstore_spark.cli.app import cli, common, store_of
from fstore_spark.errors import ConfigError

__all__: list[str] = []


@cli.command()
@common
@click.argument("views", nargs=-1)
@click.option("--full", is_flag=True, help="Full reload into a new namespace.")
@click.option("--due", is_flag=True, help="Only views of feature sets whose update is due.")
@click.option(
    "--loop",
    type=click.FloatRange(min=0, min_open=True),
    metavar="SECONDS",
    help="With --due: check again every SECONDS until interrupted.",
)
@click.pass_context
def sync(
    ctx: click.Context, views: tuple[str, ...], full: bool, due: bool, loop: float | None
) -> int:
    """Sync views' latest values to the Redis online store (one JSON line per view)."""
    if due and (views or full):
        raise click.UsageError("--due syncs the due views; do not name views or --full.")
    if loop and not due:
        raise click.UsageError("--loop needs --due.")
    store = store_of(ctx)
    if due:
        while True:
            results = store.sync_online_due()
            if not results and not loop:
                click.echo("no view is due (see `fstore schedule list`)", err=True)
            for result in results:
                click.echo(json.dumps(result.to_dict()))
            if not loop:
                return 0
            time.sleep(loop)
    mode = "full" if full else "incremental"
    done = (
        [store.sync_online(v, mode=mode) for v in views] if views else store.sync_online(mode=mode)
    )
    for result in done:
        click.echo(json.dumps(result.to_dict()))
    return 0


@cli.command()
@common
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(1, 65535), default=6566, show_default=True)
@click.option(
    "--refresh-seconds",
    type=float,
    default=60.0,
    show_default=True,
    help="How often to check the registry for new definitions (0: never).",
)
@click.pass_context
def serve(ctx: click.Context, host: str, port: int, refresh_seconds: float) -> int:
    """Run the HTTP feature server."""
    try:
        from fstore_spark.server import serve as run_server
    except ImportError as exc:  # the server's packages are an extra
        raise ConfigError(
            f"the feature server needs FastAPI and uvicorn ({exc}). Fix: "
            "pip install 'fstore_spark[serving]'."
        ) from exc
    store = store_of(ctx)
    keys = [k.name for k in store.config.server.api_keys]
    who = f"API keys: {', '.join(keys)}" if keys else "no API keys: anyone who can connect reads"
    click.echo(f"fstore serve: http://{host}:{port} ({who})", err=True)
    # uvicorn's info level: one access line per request (method, path, status; never a key)
    run_server(store, host=host, port=port, refresh_seconds=refresh_seconds, log_level="info")
    return 0


@cli.command()
@common
@click.option("--tick", type=float, default=10.0, show_default=True, help="Seconds between looks.")
@click.option(
    "--lease-seconds",
    type=float,
    default=60.0,
    show_default=True,
    help="Lease length, longer than the longest job; a dead holder's jobs are taken "
    "over after at most this long.",
)
@click.option("--for", "duration", type=float, help="Stop after SECONDS.")
@click.option("--id", "runner", help="Name in the lease and run log (default host:pid).")
@click.pass_context
def scheduler(
    ctx: click.Context,
    tick: float,
    lease_seconds: float,
    duration: float | None,
    runner: str | None,
) -> int:
    """Run scheduled syncs and monitors (one scheduler at a time holds the lease)."""
    from fstore_spark.scheduler import Scheduler

    sched = Scheduler(store_of(ctx), tick=tick, lease_ttl=lease_seconds, runner=runner)
    try:
        sched.run(duration=duration)
    except KeyboardInterrupt:
        pass
    return 0


@cli.group()
@common
def schedule() -> None:
    """List, run or export the scheduled jobs."""


@schedule.command(name="list")
@common
@click.pass_context
def schedule_list(ctx: click.Context) -> int:
    """One JSON line per scheduled job."""
    from fstore_spark.scheduler import scheduled_jobs

    for job in scheduled_jobs(store_of(ctx)):
        click.echo(json.dumps({"job": job.name, "kind": job.kind, "every": str(job.every)}))
    return 0


@schedule.command(name="run")
@common
@click.argument("job")
@click.pass_context
def schedule_run(ctx: click.Context, job: str) -> int:
    """Run one job now (what an external scheduler calls), e.g. sync:fraud_v1."""
    from fstore_spark.scheduler import run_job
    from fstore_spark.scheduler.jobs import find_job

    store = store_of(ctx)
    click.echo(json.dumps({"job": job, "result": run_job(store, find_job(store, job))}))
    return 0


@schedule.command(name="export")
@common
@click.option("--format", "fmt", type=click.Choice(["databricks", "crontab"]), required=True)
@click.option("--output", type=click.Path(dir_okay=False), help="File (default: stdout).")
@click.pass_context
def schedule_export(ctx: click.Context, fmt: str, output: str | None) -> int:
    """The schedule for Databricks Jobs or cron."""
    from fstore_spark.scheduler import export_crontab, export_databricks, scheduled_jobs

    store = store_of(ctx)
    path = store.config.config_file or os.path.abspath(os.environ.get("FSTORE_CONFIG", ""))
    config = ["--config", path]
    if fmt == "crontab":
        text = export_crontab(scheduled_jobs(store), ["fstore", *config])
    else:
        text = export_databricks(scheduled_jobs(store), store.project, config)
    if output:
        with open(output, "w") as fh:
            fh.write(text)
    else:
        click.echo(text, nl=False)
    return 0


@cli.group()
def keys() -> None:
    """API keys of the feature server (needs no config)."""


@keys.command(name="new")
def keys_new() -> int:
    """Print a new random key and its sha256 for server.api_keys."""
    import secrets

    from fstore_spark.config import hash_key

    key = secrets.token_urlsafe(32)
    click.echo(f"key:    {key}\nsha256: {hash_key(key)}")
    click.echo("Give the key to its holder; put only the sha256 in server.api_keys.")
    return 0


@keys.command(name="hash")
@click.argument("key", required=False)
def keys_hash(key: str | None) -> int:
    """Print the sha256 of a key (read from standard input when not given)."""
    from fstore_spark.config import hash_key

    text = key if key is not None else sys.stdin.readline().strip()
    click.echo(hash_key(text))
    return 0
