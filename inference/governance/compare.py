"""Comparing versions of a model side by side: parameters, metrics, signature and training set.

    comparison = compare_versions(config, "churn_model", [1, 2])
    for row in comparison.rows:
        print(row.section, row.key, row.values, "DIFFERS" if row.differs else "")

Each row is one parameter, metric, signature column (type and whether it is required) or
training-set fact (label, keys, each feature table's Delta version and features), with one
value per version (None: the version has none) and ``differs`` when the values are not all equal.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import asdict, dataclass, field
from typing import Any, Sequence

from featurestore.core.config import Config
from featurestore.core.errors import BadInputError, NotFoundError
from inference import registry
from inference.tracking import client as mlflow_client
from inference.tracking import load_spec, mlflow_call

logger = logging.getLogger(__name__)

SECTIONS = ("params", "metrics", "inputs", "outputs", "training set")
Value = str | float | None


@dataclass
class ComparedRow:
    """One compared fact: its section, its name and its value in each version."""

    section: str
    key: str
    values: list[Value]

    @property
    def differs(self) -> bool:
        """True when the versions do not all have the same value (NaN equals NaN)."""
        same = {"nan" if isinstance(v, float) and math.isnan(v) else v for v in self.values}
        return len(same) > 1

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data."""
        return {**asdict(self), "differs": self.differs}


@dataclass
class Comparison:
    """Versions of one model side by side."""

    model_name: str
    versions: list[str]
    stages: list[str]
    run_ids: list[str | None]
    rows: list[ComparedRow] = field(default_factory=list)

    @property
    def differences(self) -> list[ComparedRow]:
        """The rows whose values differ."""
        return [r for r in self.rows if r.differs]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data."""
        return {"model_name": self.model_name, "versions": self.versions, "stages": self.stages,
                "run_ids": self.run_ids, "rows": [r.to_dict() for r in self.rows]}


def describe_column(column: dict[str, Any]) -> str:
    """``double, required`` for a column of a signature (tensors: ``tensor int64 [-1]``)."""
    if column.get("type") == "tensor":
        spec = column.get("tensor-spec") or {}
        kind = f"tensor {spec.get('dtype')} {spec.get('shape')}"
    else:
        kind = str(column.get("type"))
    return f"{kind}, {'required' if column.get('required', True) else 'optional'}"


def signature_columns(signature: dict[str, Any] | None, part: str) -> dict[str, str]:
    """Column name (``[i]`` for an unnamed one) -> description, of the ``inputs`` or ``outputs`` of a signature."""
    text = (signature or {}).get(part)
    columns = json.loads(text) if isinstance(text, str) else (text or [])
    return {str(c.get("name", f"[{i}]")): describe_column(c) for i, c in enumerate(columns)}


def spec_facts(spec: dict[str, Any] | None) -> dict[str, str]:
    """The facts of a training-set spec worth comparing: label, keys, features, each table's Delta version."""
    if not spec:
        return {}
    facts = {"label": str(spec.get("label")), "entity keys": ", ".join(spec.get("entity_keys") or []),
             "timestamp key": str(spec.get("timestamp_key")),
             "feature columns": ", ".join(spec.get("feature_columns") or [])}
    for lookup in spec.get("lookups") or []:
        table = lookup.get("table")
        facts[f"{table} Delta version"] = str(lookup.get("delta_version"))
        facts[f"{table} features"] = ", ".join(lookup.get("features") or [])
    return facts


@dataclass
class _VersionFacts:
    version: str
    stage: str
    run_id: str | None
    sections: dict[str, dict[str, Value]]


def _facts(config: Config, name: str, version: str) -> _VersionFacts:
    info = registry.show_version(config, name, version)
    params: dict[str, Value] = {}
    metrics: dict[str, Value] = {}
    spec = None
    if info.run_id:
        client = mlflow_client(config)
        run = mlflow_call(lambda: client.get_run(info.run_id), f"MLflow run {info.run_id!r} of version {version}")
        params, metrics = dict(run.data.params), {k: float(v) for k, v in run.data.metrics.items()}
        try:
            spec = load_spec(info.run_id, config).to_dict()
        except (NotFoundError, BadInputError) as exc:  # a version logged without a (readable) training set
            logger.warning("model %s version %s: %s", name, version, exc)
    sections: dict[str, dict[str, Value]] = {
        "params": params, "metrics": metrics,
        "inputs": dict(signature_columns(info.signature, "inputs")),
        "outputs": dict(signature_columns(info.signature, "outputs")),
        "training set": dict(spec_facts(spec)),
    }
    return _VersionFacts(info.version, info.stage, info.run_id, sections)


def compare_versions(config: Config, name: str, versions: Sequence[int | str]) -> Comparison:
    """Compare ``versions`` of model ``name`` (in the order given).

    >>> [r.key for r in compare_versions(config, "churn_model", [1, 2]).differences]  # doctest: +SKIP
    ['seed', 'roc_auc', ...]

    Raises:
        BadInputError: no version, a version named twice, or one that is not a number.
        NotFoundError: the model or a version does not exist.
    """
    wanted = [str(v) for v in versions]
    if not wanted:
        raise BadInputError(f"compare model {name!r}: name at least one version")
    repeated = sorted({v for v in wanted if wanted.count(v) > 1})
    if repeated:
        raise BadInputError(f"compare model {name!r}: version(s) {', '.join(repeated)} named more than once")
    facts = [_facts(config, name, v) for v in wanted]
    comparison = Comparison(name, [f.version for f in facts], [f.stage for f in facts], [f.run_id for f in facts])
    for section in SECTIONS:
        keys: list[str] = []
        for f in facts:
            keys += [k for k in f.sections[section] if k not in keys]
        ordered = keys if section in ("inputs", "outputs", "training set") else sorted(keys)
        comparison.rows += [ComparedRow(section, key, [f.sections[section].get(key) for f in facts]) for key in ordered]
    return comparison


def format_value(value: Value) -> str:
    """A value as the text table shows it (metrics to at most 4 decimals, a missing value as ``-``)."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.4f}".rstrip("0").rstrip(".")
    return value


def format_comparison(comparison: Comparison, only_differences: bool = False) -> str:
    """The comparison as a text table; a ``*`` in the first column marks the rows that differ."""
    header = ["", "section", "key", *[f"v{v} ({s})" for v, s in zip(comparison.versions, comparison.stages)]]
    rows = [["*" if r.differs else "", r.section, r.key, *[format_value(v) for v in r.values]]
            for r in (comparison.differences if only_differences else comparison.rows)]
    widths = [min(max(len(str(line[i])) for line in [header, *rows]), 40) for i in range(len(header))]
    lines = ["  ".join(str(cell).ljust(w) for cell, w in zip(line, widths)).rstrip() for line in [header, *rows]]
    return "\n".join(lines)
