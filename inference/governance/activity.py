"""A model's activity log: everything that happened to its versions, oldest first, from the tables
that record it.

=====================  ==================================================================
source                 entries
=====================  ==================================================================
the MLflow registry    ``created`` (each version, at its creation time)
``model_requests``     ``requested``, then ``approved``, ``rejected``, ``cancelled``,
                       ``refused`` or ``failed`` (who decided, their comment, the reason)
``promotion_events``   ``gates_passed`` / ``gates_failed`` (every ``promote``, approval and
                       promotion by the monitoring loop, with the gates' reason)
``model_activity``     ``transitioned`` (each stage change made by ``promote``,
                       ``models transition``, an approval or the monitoring loop),
                       ``alias_set``, ``alias_removed``, ``commented``, ``renamed``
=====================  ==================================================================

    for entry in read_activity(metadata_reader, config, "churn_model", version=2):
        print(entry.at, entry.kind, entry.user, entry.text)
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Iterable

from featurestore.core.config import Config
from featurestore.delta_reader import DeltaReader
from inference import registry
from inference.governance import tables
from inference.governance.tables import ActivityEntry, TransitionRequest, utc
from inference.settings import PROMOTION

# Entries at the same instant are shown in the order things happen.
_ORDER = ("created", "requested", "approved", "refused", "rejected", "cancelled", "gates_passed", "gates_failed",
          "transitioned", "alias_removed", "alias_set", "failed", "commented", "renamed")


def _created(name: str, versions: Iterable[Any]) -> list[ActivityEntry]:
    return [ActivityEntry(at=datetime.fromtimestamp((v.creation_timestamp or 0) / 1000, tz=timezone.utc),
                          model_name=name, version=int(v.version), kind="created", user=v.user_id or None,
                          source="registry", text=f"run {v.run_id}" if v.run_id else None)
            for v in versions]


def _gates(rows: Iterable[dict[str, Any]]) -> list[ActivityEntry]:
    return [ActivityEntry(at=utc(r["decided_at"]), model_name=r["model_name"], version=int(r["candidate_version"]),
                          kind="gates_passed" if r["decision"] == "promoted" else "gates_failed", source="promote",
                          to_stage=r.get("stage"), text=f"-> {r.get('stage')}: {r['reason']}")
            for r in rows]


def _request_entries(request: TransitionRequest) -> list[ActivityEntry]:
    base = {"model_name": request.model_name, "version": request.version, "source": "request",
            "request_id": request.request_id, "from_stage": request.from_stage, "to_stage": request.to_stage}
    move = f"{request.from_stage} -> {request.to_stage}"
    entries = [ActivityEntry(at=request.requested_at, kind="requested", user=request.requested_by,
                             text=f"{move}{': ' + request.comment if request.comment else ''}", **base)]
    if not request.pending and request.decided_at is not None:
        said = [part for part in (request.decision_comment, request.reason) if part]
        entries.append(ActivityEntry(at=request.decided_at, kind=request.status, user=request.decided_by,
                                     text=f"{move}{': ' + '; '.join(said) if said else ''}", **base))
    return entries


def read_activity(reader: DeltaReader, config: Config, name: str, version: int | str | None = None,
                  versions: list[Any] | None = None) -> list[ActivityEntry]:
    """The activity log of model ``name`` (of one ``version`` if given), oldest first.

    ``versions`` are the model's MLflow versions when the caller has them already (the report).

    Raises:
        NotFoundError: the model (or the version) does not exist.
    """
    if version is not None:
        version = int(registry.get_version(config, name, version).version)
    if versions is None:
        versions = registry.search_versions(config, name)
    entries = _created(name, versions)
    entries += _gates(tables.read(reader, config, PROMOTION.of(config).events_table, model_name=name))
    for row in tables.read(reader, config, tables.MODEL_REQUESTS.name, model_name=name):
        entries += _request_entries(TransitionRequest.from_row(row))
    entries += [ActivityEntry.from_row(r) for r in tables.read(reader, config, tables.MODEL_ACTIVITY.name,
                                                                model_name=name)]
    if version is not None:
        entries = [e for e in entries if e.version == version]
    return sorted(entries, key=lambda e: (e.at, _ORDER.index(e.kind) if e.kind in _ORDER else len(_ORDER),
                                          -1 if e.version is None else e.version))


def describe(entry: ActivityEntry) -> str:
    """One line for ``entry``: time, version, what happened, who and through which command."""
    who = f"  [{entry.user + ' via ' if entry.user else ''}{entry.source}]" if entry.source else ""
    version = f"v{entry.version}" if entry.version is not None else "-"
    request = f" (request {entry.request_id})" if entry.request_id else ""
    return (f"{entry.at.strftime('%Y-%m-%d %H:%M:%S')}  {version:<5} {entry.kind:<13} {entry.text or ''}"
            f"{request}{who}")
