"""The catalog shows where a version is served: `featurelake models list` and the report's model page."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest
from serving_support import config_file

from inference.report.collect import MonitoringData, Workspace, collect_models
from inference.report.render import render_report
from jobs import models as models_job

pytestmark = pytest.mark.slow  # end to end: featurelake serve on loopback


def test_models_list_shows_where_the_version_is_served(server, serving_project, capsys):
    assert models_job.main(["--config", config_file(serving_project), "list", "--json"]) == 0
    versions = json.loads(capsys.readouterr().out)[0]["versions"]
    assert [(v["version"], v["serving"]) for v in versions] == [("1", [server.url])]
    assert models_job.main(["--config", config_file(serving_project), "list"]) == 0
    assert f"serving={server.url}" in capsys.readouterr().out


def test_report_model_page_has_a_serving_column(server, serving_project, tmp_path):
    models = collect_models(serving_project, [])  # no promotion events
    assert [v.serving for v in models[0].versions] == [[server.url]]
    workspace = Workspace(datetime.now(timezone.utc), serving_project.warehouse, [], models,
                          MonitoringData(None, None, None))
    render_report(workspace, tmp_path)
    page = (tmp_path / "models" / "churn_model.html").read_text(encoding="utf-8")
    assert "<th>Serving</th>" in page and f'<td class="serving"><div><code>{server.url}</code>' in page
