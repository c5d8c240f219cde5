"""The point-in-time join gives the same rows as Feast's get_historical_features on the same Delta data."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from pit_data import make_config, EVENTS, LABELS, PROFILE, write_pit_tables

from featurestore.feast_repo import feature_store, register_tables
from featurestore.training_set import FeatureLookup, join_features

pytestmark = pytest.mark.slow


def _norm(value):
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return float(value)


def test_join_features_matches_feast(spark, tmp_path):
    config = make_config(tmp_path)
    write_pit_tables(spark, config)
    register_tables(config, [EVENTS, PROFILE])
    rows = [(c, t) for c, t, _ in LABELS if t is not None]
    entity_df = pd.DataFrame({"customer_id": [c for c, _ in rows],
                              "event_timestamp": pd.to_datetime([t for _, t in rows], utc=True)})
    entity_df["event_timestamp"] = entity_df["event_timestamp"].astype("datetime64[us, UTC]")
    features = ["pit_events:f_num", "pit_events:f_cnt", "pit_profile:segment_score"]
    feast_df = feature_store(config).get_historical_features(entity_df=entity_df, features=features).to_df()
    assert len(feast_df) == len(rows)

    left = spark.createDataFrame(entity_df)
    ours, _ = join_features(spark, config, left, [
        FeatureLookup(EVENTS.name, ["f_num", "f_cnt"], timestamp_lookup_key="event_timestamp"),
        FeatureLookup(PROFILE.name, ["segment_score"], timestamp_lookup_key="event_timestamp"),
    ])

    def key(ts):
        return pd.Timestamp(ts).tz_localize("UTC") if pd.Timestamp(ts).tzinfo is None else pd.Timestamp(ts)

    ours_rows = sorted((r["customer_id"], key(r["event_timestamp"]), _norm(r["f_num"]), _norm(r["f_cnt"]),
                        _norm(r["segment_score"])) for r in ours.collect())
    feast_rows = sorted((int(r.customer_id), key(r.event_timestamp), _norm(r.f_num), _norm(r.f_cnt),
                         _norm(r.segment_score)) for r in feast_df.itertuples())
    assert ours_rows == feast_rows
    # the comparison is not vacuous: both found values and both found gaps
    assert any(r[2] is not None for r in ours_rows) and any(r[2] is None for r in ours_rows)
