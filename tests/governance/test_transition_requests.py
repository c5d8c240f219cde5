"""Transition requests on the real MLflow registry (SQLite) and Delta: request -> approve applies the
transition as promote does; reject, cancel and refusals leave the registry alone and are recorded."""

from __future__ import annotations

import pytest
from governance_support import actor, make_project, new_model, new_version, state

from featurestore.core.errors import BadInputError, ConflictError, NotFoundError
from featurestore.delta_reader import session_reader
from inference.governance.activity import read_activity
from inference.governance.requests import approve, cancel, get_request, list_requests, reject, request_transition
from inference.promotion import promote, read_events, transition


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    return make_project(tmp_path_factory.mktemp("requests"))


@pytest.fixture
def model(project):
    return new_model(project)


def _log(spark, config, model, since: int = 0) -> list[tuple]:
    """(version, kind, user) of the activity log, leaving out the registry's 'created' entries."""
    return [(e.version, e.kind, e.user) for e in read_activity(session_reader(spark, config), config, model) if e.kind != "created"][since:]


def _events(spark, config, model) -> list[tuple]:
    return [(e.candidate_version, e.stage, e.decision) for e in reversed(read_events(session_reader(spark, config), config, model))]


def test_request_then_approve_moves_the_version_as_promote_does(spark, project, model):
    v1, v2 = new_version(project, model, roc_auc=0.7), new_version(project, model, roc_auc=0.8)
    promote(spark, project, model, v1, "Production", actor=actor(project, "ops", "promote"))
    before = len(_log(spark, project, model))

    request = request_transition(spark, project, model, v2, "Production", actor(project, "alice"), comment="better AUC")
    assert (request.pending, request.from_stage, request.to_stage, request.incumbent_version) == (
        True, "None", "Production", 1)
    assert [r.request_id for r in list_requests(session_reader(spark, project), project, model, pending_only=True)] == [request.request_id]
    assert state(project, model) == ({"champion": v1}, {v1: "Production", v2: "None"})  # a request changes nothing

    decision = approve(spark, project, request.request_id, actor(project, "bob"), comment="ship it")

    assert decision.applied and decision.promotion.promoted
    assert state(project, model) == ({"champion": v2}, {v1: "Archived", v2: "Production"})
    stored = get_request(session_reader(spark, project), project, request.request_id)
    assert (stored.status, stored.requested_by, stored.decided_by, stored.decision_comment) == (
        "approved", "alice", "bob", "ship it")
    assert "beats Production version 1" in stored.reason
    assert list_requests(session_reader(spark, project), project, model, pending_only=True) == []
    assert _events(spark, project, model) == [(1, "Production", "promoted"), (2, "Production", "promoted")]
    assert _log(spark, project, model, before) == [
        (2, "requested", "alice"), (2, "approved", "bob"), (2, "gates_passed", None), (1, "transitioned", "bob"),
        (2, "transitioned", "bob"), (2, "alias_set", "bob")]
    applied = [e for e in read_activity(session_reader(spark, project), project, model, version=2) if e.kind == "transitioned"]
    assert [(e.from_stage, e.to_stage, e.source, e.request_id) for e in applied] == [
        ("None", "Production", "request", request.request_id)]


def test_reject_leaves_the_registry_alone_and_decides_the_request_once(spark, project, model):
    v1 = new_version(project, model, roc_auc=0.8)
    request = request_transition(spark, project, model, v1, "Staging", actor(project, "alice"))

    decision = reject(spark, project, request.request_id, actor(project, "bob"), comment="wait for the May data")

    assert not decision.applied and decision.request.status == "rejected"
    assert state(project, model) == ({}, {v1: "None"})
    with pytest.raises(ConflictError, match=f"request {request.request_id} is already rejected by bob"):
        approve(spark, project, request.request_id, actor(project, "carol"))
    assert state(project, model) == ({}, {v1: "None"})
    assert get_request(session_reader(spark, project), project, request.request_id).decided_by == "bob"
    assert _log(spark, project, model) == [(1, "requested", "alice"), (1, "rejected", "bob")]
    assert "wait for the May data" in read_activity(session_reader(spark, project), project, model)[-1].text


def test_only_the_requester_can_cancel(spark, project, model):
    v1 = new_version(project, model, roc_auc=0.8)
    request = request_transition(spark, project, model, v1, "Production", actor(project, "alice"))
    with pytest.raises(ConflictError, match="made by alice: only they can cancel it, not bob"):
        cancel(spark, project, request.request_id, actor(project, "bob"))
    assert get_request(session_reader(spark, project), project, request.request_id).pending

    assert cancel(spark, project, request.request_id, actor(project, "alice")).request.status == "cancelled"
    assert get_request(session_reader(spark, project), project, request.request_id).status == "cancelled"
    assert state(project, model) == ({}, {v1: "None"})


def test_approving_a_candidate_that_fails_the_gates_is_refused_and_recorded(spark, project, model):
    v1, v2 = new_version(project, model, roc_auc=0.8), new_version(project, model, roc_auc=0.7)
    promote(spark, project, model, v1, "Production")
    request = request_transition(spark, project, model, v2, "Production", actor(project, "alice"))

    decision = approve(spark, project, request.request_id, actor(project, "bob"))

    assert decision.request.status == "refused" and not decision.applied
    assert "does not beat Production version 1" in decision.request.reason
    assert get_request(session_reader(spark, project), project, request.request_id).status == "refused"
    assert state(project, model) == ({"champion": v1}, {v1: "Production", v2: "None"})
    assert _events(spark, project, model) == [(1, "Production", "promoted")]  # no promotion was attempted
    assert _log(spark, project, model)[-1] == (2, "refused", "bob")


def test_a_request_for_a_version_that_moved_meanwhile_is_refused(spark, project, model):
    v1 = new_version(project, model, roc_auc=0.8)
    request = request_transition(spark, project, model, v1, "Production", actor(project, "alice"))
    transition(project, model, v1, "Archived")

    decision = approve(spark, project, request.request_id, actor(project, "bob"))

    assert decision.request.status == "refused"
    assert decision.request.reason == "version 1 moved from None to Archived since the request"
    assert state(project, model) == ({}, {v1: "Archived"})


def test_approval_after_another_version_was_promoted_is_refused_and_the_registry_unchanged(spark, project, model):
    v1, v2, v3 = (new_version(project, model, roc_auc=auc) for auc in (0.7, 0.8, 0.9))
    promote(spark, project, model, v1, "Production")
    request = request_transition(spark, project, model, v2, "Production", actor(project, "alice"))
    promote(spark, project, model, v3, "Production")  # meanwhile, through the gates
    before = state(project, model)
    events_before = _events(spark, project, model)

    decision = approve(spark, project, request.request_id, actor(project, "bob"))

    assert decision.request.status == "refused" and decision.promotion is None
    assert decision.request.reason == ("Production changed since the request: version 3 is there now, "
                                       "version 1 was then")
    assert get_request(session_reader(spark, project), project, request.request_id).status == "refused"
    assert state(project, model) == before == ({"champion": v3}, {v1: "Archived", v2: "None", v3: "Production"})
    assert _events(spark, project, model) == events_before
    assert _log(spark, project, model)[-1] == (2, "refused", "bob")


def test_requests_are_checked_before_anything_is_written(spark, project, model):
    v1 = new_version(project, model, roc_auc=0.8)
    with pytest.raises(NotFoundError, match=f"model '{model}' has no version 9"):
        request_transition(spark, project, model, 9, "Production", actor(project, "alice"))
    with pytest.raises(BadInputError, match="Staging or Production, not 'Archived'"):
        request_transition(spark, project, model, v1, "Archived", actor(project, "alice"))
    with pytest.raises(NotFoundError, match="'nope'"):
        request_transition(spark, project, "nope", v1, "Production", actor(project, "alice"))
    assert list_requests(session_reader(spark, project), project, model) == []
    first = request_transition(spark, project, model, v1, "Production", actor(project, "alice"))
    with pytest.raises(ConflictError, match=f"request {first.request_id} for Production by alice is already pending"):
        request_transition(spark, project, model, v1, "Production", actor(project, "bob"))
    promote(spark, project, model, v1, "Production")
    with pytest.raises(ConflictError, match="already in Production"):
        request_transition(spark, project, model, v1, "Production", actor(project, "alice"))
    with pytest.raises(ConflictError, match="a request does not demote it"):
        request_transition(spark, project, model, v1, "Staging", actor(project, "alice"))
    with pytest.raises(BadInputError, match="12 hex characters"):
        approve(spark, project, "1; DROP TABLE", actor(project, "bob"))
    with pytest.raises(NotFoundError, match="transition request 0123456789ab does not exist"):
        approve(spark, project, "0123456789ab", actor(project, "bob"))
    assert len(list_requests(session_reader(spark, project), project, model)) == 1
