"""The activity log of transitions, alias moves and comments made on the command line; rename (refused
while a version is in Staging or Production, then carried into featurelake's tables); search."""

from __future__ import annotations

import json

import pytest
from governance_support import actor, make_project, new_model, new_version, state

from featurestore.core.config import write_config
from featurestore.core.errors import BadInputError, NotFoundError
from featurestore.delta_reader import session_reader
from inference import registry
from inference.governance import tables
from inference.governance.activity import read_activity
from inference.governance.rename import rename_model
from inference.governance.requests import get_request, request_transition
from inference.monitoring.tables import MODEL_METRICS, write_rows
from inference.promotion import promote, read_events, transition
from inference.settings import MONITORING
from jobs import models as models_job


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    root = tmp_path_factory.mktemp("admin")
    config = make_project(root)
    return config, str(write_config(config, root / "featurelake.yaml"))


def _cli(path: str, *args: str) -> int:
    return models_job.main(["--config", path, *args])


def test_transitions_alias_moves_and_comments_from_the_command_line_are_in_the_activity_log(spark, project, capsys):
    config, path = project
    model = new_model(config)
    v1, v2 = new_version(config, model), new_version(config, model)
    assert _cli(path, "transition", model, "--version", v1, "--stage", "Production", "--user", "dave") == 0
    assert _cli(path, "alias", model, "--alias", "champion", "--version", v1, "--user", "dave") == 0
    assert _cli(path, "transition", model, "--version", v2, "--stage", "Production", "--user", "erin") == 0
    assert _cli(path, "alias", model, "--alias", "best", "--version", v2, "--user", "erin") == 0
    assert _cli(path, "alias", model, "--alias", "best", "--delete", "--user", "fay") == 0
    assert _cli(path, "comment", model, "--version", v2, "holds on the May cohort", "--user", "gus") == 0
    assert _cli(path, "comment", model, "--version", v2, "   ") == 2
    assert _cli(path, "comment", model, "--version", "9", "text") == 3
    assert _cli(path, "alias", model, "--alias", "best") == 2  # neither --version nor --delete
    capsys.readouterr()

    assert _cli(path, "activity", model, "--json") == 0
    log = [(e["version"], e["kind"], e["user"], e["source"], e["text"]) for e in json.loads(capsys.readouterr().out)]
    assert log == [
        (1, "created", None, "registry", log[0][4]), (2, "created", None, "registry", log[1][4]),
        (1, "transitioned", "dave", "transition", "None -> Production"),
        (1, "alias_set", "dave", "alias", "@champion -> version 1"),
        (1, "transitioned", "erin", "transition", "Production -> Archived"),
        (2, "transitioned", "erin", "transition", "None -> Production"),
        (1, "alias_removed", "erin", "transition", "@champion removed from version 1"),
        (2, "alias_set", "erin", "alias", "@best -> version 2"),
        (2, "alias_removed", "fay", "alias", "@best removed from version 2"),
        (2, "commented", "gus", "comment", "holds on the May cohort"),
    ]
    assert _cli(path, "activity", model, "--version", v1) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 5 and all("  v1 " in line for line in lines)
    assert "[dave via transition]" in lines[1]
    assert _cli(path, "activity", "no_such_model") == 3


def test_rename_is_refused_in_production_then_carries_the_history_into_every_table(spark, project, capsys):
    config, path = project
    model = new_model(config)
    new_name = model + "_renamed"
    v1, v2 = new_version(config, model, roc_auc=0.8), new_version(config, model, roc_auc=0.7)
    promote(spark, config, model, v1, "Production", actor=actor(config, "ops", "promote"))
    pending = request_transition(spark, config, model, v2, "Staging", actor(config, "alice"))
    write_rows(spark, config, MODEL_METRICS, [{"model_name": model, "model_version": 1, "batch_id": "b1",
                                               "metric": "auc", "value": 0.8}])
    predictions = config.table_path(MONITORING.of(config).predictions_table)
    spark.createDataFrame([(1, model, 1, "b1"), (2, model, 1, "b1"), (3, "someone_else", 4, "b1")],
                          "customer_id long, model_name string, model_version long, batch_id string") \
        .write.format("delta").save(predictions)

    assert _cli(path, "rename", model, new_name) == 4
    assert "cannot be renamed while version 1 (Production) is in Staging or Production" in capsys.readouterr().err
    assert state(config, model)[1] == {v1: "Production", v2: "None"}
    assert len(tables.read(session_reader(spark, config), config, "predictions", model_name=model)) == 2  # nothing renamed

    transition(config, model, v1, "Archived")
    result = rename_model(spark, config, model, new_name, actor(config, "ops", "rename"))

    assert result.registry_renamed
    assert {k: v for k, v in result.rows_renamed.items() if k != "model_activity"} == {
        "promotion_events": 1, "model_requests": 1, "model_metrics": 1, "predictions": 2}
    assert result.rows_renamed["model_activity"] >= 2  # promote's stage change and alias move
    with pytest.raises(NotFoundError):
        registry.get_registered_model(config, model)
    assert state(config, new_name)[1] == {v1: "Archived", v2: "None"}
    assert get_request(session_reader(spark, config), config, pending.request_id).model_name == new_name
    assert [r.candidate_version for r in read_events(session_reader(spark, config), config, new_name)] == [1]
    assert sorted(r["customer_id"] for r in tables.read(session_reader(spark, config), config, "predictions", model_name=new_name)) == [1, 2]
    assert len(tables.read(session_reader(spark, config), config, "predictions", model_name="someone_else")) == 1
    kinds = [e.kind for e in read_activity(session_reader(spark, config), config, new_name)]
    assert kinds[:4] == ["created", "created", "gates_passed", "transitioned"]
    assert "requested" in kinds and kinds[-1] == "renamed"
    assert read_activity(session_reader(spark, config), config, new_name)[-1].text == f"renamed from {model}"


def test_a_rename_interrupted_after_the_registry_is_finished_by_running_it_again(spark, project):
    config, _ = project
    model = new_model(config)
    version = new_version(config, model)
    promote(spark, config, model, version, "Staging")
    transition(config, model, version, "None")
    registry.mlflow_client(config).rename_registered_model(model, model + "_x")  # the tables were not reached

    result = rename_model(spark, config, model, model + "_x", actor(config, "ops", "rename"))

    assert not result.registry_renamed and result.rows_renamed["promotion_events"] == 1
    assert [r.candidate_version for r in read_events(session_reader(spark, config), config, model + "_x")] == [1]
    with pytest.raises(NotFoundError, match="'ghost' does not exist"):
        rename_model(spark, config, "ghost", model + "_x", actor(config, "ops", "rename"))
    with pytest.raises(BadInputError, match="invalid model name"):
        rename_model(spark, config, model + "_x", "bad name", actor(config, "ops", "rename"))


def test_search_uses_mlflow_filters_on_name_and_tags(spark, project, capsys):
    config, path = project
    risk = new_model(config, team="risk-search", tier="1")
    growth = new_model(config, team="growth-search", tier="1")
    new_version(config, risk)
    found = registry.search_models(config, "tags.team = 'risk-search'")
    assert [m.name for m in found] == [risk] and [v.version for v in found[0].versions] == ["1"]
    assert [m.name for m in registry.search_models(config, f"name LIKE '{risk[:-1]}%' AND tags.tier = '1'")] == \
        sorted(n for n in (risk, growth) if n.startswith(risk[:-1]))
    with pytest.raises(BadInputError, match="model search"):
        registry.search_models(config, "name = 'a' OR name = 'b'")
    capsys.readouterr()
    assert _cli(path, "search", "tags.team = 'growth-search'", "--json") == 0
    assert [m["name"] for m in json.loads(capsys.readouterr().out)] == [growth]
    assert _cli(path, "search", "tags.team = 'growth-search'") == 0
    assert capsys.readouterr().out.startswith(f"{growth}  tags: team=growth-search, tier=1  versions: -")
    assert _cli(path, "search", "bogus = 1") == 2


def test_the_promote_job_files_a_request_in_request_mode_and_approvals_map_to_exit_codes(spark, project, capsys):
    from jobs import promote as promote_job

    config, path = project
    model = new_model(config)
    v1, v2 = new_version(config, model, roc_auc=0.8), new_version(config, model, roc_auc=0.7)
    common = ["--config", path, "--model-name", model, "--stage", "Production"]
    assert promote_job.main([*common, "--version", v1, "--mode", "promote", "--comment", "why"]) == 2
    assert promote_job.main([*common, "--version", v1, "--mode", "request", "--alias", "best"]) == 2
    assert promote_job.main([*common, "--version", v1, "--mode", "request", "--user", "pipeline", "--json"]) == 0
    first = json.loads(capsys.readouterr().out)
    assert (first["status"], first["requested_by"], first["to_stage"]) == ("pending", "pipeline", "Production")
    assert state(config, model)[1] == {v1: "None", v2: "None"}

    assert _cli(path, "approve", first["request_id"], "--user", "bob", "--comment", "ok") == 0
    assert f"request {first['request_id']} approved by bob" in capsys.readouterr().out
    assert _cli(path, "approve", first["request_id"], "--user", "carol") == 4  # decided already
    assert _cli(path, "request", model, "--version", v2, "--stage", "Production", "--user", "alice", "--json") == 0
    second = json.loads(capsys.readouterr().out)["request_id"]
    assert _cli(path, "cancel", second, "--user", "bob") == 4
    assert _cli(path, "approve", second, "--user", "bob") == 4  # v2 does not beat v1: refused, recorded
    assert "refused by bob: promotion gates" in capsys.readouterr().out
    assert _cli(path, "requests", model, "--json") == 0
    assert [(r["version"], r["status"], r["decided_by"]) for r in json.loads(capsys.readouterr().out)] == [
        (2, "refused", "bob"), (1, "approved", "bob")]
    assert _cli(path, "requests", model, "--pending") == 0
    assert capsys.readouterr().out.strip() == "no requests"
    assert _cli(path, "approve", "not-an-id") == 2
    assert _cli(path, "reject", "0123456789ab") == 3
    assert _cli(path, "requests", "no_such_model") == 3
    assert promote_job.main([*common, "--version", v2, "--mode", "promote", "--user", "ops"]) == 4  # gates
    assert state(config, model)[1] == {v1: "Production", v2: "None"}
