"""Promote a registered model version to Staging or Production, if it passes the gates.

    featurelake promote --model-name churn_model --version 3 --stage Staging
    featurelake promote --model-name churn_model --version 3 --stage Production
    featurelake promote --version 3                  (the configured training.model_name, to Production)

The gates (thresholds and the metric compared with the current Production version) come from
the ``promotion`` section of the configuration. Every decision is appended to the Delta table
``promotion_events``. A rejected candidate leaves the registry unchanged and exits with code 4.
"""

from __future__ import annotations

import argparse
import logging

from featurestore.core.config import Config
from featurestore.core.errors import ConflictError
from inference.settings import configured_model_name
from inference.stages import PROTECTED_STAGES
from jobs.common import add_json_options, emit_json, exit_process, job_parser, run_job, start_spark

logger = logging.getLogger("featurelake.promote")


def build_parser() -> argparse.ArgumentParser:
    """Return the job's argument parser."""
    parser = job_parser("featurelake promote",
                        "Promote a model version to Staging or Production if it passes the configured gates.")
    parser.add_argument("--model-name", help="registered model name (default: training.model_name)")
    parser.add_argument("--version", required=True, help="candidate version number")
    parser.add_argument("--stage", default="Production", choices=PROTECTED_STAGES,
                        help="target stage (default Production)")
    parser.add_argument("--alias", default="default",
                        help="alias to set on the promoted version (default: champion for Production, "
                             "challenger for Staging; 'none' for no alias)")
    parser.add_argument("--no-archive", action="store_true",
                        help="keep the versions already in the stage instead of archiving them")
    add_json_options(parser, "the decision")
    return parser


def _run(args: argparse.Namespace, config: Config) -> int:
    from inference.promotion import promote

    model_name = configured_model_name(config, args.model_name)
    spark = start_spark(config, [config.warehouse])
    alias = None if args.alias.lower() == "none" else args.alias
    decision = promote(spark, config, model_name, args.version, args.stage, alias=alias,
                       archive_existing=not args.no_archive)
    emit_json(args, decision.to_dict())
    if not args.json:
        print(f"{model_name} version {decision.candidate_version} -> {args.stage}: {decision.decision} "
              f"({decision.reason})")
    if not decision.promoted:
        logger.error("promotion rejected: %s", decision.reason)
        return ConflictError.exit_code
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit code."""
    return run_job(_run, build_parser().parse_args(argv))


if __name__ == "__main__":
    exit_process(main())
