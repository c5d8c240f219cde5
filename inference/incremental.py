"""Incremental scoring: score only the rows added to a Delta input since the last run, exactly once.

    result = run_incremental_inference(spark, config, "entities", "models:/churn_model/Production",
                                       checkpoint="/data/checkpoints/churn-entities")
    result.rows_written      # the rows appended to ``entities`` since the previous run

The input is read as a stream (Structured Streaming, Delta source) and every micro-batch is
scored and written by :func:`inference.batch.run_batch_inference`, the batch job's own write: one
Delta commit that replaces the rows of its batch id, here ``PREFIX-N`` with N the micro-batch
number. The checkpoint folder records which input versions each micro-batch read before the
batch runs, and that the batch is done after its commit, so

* a run killed at any point and rerun with the same checkpoint scores the unfinished micro-batch
  again with the same rows and the same batch id: its first write, if it committed, is
  replaced, so every input row is scored exactly once;
* with ``trigger(availableNow=True)`` a run scores what is there and stops (a scheduled job);
  ``processing_time`` keeps the query running and scores new rows as they arrive ("streaming
  inference"), with the same guarantee.

The input must only grow (appends): a commit that updates or deletes input rows stops the
stream, as Delta's streaming source does.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from dataclasses import dataclass, field

from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession

from featurestore.core.config import Config, is_uri
from featurestore.core.errors import BadInputError, NotFoundError
from featurestore.core.identifiers import validate_identifier
from inference.batch import (
    DEFAULT_OUTPUT_TABLE, BatchResult, is_table_name, run_batch_inference, score_frame,
)
from inference.model_reference import ResolvedModel
from inference.predictions import validate_batch_id
from inference.scoring import DEFAULT_ARROW_BATCH

logger = logging.getLogger(__name__)

# Delta's streaming source stops on a commit that updates or deletes rows of its table.
CHANGED_INPUT_ERRORS = ("DELTA_SOURCE_TABLE_IGNORE_CHANGES", "DELTA_SOURCE_IGNORE_DELETE")


@dataclass(frozen=True)
class IncrementalResult:
    """What one incremental run scored: one entry per micro-batch written by this run."""

    model: ResolvedModel
    input_path: str
    checkpoint: str
    output_table: str
    batches: list[BatchResult] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def rows_written(self) -> int:
        """Rows scored and written by this run (0 when no row was added since the last run)."""
        return sum(b.rows_written for b in self.batches)


def delta_input_path(spark: SparkSession, config: Config, source: str) -> str:
    """Return the path of the Delta table ``source`` names: a warehouse table or a Delta path.

    Raises:
        NotFoundError: no such table or path.
        BadInputError: the path holds no Delta table (incremental scoring needs a Delta log to follow).
    """
    if is_table_name(source):
        validate_identifier(source, "input table name")
        path = config.table_path(source)
        if not DeltaTable.isDeltaTable(spark, path):
            raise NotFoundError(f"input table {source!r} not found in warehouse {config.warehouse}")
        return path
    if not is_uri(source) and not os.path.exists(source):
        raise NotFoundError(f"input path {source!r} does not exist")
    if not DeltaTable.isDeltaTable(spark, source):
        raise BadInputError(f"input {source!r} is not a Delta table: --incremental follows a Delta table's log "
                            "(score parquet files with a batch run)")
    return source


def default_batch_prefix(checkpoint: str) -> str:
    """The batch-id prefix of a stream: ``stream-`` and 8 hex digits of its checkpoint's path.

    Each stream (one checkpoint) writes its own batch ids, so two streams scoring into one
    predictions table with one model never replace each other's rows.

    >>> default_batch_prefix("/data/checkpoints/churn")
    'stream-cd4bf018'
    """
    location = checkpoint if is_uri(checkpoint) else os.path.abspath(checkpoint)
    return "stream-" + hashlib.sha256(location.encode()).hexdigest()[:8]


def run_incremental_inference(spark: SparkSession, config: Config, source: str, model_uri: str, checkpoint: str, *,
                              output_table: str = DEFAULT_OUTPUT_TABLE, batch_prefix: str | None = None,
                              keys: list[str] | None = None, with_probability: bool = True,
                              arrow_batch: int = DEFAULT_ARROW_BATCH, max_files_per_trigger: int | None = None,
                              processing_time: str | None = None) -> IncrementalResult:
    """Score the rows added to the Delta input ``source`` since the last run with ``checkpoint``.

    The model reference is resolved to one version before the stream starts, and every check of
    :func:`inference.batch.score_frame` (signature, keys, feature tables, types) runs on the input's
    schema before any row is read. Each micro-batch is written as batch ``PREFIX-N``
    (:func:`default_batch_prefix` unless ``batch_prefix``) by :func:`run_batch_inference`.

    Args:
        source: a warehouse table name or a Delta path, which only grows (appends).
        checkpoint: the stream's checkpoint folder; keep it for the next run, one per input and model.
        max_files_per_trigger: input files per micro-batch (Delta's default, 1000, when None).
        processing_time: e.g. ``"1 minute"``: keep running, scoring new rows at that interval
            (until the query is stopped); None scores what is there and returns.
        Others: as :func:`run_batch_inference`.

    Raises:
        BadInputError, NotFoundError: as the batch job, and an input that is no Delta table; nothing written.
    """
    started = time.monotonic()
    validate_identifier(output_table, "output table name")
    prefix = validate_batch_id(batch_prefix or default_batch_prefix(checkpoint))
    if max_files_per_trigger is not None and max_files_per_trigger < 1:
        raise BadInputError(f"--max-files-per-trigger must be at least 1, got {max_files_per_trigger}")
    path = delta_input_path(spark, config, source)
    # Resolve and check once, on the input's schema (no row read): a bad input fails before the stream.
    checked = score_frame(spark, config, spark.read.format("delta").load(path).limit(0), model_uri, keys=keys,
                          with_probability=with_probability)
    pinned = f"models:/{checked.model.name}/{checked.model.version}"
    batches: list[BatchResult] = []
    failures: list[BaseException] = []

    def write_micro_batch(batch: DataFrame, number: int) -> None:
        try:
            result = run_batch_inference(spark, config, batch, pinned, output_table=output_table,
                                         batch_id=f"{prefix}-{number}", keys=checked.keys,
                                         with_probability=with_probability, arrow_batch=arrow_batch)
        except BaseException as exc:  # kept to re-raise as it is: the stream wraps it in its own error
            failures.append(exc)
            raise
        batches.append(result)

    reader = spark.readStream.format("delta")
    if max_files_per_trigger is not None:
        reader = reader.option("maxFilesPerTrigger", str(max_files_per_trigger))
    writer = (reader.load(path).writeStream.foreachBatch(write_micro_batch)
              .option("checkpointLocation", checkpoint).queryName(f"featurelake-score-{prefix}"))
    writer = writer.trigger(processingTime=processing_time) if processing_time else writer.trigger(availableNow=True)
    query = writer.start()
    try:
        query.awaitTermination()
    except Exception as exc:
        if failures:  # a micro-batch's own failure, as the batch job reports it
            raise failures[-1] from None
        if any(marker in str(exc) for marker in CHANGED_INPUT_ERRORS):
            raise BadInputError(f"input {source!r} changed rows rather than appending them: incremental scoring "
                                f"follows appends only ({_first_line(exc)})") from None
        raise
    result = IncrementalResult(checked.model, path, checkpoint, output_table, batches, time.monotonic() - started)
    logger.info("model %s version %d: %d micro-batch(es), %d new rows scored from %s in %.1f s (checkpoint %s)",
                result.model.name, result.model.version, len(batches), result.rows_written, path, result.seconds,
                checkpoint)
    return result


def _first_line(error: BaseException) -> str:
    lines = [line for line in str(error).splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__
