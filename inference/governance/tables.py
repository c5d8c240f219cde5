"""The governance Delta tables and their row types.

``model_requests``: one row per transition request, decided once (``pending`` -> ``approved``,
``rejected``, ``cancelled`` or ``refused``; an approval whose transition then fails becomes
``failed``). The decision is a MERGE guarded by the row's current status, so of two deciders
racing on one request exactly one changes the row; Delta's conflict check makes the other retry
and find the request decided.

``model_activity``: an append-only log of what the other tables do not hold: comments,
transitions applied (by ``promote``, ``models transition``, an approval, the monitoring loop),
alias moves and renames.

Both are written through :func:`featurestore.delta_tables.retry_on_conflict` (a concurrent
writer's commit, or a racing create of the table, is retried), like the other event tables of
the warehouse (:mod:`inference.monitoring.tables`, whose table definitions these reuse).
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, fields
from datetime import datetime, timezone
from typing import Any, Mapping

from delta.tables import DeltaTable
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from featurestore.core.config import Config
from featurestore.core.identifiers import quote_path, validate_identifier
from featurestore.delta_reader import DeltaReader
from featurestore.delta_tables import retry_on_conflict, table_exists
from inference.monitoring.tables import MonitoringTable, ensure_table, to_frame, write_rows

logger = logging.getLogger(__name__)

PENDING = "pending"
REQUEST_STATUSES = (PENDING, "approved", "rejected", "cancelled", "refused", "failed")

MODEL_REQUESTS = MonitoringTable(
    "model_requests",
    "Transition requests of model versions: who asked for which stage, who decided, and why",
    (
        ("request_id", "string", "Unique id of the request (12 hex characters)"),
        ("model_name", "string", "Registered model name"),
        ("version", "bigint", "Model registry version the request is about"),
        ("from_stage", "string", "Stage of the version when the request was made"),
        ("to_stage", "string", "Requested stage: Staging or Production"),
        ("incumbent_version", "bigint", "Version in the requested stage when the request was made (null: none)"),
        ("requested_by", "string", "Who asked (OS user, governance.user or --user: attribution, not security)"),
        ("requested_at", "timestamp", "When the request was made (UTC)"),
        ("comment", "string", "The requester's comment"),
        ("status", "string", "pending, approved, rejected, cancelled, refused or failed"),
        ("decided_by", "string", "Who approved, rejected or cancelled it (null while pending)"),
        ("decided_at", "timestamp", "When it was decided (UTC)"),
        ("decision_comment", "string", "The decider's comment"),
        ("reason", "string", "Why it was refused or failed, or what the approval's promotion gates found"),
    ),
)
MODEL_ACTIVITY = MonitoringTable(
    "model_activity",
    "Model registry activity: comments, transitions applied, alias moves and renames, with who and how",
    (
        ("model_name", "string", "Registered model name"),
        ("version", "bigint", "Model registry version (null: the model itself)"),
        ("kind", "string", "commented, transitioned, alias_set, alias_removed or renamed"),
        ("from_stage", "string", "Stage before a transition"),
        ("to_stage", "string", "Stage after a transition"),
        ("alias", "string", "Alias set or removed"),
        ("request_id", "string", "The transition request that led to it, if any"),
        ("user", "string", "Who did it (attribution, not security)"),
        ("source", "string", "The command: promote, transition, request, monitor, alias, comment, rename"),
        ("text", "string", "The comment, or what happened in words"),
        ("at", "timestamp", "When it happened (UTC)"),
    ),
)


def utc(value: datetime | None) -> datetime | None:
    """``value`` as an aware UTC datetime (Spark returns timestamps as naive local times)."""
    return None if value is None else value.astimezone(timezone.utc)


@dataclass
class TransitionRequest:
    """One row of ``model_requests``."""

    request_id: str
    model_name: str
    version: int
    from_stage: str
    to_stage: str
    incumbent_version: int | None
    requested_by: str
    requested_at: datetime
    comment: str | None
    status: str
    decided_by: str | None = None
    decided_at: datetime | None = None
    decision_comment: str | None = None
    reason: str | None = None

    @property
    def pending(self) -> bool:
        """True while nobody approved, rejected or cancelled the request."""
        return self.status == PENDING

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> TransitionRequest:
        """Build a request from a table row."""
        data = {f.name: row.get(f.name) for f in fields(cls)}
        data["requested_at"], data["decided_at"] = utc(data["requested_at"]), utc(data["decided_at"])
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        """Return plain JSON-ready data (timestamps as ISO text)."""
        data = asdict(self)
        for key in ("requested_at", "decided_at"):
            data[key] = data[key].isoformat() if data[key] else None
        return data


@dataclass
class ActivityEntry:
    """One event of a model's activity log (a row of ``model_activity``, or one read from the other tables)."""

    at: datetime
    model_name: str
    version: int | None
    kind: str
    user: str | None = None
    source: str | None = None
    text: str | None = None
    from_stage: str | None = None
    to_stage: str | None = None
    alias: str | None = None
    request_id: str | None = None

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> ActivityEntry:
        """Build an entry from a ``model_activity`` row."""
        data = {f.name: row.get(f.name) for f in fields(cls)}
        data["at"] = utc(data["at"])
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        """Return plain JSON-ready data (the time as ISO text)."""
        data = asdict(self)
        data["at"] = self.at.isoformat()
        return data


def append(spark: SparkSession, config: Config, table: MonitoringTable, rows: list[dict[str, Any]]) -> None:
    """Append ``rows`` to ``table`` in one Delta commit (creating the table first if needed), retrying conflicts."""
    if rows:
        retry_on_conflict(lambda: write_rows(spark, config, table, rows), f"table {table.name!r}",
                          config.table_path(table.name))


def read(reader: DeltaReader, config: Config, table_name: str, **equal: Any) -> list[dict[str, Any]]:
    """The rows of the warehouse table ``table_name`` whose columns equal ``equal`` (none when there is no table).

    Only for the small event tables (requests, activity, promotion events): read whole, with
    delta-rs where it can (no JVM: ``featurelake models requests``, the report), else Spark.

        pending = read(session_reader(spark, config), config, "model_requests", status="pending")
    """
    for column in equal:
        validate_identifier(column, "column")
    path = config.table_path(table_name)
    if not reader.is_delta_table(path):
        return []
    return [row for row in reader.rows(path) if all(row.get(c) == v for c, v in equal.items())]


def update_if(spark: SparkSession, config: Config, table: MonitoringTable, key: Mapping[str, Any],
              only_if: Mapping[str, str], values: Mapping[str, Any]) -> bool:
    """Set ``values`` on the row of ``table`` matching ``key`` while its columns still equal ``only_if``.

    One MERGE commit; a concurrent commit is retried, re-reading the row. Returns True when this
    call changed the row, False when the row no longer matched ``only_if`` (another writer won).

    >>> update_if(spark, config, MODEL_REQUESTS, {"request_id": "4be2c0a1f9d3"},
    ...           {"status": "pending"}, {"status": "rejected", "decided_by": "bob"})  # doctest: +SKIP
    True
    """
    source = to_frame(spark, table, [{**key, **values}])
    condition = F.lit(True)
    for column in key:
        condition = condition & (F.col(f"t.{column}") == F.col(f"s.{column}"))
    for column, expected in only_if.items():
        condition = condition & (F.col(f"t.{column}") == F.lit(expected))
    assignments = {column: F.col(f"s.{column}") for column in values}

    def merge() -> int:
        path = ensure_table(spark, config, table)
        result = (DeltaTable.forPath(spark, path).alias("t").merge(source.alias("s"), condition)
                  .whenMatchedUpdate(set=assignments).execute())
        return int(result.first()["num_updated_rows"])

    return retry_on_conflict(merge, f"table {table.name!r}", config.table_path(table.name)) == 1


def rename_model_rows(spark: SparkSession, config: Config, table_name: str, old: str, new: str) -> int | None:
    """Set ``model_name`` to ``new`` on the rows of ``old`` in the warehouse table ``table_name``.

    One UPDATE commit, retried on conflict (it is idempotent). Returns the rows changed, or None
    when the table does not exist.
    """
    validate_identifier(old, "model name")
    validate_identifier(new, "model name")
    path = config.table_path(table_name)
    if not table_exists(spark, path):
        return None
    statement = f"UPDATE {quote_path(path)} SET model_name = '{new}' WHERE model_name = '{old}'"
    changed = retry_on_conflict(lambda: int(spark.sql(statement).first()[0]), f"table {table_name!r}", path)
    logger.info("table %s: %d row(s) of model %s now name model %s", table_name, changed, old, new)
    return changed
