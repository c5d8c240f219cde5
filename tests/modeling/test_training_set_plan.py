"""The point-in-time join's shape: lookups sharing keys and timestamp take one pass over the labels,
resolving lookups runs no Spark job, and mixed lookups (several timestamps, latest values) agree
with each lookup joined on its own."""

from __future__ import annotations

import pytest
from pit_data import make_config, EVENTS, PROFILE, labels_df, write_pit_tables
from pyspark.sql import functions as F

from featurestore.training_set import FeatureLookup, join_features


@pytest.fixture(scope="module")
def pit(spark, tmp_path_factory):
    config = make_config(tmp_path_factory.mktemp("pit_plan"))
    write_pit_tables(spark, config)
    return config


def _plan(df) -> str:
    return df._jdf.queryExecution().executedPlan().toString()


def _multiset(df, columns):
    return sorted((tuple(r[c] for c in columns) for r in df.collect()), key=repr)


def test_shared_keys_and_timestamp_take_one_shuffle_and_one_window(spark, pit):
    lookups = [FeatureLookup(EVENTS.name, ["f_num", "f_cnt"], timestamp_lookup_key="label_time"),
               FeatureLookup(PROFILE.name, timestamp_lookup_key="label_time")]
    spark.sparkContext.setJobGroup("pit_plan_resolve", "resolve lookups")
    try:
        df, _ = join_features(spark, pit, labels_df(spark), lookups)
    finally:
        spark.sparkContext.setJobGroup("pit_plan_other", "other")
    # resolving the lookups and building the plan runs no Spark job (no history(), no count())
    assert spark.sparkContext.statusTracker().getJobIdsForGroup("pit_plan_resolve") == []
    plan = _plan(df)
    assert plan.count("Exchange") == 1, plan
    assert plan.count("Window [") == 1, plan
    assert plan.count("SortMergeJoin") == 0 and plan.count("BroadcastHashJoin") == 0, plan


def test_mixed_lookups_match_each_lookup_alone(spark, pit):
    """Two timestamp columns (two windows) and a latest-value lookup give, per row, what each
    lookup gives alone; columns keep the lookup order; duplicate label rows stay."""
    labels = labels_df(spark).withColumn("seen_time", F.col("label_time") - F.expr("INTERVAL 1 DAY"))
    lookups = [FeatureLookup(EVENTS.name, ["f_num"], timestamp_lookup_key="label_time"),
               FeatureLookup(PROFILE.name, timestamp_lookup_key="seen_time"),
               FeatureLookup(EVENTS.name, ["f_cnt"])]
    together, _ = join_features(spark, pit, labels, lookups)
    assert together.columns == ["customer_id", "label_time", "churned", "seen_time", "f_num", "segment_score",
                                "f_cnt"]
    plan = _plan(together)
    assert plan.count("Window [") == 2, plan
    base = ["customer_id", "label_time", "churned", "seen_time"]
    rows = _multiset(together, base + ["f_num", "segment_score", "f_cnt"])
    assert len(rows) == labels.count()

    alone = []
    for lookup in lookups:
        joined, resolved = join_features(spark, pit, labels, [lookup])
        feats = resolved[0]["features"]
        alone.append({tuple(r[c] for c in base): tuple(r[f] for f in feats) for r in joined.collect()})
    for row in rows:
        key, values = row[:4], row[4:]
        assert values == (alone[0][key][0], alone[1][key][0], alone[2][key][0])
    # not vacuous: the two timestamps disagree somewhere, and values and gaps both occur
    assert any(v is None for r in rows for v in r[4:]) and any(r[4] is not None for r in rows)
    by_label_time = {r[:4]: r[5] for r in rows}
    at_label_time, _ = join_features(spark, pit, labels,
                                     [FeatureLookup(PROFILE.name, timestamp_lookup_key="label_time")])
    assert any(by_label_time[tuple(r[c] for c in base)] != r["segment_score"] for r in at_label_time.collect())


def test_drop_missing_across_windows_keeps_only_complete_rows(spark, pit):
    labels = labels_df(spark).withColumn("seen_time", F.col("label_time") - F.expr("INTERVAL 1 DAY"))
    lookups = [FeatureLookup(EVENTS.name, ["f_num"], timestamp_lookup_key="label_time"),
               FeatureLookup(PROFILE.name, timestamp_lookup_key="seen_time")]
    kept, _ = join_features(spark, pit, labels, lookups, drop_missing=True)
    full, _ = join_features(spark, pit, labels, lookups)
    columns = ["customer_id", "label_time", "churned", "seen_time", "f_num", "segment_score"]
    complete = [r for r in _multiset(full, columns) if r[4] is not None and r[5] is not None]
    assert _multiset(kept, columns) == complete
    assert 0 < len(complete) < full.count()


def test_the_shuffle_carries_no_copy_of_the_keys_and_time_and_no_timestamp_without_ttl(spark, pit):
    """Labels whose key and time already have the table's types are partitioned and ordered by
    their own columns; only a lookup with a ttl carries its feature row's timestamp."""
    lookups = [FeatureLookup(EVENTS.name, ["f_num"], timestamp_lookup_key="label_time"),   # ttl 3 days
               FeatureLookup(PROFILE.name, timestamp_lookup_key="label_time")]           # no ttl
    df, _ = join_features(spark, pit, labels_df(spark), lookups)
    plan = _plan(df)
    exchange = next(line for line in plan.splitlines() if "Exchange hashpartitioning" in line)
    assert "hashpartitioning(customer_id#" in exchange and "__fl_k" not in plan and "__fl_ts" not in plan, plan
    assert plan.count("struct(ts, ") == 1, plan   # the events' payload only
    assert plan.count("struct(f0, ") == 1, plan   # the profile's: features alone
    # an int key is cast to the table's bigint key: then the cast is what the window partitions by
    narrow = labels_df(spark).withColumn("customer_id", F.col("customer_id").cast("int"))
    cast_plan = _plan(join_features(spark, pit, narrow, lookups)[0])
    assert "hashpartitioning(__fl_k0#" in cast_plan, cast_plan
