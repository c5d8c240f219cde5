"""Reading what a check needs from Delta and MLflow: a batch's predictions, its labels, its features.

Features for drift come from the feature tables twice: as the model saw them when it was
trained (each table at the Delta version logged in the model's training-set spec) and as
they are now, for the same entities. The model's scores on the first are the reference
distribution of its predictions.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from featurestore.core.config import Config
from featurestore.core.errors import BadInputError, NotFoundError
from featurestore.core.identifiers import validate_identifier
from featurestore.training_set import TrainingSetSpec, join_features
from inference.predictions import validate_batch_id
from inference.scoring_model import predict_with_proba
from inference.settings import MONITORING

logger = logging.getLogger(__name__)

MAX_ROWS = 200_000  # rows collected per side for metrics and PSI (sampled above that)
SEED = 17


@dataclass(frozen=True)
class BatchPredictions:
    """The predictions of one batch by one model, with what is known about the model."""

    model_name: str
    model_version: int
    run_id: str | None
    batch_id: str
    table: str
    keys: list[str]             # entity keys, and the timestamp key for a batch scored point in time
    spec: TrainingSetSpec
    frame: DataFrame            # keys, prediction[, probability] of the batch
    row_count: int

    @property
    def has_probability(self) -> bool:
        """True when the predictions carry a probability column."""
        return "probability" in self.frame.columns


def load_batch(spark: SparkSession, config: Config, model_name: str, batch_id: str,
               table: str | None = None) -> BatchPredictions:
    """Read the rows of batch ``batch_id`` scored by ``model_name`` and the model's training-set spec.

    Raises:
        NotFoundError: no predictions table, or no rows of that model in that batch.
        BadInputError: invalid names, or a batch scored by several versions.
    """
    from inference.tracking import load_spec

    validate_identifier(model_name, "model name")
    validate_batch_id(batch_id)
    table = validate_identifier(table or MONITORING.of(config).predictions_table, "predictions table name")
    path = config.table_path(table)
    if not DeltaTable.isDeltaTable(spark, path):
        raise NotFoundError(f"predictions table {table!r} does not exist at {path}: run batch inference first")
    rows = (spark.read.format("delta").load(path)
            .where((F.col("batch_id") == F.lit(batch_id)) & (F.col("model_name") == F.lit(model_name))))
    versions = rows.select("model_version", "run_id").distinct().collect()
    if not versions:
        raise NotFoundError(f"no predictions of model {model_name!r} in batch {batch_id!r} "
                            f"of table {table!r}")
    if len(versions) > 1:
        raise BadInputError(f"batch {batch_id!r} of table {table!r} was scored by several versions of "
                            f"{model_name!r}: {sorted(int(v[0]) for v in versions)}")
    version, run_id = int(versions[0][0]), versions[0][1]
    spec = load_spec(run_id, config) if run_id else None
    keys = list(spec.entity_keys) if spec is not None else []
    if spec is None or not keys or any(k not in rows.columns for k in keys):
        raise BadInputError(f"cannot tell the entity keys of batch {batch_id!r} in table {table!r}: "
                            f"the training-set spec of {model_name!r} version {version} names {keys}")
    timestamp = spec.timestamp_key
    if timestamp and timestamp in rows.columns:  # scored point in time: an entity may appear at several times
        keys.append(timestamp)
    outputs = ["prediction"] + (["probability"] if "probability" in rows.columns else [])
    frame = rows.select(*keys, *outputs)
    count = frame.count()
    logger.info("batch %s: %d predictions of %s version %d", batch_id, count, model_name, version)
    return BatchPredictions(model_name, version, run_id, batch_id, table, keys, spec, frame, count)


def read_labels(spark: SparkSession, path: str) -> DataFrame:
    """Read labels (Delta folder or parquet) the way the training job does."""
    from inference.training import read_labels as read

    return read(spark, path)


def labeled_predictions(batch: BatchPredictions, labels: DataFrame, label: str | None = None) -> DataFrame:
    """Join the batch's predictions with the labels that arrived for its entities.

    Labels are matched on the batch's keys (the entity keys, and the timestamp for a batch
    scored point in time); with several labels per key the latest (by the spec's timestamp key) wins.

    Raises:
        BadInputError: the labels lack a key or the label column, a key type cannot be
            compared, or no prediction of the batch matches a label.
    """
    label = label or batch.spec.label
    if not label:
        raise BadInputError(f"model {batch.model_name!r} version {batch.model_version} has no label column "
                            "in its training-set spec")
    missing = [c for c in [*batch.keys, label] if c not in labels.columns]
    if missing:
        raise BadInputError(f"labels cannot be joined to the predictions of batch {batch.batch_id!r}: "
                            f"column(s) {', '.join(missing)} missing (labels have {', '.join(labels.columns)})")
    ts = batch.spec.timestamp_key
    casts = []
    for key in batch.keys:
        left, right = batch.frame.schema[key].dataType, labels.schema[key].dataType
        if left != right and not (left.typeName() in _NUMERIC and right.typeName() in _NUMERIC):
            raise BadInputError(f"labels cannot be joined to the predictions of batch {batch.batch_id!r}: "
                                f"key {key!r} is {right.simpleString()} in the labels but "
                                f"{left.simpleString()} in the predictions")
        casts.append(F.col(key).cast(left).alias(key))
    picked = labels.select(*casts, F.col(label).alias("__label"),
                           *([F.col(ts).alias("__label_time")] if ts and ts in labels.columns else []))
    if "__label_time" in picked.columns:
        order = Window.partitionBy(*batch.keys).orderBy(F.col("__label_time").desc_nulls_last())
        picked = picked.withColumn("__n", F.row_number().over(order)).where("__n = 1").drop("__n", "__label_time")
    else:
        picked = picked.dropDuplicates(batch.keys)
    joined = batch.frame.join(picked.where(F.col("__label").isNotNull()), on=batch.keys, how="inner")
    if joined.isEmpty() and not batch.frame.isEmpty():
        raise BadInputError(f"labels cannot be joined to the predictions of batch {batch.batch_id!r}: "
                            f"no label matches a prediction on {', '.join(batch.keys)}")
    return joined.withColumnRenamed("__label", "label")


_NUMERIC = {"byte", "short", "integer", "long", "float", "double", "decimal"}


def to_pandas_sample(df: DataFrame, count: int | None = None, max_rows: int = MAX_ROWS) -> pd.DataFrame:
    """Collect ``df``, sampled down to about ``max_rows`` rows when it is larger."""
    count = df.count() if count is None else count
    if count > max_rows:
        df = df.sample(fraction=max_rows / count, seed=SEED)
    return df.toPandas()


def entity_features(spark: SparkSession, config: Config, keys: DataFrame, spec: TrainingSetSpec,
                    as_trained: bool) -> DataFrame:
    """The model's feature columns for the entities in ``keys`` (latest value per entity).

    Args:
        as_trained: read each table at the Delta version the model was trained on;
            otherwise at its current version.
    """
    lookups = [dataclasses.replace(lookup, timestamp_lookup_key=None) for lookup in spec.feature_lookups()]
    if not lookups:
        raise BadInputError("the model's training-set spec has no feature lookups: cannot compute drift")
    versions = spec.delta_versions() if as_trained else {}
    joined, _ = join_features(spark, config, keys, lookups, delta_versions=versions)
    columns = [c for c in spec.feature_columns if c in joined.columns]
    return joined.select(*keys.columns, *columns)


def load_sklearn_model(config: Config, model_name: str, version: int) -> Any:
    """Load a registered version as the model it was logged as: a scikit-learn pipeline, an XGBoost or
    LightGBM classifier (with ``predict_proba``), else its pyfunc model (:func:`inference.scoring_model.scoring_flavor`)."""
    import mlflow

    from inference.scoring_model import load_flavor, scoring_flavor
    from inference.tracking import configure_mlflow

    configure_mlflow(config)
    uri = f"models:/{model_name}/{version}"
    info = mlflow.models.get_model_info(uri)
    return load_flavor(uri, scoring_flavor(info.flavors, info.metadata))


def model_outputs(model: Any, features: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """``prediction`` (and ``probability`` of the positive class for binary classifiers) for ``features``."""
    x = features[columns].copy()
    for name in columns:
        if pd.api.types.is_numeric_dtype(x[name]) or x[name].dtype == object and _all_numbers(x[name]):
            x[name] = pd.to_numeric(x[name], errors="coerce").astype("float64")
    if hasattr(model, "predict_proba"):
        prediction, proba = predict_with_proba(model, x)
    else:
        prediction, proba = model.predict(x), None
    out = pd.DataFrame({"prediction": np.asarray(prediction, dtype=float)}, index=features.index)
    if proba is not None:
        classes = list(getattr(model, "classes_", []))
        positive = classes.index(1) if 1 in classes else proba.shape[1] - 1
        out["probability"] = proba[:, positive] if proba.shape[1] == 2 else proba.max(axis=1)
    return out


def _all_numbers(series: pd.Series) -> bool:
    return bool(series.dropna().map(lambda v: isinstance(v, (int, float, np.number))).all())
