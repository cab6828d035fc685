"""Alerts: what a broken monitor rule produces, and their delivery to channels.

A channel is a callable taking an :class:`Alert`, ``"log"``, or an ``http(s)://`` URL such as
a Slack incoming webhook. Delivery never raises for a failing channel: its error is logged and
returned, and the other channels still receive every alert.
"""

from __future__ import annotations

import json
import logging
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from fstore_spark.errors import DefinitionError

__all__ = ["Alert", "AlertChannel", "send_alerts"]

_log = logging.getLogger("fstore_spark.quality")


@dataclass(frozen=True)
class Alert:
    """A broken monitor rule.

    Attributes:
        metric: The rule's metric.
        severity: ``warning`` or ``critical``.
        value: The measured value.
        threshold: The rule's threshold.
        message: A sentence saying what broke, where, and by how much.
        column: The column, for per-column metrics.
        subject: What was checked (e.g. ``view 'spend' version 7``).
    """

    metric: str
    severity: str
    value: float
    threshold: float
    message: str
    column: str | None = None
    subject: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly dict."""
        return asdict(self)


AlertChannel = Callable[[Alert], None] | str


def send_alerts(
    alerts: Sequence[Alert], channels: Sequence[AlertChannel], *, timeout: float = 5.0
) -> list[str]:
    """Deliver alerts to every channel; return the delivery errors (never raises for them).

    Channels: a callable taking an :class:`Alert`; ``"log"`` (a WARNING, or ERROR for
    critical alerts, on the ``fstore_spark.quality`` logger); an ``http(s)://`` URL that
    receives each alert as a JSON POST with a ``text`` field (the message), which a Slack
    incoming webhook displays. ``timeout`` bounds each POST, in seconds.

    A failing channel does not stop the others; its error is returned (and logged), so an
    alert is never lost silently.

    Raises:
        DefinitionError: a channel is none of the above (a mistake in the plan, not an outage).
    """
    errors: list[str] = []
    for ch in channels:
        for a in alerts:
            error = _deliver(ch, a, timeout)
            if error is not None:
                errors.append(error)
    return errors


def _deliver(channel: AlertChannel, alert: Alert, timeout: float) -> str | None:
    """Send one alert to one channel; the channel's error message if it failed, else None."""
    try:
        _send(channel, alert, timeout)
    except DefinitionError:
        raise
    except Exception as exc:  # a channel's failure must not hide the other channels
        label = channel if isinstance(channel, str) else getattr(channel, "__name__", repr(channel))
        msg = f"alert channel {label}: {exc}"
        _log.error(msg)
        return msg
    return None


def _send(channel: AlertChannel, alert: Alert, timeout: float) -> None:
    """Send one alert to one channel, raising whatever the channel raises."""
    if callable(channel):
        channel(alert)
    elif channel == "log":
        level = logging.ERROR if alert.severity == "critical" else logging.WARNING
        _log.log(level, "%s alert: %s", alert.severity, alert.message)
    elif channel.startswith(("http://", "https://")):
        _post(channel, alert, timeout)
    else:
        raise DefinitionError(
            f"unknown alert channel {channel!r}: use a callable, 'log' or an http(s) URL."
        )


def _post(url: str, alert: Alert, timeout: float) -> None:
    """POST the alert as JSON, its message in ``text`` (the field a Slack webhook shows)."""
    body = json.dumps({"text": alert.message, **alert.to_dict()}).encode()
    req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310
        resp.read()
