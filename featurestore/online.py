"""Online features: materialize the newest feature values into Feast's online store, read them back.

Materialization runs through Feast itself (``FeatureStore.materialize`` on the first run of
a feature view, ``FeatureStore.materialize_incremental`` afterwards), so Feast's registry
records the materialized intervals and ``feast -c REPO materialize-incremental`` continues
where featurelake stopped.

Feast's default ("local") batch engine pulls every row of the time window through
``RetrievalJob.to_arrow()``, which for the Spark offline store is ``DataFrame.toPandas()``:
the whole window is collected to the driver. The repository therefore configures Feast's
Spark compute engine (``batch_engine: spark.engine``, see :mod:`featurestore.feast_repo`):
the latest row per key is selected by Spark and each partition is written to the online
store from the executors (``mapInArrow``), so the driver never holds the table.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Iterator, Mapping

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from featurestore.core.config import Config
from featurestore.delta_tables import table_exists
from featurestore.core.errors import BadInputError, DependencyUnavailableError, FeaturelakeError, NotFoundError
from featurestore.feast_repo import MANAGED_BY_TAG, feature_store
from featurestore.core.identifiers import validate_identifier

logger = logging.getLogger(__name__)

# Start of the first materialization of a feature view: everything in the table.
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
# Feast's Spark offline store turns this on for the whole session; we put it back afterwards.
_REGEX_COLUMNS_CONF = "spark.sql.parser.quotedRegexColumnNames"


@dataclass(frozen=True)
class MaterializeResult:
    """What one materialization of one feature table covered."""

    table: str
    start: datetime
    end: datetime
    incremental: bool
    rows_in_window: int
    keys_in_window: int
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        """Return JSON-ready data (timestamps as ISO 8601)."""
        return {
            "table": self.table, "start": self.start.isoformat(), "end": self.end.isoformat(),
            "incremental": self.incremental, "rows_in_window": self.rows_in_window,
            "keys_in_window": self.keys_in_window, "seconds": round(self.seconds, 3),
        }


def parse_timestamp(text: str, what: str = "--end-date") -> datetime:
    """Parse an ISO 8601 date or timestamp; naive values are taken as UTC."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise BadInputError(f"{what}: {text!r} is not an ISO 8601 date or timestamp") from None
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def managed_views(store) -> dict[str, Any]:
    """Return the feature views featurelake registered in ``store``, by name."""
    return {fv.name: fv for fv in store.list_feature_views()
            if (fv.tags or {}).get(MANAGED_BY_TAG) == "featurelake"}


def _select_views(store, names: list[str] | None) -> list:
    views = managed_views(store)
    if not names:
        return [views[n] for n in sorted(views)]
    for name in names:
        validate_identifier(name, "table name")
        if name not in views:
            known = ", ".join(sorted(views)) or "none"
            raise NotFoundError(f"feature table {name!r} is not registered in Feast (registered: {known})")
    return [views[n] for n in names]


@contextlib.contextmanager
def _feast_session(spark: SparkSession) -> Iterator[None]:
    """Run Feast with its console output on stderr and the session's settings restored after."""
    saved = spark.conf.get(_REGEX_COLUMNS_CONF, "false")
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        spark.conf.set(_REGEX_COLUMNS_CONF, saved)


def _window_counts(spark: SparkSession, view, start: datetime, end: datetime) -> tuple[int, int]:
    """Count rows and distinct keys of the view's Delta table in (start, end] (computed by Spark)."""
    source = view.batch_source
    ts = F.col(source.timestamp_field)
    df = spark.read.format("delta").load(source.path).where(
        (ts >= F.lit(start)) & (ts <= F.lit(end)))
    row = df.agg(F.count(F.lit(1)).alias("rows"),
                 F.count_distinct(*[F.col(k) for k in view.join_keys]).alias("keys")).first()
    return int(row["rows"]), int(row["keys"])


def _check_tables_exist(spark: SparkSession, views: list) -> None:
    """Refuse views whose Delta table is gone (before anything is materialized)."""
    for view in views:
        if not table_exists(spark, view.batch_source.path):
            raise NotFoundError(f"feature table {view.name!r} is registered in Feast, but there is no Delta table "
                                f"at {view.batch_source.path}")


def materialize(spark: SparkSession, config: Config, names: list[str] | None = None,
                end_date: datetime | None = None, full: bool = False) -> list[MaterializeResult]:
    """Load the newest feature values up to ``end_date`` into Feast's online store.

    The first run of a table materializes everything up to ``end_date``; later runs are
    incremental from the end of the previous run (Feast's ``materialize_incremental``), so
    they load rows with later event times only. ``full`` loads everything again: after a
    feature column was added, or values at earlier event times were corrected.

    Args:
        spark: the active Delta-capable session (Feast's Spark engine uses it).
        config: the project configuration.
        names: feature tables to materialize (default: every table featurelake registered).
        end_date: upper bound of event times to load (default: now, UTC).
        full: load every row up to ``end_date``, not only those after the previous run.

    Returns:
        One result per table, with the window and the rows/keys it held.
    """
    store = feature_store(config)
    views = _select_views(store, names)
    _check_tables_exist(spark, views)
    end = _utc(end_date) if end_date is not None else datetime.now(timezone.utc)
    results = []
    for view in views:
        previous = None if full else view.most_recent_end_time
        start = _utc(previous) if previous is not None else EPOCH
        if end <= start:
            logger.info("table %s: already materialized up to %s, nothing to do", view.name, start.isoformat())
            results.append(MaterializeResult(view.name, start, end, previous is not None, 0, 0, 0.0))
            continue
        rows, keys = _window_counts(spark, view, start, end)
        started = time.monotonic()
        try:
            with _feast_session(spark):
                if previous is None:
                    store.materialize(start_date=start, end_date=end, feature_views=[view.name])
                else:
                    store.materialize_incremental(end_date=end, feature_views=[view.name])
        except FeaturelakeError:
            raise
        except Exception as exc:  # Feast raises many types for store and engine failures
            raise DependencyUnavailableError(
                f"materialization of feature table {view.name!r} into the Feast online store failed: {exc}"
            ) from exc
        result = MaterializeResult(view.name, start, end, previous is not None, rows, keys,
                                   time.monotonic() - started)
        logger.info("table %s: materialized %s to %s (%s), %d rows, %d keys in window", view.name,
                    start.isoformat(), end.isoformat(), "incremental" if result.incremental else "full",
                    rows, keys)
        results.append(result)
    return results


def _convert_key(table: str, column: str, value: Any, value_type) -> Any:
    from feast import ValueType

    if not isinstance(value, str):
        return value
    try:
        if value_type in (ValueType.INT32, ValueType.INT64):
            return int(value)
        if value_type in (ValueType.FLOAT, ValueType.DOUBLE):
            return float(value)
        if value_type == ValueType.BOOL:
            if value.lower() not in ("true", "false"):
                raise ValueError(value)
            return value.lower() == "true"
    except ValueError:
        raise BadInputError(
            f"table {table!r}: key {column!r} expects a {value_type.name.lower()} value, got {value!r}"
        ) from None
    return value


def parse_key_values(pairs: list[str]) -> dict[str, str]:
    """Turn ``["k=v", ...]`` (the CLI's ``--key``) into a mapping."""
    keys: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise BadInputError(f"--key {pair!r}: expected COLUMN=VALUE")
        if name in keys:
            raise BadInputError(f"--key: column {name!r} given twice in one entity row")
        keys[name] = value
    return keys


def get_online_features(config: Config, table: str, keys: Mapping[str, Any] | list[Mapping[str, Any]],
                        features: list[str] | None = None) -> list[dict[str, Any]]:
    """Return the online feature values of ``table`` for one or more entity rows.

    Args:
        config: the project configuration.
        table: feature table (Feast feature view) name.
        keys: one entity row (``{"customer_id": 7}``) or a list of them; string values are
            converted to the key's type.
        features: features to return (default: all of the table).

    Returns:
        One dict per entity row: the key columns, each feature (None when the key is not in
        the online store), ``event_timestamp`` of the values and ``found``.
    """
    validate_identifier(table, "table name")
    rows = [keys] if isinstance(keys, Mapping) else list(keys)
    if not rows:
        raise BadInputError(f"table {table!r}: no entity keys given")
    store = feature_store(config)
    view = managed_views(store).get(table)
    if view is None:
        raise NotFoundError(f"feature table {table!r} is not registered in Feast repo {config.feast.repo_path}")
    key_types = {c.name: c.dtype.to_value_type() for c in view.entity_columns}
    available = [f.name for f in view.features]
    wanted = features or available
    unknown = [f for f in wanted if f not in available]
    if unknown:
        raise NotFoundError(f"table {table!r} has no feature(s) {', '.join(unknown)} (has: {', '.join(available)})")
    entity_rows = []
    for row in rows:
        missing = [k for k in key_types if k not in row]
        extra = [k for k in row if k not in key_types]
        if missing or extra:
            raise BadInputError(
                f"table {table!r}: entity keys are {', '.join(key_types)}; "
                + "; ".join(p for p in (f"missing {', '.join(missing)}" if missing else "",
                                        f"unknown {', '.join(extra)}" if extra else "") if p)
            )
        entity_rows.append({k: _convert_key(table, k, row[k], t) for k, t in key_types.items()})
    try:
        response = store.get_online_features(
            features=[f"{table}:{f}" for f in wanted], entity_rows=entity_rows
        ).to_dict(include_event_timestamps=True)
    except Exception as exc:
        raise DependencyUnavailableError(f"online store read of feature table {table!r} failed: {exc}") from exc
    result = []
    for i, entity in enumerate(entity_rows):
        values = {f: response[f][i] for f in wanted}
        stamps = [response.get(f"{f}__ts", [None] * len(entity_rows))[i] for f in wanted]
        stamp = next((s for s in stamps if s is not None), None)
        found = any(v is not None for v in values.values())
        result.append({**entity, **values, "event_timestamp": _to_iso(stamp) if found else None,
                       "found": found})
    return result


def _to_iso(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return _utc(value).isoformat()
    if isinstance(value, (int, float)):
        return datetime.fromtimestamp(value, tz=timezone.utc).isoformat()
    return str(value)
