"""``fstore report``: an HTML data quality report of a view's feature table."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import click

from fstore_spark.cli.app import cli, common, settings, store_of

if TYPE_CHECKING:
    from fstore_spark.quality import Expectation

__all__: list[str] = []


def _expectations(path: str | None) -> list[Expectation] | None:
    """Expectations from a YAML file mapping each column to its compact spec.

    The spec is the per-column form of monitoring plans (``min_value``, ``max_value``,
    ``null_percentage``, ``values``, ``regex``, ``unique``, ``mostly``); the file is read and
    checked here, before Spark starts.
    """
    if path is None:
        return None
    import yaml

    from fstore_spark.quality import expectations_from_spec

    with open(path, encoding="utf-8") as f:
        spec: Any = yaml.safe_load(f)
    if not isinstance(spec, dict) or not all(isinstance(v, dict) for v in spec.values()):
        raise click.BadParameter(
            "expected a mapping of column -> rules, e.g. `amount: {min_value: 0}`.",
            param_hint="--expectations",
        )
    return [e for column, rules in spec.items() for e in expectations_from_spec(column, rules)]


@cli.command()
@common
@click.argument("view")
@click.option("--baseline-version", type=int, help="Baseline Delta version (default: previous).")
@click.option("--version", "version_", type=int, help="Delta version (default: latest).")
@click.option(
    "--output",
    type=click.Path(dir_okay=False),
    help="HTML file to write (default: <config dir>/reports/<view>_v<baseline>_v<version>.html).",
)
@click.option(
    "--expectations",
    "expectations_file",
    type=click.Path(exists=True, dir_okay=False),
    help="YAML file: column -> rules (min_value, max_value, null_percentage, values, regex...).",
)
@click.pass_context
def report(
    ctx: click.Context,
    view: str,
    baseline_version: int | None,
    version_: int | None,
    output: str | None,
    expectations_file: str | None,
) -> int:
    """Write a self-contained HTML data quality report of a view and print its path.

    Statistics per feature, baseline and current distributions, drift tests (KS, chi-square,
    PSI), expectation results and recorded alerts; the latest version against the previous
    one unless versions are given.
    """
    expectations = _expectations(expectations_file)  # a broken file fails before Spark starts
    path = store_of(ctx).report(
        view,
        baseline_version=baseline_version,
        version=version_,
        path=output,
        expectations=expectations,
    )
    click.echo(json.dumps({"path": path}) if settings(ctx)["json"] else path)
    return 0
