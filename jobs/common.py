"""What every job shares: common arguments, logging set-up, the Spark session and the error-to-exit-code mapping."""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import sys
import time
import traceback
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, NoReturn

from featurestore.core.config import Config, load_config
from featurestore.core.errors import EXIT_OK, BadInputError, FeaturelakeError, exit_code_for
from featurestore.core.secrets import RedactingFilter, redact_text, secret_values
from featurestore.runtime import console
from inference.settings import SECTIONS

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from featurestore.delta_reader import DeltaReader

logger = logging.getLogger("featurelake")

EXIT_CODES_HELP = (
    "exit codes: 0 success, 1 unexpected error, 2 bad input, 3 not found, "
    "4 conflict, 5 dependency unavailable, 6 model needs retraining"
)


def job_parser(prog: str, description: str, with_config: bool = True) -> argparse.ArgumentParser:
    """Return an argument parser with the options every job takes (--config unless ``with_config`` is
    False, --log-level)."""
    parser = argparse.ArgumentParser(prog=prog, description=description, epilog=EXIT_CODES_HELP)
    if with_config:
        parser.add_argument("--config",
                            help="configuration file (default: $FEATURELAKE_CONFIG or ./featurelake.yaml)")
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"],
                        help="logging level (default: INFO)")
    return parser


def add_json_options(parser: argparse.ArgumentParser, what: str) -> None:
    """Add ``--json`` (print ``what`` as JSON on stdout) and ``--json-out FILE`` (write it to FILE)."""
    parser.add_argument("--json", action="store_true", help=f"print {what} as JSON on stdout")
    parser.add_argument("--json-out", metavar="FILE",
                        help=f"write {what} as JSON to FILE (atomically: the whole document or no file); "
                             "use it under spark-submit, which mixes the driver's log into its stdout")


def check_json_out(args: argparse.Namespace) -> None:
    """Refuse a ``--json-out`` FILE whose folder does not exist, before the job does any work.

    Raises:
        BadInputError: the folder is missing, or FILE is a folder.
    """
    target = getattr(args, "json_out", None)
    if target is None:
        return
    path = Path(target)
    if path.is_dir() or not path.absolute().parent.is_dir():
        raise BadInputError(f"--json-out {target}: not a file in an existing folder")


def write_json_file(path: str | os.PathLike[str], document: Any) -> None:
    """Write ``document`` as JSON to ``path`` atomically: into a new file of the same folder, renamed
    over ``path`` once complete, so that a reader finds the whole document or none.

        write_json_file("train.json", {"run_id": "...", "model_version": "3"})
    """
    target = Path(path)
    staged = target.with_name(f".{target.name}.{os.getpid()}.{uuid.uuid4().hex}.tmp")
    try:
        with open(staged, "x", encoding="utf-8") as out:  # "x": a new file, with the umask's permissions
            json.dump(document, out, indent=2, default=str)
            out.write("\n")
            out.flush()
            os.fsync(out.fileno())
        os.replace(staged, target)
    except BaseException:
        staged.unlink(missing_ok=True)
        raise


def emit_json(args: argparse.Namespace, document: Any) -> None:
    """Print ``document`` as JSON on stdout for ``--json``; write it to the file of ``--json-out``."""
    if args.json:
        print(json.dumps(document, indent=2, default=str), flush=True)
    if args.json_out:
        write_json_file(args.json_out, document)
        logger.info("wrote the JSON result to %s", args.json_out)


def start_spark(config: Config, reads: list[str], python_daemon_module: str | None = None) -> SparkSession:
    """Start (or adopt) the job's Spark session (:func:`featurestore.runtime.spark_session.start_spark`,
    imported here on first use so that a job's ``--help`` stays fast)."""
    from featurestore.runtime.spark_session import start_spark as start_session

    return start_session(config, reads, python_daemon_module)


def metadata_reader(config: Config) -> DeltaReader:
    """Return the reader of Delta metadata and small tables: delta-rs, or Spark (started when needed)."""
    from featurestore.delta_reader import DeltaReader

    return DeltaReader(lambda: start_spark(config, [config.warehouse]), config.metadata_reader)


def setup_logging(level: str = "INFO") -> RedactingFilter:
    """Send log records to stderr with a timestamp; keep chatty libraries quiet (MLflow's download
    progress bars too, unless ``MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR`` is set). Below DEBUG, library
    records under ERROR and Python warnings stay off the terminal (:mod:`featurestore.runtime.console`).

    Returns the filter that masks credentials (and secret-looking environment values) in
    every record the handler writes; add more secrets to its ``secrets`` list.
    """
    logging.basicConfig(level=level, stream=sys.stderr, format=console.FORMAT, force=True)
    redacting = RedactingFilter(secret_values(os.environ))
    for handler in logging.getLogger().handlers:
        handler.addFilter(redacting)
    if level != "DEBUG":
        console.quiet_terminal(logging.getLogger().handlers)
    for noisy in ("py4j", "urllib3", "alembic", "feast", "mlflow", "git", "matplotlib"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))
    # MLflow draws a progress bar on stderr for every model it downloads (six in the demo), which
    # fills a job's log with carriage-return lines; a user who wants them sets the variable.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    return redacting


def run_job(body: Callable[[argparse.Namespace, Config], int | None], args: argparse.Namespace) -> int:
    """Load the configuration (every section checked, before ``body`` can start Spark), run ``body``
    and map its failure to a documented exit code."""
    redacting = setup_logging(args.log_level)

    def with_config() -> int | None:
        check_json_out(args)
        config = load_config(args.config, sections=SECTIONS)
        redacting.secrets = secret_values(os.environ, config.spark.conf, config.feast.online_store)
        console.use_log_file(Path(config.base_dir) / console.LOG_FILE, args.log_level == "DEBUG", [redacting])
        return body(args, config)

    return _exit_code_of(with_config, redacting)


def run_job_without_config(body: Callable[[argparse.Namespace], int | None], args: argparse.Namespace) -> int:
    """Run ``body`` (a job that reads no configuration) and map its failure to a documented exit code.

    What the terminal leaves out goes to ``featurelake.log`` in featurelake's cache folder.
    """
    from featurestore.runtime.cache_folder import cache_dir

    redacting = setup_logging(args.log_level)
    console.use_log_file(cache_dir() / console.LOG_FILE.name, args.log_level == "DEBUG", [redacting])
    return _exit_code_of(lambda: body(args), redacting)


_job_started = time.monotonic()


def log_summary(text: str) -> None:
    """Log the one line that ends a command: what it did (rows, versions, metrics) and its time."""
    logger.info("%s in %.1f s", text, time.monotonic() - _job_started)


def _exit_code_of(call: Callable[[], int | None], redacting: RedactingFilter) -> int:
    """Run ``call``; return its exit code (0 for None), or the code its failure maps to, logged redacted."""
    global _job_started
    _job_started = time.monotonic()
    try:
        code = call()
        return EXIT_OK if code is None else code
    except FeaturelakeError as exc:
        logger.error("%s: %s", type(exc).__name__, redact_text(str(exc), redacting.secrets))
        return exit_code_for(exc)
    except Exception as exc:  # noqa: BLE001 - the job's last line of defence
        logger.error("unexpected failure: %s", redact_text(traceback.format_exc(), redacting.secrets))
        return exit_code_for(exc)


def exit_process(code: int) -> NoReturn:
    """End a job's process with ``code``, skipping Python's last garbage collection.

    A job process holds pyspark, pandas, MLflow and Feast; collecting all of that as the
    interpreter shuts down took a noticeable part of a tiny build
    (benchmarks/results/reruns/figures_from_commits.md). The objects are frozen instead
    (``gc.freeze``): atexit handlers still run and streams are still flushed; the operating
    system frees the memory.
    """
    gc.freeze()
    sys.exit(code)
