"""The JVM class-data-sharing (CDS) archive that makes local Spark sessions start faster.

A fresh driver JVM loads and verifies some ten thousand Spark, Delta and Hadoop classes
before the first job runs. Java 17 can store them, already parsed and verified, in an
archive written by one *training run* (``-XX:ArchiveClassesAtExit``) and map it into every
later JVM (``-XX:SharedArchiveFile``). :mod:`featurestore.archive_session` runs such training
runs (the demo's session, ``featurelake warmup``'s tiny build) and installs what they write;
:func:`featurestore.runtime.spark_session.get_spark` uses the archive when it exists. What it saves:
benchmarks/results/startup.md and benchmarks/results/reruns/figures_from_commits.md.

The archive is only valid for the exact Java binary and Spark jars that wrote it, so its file
name carries a hash of both; a JVM that still finds it unusable runs on without it.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
from importlib.metadata import version
from pathlib import Path

import psutil

from featurestore.runtime.cache_folder import cache_dir

logger = logging.getLogger(__name__)

# JVM options that make the JVM write or read an archive: a session given one of them
# explicitly (a training run) must not be given ours as well.
ARCHIVE_OPTIONS = ("-XX:ArchiveClassesAtExit", "-XX:SharedArchiveFile")
# The JVM warns on stdout when an archive does not fit (it then runs without it); keep it quiet.
QUIET_CDS_LOGGING = "-Xlog:cds=off,cds+dynamic=off"

TINY_DEFINITIONS = '''"""One feature table of three rows: the smallest build (class-data training run, start-up benchmark)."""
from featurestore.definitions import FeatureTable, Field, Source


def tiny(spark, inputs):
    return inputs["tiny"]


FEATURE_TABLES = [
    FeatureTable(name="tiny", primary_keys=[Field("id", "bigint", "id")], timestamp_key="ts",
                 features=[Field("x", "double", "x")], sources=[Source("tiny", "tiny.parquet")],
                 transform=tiny, description="the smallest build"),
]
'''


def java_binary() -> Path | None:
    """Return the java binary spark-submit starts (``$JAVA_HOME/bin/java``, else java on PATH)."""
    java_home = os.environ.get("JAVA_HOME")
    found = str(Path(java_home) / "bin" / "java") if java_home else shutil.which("java")
    return Path(found).resolve() if found and Path(found).exists() else None


def archive_path() -> Path | None:
    """Return where the archive for this Java and this Spark lives (None when java is not found)."""
    java = java_binary()
    if java is None:
        return None
    import pyspark

    stat = java.stat()
    identity = "\n".join([str(java), str(stat.st_size), str(stat.st_mtime_ns), version("pyspark"),
                          str(Path(pyspark.__file__).parent), version("delta-spark")])
    digest = hashlib.sha256(identity.encode()).hexdigest()[:16]
    return cache_dir() / f"spark-classes-{digest}.jsa"


def existing_archive() -> Path | None:
    """Return the archive for this Java and Spark if a training run has written it, else None."""
    path = archive_path()
    return path if path is not None and path.is_file() and path.stat().st_size > 0 else None


def java_options(user_options: str = "") -> str:
    """Return the JVM options that map the archive (empty when there is none or the user manages CDS)."""
    if any(option in user_options for option in ARCHIVE_OPTIONS):
        return ""
    archive = existing_archive()
    return f"-XX:SharedArchiveFile={archive} {QUIET_CDS_LOGGING}" if archive is not None else ""


def write_tiny_project(folder: Path, spark_settings: str = "") -> Path:
    """Write a project with one 3-row feature table, ``tiny``; return its configuration path.

    ``spark_settings`` are extra YAML lines of the ``spark:`` section (indented by two spaces).
    """
    import pandas as pd

    folder.mkdir(parents=True, exist_ok=True)
    frame = pd.DataFrame({"id": [1, 2, 3], "x": [0.5, 1.5, 2.5],
                          "ts": pd.to_datetime(["2025-01-01", "2025-01-02", "2025-01-03"], utc=True)})
    frame["ts"] = frame["ts"].astype("datetime64[us, UTC]")
    frame.to_parquet(folder / "tiny.parquet", index=False)
    (folder / "tiny_tables.py").write_text(TINY_DEFINITIONS, encoding="utf-8")
    config = folder / "featurelake.yaml"
    config.write_text("warehouse: warehouse\nsource_root: .\ndefinitions: tiny_tables.py\n"
                      "feast:\n  repo_path: feast_repo\n"
                      f"spark:\n  master: local[2]\n{spark_settings}", encoding="utf-8")
    return config


def dump_path(user_options: str = "", replace: bool = False) -> Path | None:
    """Return where a new session's JVM should write the archive, or None when it should write none.

    None when java is missing, the user's JVM options manage class-data sharing themselves, or
    an archive exists already (unless ``replace``). The path is next to the archive's, unique to
    this process: :func:`install_archive` moves it into place once the JVM has written it.
    Such files that processes no longer running left behind are removed.
    """
    target = archive_path()
    if target is None or any(option in user_options for option in ARCHIVE_OPTIONS):
        return None
    if not replace and existing_archive() is not None:
        return None
    target.parent.mkdir(parents=True, exist_ok=True)
    for stale in target.parent.glob(f"{target.name}.*.dump"):  # left by a process killed while its JVM wrote
        pid = stale.name.split(".")[-2]
        if pid.isdigit() and not psutil.pid_exists(int(pid)):
            stale.unlink(missing_ok=True)
    return target.with_name(f"{target.name}.{os.getpid()}.dump")


def dump_options(dump_to: Path) -> str:
    """Return the JVM options that make a JVM write the archive to ``dump_to`` as it exits."""
    return f"-XX:ArchiveClassesAtExit={dump_to} {QUIET_CDS_LOGGING}"


def install_archive(written: Path) -> Path:
    """Move a training run's archive (written in the cache folder) into place atomically; return its final path."""
    target = archive_path()
    if target is None:
        raise FileNotFoundError("no java binary found (set JAVA_HOME or put java on PATH)")
    if not written.is_file() or written.stat().st_size == 0:
        raise FileNotFoundError(f"the training run wrote no class-data archive at {written}")
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(written, target)
    logger.info("class-data archive written: %s (%.0f MB)", target, target.stat().st_size / 2**20)
    return target
