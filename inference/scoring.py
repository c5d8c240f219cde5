"""Scoring a Spark DataFrame with a registry model through ``mlflow.pyfunc.spark_udf``.

The model is downloaded once (pinned version), its signature is checked against the
DataFrame's schema BEFORE any Spark job runs, and the UDF's result type comes from the
signature's output. Classifiers with ``predict_proba`` also get a probability column.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import mlflow
from mlflow.exceptions import MlflowException
from mlflow.models import Model, ModelSignature
from mlflow.types.schema import ColSpec, Schema
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from featurestore.core.errors import BadInputError, DependencyUnavailableError
from inference.model_reference import ResolvedModel
from inference.scoring_model import PROBABILITY_METADATA, gives_probability, scoring_flavor

logger = logging.getLogger(__name__)

ARROW_BATCH_CONF = "spark.sql.execution.arrow.maxRecordsPerBatch"
# Spark 4.2 hands a pandas UDF whose input comes straight from a parquet or Delta scan the
# reader's own batches (4096 rows) and ignores maxRecordsPerBatch. Scoring turns that columnar
# path off so that its batch size holds, which scores a parquet file faster (random forest and
# logistic regression: benchmarks/results/reruns/figures_from_commits.md).
# (Over a cached DataFrame the UDF gets the cache's 10,000-row batches either way.)
COLUMNAR_INPUT_CONF = "spark.sql.execution.arrow.pythonUDF.columnarInput.enabled"
DEFAULT_ARROW_BATCH = 100_000

# MLflow column type -> Spark SQL type name.
MLFLOW_TO_SPARK = {
    "double": "double", "float": "float", "long": "bigint", "integer": "int",
    "boolean": "boolean", "string": "string", "datetime": "timestamp", "binary": "binary",
}
# Spark types that are cast (without loss of meaning) to the type the signature asks for.
SAFE_CASTS = {
    # boolean -> double too: training turns boolean features into 0.0/1.0, so the signature says double
    "double": {"double", "float", "bigint", "int", "smallint", "tinyint", "boolean"},
    "float": {"float", "int", "smallint", "tinyint"},
    "bigint": {"bigint", "int", "smallint", "tinyint"},
    "int": {"int", "smallint", "tinyint"},
    "boolean": {"boolean"},
    "string": {"string"},
    "timestamp": {"timestamp", "timestamp_ntz", "date"},
    "binary": {"binary"},
}
NUMERIC = {"double", "float", "bigint", "int", "smallint", "tinyint"}


@dataclass
class ScoringModel:
    """A model version downloaded for scoring, with what its signature says."""

    resolved: ResolvedModel
    local_path: str
    input_columns: list[tuple[str, str, bool]]  # (name, Spark type, required), in signature order
    prediction_type: str                        # Spark type of the prediction column
    udf_path: str                               # the wrapper handed to spark_udf (inference.scoring_model)
    has_probability: bool
    output_type: str = "double"                 # Spark type of the wrapped model's own output (signature)

    @property
    def feature_names(self) -> list[str]:
        """The model's input columns, in signature order."""
        return [name for name, _, _ in self.input_columns]

    @property
    def required_features(self) -> list[str]:
        """The input columns the model cannot do without."""
        return [name for name, _, required in self.input_columns if required]


def _signature_inputs(meta: Model, resolved: ResolvedModel) -> list[tuple[str, str, bool]]:
    label = f"model {resolved.name!r} version {resolved.version}"
    schema = meta.get_input_schema()
    if schema is None:
        raise BadInputError(f"{label} has no signature: log it with a signature to score it in batch")
    if not schema.has_input_names() or schema.is_tensor_spec():
        raise BadInputError(f"{label}: batch scoring needs a column-based signature with named inputs")
    columns = []
    for spec in schema.inputs:
        type_name = getattr(spec.type, "name", str(spec.type))
        if type_name not in MLFLOW_TO_SPARK:
            raise BadInputError(f"{label}: input {spec.name!r} has unsupported type {type_name!r}")
        columns.append((spec.name, MLFLOW_TO_SPARK[type_name], bool(spec.required)))
    return columns


def _output_type(meta: Model) -> str:
    """The Spark type of the model's single signature output ("double" when there is none)."""
    output = meta.get_output_schema()
    if output is not None and not output.is_tensor_spec() and len(output.inputs) == 1:
        return MLFLOW_TO_SPARK.get(getattr(output.inputs[0].type, "name", ""), "double")
    return "double"


def _prediction_type(output_type: str) -> str:
    """The Spark type of the prediction column: numbers and booleans become double."""
    return "double" if output_type in NUMERIC or output_type == "boolean" else output_type


def _gives_probability(meta: Model, local_path: str) -> bool:
    """True for a classifier with ``predict_proba``: scikit-learn's, or XGBoost's or LightGBM's
    scikit-learn API models logged by ``log_model``.

    Models logged by featurelake record this in their MLmodel metadata; any other sklearn
    model is loaded once here to find out.
    """
    flavor = scoring_flavor(meta.flavors, meta.metadata)
    if flavor == "python_function":
        return False
    recorded = (meta.metadata or {}).get(PROBABILITY_METADATA)
    if recorded is not None:
        return bool(recorded)
    return gives_probability(mlflow.sklearn.load_model(local_path))


def _package_folder(module, scratch: Path) -> str:
    """The folder of ``module``'s package; when it is imported from a zip (spark-submit --py-files)
    its .py files are copied to ``scratch`` first, since MLflow copies code paths from disk."""
    folder = Path(module.__file__).parent
    if folder.is_dir():
        return str(folder)
    import importlib.resources

    package = module.__name__.rpartition(".")[0]
    extracted = scratch / package
    extracted.mkdir(parents=True, exist_ok=True)
    for entry in importlib.resources.files(package).iterdir():
        if entry.is_file() and entry.name.endswith(".py"):
            (extracted / entry.name).write_bytes(entry.read_bytes())
    return str(extracted)


def _save_scoring_wrapper(meta: Model, local_path: str, prediction_type: str, with_probability: bool,
                         target: str) -> str:
    """Save the :mod:`inference.scoring_model` wrapper around the model at ``local_path``."""
    from inference import scoring_model

    if with_probability:
        output_type = {"double": "double", "string": "string"}.get(prediction_type, "double")
        outputs = Schema([ColSpec(output_type, "prediction"), ColSpec("double", "probability")])
    else:
        outputs = meta.get_output_schema()
    flavor = scoring_flavor(meta.flavors, meta.metadata)
    mlflow.pyfunc.save_model(
        path=target,
        python_model=scoring_model.CachedModel(flavor, with_probability),
        artifacts={scoring_model.MODEL_ARTIFACT: local_path},
        signature=ModelSignature(inputs=meta.get_input_schema(), outputs=outputs),
        code_paths=[_package_folder(scoring_model, Path(target).with_name(Path(target).name + "-code"))],
        pip_requirements=["mlflow", "scikit-learn", "pandas"],
    )
    # The wrapper is scored by this very interpreter (spark_udf's env_manager="local"). Checking its
    # requirements against the environment only cost every Python worker (and spark_udf in the
    # driver) a scan of all installed distributions, 1.5-5 s (MLflow's packages_distributions).
    (Path(target) / "requirements.txt").unlink()
    return target


def load_scoring_model(resolved: ResolvedModel, *, with_probability: bool = True,
                       work_dir: str | None = None) -> ScoringModel:
    """Download the pinned model version and read its signature.

    Args:
        resolved: the version to score with (from :func:`inference.model_reference.resolve_model`).
        with_probability: add a probability column for sklearn classifiers with ``predict_proba``.
        work_dir: where to download to (a new temporary folder by default).

    Raises:
        BadInputError: the model has no usable (column-based) signature.
        DependencyUnavailableError: the model files cannot be downloaded.
    """
    work_dir = work_dir or tempfile.mkdtemp(prefix="featurelake-scoring-")
    try:
        local_path = mlflow.artifacts.download_artifacts(artifact_uri=resolved.uri,
                                                         dst_path=os.path.join(work_dir, "model"))
    except MlflowException as exc:
        raise DependencyUnavailableError(f"cannot download {resolved.uri}: {exc}") from None
    meta = Model.load(local_path)
    inputs = _signature_inputs(meta, resolved)
    output_type = _output_type(meta)
    prediction_type = _prediction_type(output_type)
    has_probability = with_probability and _gives_probability(meta, local_path)
    udf_path = _save_scoring_wrapper(meta, local_path, prediction_type, has_probability,
                                     os.path.join(work_dir, "scoring_wrapper"))
    logger.debug("model %s version %d: %d inputs, prediction %s%s", resolved.name, resolved.version,
                 len(inputs), prediction_type, " + probability" if has_probability else "")
    return ScoringModel(resolved, local_path, inputs, prediction_type, udf_path, has_probability, output_type)


def check_inputs(df: DataFrame, model: ScoringModel, where: str = "input") -> DataFrame:
    """Check ``df`` against the model's signature and cast safe widenings (int -> double...).

    Only the schema is inspected: no Spark job runs.

    Raises:
        BadInputError: a required column is missing, every input column is (the model would get
            nothing to score), or a column has a type the signature does not accept.
    """
    label = f"model {model.resolved.name!r} version {model.resolved.version}"
    actual = {f.name: f.dataType.simpleString() for f in df.schema.fields}
    missing = [n for n in model.required_features if n not in actual]
    if missing:
        raise BadInputError(f"{where} lacks column(s) {', '.join(missing)} that {label} needs")
    if not any(n in actual for n in model.feature_names):
        raise BadInputError(f"{where} has none of the input columns of {label} "
                            f"({', '.join(model.feature_names)}): nothing to score")
    problems, casts = [], {}
    for name, expected, _ in model.input_columns:
        if name not in actual:
            continue
        if actual[name] == expected:
            continue
        if actual[name] in SAFE_CASTS[expected]:
            casts[name] = expected
        else:
            problems.append(f"column {name!r} is {actual[name]} but the signature of {label} expects {expected}")
    if problems:
        raise BadInputError(f"{where} does not match the model signature: " + "; ".join(problems))
    for name, expected in casts.items():
        df = df.withColumn(name, F.col(name).cast(expected))
    return df


def scoring_udf(spark: SparkSession, model: ScoringModel):  # noqa: ANN201 - a pyspark UDF
    """Return the ``spark_udf`` of the model, its result type taken from the signature."""
    if model.has_probability:
        result_type: T.DataType = T.StructType([
            T.StructField("prediction", T.DoubleType() if model.prediction_type == "double" else T.StringType()),
            T.StructField("probability", T.DoubleType()),
        ])
    else:
        result_type = T._parse_datatype_string(model.output_type)
    return mlflow.pyfunc.spark_udf(spark, model.udf_path, result_type=result_type, env_manager="local")


def score(spark: SparkSession, df: DataFrame, model: ScoringModel, keep: list[str], udf=None) -> DataFrame:  # noqa: ANN001
    """Add the model's output to ``df`` (lazily) and keep only ``keep`` plus the outputs.

    ``df`` must have passed :func:`check_inputs`. Returns ``keep..., prediction[, probability]``.
    Pass ``udf`` (from :func:`scoring_udf`) to reuse one UDF, and its warm workers, across calls.
    """
    udf = udf or scoring_udf(spark, model)
    inputs: list[Column] = [F.col(n) for n in model.feature_names if n in df.columns]
    out = udf(F.struct(*inputs))
    if model.has_probability:
        return df.select(*keep, out.getField("prediction").alias("prediction"),
                         out.getField("probability").alias("probability"))
    prediction = out.cast("double") if model.prediction_type == "double" else out.cast(model.prediction_type)
    return df.select(*keep, prediction.alias("prediction"))


def match_parallelism(spark: SparkSession, df: DataFrame) -> DataFrame:
    """Spread ``df`` over at least the session's default parallelism (the cluster's cores unless
    ``spark.default.parallelism`` says otherwise): scoring is CPU-bound.

    Counting the partitions runs every shuffle in ``df``'s plan (adaptive execution finalises
    the plan that way), and the write that follows runs them again: call it on a plain read,
    before any join.
    """
    parallelism = spark.sparkContext.defaultParallelism
    partitions = df.rdd.getNumPartitions()
    if partitions < parallelism:
        logger.debug("repartitioning the input from %d to %d partitions (the session's default parallelism)",
                     partitions, parallelism)
        return df.repartition(parallelism)
    return df


@contextlib.contextmanager
def arrow_batch_size(spark: SparkSession, rows: int = DEFAULT_ARROW_BATCH) -> Iterator[None]:
    """Send the Python UDFs run inside the block batches of ``rows`` records, whatever their input
    (see ``COLUMNAR_INPUT_CONF``); the session's settings are restored afterwards."""
    settings = {ARROW_BATCH_CONF: str(rows), COLUMNAR_INPUT_CONF: "false"}
    previous = {key: spark.conf.get(key, None) for key in settings}
    for key, value in settings.items():
        spark.conf.set(key, value)
    try:
        yield
    finally:
        for key, value in previous.items():
            if value is None:
                spark.conf.unset(key)
            else:
                spark.conf.set(key, value)
