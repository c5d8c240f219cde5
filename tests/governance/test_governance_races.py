"""Two approvers racing on one request, on the real MLflow registry (SQLite) and Delta: exactly one
decision is recorded, and (for an approval) applied once.

Both approvers are held after the promotion gates (the real ones) until both got there, so that
both saw the request pending and race on recording the decision itself, the guarded MERGE."""

from __future__ import annotations

import threading

import pytest
from governance_support import actor, make_project, new_model, new_version, state

from featurestore.core.errors import ConflictError
from featurestore.delta_reader import session_reader
from inference.governance import requests
from inference.governance.activity import read_activity
from inference.governance.requests import approve, get_request, request_transition
from inference.promotion import promote, read_events


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    return make_project(tmp_path_factory.mktemp("races"))


def _hold_after_gates(monkeypatch, racers: int) -> None:
    """Make the first ``racers`` gate evaluations wait for each other (later ones, the winner's promote, do not)."""
    real = requests.promotion.evaluate_gates
    barrier = threading.Barrier(racers, timeout=300)
    calls = iter(range(10_000))

    def evaluate_then_wait(*args, **kwargs):
        decision = real(*args, **kwargs)
        if next(calls) < racers:
            barrier.wait()
        return decision

    monkeypatch.setattr(requests.promotion, "evaluate_gates", evaluate_then_wait)


def _race(spark, config, request_id: str, users: list[str]) -> dict[str, object]:
    outcomes: dict[str, object] = {}

    def run(user: str) -> None:
        try:
            outcomes[user] = approve(spark, config, request_id, actor(config, user))
        except ConflictError as exc:
            outcomes[user] = exc

    threads = [threading.Thread(target=run, args=(user,)) for user in users]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


@pytest.mark.parametrize("candidate_auc,status", [(0.9, "approved"), (0.6, "refused")])
def test_two_approvers_racing_on_one_request_record_and_apply_exactly_one_decision(spark, project, monkeypatch,
                                                                                    candidate_auc, status):
    model = new_model(project)
    v1, v2 = new_version(project, model, roc_auc=0.8), new_version(project, model, roc_auc=candidate_auc)
    promote(spark, project, model, v1, "Production")
    request = request_transition(spark, project, model, v2, "Production", actor(project, "alice"))
    _hold_after_gates(monkeypatch, 2)

    outcomes = _race(spark, project, request.request_id, ["bob", "carol"])

    winners = [user for user, outcome in outcomes.items() if not isinstance(outcome, Exception)]
    assert len(winners) == 1, outcomes
    winner, loser = winners[0], ({"bob", "carol"} - set(winners)).pop()
    assert outcomes[winner].request.status == status
    assert f"is already {status} by {winner}" in str(outcomes[loser])
    stored = get_request(session_reader(spark, project), project, request.request_id)
    assert (stored.status, stored.decided_by) == (status, winner)
    decisions = [e for e in read_activity(session_reader(spark, project), project, model) if e.request_id == request.request_id
                 and e.kind in ("approved", "refused", "rejected", "cancelled", "failed")]
    assert [(e.kind, e.user) for e in decisions] == [(status, winner)]
    promotions = [(e.candidate_version, e.decision) for e in read_events(session_reader(spark, project), project, model)]
    applied = [e for e in read_activity(session_reader(spark, project), project, model, version=v2) if e.kind == "transitioned"]
    if status == "approved":
        assert sorted(promotions) == [(1, "promoted"), (2, "promoted")]  # the transition ran once
        assert [(e.to_stage, e.user) for e in applied] == [("Production", winner)]
        assert state(project, model) == ({"champion": v2}, {v1: "Archived", v2: "Production"})
    else:
        assert promotions == [(1, "promoted")]
        assert applied == []
        assert state(project, model) == ({"champion": v1}, {v1: "Production", v2: "None"})


def test_first_writes_racing_to_create_the_tables_all_land(spark, tmp_path):
    """Two promotions, and two requests, each writing the first row of a table that does not exist yet."""
    from datetime import datetime, timezone

    from inference.promotion import PromotionDecision, record_event

    config = make_project(tmp_path)
    model = new_model(config)
    versions = [new_version(config, model, roc_auc=0.8) for _ in range(2)]
    barrier = threading.Barrier(4, timeout=300)
    failures: list[BaseException] = []

    def run(write) -> None:
        barrier.wait()
        try:
            write()
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            failures.append(exc)

    def decision(version: str) -> PromotionDecision:
        return PromotionDecision(model, int(version), None, "roc_auc", 0.8, None, "promoted", "test",
                                 datetime.now(timezone.utc), "Staging")

    writes = [lambda v=v: record_event(spark, config, decision(v)) for v in versions]
    writes += [lambda v=v, s=s: request_transition(spark, config, model, v, s, actor(config, "alice"))
               for v, s in zip(versions, ("Staging", "Production"))]
    threads = [threading.Thread(target=run, args=(write,)) for write in writes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert failures == [], [str(f)[:400] for f in failures]
    assert sorted(r.candidate_version for r in read_events(session_reader(spark, config), config, model)) == [1, 2]
    assert len(requests.list_requests(session_reader(spark, config), config, model)) == 2
