"""The ``fstore`` command line.

Commands::

    fstore [--config conf/feature_store.yaml] [--repo feature_repo] plan
    fstore apply [--no-prune]
    fstore list [--category feature_view]
    fstore describe NAME
    fstore history NAME [--json]          # who changed a definition, who materialized its table
    fstore keys new | hash [KEY]          # an API key for the feature server, and its SHA-256
    fstore policy VIEW [--owner NAME ...] [--reader NAME ...]   # show or set who owns / reads it
    fstore materialize VIEW --start 2024-01-01 --end 2024-03-01 | --incremental [--end ...]
    fstore versions VIEW                  # Delta versions of its feature table, with run metadata
    fstore diff VIEW V1 V2                # rows added / changed / removed between two versions
    fstore sync [VIEW ...] [--full] | --due [--loop SECONDS]
    fstore serve [--host 127.0.0.1] [--port 6566] [--refresh-seconds 60]
    fstore stats VIEW [--version N]       # feature statistics of a Delta version (kept per version)
    fstore monitor --rules conf/monitoring.yaml [--view VIEW]   # checks + alerts; exit 3 on alerts
    fstore scheduler [--tick 10] [--lease-seconds 60] [--for SECONDS]   # run scheduled jobs
    fstore schedule list | run JOB | export --format databricks|crontab [--output FILE]

Every command exits 0 on success (``monitor``: 3 when an alert was raised), 1 on a feature
store error (printed as one line per problem on stderr, no traceback) and 2 on bad usage.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from fstore_spark.errors import ConfigError, FstoreError

if TYPE_CHECKING:
    from fstore_spark.store import FeatureStore

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="fstore", description="fstore_spark feature store CLI")
    p.add_argument(
        "--config", help="config file (default $FSTORE_CONFIG or conf/feature_store.yaml)"
    )
    p.add_argument("--repo", help="feature repo folder (overrides repo_path of the config)")
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("plan", help="show what apply would change")
    ap = sub.add_parser("apply", help="validate and register the repo's definitions")
    ap.add_argument(
        "--no-prune",
        action="store_true",
        help="keep registered objects that are no longer in the repo",
    )
    ls = sub.add_parser("list", help="list registered objects")
    ls.add_argument("--category", choices=["entity", "data_source", "feature_view", "feature_set"])
    ls.add_argument("--as-of-version", type=int, help="registry version to read")
    de = sub.add_parser("describe", help="show one object with its history")
    de.add_argument("name")
    _security_commands(sub)
    ma = sub.add_parser("materialize", help="compute a view's features into its Delta table")
    ma.add_argument("view")
    ma.add_argument("--start", help="first feature timestamp (ISO 8601, UTC); backfill")
    ma.add_argument("--end", help="last feature timestamp (ISO 8601, UTC)")
    ma.add_argument(
        "--incremental", action="store_true", help="continue from the last run (default end: now)"
    )
    ve = sub.add_parser("versions", help="Delta versions of a view's feature table")
    ve.add_argument("view")
    di = sub.add_parser("diff", help="compare two Delta versions of a view's feature table")
    di.add_argument("view")
    di.add_argument("v1", type=int)
    di.add_argument("v2", type=int)
    sy = sub.add_parser("sync", help="sync views' latest values to the Redis online store")
    sy.add_argument("views", nargs="*", help="feature views (default: every online view)")
    sy.add_argument("--full", action="store_true", help="full reload into a new namespace")
    sy.add_argument(
        "--due",
        action="store_true",
        help="only views of configured feature sets whose update_frequency has elapsed",
    )
    sy.add_argument(
        "--loop",
        type=float,
        metavar="SECONDS",
        help="with --due: check again every SECONDS until interrupted",
    )
    se = sub.add_parser("serve", help="run the HTTP feature server")
    se.add_argument("--host", default="127.0.0.1")
    se.add_argument("--port", type=int, default=6566)
    se.add_argument(
        "--refresh-seconds",
        type=float,
        default=60.0,
        help="how often to check the registry for new definitions (0: never)",
    )
    # quality
    st = sub.add_parser("stats", help="feature statistics of a view's Delta version")
    st.add_argument("view")
    st.add_argument("--version", type=int, help="Delta version (default: latest)")
    st.add_argument("--recompute", action="store_true", help="recompute kept statistics")
    _scheduling_commands(sub)
    mo = sub.add_parser("monitor", help="check views against a monitoring plan, send alerts")
    mo.add_argument("--rules", required=True, help="monitoring plan (YAML)")
    mo.add_argument("--view", action="append", help="only these views (repeatable)")
    return p


def _security_commands(sub: Any) -> None:
    """``history``, ``policy`` and ``keys``."""
    hi = sub.add_parser("history", help="who changed an object, and who wrote its feature table")
    hi.add_argument("name")
    hi.add_argument("--json", action="store_true", help="one JSON document instead of tables")
    po = sub.add_parser("policy", help="show or set who owns and who may read a view")
    po.add_argument("view")
    po.add_argument("--owner", action="append", default=[], help="an owner (repeatable)")
    po.add_argument("--reader", action="append", default=[], help="a reader (repeatable)")
    po.add_argument("--clear", action="store_true", help="remove every owner and reader")
    ke = sub.add_parser("keys", help="API keys of the feature server (needs no config)")
    ke_sub = ke.add_subparsers(dest="keys_command", required=True)
    ke_sub.add_parser("new", help="print a new random key and its sha256 for server.api_keys")
    kh = ke_sub.add_parser("hash", help="print the sha256 of a key (read from stdin if not given)")
    kh.add_argument("key", nargs="?")


def _scheduling_commands(sub: Any) -> None:
    """``scheduler`` and ``schedule list|run|export``."""
    sc = sub.add_parser("scheduler", help="run scheduled syncs and monitors (one at a time)")
    sc.add_argument("--tick", type=float, default=10.0, help="seconds between looks (default 10)")
    sc.add_argument(
        "--lease-seconds",
        type=float,
        default=60.0,
        help="lease length, longer than the longest job; a dead "
        "holder's jobs are taken over after at most this long (default 60)",
    )
    sc.add_argument("--for", dest="duration", type=float, help="stop after SECONDS")
    sc.add_argument("--id", dest="runner", help="name in the lease and run log (default host:pid)")
    sh = sub.add_parser("schedule", help="list, run or export the scheduled jobs")
    sh_sub = sh.add_subparsers(dest="schedule_command", required=True)
    sh_sub.add_parser("list", help="one JSON line per scheduled job")
    sr = sh_sub.add_parser("run", help="run one job now (what an external scheduler calls)")
    sr.add_argument("job", help="job name, e.g. sync:fraud_v1 or monitor:fraud_v1@v2")
    ex = sh_sub.add_parser("export", help="the schedule for Databricks Jobs or cron")
    ex.add_argument("--format", choices=["databricks", "crontab"], required=True)
    ex.add_argument("--output", help="file to write (default: standard output)")


def _monitor(store: Any, args: argparse.Namespace) -> int:
    """``fstore monitor``: one JSON line per view; exit 3 when any alert was raised."""
    results = store.run_monitoring(args.rules, views=args.view)
    for result in results:
        print(json.dumps(result.to_dict()), flush=True)
    return 3 if any(r.alerts for r in results) else 0


def _sync(store: Any, args: argparse.Namespace) -> int:
    """``fstore sync``: one JSON line per synced view."""
    import time

    if args.due:
        if args.views or args.full:
            print(
                "fstore: error: --due syncs the due views; do not name views or --full",
                file=sys.stderr,
            )
            return 2
        while True:
            for result in store.sync_online_due():
                print(json.dumps(result.to_dict()), flush=True)
            if not args.loop:
                return 0
            time.sleep(args.loop)
    if args.loop:
        print("fstore: error: --loop needs --due", file=sys.stderr)
        return 2
    mode = "full" if args.full else "incremental"
    results = (
        [store.sync_online(v, mode=mode) for v in args.views]
        if args.views
        else store.sync_online(mode=mode)
    )
    for result in results:
        print(json.dumps(result.to_dict()), flush=True)
    return 0


def _plan(store: FeatureStore, args: argparse.Namespace) -> int:
    print(store.plan())
    return 0


def _apply(store: FeatureStore, args: argparse.Namespace) -> int:
    print(store.apply(prune=not args.no_prune))
    version = store.registry.version()
    print(f"Applied. Registry {store.config.registry_path} is at version {version}.")
    return 0


def _list(store: FeatureStore, args: argparse.Namespace) -> int:
    entries = store.registry.list(args.category, as_of_version=args.as_of_version)
    print(f"{'CATEGORY':<14} {'NAME':<40} {'VERSION':>7}  UPDATED_AT  APPLIED_BY")
    for e in entries:
        print(
            f"{e.category:<14} {e.name:<40} {e.version:>7}  "
            f"{e.updated_at:%Y-%m-%dT%H:%M:%S}  {e.applied_by}"
        )
    return 0


def _describe(store: FeatureStore, args: argparse.Namespace) -> int:
    print(json.dumps(store.describe(args.name), indent=2, default=str))
    return 0


def _history(store: FeatureStore, args: argparse.Namespace) -> int:
    """``fstore history NAME``: each registry change with who made it, then table commits."""
    info = store.describe(args.name)
    commits: list[dict[str, Any]] = []
    if info["category"] == "feature_view":
        try:
            commits = store.list_versions(args.name)
        except FstoreError:  # never materialized
            commits = []
    if args.json:
        doc = {"changes": info["history"], "feature_table": commits}
        print(json.dumps(doc, indent=2, default=str))
        return 0
    print(f"{info['category']} {info['name']}: registry changes")
    print(f"  {'registry':>8}  {'version':>7}  {'change':<7} {'when (UTC)':<20} by")
    for h in info["history"]:
        print(
            f"  {h['registry_version']:>8}  {h['version']:>7}  {h['change']:<7} "
            f"{str(h['updated_at'])[:19]:<20} {h['applied_by']}"
        )
    if commits:
        print("feature table commits")
        print(f"  {'delta':>5}  {'operation':<10} {'mode':<12} {'rows':>9}  {'when (UTC)':<20} by")
        for c in reversed(commits):
            print(
                f"  {c['version']:>5}  {c['operation']:<10} {c['mode'] or '-':<12} "
                f"{c['rows'] if c['rows'] is not None else '-':>9}  "
                f"{str(c['timestamp'])[:19]:<20} {c['by'] or '-'}"
            )
    return 0


def _policy(store: FeatureStore, args: argparse.Namespace) -> int:
    """``fstore policy VIEW``: print the view's access policy, or set it first."""
    if args.owner or args.reader or args.clear:
        store.registry.set_access_policy(args.view, owners=args.owner, readers=args.reader)
        store.refresh_online_cache()
    store.get_feature_view(args.view)  # NotFoundError listing the views
    try:
        policy = store.registry.get("access_policy", args.view).definition
    except FstoreError:
        policy = {"view": args.view, "owners": [], "readers": []}
    print(json.dumps(dict(policy)))
    return 0


def _keys(args: argparse.Namespace) -> int:
    """``fstore keys new|hash``: make a key, or hash one, for ``server.api_keys``."""
    import secrets

    from fstore_spark.config import hash_key

    if args.keys_command == "new":
        key = secrets.token_urlsafe(32)
        print(f"key:    {key}\nsha256: {hash_key(key)}")
        print("Give the key to its holder; put only the sha256 in server.api_keys.")
        return 0
    key = args.key if args.key is not None else sys.stdin.readline().strip()
    print(hash_key(key))
    return 0


def _materialize(store: FeatureStore, args: argparse.Namespace) -> int:
    if args.incremental:
        result = store.materialize_incremental(args.view, end=args.end)
    elif args.start and args.end:
        result = store.materialize(args.view, args.start, args.end)
    else:
        print("fstore: error: give --start and --end, or --incremental", file=sys.stderr)
        return 2
    print(json.dumps(result.to_dict(), indent=2))
    return 0


def _versions(store: FeatureStore, args: argparse.Namespace) -> int:
    print(json.dumps(store.list_versions(args.view), indent=2, default=str))
    return 0


def _diff(store: FeatureStore, args: argparse.Namespace) -> int:
    print(json.dumps(store.diff_versions(args.view, args.v1, args.v2).to_dict(), indent=2))
    return 0


def _stats(store: FeatureStore, args: argparse.Namespace) -> int:
    stats = store.feature_statistics(args.view, version=args.version, recompute=args.recompute)
    print(json.dumps(stats.to_dict(), indent=2, default=str))
    return 0


def _serve(store: FeatureStore, args: argparse.Namespace) -> int:
    try:
        from fstore_spark.server import serve
    except ImportError as exc:  # the server's packages are an extra
        raise ConfigError(
            f"the feature server needs FastAPI and uvicorn ({exc}). Fix: "
            "pip install 'fstore_spark[serving]'."
        ) from exc

    keys = [k.name for k in store.config.server.api_keys]
    who = f"API keys: {', '.join(keys)}" if keys else "no API keys: anyone who can connect reads"
    print(f"fstore serve: http://{args.host}:{args.port} ({who})", file=sys.stderr, flush=True)
    serve(store, host=args.host, port=args.port, refresh_seconds=args.refresh_seconds)
    return 0


def _scheduler(store: Any, args: argparse.Namespace) -> int:
    """``fstore scheduler``: run due jobs while holding the lease; one JSON line per run."""
    from fstore_spark.scheduler import Scheduler

    sched = Scheduler(store, tick=args.tick, lease_ttl=args.lease_seconds, runner=args.runner)
    try:
        sched.run(duration=args.duration)
    except KeyboardInterrupt:
        pass
    return 0


def _schedule(store: Any, args: argparse.Namespace) -> int:
    """``fstore schedule list|run|export``."""
    import os

    from fstore_spark.scheduler import export_crontab, export_databricks, run_job, scheduled_jobs
    from fstore_spark.scheduler.jobs import find_job

    if args.schedule_command == "list":
        for job in scheduled_jobs(store):
            print(json.dumps({"job": job.name, "kind": job.kind, "every": str(job.every)}))
        return 0
    if args.schedule_command == "run":
        print(json.dumps({"job": args.job, "result": run_job(store, find_job(store, args.job))}))
        return 0
    config = ["--config", os.path.abspath(args.config or os.environ.get("FSTORE_CONFIG", ""))]
    if args.format == "crontab":
        text = export_crontab(scheduled_jobs(store), ["fstore", *config])
    else:
        text = export_databricks(scheduled_jobs(store), store.project, config)
    if args.output:
        with open(args.output, "w") as fh:
            fh.write(text)
    else:
        print(text, end="")
    return 0


_COMMANDS: dict[str, Callable[[FeatureStore, argparse.Namespace], int]] = {
    "plan": _plan,
    "apply": _apply,
    "list": _list,
    "describe": _describe,
    "history": _history,
    "policy": _policy,
    "materialize": _materialize,
    "versions": _versions,
    "diff": _diff,
    "sync": _sync,
    "stats": _stats,
    "monitor": _monitor,
    "serve": _serve,
    "scheduler": _scheduler,
    "schedule": _schedule,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the process exit code."""
    args = _parser().parse_args(argv)
    if args.command == "keys":
        return _keys(args)
    from fstore_spark.store import FeatureStore

    try:
        store = FeatureStore(repo_path=args.repo, config=args.config)
        return _COMMANDS[args.command](store, args)
    except FstoreError as exc:
        print(f"fstore: error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
