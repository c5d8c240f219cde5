"""Charts as inline SVG, drawn with matplotlib."""

from __future__ import annotations

import io
import math
import re
from typing import Sequence

import matplotlib

from featurestore.core.errors import BadInputError
from inference.comparison import Threshold, parse_threshold

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

_PROLOG = re.compile(r"^.*?(?=<svg)", re.S)
OK_COLOR = "#1b7f3b"
BAD_COLOR = "#c62828"
LINE_COLOR = "#1f4e9c"


def stored_threshold(metric: str, text: str | None) -> Threshold | None:
    """The threshold a monitoring row was checked against (its ``threshold`` column, ``">= 0.7"``),
    read with the monitoring grammar; None when the row has none or it does not parse."""
    if not text:
        return None
    try:
        return parse_threshold(metric, text, "monitoring.thresholds")
    except BadInputError:
        return None


def _to_svg(fig) -> str:
    """The figure as SVG; the same chart gives the same text (no date, element ids from a fixed salt)."""
    buffer = io.StringIO()
    with matplotlib.rc_context({"svg.hashsalt": "featurelake"}):
        fig.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(fig)
    return _PROLOG.sub("", buffer.getvalue(), count=1)


def _style(ax, title: str) -> None:
    ax.set_title(title, fontsize=10, loc="left")
    ax.grid(axis="y", color="#e0e0e0", linewidth=0.6)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.tick_params(labelsize=8)


def _band(ax, threshold: Threshold | None, values: Sequence[float]) -> None:
    """Shade the accepted range green and the rest red, with the bound as a dashed line."""
    if threshold is None:
        return
    op, bound = threshold.op, threshold.bound
    finite = [v for v in values if v is not None and math.isfinite(v)] + [bound]
    low, high = min(finite), max(finite)
    pad = (high - low) * 0.15 or abs(bound) * 0.15 or 1.0
    low, high = low - pad, high + pad
    ax.set_ylim(low, high)
    if op in (">=", ">"):
        ax.axhspan(bound, high, color=OK_COLOR, alpha=0.08, lw=0)
        ax.axhspan(low, bound, color=BAD_COLOR, alpha=0.08, lw=0)
    else:
        ax.axhspan(low, bound, color=OK_COLOR, alpha=0.08, lw=0)
        ax.axhspan(bound, high, color=BAD_COLOR, alpha=0.08, lw=0)
    ax.axhline(bound, color=BAD_COLOR, linestyle="--", linewidth=1, label=f"threshold {op} {bound:g}")


def metric_chart(title: str, batches: Sequence[str], values: Sequence[float | None],
                 threshold: str | None, in_range: Sequence[bool | None] | None = None) -> str:
    """A metric over batches (in order) with its threshold band; returns an ``<svg>`` element."""
    fig, ax = plt.subplots(figsize=(6.4, 2.6))
    xs = list(range(len(batches)))
    ys = [float("nan") if v is None else float(v) for v in values]
    ax.plot(xs, ys, color=LINE_COLOR, marker="o", markersize=4, linewidth=1.5, label=title)
    if in_range is not None:
        bad = [(x, y) for x, y, ok in zip(xs, ys, in_range) if ok is False]
        if bad:
            ax.scatter([b[0] for b in bad], [b[1] for b in bad], color=BAD_COLOR, zorder=3, s=30,
                       label="out of range")
    _band(ax, stored_threshold(title, threshold), ys)
    ax.set_xticks(xs, [str(b) for b in batches], rotation=30 if len(batches) > 4 else 0, ha="right"
                  if len(batches) > 4 else "center")
    ax.set_xlabel("batch", fontsize=8)
    _style(ax, title)
    ax.legend(fontsize=7, loc="best", frameon=False)
    return _to_svg(fig)


def drift_chart(title: str, batches: Sequence[str], series: dict[str, Sequence[float | None]],
                threshold: str | None) -> str:
    """Drift (PSI) of several features over batches, one line each, with the threshold band."""
    fig, ax = plt.subplots(figsize=(6.4, 2.8))
    xs = list(range(len(batches)))
    all_values: list[float] = []
    for name, values in sorted(series.items()):
        ys = [float("nan") if v is None else float(v) for v in values]
        all_values += ys
        ax.plot(xs, ys, marker="o", markersize=3, linewidth=1.2, label=name)
    _band(ax, stored_threshold(title, threshold), all_values)
    ax.set_xticks(xs, [str(b) for b in batches], rotation=30 if len(batches) > 4 else 0,
                  ha="right" if len(batches) > 4 else "center")
    ax.set_xlabel("batch", fontsize=8)
    _style(ax, title)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
    return _to_svg(fig)
