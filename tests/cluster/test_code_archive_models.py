"""Library code imported from the --py-files archive (as on a cluster's driver) still saves models:
the probability wrapper's code path is copied out of the zip for MLflow."""

from __future__ import annotations

import os
import subprocess
import sys

from cluster_services import REPO_ROOT, run_submit

PROBE = r'''
import os, tempfile
from pathlib import Path
import numpy as np, pandas as pd, mlflow.pyfunc, mlflow.sklearn
from mlflow.models import Model, infer_signature
from sklearn.linear_model import LogisticRegression
import inference.scoring_model, inference.scoring
assert ".zip" in inference.scoring_model.__file__, inference.scoring_model.__file__
folder = Path(tempfile.mkdtemp())
X = pd.DataFrame({"a": np.linspace(0, 1, 20), "b": np.linspace(1, 0, 20)})
y = (X["a"] > 0.5).astype(int)
model = LogisticRegression().fit(X, y)
mlflow.sklearn.save_model(model, folder / "m", signature=infer_signature(X, model.predict(X)))
out = inference.scoring._save_scoring_wrapper(Model.load(str(folder / "m")), str(folder / "m"), "double", True,
                                                  str(folder / "wrapped"))
assert (Path(out) / "code" / "inference" / "scoring_model.py").is_file()
scored = mlflow.pyfunc.load_model(out).predict(X)
assert list(scored.columns) == ["prediction", "probability"] and scored["probability"].between(0, 1).all()
print("OK")
'''


def test_probability_wrapper_saves_from_the_archive(tmp_path):
    assert run_submit(["--dry-run", "--master", "local[1]", "build_features"], cwd=tmp_path).returncode == 0
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT / "dist" / "featurelake-code.zip")}
    result = subprocess.run([sys.executable, "-c", PROBE], cwd=tmp_path, env=env, text=True, capture_output=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().endswith("OK")
