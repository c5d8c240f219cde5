"""Batch inference: score entities with a registry model and append the predictions to Delta.

    featurelake predict --input entities --model-uri models:/churn_model/Production --batch-id 2026-11-26
    featurelake predict --input entities          (the Production version of training.model_name)
    featurelake predict --incremental --input entities --checkpoint /data/checkpoints/entities
                                                  (only the rows added since the last run, exactly once)
    python -m jobs.batch_inference --config featurelake.yaml --input /data/entities.parquet
    ./spark-submit.sh batch_inference --config featurelake.yaml --input entities

The model reference is resolved to one version at the start. The input needs the entity
keys (and, optionally, the training set's timestamp column for point-in-time features);
the features the model was trained on are looked up in the feature tables. Rerunning a
batch id with the same model replaces that model's rows of the batch (other models' rows stay).

Exit codes: 0 success (also for an empty input: nothing written), 2 bad input (reference
that does not parse, no --model-uri and no training.model_name, missing key column, types
not matching the signature, bad batch id),
3 not found (unknown model, no version in the stage/alias, input or feature table or
feature missing), 5 MLflow or storage unavailable, 1 unexpected failure.
"""

from __future__ import annotations

import argparse
import logging

from featurestore.core.config import Config
from featurestore.core.errors import BadInputError
from inference.batch import DEFAULT_MODEL_URI_TEMPLATE, DEFAULT_OUTPUT_TABLE, input_locations, run_batch_inference
from inference.scoring import DEFAULT_ARROW_BATCH
from inference.settings import configured_model_name
from inference.worker_daemon import WORKER_DAEMON_MODULE
from jobs.common import exit_process, job_parser, run_job, start_spark

logger = logging.getLogger("featurelake.predict")


def _flag(value: str) -> bool:
    """``true`` or ``false`` (any case: Data Factory passes a Bool parameter as ``True``/``False``)."""
    if value.lower() not in ("true", "false"):
        raise argparse.ArgumentTypeError(f"expected true or false, got {value!r}")
    return value.lower() == "true"


def build_parser() -> argparse.ArgumentParser:
    """Return the job's argument parser."""
    parser = job_parser("featurelake predict",
                        "Score a batch of entities with a registry model and append the predictions to Delta.")
    parser.add_argument("--input", required=True,
                        help="entities to score: a warehouse table name, or a Delta or parquet path")
    parser.add_argument("--model-uri",
                        help="models:/NAME/STAGE, models:/NAME@ALIAS or models:/NAME/VERSION "
                             "(default: the Production version of the configured training.model_name)")
    parser.add_argument("--output-table", default=DEFAULT_OUTPUT_TABLE,
                        help=f"predictions table in the warehouse (default: {DEFAULT_OUTPUT_TABLE})")
    parser.add_argument("--batch-id", help="batch identifier; rerunning it with the same model replaces that model's rows "
                                           "(default: today's UTC date, YYYY-MM-DD)")
    parser.add_argument("--keys", nargs="+", metavar="COLUMN",
                        help="entity key columns to keep (default: the training set's entity keys)")
    parser.add_argument("--no-probability", action="store_true",
                        help="do not add the classifier probability column")
    parser.add_argument("--incremental", nargs="?", const=True, default=False, type=_flag, metavar="true|false",
                        help="score only the rows appended to the Delta input since the last run with --checkpoint "
                             "(each micro-batch written as batch PREFIX-N, PREFIX from --batch-id or the checkpoint); "
                             "'--incremental false' (a pipeline's setting) scores the whole input")
    parser.add_argument("--checkpoint", metavar="DIR",
                        help="with --incremental: the stream's checkpoint folder, kept from run to run")
    parser.add_argument("--max-files-per-trigger", type=int, metavar="N",
                        help="with --incremental: input files per micro-batch (default: Delta's, 1000)")
    parser.add_argument("--arrow-batch", type=int, default=DEFAULT_ARROW_BATCH,
                        help=f"records per Arrow batch sent to the Python workers (default: {DEFAULT_ARROW_BATCH})")
    return parser


def model_uri(args: argparse.Namespace, config: Config) -> str:
    """``--model-uri``, else the Production version of the configured ``training.model_name``.

    Raises:
        BadInputError: neither is given.
    """
    if args.model_uri:
        return args.model_uri
    return DEFAULT_MODEL_URI_TEMPLATE.format(name=configured_model_name(config, None, "--model-uri"))


def check_mode(args: argparse.Namespace) -> None:
    """Refuse ``--incremental`` without ``--checkpoint``, and ``--max-files-per-trigger`` without ``--incremental``.

    A ``--checkpoint`` without ``--incremental`` is not used (a pipeline passes it in both modes).

    Raises:
        BadInputError: the options do not fit together.
    """
    if args.incremental and not args.checkpoint:
        raise BadInputError("--incremental needs --checkpoint DIR (the stream's progress, kept from run to run)")
    if not args.incremental and args.max_files_per_trigger is not None:
        raise BadInputError("--max-files-per-trigger goes with --incremental")
    if not args.incremental and args.checkpoint:
        logger.info("--checkpoint %s is not used: the whole input is scored (no --incremental)", args.checkpoint)


def _run_incremental(args: argparse.Namespace, config: Config, uri: str) -> None:
    from inference.incremental import run_incremental_inference

    spark = start_spark(config, input_locations(config, args.input), python_daemon_module=WORKER_DAEMON_MODULE)
    result = run_incremental_inference(spark, config, args.input, uri, args.checkpoint,
                                       output_table=args.output_table, batch_prefix=args.batch_id, keys=args.keys,
                                       with_probability=not args.no_probability, arrow_batch=args.arrow_batch,
                                       max_files_per_trigger=args.max_files_per_trigger)
    model = f"{result.model.name} version {result.model.version}"
    if not result.batches:
        print(f"no rows added to {args.input} since the last run: nothing scored (model {model}, "
              f"checkpoint {args.checkpoint})")
        return
    print(f"model {model} ({result.model.reference}) scored {result.rows_written} new rows in "
          f"{len(result.batches)} micro-batch(es) in {result.seconds:.1f} s; batches "
          f"{', '.join(b.batch_id for b in result.batches)} written to {result.batches[-1].output_path} "
          f"(Delta version {result.batches[-1].delta_version})")


def _run(args: argparse.Namespace, config: Config) -> None:
    check_mode(args)
    uri = model_uri(args, config)
    if args.incremental:
        _run_incremental(args, config, uri)
        return
    spark = start_spark(config, input_locations(config, args.input), python_daemon_module=WORKER_DAEMON_MODULE)
    result = run_batch_inference(spark, config, args.input, uri, output_table=args.output_table,
                                 batch_id=args.batch_id, keys=args.keys,
                                 with_probability=not args.no_probability, arrow_batch=args.arrow_batch)
    model = f"{result.model.name} version {result.model.version}"
    if result.empty:
        print(f"input is empty: nothing scored, nothing written (model {model}, batch {result.batch_id})")
        return
    print(f"model {model} ({result.model.reference}) scored {result.rows_written} rows in {result.seconds:.1f} s; "
          f"batch {result.batch_id} written to {result.output_path} (Delta version {result.delta_version})")


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit code."""
    return run_job(_run, build_parser().parse_args(argv))


if __name__ == "__main__":
    exit_process(main())
