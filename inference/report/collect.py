"""Gather what the report shows, from Delta (feature tables and the model/monitoring tables)
and the MLflow registry. Anything missing (a table not written yet, MLflow never used) is
left empty, never an error: the report shows what exists. Delta is read through a
:class:`~featurestore.delta_reader.DeltaReader` (delta-rs: no JVM for a local warehouse)."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from featurestore.catalog import TableInfo, list_tables
from featurestore.core.config import Config
from featurestore.core.errors import FeaturelakeError
from featurestore.delta_reader import DeltaReader
from inference.governance.compare import Comparison
from inference.governance.tables import ActivityEntry, TransitionRequest
from inference.monitoring.tables import MODEL_ALERTS, MODEL_METRICS, RETRAIN_ATTEMPTS, read_rows
from inference.promotion import PromotionDecision, read_events

if TYPE_CHECKING:
    from featurestore.training_set import TrainingSetSpec

logger = logging.getLogger(__name__)

HISTORY_LIMIT = 50
COMPARED_VERSIONS = 10  # the compare page shows the newest ones


@dataclass
class HistoryEntry:
    """One commit of a Delta table."""

    version: int
    timestamp: datetime | None
    operation: str
    user: str | None
    rows: str


@dataclass
class TableView:
    """A feature table page: the catalog entry, its Delta history and the models that use it."""

    info: TableInfo
    history: list[HistoryEntry]
    row_count: int | None
    used_by: list[tuple[str, str]] = field(default_factory=list)  # (model name, version)


@dataclass
class ModelVersionView:
    """One registered model version."""

    version: str
    stage: str
    aliases: list[str]
    status: str
    created: datetime | None
    description: str | None
    run_id: str | None
    run_link: str | None
    metrics: dict[str, float]
    spec: TrainingSetSpec | None          # what the version learned from (None: no spec logged)
    serving: list[str] = field(default_factory=list)  # URLs of the `featurelake serve` servers serving it

    @property
    def lookups(self) -> list[dict[str, Any]]:
        """The feature tables (at their Delta versions) the version was trained on."""
        return self.spec.lookups if self.spec is not None else []


@dataclass
class ModelView:
    """A registered model page."""

    name: str
    description: str | None
    created: datetime | None
    updated: datetime | None
    tags: dict[str, str]
    versions: list[ModelVersionView]
    promotion_events: list[PromotionDecision]
    pending_requests: list[TransitionRequest] = field(default_factory=list)
    activity: list[ActivityEntry] = field(default_factory=list)   # newest first
    comparison: Comparison | None = None

    @property
    def comments(self) -> list[ActivityEntry]:
        """The comments on the model's versions, newest first."""
        return [e for e in self.activity if e.kind == "commented"]


@dataclass
class MonitoringData:
    """Rows of the monitoring tables (each None when the table does not exist)."""

    metrics: list[dict[str, Any]] | None
    alerts: list[dict[str, Any]] | None
    attempts: list[dict[str, Any]] | None

    @property
    def empty(self) -> bool:
        """True when no monitoring table holds any row."""
        return not (self.metrics or self.alerts or self.attempts)


@dataclass
class Workspace:
    """Everything one report shows."""

    generated_at: datetime
    warehouse: str
    tables: list[TableView]
    models: list[ModelView]
    monitoring: MonitoringData
    problems: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        """True when there is nothing to report."""
        return not self.tables and not self.models and self.monitoring.empty


def _rows_text(operation: str, metrics: dict[str, str] | None) -> str:
    """Summarise the row counts of a Delta commit (operationMetrics)."""
    m = metrics or {}
    parts = []
    for key, label in (("numTargetRowsInserted", "inserted"), ("numTargetRowsUpdated", "updated"),
                       ("numTargetRowsDeleted", "deleted"), ("numUpdatedRows", "updated"),
                       ("numDeletedRows", "deleted"), ("numCopiedRows", "copied")):
        if key in m:
            parts.append(f"{int(m[key])} {label}")
    if not parts and "numOutputRows" in m:
        parts.append(f"{int(m['numOutputRows'])} written")
    return ", ".join(parts) if parts else ""


def table_history(reader: DeltaReader, path: str, limit: int = HISTORY_LIMIT) -> list[HistoryEntry]:
    """Return the newest ``limit`` commits of the Delta table at ``path``, newest first."""
    return [HistoryEntry(c.version, c.timestamp, c.operation, c.user, _rows_text(c.operation, c.metrics))
            for c in reader.history(path, limit)]


def _row_count(reader: DeltaReader, path: str) -> int | None:
    try:
        return reader.row_count(path)
    except Exception as exc:  # a table being rewritten by another job: show no count
        logger.warning("row count of %s failed: %s", path, exc)
        return None


def collect_tables(reader: DeltaReader, config: Config) -> list[TableView]:
    """Every feature table of the warehouse with its history, by name."""
    return [TableView(info, table_history(reader, info.path), _row_count(reader, info.path))
            for info in list_tables(reader, config)]


def _mlflow_in_use(config: Config) -> bool:
    """False when the tracking store is a SQLite file that does not exist (MLflow never used)."""
    from inference.tracking import registry_uri

    uri = registry_uri(config)
    if uri.startswith("sqlite:///"):
        return os.path.exists(uri[len("sqlite:///"):])
    return True


def _ms_to_datetime(value: int | None) -> datetime | None:
    return datetime.fromtimestamp(value / 1000, tz=timezone.utc) if value else None


def run_link(config: Config, experiment_id: str | None, run_id: str, artifact_uri: str | None) -> str | None:
    """A link to the run: the MLflow UI for a tracking server, else the run's artifact folder."""
    uri = config.mlflow.tracking_uri
    if urlparse(uri).scheme in ("http", "https") and experiment_id:
        return f"{uri.rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}"
    if artifact_uri and artifact_uri.startswith("file:"):
        return artifact_uri
    if artifact_uri and artifact_uri.startswith("/"):
        return "file://" + artifact_uri
    return None


def _load_spec(run_id: str) -> TrainingSetSpec | None:
    """The run's training-set spec, or None when it has none (MLflow points at the store already)."""
    from inference.tracking import load_spec

    try:
        return load_spec(run_id)
    except FeaturelakeError:  # no spec logged with this run, or not one this version reads
        return None


def collect_models(config: Config, events: list[PromotionDecision]) -> list[ModelView]:
    """Every registered model with its versions, metrics, training tables and promotion events."""
    if not _mlflow_in_use(config):
        return []
    from inference.serving_records import read_records, serving_urls
    from inference.tracking import client as mlflow_client

    client = mlflow_client(config)
    served = read_records(config)
    models = []
    for rm in client.search_registered_models():
        # search results may omit aliases; the registered model itself maps alias -> version
        aliases: dict[str, list[str]] = {}
        for alias, version in (client.get_registered_model(rm.name).aliases or {}).items():
            aliases.setdefault(str(version), []).append(alias)
        versions = []
        for mv in sorted(client.search_model_versions(f"name = '{_quote(rm.name)}'"),
                         key=lambda v: int(v.version), reverse=True):
            metrics: dict[str, float] = {}
            link = None
            spec = None
            if mv.run_id:
                try:
                    run = client.get_run(mv.run_id)
                    metrics = dict(sorted(run.data.metrics.items()))
                    link = run_link(config, run.info.experiment_id, mv.run_id, run.info.artifact_uri)
                except Exception as exc:  # run deleted
                    logger.warning("model %s version %s: run %s unreadable: %s", rm.name, mv.version, mv.run_id, exc)
                spec = _load_spec(mv.run_id)
            versions.append(ModelVersionView(
                version=str(mv.version), stage=mv.current_stage or "None", aliases=sorted(set(mv.aliases or []) | set(aliases.get(str(mv.version), []))),
                status=mv.status or "", created=_ms_to_datetime(mv.creation_timestamp),
                description=mv.description or None, run_id=mv.run_id or None, run_link=link,
                metrics=metrics, spec=spec, serving=serving_urls(served, rm.name, mv.version),
            ))
        model_events = [e for e in events if e.model_name == rm.name]  # newest first
        models.append(ModelView(
            name=rm.name, description=rm.description or None, created=_ms_to_datetime(rm.creation_timestamp),
            updated=_ms_to_datetime(rm.last_updated_timestamp), tags=dict(rm.tags or {}),
            versions=versions, promotion_events=model_events,
        ))
    return sorted(models, key=lambda m: m.name)


def collect_governance(reader: DeltaReader, config: Config, model: ModelView) -> None:
    """Fill ``model``'s pending requests, activity log (newest first) and comparison of its newest versions."""
    from inference.governance.activity import read_activity
    from inference.governance.compare import compare_versions
    from inference.governance.requests import list_requests

    model.pending_requests = list_requests(reader, config, model.name, pending_only=True)
    model.activity = list(reversed(read_activity(reader, config, model.name)))
    if model.versions:
        model.comparison = compare_versions(config, model.name, [v.version for v in model.versions[:COMPARED_VERSIONS]])


def _quote(name: str) -> str:
    return name.replace("'", "\\'")


def collect(reader: DeltaReader, config: Config) -> Workspace:
    """Gather the whole workspace for the report."""
    problems: list[str] = []
    tables = collect_tables(reader, config)
    events = read_events(reader, config)
    try:
        models = collect_models(config, events)
    except Exception as exc:  # the report still shows tables and monitoring
        logger.warning("MLflow registry unreadable: %s", exc)
        problems.append(f"The MLflow registry at {config.mlflow.tracking_uri} could not be read: "
                        f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}")
        models = []
    for model in models:
        try:
            collect_governance(reader, config, model)
        except Exception as exc:  # the model page still shows its versions
            logger.warning("model %s: requests, activity or comparison unreadable: %s", model.name, exc)
            problems.append(f"Requests, activity or comparison of model {model.name} could not be read: "
                            f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}")
    by_table: dict[str, list[tuple[str, str]]] = {}
    for model in models:
        for version in model.versions:
            for lookup in version.lookups:
                by_table.setdefault(str(lookup.get("table")), []).append((model.name, version.version))
    for table in tables:
        table.used_by = by_table.get(table.info.name, [])
    monitoring = MonitoringData(
        metrics=read_rows(reader, config, MODEL_METRICS),
        alerts=read_rows(reader, config, MODEL_ALERTS),
        attempts=read_rows(reader, config, RETRAIN_ATTEMPTS),
    )
    return Workspace(datetime.now(timezone.utc), config.warehouse, tables, models, monitoring, problems)
