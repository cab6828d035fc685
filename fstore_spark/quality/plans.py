"""Monitoring plans: what to check on which view, read from YAML and validated up front.

A plan file names, per view, its baseline, its alert channels, per-column expectations and
monitor rules; :func:`load_monitoring` turns it into :class:`MonitorPlan` objects and rejects
any mistake before a single check runs.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from fstore_spark.errors import DefinitionError
from fstore_spark.quality.alerts import check_channel_names
from fstore_spark.quality.expectations import Expectation, expectations_from_spec
from fstore_spark.quality.rules import MonitorRule

__all__ = ["MonitorPlan", "load_monitoring"]

_VIEW_KEYS = {"baseline_version", "baseline_window", "channels", "expectations", "rules"}


@dataclass(frozen=True)
class MonitorPlan:
    """What to check on one view, as written in a monitoring YAML file.

    Attributes:
        view: View name.
        rules: Monitor rules (the plan's expectations become one ``expectation`` rule).
        baseline_version: Baseline Delta version, if any.
        baseline_window: Baseline ``[start, end)`` on ``feature_timestamp``, if any.
        channels: Alert channels: ``log``, ``slack``, ``email``, ``webhook`` and/or http(s)
            webhook URLs (see :mod:`fstore_spark.quality.alerts`).
    """

    view: str
    rules: tuple[MonitorRule, ...]
    baseline_version: int | None = None
    baseline_window: tuple[str, str] | None = None
    channels: tuple[str, ...] = ("log",)


def load_monitoring(source: str | Mapping[str, Any]) -> list[MonitorPlan]:
    """Read monitoring plans from a YAML file (or its parsed mapping), validated up front.

    Format::

        views:
          customer_transaction_features:
            baseline_window: ["2024-01-01", "2024-02-01"]   # or baseline_version: 3
            channels: [log, "${SLACK_WEBHOOK_URL}"]
            expectations:            # per column, see expectations_from_spec
              total_spent_30d: {min_value: 0, null_percentage: 0.05}
            rules:
              - {metric: missing_values, threshold: 0.05, severity: critical}
              - {metric: drift_psi, threshold: 0.2}

    ``${VAR}`` in channels is read from the environment (webhook URLs are secrets).

    Raises:
        DefinitionError: unknown keys, metrics or severities, bad expectations, a missing
            environment variable, an unreadable file.
    """
    data, where = _read_source(source)
    if not isinstance(data, Mapping) or set(data) - {"views"}:
        raise DefinitionError(f"{where}: expected a mapping with one key 'views'.")
    return [
        _view_plan(str(view), spec or {}, f"{where}: view {view!r}")
        for view, spec in (data.get("views") or {}).items()
    ]


def _read_source(source: str | Mapping[str, Any]) -> tuple[Any, str]:
    """The parsed plan and how to name it in errors (the file path, or ``monitoring plan``)."""
    if not isinstance(source, str):
        return source, "monitoring plan"
    import yaml

    try:
        with open(source, encoding="utf-8") as fh:
            return yaml.safe_load(fh) or {}, source
    except (OSError, yaml.YAMLError) as exc:
        raise DefinitionError(f"monitoring file {source}: {exc}") from exc


def _view_plan(view: str, spec: Mapping[str, Any], at: str) -> MonitorPlan:
    """The plan of one view from its section of the file; ``at`` names it in errors."""
    unknown = set(spec) - _VIEW_KEYS
    if unknown:
        raise DefinitionError(
            f"{at}: unknown key(s) {sorted(unknown)}; valid: {', '.join(sorted(_VIEW_KEYS))}."
        )
    rules = _rules(spec, at)
    channels = tuple(_expand_env(str(ch), at) for ch in spec.get("channels") or ["log"])
    try:
        check_channel_names(channels)
    except DefinitionError as exc:
        raise DefinitionError(f"{at}: {exc}") from None
    window = spec.get("baseline_window")
    if window is not None and (not isinstance(window, list) or len(window) != 2):
        raise DefinitionError(f"{at}: baseline_window is [start, end].")
    version = spec.get("baseline_version")
    return MonitorPlan(
        view,
        tuple(rules),
        None if version is None else int(version),
        None if window is None else (str(window[0]), str(window[1])),
        channels,
    )


def _rules(spec: Mapping[str, Any], at: str) -> list[MonitorRule]:
    """The view's monitor rules, then one ``expectation`` rule holding all its expectations."""
    rules: list[MonitorRule] = []
    for i, r in enumerate(spec.get("rules") or []):
        unknown = sorted(set(r) - _RULE_KEYS)
        if unknown:
            raise DefinitionError(f"{at} rule {i}: {_unknown_keys(unknown)}")
        try:
            rules.append(MonitorRule(**r))
        except TypeError as exc:  # a missing rule field
            raise DefinitionError(f"{at} rule {i}: {exc}") from exc
    exps: list[Expectation] = []
    for column, espec in (spec.get("expectations") or {}).items():
        exps += expectations_from_spec(column, espec or {})
    if exps:
        rules.append(MonitorRule("expectation", expectations=tuple(exps)))
    return rules


_RULE_KEYS = {f.name for f in fields(MonitorRule)}


def _unknown_keys(unknown: list[str]) -> str:
    """Which keys are unknown, the closest known ones, and every valid key."""
    hints = []
    for key in unknown:
        close = difflib.get_close_matches(key, sorted(_RULE_KEYS), n=1)
        hints.append(f"{key!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
    return f"unknown key {', '.join(hints)}. Fix: use only {', '.join(sorted(_RULE_KEYS))}."


def _expand_env(text: str, where: str) -> str:
    """Replace every ``${VAR}`` with the environment variable's value.

    Raises:
        DefinitionError: a variable is not set (a channel would silently go nowhere).
    """

    def env(m: re.Match[str]) -> str:
        value = os.environ.get(m.group(1))
        if value is None:
            raise DefinitionError(
                f"{where}: needs environment variable {m.group(1)}, which is not set."
            )
        return value

    return re.sub(r"\$\{(\w+)\}", env, text)
