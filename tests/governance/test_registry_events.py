"""Registry events go where governance.events routes them (per model, per event type, webhook or log);
a failing webhook blocks nothing and its secret path is never shown."""

from __future__ import annotations

import getpass
import json
import logging
import socket
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from governance_support import actor, logged_version, make_project, new_model, new_version

from featurestore.core.config import Config, load_config
from featurestore.core.errors import BadInputError
from featurestore.delta_reader import session_reader
from inference.governance.activity import read_activity
from inference.governance.changes import add_comment
from inference.governance.events import targets
from inference.governance.requests import approve, request_transition
from inference.settings import GOVERNANCE, SECTIONS, GovernanceSettings, RegistryEventRule

SECRET = "T000/B000/XyZsEcReT"


@pytest.fixture
def webhook():
    """A local endpoint: records every POST; answers 500 when the path contains 'fail'."""
    received: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server's naming
            received.append({"path": self.path, **json.loads(self.rfile.read(int(self.headers["Content-Length"])))})
            self.send_response(500 if "fail" in self.path else 200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}", received
    server.shutdown()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_rules_route_each_event_type_of_each_model():
    config = Config()
    config.sections[GOVERNANCE.name] = GovernanceSettings(events=[
        RegistryEventRule(model="churn", events=["transition_requested"], webhook_url="https://a.example/1"),
        RegistryEventRule(model="*", events=["comment_added"]),
        RegistryEventRule(model="churn", webhook_url="https://b.example/2"),
        RegistryEventRule(model="churn", events=["transition_requested"], webhook_url="https://a.example/1"),
    ])
    assert targets(config, "churn", "transition_requested") == ["https://a.example/1", "https://b.example/2"]
    assert targets(config, "churn", "comment_added") == [None, "https://b.example/2"]
    assert targets(config, "other", "comment_added") == [None]
    assert targets(config, "other", "transition_applied") == []


def test_the_configuration_is_checked_when_it_is_loaded(tmp_path):
    path = tmp_path / "featurelake.yaml"
    path.write_text("governance:\n  events:\n    - {model: churn, events: [transition_approved]}\n")
    with pytest.raises(BadInputError, match="unknown event type\\(s\\) transition_approved; use version_created"):
        load_config(path, env={}, sections=SECTIONS)
    path.write_text("governance:\n  events:\n    - {model: churn, webhook_url: hooks.example.com/x}\n")
    with pytest.raises(BadInputError, match="webhook_url is not an http\\(s\\) URL"):
        load_config(path, env={}, sections=SECTIONS)
    path.write_text("governance:\n  user: alice\n  events:\n    - {model: churn, events: [comment_added]}\n")
    config = load_config(path, env={"FEATURELAKE_GOVERNANCE_USER": "bob"}, sections=SECTIONS)
    assert GOVERNANCE.of(config).user == "bob" and GOVERNANCE.of(config).events[0].events == ["comment_added"]


def test_events_reach_their_webhook_and_a_failing_one_never_blocks_or_leaks(spark, tmp_path, webhook, caplog):
    url, received = webhook
    config = make_project(tmp_path)
    model, other = new_model(config), new_model(config)
    config.sections[GOVERNANCE.name] = GovernanceSettings(events=[
        RegistryEventRule(model=model, events=["version_created", "transition_requested", "transition_applied",
                                               "comment_added"], webhook_url=f"{url}/ok"),
        RegistryEventRule(model="*", events=["comment_added"], webhook_url=f"{url}/fail/{SECRET}"),
        RegistryEventRule(model="*", events=["transition_requested"],
                          webhook_url=f"http://127.0.0.1:{_closed_port()}/{SECRET}"),
    ])
    caplog.set_level(logging.INFO)
    v1 = logged_version(config, model)
    request = request_transition(spark, config, model, v1, "Staging", actor(config, "alice"), comment="ready")
    assert approve(spark, config, request.request_id, actor(config, "bob")).applied
    add_comment(spark, config, model, v1, "looks fine", actor(config, "carol", "comment"))
    add_comment(spark, config, other, new_version(config, other), "not routed to /ok", actor(config, "dan", "comment"))

    ok = [e for e in received if e["path"] == "/ok"]
    assert [(e["event"], e["version"], e["user"]) for e in ok] == [
        ("version_created", 1, getpass.getuser()), ("transition_requested", 1, "alice"),
        ("transition_applied", 1, "bob"), ("comment_added", 1, "carol")]
    assert ok[1]["request_id"] == ok[2]["request_id"] == request.request_id
    assert (ok[2]["from_stage"], ok[2]["to_stage"]) == ("None", "Staging")
    assert "ready" in ok[1]["text"] and "looks fine" in ok[3]["text"]
    assert [e["model_name"] for e in received if e["path"].startswith("/fail")] == [model, other]
    # the operations all went through, and were recorded
    kinds = [e.kind for e in read_activity(session_reader(spark, config), config, model)]
    assert kinds == ["created", "requested", "approved", "gates_passed", "transitioned", "alias_set", "commented"]
    # the failures were logged with the webhooks' origin only
    failures = [r.getMessage() for r in caplog.records if "not delivered to webhook" in r.getMessage()]
    assert len(failures) == 3
    assert any(f"{url}/..." in m and "HTTP 500" in m for m in failures)
    assert any("unreachable" in m for m in failures)
    assert SECRET not in caplog.text
