"""The Data Factory definitions under pipelines/adf/ load with Microsoft's models and fit the jobs."""

from __future__ import annotations

import copy

import pytest
from azure.mgmt.datafactory import models as adf

from adf_checks import (
    JOBS_DIR,
    definition_files,
    execute_pipeline_problems,
    failure_path_problems,
    job_activity_problems,
    job_stem,
    load_json,
    load_linked_service,
    load_pipeline,
    load_trigger,
    parse_job_arguments,
    sample_values,
    substitute,
)

# pipeline -> the job file its Databricks activity runs
EXPECTED_JOB_PIPELINES = {
    "pl_featurelake_build_features": "build_features",
    "pl_featurelake_batch_inference": "batch_inference",
    "pl_featurelake_monitor": "monitor",
    "pl_featurelake_promote": "promote",
}


def _linked_services():
    return {load_json(p)["name"]: load_linked_service(load_json(p))[0] for p in definition_files("linkedService")}


def _pipelines():
    return {load_json(p)["name"]: load_pipeline(load_json(p))[0] for p in definition_files("pipeline")}


def _all_pipeline_problems(raw, linked_services, pipelines):
    model, problems = load_pipeline(raw)
    where = f"pipeline {raw['name']!r}"
    problems += failure_path_problems(model, where)
    problems += job_activity_problems(model, where, linked_services)
    problems += execute_pipeline_problems(model, where, pipelines)
    return problems


def _build_raw():
    return load_json(next(p for p in definition_files("pipeline") if p.stem == "pl_featurelake_build_features"))


def test_definitions_are_present():
    assert [p.stem for p in definition_files("linkedService")] == ["ls_featurelake_databricks"]
    assert {p.stem for p in definition_files("pipeline")} == {*EXPECTED_JOB_PIPELINES, "pl_featurelake_daily"}
    assert [p.stem for p in definition_files("trigger")] == ["tr_featurelake_daily"]
    for path in definition_files("pipeline") + definition_files("linkedService") + definition_files("trigger"):
        assert load_json(path)["name"] == path.stem, f"{path}: the file name must be the resource name"


@pytest.mark.parametrize("path", definition_files("linkedService"), ids=lambda p: p.stem)
def test_linked_service_is_valid(path):
    model, problems = load_linked_service(load_json(path))
    assert problems == []
    assert isinstance(model.properties, adf.AzureDatabricksLinkedService)
    assert model.properties.domain


@pytest.mark.parametrize("path", definition_files("pipeline"), ids=lambda p: p.stem)
def test_pipeline_is_valid(path):
    problems = _all_pipeline_problems(load_json(path), _linked_services(), _pipelines())
    assert problems == []


@pytest.mark.parametrize("path", definition_files("trigger"), ids=lambda p: p.stem)
def test_trigger_is_valid(path):
    model, problems = load_trigger(load_json(path), _pipelines())
    assert problems == []
    assert isinstance(model.properties, adf.ScheduleTrigger)


@pytest.mark.parametrize("name,stem", sorted(EXPECTED_JOB_PIPELINES.items()))
def test_job_pipelines_run_their_job_with_pipeline_parameters(name, stem):
    model = _pipelines()[name]
    jobs = [a for a in model.activities if isinstance(a, adf.DatabricksSparkPythonActivity)]
    assert [job_stem(a.python_file) for a in jobs] == [stem]
    assert (JOBS_DIR / f"{stem}.py").is_file()
    arguments = [substitute(a, sample_values(model.parameters)) for a in jobs[0].parameters]
    namespace, complaint = parse_job_arguments(stem, arguments)
    assert complaint == ""
    assert namespace.config == model.parameters["configPath"].default_value
    fails = [a for a in model.activities if isinstance(a, adf.FailActivity)]
    webs = [a for a in model.activities if isinstance(a, adf.WebActivity)]
    assert len(fails) == 1 and len(webs) == 1
    assert webs[0].depends_on[0].activity == jobs[0].name
    assert webs[0].depends_on[0].dependency_conditions == ["Failed"]


def test_pipelines_score_and_monitor_the_configured_model():
    """No pipeline names a model (the demo's churn_model was the default): the jobs take
    training.model_name from the configuration file the pipeline passes."""
    for path in definition_files("pipeline") + definition_files("trigger"):
        assert "churn_model" not in path.read_text(encoding="utf-8"), path.name
    for name, stem, option in (("pl_featurelake_batch_inference", "batch_inference", "model_uri"),
                               ("pl_featurelake_monitor", "monitor", "model_name")):
        model = _pipelines()[name]
        assert "modelName" not in model.parameters
        job = next(a for a in model.activities if isinstance(a, adf.DatabricksSparkPythonActivity))
        namespace, complaint = parse_job_arguments(stem, [substitute(a, sample_values(model.parameters))
                                                          for a in job.parameters])
        assert complaint == "" and getattr(namespace, option) is None, name


# --- the checks catch what Azure would reject ---------------------------------------------

def test_misspelled_activity_type_is_caught():
    raw = _build_raw()
    raw["properties"]["activities"][0]["type"] = "DatabricksSparkPy"
    _, problems = load_pipeline(raw)
    assert any("resolved to Activity" in p for p in problems)


def test_missing_required_field_is_caught():
    raw = _build_raw()
    del raw["properties"]["activities"][0]["typeProperties"]["pythonFile"]
    del raw["properties"]["activities"][2]["typeProperties"]["errorCode"]
    _, problems = load_pipeline(raw)
    assert any("'python_file' is missing" in p for p in problems)
    assert any("'error_code' is missing" in p for p in problems)


def test_nested_required_field_is_caught():
    raw = _build_raw()
    del raw["properties"]["activities"][1]["dependsOn"][0]["dependencyConditions"]
    _, problems = load_pipeline(raw)
    assert any("depends_on" in p and "'dependency_conditions' is missing" in p for p in problems)


def test_unknown_keys_are_caught():
    raw = _build_raw()
    raw["properties"]["activities"][0]["typeProperties"]["pythonFiles"] = "x.py"
    raw["properties"]["activities"][1]["dependOn"] = []
    _, problems = load_pipeline(raw)
    assert any("pythonFiles is not understood" in p for p in problems)
    assert any("unknown key(s) ['dependOn']" in p for p in problems)


def test_broken_dependencies_and_expressions_are_caught():
    raw = _build_raw()
    raw["properties"]["activities"][1]["dependsOn"][0]["activity"] = "NoSuchActivity"
    raw["properties"]["activities"][0]["typeProperties"]["parameters"] += ["--tables", "@pipeline().parameters.nope"]
    _, problems = load_pipeline(raw)
    assert any("unknown activity 'NoSuchActivity'" in p for p in problems)
    assert any("undeclared parameter 'nope'" in p for p in problems)
    assert any("not upstream" in p or "unknown activity" in p for p in problems)


def test_missing_failure_path_is_caught():
    raw = _build_raw()
    raw["properties"]["activities"] = raw["properties"]["activities"][:1]
    model, _ = load_pipeline(raw)
    assert failure_path_problems(model, "p") == ["p: no activity runs when 'BuildFeatures' fails"]


def test_unknown_job_file_and_argument_are_caught():
    raw = _build_raw()
    bad_arg = copy.deepcopy(raw)
    bad_arg["properties"]["activities"][0]["typeProperties"]["parameters"] += ["--no-such-option", "1"]
    model, _ = load_pipeline(bad_arg)
    problems = job_activity_problems(model, "p", _linked_services())
    assert len(problems) == 1 and "--no-such-option" in problems[0]
    bad_file = copy.deepcopy(raw)
    bad_file["properties"]["activities"][0]["typeProperties"]["pythonFile"] = "dbfs:/x/no_such_job.py"
    model, _ = load_pipeline(bad_file)
    assert job_activity_problems(model, "p", _linked_services()) == [
        "p activity 'BuildFeatures': job file jobs/no_such_job.py does not exist"]
    bad_ls = copy.deepcopy(raw)
    bad_ls["properties"]["activities"][0]["linkedServiceName"]["referenceName"] = "ls_missing"
    model, _ = load_pipeline(bad_ls)
    assert any("'ls_missing' is not defined" in p for p in job_activity_problems(model, "p", _linked_services()))


def test_substitute_replaces_expressions():
    samples = {"jobsRoot": "dbfs:/j", "maxAttempts": "3"}
    assert substitute("@pipeline().parameters.maxAttempts", samples) == "3"
    assert substitute("@{pipeline().parameters.jobsRoot}/monitor.py", samples) == "dbfs:/j/monitor.py"
    assert substitute("models:/@{pipeline().parameters.model}/Production", samples) == "models:/sample/Production"
    assert substitute("--config", samples) == "--config"


def test_daily_pipeline_chains_the_jobs_on_success():
    model = _pipelines()["pl_featurelake_daily"]
    runs = {a.name: a for a in model.activities}
    assert all(isinstance(a, adf.ExecutePipelineActivity) and a.wait_on_completion for a in runs.values())
    assert [runs[n].pipeline.reference_name for n in ("RunBuildFeatures", "RunBatchInference", "RunMonitoring")] == [
        "pl_featurelake_build_features", "pl_featurelake_batch_inference", "pl_featurelake_monitor"]
    assert runs["RunMonitoring"].depends_on[0].activity == "RunBatchInference"
    assert runs["RunMonitoring"].depends_on[0].dependency_conditions == ["Succeeded"]


def test_monitor_pipeline_passes_max_attempts_as_an_integer_argument():
    model = _pipelines()["pl_featurelake_monitor"]
    job = next(a for a in model.activities if isinstance(a, adf.DatabricksSparkPythonActivity))
    arguments = [substitute(a, sample_values(model.parameters)) for a in job.parameters]
    namespace, complaint = parse_job_arguments("monitor", arguments)
    assert complaint == ""
    assert namespace.max_attempts == 3 and namespace.batch_id == "sample-batchId"
    assert namespace.labels == "sample-labelsPath"


@pytest.mark.parametrize("mode", ["request", "promote"])
def test_promote_pipeline_runs_the_promote_job_in_request_or_promote_mode(mode):
    model = _pipelines()["pl_featurelake_promote"]
    assert model.parameters["mode"].default_value == "request"  # a person approves unless told otherwise
    job = next(a for a in model.activities if isinstance(a, adf.DatabricksSparkPythonActivity))
    samples = {**sample_values(model.parameters), "mode": mode, "modelVersion": "3"}
    namespace, complaint = parse_job_arguments("promote", [substitute(a, samples) for a in job.parameters])
    assert complaint == ""
    assert (namespace.mode, namespace.model_name, namespace.version, namespace.stage, namespace.user) == (
        mode, None, "3", "Production", "data-factory")  # the model: training.model_name of the configuration
    samples["mode"] = "approve"  # not a mode: the job refuses it before doing anything
    _, complaint = parse_job_arguments("promote", [substitute(a, samples) for a in job.parameters])
    assert "invalid choice: 'approve'" in complaint


def test_execute_pipeline_and_trigger_references_are_checked():
    pipelines = _pipelines()
    raw = load_json(next(p for p in definition_files("pipeline") if p.stem == "pl_featurelake_daily"))
    raw["properties"]["activities"][1]["typeProperties"]["parameters"]["nope"] = "x"
    del raw["properties"]["activities"][2]["typeProperties"]["parameters"]["batchId"]
    model, _ = load_pipeline(raw)
    problems = execute_pipeline_problems(model, "p", pipelines)
    assert any("'nope' that pipeline 'pl_featurelake_batch_inference' does not declare" in p for p in problems)
    assert any("required parameter 'batchId' of pipeline 'pl_featurelake_monitor'" in p for p in problems)
    trigger = load_json(definition_files("trigger")[0])
    trigger["properties"]["pipelines"][0]["pipelineReference"]["referenceName"] = "pl_missing"
    _, problems = load_trigger(trigger, pipelines)
    assert problems == ["trigger 'tr_featurelake_daily' pipelines[0]: refers to undefined pipeline 'pl_missing'"]


def test_batch_inference_pipeline_has_the_incremental_mode_as_an_option():
    raw = load_json(next(p for p in definition_files("pipeline") if p.stem == "pl_featurelake_batch_inference"))
    model, _ = load_pipeline(raw)
    activity = next(a for a in model.activities if isinstance(a, adf.DatabricksSparkPythonActivity))
    samples = sample_values(model.parameters)
    assert samples["incremental"] == "False"                  # off unless the run asks for it
    for value, incremental in (("False", False), ("True", True)):
        args, complaint = parse_job_arguments(
            "batch_inference", [substitute(a, {**samples, "incremental": value}) for a in activity.parameters])
        assert complaint == "" and args.incremental is incremental
        assert args.checkpoint == "dbfs:/featurelake/checkpoints/batch_inference"
    daily = load_json(next(p for p in definition_files("pipeline") if p.stem == "pl_featurelake_daily"))
    run = next(a for a in daily["properties"]["activities"] if a["name"] == "RunBatchInference")
    assert run["typeProperties"]["parameters"]["incremental"] == "@pipeline().parameters.incrementalScoring"
