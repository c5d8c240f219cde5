"""The demo's feature tables: a customer profile and weekly transaction aggregates."""

from __future__ import annotations

from datetime import timedelta
from typing import Mapping

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from featurestore.definitions import FeatureTable, Field, Source

CUSTOMER_KEY = Field("customer_id", "bigint", "Customer identifier")
NOTEBOOK = "https://github.com/featurelake/featurelake/blob/main/jobs/demo/feature_tables.py"


def customer_profile(spark: SparkSession, inputs: Mapping[str, DataFrame]) -> DataFrame:
    """Profile attributes of each customer as of the snapshot time."""
    customers = inputs["customers"]
    return customers.select(
        "customer_id",
        F.col("updated_at").alias("snapshot_time"),
        F.col("age").cast("double").alias("age"),
        F.datediff(F.col("updated_at"), F.col("signup_date")).cast("double").alias("tenure_days"),
        F.col("monthly_fee").cast("double").alias("monthly_fee"),
        F.col("country"),
    )


def customer_weekly_spend(spark: SparkSession, inputs: Mapping[str, DataFrame]) -> DataFrame:
    """Transaction count and spend per customer over the week ending at each week boundary."""
    tx = inputs["transactions"].withColumn(
        "week_end", F.date_add(F.date_trunc("week", F.col("ts")).cast("date"), 7).cast("timestamp")
    )
    weekly = tx.groupBy("customer_id", "week_end").agg(
        F.count(F.lit(1)).alias("txn_count_7d"),
        F.sum("amount").alias("spend_7d"),
        F.max("ts").alias("last_ts"),
    )
    return weekly.select(
        "customer_id",
        "week_end",
        F.col("txn_count_7d").cast("bigint"),
        F.round(F.col("spend_7d"), 2).cast("double").alias("spend_7d"),
        F.round(F.col("spend_7d") / F.col("txn_count_7d"), 2).cast("double").alias("avg_amount_7d"),
        ((F.unix_timestamp("week_end") - F.unix_timestamp("last_ts")) / 86400.0)
        .cast("double").alias("days_since_last_txn"),
    )


FEATURE_TABLES = [
    FeatureTable(
        name="customer_profile",
        primary_keys=[CUSTOMER_KEY],
        timestamp_key="snapshot_time",
        features=[
            Field("age", "double", "Age in years"),
            Field("tenure_days", "double", "Days since signup at snapshot time"),
            Field("monthly_fee", "double", "Monthly fee of the customer's plan (EUR)"),
            Field("country", "string", "Country code (ISO 3166-1 alpha-2)"),
        ],
        sources=[Source("customers", "raw/customers.parquet")],
        transform=customer_profile,
        owner="customer-data@example.com",
        description="Customer profile attributes, one row per customer and snapshot",
        notebook_url=NOTEBOOK,
        tags={"domain": "customer", "pii": "false"},
    ),
    FeatureTable(
        name="customer_weekly_spend",
        primary_keys=[CUSTOMER_KEY],
        timestamp_key="week_end",
        features=[
            Field("txn_count_7d", "bigint", "Number of transactions in the 7 days before week_end"),
            Field("spend_7d", "double", "Total spend in the 7 days before week_end (EUR)"),
            Field("avg_amount_7d", "double", "Average transaction amount in the 7 days before week_end (EUR)"),
            Field("days_since_last_txn", "double", "Days between the last transaction of the week and week_end"),
        ],
        sources=[Source("transactions", "raw/transactions.parquet")],
        transform=customer_weekly_spend,
        owner="payments-data@example.com",
        description="Weekly transaction aggregates per customer",
        notebook_url=NOTEBOOK,
        tags={"domain": "payments"},
        ttl=timedelta(days=21),
    ),
]
