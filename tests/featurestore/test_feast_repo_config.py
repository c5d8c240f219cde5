"""The Spark settings featurelake writes into the Feast repository's feature_store.yaml."""

from __future__ import annotations

from featurestore.core.config import Config, SparkSettings
from featurestore.feast_repo import repo_config
from featurestore.runtime.spark_session import LOCAL_DEFAULTS, delta_spark_conf


def test_a_local_feast_session_gets_the_local_defaults_and_delta():
    spark_conf = repo_config(Config(spark=SparkSettings(master="local[2]")))["offline_store"]["spark_conf"]
    assert spark_conf["spark.master"] == "local[2]"
    assert {k: spark_conf[k] for k in LOCAL_DEFAULTS} == LOCAL_DEFAULTS
    assert {k: spark_conf[k] for k in delta_spark_conf()} == delta_spark_conf()


def test_a_cluster_feast_session_keeps_the_clusters_own_settings():
    config = repo_config(Config(spark=SparkSettings(master="spark://10.0.0.5:7077")))
    spark_conf = config["offline_store"]["spark_conf"]
    assert spark_conf["spark.master"] == "spark://10.0.0.5:7077"
    assert "spark.databricks.delta.snapshotPartitions" not in spark_conf and "spark.driver.memory" not in spark_conf
    assert spark_conf["spark.sql.extensions"] == delta_spark_conf()["spark.sql.extensions"]
    assert config["batch_engine"]["spark_conf"] == spark_conf
