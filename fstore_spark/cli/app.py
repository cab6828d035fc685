"""The ``fstore`` group: options given anywhere, one-line errors, the store built on demand.

Every command takes ``--config``, ``--repo``, ``--json`` and ``--debug`` before or after its
name (``fstore --config c.yaml plan`` and ``fstore plan --config c.yaml`` are the same). Input
is checked before Spark starts: a bad date or a broken monitoring file fails in well under a
second. A feature store error prints one line, ``fstore: error: <Type>: <message with the
fix>``, and exits 1; bad usage exits 2; ``--debug`` adds the traceback.
"""

from __future__ import annotations

import logging
import re
import sys
import traceback
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

import click

from fstore_spark._version import __version__
from fstore_spark.errors import FstoreError

if TYPE_CHECKING:
    from fstore_spark.store import FeatureStore

__all__ = ["Instant", "cli", "common", "main", "settings", "store_of"]

_F = TypeVar("_F", bound=Callable[..., Any])
_SETTINGS = "fstore.settings"
_DEBUG = {"on": False}


def settings(ctx: click.Context) -> dict[str, Any]:
    """The common options of this invocation, from the group and the command together."""
    root = ctx.find_root()
    found: dict[str, Any] = root.meta.setdefault(
        _SETTINGS, {"config": None, "repo": None, "json": False, "debug": False}
    )
    return found


def _remember(name: str) -> Callable[[click.Context, click.Parameter, Any], None]:
    def callback(ctx: click.Context, _: click.Parameter, value: Any) -> None:
        if value not in (None, False):
            settings(ctx)[name] = value
            if name == "debug":
                _DEBUG["on"] = True

    return callback


def common(f: _F) -> _F:
    """Add ``--config``, ``--repo``, ``--json`` and ``--debug`` to a command (or the group)."""
    options = [
        click.option(
            "--config",
            type=click.Path(dir_okay=False),
            expose_value=False,
            callback=_remember("config"),
            help="Config file (default $FSTORE_CONFIG or conf/feature_store.yaml).",
        ),
        click.option(
            "--repo",
            type=click.Path(file_okay=False),
            expose_value=False,
            callback=_remember("repo"),
            help="Feature repo folder (overrides repo_path of the config).",
        ),
        click.option(
            "--json",
            "as_json",
            is_flag=True,
            expose_value=False,
            callback=_remember("json"),
            help="Machine-readable JSON output.",
        ),
        click.option(
            "--debug",
            is_flag=True,
            expose_value=False,
            callback=_remember("debug"),
            help="Show the traceback of an error.",
        ),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def store_of(ctx: click.Context) -> FeatureStore:
    """The feature store of this invocation (built once; Spark starts when first needed)."""
    root = ctx.find_root()
    if "fstore.store" not in root.meta:
        from fstore_spark.store import FeatureStore

        opts = settings(ctx)
        root.meta["fstore.store"] = FeatureStore(repo_path=opts["repo"], config=opts["config"])
    store: FeatureStore = root.meta["fstore.store"]
    return store


class Instant(click.ParamType):  # type: ignore[type-arg]
    """An ISO 8601 date or date-time, UTC unless it says otherwise."""

    name = "ISO-8601"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        """Parse ``value``, or fail naming the option and the expected form."""
        if isinstance(value, datetime):
            return value
        text = str(value).strip()
        try:
            when = datetime.fromisoformat(re.sub(r"Z$", "+00:00", text))
        except ValueError:
            self.fail(
                f"{text!r} is not an ISO 8601 date or time (e.g. 2024-01-31 or "
                "2024-01-31T12:00:00Z).",
                param,
                ctx,
            )
        return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", "-V", prog_name="fstore")
@common
def cli() -> None:
    """fstore_spark: a Spark + Delta Lake feature store.

    Options --config, --repo, --json and --debug may come before or after the command.
    """


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code (0 ok, 1 feature store error, 2 bad usage)."""
    from fstore_spark.cli import commands  # noqa: F401 - registers the commands

    _DEBUG["on"] = "--debug" in (sys.argv[1:] if argv is None else argv)
    _show_progress()
    try:
        result = cli.main(
            args=list(argv) if argv is not None else None, prog_name="fstore", standalone_mode=False
        )
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except click.UsageError as exc:
        _fail(f"fstore: error: {exc.format_message()}")
        return 2
    except click.ClickException as exc:
        _fail(f"fstore: error: {exc.format_message()}")
        return exc.exit_code
    except click.Abort:
        _fail("fstore: aborted")
        return 130
    except FstoreError as exc:
        _fail(f"fstore: error: {type(exc).__name__}: {exc}")
        return 1
    except KeyboardInterrupt:
        return 130
    return result if isinstance(result, int) else 0


class _Stderr(logging.StreamHandler):  # type: ignore[type-arg]
    """A handler writing to whatever ``sys.stderr`` is when a record is emitted."""

    @property  # type: ignore[override]
    def stream(self) -> Any:
        """The current standard error."""
        return sys.stderr

    @stream.setter
    def stream(self, _: Any) -> None:
        pass


def _show_progress() -> None:
    """Print the library's INFO log (steps, counts, seconds) on stderr as ``fstore: ...``."""
    logger = logging.getLogger("fstore_spark")
    if any(getattr(h, "_fstore_cli", False) for h in logger.handlers):
        return
    handler = _Stderr()
    handler.setFormatter(logging.Formatter("fstore: %(message)s"))
    handler._fstore_cli = True  # type: ignore[attr-defined]
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)


def _fail(message: str) -> None:
    if _DEBUG["on"]:
        traceback.print_exc()
    click.echo(message, err=True)
