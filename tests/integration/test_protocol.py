"""The kernel driven by jupyter_client: bad messages, interrupts, executor deaths, stdin,
restart and stop_on_error. Each test starts a real kernel with a real executor."""
from __future__ import annotations

import os
import signal
import stat
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
        assert elapsed < 1.0, f"interrupt took {elapsed:.2f}s"
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
    # by os.write or a child process arrive through the captured pipe, in between.
    merged: list[list] = []
    for kind, text in kinds:
        if text in ("fd-one\n", "from-a-child\n"):
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
    slow.write_text(f"#!/bin/sh\nsleep 3\nexec {venv_python} \"$@\"\n")
    slow.chmod(slow.stat().st_mode | stat.S_IXUSR)
    ksm = variant_spec("sparkernel-slow", python=str(slow))
    k = Kernel("sparkernel-slow", ksm=ksm, wait_ready=False)
    try:
        t0 = time.monotonic()
        k.kc.kernel_info()
        reply = k.kc.get_shell_msg(timeout=10)
        assert reply["msg_type"] == "kernel_info_reply"
        assert time.monotonic() - t0 < 2.0
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


def test_terminal_frontend_loads_on_demand(kernel):
    """The executor defers IPython's terminal front end; asking for it still works."""
    _, out = kernel.execute("import sys; print('prompt_toolkit' in sys.modules)")
    assert stdout_text(out).strip() == "False"
    reply, out = kernel.execute(
        "from IPython.terminal.embed import InteractiveShellEmbed\nimport IPython\n"
        "print(InteractiveShellEmbed.__name__, callable(IPython.embed))")
    assert reply["content"]["status"] == "ok"
    assert stdout_text(out).strip() == "InteractiveShellEmbed True"
