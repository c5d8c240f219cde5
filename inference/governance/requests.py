"""Transition requests: one person asks for a version to move to Staging or Production, another
approves (the promotion gates and alias rules of ``promote`` then apply), rejects, or the
requester cancels.

    req = request_transition(spark, config, "churn_model", 2, "Production", Actor.of(config, "request"),
                             comment="beats v1 on the May cohort")
    approve(spark, config, req.request_id, Actor.of(config, "request", user="bob"))

Rules:

* a request records the version's stage and the version in the target stage when it is made;
  if either changed by the time someone approves (the version moved, or another version was
  promoted meanwhile), the approval is refused and recorded, and the registry is left alone;
* an approval runs the promotion gates first; a candidate that fails them is refused and
  recorded (status ``refused``, the gates' reason), the registry unchanged;
* a request is decided once: the decision is one guarded MERGE on its row
  (:func:`inference.governance.tables.update_if`), so of two approvers racing on one request
  exactly one decision is recorded and applied; the other gets :class:`ConflictError`;
* only the requester can cancel (the user as recorded: attribution, not security).
"""

from __future__ import annotations

import logging
import re
import uuid
from dataclasses import asdict, dataclass
from datetime import datetime, timezone

from pyspark.sql import SparkSession

from featurestore.core.config import Config
from featurestore.core.errors import BadInputError, ConflictError, NotFoundError
from featurestore.delta_reader import DeltaReader, session_reader
from inference import promotion, registry
from inference.governance import events, tables
from inference.governance.changes import MAX_COMMENT_LENGTH, Actor
from inference.governance.tables import PENDING, TransitionRequest
from inference.stages import check_stage

logger = logging.getLogger(__name__)

REQUESTABLE_STAGES = ("Staging", "Production")
_REQUEST_ID = re.compile(r"^[0-9a-f]{12}$")


@dataclass(frozen=True)
class Decision:
    """What deciding a request did: the request as recorded, and the promotion it ran (approvals only)."""

    request: TransitionRequest
    promotion: promotion.PromotionDecision | None = None

    @property
    def applied(self) -> bool:
        """True when the requested transition was made."""
        return self.request.status == "approved"


def _check_comment(comment: str | None) -> str | None:
    if comment is not None and len(comment) > MAX_COMMENT_LENGTH:
        raise BadInputError(f"comment of {len(comment)} characters: at most {MAX_COMMENT_LENGTH}")
    return comment or None


def _incumbent(config: Config, name: str, stage: str) -> int | None:
    """The version in ``stage`` (the newest, should a race have left two), or None."""
    versions = registry.versions_in_stage(config, name, stage)
    return int(versions[0].version) if versions else None


def request_transition(spark: SparkSession, config: Config, name: str, version: int | str, stage: str, actor: Actor,
                       comment: str | None = None) -> TransitionRequest:
    """Ask for version ``version`` of ``name`` to move to ``stage``; record it and send ``transition_requested``.

    Raises:
        NotFoundError: the model or version does not exist.
        BadInputError: the stage is not Staging or Production, or the comment is too long.
        ConflictError: the version is already in ``stage``, is in Production (a request does not
            demote), or a request for the same move is pending.
    """
    stage = check_stage(stage)
    if stage not in REQUESTABLE_STAGES:
        raise BadInputError(f"a transition request asks for Staging or Production, not {stage!r}")
    comment = _check_comment(comment)
    mv = registry.get_version(config, name, version)
    current = mv.current_stage or "None"
    if current == stage:
        raise ConflictError(f"model {name!r} version {mv.version} is already in {stage}")
    if current == "Production":
        raise ConflictError(f"model {name!r} version {mv.version} is in Production: a request does not demote it; "
                            "use 'featurelake models transition'")
    for other in list_requests(session_reader(spark, config), config, name, pending_only=True):
        if other.version == int(mv.version) and other.to_stage == stage:
            raise ConflictError(f"model {name!r} version {mv.version}: request {other.request_id} for {stage} by "
                                f"{other.requested_by} is already pending")
    request = TransitionRequest(
        request_id=uuid.uuid4().hex[:12], model_name=name, version=int(mv.version), from_stage=current,
        to_stage=stage, incumbent_version=_incumbent(config, name, stage), requested_by=actor.user,
        requested_at=datetime.now(timezone.utc), comment=comment, status=PENDING,
    )
    tables.append(spark, config, tables.MODEL_REQUESTS, [asdict(request)])
    logger.info("request %s: %s asks for model %s version %s: %s -> %s", request.request_id, actor.user, name,
                mv.version, current, stage)
    events.notify(config, events.RegistryEvent.now(
        events.TRANSITION_REQUESTED, name, mv.version, actor.user,
        f"{actor.user} requests model {name} version {mv.version}: {current} -> {stage} "
        f"(request {request.request_id}){': ' + comment if comment else ''}",
        from_stage=current, to_stage=stage, request_id=request.request_id))
    return request


def get_request(reader: DeltaReader, config: Config, request_id: str) -> TransitionRequest:
    """Return request ``request_id``.

    Raises:
        BadInputError: not a request id (12 hex characters).
        NotFoundError: no such request.
    """
    if not isinstance(request_id, str) or not _REQUEST_ID.match(request_id):
        raise BadInputError(f"invalid request id {request_id!r}: a request id is 12 hex characters")
    rows = tables.read(reader, config, tables.MODEL_REQUESTS.name, request_id=request_id)
    if not rows:
        raise NotFoundError(f"transition request {request_id} does not exist")
    return TransitionRequest.from_row(rows[0])


def list_requests(reader: DeltaReader, config: Config, name: str | None = None,
                  pending_only: bool = False) -> list[TransitionRequest]:
    """The requests (of model ``name``; only pending ones with ``pending_only``), newest first."""
    equal = {"model_name": name} if name is not None else {}
    if pending_only:
        equal["status"] = PENDING
    requests = [TransitionRequest.from_row(r) for r in tables.read(reader, config, tables.MODEL_REQUESTS.name, **equal)]
    return sorted(requests, key=lambda r: r.requested_at, reverse=True)


def _require_pending(request: TransitionRequest) -> None:
    if not request.pending:
        by = f" by {request.decided_by}" if request.decided_by else ""
        raise ConflictError(f"transition request {request.request_id} is already {request.status}{by}"
                            f"{' (' + request.reason + ')' if request.reason else ''}")


def _decide(spark: SparkSession, config: Config, request: TransitionRequest, status: str, actor: Actor,
            comment: str | None, reason: str | None) -> TransitionRequest:
    """Record the decision on a pending request, or raise ConflictError if another decider got there first."""
    decided = TransitionRequest(**{**vars(request), "status": status, "decided_by": actor.user,
                                   "decided_at": datetime.now(timezone.utc), "decision_comment": comment,
                                   "reason": reason})
    values = {k: getattr(decided, k) for k in ("status", "decided_by", "decided_at", "decision_comment", "reason")}
    if not tables.update_if(spark, config, tables.MODEL_REQUESTS, {"request_id": request.request_id},
                            {"status": PENDING}, values):
        # raises: decided concurrently
        _require_pending(get_request(session_reader(spark, config), config, request.request_id))
        raise ConflictError(f"transition request {request.request_id} changed while it was being decided")
    logger.info("request %s %s by %s%s", request.request_id, status, actor.user, f": {reason}" if reason else "")
    return decided


def _settle(spark: SparkSession, config: Config, decided: TransitionRequest, status: str,
            reason: str) -> TransitionRequest:
    """Change an approval this process recorded to ``status`` (the transition was refused or failed)."""
    tables.update_if(spark, config, tables.MODEL_REQUESTS, {"request_id": decided.request_id},
                     {"status": "approved"}, {"status": status, "reason": reason})
    return TransitionRequest(**{**vars(decided), "status": status, "reason": reason})


def moved_since(config: Config, request: TransitionRequest) -> str | None:
    """Why the registry no longer matches what ``request`` was made on (None: it still does)."""
    name, version = request.model_name, request.version
    current = registry.get_version(config, name, version).current_stage or "None"
    if current != request.from_stage:
        return f"version {version} moved from {request.from_stage} to {current} since the request"
    incumbent = _incumbent(config, name, request.to_stage)
    if incumbent != request.incumbent_version:
        then = f"version {request.incumbent_version}" if request.incumbent_version is not None else "no version"
        now = f"version {incumbent}" if incumbent is not None else "no version"
        return f"{request.to_stage} changed since the request: {now} is there now, {then} was then"
    return None


def approve(spark: SparkSession, config: Config, request_id: str, actor: Actor,
            comment: str | None = None) -> Decision:
    """Approve a pending request: check it still applies, run the promotion gates, record the decision
    and make the transition as ``promote`` does (default aliases, previous version archived).

    Returns:
        The decision: ``approved`` (transition made) or ``refused`` (recorded; registry unchanged).

    Raises:
        NotFoundError: no such request (or its model or version is gone).
        ConflictError: the request is not pending, or another decider won a race on it.
        FeaturelakeError: the transition itself failed after the approval was recorded (the
            request is then ``failed``, with the error as its reason).
    """
    comment = _check_comment(comment)
    request = get_request(session_reader(spark, config), config, request_id)
    _require_pending(request)
    name = request.model_name
    moved = moved_since(config, request)
    if moved is not None:
        return Decision(_decide(spark, config, request, "refused", actor, comment, moved))
    candidate = registry.get_version(config, name, request.version)
    gates = promotion.evaluate_gates(config, name, candidate, request.to_stage)
    if not gates.promoted:
        return Decision(_decide(spark, config, request, "refused", actor, comment, f"promotion gates: {gates.reason}"))
    decided = _decide(spark, config, request, "approved", actor, comment, gates.reason)
    try:
        result = promotion.promote(spark, config, name, request.version, request.to_stage,
                                   actor=Actor(actor.user, "request", request.request_id))
    except Exception as exc:
        _settle(spark, config, decided, "failed", f"{type(exc).__name__}: {exc}"[:2000])
        raise
    if not result.promoted:  # the registry changed between the check and the promotion
        return Decision(_settle(spark, config, decided, "refused", f"promotion gates: {result.reason}"), result)
    return Decision(decided, result)


def reject(spark: SparkSession, config: Config, request_id: str, actor: Actor, comment: str | None = None) -> Decision:
    """Reject a pending request (the registry is not touched).

    Raises:
        NotFoundError: no such request.
        ConflictError: the request is not pending (or was decided concurrently).
    """
    comment = _check_comment(comment)
    request = get_request(session_reader(spark, config), config, request_id)
    _require_pending(request)
    return Decision(_decide(spark, config, request, "rejected", actor, comment, None))


def cancel(spark: SparkSession, config: Config, request_id: str, actor: Actor, comment: str | None = None) -> Decision:
    """Cancel a pending request; only its requester can.

    Raises:
        NotFoundError: no such request.
        ConflictError: the request is not pending, or ``actor`` is not its requester.
    """
    comment = _check_comment(comment)
    request = get_request(session_reader(spark, config), config, request_id)
    _require_pending(request)
    if actor.user != request.requested_by:
        raise ConflictError(f"transition request {request_id} was made by {request.requested_by}: only they can "
                            f"cancel it, not {actor.user} (reject it instead)")
    return Decision(_decide(spark, config, request, "cancelled", actor, comment, None))
