"""The data of the point-in-time benchmarks, written the way a user's files are: by pandas.

A :class:`Shape` says how many labels, entities, feature rows and features there are, which
ttl every lookup carries, how many labels sit exactly at a feature row's timestamp and in
which unit pandas stores the label timestamps. :func:`write_sources` writes every feature
table's rows and the labels as parquet files with pandas (numpy-generated, seeded: the same
shape gives the same files); the Delta feature tables are then created from those files by
featurelake (:func:`create_tables`), so pandas ``merge_asof`` can read the very rows that
featurelake and Feast read from Delta.

Each entity has ``rows_per_entity`` feature rows per table, one in each equal slice of 2025
at a random second, and ``labels / entities`` labels spread the same way; a tie moves a label
onto one of its entity's feature-row timestamps (of table ``label index % tables``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from featurestore.definitions import FeatureTable, Field

START = pd.Timestamp("2025-01-01", tz="UTC")
YEAR_SECONDS = 365 * 86400
KEY = "customer_id"
FEATURE_TIME = "ts"
LABEL_TIME = "event_timestamp"
LABEL = "label"
# The original benchmark's tables: mixed feature types, a 30-day ttl on the third only.
MIXED_TABLES = (("bench_profile", (("p_age", "double"), ("p_fee", "double"), ("p_country", "string"))),
                ("bench_spend", (("s_count", "bigint"), ("s_total", "double"))),
                ("bench_activity", (("a_logins", "double"), ("a_minutes", "double"))))
MIXED_TTL = timedelta(days=30)


@dataclass(frozen=True)
class Shape:
    """What the benchmark data looks like.

    Attributes:
        labels: label rows.
        entities: distinct keys (every table has rows for each).
        rows_per_entity: feature rows per entity and table.
        features_per_table: that many double features per table (3 tables); None gives the
            original mixed tables (7 features of double, bigint and string).
        ttl_days: a ttl of that many days on every table (so on every lookup); None gives the
            original 30-day ttl on the third table only.
        tie_fraction: the share of labels placed exactly at one of their entity's feature-row timestamps.
        label_time_unit: ``"ns"`` (pandas' default when it writes parquet) or ``"us"``.
    """

    labels: int = 100_000
    entities: int = 10_000
    rows_per_entity: int = 5
    features_per_table: int | None = None
    ttl_days: int | None = None
    tie_fraction: float = 0.0
    label_time_unit: str = "us"

    def to_dict(self) -> dict[str, Any]:
        """Return the shape as plain data."""
        return asdict(self)

    def tag(self) -> str:
        """A file-name friendly summary of what differs from the original shape, e.g. ``ttl400_ties1_f4_ns``."""
        parts = []
        if self.ttl_days is not None:
            parts.append(f"ttl{self.ttl_days}")
        if self.tie_fraction:
            parts.append(f"ties{self.tie_fraction * 100:g}")
        if self.features_per_table is not None:
            parts.append(f"f{self.features_per_table}")
        if self.label_time_unit != "us":
            parts.append(self.label_time_unit)
        return "_".join(parts)


def tables(shape: Shape) -> list[FeatureTable]:
    """The three feature tables of ``shape`` (distinct feature names across tables)."""
    key = [Field(KEY, "bigint", "Customer id")]
    if shape.features_per_table is None:
        specs = [(name, list(features), MIXED_TTL if name == "bench_activity" else None)
                 for name, features in MIXED_TABLES]
    else:
        specs = [(name, [(f"{name.removeprefix('bench_')[0]}_x{j}", "double") for j in range(shape.features_per_table)], None)
                 for name, _ in MIXED_TABLES]
    ttl_all = timedelta(days=shape.ttl_days) if shape.ttl_days is not None else None
    return [FeatureTable(name=name, primary_keys=key, timestamp_key=FEATURE_TIME,
                         features=[Field(f, dtype, f) for f, dtype in features],
                         description=f"benchmark table {name}", ttl=ttl_all if ttl_all is not None else ttl)
            for name, features, ttl in specs]


def _spread_times(rng: np.random.Generator, rounds: int, entities: int) -> np.ndarray:
    """Microseconds since the epoch: round ``r`` of every entity at a random second of slice ``r`` of 2025."""
    period = YEAR_SECONDS // rounds
    offsets = np.repeat(np.arange(rounds, dtype=np.int64), entities) * period
    seconds = offsets + rng.integers(0, period - 1, rounds * entities)
    return START.value // 1000 + seconds * 1_000_000


def feature_rows(shape: Shape, table: FeatureTable, index: int) -> tuple[pd.DataFrame, np.ndarray]:
    """The rows of ``table`` (round by round: each entity's first row, then each one's second...) and
    their times in microseconds."""
    rng = np.random.default_rng(1000 + index)
    n = shape.entities * shape.rows_per_entity
    micros = _spread_times(rng, shape.rows_per_entity, shape.entities)
    frame = pd.DataFrame({KEY: np.tile(np.arange(shape.entities, dtype=np.int64), shape.rows_per_entity),
                          FEATURE_TIME: pd.to_datetime(micros, unit="us", utc=True).astype("datetime64[us, UTC]")})
    for feature in table.features:
        raw = rng.integers(0, 10_000, n)
        if feature.dtype == "double":
            frame[feature.name] = raw / 100.0
        elif feature.dtype == "bigint":
            frame[feature.name] = raw.astype(np.int64)
        else:
            frame[feature.name] = np.char.add("c", (raw % 30).astype(str))
    return frame, micros


def label_rows(shape: Shape, feature_times: list[np.ndarray]) -> pd.DataFrame:
    """The labels; ``feature_times[i]`` are table ``i``'s row times (microseconds) in :func:`feature_rows` order."""
    rng = np.random.default_rng(7)
    per_entity = max(1, shape.labels // shape.entities)
    keys = np.tile(np.arange(shape.entities, dtype=np.int64), per_entity)[:shape.labels]
    micros = _spread_times(rng, per_entity, shape.entities)[:shape.labels]
    ties = np.flatnonzero(rng.random(len(keys)) < shape.tie_fraction)
    if len(ties):
        rounds = rng.integers(0, shape.rows_per_entity, len(ties))
        table = ties % len(feature_times)
        for t, times in enumerate(feature_times):
            mine = table == t
            micros[ties[mine]] = times[rounds[mine] * shape.entities + keys[ties[mine]]]
    return pd.DataFrame({KEY: keys,
                         LABEL_TIME: pd.to_datetime(micros, unit="us", utc=True).astype(
                             f"datetime64[{shape.label_time_unit}, UTC]"),
                         LABEL: rng.integers(0, 2, len(keys)).astype(np.int64)})


@dataclass(frozen=True)
class SourceFiles:
    """Where :func:`write_sources` put the files."""

    labels: str
    tables: dict[str, str]


def write_sources(shape: Shape, folder: Path) -> SourceFiles:
    """Write every table's rows and the labels as parquet with pandas; return the paths."""
    folder.mkdir(parents=True, exist_ok=True)
    paths, times = {}, []
    for index, table in enumerate(tables(shape)):
        rows, micros = feature_rows(shape, table, index)
        times.append(micros)
        paths[table.name] = str(folder / f"{table.name}.parquet")
        rows.to_parquet(paths[table.name], index=False)
    labels = label_rows(shape, times)
    labels_path = str(folder / "labels.parquet")
    labels.to_parquet(labels_path, index=False)
    return SourceFiles(labels_path, paths)


def create_tables(spark: Any, config: Any, shape: Shape, sources: SourceFiles) -> None:
    """Create each Delta feature table from its parquet file, as featurelake's build does (one commit)."""
    from benchmarks.common import create_feature_table

    for table in tables(shape):
        create_feature_table(spark, table, config.table_path(table.name), spark.read.parquet(sources.tables[table.name]))
