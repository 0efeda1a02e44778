"""The JupyterLab debugger's protocol (debug_request on control, debug_reply, debug_event
on iopub), driven as JupyterLab drives it, on sparkernel and on ipykernel side by side: a
breakpoint set in a cell before it runs, the stop, the cell's frames, a variable read,
continue, the variable explorer between cells, disconnect. Also what only sparkernel must
show: control answered while a cell runs, a malformed request answered, the executor's
frames kept out of the stack. No Spark (SPARKERNEL_WARM=false, conftest)."""
from __future__ import annotations

import os
import signal
import time
from queue import Empty
from typing import Any

import pytest
from kernels import Kernel

pytestmark = pytest.mark.timeout(240)

CELL = "def f(x):\n    y = x * 2\n    return y\n\nresult = f(21)\nprint(result)\n"
# What JupyterLab 4's debugger sends first (its DebuggerService.start).
INITIALIZE = {"clientID": "test-client", "clientName": "testClient", "adapterID": "python",
              "pathFormat": "path", "linesStartAt1": True, "columnsStartAt1": True,
              "supportsVariableType": True, "supportsVariablePaging": True,
              "supportsRunInTerminalRequest": True, "locale": "en"}


class Dap:
    """A DAP client over a kernel's control and iopub channels."""

    def __init__(self, kernel: Kernel) -> None:
        self.k = kernel
        self.seq = 0
        self.events: list[dict] = []
        self.iopub: list[dict] = []

    def send(self, command: str, arguments: dict | None = None,
             content: Any = None) -> str:
        self.seq += 1
        body = content if content is not None else {
            "type": "request", "seq": self.seq, "command": command,
            "arguments": arguments or {}}
        msg = self.k.kc.session.msg("debug_request", body)
        self.k.kc.control_channel.send(msg)
        return msg["header"]["msg_id"]

    def reply(self, msg_id: str, timeout: float = 30) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            msg = self.k.kc.get_control_msg(timeout=max(0.1, deadline - time.monotonic()))
            if msg["parent_header"].get("msg_id") == msg_id:
                assert msg["msg_type"] == "debug_reply"
                return msg["content"]

    def request(self, command: str, arguments: dict | None = None, timeout: float = 30) -> dict:
        return self.reply(self.send(command, arguments), timeout)

    def pump(self, timeout: float) -> None:
        try:
            msg = self.k.kc.get_iopub_msg(timeout=timeout)
        except Empty:
            return
        if msg["msg_type"] == "debug_event":
            self.events.append(msg["content"])
        else:
            self.iopub.append(msg)

    def event(self, name: str, timeout: float = 30) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            for i, e in enumerate(self.events):
                if e.get("event") == name:
                    return self.events.pop(i)
            left = deadline - time.monotonic()
            assert left > 0, f"no {name} event in {timeout} s: {self.events}"
            self.pump(min(left, 0.5))

    def idle_of(self, msg_id: str, timeout: float = 60) -> list[dict]:
        deadline = time.monotonic() + timeout
        while True:
            for m in self.iopub:
                if (m["parent_header"].get("msg_id") == msg_id and m["msg_type"] == "status"
                        and m["content"]["execution_state"] == "idle"):
                    return [x for x in self.iopub if x["parent_header"].get("msg_id") == msg_id]
            left = deadline - time.monotonic()
            assert left > 0, f"no idle for {msg_id} in {timeout} s"
            self.pump(min(left, 0.5))


def session(kernel: Kernel) -> dict:
    """The whole walk; returns what must match between the kernels."""
    dap = Dap(kernel)
    kernel.kc.kernel_info()
    info = kernel.kc.get_shell_msg(timeout=30)["content"]
    seen: dict[str, Any] = {"features": "debugger" in info.get("supported_features", [])}
    init = dap.request("initialize", INITIALIZE)
    seen["initialize"] = init["success"]
    seen["attach"] = dap.request("attach", {})["success"]
    info = dap.request("debugInfo")["body"]
    seen["info"] = (info["isStarted"], info["hashMethod"], info["tmpFileSuffix"],
                    info["breakpoints"], info["stoppedThreads"])
    dumped = dap.request("dumpCell", {"code": CELL})["body"]["sourcePath"]
    assert dumped.startswith(info["tmpFilePrefix"]) and dumped.endswith(".py")
    with open(dumped, encoding="utf-8") as f:
        assert f.read() == CELL
    bps = dap.request("setBreakpoints", {"source": {"path": dumped},
                                         "breakpoints": [{"line": 3}], "sourceModified": False})
    seen["breakpoints"] = [(b["verified"], b["line"]) for b in bps["body"]["breakpoints"]]
    seen["exceptions"] = dap.request("setExceptionBreakpoints", {"filters": []})["success"]
    seen["configured"] = dap.request("configurationDone")["success"]

    cell = kernel.kc.execute(CELL)
    stopped = dap.event("stopped")["body"]
    seen["stopped"] = stopped["reason"]
    thread = stopped["threadId"]
    after_stop = dap.request("debugInfo")["body"]
    assert thread in after_stop["stoppedThreads"]
    assert after_stop["breakpoints"] == [{"source": dumped, "breakpoints": [{"line": 3}]}]
    frames = dap.request("stackTrace", {"threadId": thread})["body"]["stackFrames"]
    seen["frames"] = [(f["name"], f["line"], f["source"]["path"] == dumped) for f in frames]
    scopes = dap.request("scopes", {"frameId": frames[0]["id"]})["body"]["scopes"]
    local = next(s for s in scopes if s["name"] == "Locals")
    variables = dap.request("variables", {"variablesReference": local["variablesReference"]})
    seen["locals"] = sorted((v["name"], v["value"]) for v in variables["body"]["variables"])
    evaluated = dap.request("evaluate", {"expression": "y + 1", "frameId": frames[0]["id"],
                                         "context": "repl"})
    seen["evaluate"] = evaluated["body"]["result"]
    rich = dap.request("richInspectVariables", {"variableName": "y",
                                                "frameId": frames[0]["id"]})
    seen["rich"] = (rich["success"], rich["body"]["data"].get("text/plain"))
    seen["continue"] = dap.request("continue", {"threadId": thread})["success"]
    outputs = dap.idle_of(cell)
    seen["stdout"] = "".join(m["content"]["text"] for m in outputs
                             if m["msg_type"] == "stream")
    reply = kernel.shell_reply(cell)["content"]
    seen["reply"] = reply["status"]

    names = {v["name"]: v for v in dap.request("inspectVariables")["body"]["variables"]}
    seen["explorer"] = (names["result"]["value"], names["result"]["type"], "f" in names,
                        "In" in names, "_i1" in names)
    # breakpoint() in a cell stops in the attached debugger (it does nothing without one).
    bp = kernel.kc.execute("z = 3\nbreakpoint()\nprint('z', z)")
    stop = dap.event("stopped")["body"]
    seen["breakpoint()"] = stop["reason"]
    dap.request("continue", {"threadId": stop["threadId"]})
    seen["after breakpoint()"] = "".join(m["content"]["text"] for m in dap.idle_of(bp)
                                         if m["msg_type"] == "stream")
    seen["disconnect"] = dap.request("disconnect", {"restart": False,
                                                    "terminateDebuggee": True})["success"]
    seen["after"] = dap.request("debugInfo")["body"]["isStarted"]
    # Breakpoints are gone with the debugger: the same cell runs through.
    again = kernel.kc.execute(CELL)
    assert kernel.shell_reply(again, timeout=30)["content"]["status"] == "ok"
    return seen


def test_breakpoint_stop_frames_variables_continue_as_ipykernel():
    ours = Kernel()
    peer = Kernel(name="python3")
    try:
        want = session(peer)
        got = session(ours)
    finally:
        ours.shutdown()
        peer.kc.stop_channels()
        peer.km.shutdown_kernel(now=True)
    assert got == want
    assert got["stopped"] == "breakpoint" and got["locals"] == [("x", "21"), ("y", "42")]
    assert [name for name, _, _ in got["frames"]] == ["f", "<module>"]
    assert got["stdout"] == "42\n" and got["explorer"] == ("42", "int", False, False, False)



def test_rich_variable_between_cells(kernel):
    """ipykernel 7.1 leaves this request unanswered (its control thread cannot reach the
    shell's user_expressions); JupyterLab's variable viewer sends it: answered here."""
    dap = Dap(kernel)
    assert dap.request("initialize", INITIALIZE)["success"]
    assert kernel.execute("from IPython.display import HTML\nh = HTML('<b>x</b>')")[0][
        "content"]["status"] == "ok"
    rich = dap.request("richInspectVariables", {"variableName": "h"})
    assert rich["success"] and rich["body"]["data"]["text/html"] == "<b>x</b>", rich


def test_control_answers_while_a_cell_runs_and_bad_requests_get_replies(kernel):
    dap = Dap(kernel)
    assert dap.request("initialize", INITIALIZE)["success"]
    assert dap.request("attach", {})["success"]
    busy = kernel.kc.execute("import time\nfor _ in range(40):\n    time.sleep(0.1)")
    time.sleep(0.5)
    t0 = time.monotonic()
    info = dap.request("debugInfo")
    assert info["success"] and time.monotonic() - t0 < 2.0
    threads = dap.request("threads")["body"]["threads"]
    # The executor's own threads (control, debugger, output) are not the user's to stop.
    assert not {"control", "debugger", "debugpy-reader", "sparkernel-flusher"} & {
        t["name"] for t in threads}, threads
    # Malformed (a message whose content is no JSON object is dropped at the wire, as any
    # other request): not a DAP request, a command that is no string, an unknown command
    # name far longer than any, a variable name that is no name.
    for content in ({}, {"type": "request", "seq": 99, "command": 7}, {"command": "x" * 9000}):
        bad = dap.reply(dap.send("", content=content))
        assert bad["success"] is False and bad.get("message"), bad
    # A request larger than the control pipe holds (64 KiB) arrives whole and in order.
    big = "x = 1\n" * 40000
    path = dap.request("dumpCell", {"code": big})["body"]["sourcePath"]
    with open(path, encoding="utf-8") as f:
        assert f.read() == big
    unknown = dap.request("noSuchCommand")
    assert unknown["success"] is False
    copied = dap.request("copyToGlobals", {"dstVariableName": "a']; import os; x=['",
                                           "srcVariableName": "x", "srcFrameId": 1})
    assert copied["success"] is False
    assert kernel.shell_reply(busy, timeout=30)["content"]["status"] == "ok"
    assert dap.request("disconnect", {"restart": False})["success"]


def executor_pid(kernel: Kernel) -> int:
    import psutil

    kid = psutil.Process(kernel.km.provisioner.process.pid)
    (ex,) = [c for c in kid.children() if "sparkernel_executor" in " ".join(c.cmdline())]
    return ex.pid


def test_executor_death_answers_waiting_debug_requests(kernel):
    dap = Dap(kernel)
    assert dap.request("initialize", INITIALIZE)["success"]
    pid = executor_pid(kernel)
    os.kill(pid, signal.SIGSTOP)  # it reads nothing more: the next request waits
    try:
        pending = dap.send("debugInfo")
        with pytest.raises(Empty):
            kernel.kc.get_control_msg(timeout=1)
    finally:
        os.kill(pid, signal.SIGKILL)
    answer = dap.reply(pending, timeout=30)
    assert answer["success"] is False and "Python process ended" in answer["message"], answer
    # A fresh executor: the debugger starts again on it.
    assert dap.request("initialize", INITIALIZE, timeout=60)["success"]
    assert dap.request("debugInfo")["body"]["isStarted"] is True


def test_debugger_starts_again_after_disconnect(kernel):
    """JupyterLab's debugger toggled off and on: the same debugpy (it listens once per
    process) serves the second session, with its breakpoints."""
    dap = Dap(kernel)
    for run in range(2):
        assert dap.request("initialize", INITIALIZE)["success"]
        assert dap.request("attach", {})["success"]
        code = f"r = {run}\nr += 1\nprint(r)\n"
        path = dap.request("dumpCell", {"code": code})["body"]["sourcePath"]
        dap.request("setBreakpoints", {"source": {"path": path}, "breakpoints": [{"line": 2}]})
        dap.request("configurationDone")
        cell = kernel.kc.execute(code)
        stop = dap.event("stopped")["body"]
        assert stop["reason"] == "breakpoint"
        dap.request("continue", {"threadId": stop["threadId"]})
        assert [m["content"]["text"] for m in dap.idle_of(cell)
                if m["msg_type"] == "stream"] == [f"{run + 1}\n"]
        assert dap.request("disconnect", {"restart": False})["success"]
        assert dap.request("debugInfo")["body"]["isStarted"] is False
