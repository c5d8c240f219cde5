"""The Python example of docs/python-client.md runs as written: the code block is extracted and executed."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[1] / "docs" / "python-client.md"


def python_blocks(text: str) -> list[str]:
    """The ```python code blocks of a Markdown text, in order."""
    return re.findall(r"^```python\n(.*?)^```$", text, flags=re.DOTALL | re.MULTILINE)


@pytest.mark.slow
def test_the_python_example_runs_verbatim_and_scores_every_label(spark, tmp_path, monkeypatch):
    (example,) = python_blocks(DOC.read_text(encoding="utf-8"))
    monkeypatch.chdir(tmp_path)  # no featurelake.yaml here: the embedded defaults, under this folder
    monkeypatch.delenv("FEATURELAKE_CONFIG", raising=False)
    namespace: dict = {}
    exec(compile(example, str(DOC), "exec"), namespace)  # noqa: S102 - the documented example itself

    scored = namespace["scored"].toPandas()
    assert len(scored) == 50 and set(scored["model_version"]) == {1}
    assert {"customer_id", "as_of", "prediction", "probability", "model_name", "run_id"} <= set(scored.columns)
    pdf = namespace["pdf"].sort_values("customer_id")
    features = pdf[namespace["ts"].spec.feature_columns].astype("float64")
    expected = namespace["model"].predict_proba(features)[:, 1]
    assert scored.sort_values("customer_id")["probability"].tolist() == pytest.approx(list(expected), abs=0)
    assert (tmp_path / "warehouse" / "customer_daily" / "_delta_log").is_dir()
