"""A notebook alone on the cluster (issue 19's benchmark): sparkernel with its defaults (the
elastic share) against ipykernel + PySpark with Spark's defaults, side by side in one run on
the same LocalCluster (1 worker, 2 cores, 2g).

One notebook, the same cells for both kernels except the first (ipykernel builds its
session there, as its users do; sparkernel's cell uses the predefined `spark`):

  1. the session and one small job (not timed: both kernels have a session and a job
     behind them when the timed cells start);
  2. multi-job: 20 `count()` calls in one cell (what the progress machinery costs a cell
     that runs many short jobs, the reply held for the last progress poll included);
  3. CPU-bound: one aggregation over every core (`--rows` rows, about a minute on 2 cores
     by default; the issue's 2-minute cell is `--rows 4800000000`).

A third run, sparkernel with ipykernel's executors (`SPARKERNEL_EXECUTOR_CORES=2`,
`SPARKERNEL_MAX_EXECUTORS=1`: one executor with both cores), measures what issue 19's
item 3 asks: what the kernel adds to a multi-job cell with the same executors; the rows
with the defaults add the price of sparkernel's 1-core executors (README).

Each cell's time is the kernel's own: from its `execute_input` to its `execute_reply`, as
nbclient records them in the executed notebook (record_timing). Median of --reps runs per
kernel, kernels alternating which goes first; the cluster is free before every run.

    JUPYTER_PATH=$PWD/build/share/jupyter .venv/bin/python tests/bench/bench_elastic.py \\
        [--out tests/bench/results-elastic.md] [--reps 3] [--rows N]

Exit status: 0 when every run completed (targets met or not), 1 when one failed.
"""
from __future__ import annotations

import argparse
import datetime
import os
import pathlib
import random
import shutil
import statistics
import sys
import tempfile
import time

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT / "tests" / "support"))
sys.path.insert(0, str(ROOT / "tests" / "integration"))

import nbformat  # noqa: E402

import bench_kernel as bk  # noqa: E402

SAME = "sparkernel, same executors"
import bench_notebooks as bn  # noqa: E402
import bench_spark as bs  # noqa: E402
from bench_wild import run_one  # noqa: E402
from cluster import LocalCluster  # noqa: E402

LABELS = ["sparkernel", "ipykernel", SAME]
# cell -> target ratio (issue 19, item 4)
TARGETS = {"multi-job (20 count() calls)": 1.05, "CPU-bound aggregation": 1.02}
# The same executors as ipykernel's session: one executor with every core of the worker.
SAME_ENV = {"SPARKERNEL_EXECUTOR_CORES": "2", "SPARKERNEL_MAX_EXECUTORS": "1"}
# The cell times its own loop too: what the kernel adds around it (the reply held for the
# last progress poll included) is the cell's time minus that.
MULTI = ("import time as _time\n_t0 = _time.perf_counter()\nfor _ in range(20):\n"
         "    spark.range(1000).count()\nprint('inner %.6f' % (_time.perf_counter() - _t0))")
CPU = ("spark.range(0, {rows}, 1, 8).selectExpr('sum(sqrt(id) * sin(id) * cos(id))')"
       ".collect()[0][0]")
SESSION = ("from pyspark.sql import SparkSession\n"
           "spark = SparkSession.builder.master({url!r}).appName('bench-elastic')"
           ".config('spark.driver.host', '127.0.0.1').getOrCreate()\n")


def build(lb: str, url: str, rows: int) -> nbformat.NotebookNode:
    first = ("" if lb == "sparkernel" else SESSION.format(url=url)) + "spark.range(1000).count()"
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(c) for c in (first, MULTI, CPU.format(rows=rows))]
    return nb


def cell_seconds(cell: nbformat.NotebookNode) -> float:
    ex = cell.metadata.get("execution", {})

    def at(key: str) -> float:
        return datetime.datetime.fromisoformat(ex[key].replace("Z", "+00:00")).timestamp()

    return at("shell.execute_reply") - at("iopub.execute_input")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=str(HERE / "results-elastic.md"))
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--rows", type=int, default=2_400_000_000)
    args = ap.parse_args()
    started = time.monotonic()
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="bench-elastic-"))
    token = "%d-%d" % (os.getpid(), random.randrange(1 << 30))
    names = list(TARGETS)
    res = {name: {lb: [] for lb in LABELS} for name in names}
    around: dict[str, list[float]] = {lb: [] for lb in LABELS}
    problems: list[str] = []
    samples: list[str] = []
    info: list[str] = []
    cds_note = "not checked"
    cluster = LocalCluster(workers=1, cores=2, memory="2g")
    try:
        bk.log("starting the cluster (1 worker, 2 cores, 2g)")
        cluster.start()
        specs, jupyter_path, envs = bn.kernel_envs(cluster, tmp, token)
        specs[SAME], envs[SAME] = specs["sparkernel"], dict(envs["sparkernel"], **SAME_ENV)
        sources = {}
        for lb in LABELS:
            d = tmp / lb.replace(" ", "-").replace(",", "")
            d.mkdir(exist_ok=True)
            nb = build("ipykernel" if lb == "ipykernel" else "sparkernel", cluster.master_url,
                       args.rows)
            nb.metadata["kernelspec"] = {"name": specs[lb], "display_name": lb,
                                         "language": "python"}
            sources[lb] = d / "alone.ipynb"
            nbformat.write(nb, str(sources[lb]))
        info = bn.side_by_side_info({lb: specs[lb] for lb in LABELS[:2]}, jupyter_path)
        # The class-data archives a first session leaves (the driver's, the executors'),
        # made by an untimed run when missing, so the timed runs are a user's after their
        # first session (as the other benchmarks do); without the executors' archive every
        # executor of a timed run would dump one as it exits.
        untimed = tmp / "untimed"
        untimed.mkdir()
        nb = build("sparkernel", cluster.master_url, 10**6)
        nb.metadata["kernelspec"] = {"name": specs["sparkernel"], "display_name": "sparkernel",
                                     "language": "python"}
        nbformat.write(nb, str(untimed / "alone.ipynb"))

        def untimed_run() -> None:
            bs.wait_cluster_free(cluster, 120.0)
            run_one(untimed / "alone.ipynb", specs["sparkernel"], envs["sparkernel"], untimed,
                    "untimed")
            bk.kill_pids(bn.wait_unmarked(token, bn.GONE_TIMEOUT))
            bn.wait_unmarked(token, bn.TRAINER_TIMEOUT, trainers=True)

        cds_note = bn.ensure_cds_archive(envs["sparkernel"], untimed_run)
        bk.log("class-data archives: %s" % cds_note)
        for rep in range(args.reps):
            for lb in bk.order(LABELS[:2], rep) + [SAME]:
                what = "%s (rep %d)" % (lb, rep + 1)
                bs.wait_cluster_free(cluster, 120.0)
                run_one(sources[lb], specs[lb], envs[lb], sources[lb].parent, what)
                left = bn.wait_unmarked(token, bn.GONE_TIMEOUT)
                if left:
                    problems.append("%s: processes left after nbconvert: %s; killed"
                                    % (what, left))
                    bk.kill_pids(left)
                done = nbformat.read(sources[lb].parent / "alone.executed.ipynb", as_version=4)
                for name, cell in zip(names, done.cells[1:]):
                    secs = cell_seconds(cell)
                    res[name][lb].append(secs)
                    samples.append("%s %s %.3f" % (lb, name, secs))
                    bk.log("%s, %s: %.3f s" % (what, name, secs))
                inner = [float(line.split()[1]) for o in done.cells[1].outputs
                         if o.get("name") == "stdout" for line in o["text"].splitlines()
                         if line.startswith("inner ")]
                if inner:
                    around[lb].append(cell_seconds(done.cells[1]) - inner[0])
    except bk.BenchError as exc:
        problems.append(str(exc))
        bk.log("FAILED: %s" % exc)
    finally:
        left = bn.marked(token)
        if left:
            bk.kill_pids(left)
        cluster.stop()
        shutil.rmtree(tmp, ignore_errors=True)

    lines = ["# A notebook alone on the cluster: sparkernel vs ipykernel + PySpark "
             "(tests/bench/bench_elastic.py)", "",
             "One worker of 2 cores. Cell time from `execute_input` to `execute_reply` "
             "(nbclient's record), median of %d per kernel; ratio = sparkernel / ipykernel. "
             "ipykernel's session: a builder with Spark's defaults (one executor with both "
             "cores); sparkernel's: its defaults (elastic share, 1-core executors added by "
             "dynamic allocation), then with the same executors as ipykernel's (%s)."
             % (args.reps, ", ".join("%s=%s" % kv for kv in SAME_ENV.items())), "",
             "| cell | sparkernel | sparkernel median (s) | ipykernel median (s) | ratio "
             "| target | met |",
             "|---|---|---:|---:|---:|---|---|"]
    for name, target in TARGETS.items():
        b = statistics.median(res[name]["ipykernel"]) if res[name]["ipykernel"] else None
        for lb, how in (("sparkernel", "defaults"), (SAME, "same executors")):
            a = statistics.median(res[name][lb]) if res[name][lb] else None
            ratio = a / b if a is not None and b else None
            lines.append("| %s | %s | %s | %s | %s | ratio ≤ %s | %s |" % (
                name, how, bk.fmt(a, 3), bk.fmt(b, 3), bk.fmt(ratio, 3), target,
                "" if ratio is None else ("yes" if ratio <= target else "no")))
    lines += ["", "Around the multi-job cell's own loop (the cell's time minus the time the loop "
              "measured itself; the reply held for the last progress poll is in it), median: "
              + ", ".join("%s %s ms" % (lb, bk.fmt(statistics.median(v) * 1000, 1)
                                       if v else "-") for lb, v in around.items()) + "."]
    lines += ["", "CPU-bound cell: `%s`." % CPU.format(rows=args.rows)]
    lines += ["", "## Samples (s, in run order)", "", "- " + "; ".join(samples)]
    lines += ["", "## Machine", ""] + info + ["", "Class-data-sharing archives: %s." % cds_note]
    if problems:
        lines += ["", "## Problems found", ""] + ["- " + p for p in problems]
    lines += ["", "Wall time of this run: %.1f s; load average at the end: %s." % (
        time.monotonic() - started, ", ".join("%.2f" % x for x in os.getloadavg())), ""]
    text = "\n".join(lines)
    print(text)
    pathlib.Path(args.out).write_text(text)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
