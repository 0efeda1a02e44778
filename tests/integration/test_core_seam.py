"""The kernel core alone, through its one seam (kernel/extension.h): build/bin/core_kernel is
kernel/ linked without any driver/ object, with a fake extension that records every hook
the core calls and drives the calls the core offers back (tests/support/core_kernel.c). A
real jupyter_client talks to it and a real Python executor runs its cells; no Spark."""
from __future__ import annotations

import json
import os
import pathlib
import shutil
import signal
import subprocess
import tempfile
import time

import psutil
import pytest
from jupyter_client.kernelspec import KernelSpecManager

from tests.support.kernels import Kernel, build_spec_dir, outputs_of, stdout_text

SPEC = build_spec_dir()
CORE_BIN = SPEC.parents[3] / "bin" / "core_kernel"


@pytest.fixture
def core(tmp_path: pathlib.Path):
    if not CORE_BIN.exists():
        pytest.fail(f"{CORE_BIN} is missing: make {CORE_BIN.relative_to(SPEC.parents[4])}")
    argv = json.loads((SPEC / "kernel.json").read_text())["argv"]
    python = argv[argv.index("--python") + 1]
    pythonpath = argv[argv.index("--pythonpath") + 1]
    root = pathlib.Path(tempfile.mkdtemp(prefix="core-spec-"))
    (root / "core").mkdir()
    (root / "core" / "kernel.json").write_text(json.dumps({
        "argv": [str(CORE_BIN), "-f", "{connection_file}", "--python", python,
                 "--pythonpath", pythonpath],
        "display_name": "kernel core", "language": "python", "interrupt_mode": "message"}))
    hooks = tmp_path / "hooks.jsonl"
    k = Kernel("core", ksm=KernelSpecManager(kernel_dirs=[str(root)]),
               env={"CORE_HOOK_LOG": str(hooks)})
    k.hooks_path = hooks
    yield k
    if k.km.is_alive():
        k.shutdown()
    shutil.rmtree(root, ignore_errors=True)


def hooks(k: Kernel) -> list[dict]:
    return [json.loads(line) for line in k.hooks_path.read_text().splitlines()]


def names(k: Kernel) -> list[str]:
    """The hooks called, without the kernel_info ones (the client's readiness probes)."""
    return [h["hook"] for h in hooks(k) if h["hook"] != "kernel_info"]


def wait_for(pred, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_the_core_links_without_the_driver():
    symbols = subprocess.run(["nm", "--defined-only", str(CORE_BIN)], capture_output=True,
                             text=True, check=True).stdout
    for name in ("spark_attach", "session_start", "http_request", "master_parse",
                 "progress_new", "settings_new"):
        assert f" {name}\n" not in symbols, name


def test_a_cell_goes_through_every_hook_in_order(core):
    reply, out = core.execute("x = 20\nx + 1")
    assert reply["content"]["status"] == "ok"
    assert outputs_of(out, "execute_result")[0]["content"]["data"]["text/plain"] == "21"
    seq = names(core)
    assert seq[:4] == ["executor_ready", "cell_code", "cell_begin", "cell_end"], seq
    begin = next(h for h in hooks(core) if h["hook"] == "cell_begin")
    assert begin["count"] == 1 and begin["cell_running"] is True
    assert next(h for h in hooks(core) if h["hook"] == "executor_ready")["cell_running"] is False

    info = core.kc.kernel_info(reply=True, timeout=10)["content"]
    assert hooks(core)[-1] == {"hook": "kernel_info"}
    assert info["help_links"][-1] == {"text": "Fake", "url": "https://example.org/"}
    assert not any("Spark" in link["text"] for link in info["help_links"])
    assert "%spark" not in info["banner"]

    core.shutdown()
    wait_for(lambda: "destroy" in names(core), 10)
    tail = hooks(core)[-2:]
    assert tail == [{"hook": "shutdown", "executor_detached": True}, {"hook": "destroy"}]


def test_a_cell_the_extension_takes_goes_on_later_and_the_loop_stays_free(core):
    t0 = time.monotonic()
    msg_id = core.kc.execute("%%later print('late')")
    time.sleep(0.05)
    info = core.kc.kernel_info(reply=True, timeout=10)
    # The timer is 1 s: kernel_info answered well before it (a bound of 0.3 s against a
    # 0.3 s timer left 0.25 s for a round trip of the sanitized kernel, too little under load).
    assert time.monotonic() - t0 < 0.8, "kernel_info waited for the extension's timer"
    assert info["content"]["status"] == "ok"
    reply, out = core.collect(msg_id)
    assert reply["content"]["status"] == "ok"
    assert stdout_text(out) == "late\n"
    assert time.monotonic() - t0 >= 0.98
    seq = names(core)
    assert seq.index("timer") < seq.index("cell_begin"), seq


def test_a_cell_the_extension_fails_aborts_the_queue_as_any_error(core):
    failed = core.kc.execute("%%fail")
    queued = core.kc.execute("print('never')")
    reply, out = core.collect(failed)
    assert reply["content"]["status"] == "error"
    assert reply["content"]["ename"] == "FakeError"
    assert outputs_of(out, "error")[0]["content"]["evalue"] == \
        "the fake extension failed this cell"
    reply, out = core.collect(queued)
    assert reply["content"] == {"status": "aborted"}
    assert "never" not in stdout_text(out)
    assert "cell_begin" not in names(core)  # neither reached the executor


def test_a_held_reply_waits_for_the_extension_and_its_last_output(core):
    reply, out = core.execute("%%hold 3 * 3")
    assert reply["content"]["status"] == "ok"
    types = [m["msg_type"] for m in out]
    assert types.index("execute_result") < types.index("display_data") < len(types) - 1, types
    assert out[-1]["content"]["execution_state"] == "idle"
    assert outputs_of(out, "display_data")[0]["content"]["data"]["text/plain"] == \
        "released by the extension"
    assert {"hook": "cell_end", "held": True} in hooks(core)


def test_the_queue_waits_while_the_extension_holds_it(core):
    gate = core.kc.execute("%%gate 600")
    after = core.kc.execute("5")
    reply, _ = core.collect(gate)
    t_gate = time.monotonic()
    assert reply["content"]["status"] == "ok"
    reply, out = core.collect(after)
    assert outputs_of(out, "execute_result")[0]["content"]["data"]["text/plain"] == "5"
    assert time.monotonic() - t_gate >= 0.4


def test_an_executor_death_reaches_the_extension_and_a_fresh_one_follows(core):
    reply, _ = core.execute("import os; os.getpid()")
    assert reply["content"]["status"] == "ok"
    kernel = psutil.Process(core.km.provisioner.pid)
    executor = next(p for p in kernel.children() if "python" in p.name())
    os.kill(executor.pid, signal.SIGKILL)
    wait_for(lambda: names(core).count("executor_ready") == 2)
    seq = names(core)
    assert seq.index("executor_died") < len(seq) - 1 - seq[::-1].index("executor_ready"), seq
    reply, out = core.execute("40 + 2")
    assert outputs_of(out, "execute_result")[0]["content"]["data"]["text/plain"] == "42"
