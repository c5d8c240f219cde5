"""Checks that a computed DataFrame matches its feature-table definition before any write."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from featurestore.definitions import FeatureTable
from featurestore.errors import BadInputError


def check_schema(table: FeatureTable, df: DataFrame) -> None:
    """Refuse missing, undeclared or mistyped columns (no silent coercion).

    Raises:
        BadInputError: naming the table and every column at fault.
    """
    actual = {f.name: f.dataType.simpleString() for f in df.schema.fields}
    declared = {c.name: c.dtype for c in table.columns}
    missing = [name for name in declared if name not in actual]
    if missing:
        kinds = []
        for name in missing:
            kind = ("primary key" if name in table.key_names
                    else "timestamp key" if name == table.timestamp_key else "feature")
            kinds.append(f"{kind} column {name!r}")
        raise BadInputError(f"table {table.name!r}: missing {', '.join(kinds)} in the computed data")
    extra = [name for name in actual if name not in declared]
    if extra:
        raise BadInputError(
            f"table {table.name!r}: column(s) {', '.join(map(repr, extra))} are not declared in the definition; "
            "declare them as features or drop them in the transformation"
        )
    mistyped = [
        f"{name!r} is {actual[name]}, declared {dtype}"
        for name, dtype in declared.items() if actual[name] != dtype
    ]
    if mistyped:
        raise BadInputError(f"table {table.name!r}: column type mismatch: {'; '.join(mistyped)}")


def check_rows(table: FeatureTable, df: DataFrame) -> None:
    """Refuse null keys or timestamps and duplicate rows for the same key and timestamp.

    Raises:
        BadInputError: naming the table, the columns and an offending example.
    """
    keys = table.merge_keys
    null_counts = df.select(
        [F.sum(F.col(k).isNull().cast("long")).alias(k) for k in keys]
    ).first()
    null_columns = [k for k in keys if null_counts is not None and (null_counts[k] or 0) > 0]
    if null_columns:
        detail = ", ".join(f"{k!r} ({null_counts[k]} rows)" for k in null_columns)
        raise BadInputError(f"table {table.name!r}: null values in key column(s) {detail}")
    duplicate = df.groupBy(*keys).count().filter(F.col("count") > 1).limit(1).collect()
    if duplicate:
        example = {k: duplicate[0][k] for k in keys}
        raise BadInputError(
            f"table {table.name!r}: duplicate rows for the same key and timestamp "
            f"({', '.join(keys)}), for example {example} appears {duplicate[0]['count']} times"
        )


def validate_feature_frame(table: FeatureTable, df: DataFrame) -> DataFrame:
    """Validate ``df`` against ``table`` and return it with columns in declared order."""
    check_schema(table, df)
    ordered = df.select(*[c.name for c in table.columns])
    check_rows(table, ordered)
    return ordered
