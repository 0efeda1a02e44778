"""Key handling of the kernel binary (docs/SECURITY.md): an empty key is refused unless
SPARKERNEL_ALLOW_EMPTY_KEY=1, a connection file other users can read is warned about, and
the key never reaches the log, not even at debug level, through bad messages or a damaged
connection file. The kernel is started directly from its kernelspec's argv."""
from __future__ import annotations

import json
import os
import pathlib
import subprocess
import tempfile
import time

import pytest
import zmq
from jupyter_client import BlockingKernelClient
from jupyter_client.connect import write_connection_file
from jupyter_client.session import Session

from kernels import build_spec_dir

pytestmark = pytest.mark.timeout(120)


def argv_for(conn: str) -> list[str]:
    spec = json.loads((build_spec_dir() / "kernel.json").read_text())
    return [conn if a == "{connection_file}" else a for a in spec["argv"]]


class Raw:
    """The kernel binary on a connection file of ours, its stderr in a file."""

    def __init__(self, tmp: pathlib.Path, key: bytes, mode: int = 0o600,
                 env: dict[str, str] | None = None) -> None:
        self.conn = str(tmp / "kernel-test.json")
        write_connection_file(self.conn, ip="127.0.0.1", key=key)
        os.chmod(self.conn, mode)
        self.key = key
        self.log_path = tmp / "kernel.log"
        full = dict(os.environ, SPARKERNEL_WARM="false")
        full.pop("SPARKERNEL_ALLOW_EMPTY_KEY", None)
        full.update(env or {})
        self._log = open(self.log_path, "w")
        self.proc = subprocess.Popen(argv_for(self.conn), env=full, stdout=self._log,
                                     stderr=subprocess.STDOUT)
        self.kc: BlockingKernelClient | None = None

    def client(self) -> BlockingKernelClient:
        kc = BlockingKernelClient(connection_file=self.conn)
        kc.load_connection_file()
        kc.start_channels()
        kc.wait_for_ready(timeout=60)
        self.kc = kc
        return kc

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> str:
        if self.kc is not None:
            if self.proc.poll() is None:
                self.kc.shutdown()
            self.kc.stop_channels()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._log.close()
        return self.log()


def pieces(key: bytes, n: int = 8) -> list[str]:
    k = key.decode()
    return [k[i:i + n] for i in range(0, len(k) - n + 1)]


def run_cell(kc: BlockingKernelClient, code: str) -> dict:
    msg_id = kc.execute(code)
    while True:
        reply = kc.get_shell_msg(timeout=60)
        if reply["parent_header"].get("msg_id") == msg_id:
            return reply


@pytest.mark.parametrize("allow", [None, "0", "true", "yes"])
def test_empty_key_refused(tmp_path, allow):
    env = {} if allow is None else {"SPARKERNEL_ALLOW_EMPTY_KEY": allow}
    k = Raw(tmp_path, b"", env=env)
    rc = k.proc.wait(timeout=20)
    log = k.stop()
    assert rc == 3, log
    assert "empty key" in log or "key is empty" in log, log
    assert "SPARKERNEL_ALLOW_EMPTY_KEY=1" in log, log


def test_empty_key_allowed_explicitly(tmp_path):
    k = Raw(tmp_path, b"", env={"SPARKERNEL_ALLOW_EMPTY_KEY": "1"})
    try:
        kc = k.client()
        reply = run_cell(kc, "6 * 7")
        assert reply["content"]["status"] == "ok"
        assert "empty key: messages are not signed" in k.log()
    finally:
        k.stop()


@pytest.mark.parametrize("mode,warned", [(0o600, False), (0o400, False), (0o640, True),
                                         (0o644, True), (0o606, True)])
def test_connection_file_permissions_checked(tmp_path, mode, warned):
    k = Raw(tmp_path, b"f" * 36, mode=mode)
    try:
        kc = k.client()
        kc.kernel_info()
        assert kc.get_shell_msg(timeout=10)["content"]["status"] == "ok"
        line = "is readable by other users; its key lets them run code as you"
        assert (line in k.log()) is warned, k.log()
        if warned:
            assert k.conn in k.log()
    finally:
        k.stop()


def test_key_never_logged(tmp_path):
    key = os.urandom(24).hex().encode()
    k = Raw(tmp_path, key, mode=0o644, env={"SPARKERNEL_LOG_LEVEL": "debug"})
    try:
        kc = k.client()
        assert run_cell(kc, "print('hi')")["content"]["status"] == "ok"
        # bad messages of every kind the kernel logs a reason for
        info = json.loads(pathlib.Path(k.conn).read_text())
        ctx = zmq.Context.instance()
        sock = ctx.socket(zmq.DEALER)
        sock.linger = 0
        sock.connect(f"tcp://127.0.0.1:{info['shell_port']}")
        good = Session(key=key, signature_scheme="hmac-sha256")
        wrong = Session(key=b"x" + key, signature_scheme="hmac-sha256")
        msg = good.msg("kernel_info_request", {})
        frames = good.serialize(msg)
        sock.send_multipart(frames)
        sock.send_multipart(frames)  # replayed
        sock.send_multipart(wrong.serialize(wrong.msg("execute_request", {"code": "1"})))
        sock.send_multipart([b"<IDS|MSG>", key])  # the key itself as a signature
        sock.send_multipart([b"<IDS|MSG>", key, b"{", b"{}", b"{}", b"{}"])
        sock.send_multipart([key])
        parts = [b"{" + key, b"{}", b"{}", b"{}"]
        sock.send_multipart([b"<IDS|MSG>", good.sign(parts), *parts])  # the key in bad JSON
        deadline = time.monotonic() + 10
        while k.log().count("dropped message") < 6 and time.monotonic() < deadline:
            time.sleep(0.1)
        sock.close()
        assert run_cell(kc, "1")["content"]["status"] == "ok"
    finally:
        log = k.stop()
    assert log.count("dropped message") == 6, log
    leaked = [p for p in pieces(key) if p in log]
    assert not leaked, f"the log holds pieces of the key: {leaked[:3]}"


def test_damaged_connection_file_does_not_log_the_key(tmp_path):
    """Regression: jansson's error quotes the token at the error, which in these files is
    (a piece of) the key; each of them showed it in the log before the fix."""
    key = "SECRETKEY" + os.urandom(5).hex()
    conn = tmp_path / "kernel-damaged.json"
    for i, text in enumerate([
            '{"key":"' + key,  # cut short while being written
            '{"transport": "tcp", "ip": "127.0.0.1", "key": ' + key + "}",  # quotes lost
            key]):
        conn.write_text(text)
        conn.chmod(0o600)
        r = subprocess.run(argv_for(str(conn)), capture_output=True, text=True, timeout=20,
                           env=dict(os.environ, SPARKERNEL_WARM="false"))
        assert r.returncode == 3, r
        assert str(conn) in r.stderr, r.stderr
        leaked = [p for p in pieces(key.encode(), 6) if p in r.stderr + r.stdout]
        assert not leaked, f"text {i}: the log shows the key: {r.stderr}"
