#!/usr/bin/env bash
# Checks, before anything is built, what `make run` ("run") and `make test` ("test") need
# from the machine that tests/support/deps.sh cannot install: a Java 17+ first on the PATH (or
# JAVA_HOME), the memory the local cluster's worker and the drivers take, and (run) the local
# cluster's ports. One line per problem, naming what to do; exit 1 if there is any.
#
# Environment: CLUSTER_ARGS (the main job's `cluster.py start` options: --master-port,
# --ui-port, --memory are read from it), SPARKERNEL_PREFLIGHT_MEM_MB (override the memory
# needed, for tests of this script).
set -uo pipefail
cd "$(dirname "$0")/../.."
profile=${1:-test}
problems=0
problem() {
    printf 'preflight: %s\n' "$*" >&2
    problems=$((problems + 1))
}

# --- Java: Spark 4 needs 17 or newer ------------------------------------------------------
java=java
[ -n "${JAVA_HOME:-}" ] && java="$JAVA_HOME/bin/java"
if ! command -v "$java" >/dev/null 2>&1; then
    problem "no Java found: install OpenJDK 17 (apt-get install openjdk-17-jre-headless) or set JAVA_HOME to a Java 17+"
else
    ver=$("$java" -version 2>&1 | sed -n 's/.*version "\([0-9][0-9]*\)\(\.[0-9]*\)*.*/\1/p' | head -1)
    [ "$ver" = 1 ] && ver=8 # "1.8.0_x"
    if [ -z "$ver" ]; then
        problem "cannot read the version of $java: make sure '$java -version' works, or set JAVA_HOME to a Java 17+"
    elif [ "$ver" -lt 17 ]; then
        problem "$java is Java $ver; Spark needs 17 or newer: install openjdk-17-jre-headless and put it first (update-alternatives --config java) or set JAVA_HOME"
    fi
fi

# --- the local cluster's options (make run CLUSTER_ARGS=...) -----------------------------
opt() { # opt NAME DEFAULT: the value of --NAME in CLUSTER_ARGS
    local name=$1 value=$2 prev=""
    for a in ${CLUSTER_ARGS:-}; do
        case "$a" in --"$name"=*) value=${a#*=} ;; esac
        [ "$prev" = "--$name" ] && value=$a
        prev=$a
    done
    echo "$value"
}
to_mb() {
    case "$1" in
    *[gG]) echo $((${1%[gG]} * 1024)) ;;
    *[mM]) echo "${1%[mM]}" ;;
    *) echo "$1" ;;
    esac
}

# --- memory: the worker's executors, the master and worker daemons, drivers, the kernel -----
# make run: a 2 GiB worker (cluster.py's default) + ~1.5 GiB of daemons and one driver.
# make test: the same cluster size, two kernels' drivers at a time, and the ASan build.
worker_mb=$(to_mb "$(opt memory 2g)")
if [ "$profile" = run ]; then need=$((worker_mb + 1536)); else need=$((worker_mb + 4096)); fi
need=${SPARKERNEL_PREFLIGHT_MEM_MB:-$need}
avail=$(awk '/^MemAvailable:/ {print int($2 / 1024)}' /proc/meminfo 2>/dev/null || echo 0)
if [ "${avail:-0}" -lt "$need" ]; then
    problem "only ${avail} MiB of memory available; the local cluster's worker and drivers need about ${need} MiB: close other programs, or give the worker less (make run CLUSTER_ARGS='--memory 1g')"
fi

# --- ports (make run only; the tests pick free ports) ------------------------------------
if [ "$profile" = run ]; then
    # A cluster already running from out/cluster is reused by the main job: its ports are
    # expected to be taken.
    py=${PYTHON:-.venv/bin/python}
    if ! "$py" tests/support/cluster.py status --dir out/cluster >/dev/null 2>&1; then
        for spec in "master-port:7077:Spark master" "ui-port:8080:Spark master UI"; do
            IFS=: read -r name def what <<<"$spec"
            port=$(opt "$name" "$def")
            if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
                holder=$(ss -Hltnp "sport = :$port" 2>/dev/null | sed -n 's/.*users:(("\([^"]*\)".*/\1/p' | head -1)
                problem "port $port ($what) on 127.0.0.1 is taken${holder:+ by $holder}: stop it, or pick another: make run CLUSTER_ARGS='--$name <free port>'"
            fi
        done
    fi
fi

[ "$problems" = 0 ] || exit 1
exit 0
