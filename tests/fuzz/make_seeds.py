"""Writes the seed corpora of the fuzz harnesses (tests/fuzz/fuzz_*.c) from the real producers
of the bytes each one parses:

  wire/        messages built by jupyter_client's KernelClient and signed by its Session with
               the harness's key, in fuzz_wire.c's encoding (an option byte, then the frames
               separated by 0xff "SEP")
  connection/  files written by jupyter_client.connect.write_connection_file
  frame/       event streams recorded from the executor (driver/python/sparkernel_executor) run
               on pipes, with fuzz_frame.c's 5-byte header; commands go to it through its own
               frames.encode
  master/      the master /json/ fixtures of tests/unit/data/master-json/
  magics/      cells with %spark lines

Run from the repository root with the project's interpreter (no Spark is started):
  .venv/bin/python tests/fuzz/make_seeds.py
The output is deterministic except for frame/ (the executor reports its pid and timings)."""
from __future__ import annotations

import datetime
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from jupyter_client.client import KernelClient
from jupyter_client.connect import write_connection_file
from jupyter_client.session import Session

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT / "tests" / "fuzz" / "corpus"
PYDIR = ROOT / "driver" / "python"

KEY = b"9f1c2d3e-4b5a-4c6d-8e7f-0a1b2c3d4e5f"  # FUZZ_KEY in fuzz_wire.c
SEP = b"\xffSEP"  # FUZZ_SEP in fuzz_wire.c
OPT_UNSIGNED = 2
DATE = datetime.datetime(2026, 11, 25, 12, 0, 0, 123456, tzinfo=datetime.timezone.utc)


def fresh(name: str) -> Path:
    d = CORPUS / name
    if d.exists():
        shutil.rmtree(d)
    d.mkdir(parents=True)
    return d


class Capture:
    """Stands in for a KernelClient channel: keeps what the client sends."""

    def __init__(self) -> None:
        self.sent: list[dict] = []

    def send(self, msg: dict) -> None:
        self.sent.append(msg)

    def is_alive(self) -> bool:
        return True


def client_messages(session: Session) -> list[tuple[str, dict]]:
    """The messages a notebook front end sends, built by jupyter_client's own client."""
    kc = KernelClient(session=session)
    shell, control, stdin = Capture(), Capture(), Capture()
    kc._shell_channel, kc._control_channel, kc._stdin_channel = shell, control, stdin
    kc.execute("x = 1\nprint(x)")
    kc.execute("%spark config spark.executor.memory=2g\nspark.range(10).count()",
               user_expressions={"n": "x + 1"}, allow_stdin=False)
    kc.execute("", silent=True, store_history=False)
    kc.kernel_info()
    kc.complete("import o", 8)
    kc.inspect("print", 5, detail_level=1)
    kc.history(hist_access_type="tail", n=10, output=False, raw=True)
    kc.comm_info(target_name="jupyter.widget")
    kc.is_complete("for i in range(3):")
    kc.shutdown(restart=True)
    kc.input("yes")
    msgs = shell.sent + control.sent + stdin.sent
    # interrupt_request comes from KernelManager.interrupt_kernel (interrupt_mode "message").
    msgs.append(session.msg("interrupt_request", content={}))
    out = []
    for i, msg in enumerate(msgs):
        # Fixed ids and dates, so the seeds do not change from run to run.
        msg["header"]["msg_id"] = msg["msg_id"] = f"{session.session}_{i}"
        msg["header"]["date"] = DATE
        if msg["msg_type"] == "input_reply":
            msg["parent_header"] = dict(msgs[0]["header"], msg_type="input_request")
        out.append((msg["msg_type"], msg))
    return out


def write_wire() -> None:
    d = fresh("wire")
    session = Session(key=KEY, session="f0a1b2c3-d4e5-4f60-8a71-b2c3d4e5f6a7", username="fuzz")
    # A DEALER's identity as the kernel's ROUTER sees it: the client sets it to the session.
    ident = [session.bsession]
    seen: dict[str, int] = {}
    for msg_type, msg in client_messages(session):
        frames = session.serialize(msg, ident=ident)
        n = seen[msg_type] = seen.get(msg_type, 0) + 1
        name = msg_type if n == 1 else f"{msg_type}-{n}"
        encode(d / name, 0, frames)
    # Two identities (a proxy in between) and binary buffers after the content.
    comm = session.msg("comm_msg", content={"comm_id": "c0mm", "data": {"method": "update"}})
    comm["header"]["msg_id"] = comm["msg_id"] = "comm-1"
    comm["header"]["date"] = DATE
    msg = session.serialize(comm, ident=[b"\x00\x80\x00\x00\x29", session.bsession])
    encode(d / "comm_msg-buffers", 0, msg + [b"\x00\x01\x02\x03", b""])
    # An unsigned message, as from a kernel started with an empty key.
    unsigned = Session(key=b"", session=session.session, username="fuzz")
    msg = unsigned.msg("kernel_info_request", content={})
    msg["header"]["msg_id"] = msg["msg_id"] = "unsigned-1"
    msg["header"]["date"] = DATE
    encode(d / "kernel_info_request-unsigned", OPT_UNSIGNED, unsigned.serialize(msg, ident=ident))


def encode(path: Path, option: int, frames: list[bytes]) -> None:
    for f in frames:
        assert SEP not in f, "a frame holds the separator"
    path.write_bytes(bytes([option]) + SEP.join(frames))


def write_connection() -> None:
    d = fresh("connection")
    cases = {
        "tcp": dict(ip="127.0.0.1", key=KEY, transport="tcp"),
        "tcp-all-interfaces": dict(ip="0.0.0.0", key=b"a0436f6c-1916-498b-8eb9-e81ab9368e84",
                                   transport="tcp", kernel_name="sparkernel"),
        "ipc": dict(ip="/tmp/sparkernel-kernel-ipc", key=KEY, transport="ipc"),
        "empty-key": dict(ip="127.0.0.1", key=b"", transport="tcp"),
        "sha512": dict(ip="127.0.0.1", key=KEY, transport="tcp", signature_scheme="hmac-sha512"),
    }
    with tempfile.TemporaryDirectory() as tmp:
        for i, (name, kw) in enumerate(cases.items()):
            base = 50000 + 10 * i
            fname = os.path.join(tmp, f"kernel-{name}.json")
            write_connection_file(fname, shell_port=base + 1, iopub_port=base + 2,
                                  stdin_port=base + 3, hb_port=base + 4, control_port=base + 5,
                                  **kw)
            shutil.copy(fname, d / name)


def executor_stream(commands: list[dict]) -> bytes:
    """Runs the executor on two pipes, sends the commands, closes its command pipe and
    returns every byte it wrote on its event pipe."""
    sys.path.insert(0, str(PYDIR))
    from sparkernel_executor.frames import encode as frame_encode

    cmd_r, cmd_w = os.pipe()
    ev_r, ev_w = os.pipe()
    env = dict(os.environ, PYTHONPATH=str(PYDIR), SPARKERNEL_CMD_FD=str(cmd_r),
               SPARKERNEL_EVENT_FD=str(ev_w))
    proc = subprocess.Popen([sys.executable, "-m", "sparkernel_executor"], env=env,
                            pass_fds=(cmd_r, ev_w), cwd=tempfile.gettempdir())
    os.close(cmd_r)
    os.close(ev_w)
    with os.fdopen(cmd_w, "wb") as w:
        for c in commands:
            w.write(frame_encode(c))
    chunks = []
    with os.fdopen(ev_r, "rb") as r:
        while chunk := r.read(1 << 16):
            chunks.append(chunk)
    proc.wait(timeout=60)
    return b"".join(chunks)


def split_frames(stream: bytes) -> list[bytes]:
    out, off = [], 0
    while off + 4 <= len(stream):
        n = int.from_bytes(stream[off:off + 4], "big")
        out.append(stream[off:off + 4 + n])
        off += 4 + n
    return out


def write_frame() -> None:
    d = fresh("frame")

    def execute(code: str, count: int) -> dict:
        return {"type": "execute", "code": code, "silent": False, "store_history": True,
                "user_expressions": {}, "allow_stdin": False, "execution_count": count}

    stream = executor_stream([
        execute("print('hello')\n1 + 1", 1),
        execute("from IPython.display import HTML, display\n"
                "display(HTML('<b>h\u00e9llo</b>'), metadata={'isolated': True})", 2),
        execute("import sys\nsys.stderr.write('warn\\n')\nraise ValueError('bad \u2603')", 3),
        execute("float('nan')", 4),
        execute('raise ValueError("a\\0b")', 5),
        execute('print("x\\0y")\n"m\\0n"', 6),
        {"type": "sync", "seq": 1},
        {"type": "complete", "code": "import o", "cursor_pos": 8},
        {"type": "inspect", "code": "len", "cursor_pos": 3, "detail_level": 0},
        {"type": "is_complete", "code": "for i in range(3):"},
    ])
    frames = split_frames(stream)
    assert len(frames) >= 8, f"the executor sent {len(frames)} frames"
    # Header: frame limit (default), then chunk sizes 1, 7, 64 and 256.
    (d / "session").write_bytes(bytes([0, 0, 6, 63, 255]) + stream)
    (d / "session-bytewise").write_bytes(bytes([0, 0, 0, 0, 0]) + stream)
    (d / "session-limit-256").write_bytes(bytes([2, 3, 200, 17, 99]) + stream)
    for i, f in enumerate(frames[:12]):
        (d / f"event-{i:02d}").write_bytes(bytes([0, 2, 2, 2, 2]) + f)
    write_hostile_frames(d, frames)


def write_hostile_frames(d: Path, frames: list[bytes]) -> None:
    """Streams the executor should never send, between real frames: raw NUL bytes, invalid
    UTF-8, a lone surrogate, a frame cut short, lengths above the limit."""
    def raw(body: bytes) -> bytes:
        return len(body).to_bytes(4, "big") + body

    good = frames[0]
    (d / "hostile-nul").write_bytes(bytes([0, 3, 5, 0, 9]) + good + raw(b'{"t":"a\0b"}') + good)
    (d / "hostile-utf8").write_bytes(bytes([0, 1, 1, 1, 1]) + raw(b'{"t":"\xff\xc3"}') + good
                                     + raw(b'{"t":"\\ud800"}') + good)
    (d / "hostile-short").write_bytes(bytes([0, 7, 7, 7, 7]) + good + raw(b"{}")[:5])
    (d / "hostile-huge").write_bytes(bytes([0, 0, 3, 0, 3]) + good + b"\xff\xff\xff\xff" + good)
    (d / "hostile-over-limit").write_bytes(bytes([1, 0, 0, 0, 0]) + raw(b'{"k":"0123456789abc"}'))


def write_master() -> None:
    d = fresh("master")
    for f in sorted((ROOT / "tests" / "unit" / "data" / "master-json").glob("*.json")):
        shutil.copy(f, d / f.stem)


def write_magics() -> None:
    d = fresh("magics")
    cells = {
        "config": "%spark config spark.executor.memory=2g spark.executor.cores=2\n"
                  "spark.range(100).count()\n",
        "config-many": "  %spark config sparkernel.warm=false spark.driver.port=7100 "
                       "spark.sql.shuffle.partitions=4 spark.dynamicAllocation.enabled=true\n"
                       "%spark config spark.master=spark://spark-master:7077\n",
        "config-bad": "%spark config spark.executor.memory=lots\n%spark config =x nokey\n",
        "status": "%spark\n%spark status\nprint(1)\n",
        "restart": "%spark config spark.executor.memory=512m\n%spark restart\r\n",
        "cell-magic": "%%sql\nSELECT 1\n%spark config spark.executor.cores=4\n",
        "continued": "x = 1 + \\\n%spark stop\n%spark ui\n",
        "plain": "import math\nprint(math.pi)\n",
        "memory": "%spark config spark.executor.memory=1t spark.executor.memory=1024k "
                  "spark.executor.memory=17179869184\n",
    }
    for name, text in cells.items():
        (d / name).write_text(text, encoding="utf-8")


def main() -> None:
    write_wire()
    write_connection()
    write_master()
    write_magics()
    write_frame()
    for d in sorted(CORPUS.iterdir()):
        print(f"{d.relative_to(ROOT)}: {len(list(d.iterdir()))} files")


if __name__ == "__main__":
    main()
