"""Monitoring: check a batch's metrics; out of range, retrain, promote and rescore - or alert.

    featurelake monitor --model-name churn_model --batch-id 2026-11-26 --labels raw/churn_labels.parquet
    python -m jobs.monitor --config featurelake.yaml --model-name churn_model --batch-id 2026-11-26
    ./spark-submit.sh monitor --config featurelake.yaml --model-name churn_model --batch-id 2026-11-26

Thresholds, the number of attempts and the webhook come from the ``monitoring`` section of
the configuration; the retraining uses the ``training`` and ``promotion`` sections. Every
step is written to the Delta tables model_metrics, retrain_attempts and model_alerts.

Exit codes: 0 in range, or fixed by a retrained version now in Production; 6 out of range
and no attempt fixed it (an alert was recorded and sent); 2 bad input (no or invalid
thresholds, labels that cannot be joined, bad names, no --model-name and no
training.model_name); 3 no predictions for the batch; 5 MLflow or storage unavailable;
1 unexpected failure.
"""

from __future__ import annotations

import argparse
import logging

from featurestore.core.config import Config
from inference.worker_daemon import WORKER_DAEMON_MODULE
from jobs.common import exit_process, job_parser, run_job, start_spark

logger = logging.getLogger("featurelake.monitor")


def build_parser() -> argparse.ArgumentParser:
    """Return the job's argument parser."""
    parser = job_parser("featurelake monitor",
                        "Check a prediction batch; retrain, promote and rescore when out of range, else alert.")
    parser.add_argument("--model-name", help="registered model (default: training.model_name)")
    parser.add_argument("--batch-id", required=True, help="batch of the predictions table to check")
    parser.add_argument("--labels", help="labels that arrived (Delta folder or parquet): quality metrics and "
                                         "the fresh data to retrain on (default for retraining: training.labels_path)")
    parser.add_argument("--max-attempts", type=int,
                        help="retraining attempts before alerting (default: monitoring.max_attempts, 3)")
    parser.add_argument("--input", help="entities to rescore after a promotion (default: the batch's entities)")
    return parser


def _run(args: argparse.Namespace, config: Config) -> int:
    from inference.batch import input_locations
    from inference.monitoring.loop import run_monitoring
    from inference.settings import TRAINING, configured_model_name

    model_name = configured_model_name(config, args.model_name)
    labels = args.labels or TRAINING.of(config).labels_path
    reads = input_locations(config, args.input) if args.input else [config.warehouse]
    spark = start_spark(config, reads + ([labels] if labels else []), python_daemon_module=WORKER_DAEMON_MODULE)
    result = run_monitoring(spark, config, model_name, args.batch_id, args.labels, max_attempts=args.max_attempts,
                            input_source=args.input)
    print(f"model {result.model_name} version {result.checked_version}, batch {result.batch_id}: "
          f"{result.check.summary()}")
    for attempt in result.attempts:
        print(f"  attempt {attempt.attempt}: version {attempt.candidate_version} {attempt.outcome} - {attempt.reason}")
    if result.status == "retrained":
        print(f"version {result.production_version} is now in Production; batch {result.batch_id} rescored "
              f"({result.rescored_rows} rows)")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit code."""
    return run_job(_run, build_parser().parse_args(argv))


if __name__ == "__main__":
    exit_process(main())
