"""Soak: N mixed requests through jupyter_client at one kernel, every reply checked.

Two runs of the same request sequence (a seeded random mix):

* rss: the kernel as built; its resident memory is read after the first 100 requests and
  after the last one (and every 1,000 in between). The issue's bound: within 10%.
* valgrind: the kernel under valgrind memcheck (a variant kernelspec whose argv is
  prefixed with valgrind); after a clean shutdown (shutdown_request, exit status 0) the
  valgrind log must show 0 bytes definitely and indirectly lost and ERROR SUMMARY: 0.
  The Python executor the kernel forks is not traced (valgrind follows no exec).

The mix: execute (a sum checked against its execute_result, a print checked against the
stream, an assignment, an exception checked against the error), complete, inspect,
history (tail), kernel_info, is_complete (complete/incomplete/invalid), and on control an
interrupt_request every 100 requests, every other one while a cell sleeps (that cell must
end in KeyboardInterrupt), the others with nothing running.

    SPARKERNEL_WARM=false JUPYTER_PATH=$PWD/build/share/jupyter \\
        .venv/bin/python tests/soak/soak.py [--requests 10000] [--mode both|rss|valgrind] \\
        [--out tests/soak/results.md]

Exit status 0 when every reply was right and every bound held, 1 otherwise. `make soak`
runs both modes with 10,000 requests; tests/integration/test_soak.py imports run_soak()
for a smaller valgrind run.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import pathlib
import platform
import random
import re
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "support"))

os.environ.setdefault("SPARKERNEL_WARM", "false")
os.environ.setdefault("SPARKERNEL_BIND_ADDRESS", "127.0.0.1")

import psutil  # noqa: E402

from kernels import Kernel, build_spec_dir, variant_spec  # noqa: E402

VALGRIND_ARGS = [
    "--tool=memcheck", "--leak-check=full", "--show-leak-kinds=definite,indirect",
    "--errors-for-leak-kinds=definite,indirect", "--error-exitcode=99", "--track-fds=no",
    # The executor is forked then exec'd: the forked copy stays silent until its exec.
    "--child-silent-after-fork=yes", "--num-callers=30",
]
RSS_FIRST = 100
RSS_BOUND = 0.10
SEED = 7
REPLY_TIMEOUT = 60.0


class SoakError(AssertionError):
    pass


def log(msg: str) -> None:
    print(f"[soak {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


@dataclass
class RunResult:
    mode: str
    requests: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    rss: dict[int, int] = field(default_factory=dict)  # requests done -> bytes
    rss_anon: dict[int, int] = field(default_factory=dict)
    valgrind: dict[str, Any] = field(default_factory=dict)
    exit_code: int | None = None
    dropped_in_log: int = 0
    interrupts: int = 0
    interrupts_running: int = 0
    cells: int = 0
    problems: list[str] = field(default_factory=list)

    def rss_growth(self) -> float | None:
        if RSS_FIRST not in self.rss or self.requests not in self.rss:
            return None
        return self.rss[self.requests] / self.rss[RSS_FIRST] - 1.0


def rss_of(pid: int) -> tuple[int, int]:
    rss = psutil.Process(pid).memory_info().rss
    anon = 0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("RssAnon:"):
                anon = int(line.split()[1]) * 1024
    return rss, anon


class Client:
    """Request/response helpers over the Kernel's blocking client, each one waiting for
    the reply and for the request's idle status on iopub."""

    def __init__(self, k: Kernel) -> None:
        self.k = k
        self.kc = k.kc

    def _iopub_until_idle(self, msg_id: str, deadline: float) -> list[dict]:
        out: list[dict] = []
        while True:
            msg = self.kc.get_iopub_msg(timeout=max(0.1, deadline - time.monotonic()))
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            out.append(msg)
            if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                return out

    def _reply(self, get, msg_id: str, deadline: float) -> dict:
        while True:
            msg = get(timeout=max(0.1, deadline - time.monotonic()))
            if msg["parent_header"].get("msg_id") == msg_id:
                return msg

    def shell(self, msg_id: str) -> tuple[dict, list[dict]]:
        deadline = time.monotonic() + REPLY_TIMEOUT
        out = self._iopub_until_idle(msg_id, deadline)
        return self._reply(self.kc.get_shell_msg, msg_id, deadline), out

    def control(self, msg_type: str, content: dict) -> tuple[dict, list[dict]]:
        msg = self.kc.session.msg(msg_type, content)
        self.kc.control_channel.send(msg)
        msg_id = msg["header"]["msg_id"]
        deadline = time.monotonic() + REPLY_TIMEOUT
        reply = self._reply(self.kc.get_control_msg, msg_id, deadline)
        return reply, self._iopub_until_idle(msg_id, deadline)


def expect(cond: bool, what: str, reply: Any = None) -> None:
    if not cond:
        detail = json.dumps(reply, default=str)[:1500] if reply is not None else ""
        raise SoakError(f"{what}: {detail}")


def of_type(msgs: list[dict], t: str) -> list[dict]:
    return [m for m in msgs if m["msg_type"] == t]


IS_COMPLETE_CASES = [
    ("x = 1", "complete"),
    ("for i in range(3):", "incomplete"),
    ("def f(a,", "incomplete"),
    ("x = )", "invalid"),
]


class Soak:
    """The request mix. Every request is checked; a wrong reply raises SoakError."""

    def __init__(self, c: Client, rng: random.Random, store_history: bool = True) -> None:
        self.c = c
        self.kc = c.kc
        self.rng = rng
        self.store = store_history
        self.cells = 0  # execute requests sent (the setup cell not included)
        self.last_stored_code: str | None = None
        self.n_interrupts = 0

    def setup(self) -> None:
        # Jedi is slow and not what this soak is about: the completer's own matchers.
        reply, _ = self.c.shell(self.kc.execute(
            "get_ipython().Completer.use_jedi = False\nsoak_variable = 0\nimport time",
            store_history=self.store))
        expect(reply["content"]["status"] == "ok", "setup cell", reply)
        self.last_stored_code = None  # the setup cell is not counted; history checks skip it

    def execute(self, code: str, **kw: Any) -> tuple[dict, list[dict]]:
        reply, out = self.c.shell(self.kc.execute(code, store_history=self.store, **kw))
        self.cells += 1
        if self.store:
            self.last_stored_code = code
        return reply, out

    def do(self, kind: str, i: int) -> int:
        """Runs one request (two for an interrupt of a running cell); returns how many."""
        rng = self.rng
        if kind == "execute_sum":
            a, b = rng.randrange(10**6), rng.randrange(10**6)
            reply, out = self.execute(f"{a} + {b}")
            expect(reply["content"]["status"] == "ok", "sum cell", reply)
            res = of_type(out, "execute_result")
            expect(len(res) == 1 and res[0]["content"]["data"]["text/plain"] == str(a + b),
                   f"sum cell result {a}+{b}", out)
            expect(res[0]["content"]["execution_count"] == reply["content"]["execution_count"],
                   "execution_count of result and reply", out)
        elif kind == "execute_print":
            reply, out = self.execute(f"print('soak', {i})")
            expect(reply["content"]["status"] == "ok", "print cell", reply)
            text = "".join(m["content"]["text"] for m in of_type(out, "stream"))
            expect(text == f"soak {i}\n", "print cell output", out)
        elif kind == "execute_assign":
            reply, out = self.execute(f"soak_variable = {i}")
            expect(reply["content"]["status"] == "ok", "assign cell", reply)
            expect(not of_type(out, "execute_result"), "assign cell has no result", out)
        elif kind == "execute_error":
            reply, out = self.execute(f"raise ValueError('soak {i}')")
            expect(reply["content"]["status"] == "error" and
                   reply["content"]["ename"] == "ValueError" and
                   reply["content"]["evalue"] == f"soak {i}", "error cell reply", reply)
            errs = of_type(out, "error")
            expect(len(errs) == 1 and errs[0]["content"]["ename"] == "ValueError",
                   "error cell iopub", out)
        elif kind == "complete":
            reply, _ = self.c.shell(self.kc.complete("soak_var", 8))
            content = reply["content"]
            expect(reply["msg_type"] == "complete_reply" and content["status"] == "ok" and
                   "soak_variable" in content["matches"] and content["cursor_start"] == 0 and
                   content["cursor_end"] == 8, "complete", reply)
        elif kind == "inspect":
            reply, _ = self.c.shell(self.kc.inspect("len", 3))
            content = reply["content"]
            expect(reply["msg_type"] == "inspect_reply" and content["status"] == "ok" and
                   content["found"] is True and "len" in content["data"].get("text/plain", ""),
                   "inspect", reply)
        elif kind == "history":
            reply, _ = self.c.shell(self.kc.history(hist_access_type="tail", n=5, raw=True,
                                                    output=False))
            content = reply["content"]
            hist = content.get("history")
            expect(reply["msg_type"] == "history_reply" and content["status"] == "ok" and
                   isinstance(hist, list) and len(hist) <= 5, "history", reply)
            expect(len(hist) >= 1 if self.store else hist == [], "history length", reply)
            if self.last_stored_code is not None:
                expect(hist[-1][2] == self.last_stored_code, "history's last entry", reply)
        elif kind == "kernel_info":
            reply, _ = self.c.shell(self.kc.kernel_info())
            content = reply["content"]
            expect(reply["msg_type"] == "kernel_info_reply" and content["status"] == "ok" and
                   content["implementation"] == "sparkernel" and
                   content["language_info"]["name"] == "python", "kernel_info", reply)
        elif kind == "is_complete":
            code, want = rng.choice(IS_COMPLETE_CASES)
            reply, _ = self.c.shell(self.kc.is_complete(code))
            expect(reply["msg_type"] == "is_complete_reply" and
                   reply["content"]["status"] == want, f"is_complete {code!r}", reply)
        elif kind == "interrupt":
            return self.interrupt()
        else:
            raise ValueError(kind)
        return 1

    def interrupt(self) -> int:
        """Every other interrupt lands on a cell that sleeps; the rest on an idle kernel."""
        self.n_interrupts += 1
        if self.n_interrupts % 2 == 1:
            reply, _ = self.c.control("interrupt_request", {})
            expect(reply["msg_type"] == "interrupt_reply" and
                   reply["content"]["status"] == "ok", "idle interrupt", reply)
            return 1
        code = "print('soak-sleeping', flush=True)\ntime.sleep(30)"
        msg_id = self.kc.execute(code, store_history=self.store)
        self.cells += 1
        if self.store:
            self.last_stored_code = code
        deadline = time.monotonic() + REPLY_TIMEOUT
        seen: list[dict] = []
        while True:  # the cell is really running once its first line is out
            m = self.kc.get_iopub_msg(timeout=max(0.1, deadline - time.monotonic()))
            if m["parent_header"].get("msg_id") != msg_id:
                continue
            seen.append(m)
            if m["msg_type"] == "stream" and "soak-sleeping" in m["content"]["text"]:
                break
        t0 = time.monotonic()
        reply, _ = self.c.control("interrupt_request", {})
        expect(reply["content"]["status"] == "ok", "interrupt of a running cell", reply)
        ereply, out = self.c.shell(msg_id)
        expect(ereply["content"]["status"] == "error" and
               ereply["content"]["ename"] == "KeyboardInterrupt",
               "interrupted cell reply", ereply)
        expect(time.monotonic() - t0 < 10, "interrupt took under 10 s")
        expect(len(of_type(seen + out, "error")) == 1, "interrupted cell: one error", out)
        return 2


KINDS = [  # (kind, weight)
    ("execute_sum", 20), ("execute_print", 12), ("execute_assign", 6), ("execute_error", 2),
    ("complete", 15), ("inspect", 12), ("history", 10), ("kernel_info", 10),
    ("is_complete", 13),
]


def kernel_pid(k: Kernel) -> int:
    return k.km.provisioner.process.pid


def run_soak(mode: str, n: int, progress_every: int = 1000) -> RunResult:
    """One soak run: mode "rss" (the plain kernel, RSS measured), "rss-nohistory" (the same
    with store_history=False on every cell: the control that shows what the history ring
    holds) or "valgrind"."""
    res = RunResult(mode=mode)
    vg_dir = None
    env = {"SPARKERNEL_WARM": "false"}
    if mode == "valgrind":
        if shutil.which("valgrind") is None:
            raise SoakError("valgrind is not installed (apt-get install valgrind)")
        vg_dir = pathlib.Path(tempfile.mkdtemp(prefix="sparkernel-valgrind-"))
        argv = json.loads((build_spec_dir() / "kernel.json").read_text())["argv"]
        argv = ["valgrind", *VALGRIND_ARGS, f"--log-file={vg_dir}/vg.%p.log", *argv]
        ksm = variant_spec("sparkernel-valgrind", argv=argv)
        k = Kernel("sparkernel-valgrind", ksm=ksm, env=env)
    else:
        k = Kernel(env=env)
    k.km.shutdown_wait_time = 300.0  # valgrind's leak check runs after the exit request
    proc = k.km.provisioner.process
    pid = proc.pid
    rng = random.Random(SEED)
    kinds = [kind for kind, _ in KINDS]
    weights = [w for _, w in KINDS]
    soak = Soak(Client(k), rng, store_history=mode != "rss-nohistory")
    t0 = time.monotonic()
    clean = False
    try:
        soak.setup()
        done = 0
        next_interrupt = 100
        while done < n:
            if done >= next_interrupt:
                next_interrupt += 100
                kind = "interrupt"
            else:
                kind = rng.choices(kinds, weights)[0]
            if kind == "interrupt" and soak.n_interrupts % 2 == 1 and n - done < 2:
                kind = "kernel_info"  # no room left for the two requests of a running one
            before = done
            done += soak.do(kind, done)
            res.by_kind[kind] = res.by_kind.get(kind, 0) + (done - before)
            for mark in (RSS_FIRST, *range(progress_every, n + 1, progress_every), n):
                if before < mark <= done and mark not in res.rss:
                    if mode.startswith("rss"):
                        res.rss[mark], res.rss_anon[mark] = rss_of(pid)
                    if mark % progress_every == 0 or mark == n or mark == RSS_FIRST:
                        extra = f", RSS {res.rss[mark] / 2**20:.2f} MB" if mark in res.rss else ""
                        log(f"{mode}: {mark} requests in {time.monotonic() - t0:.0f} s{extra}")
        res.requests = done
        res.seconds = time.monotonic() - t0
        res.interrupts = soak.n_interrupts
        res.interrupts_running = soak.n_interrupts // 2
        res.cells = soak.cells
        clean = True
    except Exception as exc:  # noqa: BLE001 - reported, and the kernel is still shut down
        res.problems.append(f"{type(exc).__name__}: {exc}")
    finally:
        try:
            text = k.shutdown()
        except AssertionError as exc:
            res.problems.append(str(exc))
            text = k.log()
        try:
            proc.wait(timeout=300)
        except Exception:  # noqa: BLE001
            proc.kill()
            res.problems.append("the kernel did not exit after shutdown")
        res.exit_code = proc.returncode
        m = re.search(r"stopping \((\d+) bad messages dropped", text)
        res.dropped_in_log = int(m.group(1)) if m else -1
    if clean and res.exit_code != 0:
        res.problems.append(f"kernel exit status {res.exit_code} (99: valgrind found errors)")
    if res.dropped_in_log != 0:
        res.problems.append(f"the kernel log reports {res.dropped_in_log} dropped messages")
    if mode.startswith("rss"):
        growth = res.rss_growth()
        if growth is None:
            res.problems.append("no RSS figures")
        elif growth > RSS_BOUND:
            res.problems.append(f"RSS grew {growth:.1%} (bound {RSS_BOUND:.0%})")
    if vg_dir is not None:
        res.valgrind = parse_valgrind(vg_dir / f"vg.{pid}.log")
        res.valgrind["log"] = str(vg_dir / f"vg.{pid}.log")
        v = res.valgrind
        if not v.get("complete"):
            res.problems.append(f"valgrind log incomplete: {v['log']}")
        elif v["definite"] or v["indirect"] or v["errors"] or v["invalid"]:
            res.problems.append(
                f"valgrind: {v['definite']} B definitely lost, {v['indirect']} B indirectly "
                f"lost, {v['errors']} errors, {v['invalid']} invalid accesses ({v['log']})")
    return res


def parse_valgrind(path: pathlib.Path) -> dict[str, Any]:
    out: dict[str, Any] = {"complete": False, "definite": 0, "indirect": 0, "possible": 0,
                           "reachable": 0, "errors": -1, "invalid": 0, "allocs": 0}
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return out

    def num(s: str) -> int:
        return int(s.replace(",", ""))

    for key, label in (("definite", "definitely lost"), ("indirect", "indirectly lost"),
                       ("possible", "possibly lost"), ("reachable", "still reachable")):
        m = re.search(label + r": ([\d,]+) bytes", text)
        if m:
            out[key] = num(m.group(1))
    m = re.search(r"total heap usage: ([\d,]+) allocs, ([\d,]+) frees, ([\d,]+) bytes", text)
    if m:
        out["allocs"], out["frees"], out["bytes"] = (num(g) for g in m.groups())
    m = re.search(r"ERROR SUMMARY: ([\d,]+) errors", text)
    if m:
        out["errors"] = num(m.group(1))
        out["complete"] = True
    out["invalid"] = len(re.findall(r"Invalid (read|write|free)", text))
    out["no_leaks_possible"] = "All heap blocks were freed" in text
    return out


def write_results(path: pathlib.Path, n: int, runs: list[RunResult]) -> None:
    load = os.getloadavg()
    lines = [f"# sparkernel soak: {n:,} requests", ""]
    lines += ["| run | requests | wall time (s) | requests/s | result |", "|---|---:|---:|---:|---|"]
    for r in runs:
        rate = r.requests / r.seconds if r.seconds else 0
        lines.append(f"| {r.mode} | {r.requests:,} | {r.seconds:.0f} | {rate:.1f} | "
                     f"{'pass' if not r.problems else 'FAIL: ' + '; '.join(r.problems)} |")
    lines.append("")
    for r in runs:
        lines.append(f"## {r.mode}")
        lines.append("")
        lines.append("requests by kind: " + ", ".join(
            f"{k} {v:,}" for k, v in sorted(r.by_kind.items(), key=lambda kv: -kv[1])))
        lines.append("")
        lines.append(f"interrupt_request: {r.interrupts}, of which {r.interrupts_running} on a "
                     "running cell (each ended in KeyboardInterrupt; an interrupted cell and its "
                     "interrupt count as 2 requests above)")
        lines.append("")
        if r.rss:
            lines += ["| after requests | kernel RSS (MB) | of it anonymous (MB) |",
                      "|---:|---:|---:|"]
            for mark in sorted(r.rss):
                lines.append(f"| {mark:,} | {r.rss[mark] / 2**20:.2f} | "
                             f"{r.rss_anon[mark] / 2**20:.2f} |")
            g = r.rss_growth()
            lines += ["", f"RSS after {r.requests:,} vs after {RSS_FIRST}: "
                          f"{'n/a' if g is None else f'{g:+.1%}'} (bound +{RSS_BOUND:.0%})", ""]
        if r.valgrind:
            v = r.valgrind
            lines += [
                "| valgrind memcheck | value |", "|---|---:|",
                f"| definitely lost (bytes) | {v['definite']:,} |",
                f"| indirectly lost (bytes) | {v['indirect']:,} |",
                f"| possibly lost (bytes) | {v['possible']:,} |",
                f"| still reachable at exit (bytes) | {v['reachable']:,} |",
                f"| invalid reads/writes/frees | {v['invalid']} |",
                f"| ERROR SUMMARY | {v['errors']} |",
                f"| heap allocations over the run | {v.get('allocs', 0):,} |",
                f"| kernel exit status | {r.exit_code} |", ""]
        lines.append(f"bad messages the kernel log reports dropped: {r.dropped_in_log}")
        lines.append("")
    by_mode = {r.mode: r for r in runs}
    hist, nohist = by_mode.get("rss"), by_mode.get("rss-nohistory")
    if hist and nohist and hist.requests in hist.rss and nohist.requests in nohist.rss:
        mb = 2**20
        warm = (nohist.rss[min(1000, n)] - nohist.rss[RSS_FIRST]) / mb if min(1000, n) in \
            nohist.rss else 0.0
        share = (hist.rss[hist.requests] - nohist.rss[nohist.requests]) / mb
        lines += [
            "## Where the growth goes", "",
            f"- Both runs grow by {warm:.2f} MB between request {RSS_FIRST} and request "
            f"{min(1000, n):,} (rss-nohistory), then the run without history is flat. That "
            "first step is pages touched for the first time in tables allocated at start "
            "and filled at random: the replay guard's digest set (kernel/auth.c, two "
            "generations of 16,384 digests in 512 KB each, `calloc`ed so resident only "
            "once written) reaches all the pages of its first generation within the first "
            "~1,000 messages (seen once in /proc/<pid>/smaps with kernel_info requests "
            "only: its 1,032 kB mapping had 268 kB resident after 100 requests, 516 kB "
            "after 1,000 and after 3,000). The second generation is touched when the first "
            "fills, at message 16,384, beyond this run: the set's total is 1 MB, fixed.",
            f"- The difference between the two runs at {n:,} requests, {share:.2f} MB, is "
            "the history (kernel/history.c): every stored cell's code and text/plain result, "
            "in a ring of at most 10,000 entries, so it stops growing once 10,000 cells are "
            f"stored (this run stored {hist.cells:,} cells).",
            "- valgrind finds no block lost at exit: nothing grows without a bound.",
            ""]
    lines += [
        "## How", "",
        f"- `make soak` (tests/soak/soak.py --requests {n}); the same seeded mix (seed {SEED}) "
        "in every run, sequential: each request waits for its reply and its idle status.",
        "- Every reply is checked: sums against their execute_result, prints against the "
        "stream, exceptions against the error, `soak_var` completes to `soak_variable`, `len` "
        "is found by inspect, history's last entry is the last cell run, kernel_info names "
        "sparkernel, is_complete gives complete/incomplete/invalid as expected.",
        "- interrupt_request on control every 100 requests; every other one while a cell "
        "sleeps (it must end in KeyboardInterrupt: the cell and the interrupt are 2 requests).",
        "- valgrind: `valgrind " + " ".join(VALGRIND_ARGS) + " sparkernel ...` via a variant "
        "kernelspec; shutdown_request, then the kernel's own exit (exit status 0, which "
        "--error-exitcode=99 would turn to 99 on any error). The forked Python executor "
        "is not traced. RSS under valgrind is valgrind's, so it is measured without.",
        "- `SPARKERNEL_WARM=false`: no Spark session (the kernel core only).",
        "",
        "## Machine", "",
        f"- {datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds')}, "
        f"nproc {os.cpu_count()}, {platform.system()} {platform.release()}, load average at "
        f"the end {load[0]:.1f}, {load[1]:.1f}, {load[2]:.1f} (the machine is shared)",
        f"- {shutil.which('valgrind') and os.popen('valgrind --version').read().strip()}, "
        f"Python {platform.python_version()}",
        "",
    ]
    path.write_text("\n".join(lines))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--requests", type=int, default=10_000)
    ap.add_argument("--mode", choices=["all", "rss", "rss-nohistory", "valgrind"],
                    default="all")
    ap.add_argument("--out", type=pathlib.Path)
    args = ap.parse_args()
    modes = ["rss", "rss-nohistory", "valgrind"] if args.mode == "all" else [args.mode]
    runs = []
    for mode in modes:
        log(f"{mode}: {args.requests} requests")
        r = run_soak(mode, args.requests)
        runs.append(r)
        log(f"{mode}: {r.requests} requests in {r.seconds:.0f} s; "
            f"{'ok' if not r.problems else 'FAILED: ' + '; '.join(r.problems)}")
        if r.valgrind:
            log(f"valgrind: {r.valgrind}")
    if args.out:
        write_results(args.out, args.requests, runs)
        log(f"wrote {args.out}")
    return 0 if all(not r.problems for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
