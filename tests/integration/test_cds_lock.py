"""Who may have the executors dump their class-data archive (cds.executor_plan's lock): a
lock whose kernel is gone, with no dump still being written, is taken over at once; a
live kernel's, another host's, or a dump still growing keeps it. No cluster needed: the
plan is the properties a session would pass to its executors."""
from __future__ import annotations

import os
import pathlib
import socket
import subprocess
import sys
import time

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "driver" / "python"))
from sparkernel_executor import cds  # noqa: E402


def a_dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


@pytest.fixture
def where(tmp_path):
    spark_home = tmp_path / "spark"
    (spark_home / "jars").mkdir(parents=True)
    d = tmp_path / "cds"
    d.mkdir()
    archive = cds.executor_archive_path(d, str(spark_home))
    lock = archive.parent / (archive.name + ".tmp-lock")
    return d, str(spark_home), archive, lock


def plan(where) -> str:
    d, spark_home, _, _ = where
    props, _ = cds.executor_plan(d, spark_home, {})
    return props.get("spark.executor.extraJavaOptions", "")


def test_a_dead_kernels_lock_is_taken_over(where):
    _, _, archive, lock = where
    lock.write_text(f"{socket.gethostname()} {a_dead_pid()}\n")
    assert "-XX:ArchiveClassesAtExit=" in plan(where)
    assert lock.read_text().split() == [socket.gethostname(), str(os.getpid())]


def test_a_live_kernels_lock_is_kept(where):
    _, _, _, lock = where
    lock.write_text(f"{socket.gethostname()} {os.getppid()}\n")
    assert plan(where) == ""
    assert lock.read_text().split()[1] == str(os.getppid())


def test_a_dump_still_written_keeps_the_lock(where):
    _, _, archive, lock = where
    lock.write_text(f"{socket.gethostname()} {a_dead_pid()}\n")
    growing = archive.parent / (archive.name + ".tmp-app-1-0")
    growing.write_bytes(b"\0" * 64)  # not finished: no header yet
    assert plan(where) == ""
    old = time.time() - 60  # unchanged for a minute: that executor is gone too
    os.utime(growing, (old, old))
    assert "-XX:ArchiveClassesAtExit=" in plan(where)


@pytest.mark.parametrize("text", ["elsewhere 1\n", ""])
def test_another_hosts_or_an_unnamed_lock_waits_until_stale(where, text):
    _, _, _, lock = where
    lock.write_text(text)
    assert plan(where) == ""
    old = time.time() - 601
    os.utime(lock, (old, old))
    assert "-XX:ArchiveClassesAtExit=" in plan(where)


def test_the_largest_finished_dump_is_mapped_whoever_holds_the_lock(where):
    _, _, archive, lock = where
    lock.write_text(f"{socket.gethostname()} {os.getppid()}\n")
    for executor, size in ((10, 64), (2, 256), (0, 128)):  # the largest has most classes
        done = archive.parent / (archive.name + f".tmp-app-1-{executor}")
        done.write_bytes(bytes.fromhex("a8ab0bf0") + b"\0" * size)
    assert f"-XX:SharedArchiveFile={archive}" in plan(where)
    assert archive.stat().st_size == 260 and not lock.exists()
    assert not list(archive.parent.glob(archive.name + ".tmp-*"))
