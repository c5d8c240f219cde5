"""Telling people that a model needs retraining: a log notifier always, a webhook optionally.

A notifier that fails never stops the loop and never loses the alert: :func:`deliver`
catches each notifier's failure and reports it in the text that goes into the alert row.
"""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import asdict, dataclass
from typing import Protocol, Sequence

from featurestore.core.errors import BadInputError, DependencyUnavailableError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Alert:
    """What an alert says (the same content as its model_alerts row)."""

    alert_id: str
    model_name: str
    model_version: int | None
    batch_id: str
    metric: str
    value: float | None
    threshold: str | None
    attempts: int
    message: str
    raised_at: str

    def to_dict(self) -> dict:
        """The alert as plain JSON-ready data."""
        return asdict(self)


class Notifier(Protocol):
    """Anything with a ``name`` and a ``send(alert)`` that raises on failure."""

    name: str

    def send(self, alert: Alert) -> None:
        """Deliver ``alert``; raise on failure."""


class LogNotifier:
    """Writes the alert to the log at WARNING level (always on)."""

    name = "log"

    def send(self, alert: Alert) -> None:
        """Log ``alert``."""
        logger.warning("MODEL NEEDS RETRAINING: model %s version %s, batch %s: %s",
                       alert.model_name, alert.model_version, alert.batch_id, alert.message)


class WebhookNotifier:
    """POSTs the alert as JSON to a URL (Slack/Teams-style incoming webhooks, alert managers)."""

    name = "webhook"

    def __init__(self, url: str, timeout: float = 10.0) -> None:
        if not url.startswith(("http://", "https://")):
            raise BadInputError(f"monitoring.webhook_url is not an http(s) URL (it starts with {url[:8]!r})")
        self.url = url
        # What messages show of the URL: incoming webhooks (Slack, Teams) carry their secret in the path.
        parts = urllib.parse.urlsplit(url)
        self.origin = f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}/..."
        self.timeout = timeout

    def send(self, alert: Alert) -> None:
        """POST ``alert``; raise :class:`DependencyUnavailableError` if the endpoint fails."""
        self.post({"text": f"featurelake: model {alert.model_name} needs retraining - {alert.message}",
                   **alert.to_dict()})

    def post(self, body: dict) -> None:
        """POST ``body`` as JSON; raise :class:`DependencyUnavailableError` naming only the URL's origin
        if the endpoint fails (the path, where incoming webhooks keep their secret, is never shown)."""
        request = urllib.request.Request(self.url, data=json.dumps(body).encode("utf-8"), method="POST",
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310 - http(s) only
                status = response.status
        except urllib.error.HTTPError as exc:
            status = exc.code
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = str(exc).replace(self.url, self.origin)
            raise DependencyUnavailableError(f"webhook {self.origin} unreachable: {reason}") from None
        if status >= 300:
            raise DependencyUnavailableError(f"webhook {self.origin} answered HTTP {status}")


def build_notifiers(webhook_url: str | None) -> list[Notifier]:
    """The log notifier, plus a webhook notifier when a URL is configured."""
    notifiers: list[Notifier] = [LogNotifier()]
    if webhook_url:
        notifiers.append(WebhookNotifier(webhook_url))
    return notifiers


def deliver(alert: Alert, notifiers: Sequence[Notifier]) -> str:
    """Send ``alert`` through every notifier; return a summary such as ``log: sent; webhook: failed (...)``.

    A failing notifier is logged and reported in the summary, never raised.
    """
    outcomes = []
    for notifier in notifiers:
        try:
            notifier.send(alert)
            outcomes.append(f"{notifier.name}: sent")
        except Exception as exc:  # noqa: BLE001 - a broken notifier must not lose the alert
            logger.error("notifier %s failed for alert %s: %s", notifier.name, alert.alert_id, exc)
            outcomes.append(f"{notifier.name}: failed ({exc})")
    return "; ".join(outcomes)
