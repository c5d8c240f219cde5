"""Fixtures of the report tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from inference.report.render import generate_report
from report_workspace import build_workspace


@pytest.fixture(scope="session")
def report_site(spark, demo_project, tmp_path_factory) -> Path:
    """The report of the test workspace (demo tables, a model, monitoring rows), written once."""
    root = tmp_path_factory.mktemp("report")
    config = build_workspace(spark, demo_project, root)
    out = root / "site"
    pages = generate_report(spark, config, out)
    assert pages[0] == out / "index.html"
    return out
