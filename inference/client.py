"""The notebook client: one object for feature tables, training sets, models and scoring.

    from featurestore import FeatureLookup, FeatureStoreClient

    fs = FeatureStoreClient()                         # ./featurelake.yaml, the active SparkSession
    fs.create_table("customer_spend", primary_keys=["customer_id"], timestamp_key="day", df=spend)
    training_set = fs.create_training_set(labels, [FeatureLookup("customer_spend", timestamp_lookup_key="day")],
                                          label="churned")

Every method is a thin call of the library function that the CLI jobs call too
(``featurelake build`` writes through :func:`featurestore.build.write_table`, ``featurelake
predict`` scores through :func:`inference.batch.score_frame`, ...), so a notebook and a job
follow one code path and raise the same errors (:mod:`featurestore.core.errors`).
"""

from __future__ import annotations

import logging
import os
from dataclasses import replace
from datetime import datetime, timedelta
from types import ModuleType
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.types import DataType, StructType, _parse_datatype_string

from featurestore.catalog import TableInfo, describe_table, list_tables, read_definition, read_feature_table
from featurestore.delta_reader import session_reader
from featurestore.core.config import Config, load_config
from featurestore.core.errors import BadInputError
from featurestore.definitions import FeatureTable, Source, table_from_schema
from featurestore.delta_tables import WriteResult
from featurestore.runtime.spark_session import start_spark
from featurestore.training_set import FeatureLookup, TrainingSet, create_training_set
from inference.tracking import configure_mlflow
from inference.worker_daemon import WORKER_DAEMON_MODULE

if TYPE_CHECKING:
    from inference.logged_models import LoggedModel

logger = logging.getLogger(__name__)


class FeatureStoreClient:
    """Feature tables from any DataFrame, point-in-time training sets, models logged with their
    features and scored by keys: the verbs of Databricks' ``FeatureEngineeringClient``.

    Args:
        config: a configuration file path, a :class:`~featurestore.core.config.Config`, or None
            for ``$FEATURELAKE_CONFIG``, else ``./featurelake.yaml``, else the embedded defaults
            (warehouse, Feast repository and MLflow store under the current folder).
        spark: the session to use; by default the active one (a notebook's, Databricks',
            spark-submit's), else a local Delta-capable session started with the CLI's defaults
            and quick-start rule.

    MLflow is pointed at the configured tracking and registry stores, so that your own
    ``mlflow.start_run()`` and ``MlflowClient()`` use them too.

    Example::

        fs = FeatureStoreClient("featurelake.yaml")
        fs.list_tables()
    """

    def __init__(self, config: str | os.PathLike[str] | Config | None = None,
                 spark: SparkSession | None = None) -> None:
        self.config: Config = config if isinstance(config, Config) else load_config(config)
        self.spark: SparkSession = spark if spark is not None else start_spark(self.config, [self.config.warehouse],
                                                                                     python_daemon_module=WORKER_DAEMON_MODULE)
        configure_mlflow(self.config, check=False)  # mlflow.start_run() and MlflowClient() use the project's stores

    # --- feature tables -------------------------------------------------------------------

    def create_table(self, name: str, primary_keys: str | Sequence[str], timestamp_key: str,
                     df: DataFrame | None = None, *, schema: StructType | str | None = None,
                     descriptions: Mapping[str, str] | None = None, description: str = "", owner: str = "",
                     notebook_url: str = "", sources: Sequence[Source] = (), tags: Mapping[str, str] | None = None,
                     ttl: timedelta | None = None, partition_by: Sequence[str] = ()) -> TableInfo:
        """Create feature table ``name`` with the columns of ``schema`` (default: ``df``'s), and write ``df``.

        Keys and timestamp are named; every other column is a feature. The rows go through
        the same validation, metadata, Delta commit and Feast registration as ``featurelake build``.

        Args:
            name: table name (letters, digits, underscores).
            primary_keys: the key column(s).
            timestamp_key: the event-time column (type timestamp).
            df: rows to write (optional with ``schema``).
            schema: the columns (a StructType or DDL string such as ``"id bigint, ts timestamp, x double"``).
            descriptions: column name -> description (column comments, Feast field descriptions).
            description, owner, notebook_url, sources, tags, ttl, partition_by: the table's metadata,
                as in :class:`~featurestore.definitions.FeatureTable`.

        Returns:
            The new table's catalog entry.

        Raises:
            ConflictError: the table exists already.
            BadInputError: a bad name, type, key or row; nothing is written.

        Example::

            fs.create_table("customer_spend", ["customer_id"], "day", df=spend,
                            descriptions={"spend_7d": "Spend over the last 7 days"}, ttl=timedelta(days=30))
        """
        from featurestore.build import create_table

        if schema is None and df is None:
            raise BadInputError(f"create_table {name!r}: give df or schema")
        columns = df.schema if schema is None else (_parse_datatype_string(schema) if isinstance(schema, str)
                                                    else schema)
        table = table_from_schema(name, columns, primary_keys, timestamp_key, descriptions=descriptions,
                                  description=description, owner=owner, notebook_url=notebook_url,
                                  sources=list(sources), tags=dict(tags or {}), ttl=ttl, partition_by=list(partition_by))
        create_table(self.spark, self.config, table, df)
        return self.get_table(name)

    def write_table(self, name: str | FeatureTable, df: DataFrame, mode: str = "merge") -> WriteResult:
        """Write ``df`` to a feature table exactly as ``featurelake build`` writes one.

        ``df`` is checked against the table (its columns and types, no null or NaN key, no
        duplicate key and timestamp) before anything is written, then merged on keys plus
        timestamp (``mode="merge"``, unchanged rows untouched) or written in place of every row
        (``mode="overwrite"``), in one Delta commit; concurrent writers are retried; the
        table's Feast registration is refreshed.

        Args:
            name: an existing table's name (its definition is read from its Delta metadata), or a
                :class:`~featurestore.definitions.FeatureTable` (created on first write, like a build).
            df: the rows.
            mode: ``"merge"`` or ``"overwrite"``.

        Returns:
            What the write did: Delta versions before and after, rows inserted and updated.

        Raises:
            NotFoundError: no table of that name (create it with :meth:`create_table`).
            BadInputError: ``df`` does not match the table; the table is left as it was.

        Example::

            fs.write_table("customer_spend", new_days)                  # upsert
            fs.write_table("customer_spend", rebuilt, mode="overwrite")
        """
        from featurestore.build import write_table

        table = name if isinstance(name, FeatureTable) else read_definition(self.spark, self.config, name)
        return write_table(self.spark, self.config, table, df, mode=mode).write

    def read_table(self, name: str, as_of_version: int | None = None,
                   as_of_timestamp: str | datetime | None = None) -> DataFrame:
        """Return the rows of feature table ``name``: the latest, or as of a Delta version or time.

        Example::

            fs.read_table("customer_spend", as_of_version=0).show()
        """
        return read_feature_table(self.spark, self.config, name, as_of_version, as_of_timestamp)

    def get_table(self, name: str) -> TableInfo:
        """Return the catalog entry of feature table ``name``: keys, features (type, description),
        owner, tags, ttl, Delta version, created and updated times.

        Example::

            fs.get_table("customer_spend").delta_version
        """
        return describe_table(session_reader(self.spark, self.config), self.config, name)

    def list_tables(self) -> list[TableInfo]:
        """Return the catalog entries of every feature table in the warehouse, by name.

        Example::

            [t.name for t in fs.list_tables()]
        """
        return list_tables(session_reader(self.spark, self.config), self.config)

    def drop_table(self, name: str) -> None:
        """Drop feature table ``name``: its Delta table and its Feast registration (and online values).

        Refused with :class:`~featurestore.core.errors.ConflictError` while a Staging or
        Production model version's training-set spec looks features up in it.

        Example::

            fs.drop_table("customer_spend_v0")
        """
        from inference.registry import drop_feature_table

        drop_feature_table(self.spark, self.config, name)

    def set_table_tag(self, name: str, key: str, value: str) -> None:
        """Set tag ``key`` of feature table ``name`` (in its Delta properties and in Feast).

        Example::

            fs.set_table_tag("customer_spend", "team", "growth")
        """
        from featurestore.build import update_metadata

        if not isinstance(key, str) or not key:
            raise BadInputError(f"table {name!r}: a tag key must be a non-empty string, got {key!r}")
        table = read_definition(self.spark, self.config, name)
        update_metadata(self.spark, self.config, replace(table, tags={**table.tags, key: str(value)}))

    def delete_table_tag(self, name: str, key: str) -> None:
        """Remove tag ``key`` of feature table ``name``; a tag it does not have is logged and ignored.

        Example::

            fs.delete_table_tag("customer_spend", "team")
        """
        from featurestore.build import update_metadata

        table = read_definition(self.spark, self.config, name)
        if key not in table.tags:
            logger.warning("feature table %s has no tag %r: nothing to delete", name, key)
            return
        update_metadata(self.spark, self.config, replace(table, tags={k: v for k, v in table.tags.items() if k != key}))

    # --- training sets -------------------------------------------------------------------

    def create_training_set(self, df: DataFrame, feature_lookups: Sequence[FeatureLookup], label: str | None,
                            exclude_columns: Sequence[str] = ()) -> TrainingSet:
        """Join the looked-up features onto ``df`` point in time (no feature from after a row's time).

        Returns a :class:`~featurestore.training_set.TrainingSet`: ``load_df()`` gives the joined
        DataFrame, ``spec`` what :meth:`log_model` records so that scoring needs only the keys.

        Example::

            ts = fs.create_training_set(labels, [FeatureLookup("customer_spend", timestamp_lookup_key="day")],
                                        label="churned", exclude_columns=["day"])
            pdf = ts.load_df().toPandas()
        """
        return create_training_set(self.spark, self.config, df, feature_lookups, label,
                                   exclude_columns=list(exclude_columns))

    # --- online store --------------------------------------------------------------------

    def publish_table(self, name: str, *, end_date: datetime | None = None, full: bool = False) -> Any:
        """Load the newest values of feature table ``name`` into Feast's online store (``featurelake materialize``).

        The first publication loads everything up to ``end_date`` (default now); later ones
        only the rows after the previous one, unless ``full``. Returns what was loaded
        (:class:`featurestore.online.MaterializeResult`).

        Example::

            fs.publish_table("customer_spend")
        """
        from featurestore.online import materialize

        return materialize(self.spark, self.config, [name], end_date, full=full)[0]

    def get_online_features(self, name: str, keys: Mapping[str, Any] | Sequence[Mapping[str, Any]],
                            features: Sequence[str] | None = None) -> list[dict[str, Any]]:
        """Return the online values of feature table ``name`` for one or more entity rows.

        Example::

            fs.get_online_features("customer_spend", {"customer_id": 7})
            # [{'customer_id': 7, 'spend_7d': 12.5, 'event_timestamp': '...', 'found': True}]
        """
        from featurestore.online import get_online_features

        rows = keys if isinstance(keys, Mapping) else list(keys)
        return get_online_features(self.config, name, rows, list(features) if features else None)

    # --- models ------------------------------------------------------------------------------

    def log_model(self, model: Any, artifact_path: str = "model", *, flavor: ModuleType, training_set: TrainingSet,
                  registered_model_name: str | None = None, **log_kwargs: Any) -> LoggedModel:
        """Log a model you fitted, with the training set it learned from, so that scoring needs only keys.

        The signature's inputs are the training set's feature columns (``training_set.spec.feature_columns``,
        in that order: fit the model on exactly those), typed from their Spark schema, every one
        required (numbers and booleans as double); its output is what the logged model predicts
        for the first training rows. The run (your active MLflow run, else a new one in the
        configured experiment) records the training-set spec; with ``registered_model_name`` a
        new version is registered. ``featurelake train`` logs its models through the same path.

        Args:
            model: the fitted model; a ``mlflow.pyfunc.PythonModel`` for ``flavor=mlflow.pyfunc``.
            artifact_path: the model's name within the run.
            flavor: the MLflow flavor module: ``mlflow.sklearn``, ``mlflow.xgboost``,
                ``mlflow.lightgbm``, ``mlflow.pyfunc``...
            training_set: from :meth:`create_training_set`.
            registered_model_name: register a new version of this model.
            **log_kwargs: passed to ``flavor.log_model`` (``pip_requirements``, ``input_example``, ``metadata``...).

        Returns:
            :class:`inference.logged_models.LoggedModel`: ``model_uri`` is ``models:/NAME/VERSION``
            when registered.

        Example::

            ts = fs.create_training_set(labels, lookups, label="churned", exclude_columns=["day"])
            pdf = ts.load_df().toPandas()
            model = lightgbm.LGBMClassifier().fit(pdf[ts.spec.feature_columns], pdf["churned"])
            logged = fs.log_model(model, flavor=mlflow.lightgbm, training_set=ts, registered_model_name="churn")
        """
        from inference.logged_models import log_model

        return log_model(self.config, model, flavor=flavor, training_set=training_set, artifact_path=artifact_path,
                         registered_model_name=registered_model_name, **log_kwargs)

    def score_batch(self, model_uri: str, df: DataFrame, result_type: str | DataType | None = None) -> DataFrame:
        """Score ``df`` with a registered model, looking its features up by the keys in ``df``.

        The reference (``models:/NAME/Production``, ``models:/NAME@champion``, ``models:/NAME/3``)
        is resolved to one version; the features its training-set spec names are joined from
        the feature tables by the keys (and, when ``df`` has the spec's timestamp column, point
        in time), unless ``df`` already holds them; the model runs through
        ``mlflow.pyfunc.spark_udf``. Nothing is written (``featurelake predict`` is this plus
        one Delta commit).

        Args:
            model_uri: the registered model version to score with.
            df: the entities: key columns (and timestamps), or every model input.
            result_type: the Spark type of the prediction column (a DDL name such as ``"string"``
                or a DataType); default from the model's signature, numbers as double.

        Returns:
            ``df``'s columns, ``prediction`` (and ``probability`` for classifiers that give one),
            ``model_name``, ``model_version`` and ``run_id`` (lazy).

        Example::

            scored = fs.score_batch("models:/churn/Production", spark.table("customers").select("customer_id"))
        """
        from inference.batch import score_frame

        scored = score_frame(self.spark, self.config, df, model_uri, keep_input=True).df
        if result_type is not None:
            scored = scored.withColumn("prediction", scored["prediction"].cast(result_type))
        return scored
