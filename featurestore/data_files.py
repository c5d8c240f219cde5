"""Reading data files a user brings (sources, labels, entities), parquet nanosecond timestamps included.

pandas writes its timestamps to parquet in nanoseconds by default (``df.to_parquet(path)``),
a precision Spark refuses (``PARQUET_TYPE_ILLEGAL ... TIMESTAMP(NANOS,false)``). Spark can read
them as their raw count of nanoseconds (``spark.sql.legacy.parquet.nanosAsLong``); the file's
own schema (its parquet footer) says which columns those are, and they are cast back to Spark
timestamps, truncated to microseconds (Spark's precision). A timestamp without a time zone
(pandas' default) is read as UTC, as Spark reads one in microseconds into a ``timestamp``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from py4j.protocol import Py4JJavaError
from pyspark.errors import AnalysisException
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import ArrayType, DataType, LongType, MapType, StructType

from featurestore.core.errors import BadInputError, NotFoundError
from featurestore.runtime.storage import hadoop_file_system

logger = logging.getLogger(__name__)

NANOS_AS_LONG = "spark.sql.legacy.parquet.nanosAsLong"
MICROS_FIX = "write the file with microsecond timestamps, e.g. df.to_parquet(path, coerce_timestamps='us')"


@dataclass(frozen=True)
class NanosecondColumns:
    """The columns of a parquet file stored as nanosecond timestamps: top-level ones and nested ones."""

    top_level: list[str]
    nested: list[str]


def read_data_files(spark: SparkSession, location: str, what: str, file_format: str = "parquet",
                    options: dict[str, str] | None = None) -> DataFrame:
    """Read the file or folder at ``location``; nanosecond parquet timestamps become timestamps.

    ``what`` names the input in errors, e.g. ``"table 'prices': source 'daily'"`` or ``"labels"``.
    Example: ``read_data_files(spark, "raw/labels.parquet", "labels")`` gives a DataFrame whose
    ``label_time`` is a ``timestamp`` though pandas wrote it in nanoseconds.

    Raises:
        NotFoundError: nothing exists at ``location``.
        BadInputError: something exists there but cannot be read (an empty or corrupt file,
            a nanosecond timestamp nested in a struct, array or map).
    """
    if file_format == "parquet":
        allow_nanosecond_parquet(spark)
    try:
        df = spark.read.format(file_format).options(**(options or {})).load(location)
        schema = df.schema  # forces the path check and the schema inference now
    except AnalysisException as exc:
        if exc.getCondition() == "PATH_NOT_FOUND":
            raise NotFoundError(f"{what} at {location} cannot be read: {_first_line(exc)}") from None
        raise BadInputError(f"{what} at {location} cannot be read as {file_format}: {_first_line(exc)}") from None
    except Py4JJavaError as exc:  # a corrupt or empty (0-byte) file fails in its reader
        raise BadInputError(f"{what} at {location} is not valid {file_format}: {_root_cause(exc)}") from None
    if file_format != "parquet" or not _holds_longs(schema) or not df.inputFiles():
        return df
    first_file = sorted(df.inputFiles())[0]
    nanos = nanosecond_columns(spark, first_file)
    if nanos.nested:
        raise BadInputError(f"{what} at {location}: column {nanos.nested[0]!r} holds nanosecond timestamps inside "
                            f"a struct, array or map, which cannot be converted; {MICROS_FIX}")
    converted = [name for name in nanos.top_level if isinstance(schema[name].dataType, LongType)]
    if not converted:
        return df
    logger.info("%s: nanosecond timestamp column(s) %s of %s read as timestamps (truncated to microseconds)",
                what, ", ".join(converted), location)
    return df.withColumns({name: nanos_to_timestamp(F.col(_quoted(name))) for name in converted})


def allow_nanosecond_parquet(spark: SparkSession) -> None:
    """Let the session read parquet nanosecond timestamps (as their count of nanoseconds, a long).

    The option has to hold whenever a query reading such a file runs, not only while its schema
    is read, so it stays set. It changes nothing for any other file.
    """
    if spark.conf.get(NANOS_AS_LONG, "false") != "true":
        spark.conf.set(NANOS_AS_LONG, "true")


def nanosecond_columns(spark: SparkSession, parquet_file: str) -> NanosecondColumns:
    """Return the columns of ``parquet_file`` stored as nanosecond timestamps, read from its footer.

    Read through Hadoop, like Spark, so any storage the session reads works (local, abfss, s3a...).
    """
    jvm = spark.sparkContext._jvm
    fs, path = hadoop_file_system(spark, parquet_file)
    parquet = jvm.org.apache.parquet.hadoop
    reader = parquet.ParquetFileReader.open(parquet.util.HadoopInputFile.fromPath(path, fs.getConf()))
    try:
        schema = reader.getFooter().getFileMetaData().getSchema()
    finally:
        reader.close()
    top_level, nested = [], []
    for field in schema.getFields():
        if field.isPrimitive():
            if _is_nanosecond_timestamp(field):
                top_level.append(field.getName())
        elif _nested_nanoseconds(field):
            nested.append(field.getName())
    return NanosecondColumns(top_level, nested)


def nanos_to_timestamp(nanos: Column) -> Column:
    """A count of nanoseconds since the epoch (UTC) as a timestamp, truncated (floored) to microseconds.

    Integer division keeps it exact (a double would lose the last digits of today's nanoseconds)
    and cheap (a decimal(20,0) division goes through BigDecimal: 3-4x the JVM CPU on 3M rows).
    ``div`` truncates toward zero, so a negative count with a remainder steps one lower.
    """
    nanos = nanos.cast("bigint")
    return F.timestamp_micros(F.call_function("div", nanos, F.lit(1000))
                              - F.when(nanos % 1000 < 0, F.lit(1)).otherwise(F.lit(0)))


def _is_nanosecond_timestamp(field) -> bool:
    annotation = field.getLogicalTypeAnnotation()
    return annotation is not None and str(annotation).startswith("TIMESTAMP(NANOS")


def _nested_nanoseconds(group) -> bool:
    return any(_is_nanosecond_timestamp(f) if f.isPrimitive() else _nested_nanoseconds(f)
               for f in group.asGroupType().getFields())


def _holds_longs(data_type: DataType) -> bool:
    """True when ``data_type`` is or holds a long: where Spark puts nanosecond timestamps."""
    if isinstance(data_type, StructType):
        return any(_holds_longs(f.dataType) for f in data_type.fields)
    if isinstance(data_type, ArrayType):
        return _holds_longs(data_type.elementType)
    if isinstance(data_type, MapType):
        return _holds_longs(data_type.keyType) or _holds_longs(data_type.valueType)
    return isinstance(data_type, LongType)


def _quoted(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def _first_line(error: BaseException) -> str:
    lines = [line for line in str(error).splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__


def _root_cause(error: Py4JJavaError) -> str:
    cause = error.java_exception
    while cause.getCause() is not None:
        cause = cause.getCause()
    return str(cause.getMessage() or cause.getClass().getName()).splitlines()[0]
