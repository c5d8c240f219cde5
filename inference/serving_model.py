"""The pyfunc model ``featurelake serve`` serves: entity keys in, the registered model's prediction out,
its features read from Feast's online store.

A request carries the entity keys (``customer_id``) and, when the model takes inputs that no
feature table gives, those request-time columns; nothing else. For each request the model

1. checks the columns and the key types: an integer entity key takes JSON integers, a string key
   takes strings (or integers, which batch scoring also accepts for a string key);
2. reads the features its training-set spec names from the online store with Feast's SDK
   (``FeatureStore.get_online_features``: one call for the feature tables that share their keys);
3. hands them to the wrapped model in its signature's order and types, through the code batch
   scoring runs (:func:`inference.scoring_model.model_output`),

and answers one record per request row: the keys, ``prediction`` (and ``probability`` for a
classifier), ``model_name`` and ``model_version``. Steps 2 and 3 run for concurrent requests
together (:mod:`inference.request_groups`): a model call costs about the same for one row as for
a few, so requests arriving while one group is scored share the next call. A probability can
therefore differ from the same row scored alone in the last bits (BLAS sums in another order),
as it does in batch scoring, whose Arrow batches group rows too.

An entity that is not in the online store gets null features, as the left join of batch scoring
gives it: floating-point and string inputs take nulls (the training pipeline imputes them), so
the row is scored as batch scoring scores it; an integer or boolean input cannot hold a null, and
the request is refused (404) naming the keys.

Failures are :class:`mlflow.exceptions.MlflowException` whose error code MLflow's scoring server
turns into the HTTP status: 400 bad request, 404 no features for a key, 503 online store unreadable.

The Feast repository comes from the model configuration (``feast_repo_path``): ``featurelake serve``
sets it; elsewhere it is set as any MLflow model configuration, e.g.
``SERVING_MODEL_CONFIG='{"feast_repo_path": "/srv/feast_repo"}' mlflow models serve -m DIR``.
This module imports MLflow, Feast, pandas, numpy and :mod:`inference.scoring_model` only, so a
saved serving model runs wherever those are installed.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE, RESOURCE_DOES_NOT_EXIST, TEMPORARILY_UNAVAILABLE
from mlflow.pyfunc import PythonModel

from inference.request_groups import Pending, RequestGroups
from inference.scoring_model import MODEL_ARTIFACT, load_once, model_output

logger = logging.getLogger(__name__)

FEAST_REPO_CONFIG = "feast_repo_path"  # model configuration key: the Feast repository to read
INTEGER_KEY, STRING_KEY = "integer", "string"
# Spark types of model inputs (inference.scoring.MLFLOW_TO_SPARK) -> pandas dtype of the model's input.
_PANDAS_TYPES = {"double": "float64", "float": "float32", "bigint": "int64", "int": "int32",
                 "boolean": "bool", "string": "object", "binary": "object", "timestamp": "datetime64[ns]"}
_NO_NULLS = {"bigint", "int", "boolean"}  # inputs whose pandas type cannot hold a null


@dataclass(frozen=True)
class KeyColumn:
    """A key column of the request: its name and ``integer`` or ``string``."""

    name: str
    kind: str


@dataclass(frozen=True)
class InputColumn:
    """One input of the wrapped model: name, type (as Spark names it) and whether it is required."""

    name: str
    spark_type: str
    required: bool = True


@dataclass(frozen=True)
class OnlineLookup:
    """Features of one feature table (Feast feature view) and the request columns holding its keys."""

    table: str
    features: tuple[str, ...]
    join_keys: tuple[str, ...]    # the feature view's join keys, in order
    lookup_keys: tuple[str, ...]  # the request columns holding them, in the same order


@dataclass(frozen=True)
class ServingPlan:
    """Everything a served model version needs to answer a request, decided when it is built."""

    model_name: str
    model_version: int
    keys: tuple[KeyColumn, ...]
    request_columns: tuple[InputColumn, ...]  # model inputs the request itself carries
    lookups: tuple[OnlineLookup, ...]
    inputs: tuple[InputColumn, ...]           # every input of the wrapped model, in signature order
    flavor: str                               # "sklearn" or "python_function"
    with_probability: bool
    prediction_type: str                      # "double": predictions are written as floats, as in batch

    @property
    def label(self) -> str:
        """``model 'NAME' version N``, for messages."""
        return f"model {self.model_name!r} version {self.model_version}"

    @property
    def accepted_columns(self) -> list[str]:
        """The columns a request may carry: keys, then request-time inputs."""
        return [k.name for k in self.keys] + [c.name for c in self.request_columns
                                               if c.name not in {k.name for k in self.keys}]


@dataclass(frozen=True)
class _FeastRead:
    """One ``get_online_features`` call: feature references and join key -> request column."""

    refs: tuple[str, ...]
    key_columns: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class _Rows:
    """One request's rows, checked: key values and request-time inputs (column -> values)."""

    keys: dict[str, list[Any]]
    given: dict[str, list[Any]]
    count: int


@dataclass(frozen=True)
class _Scores:
    """The model's answer for some rows: predictions, and probabilities for a classifier."""

    prediction: np.ndarray
    probability: np.ndarray | None

    def rows(self, start: int, stop: int) -> "_Scores":
        """The answer for rows ``start`` to ``stop`` (excluded)."""
        return _Scores(self.prediction[start:stop],
                       None if self.probability is None else self.probability[start:stop])


def scores_of(output: Any, rows: int, prediction_type: str) -> _Scores:
    """The wrapped model's output (:func:`inference.scoring_model.model_output`) as arrays of ``rows`` rows;
    predictions become floats when the signature's type does (batch scoring writes them so)."""
    if isinstance(output, pd.DataFrame):
        prediction = (output["prediction"] if "prediction" in output else output.iloc[:, 0]).to_numpy()
        probability = output["probability"].to_numpy(dtype="float64") if "probability" in output else None
    else:
        prediction, probability = np.asarray(output), None
        if prediction.ndim > 1:
            prediction = prediction.reshape(rows, -1)[:, 0]
    return _Scores(prediction.astype("float64") if prediction_type == "double" else prediction, probability)


def bad_request(message: str) -> MlflowException:
    """An error the scoring server answers with 400."""
    return MlflowException(message, error_code=INVALID_PARAMETER_VALUE)


def feast_reads(lookups: tuple[OnlineLookup, ...]) -> list[_FeastRead]:
    """Group lookups into as few Feast calls as their keys allow: lookups whose join keys map to the
    same request columns share one call (a join key read from two columns needs two calls)."""
    groups: list[tuple[dict[str, str], list[str]]] = []
    for lookup in lookups:
        mapping = dict(zip(lookup.join_keys, lookup.lookup_keys))
        refs = [f"{lookup.table}:{f}" for f in lookup.features]
        for keys, group_refs in groups:
            if all(keys.get(k, column) == column for k, column in mapping.items()):
                keys.update(mapping)
                group_refs.extend(refs)
                break
        else:
            groups.append((mapping, refs))
    return [_FeastRead(tuple(refs), tuple(keys.items())) for keys, refs in groups]


def request_frame(model_input: Any) -> pd.DataFrame:
    """The request as a DataFrame (``dataframe_split``/``dataframe_records`` give one already)."""
    if isinstance(model_input, dict):
        try:
            model_input = pd.DataFrame(model_input)
        except ValueError as exc:
            raise bad_request(f"the request's inputs are not a table: {exc}") from None
    if not isinstance(model_input, pd.DataFrame):
        raise bad_request("send the keys as a table: dataframe_split or dataframe_records")
    if model_input.columns.duplicated().any():
        duplicated = sorted(set(model_input.columns[model_input.columns.duplicated()]))
        raise bad_request(f"column(s) {', '.join(map(repr, duplicated))} given twice")
    if len(model_input) == 0:
        raise bad_request("the request has no rows")
    return model_input.reset_index(drop=True)


def check_columns(frame: pd.DataFrame, plan: ServingPlan) -> None:
    """Refuse a request whose columns are not exactly the plan's keys and request-time inputs."""
    accepted = plan.accepted_columns
    unknown = [str(c) for c in frame.columns if c not in accepted]
    missing = [c for c in accepted if c not in frame.columns
               and not any(r.name == c and not r.required for r in plan.request_columns)]
    if unknown or missing:
        parts = ([f"unknown column(s) {', '.join(map(repr, unknown))}"] if unknown else []) + \
                ([f"missing column(s) {', '.join(map(repr, missing))}"] if missing else [])
        raise bad_request(f"{'; '.join(parts)}: {plan.label} takes {', '.join(accepted)}")


def key_values(frame: pd.DataFrame, key: KeyColumn) -> list[Any]:
    """The values of key column ``key`` as Python values of the key's type (refusing nulls and other types)."""
    series = frame[key.name]
    if series.isna().any():
        rows = [int(i) for i in np.flatnonzero(series.isna().to_numpy())[:5]]
        raise bad_request(f"key column {key.name!r} has null values (rows {', '.join(map(str, rows))})")
    integers = pd.api.types.is_integer_dtype(series.dtype)
    if key.kind == INTEGER_KEY and integers:
        return [int(v) for v in series.tolist()]
    if key.kind == STRING_KEY and integers:
        return [str(int(v)) for v in series.tolist()]
    values = series.tolist()
    if key.kind == STRING_KEY and all(isinstance(v, str) for v in values):
        return values
    wanted = int if key.kind == INTEGER_KEY else str
    first = next((v for v in values if not isinstance(v, wanted) or isinstance(v, bool)), values[0])
    expected = "integers" if key.kind == INTEGER_KEY else "strings"
    raise bad_request(f"key column {key.name!r} takes {expected}, got {first!r} ({type(first).__name__})")


def typed_column(values: list[Any], column: InputColumn) -> pd.Series:
    """``values`` as the pandas type the model's signature gives ``column`` (a value that does not convert is a 400)."""
    dtype = _PANDAS_TYPES.get(column.spark_type, "object")
    try:
        if dtype == "object":
            series = pd.Series(values, dtype="object")
            return series.where(series.notna(), None)
        if dtype.startswith("datetime"):
            return pd.Series(pd.to_datetime(values, utc=True)).dt.tz_localize(None)
        if dtype.startswith("float"):
            return pd.Series([np.nan if v is None else v for v in values], dtype=dtype)
        return pd.Series(values, dtype=dtype)
    except (TypeError, ValueError) as exc:
        raise bad_request(f"column {column.name!r} takes {column.spark_type} values: {_first_line(exc)}") from None


class OnlineFeatureModel(PythonModel):
    """pyfunc model: request keys -> online features from Feast -> the wrapped model's prediction."""

    # The request is checked here (keys, types); MLflow's type-hint validation would only warn.
    _skip_type_hint_validation = True

    def __init__(self, plan: ServingPlan) -> None:
        self.plan = plan

    def load_context(self, context) -> None:  # noqa: ANN001 - MLflow's PythonModelContext
        """Load the wrapped model and open the Feast repository of the model configuration."""
        repo = (context.model_config or {}).get(FEAST_REPO_CONFIG)
        if not repo:
            raise MlflowException(f"{self.plan.label}: no Feast repository: set the model configuration "
                                  f"{FEAST_REPO_CONFIG!r}")
        self._repo = str(repo)
        self._model = load_once(context.artifacts[MODEL_ARTIFACT], self.plan.flavor)
        self._reads = feast_reads(self.plan.lookups)
        self._groups = RequestGroups(self._score_group)
        self._lock = threading.Lock()
        self._store = self._open_store()
        self._store_file = online_store_file(self._store)
        self._store_identity = _file_identity(self._store_file)

    def _open_store(self) -> Any:
        from feast import FeatureStore

        return FeatureStore(repo_path=self._repo)

    def check_online_store(self) -> None:
        """Read one made-up key of every feature table: fails when the online store cannot serve them."""
        probe = {k.name: [0 if k.kind == INTEGER_KEY else ""] for k in self.plan.keys}
        self.read_features(probe)

    def _current_store(self) -> Any:
        """Feast's store, opened again when its SQLite file was replaced (its open connection would read
        the old file); 503 when the file is gone."""
        if self._store_file is None:
            return self._store
        identity = _file_identity(self._store_file)
        if identity is None:
            raise MlflowException(f"online store file {self._store_file} does not exist (run featurelake "
                                  "materialize)", error_code=TEMPORARILY_UNAVAILABLE)
        if identity != self._store_identity:
            with self._lock:
                if identity != self._store_identity:
                    logger.info("online store file %s was replaced: reopening it", self._store_file)
                    self._store, self._store_identity = self._open_store(), identity
        return self._store

    def read_features(self, keys: dict[str, list[Any]]) -> dict[str, list[Any]]:
        """Read the plan's features for the key values ``keys`` (request column -> values).

        Returns feature name -> one value per row (None when the online store has no value).
        """
        store = self._current_store()
        features: dict[str, list[Any]] = {}
        for read in self._reads:
            rows = {join_key: keys[column] for join_key, column in read.key_columns}
            try:
                response = store.get_online_features(features=list(read.refs), entity_rows=rows,
                                                     full_feature_names=True).to_dict()
            except Exception as exc:  # Feast and its stores raise many types
                tables = sorted({ref.split(":", 1)[0] for ref in read.refs})
                raise MlflowException(f"online store read of feature table(s) {', '.join(tables)} failed: "
                                      f"{_first_line(exc)}", error_code=TEMPORARILY_UNAVAILABLE) from None
            for ref in read.refs:
                table, feature = ref.split(":", 1)
                features[feature] = response[f"{table}__{feature}"]
        return features

    def predict(self, context, model_input, params=None):  # noqa: ANN001, ANN201 - MLflow's signature
        """Score the request's rows; see the module docstring."""
        plan = self.plan
        frame = request_frame(model_input)
        check_columns(frame, plan)
        keys = {k.name: key_values(frame, k) for k in plan.keys}
        given = {c.name: typed_column(frame[c.name].tolist(), c).tolist()
                 for c in plan.request_columns if c.name in frame.columns}
        return self._records(keys, self._groups.submit(_Rows(keys, given, len(frame))))

    def _score_group(self, group: list[Pending]) -> None:
        """Score the rows of concurrent requests with one online read and one model call (see
        :mod:`inference.request_groups`); a request refused here gets its own error."""
        first: _Rows = group[0].payload
        keys = {name: [v for pending in group for v in pending.payload.keys[name]] for name in first.keys}
        try:
            values = self.read_features(keys)
        except MlflowException as exc:
            for pending in group:
                pending.error = exc
            return
        ready, start = [], 0
        for pending in group:
            rows: _Rows = pending.payload
            part = {name: column[start:start + rows.count] for name, column in values.items()}
            start += rows.count
            try:
                self._refuse_nulls(part, rows.keys)
                ready.append((pending, {**part, **rows.given}))
            except MlflowException as exc:
                pending.error = exc
        if not ready:
            return
        together = {name: [v for _, part in ready for v in part[name]] for name in ready[0][1]}
        try:
            scores = self._scores(together)
        except Exception:  # noqa: BLE001 - find whose rows fail: score each request alone
            if len(ready) == 1:
                raise
            for pending, part in ready:
                try:
                    pending.result = self._scores(part)
                except Exception as exc:  # noqa: BLE001 - raised in the request's own thread
                    pending.error = exc
            return
        start = 0
        for pending, _ in ready:
            pending.result = scores.rows(start, start + pending.payload.count)
            start += pending.payload.count

    def _scores(self, values: dict[str, list[Any]]) -> _Scores:
        """The wrapped model's answer for ``values`` (input name -> one value per row)."""
        inputs = pd.DataFrame({c.name: typed_column(values[c.name], c) for c in self.plan.inputs if c.name in values})
        return scores_of(model_output(self._model, inputs, self.plan.with_probability), len(inputs),
                         self.plan.prediction_type)

    def _refuse_nulls(self, values: dict[str, list[Any]], keys: dict[str, list[Any]]) -> None:
        """404 when a key has no online value for an input whose type cannot be null."""
        absent = [c.name for c in self.plan.inputs
                  if c.spark_type in _NO_NULLS and c.name in values and any(pd.isna(v) for v in values[c.name])]
        if not absent:
            return
        rows = [i for i in range(len(next(iter(keys.values()))))
                if any(pd.isna(values[name][i]) for name in absent)][:5]
        named = "; ".join(", ".join(f"{k}={column[i]!r}" for k, column in keys.items()) for i in rows)
        raise MlflowException(f"no online value of {', '.join(absent)} for {named}: {self.plan.label} takes them "
                              "as integers or booleans, which cannot be null", error_code=RESOURCE_DOES_NOT_EXIST)

    def _records(self, keys: dict[str, list[Any]], scores: _Scores) -> list[dict[str, Any]]:
        """One dict per row: the keys, prediction (probability), model name and version.

        Records, not a DataFrame: the scoring server writes them as they are; building a DataFrame
        and turning it back into records cost a single-row request about 1 ms of CPU.
        """
        plan = self.plan
        names = list(keys)
        predictions = scores.prediction.tolist()
        probabilities = None if scores.probability is None else scores.probability.tolist()
        records = []
        for i, prediction in enumerate(predictions):
            record = {name: keys[name][i] for name in names}
            record["prediction"] = prediction
            if probabilities is not None:
                record["probability"] = probabilities[i]
            record["model_name"], record["model_version"] = plan.model_name, plan.model_version
            records.append(record)
        return records


def online_store_file(store: Any) -> str | None:
    """The SQLite file of a Feast store's online store (None for other online stores)."""
    online = store.config.online_store
    if getattr(online, "type", None) != "sqlite":
        return None
    path = Path(online.path)
    return str(path if path.is_absolute() else Path(store.repo_path) / path)


def _file_identity(path: str | None) -> tuple[int, int] | None:
    try:
        stat = os.stat(path) if path else None
    except FileNotFoundError:
        return None
    return (stat.st_dev, stat.st_ino) if stat else None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
