"""The example notebooks end to end (issue 5's benchmark): sparkernel against ipykernel +
PySpark, side by side in one run on the same LocalCluster (1 worker, 2 cores, 2g).

Each notebook (notebooks/spark-example.ipynb, notebooks/linearRegressionBostonHousing.ipynb)
runs through `jupyter nbconvert --to notebook --execute` in a subprocess; the wall time is
taken around that subprocess (kernel start, every cell, kernel shutdown). Per repetition,
the kernels alternate which goes first; every run starts with the cluster free (no
application, no core in use) and with no process of the previous run left.

sparkernel runs the notebook as it is in the repository. ipykernel runs a copy transformed
the way an ipykernel user would write it: a first code cell builds the session
(SparkSession.builder.master(URL).config('spark.driver.host', '127.0.0.1').getOrCreate(),
sc = spark.sparkContext), each `%%sql [-n N]` cell becomes
`spark.sql(r\"\"\"<query>\"\"\").show(N, truncate=False)` (N = 50 by default, the rows
%%sql shows; .show() fetches N + 1 rows, as %%sql does); every other cell is unchanged
(the papermill parameters cell included).

Both kernels get the cluster's driver environment (same SPARK_CONF_DIR, quiet log4j,
loopback) and SPARKERNEL_DATA_DIR, a temporary copy of notebooks/data (the Parquet output
lands there, never in the repository); sparkernel also gets SPARK_MASTER_URL,
SPARKERNEL_MASTER_UI_URL, SPARKERNEL_WARM=true and SPARKERNEL_BIND_ADDRESS=127.0.0.1.

    JUPYTER_PATH=$PWD/build/share/jupyter .venv/bin/python tests/bench/bench_notebooks.py \
        [--out tests/bench/results-notebooks.md] [--reps 3]

Exit status: 0 when every run completed (targets met or not), 1 when a notebook failed (a
non-zero nbconvert exit, an error output, no SUMMARY line), the two kernels computed
different figures, or a process was left behind; 2 on bad arguments.
"""
from __future__ import annotations

import argparse
import copy
import datetime
import json
import os
import pathlib
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT / "tests" / "support"))

import nbformat  # noqa: E402

import bench_kernel as bk  # noqa: E402
import bench_spark as bs  # noqa: E402
from cluster import LocalCluster  # noqa: E402

NOTEBOOKS = [ROOT / "notebooks" / "spark-example.ipynb",
             ROOT / "notebooks" / "linearRegressionBostonHousing.ipynb"]
DATA_FILES = ("information.csv", "departments.csv", "boston_housing.csv")
LABELS = ["sparkernel", "ipykernel"]
TARGET = 0.9
SQL_ROWS = 50            # what %%sql shows without -n (driver/python/.../sql.py SQL_ROWS)
CELL_TIMEOUT = 600       # --ExecutePreprocessor.timeout, as `make run`
RUN_TIMEOUT = 1200.0     # one nbconvert subprocess in all
GONE_TIMEOUT = 30.0      # for the processes of a run to exit after nbconvert did
TRAINER_TIMEOUT = 300.0  # for sparkernel's class-data-sharing trainer to finish
MARKER = "SPARKERNEL_BENCH_NOTEBOOKS"

SETUP = ("from pyspark.sql import SparkSession\n"
         "spark = SparkSession.builder.master(%r).config('spark.driver.host', '127.0.0.1')"
         ".getOrCreate()\n"
         "sc = spark.sparkContext")


# ---- the ipykernel copy ---------------------------------------------------------------

def sql_call(query: str, rows: int) -> str:
    query = query.strip("\n")
    if '"""' not in query and not query.endswith("\\"):
        literal = 'r"""%s"""' % query
    else:
        literal = repr(query)
    return "spark.sql(%s).show(%d, truncate=False)" % (literal, rows)


def to_ipykernel(nb: nbformat.NotebookNode, master_url: str, spec: str) -> tuple[
        nbformat.NotebookNode, list[str]]:
    """The notebook as an ipykernel + PySpark user writes it, and what was changed."""
    nb = copy.deepcopy(nb)
    changes: list[str] = []
    code = [i for i, c in enumerate(nb.cells) if c.cell_type == "code"]
    if not code:
        raise bk.BenchError("no code cell")
    for i in code:
        cell = nb.cells[i]
        src = cell.source
        head, _, body = src.lstrip().partition("\n")
        m = re.fullmatch(r"%%sql(?:\s+-n\s+(\d+))?\s*", head)
        if m:
            rows = int(m.group(1)) if m.group(1) else SQL_ROWS
            cell.source = sql_call(body, rows)
            changes.append("cell %d: `%s` → `spark.sql(...).show(%d, truncate=False)`"
                           % (i, head.strip(), rows))
            continue
        if head.startswith("%%"):
            if not head.startswith(("%%time", "%%capture", "%%html", "%%bash", "%%writefile")):
                raise bk.BenchError("cell %d: unknown cell magic %r" % (i, head))
            continue
        lines = src.split("\n")
        for j, line in enumerate(lines):
            m = re.fullmatch(r"(\s*)%sql(?:\s+-n\s+(\d+))?\s+(.*)", line)
            if m:
                rows = int(m.group(2)) if m.group(2) else SQL_ROWS
                lines[j] = m.group(1) + sql_call(m.group(3), rows)
                changes.append("cell %d: `%%sql` line → `spark.sql(...).show(%d, "
                               "truncate=False)`" % (i, rows))
            elif re.match(r"\s*%spark\b", line):
                raise bk.BenchError("cell %d: sparkernel-only magic %r" % (i, line.strip()))
        cell.source = "\n".join(lines)
    nb.cells.insert(code[0], nbformat.v4.new_code_cell(SETUP % master_url))
    changes.insert(0, "a first code cell builds the session: `%s`"
                   % SETUP.replace("\n", "; ") % "<master URL>")
    nb.metadata["kernelspec"] = {"name": spec, "display_name": "ipykernel + PySpark",
                                 "language": "python"}
    return nb, changes


# ---- processes ------------------------------------------------------------------------

def marked(token: str) -> list[int]:
    """Our processes whose environment holds MARKER=token: nbconvert, the kernel, its
    Python executor, the driver JVM, any helper they started."""
    needle = ("%s=%s" % (MARKER, token)).encode()
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit() or int(d) == os.getpid():
            continue
        try:
            with open("/proc/%s/environ" % d, "rb") as f:
                if needle in f.read().split(b"\0"):
                    out.append(int(d))
        except OSError:
            pass
    return [p for p in out if bk.alive(p)]


def is_trainer(pid: int) -> bool:
    """sparkernel's class-data-sharing trainer (cds.py), which may outlive its kernel on
    purpose: its Python process or its JVM."""
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            cmd = f.read()
    except OSError:
        return False
    # A JVM's own option, not a session's --conf spark.executor.extraJavaOptions=...
    return b"sparkernel-cds-trainer" in cmd or b"\0-XX:ArchiveClassesAtExit" in cmd


def wait_unmarked(token: str, timeout: float, trainers: bool = False) -> list[int]:
    """Waits for our marked processes (only the CDS trainer's when trainers, else all
    others) to exit; returns those left after timeout."""
    def left() -> list[int]:
        return [p for p in marked(token) if is_trainer(p) == trainers]
    deadline = time.monotonic() + timeout
    pids = left()
    while pids and time.monotonic() < deadline:
        time.sleep(0.2)
        pids = left()
    return pids


# ---- one run --------------------------------------------------------------------------

def output_text(o: dict) -> str:
    if o["output_type"] == "stream":
        return o["text"]
    if o["output_type"] == "error":
        return "%s: %s" % (o["ename"], o["evalue"])
    return ""


def epoch(stamp: str | None) -> float | None:
    try:
        return datetime.datetime.fromisoformat(stamp).timestamp() if stamp else None
    except (TypeError, ValueError):
        return None


def breakdown(nb: nbformat.NotebookNode, t0: float, t1: float) -> dict:
    """From nbclient's per-cell timing (the kernel's message dates): seconds from the
    subprocess start to the first cell's busy, in the cells (busy → execute_reply), from
    the last reply to the subprocess exit, and the slowest cells as (index, seconds)."""
    spans = []
    for i, c in enumerate(nb.cells):
        ex = c.get("metadata", {}).get("execution", {}) if c.cell_type == "code" else {}
        a = epoch(ex.get("iopub.status.busy") or ex.get("iopub.execute_input"))
        b = epoch(ex.get("shell.execute_reply"))
        if a is not None and b is not None:
            spans.append((i, a, b))
    if not spans:
        return {}
    return {"start": spans[0][1] - t0, "cells": sum(b - a for _, a, b in spans),
            "end": t1 - spans[-1][2],
            "slowest": sorted(((i, b - a) for i, a, b in spans), key=lambda x: -x[1])[:3]}


def check_executed(path: pathlib.Path, what: str) -> dict:
    """Fails on any error output or a missing SUMMARY line; returns the SUMMARY figures,
    the stderr stream outputs, the code cell count and the notebook."""
    nb = nbformat.read(path, as_version=4)
    outs = [(i, o) for i, c in enumerate(nb.cells) if c.cell_type == "code"
            for o in c.get("outputs", [])]
    errors = ["cell %d: %s" % (i, output_text(o)[:300]) for i, o in outs
              if o["output_type"] == "error"]
    if errors:
        raise bk.BenchError("%s: error output: %s" % (what, "; ".join(errors)))
    summaries = [line[len("SUMMARY "):] for _, o in outs if o["output_type"] == "stream"
                 for line in o["text"].splitlines() if line.startswith("SUMMARY ")]
    if len(summaries) != 1:
        raise bk.BenchError("%s: %d SUMMARY lines, not 1" % (what, len(summaries)))
    stderr = [output_text(o) for _, o in outs
              if o["output_type"] == "stream" and o["name"] == "stderr"]
    pngs = sum(1 for _, o in outs if "image/png" in o.get("data", {}))
    if not pngs:
        raise bk.BenchError("%s: no PNG" % what)
    return {"summary": json.loads(summaries[0]), "stderr": stderr, "nb": nb,
            "cells": sum(1 for c in nb.cells if c.cell_type == "code")}


def run_notebook(src: pathlib.Path, spec: str, env: dict, workdir: pathlib.Path,
                 data_dir: pathlib.Path, what: str) -> tuple[float, dict]:
    """nbconvert --execute on src in workdir; returns (wall seconds, check_executed())."""
    shutil.rmtree(data_dir / "output", ignore_errors=True)  # every run writes from scratch
    stem = src.stem
    log_path = workdir / (stem + ".log")
    cmd = [sys.executable, "-m", "jupyter", "nbconvert", "--to", "notebook", "--execute",
           "--ExecutePreprocessor.kernel_name=" + spec,
           "--ExecutePreprocessor.timeout=%d" % CELL_TIMEOUT,
           "--output-dir", str(workdir), "--output", stem + ".executed", str(src)]
    with open(log_path, "w") as log:
        e0 = time.time()
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=str(workdir), env=env, stdin=subprocess.DEVNULL,
                                stdout=log, stderr=subprocess.STDOUT)
        try:
            rc = proc.wait(timeout=RUN_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            rc = None
        wall = time.perf_counter() - t0
        e1 = e0 + wall
    if rc != 0:
        tail = "".join(log_path.read_text(errors="replace").splitlines(True)[-25:])
        raise bk.BenchError("%s: nbconvert %s after %.1f s; the end of its log:\n%s" % (
            what, "timed out" if rc is None else "exited %d" % rc, wall, tail))
    got = check_executed(workdir / (stem + ".executed.ipynb"), what)
    got["split"] = breakdown(got.pop("nb"), e0, e1)
    return wall, got


def cds_archive(env: dict) -> pathlib.Path | None:
    """The archive sparkernel's executor looks for under env (cds.py: conf_dir_plan()
    then archive_path()), None when it would use none."""
    sys.path.insert(0, str(ROOT / "driver" / "python"))
    from sparkernel_executor import cds
    saved = dict(os.environ)
    os.environ.update({k: v for k, v in env.items() if k != MARKER})
    try:
        if hasattr(cds, "conf_dir_plan"):
            ok, conf_dir, _ = cds.conf_dir_plan()
            return cds.archive_path(conf_dir) if ok else None
        return cds.archive_path()
    finally:
        os.environ.clear()
        os.environ.update(saved)


def ensure_cds_archive(env: dict, run) -> str:
    """sparkernel's driver JVM maps a class-data-sharing archive that a background trainer
    makes once per JDK, Spark and conf dir (driver/python/sparkernel_executor/cds.py): if
    there is none yet, one untimed sparkernel run first, then wait for the archive, so that
    every timed run is a user's after their first (as tests/bench/bench_spark.py does)."""
    archive = cds_archive(env)
    if archive is None:
        return "none (no Java, or the conf dir rules it out)"
    made = ""
    if not archive.exists():
        run()  # waits for the trainer it started
        made = ", made by the untimed run" if archive.exists() else ""
    note = ("`%s` (%.0f MB%s)" % (archive, archive.stat().st_size / 2**20, made)
            if archive.exists() else "`%s` not made (see %s)" % (
                archive, archive.parent / "trainer.log"))
    # The executors' archive (cds.executor_plan): dumped by the executors of a session
    # that finds none, when they exit; the next session start moves it into place.
    executors = executor_cds_archive(env)
    if executors is not None:
        from sparkernel_executor import cds
        made = ""
        if not cds.executor_ready(executors):
            run()
            made = ", dumped by an untimed run" if cds.executor_ready(executors) else ""
        note += "; the executors': " + (
            "`%s`%s" % (executors, made) if cds.executor_ready(executors)
            else "`%s` not made" % executors)
    return note


def executor_cds_archive(env: dict) -> pathlib.Path | None:
    """The executors' archive a sparkernel session under env maps or dumps (None: off)."""
    if env.get("SPARKERNEL_EXECUTOR_CDS", "true").lower() in ("false", "0", "no", "off"):
        return None
    sys.path.insert(0, str(ROOT / "driver" / "python"))
    from sparkernel_executor import cds
    saved = dict(os.environ)
    os.environ.update({k: v for k, v in env.items() if k != MARKER})
    try:
        cds.use_cache_dir(env.get("SPARKERNEL_CACHE_DIR"))
        return cds.executor_archive_path(
            env.get("SPARKERNEL_EXECUTOR_CDS_DIR") or cds.cache_dir(),
            env.get("SPARKERNEL_WORKER_SPARK_HOME") or cds.spark_home())
    finally:
        os.environ.clear()
        os.environ.update(saved)


def kernel_envs(cluster: LocalCluster, tmp: pathlib.Path, token: str,
                **extra: str) -> tuple[dict, str, dict]:
    """The two kernels' specs (ipykernel's written under tmp), the JUPYTER_PATH that finds
    both, and their environments: the cluster's driver environment plus extra for both;
    for sparkernel the master, the warm session, loopback and driver ports of its own (so
    that other kernels on this machine do not push this one to another slot)."""
    jp = tmp / "jupyter"
    specs = {"sparkernel": "sparkernel", "ipykernel": bk.write_ipykernel_spec(str(jp))}
    jupyter_path = os.pathsep.join(
        [str(jp)] + [p for p in os.environ.get("JUPYTER_PATH", "").split(os.pathsep) if p]
        + [str(ROOT / "build" / "share" / "jupyter")])
    common = cluster.driver_env()
    common.update({"JUPYTER_PATH": jupyter_path, MARKER: token, **extra})
    envs = {"ipykernel": dict(common), "sparkernel": dict(common, **cluster.sparkernel_env())}
    return specs, jupyter_path, envs


def side_by_side_info(specs: dict[str, str], jupyter_path: str) -> list[str]:
    """The machine and both kernels' versions and argv, with JUPYTER_PATH set to find both
    specs (kept set: the runs after it need it too)."""
    os.environ["JUPYTER_PATH"] = jupyter_path
    import ipykernel
    import pyspark
    from jupyter_client.kernelspec import KernelSpecManager

    ksm = KernelSpecManager()
    return bk.machine_info({"sparkernel": "this build",
                            "ipykernel": "ipykernel %s + PySpark %s"
                            % (ipykernel.__version__, pyspark.__version__)},
                           {lb: " ".join(ksm.get_kernel_spec(spec).argv)
                            for lb, spec in specs.items()})


# ---- the report -----------------------------------------------------------------------

def render(rows: list[tuple], info: list[str], samples: list[str], notes: list[str],
           problems: list[str], wall: float, reps: int) -> str:
    out = ["# Example notebooks end to end: sparkernel vs ipykernel + PySpark "
           "(tests/bench/bench_notebooks.py)", "",
           "`jupyter nbconvert --to notebook --execute`, wall time of the subprocess, median "
           "of %d per kernel; ratio = sparkernel / ipykernel." % reps, "",
           "| notebook | sparkernel median (s) | ipykernel median (s) | ratio | target | met |",
           "|---|---:|---:|---:|---|---|"]
    for name, a, b, target in rows:
        ratio = a / b if a is not None and b else None
        met = "" if target is None or ratio is None else ("yes" if ratio <= target else "no")
        out.append("| %s | %s | %s | %s | %s | %s |" % (
            name, bk.fmt(a, 2), bk.fmt(b, 2), bk.fmt(ratio, 3),
            "(info)" if target is None else "ratio ≤ %s" % target, met))
    out += ["", "## Samples (s, in run order)", ""] + samples
    out += ["", "## Machine", ""] + info
    out += ["", "## Notes", ""] + ["- " + n for n in notes]
    if problems:
        out += ["", "## Problems found", ""] + ["- " + p for p in problems]
    load = ", ".join("%.2f" % x for x in os.getloadavg())
    out += ["", "Wall time of this run: %.1f s; load average at the end: %s." % (wall, load), ""]
    return "\n".join(out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=str(HERE / "results-notebooks.md"))
    ap.add_argument("--reps", type=int, default=3, help="runs per notebook and kernel")
    ap.add_argument("--keep", action="store_true",
                    help="keep the temporary directory (executed notebooks, logs)")
    args = ap.parse_args()
    if args.reps < 1:
        ap.error("--reps must be at least 1")

    started = time.monotonic()
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda s, f: sys.exit(128 + s))
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="bench-notebooks-"))
    token = "%d-%d" % (os.getpid(), random.randrange(1 << 30))
    problems: list[str] = []
    failed: BaseException | None = None
    res: dict[str, dict[str, list[float]]] = {nb.stem: {lb: [] for lb in LABELS}
                                              for nb in NOTEBOOKS}
    order_log: list[str] = []
    figures: dict[tuple[str, str], dict] = {}
    stderr_seen: dict[tuple[str, str], int] = {}
    stderr_sample: dict[tuple[str, str], str] = {}
    splits: list[str] = []
    trainer_waits: list[str] = []
    changes: dict[str, list[str]] = {}
    cds_note = "not checked"
    info: list[str] = []
    cluster = LocalCluster(workers=1, cores=2, memory="2g")
    try:
        bk.log("starting the cluster (1 worker, 2 cores, 2g)")
        cluster.start()
        data_dir = tmp / "data"
        data_dir.mkdir()
        for name in DATA_FILES:
            shutil.copy(ROOT / "notebooks" / "data" / name, data_dir / name)
        specs, jupyter_path, envs = kernel_envs(cluster, tmp, token,
                                                SPARKERNEL_DATA_DIR=str(data_dir))
        ipk = specs["ipykernel"]
        info = side_by_side_info({lb: specs[lb] for lb in LABELS}, jupyter_path)
        import nbconvert
        info.append("- nbconvert %s; cluster: LocalCluster, 1 worker, 2 cores, 2g, on "
                    "loopback; one notebook at a time, kernels alternating per repetition, "
                    "each run starting with the cluster free and no process of the previous "
                    "run left" % nbconvert.__version__)

        # The notebooks, each in a directory of its own per kernel (the kernel's cwd).
        sources: dict[tuple[str, str], pathlib.Path] = {}
        for nb_path in NOTEBOOKS:
            nb = nbformat.read(nb_path, as_version=4)
            for lb in LABELS:
                d = tmp / lb
                d.mkdir(exist_ok=True)
                if lb == "ipykernel":
                    nb_i, changes[nb_path.stem] = to_ipykernel(nb, cluster.master_url, ipk)
                    nbformat.write(nb_i, d / nb_path.name)
                else:
                    shutil.copy(nb_path, d / nb_path.name)
                sources[(nb_path.stem, lb)] = d / nb_path.name

        def run(stem: str, lb: str, what: str) -> tuple[float, dict]:
            bs.wait_cluster_free(cluster, 120.0)  # the previous run's app gone, cores free
            wall, got = run_notebook(sources[(stem, lb)], specs[lb], envs[lb], tmp / lb,
                                     data_dir, what)
            left = wait_unmarked(token, GONE_TIMEOUT)
            if left:
                problems.append("%s: processes still running %.0f s after nbconvert exited: "
                                "%s; killed" % (what, GONE_TIMEOUT, left))
                bk.kill_pids(left)
            # sparkernel's CDS trainer outlives the kernel on purpose: let it finish
            # (killing it would leave its lock behind) before the next run.
            trainers = marked(token)
            if trainers:
                t = time.monotonic()
                left = wait_unmarked(token, TRAINER_TIMEOUT, trainers=True)
                trainer_waits.append("%s: %.0f s" % (what, time.monotonic() - t))
                if left:
                    problems.append("%s: the CDS trainer still running %.0f s after the run: "
                                    "%s; killed" % (what, TRAINER_TIMEOUT, left))
                    bk.kill_pids(left)
            return wall, got

        def warm_up() -> None:
            bk.log("no class-data-sharing archive yet: one untimed sparkernel run")
            run(NOTEBOOKS[-1].stem, "sparkernel", "untimed sparkernel run")

        cds_note = ensure_cds_archive(envs["sparkernel"], warm_up)
        bk.log("class-data-sharing archive: %s" % cds_note)

        for rep in range(args.reps):
            for nb_path in NOTEBOOKS:
                stem = nb_path.stem
                for lb in bk.order(LABELS, rep):
                    what = "%s on %s (rep %d)" % (stem, lb, rep + 1)
                    wall, got = run(stem, lb, what)
                    res[stem][lb].append(wall)
                    order_log.append("%s %s %.2f" % (stem, lb, wall))
                    stderr_seen[(stem, lb)] = stderr_seen.get((stem, lb), 0) + len(got["stderr"])
                    if got["stderr"]:
                        stderr_sample.setdefault((stem, lb), got["stderr"][0])
                    sp = got["split"]
                    if sp:
                        splits.append(
                            "%s, %s, rep %d: %.2f s = start → first cell %.2f + cells %.2f + "
                            "between cells %.2f + last reply → exit (shutdown) %.2f; slowest "
                            "cells: %s" % (stem, lb, rep + 1, wall, sp["start"], sp["cells"],
                                           wall - sp["start"] - sp["cells"] - sp["end"],
                                           sp["end"], ", ".join("#%d %.2f s" % x
                                                                for x in sp["slowest"])))
                    prev = figures.setdefault((stem, lb), got["summary"])
                    if prev != got["summary"]:
                        problems.append("%s: figures differ from the first run of %s" % (what, lb))
                    bk.log("%s: %.2f s (%d cells)" % (what, wall, got["cells"]))
        for nb_path in NOTEBOOKS:
            a = figures.get((nb_path.stem, "sparkernel"))
            b = figures.get((nb_path.stem, "ipykernel"))
            if a is not None and b is not None and a != b:
                diff = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
                problems.append("%s: the two kernels computed different figures: %s"
                                % (nb_path.stem, ", ".join(diff)))
    except bk.BenchError as exc:
        failed = exc
        problems.append(str(exc))
        bk.log("FAILED: %s" % exc)
    except BaseException as exc:
        failed = exc
        bk.log("aborted: %r" % exc)
    finally:
        left = marked(token)
        if left:
            problems.append("left running at the end: %s; killed" % left)
            bk.kill_pids(left)
        try:
            cluster.stop()
        except Exception as exc:
            problems.append("cluster stop: %r" % exc)
        mine = [p for p in bk.descendants(os.getpid()) if bk.alive(p)]
        if mine:
            problems.append("child processes of the benchmark left: %s; killed" % mine)
            bk.kill_pids(mine)
        if args.keep or failed is not None:
            bk.log("kept %s" % tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    if failed is not None and not isinstance(failed, bk.BenchError):
        if isinstance(failed, KeyboardInterrupt):
            return 130
        raise failed

    def med(stem: str, lb: str) -> float | None:
        xs = res[stem][lb]
        return statistics.median(xs) if xs else None

    rows = [(stem, med(stem, "sparkernel"), med(stem, "ipykernel"), TARGET) for stem in res]
    if all(r[1] is not None and r[2] is not None for r in rows):
        rows.append(("both notebooks (sum of the medians)", sum(r[1] for r in rows),
                     sum(r[2] for r in rows), None))
    samples = ["- %s, %s: %s" % (stem, lb, ", ".join("%.2f" % x for x in res[stem][lb]) or "—")
               for stem in res for lb in LABELS]
    samples += ["- run order: " + "; ".join(order_log)]
    samples += ["", "Where the time went (nbclient's per-cell timing; cell numbers of the "
                "notebook each kernel ran, the ipykernel copy has one more cell first):", ""]
    samples += ["- " + x for x in splits]

    notes = [
        "sparkernel runs the repository's notebook unchanged with its defaults (warm session, "
        "dynamic allocation, 1-core executors); class-data-sharing archive: %s%s." % (
            cds_note, "; waited (untimed) for the CDS trainer after: " + ", ".join(
                trainer_waits) if trainer_waits else ""),
        "ipykernel runs a transformed copy, the way an ipykernel user writes the notebook; "
        "every other cell, the papermill `parameters` cell included, is unchanged. Its "
        "session has Spark's defaults (one executor that takes both cores).",
    ]
    for stem, ch in changes.items():
        notes.append("%s, ipykernel copy: %s." % (stem, "; ".join(ch)))
    notes += [
        "`%%sql` renders an HTML table of at most 50 rows (`take(51)`); its nearest plain "
        "PySpark equivalent without pandas (not in the venv, so no `toPandas()`) is "
        "`spark.sql(...).show(50, truncate=False)`, which also fetches 51 rows and prints "
        "them as a text table. The notebooks use no other sparkernel-only magic (`%spark`: "
        "none); `%matplotlib inline` is IPython's own and stays.",
        "Each executed notebook is checked: no error output, one SUMMARY line, a PNG; the "
        "SUMMARY figures are the same for both kernels and across repetitions. stderr "
        "stream outputs seen: %s." % ", ".join(
            "%s/%s %d" % (stem, lb, n) for (stem, lb), n in sorted(stderr_seen.items())),
    ]
    notes += ["First stderr output of %s on %s: `%s`" % (
        stem, lb, " ".join(text.split())[:160].replace("`", "'"))
        for (stem, lb), text in sorted(stderr_sample.items())]
    notes += [
        "Both kernels get the cluster's driver environment (SPARK_CONF_DIR with quiet log4j, "
        "the venv's Python for the Python workers, loopback) and SPARKERNEL_DATA_DIR, a "
        "temporary copy of notebooks/data; sparkernel also SPARK_MASTER_URL, "
        "SPARKERNEL_MASTER_UI_URL, SPARKERNEL_WARM=true, SPARKERNEL_BIND_ADDRESS=127.0.0.1 "
        "and driver ports of its own.",
    ]
    text = render(rows, info, samples, notes, problems, time.monotonic() - started, args.reps)
    print(text)
    pathlib.Path(args.out).write_text(text)
    return 1 if problems or failed is not None else 0


if __name__ == "__main__":
    sys.exit(main())
