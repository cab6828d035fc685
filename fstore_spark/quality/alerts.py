"""Alerts: what a broken monitor rule produces, and their delivery to channels.

Channels, by name or by value:

* ``"log"``: a WARNING (ERROR when critical) on the ``fstore_spark.quality`` logger;
* ``"slack"``: a Slack incoming webhook (``alerts.slack.webhook_url``, else
  ``$SLACK_WEBHOOK_URL``), in Slack's message format (``text`` and Block Kit ``blocks``);
* ``"email"``: one email per alert through the SMTP server of ``alerts.email``;
* ``"webhook"``: a JSON POST to ``alerts.webhook_url`` (else ``$FSTORE_ALERT_WEBHOOK_URL``);
* an ``http(s)://`` URL: the same JSON POST to that URL;
* a callable taking an :class:`Alert`.

:func:`resolve_channels` checks channels where rules are defined: an unknown name, or a named
channel whose settings are missing, fails there with the fix, before anything is computed, not
when an alert fires. Delivery never raises for a failing channel: its error is logged and
returned, and the other channels still receive every alert.
"""

from __future__ import annotations

import json
import logging
import smtplib
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from email.message import EmailMessage
from functools import partial
from typing import Any
from urllib.parse import urlsplit

from fstore_spark.config import AlertsConfig, EmailAlertsConfig
from fstore_spark.errors import DefinitionError

__all__ = [
    "CHANNEL_NAMES",
    "Alert",
    "AlertChannel",
    "Channel",
    "check_channel_names",
    "resolve_channels",
    "send_alerts",
    "slack_message",
]

_log = logging.getLogger("fstore_spark.quality")

CHANNEL_NAMES = ("log", "slack", "email", "webhook")


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


@dataclass(frozen=True)
class Channel:
    """A resolved alert channel: a label for messages (never a secret) and its sender."""

    name: str
    send: Callable[[Alert], None]


def check_channel_names(channels: Sequence[AlertChannel | Channel]) -> None:
    """Reject channels that are neither a known name, an http(s) URL nor a callable.

    Raises:
        DefinitionError: the first unknown channel, with the accepted ones.
    """
    for ch in channels:
        if isinstance(ch, Channel) or callable(ch):
            continue
        if ch not in CHANNEL_NAMES and not str(ch).startswith(("http://", "https://")):
            raise DefinitionError(
                f"unknown alert channel {ch!r}: use one of {', '.join(CHANNEL_NAMES)}, an "
                "http(s) webhook URL, or a callable taking an Alert."
            )


def resolve_channels(
    channels: Sequence[AlertChannel | Channel],
    settings: AlertsConfig | None = None,
    *,
    timeout: float = 5.0,
) -> list[Channel]:
    """The channels as senders, their settings checked now (not when an alert fires).

    ``settings``: the config's ``alerts`` section (default: the environment variables only).
    ``timeout`` bounds each HTTP POST, in seconds (SMTP uses ``alerts.email.timeout_s``).

    Raises:
        DefinitionError: an unknown channel, or a named one whose settings are missing.
        ConfigError: the SMTP password's environment variable is not set.
    """
    check_channel_names(channels)
    settings = settings or AlertsConfig()
    return [_resolve(ch, settings, timeout) for ch in channels]


def _resolve(ch: AlertChannel | Channel, settings: AlertsConfig, timeout: float) -> Channel:
    """One channel as a sender (its name already checked)."""
    if isinstance(ch, Channel):
        return ch
    if callable(ch):
        return Channel(getattr(ch, "__name__", repr(ch)), ch)
    if ch == "log":
        return Channel("log", _log_alert)
    if ch == "email":
        return Channel("email", partial(_send_email, _checked_email(settings.email)))
    if ch == "slack":
        url = _required(
            settings.slack.url(), "slack", "alerts.slack.webhook_url", "SLACK_WEBHOOK_URL"
        )
        return Channel("slack", partial(_post, url, slack_message, timeout))
    if ch == "webhook":
        url = _required(
            settings.webhook(), "webhook", "alerts.webhook_url", "FSTORE_ALERT_WEBHOOK_URL"
        )
        return Channel("webhook", partial(_post, url, _json_message, timeout))
    parts = urlsplit(ch)  # a webhook URL: its path may hold a token, so only its host is shown
    return Channel(f"{parts.scheme}://{parts.hostname}", partial(_post, ch, _json_message, timeout))


def _required(url: str | None, name: str, key: str, env: str) -> str:
    """A named channel's URL, or the error that says where to set it."""
    if not url:
        raise DefinitionError(
            f"alert channel {name!r} has no URL. Fix: set {key} in the config (e.g. "
            f'"${{{env}}}") or export {env}.'
        )
    return url


def _checked_email(email: EmailAlertsConfig) -> EmailAlertsConfig:
    """The SMTP settings, when complete enough to send (the password variable must be set)."""
    if not email.host or not email.recipients:
        raise DefinitionError(
            "alert channel 'email' needs an SMTP server and recipients. Fix: set "
            "alerts.email.host and alerts.email.recipients in the config."
        )
    email.password()  # raises now when its variable is missing
    return email


def send_alerts(
    alerts: Sequence[Alert],
    channels: Sequence[AlertChannel | Channel],
    *,
    timeout: float = 5.0,
) -> list[str]:
    """Deliver alerts to every channel; return the delivery errors (never raises for them).

    Channels are resolved first (:func:`resolve_channels` with the environment's settings,
    unless they already are). A failing channel does not stop the others; its error is
    returned (and logged), so an alert is never lost silently.

    Raises:
        DefinitionError: an unknown channel (a mistake in the plan, not an outage).
    """
    senders = resolve_channels(channels, timeout=timeout)
    errors: list[str] = []
    for ch in senders:
        for a in alerts:
            error = _deliver(ch, a)
            if error is not None:
                errors.append(error)
    return errors


def _deliver(channel: Channel, alert: Alert) -> str | None:
    """Send one alert to one channel; the channel's error message if it failed, else None."""
    try:
        channel.send(alert)
    except Exception as exc:  # a channel's failure must not hide the other channels
        msg = f"alert channel {channel.name}: {type(exc).__name__}: {exc}"
        _log.error(msg)
        return msg
    return None


def _log_alert(alert: Alert) -> None:
    level = logging.ERROR if alert.severity == "critical" else logging.WARNING
    _log.log(level, "%s alert: %s", alert.severity, alert.message)


def _json_message(alert: Alert) -> dict[str, Any]:
    """A webhook's JSON: the alert's fields, its message also in ``text``."""
    return {"text": alert.message, **alert.to_dict()}


def slack_message(alert: Alert) -> dict[str, Any]:
    """The alert in Slack's incoming-webhook format: ``text`` (notifications) and ``blocks``."""
    icon = ":rotating_light:" if alert.severity == "critical" else ":warning:"
    on = f" on {alert.column}" if alert.column else ""
    title = f"fstore {alert.severity}: {alert.metric}{on}"
    fields = [
        f"*Subject*\n{alert.subject or '-'}",
        f"*Severity*\n{alert.severity}",
        f"*Value*\n{alert.value:.6g}",
        f"*Threshold*\n{alert.threshold:.6g}",
    ]
    return {
        "text": f"{icon} {title}: {alert.message}",
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": title[:150]}},
            {"type": "section", "text": {"type": "mrkdwn", "text": f"{icon} {alert.message}"}},
            {"type": "section", "fields": [{"type": "mrkdwn", "text": f} for f in fields]},
        ],
    }


def _post(url: str, body: Callable[[Alert], dict[str, Any]], timeout: float, alert: Alert) -> None:
    """POST one alert as JSON (``body`` builds it)."""
    data = json.dumps(body(alert)).encode()
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310
        resp.read()


def _send_email(email: EmailAlertsConfig, alert: Alert) -> None:
    """Send one alert as a plain-text email through the configured SMTP server."""
    msg = EmailMessage()
    msg["Subject"] = f"[fstore {alert.severity}] {alert.metric}: {alert.subject or alert.message}"
    msg["From"] = email.sender
    msg["To"] = ", ".join(email.recipients)
    msg.set_content(f"{alert.message}\n\n{json.dumps(alert.to_dict(), indent=2)}\n")
    assert email.host is not None  # checked when the channel was resolved
    smtp = smtplib.SMTP_SSL if email.ssl else smtplib.SMTP
    with smtp(email.host, email.port, timeout=email.timeout_s) as server:
        if email.starttls:
            server.starttls()
        if email.username:
            server.login(email.username, email.password() or "")
        server.send_message(msg)
