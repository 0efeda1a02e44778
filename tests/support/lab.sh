#!/usr/bin/env bash
# make lab: the local Spark standalone cluster (tests/support/cluster.py, state and logs in
# out/cluster/) and JupyterLab on 127.0.0.1 with sparkernel and the example notebooks. The
# cluster stops when JupyterLab exits (Ctrl-C twice); a cluster already running in
# out/cluster/ is used as it is and left running. Arguments go to `jupyter lab`
# (make lab LAB_ARGS=--port=9999); CLUSTER_ARGS to `cluster.py start`.
set -euo pipefail
cd "$(dirname "$0")/../.."
PYTHON=$(${PYTHON:-.venv/bin/python} -c 'import sys; print(sys.executable)')
export JUPYTER_PATH=${JUPYTER_PATH:-$PWD/build/share/jupyter}
cluster_dir=$PWD/out/cluster

started=0
stop_cluster() {
    if [ "$started" = 1 ]; then
        echo "== stopping the cluster"
        "$PYTHON" tests/support/cluster.py stop --dir "$cluster_dir" || true
    fi
}
trap stop_cluster EXIT
trap 'exit 130' INT TERM

if "$PYTHON" tests/support/cluster.py status --dir "$cluster_dir" >/dev/null 2>&1; then
    echo "== using the cluster already running in $cluster_dir"
    "$PYTHON" tests/support/cluster.py status --dir "$cluster_dir"
else
    echo "== starting the local cluster (out/cluster)"
    started=1
    # shellcheck disable=SC2086
    "$PYTHON" tests/support/cluster.py start --dir "$cluster_dir" ${CLUSTER_ARGS:-}
fi

# What the kernel (JupyterLab's child) needs: the master, its UI, Spark's quiet log4j conf
# of the cluster, loopback only, the venv's Python for Python workers, and the data folder
# of the notebooks.
read -r master ui conf < <("$PYTHON" -c 'import json, sys
s = json.load(open(sys.argv[1]))
print(s["master_url"], s["ui_url"], s["conf_dir"])' "$cluster_dir/cluster.json")
export SPARK_MASTER_URL=$master SPARKERNEL_MASTER_UI_URL=$ui SPARK_CONF_DIR=$conf
export SPARK_HOME
SPARK_HOME=$("$PYTHON" -c 'import os, pyspark; print(os.path.dirname(pyspark.__file__))')
export SPARK_LOCAL_IP=127.0.0.1 SPARKERNEL_BIND_ADDRESS=127.0.0.1
export PYSPARK_PYTHON=$PYTHON PYSPARK_DRIVER_PYTHON=$PYTHON
export SPARKERNEL_DATA_DIR=${SPARKERNEL_DATA_DIR:-$PWD/notebooks/data}

root_flag=()
[ "$(id -u)" != 0 ] || root_flag=(--allow-root)
echo "== JupyterLab on 127.0.0.1: open the URL with the token below, pick \"PySpark (sparkernel)\""
"$PYTHON" -m jupyter lab --no-browser --ip=127.0.0.1 --ServerApp.root_dir="$PWD/notebooks" \
    "${root_flag[@]}" "$@"
