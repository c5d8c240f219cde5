#!/usr/bin/env bash
# Submit a featurelake job (jobs/JOB.py) to Spark with everything the job needs:
# the project's code for the executors (--py-files), the Delta Lake package and configuration,
# the Python interpreter, and the MLflow / warehouse settings. Run with --help for details.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PROG="$(basename "$0")"
PYTHON="${PYTHON:-python3}"
NOT_JOBS=(__init__ common cli)

usage() {
  cat <<EOF
Usage: ./$PROG [OPTIONS] JOB [JOB ARGUMENTS]

Submit the featurelake job JOB (a module in jobs/, for example build_features, train,
promote, batch_inference, monitor) to Spark with spark-submit, and print the command it runs.

Options (before or after JOB; everything else goes to the job):
  --master URL         Spark master: spark://HOST:PORT, yarn, k8s://..., local[N]
                       (default: \$SPARK_MASTER, else spark.master of the config file)
  --deploy-mode MODE   client (default) or cluster; in cluster mode the config file is shipped
                       with --files. Standalone masters run Python drivers in client mode only.
  --conf KEY=VALUE     extra Spark configuration (repeatable); it wins over the defaults below
  --config FILE        featurelake configuration file, handed to the job as an absolute path
                       (default: \$FEATURELAKE_CONFIG; without either the job uses its defaults)
  --timeout SECONDS    stop the submission (exit code 124) when it runs longer, for example when a
                       reachable master never grants the application any executor
  --dry-run            print the spark-submit command without running it
  --no-master-check    do not check that a spark:// master accepts connections before submitting
  --no-delta-package   add no Delta jars (--packages, Ivy settings): for runtimes with Delta
                       built in (Databricks, Synapse); the Delta extension and catalog stay
  -h, --help           show this help and exit

What it adds to spark-submit:
  --py-files dist/featurelake-code.zip   the packages setup.cfg installs
                       (those present), rebuilt when missing or older than a source file
  --packages, --conf   the Delta package, extension, catalog, Ivy settings and excludes
                       (featurestore.runtime.spark_session.delta_spark_conf())
  --conf               spark.pyspark.python (\$PYSPARK_PYTHON, default: $PYTHON's executable),
                       spark.sql.session.timeZone=UTC, spark.log.level=WARN, spark.network.timeout
                       and the spark.conf entries of the config file
  local masters        what featurelake's own local sessions get: its local defaults (4 shuffle
                       partitions, Delta snapshot partitions 2, no UI, 2g driver, Spark's warehouse
                       folder in featurelake's cache, not ./spark-warehouse), the JVM class-data
                       archive (of the first demo or \`featurelake warmup\`), the quick-start options
                       (spark.quick_start: always, or auto and the config's warehouse and source_root
                       local and at most 64 MB together), and the Delta jars an earlier resolution
                       recorded (in place of --packages) while they are on disk
  environment          FEATURELAKE_* and MLFLOW_* variables are passed to the executors
                       (spark.executorEnv.*) and, in cluster mode, to the driver
Environment:
  SPARK_SUBMIT         the spark-submit executable (default: \$SPARK_HOME/bin/spark-submit, else
                       spark-submit on PATH)
  PYTHON               the Python used to inspect the project (default: python3)
  SPARK_SUBMIT_CONNECT_TIMEOUT  seconds the master check waits (default: 10)

Examples:
  ./$PROG build_features --config demo-run/featurelake.yaml
  ./$PROG --master spark://10.0.0.5:7077 train --config prod.yaml --model-name churn \\
      --labels abfss://lake@acct.dfs.core.windows.net/raw/churn_labels.parquet
  FEATURELAKE_MLFLOW_TRACKING_URI=http://mlflow:5000 ./$PROG --master yarn --deploy-mode cluster \\
      batch_inference --config prod.yaml --model-uri models:/churn/Production

Exit codes: the job's own (0 success, 2 bad input, 3 not found, ...); 2 when this script
refuses its arguments (unknown job, missing config file); 5 when spark-submit is missing
or the master cannot be reached.
EOF
}

die() {  # die CODE MESSAGE
  echo "$PROG: error: $2" >&2
  exit "$1"
}

available_jobs() {
  local f name
  for f in "$ROOT"/jobs/*.py; do
    name="$(basename "$f" .py)"
    [[ " ${NOT_JOBS[*]} " == *" $name "* ]] && continue
    grep -q '^def main' "$f" && echo "$name"
  done
}

# ---------------------------------------------------------------- arguments
MASTER="${SPARK_MASTER:-}"
DEPLOY_MODE="client"
CONFIG="${FEATURELAKE_CONFIG:-}"
DRY_RUN=0
MASTER_CHECK=1
DELTA_PACKAGE=1
TIMEOUT=""
USER_CONF=()
JOB=""
JOB_ARGS=()

need_value() {  # need_value OPTION REMAINING_COUNT
  [[ "$2" -ge 2 ]] || die 2 "option $1 needs a value"
}

while [[ $# -gt 0 ]]; do
  case "$1" in
    -h|--help) usage; exit 0 ;;
    --master) need_value "$1" $#; MASTER="$2"; shift 2 ;;
    --master=*) MASTER="${1#*=}"; shift ;;
    --deploy-mode) need_value "$1" $#; DEPLOY_MODE="$2"; shift 2 ;;
    --deploy-mode=*) DEPLOY_MODE="${1#*=}"; shift ;;
    --conf) need_value "$1" $#; USER_CONF+=("$2"); shift 2 ;;
    --conf=*) USER_CONF+=("${1#*=}"); shift ;;
    --config) need_value "$1" $#; CONFIG="$2"; shift 2 ;;
    --config=*) CONFIG="${1#*=}"; shift ;;
    --dry-run) DRY_RUN=1; shift ;;
    --timeout) need_value "$1" $#; TIMEOUT="$2"; shift 2 ;;
    --timeout=*) TIMEOUT="${1#*=}"; shift ;;
    --no-master-check) MASTER_CHECK=0; shift ;;
    --no-delta-package) DELTA_PACKAGE=0; shift ;;
    --) shift; if [[ -z "$JOB" ]]; then JOB="${1:-}"; shift || true; fi; JOB_ARGS+=("$@"); break ;;
    *)
      if [[ -z "$JOB" ]]; then
        [[ "$1" == -* ]] && die 2 "unknown option $1 before the job name (see --help)"
        JOB="$1"
      else
        JOB_ARGS+=("$1")
      fi
      shift ;;
  esac
done

[[ -n "$JOB" ]] || { usage >&2; die 2 "no job given; available jobs: $(available_jobs | tr '\n' ' ')"; }
JOB="$(basename "${JOB%.py}")"
JOB_FILE="$ROOT/jobs/$JOB.py"
if [[ " ${NOT_JOBS[*]} " == *" $JOB "* || ! -f "$JOB_FILE" ]]; then
  die 2 "unknown job '$JOB'; available jobs: $(available_jobs | tr '\n' ' ')"
fi
case "$DEPLOY_MODE" in
  client|cluster) ;;
  *) die 2 "--deploy-mode must be client or cluster, not '$DEPLOY_MODE'" ;;
esac
for kv in ${USER_CONF[@]+"${USER_CONF[@]}"}; do
  [[ "$kv" == *=* ]] || die 2 "--conf expects KEY=VALUE, got '$kv'"
done
[[ -z "$TIMEOUT" || "$TIMEOUT" =~ ^[1-9][0-9]*$ ]] || die 2 "--timeout expects a number of seconds, got '$TIMEOUT'"

if [[ -n "$CONFIG" ]]; then
  [[ -f "$CONFIG" ]] || die 2 "configuration file not found: $CONFIG"
  CONFIG="$(cd "$(dirname "$CONFIG")" && pwd)/$(basename "$CONFIG")"
fi

# ---------------------------------------------------------------- spark-submit
if [[ -n "${SPARK_SUBMIT:-}" ]]; then
  SUBMIT="$SPARK_SUBMIT"
elif [[ -n "${SPARK_HOME:-}" && -x "${SPARK_HOME}/bin/spark-submit" ]]; then
  SUBMIT="$SPARK_HOME/bin/spark-submit"
else
  SUBMIT="$(command -v spark-submit || true)"
fi
if [[ -z "$SUBMIT" || ! -x "$SUBMIT" ]] && ! command -v "$SUBMIT" >/dev/null 2>&1; then
  die 5 "spark-submit not found${SUBMIT:+ at '$SUBMIT'}: install pyspark ('pip install pyspark') or a Spark distribution and set SPARK_HOME (or SPARK_SUBMIT)"
fi
command -v "$PYTHON" >/dev/null 2>&1 || die 5 "Python interpreter '$PYTHON' not found (set PYTHON)"

# ---------------------------------------------------------------- project facts from Python
# One Python call: the interpreter, the master and the session's configuration. A local master
# gets what `featurelake` gives its own local sessions (featurestore.runtime.spark_session.session_conf:
# local defaults, class-data archive, quick start, the jars an earlier resolution recorded);
# any other master the Delta configuration and the config file's spark.conf.
FACTS="$(cd "$ROOT" && CONFIG="$CONFIG" MASTER="$MASTER" DELTA_PACKAGE="$DELTA_PACKAGE" "$PYTHON" - <<'EOF'
import dataclasses, os, shlex, sys
from featurestore.core.config import SparkSettings, load_config
from featurestore.runtime.resolved_jars import use_recorded_jars
from featurestore.runtime.spark_session import delta_spark_conf, local_paths_are_small, session_conf
config = load_config(os.environ["CONFIG"]) if os.environ.get("CONFIG") else None
settings = config.spark if config is not None else SparkSettings()
settings = dataclasses.replace(settings, master=os.environ.get("MASTER") or settings.master)
if settings.master.startswith("local"):
    # The job's own inputs are not known here: quick start (auto) goes by the project's data.
    small = config is not None and local_paths_are_small([config.warehouse, config.source_root])
    conf = session_conf(settings, small_input=small)
    if os.environ["DELTA_PACKAGE"] == "1":
        conf = use_recorded_jars(conf)
else:
    conf = {**delta_spark_conf(), **settings.conf}
print(f"PYEXE={shlex.quote(sys.executable)}")
print(f"MASTER={shlex.quote(settings.master)}")
print("SPARK_CONF=(" + " ".join(shlex.quote(f"{k}={v}") for k, v in conf.items()) + ")")
EOF
)" || die 2 "cannot read the project's Spark settings (see the Python error above)"
eval "$FACTS"

export PYSPARK_PYTHON="${PYSPARK_PYTHON:-$PYEXE}"
export PYSPARK_DRIVER_PYTHON="${PYSPARK_DRIVER_PYTHON:-$PYSPARK_PYTHON}"

# ---------------------------------------------------------------- the code archive
DIST="$ROOT/dist"
ARCHIVE="$DIST/featurelake-code.zip"
# The top-level packages setup.cfg installs (its [options.packages.find]): one list, not two.
mapfile -t PRESENT < <(cd "$ROOT" && "$PYTHON" -c '
from setuptools.config.setupcfg import read_configuration
print("\n".join(sorted({name.split(".")[0] for name in read_configuration("setup.cfg")["options"]["packages"]})))')
[[ ${#PRESENT[@]} -gt 0 ]] || die 1 "could not read the package list from $ROOT/setup.cfg"
stale=1
if [[ -f "$ARCHIVE" ]]; then
  newer="$(cd "$ROOT" && find "${PRESENT[@]}" -type f \( -name '*.py' -o -name '*.xml' -o -name '*.yaml' -o -name '*.html' \) \
           -newer "$ARCHIVE" -print -quit)"
  [[ -z "$newer" ]] && stale=0
fi
if [[ "$stale" == 1 ]]; then
  mkdir -p "$DIST"
  (cd "$ROOT" && "$PYTHON" - "$ARCHIVE" "${PRESENT[@]}" <<'EOF'
import os, sys, zipfile
target, packages = sys.argv[1], sys.argv[2:]
tmp = target + ".tmp"
with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
    for package in packages:
        for folder, dirs, files in os.walk(package):
            dirs[:] = sorted(d for d in dirs if d != "__pycache__")
            for name in sorted(files):
                if name.endswith((".py", ".xml", ".yaml", ".json", ".txt", ".html")):
                    zf.write(os.path.join(folder, name))
os.replace(tmp, target)
EOF
  ) || die 1 "could not build $ARCHIVE"
  echo "$PROG: built $ARCHIVE (${PRESENT[*]})" >&2
fi
# spark-submit runs a file as the driver's main program. Running jobs/JOB.py itself would put
# jobs/ first on sys.path, where a job module could hide a top-level package; this launcher in dist/
# imports the job module from the archive instead and calls its main(argv).
LAUNCHER="$DIST/featurelake_job.py"
cat > "$LAUNCHER.tmp" <<'LAUNCHER_EOF'
"""Run a featurelake job module under spark-submit: featurelake_job.py JOB [ARGS...]."""
import importlib
import sys

if __name__ == "__main__":
    job = importlib.import_module("jobs." + sys.argv[1])
    sys.exit(job.main(sys.argv[2:]))
LAUNCHER_EOF
mv "$LAUNCHER.tmp" "$LAUNCHER"

# ---------------------------------------------------------------- the command
CMD=("$SUBMIT" --master "$MASTER" --deploy-mode "$DEPLOY_MODE" --name "featurelake-$JOB"
     --py-files "$ARCHIVE")
add_conf() { CMD+=(--conf "$1"); }

for kv in "${SPARK_CONF[@]}"; do
  case "$kv" in
    spark.jars.packages=*) [[ "$DELTA_PACKAGE" == 1 ]] && CMD+=(--packages "${kv#*=}") ;;
    spark.jars.excludes=*) [[ "$DELTA_PACKAGE" == 1 ]] && CMD+=(--exclude-packages "${kv#*=}") ;;
    spark.jars.ivySettings=*) [[ "$DELTA_PACKAGE" == 1 ]] && add_conf "$kv" ;;
    *) add_conf "$kv" ;;
  esac
done
add_conf "spark.pyspark.python=$PYSPARK_PYTHON"
add_conf "spark.sql.session.timeZone=UTC"
add_conf "spark.sql.execution.arrow.pyspark.enabled=true"
add_conf "spark.log.level=WARN"
# Bounded waits: a lost executor or an unreachable driver fails the job instead of hanging.
add_conf "spark.network.timeout=120s"
# FEATURELAKE_* (warehouse, MLflow, ...) and MLFLOW_* settings reach the executors and the driver.
while IFS='=' read -r name _; do
  [[ "$name" =~ ^(FEATURELAKE|MLFLOW)_[A-Z0-9_]+$ ]] || continue
  add_conf "spark.executorEnv.$name=${!name}"
  if [[ "$DEPLOY_MODE" == cluster ]]; then
    add_conf "spark.yarn.appMasterEnv.$name=${!name}"
    add_conf "spark.kubernetes.driverEnv.$name=${!name}"
  fi
done < <(env)
for kv in ${USER_CONF[@]+"${USER_CONF[@]}"}; do add_conf "$kv"; done

if [[ -n "$CONFIG" ]]; then
  if [[ "$DEPLOY_MODE" == cluster ]]; then
    CMD+=(--files "$CONFIG")
    JOB_ARGS=(--config "$(basename "$CONFIG")" ${JOB_ARGS[@]+"${JOB_ARGS[@]}"})
  else
    JOB_ARGS=(--config "$CONFIG" ${JOB_ARGS[@]+"${JOB_ARGS[@]}"})
  fi
fi
CMD+=("$LAUNCHER" "$JOB" ${JOB_ARGS[@]+"${JOB_ARGS[@]}"})

# ---------------------------------------------------------------- fail fast on a dead master
if [[ "$MASTER_CHECK" == 1 && "$DRY_RUN" == 0 && "$MASTER" =~ ^spark://(.+)$ ]]; then
  reachable=0
  IFS=',' read -ra endpoints <<< "${BASH_REMATCH[1]}"
  for endpoint in "${endpoints[@]}"; do
    host="${endpoint%:*}"; port="${endpoint##*:}"
    [[ "$host" == "$endpoint" ]] && port=7077
    if timeout "${SPARK_SUBMIT_CONNECT_TIMEOUT:-10}" bash -c "exec 3<>/dev/tcp/$host/$port" 2>/dev/null; then
      reachable=1; break
    fi
  done
  [[ "$reachable" == 1 ]] || die 5 "Spark master $MASTER cannot be reached (no connection within ${SPARK_SUBMIT_CONNECT_TIMEOUT:-10}s); check the URL and that the master is running (--no-master-check submits anyway)"
fi

printf '%s:' "$PROG" >&2
printf ' %q' "${CMD[@]}" >&2
printf '\n' >&2
[[ "$DRY_RUN" == 1 ]] && exit 0
[[ -z "$TIMEOUT" ]] && exec "${CMD[@]}"
status=0
timeout --kill-after=30 "$TIMEOUT" "${CMD[@]}" || status=$?
if [[ "$status" == 124 || "$status" == 137 ]]; then
  die 124 "$JOB did not finish within $TIMEOUT s (--timeout): spark-submit was stopped"
fi
exit "$status"
