"""Point-in-time training sets: join feature tables onto labels without looking into the future.

For every row of the left DataFrame (labels, or entities to score) and every
:class:`FeatureLookup`, the features come from the latest feature row with the same keys
whose timestamp is at or before the row's timestamp (and, with a ttl, not older than the
timestamp minus the ttl). This is the semantics of Feast's ``get_historical_features`` and
Databricks' ``create_training_set``. Without a timestamp the latest row per key is used.

The join is a Spark union-and-window: the left rows and the feature rows of every
point-in-time lookup that shares the same lookup keys and timestamp column are unioned
(each table's row packed in its own struct column), partitioned by the keys, ordered by
time (feature rows before left rows at equal timestamps), and each left row carries the
last row seen so far of every table. The left side is therefore scanned and shuffled once
for all such lookups: one exchange, one sort, one window. Nothing is collected to the
driver and there is no range join, so a key with many feature rows and many labels costs
O(n log n), not O(n * m). Resolving a lookup runs no Spark job (the version, properties and
files come from the Delta log: :mod:`featurestore.table_reader`).

    lookups = [FeatureLookup("customer_profile", ["age"], timestamp_lookup_key="label_time")]
    training_set = create_training_set(spark, config, labels, lookups, label="churned")
    training_set.df            # labels + features
    training_set.spec.to_dict()
"""

from __future__ import annotations

import functools
import json
import logging
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from typing import Any, Mapping, Sequence

from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from featurestore.core.config import Config
from featurestore.core.errors import BadInputError, NotFoundError
from featurestore.core.identifiers import validate_identifier
from featurestore.table_metadata import parse_properties
from featurestore.table_reader import read_table_version

logger = logging.getLogger(__name__)

SPEC_ARTIFACT = "training_set_spec.json"

_PREFIX = "__fl_"
_SIDE = _PREFIX + "side"
_TS = _PREFIX + "ts"
_TIMESTAMP_TYPES = (T.TimestampType, T.TimestampNTZType, T.DateType)
_INTEGRAL_TYPES = (T.ByteType, T.ShortType, T.IntegerType, T.LongType)  # narrowest first


@dataclass(frozen=True)
class FeatureLookup:
    """Which features of which table to join, and how.

    Attributes:
        table: feature table name.
        features: features to take; None takes every feature of the table.
        lookup_keys: columns of the left DataFrame matching the table's primary keys, in key
            order; None means the same names as the primary keys.
        timestamp_lookup_key: left column for the point-in-time lookup; None takes the
            latest values per key.
        ttl: maximum age of a feature value, in whole seconds (a fraction is dropped; under one
            second is refused); None uses the table's ttl (its Delta properties).
    """

    table: str
    features: list[str] | None = None
    lookup_keys: list[str] | None = None
    timestamp_lookup_key: str | None = None
    ttl: timedelta | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "FeatureLookup":
        """Build a lookup from plain data (configuration or a logged spec).

        Accepts ``ttl_seconds`` (or ``ttl`` in seconds) for the ttl; unknown keys are refused.
        """
        allowed = {"table", "features", "lookup_keys", "timestamp_lookup_key", "ttl", "ttl_seconds",
                   "path", "delta_version"}
        unknown = sorted(set(data) - allowed)
        if unknown:
            raise BadInputError(f"feature lookup {dict(data)!r}: unknown key(s) {', '.join(unknown)}")
        if "table" not in data:
            raise BadInputError(f"feature lookup {dict(data)!r}: 'table' is required")
        seconds = data.get("ttl_seconds", data.get("ttl"))
        return cls(
            table=data["table"],
            features=list(data["features"]) if data.get("features") is not None else None,
            lookup_keys=list(data["lookup_keys"]) if data.get("lookup_keys") is not None else None,
            timestamp_lookup_key=data.get("timestamp_lookup_key"),
            ttl=timedelta(seconds=float(seconds)) if seconds is not None else None,
        )


@dataclass(frozen=True)
class _Resolved:
    """A lookup checked against its table, with everything needed to run it."""

    table: str
    path: str
    features: list[str]
    primary_keys: list[str]
    lookup_keys: list[str]
    table_timestamp: str
    timestamp_lookup_key: str | None
    ttl_seconds: int | None
    delta_version: int

    def to_dict(self) -> dict[str, Any]:
        return {"table": self.table, "path": self.path, "features": list(self.features),
                "lookup_keys": list(self.lookup_keys), "timestamp_lookup_key": self.timestamp_lookup_key,
                "ttl_seconds": self.ttl_seconds, "delta_version": self.delta_version}


@dataclass
class TrainingSetSpec:
    """What a model learned from: label, keys, feature columns and the exact feature data."""

    label: str | None
    timestamp_key: str | None
    entity_keys: list[str]
    feature_columns: list[str]
    lookups: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Return the spec as plain JSON-ready data."""
        return asdict(self)

    def to_json(self) -> str:
        """Return the spec as JSON text."""
        return json.dumps(self.to_dict(), indent=2, sort_keys=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "TrainingSetSpec":
        """Build a spec from :meth:`to_dict` output."""
        return cls(label=data.get("label"), timestamp_key=data.get("timestamp_key"),
                   entity_keys=list(data.get("entity_keys") or []),
                   feature_columns=list(data.get("feature_columns") or []),
                   lookups=[dict(x) for x in data.get("lookups") or []])

    def feature_lookups(self) -> list[FeatureLookup]:
        """Return the lookups of this spec as :class:`FeatureLookup` objects."""
        return [FeatureLookup.from_dict(x) for x in self.lookups]

    def delta_versions(self) -> dict[str, int]:
        """Return the Delta version each table was read at."""
        return {x["table"]: int(x["delta_version"]) for x in self.lookups if x.get("delta_version") is not None}


@dataclass
class TrainingSet:
    """A joined training DataFrame and the spec that reproduces it."""

    df: DataFrame
    spec: TrainingSetSpec

    def load_df(self) -> DataFrame:
        """Return the joined DataFrame: the input's columns, then each lookup's features (lazy).

        Example::

            pdf = training_set.load_df().toPandas()
        """
        return self.df


def _lossless_key_cast(left: T.DataType, table: T.DataType) -> bool:
    """True when a lookup key of type ``left`` casts to the table's key type without losing anything.

    Allowed: the same type, an integer to a wider integer, an integer to a string.
    """
    if left == table:
        return True
    if not isinstance(left, _INTEGRAL_TYPES):
        return False
    if isinstance(table, T.StringType):
        return True
    return isinstance(table, _INTEGRAL_TYPES) and (
        _INTEGRAL_TYPES.index(type(left)) <= _INTEGRAL_TYPES.index(type(table)))


def _check_key_types(table: str, left: DataFrame, data: DataFrame, lookup_keys: list[str],
                     primary_keys: list[str]) -> None:
    """Refuse lookup keys whose cast to the table's key types could fail or change a value."""
    for lookup_key, primary_key in zip(lookup_keys, primary_keys):
        left_type, table_type = left.schema[lookup_key].dataType, data.schema[primary_key].dataType
        if not _lossless_key_cast(left_type, table_type):
            raise BadInputError(
                f"lookup on table {table!r}: lookup key {lookup_key!r} has type {left_type.simpleString()} but the "
                f"table's key {primary_key!r} is {table_type.simpleString()}; cast the key column first "
                "(allowed without a cast: the same type, a narrower integer, or an integer for a string key)")


def resolve_lookup(spark: SparkSession, config: Config, left: DataFrame, lookup: FeatureLookup,
                   delta_version: int | None = None) -> tuple[_Resolved, DataFrame]:
    """Check ``lookup`` against its table and the left DataFrame; return it resolved and the table data."""
    if not isinstance(lookup, FeatureLookup):
        raise BadInputError(f"expected a FeatureLookup, got {type(lookup).__name__}")
    table = validate_identifier(lookup.table, "feature table name")
    path = config.table_path(table)
    table_version = read_table_version(spark, table, path, delta_version)
    version, data = table_version.number, table_version.data
    props = parse_properties(table_version.properties)
    primary_keys = list(props["primary_keys"])
    table_ts = props["timestamp_key"]
    if not primary_keys or not table_ts:
        raise BadInputError(f"table {table!r} at {path} is not a featurelake feature table "
                            "(no primary keys or timestamp key in its properties)")
    columns = data.columns
    all_features = [c for c in columns if c not in primary_keys and c != table_ts]
    if lookup.features is None:
        features = all_features
    else:
        features = list(lookup.features)
        unknown = [f for f in features if f not in all_features]
        if unknown:
            raise NotFoundError(f"feature table {table!r} has no feature(s) {', '.join(map(repr, unknown))} "
                                f"(features: {', '.join(all_features)})")
        if len(set(features)) != len(features):
            raise BadInputError(f"lookup on table {table!r} names a feature twice: {features}")
    if not features:
        raise BadInputError(f"lookup on table {table!r} selects no features")
    lookup_keys = list(lookup.lookup_keys) if lookup.lookup_keys is not None else list(primary_keys)
    if len(lookup_keys) != len(primary_keys):
        raise BadInputError(f"lookup on table {table!r}: {len(lookup_keys)} lookup key(s) {lookup_keys} for "
                            f"{len(primary_keys)} primary key(s) {primary_keys}")
    missing = [k for k in lookup_keys if k not in left.columns]
    if missing:
        raise BadInputError(f"lookup on table {table!r}: lookup key column(s) {', '.join(map(repr, missing))} "
                            f"missing from the input DataFrame (columns: {', '.join(left.columns)})")
    _check_key_types(table, left, data, lookup_keys, primary_keys)
    ts_key = lookup.timestamp_lookup_key
    if ts_key is not None:
        if ts_key not in left.columns:
            raise BadInputError(f"lookup on table {table!r}: timestamp lookup key {ts_key!r} missing from the "
                                f"input DataFrame (columns: {', '.join(left.columns)})")
        if not isinstance(left.schema[ts_key].dataType, _TIMESTAMP_TYPES):
            raise BadInputError(f"lookup on table {table!r}: timestamp lookup key {ts_key!r} has type "
                                f"{left.schema[ts_key].dataType.simpleString()}, expected timestamp or date")
    if lookup.ttl is not None:
        if lookup.ttl.total_seconds() <= 0:
            raise BadInputError(f"lookup on table {table!r}: ttl must be positive, got {lookup.ttl}")
        if lookup.ttl.total_seconds() < 1:  # whole seconds: it would become 0, that is no ttl
            raise BadInputError(f"lookup on table {table!r}: ttl must be at least one second, got {lookup.ttl}")
        ttl_seconds: int | None = int(lookup.ttl.total_seconds())
    else:
        ttl_seconds = props["ttl_seconds"] or None
    resolved = _Resolved(table, path, features, primary_keys, lookup_keys, table_ts, ts_key, ttl_seconds, version)
    return resolved, data


def payload_type(data: DataFrame, lookup: _Resolved) -> T.StructType:
    """Return the struct type carried per feature row: the features, and the row's timestamp when a ttl needs it."""
    stamp = [T.StructField("ts", T.TimestampType())] if lookup.ttl_seconds else []
    return T.StructType(stamp + [T.StructField(f"f{i}", data.schema[f].dataType)
                                 for i, f in enumerate(lookup.features)])


def _payload(lookup: _Resolved, ts: Column) -> Column:
    """The struct a feature row carries (see :func:`payload_type`)."""
    stamp = [ts.alias("ts")] if lookup.ttl_seconds else []
    return F.struct(*stamp, *[F.col(f).alias(f"f{i}") for i, f in enumerate(lookup.features)])


def _group_key(lookup: _Resolved, data: DataFrame) -> tuple:
    """Point-in-time lookups with equal keys (names and table key types) and timestamp share one window."""
    return (tuple(lookup.lookup_keys), tuple(data.schema[k].dataType.simpleString() for k in lookup.primary_keys),
            lookup.timestamp_lookup_key)


def _window_columns(left: DataFrame, lookup: _Resolved, key_types: list[T.DataType],
                    number: int) -> tuple[list[str], str]:
    """The key and time columns the window partitions and orders by.

    The left's own lookup key and timestamp columns when they already have the table's key
    types and the timestamp type (nothing is copied into the shuffle); otherwise new columns
    ``__fl_k<i>`` and ``__fl_ts<number>`` holding the casts.
    """
    own_keys = (len(set(lookup.lookup_keys)) == len(lookup.lookup_keys)
                and all(left.schema[k].dataType == t for k, t in zip(lookup.lookup_keys, key_types)))
    keys = list(lookup.lookup_keys) if own_keys else [f"{_PREFIX}k{i}" for i in range(len(key_types))]
    ts_key = lookup.timestamp_lookup_key
    own_time = isinstance(left.schema[ts_key].dataType, T.TimestampType) and ts_key not in keys
    return keys, ts_key if own_time else f"{_TS}{number}"


def _point_in_time(left: DataFrame, group: list[tuple[int, _Resolved, DataFrame]],
                   number: int) -> tuple[DataFrame, dict]:
    """Carry the latest feature row of every lookup in ``group`` onto each row of ``left``.

    ``group`` holds (lookup index, resolved lookup, table data) for lookups sharing lookup
    keys, key types and timestamp column. The left rows and every table's rows are unioned
    (table ``i``'s row packed in the struct column ``__fl_r<i>``, null elsewhere), partitioned
    by the keys and ordered by time, feature rows first at equal times; one window carries
    the last non-null struct of each table. Returns ``left``'s columns (plus the key and time
    columns of :func:`_window_columns` when they are new) and one struct column per lookup,
    and, per lookup index, the column expression "a feature row was found (within the ttl)".
    """
    first = group[0][1]
    key_types = [group[0][2].schema[k].dataType for k in first.primary_keys]
    keys, ts_col = _window_columns(left, first, key_types, number)
    rows = {index: f"{_PREFIX}r{index}" for index, _, _ in group}
    types = {index: payload_type(data, lookup) for index, lookup, data in group}
    new_keys = [F.col(lk).cast(t).alias(k) for lk, t, k in zip(first.lookup_keys, key_types, keys)
                if k not in left.columns]
    new_time = [F.col(first.timestamp_lookup_key).cast("timestamp").alias(ts_col)] if ts_col not in left.columns else []
    parts = [left.select(
        "*", *new_keys, *new_time,
        F.lit(1).alias(_SIDE),
        *[F.lit(None).cast(types[index]).alias(rows[index]) for index, _, _ in group],
    )]
    for index, lookup, data in group:
        ts = F.col(lookup.table_timestamp).cast("timestamp")
        parts.append(data.select(
            *[F.col(pk).alias(k) for pk, k in zip(lookup.primary_keys, keys)],
            ts.alias(ts_col),
            F.lit(0).alias(_SIDE),
            *[(_payload(lookup, ts) if other == index else F.lit(None).cast(types[other])).alias(rows[other])
              for other, _, _ in group],
        ))
    unioned = parts[0]
    for part in parts[1:]:
        unioned = unioned.unionByName(part, allowMissingColumns=True)
    window = (Window.partitionBy(*keys)
              .orderBy(F.col(ts_col).asc_nulls_first(), F.col(_SIDE).asc())
              .rowsBetween(Window.unboundedPreceding, Window.currentRow))
    carried = unioned.select(
        *[F.col(c) for c in dict.fromkeys([*left.columns, *keys, ts_col, _SIDE])],
        *[F.last(F.col(rows[index]), ignorenulls=True).over(window).alias(rows[index]) for index, _, _ in group],
    ).filter(F.col(_SIDE) == 1).drop(_SIDE)
    found = {}
    for index, lookup, _ in group:
        row = F.col(rows[index])
        condition = row.isNotNull() & F.col(ts_col).isNotNull()
        if lookup.ttl_seconds:
            condition = condition & (row.getField("ts")
                                     >= F.col(ts_col) - F.expr(f"INTERVAL {int(lookup.ttl_seconds)} SECONDS"))
        found[index] = condition
    return carried, found


def _latest(left: DataFrame, lookup: _Resolved, data: DataFrame, index: int) -> tuple[DataFrame, dict]:
    """Join the latest feature row per key onto ``left`` (no timestamp) as the struct ``__fl_r<index>``."""
    keys = [f"{_PREFIX}k{i}" for i in range(len(lookup.primary_keys))]
    key_types = [data.schema[k].dataType for k in lookup.primary_keys]
    row = f"{_PREFIX}r{index}"
    payload = F.struct(*[F.col(f).alias(f"f{i}") for i, f in enumerate(lookup.features)])
    latest = (data.groupBy(*[F.col(pk).alias(k) for pk, k in zip(lookup.primary_keys, keys)])
              .agg(F.max_by(payload, F.col(lookup.table_timestamp)).alias(row)))
    left_keyed = left.select("*", *[F.col(lk).cast(t).alias(k)
                                    for lk, t, k in zip(lookup.lookup_keys, key_types, keys)])
    joined = left_keyed.join(latest, on=keys, how="left")
    return joined.select(*[F.col(c) for c in left.columns], F.col(row)), {index: F.col(row).isNotNull()}


def join_features(spark: SparkSession, config: Config, df: DataFrame, lookups: Sequence[FeatureLookup], *,
                  drop_missing: bool = False,
                  delta_versions: Mapping[str, int] | None = None) -> tuple[DataFrame, list[dict]]:
    """Left-join each lookup's features onto ``df``, point in time.

    Point-in-time lookups that share lookup keys and timestamp column are joined together
    in one pass over ``df`` (one shuffle, one window); lookups without a timestamp take the
    latest row per key (an aggregate and a join each).

    Args:
        spark: the session.
        config: the project configuration (warehouse location).
        df: the left DataFrame (labels or entities), with the lookup keys (and timestamps).
        lookups: what to join.
        drop_missing: drop the rows that have no feature row (within ttl) for some lookup,
            instead of keeping them with nulls.
        delta_versions: table name -> Delta version to read (time travel); latest otherwise.

    Returns:
        The joined DataFrame (``df``'s columns, then each lookup's features) and the resolved
        lookups as dicts (table, path, features, lookup_keys, timestamp_lookup_key,
        ttl_seconds, delta_version).

    Raises:
        NotFoundError: a table, feature or Delta version does not exist.
        BadInputError: keys or timestamp missing from ``df``, a key type that does not convert
            to the table's key type without loss, or clashing column names.
    """
    if not lookups:
        raise BadInputError("no feature lookups given")
    delta_versions = dict(delta_versions or {})
    taken = set(df.columns)
    internal = [c for c in df.columns if c.startswith(_PREFIX)]
    if internal:
        raise BadInputError(f"input column(s) {internal} use the reserved prefix {_PREFIX!r}")
    resolved_all: list[_Resolved] = []
    groups: dict[tuple, list[tuple[int, _Resolved, DataFrame]]] = {}
    latest: list[tuple[int, _Resolved, DataFrame]] = []
    for index, lookup in enumerate(lookups):
        resolved, data = resolve_lookup(spark, config, df, lookup, delta_versions.get(lookup.table))
        clash = [f for f in resolved.features if f in taken]
        if clash:
            raise BadInputError(
                f"lookup on table {resolved.table!r}: feature(s) {', '.join(map(repr, clash))} clash with columns "
                "already present (in the input or an earlier lookup); select other features or rename the column"
            )
        taken.update(resolved.features)
        data = data.select(*resolved.primary_keys, resolved.table_timestamp, *resolved.features)
        if resolved.timestamp_lookup_key is None:
            latest.append((index, resolved, data))
        else:
            groups.setdefault(_group_key(resolved, data), []).append((index, resolved, data))
        resolved_all.append(resolved)
        logger.debug("lookup %s: %d feature(s) at Delta version %d (%s)", resolved.table, len(resolved.features),
                     resolved.delta_version,
                     f"point in time on {resolved.timestamp_lookup_key}, ttl "
                     + (f"{resolved.ttl_seconds}s" if resolved.ttl_seconds else "none")
                     if resolved.timestamp_lookup_key else "latest values")
    result = df
    found: dict[int, Column] = {}
    for number, group in enumerate(groups.values()):
        result, group_found = _point_in_time(result, group, number)
        found.update(group_found)
    for index, resolved, data in latest:
        result, latest_found = _latest(result, resolved, data, index)
        found.update(latest_found)
    if drop_missing:
        result = result.filter(functools.reduce(lambda a, b: a & b, found.values()))
    result = result.select(
        *[F.col(c) for c in df.columns],
        *[F.when(found[index], F.col(f"{_PREFIX}r{index}").getField(f"f{i}")).alias(feature)
          for index, resolved in enumerate(resolved_all) for i, feature in enumerate(resolved.features)],
    )
    return result, [resolved.to_dict() for resolved in resolved_all]


def build_spec(label: str | None, lookups: list[dict], feature_columns: list[str] | None = None) -> TrainingSetSpec:
    """Return the spec for resolved ``lookups`` (feature columns default to every looked-up feature)."""
    entity_keys: list[str] = []
    for lookup in lookups:
        for key in lookup["lookup_keys"]:
            if key not in entity_keys:
                entity_keys.append(key)
    timestamps = [x["timestamp_lookup_key"] for x in lookups if x.get("timestamp_lookup_key")]
    columns = feature_columns if feature_columns is not None else [f for x in lookups for f in x["features"]]
    return TrainingSetSpec(label=label, timestamp_key=timestamps[0] if timestamps else None,
                           entity_keys=entity_keys, feature_columns=list(columns), lookups=lookups)


def create_training_set(spark: SparkSession, config: Config, labels: DataFrame, lookups: Sequence[FeatureLookup],
                        label: str | None, *, exclude_columns: Sequence[str] = (), drop_missing: bool = False,
                        delta_versions: Mapping[str, int] | None = None) -> TrainingSet:
    """Join features onto ``labels`` point in time and describe the result.

    Args:
        spark: the session.
        config: the project configuration.
        labels: entity keys, the label column and the label timestamp.
        lookups: the features to join.
        label: the label column (None for an unlabelled set, e.g. scoring).
        exclude_columns: columns to drop from the result (not keys used by lookups).
        drop_missing: drop rows without a feature row for some lookup.
        delta_versions: table name -> Delta version to read (to reproduce a logged set).

    Returns:
        A :class:`TrainingSet` whose spec lists the feature columns in model input order.
    """
    if label is not None and label not in labels.columns:
        raise BadInputError(f"label column {label!r} missing from the labels (columns: {', '.join(labels.columns)})")
    df, resolved = join_features(spark, config, labels, lookups, drop_missing=drop_missing,
                                 delta_versions=delta_versions)
    unknown = [c for c in exclude_columns if c not in df.columns]
    if unknown:
        raise BadInputError(f"cannot exclude unknown column(s) {', '.join(map(repr, unknown))}")
    if exclude_columns:
        df = df.drop(*exclude_columns)
    spec = build_spec(label, resolved, [f for x in resolved for f in x["features"] if f not in exclude_columns])
    return TrainingSet(df, spec)
