"""Training: point-in-time training set -> scikit-learn pipeline -> MLflow run -> registered version.

Each run logs parameters, ``mlflow.models.evaluate`` metrics on a held-out split, the model
(sklearn flavor, signature, input example), the source link (``featurelake.source`` tag)
and the training-set spec (artifact ``training_set_spec.json`` and tag
``featurelake.training_set``), so the model can be traced back to the exact Delta versions
of the feature tables it learned from.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Sequence

from delta.tables import DeltaTable
from pyspark.errors import AnalysisException
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import types as T

from featurestore.core.config import Config
from featurestore.core.errors import BadInputError, DependencyUnavailableError, NotFoundError
from featurestore.core.identifiers import validate_identifier
from featurestore.core.secrets import redact_text, redact_uri
from featurestore.runtime.progress import progress
from inference.estimators import TASKS, build_pipeline, load_estimator, parse_params, simple_params
from inference.logged_models import (
    TRAINER_CLI, log_flavor_model, register_version, training_run,
)
from inference.settings import TRAINING, TrainingSettings, configured_label, configured_model_name
from inference.tracking import configure_mlflow
from featurestore.data_files import read_data_files
from featurestore.training_set import FeatureLookup, TrainingSetSpec, create_training_set

logger = logging.getLogger(__name__)

MODEL_ARTIFACT = "model"
_NUMERIC = (T.ByteType, T.ShortType, T.IntegerType, T.LongType, T.FloatType, T.DoubleType, T.DecimalType,
            T.BooleanType)


@dataclass
class TrainingResult:
    """What one training run produced."""

    run_id: str
    model_name: str
    model_version: str | None
    model_uri: str
    metrics: dict[str, float]
    spec: TrainingSetSpec
    n_train: int
    n_test: int
    params: dict[str, Any] = field(default_factory=dict)


def lookups_from_settings(settings: TrainingSettings) -> list[FeatureLookup]:
    """Return the configured feature lookups."""
    lookups = []
    for i, item in enumerate(settings.lookups):
        if not item.table:
            raise BadInputError(f"configuration training.lookups[{i}]: 'table' is required")
        lookups.append(FeatureLookup(
            table=item.table, features=item.features, lookup_keys=item.lookup_keys,
            timestamp_lookup_key=item.timestamp_lookup_key,
            ttl=timedelta(seconds=item.ttl_seconds) if item.ttl_seconds is not None else None,
        ))
    return lookups


def read_labels(spark: SparkSession, path: str) -> DataFrame:
    """Read a labels table: a Delta folder as Delta, anything else as parquet (nanosecond timestamps too)."""
    if not DeltaTable.isDeltaTable(spark, path):
        return read_data_files(spark, path, "labels")
    try:
        df = spark.read.format("delta").load(path)
        df.schema  # noqa: B018 - fail here when the table cannot be read
    except AnalysisException as exc:  # the table exists: bad input, not "not found"
        raise BadInputError(f"labels at {path} cannot be read: {str(exc).splitlines()[0]}") from None
    return df


def _feature_kinds(df: DataFrame, columns: Sequence[str]) -> tuple[list[str], list[str]]:
    numeric, categorical, refused = [], [], []
    for name in columns:
        dtype = df.schema[name].dataType
        if isinstance(dtype, _NUMERIC):
            numeric.append(name)
        elif isinstance(dtype, T.StringType):
            categorical.append(name)
        else:
            refused.append(f"{name!r} ({dtype.simpleString()})")
    if refused:
        raise BadInputError(f"feature column(s) {', '.join(refused)} cannot be used by the model: "
                            "only numeric and string features are supported")
    return numeric, categorical


def _to_pandas(df: DataFrame, numeric: list[str], categorical: list[str], label: str, keys: list[str]):
    """Collect keys, features and label; numeric features become float64 (nulls as NaN)."""
    import pandas as pd

    pdf = df.select(*[k for k in keys if k not in (*numeric, *categorical, label)], *numeric, *categorical,
                    label).toPandas()
    for name in numeric:
        pdf[name] = pd.to_numeric(pdf[name], errors="coerce").astype("float64")
    for name in categorical:
        pdf[name] = pdf[name].astype(object).where(pdf[name].notna(), None)
    return pdf


def seeded_estimator(settings: TrainingSettings) -> Any:
    """The configured estimator; one with a ``random_state`` gets ``training.seed`` unless its
    parameters set one, so that a training run (a random forest, say) can be repeated."""
    params = parse_params(settings.estimator_params)
    estimator = load_estimator(settings.estimator, params)
    if "random_state" in estimator.get_params(deep=False) and "random_state" not in params:
        estimator.set_params(random_state=settings.seed)
    return estimator


def _split(pdf, label: str, task: str, test_fraction: float, seed: int):
    from sklearn.model_selection import train_test_split

    if not 0.0 < test_fraction < 1.0:
        raise BadInputError(f"training.test_fraction must be between 0 and 1, got {test_fraction}")
    stratify = None
    if task == "classifier":
        counts = pdf[label].value_counts()
        if len(counts) < 2:
            raise BadInputError(f"label {label!r} has a single class {list(counts.index)}: cannot train a classifier")
        if counts.min() >= 2:
            stratify = pdf[label]
    n_test = max(int(round(len(pdf) * test_fraction)), 2 if stratify is None else len(pdf[label].unique()))
    if len(pdf) - n_test < 2:
        raise BadInputError(f"training set too small to split: {len(pdf)} labelled row(s)")
    return train_test_split(pdf, test_size=n_test, random_state=seed, stratify=stratify)


def train_model(spark: SparkSession, config: Config, labels: DataFrame | str | None = None, *,
                model_name: str | None = None, lookups: Sequence[FeatureLookup] | None = None,
                register: bool = True, source: str | None = None,
                run_name: str | None = None) -> TrainingResult:
    """Build the training set, fit the configured estimator and log (and register) it with MLflow.

    Args:
        spark: the session.
        config: the project configuration (``training`` section, MLflow stores).
        labels: a labels DataFrame or a path; default ``training.labels_path``.
        model_name: the registered model; default ``training.model_name``.
        lookups: feature lookups; default the configured ones.
        register: register the logged model as a new version of ``model_name``.
        source: notebook link or script path logged as ``featurelake.source``.
        run_name: the MLflow run name.

    Returns:
        A :class:`TrainingResult` with the run id, registered version and metrics.

    Raises:
        BadInputError: no model name or label column configured; bad labels, lookups, estimator
            or an empty training set.
        NotFoundError: a table, feature or the labels do not exist.
        DependencyUnavailableError: MLflow cannot be reached.
    """
    import mlflow

    settings = TRAINING.of(config)
    model_name = validate_identifier(configured_model_name(config, model_name), "model name")
    if settings.task not in TASKS:
        raise BadInputError(f"training.task must be one of {', '.join(TASKS)}, got {settings.task!r}")
    label = configured_label(config)
    estimator = seeded_estimator(settings)
    configure_mlflow(config)  # fail fast, before any Spark work, when MLflow is unreachable
    lookups = list(lookups) if lookups is not None else lookups_from_settings(settings)
    if not lookups:
        raise BadInputError("no feature lookups: configure training.lookups or pass lookups")
    if labels is None:
        labels = settings.labels_path
        if not labels:
            raise BadInputError("no labels: pass --labels PATH or set training.labels_path")
    labels_df = read_labels(spark, labels) if isinstance(labels, str) else labels
    training_set = create_training_set(spark, config, labels_df, lookups, label=label,
                                       drop_missing=settings.drop_missing)
    spec = training_set.spec
    numeric, categorical = _feature_kinds(training_set.df, spec.feature_columns)
    keys = [*spec.entity_keys, *([spec.timestamp_key] if spec.timestamp_key else [])]
    with progress(spark, "joining the training set"):
        pdf = _to_pandas(training_set.df, numeric, categorical, label, keys)
    missing_keys = {k: int(pdf[k].isna().sum()) for k in keys if pdf[k].isna().any()}
    if missing_keys:  # such a row can be joined to no feature: its features would all be null
        raise BadInputError("labels: null values in key column(s) "
                            + ", ".join(f"{k!r} ({n} rows)" for k, n in missing_keys.items()))
    unlabelled = int(pdf[label].isna().sum())
    if unlabelled:
        logger.warning("dropping %d row(s) with a null label %r", unlabelled, label)
        pdf = pdf[pdf[label].notna()]
    if pdf.empty:
        raise BadInputError(f"empty training set: no labelled rows after joining {len(lookups)} lookup(s) "
                            f"on tables {', '.join(x['table'] for x in spec.lookups)}")
    spec = TrainingSetSpec(spec.label, spec.timestamp_key, spec.entity_keys, [*numeric, *categorical], spec.lookups)
    train_df, test_df = _split(pdf, label, settings.task, settings.test_fraction, settings.seed)
    features = spec.feature_columns
    pipeline = build_pipeline(estimator, numeric, categorical)
    pipeline.fit(train_df[features], train_df[label])
    logger.debug("fitted %s on %d rows, %d features", settings.estimator, len(train_df), len(features))

    params = {
        "estimator": settings.estimator,
        **{f"estimator.{k}": v for k, v in simple_params(estimator).items()},
        "label": label, "task": settings.task, "n_train": len(train_df), "n_test": len(test_df),
        "n_features": len(features), "test_fraction": settings.test_fraction, "seed": settings.seed,
        "drop_missing": settings.drop_missing,
        **{f"delta_version.{x['table']}": x["delta_version"] for x in spec.lookups},
    }
    try:
        with training_run(config, spec, trainer=TRAINER_CLI, model_name=model_name,
                          source=source or settings.source_url, run_name=run_name or f"train-{model_name}") as run:
            mlflow.log_params(params)
            model_info = _log_model(pipeline, train_df[features])
            metrics = _evaluate(model_info.model_uri, test_df[[*features, label]], label, settings.task)
            run_id = run.info.run_id
    except (BadInputError, NotFoundError, DependencyUnavailableError):
        raise
    except Exception as exc:
        if _looks_unreachable(exc):
            raise DependencyUnavailableError(
                f"MLflow at {redact_uri(config.mlflow.tracking_uri)} failed: {redact_text(str(exc))}") from exc
        raise
    version = None
    if register:
        version = _register(config, model_name, model_info.model_uri, run_id, spec, metrics)
    logger.debug("run %s: %s", run_id, ", ".join(f"{k}={v:.4f}" for k, v in sorted(metrics.items())
                                               if k in ("roc_auc", "accuracy_score", "r2_score",
                                                        "root_mean_squared_error")))
    return TrainingResult(run_id=run_id, model_name=model_name, model_version=version,
                          model_uri=f"models:/{model_name}/{version}" if version else model_info.model_uri,
                          metrics=metrics, spec=spec, n_train=len(train_df), n_test=len(test_df), params=params)


def _log_model(pipeline: Any, x_train):
    import mlflow
    from mlflow.models import infer_signature

    from inference.scoring_model import PROBABILITY_METADATA, gives_probability

    example = x_train.head(5)
    signature = infer_signature(x_train, pipeline.predict(x_train))
    # Recorded so that batch scoring knows without loading the model on the driver.
    metadata = {PROBABILITY_METADATA: gives_probability(pipeline)}
    return log_flavor_model(pipeline, mlflow.sklearn, MODEL_ARTIFACT, signature=signature, input_example=example,
                            pip_requirements=pip_requirements(), metadata=metadata)


def pip_requirements() -> list[str]:
    """Pinned requirements of the logged model.

    Given explicitly so that MLflow does not infer them by loading the model in a
    subprocess (slow, and the model needs nothing beyond these).
    """
    from importlib.metadata import PackageNotFoundError, version

    pins = []
    for dist in ("mlflow", "scikit-learn", "skops", "numpy", "pandas", "scipy"):
        try:
            pins.append(f"{dist}=={version(dist)}")
        except PackageNotFoundError:
            continue
    return pins


def _evaluate(model_uri: str, test_df, label: str, task: str) -> dict[str, float]:
    import mlflow

    result = mlflow.models.evaluate(model_uri, data=test_df, targets=label, model_type=task,
                                    evaluators=["default"],
                                    evaluator_config={"default": {"log_model_explainability": False}})
    return {k: float(v) for k, v in result.metrics.items() if isinstance(v, (int, float))}


def _looks_unreachable(exc: BaseException) -> bool:
    text = str(exc).lower()
    return any(s in text for s in ("connection", "max retries", "timed out", "unable to open database"))


def _register(config: Config, model_name: str, model_uri: str, run_id: str, spec: TrainingSetSpec,
              metrics: dict[str, float]) -> str:
    """Register ``model_uri`` as a new version of ``model_name``, described by its estimator and test metrics."""
    settings = TRAINING.of(config)
    headline = {k: round(v, 4) for k, v in metrics.items() if k in ("roc_auc", "accuracy_score", "r2_score")}
    return register_version(
        config, model_name, model_uri, run_id, spec, tags=settings.tags, model_description=settings.description,
        description=(f"{settings.estimator} on features {', '.join(spec.feature_columns)} "
                     f"from {', '.join(x['table'] + '@v' + str(x['delta_version']) for x in spec.lookups)}; "
                     f"test metrics {headline}"),
    )
