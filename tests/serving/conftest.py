"""Fixtures of the serving tests: one project with a served model, and its server, for the session."""

from __future__ import annotations

import pytest
from serving_support import make_serving_project, start_server


@pytest.fixture(scope="session")
def serving_project(spark, demo_project, tmp_path_factory):
    """The demo's feature tables (copies) in Feast's online store and churn_model@champion trained on them."""
    return make_serving_project(spark, demo_project, tmp_path_factory.mktemp("serving"))


@pytest.fixture(scope="session")
def server(serving_project, tmp_path_factory):
    """`featurelake serve --model-uri models:/churn_model@champion` on 127.0.0.1, for the whole session."""
    running = start_server(serving_project, tmp_path_factory.mktemp("server-log"))
    yield running
    running.stop()
