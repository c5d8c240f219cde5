"""Serve a registry model over HTTP with MLflow's scoring server; its features come from Feast's online store.

    featurelake serve --model-uri models:/churn_model@champion [--host 127.0.0.1 --port 5001]
    curl -s http://127.0.0.1:5001/invocations -H 'Content-Type: application/json' \\
        -d '{"dataframe_records": [{"customer_id": 7}]}'
    featurelake serve --model-uri models:/churn_model@champion --save-to ./served-model   # for mlflow models serve

A request carries the entity keys only; see inference/serving.py for the protocol, the errors and
how the server follows the reference (``--reload-interval``).
"""

from __future__ import annotations

import argparse

from featurestore.core.config import Config
from jobs.common import exit_process, job_parser, run_job


def build_parser() -> argparse.ArgumentParser:
    """Return the command's argument parser."""
    from inference.serving import DEFAULT_HOST, DEFAULT_MAX_REQUEST_BYTES, DEFAULT_PORT, DEFAULT_RELOAD_INTERVAL

    parser = job_parser("featurelake serve", "Serve a registry model over HTTP (MLflow's scoring server protocol), "
                                             "looking its features up in Feast's online store.")
    parser.add_argument("--model-uri", required=True, metavar="URI",
                        help="models:/NAME@ALIAS, models:/NAME/Production or models:/NAME/VERSION")
    parser.add_argument("--host", default=DEFAULT_HOST, help=f"interface to listen on (default {DEFAULT_HOST})")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT,
                        help=f"port (default {DEFAULT_PORT}; 0 picks a free one)")
    parser.add_argument("--reload-interval", type=float, default=DEFAULT_RELOAD_INTERVAL, metavar="SECONDS",
                        help="resolve the model URI again this often and serve the version it names now "
                             f"(default {DEFAULT_RELOAD_INTERVAL:g}; 0 keeps the version resolved at start)")
    parser.add_argument("--max-request-bytes", type=int, default=DEFAULT_MAX_REQUEST_BYTES, metavar="BYTES",
                        help=f"larger request bodies get 413 (default {DEFAULT_MAX_REQUEST_BYTES})")
    parser.add_argument("--workers", type=int, default=1,
                        help="worker processes answering on the same port (default 1; one per core for throughput)")
    parser.add_argument("--save-to", metavar="DIR",
                        help="do not serve: save the serving model (an MLflow model folder) in DIR for "
                             "`mlflow models serve` or a container")
    return parser


def _run(args: argparse.Namespace, config: Config) -> None:
    from inference.serving import ServeOptions, save_serving_model, serve

    options = ServeOptions(args.model_uri, args.host, args.port, args.reload_interval, args.max_request_bytes,
                           args.workers)
    options.check()
    if args.save_to:
        resolved, plan = save_serving_model(config, args.model_uri, args.save_to)
        print(f"saved the serving model of {resolved.name} version {resolved.version} in {args.save_to} "
              f"(keys: {', '.join(k.name for k in plan.keys)})", flush=True)
        return
    serve(config, options, ready=lambda record: print(
        f"serving {args.model_uri} ({record.model_name} version {record.model_version}) at {record.url}", flush=True))


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit code."""
    return run_job(_run, build_parser().parse_args(argv))


if __name__ == "__main__":
    exit_process(main())
