#!/usr/bin/env bash
# The main job (make run): starts a local Spark standalone cluster (a master and one worker
# on loopback, from the pyspark package; tests/support/cluster.py, state and logs in
# out/cluster/), executes the example notebooks headless through sparkernel with
# `jupyter nbconvert --execute`, writes the executed notebooks and their HTML renderings to
# out/, prints a summary (cells, wall time, the figures each notebook computed) and stops
# the cluster on exit.
#
# Environment: PYTHON (the venv's python), JUPYTER_PATH (finds the built kernelspec),
# CLUSTER_ARGS (extra `cluster.py start` options, e.g. "--master-port 17077 --ui-port 18080"
# when 7077/8080 are taken). A cluster already running from out/cluster (make cluster-start)
# is used as it is and left running.
set -euo pipefail
cd "$(dirname "$0")/../.."
PYTHON=${PYTHON:-.venv/bin/python}
export JUPYTER_PATH=${JUPYTER_PATH:-$PWD/build/share/jupyter}
CLUSTER_DIR=$PWD/out/cluster
notebooks=(notebooks/spark-example.ipynb notebooks/linearRegressionBostonHousing.ipynb)
mkdir -p out

started=0
stop_cluster() {
    if [ "$started" = 1 ]; then
        echo "== stopping the local cluster"
        "$PYTHON" tests/support/cluster.py stop --dir "$CLUSTER_DIR" || true
    fi
}
trap stop_cluster EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if "$PYTHON" tests/support/cluster.py status --dir "$CLUSTER_DIR" >/dev/null 2>&1; then
    echo "== using the local cluster already running from $CLUSTER_DIR"
    "$PYTHON" tests/support/cluster.py status --dir "$CLUSTER_DIR"
else
    echo "== starting a local Spark standalone cluster (1 worker) in $CLUSTER_DIR"
    # shellcheck disable=SC2086  # CLUSTER_ARGS holds several options
    "$PYTHON" tests/support/cluster.py start --dir "$CLUSTER_DIR" --workers 1 ${CLUSTER_ARGS:-} \
        || { echo "the cluster did not start (see the message above)" >&2; exit 2; }
    started=1
fi

# The driver's environment: the cluster's master and UI, its SPARK_CONF_DIR (quiet log4j),
# the venv's Python for the Python workers, loopback only (LocalCluster.driver_env).
eval "$("$PYTHON" - "$CLUSTER_DIR" <<'EOF'
import os, shlex, sys
sys.path.insert(0, "tests/support")
from cluster import LocalCluster, read_state
state = read_state(sys.argv[1])
c = LocalCluster(host=state["host"], master_port=state["master_port"],
                 ui_port=state["ui_port"], state_dir=sys.argv[1])
env = c.driver_env({})
env.update({"SPARK_MASTER_URL": c.master_url, "SPARKERNEL_MASTER_UI_URL": c.ui_url,
            "SPARKERNEL_BIND_ADDRESS": state["host"]})
for key, value in sorted(env.items()):
    print("export %s=%s" % (key, shlex.quote(value)))
EOF
)"
# The notebooks find their data through this one setting (the shared volume in the chart).
export SPARKERNEL_DATA_DIR=$PWD/notebooks/data
# A notebook's first Spark job waits for dynamic allocation to launch an executor JVM, which
# can take more than the default 10 s on a busy 2-core machine; the "no executors" report
# would then be a false alarm in the rendered notebooks.
export SPARKERNEL_WAITING_REPORT_S=${SPARKERNEL_WAITING_REPORT_S:-60}
echo "== master $SPARK_MASTER_URL, data $SPARKERNEL_DATA_DIR"

failed=0
summaries=()
for nb in "${notebooks[@]}"; do
    name=$(basename "$nb" .ipynb)
    echo "== executing $nb"
    start=$(date +%s.%N)
    if "$PYTHON" -m jupyter nbconvert --to notebook --execute \
        --ExecutePreprocessor.kernel_name=sparkernel --ExecutePreprocessor.timeout=600 \
        --output-dir out --output "$name.executed" "$nb" 2>out/"$name".log; then
        end=$(date +%s.%N)
        "$PYTHON" -m jupyter nbconvert --to html --output-dir out "out/$name.executed.ipynb" \
            2>>out/"$name".log
        if summary=$("$PYTHON" tests/support/summarize.py "out/$name.executed.ipynb" "$start" "$end"); then
            :
        else
            failed=1
        fi
        summaries+=("$summary")
    else
        end=$(date +%s.%N)
        failed=1
        summaries+=("$nb: FAILED after $(awk "BEGIN{printf \"%.1f\", $end-$start}") s (log: out/$name.log)")
        echo "nbconvert failed on $nb; the end of out/$name.log:" >&2
        tail -n 30 out/"$name".log >&2
    fi
done

echo
echo "== summary"
for s in "${summaries[@]}"; do
    echo "$s"
done
echo "executed notebooks and HTML in out/; Parquet output in $SPARKERNEL_DATA_DIR/output/"
exit "$failed"
