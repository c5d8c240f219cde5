"""The server's answers equal batch scoring's for the same keys at the same feature values."""

from __future__ import annotations

import math

import pytest
from serving_support import MODEL_URI

from inference.batch import run_batch_inference

pytestmark = pytest.mark.slow  # end to end: featurelake serve on loopback

UNKNOWN = 999_999  # in no feature table: features null, scored as batch scoring scores it


def test_server_predictions_equal_batch_scoring(spark, serving_project, server):
    ids = list(range(1, 121)) + [UNKNOWN]
    entities = spark.createDataFrame([(i,) for i in ids], "customer_id bigint")
    result = run_batch_inference(spark, serving_project, entities, MODEL_URI, output_table="parity_predictions",
                                 batch_id="parity")
    batch = {r["customer_id"]: r for r in spark.read.format("delta").load(result.output_path).collect()}
    assert len(batch) == len(ids)

    together = server.score({"dataframe_split": {"columns": ["customer_id"], "data": [[i] for i in ids]}})
    one_by_one = [server.score({"dataframe_records": [{"customer_id": i}]}) for i in [*ids[:15], UNKNOWN]]
    answers = together.json()["predictions"] + [r.json()["predictions"][0] for r in one_by_one]
    assert len(answers) == len(ids) + 16
    for answer in answers:
        expected = batch[answer["customer_id"]]
        assert answer["prediction"] == expected["prediction"], answer
        # the same model on the same values; BLAS may sum in another order for another number of rows
        assert math.isclose(answer["probability"], expected["probability"], rel_tol=1e-12, abs_tol=1e-15), answer
        assert (answer["model_name"], answer["model_version"]) == (expected["model_name"], expected["model_version"])
    # not vacuous: the customers get different probabilities, and both classes are predicted
    assert len({round(a["probability"], 9) for a in answers}) > 50
    assert {a["prediction"] for a in answers} == {0.0, 1.0}
