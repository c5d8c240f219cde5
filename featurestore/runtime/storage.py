"""Files and folders under a warehouse, through Hadoop's FileSystem (local disk or cloud storage)."""

from __future__ import annotations

from typing import Any

from pyspark.sql import SparkSession


def hadoop_file_system(spark: SparkSession, location: str) -> tuple[Any, Any]:
    """Return the Hadoop ``FileSystem`` that holds ``location`` and ``location`` as a Hadoop ``Path`` (JVM objects)."""
    jvm = spark.sparkContext._jvm
    hadoop_path = jvm.org.apache.hadoop.fs.Path(location)
    return hadoop_path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration()), hadoop_path


def path_exists(spark: SparkSession, location: str) -> bool:
    """True when a file or folder exists at ``location``."""
    fs, hadoop_path = hadoop_file_system(spark, location)
    return bool(fs.exists(hadoop_path))


def remove_folder(spark: SparkSession, location: str) -> None:
    """Delete the folder at ``location`` and everything in it (nothing when it does not exist)."""
    fs, hadoop_path = hadoop_file_system(spark, location)
    fs.delete(hadoop_path, True)
