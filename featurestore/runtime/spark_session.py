"""The one place where featurelake builds (or adopts) a Spark session."""

from __future__ import annotations

import logging
import os
import sys
from importlib import resources
from pathlib import Path
from typing import Iterable

from pyspark.sql import SparkSession

from featurestore.runtime import class_data_archive, console, resolved_jars
from featurestore.runtime.cache_folder import cache_dir
from featurestore.core.config import Config, SparkSettings

logger = logging.getLogger(__name__)

DELTA_EXTENSION = "io.delta.sql.DeltaSparkSessionExtension"
DELTA_CATALOG = "org.apache.spark.sql.delta.catalog.DeltaCatalog"

# Jars that delta-spark's dependencies pull in but that Spark already ships (newer).
# Excluding them keeps a second, older copy off the classpath and saves their download.
PROVIDED_BY_SPARK = (
    "org.apache.hadoop:hadoop-client-api",
    "org.apache.hadoop:hadoop-client-runtime",
    "org.slf4j:slf4j-api",
    "org.apache.logging.log4j:log4j-api",
    "org.apache.logging.log4j:log4j-core",
    "org.apache.logging.log4j:log4j-slf4j2-impl",
    "com.fasterxml.jackson.core:jackson-core",
    "com.fasterxml.jackson.core:jackson-databind",
    "com.fasterxml.jackson.core:jackson-annotations",
    "org.apache.parquet:parquet-hadoop",
    "org.apache.parquet:parquet-column",
    "org.apache.parquet:parquet-common",
    "org.apache.parquet:parquet-encoding",
    "org.apache.parquet:parquet-format-structures",
    "org.apache.parquet:parquet-jackson",
    "org.xerial.snappy:snappy-java",
    "com.github.luben:zstd-jni",
    "io.airlift:aircompressor",
    "org.roaringbitmap:RoaringBitmap",
    "org.roaringbitmap:shims",
    "commons-pool:commons-pool",
    "commons-logging:commons-logging",
    "org.locationtech.jts:jts-core",
)

# Quick start, for small local jobs (a build of a few thousand rows, tests): the C1 JIT alone,
# the serial collector and no generated code (neither whole-stage nor per-expression: Spark
# evaluates expressions interpreted, its fallback path). C2 and G1 run background threads that
# compete with the job for the cores, and compiling generated code costs more than it saves on
# small inputs: a tiny build after `featurelake warmup` starts sooner with the first three, and
# sooner again with interpreted expressions (figures: benchmarks/results/startup.md and
# benchmarks/results/reruns/figures_from_commits.md). spark.sql.codegen.factoryMode is an
# internal Spark setting; a Spark that no longer knows it ignores it and generates code again.
# They make large jobs slower (warm batch scoring with C1 alone), so a session only gets them
# when ``spark.quick_start`` is ``always``, or ``auto`` (the default) and the job says its input is small.
QUICK_START_JAVA_OPTIONS = "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"
QUICK_START_CONF = {"spark.sql.codegen.wholeStage": "false", "spark.sql.codegen.factoryMode": "NO_CODEGEN"}

PYTHON_DAEMON_MODULE_CONF = "spark.python.daemon.module"

# Local-mode defaults; configuration (spark.conf) overrides any of them.
LOCAL_DEFAULTS = {
    "spark.sql.shuffle.partitions": "4",
    "spark.default.parallelism": "4",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.databricks.delta.snapshotPartitions": "2",
    "spark.driver.memory": "2g",
}


def spark_warehouse_dir() -> str:
    """Return where featurelake's sessions let Spark keep managed tables: ``spark-warehouse`` in the cache folder.

    featurelake writes no managed table (its tables live at paths), but Spark creates its
    warehouse folder as soon as a query touches the catalog, by default ``./spark-warehouse``:
    every job left an empty one in the working directory. A user's ``spark.sql.warehouse.dir``
    (``spark.conf``) still wins.
    """
    return str(cache_dir() / "spark-warehouse")


def delta_package() -> str:
    """Return the Maven coordinate of the Delta jar matching the installed pyspark and delta-spark."""
    from importlib.metadata import version

    import pyspark

    spark_minor = ".".join(pyspark.__version__.split(".")[:2])
    return f"io.delta:delta-spark_{spark_minor}_2.13:{version('delta-spark')}"


def ivy_settings_path() -> str:
    """Return the path of the Ivy settings file that resolves the Delta jars."""
    return str(resources.files("featurestore.runtime").joinpath("ivysettings.xml"))


def delta_spark_conf() -> dict[str, str]:
    """Return the Spark configuration that makes a session Delta-capable (extension, catalog, jars)."""
    return {
        "spark.sql.extensions": DELTA_EXTENSION,
        "spark.sql.catalog.spark_catalog": DELTA_CATALOG,
        "spark.jars.packages": delta_package(),
        "spark.jars.excludes": ",".join(PROVIDED_BY_SPARK),
        "spark.jars.ivySettings": ivy_settings_path(),
    }


def running_under_spark_submit() -> bool:
    """True when this Python process was started by spark-submit (or pyspark's launcher)."""
    return "PYSPARK_GATEWAY_PORT" in os.environ


def wants_quick_start(settings: SparkSettings, small_input: bool) -> bool:
    """True when a local session should start with the quick-start options (see above)."""
    if not settings.master.startswith("local"):
        return False
    return settings.quick_start == "always" or (settings.quick_start == "auto" and small_input)


# Inputs up to this size make a "small input" job, which may start Spark in quick-start mode.
SMALL_INPUT_BYTES = 64 * 2**20


def local_paths_are_small(locations: Iterable[str], limit: int = SMALL_INPUT_BYTES) -> bool:
    """True when every location is a local file or folder and together they hold <= ``limit`` bytes.

    A remote location (a URI) or a missing path counts as large: its size is not known here.
    A file under two of the locations (a warehouse inside the source root) counts once.
    """
    total = 0
    counted: set[Path] = set()
    for location in locations:
        if "://" in location and not location.startswith("file://"):
            return False
        path = Path(os.path.abspath(location.removeprefix("file://")))
        if not path.exists():
            return False
        files = [path] if path.is_file() else (f for f in path.rglob("*") if f.is_file())
        for file in files:
            if file in counted:
                continue
            counted.add(file)
            total += file.stat().st_size
            if total > limit:
                return False
    return True


def builds_its_own_session() -> bool:
    """True when :func:`get_spark` builds a session from the configuration rather than adopting one.

    Under spark-submit or with a session already running, the session is adopted as it is.
    """
    return not running_under_spark_submit() and SparkSession.getActiveSession() is None


def input_size_matters(settings: SparkSettings) -> bool:
    """True when a job's input size decides the session's options: featurelake starts a local session in ``auto``."""
    return builds_its_own_session() and settings.master.startswith("local") and settings.quick_start == "auto"


def session_conf(settings: SparkSettings, small_input: bool = False,
                 write_archive_to: Path | None = None, python_daemon_module: str | None = None) -> dict[str, str]:
    """Return the configuration of a local session: defaults, Delta, quick start, then the user's.

    The defaults put Spark's warehouse folder in featurelake's cache (:func:`spark_warehouse_dir`).
    ``python_daemon_module`` becomes ``spark.python.daemon.module``: the module that forks the
    session's Python workers (for example one that imports the scoring stack first).

    The driver's JVM options join ours (class-data archive, quick start) with the user's,
    which come last and so win where they disagree. With ``write_archive_to`` the JVM writes
    a class-data archive there as it exits, instead of mapping the existing one.
    """
    quick = wants_quick_start(settings, small_input)
    daemon = {PYTHON_DAEMON_MODULE_CONF: python_daemon_module} if python_daemon_module else {}
    conf = {**LOCAL_DEFAULTS, "spark.sql.warehouse.dir": spark_warehouse_dir(), **delta_spark_conf(),
            **(QUICK_START_CONF if quick else {}), **daemon, **settings.conf}
    user_options = settings.conf.get("spark.driver.extraJavaOptions", "")
    archive = (class_data_archive.dump_options(write_archive_to) if write_archive_to is not None
               else class_data_archive.java_options(user_options))
    options = [archive, QUICK_START_JAVA_OPTIONS if quick else "", user_options]
    java_options = " ".join(o for o in options if o)
    if java_options:
        conf["spark.driver.extraJavaOptions"] = java_options
    return conf


def get_spark(config: Config | None = None, small_input: bool = False,
              write_archive_to: Path | None = None, python_daemon_module: str | None = None) -> SparkSession:
    """Return the Spark session the jobs use.

    If a session is already active (a notebook, Databricks, a test fixture) or the process
    runs under ``spark-submit``, that session is adopted: its master and packages are left
    as given. Otherwise a local session is built from ``config.spark`` with Delta Lake
    configured and the Python workers pinned to this interpreter.

    Args:
        config: the project configuration; embedded defaults when None.
        small_input: the job knows its input is small (then ``spark.quick_start: auto`` applies).
        write_archive_to: a session started here writes the class-data archive there as its
            JVM exits (see :mod:`featurestore.archive_session`).
        python_daemon_module: a session started here forks its Python workers from this module
            (``spark.python.daemon.module``; the user's ``spark.conf`` wins).

    Returns:
        A Delta-capable :class:`SparkSession`.
    """
    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    if running_under_spark_submit():
        logger.info("running under spark-submit: adopting its master and packages")
        return SparkSession.builder.getOrCreate()

    settings = config.spark if config is not None else SparkSettings()
    # Workers must use this interpreter (with pandas, mlflow...), not the python3 on PATH.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    builder = SparkSession.builder.master(settings.master).appName(settings.app_name)
    conf = session_conf(settings, small_input, write_archive_to, python_daemon_module)
    launch_conf = resolved_jars.use_recorded_jars(conf)
    for key, value in launch_conf.items():
        builder = builder.config(key, value)
    logger.info("starting Spark session (master %s)", settings.master)
    logger.debug("Spark session: Delta package %s (%s), JVM options %r", delta_package(),
                 "jars recorded earlier" if launch_conf is not conf else "resolved now",
                 conf.get("spark.driver.extraJavaOptions", ""))
    with console.jvm_output():  # its chatter: to the workspace log file, or stderr with --log-level DEBUG
        spark = builder.getOrCreate()
    console.quiet_pyspark_context_loggers()
    if launch_conf is conf:
        resolved_jars.record_resolution(conf, spark.sparkContext.getConf().get("spark.jars", ""))
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def start_spark(config: Config, reads: Iterable[str] = (), python_daemon_module: str | None = None) -> SparkSession:
    """Start (or adopt) the Spark session of a job or a notebook client.

    ``reads`` are the files and folders the work reads. When featurelake starts a local session
    with ``spark.quick_start: auto`` and they are all local and hold at most 64 MB together, the
    session starts in quick-start mode; an active session (a notebook, Databricks, spark-submit)
    is adopted as it is (:func:`get_spark`). ``python_daemon_module``: see :func:`get_spark`.

    Example::

        spark = start_spark(load_config(), [config.warehouse])
    """
    reads = list(reads)
    small = input_size_matters(config.spark) and bool(reads) and local_paths_are_small(reads)
    return get_spark(config, small_input=small, python_daemon_module=python_daemon_module)
