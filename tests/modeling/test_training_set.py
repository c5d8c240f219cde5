"""Point-in-time joins against hand-computed expectations (ties, late rows, ttl, latest values)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from pit_data import make_config, EVENTS, LABELS, PROFILE, labels_df, write_pit_tables

from featurestore.core.errors import BadInputError, NotFoundError
from featurestore.training_set import FeatureLookup, create_training_set, join_features
from inference.training import read_labels

# expected (f_num, f_cnt) per label row, in LABELS order, after the late row arrived
EXPECTED_EVENTS = [
    (3.0, 30), (1.0, 10), (None, None), (5.0, 50), (5.0, 50), (7.0, 70),
    (2.0, None), (2.0, None), (None, None), (None, None), (None, None),
]
EXPECTED_PROFILE = [0.5, 0.5, 0.5, 0.9, 0.9, 0.9, None, None, None, None, 0.4]


@pytest.fixture(scope="module")
def pit(spark, tmp_path_factory):
    config = make_config(tmp_path_factory.mktemp("pit"))
    versions = write_pit_tables(spark, config)
    return config, versions


def _rows(df, columns):
    return [tuple(r[c] for c in columns) for r in df.collect()]


def _by_label(df, columns):
    """Joined rows sorted like LABELS (customer, time), duplicates kept."""
    rows = df.orderBy("customer_id", "label_time").collect()
    return [tuple(r[c] for c in columns) for r in rows]


def _expected_sorted(values):
    from pit_data import LABELS

    order = sorted(range(len(LABELS)), key=lambda i: (LABELS[i][0], LABELS[i][1]))
    return [values[i] for i in order]


def test_point_in_time_matches_hand_computed(spark, pit):
    config, versions = pit
    lookups = [
        FeatureLookup(EVENTS.name, ["f_num", "f_cnt"], timestamp_lookup_key="label_time"),
        FeatureLookup(PROFILE.name, timestamp_lookup_key="label_time"),
    ]
    df, resolved = join_features(spark, config, labels_df(spark), lookups)
    assert df.columns == ["customer_id", "label_time", "churned", "f_num", "f_cnt", "segment_score"]
    assert _by_label(df, ["f_num", "f_cnt"]) == _expected_sorted(EXPECTED_EVENTS)
    assert [r[0] for r in _by_label(df, ["segment_score"])] == _expected_sorted(EXPECTED_PROFILE)
    assert resolved[0] == {
        "table": "pit_events", "path": config.table_path("pit_events"), "features": ["f_num", "f_cnt"],
        "lookup_keys": ["customer_id"], "timestamp_lookup_key": "label_time", "ttl_seconds": 3 * 86400,
        "delta_version": versions["after_late"],
    }
    assert resolved[1]["ttl_seconds"] is None and resolved[1]["features"] == ["segment_score"]


def test_time_travel_before_late_row(spark, pit):
    config, versions = pit
    lookup = FeatureLookup(EVENTS.name, ["f_num"], timestamp_lookup_key="label_time")
    df, resolved = join_features(spark, config, labels_df(spark), [lookup],
                                 delta_versions={EVENTS.name: versions["before_late"]})
    at_day6 = [r["f_num"] for r in df.filter("customer_id = 1 AND day(label_time) = 6").collect()]
    # without the late day-5 row, day 3 is exactly ttl (3 days) old: inclusive bound
    assert at_day6 == [3.0, 3.0]
    assert resolved[0]["delta_version"] == versions["before_late"]


def test_lookup_ttl_overrides_table_ttl(spark, pit):
    config, _ = pit
    lookup = FeatureLookup(EVENTS.name, ["f_num"], timestamp_lookup_key="label_time", ttl=timedelta(days=30))
    df, resolved = join_features(spark, config, labels_df(spark), [lookup])
    got = dict(((r["customer_id"], r["label_time"].day), r["f_num"]) for r in df.collect())
    assert got[(4, 9)] == 4.0 and got[(2, 5)] == 2.0
    assert resolved[0]["ttl_seconds"] == 30 * 86400


def test_drop_missing_and_duplicates_kept(spark, pit):
    config, _ = pit
    lookup = FeatureLookup(EVENTS.name, ["f_num"], timestamp_lookup_key="label_time")
    df, _ = join_features(spark, config, labels_df(spark), [lookup], drop_missing=True)
    values = sorted(r["f_num"] for r in df.collect())
    assert values == sorted(v for v, _ in EXPECTED_EVENTS if v is not None)


def test_latest_values_without_timestamp(spark, pit):
    config, _ = pit
    entities = spark.createDataFrame([(1,), (2,), (3,), (4,)], "cust bigint")
    lookup = FeatureLookup(EVENTS.name, ["f_num", "f_cnt"], lookup_keys=["cust"])
    df, resolved = join_features(spark, config, entities, [lookup])
    assert sorted(_rows(df, ["cust", "f_num", "f_cnt"])) == [(1, 7.0, 70), (2, 2.0, None), (3, None, None),
                                                              (4, 4.0, 40)]
    assert resolved[0]["timestamp_lookup_key"] is None


def test_int_keys_are_cast_to_table_key_type(spark, pit):
    config, _ = pit
    entities = spark.createDataFrame([(1,), (4,)], "customer_id int")
    df, _ = join_features(spark, config, entities, [FeatureLookup(PROFILE.name)])
    assert sorted(_rows(df, ["customer_id", "segment_score"])) == [(1, 0.9), (4, 0.4)]


@pytest.mark.parametrize("key_type, key", [("string", "C1"), ("string", "1"), ("double", 1.9)])
def test_lossy_key_types_are_refused_before_any_job(spark, pit, key_type, key):
    config, _ = pit
    entities = spark.createDataFrame([(key,)], f"cust {key_type}")
    with pytest.raises(BadInputError) as info:
        join_features(spark, config, entities, [FeatureLookup(PROFILE.name, lookup_keys=["cust"])])
    for word in ("pit_profile", "'cust'", key_type, "bigint"):
        assert word in str(info.value)


def test_create_training_set_spec(spark, pit):
    config, versions = pit
    lookups = [FeatureLookup(EVENTS.name, ["f_num"], timestamp_lookup_key="label_time"),
               FeatureLookup(PROFILE.name, timestamp_lookup_key="label_time")]
    training_set = create_training_set(spark, config, labels_df(spark), lookups, label="churned")
    spec = training_set.spec.to_dict()
    assert spec["label"] == "churned"
    assert spec["timestamp_key"] == "label_time"
    assert spec["entity_keys"] == ["customer_id"]
    assert spec["feature_columns"] == ["f_num", "segment_score"]
    assert [x["table"] for x in spec["lookups"]] == ["pit_events", "pit_profile"]
    assert training_set.spec.delta_versions()["pit_events"] == versions["after_late"]
    assert training_set.df.count() == 11


@pytest.mark.parametrize("lookup, error, words", [
    (FeatureLookup("no_such_table", timestamp_lookup_key="label_time"), NotFoundError, ["no_such_table"]),
    (FeatureLookup("pit_events", ["nope"], timestamp_lookup_key="label_time"), NotFoundError, ["pit_events", "nope"]),
    (FeatureLookup("pit_events", lookup_keys=["cust_id"], timestamp_lookup_key="label_time"), BadInputError,
     ["pit_events", "cust_id"]),
    (FeatureLookup("pit_events", timestamp_lookup_key="observed_at"), BadInputError, ["pit_events", "observed_at"]),
    (FeatureLookup("pit_events", timestamp_lookup_key="churned"), BadInputError, ["churned", "timestamp"]),
    (FeatureLookup("bad;name"), BadInputError, ["bad;name"]),
    (FeatureLookup("pit_events", timestamp_lookup_key="label_time", ttl=timedelta(milliseconds=500)), BadInputError,
     ["pit_events", "ttl", "0:00:00.500000", "one second"]),
])
def test_bad_lookups_name_the_culprit(spark, pit, lookup, error, words):
    config, _ = pit
    with pytest.raises(error) as info:
        join_features(spark, config, labels_df(spark), [lookup])
    for word in words:
        assert word in str(info.value)


def test_feature_clashing_with_label_column_is_refused(spark, pit):
    config, _ = pit
    labels = labels_df(spark).withColumnRenamed("churned", "f_num")
    with pytest.raises(BadInputError, match="f_num"):
        join_features(spark, config, labels, [FeatureLookup(EVENTS.name, timestamp_lookup_key="label_time")])


def test_unknown_delta_version_is_not_found(spark, pit):
    config, _ = pit
    with pytest.raises(NotFoundError, match="pit_events"):
        join_features(spark, config, labels_df(spark), [FeatureLookup(EVENTS.name)], delta_versions={"pit_events": 99})


def test_missing_label_column(spark, pit):
    config, _ = pit
    with pytest.raises(BadInputError, match="is_churned"):
        create_training_set(spark, config, labels_df(spark), [FeatureLookup(PROFILE.name)], label="is_churned")


def test_labels_written_by_pandas_with_nanosecond_timestamps_give_the_same_training_set(spark, pit, tmp_path):
    import pandas as pd

    config, _ = pit
    # pandas' default: naive datetime64[ns] (UTC wall clock here), written as parquet TIMESTAMP(NANOS)
    frame = pd.DataFrame([(c, t.replace(tzinfo=None), y) for c, t, y in LABELS],
                         columns=["customer_id", "label_time", "churned"])
    assert str(frame["label_time"].dtype) == "datetime64[ns]"
    frame.to_parquet(tmp_path / "labels.parquet")

    labels = read_labels(spark, str(tmp_path / "labels.parquet"))
    lookups = [FeatureLookup(EVENTS.name, ["f_num", "f_cnt"], timestamp_lookup_key="label_time")]
    training_set = create_training_set(spark, config, labels, lookups, label="churned")

    assert labels.schema["label_time"].dataType.simpleString() == "timestamp"
    assert _by_label(training_set.df, ["label_time", "f_num", "f_cnt"]) == \
        _by_label(join_features(spark, config, labels_df(spark), lookups)[0], ["label_time", "f_num", "f_cnt"])
    assert _by_label(training_set.df, ["f_num", "f_cnt"]) == _expected_sorted(EXPECTED_EVENTS)
