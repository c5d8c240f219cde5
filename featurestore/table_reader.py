"""Reading one version of a feature table: its Delta version, table properties and rows.

Spark's Delta reader replays a table's log with Spark jobs the first time a process reads the
table (a JSON scan, a shuffle, a sort and a cached state per table, then the file list), and
``SHOW TBLPROPERTIES`` and ``DeltaTable.isDeltaTable`` load Delta's classes and the snapshot
on the driver. In a fresh process, for three tables, that is 12 Spark jobs more than the same
query over parquet files and about 10 s of JVM CPU, where the scan itself costs the same: it was
the gap between a training set over Delta tables and the same query over parquet files
(benchmarks/results/delta_vs_parquet.md).

So a table on the local file system whose protocol needs no reader feature (reader version 1:
no deletion vectors, no column mapping, no type widening, no ``timestamp_ntz``) and that has no
partition columns is read from its log with delta-rs (the ``deltalake`` package: no Spark job,
milliseconds): the files of the version are exactly the ones its log lists, each a plain parquet
file holding the table's columns by name, and Spark reads them as parquet with the table's
schema. Any other table (remote storage, reader features, partitions) is read through Delta's
Spark reader, as before; both give the same rows.

    version = read_table_version(spark, "customer_profile", "/warehouse/customer_profile")
    version.number, version.properties["featurelake.primary_keys"], version.data.count()
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from urllib.parse import unquote, urlparse

from delta.tables import DeltaTable
from pyspark.errors import AnalysisException
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import types as T

from featurestore.core.config import is_uri
from featurestore.core.errors import NotFoundError
from featurestore.core.identifiers import quote_path
from featurestore.delta_tables import read_version

logger = logging.getLogger(__name__)

_COMMIT_FILE = re.compile(r"(\d{20})\.json")
# Characters Spark would take as a glob pattern in a path it is given to read.
_GLOB_CHARACTERS = set("*?[]{}\\")


@dataclass(frozen=True)
class TableVersion:
    """One version of a Delta table, ready to query.

    Attributes:
        number: the Delta version.
        properties: the table properties (``featurelake.*`` and Delta's own).
        data: the table's rows at that version (lazy: nothing is read yet).
        read_from_log: True when the files were listed from the log with delta-rs, False when
            the table is read through Delta's Spark reader.
    """

    number: int
    properties: dict[str, str]
    data: DataFrame
    read_from_log: bool


def read_table_version(spark: SparkSession, table: str, path: str, version: int | None = None) -> TableVersion:
    """Return the table at ``path`` at ``version`` (the latest when None).

    Raises:
        NotFoundError: no Delta table at ``path``, or no such version.
    """
    local = _local_path(path)
    if local is not None:
        found = _version_from_log(spark, table, local, version)
        if found is not None:
            return found
    return _version_through_spark(spark, table, path, version)


def _local_path(path: str) -> str | None:
    """The file-system path of ``path`` when it is on the local file system, else None."""
    if not is_uri(path):
        return path
    parsed = urlparse(path)
    if parsed.scheme == "file" and parsed.netloc in ("", "localhost"):
        return unquote(parsed.path)
    return None


def _version_from_log(spark: SparkSession, table: str, path: str, version: int | None) -> TableVersion | None:
    """The version read from the log with delta-rs, or None when this table needs Delta's reader.

    The properties are the latest version's, as ``SHOW TBLPROPERTIES`` gives them on the other path.
    """
    from deltalake import DeltaTable as LogTable

    if "%" in path:  # delta-rs would decode it (a%41 -> aA) and could read another folder's table
        return None
    try:
        log = LogTable(path)
        properties = dict(log.metadata().configuration)
        if version is not None:
            log.load_as_version(int(version))
    except Exception as exc:  # noqa: BLE001 - no table, no such version, a log delta-rs cannot read: Delta decides
        logger.debug("table %s: delta-rs cannot read version %s (%s); reading through Delta", table, version, exc)
        return None
    # The log's paths are URIs: a space in the table's folder is %20 there.
    files = [unquote(f) for f in log.file_uris()]
    if (log.protocol().min_reader_version != 1 or log.metadata().partition_columns
            or any(_GLOB_CHARACTERS & set(f) for f in files)):
        return None
    schema = T.StructType.fromJson(json.loads(log.schema().to_json()))
    if files:
        data = spark.read.schema(schema).parquet(*["file://" + f for f in files])
    else:
        data = spark.createDataFrame([], schema)
    return TableVersion(int(log.version()), properties, data, True)


def _version_through_spark(spark: SparkSession, table: str, path: str, version: int | None) -> TableVersion:
    """The version read through Delta's Spark reader (any storage, any protocol)."""
    if not DeltaTable.isDeltaTable(spark, path):
        raise NotFoundError(f"feature table {table!r} not found (no Delta table at {path})")
    number = _latest_version(spark, path) if version is None else int(version)
    try:
        data = read_version(spark, path, number)  # fails here for a version that does not exist
    except AnalysisException as exc:
        raise NotFoundError(
            f"feature table {table!r}: Delta version {number} cannot be read: {str(exc).splitlines()[0]}"
        ) from None
    # SHOW TBLPROPERTIES needs only the table metadata; DESCRIBE DETAIL also counts the files,
    # which reconstructs the table state (Spark jobs) on a fresh session.
    properties = {row["key"]: row["value"] for row in spark.sql(f"SHOW TBLPROPERTIES {quote_path(path)}").collect()}
    return TableVersion(number, properties, data, False)


def _latest_version(spark: SparkSession, path: str) -> int:
    """Return the latest committed Delta version of the table at ``path``.

    The version is the highest commit file in ``_delta_log`` (listed with the session's
    Hadoop file system, so any storage Spark can read works); ``DeltaTable.history`` would
    run a Spark job. Falls back to the history when the listing finds no commit.
    """
    jvm = spark._jvm
    log = jvm.org.apache.hadoop.fs.Path(path, "_delta_log")
    fs = log.getFileSystem(spark._jsparkSession.sessionState().newHadoopConf())
    versions = [int(m.group(1)) for m in (_COMMIT_FILE.fullmatch(str(s.getPath().getName()))
                                          for s in fs.listStatus(log)) if m]
    if versions:
        return max(versions)
    return int(DeltaTable.forPath(spark, path).history(1).select("version").first()[0])
