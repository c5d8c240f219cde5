"""`featurelake serve`: MLflow's scoring protocol with keys only; bad requests are 4xx of one JSON line."""

from __future__ import annotations

import json

import pytest
from serving_support import assert_one_line_error

pytestmark = pytest.mark.slow  # end to end: featurelake serve on loopback

GOOD = {"dataframe_records": [{"customer_id": 7}]}


def test_keys_in_predictions_out_with_model_name_and_version(server):
    response = server.score({"dataframe_split": {"columns": ["customer_id"], "data": [[7], [3], [999999]]}})
    assert response.status == 200, response.body
    assert (response.headers["x-model-name"], response.headers["x-model-version"]) == ("churn_model", "1")
    rows = response.json()["predictions"]
    assert [r["customer_id"] for r in rows] == [7, 3, 999999]
    for row in rows:
        assert set(row) == {"customer_id", "prediction", "probability", "model_name", "model_version"}
        assert (row["model_name"], row["model_version"]) == ("churn_model", 1)
        assert row["prediction"] in (0.0, 1.0) and 0.0 <= row["probability"] <= 1.0
    # records and split are the same request
    records = server.score({"dataframe_records": [{"customer_id": 7}, {"customer_id": 3}]}).json()["predictions"]
    assert records == rows[:2]


def test_ping_health_and_version(server):
    for path in ("/ping", "/health"):
        assert server.request("GET", path, content_type=None).status == 200
    version = server.request("GET", "/version", content_type=None)
    assert version.status == 200 and version.body.decode().startswith("3.")


@pytest.mark.parametrize("body, words", [
    ('{"dataframe_records": [{"customer": 7}]}', ["unknown column(s) 'customer'", "missing column(s) 'customer_id'"]),
    ('{"dataframe_records": [{"customer_id": 7, "age": 40}]}', ["unknown column(s) 'age'", "takes customer_id"]),
    ('{"dataframe_records": [{"customer_id": "abc"}]}', ["key column 'customer_id' takes integers", "'abc'"]),
    ('{"dataframe_records": [{"customer_id": "7"}]}', ["key column 'customer_id' takes integers", "'7'"]),
    ('{"dataframe_records": [{"customer_id": 7.5}]}', ["key column 'customer_id' takes integers", "7.5"]),
    ('{"dataframe_records": [{"customer_id": true}]}', ["key column 'customer_id' takes integers", "True"]),
    ('{"dataframe_records": [{"customer_id": 7}, {"customer_id": null}]}', ["'customer_id' has null values (rows 1)"]),
    ('{"dataframe_records": []}', ["no rows"]),
    ('{"dataframe_split": {"columns": ["customer_id", "customer_id"], "data": [[1, 1]]}}', ["given twice"]),
    ("", ["valid JSON"]),
    ("not json", ["valid JSON"]),
    ("{}", ["dataframe_split"]),
])
def test_bad_request_is_400_with_one_line_of_json_and_the_server_keeps_serving(server, body, words):
    assert_one_line_error(server.request("POST", "/invocations", body), 400, *words)
    assert server.score(GOOD).status == 200


def test_wrong_content_type_and_unknown_path_are_one_line_4xx(server):
    assert_one_line_error(server.request("POST", "/invocations", json.dumps(GOOD), "text/plain"), 415, "content type")
    assert_one_line_error(server.request("GET", "/nothing", content_type=None), 404)
    assert server.score(GOOD).status == 200


def test_a_10_mb_body_is_refused_with_413_before_it_is_parsed(server):
    rows = ",".join(['{"customer_id": 1}'] * 560_000)
    body = ('{"dataframe_records": [' + rows + "]}").encode()
    assert len(body) > 10 * 1024 * 1024
    assert_one_line_error(server.request("POST", "/invocations", body), 413, "request body over 1048576 bytes")
    response = server.score(GOOD)
    assert response.status == 200 and response.json()["predictions"][0]["customer_id"] == 7
