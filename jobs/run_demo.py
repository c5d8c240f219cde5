"""Run the whole featurelake flow on synthetic data, with everything kept under one folder.

    featurelake demo --workdir ./demo-run
    featurelake --config ./demo-run/featurelake.yaml tables list
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from pyspark.sql import SparkSession

from jobs.demo.pipeline import CONFIG_FILE, REPORT_DIR, run_demo
from featurestore.archive_session import session_writing_archive
from featurestore.core.config import Config
from featurestore.runtime import console
from featurestore.runtime.spark_session import get_spark
from inference.worker_daemon import WORKER_DAEMON_MODULE
from jobs.common import exit_process, job_parser, run_job

logger = logging.getLogger("featurelake.demo")


def build_parser() -> argparse.ArgumentParser:
    """Return the job's argument parser."""
    parser = job_parser("featurelake demo", "Run the end-to-end demo on synthetic data.")
    parser.add_argument("--workdir", required=True, help="folder that receives everything the demo writes")
    parser.add_argument("--customers", type=int, default=500, help="number of synthetic customers (default 500)")
    parser.add_argument("--monitor", action="store_true",
                        help="also show the monitoring loop: a batch in range, then drift injected, "
                             "retrained and promoted (see model_metrics and retrain_attempts)")
    parser.add_argument("--online", action="store_true",
                        help="also materialize the feature tables into Feast's online store")
    parser.add_argument("--no-warmup", action="store_true",
                        help="do not write the JVM class-data archive at the end when there is none yet "
                             "(what `featurelake warmup` writes: later local jobs start faster)")
    return parser


# Up to this many customers the demo's data is small (a few MB): its session may start in quick-start mode.
SMALL_DEMO_CUSTOMERS = 50_000


def _run(args: argparse.Namespace, config: Config) -> None:
    # The demo's workspace is its work directory: its log file goes there.
    console.move_log_file(Path(args.workdir).resolve() / console.LOG_FILE)
    small = args.customers <= SMALL_DEMO_CUSTOMERS
    if args.no_warmup:
        _demo(args, get_spark(config, small_input=small, python_daemon_module=WORKER_DAEMON_MODULE))
        return
    # The first demo on a machine leaves the class-data archive behind (its JVM writes it on exit).
    with session_writing_archive(config, small_input=small, python_daemon_module=WORKER_DAEMON_MODULE) as spark:
        _demo(args, spark)


def _demo(args: argparse.Namespace, spark: SparkSession) -> None:
    demo_config = run_demo(spark, args.workdir, n_customers=args.customers, monitor=args.monitor,
                           online=args.online)
    config_path = Path(demo_config.base_dir) / CONFIG_FILE
    print(f"demo finished; try:\n  featurelake --config {config_path} tables list\n"
          f"  feast -c {demo_config.feast.repo_path} feature-views list\n"
          f"  featurelake --config {config_path} models list\n"
          f"  mlflow ui --backend-store-uri {demo_config.mlflow.tracking_uri}\n"
          f"  open {Path(demo_config.base_dir) / REPORT_DIR / 'index.html'} (the HTML report)", flush=True)


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit code."""
    return run_job(_run, build_parser().parse_args(argv))


if __name__ == "__main__":
    exit_process(main())
