"""The README's two commands do their own set-up (tests/support/deps.sh, preflight.sh): run in
a clean environment (fresh venvs and npm prefix in a temporary directory; system packages
checked, not installed), the set-up installs everything once and is a no-op the second
time; what it cannot do, and what the machine lacks, is one line naming what to do."""
from __future__ import annotations

import os
import pathlib
import shutil
import socket
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
DEPS = ROOT / "tests" / "support" / "deps.sh"
PREFLIGHT = ROOT / "tests" / "support" / "preflight.sh"

pytestmark = pytest.mark.timeout(900)


def run(script: pathlib.Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(script), *args], env={**os.environ, **env},
                          capture_output=True, text=True, timeout=800)


def fake_tool(bin_dir: pathlib.Path, name: str, body: str) -> None:
    bin_dir.mkdir(exist_ok=True)
    path = bin_dir / name
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(0o755)


def stamps(root: pathlib.Path) -> dict[pathlib.Path, int]:
    return {p: p.stat().st_mtime_ns for p in root.rglob(".sparkernel-deps")}


def test_run_setup_in_a_fresh_venv_then_no_op(tmp_path):
    """make run's set-up into a venv of its own: installed once, untouched the second time,
    reinstalled when requirements.txt changes (checked through its stamp)."""
    env = {"VENV": str(tmp_path / "venv"), "PYTHON3": "python3", "SPARKERNEL_DEPS_CHECK_ONLY": "1"}
    first = run(DEPS, "run", env=env)
    assert first.returncode == 0, first.stdout + first.stderr
    check = subprocess.run([str(tmp_path / "venv" / "bin" / "python"), "-c",
                            "import pyspark, ipykernel, jupyter_client, nbconvert"],
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    before = stamps(tmp_path)
    assert len(before) == 1
    second = run(DEPS, "run", env=env)
    assert second.returncode == 0, second.stderr
    assert second.stdout == "" and second.stderr == "", second.stdout + second.stderr
    assert stamps(tmp_path) == before
    # A stamp from other requirements (as after an edit of requirements.txt) reinstalls.
    next(iter(before)).write_text("0" * 64 + "\n")
    third = run(DEPS, "run", env=env)
    assert third.returncode == 0 and "python venv" in third.stdout, third.stdout + third.stderr
    assert next(iter(stamps(tmp_path))).read_text() != "0" * 64 + "\n"


def test_test_setup_fresh_npm_prefix_then_no_op(tmp_path):
    """make test's set-up: the lab driver's npm packages into a fresh prefix (the venvs are
    the project's own, already set up by the make test running this), then a no-op; a changed
    package-lock.json reinstalls."""
    lab = tmp_path / "lab"
    lab.mkdir()
    for f in ("package.json", "package-lock.json"):
        shutil.copy(ROOT / "tests" / "lab" / f, lab / f)
    env = {"LAB_DIR": str(lab), "SPARKERNEL_DEPS_CHECK_ONLY": "1",
           "VENV": str(ROOT / ".venv"), "COMPAT_VENV": str(ROOT / ".venv-compat")}
    first = run(DEPS, "test", env=env)
    assert first.returncode == 0, first.stdout + first.stderr
    assert (lab / "node_modules" / "playwright-core").is_dir()
    before = stamps(lab)
    second = run(DEPS, "test", env=env)
    assert second.returncode == 0, second.stderr
    assert second.stdout == "" and second.stderr == "", second.stdout + second.stderr
    assert stamps(lab) == before
    (lab / "package-lock.json").write_text((lab / "package-lock.json").read_text() + "\n")
    third = run(DEPS, "test", env=env)
    assert third.returncode == 0, third.stderr
    assert "npm packages" in third.stdout and "venv" not in third.stdout, third.stdout


def test_missing_system_package_without_root_names_the_command(tmp_path):
    # dpkg-query that reports everything installed but valgrind: a machine missing one package
    # where this user cannot install it. Nothing may be built after that message.
    bin_dir = tmp_path / "bin"
    fake_tool(bin_dir, "dpkg-query",
              'for a; do case "$a" in -*|*Package*) ;; valgrind) ;; *) echo "$a ii";; esac; done')
    env = {"PATH": f"{bin_dir}:{os.environ['PATH']}", "VENV": str(tmp_path / "venv"),
           "COMPAT_VENV": str(tmp_path / "venv-compat"), "LAB_DIR": str(tmp_path / "lab"),
           "SPARKERNEL_DEPS_CHECK_ONLY": "1"}
    r = run(DEPS, "test", env=env)
    assert r.returncode == 1
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "valgrind" in lines[0] and "apt-get install" in lines[0], r.stderr
    assert not (tmp_path / "venv").exists() and not (tmp_path / "venv-compat").exists()


def test_old_python_is_refused_before_any_venv(tmp_path):
    bin_dir = tmp_path / "bin"
    fake_tool(bin_dir, "python3",
              'case "$1" in -V) echo "Python 3.8.10";; *) echo 0;; esac')
    env = {"PYTHON3": str(bin_dir / "python3"), "VENV": str(tmp_path / "venv"),
           "COMPAT_VENV": str(tmp_path / "venv-compat"), "SPARKERNEL_DEPS_CHECK_ONLY": "1"}
    r = run(DEPS, "run", env=env)
    assert r.returncode == 1
    assert "Python 3.8.10 is too old" in r.stderr and "3.10" in r.stderr, r.stderr
    assert not (tmp_path / "venv").exists()


@pytest.mark.parametrize("java, expect", [
    (None, "no Java found"),
    ('echo \'openjdk version "11.0.22" 2024-01-16\' >&2', "Java 11; Spark needs 17 or newer"),
    ('echo \'java version "1.8.0_401"\' >&2', "Java 8; Spark needs 17 or newer"),
])
def test_preflight_java(tmp_path, java, expect):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("awk", "sed", "head", "cat", "dirname"):
        os.symlink(shutil.which(tool), bin_dir / tool)
    if java is not None:
        fake_tool(bin_dir, "java", java)
    env = {"PATH": str(bin_dir), "JAVA_HOME": ""}
    env_full = {k: v for k, v in {**os.environ, **env}.items() if k != "JAVA_HOME"}
    r = subprocess.run(["/bin/bash", str(PREFLIGHT), "test"], env=env_full,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 1
    assert r.stderr.count("\n") == 1 and expect in r.stderr, r.stderr


def test_preflight_taken_port_and_memory(tmp_path):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen()
    port = s.getsockname()[1]
    try:
        env = {"CLUSTER_ARGS": f"--master-port {port} --ui-port=0",
               "PYTHON": str(ROOT / ".venv" / "bin" / "python")}
        r = run(PREFLIGHT, "run", env=env)
        assert r.returncode == 1
        assert f"port {port} (Spark master)" in r.stderr and "CLUSTER_ARGS" in r.stderr, r.stderr
    finally:
        s.close()
    r = run(PREFLIGHT, "test", env={"SPARKERNEL_PREFLIGHT_MEM_MB": str(10 ** 7)})
    assert r.returncode == 1 and "MiB of memory available" in r.stderr, r.stderr
    assert run(PREFLIGHT, "test", env={}).returncode == 0
