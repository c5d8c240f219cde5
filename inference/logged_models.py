"""Logging a model with the training set it learned from, and registering it.

The one path that ``featurelake train`` (:func:`inference.training.train_model`) and the
notebook client (:meth:`inference.client.FeatureStoreClient.log_model`) share: a run that
records the training-set spec (artifact ``training_set_spec.json`` and tags), a model whose
signature comes from the training set's column types, and a registered version tagged with
the Delta versions of its feature tables. Batch scoring then needs only the entity keys.

    logged = log_model(config, model, flavor=mlflow.lightgbm, training_set=ts, registered_model_name="churn")
    logged.model_uri          # 'models:/churn/1'
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import re
import sys
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Iterator, Sequence

from pyspark.sql import DataFrame
from pyspark.sql import types as T

from featurestore.core.config import Config
from featurestore.core.errors import BadInputError
from featurestore.core.identifiers import validate_identifier
from featurestore.training_set import SPEC_ARTIFACT, TrainingSet, TrainingSetSpec
from inference.governance import events
from inference.governance.changes import current_user
from inference.tracking import client as mlflow_client
from inference.tracking import ensure_experiment

logger = logging.getLogger(__name__)

TAG_SOURCE = "featurelake.source"
TAG_TRAINING_SET = "featurelake.training_set"
TAG_FEATURE_TABLES = "featurelake.feature_tables"
TAG_MODEL_NAME = "featurelake.model_name"
TAG_TRAINER = "featurelake.trainer"          # who fitted the model: one of the two below
TRAINER_CLI = "featurelake train"
TRAINER_CLIENT = "FeatureStoreClient.log_model"
MAX_TAG_LENGTH = 5000
SAMPLE_ROWS = 20  # training-set rows the logged model predicts once, to learn its output type

# Spark type -> signature type. Numbers and booleans are doubles: a feature row missing at
# scoring time (an entity newer than its features) is NaN, which a long column cannot hold.
_NUMERIC = (T.ByteType, T.ShortType, T.IntegerType, T.LongType, T.FloatType, T.DoubleType, T.DecimalType,
            T.BooleanType)


@dataclass(frozen=True)
class LoggedModel:
    """A model logged with its training set (and registered when a name was given)."""

    run_id: str
    model_uri: str                 # models:/NAME/VERSION when registered, else the logged model's URI
    logged_model_uri: str
    model_name: str | None
    model_version: str | None
    spec: TrainingSetSpec


def default_source() -> str:
    """Return the script that runs this process (the ``featurelake.source`` tag default)."""
    main = sys.argv[0] if sys.argv and sys.argv[0] else ""
    return os.path.abspath(main) if main and main != "-c" else "interactive"


def input_schema(df: DataFrame, columns: Sequence[str]):  # noqa: ANN201 - mlflow.types.Schema
    """The signature inputs of the feature ``columns`` of ``df``, from their Spark types, every one required.

    Numbers and booleans become ``double``, strings ``string``, timestamps and dates ``datetime``.
    The types come from the schema, not from rows: a signature inferred from rows holding NaN
    marks those columns optional, and scoring would then not look them up.

    Raises:
        BadInputError: a column of another type (arrays, maps, structs...), naming it.
    """
    from mlflow.types.schema import ColSpec, Schema

    specs, refused = [], []
    for name in columns:
        dtype = df.schema[name].dataType
        if isinstance(dtype, _NUMERIC):
            specs.append(ColSpec("double", name))
        elif isinstance(dtype, T.StringType):
            specs.append(ColSpec("string", name))
        elif isinstance(dtype, (T.TimestampType, T.TimestampNTZType, T.DateType)):
            specs.append(ColSpec("datetime", name))
        else:
            refused.append(f"{name!r} ({dtype.simpleString()})")
    if refused:
        raise BadInputError(f"feature column(s) {', '.join(refused)} cannot be a model input: only numeric, "
                            "boolean, string and timestamp features are supported")
    return Schema(specs)


def signature_rows(df: DataFrame, columns: Sequence[str], rows: int = SAMPLE_ROWS):  # noqa: ANN201 - pandas
    """The first ``rows`` rows of the feature ``columns``, typed as :func:`input_schema` declares them."""
    import pandas as pd

    pdf = df.select(*columns).limit(rows).toPandas()
    for spec in input_schema(df, columns).inputs:
        if spec.type.name == "double":
            pdf[spec.name] = pd.to_numeric(pdf[spec.name], errors="coerce").astype("float64")
    return pdf


def tables_of(spec: TrainingSetSpec) -> str:
    """``table@vN,...``: the feature tables of ``spec`` at the Delta versions it read."""
    return ",".join(f"{x['table']}@v{x['delta_version']}" for x in spec.lookups)


@contextlib.contextmanager
def training_run(config: Config, spec: TrainingSetSpec, *, trainer: str, model_name: str | None = None,
                 source: str | None = None, run_name: str | None = None, join_active: bool = False) -> Iterator[Any]:
    """Start an MLflow run in the configured experiment that records the training set of its model.

    The spec goes in as the artifact ``training_set_spec.json`` (what scoring reads) and the
    tags ``featurelake.training_set`` and ``featurelake.feature_tables``; ``featurelake.trainer``
    says who fitted the model (the monitoring loop retrains only ``featurelake train``'s).
    With ``join_active`` a run the caller already started is used (and left open).

    Example::

        with training_run(config, ts.spec, trainer=TRAINER_CLIENT) as run:
            mlflow.lightgbm.log_model(model, name="model")
    """
    import mlflow

    experiment_id = ensure_experiment(config)
    active = mlflow.active_run() if join_active else None
    spec_json = spec.to_json()
    tags = {TAG_SOURCE: source or default_source(), TAG_TRAINING_SET: spec_json[:MAX_TAG_LENGTH],
            TAG_FEATURE_TABLES: tables_of(spec), TAG_TRAINER: trainer,
            **({TAG_MODEL_NAME: model_name} if model_name else {})}
    with (contextlib.nullcontext(active) if active is not None
          else mlflow.start_run(experiment_id=experiment_id, run_name=run_name)) as run:
        mlflow.set_tags(tags)
        mlflow.log_text(spec_json, SPEC_ARTIFACT)
        yield run


def flavor_name(flavor: ModuleType) -> str:
    """The name of an MLflow flavor module (``mlflow.lightgbm`` -> ``lightgbm``); anything else is refused."""
    name = getattr(flavor, "__name__", "")
    if not name.startswith("mlflow.") or not callable(getattr(flavor, "log_model", None)):
        raise BadInputError(f"flavor must be an MLflow flavor module such as mlflow.sklearn, mlflow.lightgbm or "
                            f"mlflow.pyfunc, got {flavor!r}")
    return name.removeprefix("mlflow.")


def log_flavor_model(model: Any, flavor: ModuleType, artifact_path: str, **log_kwargs: Any) -> Any:
    """Log ``model`` with the MLflow ``flavor`` module (``mlflow.sklearn``, ``mlflow.lightgbm``,
    ``mlflow.pyfunc``...) into the active run; return MLflow's ``ModelInfo``.

    A ``mlflow.pyfunc`` model is a ``PythonModel`` (passed as ``python_model``). A scikit-learn
    model saved in MLflow's default skops format trusts its own types (it is the caller's model),
    so that it loads again.
    """
    name = flavor_name(flavor)
    if name == "pyfunc":
        return flavor.log_model(name=artifact_path, python_model=model, **log_kwargs)
    if name == "sklearn" and log_kwargs.get("serialization_format") in (None, "skops") \
            and "skops_trusted_types" not in log_kwargs:
        import skops.io

        log_kwargs["skops_trusted_types"] = skops.io.get_untrusted_types(data=skops.io.dumps(model)) or None
    return flavor.log_model(model, name=artifact_path, **log_kwargs)


def output_schema(model_uri: str, sample) -> Any:  # noqa: ANN001 - pandas in, mlflow Schema out
    """The signature outputs of the logged model: its pyfunc prediction on ``sample``, as MLflow infers it.

    Raises:
        BadInputError: the model cannot predict the training set's feature columns.
    """
    import mlflow
    from mlflow.models import infer_signature

    try:
        predictions = mlflow.pyfunc.load_model(model_uri).predict(sample)
    except Exception as exc:  # noqa: BLE001 - any failure of the user's model
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise BadInputError(f"the model cannot predict the training set's feature columns "
                            f"({', '.join(sample.columns)}): {first}") from exc
    return infer_signature(sample, predictions).outputs


# What mlflow.register_model prints (to stderr) on every registration of register_version, whose
# model always exists by then and whose own log line names the version created.
_EXPECTED_REGISTRATION_LINES = re.compile(r"Registered model '.*' already exists\. Creating a new version of this "
                                          r"model\.\.\.|Created version '\d+' of model '.*'\.")


def _register_quietly(model_uri: str, model_name: str, tags: dict[str, str]) -> Any:
    """``mlflow.register_model`` without its expected console lines; anything else it prints is logged as a warning."""
    import mlflow

    printed = io.StringIO()
    with contextlib.redirect_stderr(printed):
        version = mlflow.register_model(model_uri, model_name, tags=tags)
    for line in printed.getvalue().splitlines():
        if line.strip() and not _EXPECTED_REGISTRATION_LINES.fullmatch(line.strip()):
            logger.warning("MLflow: %s", line)
    return version


def register_version(config: Config, model_name: str, model_uri: str, run_id: str, spec: TrainingSetSpec, *,
                     description: str, tags: dict[str, str] | None = None, model_description: str = "") -> str:
    """Register ``model_uri`` as a new version of ``model_name`` (created if new), tagged with its
    feature tables and run; return the version.

    Example::

        register_version(config, "churn_model", info.model_uri, run.info.run_id, ts.spec,
                         description="LightGBM on spend features")
    """
    client = mlflow_client(config, check=False)  # the caller logged the model through the same stores
    if not client.search_registered_models(filter_string=f"name = '{model_name}'"):
        client.create_registered_model(
            model_name, tags={"featurelake.label": spec.label or ""},
            description=model_description or f"Model trained by featurelake on label {spec.label!r}",
        )
    version = _register_quietly(model_uri, model_name, tags={
        **{str(k): str(v) for k, v in (tags or {}).items()},
        TAG_FEATURE_TABLES: tables_of(spec),
        "featurelake.run_id": run_id,
    })
    client.update_model_version(model_name, version.version, description=description)
    logger.debug("registered %s version %s (run %s)", model_name, version.version, run_id)
    events.notify(config, events.RegistryEvent.now(
        events.VERSION_CREATED, model_name, version.version, current_user(config),
        f"model {model_name}: version {version.version} registered (run {run_id})"))
    return str(version.version)


def log_model(config: Config, model: Any, *, flavor: ModuleType, training_set: TrainingSet,
              artifact_path: str = "model", registered_model_name: str | None = None, source: str | None = None,
              run_name: str | None = None, **log_kwargs: Any) -> LoggedModel:
    """Log a model the caller fitted, with the training set it learned from; register it when named.

    The signature's inputs are the training set's feature columns (``spec.feature_columns``,
    in that order: fit the model on them) with types from their Spark schema, every one
    required; its output is what the logged model predicts for the first training rows. The
    run (the caller's active run, else a new one in the configured experiment) records the
    spec, so that :func:`inference.batch.score_frame` looks the features up by keys.

    Args:
        config: the project configuration (MLflow stores, experiment).
        model: the fitted model (a ``PythonModel`` for ``mlflow.pyfunc``).
        flavor: the MLflow flavor module that logs it.
        training_set: from :func:`featurestore.training_set.create_training_set`.
        artifact_path: the model's name within the run.
        registered_model_name: register a new version of this model.
        source: notebook link or script path logged as ``featurelake.source``.
        run_name: the MLflow run name (a new run only).
        **log_kwargs: passed to ``flavor.log_model`` (``pip_requirements``, ``input_example``, ``metadata``...).

    Raises:
        BadInputError: a bad model name or flavor, an unsupported feature type, or a model that
            cannot predict the training set's feature columns (nothing is registered).
    """
    from mlflow.models import ModelSignature, set_signature

    from inference.scoring_model import PROBABILITY_FLAVORS, PROBABILITY_METADATA, gives_probability

    if not isinstance(training_set, TrainingSet):
        raise BadInputError(f"training_set must be a TrainingSet (from create_training_set), got "
                            f"{type(training_set).__name__}")
    name = validate_identifier(registered_model_name, "model name") if registered_model_name is not None else None
    flavor_label = flavor_name(flavor)
    spec = training_set.spec
    if not spec.feature_columns:
        raise BadInputError("the training set has no feature columns to log as the model's inputs")
    inputs = input_schema(training_set.df, spec.feature_columns)
    sample = signature_rows(training_set.df, spec.feature_columns)
    if flavor_label in PROBABILITY_FLAVORS:
        log_kwargs["metadata"] = {**(log_kwargs.get("metadata") or {}), PROBABILITY_METADATA: gives_probability(model)}
    with training_run(config, spec, trainer=TRAINER_CLIENT, model_name=name, source=source, run_name=run_name,
                      join_active=True) as run:
        info = log_flavor_model(model, flavor, artifact_path, signature=ModelSignature(inputs=inputs), **log_kwargs)
        set_signature(info.model_uri, ModelSignature(inputs=inputs, outputs=output_schema(info.model_uri, sample)))
        run_id = run.info.run_id
    version = None
    if name is not None:
        version = register_version(config, name, info.model_uri, run_id, spec, description=(
            f"{type(model).__name__} ({flavor.__name__}) on features {', '.join(spec.feature_columns)} "
            f"from {tables_of(spec) or 'no feature table'}"))
    logger.info("logged %s with training set (%s)%s", type(model).__name__, tables_of(spec),
                f" as {name} version {version}" if version else "")
    return LoggedModel(run_id, f"models:/{name}/{version}" if version else info.model_uri, info.model_uri, name,
                       version, spec)
