"""The executor's frame stream (issue 14, item 1). A NUL in what the executor sends (an
error message, printed or displayed text, an inspect reply) must reach the client intact,
and a frame the kernel cannot read must never lose a reply: the request gets an error that
says what happened, the queue moves on, and the kernel's log counts the loss. Real kernel,
real executor; the unreadable frames are written by a cell onto the executor's own event
pipe, the way a bug in the executor would write them."""
from __future__ import annotations

import re

import pytest

from kernels import outputs_of, stdout_text

pytestmark = pytest.mark.timeout(180)

DROPPED = re.compile(r"executor event frame dropped \((\d+) so far\): (.*)$", re.M)

# Runs in a cell: the frame of the given type after `skip` others is replaced by raw bytes.
CORRUPT_NEXT = """
from sparkernel_executor import shell as _s
_ch = _s._channel
_orig = _ch.send
_left = [{skip}]
def _bad(obj, _kind={kind!r}, _raw={raw!r}):
    if obj.get("type") != _kind:
        return _orig(obj)
    if _left[0] > 0:
        _left[0] -= 1
        return _orig(obj)
    del _ch.send
    import os
    with _ch._lock:
        os.write(_ch._event, _raw)
_ch.send = _bad
"""


def frame(body: bytes) -> bytes:
    return len(body).to_bytes(4, "big") + body


def assert_next_cell_works(kernel) -> None:
    reply, out = kernel.execute("1+1", timeout=60)
    assert reply["content"]["status"] == "ok"
    results = outputs_of(out, "execute_result")
    assert results and results[0]["content"]["data"]["text/plain"] == "2"


def test_nul_in_error_print_display_inspect(kernel):
    reply, out = kernel.execute('raise ValueError("a\\0b")', timeout=20)
    assert reply["content"]["status"] == "error"
    assert reply["content"]["ename"] == "ValueError"
    assert reply["content"]["evalue"] == "a\0b"
    assert [e["content"]["evalue"] for e in outputs_of(out, "error")] == ["a\0b"]
    assert_next_cell_works(kernel)

    reply, out = kernel.execute('print("x\\0y")', timeout=20)
    assert reply["content"]["status"] == "ok"
    assert stdout_text(out) == "x\0y\n"

    # Written straight to fd 1 (a C library, os.write): the NUL kept as print's is.
    reply, out = kernel.execute('import os\nos.write(1, b"f\\0d\\n")', timeout=20)
    assert reply["content"]["status"] == "ok"
    assert stdout_text(out) == "f\0d\n"

    reply, out = kernel.execute(
        'from IPython.display import display\n'
        'display({"text/plain": "p\\0q"}, raw=True)', timeout=20)
    assert reply["content"]["status"] == "ok"
    shown = outputs_of(out, "display_data")
    assert [d["content"]["data"]["text/plain"] for d in shown] == ["p\0q"]

    kernel.execute('s = "m\\0n"', timeout=20)
    msg_id = kernel.kc.inspect("s", 1, detail_level=0)
    reply = kernel.shell_reply(msg_id, timeout=20)
    assert reply["content"]["status"] == "ok"
    assert reply["content"]["found"] is True
    assert "m\0n" in reply["content"]["data"]["text/plain"]
    assert_next_cell_works(kernel)
    assert not DROPPED.search(kernel.log())


@pytest.mark.parametrize("raw", [
    frame(b"{not json"),
    frame(b'{"type": "reply", "content": {"status": "ok", "x": "\xff\xfe"}}'),
    frame(b"[1, 2]"),
], ids=["invalid-json", "invalid-utf8", "not-an-object"])
def test_lost_execute_reply_answered_with_error(kernel, raw):
    code = CORRUPT_NEXT.format(skip=0, kind="reply", raw=raw)
    reply, out = kernel.execute(code, timeout=30)
    assert reply["content"]["status"] == "error"
    assert reply["content"]["ename"] == "ReplyLost"
    assert "could not read" in reply["content"]["evalue"]
    assert [e["content"]["ename"] for e in outputs_of(out, "error")] == ["ReplyLost"]
    notes = "".join(m["content"]["text"] for m in outputs_of(out, "stream")
                    if m["content"]["name"] == "stderr")
    assert "could not be read" in notes
    assert_next_cell_works(kernel)
    log = kernel.log()
    assert [n for n, _ in DROPPED.findall(log)] == ["1"], log[-3000:]


def test_lost_output_frame_keeps_the_reply(kernel):
    """An unreadable frame that was not the reply: the cell ends with its own reply (no
    ReplyLost once the sync comes back), with a note where its output went missing."""
    code = CORRUPT_NEXT.format(skip=0, kind="stream", raw=frame(b"\x00garbage")) + \
        '\nprint("lost")\nimport sys; sys.stdout.flush()\n42'
    reply, out = kernel.execute(code, timeout=30)
    assert reply["content"]["status"] == "ok", reply["content"]
    assert [r["content"]["data"]["text/plain"] for r in outputs_of(out, "execute_result")] \
        == ["42"]
    assert "lost" not in stdout_text(out)
    assert_next_cell_works(kernel)
    reply, out = kernel.execute("1+2", timeout=30)
    assert reply["content"]["status"] == "ok"
    assert len(DROPPED.findall(kernel.log())) == 1


def test_lost_inspect_reply_answered_with_error(kernel):
    # The cell's own reply goes through; the next one, the inspect's, is replaced.
    reply, _ = kernel.execute(CORRUPT_NEXT.format(skip=1, kind="reply", raw=frame(b"{")),
                              timeout=30)
    assert reply["content"]["status"] == "ok"
    msg_id = kernel.kc.inspect("len", 3)
    reply = kernel.shell_reply(msg_id, timeout=30)
    assert reply["content"]["status"] == "error"
    assert reply["content"]["ename"] == "ReplyLost"
    assert_next_cell_works(kernel)


def test_lost_reply_while_input_waits(kernel):
    """The sync arrives while input() waits for its answer: it is answered after the cell,
    and the cell's answer to input() is not taken for it."""
    code = CORRUPT_NEXT.format(skip=0, kind="stream", raw=frame(b"{")) + \
        '\nprint("a", flush=True)\nv = input("?")\nv'
    msg_id = kernel.kc.execute(code, allow_stdin=True)
    req = kernel.kc.get_stdin_msg(timeout=30)
    assert req["content"]["prompt"] == "?"
    kernel.kc.input("typed")
    reply, out = kernel.collect(msg_id, timeout=30)
    assert reply["content"]["status"] == "ok", reply["content"]
    assert [r["content"]["data"]["text/plain"] for r in outputs_of(out, "execute_result")] \
        == ["'typed'"]
    assert_next_cell_works(kernel)


def test_length_above_the_limit_ends_the_executor_with_a_reason(kernel):
    code = ("import os\nfrom sparkernel_executor import shell as _s\n"
            "with _s._channel._lock:\n    os.write(_s._channel._event, b'\\xff\\xff\\xff\\xff{')\n"
            "import time; time.sleep(30)")
    reply, out = kernel.execute(code, timeout=60)
    assert reply["content"]["status"] == "error"
    assert reply["content"]["ename"] == "ExecutorDied"
    assert "unreadable" in reply["content"]["evalue"]
    assert "frame length above the limit" in reply["content"]["evalue"]
    assert_next_cell_works(kernel)
