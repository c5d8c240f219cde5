"""Writing feature tables to Delta Lake: create with metadata, then MERGE (upsert)."""

from __future__ import annotations

import getpass
import logging
from dataclasses import dataclass

from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession

from featurestore.definitions import FeatureTable
from featurestore.errors import BadInputError
from featurestore.identifiers import quote_identifier, quote_path
from featurestore.table_metadata import PREFIX, column_comments, definition_properties

logger = logging.getLogger(__name__)


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


def create_table(spark: SparkSession, table: FeatureTable, path: str) -> None:
    """Create the (empty) Delta table for ``table`` with its columns, comments and properties."""
    comments = column_comments(table)
    builder = DeltaTable.createIfNotExists(spark).location(path).comment(table.description or table.name)
    for column in table.columns:
        builder = builder.addColumn(column.name, column.dtype, nullable=column.name not in table.merge_keys,
                                    comment=comments[column.name] or None)
    if table.partition_by:
        builder = builder.partitionedBy(*table.partition_by)
    properties = {**definition_properties(table), f"{PREFIX}created_by": getpass.getuser()}
    for key, value in properties.items():
        builder = builder.property(key, value)
    builder.execute()
    logger.info("created Delta table %s at %s", table.name, path)


def check_table_columns(spark: SparkSession, table: FeatureTable, path: str) -> None:
    """Refuse a definition whose columns differ from the existing table's (no silent evolution)."""
    existing = {f.name: f.dataType.simpleString() for f in spark.read.format("delta").load(path).schema.fields}
    declared = {c.name: c.dtype for c in table.columns}
    problems = [f"new column {n!r}" for n in declared if n not in existing]
    problems += [f"dropped column {n!r}" for n in existing if n not in declared]
    problems += [f"column {n!r} retyped from {existing[n]} to {t}"
                 for n, t in declared.items() if n in existing and existing[n] != t]
    if problems:
        raise BadInputError(
            f"table {table.name!r}: the definition no longer matches the Delta table at {path}: "
            + "; ".join(problems)
        )


def sync_metadata(spark: SparkSession, table: FeatureTable, path: str) -> bool:
    """Bring table properties and column comments up to date with ``table``; True if changed."""
    target = quote_path(path)
    detail = spark.sql(f"DESCRIBE DETAIL {target}").first()
    current = dict(detail["properties"] or {})
    wanted = definition_properties(table)
    changed = {k: v for k, v in wanted.items() if current.get(k) != v}
    touched = False
    if changed:
        for key, value in changed.items():
            spark.sql(f"ALTER TABLE {target} SET TBLPROPERTIES ({_sql_string(key)} = {_sql_string(value)})")
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


def merge_into(spark: SparkSession, table: FeatureTable, path: str, df: DataFrame) -> tuple[int, int]:
    """Upsert ``df`` into the table on primary keys plus timestamp; return (inserted, updated).

    Rows whose feature values are unchanged are not rewritten, so a rerun changes no rows.
    """
    on = " AND ".join(f"t.{quote_identifier(k)} = s.{quote_identifier(k)}" for k in table.merge_keys)
    changed = " OR ".join(
        f"NOT (t.{quote_identifier(f)} <=> s.{quote_identifier(f)})" for f in table.feature_names
    )
    all_columns = {quote_identifier(c.name): f"s.{quote_identifier(c.name)}" for c in table.columns}
    features = {quote_identifier(f): f"s.{quote_identifier(f)}" for f in table.feature_names}
    (
        DeltaTable.forPath(spark, path).alias("t")
        .merge(df.alias("s"), on)
        .whenMatchedUpdate(condition=changed or None, set=features)
        .whenNotMatchedInsert(values=all_columns)
        .execute()
    )
    last = DeltaTable.forPath(spark, path).history(1).first()
    metrics = last["operationMetrics"] or {}
    if last["operation"] != "MERGE":
        return 0, 0
    return int(metrics.get("numTargetRowsInserted", 0)), int(metrics.get("numTargetRowsUpdated", 0))


def write_feature_table(spark: SparkSession, table: FeatureTable, path: str, df: DataFrame) -> WriteResult:
    """Create the table on first run, keep its metadata current and MERGE ``df`` into it.

    ``df`` must already be validated (:func:`featurestore.validation.validate_feature_frame`).
    """
    version_before = current_version(spark, path)
    created = version_before is None
    if created:
        create_table(spark, table, path)
    else:
        check_table_columns(spark, table, path)
        sync_metadata(spark, table, path)
    inserted, updated = merge_into(spark, table, path, df)
    version_after = current_version(spark, path)
    assert version_after is not None
    logger.info("table %s: %d rows inserted, %d updated (Delta version %s -> %s)",
                table.name, inserted, updated, version_before, version_after)
    return WriteResult(table.name, path, created, version_before, version_after, inserted, updated)
