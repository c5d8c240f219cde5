"""PySpark's Python worker daemon with the scoring stack imported once, before it forks workers.

Spark starts one daemon per executor (``spark.python.daemon.module``, by default
``pyspark.daemon``), which forks a Python worker for each concurrent task. A forked worker
that scores a batch imports pandas, pyarrow, scikit-learn, MLflow's pyfunc and skops (the
format of logged scikit-learn models) itself: about 10 s of CPU per worker on the 2-core
machine, the larger part of a 500-entity ``featurelake predict`` (profile:
benchmarks/results/terminal.md). This daemon imports them once; every worker it forks starts
with them loaded. A session that scores names it (:data:`WORKER_DAEMON_MODULE`, passed to
:func:`featurestore.runtime.spark_session.start_spark`); nothing else changes.

    spark = start_spark(config, reads, python_daemon_module=WORKER_DAEMON_MODULE)

Importing this module imports nothing else: the driver only needs its name.

The imports start no Python thread (PySpark's reason to import its worker after the fork);
numpy's OpenBLAS threads are re-created in each child by OpenBLAS's own fork handler.
"""

from __future__ import annotations

WORKER_DAEMON_MODULE = "inference.worker_daemon"  # what Spark runs: python -m inference.worker_daemon
# The modules a scoring worker loads, in the order it loads them.
SCORING_IMPORTS = ("pandas", "pyarrow", "sklearn.base", "mlflow.pyfunc", "mlflow.sklearn", "skops.io")


def import_scoring_stack() -> None:
    """Import :data:`SCORING_IMPORTS`; a module that is not installed is skipped (the worker
    would fail on it later with its own error, or not need it)."""
    import importlib

    for name in SCORING_IMPORTS:
        try:
            importlib.import_module(name)
        except ImportError:
            pass


if __name__ == "__main__":
    import_scoring_stack()
    from pyspark import daemon

    daemon.manager()
