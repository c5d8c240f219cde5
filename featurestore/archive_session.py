"""Local Spark sessions whose JVM writes the class-data archive as it exits (a *training run*).

A JVM started with ``-XX:ArchiveClassesAtExit`` stores every class it loaded in an archive when
it exits; later local sessions map it and start several seconds faster
(:mod:`featurestore.runtime.class_data_archive`). :func:`session_writing_archive` gives a job such a
session: the demo's, when no archive exists yet, so that the README's first command leaves a
machine whose later jobs start fast; :func:`create_archive` (``featurelake warmup``) runs a
tiny build in one. Writing the archive takes the exiting JVM a while, once
(benchmarks/results/reruns/demo_writes_archive.md).
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
from pathlib import Path
from typing import Iterator

from pyspark import SparkContext
from pyspark.sql import SparkSession

from featurestore.runtime import class_data_archive
from featurestore.build import build_features
from featurestore.core.config import Config, load_config
from featurestore.core.errors import DependencyUnavailableError
from featurestore.runtime.spark_session import builds_its_own_session, get_spark

logger = logging.getLogger(__name__)

# How long the exiting JVM may take to write the archive (its usual time:
# benchmarks/results/reruns/demo_writes_archive.md).
ARCHIVE_WRITE_TIMEOUT_SECONDS = 600


def starts_its_own_jvm() -> bool:
    """True when :func:`get_spark` would launch a new driver JVM in this process (whose options we set)."""
    return builds_its_own_session() and SparkContext._gateway is None


@contextlib.contextmanager
def session_writing_archive(config: Config, small_input: bool = False, replace: bool = False,
                            python_daemon_module: str | None = None) -> Iterator[SparkSession]:
    """Yield the jobs' Spark session (:func:`get_spark`); if it writes the class-data archive, install it on exit.

    The session writes one when this process launches its JVM and no archive exists yet (or
    ``replace``). When the body succeeds, the session is stopped and its JVM exits, writing
    the archive, which is then moved into place; a failed write is logged as a warning, or
    raised as :class:`DependencyUnavailableError` with ``replace`` (``featurelake warmup``,
    whose only purpose it is). When the body fails, the JVM is killed: it writes nothing.
    ``python_daemon_module``: see :func:`get_spark`.
    """
    user_options = config.spark.conf.get("spark.driver.extraJavaOptions", "")
    dump_to = class_data_archive.dump_path(user_options, replace) if starts_its_own_jvm() else None
    spark = get_spark(config, small_input, write_archive_to=dump_to, python_daemon_module=python_daemon_module)
    if dump_to is None:
        yield spark
        return
    try:
        yield spark
    except BaseException:
        try:
            _stop_driver_jvm(spark, write_archive=False)
            dump_to.unlink(missing_ok=True)
        except Exception as exc:  # the body's error is the one to report
            logger.warning("could not stop the driver JVM: %s", exc)
        raise
    logger.info("writing the JVM class-data archive of this run's classes (once per machine, about 20 s); "
                "later local jobs map it and start faster")
    try:
        _stop_driver_jvm(spark, write_archive=True)
        class_data_archive.install_archive(dump_to)
    except Exception as exc:  # the archive only speeds up later starts: a failure here loses nothing else
        dump_to.unlink(missing_ok=True)
        if replace:
            raise DependencyUnavailableError(f"the class-data archive was not written: {exc}") from exc
        logger.warning("the class-data archive was not written (later jobs start without it): %s", exc)


def _stop_driver_jvm(spark: SparkSession, write_archive: bool) -> None:
    """Stop ``spark`` and the driver JVM this process launched: let it exit (writing its archive) or kill it."""
    spark.stop()
    gateway = SparkContext._gateway
    process = gateway.proc
    gateway.shutdown()
    if write_archive:
        process.stdin.close()  # the JVM exits when its stdin closes (pyspark's PythonGatewayServer)
    else:
        process.kill()
    process.wait(timeout=ARCHIVE_WRITE_TIMEOUT_SECONDS)
    # The next session in this process, if any, launches a new JVM.
    SparkContext._gateway = None
    SparkContext._jvm = None


def create_archive() -> Path:
    """Build a tiny feature table in a session that writes the class-data archive; return the archive's path.

    Raises DependencyUnavailableError when java is missing or the archive was not written.
    """
    if class_data_archive.archive_path() is None:
        raise DependencyUnavailableError("no java binary found (set JAVA_HOME or put java on PATH)")
    if not starts_its_own_jvm():
        raise DependencyUnavailableError("featurelake warmup must start its own Spark session (not under spark-submit)")
    with tempfile.TemporaryDirectory(prefix="featurelake-warmup-") as folder:
        config = load_config(class_data_archive.write_tiny_project(Path(folder), "  quick_start: always\n"))
        with session_writing_archive(config, small_input=True, replace=True) as spark:
            build_features(spark, config)  # creates the table
            build_features(spark, config)  # upserts into it: a rerun's classes are archived too
    archive = class_data_archive.existing_archive()
    if archive is None:
        raise DependencyUnavailableError("the class-data archive was not written")
    return archive
