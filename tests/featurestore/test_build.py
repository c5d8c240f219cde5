"""Feature-table builds: metadata round trip, MERGE semantics, bad input leaves tables unchanged."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from chispa import assert_df_equality
from pyspark.sql import functions as F

from featurestore.build import build_features, build_table, build_tables, read_sources, source_location
from featurestore.catalog import describe_table, list_tables
from featurestore.definitions import Field, Source
from featurestore.delta_reader import DeltaReader
from featurestore.delta_tables import current_version, table_history
from featurestore.core.errors import BadInputError, NotFoundError
from featurestore.feast_repo import feature_store, register_tables
from tests.featurestore.sample_tables import ROWS, T0, fails_on_user_2, passthrough, user_table, write_source


def test_metadata_round_trip_to_delta_catalog_and_feast(spark, project):
    write_source(Path(project.source_root), ROWS)
    table = user_table()
    result = build_table(spark, project, table)
    assert result.write.created and result.write.rows_inserted == 3

    detail = spark.sql(f"DESCRIBE DETAIL delta.`{project.table_path(table.name)}`").first()
    assert detail["properties"]["featurelake.primary_keys"] == "user_id"
    assert detail["properties"]["featurelake.owner"] == "growth@example.com"
    assert detail["description"] == "Hourly user activity"
    comments = {f.name: f.metadata.get("comment") for f in spark.read.format("delta")
                .load(project.table_path(table.name)).schema.fields}
    assert comments["spend"] == "Spend in the hour"

    info = describe_table(DeltaReader(lambda: spark), project, table.name)
    assert info.primary_keys == ["user_id"]
    assert info.timestamp_key == "ts"
    assert info.created_by
    assert info.notebook_url == "https://example.com/notebooks/activity"
    assert info.sources == [{"name": "events", "path": "raw/events.parquet", "format": "parquet"}]
    assert [(f.name, f.type, f.description) for f in info.features] == [
        ("clicks", "bigint", "Clicks in the hour"), ("spend", "double", "Spend in the hour")]
    assert info.delta_version == result.write.version_after
    assert info.created is not None and info.last_updated is not None
    assert [i.name for i in list_tables(DeltaReader(lambda: spark), project)] == [table.name]

    register_tables(project, [table])
    view = feature_store(project).get_feature_view(table.name)  # read back with Feast's own API
    assert view.owner == "growth@example.com"
    assert view.description == "Hourly user activity"
    assert view.tags["notebook_url"] == "https://example.com/notebooks/activity"
    assert view.tags["team"] == "growth"
    assert view.ttl == timedelta(days=2)
    assert [f.name for f in view.features] == ["clicks", "spend"]
    assert view.entities == ["user_id"]
    assert view.batch_source.path == project.table_path(table.name)


def test_describe_in_text_shows_the_ttl_that_json_shows(spark, project, capsys):
    import json

    from featurestore.core.config import write_config
    from jobs import tables as tables_job

    write_source(Path(project.source_root), ROWS)
    build_table(spark, project, user_table())  # ttl 2 days
    build_table(spark, project, user_table(name="no_ttl", ttl=None))
    config_path = str(write_config(project, Path(project.source_root) / "featurelake.yaml"))

    assert tables_job.main(["--config", config_path, "describe", "user_activity", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["ttl_seconds"] == 172800
    assert tables_job.main(["--config", config_path, "describe", "user_activity"]) == 0
    assert "  TTL:             2 days (172800 s)\n" in capsys.readouterr().out
    assert tables_job.main(["--config", config_path, "describe", "no_ttl"]) == 0
    assert "  TTL:             not set (no maximum age)\n" in capsys.readouterr().out


def test_merge_updates_inserts_and_rerun_is_idempotent(spark, project):
    root = Path(project.source_root)
    write_source(root, ROWS)
    table = user_table()
    build_table(spark, project, table)
    path = project.table_path(table.name)

    rerun = build_table(spark, project, table)
    assert (rerun.write.rows_inserted, rerun.write.rows_updated) == (0, 0)
    assert spark.read.format("delta").load(path).count() == 3

    write_source(root, [(1, T0, 4, 1.5), (2, T0, 0, 0.0), (1, T0 + timedelta(hours=1), 5, 2.5),
                        (3, T0, 1, 9.0)])
    merged = build_table(spark, project, table)
    assert (merged.write.rows_inserted, merged.write.rows_updated) == (1, 1)
    expected = spark.createDataFrame(
        [(1, T0, 4, 1.5), (1, T0 + timedelta(hours=1), 5, 2.5), (2, T0, 0, 0.0), (3, T0, 1, 9.0)],
        "user_id bigint, ts timestamp, clicks bigint, spend double",
    )
    actual = spark.read.format("delta").load(path)
    assert_df_equality(actual, expected, ignore_row_order=True, ignore_nullable=True, ignore_metadata=True)


def test_an_unchanged_rerun_commits_nothing_and_a_changed_source_still_commits(spark, project, capsys):
    from featurestore.core.config import write_config
    from jobs import build_features as build_job

    root = Path(project.source_root)
    write_source(root, ROWS)
    (root / "defs.py").write_text("from tests.featurestore.sample_tables import user_table\n"
                                  "FEATURE_TABLES = [user_table()]\n")
    project.definitions = str(root / "defs.py")
    config_path = str(write_config(project, root / "featurelake.yaml"))
    path = project.table_path("user_activity")
    assert build_job.main(["--config", config_path]) == 0
    history = table_history(spark, path)

    assert build_job.main(["--config", config_path]) == 0  # the same sources: a rebuild of the whole table
    assert "user_activity: unchanged, 0 inserted, 0 updated, Delta version 0" in capsys.readouterr().err
    assert table_history(spark, path) == history  # no commit: history and time travel see no change

    write_source(root, [*ROWS[:2], (1, T0 + timedelta(hours=1), 6, 2.5)])  # one value changed
    assert build_job.main(["--config", config_path]) == 0
    assert "user_activity: merged, 0 inserted, 1 updated, Delta version 1" in capsys.readouterr().err
    assert [h["version"] for h in table_history(spark, path)] == [1, 0]


def test_table_is_readable_by_an_independent_delta_reader(spark, project):
    from deltalake import DeltaTable as RustDeltaTable

    write_source(Path(project.source_root), ROWS)
    table = user_table()
    result = build_table(spark, project, table)
    other = RustDeltaTable(project.table_path(table.name))
    assert other.version() == result.write.version_after
    frame = other.to_pandas().sort_values(["user_id", "ts"])
    assert frame["clicks"].tolist() == [3, 5, 0]
    assert other.metadata().configuration["featurelake.timestamp_key"] == "ts"
    assert other.metadata().description == "Hourly user activity"


def _bad(transform):
    return lambda spark, inputs: transform(passthrough(spark, inputs))


BAD_INPUTS = [
    ("missing key", _bad(lambda df: df.drop("user_id")), "missing primary key column 'user_id'"),
    ("missing feature", _bad(lambda df: df.drop("spend")), "missing feature column 'spend'"),
    ("null key", _bad(lambda df: df.withColumn("user_id", F.when(F.col("clicks") == 5, None)
                                                .otherwise(F.col("user_id")))),
     "null values in key column.*'user_id' \\(1 rows\\)"),
    ("duplicate", _bad(lambda df: df.union(df.limit(1))), "duplicate rows for the same key and timestamp"),
    ("wrong type", _bad(lambda df: df.withColumn("spend", F.col("spend").cast("string"))),
     "'spend' is string, declared double"),
    ("undeclared column", _bad(lambda df: df.withColumn("extra", F.lit(1))), "'extra' are not declared"),
    ("unknown source column", lambda spark, inputs: inputs["events"].select("user_id", "ts", "clikcs"),
     "the transformation failed: .*clikcs"),
    ("undeclared source", lambda spark, inputs: inputs["event"], "reads source 'event', .*its sources: 'events'"),
]


@pytest.mark.parametrize("case, transform, message", BAD_INPUTS, ids=[c[0] for c in BAD_INPUTS])
def test_bad_input_names_table_and_column_and_leaves_table_unchanged(spark, project, case, transform, message):
    write_source(Path(project.source_root), ROWS)
    good = user_table()
    build_table(spark, project, good)
    path = project.table_path(good.name)
    version = current_version(spark, path)
    with pytest.raises(BadInputError, match=message) as error:
        build_table(spark, project, user_table(transform=transform))
    assert "'user_activity'" in str(error.value)
    assert current_version(spark, path) == version
    assert spark.read.format("delta").load(path).count() == 3


def test_a_duplicate_row_is_named_with_its_values_as_a_user_writes_them(spark):
    from datetime import datetime

    from featurestore.definitions import FeatureTable
    from featurestore.validation import validate_feature_frame

    prices = FeatureTable(name="prices", primary_keys=[Field("symbol", "string", "Ticker")], timestamp_key="month",
                          features=[Field("close", "double", "Close")])
    rows = [("AAPL", datetime(2001, 2, 1), 1.0), ("AAPL", datetime(2001, 2, 1), 2.0),
            ("MSFT", datetime(2001, 2, 1), 3.0)]
    df = spark.createDataFrame(rows, "symbol string, month timestamp, close double")
    with pytest.raises(BadInputError) as error:
        validate_feature_frame(prices, df)
    assert str(error.value) == ("table 'prices': duplicate rows for the same key and timestamp (symbol, month), "
                                "for example symbol='AAPL', month=2001-02-01 00:00:00 appears 2 times")


def test_bad_input_on_first_build_creates_no_table(spark, project):
    write_source(Path(project.source_root), ROWS)
    bad = user_table(transform=BAD_INPUTS[0][1])
    with pytest.raises(BadInputError):
        build_table(spark, project, bad)
    assert current_version(spark, project.table_path(bad.name)) is None


def test_a_bad_table_stops_a_build_of_several_before_any_is_written(spark, project):
    write_source(Path(project.source_root), ROWS)
    good, bad = user_table("activity_a"), user_table("activity_b", transform=_bad(lambda df: df.withColumn("extra", F.lit(1))))
    with pytest.raises(BadInputError, match="'activity_b'.*'extra' are not declared"):
        build_tables(spark, project, [good, bad])
    assert current_version(spark, project.table_path("activity_a")) is None


def test_tables_written_before_a_failed_write_are_registered_in_feast(spark, project):
    write_source(Path(project.source_root), ROWS)
    good, failing = user_table("activity_a"), user_table("activity_b", transform=fails_on_user_2)
    with pytest.raises(Exception, match="no spend for user 2"):
        build_tables(spark, project, [good, failing])
    assert current_version(spark, project.table_path("activity_a")) == 0
    assert current_version(spark, project.table_path("activity_b")) is None
    assert [view.name for view in feature_store(project).list_feature_views()] == ["activity_a"]


@pytest.mark.parametrize("path", ["dbfs:/featurelake/raw/events", "abfss://raw@account.dfs.core.windows.net/events",
                                  "file:/data/events.parquet", "/data/events.parquet"])
def test_source_uris_and_absolute_paths_are_read_as_given(project, path):
    assert source_location(project, Source("events", path)) == path


def test_relative_source_paths_are_read_under_the_source_root(project):
    assert source_location(project, Source("events", "raw/events.parquet")) == \
        str(Path(project.source_root) / "raw" / "events.parquet")


def test_unreadable_source_is_named(spark, project):
    table = user_table(sources=[Source("events", "raw/does_not_exist.parquet")])
    with pytest.raises(NotFoundError, match="'user_activity'.*source 'events'.*does_not_exist.parquet"):
        read_sources(spark, project, table)


def test_unknown_table_name_is_refused(spark, project, tmp_path):
    definitions = tmp_path / "defs.py"
    definitions.write_text("FEATURE_TABLES = []\n")
    project.definitions = str(definitions)
    with pytest.raises(NotFoundError, match="unknown feature table 'nope'"):
        build_features(spark, project, ["nope"])
    with pytest.raises(BadInputError, match="invalid table name"):
        build_features(spark, project, ["x`; DROP TABLE y"])
    with pytest.raises(NotFoundError, match="feature table 'nope' not found"):
        describe_table(DeltaReader(lambda: spark), project, "nope")


def test_a_delta_table_that_is_no_feature_table_is_neither_described_nor_listed(spark, project):
    spark.range(3).write.format("delta").save(project.table_path("predictions"))  # no featurelake.kind
    reader = DeltaReader(lambda: spark)
    with pytest.raises(NotFoundError, match="feature table 'predictions' not found"):
        describe_table(reader, project, "predictions")  # tables history and restore look it up the same way
    assert list_tables(reader, project) == []


def test_changed_definition_is_refused_without_evolution(spark, project):
    write_source(Path(project.source_root), ROWS)
    build_table(spark, project, user_table())
    version = current_version(spark, project.table_path("user_activity"))
    retyped = user_table(
        features=[Field("clicks", "double"), Field("spend", "double")],
        transform=lambda s, i: passthrough(s, i).withColumn("clicks", F.col("clicks").cast("double")),
    )
    with pytest.raises(BadInputError, match="column 'clicks' retyped from bigint to double"):
        build_table(spark, project, retyped)
    assert current_version(spark, project.table_path("user_activity")) == version


def test_metadata_change_is_synced(spark, project):
    write_source(Path(project.source_root), ROWS)
    build_table(spark, project, user_table())
    build_table(spark, project, user_table(description="Hourly activity, v2", owner="new@example.com",
                                           features=[Field("clicks", "bigint", "Clicks (new text)"),
                                                     Field("spend", "double", "Spend in the hour")]))
    info = describe_table(DeltaReader(lambda: spark), project, "user_activity")
    assert info.description == "Hourly activity, v2"
    assert info.owner == "new@example.com"
    assert info.features[0].description == "Clicks (new text)"
