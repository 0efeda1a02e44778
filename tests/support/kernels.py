"""Starting sparkernel for tests through a real jupyter_client, with its log captured so
tests can read what it dropped and so sanitizer reports are never missed."""
from __future__ import annotations

import json
import os
import pathlib
import re
import shutil
import tempfile
import time
from queue import Empty
from typing import Any

from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager

ROOT = pathlib.Path(__file__).resolve().parents[2]
SANITIZER = re.compile(r"ERROR: (Address|Leak)Sanitizer|runtime error:|SUMMARY: \w+Sanitizer")


def build_spec_dir() -> pathlib.Path:
    """The kernelspec `make` wrote (build/ or build-asan/, per JUPYTER_PATH)."""
    for base in os.environ.get("JUPYTER_PATH", "").split(os.pathsep):
        d = pathlib.Path(base) / "kernels" / "sparkernel"
        if (d / "kernel.json").exists():
            return d
    return ROOT / "build" / "share" / "jupyter" / "kernels" / "sparkernel"


def variant_spec(name: str, **changes: Any) -> KernelSpecManager:
    """A copy of the built kernelspec with changes (interrupt_mode, argv edits, env) in a
    temporary kernel dir; returns a KernelSpecManager that finds it as `name`."""
    src = build_spec_dir()
    root = pathlib.Path(tempfile.mkdtemp(prefix="sparkernel-spec-"))
    dst = root / name
    shutil.copytree(src, dst)
    spec = json.loads((dst / "kernel.json").read_text())
    argv_python = changes.pop("python", None)
    if argv_python is not None:
        spec["argv"][spec["argv"].index("--python") + 1] = argv_python
    spec.update(changes)
    (dst / "kernel.json").write_text(json.dumps(spec))
    return KernelSpecManager(kernel_dirs=[str(root)])


class Kernel:
    """A started kernel with a blocking client and its log file."""

    def __init__(self, name: str = "sparkernel", ksm: KernelSpecManager | None = None,
                 env: dict[str, str] | None = None, wait_ready: bool = True) -> None:
        self.log_path = pathlib.Path(tempfile.mkstemp(prefix="sparkernel-", suffix=".log")[1])
        self._log = open(self.log_path, "w")
        kw: dict[str, Any] = {"kernel_name": name}
        if ksm is not None:
            kw["kernel_spec_manager"] = ksm
        self.km = KernelManager(**kw)
        full_env = dict(os.environ)
        full_env.update(env or {})
        self.started_at = time.monotonic()
        self.km.start_kernel(env=full_env, stdout=self._log, stderr=self._log)
        self.kc = self.km.client()
        self.kc.start_channels()
        if wait_ready:
            self.kc.wait_for_ready(timeout=60)
        else:
            self.wait_iopub_welcome()

    def wait_iopub_welcome(self, timeout: float = 30) -> None:
        """Protocol 5.5's way to know that iopub is connected: its iopub_welcome. A client
        that sends before it may lose the first request's busy/idle (ZeroMQ's slow joiner),
        which a test of a kernel that is not ready yet would read as a hang."""
        deadline = time.monotonic() + timeout
        while True:
            msg = self.kc.get_iopub_msg(timeout=max(0.1, deadline - time.monotonic()))
            if msg["msg_type"] == "iopub_welcome":
                return

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def execute(self, code: str, timeout: float = 60, **kw: Any) -> tuple[dict, list[dict]]:
        """Runs code; returns (execute_reply, iopub messages of that request up to idle)."""
        msg_id = self.kc.execute(code, **kw)
        return self.collect(msg_id, timeout)

    def collect(self, msg_id: str, timeout: float = 60) -> tuple[dict, list[dict]]:
        deadline = time.monotonic() + timeout
        outputs: list[dict] = []
        while True:
            msg = self.kc.get_iopub_msg(timeout=max(0.1, deadline - time.monotonic()))
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            outputs.append(msg)
            if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                break
        reply = self.shell_reply(msg_id, max(0.1, deadline - time.monotonic()))
        return reply, outputs

    def shell_reply(self, msg_id: str, timeout: float = 30) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            reply = self.kc.get_shell_msg(timeout=max(0.1, deadline - time.monotonic()))
            if reply["parent_header"].get("msg_id") == msg_id:
                return reply

    def drain_iopub(self) -> None:
        while True:
            try:
                self.kc.get_iopub_msg(timeout=0.2)
            except Empty:
                return

    def shutdown(self) -> str:
        """Shuts down; returns the log, after checking it holds no sanitizer report."""
        try:
            self.kc.stop_channels()
            self.km.shutdown_kernel(now=False)
        finally:
            self._log.close()
        text = self.log_path.read_text(errors="replace")
        assert not SANITIZER.search(text), f"sanitizer report in kernel log:\n{text[-4000:]}"
        return text


def outputs_of(msgs: list[dict], msg_type: str) -> list[dict]:
    return [m for m in msgs if m["msg_type"] == msg_type]


def stdout_text(msgs: list[dict]) -> str:
    return "".join(m["content"]["text"] for m in msgs
                   if m["msg_type"] == "stream" and m["content"]["name"] == "stdout")


def spark_time(text: str) -> float:
    """A time of Spark's REST API ("2026-12-04T19:33:29.573GMT") in epoch seconds."""
    import datetime
    return datetime.datetime.strptime(text.replace("GMT", "+0000"),
                                      "%Y-%m-%dT%H:%M:%S.%f%z").timestamp()
