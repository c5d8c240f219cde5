"""Registry events (a version created, a transition requested or applied, a comment) sent to the notifier.

Where they go is configured per model and per event type in ``governance.events``::

    governance:
      events:
        - model: churn_model                  # or "*" for every model
          events: [transition_requested, transition_applied]   # omitted: every event type
          webhook_url: https://hooks.example.com/services/T0/B0/XXXX   # omitted: the log

An event is sent after the registry operation and its Delta record are done. Sending never
fails the operation: a webhook that is down or answers an error is logged as a warning that
names only the URL's origin (the notifier's rule: incoming webhooks keep their secret in the
path), and the operation goes on.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from datetime import datetime, timezone

from featurestore.core.config import Config
from inference.monitoring.notifier import WebhookNotifier
from inference.settings import GOVERNANCE, REGISTRY_EVENT_TYPES

logger = logging.getLogger(__name__)

VERSION_CREATED, TRANSITION_REQUESTED, TRANSITION_APPLIED, COMMENT_ADDED = REGISTRY_EVENT_TYPES
WEBHOOK_TIMEOUT_SECONDS = 5.0


@dataclass(frozen=True)
class RegistryEvent:
    """What happened in the registry, as the notifier sends it."""

    event: str
    model_name: str
    version: int | None
    user: str | None
    message: str
    at: str
    from_stage: str | None = None
    to_stage: str | None = None
    request_id: str | None = None

    @classmethod
    def now(cls, event: str, model_name: str, version: int | str | None, user: str | None, message: str,
            **details: str | None) -> RegistryEvent:
        """An event that happens now (UTC)."""
        return cls(event, model_name, None if version is None else int(version), user, message,
                   datetime.now(timezone.utc).isoformat(timespec="seconds"), **details)

    def to_dict(self) -> dict:
        """The event as plain JSON-ready data."""
        return asdict(self)


def targets(config: Config, model_name: str, event: str) -> list[str | None]:
    """The webhook URLs (None: the log) that ``event`` of ``model_name`` goes to, each once."""
    found: list[str | None] = []
    for rule in GOVERNANCE.of(config).events:
        if rule.matches(model_name, event) and rule.webhook_url not in found:
            found.append(rule.webhook_url)
    return found


def notify(config: Config, event: RegistryEvent) -> list[str]:
    """Send ``event`` where ``governance.events`` routes it; return one outcome per target.

    Never raises: a failing webhook is logged (origin only) and reported as ``webhook <origin>: failed``.

    >>> notify(config, RegistryEvent.now("comment_added", "churn_model", 2, "alice", "looks good"))  # doctest: +SKIP
    ['log: sent']
    """
    outcomes = []
    for url in targets(config, event.model_name, event.event):
        if url is None:
            logger.info("registry event %s: model %s version %s: %s", event.event, event.model_name, event.version,
                        event.message)
            outcomes.append("log: sent")
            continue
        notifier = WebhookNotifier(url, timeout=WEBHOOK_TIMEOUT_SECONDS)
        try:
            notifier.post({"text": f"featurelake: {event.message}", **event.to_dict()})
            outcomes.append(f"webhook {notifier.origin}: sent")
        except Exception as exc:  # noqa: BLE001 - a broken webhook never fails the registry operation
            reason = str(exc).replace(url, notifier.origin)
            logger.warning("registry event %s of model %s not delivered to webhook %s: %s", event.event,
                           event.model_name, notifier.origin, reason)
            outcomes.append(f"webhook {notifier.origin}: failed")
    return outcomes
