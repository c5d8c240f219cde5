"""Notifiers: log always, webhook to a real local HTTP endpoint, failures reported not raised."""

from __future__ import annotations

import json
import logging
import socket
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from featurestore.core.errors import BadInputError, DependencyUnavailableError
from inference.monitoring.notifier import Alert, LogNotifier, WebhookNotifier, build_notifiers, deliver

ALERT = Alert("a1", "churn", 3, "b1", "auc", 0.55, ">= 0.7", 3, "auc 0.55 out of range (>= 0.7)",
              "2026-11-26T00:00:00+00:00")


@pytest.fixture
def webhook():
    received = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server's naming
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200 if "fail" not in self.path else 500)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", received
    server.shutdown()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_webhook_posts_the_alert_as_json(webhook):
    url, received = webhook
    WebhookNotifier(url + "/hook").send(ALERT)
    assert received[0]["model_name"] == "churn" and received[0]["alert_id"] == "a1"
    assert "needs retraining" in received[0]["text"]


def test_webhook_errors_are_dependency_errors(webhook):
    url, _ = webhook
    with pytest.raises(DependencyUnavailableError, match="HTTP 500"):
        WebhookNotifier(url + "/fail").send(ALERT)
    with pytest.raises(DependencyUnavailableError, match="unreachable"):
        WebhookNotifier(f"http://127.0.0.1:{_closed_port()}/x", timeout=2).send(ALERT)
    with pytest.raises(BadInputError, match="not an http"):
        WebhookNotifier("ftp://example.com/x")


def test_deliver_reports_failures_without_raising(caplog):
    notifiers = build_notifiers(f"http://127.0.0.1:{_closed_port()}/x")
    assert [n.name for n in notifiers] == ["log", "webhook"]
    with caplog.at_level(logging.WARNING):
        summary = deliver(ALERT, notifiers)
    assert summary.startswith("log: sent; webhook: failed (")
    assert any("MODEL NEEDS RETRAINING" in r.getMessage() for r in caplog.records)


def test_the_secret_in_a_webhook_path_is_neither_logged_nor_recorded(webhook, caplog):
    url, _ = webhook
    secret = "T000/B000/XXsecretTOKENxx"  # Slack-style incoming webhooks carry their secret in the path
    failing = [f"{url}/fail/{secret}", f"http://127.0.0.1:{_closed_port()}/services/{secret}"]
    with caplog.at_level(logging.ERROR):
        summaries = [deliver(ALERT, build_notifiers(u)) for u in failing]
    assert all("webhook: failed" in s and "127.0.0.1" in s for s in summaries)  # the delivery column
    assert not any(secret in s for s in summaries)
    assert caplog.records and not any(secret in r.getMessage() for r in caplog.records)
    with pytest.raises(BadInputError) as refused:
        WebhookNotifier(f"ftp://example.com/{secret}")
    assert secret not in str(refused.value)


def test_log_notifier_only_without_url():
    assert [type(n) for n in build_notifiers(None)] == [LogNotifier]
