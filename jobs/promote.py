"""Promote a registered model version to Staging or Production, if it passes the gates.

    featurelake promote --model-name churn_model --version 3 --stage Staging
    featurelake promote --model-name churn_model --version 3 --stage Production
    featurelake promote --version 3                  (the configured training.model_name, to Production)
    featurelake promote --version 3 --mode request   (a transition request someone approves)

The gates (thresholds and the metric compared with the current Production version) come from
the ``promotion`` section of the configuration. Every decision is appended to the Delta table
``promotion_events``. A rejected candidate leaves the registry unchanged and exits with code 4.
``--mode request`` promotes nothing: it files a transition request that someone approves with
``featurelake models approve REQUEST_ID`` (the gates run then), as a pipeline that needs a human
in the loop does.
"""

from __future__ import annotations

import argparse
import logging

from featurestore.core.config import Config
from featurestore.core.errors import BadInputError, ConflictError
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
    parser.add_argument("--mode", default="promote", choices=["promote", "request"],
                        help="promote: through the gates now (default); request: file a transition request "
                             "for someone to approve ('featurelake models approve')")
    parser.add_argument("--comment", help="with --mode request: why")
    parser.add_argument("--user", help="who promotes or asks, as recorded (default: governance.user, else the OS "
                                       "user); attribution, not security")
    add_json_options(parser, "the decision (with --mode request: the request)")
    return parser


def _request(args: argparse.Namespace, config: Config, model_name: str) -> int:
    from inference.governance.changes import Actor
    from inference.governance.requests import request_transition

    if args.alias != "default" or args.no_archive:
        raise BadInputError("--alias and --no-archive apply to --mode promote: an approved request sets the default "
                            "alias and archives the previous version")
    actor = Actor.of(config, "request", args.user)
    request = request_transition(start_spark(config, [config.warehouse]), config, model_name, args.version,
                                 args.stage, actor, args.comment)
    emit_json(args, request.to_dict())
    if not args.json:
        print(f"request {request.request_id}: {request.model_name} version {request.version} "
              f"{request.from_stage} -> {request.to_stage}, by {request.requested_by} (pending: "
              f"featurelake models approve {request.request_id})")
    return 0


def _run(args: argparse.Namespace, config: Config) -> int:
    from inference.governance.changes import Actor
    from inference.promotion import promote

    model_name = configured_model_name(config, args.model_name)
    if args.mode == "request":
        return _request(args, config, model_name)
    if args.comment:
        raise BadInputError("--comment applies to --mode request")
    actor = Actor.of(config, "promote", args.user)
    spark = start_spark(config, [config.warehouse])
    alias = None if args.alias.lower() == "none" else args.alias
    decision = promote(spark, config, model_name, args.version, args.stage, alias=alias,
                       archive_existing=not args.no_archive, actor=actor)
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
