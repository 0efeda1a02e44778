"""The kernel driven by jupyter_client: bad messages, interrupts, executor deaths, stdin,
restart and stop_on_error. Each test starts a real kernel with a real executor."""
from __future__ import annotations

import os
import signal
import stat
import threading
import time

import pytest
import zmq
from jupyter_client.session import Session

from kernels import Kernel, outputs_of, stdout_text, variant_spec

pytestmark = pytest.mark.timeout(180)


def raw_shell_socket(k: Kernel) -> tuple[zmq.Socket, Session]:
    """A DEALER on the kernel's shell port and a Session signing with its key."""
    info = k.km.get_connection_info()
    ctx = zmq.Context.instance()
    sock = ctx.socket(zmq.DEALER)
    sock.linger = 0
    sock.connect(f"{info['transport']}://{info['ip']}:{info['shell_port']}")
    return sock, Session(key=info["key"], signature_scheme="hmac-sha256")


def recv_reply(sock: zmq.Socket, session: Session, timeout_ms: int = 10000) -> dict | None:
    if not sock.poll(timeout_ms):
        return None
    frames = sock.recv_multipart()
    _, msg = session.feed_identities(frames)
    return session.deserialize(msg)


def test_forged_message_dropped_and_kernel_answers(kernel):
    sock, session = raw_shell_socket(kernel)
    msg = session.msg("execute_request", {"code": "leaked = 1", "silent": False})
    frames = session.serialize(msg)
    delim = frames.index(b"<IDS|MSG>")
    frames[delim + 1] = b"0" * 64  # a signature the key did not make
    sock.send_multipart(frames)
    assert recv_reply(sock, session, 1500) is None
    # malformed too: no delimiter, too few frames, a non-JSON header
    sock.send_multipart([b"garbage"])
    sock.send_multipart([b"<IDS|MSG>", b"sig"])
    bad = session.serialize(session.msg("kernel_info_request", {}))
    bad[delim + 2] = b"{not json"
    bad[delim + 1] = session.sign(bad[delim + 2:delim + 6])
    sock.send_multipart(bad)
    assert recv_reply(sock, session, 1000) is None
    reply, _ = kernel.execute("'leaked' in dir()")
    assert reply["content"]["status"] == "ok"
    res = outputs_of(_[1:] if False else kernel.execute("'leaked' in dir()")[1], "execute_result")
    assert res[0]["content"]["data"]["text/plain"] == "False"
    log = kernel.log()
    assert "dropped message on shell: bad signature" in log
    assert "dropped message on shell: no <IDS|MSG> delimiter" in log
    assert "dropped message on shell: too few frames" in log
    assert "dropped message on shell: invalid JSON" in log
    sock.close()


def test_replayed_message_rejected(kernel):
    sock, session = raw_shell_socket(kernel)
    frames = session.serialize(session.msg("execute_request",
                                           {"code": "counter = globals().get('counter', 0) + 1",
                                            "silent": False}))
    sock.send_multipart(frames)
    first = recv_reply(sock, session)
    assert first is not None and first["content"]["status"] == "ok"
    sock.send_multipart(frames)  # the very same signed message again
    assert recv_reply(sock, session, 1500) is None
    _, out = kernel.execute("counter")
    assert outputs_of(out, "execute_result")[0]["content"]["data"]["text/plain"] == "1"
    assert "replayed signature" in kernel.log()
    sock.close()


@pytest.mark.parametrize("mode", ["message", "signal"])
def test_interrupt_long_sleep(mode):
    ksm = variant_spec("sparkernel-int", interrupt_mode=mode)
    k = Kernel("sparkernel-int", ksm=ksm)
    try:
        msg_id = k.kc.execute("import time\nprint('sleeping', flush=True)\ntime.sleep(60)")
        while True:  # wait until the cell is really running
            m = k.kc.get_iopub_msg(timeout=30)
            if m["msg_type"] == "stream" and "sleeping" in m["content"]["text"]:
                break
        t0 = time.monotonic()
        k.km.interrupt_kernel()
        reply = k.shell_reply(msg_id, timeout=10)
        elapsed = time.monotonic() - t0
        assert reply["content"]["status"] == "error"
        assert reply["content"]["ename"] == "KeyboardInterrupt"
        assert elapsed < 5.0, f"interrupt took {elapsed:.2f}s"  # a lost one waits 60 s
        reply, out = k.execute("40 + 2")
        results = outputs_of(out, "execute_result")
        assert results and results[0]["content"]["data"]["text/plain"] == "42", (reply, out)
    finally:
        k.shutdown()


def test_executor_sigkill_mid_cell(kernel):
    _, out = kernel.execute("import os; print(os.getpid())")
    pid = int(stdout_text(out).strip())
    msg_id = kernel.kc.execute("import time\nprint('running', flush=True)\ntime.sleep(30)")
    while True:
        m = kernel.kc.get_iopub_msg(timeout=30)
        if m["msg_type"] == "stream" and "running" in m["content"]["text"]:
            break
    os.kill(pid, signal.SIGKILL)
    reply, out = kernel.collect(msg_id, timeout=15)
    assert reply["content"]["status"] == "error"
    assert reply["content"]["ename"] == "ExecutorDied"
    errors = outputs_of(out, "error")
    assert len(errors) == 1
    assert "SIGKILL" in errors[0]["content"]["evalue"]
    # the kernel still answers at once, and the next cell gets a fresh executor
    kernel.kc.kernel_info()
    assert kernel.kc.get_shell_msg(timeout=5)["msg_type"] == "kernel_info_reply"
    reply, out = kernel.execute("import os; print(os.getpid()); 'x' in dir()")
    assert reply["content"]["status"] == "ok"
    assert int(stdout_text(out).split()[0]) != pid
    assert outputs_of(out, "execute_result")[0]["content"]["data"]["text/plain"] == "False"


def test_input_round_trip(kernel):
    msg_id = kernel.kc.execute("name = input('your name? ')\nprint('hello', name)",
                               allow_stdin=True)
    req = kernel.kc.get_stdin_msg(timeout=30)
    assert req["msg_type"] == "input_request"
    assert req["content"]["prompt"] == "your name? "
    assert req["content"]["password"] is False
    kernel.kc.input("spark")
    reply, out = kernel.collect(msg_id)
    assert reply["content"]["status"] == "ok"
    assert "hello spark" in stdout_text(out)


def test_input_refused_without_stdin(kernel):
    reply, out = kernel.execute("input('x')", allow_stdin=False)
    assert reply["content"]["status"] == "error"
    assert reply["content"]["ename"] == "StdinNotImplementedError"
    assert len(outputs_of(out, "error")) == 1


def test_shutdown_with_and_without_restart():
    k = Kernel()
    try:
        k.execute("marker = 7")
        msg_id = k.kc.shutdown(restart=True)
        reply = k.kc.get_control_msg(timeout=10)
        assert reply["parent_header"]["msg_id"] == msg_id
        assert reply["content"] == {"status": "ok", "restart": True}
        # The kernel exits after its reply. restart_kernel(now=False) would send a second
        # shutdown_request, which the manager's control socket (linger 100 ms) can still
        # deliver to the new kernel once it binds the same port: the new kernel would then
        # shut down too. The request was ours, so restart without another.
        k.km.provisioner.process.wait(15)
        k.km.restart_kernel(now=True)
        k.kc.wait_for_ready(timeout=60)
        reply, out = k.execute("'marker' in dir()")
        assert outputs_of(out, "execute_result")[0]["content"]["data"]["text/plain"] == "False"
        proc = k.km.provisioner.process
        msg_id = k.kc.shutdown(restart=False)
        reply = k.kc.get_control_msg(timeout=10)
        assert reply["content"] == {"status": "ok", "restart": False}
        proc.wait(timeout=15)  # the process really exits, executor included
        assert proc.returncode == 0
    finally:
        k.shutdown()


def test_stop_on_error_aborts_queued(kernel):
    first = kernel.kc.execute("import time; time.sleep(0.3); raise ValueError('boom')")
    second = kernel.kc.execute("after = 1")
    third = kernel.kc.execute("after = 2")
    replies = [kernel.shell_reply(i) for i in (first, second, third)]
    assert [r["content"]["status"] for r in replies] == ["error", "aborted", "aborted"]
    reply, out = kernel.execute("'after' in dir()")
    assert outputs_of(out, "execute_result")[0]["content"]["data"]["text/plain"] == "False"
    # stop_on_error=False: the queue goes on
    first = kernel.kc.execute("raise ValueError('boom')", stop_on_error=False)
    second = kernel.kc.execute("after = 3")
    replies = [kernel.shell_reply(i) for i in (first, second)]
    assert [r["content"]["status"] for r in replies] == ["error", "ok"]


def test_busy_idle_and_counter(kernel):
    reply, out = kernel.execute("1")
    n = reply["content"]["execution_count"]
    assert out[0]["msg_type"] == "status" and out[0]["content"]["execution_state"] == "busy"
    assert out[-1]["content"]["execution_state"] == "idle"
    reply, out = kernel.execute("2", silent=True)
    assert not outputs_of(out, "execute_input") and not outputs_of(out, "execute_result")
    reply, _ = kernel.execute("3", store_history=False)
    assert reply["content"]["execution_count"] == n
    reply, _ = kernel.execute("4")
    assert reply["content"]["execution_count"] == n + 1
    # control requests get busy/idle too
    msg_id = kernel.kc.session.send(kernel.kc.control_channel.socket,
                                    kernel.kc.session.msg("kernel_info_request", {}))["header"]["msg_id"]
    states = []
    while len(states) < 2:
        m = kernel.kc.get_iopub_msg(timeout=10)
        if m["parent_header"].get("msg_id") == msg_id and m["msg_type"] == "status":
            states.append(m["content"]["execution_state"])
    assert states == ["busy", "idle"]


def test_user_expressions_and_display_update(kernel):
    reply, _ = kernel.execute("x = 6", user_expressions={"double": "x * 2", "bad": "nope"})
    ue = reply["content"]["user_expressions"]
    assert ue["double"]["status"] == "ok" and ue["double"]["data"]["text/plain"] == "12"
    assert ue["bad"]["status"] == "error"
    reply, out = kernel.execute(
        "from IPython.display import display\n"
        "h = display('first', display_id=True)\nh.update('second')")
    assert outputs_of(out, "display_data")[0]["content"]["transient"]["display_id"]
    upd = outputs_of(out, "update_display_data")
    assert upd and upd[0]["content"]["data"]["text/plain"] == "'second'"


def test_output_order_and_fd_capture(kernel):
    code = ("import os, sys\nfrom IPython.display import display\n"
            "print('a')\ndisplay('b')\nprint('c')\n"
            "os.write(1, b'fd-one\\n')\nos.system('echo from-a-child')\n"
            "sys.stdout.write('d\\n')")
    reply, out = kernel.execute(code)
    kinds = [(m["msg_type"], m["content"].get("text") or m["content"].get("data", {}).get("text/plain"))
             for m in out if m["msg_type"] in ("stream", "display_data")]
    # Python-level output and displays keep their order exactly; bytes written to fd 1
    # by os.write or a child process arrive through the captured pipe, anywhere in between,
    # and may share a stream message with Python's text (seen at a load of 4: the pipe's
    # bytes read in the same turn as the frame of 'a' and published with it).
    merged: list[list] = []
    for kind, text in kinds:
        if kind == "stream":
            text = text.replace("fd-one\n", "").replace("from-a-child\n", "")
            if not text:
                continue
        if merged and kind == "stream" and merged[-1][0] == "stream":
            merged[-1][1] += text
        else:
            merged.append([kind, text])
    assert merged == [["stream", "a\n"], ["display_data", "'b'"], ["stream", "c\nd\n"]]
    text = stdout_text(out)
    assert "fd-one" in text and "from-a-child" in text and text.rstrip().endswith("d")


def test_kernel_info_before_executor_ready(tmp_path):
    slow = tmp_path / "slow-python"
    real = os.path.realpath(os.path.join(os.path.dirname(__file__), "../../.venv/bin/python"))
    venv_python = os.environ.get("SPARKERNEL_TEST_PYTHON", real)
    slow.write_text(f"#!/bin/sh\nsleep 8\nexec {venv_python} \"$@\"\n")
    slow.chmod(slow.stat().st_mode | stat.S_IXUSR)
    ksm = variant_spec("sparkernel-slow", python=str(slow))
    k = Kernel("sparkernel-slow", ksm=ksm, wait_ready=False)
    try:
        t0 = time.monotonic()
        k.kc.kernel_info()
        reply = k.kc.get_shell_msg(timeout=10)
        assert reply["msg_type"] == "kernel_info_reply"
        assert time.monotonic() - t0 < 5.0  # before the executor (8 s)
        assert reply["content"]["language_info"]["name"] == "python"
        assert reply["content"]["implementation"] == "sparkernel"
        reply, out = k.execute("6 * 7", timeout=30)  # queued until the executor is up
        assert outputs_of(out, "execute_result")[0]["content"]["data"]["text/plain"] == "42"
    finally:
        k.shutdown()


def test_executor_that_cannot_start(tmp_path):
    ksm = variant_spec("sparkernel-broken", python=str(tmp_path / "no-such-python"))
    k = Kernel("sparkernel-broken", ksm=ksm, wait_ready=False)
    try:
        reply, out = k.execute("1", timeout=30)
        assert reply["content"]["status"] == "error"
        assert reply["content"]["ename"] == "ExecutorStartError"
        err = outputs_of(out, "error")
        assert len(err) == 1 and "could not start" in err[0]["content"]["evalue"]
        k.kc.kernel_info()
        assert k.kc.get_shell_msg(timeout=5)["content"]["status"] == "ok"
    finally:
        k.shutdown()


def test_executor_start_error_with_non_ascii_stderr(tmp_path):
    """Issue 14, item 4: the start-up stderr tail is cut inside a character (3,000 bytes of
    é, odd offset at the cut): the ExecutorStartError reply still has its status and text."""
    script = tmp_path / "python"
    script.write_text("#!/bin/bash\ns=$(printf '\u00e9%.0s' $(seq 1500))\n"
                      "printf '%s' \"$s\" >&2\nsleep 1\nexit 3\n")
    script.chmod(0o755)
    ksm = variant_spec("sparkernel-noisy", python=str(script))
    k = Kernel("sparkernel-noisy", ksm=ksm, wait_ready=False)
    try:
        time.sleep(3)  # the executor has failed before the cell: its tail is kept
        reply, out = k.execute("1", timeout=30)
        assert reply["content"]["status"] == "error"
        assert reply["content"]["ename"] == "ExecutorStartError"
        evalue = reply["content"]["evalue"]
        assert "exited with status 3" in evalue and "\u00e9\u00e9\u00e9" in evalue
        assert "\ufffd" not in evalue
        assert [e["content"]["ename"] for e in outputs_of(out, "error")] == \
            ["ExecutorStartError"]
    finally:
        k.shutdown()


def test_terminal_frontend_loads_on_demand(kernel):
    """The executor defers IPython's terminal front end; asking for it still works."""
    _, out = kernel.execute("import sys; print('prompt_toolkit' in sys.modules)")
    assert stdout_text(out).strip() == "False"
    reply, out = kernel.execute(
        "from IPython.terminal.embed import InteractiveShellEmbed\nimport IPython\n"
        "print(InteractiveShellEmbed.__name__, callable(IPython.embed))")
    assert reply["content"]["status"] == "ok"
    assert stdout_text(out).strip() == "InteractiveShellEmbed True"


def test_iopub_welcome_is_first_message_while_kernel_publishes(kernel):
    """Protocol 5.5: iopub_welcome is the first message every subscriber gets. While another
    client keeps the kernel publishing (busy/idle of a kernel_info flood), new subscribers
    connect one after another; each must see its welcome before anything else."""
    info = kernel.km.get_connection_info()
    sock, session = raw_shell_socket(kernel)
    ctx = zmq.Context.instance()

    stop = threading.Event()

    def flood() -> None:
        while not stop.is_set():
            for _ in range(50):
                sock.send_multipart(session.serialize(session.msg("kernel_info_request", {})))
            while sock.poll(0):
                sock.recv_multipart()
            time.sleep(0.001)

    flooder = threading.Thread(target=flood, daemon=True)
    flooder.start()
    firsts = []
    try:
        for _ in range(40):
            sub = ctx.socket(zmq.SUB)
            sub.linger = 0
            sub.setsockopt(zmq.SUBSCRIBE, b"")
            sub.connect(f"{info['transport']}://{info['ip']}:{info['iopub_port']}")
            assert sub.poll(10000), "no iopub message within 10 s"
            _, msg = session.feed_identities(sub.recv_multipart())
            firsts.append(session.deserialize(msg)["header"]["msg_type"])
            sub.close()
    finally:
        stop.set()
        flooder.join(10)
        sock.close()
    assert firsts == ["iopub_welcome"] * len(firsts), firsts


def test_executor_inherits_only_its_own_descriptors(kernel):
    """Issue 14, item 6: the kernel's working copies of the pipes (lifted above fd 10) and
    its /dev/null descriptor were inherited by Python and everything it starts."""
    code = ("import os\n"
            "def _t(fd):\n"
            "    try:\n        return os.readlink(f'/proc/self/fd/{fd}')\n"
            "    except OSError:\n        return None\n"
            "_fds = [int(f) for f in os.listdir('/proc/self/fd')]\n"
            "print(sorted(f for f in _fds if _t(f) in (_t(0), _t(3), _t(4))))")
    reply, out = kernel.execute(code, timeout=30)
    assert reply["content"]["status"] == "ok"
    assert stdout_text(out).strip() == "[0, 3, 4]"


def test_heartbeat_refuses_a_big_message(kernel):
    """Issue 14, item 6: a ping above the heartbeat's limit is not echoed (its sender is cut
    off); the client's own heartbeat goes on."""
    info = kernel.km.get_connection_info()
    ctx = zmq.Context.instance()
    s = ctx.socket(zmq.REQ)
    s.setsockopt(zmq.LINGER, 0)
    s.connect(f"tcp://{info['ip']}:{info['hb_port']}")
    try:
        s.send(b"x" * 100_000)
        assert s.poll(2000) == 0, "a 100 KB ping was echoed"
    finally:
        s.close()
    s = ctx.socket(zmq.REQ)
    s.setsockopt(zmq.LINGER, 0)
    s.connect(f"tcp://{info['ip']}:{info['hb_port']}")
    try:
        s.send(b"ping")
        assert s.poll(5000) and s.recv() == b"ping"
    finally:
        s.close()
    reply, _ = kernel.execute("1", timeout=30)
    assert reply["content"]["status"] == "ok"


LAUNCHER = r"""
import sys, time
from jupyter_client import KernelManager
km = KernelManager(kernel_name="sparkernel")
km.start_kernel()
kc = km.client()
kc.start_channels()
kc.wait_for_ready(timeout=60)
kc.execute("while True:\n    print('x' * 200)")
while True:
    msg = kc.get_iopub_msg(timeout=30)
    if msg["msg_type"] == "stream":
        break
print(km.provisioner.pid, flush=True)
time.sleep(600)
"""


def test_orphaned_kernel_exits_while_a_cell_prints(tmp_path):
    """Issue 14, item 3: the client that started the kernel dies while a cell prints without
    a pause; the loop never times out, and the orphan check must still run."""
    import subprocess
    import sys

    import psutil

    launcher = subprocess.Popen([sys.executable, "-c", LAUNCHER], stdout=subprocess.PIPE,
                                text=True)
    kernel_pid = None
    try:
        kernel_pid = int(launcher.stdout.readline())
        kernel = psutil.Process(kernel_pid)
        launcher.kill()
        launcher.wait()
        kernel.wait(timeout=20)
    finally:
        if launcher.poll() is None:
            launcher.kill()
        if kernel_pid is not None and psutil.pid_exists(kernel_pid):
            os.kill(kernel_pid, signal.SIGKILL)


def test_executor_that_does_not_read_never_blocks_the_loop(kernel):
    """Issue 14, item 3: the command pipe is non-blocking, with what it does not take kept
    for later. A stopped executor and a cell of 2 MB (more than the pipe holds): the kernel
    still answers kernel_info at once, and the cell runs once the executor goes on."""
    _, out = kernel.execute("import os; os.getpid()", timeout=30)
    pid = int(outputs_of(out, "execute_result")[0]["content"]["data"]["text/plain"])
    os.kill(pid, signal.SIGSTOP)
    try:
        code = "x = '" + "a" * (2 << 20) + "'\nlen(x)"
        msg_id = kernel.kc.execute(code)
        time.sleep(1)
        t0 = time.monotonic()
        kernel.kc.kernel_info()
        reply = kernel.kc.get_shell_msg(timeout=10)
        while reply["msg_type"] != "kernel_info_reply":
            reply = kernel.kc.get_shell_msg(timeout=10)
        assert time.monotonic() - t0 < 5
    finally:
        os.kill(pid, signal.SIGCONT)
    reply, out = kernel.collect(msg_id, timeout=60)
    assert reply["content"]["status"] == "ok"
    assert outputs_of(out, "execute_result")[0]["content"]["data"]["text/plain"] == str(2 << 20)
