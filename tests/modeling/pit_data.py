"""Tiny hand-made feature tables and labels for the point-in-time tests."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import types as T

from pathlib import Path

from featurestore.core.config import Config, resolve_paths
from featurestore.definitions import FeatureTable, Field
from featurestore.delta_tables import write_feature_table

UTC = timezone.utc


def make_config(root: Path) -> Config:
    """A configuration whose warehouse, Feast repo and MLflow store all live under ``root``
    (like tests/conftest.py's, importable whatever the test import mode)."""
    config = Config(warehouse="warehouse", source_root=".")
    config.spark.master = "local[2]"
    config.mlflow.tracking_uri = "sqlite:///mlflow.db"
    return resolve_paths(config, root)


def ts(day: int, hour: int = 0) -> datetime:
    """A UTC timestamp in January 2026 (day 0 = 31 December 2025)."""
    return datetime(2026, 1, 1, tzinfo=UTC) + timedelta(days=day - 1, hours=hour)


EVENTS = FeatureTable(
    name="pit_events",
    primary_keys=[Field("customer_id", "bigint", "Customer")],
    timestamp_key="event_time",
    features=[Field("f_num", "double", "A number"), Field("f_cnt", "bigint", "A count")],
    description="point-in-time test table",
    ttl=timedelta(days=3),
)
PROFILE = FeatureTable(
    name="pit_profile",
    primary_keys=[Field("customer_id", "bigint", "Customer")],
    timestamp_key="snapshot_time",
    features=[Field("segment_score", "double", "A score")],
    description="point-in-time test table without ttl",
)

EVENTS_SCHEMA = T.StructType([
    T.StructField("customer_id", T.LongType(), False),
    T.StructField("event_time", T.TimestampType(), False),
    T.StructField("f_num", T.DoubleType()),
    T.StructField("f_cnt", T.LongType()),
])
PROFILE_SCHEMA = T.StructType([
    T.StructField("customer_id", T.LongType(), False),
    T.StructField("snapshot_time", T.TimestampType(), False),
    T.StructField("segment_score", T.DoubleType()),
])
LABEL_SCHEMA = T.StructType([
    T.StructField("customer_id", T.LongType()),
    T.StructField("label_time", T.TimestampType()),
    T.StructField("churned", T.LongType()),
])

# first write: customer 1 at days 1, 3, 7; customer 2 at day 2 (null count); customer 4 at day 1
EVENTS_V1 = [
    (1, ts(1), 1.0, 10), (1, ts(3), 3.0, 30), (1, ts(7), 7.0, 70),
    (2, ts(2), 2.0, None), (4, ts(1), 4.0, 40),
]
# late-arriving row (second write): customer 1 at day 5, written after day 7 was known
EVENTS_LATE = [(1, ts(5), 5.0, 50)]
PROFILE_ROWS = [(1, ts(0), 0.5), (1, ts(4), 0.9), (2, ts(9), 0.2), (4, ts(2), 0.4)]

# (customer_id, label_time, churned)
LABELS = [
    (1, ts(3), 0),          # tie with the day-3 row -> day 3
    (1, ts(2, 12), 1),      # between day 1 and 3 -> day 1
    (1, ts(0), 0),          # before every feature row -> nulls
    (1, ts(6), 1),          # before the late row: day 5 (after late arrival), day 3 before it
    (1, ts(6), 1),          # duplicate label row -> same result twice
    (1, ts(8), 0),          # day 7, never a later row
    (2, ts(4), 0),          # day 2 within ttl 3 days (inclusive bound at day 5 too)
    (2, ts(5), 1),          # exactly ttl old: day 2 >= day 5 - 3 days -> kept
    (2, ts(5, 1), 1),       # ttl expired by an hour -> nulls
    (3, ts(4), 0),          # unknown customer -> nulls
    (4, ts(9), 1),          # day 1 is 8 days old -> expired (ttl 3 days)
]


def write_pit_tables(spark: SparkSession, config: Config) -> dict[str, int]:
    """Write both tables (events in two Delta versions); return the events versions."""
    events_path = config.table_path(EVENTS.name)
    first = write_feature_table(spark, EVENTS, events_path, spark.createDataFrame(EVENTS_V1, EVENTS_SCHEMA))
    late = write_feature_table(spark, EVENTS, events_path, spark.createDataFrame(EVENTS_LATE, EVENTS_SCHEMA))
    write_feature_table(spark, PROFILE, config.table_path(PROFILE.name),
                        spark.createDataFrame(PROFILE_ROWS, PROFILE_SCHEMA))
    return {"before_late": first.version_after, "after_late": late.version_after}


def labels_df(spark: SparkSession) -> DataFrame:
    """The labels as a Spark DataFrame."""
    return spark.createDataFrame(LABELS, LABEL_SCHEMA)
