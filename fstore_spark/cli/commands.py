"""The commands of ``fstore`` on definitions, feature tables and quality.

Each command checks its input first, then builds the store (and Spark) only when it needs it.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import click

from fstore_spark.cli import operations as _operations  # noqa: F401 - registers commands
from fstore_spark.cli import report as _report  # noqa: F401 - registers report
from fstore_spark.cli import scaffold as _scaffold  # noqa: F401 - registers init
from fstore_spark.cli.app import Instant, cli, common, settings, store_of
from fstore_spark.errors import FstoreError

__all__: list[str] = []

_CATEGORIES = click.Choice(["entity", "data_source", "feature_view", "feature_set"])


def _dump(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, default=str))


@cli.command()
@common
@click.pass_context
def plan(ctx: click.Context) -> int:
    """Show what apply would change."""
    click.echo(store_of(ctx).plan())
    return 0


@cli.command()
@common
@click.option("--no-prune", is_flag=True, help="Keep registered objects no longer in the repo.")
@click.pass_context
def apply(ctx: click.Context, no_prune: bool) -> int:
    """Validate and register the repo's definitions."""
    store = store_of(ctx)
    click.echo(store.apply(prune=not no_prune))
    version = store.registry.version()
    click.echo(f"Applied. Registry {store.config.registry_path} is at version {version}.")
    return 0


@cli.command(name="list")
@common
@click.option("--category", type=_CATEGORIES, help="Only this category.")
@click.option("--as-of-version", type=int, help="Registry version to read.")
@click.pass_context
def list_(ctx: click.Context, category: str | None, as_of_version: int | None) -> int:
    """List registered objects."""
    entries = store_of(ctx).registry.list(category, as_of_version=as_of_version)
    if settings(ctx)["json"]:
        _dump(
            [
                {
                    "category": e.category,
                    "name": e.name,
                    "version": e.version,
                    "updated_at": e.updated_at,
                    "applied_by": e.applied_by,
                }
                for e in entries
            ]
        )
        return 0
    click.echo(f"{'CATEGORY':<14} {'NAME':<40} {'VERSION':>7}  UPDATED_AT  APPLIED_BY")
    for e in entries:
        click.echo(
            f"{e.category:<14} {e.name:<40} {e.version:>7}  "
            f"{e.updated_at:%Y-%m-%dT%H:%M:%S}  {e.applied_by}"
        )
    return 0


@cli.command()
@common
@click.argument("name")
@click.pass_context
def describe(ctx: click.Context, name: str) -> int:
    """Show one object with its history."""
    _dump(store_of(ctx).describe(name))
    return 0


@cli.command()
@common
@click.argument("view")
@click.option("--start", type=Instant(), help="First feature timestamp (ISO 8601, UTC).")
@click.option("--end", type=Instant(), help="Last feature timestamp (ISO 8601, UTC).")
@click.option("--incremental", is_flag=True, help="Continue from the last run (end: now).")
@click.pass_context
def materialize(
    ctx: click.Context,
    view: str,
    start: datetime | None,
    end: datetime | None,
    incremental: bool,
) -> int:
    """Compute a view's features into its Delta table (a backfill, or --incremental)."""
    if incremental and start is not None:
        raise click.UsageError("--incremental continues from the last run: drop --start.")
    if not incremental and (start is None or end is None):
        raise click.UsageError("give --start and --end, or --incremental.")
    if start is not None and end is not None and start > end:
        raise click.BadParameter(f"{start:%Y-%m-%d %H:%M} is after --end.", param_hint="'--start'")
    store = store_of(ctx)
    if incremental or start is None or end is None:
        result = store.materialize_incremental(view, end=end)
    else:
        result = store.materialize(view, start, end)
    _dump(result.to_dict())
    return 0


@cli.command(name="replay-quarantine")
@common
@click.argument("view")
@click.pass_context
def replay_quarantine(ctx: click.Context, view: str) -> int:
    """Take the late events an incremental run with a lateness cap set aside."""
    result = store_of(ctx).replay_quarantine(view)
    if result is None:
        click.echo(f"{view}: no quarantined late events to replay.")
        return 0
    _dump(result.to_dict())
    return 0


@cli.command()
@common
@click.argument("view")
@click.pass_context
def versions(ctx: click.Context, view: str) -> int:
    """Delta versions of a view's feature table, with run metadata."""
    _dump(store_of(ctx).list_versions(view))
    return 0


@cli.command()
@common
@click.argument("view")
@click.argument("v1", type=int)
@click.argument("v2", type=int)
@click.pass_context
def diff(ctx: click.Context, view: str, v1: int, v2: int) -> int:
    """Rows added, changed and removed between two versions of a view's table."""
    _dump(store_of(ctx).diff_versions(view, v1, v2).to_dict())
    return 0


@cli.command()
@common
@click.argument("view")
@click.option("--version", "version_", type=int, help="Delta version (default: latest).")
@click.option("--recompute", is_flag=True, help="Recompute kept statistics.")
@click.pass_context
def stats(ctx: click.Context, view: str, version_: int | None, recompute: bool) -> int:
    """Feature statistics of a view's Delta version (kept per version)."""
    _dump(store_of(ctx).feature_statistics(view, version=version_, recompute=recompute).to_dict())
    return 0


@cli.command()
@common
@click.option(
    "--rules",
    required=True,
    type=click.Path(exists=True, dir_okay=False),
    help="Monitoring plan (YAML).",
)
@click.option("--view", "views", multiple=True, help="Only these views (repeatable).")
@click.pass_context
def monitor(ctx: click.Context, rules: str, views: tuple[str, ...]) -> int:
    """Check views against a monitoring plan and send alerts; exit 3 when any alert fired."""
    from fstore_spark.quality.plans import load_monitoring

    plans = load_monitoring(rules)  # a broken file fails here, before Spark starts
    results = store_of(ctx).run_monitoring(plans, views=list(views) or None)
    for result in results:
        click.echo(json.dumps(result.to_dict()))
    return 3 if any(r.alerts for r in results) else 0


@cli.command()
@common
@click.argument("name")
@click.pass_context
def history(ctx: click.Context, name: str) -> int:
    """Who changed an object, and who wrote its feature table."""
    store = store_of(ctx)
    info = store.describe(name)
    commits: list[dict[str, Any]] = []
    if info["category"] == "feature_view":
        try:
            commits = store.list_versions(name)
        except FstoreError:  # never materialized
            commits = []
    if settings(ctx)["json"]:
        _dump({"changes": info["history"], "feature_table": commits})
        return 0
    click.echo(f"{info['category']} {info['name']}: registry changes")
    click.echo(f"  {'registry':>8}  {'version':>7}  {'change':<7} {'when (UTC)':<20} by")
    for h in info["history"]:
        click.echo(
            f"  {h['registry_version']:>8}  {h['version']:>7}  {h['change']:<7} "
            f"{str(h['updated_at'])[:19]:<20} {h['applied_by']}"
        )
    if commits:
        click.echo("feature table commits")
        click.echo(
            f"  {'delta':>5}  {'operation':<10} {'mode':<12} {'rows':>9}  {'when (UTC)':<20} by"
        )
        for c in reversed(commits):
            click.echo(
                f"  {c['version']:>5}  {c['operation']:<10} {c['mode'] or '-':<12} "
                f"{c['rows'] if c['rows'] is not None else '-':>9}  "
                f"{str(c['timestamp'])[:19]:<20} {c['by'] or '-'}"
            )
    return 0


@cli.command()
@common
@click.argument("view")
@click.option("--owner", "owners", multiple=True, help="An owner (repeatable).")
@click.option("--reader", "readers", multiple=True, help="A reader (repeatable).")
@click.option("--clear", is_flag=True, help="Remove every owner and reader.")
@click.pass_context
def policy(
    ctx: click.Context, view: str, owners: tuple[str, ...], readers: tuple[str, ...], clear: bool
) -> int:
    """Show or set who owns and who may read a view."""
    store = store_of(ctx)
    if owners or readers or clear:
        store.registry.set_access_policy(view, owners=owners, readers=readers)
        store.refresh_online_cache()
    store.get_feature_view(view)  # NotFoundError listing the views
    try:
        current = dict(store.registry.get("access_policy", view).definition)
    except FstoreError:
        current = {"view": view, "owners": [], "readers": []}
    click.echo(json.dumps(current))
    return 0
