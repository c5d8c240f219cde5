"""The monitoring Delta tables: model_metrics, model_alerts, retrain_attempts.

Together they answer "why is version 7 in Production and what happened last Tuesday":
every check writes its metrics, every retraining attempt its outcome, every failure to
recover one alert. Rows of one monitoring run share a ``monitor_run_id``. Each write is one
Delta commit; metrics are merged on (model, version, batch, metric), so a rerun of the same
check replaces its rows instead of duplicating them. Alerts and attempts are event logs.
"""

from __future__ import annotations

import getpass
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Sequence

from featurestore.core.config import Config
from featurestore.core.identifiers import quote_identifier
from featurestore.table_metadata import PREFIX

if TYPE_CHECKING:  # Spark is imported when a table is written: the report reads them without it
    from pyspark.sql import DataFrame, SparkSession
    from pyspark.sql import types as T

    from featurestore.delta_reader import DeltaReader

logger = logging.getLogger(__name__)

_COMMON = (
    ("monitor_run_id", "string", "Monitoring run that wrote the row (rows of one run share it)"),
    ("model_name", "string", "Registered model name"),
    ("model_version", "bigint", "Model registry version the row is about"),
    ("batch_id", "string", "Prediction batch the row is about"),
    ("metric", "string", "Metric name (auc, rmse, prediction_psi, feature_psi.<feature>, row_count...)"),
    ("value", "double", "Metric value"),
    ("threshold", "string", "Accepted range, for example '>= 0.7' (null: recorded only)"),
    ("in_range", "boolean", "Whether the value is in range (null when there is no threshold)"),
)


@dataclass(frozen=True)
class MonitoringTable:
    """A monitoring table's name, columns and how rows are written."""

    name: str
    description: str
    columns: tuple[tuple[str, str, str], ...]
    merge_keys: tuple[str, ...] = ()

    @property
    def schema(self) -> T.StructType:
        """The Spark schema of the table."""
        from pyspark.sql import types as T

        types = {"string": T.StringType(), "bigint": T.LongType(), "int": T.IntegerType(), "double": T.DoubleType(),
                 "boolean": T.BooleanType(), "timestamp": T.TimestampType()}
        return T.StructType([T.StructField(n, types[t], True) for n, t, _ in self.columns])


MODEL_METRICS = MonitoringTable(
    "model_metrics",
    "Model metrics per batch: one row per model version, batch and metric, with its threshold",
    _COMMON + (
        ("role", "string", "'production': the version that scored the batch; 'candidate': a retrained version"),
        ("checked_at", "timestamp", "When the metric was computed (UTC)"),
    ),
    merge_keys=("model_name", "model_version", "batch_id", "metric"),
)
MODEL_ALERTS = MonitoringTable(
    "model_alerts",
    "Alerts: metrics out of range that retraining did not fix; the Production version was left in place",
    _COMMON + (
        ("alert_id", "string", "Unique id of the alert"),
        ("attempts", "int", "Retraining attempts made before giving up"),
        ("message", "string", "What is out of range and what was tried"),
        ("delivery", "string", "How each notifier fared, for example 'log: sent; webhook: failed (...)'"),
        ("raised_at", "timestamp", "When the alert was raised (UTC)"),
    ),
)
RETRAIN_ATTEMPTS = MonitoringTable(
    "retrain_attempts",
    "Retraining attempts of the monitoring loop: candidate version, how it compared, and the decision",
    _COMMON + (
        ("attempt", "int", "Attempt number within the monitoring run (1..max_attempts)"),
        ("run_id", "string", "MLflow run of the candidate"),
        ("incumbent_version", "bigint", "Production version at the time of the attempt"),
        ("incumbent_value", "double", "The incumbent's value of the same metric on the same batch"),
        ("outcome", "string", "'promoted', 'rejected' or 'failed'"),
        ("reason", "string", "Why the candidate was promoted or rejected, or why training failed"),
        ("attempted_at", "timestamp", "When the attempt finished (UTC)"),
    ),
)


def ensure_table(spark: SparkSession, config: Config, table: MonitoringTable) -> str:
    """Create ``table`` (with comments and ``featurelake.*`` properties) if missing; return its path."""
    from featurestore.delta_tables import create_empty_table, table_exists

    path = config.table_path(table.name)
    if table_exists(spark, path):
        return path
    properties = {
        f"{PREFIX}kind": table.name,
        f"{PREFIX}name": table.name,
        f"{PREFIX}description": table.description,
        f"{PREFIX}created_by": getpass.getuser(),
    }
    create_empty_table(spark, path, table.schema, table.description, properties,
                       {name: comment for name, _, comment in table.columns})
    logger.info("created monitoring table %s at %s", table.name, path)
    return path


def to_frame(spark: SparkSession, table: MonitoringTable, rows: Sequence[dict[str, Any]]) -> DataFrame:
    """Build a DataFrame of ``rows`` in the table's schema; missing columns are null, unknown ones refused."""
    names = [n for n, _, _ in table.columns]
    for row in rows:
        unknown = sorted(set(row) - set(names))
        if unknown:
            raise ValueError(f"{table.name}: unknown column(s) {unknown}")
    return spark.createDataFrame([tuple(row.get(n) for n in names) for row in rows], table.schema)


def write_rows(spark: SparkSession, config: Config, table: MonitoringTable, rows: Sequence[dict[str, Any]]) -> int | None:
    """Write ``rows`` in one Delta commit (MERGE on the table's keys, else append).

    Returns the table's new Delta version, or None when there was nothing to write.
    """
    if not rows:
        return None
    from delta.tables import DeltaTable

    path = ensure_table(spark, config, table)
    df = to_frame(spark, table, rows)
    if table.merge_keys:
        on = " AND ".join(f"t.{quote_identifier(k)} <=> s.{quote_identifier(k)}" for k in table.merge_keys)
        (DeltaTable.forPath(spark, path).alias("t").merge(df.alias("s"), on)
         .whenMatchedUpdateAll().whenNotMatchedInsertAll().execute())
    else:
        df.write.format("delta").mode("append").save(path)
    version = int(DeltaTable.forPath(spark, path).history(1).select("version").first()[0])
    logger.info("%s: %d row(s) written (Delta version %d)", table.name, len(rows), version)
    return version


def read_table(spark: SparkSession, config: Config, table: MonitoringTable) -> DataFrame | None:
    """The table as a DataFrame, or None when it does not exist yet."""
    from featurestore.delta_tables import table_exists

    path = config.table_path(table.name)
    if not table_exists(spark, path):
        return None
    return spark.read.format("delta").load(path)


def read_rows(reader: DeltaReader, config: Config, table: MonitoringTable) -> list[dict[str, Any]] | None:
    """Every row of ``table`` as a dict (it is small: one row per check, alert or attempt), or None
    when it does not exist yet. Read with delta-rs where it can: no JVM for the report.

    >>> [r["metric"] for r in read_rows(reader, config, MODEL_METRICS)][:2]
    ['auc', 'prediction_psi']
    """
    path = config.table_path(table.name)
    if not reader.is_delta_table(path):
        return None
    return reader.rows(path)
