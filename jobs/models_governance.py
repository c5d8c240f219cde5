"""The governance subcommands of ``featurelake models`` (registered by jobs/models.py).

    featurelake models request NAME --version V --stage Staging|Production [--comment TEXT]
    featurelake models approve|reject|cancel REQUEST_ID [--comment TEXT]
    featurelake models requests [NAME] [--pending] [--json] [--json-out FILE]
    featurelake models activity NAME [--version V] [--json] [--json-out FILE]
    featurelake models compare NAME V1 V2 [V3 ...] [--differences] [--json] [--json-out FILE]
    featurelake models comment NAME --version V TEXT
    featurelake models rename OLD NEW
    featurelake models search "name LIKE 'churn%' AND tags.team = 'risk'" [--json] [--json-out FILE]

``--user`` names who acts (default: ``governance.user``, else the OS user): attribution, not security.
"""

from __future__ import annotations

import argparse
from typing import Any

from featurestore.core.config import Config
from featurestore.core.errors import BadInputError, ConflictError
from jobs.common import add_json_options, emit_json, metadata_reader, start_spark

USER_HELP = ("who is acting, as recorded (default: governance.user, else the OS user); attribution, "
             "not security: anyone who can run featurelake can name any user")
ACTIONS = ("request", "approve", "reject", "cancel", "requests", "activity", "compare", "comment", "rename",
           "search", "transition", "alias")


def add_subcommands(sub: Any) -> None:
    """Add the governance subcommands to the ``featurelake models`` subparsers ``sub``."""
    request = sub.add_parser("request", help="ask for a version to move to Staging or Production (someone approves)")
    request.add_argument("name", help="registered model name")
    request.add_argument("--version", required=True, help="version number")
    request.add_argument("--stage", required=True, choices=["Staging", "Production"])
    request.add_argument("--comment", help="why")
    for action, text in (("approve", "approve a pending request: the promotion gates run, then the transition"),
                         ("reject", "reject a pending request (the registry is not touched)"),
                         ("cancel", "cancel your own pending request")):
        decide = sub.add_parser(action, help=text)
        decide.add_argument("request_id", help="the request id that 'models request' printed")
        decide.add_argument("--comment", help="why")
    listing = sub.add_parser("requests", help="list transition requests")
    listing.add_argument("name", nargs="?", help="only this model")
    listing.add_argument("--pending", action="store_true", help="only pending requests")
    activity = sub.add_parser("activity", help="what happened to a model's versions, oldest first")
    activity.add_argument("name", help="registered model name")
    activity.add_argument("--version", help="only this version")
    compare = sub.add_parser("compare", help="params, metrics, signature and training set of versions side by side")
    compare.add_argument("name", help="registered model name")
    compare.add_argument("versions", nargs="+", metavar="VERSION", help="two or more version numbers")
    compare.add_argument("--differences", action="store_true", help="show only the rows that differ")
    comment = sub.add_parser("comment", help="comment on a version")
    comment.add_argument("name", help="registered model name")
    comment.add_argument("--version", required=True, help="version number")
    comment.add_argument("text", help="the comment")
    rename = sub.add_parser("rename", help="rename a model (refused while a version is in Staging or Production)")
    rename.add_argument("old", help="current name")
    rename.add_argument("new", help="new name")
    search = sub.add_parser("search", help="search models: MLflow filter on name and tags.KEY, clauses joined by AND")
    search.add_argument("filter", nargs="?", default="",
                        help="for example \"name LIKE 'churn%%' AND tags.team = 'risk'\" (default: every model)")
    for action in ("request", "approve", "reject", "cancel", "comment", "rename"):
        sub.choices[action].add_argument("--user", help=USER_HELP)
    for action, what in (("request", "the request"), ("approve", "the decision"), ("reject", "the decision"),
                         ("cancel", "the decision"), ("requests", "the requests"), ("activity", "the entries"),
                         ("compare", "the comparison"), ("rename", "what was renamed"), ("search", "the models")):
        add_json_options(sub.choices[action], what)


def _request_line(r) -> str:
    when = r.requested_at.strftime("%Y-%m-%d %H:%M:%S")
    line = (f"{r.request_id}  {r.model_name} v{r.version}  {r.from_stage} -> {r.to_stage}  {r.status:<9} "
            f"by {r.requested_by} at {when}{': ' + r.comment if r.comment else ''}")
    if not r.pending:
        said = "; ".join(p for p in (r.decision_comment, r.reason) if p)
        line += f"\n    {r.status} by {r.decided_by}{': ' + said if said else ''}"
    return line


def _decision_line(decision) -> str:
    r = decision.request
    if r.status == "approved":
        return (f"request {r.request_id} approved by {r.decided_by}: {r.model_name} version {r.version} is now in "
                f"{r.to_stage} ({decision.promotion.reason if decision.promotion else r.reason})")
    return f"request {r.request_id} {r.status} by {r.decided_by}{': ' + r.reason if r.reason else ''}"


def _decide(args: argparse.Namespace, config: Config, spark) -> int | None:
    from inference.governance import requests
    from inference.governance.changes import Actor

    actor = Actor.of(config, "request", args.user, args.request_id)
    decide = {"approve": requests.approve, "reject": requests.reject, "cancel": requests.cancel}[args.action]
    decision = decide(spark, config, args.request_id, actor, args.comment)
    r = decision.request
    emit_json(args, {"request": r.to_dict(), "promotion": decision.promotion.to_dict() if decision.promotion else None})
    if not args.json:
        print(_decision_line(decision))
    return ConflictError.exit_code if r.status == "refused" else None


def run(args: argparse.Namespace, config: Config) -> int | None:
    """Run the governance subcommand ``args.action``; return the exit code (None: 0)."""
    from inference import registry
    from inference.governance import activity, changes, compare, rename, requests
    from inference.governance.changes import Actor

    if args.action == "search":
        infos = registry.search_models(config, args.filter)
        emit_json(args, [m.to_dict() for m in infos])
        if args.json:
            return None
        for m in infos:
            tags = ", ".join(f"{k}={v}" for k, v in sorted(m.tags.items()))
            stages = ", ".join(f"v{v.version} {v.stage}" for v in m.versions)
            print(f"{m.name}  tags: {tags or '-'}  versions: {stages or '-'}")
        if not infos:
            print("no model matches")
        return None
    if args.action == "compare":
        if len(args.versions) < 2:
            raise BadInputError(f"compare model {args.name!r}: name two or more versions")
        result = compare.compare_versions(config, args.name, args.versions)
        emit_json(args, result.to_dict())
        if not args.json:
            print(compare.format_comparison(result, args.differences))
            print(f"{len(result.differences)} of {len(result.rows)} rows differ (marked *)")
        return None
    if args.action == "requests":  # reads with delta-rs: no JVM
        if args.name is not None:
            registry.get_registered_model(config, args.name)  # an unknown model is NotFoundError (exit 3)
        found = requests.list_requests(metadata_reader(config), config, args.name, pending_only=args.pending)
        emit_json(args, [r.to_dict() for r in found])
        if not args.json:
            print("\n".join(_request_line(r) for r in found) or "no requests")
        return None
    if args.action == "activity":  # reads with delta-rs: no JVM
        entries = activity.read_activity(metadata_reader(config), config, args.name, args.version)
        emit_json(args, [e.to_dict() for e in entries])
        if not args.json:
            print("\n".join(activity.describe(e) for e in entries) or "no activity")
        return None
    if args.action == "alias" and not args.delete and not args.version:
        raise BadInputError("alias: --version is required unless --delete is given")
    spark = start_spark(config, [config.warehouse])
    if args.action in ("approve", "reject", "cancel"):
        return _decide(args, config, spark)
    if args.action == "request":
        r = requests.request_transition(spark, config, args.name, args.version, args.stage,
                                        Actor.of(config, "request", args.user), args.comment)
        emit_json(args, r.to_dict())
        if not args.json:
            print(f"request {r.request_id}: {r.model_name} version {r.version} {r.from_stage} -> {r.to_stage}, "
                  f"by {r.requested_by} (pending)")
    elif args.action == "comment":
        entry = changes.add_comment(spark, config, args.name, args.version, args.text,
                                    Actor.of(config, "comment", args.user))
        print(f"{entry.model_name} version {entry.version}: comment by {entry.user} recorded")
    elif args.action == "rename":
        result = rename.rename_model(spark, config, args.old, args.new, Actor.of(config, "rename", args.user))
        emit_json(args, vars(result))
        if not args.json:
            rows = ", ".join(f"{t} {n}" for t, n in result.rows_renamed.items()) or "no featurelake table yet"
            print(f"model {result.old} is now {result.new} (rows renamed: {rows})")
    elif args.action == "transition":
        from inference.promotion import transition

        with changes.recording(spark, config, args.name, Actor.of(config, "transition", args.user)):
            info = transition(config, args.name, args.version, args.stage, archive_existing=not args.no_archive)
        print(f"{info.name} version {info.version} is now in {info.stage}")
    elif args.action == "alias":
        _alias(args, config, spark)
    return None


def _alias(args: argparse.Namespace, config: Config, spark) -> None:
    from inference import registry
    from inference.governance import changes
    from inference.governance.changes import Actor

    with changes.recording(spark, config, args.name, Actor.of(config, "alias", args.user)):
        if args.delete:
            registry.delete_alias(config, args.name, args.alias)
        else:
            registry.set_alias(config, args.name, args.alias, args.version)
    print(f"{args.name}: alias {args.alias} removed" if args.delete
          else f"{args.name}@{args.alias} -> version {args.version}")
