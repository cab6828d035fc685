"""Durations of windows, time-to-live values and cadences: ``"30d"`` <-> ``timedelta``.

Definitions accept durations as compact strings or timedeltas and store timedeltas; they are
serialised back in the canonical string form of :func:`format_duration`, so that equal durations
always serialise (and hash) equally.
"""

from __future__ import annotations

import re
from datetime import timedelta

from fstore_spark.errors import DefinitionError

__all__ = ["format_duration", "parse_duration"]

_DURATION_RE = re.compile(r"([0-9]+)([smhdw])")
_UNIT_SECONDS = {"w": 7 * 86_400, "d": 86_400, "h": 3_600, "m": 60, "s": 1}
_DURATION_EXAMPLES = "'15m', '12h', '7d', '30d', '90d', '2w' or '90s'"


def parse_duration(value: str | timedelta) -> timedelta:
    """Parse a duration such as ``"30d"`` into a :class:`~datetime.timedelta`.

    Strings are ``<positive integer><unit>`` with unit ``s`` (seconds), ``m`` (minutes), ``h``
    (hours), ``d`` (days) or ``w`` (weeks) — no spaces, signs, decimals or compound forms.
    Timedeltas are returned unchanged if positive and a whole number of seconds (windows and
    time-to-live values are compared to timestamps at second precision).

    Args:
        value: A duration string or timedelta.

    Returns:
        A positive timedelta.

    Raises:
        DefinitionError: For ``"30x"``, ``"0d"``, ``"-5d"``, ``""``, ``"7.5d"``, ``"d"``, zero or
            negative timedeltas, sub-second parts, or other types.

    Example:
        >>> parse_duration("30d")
        datetime.timedelta(days=30)
        >>> parse_duration("15m")
        datetime.timedelta(seconds=900)
    """
    if isinstance(value, timedelta):
        if value <= timedelta(0) or value.microseconds:
            raise DefinitionError(
                f"invalid duration {value!r}: it must be positive and a whole number of seconds. "
                f"Fix: use e.g. timedelta(days=30) or a string such as {_DURATION_EXAMPLES}."
            )
        return value
    match = _DURATION_RE.fullmatch(value) if isinstance(value, str) else None
    if match is None or int(match.group(1)) == 0:
        raise DefinitionError(
            f"invalid duration {value!r}. Fix: write a positive whole number followed by one "
            f"unit of s, m, h, d or w, such as {_DURATION_EXAMPLES}."
        )
    try:
        return timedelta(seconds=int(match.group(1)) * _UNIT_SECONDS[match.group(2)])
    except OverflowError as exc:
        raise DefinitionError(
            f"invalid duration {value!r}: too large. Fix: use a duration below 999999999 days."
        ) from exc


def format_duration(value: timedelta) -> str:
    """Render a duration as its canonical, shortest string in days, hours, minutes or seconds.

    The largest of ``d``, ``h``, ``m``, ``s`` that divides the duration exactly is used. Weeks are
    accepted by :func:`parse_duration` but written in days, because windows are usually named that
    way (``"7d"``, ``"28d"``). ``parse_duration(format_duration(td)) == td`` always holds.

    Args:
        value: A positive timedelta of whole seconds.

    Returns:
        For example ``"7d"``, ``"12h"``, ``"15m"`` or ``"90s"``.

    Raises:
        DefinitionError: If the timedelta is not positive or has a sub-second part.

    Example:
        >>> format_duration(timedelta(weeks=1)), format_duration(timedelta(seconds=90))
        ('7d', '90s')
    """
    seconds = int(parse_duration(value).total_seconds())
    for unit in ("d", "h", "m"):
        if seconds % _UNIT_SECONDS[unit] == 0:
            return f"{seconds // _UNIT_SECONDS[unit]}{unit}"
    return f"{seconds}s"


def check_duration(value: object, *, owner: str, role: str) -> timedelta:
    """Parse a duration, prefixing any error with the owner and role it belongs to."""
    try:
        return parse_duration(value)  # type: ignore[arg-type]  # any object is rejected inside
    except DefinitionError as exc:
        raise DefinitionError(f"{owner}: {role}: {exc}") from exc
