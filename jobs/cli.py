"""The ``featurelake`` command: one subcommand per job.

Global options (``--config``, ``--log-level``) go before the subcommand and are handed to it.
"""

from __future__ import annotations

import argparse
import importlib

from jobs.common import EXIT_CODES_HELP, exit_process

# subcommand -> (module under jobs/, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("jobs.run_demo", "run the end-to-end demo on synthetic data"),
    "build": ("jobs.build_features", "build feature tables into Delta and register them in Feast"),
    "tables": ("jobs.tables", "list and describe feature tables"),
    "train": ("jobs.train", "train a model on a point-in-time training set and register it in MLflow"),
    "promote": ("jobs.promote", "promote a model version to Staging or Production through the gates"),
    "models": ("jobs.models", "list, show, tag, alias and transition registered models"),
    "predict": ("jobs.batch_inference", "score entities with a registry model and append predictions to Delta"),
    "monitor": ("jobs.monitor", "check a batch's metrics; retrain, promote and rescore, or alert (exit 6)"),
    "materialize": ("jobs.materialize", "load the newest feature values into Feast's online store"),
    "online-features": ("jobs.online_features", "print online feature values as JSON"),
    "serve": ("jobs.serve", "serve a registry model over HTTP, its features read from the online store"),
    "report": ("jobs.build_report", "write the static HTML report (feature tables, models, monitoring)"),
    "warmup": ("jobs.warmup", "write the JVM class-data archive so that later local jobs start faster"),
}


def build_parser() -> argparse.ArgumentParser:
    """Return the top-level parser (subcommands parse their own arguments)."""
    listing = "\n".join(f"  {name:<16} {text}" for name, (_, text) in COMMANDS.items())
    parser = argparse.ArgumentParser(
        prog="featurelake",
        description="Delta Lake feature tables, Feast, MLflow and batch inference on Spark.",
        epilog=f"commands:\n{listing}\n\nRun 'featurelake COMMAND --help' for a command's options.\n{EXIT_CODES_HELP}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--config", help="configuration file (default: $FEATURELAKE_CONFIG or ./featurelake.yaml)")
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    parser.add_argument("command", choices=sorted(COMMANDS), metavar="COMMAND", help="the job to run")
    parser.add_argument("args", nargs=argparse.REMAINDER, help="arguments of the command")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``featurelake`` console script."""
    args = build_parser().parse_args(argv)
    module = importlib.import_module(COMMANDS[args.command][0])
    forwarded = ["--log-level", args.log_level]
    if args.config:
        forwarded += ["--config", args.config]
    return module.main(forwarded + args.args)


def run() -> None:
    """The ``featurelake`` console script: run :func:`main` and end the process with its exit code."""
    exit_process(main())


if __name__ == "__main__":
    run()
