"""Declarative feature-table definitions.

A feature table is declared once, in Python, and everything else (the Delta table, its
metadata, the Feast entities and feature view, the catalog) is derived from it::

    from datetime import timedelta
    from featurestore.definitions import FeatureTable, Field, Source

    def compute(spark, inputs):
        return inputs["transactions"].groupBy("customer_id", "day").agg(...)

    customer_spend = FeatureTable(
        name="customer_spend",
        primary_keys=[Field("customer_id", "bigint", "Customer identifier")],
        timestamp_key="day",
        features=[Field("spend_7d", "double", "Spend over the last 7 days")],
        sources=[Source("transactions", "raw/transactions.parquet")],
        transform=compute,
        owner="data-team@example.com",
        description="Spend per customer and day",
        notebook_url="https://github.com/org/repo/blob/main/features/spend.py",
        tags={"domain": "payments"},
        ttl=timedelta(days=30),
    )
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import sys
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Mapping, Sequence

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.types import StructType

from featurestore.core.errors import BadInputError, NotFoundError
from featurestore.core.identifiers import validate_identifier

# Spark SQL type names a column may be declared with.
SUPPORTED_TYPES = (
    "string", "boolean", "int", "bigint", "float", "double", "date", "timestamp",
)
SOURCE_FORMATS = ("parquet", "csv", "json", "delta")

Transform = Callable[[SparkSession, Mapping[str, DataFrame]], DataFrame]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Field:
    """A typed, documented column: a primary key or a feature."""

    name: str
    dtype: str
    description: str = ""

    def __post_init__(self) -> None:
        validate_identifier(self.name, "column name")
        if self.dtype not in SUPPORTED_TYPES:
            raise BadInputError(
                f"column {self.name!r}: unsupported type {self.dtype!r} "
                f"(one of {', '.join(SUPPORTED_TYPES)})"
            )


@dataclass(frozen=True)
class Source:
    """A data source a feature table is computed from."""

    name: str
    path: str
    format: str = "parquet"
    options: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        validate_identifier(self.name, "source name")
        if self.format not in SOURCE_FORMATS:
            raise BadInputError(
                f"source {self.name!r}: unsupported format {self.format!r} (one of {', '.join(SOURCE_FORMATS)})"
            )


@dataclass(frozen=True, kw_only=True)
class FeatureTable:
    """A feature table: keys, timestamp, documented features, sources and the transformation.

    Args:
        name: table name, a plain identifier; also the Feast feature view name.
        primary_keys: key columns (the Feast entities' join keys).
        timestamp_key: event-time column (type timestamp), part of the upsert key.
        features: the feature columns, each with a type and a description.
        sources: where the transformation reads from.
        transform: ``f(spark, inputs) -> DataFrame``; ``inputs`` maps source names to DataFrames.
        owner: who answers questions about the table.
        description: what the table holds.
        notebook_url: link to the notebook or script that defines it.
        tags: free-form labels.
        ttl: how old a feature value may be for a point-in-time lookup (None: no limit).
        partition_by: optional partition columns of the Delta table.
        allow_new_columns: let a build add newly declared feature columns to an existing
            table (schema evolution); dropped or retyped columns are always refused.
    """

    name: str
    primary_keys: list[Field]
    timestamp_key: str
    features: list[Field]
    sources: list[Source] = field(default_factory=list)
    transform: Transform | None = None
    owner: str = ""
    description: str = ""
    notebook_url: str = ""
    tags: Mapping[str, str] = field(default_factory=dict)
    ttl: timedelta | None = None
    partition_by: list[str] = field(default_factory=list)
    allow_new_columns: bool = False

    def __post_init__(self) -> None:
        validate_identifier(self.name, "table name")
        validate_identifier(self.timestamp_key, f"timestamp key of table {self.name!r}")
        if not self.primary_keys:
            raise BadInputError(f"table {self.name!r}: at least one primary key is required")
        names = [c.name for c in self.columns]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise BadInputError(f"table {self.name!r}: column(s) declared twice: {', '.join(duplicates)}")
        for column in self.partition_by:
            if column not in names:
                raise BadInputError(f"table {self.name!r}: partition column {column!r} is not declared")
        if self.ttl is not None and self.ttl.total_seconds() < 1:  # stored in whole seconds: 0 would mean none
            raise BadInputError(f"table {self.name!r}: ttl must be at least one second, got {self.ttl}")

    @property
    def key_names(self) -> list[str]:
        """Names of the primary-key columns."""
        return [k.name for k in self.primary_keys]

    @property
    def feature_names(self) -> list[str]:
        """Names of the feature columns."""
        return [f.name for f in self.features]

    @property
    def columns(self) -> list[Field]:
        """Every column in table order: keys, timestamp, features."""
        return [*self.primary_keys, Field(self.timestamp_key, "timestamp", "Event time of the feature values"),
                *self.features]

    @property
    def merge_keys(self) -> list[str]:
        """The columns that identify a row: primary keys plus the timestamp key."""
        return [*self.key_names, self.timestamp_key]


def table_from_schema(name: str, schema: StructType, primary_keys: Sequence[str], timestamp_key: str, *,
                      descriptions: Mapping[str, str] | None = None, **settings: Any) -> FeatureTable:
    """Return the feature table whose columns are those of ``schema`` (a DataFrame's, say).

    Keys and timestamp are named; every other column is a feature. Column types are taken
    from ``schema``; ``descriptions`` documents columns by name; ``settings`` are the other
    :class:`FeatureTable` fields (owner, description, notebook_url, sources, tags, ttl, partition_by).

    Example::

        table = table_from_schema("customer_spend", df.schema, ["customer_id"], "day",
                                  descriptions={"spend_7d": "Spend over the last 7 days"}, ttl=timedelta(days=30))

    Raises:
        BadInputError: naming the table and the key, timestamp or column at fault.
    """
    validate_identifier(name, "table name")
    keys = [primary_keys] if isinstance(primary_keys, str) else list(primary_keys)
    types = {f.name: f.dataType.simpleString() for f in schema.fields}
    notes = dict(descriptions or {})
    missing = [c for c in [*keys, timestamp_key] if c not in types]
    if missing:
        raise BadInputError(f"table {name!r}: key or timestamp column(s) {', '.join(map(repr, missing))} are not in "
                            f"the schema (columns: {', '.join(types) or 'none'})")
    if types[timestamp_key] != "timestamp":
        raise BadInputError(f"table {name!r}: timestamp key {timestamp_key!r} is {types[timestamp_key]}, expected "
                            "timestamp (cast it, for example F.col(...).cast('timestamp'))")
    undescribed = [c for c in notes if c not in types]
    if undescribed:
        raise BadInputError(f"table {name!r}: descriptions name column(s) {', '.join(map(repr, undescribed))} that "
                            "are not in the schema")
    try:
        return FeatureTable(
            name=name,
            primary_keys=[Field(k, types[k], notes.get(k, "")) for k in keys],
            timestamp_key=timestamp_key,
            features=[Field(c, t, notes.get(c, "")) for c, t in types.items() if c not in keys and c != timestamp_key],
            **settings,
        )
    except BadInputError as exc:
        raise BadInputError(f"table {name!r}: {exc}" if not str(exc).startswith(f"table {name!r}") else str(exc)
                            ) from None


# Definitions modules of featurelake that moved, by their old name: a configuration written before
# the move (the demo's says ``definitions: demo.tables``) still builds, with a warning to update it.
MOVED_DEFINITIONS = {"demo.tables": "jobs.demo.feature_tables"}


def _import_definitions(target: str, base_dir: str | None) -> ModuleType:
    """Run the definitions module ``target`` (a module name or a ``.py`` file) and return it."""
    if not target.endswith(".py"):
        try:
            return importlib.import_module(target)
        except ModuleNotFoundError as exc:
            if exc.name is not None and target.startswith(exc.name) and target in MOVED_DEFINITIONS:
                logger.warning("definitions module %r is now %r: change 'definitions' in the configuration",
                               target, MOVED_DEFINITIONS[target])
                return importlib.import_module(MOVED_DEFINITIONS[target])
            raise NotFoundError(f"definitions module {target!r} cannot be imported: {exc}") from None
    path = Path(target)
    if not path.is_absolute() and base_dir:
        path = Path(base_dir) / path
    if not path.is_file():
        raise NotFoundError(f"definitions file not found: {path}")
    spec = importlib.util.spec_from_file_location(f"featurelake_definitions_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def load_definitions(target: str, base_dir: str | None = None) -> dict[str, FeatureTable]:
    """Load the feature tables that a module or ``.py`` file declares.

    The module must define ``FEATURE_TABLES``, a list of :class:`FeatureTable`.

    Args:
        target: an importable module name (``jobs.demo.feature_tables``) or a path to a ``.py`` file.
        base_dir: folder that a relative file path is resolved against.

    Returns:
        The tables by name.
    """
    try:
        module = _import_definitions(target, base_dir)
    except BadInputError as exc:  # a Field or FeatureTable refused while the module runs
        raise BadInputError(f"definitions {target!r}: {exc}") from None
    tables = getattr(module, "FEATURE_TABLES", None)
    if not isinstance(tables, (list, tuple)) or not all(isinstance(t, FeatureTable) for t in tables):
        raise BadInputError(f"definitions {target!r} must define FEATURE_TABLES, a list of FeatureTable")
    by_name: dict[str, FeatureTable] = {}
    key_types: dict[str, tuple[str, str]] = {}  # key name -> (type, first table declaring it)
    for table in tables:
        if table.name in by_name:
            raise BadInputError(f"definitions {target!r}: table {table.name!r} is declared twice")
        by_name[table.name] = table
        for key in table.primary_keys:
            dtype, first = key_types.setdefault(key.name, (key.dtype, table.name))
            if dtype != key.dtype:  # Feast registers one Entity per key name, with one type
                raise BadInputError(f"definitions {target!r}: key {key.name!r} is {dtype} in table {first!r} "
                                    f"but {key.dtype} in table {table.name!r}; a key name shared by tables "
                                    "is one Feast entity and needs one type")
    return by_name


def select_tables(tables: Mapping[str, FeatureTable], names: list[str] | None) -> list[FeatureTable]:
    """Return the tables named in ``names`` (all when None), refusing unknown names."""
    if not names:
        return list(tables.values())
    for name in names:
        validate_identifier(name, "table name")
        if name not in tables:
            known = ", ".join(sorted(tables)) or "none"
            raise NotFoundError(f"unknown feature table {name!r} (defined: {known})")
    return [tables[n] for n in names]
