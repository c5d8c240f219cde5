"""The feature-table catalog: what the Databricks feature-table page shows, read from Delta."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from featurestore.core.config import Config, join_location
from featurestore.core.errors import BadInputError, NotFoundError
from featurestore.core.identifiers import validate_identifier
from featurestore.delta_reader import DeltaReader, TableDetail, session_reader
from featurestore.table_metadata import KIND_FEATURE_TABLE, parse_properties

if TYPE_CHECKING:  # Spark and the definitions (which import it) only for the functions that return Spark data
    from pyspark.sql import DataFrame, SparkSession

    from featurestore.definitions import FeatureTable


@dataclass
class FeatureInfo:
    """One column of a feature table."""

    name: str
    type: str
    description: str


@dataclass
class TableInfo:
    """Everything the catalog knows about one feature table."""

    name: str
    path: str
    created: datetime | None
    last_updated: datetime | None
    delta_version: int
    primary_keys: list[str]
    timestamp_key: str | None
    created_by: str | None
    owner: str | None
    description: str | None
    notebook_url: str | None
    sources: list[dict[str, str]]
    tags: dict[str, str]
    ttl_seconds: int | None
    features: list[FeatureInfo] = field(default_factory=list)
    key_types: dict[str, str] = field(default_factory=dict)  # key and timestamp columns -> type
    partition_by: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Return plain JSON-ready data (timestamps as ISO 8601)."""
        data = asdict(self)
        for key in ("created", "last_updated"):
            data[key] = data[key].isoformat() if data[key] else None
        return data


def _feature_table_detail(reader: DeltaReader, path: str) -> TableDetail | None:
    """Return the detail of the Delta table at ``path`` when it is a feature table, else None."""
    if not reader.is_delta_table(path):
        return None
    detail = reader.detail(path)
    return detail if detail.properties.get("featurelake.kind") == KIND_FEATURE_TABLE else None


def read_table_info(reader: DeltaReader, name: str, detail: TableDetail) -> TableInfo:
    """Read the catalog entry of feature table ``name``, whose Delta detail is ``detail``."""
    meta = parse_properties(detail.properties)
    key_set = set(meta["primary_keys"]) | {meta["timestamp_key"]}
    columns = reader.columns(detail.path)
    return TableInfo(
        name=name,
        path=detail.path,
        created=detail.created,
        last_updated=detail.last_modified,
        delta_version=detail.version,
        primary_keys=meta["primary_keys"],
        timestamp_key=meta["timestamp_key"],
        created_by=meta["created_by"],
        owner=meta["owner"],
        description=meta["description"] or detail.description,
        notebook_url=meta["notebook_url"],
        sources=meta["sources"],
        tags=meta["tags"],
        ttl_seconds=meta["ttl_seconds"],
        features=[FeatureInfo(c.name, c.type, c.comment) for c in columns if c.name not in key_set],
        key_types={c.name: c.type for c in columns if c.name in key_set},
        partition_by=list(detail.partition_by),
    )


def describe_table(reader: DeltaReader, config: Config, name: str) -> TableInfo:
    """Return the catalog entry of feature table ``name``.

    >>> describe_table(DeltaReader(lambda: get_spark(config)), config, "customer_profile").delta_version
    0

    Raises:
        NotFoundError: when no feature table of that name is in the warehouse (a Delta table
            that featurelake did not write as a feature table, such as the predictions, is none).
    """
    validate_identifier(name, "table name")
    path = config.table_path(name)
    detail = _feature_table_detail(reader, path)
    if detail is None:
        raise NotFoundError(f"feature table {name!r} not found in warehouse {config.warehouse}")
    return read_table_info(reader, name, detail)


def read_definition(spark: SparkSession, config: Config, name: str) -> FeatureTable:
    """Return the definition of the existing feature table ``name``, as its Delta metadata records it.

    Keys and features keep their types and descriptions (column comments); owner, description,
    notebook link, sources, tags and ttl come from the table properties. A table written by
    ``featurelake build`` gives back its definition (without the transformation), so writing a
    DataFrame with it (:func:`featurestore.build.write_table`) checks and keeps the same metadata.

    Example::

        table = read_definition(spark, config, "customer_spend")
        table.feature_names    # ['spend_7d', ...]

    Raises:
        NotFoundError: no feature table ``name`` in the warehouse.
    """
    from featurestore.definitions import FeatureTable, Field, Source

    reader = session_reader(spark, config)
    info = describe_table(reader, config, name)
    comments = {c.name: c.comment for c in reader.columns(info.path)}
    if not info.timestamp_key:
        raise BadInputError(f"feature table {name!r} at {info.path} records no timestamp key")
    return FeatureTable(
        name=name,
        primary_keys=[Field(k, info.key_types.get(k, ""), comments.get(k, "")) for k in info.primary_keys],
        timestamp_key=info.timestamp_key,
        features=[Field(f.name, f.type, f.description) for f in info.features],
        sources=[Source(s.get("name", ""), s.get("path", ""), s.get("format", "parquet")) for s in info.sources],
        owner=info.owner or "",
        description=info.description or "",
        notebook_url=info.notebook_url or "",
        tags=dict(info.tags),
        ttl=timedelta(seconds=info.ttl_seconds) if info.ttl_seconds else None,
        partition_by=list(info.partition_by),
    )


def read_feature_table(spark: SparkSession, config: Config, name: str, version: int | None = None,
                       timestamp: str | datetime | None = None) -> DataFrame:
    """Return the rows of feature table ``name``: the latest, or as of a Delta ``version`` or ``timestamp``.

    Example::

        read_feature_table(spark, config, "customer_spend", version=3)

    Raises:
        NotFoundError: no such feature table, or no such version (or nothing committed at that time).
        BadInputError: both ``version`` and ``timestamp`` given.
    """
    if version is not None and timestamp is not None:
        raise BadInputError(f"feature table {name!r}: give as_of_version or as_of_timestamp, not both")
    from pyspark.errors import AnalysisException

    info = describe_table(session_reader(spark, config), config, name)
    reader = spark.read.format("delta")
    if version is not None:
        reader = reader.option("versionAsOf", int(version))
    elif timestamp is not None:
        reader = reader.option("timestampAsOf", timestamp.isoformat(sep=" ") if isinstance(timestamp, datetime)
                               else str(timestamp))
    try:
        df = reader.load(info.path)
        df.schema  # noqa: B018 - fail here for a version or time the table does not have
    except AnalysisException as exc:
        when = f"version {version}" if version is not None else f"time {timestamp}"
        raise NotFoundError(f"feature table {name!r} has no {when}: {str(exc).splitlines()[0]}") from None
    return df


def list_tables(reader: DeltaReader, config: Config) -> list[TableInfo]:
    """Return the catalog entries of every feature table in the warehouse, by name."""
    infos = []
    for name in reader.folders(config.warehouse):
        detail = _feature_table_detail(reader, join_location(config.warehouse, name))
        if detail is not None:
            infos.append(read_table_info(reader, name, detail))
    return infos


def readable_duration(seconds: int) -> str:
    """Return a TTL the way the catalog and the report show it.

    >>> readable_duration(2 * 86400), readable_duration(90 * 60)
    ('2 days', '1 h 30 min')
    """
    days, rest = divmod(int(seconds), 86400)
    hours = rest // 3600
    return f"{days} days" + (f" {hours} h" if hours else "") if days else f"{rest // 3600} h {rest % 3600 // 60} min"


def format_table_info(info: TableInfo) -> str:
    """Render one catalog entry as the text ``featurelake tables describe`` prints."""

    def show(value: object) -> str:
        return "not set" if value in (None, "", [], {}) else str(value)

    lines = [
        f"Feature table: {info.name}",
        f"  Path:            {info.path}",
        f"  Created:         {show(info.created)}",
        f"  Last updated:    {show(info.last_updated)}",
        f"  Delta version:   {info.delta_version}",
        f"  Primary keys:    {show(', '.join(info.primary_keys))}",
        f"  Timestamp key:   {show(info.timestamp_key)}",
        f"  Created by:      {show(info.created_by)}",
        f"  Owner:           {show(info.owner)}",
        f"  Description:     {show(info.description)}",
        f"  Notebook:        {show(info.notebook_url)}",
        f"  Data sources:    {show(', '.join(s.get('path', '') for s in info.sources))}",
        f"  Tags:            {show(', '.join(f'{k}={v}' for k, v in info.tags.items()))}",
        f"  TTL:             {_ttl_text(info.ttl_seconds)}",
        "  Features:",
    ]
    width = max((len(f.name) for f in info.features), default=0)
    lines += [f"    {f.name.ljust(width)}  {f.type:<9}  {f.description}" for f in info.features]
    return "\n".join(lines)


def _ttl_text(seconds: int | None) -> str:
    if not seconds:
        return "not set (no maximum age)"
    return f"{readable_duration(seconds)} ({seconds} s)"
