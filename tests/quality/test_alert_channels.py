"""Alert channels by name, delivered to real local receivers (an HTTP server, an SMTP server).

No Spark: the channels are resolved and fed alerts directly; the monitor that produces alerts
from a feature table is tested with them in ``test_quality.py``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from fstore_spark import FeatureStore, FeatureStoreConfig
from fstore_spark.config import AlertsConfig
from fstore_spark.errors import ConfigError, DefinitionError
from fstore_spark.quality import Alert, MonitorRule, load_monitoring, resolve_channels, send_alerts
from fstore_spark.quality.alerts import slack_message

ALERT = Alert(
    metric="missing_values",
    severity="critical",
    value=0.1,
    threshold=0.05,
    message="view 'profile' version 3: income missing_values 0.1 is above the threshold 0.05",
    column="income",
    subject="view 'profile' version 3",
)


def test_slack_gets_its_message_format(webhook_receiver, monkeypatch) -> None:
    url = f"{webhook_receiver.url}/services/T000/B000/secret-token"
    settings = AlertsConfig(slack={"webhook_url": url})
    assert send_alerts([ALERT], resolve_channels(["slack"], settings)) == []
    [got] = webhook_receiver.received
    assert got["path"] == "/services/T000/B000/secret-token"
    assert got["content_type"] == "application/json"
    body = got["body"]
    assert body == slack_message(ALERT)
    assert ALERT.message in body["text"] and body["text"].startswith(":rotating_light:")
    header, message, fields = body["blocks"]
    assert header == {
        "type": "header",
        "text": {"type": "plain_text", "text": "fstore critical: missing_values on income"},
    }
    assert message["type"] == "section" and ALERT.message in message["text"]["text"]
    assert message["text"]["type"] == "mrkdwn"
    texts = [f["text"] for f in fields["fields"]]
    assert "*Value*\n0.1" in texts and "*Threshold*\n0.05" in texts

    # the URL may come from the environment instead; it never shows in the config's repr
    monkeypatch.setenv("SLACK_WEBHOOK_URL", url)
    assert send_alerts([ALERT], ["slack"]) == []
    assert len(webhook_receiver.received) == 2
    assert "secret-token" not in repr(settings) and "secret-token" not in str(settings)


def test_email_reaches_an_smtp_server(smtp_receiver, monkeypatch) -> None:
    settings = AlertsConfig(
        email={
            "host": smtp_receiver.host,
            "port": smtp_receiver.port,
            "sender": "fstore@example.com",
            "recipients": ["oncall@example.com", "ml@example.com"],
        }
    )
    assert send_alerts([ALERT, ALERT], resolve_channels(["email"], settings)) == []
    assert len(smtp_receiver.messages) == 2
    mail = smtp_receiver.messages[0]
    assert mail["from"] == "fstore@example.com"
    assert mail["to"] == ["oncall@example.com", "ml@example.com"]
    assert mail["subject"] == "[fstore critical] missing_values: view 'profile' version 3"
    assert mail["body"].startswith(ALERT.message)
    assert '"threshold": 0.05' in mail["body"]

    # a password named by a variable that is not set fails when the channel is resolved
    missing = AlertsConfig(email={**settings.email.model_dump(), "password_env": "NO_SUCH_VAR"})
    with pytest.raises(ConfigError, match="NO_SUCH_VAR"):
        resolve_channels(["email"], missing)


def test_channels_are_checked_where_they_are_defined(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("SLACK_WEBHOOK_URL", raising=False)
    monkeypatch.delenv("FSTORE_ALERT_WEBHOOK_URL", raising=False)
    with pytest.raises(DefinitionError, match="unknown alert channel 'slak'"):
        resolve_channels(["log", "slak"])
    with pytest.raises(DefinitionError, match="alerts.slack.webhook_url"):
        resolve_channels(["slack"])
    with pytest.raises(DefinitionError, match="alerts.email.host"):
        resolve_channels(["email"])
    with pytest.raises(DefinitionError, match="FSTORE_ALERT_WEBHOOK_URL"):
        resolve_channels(["webhook"])
    plan = {"views": {"profile": {"channels": ["log", "pager"], "rules": []}}}
    with pytest.raises(DefinitionError, match="unknown alert channel 'pager'"):
        load_monitoring(plan)
    # a store rejects an unconfigured channel before it starts any Spark work
    store = FeatureStore(config=FeatureStoreConfig.for_local(tmp_path, project="a"))
    with pytest.raises(DefinitionError, match="'slack' has no URL"):
        store.monitor("profile", [MonitorRule("row_count", 1)], channels=["slack"])
    assert store._ctx._spark is None


def test_a_failing_channel_does_not_stop_the_others(webhook_receiver) -> None:
    seen: list[Alert] = []
    settings = AlertsConfig(
        slack={"webhook_url": "http://127.0.0.1:9/services/secret-token"},
        webhook_url=f"{webhook_receiver.url}/hook",
    )
    errors = send_alerts([ALERT], resolve_channels(["slack", seen.append, "webhook"], settings))
    assert len(errors) == 1 and errors[0].startswith("alert channel slack: URLError")
    assert "secret-token" not in errors[0]
    assert seen == [ALERT]
    [got] = webhook_receiver.received
    assert got["path"] == "/hook" and got["body"]["text"] == ALERT.message
    assert got["body"]["metric"] == "missing_values"
