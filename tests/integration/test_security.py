"""Key handling of the kernel binary (docs/SECURITY.md): an empty key is refused unless
SPARKERNEL_ALLOW_EMPTY_KEY=1, a connection file other users can read is warned about, and
the key never reaches the log, not even at debug level, through bad messages or a damaged
connection file. The kernel is started directly from its kernelspec's argv."""
from __future__ import annotations

import json
import os
import re
import pathlib
import subprocess
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


def test_secrets_stay_out_of_cells_and_kernel_json(tmp_path):
    """Issue 14, item 8: the server's token and the Spark secret are not in the executor's
    environment (%env would print them into the notebook), %spark config never echoes a
    secret, and render.py refuses to write one into the world-readable kernel.json."""
    import subprocess
    import sys

    from kernels import Kernel, outputs_of, stdout_text

    k = Kernel(env={"JUPYTER_TOKEN": "tok-123456", "SPARK_AUTHENTICATE_SECRET": "sec-654321",
                    "SPARKERNEL_SPARK_CONF": "spark.ssl.keyPassword=pw-777"})
    try:
        _, out = k.execute("import os\nprint(repr(dict(os.environ)))", timeout=30)
        env_text = stdout_text(out)
        assert "PATH" in env_text
        for secret in ("tok-123456", "sec-654321", "pw-777"):
            assert secret not in env_text
        reply, out = k.execute("%spark config spark.authenticate.secret=abc-999 "
                               "spark.my.token=tk-888 spark.executor.cores=1", timeout=30)
        assert reply["content"]["status"] == "ok"
        echoed = stdout_text(out)
        assert "spark.authenticate.secret = ****" in echoed and "abc-999" not in echoed
        assert "spark.my.token = ****" in echoed and "tk-888" not in echoed
        assert "spark.executor.cores = 1" in echoed
        _, out = k.execute("%spark config", timeout=30)
        shown = repr([m["content"] for m in outputs_of(out, "display_data")])
        assert "spark.authenticate.secret" in shown
        for secret in ("abc-999", "tk-888", "pw-777", "sec-654321"):
            assert secret not in shown
    finally:
        k.shutdown()

    render = pathlib.Path(__file__).resolve().parents[2] / "kernelspec" / "render.py"
    res = subprocess.run([sys.executable, str(render), "--bin", "/x", "--python", sys.executable,
                          "--pythonpath", "/x", "--out", str(tmp_path / "spec"),
                          "--setting", "SPARK_AUTHENTICATE_SECRET=s3cr3t"],
                         capture_output=True, text=True)
    assert res.returncode != 0 and "every local user can read" in res.stderr
    assert not (tmp_path / "spec" / "kernel.json").exists()


def test_no_output_shows_a_secret(tmp_path):
    """Issue 14, item 8: whatever a cell prints, displays, raises or returns that holds a
    secret the kernel was given (the JVM's own _SPARK_AUTH_SECRET, which the executor must
    keep for the session, the server's token, a secret setting of %spark config or of
    SPARKERNEL_SPARK_CONF) reaches the notebook with **** in its place."""
    from kernels import Kernel, outputs_of

    k = Kernel(env={"_SPARK_AUTH_SECRET": "jvm-secret-4242", "JUPYTER_TOKEN": "tok-abcdef12",
                    "SPARKERNEL_SPARK_CONF": "spark.ssl.keyPassword=pw-777777"})
    try:
        reply, out = k.execute(
            "import os\nfrom IPython.display import display\n"
            "s = os.environ['_SPARK_AUTH_SECRET']\nprint('env', s)\n"
            "t = 'tok-' + 'abcdef12'\ndisplay({'text/plain': 'shown ' + t}, raw=True)\n"
            "'result ' + 'pw-' + '777777'", timeout=30,
            user_expressions={"e": "s"})
        assert reply["content"]["status"] == "ok"
        seen = json.dumps([m["content"] for m in out]) + json.dumps(reply["content"])
        for secret in ("jvm-secret-4242", "tok-abcdef12", "pw-777777"):
            assert secret not in seen, seen
        assert "env ****" in seen and "shown ****" in seen and "result ****" in seen
        assert reply["content"]["user_expressions"]["e"]["data"]["text/plain"] == "'****'"
        k.execute("%spark config spark.hadoop.fs.s3a.secret.key=AKIA-s3-0099", timeout=30)
        reply, out = k.execute("raise ValueError('AKIA-s3-' + '0099')", timeout=30)
        assert reply["content"]["evalue"] == "****"
        assert [e["content"]["evalue"] for e in outputs_of(out, "error")] == ["****"]
        assert "AKIA-s3-0099" not in json.dumps([m["content"] for m in out])
        # A comm message's metadata (ipywidgets' version lives there) is output too.
        reply, out = k.execute("import comm\n"
                               "c = comm.create_comm(target_name='x', data={},\n"
                               "                     metadata={'k': 'AKIA-s3-' + '0099'})",
                               timeout=30)
        (opened,) = outputs_of(out, "comm_open")
        assert opened["metadata"] == {"k": "****"}
    finally:
        k.shutdown()


def test_log_files_in_a_private_directory(kernel, tmp_path):
    """Issue 14, item 7: the log4j configuration and Spark's log were predictable names in
    /tmp, written through symlinks. Now a 0700 directory of the executor's own, files 0600,
    written with O_EXCL | O_NOFOLLOW: a planted symlink is refused, its target untouched."""

    code = ("import os, re, stat\n"
            "uri = re.search(r'configurationFile=file:(\\S+)', "
            "os.environ['PYSPARK_SUBMIT_ARGS']).group(1)\n"
            "d = os.path.dirname(uri)\n"
            "print(uri)\n"
            "print(oct(stat.S_IMODE(os.stat(d).st_mode)), os.stat(d).st_uid == os.getuid())\n"
            "print(oct(stat.S_IMODE(os.lstat(uri).st_mode)))\n"
            "print(oct(stat.S_IMODE(os.lstat(os.path.join(d, 'spark.log')).st_mode)))\n")
    reply, out = kernel.execute(code, timeout=60)
    assert reply["content"]["status"] == "ok", out
    path, dir_mode, file_mode, log_mode = stdout_lines(out)
    assert not re.fullmatch(r"/tmp/sparkernel-\d+-log4j2.properties", path)
    assert dir_mode == "0o700 True"
    assert file_mode == "0o600" and log_mode == "0o600"

    # The writer itself, with a symlink planted where it writes.
    target = tmp_path / "victim"
    target.write_text("precious")
    planted = tmp_path / "planted"
    planted.symlink_to(target)
    code = ("import pathlib\nfrom sparkernel_executor import jvm\n"
            f"p = pathlib.Path({str(tmp_path)!r})\n"
            "jvm._write_private(p / 'planted', 'evil')\n"
            "print((p / 'planted').is_symlink(), oct((p / 'planted').lstat().st_mode & 0o777))\n")
    reply, out = kernel.execute(code, timeout=60)
    assert reply["content"]["status"] == "ok", out
    assert stdout_lines(out) == ["False 0o600"]
    assert (tmp_path / "planted").read_text() == "evil"
    assert target.read_text() == "precious"


def stdout_lines(out: list[dict]) -> list[str]:
    from kernels import stdout_text

    return stdout_text(out).strip().splitlines()
