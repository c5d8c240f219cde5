"""Configuration loading: defaults, YAML, environment overrides, refusal of bad values."""

from dataclasses import dataclass, field

import pytest

from featurestore.core.config import Config, Section, load_config, write_config
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


# --- sections owned by a layer above the core ---------------------------------------------------

@dataclass
class ExampleSettings:
    """A section a layer above the core could own."""

    name: str | None = None
    retries: int = 3
    folder: str | None = None
    labels: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.retries < 0:
            raise BadInputError(f"example.retries must be >= 0, not {self.retries}")


EXAMPLE = Section("example", ExampleSettings, paths=("folder",))


def test_an_owners_section_is_parsed_with_the_cores_rules(tmp_path):
    path = tmp_path / "featurelake.yaml"
    path.write_text("example:\n  name: x\n  folder: data\n  labels: {a: 1}\n")
    config = load_config(path, env={"FEATURELAKE_EXAMPLE_RETRIES": "5"}, sections=[EXAMPLE])
    settings = EXAMPLE.of(config)
    assert settings == ExampleSettings(name="x", retries=5, folder=str(tmp_path / "data"), labels={"a": "1"})
    settings.name = "changed"
    assert EXAMPLE.of(config).name == "changed"  # one object per configuration


@pytest.mark.parametrize("text, env, message", [
    ("example:\n  nme: x\n", {}, "unknown configuration key\\(s\\) in section 'example': nme"),
    ("example:\n  retries: many\n", {}, "configuration example.retries: expected int"),
    ("example: [1]\n", {}, "configuration example: expected a mapping"),
    ("example:\n  retries: -1\n", {}, "example.retries must be >= 0"),
    ("example: {}\n", {"FEATURELAKE_EXAMPLE_RETRIES": "-2"}, "example.retries must be >= 0"),
    ("example: {}\n", {"FEATURELAKE_EXAMPLE_RETRIES": "x"}, "FEATURELAKE_EXAMPLE_RETRIES: expected int"),
    ("exampel: {}\n", {}, "unknown configuration key\\(s\\): exampel"),
])
def test_a_bad_section_is_refused_when_the_configuration_is_loaded(tmp_path, text, env, message):
    path = tmp_path / "featurelake.yaml"
    path.write_text(text)
    with pytest.raises(BadInputError, match=message):
        load_config(path, env=env, sections=[EXAMPLE])


def test_without_its_owner_a_section_is_kept_and_checked_when_first_read(tmp_path):
    path = tmp_path / "featurelake.yaml"
    path.write_text("example:\n  retries: many\n")
    config = load_config(path, env={})  # a caller that does not use the section
    with pytest.raises(BadInputError, match="configuration example.retries: expected int"):
        EXAMPLE.of(config)
    path.write_text("exampel: 3\n")  # not a section at all
    with pytest.raises(BadInputError, match="unknown configuration key\\(s\\): exampel"):
        load_config(path, env={})


def test_a_section_set_in_code_is_written_and_read_back(tmp_path):
    config = Config()
    EXAMPLE.of(config).name = "written"
    path = write_config(config, tmp_path / "featurelake.yaml")
    assert EXAMPLE.of(load_config(path, env={}, sections=[EXAMPLE])).name == "written"
    assert EXAMPLE.of(Config()).name is None  # defaults when the file has no such section
