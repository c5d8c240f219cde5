"""Render the report: one HTML page per feature table and per registered model (and a page
comparing its versions), a monitoring page and an index, written as static files that open from disk."""

from __future__ import annotations

import hashlib
import logging
import math
import re
from collections import defaultdict
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jinja2 import Environment, PackageLoader, Undefined

from featurestore.catalog import readable_duration
from inference.report.collect import MonitoringData, Workspace

if TYPE_CHECKING:
    from featurestore.core.config import Config
    from featurestore.delta_reader import DeltaReader

logger = logging.getLogger(__name__)

NOT_SET = "not set"
_SAFE_URL = re.compile(r"^(https?|file)://", re.I)


def _missing(value: Any) -> bool:
    return value is None or isinstance(value, Undefined) or value in ("", [], {})


def _dt(value: Any) -> str:
    if _missing(value):
        return NOT_SET
    if isinstance(value, datetime):
        value = value if value.tzinfo else value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    return str(value)


def _or_not_set(value: Any) -> Any:
    return NOT_SET if _missing(value) else value


def _num(value: Any) -> str:
    if _missing(value):
        return "—"
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.4g}"
    return str(value)


def _duration(seconds: int | None) -> str:
    return readable_duration(seconds) if seconds else NOT_SET


def _in_range(value: bool | None) -> str:
    return "—" if value is None else ("yes" if value else "NO")


def _safe_url(value: str | None) -> str:
    """Only web and file links become hrefs (no ``javascript:``)."""
    return value if value and _SAFE_URL.match(value) else ""


def environment() -> Environment:
    """The Jinja environment: package templates, autoescaping on (metadata is shown as text)."""
    env = Environment(loader=PackageLoader("inference.report", "templates"), autoescape=True,
                      trim_blocks=True, lstrip_blocks=True)
    env.filters.update(dt=_dt, or_not_set=_or_not_set, num=_num, duration=_duration, in_range=_in_range,
                       safe_url=_safe_url)
    return env


def model_file(name: str) -> str:
    """File name of a model's page: the name if it is file-safe, else a slug plus a short hash."""
    slug = re.sub(r"[^A-Za-z0-9_.-]", "_", name).strip(".") or "model"
    if slug != name:
        slug += "-" + hashlib.sha1(name.encode()).hexdigest()[:8]
    return slug + ".html"


def _batch_order(rows: list[dict[str, Any]]) -> list[str]:
    first_seen: dict[str, datetime] = {}
    for row in rows:
        ts = row.get("checked_at") or datetime.min
        batch = str(row.get("batch_id"))
        first_seen[batch] = min(first_seen.get(batch, ts), ts)
    return sorted(first_seen, key=lambda b: (first_seen[b], b))


def monitoring_view(mon: MonitoringData) -> dict[str, Any]:
    """Shape the monitoring rows into charts per model (production rows) plus alerts and attempts."""
    by_model: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in mon.metrics or []:
        if (row.get("role") or "production") == "production" and row.get("metric"):
            by_model[str(row.get("model_name"))].append(row)
    models = []
    for name in sorted(by_model):
        # matplotlib and pandas: imported only for a workspace with monitoring rows
        from inference.monitoring.metrics import FEATURE_PSI_PREFIX
        from inference.report.charts import drift_chart, metric_chart

        rows = by_model[name]
        batches = _batch_order(rows)
        metrics: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
        for row in rows:
            metrics[row["metric"]][str(row.get("batch_id"))] = row
        charts = []
        for metric in sorted(m for m in metrics if not m.startswith(FEATURE_PSI_PREFIX)):
            points = metrics[metric]
            shown = [b for b in batches if b in points]
            threshold = next((points[b].get("threshold") for b in reversed(shown) if points[b].get("threshold")), None)
            charts.append({"metric": metric, "svg": metric_chart(
                metric, shown, [points[b].get("value") for b in shown], threshold,
                [points[b].get("in_range") for b in shown])})
        drift = {m[len(FEATURE_PSI_PREFIX):]: metrics[m] for m in metrics if m.startswith(FEATURE_PSI_PREFIX)}
        drift_svg, drift_latest = None, []
        if drift:
            shown = [b for b in batches if any(b in points for points in drift.values())]
            thresholds = [p.get("threshold") for points in drift.values() for p in points.values() if p.get("threshold")]
            threshold = max(set(thresholds), key=thresholds.count) if thresholds else None
            drift_svg = drift_chart("feature PSI", shown,
                                    {f: [points.get(b, {}).get("value") for b in shown] for f, points in drift.items()},
                                    threshold)
            for feature in sorted(drift):
                points = drift[feature]
                last = next(b for b in reversed(batches) if b in points)
                drift_latest.append({"feature": feature, "batch_id": last, **{k: points[last].get(k) for k in
                                                                             ("value", "threshold", "in_range")}})
        models.append({"name": name, "charts": charts, "drift_svg": drift_svg, "drift_latest": drift_latest})
    newest = lambda key: (lambda r: r.get(key) or datetime.min)  # noqa: E731
    return {
        "empty": mon.empty,
        "models": models,
        "alerts": sorted(mon.alerts or [], key=newest("raised_at"), reverse=True),
        "attempts": sorted(mon.attempts or [], key=newest("attempted_at"), reverse=True),
    }


def render_report(ws: Workspace, out_dir: str | Path) -> list[Path]:
    """Write the report for ``ws`` under ``out_dir``; return the pages written (index first)."""
    out = Path(out_dir)
    (out / "tables").mkdir(parents=True, exist_ok=True)
    (out / "models").mkdir(parents=True, exist_ok=True)
    env = environment()
    model_files = {m.name: model_file(m.name) for m in ws.models}
    common = {"generated_at": ws.generated_at, "model_files": model_files,
              "table_names": {t.info.name for t in ws.tables}}
    pages: list[Path] = []

    def write(relative: str, template: str, root: str, **context: Any) -> None:
        target = out / relative
        target.write_text(env.get_template(template).render(root=root, **common, **context), encoding="utf-8")
        pages.append(target)

    write("index.html", "index.html", "", ws=ws)
    for table in ws.tables:
        write(f"tables/{table.info.name}.html", "table.html", "../", t=table)
    (out / "models" / "compare").mkdir(exist_ok=True)
    for model in ws.models:
        write(f"models/{model_files[model.name]}", "model.html", "../", m=model)
        write(f"models/compare/{model_files[model.name]}", "compare.html", "../../", m=model)
    write("monitoring.html", "monitoring.html", "", mon=monitoring_view(ws.monitoring))
    logger.info("report written to %s: %d page(s)", out, len(pages))
    return pages


def generate_report(reader: DeltaReader, config: Config, out_dir: str | Path) -> list[Path]:
    """Collect the workspace of ``config`` and write its report under ``out_dir``.

    >>> generate_report(DeltaReader(lambda: get_spark(config)), config, "site")[0]
    PosixPath('site/index.html')
    """
    from inference.report.collect import collect

    return render_report(collect(reader, config), out_dir)
