"""Differential tests: the same requests to sparkernel and to ipykernel (the python3 kernel
of the same venv), comparing reply content and the iopub sequence of each request. What
is volatile (ids, dates, tracebacks' frames, addresses) is normalised away; everything
else must be equal. No Spark: the kernels run with SPARKERNEL_WARM=false (conftest)."""
from __future__ import annotations

import re
import shutil
import tempfile
import time
from queue import Empty
from typing import Any, Callable

import pytest
from kernels import Kernel

ANSI = re.compile(r"\x1b\[[0-9;]*m")


class Pair:
    def __init__(self, env: dict[str, str] | None = None) -> None:
        self.ours = Kernel(env=env)
        # the peer's IPython history in a fresh directory: only this session's cells
        self.ipython_dir = tempfile.mkdtemp(prefix="parity-ipython-")
        self.peer = Kernel(name="python3", env={**(env or {}), "IPYTHONDIR": self.ipython_dir})

    def both(self, fn: Callable[[Kernel], Any]) -> tuple[Any, Any]:
        return fn(self.ours), fn(self.peer)

    def shutdown(self) -> None:
        try:
            self.ours.shutdown()
        finally:
            self.peer.kc.stop_channels()
            self.peer.km.shutdown_kernel(now=True)
            shutil.rmtree(self.ipython_dir, ignore_errors=True)


@pytest.fixture
def pair():
    p = Pair()
    yield p
    p.shutdown()


def norm_reply(content: dict) -> dict:
    c = dict(content)
    # Tracebacks as they are: the kernel's own frames are left out of what a cell shows,
    # and a cell's code is named as ipykernel's compiler names it.
    if "engine_info" in c:
        c["engine_info"] = sorted(c["engine_info"])
    return c


def norm_iopub(msgs: list[dict]) -> list[tuple[str, Any]]:
    out = []
    for m in msgs:
        c = dict(m["content"])
        if "transient" in c and "display_id" in c["transient"]:
            c["transient"] = {"display_id": "<id>"}
        out.append((m["msg_type"], c))
    # consecutive stream messages of one name are one stream to a frontend
    merged: list[tuple[str, Any]] = []
    for t, c in out:
        if (t == "stream" and merged and merged[-1][0] == "stream"
                and merged[-1][1]["name"] == c["name"]):
            merged[-1] = (t, {"name": c["name"], "text": merged[-1][1]["text"] + c["text"]})
        else:
            merged.append((t, c))
    return merged


def execute_both(pair: Pair, code: str, **kw: Any) -> tuple[tuple[dict, list], tuple[dict, list]]:
    ours = pair.ours.execute(code, **kw)
    peer = pair.peer.execute(code, **kw)
    return ours, peer


def assert_same_execute(pair: Pair, code: str, **kw: Any) -> tuple[dict, dict]:
    (r1, o1), (r2, o2) = execute_both(pair, code, **kw)
    assert norm_reply(r1["content"]) == norm_reply(r2["content"]), code
    assert norm_iopub(o1) == norm_iopub(o2), code
    return r1, r2


def test_plain_execution_streams_and_result(pair):
    assert_same_execute(pair, "x = 6")
    assert_same_execute(pair, "print('a'); import sys; print('b', file=sys.stderr); x * 7")
    assert_same_execute(pair, "x", user_expressions={"d": "x * 2", "bad": "nope"})


def test_rich_output_and_display_ids(pair):
    assert_same_execute(pair, "from IPython.display import display, HTML, Markdown\n"
                              "display(HTML('<b>hi</b>'), Markdown('*m*'))")
    assert_same_execute(pair, "h = display('first', display_id=True)\nh.update('second')")
    assert_same_execute(pair, "from IPython.display import clear_output\n"
                              "print('x'); clear_output(wait=True); print('y')")


def test_error_reply_and_engine_info(pair):
    r1, r2 = assert_same_execute(pair, "1/0")
    assert r1["content"]["engine_info"]["method"] == "execute"


def test_usage_error_keeps_its_name(pair):
    r1, _ = assert_same_execute(pair, "%nosuchmagic")
    assert r1["content"]["ename"] == "UsageError"
    assert "nosuchmagic" in r1["content"]["evalue"]


def test_aborted_reply_has_no_count(pair):
    def run(k: Kernel) -> list[dict]:
        first = k.kc.execute("import time; time.sleep(0.3); raise ValueError('boom')")
        second = k.kc.execute("after = 1")
        return [k.shell_reply(i)["content"] for i in (first, second)]

    ours, peer = pair.both(run)
    assert ours[1] == peer[1] == {"status": "aborted"}


@pytest.mark.parametrize("code", ["", "  \n"])
def test_empty_code(pair, code):
    assert_same_execute(pair, "y = 3")
    assert_same_execute(pair, code, user_expressions={"y": "y + 1"})
    assert_same_execute(pair, code, silent=True, user_expressions={"y": "y"})
    assert_same_execute(pair, "y")


def test_silent_first_and_store_history_false(pair):
    assert_same_execute(pair, "1", silent=True)
    assert_same_execute(pair, "2")
    assert_same_execute(pair, "3", store_history=False)
    assert_same_execute(pair, "print(4)", store_history=False)
    assert_same_execute(pair, "5")


def shell_request(k: Kernel, msg_type: str, content: dict) -> tuple[dict, list]:
    msg = k.kc.session.msg(msg_type, content)
    k.kc.shell_channel.send(msg)
    return k.collect(msg["header"]["msg_id"])


def test_history_completion_is_complete(pair):
    assert_same_execute(pair, "alpha_value = 1")
    assert_same_execute(pair, "alpha_value + 1")
    for msg_type, content in [
        ("history_request", {"hist_access_type": "tail", "n": 10, "raw": True,
                             "output": False}),
        ("history_request", {"hist_access_type": "range", "session": 0, "start": 1,
                             "stop": 10, "raw": True, "output": True}),
        ("is_complete_request", {"code": "for i in range(3):"}),
        ("is_complete_request", {"code": "x = 1"}),
        ("is_complete_request", {"code": "x = ("}),
        ("complete_request", {"code": "alpha_v", "cursor_pos": 7}),
    ]:
        (r1, o1), (r2, o2) = pair.both(lambda k: shell_request(k, msg_type, content))
        c1, c2 = r1["content"], r2["content"]
        if msg_type == "complete_request":
            assert c1["matches"] == c2["matches"]
            assert (c1["cursor_start"], c1["cursor_end"]) == (c2["cursor_start"],
                                                              c2["cursor_end"])
        else:
            assert c1 == c2, msg_type
        assert norm_iopub(o1) == norm_iopub(o2), msg_type


def test_inspect_text_only(pair):
    assert_same_execute(pair, "def documented():\n    'Says hello.'\n")
    for detail in (0, 1):
        content = {"code": "documented", "cursor_pos": 10, "detail_level": detail}
        (r1, o1), (r2, o2) = pair.both(lambda k: shell_request(k, "inspect_request", content))
        assert sorted(r1["content"]["data"]) == sorted(r2["content"]["data"]) == ["text/plain"]
        assert r1["content"]["found"] and r2["content"]["found"]
        assert norm_iopub(o1) == norm_iopub(o2)


def test_interrupt(pair):
    def run(k: Kernel) -> tuple[dict, list]:
        msg_id = k.kc.execute("import time\ntime.sleep(30)")
        time.sleep(1.5)
        k.km.interrupt_kernel()
        return k.collect(msg_id, timeout=20)

    (r1, o1), (r2, o2) = pair.both(run)
    assert r1["content"]["status"] == r2["content"]["status"] == "error"
    assert r1["content"]["ename"] == r2["content"]["ename"] == "KeyboardInterrupt"
    assert [t for t, _ in norm_iopub(o1)] == [t for t, _ in norm_iopub(o2)]


def test_notebook_detection(pair):
    """What libraries check to tell a notebook from a terminal (rich, pandas, tqdm.auto,
    plotly, click): the same answers as in ipykernel."""
    assert_same_execute(pair, "ip = get_ipython()\n"
                              "(type(ip).__name__, 'zmq' in str(type(ip)).lower(),\n"
                              " 'IPKernelApp' in ip.config, hasattr(ip, 'kernel'),\n"
                              " type(ip.kernel).__name__)")
    # The shell's settings a notebook or an extension may read (autoindent is off in a
    # notebook: ipykernel's shell fixes it so).
    assert_same_execute(pair, "ip = get_ipython()\n(ip.autoindent, ip.ast_node_interactivity,"
                              " sorted(ip.display_formatter.active_types), __name__)")
    assert_same_execute(pair, "import warnings\nwarnings.simplefilter('ignore')\n"
                              "from tqdm.auto import tqdm\ntqdm.__module__")
    # pandas: its interactive-session check and a DataFrame's rich result (HTML and text).
    assert_same_execute(pair, "import pandas as pd\n"
                              "print(pd.io.formats.console.in_interactive_session())\n"
                              "pd.DataFrame({'a': [1, 2], 'b': ['x', 'y']})")
    # The streams' class, by which click keeps a cell's colours (its module's name).
    assert_same_execute(pair, "import sys\n[(type(s).__module__, type(s).__name__, s.isatty(),"
                              " s.encoding) for s in (sys.stdout, sys.stderr)]")
    assert_same_execute(pair, "import click\nclick.secho('ok', fg='green')\n"
                              "click.echo(click.style('warn', fg='red'), err=True)")
    # The command line a notebook's argparse sees: ipykernel's ends in `-f <connection
    # file>`, which parse_known_args() leaves over and a bare parse_args() refuses.
    assert_same_execute(pair, "import os, sys\n(len(sys.argv), sys.argv[0], sys.argv[1], "
                              "os.path.basename(sys.argv[2]).startswith('kernel-'), "
                              "os.path.isfile(sys.argv[2]))")
    assert_same_execute(pair, "import argparse\np = argparse.ArgumentParser()\n"
                              "p.add_argument('--rows', type=int, default=3)\n"
                              "args, rest = p.parse_known_args()\n(args.rows, rest[:1], p.prog)")


def test_sys_path_and_imports_from_where_the_notebook_is(pair, tmp_path):
    """sys.path as ipykernel's (IPython's '' after the standard library, neither the
    kernel's start directory nor its own package: a notebook's module that bears a
    standard library module's name does not hide it), and after os.chdir() the notebook
    imports from its new directory."""
    (tmp_path / "nb_helper_mod.py").write_text("X = 42\n")
    assert_same_execute(pair, "import sys\nsys.path")
    assert_same_execute(pair, "import os\n[os.environ.get(k) for k in "
                              "('PYTHONPATH', 'PYTHONIOENCODING')]")
    assert_same_execute(pair, f"import os\nos.chdir({str(tmp_path)!r})\n"
                              "import nb_helper_mod\nnb_helper_mod.X")


def test_connection_file_session_name_and_connect_info():
    """What notebooks (and ipynbname) find their kernel and notebook by: the connection
    file from ipykernel.connect.get_connection_file(), the notebook's path in __session__
    (jupyter_server's JPY_SESSION_NAME). %connect_info prints the connection file's
    contents as ipykernel's does, but not its key."""
    env = {"JPY_SESSION_NAME": "/home/jovyan/work/analysis.ipynb"}
    pair = Pair(env)
    try:
        assert_same_execute(pair, "__session__")
        assert_same_execute(pair, "from ipykernel.connect import get_connection_file\n"
                                  "import sys\nget_connection_file() == sys.argv[2]")
        reply, out = pair.ours.execute("%connect_info")
        shown = "".join(m["content"].get("text", "") for m in out if m["msg_type"] == "stream")
        key = pair.ours.km.session.key.decode()
        assert key and key not in shown, shown
        assert f'"shell_port": {pair.ours.km.shell_port},' in shown, shown
        assert f"--existing {pair.ours.km.connection_file}" in shown, shown
        reply, out = pair.peer.execute("%connect_info")  # the peer's shows its key
        assert pair.peer.km.session.key.decode() in "".join(
            m["content"].get("text", "") for m in out if m["msg_type"] == "stream")
    finally:
        pair.shutdown()


def test_kernel_magics_store_and_environment(pair):
    """What a notebook has on ipykernel beside IPython: its KernelMagics (%less, %autosave,
    %clear), storemagic (%store), and the environment its shell sets for commands."""
    path = tempfile.mkdtemp(prefix="parity-less-") + "/note.txt"
    with open(path, "w") as f:
        f.write("paged text\n")
    assert_same_execute(pair, f"%less {path}")
    assert_same_execute(pair, "%autosave 60")
    assert_same_execute(pair, "%clear")
    assert_same_execute(pair, "kept = 41\n%store kept")
    assert_same_execute(pair, "del kept\n%store -r kept\nkept + 1")
    assert_same_execute(pair, "%store -z")
    assert_same_execute(pair, "import os\n[os.environ.get(v) for v in ('TERM', 'CLICOLOR', "
                              "'FORCE_COLOR', 'CLICOLOR_FORCE', 'PAGER', 'GIT_PAGER')]")


def run_with_stdin(k: Kernel, code: str, answers: list[str]) -> tuple:
    """Runs code with allow_stdin, answering each input_request in turn ("c" when none is
    left); returns the reply's status, the prompts and the cell's streams and errors."""
    mid = k.kc.execute(code, allow_stdin=True)
    out: list[dict] = []
    prompts: list[str] = []
    answers = list(answers)
    deadline = time.monotonic() + 60
    while not (out and out[-1]["msg_type"] == "status"
               and out[-1]["content"]["execution_state"] == "idle"):
        assert time.monotonic() < deadline, f"{code!r} did not finish: {prompts}"
        try:
            prompts.append(k.kc.get_stdin_msg(timeout=0.1)["content"]["prompt"])
            k.kc.input(answers.pop(0) if answers else "c")
        except Empty:
            pass
        try:
            while True:
                m = k.kc.get_iopub_msg(timeout=0.05)
                if m["parent_header"].get("msg_id") == mid:
                    out.append(m)
        except Empty:
            pass
    shown = [(t, re.sub(r"ipykernel_\d+", "ipykernel_N", c.get("text", c.get("evalue", ""))))
             for t, c in norm_iopub(out) if t in ("stream", "error")]
    return k.shell_reply(mid)["content"]["status"], prompts, shown


def test_pdb_breakpoint_and_debug_through_stdin(pair):
    """pdb.set_trace() is IPython's debugger at an `ipdb>` prompt over the stdin channel;
    breakpoint() does nothing while no debugger client is attached (debugpy's hook in
    ipykernel); %debug opens the last traceback's frame."""
    cases = [("import pdb\ny = 2\npdb.set_trace()\nprint('y', y)", ["y = 5", "c"]),
             ("x = 41\nbreakpoint()\nprint('after', x + 1)", ["p x", "c"]),
             ("def g(v):\n    return 1 / v\ng(0)", []),
             ("%debug", ["p v", "q"])]
    for code, answers in cases:
        ours, peer = pair.both(lambda k: run_with_stdin(k, code, answers))
        assert ours == peer, code
    assert ours[1] == ["ipdb> ", "ipdb> "]


def test_input_and_getpass_as_ipykernel(pair):
    """Without stdin (nbconvert, papermill) input() and getpass() raise ipykernel's own
    error, which a notebook may print or match; with it, getpass's prompt defaults to ''."""
    for code in ("input('name? ')", "import getpass\ngetpass.getpass()"):
        # (ipykernel's traceback ends in its own frame; the kernel's are never shown)
        ours, peer = pair.both(lambda k: [
            (c.get("status"), c.get("ename"), c.get("evalue"))
            for c in [k.execute(code, allow_stdin=False)[0]["content"]]])
        assert ours == peer, code
        assert ours[0][2].endswith("was called, but this frontend does not support input "
                                   "requests."), ours
    assert_same_execute(pair, "try:\n    input()\nexcept Exception as e:\n"
                              "    print(type(e).__name__, e)", allow_stdin=False)
    code = "import getpass\nprint(len(getpass.getpass()), input('again? '))"
    ours, peer = pair.both(lambda k: run_with_stdin(k, code, ["s3cret", "yes"]))
    assert ours == peer == ("ok", ["", "again? "], [("stream", "6 yes\n")])


def test_asyncio_loop_between_cells(pair):
    """An event loop runs, as ipykernel's does: asyncio.run and run_until_complete refuse
    in a cell, top-level await works, and a task started in one cell keeps running
    between cells."""
    assert_same_execute(pair, "import asyncio\nasync def two():\n    return 2\n"
                              "c = two()\ntry:\n    asyncio.run(c)\nexcept RuntimeError as e:\n"
                              "    print(type(e).__name__, e)\nc.close()\n"
                              "asyncio.get_running_loop() is asyncio.get_event_loop()")
    assert_same_execute(pair, "await asyncio.sleep(0.05)\nawait two()")
    assert_same_execute(pair, "ticks = []\nasync def tick():\n    while len(ticks) < 5:\n"
                              "        ticks.append(1)\n        await asyncio.sleep(0.05)\n"
                              "task = asyncio.ensure_future(tick())\nlen(ticks)")
    time.sleep(1.0)  # between cells: the task runs
    assert_same_execute(pair, "len(ticks), task.done()")
    assert_same_execute(pair, "import threading\n"
                              "f = asyncio.run_coroutine_threadsafe(two(), asyncio.get_event_loop())\n"
                              "print(type(f).__name__)")
    time.sleep(0.5)
    assert_same_execute(pair, "f.result(timeout=5)")
    assert_same_execute(pair, "c = two()\ntry:\n    asyncio.get_event_loop().run_until_complete(c)\n"
                              "except RuntimeError as e:\n    print(e)\nc.close()\n"
                              "asyncio.get_event_loop().is_running()")


def test_warning_names_the_cell_as_ipykernel_does(pair):
    """A warning names the cell's code as ipykernel's compiler does (a temporary file per
    cell, the directory per process): the same text but for the pid."""
    (r1, o1), (r2, o2) = execute_both(pair, "import warnings\nwarnings.warn('careful')")
    pid = re.compile(r"/ipykernel_\d+/")
    texts = [[pid.sub("/ipykernel_<pid>/", c["text"]) for t, c in norm_iopub(o)
              if t == "stream"] for o in (o1, o2)]
    assert texts[0] == texts[1] and "/ipykernel_<pid>/" in texts[0][0], texts


def test_interrupt_of_an_await_cell_leaves_the_loop_working(kernel):
    msg_id = kernel.kc.execute("import asyncio\nprint('waiting', flush=True)\n"
                               "await asyncio.sleep(60)")
    while True:
        m = kernel.kc.get_iopub_msg(timeout=30)
        if m["msg_type"] == "stream" and "waiting" in m["content"]["text"]:
            break
    kernel.km.interrupt_kernel()
    reply = kernel.shell_reply(msg_id, timeout=10)
    assert reply["content"]["ename"] == "KeyboardInterrupt"
    reply, out = kernel.execute("await asyncio.sleep(0.01)\n6 * 7")
    assert [m["content"]["data"]["text/plain"] for m in out
            if m["msg_type"] == "execute_result"] == ["42"]


def send_comm_msg(k: Kernel, comm_id: str, data: dict, buffers: list | None = None) -> list:
    """A client's comm_msg (with binary buffers if given); its iopub messages up to idle."""
    msg = k.kc.session.msg("comm_msg", {"comm_id": comm_id, "data": data})
    k.kc.session.send(k.kc.shell_channel.socket, msg, buffers=buffers or [])
    deadline = time.monotonic() + 30
    got: list[dict] = []
    while not (got and got[-1]["msg_type"] == "status"
               and got[-1]["content"]["execution_state"] == "idle"):
        m = k.kc.get_iopub_msg(timeout=max(0.1, deadline - time.monotonic()))
        if m["parent_header"].get("msg_id") == msg["header"]["msg_id"]:
            got.append(m)
    return got


def test_comms_both_directions(pair):
    """A comm opened by a cell (through the comm package, as ipywidgets does), listed by
    comm_info, messaged by the client (its handler's output goes to that message), closed
    by the cell."""
    code = ("import comm\n"
            "c = comm.create_comm(target_name='parity', data={'v': 1})\n"
            "c.on_msg(lambda m: print('got', m['content']['data']))")
    (r1, o1), (r2, o2) = execute_both(pair, code)
    assert norm_reply(r1["content"]) == norm_reply(r2["content"])

    def comm_ids(msgs: list[dict]) -> list[str]:
        return [m["content"]["comm_id"] for m in msgs if m["msg_type"] == "comm_open"]

    def strip_ids(msgs: list[dict]) -> list:
        return [(t, {k: v for k, v in c.items() if k != "comm_id"}) for t, c in norm_iopub(msgs)]

    assert strip_ids(o1) == strip_ids(o2)
    ids = comm_ids(o1), comm_ids(o2)
    assert len(ids[0]) == len(ids[1]) == 1

    (i1, _), (i2, _) = pair.both(lambda k: shell_request(k, "comm_info_request", {}))
    assert i1["content"] == {"status": "ok", "comms": {ids[0][0]: {"target_name": "parity"}}}
    assert list(i2["content"]["comms"].values()) == [{"target_name": "parity"}]

    outs = [send_comm_msg(k, cid, {"x": 2})
            for k, cid in ((pair.ours, ids[0][0]), (pair.peer, ids[1][0]))]
    assert norm_iopub(outs[0]) == norm_iopub(outs[1])
    assert stdout_of(outs[0]) == "got {'x': 2}\n"

    (r1, o1), (r2, o2) = execute_both(pair, "c.close()")
    assert strip_ids(o1) == strip_ids(o2)
    assert [m["content"]["comm_id"] for m in o1 if m["msg_type"] == "comm_close"] == ids[0]
    (i1, _), (i2, _) = pair.both(lambda k: shell_request(k, "comm_info_request", {}))
    assert i1["content"] == i2["content"] == {"status": "ok", "comms": {}}


def test_comm_binary_buffers_both_directions(pair):
    """Binary buffers (ipywidgets' Image, array widgets) go out with a comm message a cell
    sends and come in with a client's, byte for byte, as in ipykernel."""
    code = ("import comm\n"
            "c = comm.create_comm(target_name='bin', data={}, buffers=[b'open\\x00'])\n"
            "c.on_msg(lambda m: c.send({'n': len(m['buffers'])},\n"
            "                          buffers=[bytes(b)[::-1] for b in m['buffers']]))\n"
            "c.send({'k': 1}, buffers=[b'\\x00\\x01\\xff', memoryview(b'abc'), b''])")
    (r1, o1), (r2, o2) = execute_both(pair, code)
    assert r1["content"]["status"] == r2["content"]["status"] == "ok"

    def bufs(msgs: list[dict]) -> list[tuple[str, list[bytes]]]:
        return [(m["msg_type"], [bytes(b) for b in m.get("buffers", [])]) for m in msgs
                if m["msg_type"].startswith("comm_")]

    assert bufs(o1) == bufs(o2) == [("comm_open", [b"open\x00"]),
                                    ("comm_msg", [b"\x00\x01\xff", b"abc", b""])]
    ids = [next(m["content"]["comm_id"] for m in o if m["msg_type"] == "comm_open")
           for o in (o1, o2)]
    outs = [bufs(send_comm_msg(k, cid, {}, buffers=[b"\xfe\x00in", b"2"]))
            for k, cid in ((pair.ours, ids[0]), (pair.peer, ids[1]))]
    assert outs[0] == outs[1] == [("comm_msg", [b"ni\x00\xfe", b"2"])]


def test_widget_messages_carry_their_metadata(pair):
    """ipywidgets puts its protocol version in the comm messages' metadata, and JupyterLab's
    widget manager reads it (without it every widget stays "Loading widget..."): the same
    metadata and content as ipykernel's, and a client's update reaches the widget."""
    code = ("import ipywidgets as w\n"
            "s = w.IntSlider(value=3, description='n')\n"
            "s")
    (r1, o1), (r2, o2) = execute_both(pair, code)
    assert r1["content"]["status"] == r2["content"]["status"] == "ok"

    def comm_meta(msgs: list[dict]) -> list[tuple[str, dict, Any]]:
        return [(m["msg_type"], m["metadata"], m["content"]["data"].get("state", {})
                 .get("_model_name")) for m in msgs if m["msg_type"].startswith("comm_")]

    assert comm_meta(o1) == comm_meta(o2)
    assert comm_meta(o1) and all(meta.get("version") for _, meta, _ in comm_meta(o1))
    ids = [next(m["content"]["comm_id"] for m in o if m["msg_type"] == "comm_open"
                and m["content"]["data"]["state"].get("_model_name") == "IntSliderModel")
           for o in (o1, o2)]
    for k, cid in ((pair.ours, ids[0]), (pair.peer, ids[1])):
        send_comm_msg(k, cid, {"method": "update", "state": {"value": 7}, "buffer_paths": []})
    ours, peer = execute_both(pair, "s.value")
    assert ours[0]["content"]["status"] == "ok"
    assert norm_iopub(ours[1]) == norm_iopub(peer[1])
    assert [m["content"]["data"]["text/plain"] for m in ours[1]
            if m["msg_type"] == "execute_result"] == ["7"]


def stdout_of(msgs: list[dict]) -> str:
    return "".join(m["content"]["text"] for m in msgs
                   if m["msg_type"] == "stream" and m["content"]["name"] == "stdout")
