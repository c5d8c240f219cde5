"""Real-time scoring: MLflow's scoring server for a registry model whose features come from Feast's
online store.

``serve`` resolves the model reference to one registry version, builds the pyfunc model of
:mod:`inference.serving_model` around it (the version's own model files, and the feature lookups
its training-set spec names, checked against the Feast registry), saves and loads it as an MLflow
model and serves it with MLflow's own scoring server app (``mlflow.pyfunc.scoring_server``:
``POST /invocations`` with ``dataframe_split`` or ``dataframe_records``, ``GET /ping``,
``/health``, ``/version``) under uvicorn. In front of that app, :class:`ScoringApp`

* refuses a request body over ``max_request_bytes`` (413) before MLflow parses it;
* answers every error as one line of JSON, ``{"error_code": ..., "message": ...}``: MLflow's own
  messages can span lines, echo the request data and carry a stack trace;
* adds ``X-Model-Name`` and ``X-Model-Version`` to every response (the rows carry them too);
* swaps to another served version between two requests, without a restart.

Freshness: features are read from the online store at each request, so a ``featurelake
materialize`` shows in the next answer. The model reference (``@champion``, ``/Production``) is
resolved again every ``reload_interval`` seconds; when it names another version, that version is
built and checked in the background and then swapped in (requests keep being answered by the old
version meanwhile; if the new one cannot be served, the old one stays and the failure is logged).
``reload_interval`` 0 pins the version resolved at start.

    options = ServeOptions("models:/churn_model@champion", port=5001)
    serve(config, options)                                          # until SIGINT/SIGTERM
    save_serving_model(config, "models:/churn_model@champion", "served-model")   # for mlflow models serve
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import pickle
import shutil
import signal
import socket
import sys
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Awaitable, Callable, Iterator

from featurestore.core.config import Config
from featurestore.core.errors import BadInputError, ConflictError, DependencyUnavailableError, NotFoundError
from featurestore.core.secrets import RedactingFilter, secret_values
from featurestore.feast_repo import feature_store
from featurestore.online import managed_views
from featurestore.training_set import TrainingSetSpec
from inference.model_reference import ResolvedModel, parse_model_uri, resolve_model
from inference.scoring import ScoringModel, _package_folder, load_scoring_model
from inference.serving_model import (
    FEAST_REPO_CONFIG, INTEGER_KEY, STRING_KEY, InputColumn, KeyColumn, OnlineFeatureModel, OnlineLookup,
    ServingPlan, online_store_file,
)
from inference.serving_records import ServingRecord, remove_record, write_record
from inference.tracking import load_spec

logger = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 5001
DEFAULT_RELOAD_INTERVAL = 30.0
DEFAULT_MAX_REQUEST_BYTES = 1024 * 1024
DRAIN_LIMIT = 64 * 1024 * 1024  # an oversized body is read (and dropped) up to this, so the client gets the 413
SERVING_MODEL = "serving_model"
WORKER_SETTINGS = "FEATURELAKE_SERVE_WORKER"  # environment variable: the pickled _WorkerSettings of `--workers N`
# uvicorn kills a worker that does not answer its supervisor's ping within this; a worker busy loading a model
# on a loaded 2-core machine can take longer than uvicorn's default 5 s.
WORKER_HEALTHCHECK_SECONDS = 120
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


@dataclass(frozen=True)
class ServeOptions:
    """How ``serve`` runs: the model reference, the address and the limits."""

    model_uri: str
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    reload_interval: float = DEFAULT_RELOAD_INTERVAL
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES
    workers: int = 1

    def check(self) -> None:
        """Refuse values that cannot work (:class:`BadInputError` naming the option)."""
        parse_model_uri(self.model_uri)
        if not 0 <= self.port <= 65535:
            raise BadInputError(f"--port {self.port}: expected 0-65535 (0: any free port)")
        if self.reload_interval < 0:
            raise BadInputError(f"--reload-interval {self.reload_interval}: expected seconds >= 0 (0: never)")
        if self.max_request_bytes < 1024:
            raise BadInputError(f"--max-request-bytes {self.max_request_bytes}: expected at least 1024")
        if not 1 <= self.workers <= 64:
            raise BadInputError(f"--workers {self.workers}: expected 1-64")

    @property
    def follows_reference(self) -> bool:
        """True when the server resolves the reference again (not pinned by 0 or a version number)."""
        return self.reload_interval > 0 and parse_model_uri(self.model_uri).version is None


@dataclass(frozen=True)
class ServedVersion:
    """A model version ready to answer requests: its plan and MLflow's scoring server app for it."""

    resolved: ResolvedModel
    plan: ServingPlan
    model_path: str
    app: Any  # the FastAPI app of mlflow.pyfunc.scoring_server.init


# --- building the serving model -------------------------------------------------------------------

def _key_kind(table: str, name: str, value_type: Any) -> str:
    kind = {"INT32": INTEGER_KEY, "INT64": INTEGER_KEY, "STRING": STRING_KEY}.get(value_type.name)
    if kind is None:
        raise BadInputError(f"feature table {table!r}: key {name!r} is {value_type.name.lower()}; "
                            "serving looks up integer and string keys only")
    return kind


def serving_plan(config: Config, scoring: ScoringModel, spec: TrainingSetSpec) -> ServingPlan:
    """Match the model's inputs with the feature tables of its training-set spec in the Feast registry.

    Raises:
        NotFoundError: a feature table or feature of the spec is not registered in Feast.
        BadInputError: a key type serving cannot take, or one key column with two types.
    """
    resolved = scoring.resolved
    label = f"model {resolved.name!r} version {resolved.version}"
    views = managed_views(feature_store(config))
    model_inputs = set(scoring.feature_names)
    lookups, looked_up, kinds = [], set(), {}
    for lookup in spec.feature_lookups():
        view = _materialized_view(views, lookup.table, label, config.feast.repo_path)
        columns = {c.name: c for c in view.entity_columns}
        join_keys = [name for name in view.entities if name in columns] or list(columns)
        lookup_keys = list(lookup.lookup_keys or join_keys)
        available = [f.name for f in view.features]
        unknown = [f for f in (lookup.features or []) if f not in available]
        if unknown:
            raise NotFoundError(f"{label} reads feature(s) {', '.join(unknown)} of table {lookup.table!r}, which "
                                f"Feast does not have (it has {', '.join(available)})")
        wanted = [f for f in (lookup.features or available) if f in model_inputs and f not in looked_up]
        if not wanted:
            continue
        for join_key, column in zip(join_keys, lookup_keys):
            kind = _key_kind(lookup.table, join_key, columns[join_key].dtype.to_value_type())
            if kinds.setdefault(column, kind) != kind:
                raise BadInputError(f"{label}: key column {column!r} is {kinds[column]} for one feature table "
                                    f"and {kind} for {lookup.table!r}")
        lookups.append(OnlineLookup(lookup.table, tuple(wanted), tuple(join_keys), tuple(lookup_keys)))
        looked_up.update(wanted)
    if not lookups:
        raise BadInputError(f"{label}: its training-set spec looks up none of its inputs "
                            f"({', '.join(scoring.feature_names)}); nothing to read from the online store")
    ordered_keys = [k for k in spec.entity_keys if k in kinds] + [k for k in kinds if k not in spec.entity_keys]
    inputs = tuple(InputColumn(name, spark_type, required) for name, spark_type, required in scoring.input_columns)
    return ServingPlan(
        model_name=resolved.name, model_version=resolved.version,
        keys=tuple(KeyColumn(k, kinds[k]) for k in ordered_keys),
        request_columns=tuple(c for c in inputs if c.name not in looked_up),
        lookups=tuple(lookups), inputs=inputs,
        flavor="sklearn" if _is_sklearn(scoring) else "python_function",
        with_probability=scoring.has_probability, prediction_type=scoring.prediction_type,
    )


def _materialized_view(views: dict[str, Any], table: str, label: str, repo: str) -> Any:
    """The Feast feature view of ``table``; NotFoundError unless it is registered and was materialized."""
    view = views.get(table)
    if view is None:
        raise NotFoundError(f"{label} reads feature table {table!r}, which is not registered in Feast repo {repo} "
                            "(run featurelake build)")
    if not view.materialization_intervals:
        raise NotFoundError(f"{label} reads feature table {table!r}, which was never materialized into the online "
                            f"store of Feast repo {repo}: run featurelake materialize")
    return view


def _is_sklearn(scoring: ScoringModel) -> bool:
    from mlflow.models import Model

    return "sklearn" in Model.load(scoring.local_path).flavors


def _training_spec(config: Config, resolved: ResolvedModel) -> TrainingSetSpec:
    label = f"model {resolved.name!r} version {resolved.version}"
    if resolved.run_id is None:
        raise BadInputError(f"{label} has no MLflow run, so no training-set spec to look its features up with")
    try:
        spec = load_spec(resolved.run_id, config)
    except NotFoundError:
        raise BadInputError(f"{label} has no training-set spec (run {resolved.run_id}); serving looks features up "
                            "with it: serve a model trained by featurelake train") from None
    if not spec.lookups:
        raise BadInputError(f"{label}: its training-set spec has no feature lookups")
    return spec


def check_online_store(config: Config) -> str | None:
    """Return the online store's SQLite file (None for another online store); NotFoundError if it is missing.

    Feast's SQLite store would create an empty file and fail on its missing tables at the first request.
    """
    path = online_store_file(feature_store(config))
    if path is not None and not Path(path).is_file():
        raise NotFoundError(f"online store file {path} does not exist: run featurelake materialize first")
    return path


def build_serving_model(config: Config, resolved: ResolvedModel, target: str) -> ServingPlan:
    """Save the serving model of version ``resolved`` (an MLflow pyfunc model folder) at ``target``.

    The folder holds the version's own model files, the plan and the code of this package; its
    model configuration names the project's Feast repository.
    """
    import mlflow

    from inference import serving_model
    from inference.training import pip_requirements

    scoring = load_scoring_model(resolved, with_probability=True, work_dir=str(Path(target).parent / "download"))
    spec = _training_spec(config, resolved)
    plan = serving_plan(config, scoring, spec)
    code = _package_folder(serving_model, Path(target).with_name(Path(target).name + "-code"))
    mlflow.pyfunc.save_model(
        path=target,
        python_model=OnlineFeatureModel(plan),
        artifacts={serving_model.MODEL_ARTIFACT: scoring.local_path},
        code_paths=[code],
        model_config={FEAST_REPO_CONFIG: str(config.feast.repo_path)},
        pip_requirements=[*pip_requirements(), *_feast_requirement()],
        metadata={"featurelake.model_name": plan.model_name, "featurelake.model_version": plan.model_version,
                  "featurelake.entity_keys": [k.name for k in plan.keys]},
    )
    logger.info("%s: keys %s, %d feature(s) from %s", plan.label, ", ".join(k.name for k in plan.keys),
                sum(len(x.features) for x in plan.lookups), ", ".join(x.table for x in plan.lookups))
    return plan


def _feast_requirement() -> list[str]:
    from importlib.metadata import version

    return [f"feast=={version('feast')}"]


def save_serving_model(config: Config, model_uri: str, target: str) -> tuple[ResolvedModel, ServingPlan]:
    """Resolve ``model_uri`` and save its serving model at ``target`` (for ``mlflow models serve`` or a container).

    Raises:
        ConflictError: ``target`` exists and is not empty.
    """
    folder = Path(target)
    if folder.exists() and any(folder.iterdir()):
        raise ConflictError(f"--save-to {target}: the folder exists and is not empty")
    resolved = resolve_model(config, model_uri)
    check_online_store(config)
    with tempfile.TemporaryDirectory(prefix="featurelake-serving-") as scratch:
        plan = build_serving_model(config, resolved, str(Path(scratch) / SERVING_MODEL))
        folder.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(Path(scratch) / SERVING_MODEL, folder, dirs_exist_ok=True)
    return resolved, plan


def load_served_version(config: Config, resolved: ResolvedModel, work_dir: str) -> ServedVersion:
    """Build, load and check the serving model of ``resolved``, and MLflow's scoring server app for it.

    Raises:
        NotFoundError: the online store file, or a feature table in it, is missing.
        DependencyUnavailableError: the online store cannot be read.
    """
    check_online_store(config)
    folder = Path(tempfile.mkdtemp(prefix=f"v{resolved.version}-", dir=work_dir))
    target = str(folder / SERVING_MODEL)
    build_serving_model(config, resolved, target)
    return open_served_version(config, resolved, target)


def open_served_version(config: Config, resolved: ResolvedModel, path: str) -> ServedVersion:
    """Load the serving model saved at ``path``, read the online store once, and build MLflow's app for it."""
    import mlflow
    from mlflow.exceptions import MlflowException
    from mlflow.pyfunc import scoring_server

    pyfunc = mlflow.pyfunc.load_model(path, model_config={FEAST_REPO_CONFIG: str(config.feast.repo_path)})
    model = pyfunc.unwrap_python_model()
    plan = model.plan
    try:
        model.check_online_store()
    except MlflowException as exc:
        if "no such table" in exc.message:
            raise NotFoundError(f"{plan.label}: feature table(s) {', '.join(x.table for x in plan.lookups)} are not "
                                f"all in the online store ({exc.message}): run featurelake materialize") from None
        raise DependencyUnavailableError(f"{plan.label}: {exc.message}") from None
    return ServedVersion(resolved, plan, path, scoring_server.init(pyfunc))


# --- the ASGI application ---------------------------------------------------------------------------

class _BodyTooLarge(Exception):
    pass


class _ClientGone(Exception):
    pass


def one_line_error(status: int, body: bytes) -> dict[str, str]:
    """MLflow's (or the web framework's) error body as ``{"error_code", "message"}`` of one line.

    The prefix MLflow puts before a model's own message ("Failed to predict data '<the request>'.
    Error: ...") is dropped, and so is any stack trace.
    """
    code, message = "", ""
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    if isinstance(data, dict):
        code = str(data.get("error_code") or "")
        message = str(data.get("message") or data.get("detail") or "")
    elif body:
        message = body.decode("utf-8", "replace")
    if message.startswith("Failed to predict data") and "\nError: " in message:
        message = message.rpartition("\nError: ")[2]
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    if status >= 500 and not code:
        message = "internal error of the scoring server (see its log)"
    else:
        message = lines[0] if lines else f"HTTP {status}"
    return {"error_code": code or _STATUS_CODES.get(status, "BAD_REQUEST"), "message": message[:2000]}


_STATUS_CODES = {404: "ENDPOINT_NOT_FOUND", 405: "METHOD_NOT_ALLOWED", 413: "REQUEST_TOO_LARGE",
                 415: "UNSUPPORTED_MEDIA_TYPE", 500: "INTERNAL_ERROR", 503: "TEMPORARILY_UNAVAILABLE",
                 504: "DEADLINE_EXCEEDED"}


async def _send_json(send: Send, status: int, payload: dict[str, str], headers: list[tuple[bytes, bytes]]) -> None:
    body = json.dumps(payload).encode() + b"\n"
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            *headers]})
    await send({"type": "http.response.body", "body": body})


class _ResponseFilter:
    """The ``send`` handed to MLflow's app: adds the model headers, turns error bodies into one line."""

    def __init__(self, send: Send, headers: list[tuple[bytes, bytes]]) -> None:
        self._send = send
        self._headers = headers
        self._error_start: Message | None = None
        self._error_body: list[bytes] = []
        self.started = False

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.started = True
            if message["status"] >= 400:
                self._error_start = message
                return
            await self._send({**message, "headers": [*message.get("headers", []), *self._headers]})
            return
        if message["type"] == "http.response.body" and self._error_start is not None:
            self._error_body.append(message.get("body", b""))
            if not message.get("more_body", False):
                status = self._error_start["status"]
                payload = one_line_error(status, b"".join(self._error_body))
                if status >= 500:
                    logger.error("request failed with %d: %s", status, b"".join(self._error_body)[:4000])
                await _send_json(self._send, status, payload, self._headers)
            return
        await self._send(message)


class ScoringApp:
    """The ASGI application ``serve`` runs (see the module docstring)."""

    def __init__(self, served: ServedVersion, max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES) -> None:
        self._served = served
        self.max_request_bytes = max_request_bytes

    @property
    def served(self) -> ServedVersion:
        """The version answering new requests."""
        return self._served

    def swap(self, served: ServedVersion) -> None:
        """Answer the next requests with ``served`` (requests under way finish with the old version)."""
        self._served = served

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        served = self._served  # one version for the whole request
        headers = [(b"x-model-name", served.plan.model_name.encode()),
                   (b"x-model-version", str(served.plan.model_version).encode())]
        try:
            body = await _read_body(scope, receive, self.max_request_bytes)
        except _BodyTooLarge:
            await _send_json(send, 413, {"error_code": "REQUEST_TOO_LARGE", "message": (
                f"request body over {self.max_request_bytes} bytes (--max-request-bytes): send fewer rows per "
                "request")}, headers)
            return
        except _ClientGone:
            return
        filtered = _ResponseFilter(send, headers)
        try:
            await served.app(scope, _replay(body, receive), filtered)
        except Exception:  # noqa: BLE001 - the server's last line of defence: log it, answer one line
            logger.exception("request %s %s failed", scope.get("method"), scope.get("path"))
            if not filtered.started:
                await _send_json(send, 500, one_line_error(500, b""), headers)


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def _read_body(scope: Scope, receive: Receive, limit: int) -> bytes:
    """The whole request body; :class:`_BodyTooLarge` past ``limit`` bytes (read on, dropped, up to
    :data:`DRAIN_LIMIT` so that the client is still reading when the 413 comes)."""
    declared = dict(scope.get("headers") or []).get(b"content-length", b"")
    too_large = declared.isdigit() and int(declared) > limit
    if too_large and int(declared) > DRAIN_LIMIT:
        raise _BodyTooLarge
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _ClientGone
        chunk = message.get("body", b"")
        size += len(chunk)
        too_large = too_large or size > limit
        if too_large and size > DRAIN_LIMIT:
            raise _BodyTooLarge
        if not too_large:
            chunks.append(chunk)
        if not message.get("more_body", False):
            break
    if too_large:
        raise _BodyTooLarge
    return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that gives the body read already, then whatever the connection says next."""
    given = False

    async def replay() -> Message:
        nonlocal given
        if not given:
            given = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


# --- following the model reference ------------------------------------------------------------------

class Reloader:
    """Resolves the model reference every ``interval`` seconds and swaps in the version it names."""

    def __init__(self, config: Config, options: ServeOptions, app: ScoringApp, work_dir: str,
                 on_swap: Callable[[ServedVersion], None]) -> None:
        self._config = config
        self._options = options
        self._app = app
        self._work_dir = work_dir
        self._on_swap = on_swap
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="featurelake-reloader", daemon=True)

    def start(self) -> None:
        """Start checking in a background thread."""
        self._thread.start()

    def stop(self) -> None:
        """Stop checking (a version being built is dropped)."""
        self._stop.set()
        self._thread.join(timeout=5)

    def _loop(self) -> None:
        while not self._stop.wait(self._options.reload_interval):
            try:
                self.check()
            except Exception as exc:  # noqa: BLE001 - keep serving the current version, try again later
                logger.error("%s: cannot move to the version it names now, still serving version %d: %s",
                             self._options.model_uri, self._app.served.plan.model_version, exc)

    def check(self) -> bool:
        """Resolve the reference; when it names another version, load it and swap. True when swapped."""
        resolved = resolve_model(self._config, self._options.model_uri)
        current = self._app.served
        if resolved.version == current.resolved.version:
            return False
        logger.info("%s now names version %d (serving %d): loading it", self._options.model_uri, resolved.version,
                    current.resolved.version)
        served = load_served_version(self._config, resolved, self._work_dir)
        if self._stop.is_set():
            return False
        self._app.swap(served)
        self._on_swap(served)
        logger.info("now serving %s version %d", served.plan.model_name, served.plan.model_version)
        return True


# --- running ----------------------------------------------------------------------------------------

def bind_socket(host: str, port: int) -> socket.socket:
    """Listen on ``host``:``port`` (0: a free port); ConflictError when the port is taken."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConflictError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.listen(2048)
    return sock


@contextlib.contextmanager
def _signals_stop(server: Any) -> Iterator[None]:
    """SIGINT and SIGTERM stop ``server`` and let ``serve`` return (and remove its record).

    uvicorn stops on these signals and then raises the signal again for the handler it found
    before: Python's default handlers would end the process there, before any clean-up.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, frame: Any) -> None:  # noqa: ARG001 - a signal handler's signature
        server.should_exit = True

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


class _RecordKeeper:
    """Keeps the serving record of a server up to date when it moves to another version."""

    def __init__(self, config: Config, record: ServingRecord) -> None:
        self.config = config
        self.record = record

    def moved_to(self, served: ServedVersion) -> None:
        """Record that ``served`` answers from now on."""
        self.record = self.record.serving_version(served.plan.model_version)
        write_record(self.config, self.record)


def _start_reloader(config: Config, options: ServeOptions, app: ScoringApp, work_dir: str,
                    keeper: _RecordKeeper) -> Reloader | None:
    if not options.follows_reference:
        return None
    reloader = Reloader(config, options, app, work_dir, keeper.moved_to)
    reloader.start()
    return reloader


def serve(config: Config, options: ServeOptions, ready: Callable[[ServingRecord], None] | None = None) -> None:
    """Serve ``options.model_uri`` until the process gets SIGINT or SIGTERM.

    ``ready`` is called with the serving record once the server listens. With ``options.workers``
    above 1, uvicorn's supervisor runs that many worker processes on the same socket (each opens
    the serving model built here and follows the reference itself).

    Raises:
        BadInputError: a bad option or model reference; NotFoundError: the model, version, alias, online
        store file or a materialized feature table does not exist; ConflictError: the port is taken.
    """
    options.check()
    resolved = resolve_model(config, options.model_uri)
    sock = bind_socket(options.host, options.port)  # a taken port fails before the model is built
    work_dir = tempfile.mkdtemp(prefix="featurelake-serve-")
    keeper = None
    try:
        served = load_served_version(config, resolved, work_dir)
        keeper = _RecordKeeper(config, ServingRecord.now(
            served.plan.model_name, served.plan.model_version, options.model_uri, options.host,
            sock.getsockname()[1], options.reload_interval))
        write_record(config, keeper.record)
        logger.info("serving %s (%s version %d) at %s with %d worker process(es)", options.model_uri,
                    served.plan.model_name, served.plan.model_version, keeper.record.url, options.workers)
        if options.workers == 1:
            _serve_here(config, options, served, keeper, sock, work_dir, ready)
        else:
            _serve_in_workers(config, options, served, keeper, sock, work_dir, ready)
        logger.info("stopped serving %s at %s", options.model_uri, keeper.record.url)
    finally:
        sock.close()
        if keeper is not None:
            remove_record(config, keeper.record)
        shutil.rmtree(work_dir, ignore_errors=True)


def _serve_here(config: Config, options: ServeOptions, served: ServedVersion, keeper: _RecordKeeper,
                sock: socket.socket, work_dir: str, ready: Callable[[ServingRecord], None] | None) -> None:
    """Serve in this process."""
    import uvicorn

    app = ScoringApp(served, options.max_request_bytes)
    reloader = _start_reloader(config, options, app, work_dir, keeper)
    try:
        server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on",
                                               timeout_keep_alive=30))
        if ready is not None:
            ready(keeper.record)
        with _signals_stop(server):
            server.run(sockets=[sock])
    finally:
        if reloader is not None:
            reloader.stop()


@dataclass(frozen=True)
class _WorkerSettings:
    """What a worker process of ``serve --workers N`` needs (handed over in a file only this user reads)."""

    config: Config
    options: ServeOptions
    resolved: ResolvedModel
    model_path: str       # the serving model the parent built and checked
    record: ServingRecord
    work_dir: str
    log_level: int


def _serve_in_workers(config: Config, options: ServeOptions, served: ServedVersion, keeper: _RecordKeeper,
                      sock: socket.socket, work_dir: str, ready: Callable[[ServingRecord], None] | None) -> None:
    """Serve with ``options.workers`` processes under uvicorn's supervisor; return when it stops."""
    import uvicorn
    from uvicorn.config import STARTUP_FAILURE
    from uvicorn.supervisors import Multiprocess

    settings = Path(work_dir) / "worker-settings.pickle"
    settings.touch(mode=0o600)
    settings.write_bytes(pickle.dumps(_WorkerSettings(config, options, served.resolved, served.model_path,
                                                      keeper.record, work_dir, logging.getLogger().level)))
    os.environ[WORKER_SETTINGS] = str(settings)
    uv_config = uvicorn.Config(f"{__name__}:worker_app", factory=True, workers=options.workers, log_level="warning",
                               access_log=False, lifespan="on", timeout_keep_alive=30,
                               timeout_worker_healthcheck=WORKER_HEALTHCHECK_SECONDS)
    with _signals_restored():
        supervisor = Multiprocess(uv_config, sockets=[sock])
        if ready is not None:
            ready(keeper.record)
        supervisor.run()
    if any(process.exitcode == STARTUP_FAILURE for process in supervisor.processes):
        raise DependencyUnavailableError("a worker process could not start serving; its error is in the log above")


def worker_app() -> ScoringApp:
    """uvicorn's application factory in each worker process of ``serve --workers N``: opens the serving
    model the parent built and follows the reference as a single-process server does."""
    settings: _WorkerSettings = pickle.loads(Path(os.environ[WORKER_SETTINGS]).read_bytes())
    logging.basicConfig(level=settings.log_level, stream=sys.stderr, format=LOG_FORMAT, force=True)
    for handler in logging.getLogger().handlers:
        handler.addFilter(RedactingFilter(secret_values(os.environ)))
    served = open_served_version(settings.config, settings.resolved, settings.model_path)
    app = ScoringApp(served, settings.options.max_request_bytes)
    work_dir = tempfile.mkdtemp(prefix=f"worker-{os.getpid()}-", dir=settings.work_dir)
    _start_reloader(settings.config, settings.options, app, work_dir, _RecordKeeper(settings.config, settings.record))
    return app


@contextlib.contextmanager
def _signals_restored() -> Iterator[None]:
    """Put back, afterwards, the signal handlers uvicorn's supervisor replaces for good."""
    from uvicorn.supervisors.multiprocess import SIGNALS

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.getsignal(sig) for sig in SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
