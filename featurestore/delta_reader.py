"""Reading Delta metadata and small Delta tables without a JVM, with Spark as the fallback.

Questions about a table (its properties, columns, history, a few hundred rows of events)
need a few kilobytes of Delta log, not a Spark session: :class:`DeltaReader` answers them
with delta-rs (the ``deltalake`` package) and starts Spark only for a location delta-rs
cannot read (one INFO line says why):

- a location on remote storage (``abfss://``, ``s3a://``, ``dbfs:/``...), whose credentials
  only Spark's Hadoop configuration holds;
- a table using a Delta feature delta-rs cannot read (it raises ``DeltaProtocolError``), and
  for its rows, any table with a reader feature other than ``timestampNtz`` or with column
  mapping (delta-rs returns nulls for renamed columns, and counts rows a deletion vector removed).

Both ways give the same answers, in the same types Spark returns (timestamps as naive local
datetimes, column types as Spark's simple strings, commit times as Spark's history shows
them), so a command prints the same text either way. Configuration ``metadata_reader: spark``
(or ``FEATURELAKE_METADATA_READER=spark``) makes every read go through Spark.

    >>> reader = DeltaReader(start_spark=lambda: get_spark(config))
    >>> reader.detail("/data/warehouse/customer_profile").version
    3
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Protocol, TypeVar
from urllib.parse import unquote, urlparse

from featurestore.core.config import METADATA_READER_CHOICES, Config, is_uri
from featurestore.core.errors import BadInputError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

logger = logging.getLogger(__name__)

_SPARK_TYPE_NAMES = {"long": "bigint", "integer": "int", "short": "smallint", "byte": "tinyint"}
# Reader features whose tables delta-rs reads the rows of as Spark does.
_ROWS_READER_FEATURES = {"timestampNtz"}
T = TypeVar("T")


@dataclass(frozen=True)
class TableDetail:
    """What ``DESCRIBE DETAIL`` tells about a Delta table, plus its current version."""

    path: str
    version: int
    description: str | None
    properties: dict[str, str]
    created: datetime | None
    last_modified: datetime | None
    partition_by: tuple[str, ...] = ()


@dataclass(frozen=True)
class Column:
    """One top-level column: its name, Spark type (``bigint``, ``array<string>``...) and comment."""

    name: str
    type: str
    comment: str


@dataclass(frozen=True)
class Commit:
    """One entry of a Delta table's history (``DESCRIBE HISTORY``)."""

    version: int
    timestamp: datetime | None
    operation: str | None
    parameters: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, str] = field(default_factory=dict)
    user: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return the entry under Delta's history column names (``operationMetrics``...)."""
        return {"version": self.version, "timestamp": self.timestamp, "operation": self.operation,
                "operationParameters": self.parameters, "operationMetrics": self.metrics, "userName": self.user}


class DeltaRsCannotRead(Exception):
    """delta-rs could open the table but would not read its rows as Spark does."""


class _Backend(Protocol):
    """The questions both ways of reading answer."""

    def folders(self, root: str) -> list[str]: ...
    def is_delta_table(self, path: str) -> bool: ...
    def detail(self, path: str) -> TableDetail: ...
    def columns(self, path: str) -> list[Column]: ...
    def history(self, path: str, limit: int | None) -> list[Commit]: ...
    def rows(self, path: str) -> list[dict[str, Any]]: ...
    def row_count(self, path: str) -> int: ...


class DeltaReader:
    """Answers metadata questions with delta-rs where it can read the location, else with Spark.

    Args:
        start_spark: returns the Spark session; called only when a read needs Spark.
        mode: ``auto`` (delta-rs where it can read) or ``spark`` (always Spark).
    """

    def __init__(self, start_spark: Callable[[], SparkSession], mode: str = "auto") -> None:
        if mode not in METADATA_READER_CHOICES:
            raise BadInputError(f"metadata_reader must be one of {', '.join(METADATA_READER_CHOICES)}, not {mode!r}")
        self._start_spark = start_spark
        self._mode = mode
        self._rust = _RustBackend()
        self._spark: _SparkBackend | None = None
        self._reasons_told: set[str] = set()

    def folders(self, root: str) -> list[str]:
        """Names of the sub-folders of ``root``, sorted (none when ``root`` does not exist)."""
        return self._read(root, lambda b: b.folders(root))

    def is_delta_table(self, path: str) -> bool:
        """True when ``path`` holds a Delta table."""
        return self._read(path, lambda b: b.is_delta_table(path))

    def detail(self, path: str) -> TableDetail:
        """The table's version, description, properties and creation/modification times."""
        return self._read(path, lambda b: b.detail(path))

    def columns(self, path: str) -> list[Column]:
        """The table's top-level columns, in order."""
        return self._read(path, lambda b: b.columns(path))

    def history(self, path: str, limit: int | None = None) -> list[Commit]:
        """The newest ``limit`` commits of the table (all when None), newest first."""
        return self._read(path, lambda b: b.history(path, limit))

    def rows(self, path: str) -> list[dict[str, Any]]:
        """Every row of the table as a dict, as Spark's ``Row.asDict()`` gives it (small tables only)."""
        return self._read(path, lambda b: b.rows(path))

    def row_count(self, path: str) -> int:
        """The number of rows of the table."""
        return self._read(path, lambda b: b.row_count(path))

    def _read(self, location: str, question: Callable[[_Backend], T]) -> T:
        reason = "configuration metadata_reader is 'spark'" if self._mode == "spark" else rust_cannot_read(location)
        if reason is None:
            from deltalake.exceptions import DeltaProtocolError

            try:
                return question(self._rust)
            except (DeltaProtocolError, DeltaRsCannotRead) as exc:
                reason = f"delta-rs cannot read the table at {location}: {_first_line(exc)}"
        self._tell(reason)
        return question(self._spark_backend())

    def _tell(self, reason: str) -> None:
        if reason not in self._reasons_told:
            self._reasons_told.add(reason)
            logger.info("reading Delta metadata with Spark: %s", reason)

    def _spark_backend(self) -> _SparkBackend:
        if self._spark is None:
            self._spark = _SparkBackend(self._start_spark())
        return self._spark


def session_reader(spark: SparkSession, config: Config) -> DeltaReader:
    """The reader of code that holds a Spark session already: delta-rs where it can, else that session."""
    return DeltaReader(lambda: spark, config.metadata_reader)


def local_path(location: str) -> Path | None:
    """The local file-system path of ``location`` (a path or a ``file:`` URI), else None."""
    if location.startswith("file:"):
        parsed = urlparse(location)
        return Path(unquote(parsed.path)) if parsed.netloc in ("", "localhost") else None
    return None if is_uri(location) else Path(location)  # abfss://, s3a://, dbfs:/... are not local


def rust_cannot_read(location: str) -> str | None:
    """Why delta-rs is not used for ``location`` (None when it is).

    delta-rs reads the local file system here; any other location is read by Spark,
    whose Hadoop configuration holds the storage credentials.
    """
    if local_path(location) is not None:
        return None
    scheme = location.split(":", 1)[0]
    return (f"{location} is on {scheme}: storage, whose credentials only Spark's Hadoop configuration holds")


def _first_line(error: BaseException) -> str:
    lines = [line for line in str(error).splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__


def spark_local_datetime(epoch_micros: int) -> datetime:
    """The naive local datetime PySpark returns for a timestamp of ``epoch_micros`` (``Row`` values)."""
    return datetime.fromtimestamp(epoch_micros // 1_000_000).replace(microsecond=epoch_micros % 1_000_000)


def _micros(value: datetime) -> int:
    delta = value - datetime(1970, 1, 1, tzinfo=timezone.utc)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def spark_type_name(delta_type: Any) -> str:
    """Spark's simple string of a type of a Delta schema (JSON): ``long`` -> ``bigint``...

    >>> spark_type_name({"type": "array", "elementType": "integer", "containsNull": True})
    'array<int>'
    """
    if isinstance(delta_type, str):
        return _SPARK_TYPE_NAMES.get(delta_type, delta_type)
    kind = delta_type["type"]
    if kind == "array":
        return f"array<{spark_type_name(delta_type['elementType'])}>"
    if kind == "map":
        return f"map<{spark_type_name(delta_type['keyType'])},{spark_type_name(delta_type['valueType'])}>"
    if kind == "struct":
        return "struct<" + ",".join(f"{f['name']}:{spark_type_name(f['type'])}" for f in delta_type["fields"]) + ">"
    return str(kind)


def _as_strings(mapping: dict[str, Any] | None) -> dict[str, str]:
    """A commit's parameters or metrics as Spark's history shows them: strings, sorted by key."""
    return {k: v if isinstance(v, str) else json.dumps(v) for k, v in sorted((mapping or {}).items())}


class _RustBackend:
    """delta-rs on the local file system."""

    def __init__(self) -> None:
        self._tables: dict[str, Any] = {}

    def _table(self, path: str) -> Any:
        from deltalake import DeltaTable

        if path not in self._tables:
            self._tables[path] = DeltaTable(str(local_path(path)))
        return self._tables[path]

    def folders(self, root: str) -> list[str]:
        folder = local_path(root)
        if folder is None or not folder.is_dir():
            return []
        return sorted(entry.name for entry in os.scandir(folder) if entry.is_dir())

    def is_delta_table(self, path: str) -> bool:
        from deltalake import DeltaTable

        return DeltaTable.is_deltatable(str(local_path(path)))

    def detail(self, path: str) -> TableDetail:
        table = self._table(path)
        metadata = table.metadata()
        version = table.version()
        # DESCRIBE DETAIL's lastModified is the commit file's modification time, even with in-commit timestamps
        last = {"timestamp": table.history(1)[0].get("timestamp")} if version >= 0 else {}
        modified = self._commit_millis(path, version, last)
        return TableDetail(
            path=path, version=version, description=metadata.description, properties=dict(metadata.configuration),
            created=spark_local_datetime(metadata.created_time * 1000) if metadata.created_time else None,
            last_modified=spark_local_datetime(modified * 1000) if modified is not None else None,
            partition_by=tuple(metadata.partition_columns),
        )

    def columns(self, path: str) -> list[Column]:
        schema = json.loads(self._table(path).schema().to_json())
        return [Column(f["name"], spark_type_name(f["type"]), (f.get("metadata") or {}).get("comment", ""))
                for f in schema["fields"]]

    def history(self, path: str, limit: int | None) -> list[Commit]:
        entries = self._table(path).history(limit)
        times = _monotonic([self._commit_millis(path, e["version"], e) for e in reversed(entries)])[::-1]
        return [Commit(version=int(e["version"]), timestamp=spark_local_datetime(ms * 1000) if ms is not None else None,
                       operation=e.get("operation"), parameters=_as_strings(e.get("operationParameters")),
                       metrics=_as_strings(e.get("operationMetrics")), user=e.get("userName"))
                for e, ms in zip(entries, times)]

    def rows(self, path: str) -> list[dict[str, Any]]:
        data = self._query(path, "SELECT * FROM t")
        columns = {}
        for name in data.column_names:
            convert = _spark_converter(data.schema.field(name).type, name)
            columns[name] = [convert(v) for v in data.column(name).to_pylist()]
        return [{name: values[i] for name, values in columns.items()} for i in range(data.num_rows)]

    def row_count(self, path: str) -> int:
        return int(self._query(path, "SELECT count(*) AS n FROM t").column("n").to_pylist()[0])

    def _query(self, path: str, sql: str) -> Any:
        """Run ``sql`` on the table as ``t`` with delta-rs's own engine: an Arrow table (arro3), no
        pyarrow.dataset (which imports pandas: seconds of a one-second command)."""
        from deltalake import QueryBuilder

        return QueryBuilder().register("t", self._data_table(path)).execute(sql).read_all()

    def _data_table(self, path: str) -> Any:
        """The table, when delta-rs reads its rows as Spark does; else :class:`DeltaRsCannotRead`."""
        table = self._table(path)
        unknown = sorted(set(table.protocol().reader_features or []) - _ROWS_READER_FEATURES)
        if unknown:
            raise DeltaRsCannotRead(f"its rows need reader feature(s) {', '.join(unknown)}")
        mode = table.metadata().configuration.get("delta.columnMapping.mode", "none")
        if mode != "none":
            raise DeltaRsCannotRead(f"its rows need column mapping (mode {mode})")
        return table

    @staticmethod
    def _commit_millis(path: str, version: int, commit_info: dict[str, Any]) -> int | None:
        """The commit's time as Delta on Spark reports it: its in-commit timestamp when the table
        keeps them, else the modification time of the commit file (not commitInfo.timestamp)."""
        if commit_info.get("inCommitTimestamp") is not None:
            return int(commit_info["inCommitTimestamp"])
        commit_file = Path(str(local_path(path))) / "_delta_log" / f"{version:020d}.json"
        try:
            return commit_file.stat().st_mtime_ns // 1_000_000
        except OSError:  # the commit file was cleaned up (log retention): the writer's clock
            return commit_info.get("timestamp")


def _monotonic(millis: list[int | None]) -> list[int | None]:
    """Make commit times strictly increasing, oldest first, as Delta's history does."""
    result: list[int | None] = []
    previous: int | None = None
    for value in millis:
        if value is not None and previous is not None and value <= previous:
            value = previous + 1
        result.append(value)
        previous = value if value is not None else previous
    return result


def _spark_converter(arrow_type: Any, column: str) -> Callable[[Any], Any]:
    """How a value of ``arrow_type`` (an arro3 type; values from ``to_pylist``) becomes the value
    PySpark's ``Row`` holds.

    Zoned timestamps become naive local datetimes, binary a bytearray, a map a dict; structs
    (PySpark's nested ``Row``) are left to Spark.
    """
    from arro3.core import DataType

    def keep_none(convert: Callable[[Any], Any]) -> Callable[[Any], Any]:
        return lambda value: None if value is None else convert(value)

    if DataType.is_timestamp(arrow_type) and arrow_type.tz:
        return keep_none(lambda value: spark_local_datetime(_micros(value)))
    if DataType.is_binary(arrow_type) or DataType.is_large_binary(arrow_type) or DataType.is_binary_view(arrow_type):
        return keep_none(bytearray)
    if DataType.is_struct(arrow_type):
        raise DeltaRsCannotRead(f"its column {column!r} is a struct (PySpark returns a Row)")
    if DataType.is_map(arrow_type):
        return keep_none(_map_to_dict)
    if DataType.is_list(arrow_type) or DataType.is_large_list(arrow_type):
        element = _spark_converter(arrow_type.value_type, column)
        return keep_none(lambda values: [element(v) for v in values])
    return lambda value: value


def _map_to_dict(entries: Any) -> dict[Any, Any]:
    """A map value (key-value pairs, or entries with ``key`` and ``value``) as PySpark's dict."""
    if isinstance(entries, dict):
        return entries
    return dict((e["key"], e["value"]) if isinstance(e, dict) else tuple(e) for e in entries)


class _SparkBackend:
    """Delta on Spark: the way every location can be read."""

    def __init__(self, spark: SparkSession) -> None:
        self._spark = spark

    def folders(self, root: str) -> list[str]:
        from featurestore.runtime.storage import hadoop_file_system

        fs, hadoop_path = hadoop_file_system(self._spark, root)
        if not fs.exists(hadoop_path):
            return []
        return sorted(s.getPath().getName() for s in fs.listStatus(hadoop_path) if s.isDirectory())

    def is_delta_table(self, path: str) -> bool:
        from featurestore.delta_tables import table_exists

        return table_exists(self._spark, path)

    def detail(self, path: str) -> TableDetail:
        from featurestore.core.identifiers import quote_path
        from featurestore.delta_tables import current_version

        row = self._spark.sql(f"DESCRIBE DETAIL {quote_path(path)}").first()
        return TableDetail(path=path, version=int(current_version(self._spark, path)),
                           description=row["description"], properties=dict(row["properties"] or {}),
                           created=row["createdAt"], last_modified=row["lastModified"],
                           partition_by=tuple(row["partitionColumns"] or ()))

    def columns(self, path: str) -> list[Column]:
        schema = self._spark.read.format("delta").load(path).schema
        return [Column(f.name, f.dataType.simpleString(), f.metadata.get("comment", "")) for f in schema.fields]

    def history(self, path: str, limit: int | None) -> list[Commit]:
        from featurestore.delta_tables import table_history

        return [Commit(version=int(e["version"]), timestamp=e["timestamp"], operation=e["operation"],
                       parameters=_as_strings(e["operationParameters"]), metrics=_as_strings(e["operationMetrics"]),
                       user=e["userName"])
                for e in table_history(self._spark, path, limit)]

    def rows(self, path: str) -> list[dict[str, Any]]:
        return [r.asDict() for r in self._spark.read.format("delta").load(path).collect()]

    def row_count(self, path: str) -> int:
        return self._spark.read.format("delta").load(path).count()
