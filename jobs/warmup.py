"""Write the JVM class-data archive that makes later local jobs start faster.

Runs a training run, a ``featurelake build`` of one tiny table in a temporary folder, in a
child process whose JVM archives the classes it loaded when it exits; the archive then goes
to featurelake's cache folder (``$FEATURELAKE_CACHE_DIR``, else ``~/.cache/featurelake``),
where every later local session finds it. Run it once per machine (or image) after
installing or upgrading Java, pyspark or delta-spark::

    featurelake warmup
"""

from __future__ import annotations

import argparse
import logging
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

from featurestore import class_data_archive
from featurestore.errors import EXIT_OK, DependencyUnavailableError, exit_code_for
from jobs.common import setup_logging

logger = logging.getLogger("featurelake.warmup")


def build_parser() -> argparse.ArgumentParser:
    """Return the job's argument parser."""
    parser = argparse.ArgumentParser(
        prog="featurelake warmup",
        description="Write the JVM class-data archive (one tiny training build) so later local jobs start faster.")
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"],
                        help="logging level (default: INFO)")
    return parser


def create_archive() -> Path:
    """Run the training build in a child process and install the archive it writes; return its path."""
    if class_data_archive.archive_path() is None:
        raise DependencyUnavailableError("no java binary found (set JAVA_HOME or put java on PATH)")
    with tempfile.TemporaryDirectory(prefix="featurelake-warmup-") as folder:
        dump_to = Path(folder) / "classes.jsa"
        config = class_data_archive.write_training_project(Path(folder) / "project", dump_to)
        started = time.monotonic()
        child = subprocess.run([sys.executable, "-m", "jobs.build_features", "--config", str(config),
                                "--log-level", "WARNING"], capture_output=True, text=True)
        if child.returncode != 0:
            raise DependencyUnavailableError(
                f"the training build failed (exit {child.returncode}): {child.stderr.strip()[-2000:]}")
        _wait_for_archiving_jvm(dump_to)
        logger.info("training build finished in %.1f s", time.monotonic() - started)
        return class_data_archive.install_archive(dump_to)


def _wait_for_archiving_jvm(dump_to: Path, timeout: float = 300.0) -> None:
    """Wait until the training run's JVM, which outlives its Python process briefly, has written the archive."""
    marker = f"-XX:ArchiveClassesAtExit={dump_to}"
    deadline = time.monotonic() + timeout
    while True:
        jvms = []
        for process in psutil.process_iter(["cmdline"]):
            if marker in (process.info["cmdline"] or []):
                jvms.append(process)
        if not jvms:
            return
        if time.monotonic() > deadline:
            raise DependencyUnavailableError(f"the training run's JVM was still writing {dump_to} after {timeout:.0f} s")
        psutil.wait_procs(jvms, timeout=max(1.0, deadline - time.monotonic()))


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit code."""
    args = build_parser().parse_args(argv)
    setup_logging(args.log_level)
    try:
        create_archive()
    except Exception as exc:  # noqa: BLE001 - mapped to the documented exit codes
        logger.error("%s: %s", type(exc).__name__, exc)
        return exit_code_for(exc)
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
