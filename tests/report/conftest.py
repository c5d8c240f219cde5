"""Fixtures of the report tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from featurestore.core.config import Config
from featurestore.delta_reader import DeltaReader
from inference.report.render import generate_report
from report_workspace import build_workspace


@pytest.fixture(scope="session")
def report_workspace(spark, demo_project, tmp_path_factory) -> Config:
    """The test workspace (demo tables, a model, promotion events, monitoring rows), built once."""
    return build_workspace(spark, demo_project, tmp_path_factory.mktemp("report"))


@pytest.fixture(scope="session")
def report_site(spark, report_workspace) -> Path:
    """The report of the test workspace, written once."""
    out = Path(report_workspace.base_dir) / "site"
    pages = generate_report(DeltaReader(lambda: spark), report_workspace, out)
    assert pages[0] == out / "index.html"
    return out
