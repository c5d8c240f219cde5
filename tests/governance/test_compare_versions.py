"""Comparing versions side by side on real logged models (MLflow on SQLite): params, metrics, the
signature's columns, types and required flags, and the training-set spec; differences marked."""

from __future__ import annotations

import json

import pytest
from governance_support import logged_version, make_project

from featurestore.core.errors import BadInputError, NotFoundError
from inference.governance.compare import compare_versions, format_comparison
from jobs import models as models_job


@pytest.fixture(scope="module")
def compared(tmp_path_factory):
    """A project with two versions of 'scorer': v2 has another C, a third input column, a newer table version."""
    root = tmp_path_factory.mktemp("compare")
    config = make_project(root)
    logged_version(config, "scorer", c=1.0, columns=("a", "b"), delta_version=0, roc_auc=0.8)
    logged_version(config, "scorer", c=0.1, columns=("a", "b", "c"), delta_version=3, roc_auc=0.85)
    return config, root


def _rows(comparison) -> dict[tuple[str, str], tuple[list, bool]]:
    return {(r.section, r.key): (r.values, r.differs) for r in comparison.rows}


def test_compare_marks_what_differs_between_two_versions(compared):
    config, _ = compared
    comparison = compare_versions(config, "scorer", [1, 2])
    rows = _rows(comparison)
    assert comparison.versions == ["1", "2"] and comparison.stages == ["None", "None"]
    assert rows[("params", "C")] == (["1.0", "0.1"], True)
    assert rows[("params", "n_features")] == (["2", "3"], True)
    assert rows[("metrics", "roc_auc")] == ([0.8, 0.85], True)
    assert rows[("inputs", "a")] == (["double, required", "double, required"], False)
    assert rows[("inputs", "c")] == ([None, "double, required"], True)
    assert rows[("outputs", "[0]")][1] is False
    assert rows[("training set", "label")] == (["churned", "churned"], False)
    assert rows[("training set", "profile Delta version")] == (["0", "3"], True)
    assert rows[("training set", "feature columns")] == (["a, b", "a, b, c"], True)
    assert {(r.section, r.key) for r in comparison.differences} == {
        ("params", "C"), ("params", "n_features"), ("metrics", "roc_auc"), ("inputs", "c"),
        ("training set", "profile Delta version"), ("training set", "feature columns"),
        ("training set", "profile features")}
    text = format_comparison(comparison).splitlines()
    assert text[0].split() == ["section", "key", "v1", "(None)", "v2", "(None)"]
    marked = {line.split()[2] for line in text[1:] if line.startswith("*")}
    assert {"C", "roc_auc", "c", "n_features"} <= marked and "a" not in marked


def test_compare_refuses_bad_version_lists(compared):
    config, _ = compared
    with pytest.raises(BadInputError, match="version\\(s\\) 1 named more than once"):
        compare_versions(config, "scorer", [1, 1])
    with pytest.raises(NotFoundError, match="model 'scorer' has no version 7"):
        compare_versions(config, "scorer", [1, 7])


def test_compare_command_prints_json_and_maps_errors_to_exit_codes(compared, capsys):
    _, root = compared
    from featurestore.core.config import write_config

    config, _ = compared
    path = write_config(config, root / "featurelake.yaml")
    assert models_job.main(["--config", str(path), "compare", "scorer", "2", "1", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["versions"] == ["2", "1"]
    c_row = next(r for r in data["rows"] if r["key"] == "C")
    assert c_row == {"section": "params", "key": "C", "values": ["0.1", "1.0"], "differs": True}
    assert models_job.main(["--config", str(path), "compare", "scorer", "1"]) == 2
    assert models_job.main(["--config", str(path), "compare", "scorer", "1", "9"]) == 3
    assert models_job.main(["--config", str(path), "compare", "nope", "1", "2"]) == 3
