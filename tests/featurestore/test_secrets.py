"""Secrets are masked before anything is logged or raised."""

import pytest

from featurestore.core.secrets import redact_text, redact_uri


@pytest.mark.parametrize("uri, expected", [
    ("http://alice:s3cret@mlflow:5000/", "http://alice:***@mlflow:5000/"),
    ("https://tok3n@host/api", "https://***@host/api"),
    ("abfss://c@acct.dfs.core.windows.net/x?sv=2024&sig=abcDEF%3D", "abfss://***@acct.dfs.core.windows.net/x?sv=***&sig=***"),
    ("sqlite:////tmp/mlflow.db", "sqlite:////tmp/mlflow.db"),
])
def test_redact_uri(uri, expected):
    assert redact_uri(uri) == expected


def test_redact_text_masks_credentials_and_literal_secrets():
    text = "MLflow at http://bob:pw123@h:5000 failed; token=abcd1234 used key AKIAXYZ987"
    out = redact_text(text, secrets=["AKIAXYZ987"])
    assert "pw123" not in out and "AKIAXYZ987" not in out
    assert "http://bob:***@h:5000" in out
