"""The predictions Delta table: one atomic, idempotent write per batch.

A batch is identified by the model that scored it and its batch id, and written with
``replaceWhere model_name = '<model>' AND batch_id = '<id>'`` in ONE Delta commit, so

* rerunning the same batch id with the same model replaces that model's rows of the batch (no
  duplicates), and leaves the rows other models wrote under the same batch id alone, and
* a job killed half way commits nothing: readers never see a partial batch, and
* a first batch that fails removes the table its run created (while it holds only that create).

The table is partitioned by ``scoring_date`` and documents itself through ``featurelake.*``
table properties and column comments, like the feature tables.
"""

from __future__ import annotations

import getpass
import logging
import re
from dataclasses import dataclass

from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.utils import AnalysisException

from featurestore.delta_tables import create_empty_table, current_version, is_write_conflict, retry_on_conflict
from featurestore.core.errors import BadInputError, ConflictError
from featurestore.runtime.storage import remove_folder
from featurestore.table_metadata import PREFIX
from inference.model_reference import validate_model_name

logger = logging.getLogger(__name__)

KIND_PREDICTIONS = "predictions"
PARTITION_COLUMN = "scoring_date"
_BATCH_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:\-]{0,127}$")

# Columns after the entity keys and the outputs: (name, type, comment).
METADATA_COLUMNS = (
    ("model_name", "string", "Registered model name"),
    ("model_version", "bigint", "Model registry version that scored the row"),
    ("run_id", "string", "MLflow run that produced the model version"),
    ("batch_id", "string", "Batch identifier; a rerun of a model's batch replaces that model's rows"),
    ("scored_at", "timestamp", "When the batch was scored (UTC), one value per batch"),
    ("scoring_date", "date", "UTC date of scored_at (partition column)"),
)
OUTPUT_COMMENTS = {
    "prediction": "Model prediction (the model's predict output)",
    "probability": "Classifier probability: of the positive class (binary) or of the predicted class",
}


@dataclass(frozen=True)
class BatchWrite:
    """What writing one batch did to the predictions table."""

    path: str
    model_name: str
    batch_id: str
    rows_written: int
    rows_replaced: int
    delta_version: int
    created: bool


def validate_batch_id(batch_id: str) -> str:
    """Return ``batch_id`` if it is safe to use (letters, digits, ``_ . : -``; at most 128)."""
    if not isinstance(batch_id, str) or not _BATCH_ID.match(batch_id):
        raise BadInputError(
            f"invalid batch id {batch_id!r}: use letters, digits and _ . : - (at most 128, "
            "starting with a letter or digit)"
        )
    return batch_id


def _table_properties(table_name: str, keys: list[str]) -> dict[str, str]:
    return {
        f"{PREFIX}kind": KIND_PREDICTIONS,
        f"{PREFIX}name": table_name,
        f"{PREFIX}primary_keys": ",".join(keys),
        f"{PREFIX}description": f"Batch predictions ({table_name}): one row per scored entity and batch",
        f"{PREFIX}batch_key": "batch_id",
        f"{PREFIX}created_by": getpass.getuser(),
    }


def _check_schema(spark: SparkSession, path: str, df: DataFrame) -> None:
    existing = {f.name: f.dataType.simpleString() for f in spark.read.format("delta").load(path).schema.fields}
    incoming = {f.name: f.dataType.simpleString() for f in df.schema.fields}
    problems = [f"new column {n!r}" for n in incoming if n not in existing]
    problems += [f"missing column {n!r}" for n in existing if n not in incoming]
    problems += [f"column {n!r} is {t} in the batch but {existing[n]} in the table"
                 for n, t in incoming.items() if n in existing and existing[n] != t]
    if problems:
        raise BadInputError(f"the batch does not fit the predictions table at {path}: " + "; ".join(problems))


def ensure_table(spark: SparkSession, path: str, table_name: str, df: DataFrame, keys: list[str]) -> bool:
    """Create the predictions table for ``df``'s schema if it does not exist; True if this call created it
    (False when it existed or another writer's create won the race).

    Raises:
        BadInputError: the table exists with other columns or types.
    """
    if not DeltaTable.isDeltaTable(spark, path):
        comments = {**{k: "Entity key" for k in keys}, **OUTPUT_COMMENTS, **{n: c for n, _, c in METADATA_COLUMNS}}
        try:
            create_empty_table(spark, path, df.schema, f"Batch predictions ({table_name})",
                               _table_properties(table_name, keys), comments, partition_by=(PARTITION_COLUMN,),
                               if_not_exists=False)
            logger.info("created predictions table %s at %s", table_name, path)
            return True
        except Exception as exc:  # noqa: BLE001 - only a lost race to create is expected
            if not is_write_conflict(exc):
                raise
    _check_schema(spark, path, df)
    return False


def _remove_unused_table(spark: SparkSession, path: str, table_name: str) -> None:
    """Remove the table this run created at ``path`` if it still holds only its create commit (version 0)."""
    try:
        if current_version(spark, path) == 0:
            remove_folder(spark, path)
            logger.warning("the first batch of predictions table %s failed: removed the table it created at %s",
                           table_name, path)
    except Exception as exc:  # noqa: BLE001 - the write's own error is the one to report
        logger.warning("could not remove the empty predictions table %s at %s: %s", table_name, path, exc)


def _commit_of(spark: SparkSession, path: str, marker: str) -> tuple[int, dict[str, str]]:
    """Version and operation metrics of the most recent commit carrying ``marker``."""
    rows = (DeltaTable.forPath(spark, path).history(20)
            .select("version", "userMetadata", "operationMetrics").collect())
    for row in rows:
        if row["userMetadata"] == marker:
            return int(row["version"]), dict(row["operationMetrics"] or {})
    raise ConflictError(f"the commit of {marker!r} is not in the last 20 versions of {path}")


def write_batch(spark: SparkSession, df: DataFrame, path: str, table_name: str, model_name: str, batch_id: str,
                keys: list[str]) -> BatchWrite:
    """Write ``df`` (one batch, every row carrying ``model_name`` and ``batch_id``) in one
    idempotent Delta commit that replaces only that model's rows of that batch.

    The data flows through once: the row count comes from the commit's metrics, not from a
    ``count()``.
    """
    validate_model_name(model_name)
    validate_batch_id(batch_id)
    created = ensure_table(spark, path, table_name, df, keys)
    marker = f"featurelake batch {model_name}/{batch_id}"  # neither name can hold a "/"
    what = f"batch {batch_id!r} of model {model_name!r}"

    def write() -> None:
        try:
            (df.write.format("delta").mode("overwrite")
             .option("replaceWhere", f"model_name = '{model_name}' AND batch_id = '{batch_id}'")
             .option("userMetadata", marker)
             .save(path))
        except AnalysisException as exc:
            raise BadInputError(f"cannot write {what} to {path}: {exc}") from None

    # The write replaces exactly this model's rows of this batch, so trying again after a conflict is safe.
    try:
        retry_on_conflict(write, f"{what} in predictions table {table_name!r}", path)
    except Exception:
        if created:  # nothing written: leave no empty table behind
            _remove_unused_table(spark, path, table_name)
        raise
    version, metrics = _commit_of(spark, path, marker)
    rows = int(metrics.get("numOutputRows", 0))
    replaced = int(metrics.get("numDeletedRows", 0) or 0)
    logger.debug("batch %s of model %s: %d rows written to %s (Delta version %d, %d previous rows replaced)",
                 batch_id, model_name, rows, path, version, replaced)
    return BatchWrite(path, model_name, batch_id, rows, replaced, version, created)
