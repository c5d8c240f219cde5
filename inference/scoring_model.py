"""The pyfunc model that batch scoring hands to ``mlflow.pyfunc.spark_udf``.

``spark_udf`` in local mode loads the model once per Spark TASK (its executor-side cache is
only used on clusters), and an sklearn model saved with skops takes seconds to load: on 2
cores that load, not the scoring, dominated a batch. The batch job therefore saves this small
wrapper around the very same model files and scores through it: ``load_context`` keeps the
loaded model in a per-process cache, so each Python worker loads it once per run and reuses
it for every later task and batch (Spark reuses its Python workers).

The wrapper returns the wrapped model's prediction unchanged; for a classifier scored with
probabilities it returns a DataFrame ``prediction, probability``, the probability being
``predict_proba`` of the positive class (``classes_[1]``) for a binary classifier and of the
predicted class otherwise. A random forest's (or extra trees') ``predict`` is by definition the
argmax of its ``predict_proba``, so with probabilities the forest is evaluated once, not twice
(the same result, one evaluation: benchmarks/results/batch_scoring.md).
"""

from __future__ import annotations

import importlib
import os
from collections import OrderedDict
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow.pyfunc import PythonModel

MODEL_ARTIFACT = "model"
CACHE_SIZE = 4  # models kept per Python worker (one per run normally; bounded for long-lived workers)
# MLmodel metadata key recording gives_probability() at logging time, so scoring need not load the model.
PROBABILITY_METADATA = "featurelake.gives_probability"

_loaded: OrderedDict[tuple[str, str], Any] = OrderedDict()


# Flavours whose own model object may be a classifier with predict_proba (scikit-learn's API).
PROBABILITY_FLAVORS = ("sklearn", "xgboost", "lightgbm")


def scoring_flavor(flavors: Any, metadata: dict | None) -> str:
    """The flavour to load a logged model with for scoring: ``sklearn`` for a scikit-learn model;
    ``xgboost`` or ``lightgbm`` for such a model recorded as a classifier with ``predict_proba``
    (:data:`PROBABILITY_METADATA`, which ``log_model`` records); ``python_function`` for anything
    else (a Booster, a custom ``PythonModel``...)."""
    if "sklearn" in flavors:
        return "sklearn"
    native = next((f for f in PROBABILITY_FLAVORS if f in flavors), None)
    if native is not None and (metadata or {}).get(PROBABILITY_METADATA):
        return native
    return "python_function"


def load_flavor(path: str, flavor: str) -> Any:
    """Load the model at ``path`` (a folder or URI) as ``flavor`` (``sklearn``, ``xgboost``,
    ``lightgbm`` or ``python_function``)."""
    if flavor == "python_function":
        return mlflow.pyfunc.load_model(path, suppress_warnings=True)
    if flavor not in PROBABILITY_FLAVORS:
        raise ValueError(f"unsupported scoring flavour {flavor!r}")
    return importlib.import_module(f"mlflow.{flavor}").load_model(path)


def load_once(path: str, flavor: str) -> Any:
    """Load the model at ``path`` (see :func:`load_flavor`) once per process."""
    key = (os.path.realpath(path), flavor)
    if key in _loaded:
        _loaded.move_to_end(key)
        return _loaded[key]
    model = load_flavor(path, flavor)
    _loaded[key] = model
    while len(_loaded) > CACHE_SIZE:
        _loaded.popitem(last=False)
    return model


def gives_probability(model: Any) -> bool:
    """True for a fitted classifier with ``predict_proba`` and ``classes_`` (scored with a probability)."""
    return hasattr(model, "predict_proba") and hasattr(model, "classes_")


def is_forest_classifier(model: Any) -> bool:
    """True for a single-output random forest or extra-trees classifier, alone or ending a Pipeline,
    with sklearn's own ``predict`` (``classes_`` at the argmax of ``predict_proba``) and ``predict_proba``."""
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.pipeline import Pipeline

    final = model[-1] if isinstance(model, Pipeline) else model
    return (type(final).predict is RandomForestClassifier.predict
            and type(final).predict_proba is RandomForestClassifier.predict_proba
            and getattr(final, "n_outputs_", None) == 1)


def row_major_input(model: Any, model_input: Any) -> Any:
    """``model_input`` as the float32 rows a bare forest (:func:`is_forest_classifier`, not in a
    Pipeline) converts it to anyway, laid out row by row; any other model's input unchanged.

    Spark hands a UDF one array per column, and the forest's own float32 conversion keeps that
    layout: each row's features then lie in as many places in memory as there are columns. In
    one process, a 200-tree forest scored 100k-row batches at 62k rows per CPU-second laid out
    by column and at 74k laid out by row.
    """
    from sklearn.pipeline import Pipeline

    if not isinstance(model_input, pd.DataFrame) or isinstance(model, Pipeline) or not is_forest_classifier(model):
        return model_input
    rows = np.ascontiguousarray(model_input.to_numpy(dtype=np.float32, na_value=np.nan))
    return pd.DataFrame(rows, columns=model_input.columns, index=model_input.index, copy=False)


def predict(model: Any, model_input: Any) -> Any:
    """Return ``model.predict`` of ``model_input`` (a bare forest reading row-major input)."""
    return model.predict(row_major_input(model, model_input))


def predict_with_proba(model: Any, model_input: Any) -> tuple[Any, np.ndarray]:
    """Return ``model.predict`` and ``model.predict_proba`` of ``model_input``; a forest
    (:func:`is_forest_classifier`) is evaluated once, its prediction taken from the probabilities.

    A Pipeline runs its steps before the last once, as its own ``predict`` and ``predict_proba``
    each would, and hands the result to both methods of its last step: the training job's
    imputation, scaling and encoding on pandas took about as long as the logistic regression
    after them, and serving a single row paid it twice.
    """
    from sklearn.pipeline import Pipeline

    if isinstance(model, Pipeline) and len(model) > 1:
        return predict_with_proba(model[-1], model[:-1].transform(model_input))
    if is_forest_classifier(model):
        proba = model.predict_proba(row_major_input(model, model_input))
        return model.classes_.take(np.argmax(proba, axis=1), axis=0), proba
    return model.predict(model_input), model.predict_proba(model_input)


def model_output(model: Any, model_input: Any, with_probability: bool) -> Any:
    """The wrapped model's output for ``model_input``: its prediction alone, or with probabilities the
    DataFrame ``prediction, probability`` described above (batch scoring and serving share it)."""
    if not with_probability:
        return predict(model, model_input)
    prediction, proba = predict_with_proba(model, model_input)
    probability = proba[:, 1] if len(getattr(model, "classes_", [])) == 2 else proba.max(axis=1)
    return pd.DataFrame({"prediction": prediction, "probability": np.asarray(probability, dtype="float64")})


class CachedModel(PythonModel):
    """pyfunc model: the wrapped model's ``predict`` (plus the probability when asked)."""

    # Inputs are checked against the wrapped model's signature before scoring; MLflow's type-hint
    # validation would only wrap predict and warn in every Python worker that imports this class.
    _skip_type_hint_validation = True

    def __init__(self, flavor: str, with_probability: bool) -> None:
        self.flavor = flavor
        self.with_probability = with_probability

    def load_context(self, context) -> None:  # noqa: ANN001 - MLflow's PythonModelContext
        """Take the wrapped model from this process's cache (loading it the first time)."""
        self._model = load_once(context.artifacts[MODEL_ARTIFACT], self.flavor)

    def predict(self, context, model_input, params=None):  # noqa: ANN001, ANN201 - no hints: keep the given signature
        """Return the predictions (and probabilities) of ``model_input``, rows in input order."""
        return model_output(self._model, model_input, self.with_probability)
