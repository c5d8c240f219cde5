"""Keeping a Delta table's files few and its storage bounded: OPTIMIZE (compaction, clustering) and VACUUM.

    optimize_table(spark, "customer_spend", path, "event_time")     # one OPTIMIZE commit
    vacuum_table(spark, "customer_spend", path, 168, keep=[KeptVersion(3, "model churn version 2 (Production)")])

Both record what they did in the table's history: OPTIMIZE is Delta's own commit (its layout and
file metrics); a vacuum deletes what Delta's ``VACUUM ... DRY RUN`` lists minus the kept versions'
files, and commits ``featurelake.last_vacuum`` with ``featurelake vacuum: ...`` as user metadata.
Which versions a vacuum must keep is the caller's business (:mod:`inference.maintenance` asks the
model registry); here a kept version's data files are never deleted, whatever the retention.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import unquote, urlparse

from delta.tables import DeltaTable
from pyspark.errors import AnalysisException, IllegalArgumentException
from pyspark.sql import SparkSession

from featurestore.core.errors import BadInputError
from featurestore.core.identifiers import quote_identifier, quote_path
from featurestore.delta_tables import current_version, read_version, retry_on_conflict, session_options_unless_set
from featurestore.runtime.storage import hadoop_file_system

logger = logging.getLogger(__name__)

USER_METADATA = "spark.databricks.delta.commitInfo.userMetadata"
LAST_VACUUM = "featurelake.last_vacuum"
LISTING_PARALLELISM = "spark.sql.sources.parallelPartitionDiscovery.parallelism"


@dataclass(frozen=True)
class TableFiles:
    """The data files of a table's current version: how many, and their total size."""

    files: int
    bytes: int


@dataclass(frozen=True)
class OptimizeResult:
    """What one ``optimize_table`` did."""

    table: str
    path: str
    layout: str                 # "clustered by event_time", "Z-ordered by event_time" or "compacted"
    before: TableFiles
    after: TableFiles
    files_added: int
    files_removed: int
    delta_version: int | None   # the table's version once the OPTIMIZE committed (or found nothing to rewrite)

    def to_dict(self) -> dict[str, Any]:
        """Return plain JSON-ready data."""
        return asdict(self)


@dataclass(frozen=True)
class KeptVersion:
    """A Delta version whose data files a vacuum must keep, and why."""

    version: int
    reason: str                 # e.g. "model churn_model version 3 (Production) reproduces its training set"


@dataclass(frozen=True)
class VacuumResult:
    """What one ``vacuum_table`` did (or, with ``dry_run``, would do)."""

    table: str
    path: str
    dry_run: bool
    retain_hours: float
    deleted_files: list[str]    # deleted (or, with dry_run, to be deleted), relative to the table
    deleted_bytes: int
    kept: list[KeptVersion]
    kept_files: int             # files the retention would delete that the kept versions read
    kept_bytes: int
    current: TableFiles
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Return plain JSON-ready data."""
        return asdict(self)


def table_files(spark: SparkSession, path: str) -> TableFiles:
    """Return the number and total size of the data files of the current version at ``path`` (Delta log only).

    Example: ``table_files(spark, path)`` -> ``TableFiles(files=12, bytes=48213)``.
    """
    detail = spark.sql(f"DESCRIBE DETAIL {quote_path(path)}").first()
    return TableFiles(int(detail["numFiles"] or 0), int(detail["sizeInBytes"] or 0))


def optimize_table(spark: SparkSession, table: str, path: str, time_column: str | None) -> OptimizeResult:
    """Compact the small files of the table at ``path`` in one OPTIMIZE commit, laid out by ``time_column``.

    A clustered table (``CLUSTER BY``) is compacted and clustered by its clustering columns; a table
    partitioned by ``time_column`` (or without one) is compacted; any other table is Z-ordered by
    ``time_column``, so that each file holds a narrow span of time and a MERGE of recent rows, a
    point-in-time join or a time filter skips the others by their statistics. A concurrent write
    that conflicts is retried; one that keeps conflicting is a :class:`ConflictError` (nothing lost:
    OPTIMIZE rewrites rows, it never changes them).

    Example::

        optimize_table(spark, "customer_spend", config.table_path("customer_spend"), "event_time")
    """
    detail = spark.sql(f"DESCRIBE DETAIL {quote_path(path)}").first()
    before = TableFiles(int(detail["numFiles"] or 0), int(detail["sizeInBytes"] or 0))
    clustering = list(detail["clusteringColumns"] or [])
    partitions = list(detail["partitionColumns"] or [])
    if clustering:
        layout = f"clustered by {', '.join(clustering)}"
    elif time_column and time_column not in partitions:
        layout = f"Z-ordered by {time_column}"
    else:
        layout = "compacted"
    version_before = current_version(spark, path)

    def run() -> Any:
        builder = DeltaTable.forPath(spark, path).optimize()
        if layout.startswith("Z-ordered"):
            return builder.executeZOrderBy(time_column)
        return builder.executeCompaction()

    metrics = retry_on_conflict(run, f"optimize of table {table!r}", path).first()["metrics"]
    after = table_files(spark, path)
    version = current_version(spark, path)
    added, removed = int(metrics["numFilesAdded"] or 0), int(metrics["numFilesRemoved"] or 0)
    logger.info("table %s: %s, %d files (%d bytes) -> %d files (%d bytes), Delta version %s -> %s", table, layout,
                before.files, before.bytes, after.files, after.bytes, version_before, version)
    return OptimizeResult(table, path, layout, before, after, added, removed, version)


def cluster_by_time(spark: SparkSession, table: str, path: str, time_column: str) -> bool:
    """Switch the table at ``path`` to liquid clustering by ``time_column`` (one ``ALTER TABLE ... CLUSTER BY``
    commit); False when it is clustered so already.

    :func:`optimize_table` then clusters the table's files by time (incrementally: files already
    clustered are not rewritten again, unlike a Z-order), so a MERGE of recent rows skips the files
    of other days by their statistics. Readers and writers see no other change.

    Example: ``cluster_by_time(spark, "customer_spend", path, "event_time")``.

    Raises:
        BadInputError: the table is partitioned (Delta clusters unpartitioned tables only).
    """
    detail = spark.sql(f"DESCRIBE DETAIL {quote_path(path)}").first()
    partitions = list(detail["partitionColumns"] or [])
    if partitions:
        raise BadInputError(f"table {table!r} is partitioned by {', '.join(partitions)}: Delta clusters "
                            "unpartitioned tables only (its partitions already keep the days apart)")
    if list(detail["clusteringColumns"] or []) == [time_column]:
        return False
    statement = f"ALTER TABLE {quote_path(path)} CLUSTER BY ({quote_identifier(time_column)})"
    retry_on_conflict(lambda: spark.sql(statement), f"clustering of table {table!r}", path)
    logger.info("table %s: clustered by %s from now on (run optimize to cluster the existing files)",
                table, time_column)
    return True


def vacuum_table(spark: SparkSession, table: str, path: str, retain_hours: float,
                 keep: Sequence[KeptVersion] = (), dry_run: bool = False) -> VacuumResult:
    """Delete the files of the table at ``path`` that no version younger than ``retain_hours`` reads,
    except those that a ``keep`` version reads.

    Delta's VACUUM knows nothing of the versions models need: the files its DRY RUN lists (those no
    version of the last ``retain_hours`` reads) are taken, minus the files a kept version reads,
    and deleted, so the kept
    versions stay readable whatever the retention. The result lists what went and what was kept
    and why; the table's history records it (a ``SET TBLPROPERTIES`` commit of
    ``featurelake.last_vacuum``, with ``featurelake vacuum: ...`` as its user metadata).
    With ``dry_run`` nothing is deleted or committed.

    Example::

        vacuum_table(spark, "customer_spend", path, 168, [KeptVersion(3, "model churn version 2 (Production)")])

    Raises:
        BadInputError: ``retain_hours`` is negative or below the table's ``delta.deletedFileRetentionDuration``
            (Delta's safety check: a writer still running may need younger files).
    """
    if not math.isfinite(retain_hours) or retain_hours < 0:
        raise BadInputError(f"table {table!r}: --retain-hours must be a number of hours >= 0, got {retain_hours}")
    candidates = _vacuum_candidates(spark, table, path, retain_hours)
    needed = _files_of_versions(spark, table, path, keep)
    kept = {f for f in candidates if f in needed.files}
    deleted = sorted(f for f in candidates if f not in kept)
    notes = [f"version {k.version} cannot be read any more ({needed.unreadable[k.version]}): its files cannot be "
             f"told apart, so none are kept for {k.reason}" for k in keep if k.version in needed.unreadable]
    for version in sorted({v for f in kept for v in needed.files[f]}):
        count = sum(1 for f in kept if version in needed.files[f])
        reasons = "; ".join(k.reason for k in keep if k.version == version)
        notes.append(f"kept {count} file(s) of version {version} that {retain_hours:g} hours would delete: {reasons}")
    sizes = _file_sizes(spark, candidates.values())
    if not dry_run and deleted:
        _delete(spark, [candidates[f] for f in deleted])
        _record_vacuum(spark, table, path, retain_hours, len(deleted), keep)
    root = _normalised(path).rstrip("/") + "/"
    result = VacuumResult(
        table=table, path=path, dry_run=dry_run, retain_hours=float(retain_hours),
        deleted_files=[f[len(root):] if f.startswith(root) else f for f in deleted],
        deleted_bytes=sum(sizes.get(f, 0) for f in deleted),
        kept=list(keep), kept_files=len(kept), kept_bytes=sum(sizes.get(f, 0) for f in kept),
        current=table_files(spark, path), notes=notes,
    )
    logger.info("table %s: %s %d files (%d bytes) older than %g hours; %s", table,
                "would delete" if dry_run else "deleted", len(deleted), result.deleted_bytes, retain_hours,
                "; ".join(notes) or "no version kept")
    return result


def _record_vacuum(spark: SparkSession, table: str, path: str, retain_hours: float, deleted: int,
                   keep: Sequence[KeptVersion]) -> None:
    """Record the vacuum in the table's history: one commit of the ``featurelake.last_vacuum`` property."""
    summary = json.dumps({"retain_hours": retain_hours, "deleted_files": deleted,
                          "kept_versions": sorted({k.version for k in keep})})
    kept_text = "; ".join(f"kept version {k.version} for {k.reason}" for k in keep) or "no version kept"
    statement = (f"ALTER TABLE {quote_path(path)} SET TBLPROPERTIES "
                 f"('{LAST_VACUUM}' = '{summary}')")  # numbers only: no quote to escape
    metadata = f"featurelake vacuum: deleted {deleted} files older than {retain_hours:g} hours; {kept_text}"
    with session_options_unless_set(spark, {USER_METADATA: metadata}):
        retry_on_conflict(lambda: spark.sql(statement), f"vacuum record of table {table!r}", path)


@dataclass(frozen=True)
class _NeededFiles:
    files: dict[str, list[int]]     # normalised file path -> the kept versions that read it
    unreadable: dict[int, str]      # kept version -> why it cannot be read


def _normalised(location: str) -> str:
    """A file's path without scheme and URL escapes, so that Delta's and Spark's spellings compare equal."""
    return unquote(urlparse(location).path)


def _file_sizes(spark: SparkSession, locations: Iterable[str]) -> dict[str, int]:
    """The size in bytes of each file at ``locations`` (0 for a folder), by normalised path."""
    sizes = {}
    for location in locations:
        fs, hadoop_path = hadoop_file_system(spark, location)
        status = fs.getFileStatus(hadoop_path)
        sizes[_normalised(location)] = 0 if status.isDirectory() else int(status.getLen())
    return sizes


def _delete(spark: SparkSession, locations: list[str]) -> None:
    """Delete the files at ``locations``, then those of the folders among them that are empty (deepest first)."""
    folders = []
    for location in locations:
        fs, hadoop_path = hadoop_file_system(spark, location)
        if fs.getFileStatus(hadoop_path).isDirectory():
            folders.append(location)
        else:
            fs.delete(hadoop_path, False)
    for location in sorted(folders, key=lambda f: f.count("/"), reverse=True):
        fs, hadoop_path = hadoop_file_system(spark, location)
        if not fs.listStatus(hadoop_path):
            fs.delete(hadoop_path, False)


def _vacuum_candidates(spark: SparkSession, table: str, path: str, hours: float) -> dict[str, str]:
    """The files (and empty folders) a VACUUM retaining ``hours`` would delete, by normalised path, with
    their location as Delta spells it (its DRY RUN: nothing deleted, nothing committed)."""
    try:
        with session_options_unless_set(spark, _listing_parallelism(spark)):
            rows = spark.sql(f"VACUUM {quote_path(path)} RETAIN {hours:g} HOURS DRY RUN").collect()
    except IllegalArgumentException as exc:
        raise BadInputError(f"table {table!r}: a retention of {hours:g} hours is refused by Delta: "
                            f"{_first_line(exc)} (the table's delta.deletedFileRetentionDuration is the least "
                            "allowed; lower it on the table only if no writer can be running)") from None
    return {_normalised(row["path"]): row["path"] for row in rows}


def _listing_parallelism(spark: SparkSession) -> dict[str, str]:
    """VACUUM lists the table's folders in as many Spark tasks as this option says, 10000 by default:
    a task costs more than listing one folder of a feature table, so use the session's parallelism (its cores)."""
    return {LISTING_PARALLELISM: str(max(spark.sparkContext.defaultParallelism, 1))}


def _files_of_versions(spark: SparkSession, table: str, path: str, keep: Sequence[KeptVersion]) -> _NeededFiles:
    """The data files each kept version reads (from the Delta log: no data file is read)."""
    files: dict[str, list[int]] = {}
    unreadable: dict[int, str] = {}
    for version in sorted({k.version for k in keep}):
        try:
            inputs = read_version(spark, path, version).inputFiles()
        except AnalysisException as exc:
            unreadable[version] = _first_line(exc)
            logger.warning("table %s: version %d cannot be read: %s", table, version, _first_line(exc))
            continue
        for location in inputs:
            files.setdefault(_normalised(location), []).append(version)
    return _NeededFiles(files, unreadable)


def _versions_of(paths: set[str], needed: dict[str, list[int]]) -> list[int]:
    return sorted({v for p in paths for v in needed.get(p, [])})


def _first_line(error: BaseException) -> str:
    lines = [line for line in str(error).splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__
