"""Recording what happens to a model in ``model_activity``: transitions applied, alias moves, comments.

Who did it is an :class:`Actor`: the ``--user`` given, else ``governance.user`` (or
``FEATURELAKE_GOVERNANCE_USER``), else the OS user. This is attribution, not security: anyone
who can run featurelake against the registry can name any user.

    with recording(spark, config, "churn_model", Actor.of(config, "transition")):
        promotion.transition(config, "churn_model", 3, "Production")

records every stage change and alias move the block made (read from the registry before and
after), and sends a ``transition_applied`` event for each stage change.
"""

from __future__ import annotations

import getpass
import logging
import sys
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from typing import Iterator

from pyspark.sql import SparkSession

from featurestore.core.config import Config
from featurestore.core.errors import BadInputError
from inference import registry
from inference.governance import events, tables
from inference.governance.tables import ActivityEntry
from inference.settings import GOVERNANCE, GovernanceSettings

logger = logging.getLogger(__name__)

MAX_COMMENT_LENGTH = 4000


def current_user(config: Config, override: str | None = None) -> str:
    """``override``, else ``governance.user``, else the OS user (validated like ``governance.user``)."""
    user = override or GOVERNANCE.of(config).user or getpass.getuser()
    GovernanceSettings(user=user)  # the same check as the configuration's
    return user


@dataclass(frozen=True)
class Actor:
    """Who did something, through which command, and for which transition request (if any)."""

    user: str
    source: str
    request_id: str | None = None

    @classmethod
    def of(cls, config: Config, source: str, user: str | None = None, request_id: str | None = None) -> Actor:
        """The actor for ``source`` with :func:`current_user`.

        >>> Actor.of(config, "transition", user="alice")  # doctest: +SKIP
        Actor(user='alice', source='transition', request_id=None)
        """
        return cls(current_user(config, user), source, request_id)


@dataclass(frozen=True)
class RegistryState:
    """The stage of every version and the version of every alias of one model."""

    stages: dict[str, str]
    aliases: dict[str, str]


def registry_state(config: Config, name: str) -> RegistryState:
    """Read the stages and aliases of model ``name`` from the registry."""
    model = registry.get_registered_model(config, name)
    stages = {str(v.version): v.current_stage or "None" for v in registry.search_versions(config, name)}
    aliases = {alias: str(version) for alias, version in (getattr(model, "aliases", {}) or {}).items()}
    return RegistryState(stages, aliases)


def changes_between(name: str, before: RegistryState, after: RegistryState, actor: Actor,
                    at: datetime) -> list[ActivityEntry]:
    """The stage changes and alias moves from ``before`` to ``after`` as activity entries."""
    base = {"at": at, "model_name": name, "user": actor.user, "source": actor.source, "request_id": actor.request_id}
    entries = []
    for version, stage in sorted(after.stages.items(), key=lambda item: int(item[0])):
        previous = before.stages.get(version)
        if previous is not None and previous != stage:
            entries.append(ActivityEntry(**base, version=int(version), kind="transitioned", from_stage=previous,
                                         to_stage=stage, text=f"{previous} -> {stage}"))
    for alias in sorted(set(before.aliases) | set(after.aliases)):
        old, new = before.aliases.get(alias), after.aliases.get(alias)
        if old == new:
            continue
        if new is not None:
            moved = f" (moved from version {old})" if old is not None else ""
            entries.append(ActivityEntry(**base, version=int(new), kind="alias_set", alias=alias,
                                         text=f"@{alias} -> version {new}{moved}"))
        elif old is not None:
            entries.append(ActivityEntry(**base, version=int(old), kind="alias_removed", alias=alias,
                                         text=f"@{alias} removed from version {old}"))
    return entries


def record(spark: SparkSession, config: Config, entries: list[ActivityEntry]) -> None:
    """Append ``entries`` to ``model_activity`` (one commit)."""
    tables.append(spark, config, tables.MODEL_ACTIVITY, [asdict(entry) for entry in entries])


def _notify_transitions(config: Config, entries: list[ActivityEntry]) -> None:
    for entry in entries:
        if entry.kind == "transitioned":
            events.notify(config, events.RegistryEvent.now(
                events.TRANSITION_APPLIED, entry.model_name, entry.version, entry.user,
                f"model {entry.model_name} version {entry.version}: {entry.from_stage} -> {entry.to_stage} "
                f"(by {entry.user} via {entry.source})", from_stage=entry.from_stage, to_stage=entry.to_stage,
                request_id=entry.request_id))


@contextmanager
def recording(spark: SparkSession, config: Config, name: str, actor: Actor) -> Iterator[None]:
    """Record the stage changes and alias moves that the block makes to model ``name``.

    They are recorded even when the block fails half way (a transition that lost a race was
    archived again: that happened too). Then ``transition_applied`` events are sent.
    """
    before = registry_state(config, name)
    failed = True
    try:
        yield
        failed = False
    finally:
        entries: list[ActivityEntry] = []
        try:
            entries = changes_between(name, before, registry_state(config, name), actor,
                                      datetime.now(timezone.utc))
            record(spark, config, entries)
        except Exception:
            if not failed:
                raise
            logger.warning("model %s: the changes of a failed registry operation could not be recorded",
                           name, exc_info=sys.exc_info())
        _notify_transitions(config, entries)


def add_comment(spark: SparkSession, config: Config, name: str, version: int | str, text: str,
                actor: Actor) -> ActivityEntry:
    """Record a comment on version ``version`` of model ``name`` and send a ``comment_added`` event.

    >>> add_comment(spark, config, "churn_model", 2, "AUC holds on the May cohort", Actor.of(config, "comment"))
    ... # doctest: +SKIP

    Raises:
        NotFoundError: the model or version does not exist.
        BadInputError: the comment is empty or longer than 4000 characters.
    """
    if not text or not text.strip():
        raise BadInputError(f"comment on model {name!r} version {version}: the text is empty")
    if len(text) > MAX_COMMENT_LENGTH:
        raise BadInputError(f"comment on model {name!r} version {version}: {len(text)} characters, "
                            f"at most {MAX_COMMENT_LENGTH}")
    mv = registry.get_version(config, name, version)
    entry = ActivityEntry(at=datetime.now(timezone.utc), model_name=name, version=int(mv.version), kind="commented",
                          user=actor.user, source=actor.source, text=text)
    record(spark, config, [entry])
    message = f"{actor.user} commented on model {name} version {mv.version}: {text}"
    events.notify(config, events.RegistryEvent.now(events.COMMENT_ADDED, name, mv.version, actor.user, message))
    return entry
