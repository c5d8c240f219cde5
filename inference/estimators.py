"""The scikit-learn pipeline the training job fits: imputation, scaling, encoding, estimator."""

from __future__ import annotations

import importlib
from typing import Any, Mapping

import yaml

from featurestore.core.errors import BadInputError

TASKS = ("classifier", "regressor")


def parse_params(raw: Mapping[str, Any]) -> dict[str, Any]:
    """Turn configuration strings (``"0.5"``, ``"1e-4"``, ``"true"``, ``"null"``) into Python values."""
    params: dict[str, Any] = {}
    for key, value in raw.items():
        if isinstance(value, str):
            try:
                value = yaml.safe_load(value)
            except yaml.YAMLError:
                pass
        if isinstance(value, str):  # YAML 1.1 reads 1e-4 and 1e3 (no dot) as strings
            try:
                value = float(value)
            except ValueError:
                pass
        params[str(key)] = value
    return params


def load_estimator(import_path: str, params: Mapping[str, Any] | None = None) -> Any:
    """Instantiate the estimator class at ``import_path`` (``package.module.Class``) with ``params``.

    Raises:
        BadInputError: the path does not name a class, or the parameters are refused.
    """
    module_name, _, class_name = import_path.rpartition(".")
    if not module_name:
        raise BadInputError(f"estimator {import_path!r}: expected an import path like "
                            "'sklearn.linear_model.LogisticRegression'")
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError) as exc:
        raise BadInputError(f"estimator {import_path!r} cannot be imported: {exc}") from None
    try:
        estimator = cls(**dict(params or {}))
    except TypeError as exc:
        raise BadInputError(f"estimator {import_path!r}: bad parameters {dict(params or {})}: {exc}") from None
    # scikit-learn checks parameter values only when fitting, after the training set is built;
    # its own check (since 1.2) finds a bad value now.
    check_values = getattr(estimator, "_validate_params", None)
    if check_values is not None:
        try:
            check_values()
        except (TypeError, ValueError) as exc:
            raise BadInputError(f"estimator {import_path!r}: {exc}") from None
    if not hasattr(estimator, "fit") or not hasattr(estimator, "predict"):
        raise BadInputError(f"estimator {import_path!r} has no fit/predict: not a scikit-learn estimator")
    return estimator


def build_pipeline(estimator: Any, numeric: list[str], categorical: list[str]) -> Any:
    """Return ``Pipeline([preprocess, model])``.

    Numeric features are median-imputed (features may be null after a point-in-time join)
    and standardised; string features are imputed with ``"missing"`` and one-hot encoded
    (unknown categories at scoring time are ignored).
    """
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    transformers = []
    if numeric:
        transformers.append(("numeric", Pipeline([
            ("impute", SimpleImputer(strategy="median", keep_empty_features=True)),
            ("scale", StandardScaler()),
        ]), numeric))
    if categorical:
        transformers.append(("categorical", Pipeline([
            ("impute", SimpleImputer(strategy="constant", fill_value="missing", keep_empty_features=True)),
            ("onehot", OneHotEncoder(handle_unknown="ignore")),
        ]), categorical))
    preprocess = ColumnTransformer(transformers, remainder="drop")
    return Pipeline([("preprocess", preprocess), ("model", estimator)])


def simple_params(estimator: Any) -> dict[str, Any]:
    """Return the estimator's parameters that are plain values (for MLflow params)."""
    return {k: v for k, v in estimator.get_params(deep=False).items()
            if v is None or isinstance(v, (str, int, float, bool))}
