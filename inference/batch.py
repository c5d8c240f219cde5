"""Batch inference: resolve the model once, look up its features, score with spark_udf, write to Delta.

    scored = score_frame(spark, config, entities, "models:/churn_model/Production")   # a DataFrame, nothing written
    result = run_batch_inference(spark, config, "entities", "models:/churn_model/Production",
                                 batch_id="2026-11-26")                              # score_frame + one Delta commit

Every check (model reference, signature, keys, feature tables, types) runs before any data
is processed; the data then flows once through the join, the UDF and one Delta commit.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from featurestore.core.config import Config, is_uri
from featurestore.core.errors import BadInputError, NotFoundError
from featurestore.core.identifiers import validate_identifier
from featurestore.data_files import read_data_files
from featurestore.runtime.progress import progress
from featurestore.training_set import FeatureLookup, TrainingSetSpec, join_features
from inference.model_reference import ResolvedModel, resolve_model
from inference.predictions import BatchWrite, validate_batch_id, write_batch
from inference.scoring import (
    DEFAULT_ARROW_BATCH, ScoringModel, arrow_batch_size, check_inputs, load_scoring_model, match_parallelism,
    score,
)

logger = logging.getLogger(__name__)

DEFAULT_MODEL_URI_TEMPLATE = "models:/{name}/Production"
DEFAULT_OUTPUT_TABLE = "predictions"


@dataclass(frozen=True)
class BatchResult:
    """What one batch-inference run did."""

    model: ResolvedModel
    batch_id: str
    output_table: str
    output_path: str
    rows_written: int
    delta_version: int | None
    feature_lookup: bool
    scored_at: datetime
    seconds: float

    @property
    def empty(self) -> bool:
        """True when the input had no rows and nothing was written."""
        return self.delta_version is None


def is_table_name(source: str) -> bool:
    """True when ``source`` names a table of the warehouse rather than a path (``entities``, not ``data/e.parquet``)."""
    return "/" not in source and "\\" not in source and not source.endswith(".parquet")


def input_locations(config: Config, source: str) -> list[str]:
    """What scoring ``source`` reads: the warehouse (feature tables, predictions) and the entities
    when they are a path rather than a warehouse table."""
    return [config.warehouse] + ([] if is_table_name(source) else [source])


def read_input(spark: SparkSession, config: Config, source: str) -> DataFrame:
    """Read the entities to score: a table of the warehouse (by name) or a Delta/parquet path.

    A URI (``dbfs:/...``, ``abfss://...``, ``file:/...``) is handed to Spark as it is; a local path
    must exist.

    Parquet nanosecond timestamps (pandas' default) are read as timestamps
    (:func:`featurestore.data_files.read_data_files`).

    Raises:
        NotFoundError: neither a warehouse table nor an existing path or URI.
        BadInputError: the path exists but cannot be read.
    """
    if is_table_name(source):
        validate_identifier(source, "input table name")
        path = config.table_path(source)
        if DeltaTable.isDeltaTable(spark, path):
            return spark.read.format("delta").load(path)
        raise NotFoundError(f"input table {source!r} not found in warehouse {config.warehouse}")
    if not is_uri(source) and not Path(source).exists():
        raise NotFoundError(f"input path {source!r} does not exist")
    if DeltaTable.isDeltaTable(spark, source):
        return spark.read.format("delta").load(source)
    try:
        return read_data_files(spark, source, "entities")
    except NotFoundError:
        raise NotFoundError(f"input path {source!r} does not exist") from None


def _load_spec(run_id: str | None, config: Config) -> TrainingSetSpec | None:
    """The training-set spec logged with the model's run, or None when there is none."""
    from inference.tracking import load_spec

    if run_id is None:
        return None
    try:
        return load_spec(run_id, config)
    except NotFoundError:
        return None


def lookup_features(spark: SparkSession, config: Config, df: DataFrame, spec: TrainingSetSpec | None,
                    model: ScoringModel) -> tuple[DataFrame, bool]:
    """Join the model's features from the feature tables unless ``df`` already holds them all.

    Every model input absent from ``df`` is looked up, optional ones too: MLflow marks an input
    optional when the training rows held a null in it, which says nothing about the input's use.
    Without a training-set spec, only optional inputs may be absent.

    Returns the DataFrame to score and whether a lookup was made.

    Raises:
        BadInputError: required inputs missing and no spec to look them up with, or the input lacks a key.
        NotFoundError: a feature table or feature the model needs does not exist.
    """
    label = f"model {model.resolved.name!r} version {model.resolved.version}"
    missing = [c for c in model.feature_names if c not in df.columns]
    if not missing:
        return df, False
    if spec is None or not spec.lookups:
        missing_required = [c for c in model.required_features if c not in df.columns]
        if missing_required:
            raise BadInputError(
                f"input lacks column(s) {', '.join(missing_required)} that {label} needs, and the model has no "
                "training-set spec to look them up in the feature tables")
        return df, False
    absent_keys = [k for k in spec.entity_keys if k not in df.columns]
    if absent_keys:
        raise BadInputError(f"input lacks key column(s) {', '.join(absent_keys)} that {label} is looked up by "
                            f"(input columns: {', '.join(df.columns)})")
    lookups = []
    for lookup in spec.feature_lookups():
        wanted = [f for f in (lookup.features or []) if f not in df.columns] if lookup.features else None
        if lookup.features and not wanted:
            continue  # the input already carries every feature of this lookup
        ts = lookup.timestamp_lookup_key if lookup.timestamp_lookup_key in df.columns else None
        lookups.append(FeatureLookup(lookup.table, wanted, lookup.lookup_keys, ts, lookup.ttl))
    joined, resolved = join_features(spark, config, df, lookups)
    for item in resolved:
        logger.info("features %s from %s (Delta version %d, %s)", ", ".join(item["features"]), item["table"],
                    item["delta_version"],
                    f"as of {item['timestamp_lookup_key']}" if item["timestamp_lookup_key"] else "latest values")
    still_missing = [c for c in model.required_features if c not in joined.columns]
    if still_missing:
        raise NotFoundError(f"feature(s) {', '.join(still_missing)} that {label} needs are in none of the "
                            f"feature tables {', '.join(x['table'] for x in resolved)}")
    return joined, True


def default_kept_columns(spec: TrainingSetSpec | None, df: DataFrame) -> list[str]:
    """The input columns a batch keeps by default: the training-set spec's entity keys, and its
    timestamp key when the input has it (features are then looked up as of each row's time, and
    one entity may be scored at several times)."""
    if spec is None:
        return []
    keys = list(spec.entity_keys)
    timestamp = spec.timestamp_key
    return keys + [timestamp] if keys and timestamp and timestamp in df.columns else keys


OUTPUT_COLUMNS = ("prediction", "probability", "model_name", "model_version", "run_id")


@dataclass(frozen=True)
class ScoredFrame:
    """A DataFrame scored by one model version (lazy: nothing has run or been written yet)."""

    df: DataFrame                # kept input columns, prediction[, probability], model_name, model_version, run_id
    model: ResolvedModel
    keys: list[str]              # the input columns kept
    feature_lookup: bool         # the features were looked up in the feature tables
    has_probability: bool


def score_frame(spark: SparkSession, config: Config, df: DataFrame, model_uri: str, *,
                keys: list[str] | None = None, keep_input: bool = False,
                with_probability: bool = True) -> ScoredFrame:
    """Score ``df`` with the model ``model_uri``: its features are looked up by the keys (and
    timestamps, point in time) that the model's training-set spec names, unless ``df`` has them.

    The reference is resolved to one version once; the signature, keys, tables and types are
    all checked before any data is processed. Nothing is written.

    Args:
        spark: the session.
        config: the project configuration (warehouse, MLflow).
        df: the entities (keys, and optionally the spec's timestamp column) or every model input.
        model_uri: ``models:/NAME/Production`` (or a stage, ``@alias``, version).
        keys: input columns to keep (default: :func:`default_kept_columns`).
        keep_input: keep every input column instead.
        with_probability: add the probability column for classifiers with ``predict_proba``.

    Raises:
        BadInputError, NotFoundError: as :func:`run_batch_inference`.
    """
    resolved = resolve_model(config, model_uri)
    model = load_scoring_model(resolved, with_probability=with_probability)
    spec = _load_spec(resolved.run_id, config)

    keys = list(df.columns) if keep_input else list(keys) if keys else default_kept_columns(spec, df)
    if not keys:
        raise BadInputError(f"no entity keys: model {resolved.name!r} has no training-set spec; pass the key "
                            "column(s) to keep in the predictions (--keys)")
    absent = [k for k in keys if k not in df.columns]
    if absent:
        raise BadInputError(f"input lacks key column(s) {', '.join(absent)} (input columns: {', '.join(df.columns)})")
    clashing = [k for k in keys if k in OUTPUT_COLUMNS]
    if clashing:
        raise BadInputError(f"input column(s) {', '.join(clashing)} would clash with the scoring output's "
                            f"({', '.join(OUTPUT_COLUMNS)}): rename or drop them")
    # Spread the input, not the joined rows: counting the partitions of a join runs its shuffles,
    # and the write would run them again. The joined rows keep the default parallelism (measured
    # from 500 to 1M entities, broadcast and shuffled joins, latest and point-in-time features).
    df = match_parallelism(spark, df)
    features, looked_up = lookup_features(spark, config, df, spec, model)
    features = check_inputs(features, model, "input" if not looked_up else "input joined with the feature tables")
    scored = score(spark, features, model, keys)
    if not model.has_probability and with_probability:
        logger.info("model %s version %d gives no probabilities: prediction only", resolved.name, resolved.version)
    out = scored.select(
        "*",
        F.lit(resolved.name).alias("model_name"),
        F.lit(resolved.version).cast("bigint").alias("model_version"),
        F.lit(resolved.run_id).cast("string").alias("run_id"),
    )
    return ScoredFrame(out, resolved, keys, looked_up, model.has_probability)


def run_batch_inference(spark: SparkSession, config: Config, source: str | DataFrame, model_uri: str, *,
                        output_table: str = DEFAULT_OUTPUT_TABLE, batch_id: str | None = None,
                        keys: list[str] | None = None, with_probability: bool = True,
                        arrow_batch: int = DEFAULT_ARROW_BATCH) -> BatchResult:
    """Score ``source`` with the model ``model_uri`` (:func:`score_frame`) and append the batch to ``output_table``.

    Args:
        spark: the session.
        config: the project configuration (warehouse, MLflow).
        source: the entities to score - a warehouse table name, a Delta/parquet path or a
            DataFrame - with the key columns (and optionally the spec's timestamp column), or
            with every model input already present.
        model_uri: ``models:/NAME/Production`` (or a stage, ``@alias``, version), resolved once.
        output_table: predictions table name in the warehouse.
        batch_id: identifies the batch together with the model's name; a rerun of the same model
            with the same id replaces that model's rows of the batch (other models' rows stay).
            Default: the UTC scoring date (``YYYY-MM-DD``), so a daily rerun is safe.
        keys: input columns to keep (default: :func:`default_kept_columns`: the training-set spec's
            entity keys, plus its timestamp column when the input has it).
        with_probability: add the probability column for classifiers.
        arrow_batch: records per Arrow batch sent to the Python workers.

    Raises:
        BadInputError, NotFoundError: see the job's documented exit codes; nothing is written.
    """
    started = time.monotonic()
    scored_at = datetime.now(timezone.utc).replace(microsecond=0)
    batch_id = validate_batch_id(batch_id or scored_at.date().isoformat())
    validate_identifier(output_table, "output table name")
    output_path = config.table_path(output_table)

    df = read_input(spark, config, source) if isinstance(source, str) else source
    scored = score_frame(spark, config, df, model_uri, keys=keys, with_probability=with_probability)
    resolved = scored.model
    if df.isEmpty():
        logger.warning("input is empty: nothing scored, nothing written to %s", output_table)
        return BatchResult(resolved, batch_id, output_table, output_path, 0, None, scored.feature_lookup, scored_at,
                           time.monotonic() - started)

    batch = scored.df.select(
        "*",
        F.lit(batch_id).alias("batch_id"),
        F.lit(scored_at).cast("timestamp").alias("scored_at"),
        F.lit(scored_at.date()).cast("date").alias("scoring_date"),
    )
    with arrow_batch_size(spark, arrow_batch), progress(spark, f"scoring batch {batch_id}"):
        written: BatchWrite = write_batch(spark, batch, output_path, output_table, resolved.name, batch_id,
                                          scored.keys)
    seconds = time.monotonic() - started
    logger.info("model %s version %d scored %d rows in %.1f s -> %s (batch %s, Delta version %d)",
                resolved.name, resolved.version, written.rows_written, seconds, output_path, batch_id,
                written.delta_version)
    return BatchResult(resolved, batch_id, output_table, output_path, written.rows_written,
                       written.delta_version, scored.feature_lookup, scored_at, seconds)
