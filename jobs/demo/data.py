"""A deterministic synthetic data set: customers, their transactions and churn labels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

START = pd.Timestamp("2026-01-05")  # a Monday
WEEKS = 8
COUNTRIES = ("DE", "FR", "NL", "SE", "ES")
PLANS = {"basic": 9.99, "standard": 19.99, "premium": 39.99}


def make_customers(n_customers: int, rng: np.random.Generator) -> pd.DataFrame:
    """Customers with a signup date, age, country and plan."""
    ids = np.arange(1, n_customers + 1, dtype="int64")
    plan = rng.choice(list(PLANS), size=n_customers, p=[0.5, 0.35, 0.15])
    return pd.DataFrame({
        "customer_id": ids,
        "signup_date": START - pd.to_timedelta(rng.integers(30, 1500, n_customers), unit="D"),
        "age": rng.integers(18, 80, n_customers).astype("int64"),
        "country": rng.choice(COUNTRIES, size=n_customers),
        "plan": plan,
        "monthly_fee": [PLANS[p] for p in plan],
        "updated_at": START,
    })


def make_transactions(customers: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """Card transactions over ``WEEKS`` weeks; a customer's activity fades if they will churn."""
    rows = []
    activity = rng.gamma(2.0, 1.5, len(customers))
    fading = rng.random(len(customers)) < 0.3
    for i, customer_id in enumerate(customers["customer_id"]):
        for week in range(WEEKS):
            rate = activity[i] * (0.55 ** week if fading[i] else 1.0)
            for _ in range(rng.poisson(rate)):
                ts = START + pd.Timedelta(days=7 * week) + pd.Timedelta(seconds=int(rng.integers(0, 7 * 86400)))
                rows.append((int(customer_id), ts, round(float(rng.gamma(2.0, 20.0)), 2)))
    df = pd.DataFrame(rows, columns=["customer_id", "ts", "amount"])
    return df.sort_values(["customer_id", "ts"]).reset_index(drop=True)


def make_labels(customers: pd.DataFrame, transactions: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """Churn labels observed at a time per customer, driven by recent spend and tenure."""
    label_time = START + pd.Timedelta(days=7 * WEEKS) + pd.to_timedelta(rng.integers(0, 7, len(customers)), unit="D")
    last_weeks = transactions[transactions["ts"] >= START + pd.Timedelta(days=7 * (WEEKS - 2))]
    recent = last_weeks.groupby("customer_id")["amount"].sum().reindex(customers["customer_id"], fill_value=0.0)
    tenure_years = (START - customers["signup_date"]).dt.days.to_numpy() / 365.0
    logit = 1.2 - 0.04 * recent.to_numpy() - 0.6 * tenure_years + 0.02 * customers["monthly_fee"].to_numpy()
    churned = (rng.random(len(customers)) < 1.0 / (1.0 + np.exp(-logit))).astype("int64")
    return pd.DataFrame({"customer_id": customers["customer_id"].to_numpy(), "label_time": label_time,
                         "churned": churned})


def _to_microseconds(df: pd.DataFrame) -> pd.DataFrame:
    """Store timestamps as UTC microseconds.

    Spark 4 refuses parquet nanosecond timestamps (pandas' default) and reads naive ones
    as ``timestamp_ntz``.
    """
    out = df.copy()
    for column in out.columns:
        if pd.api.types.is_datetime64_any_dtype(out[column]):
            out[column] = out[column].dt.tz_localize("UTC").astype("datetime64[us, UTC]")
    return out


def write_demo_data(raw_dir: str | Path, n_customers: int = 500, seed: int = 7) -> dict[str, Path]:
    """Generate the data set and write it as parquet files under ``raw_dir``; return the paths."""
    rng = np.random.default_rng(seed)
    customers = make_customers(n_customers, rng)
    transactions = make_transactions(customers, rng)
    labels = make_labels(customers, transactions, rng)
    raw = Path(raw_dir)
    raw.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, frame in (("customers", customers), ("transactions", transactions), ("churn_labels", labels)):
        paths[name] = raw / f"{name}.parquet"
        _to_microseconds(frame).to_parquet(paths[name], index=False)
    return paths
