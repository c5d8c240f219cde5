"""Feature tables are read from their Delta log where that is exact, through Delta's reader elsewhere:
both give the rows of the version asked for (rewritten files, time travel, deletion vectors, partitions)."""

from __future__ import annotations

from dataclasses import replace

import pytest
from pit_data import EVENTS, EVENTS_SCHEMA, EVENTS_V1, PROFILE, PROFILE_ROWS, PROFILE_SCHEMA, make_config, ts

from featurestore.core.errors import NotFoundError
from featurestore.delta_tables import write_feature_table
from featurestore.table_reader import read_table_version
from featurestore.training_set import FeatureLookup, join_features


def _rows(df):
    return sorted(tuple(r) for r in df.collect())


def _delta_rows(spark, path, version):
    return _rows(spark.read.format("delta").option("versionAsOf", version).load(path))


@pytest.fixture(scope="module")
def events(spark, tmp_path_factory):
    """pit_events in two versions: the first write, then an update of one row's values (a MERGE,
    which leaves the rewritten file on disk)."""
    config = make_config(tmp_path_factory.mktemp("reader"))
    path = config.table_path(EVENTS.name)
    first = write_feature_table(spark, EVENTS, path, spark.createDataFrame(EVENTS_V1, EVENTS_SCHEMA))
    changed = write_feature_table(spark, EVENTS, path, spark.createDataFrame([(1, ts(3), 33.0, 330)], EVENTS_SCHEMA))
    assert changed.rows_updated == 1
    return config, path, first.version_after, changed.version_after


def test_a_local_table_is_read_from_its_log_with_the_rows_of_each_version(spark, events):
    _, path, first, latest = events
    current = read_table_version(spark, EVENTS.name, path)
    old = read_table_version(spark, EVENTS.name, path, first)
    assert current.read_from_log and old.read_from_log
    assert (current.number, old.number) == (latest, first)
    assert _rows(current.data) == _delta_rows(spark, path, latest)
    assert _rows(old.data) == _delta_rows(spark, path, first)
    day3 = ts(3).replace(tzinfo=None)  # collected timestamps are naive (the session's time zone is UTC)
    assert (1, day3, 33.0, 330) in _rows(current.data) and (1, day3, 3.0, 30) in _rows(old.data)
    assert current.properties["featurelake.primary_keys"] == "customer_id"
    plan = current.data._jdf.queryExecution().executedPlan().toString()
    assert "Delta" not in plan and "InMemoryFileIndex" in plan, plan


def test_unknown_table_and_version_are_not_found(spark, events):
    config, path, _, latest = events
    with pytest.raises(NotFoundError, match="no_such_table"):
        read_table_version(spark, "no_such_table", config.table_path("no_such_table"))
    with pytest.raises(NotFoundError, match=f"pit_events.*version {latest + 5}"):
        read_table_version(spark, EVENTS.name, path, latest + 5)


def test_a_table_with_deletion_vectors_is_read_through_delta_without_the_deleted_rows(spark, tmp_path):
    config = make_config(tmp_path)
    path = config.table_path(PROFILE.name)
    write_feature_table(spark, PROFILE, path, spark.createDataFrame(PROFILE_ROWS, PROFILE_SCHEMA))
    spark.sql(f"ALTER TABLE delta.`{path}` SET TBLPROPERTIES ('delta.enableDeletionVectors' = 'true')")
    spark.sql(f"DELETE FROM delta.`{path}` WHERE customer_id = 1 AND segment_score = 0.9")
    assert spark.sql(f"DESCRIBE DETAIL delta.`{path}`").first()["minReaderVersion"] == 3
    version = read_table_version(spark, PROFILE.name, path)
    assert sorted(r[2] for r in _rows(version.data)) == sorted(r[2] for r in PROFILE_ROWS if r[2] != 0.9)
    assert not version.read_from_log
    labels = spark.createDataFrame([(1, ts(5))], "customer_id bigint, label_time timestamp")
    joined, _ = join_features(spark, config, labels, [FeatureLookup(PROFILE.name, timestamp_lookup_key="label_time")])
    assert [r["segment_score"] for r in joined.collect()] == [0.5]  # day 0's row: day 4's was deleted


def test_a_partitioned_table_is_read_through_delta(spark, tmp_path):
    config = make_config(tmp_path)
    table = replace(PROFILE, name="pit_profile_parts", partition_by=["customer_id"])
    path = config.table_path(table.name)
    write_feature_table(spark, table, path, spark.createDataFrame(PROFILE_ROWS, PROFILE_SCHEMA))
    version = read_table_version(spark, table.name, path)
    assert not version.read_from_log
    assert _rows(version.data.select(*PROFILE_SCHEMA.names)) == sorted((c, t.replace(tzinfo=None), v)
                                                                       for c, t, v in PROFILE_ROWS)


def test_tables_in_folders_with_a_space_or_a_percent_sign_are_read_with_their_own_rows(spark, tmp_path):
    """The log lists files as URIs (a space is %20) and delta-rs decodes a path it is given (a%41
    is aA): a table under "my tables" is still read from its log, and one under "pct%41" gives its
    own rows, not those of the table under "pctA"."""
    spaced = str(tmp_path / "my tables" / PROFILE.name)
    write_feature_table(spark, PROFILE, spaced, spark.createDataFrame(PROFILE_ROWS, PROFILE_SCHEMA))
    version = read_table_version(spark, PROFILE.name, spaced)
    assert version.read_from_log
    assert _rows(version.data) == _delta_rows(spark, spaced, version.number)

    escaped, decoded = str(tmp_path / "pct%41" / PROFILE.name), str(tmp_path / "pctA" / PROFILE.name)
    write_feature_table(spark, PROFILE, escaped, spark.createDataFrame(PROFILE_ROWS[:1], PROFILE_SCHEMA))
    write_feature_table(spark, PROFILE, decoded, spark.createDataFrame(PROFILE_ROWS[1:], PROFILE_SCHEMA))
    version = read_table_version(spark, PROFILE.name, escaped)
    assert [r[2] for r in _rows(version.data)] == [PROFILE_ROWS[0][2]]


def test_a_table_with_column_mapping_is_read_through_delta_by_its_column_names(spark, tmp_path):
    """With column mapping a renamed column keeps its old name in the files: read as plain parquet
    it would come back empty."""
    path = str(tmp_path / PROFILE.name)
    write_feature_table(spark, PROFILE, path, spark.createDataFrame(PROFILE_ROWS, PROFILE_SCHEMA))
    spark.sql(f"ALTER TABLE delta.`{path}` SET TBLPROPERTIES ('delta.columnMapping.mode' = 'name', "
              "'delta.minReaderVersion' = '2', 'delta.minWriterVersion' = '5')")
    spark.sql(f"ALTER TABLE delta.`{path}` RENAME COLUMN segment_score TO score")
    version = read_table_version(spark, PROFILE.name, path)
    assert not version.read_from_log
    assert sorted(r["score"] for r in version.data.collect()) == sorted(r[2] for r in PROFILE_ROWS)
