"""A pyfunc wrapper that returns a classifier's prediction AND its probability in one pass.

The registered sklearn model's own pyfunc flavour only exposes ``predict``. For scoring, the
batch job saves this wrapper (around the very same model files) to a temporary folder and
hands it to ``mlflow.pyfunc.spark_udf``, whose result is then a struct
``<prediction, probability>``. The prediction is the sklearn model's ``predict`` output
unchanged; the probability is ``predict_proba`` of the positive class (``classes_[1]``) for
a binary classifier and of the predicted class otherwise.
"""

from __future__ import annotations

import mlflow
import numpy as np
import pandas as pd
from mlflow.pyfunc import PythonModel

MODEL_ARTIFACT = "sklearn_model"


class ClassifierWithProbability(PythonModel):
    """pyfunc model: ``predict`` returns a DataFrame with ``prediction`` and ``probability``."""

    def load_context(self, context) -> None:  # noqa: ANN001 - MLflow's PythonModelContext
        """Load the wrapped sklearn model from the model's artifacts."""
        self._model = mlflow.sklearn.load_model(context.artifacts[MODEL_ARTIFACT])
        self._binary = len(getattr(self._model, "classes_", [])) == 2

    def predict(self, context, model_input, params=None):  # noqa: ANN001, ANN201 - no hints: keep the given signature
        """Return the predictions and probabilities of ``model_input`` (rows in input order)."""
        prediction = self._model.predict(model_input)
        proba = self._model.predict_proba(model_input)
        probability = proba[:, 1] if self._binary else proba.max(axis=1)
        return pd.DataFrame({"prediction": prediction, "probability": np.asarray(probability, dtype="float64")})
