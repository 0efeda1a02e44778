"""Notebooks as PySpark users write them, end to end (issue 15's benchmark): sparkernel
against ipykernel + PySpark, side by side in one run on the same LocalCluster (1 worker,
2 cores, 2g).

The notebooks are the wild corpus of tests/integration/test_wild_notebooks.py, the same
source for both kernels (no cell is rewritten): `four_cells` (four sessions built by the
notebook, three of them stopped, one local) and `findspark_ml_papermill` run with its
default parameters (findspark, one builder never stopped, an ML fit). Each runs through
`jupyter nbconvert --to notebook --execute` in a subprocess; the wall time is taken around
it (kernel start, every cell, kernel shutdown). Per repetition the kernels alternate
which goes first; every run starts with the cluster free and no process of the previous
run left; an error output or a process left behind fails the run.

    JUPYTER_PATH=$PWD/build/share/jupyter .venv/bin/python tests/bench/bench_wild.py \\
        [--out tests/bench/results-wild.md] [--reps 3]

Exit status: 0 when every run completed (targets met or not), 1 when one failed.
"""
from __future__ import annotations

import argparse
import os
import pathlib
import random
import shutil
import statistics
import subprocess
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
import bench_notebooks as bn  # noqa: E402
import bench_spark as bs  # noqa: E402
from cluster import LocalCluster  # noqa: E402
from test_wild_notebooks import CORPUS, notebook  # noqa: E402

# notebook -> target ratio (issue 15, item 6)
TARGETS = {"four_cells": 0.6, "findspark_ml_papermill": 0.7}
LABELS = ["sparkernel", "ipykernel"]
MARKER = bn.MARKER


def run_one(src: pathlib.Path, spec: str, env: dict, workdir: pathlib.Path,
            what: str) -> float:
    out = workdir / (src.stem + ".executed.ipynb")
    cmd = [sys.executable, "-m", "jupyter", "nbconvert", "--to", "notebook", "--execute",
           "--ExecutePreprocessor.kernel_name=" + spec,
           "--ExecutePreprocessor.timeout=%d" % bn.CELL_TIMEOUT,
           "--output-dir", str(workdir), "--output", out.stem, str(src)]
    log_path = workdir / (src.stem + ".log")
    with open(log_path, "w") as log:
        t0 = time.perf_counter()
        rc = subprocess.call(cmd, cwd=str(workdir), env=env, stdin=subprocess.DEVNULL,
                             stdout=log, stderr=subprocess.STDOUT, timeout=bn.RUN_TIMEOUT)
        wall = time.perf_counter() - t0
    if rc != 0:
        tail = "".join(log_path.read_text(errors="replace").splitlines(True)[-25:])
        raise bk.BenchError("%s: nbconvert exited %d; the end of its log:\n%s" % (what, rc, tail))
    nb = nbformat.read(out, as_version=4)
    errors = [bn.output_text(o)[:300] for c in nb.cells if c.cell_type == "code"
              for o in c.get("outputs", []) if o["output_type"] == "error"]
    if errors:
        raise bk.BenchError("%s: error output: %s" % (what, "; ".join(errors)))
    return wall


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=str(HERE / "results-wild.md"))
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()
    started = time.monotonic()
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="bench-wild-"))
    token = "%d-%d" % (os.getpid(), random.randrange(1 << 30))
    res = {name: {lb: [] for lb in LABELS} for name in TARGETS}
    problems: list[str] = []
    order_log: list[str] = []
    info: list[str] = []
    cds_note = "not checked"
    cluster = LocalCluster(workers=1, cores=2, memory="2g")
    try:
        bk.log("starting the cluster (1 worker, 2 cores, 2g)")
        cluster.start()
        specs, jupyter_path, envs = bn.kernel_envs(cluster, tmp, token)
        ipk = specs["ipykernel"]
        csv = tmp / "people.csv"
        csv.write_text("name,age\nAda,36\nGrace,45\nLinus,28\n")
        values = {"master": cluster.master_url, "csv": str(csv), "driver_port": 0}
        sources = {}
        for name in TARGETS:
            for lb in LABELS:
                d = tmp / lb
                d.mkdir(exist_ok=True)
                nb, _ = notebook(CORPUS[name], lb, values)
                if lb == "ipykernel":
                    nb.metadata["kernelspec"]["name"] = ipk
                sources[(name, lb)] = d / (name + ".ipynb")
                nbformat.write(nb, str(sources[(name, lb)]))
        info = bn.side_by_side_info({lb: specs[lb] for lb in LABELS}, jupyter_path)

        def run(name: str, lb: str, what: str) -> float:
            bs.wait_cluster_free(cluster, 120.0)
            wall = run_one(sources[(name, lb)], specs[lb], envs[lb], tmp / lb, what)
            left = bn.wait_unmarked(token, bn.GONE_TIMEOUT)
            if left:
                problems.append("%s: processes left %.0f s after nbconvert: %s; killed"
                                % (what, bn.GONE_TIMEOUT, left))
                bk.kill_pids(left)
            if bn.wait_unmarked(token, bn.TRAINER_TIMEOUT, trainers=True):
                problems.append("%s: the CDS trainer still running" % what)
            return wall

        cds_note = bn.ensure_cds_archive(
            envs["sparkernel"], lambda: run("findspark_ml_papermill", "sparkernel", "untimed"))
        for rep in range(args.reps):
            for name in TARGETS:
                for lb in bk.order(LABELS, rep):
                    what = "%s on %s (rep %d)" % (name, lb, rep + 1)
                    wall = run(name, lb, what)
                    res[name][lb].append(wall)
                    order_log.append("%s %s %.2f" % (name, lb, wall))
                    bk.log("%s: %.2f s" % (what, wall))
    except bk.BenchError as exc:
        problems.append(str(exc))
        bk.log("FAILED: %s" % exc)
    finally:
        left = bn.marked(token)
        if left:
            bk.kill_pids(left)
        cluster.stop()
        shutil.rmtree(tmp, ignore_errors=True)

    lines = ["# Notebooks as users write them: sparkernel vs ipykernel + PySpark "
             "(tests/bench/bench_wild.py)", "",
             "The wild corpus' notebooks (tests/integration/test_wild_notebooks.py), the same "
             "source for both kernels, `jupyter nbconvert --execute`, wall time of the "
             "subprocess, median of %d per kernel; ratio = sparkernel / ipykernel." % args.reps,
             "", "| notebook | sparkernel median (s) | ipykernel median (s) | ratio | target "
             "| met |", "|---|---:|---:|---:|---|---|"]
    for name, target in TARGETS.items():
        a = statistics.median(res[name]["sparkernel"]) if res[name]["sparkernel"] else None
        b = statistics.median(res[name]["ipykernel"]) if res[name]["ipykernel"] else None
        ratio = a / b if a is not None and b else None
        lines.append("| %s | %s | %s | %s | ratio ≤ %s | %s |" % (
            name, bk.fmt(a, 2), bk.fmt(b, 2), bk.fmt(ratio, 3), target,
            "" if ratio is None else ("yes" if ratio <= target else "no")))
    lines += ["", "## Samples (s, in run order)", "", "- " + "; ".join(order_log)]
    lines += ["", "## Machine", ""] + info
    lines += ["", "## Notes", "", "- sparkernel with its defaults (warm session, dynamic "
              "allocation, 1-core executors); class-data-sharing archive: %s." % cds_note]
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
