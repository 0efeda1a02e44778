"""sparkernel against ipykernel + PySpark, side by side on the same LocalCluster (1 worker,
2 cores) in one run, through the same jupyter_client code (tests/bench/bench_kernel.py's
Kernel class):

  (a) start_kernel() -> the result of `spark.range(10**6).count()`, sent as the first cell
      right after kernel_info_reply;
  (b) the same cell sent 10 s after start_kernel(): send -> result;
  (c) `spark.range(100).count()` repeated 50 times in one warm kernel, per-cell median
      (send -> execute_reply and idle).

For ipykernel the cell builds the session itself (SparkSession.builder.master(URL)
.config('spark.driver.host', '127.0.0.1').getOrCreate()); sparkernel gets SPARK_MASTER_URL,
SPARKERNEL_MASTER_UI_URL and SPARKERNEL_WARM=true. Both kernels get the cluster's driver
environment (same SPARK_CONF_DIR, quiet log4j, loopback). Kernels alternate per repetition
and every measurement starts with the cluster free (no application, no core in use).

    JUPYTER_PATH=$PWD/build/share/jupyter .venv/bin/python tests/bench/bench_spark.py \
        [--out tests/bench/results-spark.md] [--budget 240] [--min-reps 3] [--jobs 50]

Exit status: 0 when every measurement ran (targets met or not), 1 when a kernel
misbehaved or something was left running, 2 on bad arguments.
"""
from __future__ import annotations

import argparse
import datetime
import os
import pathlib
import shutil
import statistics
import sys
import tempfile
import time

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT / "tests" / "support"))

import zmq  # noqa: E402

import bench_kernel as bk  # noqa: E402
from cluster import LocalCluster  # noqa: E402

BIG = "spark.range(10**6).count()"
SMALL = "spark.range(100).count()"
DELAY_B = 10.0
CELL_TIMEOUT = 180.0
TARGETS = {"a": 0.8, "b": 0.2, "c": 1.05}


# (c) measures what the kernel adds to Spark work, so both sessions get the same executors:
# sparkernel's defaults (1-core executors, dynamic allocation, one executor from the start,
# at most half of the cluster's 2 cores: the cap the kernel derives from the master).
MATCHED = ("".join(".config(%r, %r)" % kv for kv in (
    ("spark.executor.cores", "1"), ("spark.dynamicAllocation.enabled", "true"),
    ("spark.dynamicAllocation.shuffleTracking.enabled", "true"),
    ("spark.dynamicAllocation.initialExecutors", "1"),
    ("spark.dynamicAllocation.maxExecutors", "1"))))


def session_prefix(url: str, matched: bool = False) -> str:
    return ("from pyspark.sql import SparkSession; spark = SparkSession.builder.master(%r)"
            ".config('spark.driver.host','127.0.0.1')%s.getOrCreate()\n"
            % (url, MATCHED if matched else ""))


def ensure_cds_archive(k: bk.Kernel) -> str:
    """sparkernel's driver JVM maps a class-data-sharing archive that a background trainer
    makes once per machine (driver/python/sparkernel_executor/cds.py): one untimed session
    first, then wait for the archive, so every timed start runs as a user's would after
    their first."""
    sys.path.insert(0, str(ROOT / "driver" / "python"))
    from sparkernel_executor import cds
    cds.use_cache_dir(os.environ.get("SPARKERNEL_CACHE_DIR"))  # as the kernel would send it
    possible, conf_dir, _ = cds.conf_dir_plan()
    archive = cds.archive_path(conf_dir) if possible else None
    if archive is None:
        return "not possible here (no Java, or site files in SPARK_CONF_DIR)"
    executors = cds.executor_archive_path(cds.cache_dir(), cds.spark_home())
    if not archive.exists() or not cds.executor_ready(executors):
        try:
            k.start()
            k.kernel_info(bk.START_TIMEOUT)
            run_cell(k, BIG, "1000000", time.perf_counter())
        finally:
            k.stop()
        deadline = time.monotonic() + 300
        while not (archive.exists() and cds.executor_ready(executors)) \
                and time.monotonic() < deadline:
            time.sleep(1)
    if not archive.exists():
        return "not made within 300 s"
    return "driver %s (%.0f MB); executors %s" % (
        archive, archive.stat().st_size / 2**20,
        executors if cds.executor_ready(executors) else "none made within 300 s")


def wait_cluster_free(c: LocalCluster, timeout: float = 60.0) -> None:
    """Until the previous kernel's application has left and its cores are free."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            m = c.json(timeout=2)
            if not m.get("activeapps") and not m.get("coresused"):
                return
        except (OSError, ValueError):
            pass
        if time.monotonic() > deadline:
            raise bk.BenchError("the cluster still has applications or used cores %.0f s after "
                                "the previous kernel stopped" % timeout)
        time.sleep(0.2)


def run_cell(k: bk.Kernel, code: str, expect: str, t_start: float) -> float:
    """Sends code now; returns perf_counter() when its result (text/plain == expect) is
    in, after its execute_reply. t_start bounds the wait (CELL_TIMEOUT from it)."""
    msg_id = k.kc.execute(code)
    seen: dict = {}

    def done(ch: str, msg: dict) -> bool:
        if msg["parent_header"].get("msg_id") != msg_id:
            return False
        if ch == "iopub" and msg["msg_type"] == "execute_result":
            seen["result"] = msg["content"]["data"].get("text/plain")
            seen["t_result"] = time.perf_counter()
        elif ch == "iopub" and msg["msg_type"] == "error":
            raise k.fail("%r raised %s: %s" % (code[-40:], msg["content"]["ename"],
                                               msg["content"]["evalue"][:300]))
        elif ch == "shell":
            seen["reply"] = msg["content"]["status"]
        elif ch == "iopub" and msg["msg_type"] == "status" and \
                msg["content"]["execution_state"] == "idle":
            seen["idle"] = True
        return "reply" in seen and "idle" in seen

    t_done = k.run_until(t_start + CELL_TIMEOUT, done, "the result of %r" % code[-40:])
    if seen.get("reply") != "ok":
        raise k.fail("%r answered %s" % (code[-40:], seen.get("reply")))
    if seen.get("result") != expect:
        raise k.fail("%r gave %r, not %r" % (code[-40:], seen.get("result"), expect))
    return seen.get("t_result", t_done)


def measure_a(k: bk.Kernel, prefix: str) -> float:
    try:
        t0 = k.start()
        k.kernel_info(bk.START_TIMEOUT)
        t1 = run_cell(k, prefix + BIG, "1000000", t0)
    finally:
        k.stop()
    return t1 - t0


def measure_b(k: bk.Kernel, prefix: str) -> float:
    try:
        t0 = k.start()
        k.kernel_info(bk.START_TIMEOUT)
        time.sleep(max(0.0, t0 + DELAY_B - time.perf_counter()))
        t_send = time.perf_counter()
        t1 = run_cell(k, prefix + BIG, "1000000", t_send)
    finally:
        k.stop()
    return t1 - t_send


def measure_c(k: bk.Kernel, prefix: str, n: int) -> list[float]:
    try:
        t0 = k.start()
        k.kernel_info(bk.START_TIMEOUT)
        run_cell(k, prefix + BIG, "1000000", t0)
        for _ in range(5):  # warm-up: executors up, code paths hot
            run_cell(k, SMALL, "100", time.perf_counter())
        out = []
        for _ in range(n):
            msg_t0, t1, _ = k.execute(SMALL, CELL_TIMEOUT)
            out.append(t1 - msg_t0)
    finally:
        k.stop()
    return out


def fmt_s(x: float | None, unit: str = "s") -> str:
    if x is None:
        return "-"
    return "%.3f s" % x if unit == "s" else "%.1f ms" % (x * 1000)


def render(rows: list[tuple], info: list[str], notes: list[str]) -> str:
    lines = ["# sparkernel vs ipykernel + PySpark (tests/bench/bench_spark.py)", ""]
    lines += info + [""]
    lines.append("| metric | sparkernel | ipykernel | ratio | target | met |")
    lines.append("| --- | ---: | ---: | ---: | --- | --- |")
    for metric, a, b, unit, target in rows:
        ratio = a / b if a is not None and b else None
        met = "" if target is None or ratio is None else ("yes" if ratio <= target else "no")
        lines.append("| %s | %s | %s | %s | %s | %s |" % (
            metric, fmt_s(a, unit), fmt_s(b, unit), "-" if ratio is None else "%.3f" % ratio,
            "" if target is None else "≤ %s" % target, met))
    lines += [""] + notes
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=str(HERE / "results-spark.md"))
    ap.add_argument("--budget", type=float, default=240.0,
                    help="seconds for the whole run; repetitions of (a)/(b) fill it")
    ap.add_argument("--min-reps", type=int, default=3)
    ap.add_argument("--max-reps", type=int, default=10)
    ap.add_argument("--jobs", type=int, default=50, help="cells for (c)")
    args = ap.parse_args()
    if args.min_reps < 1 or args.jobs < 1:
        ap.error("--min-reps and --jobs must be at least 1")

    started = time.monotonic()
    tmp = tempfile.mkdtemp(prefix="bench-spark-")
    problems: list[str] = []
    seen_pids: dict[int, str] = {}
    res: dict[str, dict[str, list[float]]] = {
        lb: {"a": [], "b": [], "c": []} for lb in ("sparkernel", "ipykernel")}
    failed: BaseException | None = None
    cds_note = "not checked"
    ctx = zmq.Context()
    cluster = LocalCluster(workers=1, cores=2, memory="2g")
    live: list[bk.Kernel] = []
    try:
        bk.log("starting the cluster (1 worker, 2 cores, 2g)")
        cluster.start()
        env = cluster.driver_env()
        env.update({"SPARK_MASTER_URL": cluster.master_url,
                    "SPARKERNEL_MASTER_UI_URL": cluster.ui_url, "SPARKERNEL_WARM": "true",
                    "SPARKERNEL_BIND_ADDRESS": "127.0.0.1"})
        os.environ.clear()
        os.environ.update(env)
        jp = os.path.join(tmp, "jupyter")
        ipk = bk.write_ipykernel_spec(jp)
        os.environ["JUPYTER_PATH"] = os.pathsep.join(
            [jp] + [p for p in env.get("JUPYTER_PATH", "").split(os.pathsep) if p]
            + [str(ROOT / "build" / "share" / "jupyter")])
        specs = {"sparkernel": "sparkernel", "ipykernel": ipk}
        prefixes = {"sparkernel": "", "ipykernel": session_prefix(cluster.master_url)}
        labels = ["sparkernel", "ipykernel"]

        def new(lb: str) -> bk.Kernel:
            k = bk.Kernel(lb, specs[lb], ctx, tmp, problems, seen_pids)
            live.append(k)
            return k

        cds_note = ensure_cds_archive(new("sparkernel"))
        bk.log("class-data-sharing archive: %s" % cds_note)
        rep = 0
        rep_cost = 0.0
        c_cost_guess = 60.0
        while rep < args.max_reps:
            elapsed = time.monotonic() - started
            if rep >= args.min_reps and elapsed + rep_cost + c_cost_guess > args.budget:
                break
            t_rep = time.monotonic()
            for lb in bk.order(labels, rep):
                wait_cluster_free(cluster)
                res[lb]["a"].append(measure_a(new(lb), prefixes[lb]))
            for lb in bk.order(labels, rep):
                wait_cluster_free(cluster)
                res[lb]["b"].append(measure_b(new(lb), prefixes[lb]))
            rep += 1
            rep_cost = time.monotonic() - t_rep
            bk.log("rep %d (%.0f s): %s" % (rep, rep_cost, "; ".join(
                "%s a %.2f s b %.2f s" % (lb, res[lb]["a"][-1], res[lb]["b"][-1])
                for lb in labels)))
        for lb in labels:
            wait_cluster_free(cluster)
            t = time.monotonic()
            res[lb]["c"] = measure_c(new(lb), session_prefix(cluster.master_url, True)
                                     if lb == "ipykernel" else "", args.jobs)
            bk.log("%s (c): median %.1f ms over %d cells (%.0f s)" % (
                lb, statistics.median(res[lb]["c"]) * 1000, args.jobs, time.monotonic() - t))
    except bk.BenchError as exc:
        failed = exc
        problems.append(str(exc).split("\n")[0])
        bk.log("FAILED: %s" % exc)
    except BaseException as exc:
        failed = exc
        bk.log("aborted: %r" % exc)
    finally:
        for k in live:
            k.stop()
        ctx.destroy(linger=0)
        try:
            cluster.stop()
        except Exception as exc:
            problems.append("cluster stop: %r" % exc)
        left = [p for p in seen_pids if bk.alive(p)]
        if left:
            problems.append("left running after the run: %s; killed" % left)
            bk.kill_pids(left)
        mine = [p for p in bk.descendants(os.getpid()) if bk.alive(p)]
        if mine:
            problems.append("child processes of the benchmark left: %s; killed" % mine)
            bk.kill_pids(mine)
        shutil.rmtree(tmp, ignore_errors=True)
    if failed is not None and not isinstance(failed, bk.BenchError):
        if isinstance(failed, KeyboardInterrupt):
            return 130
        raise failed

    def med(lb: str, key: str) -> float | None:
        xs = res[lb][key]
        return statistics.median(xs) if xs else None

    n_a = len(res["sparkernel"]["a"])
    rows = [
        ("(a) start → result of `%s` as first cell, median of %d" % (BIG, n_a),
         med("sparkernel", "a"), med("ipykernel", "a"), "s", TARGETS["a"]),
        ("(b) same cell sent %.0f s after start, send → result, median of %d"
         % (DELAY_B, len(res["sparkernel"]["b"])),
         med("sparkernel", "b"), med("ipykernel", "b"), "s", TARGETS["b"]),
        ("(c) `%s` per cell, median of %d" % (SMALL, len(res["sparkernel"]["c"])),
         med("sparkernel", "c"), med("ipykernel", "c"), "ms", TARGETS["c"]),
    ]
    if res["sparkernel"]["c"] and res["ipykernel"]["c"]:
        p90 = {lb: sorted(res[lb]["c"])[int(0.9 * (len(res[lb]["c"]) - 1))] for lb in labels}
        rows.append(("(c) same, p90", p90["sparkernel"], p90["ipykernel"], "ms", None))
    import pyspark
    info = ["Run %s, %d CPUs, Python %s, PySpark %s, %.0f s in all. Cluster: LocalCluster, 1 "
            "worker, 2 cores, 2g; one kernel at a time, alternating, each measurement starting "
            "with the cluster free." % (datetime.datetime.now().strftime("%Y-%m-%d %H:%M"),
                                        os.cpu_count() or 0, sys.version.split()[0],
                                        pyspark.__version__, time.monotonic() - started)]
    notes = ["(a) and (b): ipykernel's cell builds its session with Spark's defaults, as users "
             "do; sparkernel uses its own (warm session, class-data-sharing archive: %s). (c): "
             "both sessions get the same executors (%s), so the ratio is what the kernel "
             "adds." % (cds_note, MATCHED.replace(".config", " ")), "",
             "Samples (s): " + "; ".join(
        "%s %s: %s" % (lb, key, ", ".join("%.2f" % x for x in res[lb][key]))
        for lb in labels for key in ("a", "b"))]
    if problems:
        notes += ["", "Problems:"] + ["- " + p for p in problems]
    text = render(rows, info, notes)
    print(text)
    pathlib.Path(args.out).write_text(text)
    return 1 if problems or failed is not None else 0


if __name__ == "__main__":
    sys.exit(main())
