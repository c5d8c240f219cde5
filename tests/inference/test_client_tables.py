"""FeatureStoreClient's table verbs: any DataFrame becomes a feature table through the build's own path.

Each test uses the public client on data it makes; bad input must be refused with the very
error ``featurelake build`` gives for the same rows, the table's Delta version unchanged.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

import pytest
from chispa import assert_df_equality

from featurestore import FeatureLookup, FeatureStoreClient
from featurestore.build import build_tables
from featurestore.catalog import read_definition
from featurestore.core.config import write_config
from featurestore.core.errors import BadInputError, ConflictError, NotFoundError
from featurestore.feast_repo import feature_store
from tests.conftest import make_config

T0 = datetime(2026, 3, 1)
SCHEMA = "user_id bigint, ts timestamp, clicks bigint, spend double"
ROWS = [(1, T0, 3, 1.5), (2, T0, 0, 0.0), (1, T0 + timedelta(hours=1), 5, 2.5)]


@pytest.fixture
def fs(spark, tmp_path) -> FeatureStoreClient:
    return FeatureStoreClient(make_config(tmp_path), spark=spark)


def _create(fs: FeatureStoreClient, name: str = "user_activity"):
    df = fs.spark.createDataFrame(ROWS, SCHEMA)
    return fs.create_table(name, ["user_id"], "ts", df=df, descriptions={"user_id": "User", "spend": "Spend in the hour"},
                           description="Hourly user activity", owner="growth@example.com", tags={"team": "growth"},
                           ttl=timedelta(days=2))


def test_the_client_adopts_the_active_session_and_reads_the_configuration_file(spark, tmp_path, monkeypatch):
    config = make_config(tmp_path)
    path = write_config(config, tmp_path / "elsewhere.yaml")
    monkeypatch.setenv("FEATURELAKE_CONFIG", str(path))
    fs = FeatureStoreClient()
    assert fs.spark is spark
    assert fs.config.warehouse == config.warehouse
    monkeypatch.delenv("FEATURELAKE_CONFIG")
    monkeypatch.chdir(tmp_path)  # no featurelake.yaml here: the embedded defaults, under this folder
    assert FeatureStoreClient().config.warehouse == str(tmp_path / "warehouse")
    assert FeatureStoreClient(str(path)).config.feast.repo_path == config.feast.repo_path


def test_create_write_read_describe_tag_and_drop(spark, fs):
    info = _create(fs)
    assert (info.name, info.primary_keys, info.timestamp_key, info.delta_version) == ("user_activity", ["user_id"], "ts", 0)
    assert [(f.name, f.type, f.description) for f in info.features] == [("clicks", "bigint", ""),
                                                                       ("spend", "double", "Spend in the hour")]
    assert (info.owner, info.tags, info.ttl_seconds) == ("growth@example.com", {"team": "growth"}, 2 * 86400)
    assert [t.name for t in fs.list_tables()] == ["user_activity"]
    view = feature_store(fs.config).get_feature_view("user_activity")  # registered in Feast, as a build does
    assert (view.entities, [f.name for f in view.features], view.ttl) == (["user_id"], ["clicks", "spend"],
                                                                          timedelta(days=2))

    merged = fs.write_table("user_activity", spark.createDataFrame([(1, T0, 4, 1.5), (3, T0, 1, 9.0)], SCHEMA))
    assert (merged.rows_inserted, merged.rows_updated, merged.version_before, merged.version_after) == (1, 1, 0, 1)
    expected = spark.createDataFrame([(1, T0, 4, 1.5), (2, T0, 0, 0.0), (1, T0 + timedelta(hours=1), 5, 2.5),
                                      (3, T0, 1, 9.0)], SCHEMA)
    assert_df_equality(fs.read_table("user_activity"), expected, ignore_row_order=True, ignore_nullable=True,
                       ignore_metadata=True)
    assert_df_equality(fs.read_table("user_activity", as_of_version=0), spark.createDataFrame(ROWS, SCHEMA),
                       ignore_row_order=True, ignore_nullable=True, ignore_metadata=True)

    replaced = fs.write_table("user_activity", spark.createDataFrame([(9, T0, 1, 1.0)], SCHEMA), mode="overwrite")
    assert (replaced.rows_inserted, replaced.version_after) == (1, 2)
    assert [r.user_id for r in fs.read_table("user_activity").collect()] == [9]
    after = fs.get_table("user_activity")  # an overwrite keeps the metadata
    assert (after.description, after.features[1].description, after.delta_version) == (
        "Hourly user activity", "Spend in the hour", 2)

    fs.set_table_tag("user_activity", "tier", "gold")
    fs.delete_table_tag("user_activity", "team")
    assert fs.get_table("user_activity").tags == {"tier": "gold"}
    tags = feature_store(fs.config).get_feature_view("user_activity").tags
    assert tags["tier"] == "gold" and "team" not in tags

    fs.drop_table("user_activity")
    assert fs.list_tables() == []
    assert [v.name for v in feature_store(fs.config).list_feature_views()] == []
    with pytest.raises(NotFoundError, match="feature table 'user_activity' not found"):
        fs.read_table("user_activity")
    assert _create(fs).delta_version == 0  # the name can be used again


def test_create_from_a_schema_and_existing_tables_are_refused(spark, fs):
    info = fs.create_table("empty_activity", "user_id", "ts", schema=SCHEMA)
    assert info.delta_version == 0 and fs.read_table("empty_activity").count() == 0
    with pytest.raises(ConflictError, match="feature table 'empty_activity' already exists"):
        fs.create_table("empty_activity", "user_id", "ts", schema=SCHEMA)
    with pytest.raises(BadInputError, match="timestamp key 'day' is date"):
        fs.create_table("daily", "user_id", "day", schema="user_id bigint, day date, x double")
    with pytest.raises(NotFoundError, match="feature table 'missing' not found"):
        fs.write_table("missing", spark.createDataFrame(ROWS, SCHEMA))
    with pytest.raises(NotFoundError, match="has no version 7"):
        fs.read_table("empty_activity", as_of_version=7)


BAD_INPUTS = {
    "null key": ([(None, T0, 1, 1.0)], SCHEMA, "null values in key column(s) 'user_id'"),
    "duplicate key and timestamp": ([(1, T0, 1, 1.0), (1, T0, 2, 2.0)], SCHEMA, "duplicate rows for the same key"),
    "wrong type": ([(1, T0, 1, "1.0")], "user_id bigint, ts timestamp, clicks bigint, spend string",
                   "'spend' is string, declared double"),
    "undeclared column": ([(1, T0, 1, 1.0, 2.0)], SCHEMA + ", extra double", "'extra' are not declared"),
    "hostile column name": ([(1, T0, 1, 1.0, 2.0)], SCHEMA + ", `x``; DROP TABLE t` double", "are not declared"),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_rows_are_refused_with_the_build_error_and_the_table_unchanged(spark, fs, case):
    rows, schema, message = BAD_INPUTS[case]
    _create(fs)
    bad = spark.createDataFrame(rows, schema)
    with pytest.raises(BadInputError) as by_client:
        fs.write_table("user_activity", bad)
    assert message in str(by_client.value)
    definition = read_definition(spark, fs.config, "user_activity")
    with pytest.raises(BadInputError) as by_build:  # featurelake build, its transformation giving the same rows
        build_tables(spark, fs.config, [replace(definition, transform=lambda _spark, _inputs: bad)])
    assert str(by_client.value) == str(by_build.value)
    assert fs.get_table("user_activity").delta_version == 0
    assert_df_equality(fs.read_table("user_activity"), spark.createDataFrame(ROWS, SCHEMA), ignore_row_order=True,
                       ignore_nullable=True, ignore_metadata=True)


def test_hostile_table_names_are_refused_as_the_build_refuses_them(spark, fs):
    df = spark.createDataFrame(ROWS, SCHEMA)
    for verb in (lambda n: fs.write_table(n, df), lambda n: fs.create_table(n, "user_id", "ts", df=df),
                 fs.read_table, fs.get_table, fs.drop_table):
        with pytest.raises(BadInputError, match="invalid table name 'x; DROP TABLE y'"):
            verb("x; DROP TABLE y")
    assert fs.list_tables() == []


def test_training_set_from_the_client(spark, fs):
    _create(fs)
    labels = spark.createDataFrame([(1, T0 + timedelta(minutes=30), 1), (2, T0 + timedelta(hours=2), 0),
                                    (5, T0, 1)], "user_id bigint, label_time timestamp, churned int")
    ts = fs.create_training_set(labels, [FeatureLookup("user_activity", ["spend"], timestamp_lookup_key="label_time")],
                                label="churned", exclude_columns=["label_time"])
    rows = {r.user_id: (r.spend, r.churned) for r in ts.load_df().collect()}
    assert rows == {1: (1.5, 1), 2: (0.0, 0), 5: (None, 1)}  # user 1 at 00:30 sees the 00:00 row, not 01:00's
    assert (ts.spec.label, ts.spec.feature_columns, ts.spec.entity_keys) == ("churned", ["spend"], ["user_id"])


def test_drop_is_refused_while_a_production_model_reads_the_table(spark, fs, tmp_path):
    from sklearn.linear_model import LogisticRegression

    from inference import registry
    from inference.tracking import client as mlflow_client
    from jobs.tables import main as tables_main
    from tests.inference.inference_support import log_model, training_frame

    _create(fs)
    X, y = training_frame(seed=1)
    spec = {"label": "churned", "timestamp_key": None, "entity_keys": ["user_id"], "feature_columns": ["spend"],
            "lookups": [{"table": "user_activity", "features": ["spend"], "lookup_keys": ["user_id"]}]}
    mlflow_client(fs.config).create_registered_model("spend_model")
    _, version = log_model(fs.config, "spend_model", LogisticRegression().fit(X, y), X, spec=spec)
    registry.transition(fs.config, "spend_model", version, "Production")
    config_path = write_config(fs.config, tmp_path / "featurelake.yaml")

    with pytest.raises(ConflictError, match=r"spend_model version 1 \(Production\) looks features up in it"):
        fs.drop_table("user_activity")
    assert tables_main(["--config", str(config_path), "drop", "user_activity"]) == 4  # the CLI twin: conflict
    assert fs.get_table("user_activity").delta_version == 0

    registry.transition(fs.config, "spend_model", version, "Archived")
    assert tables_main(["--config", str(config_path), "drop", "user_activity"]) == 0
    assert fs.list_tables() == []
