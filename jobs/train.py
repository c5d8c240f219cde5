"""Train a model on a point-in-time training set, log it to MLflow and register a new version.

    featurelake train --labels raw/churn_labels.parquet --model-name churn_model
    python -m jobs.train --config featurelake.yaml
    ./spark-submit.sh train --config featurelake.yaml --labels abfss://.../labels

The feature lookups, label column and estimator come from the ``training`` section of the
configuration.
"""

from __future__ import annotations

import argparse
import logging
import os

from featurestore.core.config import Config
from jobs.common import add_json_options, emit_json, exit_process, job_parser, log_summary, run_job, start_spark

logger = logging.getLogger("featurelake.train")

HEADLINE_METRICS = ("roc_auc", "accuracy_score", "r2_score", "root_mean_squared_error")


def build_parser() -> argparse.ArgumentParser:
    """Return the job's argument parser."""
    parser = job_parser("featurelake train",
                        "Build a point-in-time training set, train the configured estimator, "
                        "log the run to MLflow and register the model.")
    parser.add_argument("--model-name", help="registered model name (default: training.model_name)")
    parser.add_argument("--labels", metavar="PATH",
                        help="labels as parquet or a Delta table (default: training.labels_path)")
    parser.add_argument("--run-name", help="MLflow run name")
    parser.add_argument("--source", help="notebook link or script path logged as featurelake.source")
    parser.add_argument("--no-register", action="store_true", help="log the run but register no version")
    add_json_options(parser, "the result")
    return parser


def _run(args: argparse.Namespace, config: Config) -> None:
    from inference.settings import TRAINING, configured_label, configured_model_name
    from inference.training import train_model

    settings = TRAINING.of(config)
    model_name = configured_model_name(config, args.model_name)
    configured_label(config)  # a missing model name or label column is refused before the session starts
    labels = args.labels or settings.labels_path
    spark = start_spark(config, [config.warehouse, labels] if labels else [config.warehouse])
    result = train_model(spark, config, args.labels, model_name=model_name, register=not args.no_register,
                         source=args.source or settings.source_url or os.path.abspath(__file__), run_name=args.run_name)
    summary = {"run_id": result.run_id, "model_name": result.model_name, "model_version": result.model_version,
               "model_uri": result.model_uri, "n_train": result.n_train, "n_test": result.n_test,
               "feature_columns": result.spec.feature_columns, "metrics": result.metrics}
    emit_json(args, summary)
    if not args.json:
        print(f"run {result.run_id}: model {result.model_name} version {result.model_version or '(not registered)'}")
        for key in sorted(result.metrics):
            print(f"  {key:<28} {result.metrics[key]:.4f}")
    headline = ", ".join(f"{k}={v:.4f}" for k, v in sorted(result.metrics.items()) if k in HEADLINE_METRICS)
    log_summary(f"trained {result.model_name} version {result.model_version or '(not registered)'} on "
                f"{result.n_train} rows: {headline or 'no headline metric'}")


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit code."""
    return run_job(_run, build_parser().parse_args(argv))


if __name__ == "__main__":
    exit_process(main())
