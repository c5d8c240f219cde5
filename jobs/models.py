"""The MLflow Model Registry on the command line.

    featurelake models list [NAME] [--json] [--json-out FILE]
    featurelake models show NAME [--version V] [--json] [--json-out FILE]
    featurelake models transition NAME --version V --stage Staging|Production|Archived|None [--no-archive]
    featurelake models alias NAME --alias champion --version V      (--delete to remove it)
    featurelake models tag NAME KEY VALUE [--version V]
    featurelake models set-description NAME TEXT [--version V]
    featurelake models delete-version NAME --version V
    featurelake models events [NAME] [--json] [--json-out FILE]      (promotion decisions)

``transition`` is unconditional; use ``featurelake promote`` for the gated promotion.
``transition`` and ``alias`` record what they change in ``model_activity``. Requests, approvals,
the activity log, compare, comments, rename and search: jobs/models_governance.py.
"""

from __future__ import annotations

import argparse
from dataclasses import asdict

from featurestore.core.config import Config
from inference.stages import STAGES
from jobs import models_governance
from jobs.common import add_json_options, emit_json, exit_process, job_parser, metadata_reader, run_job


def build_parser() -> argparse.ArgumentParser:
    """Return the command's argument parser."""
    parser = job_parser("featurelake models", "List, inspect and manage registered models in MLflow.")
    sub = parser.add_subparsers(dest="action", required=True)
    listing = sub.add_parser("list", help="list registered models and their versions")
    listing.add_argument("name", nargs="?", help="only this model")
    add_json_options(listing, "the models")
    show = sub.add_parser("show", help="show one model version with its signature")
    show.add_argument("name", help="registered model name")
    show.add_argument("--version", help="version (default: the newest)")
    add_json_options(show, "the version")
    trans = sub.add_parser("transition", help="move a version to a stage (no gates)")
    trans.add_argument("name", help="registered model name")
    trans.add_argument("--version", required=True, help="version number")
    trans.add_argument("--stage", required=True, choices=STAGES)
    trans.add_argument("--no-archive", action="store_true", help="keep the versions already in the stage")
    trans.add_argument("--user", help=models_governance.USER_HELP)
    alias = sub.add_parser("alias", help="set (or delete) an alias such as champion or challenger")
    alias.add_argument("name", help="registered model name")
    alias.add_argument("--alias", required=True, help="alias name")
    alias.add_argument("--version", help="version the alias points at")
    alias.add_argument("--delete", action="store_true", help="remove the alias")
    alias.add_argument("--user", help=models_governance.USER_HELP)
    tag = sub.add_parser("tag", help="set a tag on a model or a version")
    tag.add_argument("name", help="registered model name")
    tag.add_argument("key")
    tag.add_argument("value")
    tag.add_argument("--version", help="tag this version instead of the model")
    desc = sub.add_parser("set-description", help="set the description of a model or a version")
    desc.add_argument("name", help="registered model name")
    desc.add_argument("description")
    desc.add_argument("--version", help="describe this version instead of the model")
    delete = sub.add_parser("delete-version", help="delete a version (refused in Staging or Production)")
    delete.add_argument("name", help="registered model name")
    delete.add_argument("--version", required=True, help="version number")
    events = sub.add_parser("events", help="show promotion decisions")
    events.add_argument("name", nargs="?", help="only this model")
    add_json_options(events, "the decisions")
    models_governance.add_subcommands(sub)
    return parser


def _print_models(infos, served) -> None:
    from inference.serving_records import serving_urls

    if not infos:
        print("no registered models")
    for model in infos:
        aliases = ", ".join(f"{a}=v{v}" for a, v in sorted(model.aliases.items())) or "-"
        print(f"{model.name}  (aliases: {aliases})  {model.description}")
        for v in model.versions:
            tags = ",".join(f"{k}={val}" for k, val in sorted(v.tags.items()))
            serving = ",".join(serving_urls(served, model.name, v.version)) or "-"
            print(f"  v{v.version:<4} {v.stage:<10} aliases={','.join(v.aliases) or '-':<20} serving={serving}  "
                  f"modified={v.last_modified}  run={v.run_id}  tags={tags or '-'}")


def _model_or_version(args: argparse.Namespace) -> str:
    """``churn_model`` or ``churn_model version 2``: what a tag or description was set on."""
    return f"{args.name} version {args.version}" if args.version else args.name


def _with_serving(model: dict, served) -> dict:
    """``model`` (ModelInfo.to_dict) with each version's ``serving`` URLs."""
    from inference.serving_records import serving_urls

    for version in model["versions"]:
        version["serving"] = serving_urls(served, model["name"], version["version"])
    return model


def _run(args: argparse.Namespace, config: Config) -> int | None:
    from inference import registry

    if args.action in models_governance.ACTIONS:
        return models_governance.run(args, config)
    if args.action == "list":
        from inference.serving_records import read_records

        infos = registry.list_models(config, args.name)
        served = read_records(config)
        emit_json(args, [_with_serving(m.to_dict(), served) for m in infos])
        if not args.json:
            _print_models(infos, served)
    elif args.action == "show":
        info = registry.show_version(config, args.name, args.version)
        emit_json(args, info.to_dict())
        if not args.json:
            for key, value in info.to_dict().items():
                if key == "signature" and value:
                    print("signature:")
                    print(f"  inputs:  {value.get('inputs')}")
                    print(f"  outputs: {value.get('outputs')}")
                else:
                    print(f"{key}: {value}")
    elif args.action == "tag":
        registry.set_tag(config, args.name, args.key, args.value, args.version)
        print(f"{_model_or_version(args)}: tag {args.key}={args.value} set")
    elif args.action == "set-description":
        registry.set_description(config, args.name, args.description, args.version)
        print(f"{_model_or_version(args)}: description set")
    elif args.action == "delete-version":
        registry.delete_version(config, args.name, args.version)
        print(f"{args.name} version {args.version} deleted")
    elif args.action == "events":
        from inference.promotion import read_events

        if args.name is not None:
            registry.get_registered_model(config, args.name)  # an unknown model is NotFoundError (exit 3)
        events = read_events(metadata_reader(config), config, args.name)
        emit_json(args, [asdict(e) for e in events])
        if not args.json:
            for e in events:
                print(f"{e.decided_at}  {e.model_name} v{e.candidate_version} -> {e.stage}: {e.decision} ({e.reason})")
    return None


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit code."""
    return run_job(_run, build_parser().parse_args(argv))


if __name__ == "__main__":
    exit_process(main())
