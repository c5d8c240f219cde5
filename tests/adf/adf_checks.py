"""Checks of Data Factory definitions against Microsoft's own models (azure-mgmt-datafactory 9.3).

``from_dict`` is lenient: an unknown activity type falls back to the base ``Activity``,
unknown or misspelled keys are kept aside or dropped, and required fields are not enforced.
Each function below returns a list of problems (empty = fine), so the tests can assert on
the real definitions and on broken copies of them alike.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import importlib
import io
import json
import re
from pathlib import Path
from typing import Any, Iterator

from azure.mgmt.datafactory import models as adf

REPO = Path(__file__).resolve().parents[2]
ADF_ROOT = REPO / "pipelines" / "adf"
JOBS_DIR = REPO / "jobs"

# activity "type" -> the concrete model class it must resolve to
ACTIVITY_CLASSES: dict[str, type] = {
    "DatabricksSparkPython": adf.DatabricksSparkPythonActivity,
    "WebActivity": adf.WebActivity,
    "Fail": adf.FailActivity,
    "ExecutePipeline": adf.ExecutePipelineActivity,
}
LINKED_SERVICE_CLASSES: dict[str, type] = {"AzureDatabricks": adf.AzureDatabricksLinkedService}
TRIGGER_CLASSES: dict[str, type] = {"ScheduleTrigger": adf.ScheduleTrigger}
DEPENDENCY_CONDITIONS = {"Succeeded", "Failed", "Skipped", "Completed"}

PARAM_REF = re.compile(r"pipeline\(\)\.parameters\.([A-Za-z_][A-Za-z0-9_]*)")
LS_PARAM_REF = re.compile(r"linkedService\(\)\.([A-Za-z_][A-Za-z0-9_]*)")
ACTIVITY_REF = re.compile(r"activity\('([^']+)'\)")
INTERPOLATION = re.compile(r"@\{([^}]*)\}")
WHOLE_PARAM = re.compile(r"^@pipeline\(\)\.parameters\.([A-Za-z_][A-Za-z0-9_]*)$")
ISO_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z?$")


def definition_files(kind: str) -> list[Path]:
    """Return the JSON files of one kind (``linkedService``, ``pipeline``, ``trigger``)."""
    return sorted((ADF_ROOT / kind).glob("*.json"))


def load_json(path: Path) -> dict[str, Any]:
    """Read one definition file."""
    return json.loads(path.read_text(encoding="utf-8"))


def strings_in(value: Any) -> Iterator[str]:
    """Yield every string inside a JSON value."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from strings_in(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings_in(item)


# --- generic model checks -----------------------------------------------------------------

def missing_required(model: Any, where: str) -> list[str]:
    """Walk ``model`` and its sub-models; report required fields that are None and broken limits."""
    problems: list[str] = []
    if not hasattr(model, "_validation"):
        return problems
    for attr, rules in model._validation.items():
        value = getattr(model, attr, None)
        if rules.get("readonly"):
            continue
        if rules.get("required") and value is None:
            problems.append(f"{where}: required field {attr!r} is missing")
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if "minimum" in rules and value < rules["minimum"]:
                problems.append(f"{where}: {attr}={value} is below the minimum {rules['minimum']}")
            if "maximum" in rules and value > rules["maximum"]:
                problems.append(f"{where}: {attr}={value} is above the maximum {rules['maximum']}")
    for attr in model._attribute_map:
        value = getattr(model, attr, None)
        children = value if isinstance(value, list) else list(value.values()) if isinstance(value, dict) else [value]
        for i, child in enumerate(children):
            if hasattr(child, "_attribute_map"):
                label = f"{where}.{attr}" + (f"[{i}]" if len(children) > 1 or isinstance(value, list) else "")
                problems += missing_required(child, label)
    return problems


def unknown_properties(model: Any, where: str) -> list[str]:
    """Report keys that no model attribute claimed (``additional_properties``), at any depth."""
    problems: list[str] = []
    if not hasattr(model, "_attribute_map"):
        return problems
    extra = getattr(model, "additional_properties", None)
    if extra:
        problems.append(f"{where}: unknown key(s) {sorted(extra)}")
    for attr in model._attribute_map:
        if attr == "additional_properties":
            continue
        value = getattr(model, attr, None)
        children = value if isinstance(value, list) else list(value.values()) if isinstance(value, dict) else [value]
        for child in children:
            problems += unknown_properties(child, f"{where}.{attr}")
    return problems


def _normalise(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _normalise(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_normalise(v) for v in value]
    if isinstance(value, str) and ISO_DATETIME.match(value):
        return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    return value


def round_trip_differences(model: Any, raw: dict[str, Any], where: str) -> list[str]:
    """Serialise the model back to REST JSON; anything dropped or renamed shows up as a difference.

    Catches misspelled or wrongly cased keys inside ``typeProperties`` that ``from_dict``
    silently ignores (or matches case-insensitively).
    """
    back = _normalise(model.serialize(keep_readonly=True))
    original = _normalise(raw)
    if back == original:
        return []
    return [f"{where}: the definition does not survive a round trip through the models: "
            f"{_first_difference(original, back)}"]


def _first_difference(a: Any, b: Any, path: str = "") -> str:
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b)):
            if key not in b:
                return f"{path}/{key} is not understood (dropped)"
            if key not in a:
                return f"{path}/{key} appears only after the round trip"
            if a[key] != b[key]:
                return _first_difference(a[key], b[key], f"{path}/{key}")
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b)):
            if x != y:
                return _first_difference(x, y, f"{path}[{i}]")
    return f"{path}: {a!r} != {b!r}"


def resolved_class_problems(model: Any, expected: dict[str, type], where: str) -> list[str]:
    """Report a model whose ``type`` is unexpected or resolved to a base class."""
    kind = getattr(model, "type", None)
    if kind not in expected:
        return [f"{where}: type {kind!r} is not one of {sorted(expected)} "
                f"(resolved to {type(model).__name__})"]
    if type(model) is not expected[kind]:
        return [f"{where}: type {kind!r} resolved to {type(model).__name__}, expected {expected[kind].__name__}"]
    return []


# --- loading --------------------------------------------------------------------------------

def load_linked_service(raw: dict[str, Any]) -> tuple[Any, list[str]]:
    """Deserialise a linked service and check it; return (model, problems)."""
    where = f"linked service {raw.get('name')!r}"
    model = adf.LinkedServiceResource.from_dict(raw)
    problems = resolved_class_problems(model.properties, LINKED_SERVICE_CLASSES, where) if model.properties else []
    problems += missing_required(model, where) + unknown_properties(model, where)
    problems += round_trip_differences(model, raw, where)
    declared = set((model.properties.parameters or {}) if model.properties else {})
    for text in strings_in(raw.get("properties", {})):
        for name in LS_PARAM_REF.findall(text):
            if name not in declared:
                problems.append(f"{where}: expression uses undeclared parameter {name!r}")
    return model, problems


def load_pipeline(raw: dict[str, Any]) -> tuple[Any, list[str]]:
    """Deserialise a pipeline and run the structural checks; return (model, problems)."""
    where = f"pipeline {raw.get('name')!r}"
    model = adf.PipelineResource.from_dict(raw)
    problems = missing_required(model, where) + unknown_properties(model, where)
    problems += round_trip_differences(model, raw, where)
    activities = model.activities or []
    if not activities:
        problems.append(f"{where}: no activities")
    for activity in activities:
        problems += resolved_class_problems(activity, ACTIVITY_CLASSES, f"{where} activity {activity.name!r}")
    problems += dependency_problems(model, where)
    problems += expression_problems(model, raw, where)
    return model, problems


def dependency_problems(model: Any, where: str) -> list[str]:
    """dependsOn names must exist, conditions must be valid, and the graph must have no cycle."""
    problems: list[str] = []
    names = [a.name for a in model.activities or []]
    if len(names) != len(set(names)):
        problems.append(f"{where}: duplicate activity names {sorted(n for n in names if names.count(n) > 1)}")
    for activity in model.activities or []:
        for dep in activity.depends_on or []:
            if dep.activity not in names:
                problems.append(f"{where}: {activity.name!r} depends on unknown activity {dep.activity!r}")
            if dep.activity == activity.name:
                problems.append(f"{where}: {activity.name!r} depends on itself")
            bad = set(dep.dependency_conditions or []) - DEPENDENCY_CONDITIONS
            if bad or not dep.dependency_conditions:
                problems.append(f"{where}: {activity.name!r} has invalid dependency conditions "
                                f"{dep.dependency_conditions!r}")
    graph = upstream_graph(model)
    for name in graph:
        if name in ancestors(graph, name):
            problems.append(f"{where}: dependency cycle through {name!r}")
            break
    return problems


def upstream_graph(model: Any) -> dict[str, dict[str, list[str]]]:
    """Return activity -> {upstream activity: conditions}."""
    return {a.name: {d.activity: list(d.dependency_conditions or []) for d in a.depends_on or []}
            for a in model.activities or []}


def ancestors(graph: dict[str, dict[str, list[str]]], name: str) -> set[str]:
    """Every activity ``name`` depends on, directly or not."""
    seen: set[str] = set()
    stack = list(graph.get(name, {}))
    while stack:
        current = stack.pop()
        if current in seen:
            continue
        seen.add(current)
        stack.extend(graph.get(current, {}))
    return seen


def expression_problems(model: Any, raw: dict[str, Any], where: str) -> list[str]:
    """Parameters used in expressions are declared; activity('X') names an upstream activity."""
    problems: list[str] = []
    declared = set(model.parameters or {})
    graph = upstream_graph(model)
    for activity_raw in raw.get("properties", {}).get("activities", []):
        name = activity_raw.get("name")
        for text in strings_in(activity_raw):
            for param in PARAM_REF.findall(text):
                if param not in declared:
                    problems.append(f"{where} activity {name!r}: expression uses undeclared parameter {param!r}")
            for ref in ACTIVITY_REF.findall(text):
                if ref not in graph:
                    problems.append(f"{where} activity {name!r}: expression refers to unknown activity {ref!r}")
                elif ref not in ancestors(graph, name):
                    problems.append(f"{where} activity {name!r}: expression refers to {ref!r}, "
                                    "which is not upstream of it")
    return problems


def failure_path_problems(model: Any, where: str) -> list[str]:
    """Every Databricks activity has an activity on its Failed branch and a Fail activity after it."""
    problems: list[str] = []
    graph = upstream_graph(model)
    kinds = {a.name: a for a in model.activities or []}
    for activity in model.activities or []:
        if not isinstance(activity, adf.DatabricksSparkPythonActivity):
            continue
        on_failure = [n for n, ups in graph.items() if "Failed" in ups.get(activity.name, [])]
        if not on_failure:
            problems.append(f"{where}: no activity runs when {activity.name!r} fails")
            continue
        fails = [n for n, a in kinds.items() if isinstance(a, adf.FailActivity)
                 and (n in on_failure or set(on_failure) & ancestors(graph, n))]
        if not fails:
            problems.append(f"{where}: the failure path of {activity.name!r} never reaches a Fail activity "
                            "(the run would end as succeeded)")
    return problems


# --- jobs and their arguments -------------------------------------------------------------

def sample_values(parameters: dict[str, Any]) -> dict[str, str]:
    """A plausible string value for each pipeline parameter (its default, or one by type)."""
    samples = {}
    for name, spec in (parameters or {}).items():
        if spec.default_value is not None:
            samples[name] = str(spec.default_value)
        else:
            samples[name] = {"Int": "3", "Float": "0.5", "Bool": "true"}.get(spec.type, f"sample-{name}")
    return samples


def substitute(value: str, samples: dict[str, str]) -> str:
    """Replace pipeline expressions in an argument by sample values, as Data Factory would."""
    whole = WHOLE_PARAM.match(value)
    if whole:
        return samples.get(whole.group(1), "sample")

    def one(match: re.Match[str]) -> str:
        inner = match.group(1).strip()
        ref = re.fullmatch(r"pipeline\(\)\.parameters\.([A-Za-z_][A-Za-z0-9_]*)", inner)
        return samples.get(ref.group(1), "sample") if ref else "sample"

    if value.startswith("@") and not value.startswith("@{") and not value.startswith("@@"):
        return "sample"
    return INTERPOLATION.sub(one, value)


def job_stem(python_file: str) -> str:
    """``@{pipeline().parameters.jobsRoot}/monitor.py`` -> ``monitor``."""
    return python_file.rsplit("/", 1)[-1].removesuffix(".py")


def parse_job_arguments(stem: str, argv: list[str]) -> tuple[argparse.Namespace | None, str]:
    """Parse ``argv`` with ``jobs.<stem>.build_parser()``; return (namespace, argparse's complaint)."""
    parser = importlib.import_module(f"jobs.{stem}").build_parser()
    stderr = io.StringIO()
    try:
        with contextlib.redirect_stderr(stderr):
            return parser.parse_args(argv), ""
    except SystemExit:
        return None, stderr.getvalue().strip().splitlines()[-1] if stderr.getvalue().strip() else "rejected"


def job_activity_problems(model: Any, where: str, linked_services: dict[str, Any]) -> list[str]:
    """Each Databricks activity names a job file in jobs/ and passes only arguments its parser accepts."""
    problems: list[str] = []
    samples = sample_values(model.parameters)
    for activity in model.activities or []:
        if not isinstance(activity, adf.DatabricksSparkPythonActivity):
            continue
        here = f"{where} activity {activity.name!r}"
        ref = activity.linked_service_name
        if ref is None or ref.reference_name not in linked_services:
            problems.append(f"{here}: linked service {getattr(ref, 'reference_name', None)!r} is not defined")
        elif not isinstance(linked_services[ref.reference_name].properties, adf.AzureDatabricksLinkedService):
            problems.append(f"{here}: linked service {ref.reference_name!r} is not an Azure Databricks one")
        if not isinstance(activity.python_file, str) or not activity.python_file.endswith(".py"):
            problems.append(f"{here}: pythonFile {activity.python_file!r} is not a .py file")
            continue
        stem = job_stem(activity.python_file)
        if not (JOBS_DIR / f"{stem}.py").is_file():
            problems.append(f"{here}: job file jobs/{stem}.py does not exist")
            continue
        arguments = activity.parameters or []
        not_strings = [a for a in arguments if not isinstance(a, str)]
        if not_strings:
            problems.append(f"{here}: Databricks parameters must be strings, got {not_strings!r}")
            continue
        _, complaint = parse_job_arguments(stem, [substitute(a, samples) for a in arguments])
        if complaint:
            problems.append(f"{here}: jobs/{stem}.py rejects the arguments {arguments!r}: {complaint}")
        if not any("whl" in lib for lib in activity.libraries or []):
            problems.append(f"{here}: no featurelake wheel in the activity's libraries")
    return problems


def reference_problems(pipelines: dict[str, Any], caller: str, ref: Any, passed: dict[str, Any] | None) -> list[str]:
    """A pipeline reference names a defined pipeline, passes declared parameters and all required ones."""
    name = ref.reference_name
    if name not in pipelines:
        return [f"{caller}: refers to undefined pipeline {name!r}"]
    declared = pipelines[name].parameters or {}
    passed = passed or {}
    problems = [f"{caller}: passes parameter {p!r} that pipeline {name!r} does not declare"
                for p in passed if p not in declared]
    problems += [f"{caller}: does not pass required parameter {p!r} of pipeline {name!r}"
                 for p, spec in declared.items() if spec.default_value is None and p not in passed]
    return problems


def execute_pipeline_problems(model: Any, where: str, pipelines: dict[str, Any]) -> list[str]:
    """Check every ExecutePipeline activity of ``model`` against the pipelines it runs."""
    problems: list[str] = []
    for activity in model.activities or []:
        if isinstance(activity, adf.ExecutePipelineActivity):
            problems += reference_problems(pipelines, f"{where} activity {activity.name!r}",
                                           activity.pipeline, activity.parameters)
    return problems


def load_trigger(raw: dict[str, Any], pipelines: dict[str, Any]) -> tuple[Any, list[str]]:
    """Deserialise a trigger and check the pipelines it starts; return (model, problems)."""
    where = f"trigger {raw.get('name')!r}"
    model = adf.TriggerResource.from_dict(raw)
    problems = resolved_class_problems(model.properties, TRIGGER_CLASSES, where) if model.properties else []
    problems += missing_required(model, where) + unknown_properties(model, where)
    problems += round_trip_differences(model, raw, where)
    for i, item in enumerate(getattr(model.properties, "pipelines", None) or []):
        problems += reference_problems(pipelines, f"{where} pipelines[{i}]", item.pipeline_reference, item.parameters)
    return model, problems
