"""sparkernel against ipykernel, side by side in one run, through the same jupyter_client
code: start to kernel_info_reply, start to the result of `1+1`, the round trip of a trivial
execute_request, 100k printed lines (checked line by line on the client) and the resident
memory of the kernel process. Kernels alternate per repetition so both share the
machine's noise; results are ratios against the peer in this run, never absolute claims.

    JUPYTER_PATH=$PWD/build/share/jupyter .venv/bin/python tests/bench/bench_kernel.py \
        --out tests/bench/results.md [--quick] [--kernels sparkernel,ipykernel]

`ipykernel` names a kernelspec written here into a temporary JUPYTER_PATH entry whose argv
runs ipykernel_launcher on this very interpreter (the project venv), so both kernels run
the same Python. Any other name is looked up as an installed kernelspec. The first kernel
is the subject, the second the peer: ratio = first / second.

Exit status: 0 when every measurement ran (met targets or not: timings are reported, not
asserted), 1 when a kernel misbehaved (lost or reordered output, no reply, a process left
behind), 2 on bad arguments.
"""
from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import shutil
import signal
import statistics
import sys
import tempfile
import time
from queue import Empty
from typing import Any, Callable

import zmq
from jupyter_client import KernelManager
from jupyter_client import __version__ as JUPYTER_CLIENT_VERSION

try:
    import psutil
except ImportError:  # /proc is read instead
    psutil = None

IPYKERNEL = "ipykernel"
LINES = 100_000
LINES_CODE = f"for i in range({LINES}): print(i)"
TRIVIAL_CODE = "pass"
# jupyter_client's sockets retry a refused connect every 100 ms by default. A kernel that
# binds after the client connects (ipykernel: ~0.5 s in) would be measured in 100 ms
# steps; 5 ms makes the client's retry negligible for both kernels.
RECONNECT_IVL_MS = 5
START_TIMEOUT = 60.0
FIRST_RESULT_TIMEOUT = 120.0
ROUND_TRIP_TIMEOUT = 30.0
LINES_TIMEOUT = 120.0
SHUTDOWN_WAIT = 5.0


class BenchError(RuntimeError):
    """A kernel misbehaved: no reply in time, wrong output, a process left behind."""


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------
# processes


def rss_bytes(pid: int) -> int | None:
    if psutil is not None:
        try:
            return psutil.Process(pid).memory_info().rss
        except psutil.Error:
            return None
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def memory_split(pid: int) -> dict[str, int]:
    """Anonymous and file-backed (shared libraries) resident bytes, and USS/PSS (the pages
    only this process has / its proportional share) when psutil can read smaps."""
    out: dict[str, int] = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                key = line.split(":", 1)[0]
                if key in ("RssAnon", "RssFile", "RssShmem"):
                    out[key] = int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    if psutil is not None:
        try:
            full = psutil.Process(pid).memory_full_info()
            out["uss"], out["pss"] = full.uss, getattr(full, "pss", 0)
        except (psutil.Error, AttributeError):
            pass
    return out


def descendants(pid: int) -> list[int]:
    if psutil is not None:
        try:
            return [c.pid for c in psutil.Process(pid).children(recursive=True)]
        except psutil.Error:
            return []
    # /proc fallback: walk the ppid links.
    parent_of: dict[int, int] = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    stat = f.read()
                parent_of[int(d)] = int(stat[stat.rindex(")") + 2:].split()[1])
            except (OSError, ValueError, IndexError):
                pass
    out, frontier = [], [pid]
    while frontier:
        p = frontier.pop()
        kids = [c for c, pp in parent_of.items() if pp == p]
        out += kids
        frontier += kids
    return out


def alive(pid: int) -> bool:
    """True for a running process; a zombie counts as dead here (see zombie())."""
    if psutil is not None:
        try:
            return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
        except psutil.Error:
            return False
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
        return stat[stat.rindex(")") + 2] != "Z"
    except (OSError, ValueError, IndexError):
        return False


def zombie(pid: int) -> bool:
    if psutil is not None:
        try:
            return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
        except psutil.Error:
            return False
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
        return stat[stat.rindex(")") + 2] == "Z"
    except (OSError, ValueError, IndexError):
        return False


def wait_gone(pids: list[int], timeout: float) -> list[int]:
    deadline = time.monotonic() + timeout
    left = [p for p in pids if alive(p)]
    while left and time.monotonic() < deadline:
        time.sleep(0.02)
        left = [p for p in left if alive(p)]
    return left


def kill_pids(pids: list[int]) -> None:
    for p in pids:
        try:
            os.kill(p, signal.SIGKILL)
        except OSError:
            pass


# ---------------------------------------------------------------------------------------
# one kernel under test


class Kernel:
    """One started kernel with a blocking client. Records every pid it ever saw so the
    run can prove nothing was left behind."""

    def __init__(self, label: str, spec: str, ctx: zmq.Context, logdir: str,
                 problems: list[str], seen_pids: dict[int, str]) -> None:
        self.label = label
        self.spec = spec
        self.ctx = ctx
        self.logdir = logdir
        self.problems = problems
        self.seen_pids = seen_pids
        self.km: KernelManager | None = None
        self.kc: Any = None
        self.pid: int | None = None
        self.t_launched = 0.0
        self.log_path = ""
        self._log: Any = None
        self._poller: zmq.Poller | None = None

    # -- life cycle -------------------------------------------------------------------

    def start(self) -> float:
        """Starts the kernel and connects a client. Returns the perf_counter() taken just
        before KernelManager.start_kernel()."""
        fd, self.log_path = tempfile.mkstemp(prefix=f"{self.label}-", suffix=".log",
                                             dir=self.logdir)
        self._log = os.fdopen(fd, "w")
        self.km = KernelManager(kernel_name=self.spec, context=self.ctx)
        self.km.shutdown_wait_time = SHUTDOWN_WAIT
        t0 = time.perf_counter()
        self.km.start_kernel(stdout=self._log, stderr=self._log)
        self.t_launched = time.perf_counter()
        self.kc = self.km.client(context=self.ctx)
        self.kc.start_channels(hb=False)
        self.pid = self.km.provisioner.pid if self.km.provisioner is not None else None
        if self.pid is not None:
            self.seen_pids[self.pid] = f"{self.label} kernel"
        self._poller = zmq.Poller()
        self._poller.register(self.kc.shell_channel.socket, zmq.POLLIN)
        self._poller.register(self.kc.iopub_channel.socket, zmq.POLLIN)
        return t0

    def children(self) -> list[int]:
        kids = descendants(self.pid) if self.pid else []
        for k in kids:
            self.seen_pids.setdefault(k, f"{self.label} child")
        return kids

    def stop(self) -> float | None:
        """Shuts the kernel down (a shutdown_request, then signals after SHUTDOWN_WAIT)
        and checks its process and all its children are gone. Returns the seconds
        shutdown_kernel() took, None if nothing was running. Never raises."""
        if self.km is None:
            return None
        # A SIGTERM/SIGINT arriving mid-shutdown would leave the kernel half shut down:
        # hold them until this kernel is gone, then let them unwind the run.
        held = {signal.SIGTERM, signal.SIGHUP, signal.SIGINT}
        old = signal.pthread_sigmask(signal.SIG_BLOCK, held)
        try:
            return self._stop()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, old)

    def _stop(self) -> float | None:
        kids = self.children()
        took = None
        try:
            if self.kc is not None:
                self.kc.stop_channels()
        except Exception as exc:
            log(f"{self.label}: stop_channels: {exc!r}")
        try:
            t = time.perf_counter()
            self.km.shutdown_kernel(now=False)
            took = time.perf_counter() - t
        except Exception as exc:
            log(f"{self.label}: shutdown_kernel failed ({exc!r}); killing it")
            try:
                self.km.shutdown_kernel(now=True)
            except Exception as exc2:
                log(f"{self.label}: shutdown_kernel(now=True) failed too: {exc2!r}")
        pids = ([self.pid] if self.pid else []) + kids
        left = wait_gone(pids, 3.0)
        if left:
            what = ", ".join(f"{p} ({self.seen_pids.get(p, '?')})" for p in left)
            self.problems.append(f"{self.label}: still running 3 s after shutdown_kernel() "
                                 f"returned: {what}; killed")
            kill_pids(left)
            wait_gone(left, 2.0)
        try:
            if self._log is not None:
                self._log.close()
        except OSError:
            pass
        self.km = self.kc = self._log = self._poller = None
        return took

    def log_tail(self, n: int = 15) -> str:
        try:
            with open(self.log_path, errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""

    def fail(self, what: str) -> BenchError:
        tail = self.log_tail()
        return BenchError(f"{self.label}: {what}" + (f"\n  kernel log ({self.log_path}), "
                                                     f"last lines:\n{tail}" if tail else ""))

    # -- messages ---------------------------------------------------------------------

    def poll(self, timeout: float) -> list[tuple[str, dict]]:
        """Messages ready within timeout seconds, iopub first, as (channel, msg)."""
        assert self._poller is not None
        ready = dict(self._poller.poll(max(0, int(timeout * 1000))))
        out: list[tuple[str, dict]] = []
        for name, ch in (("iopub", self.kc.iopub_channel), ("shell", self.kc.shell_channel)):
            if ch.socket in ready:
                while True:
                    try:
                        out.append((name, ch.get_msg(timeout=0)))
                    except Empty:
                        break
        return out

    def run_until(self, deadline: float, done: Callable[[str, dict], bool], what: str) -> float:
        """Reads messages until done(channel, msg) is true; returns its perf_counter()."""
        while True:
            left = deadline - time.perf_counter()
            if left <= 0:
                raise self.fail(f"timed out waiting for {what}")
            msgs = self.poll(min(left, 0.5))
            for ch, msg in msgs:
                if done(ch, msg):
                    return time.perf_counter()
            if not msgs and self.km is not None and not self.km.is_alive():
                raise self.fail(f"the kernel process died while waiting for {what}")

    def kernel_info(self, timeout: float = START_TIMEOUT) -> dict:
        msg_id = self.kc.kernel_info()
        reply: dict = {}

        def done(ch: str, msg: dict) -> bool:
            if ch == "shell" and msg["parent_header"].get("msg_id") == msg_id:
                reply.update(msg)
                return True
            return False

        self.run_until(time.perf_counter() + timeout, done, "kernel_info_reply")
        return reply["content"]

    def wait_iopub(self, timeout: float) -> None:
        """Returns once iopub is known to be subscribed: any message on it (the
        iopub_welcome of protocol 5.5, or the status of a kernel_info_request). Like
        jupyter_client's wait_for_ready, kernel_info is resent while only shell answers,
        but after 0.1 s instead of 0.2-1 s."""
        deadline = time.perf_counter() + timeout
        pending = self.kc.kernel_info()
        replied_at = None
        while True:
            now = time.perf_counter()
            if now > deadline:
                raise self.fail("timed out waiting for iopub to connect")
            for ch, msg in self.poll(min(deadline - now, 0.02)):
                if ch == "iopub":
                    return
                if msg["parent_header"].get("msg_id") == pending:
                    replied_at = time.perf_counter()
            if replied_at is not None and time.perf_counter() - replied_at > 0.1:
                pending, replied_at = self.kc.kernel_info(), None
            if self.km is not None and not self.km.is_alive():
                raise self.fail("the kernel process died while starting")

    def execute(self, code: str, timeout: float,
                on_iopub: Callable[[dict], None] | None = None) -> tuple[float, float, dict]:
        """Sends an execute_request; waits for its execute_reply and its idle status.
        Returns (perf_counter at send, perf_counter when both were in, reply content)."""
        t0 = time.perf_counter()
        msg_id = self.kc.execute(code)
        reply: dict = {}
        idle = [False]

        def done(ch: str, msg: dict) -> bool:
            if msg["parent_header"].get("msg_id") != msg_id:
                return False
            if ch == "shell":
                reply.update(msg["content"])
            else:
                if on_iopub is not None:
                    on_iopub(msg)
                if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                    idle[0] = True
            return bool(reply) and idle[0]

        t1 = self.run_until(t0 + timeout, done, f"execute_reply and idle of {code[:40]!r}")
        if reply.get("status") != "ok":
            raise self.fail(f"{code[:40]!r} answered {reply.get('status')}: "
                            f"{reply.get('ename')}: {reply.get('evalue')}")
        return t0, t1, reply


# ---------------------------------------------------------------------------------------
# the measurements


def order(kernels: list[Any], rep: int) -> list[Any]:
    """Alternates which kernel goes first, so neither always follows the other."""
    return kernels if rep % 2 == 0 else kernels[::-1]


def measure_start_to_info(k: Kernel) -> tuple[float, float, float | None]:
    """Seconds from start_kernel() to the first kernel_info_reply, seconds the
    start_kernel() call itself took, and the shutdown time."""
    try:
        t0 = k.start()
        msg_id = k.kc.kernel_info()  # queued by zmq until the kernel's socket is up
        t1 = k.run_until(t0 + START_TIMEOUT,
                         lambda ch, m: ch == "shell" and m["msg_type"] == "kernel_info_reply"
                         and m["parent_header"].get("msg_id") == msg_id, "kernel_info_reply")
    finally:
        took = k.stop()
    return t1 - t0, k.t_launched - t0, took


def measure_start_to_result(k: Kernel) -> tuple[float, float | None]:
    """Seconds from start_kernel() to the execute_result of 1+1 (sent once iopub is
    connected, as a frontend does), and the shutdown time."""
    try:
        t0 = k.start()
        k.wait_iopub(START_TIMEOUT)
        msg_id = k.kc.execute("1+1")
        result: dict = {}

        def done(ch: str, msg: dict) -> bool:
            if msg["parent_header"].get("msg_id") != msg_id:
                return False
            if ch == "iopub" and msg["msg_type"] == "execute_result":
                result.update(msg["content"])
                return True
            if ch == "iopub" and msg["msg_type"] == "status" and \
                    msg["content"]["execution_state"] == "idle":
                raise k.fail("went idle after 1+1 without an execute_result")
            return False

        t1 = k.run_until(t0 + FIRST_RESULT_TIMEOUT, done, "the execute_result of 1+1")
        text = result.get("data", {}).get("text/plain")
        if text != "2":
            raise k.fail(f"1+1 gave {text!r}, not '2'")
    finally:
        took = k.stop()
    return t1 - t0, took


def check_lines(text: str) -> dict:
    """Compares the concatenated stdout with 0..LINES-1, one per line, in order."""
    expected = "".join(f"{i}\n" for i in range(LINES))
    if text == expected:
        return {"ok": True, "lost": 0, "duplicated": 0, "reordered": 0, "foreign": 0}
    seen: dict[int, int] = {}
    reordered, foreign, prev = 0, 0, -1
    for line in text.split("\n")[:-1] if text.endswith("\n") else text.split("\n"):
        if not line.isdigit() or int(line) >= LINES:
            foreign += 1
            continue
        v = int(line)
        seen[v] = seen.get(v, 0) + 1
        if v < prev:
            reordered += 1
        prev = max(prev, v)
    return {"ok": False, "lost": LINES - len(seen),
            "duplicated": sum(c - 1 for c in seen.values()), "reordered": reordered,
            "foreign": foreign + (0 if text.endswith("\n") else 1)}


def measure_lines(k: Kernel) -> dict:
    parts: list[str] = []
    other: list[str] = []
    counts = {"stream": 0}

    def on_iopub(msg: dict) -> None:
        if msg["msg_type"] == "stream":
            counts["stream"] += 1
            (parts if msg["content"]["name"] == "stdout" else other).append(
                msg["content"]["text"])
        elif msg["msg_type"] in ("error", "execute_result", "display_data"):
            other.append(f"<{msg['msg_type']}>")

    t0, t1, _ = k.execute(LINES_CODE, LINES_TIMEOUT, on_iopub)
    # Anything of this request after idle is a protocol bug: look for 0.3 s.
    late = 0
    end = time.perf_counter() + 0.3
    while time.perf_counter() < end:
        for ch, msg in k.poll(0.05):
            if ch == "iopub" and msg["msg_type"] == "stream":
                late += 1
                parts.append(msg["content"]["text"])
    res = check_lines("".join(parts))
    res.update(seconds=t1 - t0, messages=counts["stream"], late=late, other=len(other))
    return res


def percentile(xs: list[float], p: float) -> float:
    s = sorted(xs)
    return s[max(0, math.ceil(p / 100 * len(s)) - 1)]


# ---------------------------------------------------------------------------------------
# report


def fmt(x: float | None, digits: int = 1) -> str:
    return "—" if x is None else f"{x:.{digits}f}"


def machine_info(versions: dict[str, str], specs: dict[str, str]) -> list[str]:
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count() or 0
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    lines = [
        f"- date: {datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds')}",
        f"- machine: nproc {usable} (of {os.cpu_count()}), CPU {cpu}, "
        f"{platform.system()} {platform.release()} {platform.machine()}, "
        f"load average at start {load}",
        f"- Python {platform.python_version()} ({sys.executable}), jupyter_client "
        f"{JUPYTER_CLIENT_VERSION}, pyzmq {zmq.__version__}, libzmq {zmq.zmq_version()}",
    ]
    for label, v in versions.items():
        lines.append(f"- {label}: {v}; kernelspec argv: `{specs.get(label, '?')}`")
    return lines


def render(labels: list[str], rows: list[dict], info: list[str], notes: list[str],
           problems: list[str], wall: float, mode: str) -> str:
    a = labels[0]
    b = labels[1] if len(labels) > 1 else None
    head = f"| metric | {a} |" + (f" {b} | ratio ({a}/{b}) |" if b else "") + " target | met |"
    sep = "|---|---:|" + ("---:|---:|" if b else "") + "---|---|"
    out = [f"# sparkernel benchmark ({mode})", "", head, sep]
    for r in rows:
        cells = [r["metric"], r["a"]] + ([r["b"], r["ratio"]] if b else []) + \
            [r["target"], r["met"]]
        out.append("| " + " | ".join(cells) + " |")
    out += ["", "## Machine", ""] + info
    out += ["", "## Notes", ""] + [f"- {n}" for n in notes]
    if problems:
        out += ["", "## Problems found", ""] + [f"- {p}" for p in problems]
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    out += ["", f"Wall time of this run: {wall:.1f} s; load average at the end: {load}.", ""]
    return "\n".join(out)


# ---------------------------------------------------------------------------------------
# main


def code_stamp(argv: list[str]) -> tuple[str, tuple] | None:
    """What a kernel runs: its executable and the .py files under any directory its argv
    names (sparkernel's --pythonpath), as (path, mtime, size), to notice an edit or a
    rebuild in the middle of a run."""
    path = shutil.which(argv[0]) or argv[0]
    files = [path]
    for arg in argv[1:]:
        if os.path.isdir(arg):
            for root, _, names in os.walk(arg):
                files += [os.path.join(root, n) for n in names if n.endswith(".py")]
    stamp = []
    for f in sorted(files):
        try:
            st = os.stat(f)
            stamp.append((f, st.st_mtime, st.st_size))
        except OSError:
            stamp.append((f, 0.0, -1))
    return os.path.realpath(path), tuple(stamp)


def write_ipykernel_spec(root: str) -> str:
    d = os.path.join(root, "kernels", "bench-ipykernel")
    os.makedirs(d)
    spec = {"argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": "ipykernel (benchmark peer)", "language": "python",
            "interrupt_mode": "signal", "env": {}, "metadata": {"debugger": False}}
    with open(os.path.join(d, "kernel.json"), "w") as f:
        json.dump(spec, f)
    return "bench-ipykernel"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", help="write the markdown report here (it is always printed)")
    ap.add_argument("--quick", action="store_true",
                    help="3 starts, 200 round trips, one 100k-line cell per kernel")
    ap.add_argument("--kernels", default=f"sparkernel,{IPYKERNEL}",
                    help="comma-separated kernelspec names, subject first, peer second "
                         f"('{IPYKERNEL}' = ipykernel of this Python); default %(default)s")
    ap.add_argument("--starts", type=int, help="starts per kernel for the start metrics")
    ap.add_argument("--round-trips", type=int, help="measured trivial executes per kernel")
    ap.add_argument("--line-reps", type=int, help="100k-line cells per kernel")
    args = ap.parse_args()
    labels = [s.strip() for s in args.kernels.split(",") if s.strip()]
    if not 1 <= len(labels) <= 2 or len(set(labels)) != len(labels):
        ap.error("--kernels takes one or two distinct kernelspec names")
    n_starts = args.starts or (3 if args.quick else 10)
    n_rt = args.round_trips or (200 if args.quick else 1000)
    n_lines = args.line_reps or (1 if args.quick else 5)
    warmup_rt = 20

    wall0 = time.perf_counter()
    # SIGTERM/SIGHUP unwind through the finally blocks so kernels are shut down.
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda s, f: sys.exit(128 + s))

    tmp = tempfile.mkdtemp(prefix="sparkernel-bench-")
    logdir = os.path.join(tmp, "logs")
    os.makedirs(logdir)
    specs = {}
    for label in labels:
        specs[label] = write_ipykernel_spec(tmp) if label == IPYKERNEL else label
    os.environ["JUPYTER_PATH"] = os.pathsep.join(
        [tmp] + [p for p in os.environ.get("JUPYTER_PATH", "").split(os.pathsep) if p])

    ctx = zmq.Context()
    ctx.setsockopt(zmq.RECONNECT_IVL, RECONNECT_IVL_MS)
    ctx.setsockopt(zmq.LINGER, 0)
    problems: list[str] = []
    seen_pids: dict[int, str] = {}
    fresh = {lb: Kernel(lb, specs[lb], ctx, logdir, problems, seen_pids) for lb in labels}
    live = {lb: Kernel(lb, specs[lb], ctx, logdir, problems, seen_pids) for lb in labels}
    res: dict[str, dict[str, Any]] = {lb: {} for lb in labels}
    versions: dict[str, str] = {}
    argvs: dict[str, str] = {}
    stamps: dict[str, tuple[str, tuple] | None] = {}
    stamp_argv: dict[str, list[str]] = {}
    failed: BaseException | None = None

    try:
        from jupyter_client.kernelspec import KernelSpecManager

        ksm = KernelSpecManager()
        for lb in labels:
            spec = ksm.get_kernel_spec(specs[lb])
            argvs[lb] = " ".join(spec.argv)
            stamps[lb] = code_stamp(spec.argv)
            stamp_argv[lb] = spec.argv
        log(f"kernels: {', '.join(f'{lb} ({specs[lb]})' for lb in labels)}; "
            f"{n_starts} starts, {n_rt} round trips, {n_lines}x {LINES} lines; logs in {logdir}")

        # One untimed start each: the first start_kernel() of a process loads the
        # provisioner entry points and the kernelspec machinery (~0.2 s).
        for k in fresh.values():
            measure_start_to_info(k)

        # 1 and 2: fresh starts, alternating kernels.
        ks = list(fresh.values())
        for lb in labels:
            res[lb].update(info=[], launch=[], result=[], shutdown=[])
        for rep in range(n_starts):
            for k in order(ks, rep):
                t, launch, took = measure_start_to_info(k)
                res[k.label]["info"].append(t)
                res[k.label]["launch"].append(launch)
                if took is not None:
                    res[k.label]["shutdown"].append(took)
            for k in order(ks, rep + 1):
                t, took = measure_start_to_result(k)
                res[k.label]["result"].append(t)
                if took is not None:
                    res[k.label]["shutdown"].append(took)
            log(f"start {rep + 1}/{n_starts}: " + "; ".join(
                f"{lb} info {res[lb]['info'][-1] * 1e3:.1f} ms, 1+1 "
                f"{res[lb]['result'][-1] * 1e3:.0f} ms" for lb in labels))

        # 3, 4, 5: one long-lived kernel each, both up at once, alternating.
        ks = list(live.values())
        for k in ks:
            k.start()
            k.wait_iopub(START_TIMEOUT)
            info = k.kernel_info()
            lang = info.get("language_info", {})
            versions[k.label] = (f"{info.get('implementation')} "
                                 f"{info.get('implementation_version')}, protocol "
                                 f"{info.get('protocol_version')}, {lang.get('name')} "
                                 f"{lang.get('version')}, kernel pid {k.pid}")
            k.execute("1+1", FIRST_RESULT_TIMEOUT)  # the executor is up
        for lb in labels:
            res[lb]["rt"] = []
        for i in range(warmup_rt + n_rt):
            for k in order(ks, i):
                t0, t1, _ = k.execute(TRIVIAL_CODE, ROUND_TRIP_TIMEOUT)
                if i >= warmup_rt:
                    res[k.label]["rt"].append(t1 - t0)
        log("round trips: " + "; ".join(
            f"{lb} p50 {statistics.median(res[lb]['rt']) * 1e3:.2f} ms" for lb in labels))

        for k in ks:
            kids = k.children()
            res[k.label]["rss"] = rss_bytes(k.pid) if k.pid else None
            child_rss = [rss_bytes(p) for p in kids]
            res[k.label]["child_rss"] = sum(r for r in child_rss if r) if kids else 0
            res[k.label]["children"] = len(kids)
            split = memory_split(k.pid) if k.pid else {}
            for key in ("RssAnon", "RssFile", "uss", "pss"):
                res[k.label][key] = split.get(key)

        for lb in labels:
            res[lb]["lines"] = []
        for rep in range(n_lines):
            for k in order(ks, rep):
                r = measure_lines(k)
                res[k.label]["lines"].append(r)
                if not r["ok"] or r["late"] or r["other"]:
                    problems.append(
                        f"{k.label}: 100k lines: lost {r['lost']}, duplicated "
                        f"{r['duplicated']}, reordered {r['reordered']}, foreign lines "
                        f"{r['foreign']}, stream messages after idle {r['late']}, "
                        f"other output (stderr/error/result) {r['other']}")
            log(f"100k lines {rep + 1}/{n_lines}: " + "; ".join(
                f"{lb} {res[lb]['lines'][-1]['seconds']:.2f} s" for lb in labels))
        for k in ks:
            res[k.label]["rss_after_lines"] = rss_bytes(k.pid) if k.pid else None
            res[k.label]["child_rss_after_lines"] = sum(
                r for r in (rss_bytes(p) for p in k.children()) if r)
    except BenchError as exc:
        failed = exc
        problems.append(str(exc).split("\n")[0])
        log(f"FAILED: {exc}")
    except BaseException as exc:  # KeyboardInterrupt, SystemExit from a signal, bugs
        failed = exc
        log(f"aborted: {exc!r}")
    finally:
        for k in list(fresh.values()) + list(live.values()):
            k.stop()
        ctx.destroy(linger=0)
        # Nothing we started may outlive the run, not even as a zombie of ours.
        left = [p for p in seen_pids if alive(p)]
        if left:
            problems.append("left running after the run: " + ", ".join(
                f"{p} ({seen_pids[p]})" for p in left) + "; killed")
            kill_pids(left)
        mine = descendants(os.getpid())
        if mine:
            problems.append(f"child processes of the benchmark left: {mine}; killed")
            kill_pids(mine)
        for p in seen_pids:
            try:
                os.waitpid(p, os.WNOHANG)
            except ChildProcessError:
                pass
        zombies = [p for p in seen_pids if zombie(p)]
        if zombies:
            problems.append(f"zombie processes left: {zombies}")

    if failed is not None and not isinstance(failed, BenchError):
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(failed, KeyboardInterrupt):
            return 130
        raise failed

    # -- the table ----------------------------------------------------------------------
    a = labels[0]
    b = labels[1] if len(labels) > 1 else None
    rows: list[dict] = []

    def get(lb: str | None, key: str, f: Callable[[Any], float | None]) -> float | None:
        if lb is None or res[lb].get(key) in (None, []):
            return None
        return f(res[lb][key])

    def row(metric: str, va: float | None, vb: float | None, digits: int,
            ratio_max: float | None = None, abs_max: float | None = None) -> None:
        ratio = va / vb if va is not None and vb else None
        if ratio_max is not None:
            target = f"ratio ≤ {ratio_max:g}"
            met = "—" if ratio is None else ("yes" if ratio <= ratio_max else "**no**")
        elif abs_max is not None:
            target = f"{a} ≤ {abs_max:g}"
            met = "—" if va is None else ("yes" if va <= abs_max else "**no**")
        else:
            target, met = "(info)", ""
        rows.append({"metric": metric, "a": fmt(va, digits), "b": fmt(vb, digits),
                     "ratio": fmt(ratio, 3), "target": target, "met": met})

    def both(key: str, f: Callable[[Any], float | None]) -> tuple[float | None, ...]:
        return get(a, key, f), get(b, key, f)

    def med_ms(xs: list[float]) -> float:
        return statistics.median(xs) * 1e3

    def mb(x: float | None) -> float | None:
        return None if x is None else x / 2**20

    row(f"start → kernel_info_reply, median of {n_starts} (ms)", *both("info", med_ms), 1,
        ratio_max=0.05)
    row("↳ of which the start_kernel() call itself, median (ms)", *both("launch", med_ms), 1)
    row(f"start → result of `1+1`, median of {n_starts} (ms)", *both("result", med_ms), 0,
        ratio_max=0.7)
    row(f"trivial execute round trip p50 of {n_rt} (ms)", *both("rt", med_ms), 3,
        ratio_max=0.33)
    row(f"trivial execute round trip p99 of {n_rt} (ms)",
        *both("rt", lambda xs: percentile(xs, 99) * 1e3), 3)
    row(f"100k lines printed by one cell, send → idle, median of {n_lines} (s)",
        *both("lines", lambda rs: statistics.median(r["seconds"] for r in rs)), 3,
        ratio_max=0.5)
    lost = {lb: (sum(r["lost"] + r["duplicated"] + r["foreign"] for r in res[lb]["lines"]),
                 sum(r["reordered"] for r in res[lb]["lines"]))
            for lb in labels if res[lb].get("lines")}
    rows.append({"metric": "100k lines: lost/reordered, all cells, checked on the client",
                 "a": "%d/%d" % lost[a] if a in lost else "—",
                 "b": "%d/%d" % lost[b] if b in lost else "—", "ratio": "",
                 "target": "0/0", "met": "—" if a not in lost else
                 ("yes" if all(v == (0, 0) for v in lost.values()) else "**no**")})
    row("100k lines: stream messages per cell, median",
        *both("lines", lambda rs: statistics.median(r["messages"] for r in rs)), 0)
    row("kernel process RSS after the round trips (MB)", *both("rss", mb), 1, abs_max=8)
    row("↳ of it anonymous (heap, stacks) (MB)", *both("RssAnon", mb), 1)
    row("↳ of it file-backed (binary, shared libraries) (MB)", *both("RssFile", mb), 1)
    if psutil is not None:
        row("↳ kernel process USS, pages no other process shares (MB)", *both("uss", mb), 1)
        row("↳ kernel process PSS (MB)", *both("pss", mb), 1)
    row("its child processes' RSS (MB; sparkernel: the Python executor)",
        *both("child_rss", mb), 1)
    tot = [None if lb is None or res[lb].get("rss") is None
           else mb(res[lb]["rss"] + res[lb].get("child_rss", 0)) for lb in (a, b)]
    row("kernel + children RSS (MB)", tot[0], tot[1], 1)
    row("kernel process RSS after the 100k-line cells (MB)",
        *both("rss_after_lines", mb), 1)
    row("its child processes' RSS after the 100k-line cells (MB)",
        *both("child_rss_after_lines", mb), 1)
    row("shutdown_kernel() after the starts above, median (ms)", *both("shutdown", med_ms), 0)

    info = machine_info(versions, argvs)
    notes = [
        "Same client code for every kernel: jupyter_client KernelManager + "
        "BlockingKernelClient (heartbeat channel off), one zmq context whose sockets retry a "
        f"refused connect every {RECONNECT_IVL_MS} ms (jupyter_client's default, 100 ms, "
        "would round a late-binding kernel's start up to the next 100 ms).",
        "Kernels alternate per repetition (order flips each time); for the round trips and "
        "the 100k lines both kernels are up at once in one long-lived session each.",
        "start → kernel_info_reply: from just before KernelManager.start_kernel() (kernelspec "
        "lookup, connection file, Popen included) to the reply of a kernel_info_request sent "
        "right after the client connected (zmq holds it until the kernel binds). One "
        "untimed start per kernel first.",
        "start → `1+1`: start_kernel(), then wait until iopub is connected (any iopub message: "
        "iopub_welcome or the status of a kernel_info_request), send `1+1`, stop at its "
        "execute_result.",
        f"round trip: `{TRIVIAL_CODE}` sent, clock stopped when both its execute_reply "
        f"(shell) and its idle status (iopub) are in; {warmup_rt} unmeasured first; p99 is "
        "the nearest-rank percentile.",
        f"100k lines: `{LINES_CODE}`, send → idle; the client concatenates every stdout "
        "stream text of the request and compares it with 0..99999 one per line, and looks "
        "0.3 s past idle for late stream messages.",
        "RSS via " + ("psutil" if psutil else "/proc/<pid>/status VmRSS") + " of the process "
        "KernelManager started (sparkernel: the C kernel; ipykernel: its Python process) and, "
        "separately, of all its descendants. The ↳ rows split the kernel's RSS: anonymous "
        "vs file-backed from /proc/<pid>/status; USS and PSS from smaps (file-backed pages "
        "of shared libraries count fully in RSS though other processes share them).",
        "shutdown_kernel() time is rounded up by jupyter_client, which polls for the "
        "kernel's exit every 100 ms; the `1+1` starts shut down a ready kernel, the "
        "kernel_info starts one that may still be starting its executor.",
        "Ratios and targets compare kernels within this one run; absolute times depend on "
        "the machine.",
    ]
    for lb, stamp in stamps.items():
        if stamp and code_stamp(stamp_argv[lb]) != stamp:
            notes.insert(0, f"**Warning: the code of {lb} ({stamp[0]} or the Python files "
                         "its argv points at) changed during the run**: the numbers mix "
                         "two versions; run again.")
            log(f"warning: the code of {lb} changed during the run")
    if failed is not None:
        notes.insert(0, f"**The run stopped early**: {str(failed).splitlines()[0]}")
    wall = time.perf_counter() - wall0
    mode = "quick" if args.quick else "full"
    report = render(labels, rows, info, notes, problems, wall, mode)
    print(report)
    if args.out:
        with open(args.out, "w") as f:
            f.write(report)
        log(f"wrote {args.out}")
    if problems or failed is not None:
        log(f"problems found; kernel logs kept in {logdir}")
        return 1
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
