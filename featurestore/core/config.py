"""Project configuration: one YAML file, every value overridable by environment variable.

A configuration file looks like this (every key is optional)::

    warehouse: warehouse            # folder (or URI) holding the Delta tables
    source_root: .                  # relative source paths are resolved against it
    definitions: jobs.demo.feature_tables        # module (or .py file) that defines FEATURE_TABLES
    metadata_reader: auto           # auto (delta-rs, no JVM, where it can read) | spark
    spark:
      master: local[*]
      app_name: featurelake
      quick_start: auto             # auto | always | never (see featurestore/spark_session.py)
      conf: {spark.sql.shuffle.partitions: "4"}
    mlflow:
      tracking_uri: sqlite:///mlflow.db
      experiment: featurelake
    feast:
      repo_path: feast_repo
      project: featurelake
    training: {...}                 # the sections of the layers above the core (training,
    promotion: {...}                # promotion, monitoring) are defined by their owners:
    monitoring: {...}               # see inference/settings.py and :class:`Section`

Relative paths are resolved against the folder of the configuration file. A scalar value
``section.key`` is overridden by the environment variable ``FEATURELAKE_SECTION_KEY``
(for example ``FEATURELAKE_MLFLOW_TRACKING_URI``); a top-level key ``key`` by
``FEATURELAKE_KEY``. Unknown keys and values of the wrong type are refused.
"""

from __future__ import annotations

import dataclasses
import os
import re
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, Mapping, Sequence, TypeVar

import yaml

from featurestore.core.errors import BadInputError

ENV_PREFIX = "FEATURELAKE_"
CONFIG_ENV_VAR = "FEATURELAKE_CONFIG"
DEFAULT_CONFIG_NAME = "featurelake.yaml"
QUICK_START_CHOICES = ("auto", "always", "never")
METADATA_READER_CHOICES = ("auto", "spark")


@dataclass
class SparkSettings:
    """How the Spark session is built when featurelake builds it (local runs)."""

    master: str = "local[*]"
    app_name: str = "featurelake"
    # auto: quick-start JVM options for local jobs that know their input is small; always; never
    quick_start: str = "auto"
    conf: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.quick_start not in QUICK_START_CHOICES:
            raise BadInputError(f"spark.quick_start must be one of {', '.join(QUICK_START_CHOICES)}, "
                                f"not {self.quick_start!r}")


@dataclass
class MlflowSettings:
    """Where MLflow tracking and the model registry live."""

    tracking_uri: str = "sqlite:///mlflow.db"
    registry_uri: str | None = None
    experiment: str = "featurelake"
    artifact_location: str = "mlartifacts"


@dataclass
class FeastSettings:
    """The Feast feature repository that featurelake registers tables in."""

    repo_path: str = "feast_repo"
    project: str = "featurelake"
    # Feast online store settings as in feature_store.yaml (empty: SQLite inside the repo).
    online_store: dict[str, str] = field(default_factory=dict)


@dataclass
class Config:
    """The whole project configuration. Build it with :func:`load_config`.

    The core owns the sections above; a section of a layer above it (``training``,
    ``promotion``, ``monitoring``: see :mod:`inference.settings`) is kept in ``sections`` and
    read through its owner's :class:`Section`.
    """

    warehouse: str = "warehouse"
    source_root: str = "."
    definitions: str | None = None
    # auto: Delta metadata and small tables are read with delta-rs where it can (no JVM); spark: always Spark
    metadata_reader: str = "auto"
    spark: SparkSettings = field(default_factory=SparkSettings)
    mlflow: MlflowSettings = field(default_factory=MlflowSettings)
    feast: FeastSettings = field(default_factory=FeastSettings)
    base_dir: str = field(default=".", metadata={"internal": True})
    # Sections owned above the core, by name: the file's mapping until the owner first reads it
    # (Section.of), then the owner's settings object.
    sections: dict[str, Any] = field(default_factory=dict, metadata={"internal": True})
    # The FEATURELAKE_* environment variables at load time: the overrides of those sections.
    environment: dict[str, str] = field(default_factory=dict, repr=False, metadata={"internal": True})

    def __post_init__(self) -> None:
        if self.metadata_reader not in METADATA_READER_CHOICES:
            raise BadInputError(f"metadata_reader must be one of {', '.join(METADATA_READER_CHOICES)}, "
                                f"not {self.metadata_reader!r}")

    def table_path(self, table_name: str) -> str:
        """Return the storage location of the Delta table ``table_name``."""
        from featurestore.core.identifiers import validate_identifier

        validate_identifier(table_name, "table name")
        return join_location(self.warehouse, table_name)


SettingsT = TypeVar("SettingsT")


@dataclass(frozen=True)
class Section(Generic[SettingsT]):
    """A section of the configuration file that a layer above the core owns.

    The owner declares it next to the code that uses it, and reads it through it::

        TRAINING = Section("training", TrainingSettings, paths=("labels_path",))
        TRAINING.of(config).seed            # a TrainingSettings

    ``of`` parses the section's mapping with the same rules as the core's own sections
    (unknown keys and wrong types refused, ``FEATURELAKE_TRAINING_SEED`` overrides
    ``training.seed``, the dataclass's ``__post_init__`` checks, the ``paths`` fields resolved
    against the configuration file's folder) once: later calls return the same object.
    """

    name: str
    settings: type[SettingsT]
    paths: tuple[str, ...] = ()

    def of(self, config: Config) -> SettingsT:
        """Return this section of ``config``, parsed and checked on first use.

        Raises:
            BadInputError: a key, type or value of the section is refused.
        """
        held = config.sections.get(self.name)
        if isinstance(held, self.settings):
            return held
        settings = _build_dataclass(self.settings, held, self.name)
        _apply_env(settings, f"{ENV_PREFIX}{self.name.upper()}_", config.environment)
        for name in self.paths:
            value = getattr(settings, name)
            if value:
                setattr(settings, name, _resolve_path(value, Path(config.base_dir)))
        config.sections[self.name] = settings
        return settings


def join_location(root: str, name: str) -> str:
    """Join a folder path or URI and a child name."""
    return root.rstrip("/") + "/" + name


def is_uri(value: str) -> bool:
    """True when ``value`` is a URI rather than a local path: ``scheme://...`` or ``scheme:...`` with a
    scheme of two or more characters (``file:/``, ``dbfs:/``, ``mlflow-artifacts:/``), not a Windows drive."""
    return "://" in value or re.match(r"[A-Za-z][A-Za-z0-9+.-]+:", value) is not None


def _resolve_path(value: str, base_dir: Path) -> str:
    if is_uri(value):
        return value
    path = Path(value).expanduser()
    if not path.is_absolute():
        path = base_dir / path
    return str(path.resolve())


def _resolve_sqlite_uri(uri: str, base_dir: Path) -> str:
    prefix = "sqlite:///"
    if uri.startswith(prefix) and not uri.startswith(prefix + "/"):
        return prefix + str((base_dir / uri[len(prefix):]).resolve())
    return uri


def _check_type(value: Any, expected: Any, where: str) -> Any:
    origin = typing.get_origin(expected)
    if origin is typing.Union or str(origin) == "<class 'types.UnionType'>":
        options = typing.get_args(expected)
        if value is None and type(None) in options:
            return None
        inner = [o for o in options if o is not type(None)][0]
        return _check_type(value, inner, where)
    if origin is dict:
        if not isinstance(value, Mapping):
            raise BadInputError(f"configuration {where}: expected a mapping, got {type(value).__name__}")
        return {str(k): str(v) if isinstance(v, (int, float, bool)) else _check_type(v, str, f"{where}.{k}")
                for k, v in value.items()}
    if origin is list:
        if not isinstance(value, list):
            raise BadInputError(f"configuration {where}: expected a list, got {type(value).__name__}")
        (item_type,) = typing.get_args(expected)
        return [_check_type(v, item_type, f"{where}[{i}]") for i, v in enumerate(value)]
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if expected in (str, int, float, bool):
        if type(value) is not expected:
            raise BadInputError(
                f"configuration {where}: expected {expected.__name__}, got {type(value).__name__} {value!r}"
            )
        return value
    if dataclasses.is_dataclass(expected):
        return _build_dataclass(expected, value, where)
    raise BadInputError(f"configuration {where}: unsupported type {expected!r}")


def _build_dataclass(cls: type, raw: Any, where: str) -> Any:
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise BadInputError(f"configuration {where or 'file'}: expected a mapping, got {type(raw).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if not f.metadata.get("internal")}
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        place = f" in section {where!r}" if where else ""
        raise BadInputError(f"unknown configuration key(s){place}: {', '.join(map(str, unknown))}")
    values = {name: _check_type(raw[name], hints[name], f"{where}.{name}".lstrip("."))
              for name in fields if name in raw}
    return cls(**values)


def _parse_env_value(text: str, expected: Any, name: str) -> Any:
    args = [a for a in typing.get_args(expected) if a is not type(None)]
    target = args[0] if args else expected
    try:
        if target is bool:
            if text.lower() not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError(text)
            return text.lower() in ("true", "1", "yes")
        if target in (int, float):
            return target(text)
    except ValueError:
        raise BadInputError(f"environment variable {name}: expected {target.__name__}, got {text!r}") from None
    return text


def _apply_env(obj: Any, prefix: str, env: Mapping[str, str]) -> None:
    hints = typing.get_type_hints(type(obj))
    for f in dataclasses.fields(obj):
        if f.metadata.get("internal"):
            continue
        expected = hints[f.name]
        name = f"{prefix}{f.name.upper()}"
        if dataclasses.is_dataclass(expected):
            _apply_env(getattr(obj, f.name), name + "_", env)
        elif name in env and typing.get_origin(expected) not in (dict, list):
            setattr(obj, f.name, _parse_env_value(env[name], expected, name))
    if hasattr(obj, "__post_init__"):
        obj.__post_init__()  # the checks a value from the file passes apply to the environment's too


def find_config_file(path: str | None = None) -> Path | None:
    """Return the configuration file to use: ``path``, ``$FEATURELAKE_CONFIG`` or ``./featurelake.yaml``."""
    candidate = path or os.environ.get(CONFIG_ENV_VAR)
    if candidate:
        p = Path(candidate).expanduser()
        if not p.is_file():
            raise BadInputError(f"configuration file not found: {candidate}")
        return p
    default = Path(DEFAULT_CONFIG_NAME)
    return default if default.is_file() else None


def yaml_error_message(path: str | os.PathLike[str], error: yaml.YAMLError) -> str:
    """One line saying where ``path`` stops being valid YAML and what was expected there.

    Example: ``configuration file conf.yaml is not valid YAML: line 4, column 11: expected ',' or ']',
    but got ':' (while parsing a flow sequence started at line 3, column 11)``.
    """
    if not isinstance(error, yaml.MarkedYAMLError) or error.problem_mark is None:
        return f"configuration file {path} is not valid YAML: {' '.join(str(error).split())}"
    mark = error.problem_mark  # PyYAML counts lines and columns from 0
    where = f"line {mark.line + 1}, column {mark.column + 1}"
    context = ""
    if error.context:
        started = error.context_mark
        since = "" if started is None or (started.line, started.column) == (mark.line, mark.column) else \
            f" started at line {started.line + 1}, column {started.column + 1}"
        context = f" ({error.context}{since})"
    return f"configuration file {path} is not valid YAML: {where}: {error.problem}{context}"


def load_config(path: str | os.PathLike[str] | None = None, env: Mapping[str, str] | None = None,
                sections: Sequence[Section[Any]] | None = None) -> Config:
    """Load the configuration from ``path`` (or the default places) and the environment.

    Args:
        path: a YAML file; when None, ``$FEATURELAKE_CONFIG`` or ``./featurelake.yaml``
            if present, else the embedded defaults.
        env: the environment to read overrides from (``os.environ`` by default).
        sections: the sections of the layers above the core (``inference.settings.SECTIONS``):
            each is parsed and checked now, and a top-level key that is neither the core's nor
            one of them is refused. When None, every other top-level mapping is kept for its
            owner, which checks it when it first reads it (:meth:`Section.of`).

    Returns:
        A :class:`Config` whose paths are absolute.

    Raises:
        BadInputError: the file is missing or not YAML, or a key, type or value is refused.

    Example::

        config = load_config("featurelake.yaml", sections=inference.settings.SECTIONS)
    """
    env = os.environ if env is None else env
    config_file = find_config_file(str(path) if path is not None else None)
    raw: Any = {}
    base_dir = Path.cwd()
    if config_file is not None:
        base_dir = config_file.resolve().parent
        try:
            raw = yaml.safe_load(config_file.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise BadInputError(yaml_error_message(config_file, exc)) from None
    core, others = _split_sections(raw, sections)
    config = _build_dataclass(Config, core, "")
    _apply_env(config, ENV_PREFIX, env)
    config.sections = others
    config.environment = {k: v for k, v in env.items() if k.startswith(ENV_PREFIX)}
    config = resolve_paths(config, base_dir)
    for section in sections or ():
        section.of(config)
    return config


def _split_sections(raw: Any, sections: Sequence[Section[Any]] | None) -> tuple[Any, dict[str, Any]]:
    """Split the file's top-level mapping into the core's keys and the other layers' sections,
    refusing the keys that are neither."""
    if not isinstance(raw, Mapping):
        return raw, {}  # refused (or taken as empty) by _build_dataclass
    own = {f.name for f in dataclasses.fields(Config) if not f.metadata.get("internal")}
    others = {str(k): v for k, v in raw.items() if k not in own}
    if sections is None:
        unknown = [k for k, v in others.items() if v is not None and not isinstance(v, Mapping)]
    else:
        unknown = [k for k in others if k not in {s.name for s in sections}]
    if unknown:
        raise BadInputError(f"unknown configuration key(s): {', '.join(sorted(unknown))}")
    return {k: v for k, v in raw.items() if k in own}, others


def resolve_paths(config: Config, base_dir: Path) -> Config:
    """Make the relative paths of ``config`` absolute against ``base_dir`` (a section not read
    yet resolves its own when its owner first reads it)."""
    config.base_dir = str(base_dir)
    config.warehouse = _resolve_path(config.warehouse, base_dir)
    config.source_root = _resolve_path(config.source_root, base_dir)
    config.feast.repo_path = _resolve_path(config.feast.repo_path, base_dir)
    config.mlflow.tracking_uri = _resolve_sqlite_uri(config.mlflow.tracking_uri, base_dir)
    if config.mlflow.registry_uri:
        config.mlflow.registry_uri = _resolve_sqlite_uri(config.mlflow.registry_uri, base_dir)
    config.mlflow.artifact_location = _resolve_path(config.mlflow.artifact_location, base_dir)
    return config


def config_to_dict(config: Config) -> dict[str, Any]:
    """Return ``config`` as plain data, ready to be written as YAML (the core's sections, then the others)."""
    data = {f.name: getattr(config, f.name) for f in dataclasses.fields(config) if not f.metadata.get("internal")}
    data.update(config.sections)
    return {name: dataclasses.asdict(value) if dataclasses.is_dataclass(value) else value
            for name, value in data.items()}


def write_config(config: Config, path: str | os.PathLike[str]) -> Path:
    """Write ``config`` to ``path`` as YAML and return the path."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(yaml.safe_dump(config_to_dict(config), sort_keys=False), encoding="utf-8")
    return target
