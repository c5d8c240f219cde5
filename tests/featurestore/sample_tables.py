"""A small feature table used by the feature-store tests (also imported by a killed subprocess)."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pandas as pd
from pyspark.sql import functions as F

from featurestore.definitions import FeatureTable, Field, Source

T0 = datetime(2026, 3, 1)


def write_source(root: Path, rows: list[tuple], name: str = "events") -> str:
    frame = pd.DataFrame(rows, columns=["user_id", "ts", "clicks", "spend"])
    frame["ts"] = pd.to_datetime(frame["ts"]).dt.tz_localize("UTC").astype("datetime64[us, UTC]")
    path = root / "raw" / f"{name}.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(path, index=False)
    return str(path)


def passthrough(spark, inputs):
    return inputs["events"].select("user_id", "ts", F.col("clicks").cast("bigint"), F.col("spend").cast("double"))


def fails_on_user_2(spark, inputs):
    """A transformation whose spend of user 2 fails when computed: validation passes, the write does not."""
    failing = F.when(F.col("user_id") == 2, F.raise_error(F.lit("no spend for user 2"))).otherwise(F.col("spend"))
    return passthrough(spark, inputs).withColumn("spend", failing)


def user_table(name: str = "user_activity", transform=passthrough, **overrides) -> FeatureTable:
    fields = dict(
        name=name,
        primary_keys=[Field("user_id", "bigint", "User identifier")],
        timestamp_key="ts",
        features=[Field("clicks", "bigint", "Clicks in the hour"), Field("spend", "double", "Spend in the hour")],
        sources=[Source("events", "raw/events.parquet")],
        transform=transform,
        owner="growth@example.com",
        description="Hourly user activity",
        notebook_url="https://example.com/notebooks/activity",
        tags={"team": "growth"},
        ttl=timedelta(days=2),
    )
    fields.update(overrides)
    return FeatureTable(**fields)


ROWS = [(1, T0, 3, 1.5), (2, T0, 0, 0.0), (1, T0 + timedelta(hours=1), 5, 2.5)]
