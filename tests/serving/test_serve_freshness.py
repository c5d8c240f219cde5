"""Freshness: a materialize shows in the next answer, the server follows the alias, survives a lost store file."""

from __future__ import annotations

import math
import os
import time
from datetime import datetime, timedelta, timezone

import pytest
from serving_support import MODEL_URI, assert_one_line_error, make_serving_project, start_server

from featurestore.online import materialize
from inference import registry
from inference.batch import run_batch_inference
from inference.tracking import client as mlflow_client
from inference.serving_model import online_store_file
from inference.serving_records import read_records
from featurestore.feast_repo import feature_store
from jobs.demo.lifecycle import MODEL_NAME

pytestmark = pytest.mark.slow  # end to end: featurelake serve on loopback

CUSTOMER = 5
TABLE = "customer_weekly_spend"


@pytest.fixture(scope="module")
def fresh(spark, demo_project, tmp_path_factory):
    """A project of its own (these tests change it) and its server: 2 worker processes, each checking the
    alias every second."""
    config = make_serving_project(spark, demo_project, tmp_path_factory.mktemp("fresh"))
    server = start_server(config, tmp_path_factory.mktemp("fresh-log"), "--reload-interval", "1", "--workers", "2")
    yield config, server
    assert server.stop() == 0
    assert read_records(config) == []  # a stopped server takes its record away


def _answer(server) -> dict:
    response = server.score({"dataframe_records": [{"customer_id": CUSTOMER}]})
    assert response.status == 200, response.body
    return response.json()["predictions"][0]


def test_a_materialize_after_new_data_shows_in_the_next_answer(spark, fresh):
    config, server = fresh
    before = _answer(server)
    path = config.table_path(TABLE)
    schema = spark.read.format("delta").load(path).schema
    week_end = datetime.now(timezone.utc).replace(microsecond=0, tzinfo=None)  # after the last materialization
    spark.createDataFrame([(CUSTOMER, week_end, 95, 9500.0, 100.0, 0.1)], schema) \
        .write.format("delta").mode("append").save(path)
    results = materialize(spark, config, [TABLE], datetime.now(timezone.utc) + timedelta(seconds=1))
    assert results[0].incremental and results[0].rows_in_window == 1

    after = _answer(server)  # same process, no restart
    assert after["probability"] != before["probability"]
    entities = spark.createDataFrame([(CUSTOMER,)], "customer_id bigint")
    batch = run_batch_inference(spark, config, entities, MODEL_URI, output_table="fresh_predictions", batch_id="b1")
    expected = spark.read.format("delta").load(batch.output_path).first()
    assert math.isclose(after["probability"], expected["probability"], rel_tol=1e-12)
    assert after["prediction"] == expected["prediction"]


def test_the_server_follows_the_alias_within_the_reload_interval(fresh):
    config, server = fresh
    client = mlflow_client(config)
    first = client.get_model_version_by_alias(MODEL_NAME, "champion")
    second = client.create_model_version(MODEL_NAME, first.source, first.run_id)
    assert _answer(server)["model_version"] == int(first.version)
    registry.set_alias(config, MODEL_NAME, "champion", second.version)
    moved, in_a_row = time.monotonic(), 0
    while in_a_row < 20:  # both worker processes answer with the new version
        in_a_row = in_a_row + 1 if _answer(server)["model_version"] == int(second.version) else 0
        assert time.monotonic() - moved < 300, "the server did not move to the new version"
        time.sleep(0.1)
    response = server.score({"dataframe_records": [{"customer_id": CUSTOMER}]})
    assert response.headers["x-model-version"] == str(second.version)
    assert [(r.model_name, r.model_version, r.url) for r in read_records(config)] == \
        [(MODEL_NAME, int(second.version), server.url)]


def test_a_lost_online_store_file_is_a_503_line_and_serving_resumes_when_it_is_back(fresh):
    config, server = fresh
    store_file = online_store_file(feature_store(config))
    aside = store_file + ".aside"
    os.rename(store_file, aside)
    try:
        assert_one_line_error(server.score({"dataframe_records": [{"customer_id": CUSTOMER}]}), 503,
                              f"online store file {store_file} does not exist")
    finally:
        os.rename(aside, store_file)
    assert _answer(server)["customer_id"] == CUSTOMER
