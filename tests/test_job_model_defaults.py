"""Which model a job works on without a model option: the configured training.model_name, never the demo's.

No Spark: the model is resolved from the arguments and the configuration before a session starts.
"""

from __future__ import annotations

import pytest

from featurestore.core.config import Config, load_config
from inference.settings import TRAINING, configured_model_name
from featurestore.core.errors import BadInputError
from jobs import batch_inference, monitor, promote, train


def _config_file(tmp_path, training: str = "") -> str:
    path = tmp_path / "featurelake.yaml"
    path.write_text(f"warehouse: wh\n{training}")
    return str(path)


def test_the_demo_names_are_not_library_defaults():
    training = TRAINING.of(Config())
    assert (training.model_name, training.label) == (None, None)


def test_the_option_wins_over_the_configured_model_name(tmp_path):
    config = load_config(_config_file(tmp_path, "training:\n  model_name: price_model\n"), env={})
    assert configured_model_name(config, None) == "price_model"
    assert configured_model_name(config, "other_model") == "other_model"
    with pytest.raises(BadInputError, match=r"^training.model_name is not set: pass --model-name or set it in the configuration$"):
        configured_model_name(Config(), None)


def test_predict_defaults_to_the_production_version_of_the_configured_model(tmp_path):
    config = load_config(_config_file(tmp_path, "training:\n  model_name: price_model\n"), env={})
    parser = batch_inference.build_parser()
    assert batch_inference.model_uri(parser.parse_args(["--input", "x"]), config) == "models:/price_model/Production"
    given = parser.parse_args(["--input", "x", "--model-uri", "models:/m@champion"])
    assert batch_inference.model_uri(given, config) == "models:/m@champion"


@pytest.mark.parametrize("job, argv, option", [
    (batch_inference, ["--input", "entities"], "--model-uri"),
    (train, [], "--model-name"),
    (promote, ["--version", "1"], "--model-name"),
    (monitor, ["--batch-id", "b1"], "--model-name"),
])
def test_no_model_option_and_none_configured_exits_2_before_spark_starts(tmp_path, capsys, monkeypatch, job, argv,
                                                                          option):
    def no_spark(*args, **kwargs):
        raise AssertionError("Spark started before the model was resolved")

    monkeypatch.setattr(job, "start_spark", no_spark)
    assert job.main(["--config", _config_file(tmp_path), *argv]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1
    assert lines[0].endswith(f"BadInputError: training.model_name is not set: pass {option} "
                             "or set it in the configuration")


def test_training_without_a_label_column_names_the_key(tmp_path):
    from inference.training import train_model

    config = load_config(_config_file(tmp_path, "training:\n  model_name: price_model\n"), env={})
    with pytest.raises(BadInputError, match="^training.label is not set"):
        train_model(None, config)  # refused before any Spark work: no session needed
