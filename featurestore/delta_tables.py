"""Writing feature tables to Delta Lake: create with metadata, then MERGE (upsert)."""

from __future__ import annotations

import contextlib
import functools
import getpass
import logging
import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TypeVar

from delta.exceptions import (
    ConcurrentAppendException,
    ConcurrentDeleteDeleteException,
    ConcurrentDeleteReadException,
    ConcurrentTransactionException,
    ConcurrentWriteException,
    DeltaConcurrentModificationException,
    MetadataChangedException,
    ProtocolChangedException,
)
from delta.tables import DeltaTable
from pyspark.sql import Column, DataFrame, Observation, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StructType

from featurestore.definitions import FeatureTable
from featurestore.core.errors import (
    BadInputError,
    ConflictError,
    DependencyUnavailableError,
    FeaturelakeError,
    NotFoundError,
)
from featurestore.core.identifiers import quote_identifier, quote_path
from featurestore.runtime.storage import path_exists, remove_folder
from featurestore.table_metadata import PREFIX, column_comments, definition_properties
from featurestore.validation import TimeRange

logger = logging.getLogger(__name__)

MATERIALIZE_SOURCE = "spark.databricks.delta.merge.materializeSource"
# Lets adaptive execution join by hash tables, not by sorting, when every partition of the
# side it hashes holds at most this much (so the tables stay small); unset, Spark never does.
HASH_JOIN_THRESHOLD = "spark.sql.adaptive.maxShuffledHashJoinLocalMapThreshold"
# Held while a write runs with a session option changed, so no other thread's write sees the change.
_SESSION_OPTION_LOCK = threading.Lock()

MAX_WRITE_ATTEMPTS = 5
# Delta refuses to read a version older than the table's delta.deletedFileRetentionDuration (a vacuum
# may have deleted its files); featurelake's vacuum keeps every version a registered model names.
TIME_TRAVEL_WITHIN_RETENTION = "spark.databricks.delta.vacuum.enforceTimeTravelWithinDeletedFileRetentionDuration"

T = TypeVar("T")


@dataclass(frozen=True)
class WriteResult:
    """What one write did to a Delta table."""

    table: str
    path: str
    created: bool
    version_before: int | None
    version_after: int
    rows_inserted: int
    rows_updated: int


def table_exists(spark: SparkSession, path: str) -> bool:
    """True when ``path`` holds a Delta table."""
    return DeltaTable.isDeltaTable(spark, path)


def current_version(spark: SparkSession, path: str) -> int | None:
    """Return the latest Delta version of the table at ``path`` (None when there is none)."""
    if not table_exists(spark, path):
        return None
    return int(DeltaTable.forPath(spark, path).history(1).select("version").first()[0])


def read_version(spark: SparkSession, path: str, version: int) -> DataFrame:
    """Return the rows of the table at ``path`` as of Delta ``version``, however old the version.

    Delta refuses versions older than the table's ``delta.deletedFileRetentionDuration`` (7 days by
    default), whose files a vacuum may have deleted; a training set logged with a model names
    such versions, and ``featurelake tables vacuum`` keeps their files
    (:func:`featurestore.maintenance.vacuum_table`). A version whose files are gone fails when read.
    The version is resolved here (the schema is read), so the DataFrame keeps it.

    Example: ``read_version(spark, config.table_path("customer_spend"), 3).count()``.
    """
    with session_option_unless_set(spark, TIME_TRAVEL_WITHIN_RETENTION, "false"):
        df = spark.read.format("delta").option("versionAsOf", int(version)).load(path)
        df.schema  # noqa: B018 - resolve the version while the option holds
    return df


def create_table_with(spark: SparkSession, table: FeatureTable, path: str, df: DataFrame) -> None:
    """Create the Delta table for ``table`` from ``df`` in one commit (CREATE TABLE AS SELECT).

    Columns carry their descriptions as comments and the table its properties, so a build
    killed before the commit leaves no table at all, and one killed after leaves a whole one.
    A create that fails (a row the transformation cannot compute) removes the folder it
    started, so that it does not stand in the way of the next build's create.
    """
    comments = column_comments(table)
    documented = df.select(*[
        F.col(quote_identifier(c.name)).alias(c.name, metadata={"comment": comments[c.name]})
        for c in table.columns
    ])
    writer = documented.writeTo(quote_path(path)).using("delta")
    writer = writer.tableProperty("comment", table.description or table.name)
    properties = {**definition_properties(table), f"{PREFIX}created_by": getpass.getuser()}
    for key, value in properties.items():
        writer = writer.tableProperty(key, value)
    if table.partition_by:
        writer = writer.partitionedBy(*[F.col(quote_identifier(c)) for c in table.partition_by])
    folder_existed = path_exists(spark, path)
    try:
        writer.create()
    except Exception as exc:
        # Spark's tasks leave their data files (and Delta an empty _delta_log) behind; Delta
        # ignores them, but a create refuses a folder that is not empty. A conflict means
        # another writer's create, whose files these may be: those are left alone.
        if not folder_existed and not is_write_conflict(exc) and not table_exists(spark, path):
            remove_folder(spark, path)
        raise
    logger.debug("created Delta table %s at %s", table.name, path)


def create_empty_table(spark: SparkSession, path: str, schema: StructType, comment: str, properties: dict[str, str],
                       comments: dict[str, str] | None = None, partition_by: tuple[str, ...] = (),
                       if_not_exists: bool = True) -> None:
    """Create an empty Delta table at ``path`` in one commit, unless one exists already.

    Every column of ``schema`` is nullable and carries its entry of ``comments`` as its
    comment; the table carries ``comment`` and ``properties`` (for tables written by appends
    and MERGEs: predictions, monitoring). With ``if_not_exists=False`` an existing table (or
    another writer's create winning the race) raises a write conflict (:func:`is_write_conflict`),
    so that a create that returns is known to be this caller's.
    """
    builder = (DeltaTable.createIfNotExists(spark) if if_not_exists else DeltaTable.create(spark))
    builder = builder.location(path).comment(comment)
    for field in schema.fields:
        builder = builder.addColumn(field.name, field.dataType, nullable=True, comment=(comments or {}).get(field.name))
    for key, value in properties.items():
        builder = builder.property(key, value)
    if partition_by:
        builder = builder.partitionedBy(*partition_by)
    try:
        builder.execute()
    except Exception as exc:  # noqa: BLE001 - only a create that lost the race is absorbed
        if not (if_not_exists and "DELTA_CREATE_TABLE_WITH_NON_EMPTY_LOCATION" in str(exc)
                and _appears(spark, path, CREATE_RACE_SECONDS)):
            raise


# How long a create that found another writer's files in the folder waits for that writer's commit.
CREATE_RACE_SECONDS = 10.0


def _appears(spark: SparkSession, path: str, seconds: float) -> bool:
    """True once a Delta table is at ``path``, polled for up to ``seconds``: a writer that created
    the folder's first files a moment ago commits the table soon after."""
    deadline = time.monotonic() + seconds
    while not table_exists(spark, path):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


def check_table_columns(spark: SparkSession, table: FeatureTable, path: str) -> list[str]:
    """Refuse a definition whose columns differ from the existing table's (no silent evolution).

    New feature columns are allowed when the definition sets ``allow_new_columns``; dropped
    and retyped columns are always refused. Returns the names of the new columns.
    """
    existing = {f.name: f.dataType.simpleString() for f in spark.read.format("delta").load(path).schema.fields}
    declared = {c.name: c.dtype for c in table.columns}
    new = [n for n in declared if n not in existing]
    problems = [] if table.allow_new_columns else [f"new column {n!r}" for n in new]
    problems += [f"dropped column {n!r}" for n in existing if n not in declared]
    problems += [f"column {n!r} retyped from {existing[n]} to {t}"
                 for n, t in declared.items() if n in existing and existing[n] != t]
    if problems:
        raise BadInputError(
            f"table {table.name!r}: the definition no longer matches the Delta table at {path}: "
            + "; ".join(problems)
            + (" (set allow_new_columns=True on the definition to add new features)" if new else "")
        )
    return new


def add_columns(spark: SparkSession, table: FeatureTable, path: str, names: list[str]) -> None:
    """Add the declared columns ``names`` (with their comments) to the existing Delta table."""
    columns = {c.name: c for c in table.columns}
    spec = ", ".join(
        f"{quote_identifier(n)} {columns[n].dtype} COMMENT {_sql_string(columns[n].description)}" for n in names
    )
    spark.sql(f"ALTER TABLE {quote_path(path)} ADD COLUMNS ({spec})")
    logger.info("table %s: added column(s) %s (`featurelake materialize --full` loads them into the online store)",
                table.name, ", ".join(names))


def sync_metadata(spark: SparkSession, table: FeatureTable, path: str) -> bool:
    """Bring table properties and column comments up to date with ``table``; True if changed."""
    target = quote_path(path)
    detail = spark.sql(f"DESCRIBE DETAIL {target}").first()
    current = dict(detail["properties"] or {})
    wanted = definition_properties(table)
    changed = {k: v for k, v in wanted.items() if current.get(k) != v}
    touched = False
    if changed:
        assignments = ", ".join(f"{_sql_string(k)} = {_sql_string(v)}" for k, v in changed.items())
        spark.sql(f"ALTER TABLE {target} SET TBLPROPERTIES ({assignments})")  # one commit for all
        touched = True
    wanted_comment = table.description or table.name
    if (detail["description"] or "") != wanted_comment:
        spark.sql(f"COMMENT ON TABLE {target} IS {_sql_string(wanted_comment)}")
        touched = True
    schema = {f.name: f.metadata.get("comment", "") for f in spark.read.format("delta").load(path).schema.fields}
    for name, comment in column_comments(table).items():
        if schema.get(name, "") != comment:
            spark.sql(f"ALTER TABLE {target} ALTER COLUMN {quote_identifier(name)} COMMENT {_sql_string(comment)}")
            touched = True
    if touched:
        logger.info("updated metadata of table %s", table.name)
    return touched


def _sql_string(value: str) -> str:
    """Return ``value`` as a Spark SQL string literal (backslashes and quotes escaped)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def timestamp_literal(micros: int) -> str:
    """Return the Spark SQL literal of the instant ``micros`` microseconds after the epoch (UTC, exact)."""
    instant = datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(microseconds=micros)
    return f"TIMESTAMP '{instant.isoformat(sep=' ')}'"


def features_changed(table: FeatureTable, old: Callable[[str], Column], new: Callable[[str], Column]) -> Column:
    """True where any feature differs between the ``old`` and ``new`` column of that name (nulls equal).

    False when the table has no features: a table without features never changes.
    """
    return functools.reduce(lambda a, b: a | b, [~old(f).eqNullSafe(new(f)) for f in table.feature_names],
                            F.lit(False))


def rows_to_write(spark: SparkSession, table: FeatureTable, path: str, df: DataFrame,
                  time_range: TimeRange | None = None) -> bool:
    """True when ``df`` holds a row the table lacks: a new key and timestamp, or other feature values.

    An upsert of ``df`` otherwise changes no row, and is not run: Delta would still commit a
    version (a MERGE rewrites every file holding a matched row, even unchanged, and the rewrite
    the whole table), which history, time travel and change-feed readers would take for a change.
    ``time_range`` (the span of ``df``'s timestamps) limits the table's rows read to the files
    that may hold it. One join of ``df`` with those rows, stopped at the first row found.
    """
    target = spark.read.format("delta").load(path)
    if time_range is not None:
        ts = F.col(quote_identifier(table.timestamp_key))
        target = target.where(ts.between(F.timestamp_micros(F.lit(time_range.first_micros)),
                                         F.timestamp_micros(F.lit(time_range.last_micros))))

    def col(alias: str, name: str) -> Column:
        return F.col(f"{alias}.{quote_identifier(name)}")

    same_row = [col("s", k) == col("t", k) for k in table.merge_keys]
    same_row.append(~features_changed(table, lambda f: col("t", f), lambda f: col("s", f)))
    unwritten = df.alias("s").join(target.alias("t"), functools.reduce(lambda a, b: a & b, same_row), "left_anti")
    return not unwritten.isEmpty()


def merge_into(spark: SparkSession, table: FeatureTable, path: str, df: DataFrame,
               time_range: TimeRange | None = None) -> tuple[int, int]:
    """Upsert ``df`` into the table on primary keys plus timestamp; return (inserted, updated).

    Rows whose feature values are unchanged are not rewritten, so a rerun changes no rows.
    ``time_range``, the span of ``df``'s timestamps, lets Delta skip the target files whose
    timestamps lie outside it (by their min/max statistics): an incremental build of recent
    rows then reads the recent files only, not the whole table.
    """
    on = " AND ".join(f"t.{quote_identifier(k)} = s.{quote_identifier(k)}" for k in table.merge_keys)
    if time_range is not None:
        # A target row can only match a source row with the same timestamp, so it lies in the
        # source's range: the condition selects the same pairs and names no file outside it.
        ts = f"t.{quote_identifier(table.timestamp_key)}"
        on += (f" AND {ts} >= {timestamp_literal(time_range.first_micros)}"
               f" AND {ts} <= {timestamp_literal(time_range.last_micros)}")
    def col(alias: str, name: str) -> Column:
        return F.col(f"{alias}.{quote_identifier(name)}")

    all_columns = {quote_identifier(c.name): col("s", c.name) for c in table.columns}
    features = {quote_identifier(f): col("s", f) for f in table.feature_names}
    merge = DeltaTable.forPath(spark, path).alias("t").merge(df.alias("s"), on)
    if features:  # a table without features never changes a matched row
        merge = merge.whenMatchedUpdate(condition=features_changed(table, lambda f: col("t", f), lambda f: col("s", f)),
                                        set=features)
    merge = merge.whenNotMatchedInsert(values=all_columns)
    # execute() returns this MERGE's own metrics (no history read, and never another writer's commit).
    with _source_read_twice_if_deterministic(spark, df):
        metrics = merge.execute().first()
    if metrics is None:
        return 0, 0
    return int(metrics["num_inserted_rows"] or 0), int(metrics["num_updated_rows"] or 0)


def _source_read_twice_if_deterministic(spark: SparkSession, df: DataFrame) -> contextlib.AbstractContextManager:
    """Let a MERGE read a deterministic source twice instead of first copying it.

    Delta's MERGE passes over its source twice (find the touched files, then rewrite them).
    By default (``materializeSource=auto``) it first copies any source that is not a plain
    Delta scan, in case a second read differs; for a deterministic source that copy only
    costs time, both for a full and a 1% MERGE (benchmarks/results/reruns/figures_from_commits.md).
    A non-deterministic source (rand(), uuid()) keeps the copy, and so does a session whose user
    set the option (to any value).
    """
    if not df._jdf.queryExecution().analyzed().deterministic():
        return contextlib.nullcontext()
    return session_option_unless_set(spark, MATERIALIZE_SOURCE, "none")


def source_spans_table(spark: SparkSession, table: FeatureTable, path: str, rows: int,
                       time_range: TimeRange | None) -> bool:
    """True when the source (``rows`` rows over ``time_range``) is a rebuild of the whole table.

    That is: it has at least half as many rows as the table, and no file of the table holds a
    timestamp outside its time range. Every file may then hold a matched row, so a MERGE (one
    join to find the files it touches, a second to rewrite them) costs more than rewriting the
    table (:func:`rewrite_upsert`). Both answers come from the Delta log (the row count and
    each file's timestamp statistics): no data file is read.
    """
    if time_range is None:
        return False
    target = spark.read.format("delta").load(path)
    if 2 * rows < target.count():
        return False
    # Delta keeps timestamp statistics in milliseconds, so a file whose rows all lie in the
    # range can look up to a millisecond outside it: allow that (the choice is only about speed,
    # both writes give the same rows).
    ts = F.col(quote_identifier(table.timestamp_key))
    outside = target.where((ts < F.timestamp_micros(F.lit(time_range.first_micros - 1000)))
                           | (ts > F.timestamp_micros(F.lit(time_range.last_micros + 1000))))
    return not outside.inputFiles()  # the files Delta's data skipping keeps: those that may hold such rows


def rewrite_upsert(spark: SparkSession, table: FeatureTable, path: str, df: DataFrame) -> tuple[int, int]:
    """Upsert ``df`` by rewriting the table in one commit; return (inserted, updated).

    One full outer join of the table with ``df`` on primary keys plus timestamp gives the new
    table: ``df``'s row where it is new or its feature values changed, else the table's row.
    It overwrites the table in one commit (Delta reads the table within the write's own
    transaction, so a concurrent commit is a conflict, retried, never lost). The table's
    properties and column comments stay. The counts are observed during the write, no second pass.
    It takes less time than Delta's MERGE of the same rows, which joins twice; the figures against
    the MERGE and a plain overwrite are in benchmarks/results/table_writes_x10.md.
    """
    def side(df: DataFrame, prefix: str, flag: str) -> DataFrame:  # columns renamed prefix + name, and a flag
        return df.select(*[F.col(quote_identifier(c.name)).alias(prefix + c.name) for c in table.columns],
                         F.lit(True).alias(flag))

    def col(prefix: str, name: str) -> Column:  # names are letters, digits and underscores (validated)
        return F.col(prefix + name)

    # The flags start with neither prefix, so no column's new name can equal them.
    joined = side(spark.read.format("delta").load(path), "t_", "__featurelake_in_table").join(
        side(df, "s_", "__featurelake_in_source"), [col("t_", k) == col("s_", k) for k in table.merge_keys],
        "full_outer")
    in_source, in_table = F.col("__featurelake_in_source").isNotNull(), F.col("__featurelake_in_table").isNotNull()
    changed = features_changed(table, lambda f: col("t_", f), lambda f: col("s_", f))
    take_source = in_source & (~in_table | changed)
    observation = Observation()
    counted = joined.observe(
        observation,
        F.count(F.when(in_source & ~in_table, True)).alias("inserted"),
        F.count(F.when(in_source & in_table & changed, True)).alias("updated"),
    )
    rewritten = counted.select(*[
        F.when(take_source, col("s_", c.name)).otherwise(col("t_", c.name)).alias(c.name) for c in table.columns
    ])
    with session_option_unless_set(spark, HASH_JOIN_THRESHOLD, "64MB"):
        rewritten.write.format("delta").mode("overwrite").save(path)
    counts = observation.get
    return int(counts["inserted"]), int(counts["updated"])


def session_option_unless_set(spark: SparkSession, key: str, value: str) -> contextlib.AbstractContextManager:
    """Set the session option ``key`` to ``value`` for the block, unless the user set it already."""
    return session_options_unless_set(spark, {key: value})


@contextlib.contextmanager
def session_options_unless_set(spark: SparkSession, options: dict[str, str]) -> Iterator[None]:
    """Set each session option of ``options`` for the block, unless the user set it already.

    Example: ``with session_options_unless_set(spark, {"spark.sql.shuffle.partitions": "4"}): ...``
    """
    with _SESSION_OPTION_LOCK:
        ours = {k: v for k, v in options.items() if spark.conf.get(k, None) is None}
        for key, value in ours.items():
            spark.conf.set(key, value)
        try:
            yield
        finally:
            for key in ours:
                spark.conf.unset(key)


def _last_commit(spark: SparkSession, path: str) -> tuple[int, dict]:
    """Return the latest version of the table at ``path`` and its operation metrics (one history read)."""
    last = DeltaTable.forPath(spark, path).history(1).select("version", "operationMetrics").first()
    return int(last["version"]), dict(last["operationMetrics"] or {})


def overwrite_rows(spark: SparkSession, table: FeatureTable, path: str, df: DataFrame) -> None:
    """Replace every row of the existing table with ``df`` in one commit (properties and comments stay)."""
    df.select(*[quote_identifier(c.name) for c in table.columns]).write.format("delta").mode("overwrite").save(path)


def _write_once(spark: SparkSession, table: FeatureTable, path: str, df: DataFrame, rows: int | None,
                time_range: TimeRange | None, mode: str = "merge") -> WriteResult:
    version_before = current_version(spark, path)
    if version_before is None:
        create_table_with(spark, table, path, df)
        if rows is not None:  # counted by the validation: no history read (a Spark job) needed
            version_after, inserted, updated = 0, rows, 0  # a created table's first commit is version 0
        else:
            version_after, metrics = _last_commit(spark, path)
            inserted, updated = int(metrics.get("numOutputRows", 0)), 0
    else:
        new_columns = check_table_columns(spark, table, path)
        if new_columns:
            add_columns(spark, table, path, new_columns)
        sync_metadata(spark, table, path)
        if mode == "overwrite":
            overwrite_rows(spark, table, path, df)
            inserted, updated = rows if rows is not None else df.count(), 0
        elif not rows_to_write(spark, table, path, df, time_range):
            logger.info("table %s: every row is in the table already, with the same values: nothing written",
                        table.name)
            inserted, updated = 0, 0
        elif rows is not None and source_spans_table(spark, table, path, rows, time_range):
            logger.info("table %s: the new rows span the whole table: rewriting it in one commit", table.name)
            inserted, updated = rewrite_upsert(spark, table, path, df)
        else:
            inserted, updated = merge_into(spark, table, path, df, time_range)
        version_after, _ = _last_commit(spark, path)
    return WriteResult(table.name, path, version_before is None, version_before, version_after, inserted, updated)


# Delta's conflict exceptions (in delta-spark 4 they do not derive from DeltaConcurrentModificationException)
_CONFLICT_TYPES = (DeltaConcurrentModificationException, ConcurrentAppendException, ConcurrentDeleteDeleteException,
                   ConcurrentDeleteReadException, ConcurrentTransactionException, ConcurrentWriteException,
                   MetadataChangedException, ProtocolChangedException)
_CONFLICT_MARKERS = ("DELTA_CONCURRENT", "DELTA_PROTOCOL_CHANGED", "DELTA_METADATA_CHANGED",
                     "TABLE_OR_VIEW_ALREADY_EXISTS", "DELTA_TABLE_ALREADY_EXISTS")


def is_write_conflict(error: BaseException) -> bool:
    """True for Delta's optimistic-concurrency conflicts (and a lost race to create the table: two
    writers creating one table at once get ``DELTA_PROTOCOL_CHANGED`` or ``DELTA_METADATA_CHANGED``)."""
    if isinstance(error, _CONFLICT_TYPES):
        return True
    text = str(error)
    return any(marker in text for marker in _CONFLICT_MARKERS)


_STORAGE_FAILURES = ("java.io.", "org.apache.hadoop.fs.", "AccessDenied", "Permission denied",
                     "ParentNotDirectory", "Mkdirs failed", "Not a directory")


def is_storage_failure(error: BaseException) -> bool:
    """True when the storage under a table cannot be read or written (permissions, bad path)."""
    return not is_write_conflict(error) and any(marker in str(error) for marker in _STORAGE_FAILURES)


def _first_line(error: BaseException) -> str:
    lines = [line for line in str(error).splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__


def retry_on_conflict(write: Callable[[], T], what: str, path: str, max_attempts: int = MAX_WRITE_ATTEMPTS) -> T:
    """Run ``write`` and return its result, retrying Delta write conflicts with jittered back-off.

    ``write`` must be safe to repeat (an idempotent MERGE, a ``replaceWhere`` overwrite).
    featurelake's own errors and any other failure propagate unchanged, without a retry.

    Args:
        write: the write to run.
        what: what is written, e.g. ``"table 'x'"``; starts the log and error messages.
        path: the table's path, named when its storage fails.
        max_attempts: attempts in all, at least 1.

    Raises:
        ConflictError: the write still conflicted on the last attempt.
        DependencyUnavailableError: the storage at ``path`` cannot be written.
    """
    for attempt in range(1, max_attempts + 1):
        try:
            return write()
        except FeaturelakeError:
            raise
        except Exception as exc:  # noqa: BLE001 - only Delta conflicts are retried
            if is_storage_failure(exc):
                raise DependencyUnavailableError(
                    f"{what}: storage at {path} cannot be written: {_first_line(exc)}"
                ) from exc
            if not is_write_conflict(exc):
                raise
            if attempt == max_attempts:
                raise ConflictError(
                    f"{what}: concurrent writers kept conflicting after {attempt} attempts: {_first_line(exc)}"
                ) from exc
            logger.warning("%s: write conflict (attempt %d of %d), retrying: %s",
                           what, attempt, max_attempts, _first_line(exc))
            time.sleep(min(2.0 ** attempt, 10.0) * random.uniform(0.5, 1.0))
    raise ValueError(f"{what}: max_attempts must be at least 1, got {max_attempts}")


WRITE_MODES = ("merge", "overwrite")


def write_feature_table(spark: SparkSession, table: FeatureTable, path: str, df: DataFrame,
                        max_attempts: int = MAX_WRITE_ATTEMPTS, rows: int | None = None,
                        time_range: TimeRange | None = None, mode: str = "merge") -> WriteResult:
    """Create the table on first run (one commit), else keep its metadata current and upsert ``df``.

    ``df`` must already be validated (:func:`featurestore.validation.validate_feature_frame`,
    which also counts its ``rows``; without them a created table's row count is read from its history,
    and finds its ``time_range``, by which the MERGE skips files; without it the MERGE reads every file).
    The upsert is a MERGE, or a rewrite of the table in one commit when ``df`` rebuilds the
    whole table (:func:`source_spans_table`); both leave the same rows and report the same counts.
    When ``df`` would change no row (a rerun on the same sources) nothing is written and no
    version committed (:func:`rows_to_write`): ``version_after`` equals ``version_before``.
    With ``mode="overwrite"`` the rows of ``df`` replace every row of the table instead (one
    commit; ``rows_inserted`` is then the number of rows written).
    A concurrent writer's conflicting commit is retried (every write is idempotent) at most
    ``max_attempts`` times in all, then reported as :class:`ConflictError`.
    """
    if mode not in WRITE_MODES:
        raise BadInputError(f"table {table.name!r}: write mode must be one of {', '.join(WRITE_MODES)}, got {mode!r}")
    try:
        result = retry_on_conflict(lambda: _write_once(spark, table, path, df, rows, time_range, mode),
                                   f"table {table.name!r}", path, max_attempts)
    except ConflictError as exc:
        if table_exists(spark, path) or not path_exists(spark, path):
            raise
        raise ConflictError(
            f"table {table.name!r}: {path} holds files but no Delta table, so the table cannot be created there "
            "(left by a first build that was killed?); if no other build of this table is running, remove the "
            "folder and build again"
        ) from exc
    logger.info("table %s: %d rows inserted, %d updated (Delta version %s -> %s)", table.name,
                result.rows_inserted, result.rows_updated, result.version_before, result.version_after)
    return result


def table_history(spark: SparkSession, path: str, limit: int | None = None) -> list[dict]:
    """Return the Delta history of the table at ``path``, newest first (version, time, operation...)."""
    history = DeltaTable.forPath(spark, path).history(limit) if limit else DeltaTable.forPath(spark, path).history()
    rows = history.select("version", "timestamp", "operation", "operationParameters",
                          "operationMetrics", "userName").collect()
    return [row.asDict(recursive=True) for row in rows]


def restore_table(spark: SparkSession, path: str, version: int) -> int:
    """Restore the table at ``path`` to ``version`` (Delta RESTORE, itself a new commit).

    Returns the new current version.
    """
    known = [h["version"] for h in table_history(spark, path)]
    if version not in known:
        raise NotFoundError(f"table at {path} has no version {version} (known: {min(known)}..{max(known)})")
    DeltaTable.forPath(spark, path).restoreToVersion(version)
    new_version = current_version(spark, path)
    logger.info("restored %s to version %d (now version %s)", path, version, new_version)
    assert new_version is not None
    return new_version
