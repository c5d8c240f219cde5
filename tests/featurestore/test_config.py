"""Configuration loading: defaults, YAML, environment overrides, refusal of bad values."""

import pytest

from featurestore.core.config import load_config
from featurestore.core.errors import BadInputError


def test_defaults_need_nothing_installed(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("FEATURELAKE_CONFIG", raising=False)
    config = load_config(env={})
    assert config.spark.master == "local[*]"
    assert config.warehouse == str(tmp_path / "warehouse")
    assert config.mlflow.tracking_uri == f"sqlite:///{tmp_path / 'mlflow.db'}"


def test_relative_paths_resolve_against_the_config_file(tmp_path):
    path = tmp_path / "conf" / "featurelake.yaml"
    path.parent.mkdir()
    path.write_text("warehouse: wh\nfeast:\n  repo_path: repo\nmlflow:\n  tracking_uri: sqlite:///m.db\n")
    config = load_config(path, env={})
    assert config.warehouse == str(tmp_path / "conf" / "wh")
    assert config.feast.repo_path == str(tmp_path / "conf" / "repo")
    assert config.mlflow.tracking_uri == f"sqlite:///{tmp_path / 'conf' / 'm.db'}"


def test_environment_overrides_every_scalar(tmp_path):
    path = tmp_path / "featurelake.yaml"
    path.write_text("spark:\n  master: local[1]\n")
    config = load_config(path, env={
        "FEATURELAKE_SPARK_MASTER": "spark://host:7077",
        "FEATURELAKE_MLFLOW_TRACKING_URI": "http://127.0.0.1:5000",
        "FEATURELAKE_WAREHOUSE": "/data/wh",
    })
    assert config.spark.master == "spark://host:7077"
    assert config.mlflow.tracking_uri == "http://127.0.0.1:5000"
    assert config.warehouse == "/data/wh"


def test_a_bad_value_from_the_environment_is_refused_like_one_from_the_file(tmp_path):
    path = tmp_path / "featurelake.yaml"
    path.write_text("spark:\n  quick_start: always\n")
    assert load_config(path, env={"FEATURELAKE_SPARK_QUICK_START": "never"}).spark.quick_start == "never"
    with pytest.raises(BadInputError, match="spark.quick_start must be one of auto, always, never, not 'bogus'"):
        load_config(path, env={"FEATURELAKE_SPARK_QUICK_START": "bogus"})


@pytest.mark.parametrize("text, message", [
    ("warehose: x\n", "warehose"),
    ("spark:\n  mastr: local\n", "mastr"),
    ("spark:\n  master: 3\n", "spark.master"),
    ("spark: [1, 2]\n", "spark"),
    ("- a\n- b\n", "mapping"),
    ("spark: {master: [unclosed\n", "not valid YAML"),
    ("warehouse: !!python/object/apply:os.system ['true']\n", "not valid YAML"),
])
def test_bad_configuration_is_refused(tmp_path, text, message):
    path = tmp_path / "featurelake.yaml"
    path.write_text(text)
    with pytest.raises(BadInputError, match=message):
        load_config(path, env={})


def test_missing_config_file_is_named(tmp_path):
    with pytest.raises(BadInputError, match="nope.yaml"):
        load_config(tmp_path / "nope.yaml", env={})


def test_a_yaml_syntax_error_is_one_line_with_file_line_column_and_what_was_expected(tmp_path):
    path = tmp_path / "featurelake.yaml"
    path.write_text("warehouse: wh\nspark:\n  master: [local\n  app_name: x\n")
    with pytest.raises(BadInputError) as raised:
        load_config(path, env={})
    assert str(raised.value) == (
        f"configuration file {path} is not valid YAML: line 4, column 11: expected ',' or ']', but got ':' "
        "(while parsing a flow sequence started at line 3, column 11)")


def test_a_job_reports_a_yaml_syntax_error_on_one_line(tmp_path, capsys):
    import argparse

    from jobs.common import run_job

    path = tmp_path / "featurelake.yaml"
    path.write_text('warehouse: "wh\n')
    args = argparse.Namespace(config=str(path), log_level="INFO")
    assert run_job(lambda args, config: None, args) == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1
    assert lines[0].endswith(f"BadInputError: configuration file {path} is not valid YAML: line 2, column 1: "
                             "found unexpected end of stream (while scanning a quoted scalar started at line 1, "
                             "column 12)")
