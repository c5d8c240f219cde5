"""Train -> register -> promote on a temporary SQLite registry, gates, events, loading by stage and alias."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import numpy as np
import pandas as pd
import pytest
from pit_data import make_config
from pyspark.sql import types as T

from featurestore.delta_reader import DeltaReader
from featurestore.core.config import write_config
from featurestore.definitions import FeatureTable, Field
from featurestore.delta_tables import current_version, write_feature_table
from featurestore.core.errors import BadInputError, ConflictError, NotFoundError
from inference import registry
from inference.promotion import promote, read_events
from inference.model_reference import resolve_model
from inference.settings import PROMOTION, TRAINING
from inference.stages import check_stage
from inference.training import train_model
from featurestore.training_set import FeatureLookup, TrainingSetSpec
from inference.tracking import load_spec

MODEL = "test_churn"
TABLE = FeatureTable(
    name="tl_profile",
    primary_keys=[Field("customer_id", "bigint", "Customer")],
    timestamp_key="snapshot_time",
    features=[Field("score", "double", "Signal"), Field("visits", "bigint", "Visits, sometimes unknown"),
              Field("segment", "string", "Segment")],
    description="lifecycle test table",
)
N = 60


def _utc(day: int) -> datetime:
    return datetime(2026, 3, day, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def lifecycle(spark, tmp_path_factory):
    """A project with one tiny feature table and labels (parquet) that the score predicts."""
    root = tmp_path_factory.mktemp("lifecycle")
    config = make_config(root)
    rng = np.random.default_rng(3)
    score = rng.normal(size=N)
    rows = [(i + 1, _utc(1), float(score[i]), None if i % 7 == 0 else int(i % 5), "ab"[i % 2]) for i in range(N)]
    schema = T.StructType([T.StructField("customer_id", T.LongType(), False),
                           T.StructField("snapshot_time", T.TimestampType(), False),
                           T.StructField("score", T.DoubleType()), T.StructField("visits", T.LongType()),
                           T.StructField("segment", T.StringType())])
    write_feature_table(spark, TABLE, config.table_path(TABLE.name), spark.createDataFrame(rows, schema))
    churned = ((score + rng.normal(scale=0.7, size=N)) > 0).astype("int64")
    labels = pd.DataFrame({"customer_id": np.arange(1, N + 1, dtype="int64"),
                           "label_time": pd.Series([_utc(5)] * N).astype("datetime64[us, UTC]"),
                           "churned": churned})
    labels_path = root / "labels.parquet"
    labels.to_parquet(labels_path, index=False)
    training = TRAINING.of(config)
    training.model_name = MODEL
    training.labels_path = str(labels_path)
    training.label = "churned"
    training.lookups = []
    training.estimator_params = {"max_iter": "200"}
    return config


LOOKUPS = [FeatureLookup("tl_profile", timestamp_lookup_key="label_time")]


def _aliases(config) -> dict[str, str]:
    return {k: str(v) for k, v in registry.get_registered_model(config, MODEL).aliases.items()}


@pytest.mark.slow
def test_train_register_promote_cycle(spark, lifecycle, capfd):
    import mlflow
    from mlflow.tracking import MlflowClient

    config = lifecycle
    result = train_model(spark, config, lookups=LOOKUPS, source="tests/modeling/test_lifecycle.py")
    assert result.model_version == "1"
    printed = capfd.readouterr()  # the first train of a fresh registry: MLflow's expected lines are not shown
    assert "already exists" not in printed.err + printed.out and "Created version" not in printed.err + printed.out
    client = MlflowClient(config.mlflow.tracking_uri)
    run = client.get_run(result.run_id)
    assert run.data.params["estimator"] == "sklearn.linear_model.LogisticRegression"
    assert run.data.params["estimator.max_iter"] == "200"
    assert run.data.params["delta_version.tl_profile"] == str(current_version(spark, config.table_path("tl_profile")))
    for metric in ("roc_auc", "accuracy_score", "f1_score", "log_loss"):
        assert metric in run.data.metrics
    assert run.data.tags["featurelake.source"] == "tests/modeling/test_lifecycle.py"
    assert json.loads(run.data.tags["featurelake.training_set"])["feature_columns"] == ["score", "visits", "segment"]
    spec = load_spec(result.run_id)
    assert isinstance(spec, TrainingSetSpec) and spec == result.spec
    assert spec.lookups[0]["path"] == config.table_path("tl_profile") and spec.label == "churned"
    assert spec.entity_keys == ["customer_id"] and spec.timestamp_key == "label_time"

    info = mlflow.models.get_model_info("models:/test_churn/1")
    assert [c["name"] for c in info.signature.inputs.to_dict()] == ["score", "visits", "segment"]
    assert "sklearn" in info.flavors
    assert info.saved_input_example_info is not None
    shown = registry.show_version(config, MODEL, 1)
    assert shown.signature is not None and "roc_auc" in shown.description
    assert shown.tags["featurelake.run_id"] == result.run_id

    staging = promote(spark, config, MODEL, 1, "Staging")
    assert staging.promoted and registry.get_version(config, MODEL, 1).current_stage == "Staging"
    assert _aliases(config) == {"challenger": "1"}
    prod = promote(spark, config, MODEL, 1, "Production")
    assert prod.promoted and prod.incumbent_version is None
    assert _aliases(config) == {"champion": "1"}

    sample = pd.DataFrame({"score": [2.0, -2.0], "visits": [1.0, None], "segment": ["a", "zz"]})
    by_stage = mlflow.pyfunc.load_model("models:/test_churn/Production")
    by_alias = mlflow.pyfunc.load_model("models:/test_churn@champion")
    assert by_stage.metadata.run_id == by_alias.metadata.run_id == result.run_id
    assert list(by_stage.predict(sample)) == [1, 0]
    assert resolve_model(config, "models:/test_churn@champion").version == 1

    # a second version trained with another estimator from configuration
    TRAINING.of(config).estimator = "sklearn.ensemble.RandomForestClassifier"
    TRAINING.of(config).estimator_params = {"n_estimators": "5", "random_state": "0"}
    second = train_model(spark, config, lookups=LOOKUPS)
    assert second.model_version == "2"
    assert MlflowClient(config.mlflow.tracking_uri).get_run(second.run_id).data.params["estimator.n_estimators"] == "5"

    # gate fail: threshold -> Production stays version 1
    PROMOTION.of(config).thresholds = {"roc_auc": ">= 1.01"}
    rejected = promote(spark, config, MODEL, 2, "Production")
    assert not rejected.promoted and "roc_auc" in rejected.reason and ">= 1.01" in rejected.reason
    assert str(registry.production_version(config, MODEL).version) == "1"
    assert registry.get_version(config, MODEL, 2).current_stage == "None"

    # gate fail: must beat the incumbent by more than min_improvement
    PROMOTION.of(config).thresholds = {"roc_auc": ">= 0.5"}
    PROMOTION.of(config).min_improvement = 0.5
    beaten = promote(spark, config, MODEL, 2, "Production")
    assert not beaten.promoted and "does not beat Production version 1" in beaten.reason
    assert beaten.incumbent_version == 1 and beaten.incumbent_value == pytest.approx(result.metrics["roc_auc"])

    # gate pass against the incumbent: version 1 is archived, champion moves
    PROMOTION.of(config).min_improvement = -1.0
    passed = promote(spark, config, MODEL, 2, "Production")
    assert passed.promoted and passed.incumbent_version == 1
    assert registry.get_version(config, MODEL, 1).current_stage == "Archived"
    assert _aliases(config) == {"champion": "2"}

    events = read_events(DeltaReader(lambda: spark), config, MODEL)
    assert [(e.candidate_version, e.stage, e.decision) for e in reversed(events)] == [
        (1, "Staging", "promoted"), (1, "Production", "promoted"), (2, "Production", "rejected"),
        (2, "Production", "rejected"), (2, "Production", "promoted")]
    props = spark.sql(f"DESCRIBE DETAIL delta.`{config.table_path('promotion_events')}`").first()["properties"]
    assert props["featurelake.kind"] == "promotion_events"

    with pytest.raises(ConflictError, match="Production"):
        registry.delete_version(config, MODEL, 2)
    registry.delete_version(config, MODEL, 1)
    assert [v.version for v in registry.list_models(config, MODEL)[0].versions] == ["2"]

    # the CLI sees the same registry
    from jobs import models as models_job

    path = write_config(config, config.base_dir + "/featurelake.yaml")
    assert models_job.main(["--config", str(path), "tag", MODEL, "owner", "qa", "--version", "2"]) == 0
    assert registry.get_version(config, MODEL, 2).tags["owner"] == "qa"
    assert models_job.main(["--config", str(path), "delete-version", MODEL, "--version", "2"]) == 4


def test_bad_inputs_leave_registry_unchanged(spark, lifecycle, tmp_path):
    config = make_config(tmp_path)
    config.warehouse = lifecycle.warehouse
    config.sections["training"] = TRAINING.of(lifecycle)
    labels = spark.read.parquet(TRAINING.of(lifecycle).labels_path)
    with pytest.raises(BadInputError, match="customer_id"):
        train_model(spark, config, labels.drop("customer_id"), lookups=LOOKUPS)
    with pytest.raises(BadInputError, match="label_time"):
        train_model(spark, config, labels.drop("label_time"), lookups=LOOKUPS)
    with pytest.raises(NotFoundError, match="no_table"):
        train_model(spark, config, labels, lookups=[FeatureLookup("no_table", timestamp_lookup_key="label_time")])
    with pytest.raises(NotFoundError, match="nope"):
        train_model(spark, config, labels, lookups=[FeatureLookup("tl_profile", ["nope"], timestamp_lookup_key="label_time")])
    early = labels.withColumn("label_time", labels["label_time"] - pd.Timedelta(days=30).to_pytimedelta())
    TRAINING.of(config).drop_missing = True
    try:
        with pytest.raises(BadInputError, match="empty training set"):
            train_model(spark, config, early, lookups=LOOKUPS)
    finally:
        TRAINING.of(config).drop_missing = False
    with pytest.raises(NotFoundError, match="no_such_model"):
        promote(spark, config, "no_such_model", 1, "Production")
    assert registry.list_models(config) == []
    with pytest.raises(BadInputError, match="Staging or Production"):
        promote(spark, config, "no_such_model", 1, "Archived")
    with pytest.raises(BadInputError, match="Prod"):
        check_stage("Prod")


def test_registry_rules_without_training(spark, tmp_path):
    from mlflow.tracking import MlflowClient

    config = make_config(tmp_path)
    client = registry.mlflow_client(config)
    assert isinstance(client, MlflowClient)
    client.create_registered_model("bare_model")
    client.create_model_version("bare_model", source=str(tmp_path / "nowhere"))
    with pytest.raises(NotFoundError, match="99"):
        promote(spark, config, "bare_model", 99, "Staging")
    with pytest.raises(NotFoundError, match="Staging"):
        resolve_model(config, "models:/bare_model/Staging")
    with pytest.raises(NotFoundError, match="champion"):
        resolve_model(config, "models:/bare_model@champion")
    # no run, no metrics: the gate fails and says why; the registry is unchanged
    decision = promote(spark, config, "bare_model", 1, "Staging")
    assert decision.decision == "rejected" and "roc_auc" in decision.reason
    assert registry.get_version(config, "bare_model", 1).current_stage == "None"
    assert [r.decision for r in read_events(DeltaReader(lambda: spark), config, "bare_model")] == ["rejected"]
    # unconditional transitions and the delete rule
    registry.transition(config, "bare_model", 1, "Staging")
    with pytest.raises(ConflictError, match="Staging"):
        registry.delete_version(config, "bare_model", 1)
    registry.set_alias(config, "bare_model", "challenger", 1)
    assert resolve_model(config, "models:/bare_model@challenger").version == 1
    registry.set_description(config, "bare_model", "a bare model")
    registry.set_tag(config, "bare_model", "team", "qa")
    model = registry.list_models(config, "bare_model")[0]
    assert model.description == "a bare model" and model.tags["team"] == "qa"
    assert model.versions[0].stage == "Staging" and model.versions[0].aliases == ["challenger"]
    registry.transition(config, "bare_model", 1, "Archived")
    registry.delete_version(config, "bare_model", 1)
    assert registry.list_models(config, "bare_model")[0].versions == []


def test_models_tag_and_set_description_say_what_they_set(tmp_path, capsys):
    from jobs import models as models_job

    config = make_config(tmp_path)
    client = registry.mlflow_client(config)
    client.create_registered_model("told_model")
    client.create_model_version("told_model", source=str(tmp_path / "nowhere"))
    path = str(write_config(config, tmp_path / "featurelake.yaml"))

    assert models_job.main(["--config", path, "tag", "told_model", "team", "qa"]) == 0
    assert models_job.main(["--config", path, "tag", "told_model", "owner", "ana", "--version", "1"]) == 0
    assert models_job.main(["--config", path, "set-description", "told_model", "churn", "--version", "1"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "told_model: tag team=qa set", "told_model version 1: tag owner=ana set",
        "told_model version 1: description set"]
    assert registry.get_registered_model(config, "told_model").tags["team"] == "qa"
    assert registry.get_version(config, "told_model", 1).tags["owner"] == "ana"


def test_unreachable_tracking_uri_fails_fast(spark, lifecycle, tmp_path):
    from featurestore.core.errors import DependencyUnavailableError
    from jobs import models as models_job

    config = make_config(tmp_path)
    config.warehouse = lifecycle.warehouse
    config.mlflow.tracking_uri = "http://127.0.0.1:9"
    config.sections["training"] = TRAINING.of(lifecycle)
    with pytest.raises(DependencyUnavailableError, match="127.0.0.1:9"):
        train_model(spark, config, TRAINING.of(lifecycle).labels_path, lookups=LOOKUPS)
    with pytest.raises(DependencyUnavailableError):
        registry.list_models(config)
    path = write_config(config, tmp_path / "featurelake.yaml")
    assert models_job.main(["--config", str(path), "list"]) == 5
