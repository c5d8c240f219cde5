"""What reaches the terminal: featurelake's own messages, and nothing a user cannot act on.

The JVM's start-up chatter (log4j lines, "Setting default log level", the NativeCodeLoader
warning, Ivy's resolution report), the JVM's later output, library records below ERROR
(MLflow, Feast, py4j...) and Python warnings go to the workspace log file
(``logs/featurelake.log`` next to the configuration file) instead. With ``--log-level DEBUG``
everything shows on the terminal as before, and the JVM's output stays on stderr.

    >>> use_log_file(Path("demo-run/logs/featurelake.log"), verbose=False)
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

LOG_FILE = Path("logs") / "featurelake.log"
# Loggers of the libraries under featurelake: on the terminal only from ERROR up.
LIBRARY_LOGGERS = ("py.warnings", "py4j", "pyspark", "mlflow", "feast", "urllib3", "alembic", "git", "matplotlib",
                   "sqlalchemy", "filelock", "fsspec", "numexpr", "asyncio")
# PySpark logs the query context of a failed query as JSON on its own handler; the job reports the error.
PYSPARK_CONTEXT_LOGGERS = ("SQLQueryContextLogger", "DataFrameQueryContextLogger")
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


@dataclass
class _Routing:
    log_file: Path | None = None
    verbose: bool = True  # until a job configures it: everything on the terminal, as a library should
    handler: logging.Handler | None = None


_routing = _Routing()


def is_library_record(name: str) -> bool:
    """True for a record of one of :data:`LIBRARY_LOGGERS` (or a child logger)."""
    return any(name == lib or name.startswith(lib + ".") for lib in LIBRARY_LOGGERS)


class TerminalFilter(logging.Filter):
    """Leaves library records below ERROR off the terminal (the log file has them)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.ERROR or not is_library_record(record.name)


def use_log_file(path: Path | None, verbose: bool, filters: list[logging.Filter] | None = None) -> None:
    """Send what the terminal leaves out to ``path`` (None: nowhere but the terminal).

    ``verbose`` (``--log-level DEBUG``) keeps everything on the terminal, the JVM's output too;
    the file then still gets every record. ``filters`` (the redacting filter) apply to the file.
    The file is opened when the first record or the JVM arrives.
    """
    root = logging.getLogger()
    if _routing.handler is not None:
        root.removeHandler(_routing.handler)
        _routing.handler.close()
    _routing.log_file, _routing.verbose, _routing.handler = path, verbose, None
    if path is not None:
        handler = _FolderMakingFileHandler(path, encoding="utf-8", delay=True)
        handler.setFormatter(logging.Formatter(FORMAT))
        for f in filters or []:
            handler.addFilter(f)
        root.addHandler(handler)
        _routing.handler = handler


def move_log_file(path: Path) -> None:
    """Write the log file at ``path`` from now on (the demo's work directory), as configured before."""
    use_log_file(path, _routing.verbose, list(_routing.handler.filters) if _routing.handler else [])


class _FolderMakingFileHandler(logging.FileHandler):
    """A file handler that creates the file's folder when the first record arrives."""

    def _open(self):  # noqa: ANN202 - logging's own hook
        Path(self.baseFilename).parent.mkdir(parents=True, exist_ok=True)
        return super()._open()


def quiet_terminal(handlers: list[logging.Handler]) -> None:
    """Keep library records below ERROR off these terminal handlers, and route libraries that
    write to the terminal themselves (MLflow's handler, Python warnings) through logging."""
    for handler in handlers:
        handler.addFilter(TerminalFilter())
    logging.captureWarnings(True)
    os.environ.setdefault("MLFLOW_CONFIGURE_LOGGING", "false")  # MLflow imported later adds no handler
    mlflow_logger = logging.getLogger("mlflow")  # MLflow imported already: take its handler away
    for handler in list(mlflow_logger.handlers):
        mlflow_logger.removeHandler(handler)
    mlflow_logger.propagate = True


def jvm_log_file() -> Path | None:
    """Where the JVM's output goes: the log file, or None (stderr) when verbose or there is none."""
    return None if _routing.verbose else _routing.log_file


@contextlib.contextmanager
def jvm_output() -> Iterator[None]:
    """Around the JVM's launch: it inherits our stdout and stderr and keeps them for its life.

    They become the log file (quiet), or its stdout becomes our stderr (verbose), so that Ivy
    and Spark chatter never mix with a command's output (``featurelake tables list --json``).
    """
    target = jvm_log_file()
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    try:
        if target is None:
            os.dup2(2, 1)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            os.dup2(fd, 1)
            os.dup2(fd, 2)
            os.close(fd)
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        os.close(saved[0])
        os.close(saved[1])


def quiet_pyspark_context_loggers() -> None:
    """Unless verbose, drop PySpark's JSON dump of a failed query's context (the job reports the
    error in one line). Called once PySpark is loaded (its loggers are PySpark's own class)."""
    if _routing.verbose:
        return
    from pyspark.logger import PySparkLogger

    for name in PYSPARK_CONTEXT_LOGGERS:
        PySparkLogger.getLogger(name).setLevel(logging.CRITICAL + 1)
