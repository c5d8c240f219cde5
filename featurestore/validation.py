"""Checks that a computed DataFrame matches its feature-table definition before any write."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import date, datetime

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from featurestore.definitions import FeatureTable
from featurestore.core.errors import BadInputError


@dataclass(frozen=True)
class TimeRange:
    """The earliest and latest timestamp-key value of some rows, in microseconds since the epoch (UTC)."""

    first_micros: int
    last_micros: int


@dataclass(frozen=True)
class ValidatedFrame:
    """A computed DataFrame that passed validation, its row count and time range (found in the same pass)."""

    df: DataFrame
    rows: int
    time_range: TimeRange | None


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


def check_rows(table: FeatureTable, df: DataFrame) -> tuple[int, TimeRange | None]:
    """Refuse null (or NaN) keys or timestamps and duplicate rows for the same key and timestamp.

    Returns the number of rows and their time range (None when there are none), found in the same pass.

    Raises:
        BadInputError: naming the table, the columns and an offending example.
    """
    keys = table.merge_keys
    fractional = {c.name for c in table.columns if c.dtype in ("float", "double")}

    def missing(k: str):  # NaN is no key either (NaN = NaN in Spark would merge distinct rows)
        return (F.col(k).isNull() | F.isnan(F.col(k))) if k in fractional else F.col(k).isNull()

    # One aggregation pass (one Spark query) finds both problems: rows per distinct key,
    # then the null count per key column and the most repeated key among complete keys.
    # The same pass counts the rows and finds their time range (a MERGE prunes target files by it).
    rows = F.col("__featurelake_rows")
    per_key = df.groupBy(*keys).agg(F.count(F.lit(1)).alias("__featurelake_rows"))
    complete = ~functools.reduce(lambda a, b: a | b, [missing(k) for k in keys])
    summary = per_key.agg(
        *[F.sum(F.when(missing(k), rows).otherwise(0)).alias(f"null_{i}") for i, k in enumerate(keys)],
        F.max(F.when(complete, F.struct(rows.alias("count"), F.struct(*keys).alias("key")))).alias("most"),
        F.sum(rows).alias("rows"),
        F.unix_micros(F.min(table.timestamp_key)).alias("first_micros"),
        F.unix_micros(F.max(table.timestamp_key)).alias("last_micros"),
    ).first()
    null_counts = {k: (summary[f"null_{i}"] or 0) if summary is not None else 0 for i, k in enumerate(keys)}
    null_columns = [k for k in keys if null_counts[k] > 0]
    if null_columns:
        detail = ", ".join(f"{k!r} ({null_counts[k]} rows{', null or NaN' if k in fractional else ''})"
                           for k in null_columns)
        raise BadInputError(f"table {table.name!r}: null values in key column(s) {detail}")
    most = summary["most"] if summary is not None else None
    if most is not None and most["count"] > 1:
        example = ", ".join(f"{k}={as_written(most['key'][k])}" for k in keys)
        raise BadInputError(
            f"table {table.name!r}: duplicate rows for the same key and timestamp "
            f"({', '.join(keys)}), for example {example} appears {most['count']} times"
        )
    if summary is None or summary["first_micros"] is None:
        return (int(summary["rows"] or 0) if summary is not None else 0), None
    return int(summary["rows"]), TimeRange(int(summary["first_micros"]), int(summary["last_micros"]))


def as_written(value: object) -> str:
    """Return a key value the way a user writes it in a message: strings quoted, timestamps in ISO form.

    >>> as_written(datetime(2001, 2, 1)), as_written("AAPL"), as_written(7)
    ('2001-02-01 00:00:00', "'AAPL'", '7')
    """
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, str):
        return "'" + value.replace("'", "\\'") + "'"
    return str(value)


def validate_feature_frame(table: FeatureTable, df: DataFrame) -> ValidatedFrame:
    """Validate ``df`` against ``table``; return it with columns in declared order, its row count and time range."""
    check_schema(table, df)
    ordered = df.select(*[c.name for c in table.columns])
    rows, time_range = check_rows(table, ordered)
    return ValidatedFrame(ordered, rows, time_range)
