"""Benchmark: batch scoring through the job's spark_udf path vs pyfunc ``predict`` on pandas.

For each size N the same rows (10 float columns, written once to a parquet file) are scored

* through the job's scoring path (``inference.scoring``: pinned registry version, signature
  check, ``mlflow.pyfunc.spark_udf`` with ``env_manager="local"``, result type from the
  signature, partitions matched to cores, Arrow batches of ``--arrow-batch`` rows), read
  from the parquet file as the job reads its Delta tables, the result written to Spark's
  ``noop`` sink so every row is scored; the UDF is warmed up (workers started, model loaded,
  one untimed pass over the smallest size for the JVM's compiler), so the figures are the
  steady state (the cold first call is reported separately);
* with the model's pyfunc ``predict`` on a pandas DataFrame in this one process (the data
  already in memory: the practical single-process limit),

for a cheap model (logistic regression: Arrow transfer dominates) and a compute-bound one
(random forest of 200 trees). The job's default path for classifiers also computes the
probability (``predict_proba``), i.e. twice the model work; it is measured as well as the
prediction-only path, which does the same work as the pandas baseline.

    python -m benchmarks.batch_scoring                       # N = 250k, 1M, 2M
    python -m benchmarks.batch_scoring --rows 100000 --out - # quick look, no results file
"""

from __future__ import annotations

import argparse
import logging
import shutil
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from benchmarks.common import (
    MemorySampler, base_parser, compute_all, main_for, measure, ratio, result_header, target_row,
)
from featurestore.core.config import Config, resolve_paths
from featurestore.runtime.spark_session import get_spark
from inference.model_reference import resolve_model
from inference.tracking import client as mlflow_client
from inference.scoring import (
    COLUMNAR_INPUT_CONF, arrow_batch_size, check_inputs, load_scoring_model, match_parallelism, score, scoring_udf,
)

logger = logging.getLogger(__name__)

NAME = "batch_scoring"
COLUMNS = [f"f{i}" for i in range(10)]
DEFAULT_ROWS = (250_000, 1_000_000, 2_000_000)
CHUNK = 250_000
ROW_GROUP = 25_000  # small row groups: Spark's file splits, one per core, get equal shares


def tree_cpu_seconds() -> dict[str, float]:
    """CPU seconds (user + system) used so far by this process and its live descendants, split
    into ``jvm`` (the driver JVM, which runs the executors in local mode) and ``python`` (this
    process and the Python workers)."""
    import psutil

    totals = {"jvm": 0.0, "python": 0.0}
    me = psutil.Process()
    for proc in [me, *me.children(recursive=True)]:
        try:
            times = proc.cpu_times()
            totals["jvm" if proc.name() == "java" else "python"] += times.user + times.system
        except psutil.Error:
            continue
    return totals


def timed(name: str, action, rows: int, sampler, repeat: int) -> dict[str, Any]:  # noqa: ANN001
    """:func:`measure` plus the CPU seconds the whole process tree spent (load-independent)."""
    before = tree_cpu_seconds()
    figures = measure(name, action, rows, sampler, repeat=repeat)
    after = tree_cpu_seconds()
    jvm, python = ((after[k] - before[k]) / repeat for k in ("jvm", "python"))
    figures["cpu_seconds"] = round(jvm + python, 2)
    figures["jvm_cpu_seconds"] = round(jvm, 2)
    figures["python_cpu_seconds"] = round(python, 2)
    figures["rows_per_cpu_second"] = round(rows / (jvm + python)) if jvm + python > 0 else None
    return figures


def build_parser() -> argparse.ArgumentParser:
    """Return the benchmark's argument parser."""
    parser = base_parser("python -m benchmarks.batch_scoring", __doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", help="sizes N to score (default 250k 1M 2M, times --scale)")
    parser.add_argument("--arrow-batch", type=int, default=100_000, help="records per Arrow batch (default 100000)")
    parser.add_argument("--trees", type=int, default=200, help="random forest size (default 200)")
    parser.add_argument("--master", default="local[2]", help="Spark master (default local[2])")
    parser.add_argument("--no-sweep", action="store_true", help="skip the Arrow batch-size comparison")
    parser.add_argument("--no-per-task", action="store_true", help="skip the per-task model loading comparison")
    return parser


def write_rows(path: Path, rows: int, seed: int = 42) -> None:
    """Write ``rows`` rows of 10 float64 columns (plus an id) in chunks, keeping driver memory low."""
    rng = np.random.default_rng(seed)
    writer = None
    for start in range(0, rows, CHUNK):
        n = min(CHUNK, rows - start)
        arrays = {"id": pa.array(np.arange(start, start + n, dtype="int64"))}
        arrays.update({c: pa.array(rng.normal(size=n)) for c in COLUMNS})
        table = pa.table(arrays)
        writer = writer or pq.ParquetWriter(path, table.schema)
        writer.write_table(table, row_group_size=ROW_GROUP)
    if writer is not None:
        writer.close()


def train_models(config: Config, trees: int) -> dict[str, str]:
    """Fit, log (with signature) and register the two models; return name -> models:/ URI."""
    import mlflow
    from mlflow.models import infer_signature
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    import pandas as pd

    X = pd.DataFrame(rng.normal(size=(20_000, len(COLUMNS))), columns=COLUMNS)
    y = ((X["f0"] + 0.5 * X["f1"] * X["f2"] - X["f3"] + rng.normal(scale=0.5, size=len(X))) > 0).astype("int64")
    client = mlflow_client(config)
    experiment = mlflow.create_experiment("benchmark", artifact_location=Path(config.mlflow.artifact_location).as_uri())
    models = {
        "logistic_regression": LogisticRegression(max_iter=500),
        "random_forest": RandomForestClassifier(n_estimators=trees, max_depth=10, n_jobs=1, random_state=0),
    }
    trusted = {"random_forest": ["sklearn.tree._tree.Tree"]}  # our own model: its tree storage is safe to load
    uris = {}
    for name, model in models.items():
        model.fit(X, y)
        with mlflow.start_run(experiment_id=experiment) as run:
            info = mlflow.sklearn.log_model(model, name="model", signature=infer_signature(X, model.predict(X)),
                                            pip_requirements=["scikit-learn", "mlflow"],
                                            skops_trusted_types=trusted.get(name))
        client.create_registered_model(name)
        client.create_model_version(name, info.model_uri, run.info.run_id)
        uris[name] = f"models:/{name}/1"
    return uris


def _predict_part(uri: str, tracking_uri: str, file: str, part: int, parts: int, ready, start, done) -> None:  # noqa: ANN001
    """Child process of :func:`pandas_in_parallel`: load, say ready, predict its share when told."""
    import mlflow
    import pandas as pd

    mlflow.set_tracking_uri(tracking_uri)
    model = mlflow.pyfunc.load_model(uri)
    frame = pd.read_parquet(file, columns=COLUMNS)
    share = frame.iloc[part * len(frame) // parts:(part + 1) * len(frame) // parts]
    model.predict(share.head(1000))
    ready.put(part)
    start.wait()
    model.predict(share)
    done.put(part)


def pandas_in_parallel(model_name: str, uri: str, file: Path, n: int, processes: int,
                       tracking_uri: str) -> dict[str, Any]:
    """pyfunc ``predict`` on pandas in ``processes`` processes at once, each on its share of the
    ``n`` rows (no Spark): how much the machine's cores give when nothing else runs."""
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    ready, done, start = context.Queue(), context.Queue(), context.Event()
    children = [context.Process(target=_predict_part, args=(uri, tracking_uri, str(file), i, processes, ready,
                                                            start, done)) for i in range(processes)]
    for child in children:
        child.start()
    for _ in children:
        ready.get(timeout=600)
    started = time.perf_counter()
    start.set()
    for _ in children:
        done.get(timeout=3600)
    seconds = time.perf_counter() - started
    for child in children:
        child.join()
    return {"name": f"{model_name} pyfunc predict on pandas, {processes} processes at once (no Spark)",
            "rows": n, "seconds": round(seconds, 3), "rows_per_second": round(n / seconds)}


def transfer_floor(spark, file: Path, n: int, sampler, args: argparse.Namespace) -> list[dict[str, Any]]:  # noqa: ANN001
    """The same rows with no model: Spark alone, then an identity pandas UDF over the model's
    10 columns (the Arrow round trip JVM -> Python -> JVM that every Python UDF pays)."""
    import pandas as pd
    from pyspark.sql import functions as F

    def first_column(frame):  # noqa: ANN001, ANN202 - hints set below: this module's hints are strings
        return frame[COLUMNS[0]]

    first_column.__annotations__ = {"frame": pd.DataFrame, "return": pd.Series}
    first_column = F.pandas_udf(first_column, "double")

    df = match_parallelism(spark, spark.read.parquet(str(file)))
    jobs = {
        "floor: Spark scan only, no Python (sum of the columns)": df.select(
            "id", sum(F.col(c) for c in COLUMNS).alias("prediction")),
        "floor: identity pandas UDF over the 10 columns, no model (Arrow round trip)": df.select(
            "id", first_column(F.struct(*COLUMNS)).alias("prediction")),
    }
    rows = []
    with arrow_batch_size(spark, args.arrow_batch):
        for name, job in jobs.items():
            compute_all(job)  # warm
            rows.append(timed(name, lambda job=job: compute_all(job), n, sampler,
                              args.repeat))
    return rows


def per_task_loading(spark, config: Config, uris: dict[str, str], file: Path, n: int, cores: int, workdir: Path,  # noqa: ANN001
                     args: argparse.Namespace) -> list[dict[str, Any]]:
    """Score ``n`` rows spread over 8 tasks per core, through the job's wrapper (model loaded once per
    Python worker) and through ``spark_udf`` on the registered model itself (MLflow loads it once per
    task in local mode); both UDFs cold, as in a daily job."""
    import mlflow
    from pyspark.sql import functions as F

    rows = []
    partitions = 8 * cores
    for model_name, uri in uris.items():
        model = load_scoring_model(resolve_model(config, uri), with_probability=False,
                                   work_dir=str(workdir / f"per-task-{model_name}"))
        df = check_inputs(spark.read.parquet(str(file)), model).repartition(partitions)
        direct = mlflow.pyfunc.spark_udf(spark, model.local_path, result_type="double", env_manager="local")
        jobs = {
            "job's wrapper (load once per worker)": score(spark, df, model, ["id"], udf=scoring_udf(spark, model)),
            "registered model directly (load per task)": df.select(
                "id", direct(F.struct(*model.feature_names)).alias("prediction")),
        }
        for how, job in jobs.items():
            with arrow_batch_size(spark, args.arrow_batch):
                figures = timed(f"{model_name} spark_udf, {partitions} tasks, {how}",
                                lambda job=job: compute_all(job), n, None, 1)
            figures["partitions"] = partitions
            rows.append(figures)
    return rows


def batch_sweep(spark, config: Config, uris: dict[str, str], file: Path, n: int, sampler, workdir: Path,  # noqa: ANN001
                args: argparse.Namespace) -> list[dict[str, Any]]:
    """The prediction path of both models at several Arrow batch sizes, and with Spark's own
    columnar input (the parquet reader's 4096-row batches, which the job turns off)."""
    rows = []
    for model_name, uri in uris.items():
        model = load_scoring_model(resolve_model(config, uri), with_probability=False,
                                   work_dir=str(workdir / f"sweep-{model_name}"))
        df = match_parallelism(spark, check_inputs(spark.read.parquet(str(file)), model))
        job = score(spark, df, model, ["id"], udf=scoring_udf(spark, model))
        with arrow_batch_size(spark, args.arrow_batch):
            compute_all(job)  # warm: workers load this wrapper
        for batch in (10_000, args.arrow_batch, 500_000, None):
            with arrow_batch_size(spark, batch or args.arrow_batch):
                if batch is None:
                    spark.conf.set(COLUMNAR_INPUT_CONF, "true")  # Spark's default; restored on exit
                label = f"Arrow batch {batch}" if batch else "Arrow batch: Spark's columnar input (4096-row reader batches)"
                rows.append(timed(f"{model_name} spark_udf prediction, {label}",
                                  lambda: compute_all(job), n, sampler, args.repeat))
    return rows


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Run the benchmark and return its figures."""
    import mlflow
    import pandas as pd

    warnings.filterwarnings("ignore")
    sizes = args.rows or [int(n * args.scale) for n in DEFAULT_ROWS]
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="featurelake-bench-scoring-"))
    result = result_header(NAME, args, {"rows": sizes, "arrow_batch": args.arrow_batch, "trees": args.trees,
                                        "master": args.master, "columns": len(COLUMNS)})
    config = resolve_paths(Config(), workdir)
    config.spark.master = args.master
    config.spark.conf = {"spark.sql.shuffle.partitions": "2", "spark.default.parallelism": "2"}
    measurements: list[dict[str, Any]] = []
    cold: list[dict[str, Any]] = []
    try:
        uris = train_models(config, args.trees)
        spark = get_spark(config)
        cores = spark.sparkContext.defaultParallelism
        files = {}
        for n in sizes:
            files[n] = workdir / f"rows_{n}.parquet"
            write_rows(files[n], n)
        with MemorySampler() as sampler:
            # Spark first (driver memory as N grows), then pandas (which holds all N rows in the driver).
            for model_name, uri in uris.items():
                for with_probability in (False, True):
                    variant = f"{model_name} spark_udf {'prediction+probability' if with_probability else 'prediction'}"
                    model = load_scoring_model(resolve_model(config, uri), with_probability=with_probability,
                                               work_dir=str(workdir / f"{model_name}-{with_probability}"))
                    udf = scoring_udf(spark, model)
                    for n in sizes:
                        df = match_parallelism(spark, check_inputs(spark.read.parquet(str(files[n])), model))
                        job = score(spark, df, model, ["id"], udf=udf)
                        with arrow_batch_size(spark, args.arrow_batch):
                            if not cold or cold[-1]["name"] != variant:
                                # A sample from every partition, so that every Python worker starts and
                                # loads the model here (df.limit would warm one worker only).
                                started = time.perf_counter()
                                sample = df.sample(fraction=min(1.0, 2000 / n), seed=1)
                                compute_all(score(spark, sample, model, ["id"], udf=udf))
                                cold.append({"name": variant, "first_call_seconds": round(time.perf_counter() - started, 2)})
                                compute_all(job)  # untimed: the JVM compiles its hot code
                            figures = timed(variant, lambda: compute_all(job), n, sampler, args.repeat)
                        figures["partitions"] = df.rdd.getNumPartitions()
                        measurements.append(figures)
            per_task = [] if args.no_per_task else per_task_loading(spark, config, uris, files[sizes[0]], sizes[0],
                                                                    cores, workdir, args)
            if not args.no_sweep:
                sweep_n = sizes[1] if len(sizes) > 1 else sizes[0]
                measurements.extend(batch_sweep(spark, config, uris, files[sweep_n], sweep_n, sampler, workdir, args))
                measurements.extend(transfer_floor(spark, files[sizes[-1]], sizes[-1], sampler, args))
            spark_memory = sampler.snapshot()
            for model_name, uri in uris.items():
                pyfunc = mlflow.pyfunc.load_model(uri)
                for n in sizes:
                    pdf = pd.read_parquet(files[n], columns=COLUMNS)
                    pyfunc.predict(pdf.head(1000))  # warm
                    measurements.append(timed(f"{model_name} pyfunc predict on pandas", lambda frame=pdf: pyfunc.predict(frame),
                                              n, sampler, args.repeat))
                    del pdf
            for model_name, uri in uris.items():
                measurements.append(pandas_in_parallel(model_name, uri, files[sizes[-1]], sizes[-1], cores,
                                                       config.mlflow.tracking_uri))
    finally:
        if not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)

    def rate(name: str, n: int, key: str = "rows_per_second") -> float:
        return next(m[key] for m in measurements if m["name"] == name and m["rows"] == n)

    ratios = []
    n = sizes[-1]
    targets = {"logistic_regression": 0.5, "random_forest": 1.5}
    for model_name, target in targets.items():
        base = rate(f"{model_name} pyfunc predict on pandas", n)
        for variant in ("prediction", "prediction+probability"):
            value = ratio(rate(f"{model_name} spark_udf {variant}", n), base)
            ratios.append(target_row(f"{model_name}, {variant} / pandas predict, N={n:,} (wall clock)", value,
                                     f">= {target}x", None if value is None else value >= target))
            cpu = ratio(rate(f"{model_name} spark_udf {variant}", n, "rows_per_cpu_second"),
                        rate(f"{model_name} pyfunc predict on pandas", n, "rows_per_cpu_second"))
            ratios.append(target_row(f"{model_name}, {variant} / pandas predict, N={n:,} (rows per CPU-second)", cpu,
                                     "(efficiency; x cores = best case)", None))
    notes = []
    floor_name = "floor: identity pandas UDF over the 10 columns, no model (Arrow round trip)"
    if any(m["name"] == floor_name and m["rows"] == n for m in measurements):
        floor = rate(floor_name, n)
        base = rate("logistic_regression pyfunc predict on pandas", n)
        jvm = next(m["jvm_cpu_seconds"] for m in measurements if m["name"] == floor_name and m["rows"] == n)
        notes.append(f"Arrow round trip floor: an identity pandas UDF over the same 10 columns, no model at all, "
                     f"moves {floor:,} rows/s = {ratio(floor, base)}x the single-process logistic regression "
                     f"rate ({base:,} rows/s); no Python UDF, spark_udf included, can beat that floor on this "
                     f"machine, so the cheap model's ratio is bounded by it. The JVM alone spends {jvm} CPU-s on "
                     f"it (reading the rows and converting them to and from Arrow): even with free Python workers, "
                     f"{cores} cores could move at most {round(n * cores / jvm):,} rows/s "
                     f"= {ratio(n * cores / jvm, base)}x.")
    for model_name, target in targets.items():
        parallel = [m for m in measurements if m["name"].startswith(f"{model_name} pyfunc predict on pandas, ")]
        if parallel:
            ceiling = ratio(parallel[0]["rows_per_second"], rate(f"{model_name} pyfunc predict on pandas", n))
            notes.append(f"{model_name}: pandas predict in {cores} processes at once, no Spark, reaches "
                         f"{ceiling}x the one-process rate: that is what this machine's cores give any parallel "
                         f"scorer (target {target}x).")
    python_peaks = [m["peak_python_rss_mib"] for m in measurements
                    if "spark_udf" in m["name"] and "Arrow batch" not in m["name"]]
    if python_peaks:
        notes.append(f"driver Python process RSS over the Spark measurements, N={sizes[0]:,} to N={n:,}: "
                     f"{min(python_peaks)} to {max(python_peaks)} MiB (nothing is collected to the driver).")
    spark_peaks = [m["peak_driver_rss_mib"] for m in measurements if "spark_udf" in m["name"] and "Arrow batch" not in m["name"]]
    result.update({
        "measurements": measurements,
        "ratios": ratios,
        "notes": notes,
        "tables": {
            "Cold first call (worker start-up + model load, ~2000 rows from every partition)": cold,
            "Model loading per task vs once per worker (cold UDFs, many tasks)": [
                {k: m.get(k, "") for k in ("name", "rows", "seconds", "rows_per_second", "cpu_seconds")}
                for m in per_task],
            "CPU time of the whole process tree (driver, JVM, Python workers)": [
                {k: m.get(k, "") for k in ("name", "rows", "seconds", "cpu_seconds", "jvm_cpu_seconds",
                                            "python_cpu_seconds", "rows_per_cpu_second", "partitions")}
                for m in measurements],
        },
        "summary": [
            f"{m['name']}, N={m['rows']:,}: {m['rows_per_second']:,} rows/s" for m in measurements
            if m["rows"] == n and "Arrow batch" not in m["name"]
        ] + [f"peak driver RSS (python + JVM) during the Spark phase: {spark_memory['peak_driver_rss_mib']} MiB; "
             f"per Spark measurement from N={sizes[0]:,} to N={n:,}: {spark_peaks}",
             f"Spark cores (defaultParallelism): {cores}"],
    })
    return result


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit code."""
    return main_for(NAME, build_parser(), run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
