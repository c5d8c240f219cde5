"""The static report: pages for feature tables, models and monitoring, rendered from real tables."""

from __future__ import annotations

import re
from pathlib import Path

from markupsafe import escape

from jobs import build_report as report_job
from report_workspace import HTML_DESCRIPTION, MODEL, make_project


def text_of(page: Path) -> str:
    return page.read_text(encoding="utf-8")


def test_index_links_every_page_with_generation_time(report_site):
    index = text_of(report_site / "index.html")
    assert re.search(r'id="generated-at">\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC<', index)
    for href in ("tables/customer_profile.html", "tables/customer_weekly_spend.html",
                 f"models/{MODEL}.html", "monitoring.html"):
        assert f'href="{href}"' in index
        assert (report_site / href).is_file()
    assert "This workspace is empty" not in index


def test_feature_table_page_shows_catalog_and_history(report_site):
    page = text_of(report_site / "tables" / "customer_weekly_spend.html")
    for expected in ("customer_weekly_spend", "customer_id", "week_end", "payments-data@example.com",
                     "raw/transactions.parquet", "https://github.com/featurelake/featurelake/blob/main/jobs/demo/feature_tables.py",
                     "21 days", "domain=payments"):
        assert expected in page, expected
    features = re.findall(r"<tr><td><code>(\w+)</code></td><td>(\w+)</td>", page)
    assert features == [("txn_count_7d", "bigint"), ("spend_7d", "double"), ("avg_amount_7d", "double"),
                        ("days_since_last_txn", "double")]
    history = re.findall(r'<td class="num">(\d+)</td><td>[^<]+</td><td>([A-Z ]+)</td>', page)
    assert history[-1][0] == "0" and history[-1][1].startswith("CREATE")
    assert [int(v) for v, _ in history] == sorted((int(v) for v, _ in history), reverse=True)
    assert re.search(r"<td>\d+ (written|inserted)", page)  # row counts from the commit metrics
    assert f'href="../models/{MODEL}.html"' in page  # the model trained on it


def test_html_in_metadata_is_escaped_and_missing_fields_show_not_set(report_site):
    page = text_of(report_site / "tables" / "customer_profile.html")
    assert str(escape(HTML_DESCRIPTION)) in page
    assert "<script>window.__pwned" not in page and "<b>Bold</b>" not in page
    owner = re.search(r"<dt>Owner</dt><dd>(.*?)</dd>", page).group(1)
    notebook = re.search(r"<dt>Notebook</dt><dd>(.*?)</dd>", page).group(1)
    assert "not set" in owner and "not set" in notebook
    assert "ALTER TABLE" in page or "SET TBLPROPERTIES" in page


def test_model_page_shows_versions_stages_aliases_and_promotions(report_site):
    page = text_of(report_site / "models" / f"{MODEL}.html")
    assert "Predicts churn &lt;i&gt;weekly&lt;/i&gt;" in page
    rows = re.findall(r'<td class="num">v(\d+)</td>\s*<td><span class="pill stage-(\w+)">', page)
    assert rows == [("2", "Production"), ("1", "Archived")]
    assert "@champion" in page
    assert "<code>roc_auc</code> 0.78" in page and "<code>roc_auc</code> 0.71" in page
    assert 'href="../tables/customer_profile.html"' in page and "Delta v1" in page
    assert re.search(r'href="file://[^"]+"', page)  # run link: the run's artifact folder
    assert "roc_auc improved by 0.07" in page and "no incumbent" in page


def test_model_page_shows_pending_requests_comments_and_activity(report_site):
    page = text_of(report_site / "models" / f"{MODEL}.html")
    pending = re.search(r'<table id="pending-requests">(.*?)</table>', page, re.S).group(1)
    assert re.search(r"<code>[0-9a-f]{12}</code></td><td>v1</td><td>Archived → Staging</td>\s*<td>alice</td>", pending)
    assert "retry &lt;b&gt;v1&lt;/b&gt;" in pending
    comments = re.search(r'<table id="comments">(.*?)</table>', page, re.S).group(1)
    assert "<td>v2</td><td>carol</td><td>AUC holds on the &lt;i&gt;March&lt;/i&gt; cohort</td>" in comments
    activity = re.search(r'<table id="activity">(.*?)</table>', page, re.S).group(1)
    kinds = re.findall(r"<td>(v\d|model)</td><td>(\w+)</td>", activity)
    assert kinds[:2] == [("v2", "commented"), ("v1", "requested")]  # newest first
    assert ("v2", "gates_passed") in kinds and ("v1", "created") in kinds


def test_compare_page_is_linked_from_the_model_page_and_marks_differences(report_site):
    page = text_of(report_site / "models" / f"{MODEL}.html")
    assert f'<a id="compare-link" href="compare/{MODEL}.html">' in page
    compare = text_of(report_site / "models" / "compare" / f"{MODEL}.html")
    assert f'href="../{MODEL}.html"' in compare and 'href="../../index.html#models"' in compare
    header = re.search(r'<table id="comparison">\s*<tr>(.*?)</tr>', compare, re.S).group(1)
    assert re.findall(r"<th>v(\d)", header) == ["2", "1"]
    rows = {key: kind for kind, key in re.findall(
        r'<tr class="(differs|same)"><td[^>]*>[^<]*</td><td><code>([\w .]+)</code>', compare)}
    assert rows["roc_auc"] == "differs" and rows["log_loss"] == "same"
    assert rows["customer_profile Delta version"] == "same"
    assert "0.78" in compare and "0.71" in compare


def test_monitoring_page_has_charts_drift_alerts_attempts(report_site):
    page = text_of(report_site / "monitoring.html")
    charts = re.findall(r'<div class="chart" data-metric="([\w.]+)"><svg', page)
    assert charts == ["auc", "row_count", "feature_psi"]
    assert "threshold &gt;= 0.7" in page or "threshold >= 0.7" in page  # legend text inside the SVG
    drift = re.findall(r"<tr><td><code>(\w+)</code></td><td>([\d-]+)</td><td class=\"num\">([\d.]+)</td>", page)
    assert drift == [("age", "2026-03-04", "0.05"), ("spend_7d", "2026-03-04", "0.31")]
    assert "auc 0.62 out of range after 3 attempts" in page
    assert page.count("auc 0.65 still below &gt;= 0.7") == 3


def test_empty_workspace_says_so(spark, tmp_path, capsys):
    config = make_project(tmp_path)
    code = report_job.main(["--config", str(tmp_path / "featurelake.yaml"), "--out", str(tmp_path / "site")])
    assert code == 0
    index = text_of(tmp_path / "site" / "index.html")
    assert "This workspace is empty" in index
    assert "No monitoring data yet" in text_of(tmp_path / "site" / "monitoring.html")
    assert not (tmp_path / "mlflow.db").exists()  # the report does not create an MLflow store
    assert "report written" in capsys.readouterr().out
    assert config.warehouse in index
