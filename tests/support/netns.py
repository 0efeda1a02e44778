"""Two simulated hosts on this machine: two network namespaces joined by a veth pair, for
tests that need the Spark master/worker and the kernel on different addresses.

    reason = unavailable()            # None, or why the test must be skipped
    with TwoHosts() as h:             # sk-m-<pid>-<k> / sk-k-<pid>-<k>, 10.200.<n>.1 / .2
        c = h.start_cluster(workers=1, cores=2)       # master + worker inside h.master_ns
        h.run_in(h.master_ns, c.json)                 # any Python call inside a namespace
        subprocess.run(h.exec_prefix(h.kernel_ns) + [...])   # a process on the kernel host

Only addresses inside the namespaces created here are used (10.200.<n>.0/24 on the veth
pair, lo in each); nothing is routed to or from the root namespace. Everything is torn down
by close() (processes first, then the namespaces, which also deletes the veth pair), also
when start fails.

Running Python *inside* a namespace without a new process: run_in() starts a thread that
calls setns(2) on the namespace's file (network namespaces are per thread), runs the
function there and returns its result. Sockets that thread opens, and processes it forks,
live in the namespace. LocalCluster.start() is run that way, so the very same spark-class
commands LocalCluster uses start inside the master namespace, bound to 10.200.<n>.1.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import itertools
import os
import pathlib
import shutil
import subprocess
import threading
from typing import Any, Callable, Optional

from cluster import LocalCluster

CLONE_NEWNET = 0x40000000
NETNS_DIR = pathlib.Path("/var/run/netns")
_counter = itertools.count()
_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", *args], stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, check=check, timeout=30)


def unavailable() -> Optional[str]:
    """None when namespaces can be made here; else the reason (for pytest.skip)."""
    if os.geteuid() != 0:
        return "needs root to create network namespaces (running as uid %d)" % os.geteuid()
    if shutil.which("ip") is None:
        return "`ip` (iproute2) is not installed"
    name = "sk-probe-%d" % os.getpid()
    try:
        _ip("netns", "add", name)
    except (subprocess.CalledProcessError, OSError) as e:
        err = getattr(e, "stderr", "") or str(e)
        return "`ip netns add` does not work here: %s" % err.strip()
    try:
        _ip("netns", "exec", name, "ip", "link", "set", "lo", "up")
    except subprocess.CalledProcessError as e:
        return "`ip netns exec` does not work here: %s" % e.stderr.strip()
    finally:
        _ip("netns", "del", name, check=False)
    return None


def run_in(ns: str, fn: Callable[..., Any], *args: Any, **kw: Any) -> Any:
    """fn(*args, **kw) on a fresh thread that has joined network namespace ns."""
    box: dict[str, Any] = {}

    def body() -> None:
        try:
            fd = os.open(NETNS_DIR / ns, os.O_RDONLY)
            try:
                if _libc.setns(fd, CLONE_NEWNET) != 0:
                    e = ctypes.get_errno()
                    raise OSError(e, "setns(%s): %s" % (ns, os.strerror(e)))
            finally:
                os.close(fd)
            box["value"] = fn(*args, **kw)
        except BaseException as e:  # re-raised on the caller's thread
            box["error"] = e

    t = threading.Thread(target=body, name="netns-" + ns, daemon=True)
    t.start()
    t.join()
    if "error" in box:
        raise box["error"]
    return box.get("value")


class NetnsCluster(LocalCluster):
    """LocalCluster whose daemons live in a network namespace: start/json/stop all run on
    a thread inside it, so port checks, spark-class and the /json/ polls happen there."""

    def __init__(self, ns: str, **kw: Any) -> None:
        super().__init__(**kw)
        self.ns = ns

    def start(self) -> "NetnsCluster":
        run_in(self.ns, super().start)
        return self

    def json(self, timeout: float = 5.0) -> dict:
        return run_in(self.ns, super().json, timeout)


class TwoHosts:
    """Namespaces `master_ns` (10.200.n.1) and `kernel_ns` (10.200.n.2), lo up in both."""

    def __init__(self, subnet: Optional[int] = None) -> None:
        k = next(_counter)
        pid = os.getpid()
        self.master_ns = "sk-m-%d-%d" % (pid, k)
        self.kernel_ns = "sk-k-%d-%d" % (pid, k)
        # Interface names are at most 15 characters.
        self.veth_m = ("skm%d_%d" % (pid, k))[:15]
        self.veth_k = ("skk%d_%d" % (pid, k))[:15]
        self.subnet = subnet if subnet is not None else 20 + (pid * 7 + k) % 230
        self.master_ip = "10.200.%d.1" % self.subnet
        self.kernel_ip = "10.200.%d.2" % self.subnet
        self.clusters: list[LocalCluster] = []
        self.created: list[str] = []

    def exec_prefix(self, ns: str) -> list[str]:
        return ["ip", "netns", "exec", ns]

    def run_in(self, ns: str, fn: Callable[..., Any], *args: Any, **kw: Any) -> Any:
        return run_in(ns, fn, *args, **kw)

    def __enter__(self) -> "TwoHosts":
        try:
            self.setup()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def setup(self) -> None:
        for ns in (self.master_ns, self.kernel_ns):
            _ip("netns", "add", ns)
            self.created.append(ns)
            _ip("-n", ns, "link", "set", "lo", "up")
        # Created directly with its ends inside the namespaces: never in the root namespace.
        _ip("link", "add", self.veth_m, "netns", self.master_ns, "type", "veth",
            "peer", "name", self.veth_k, "netns", self.kernel_ns)
        for ns, dev, addr in ((self.master_ns, self.veth_m, self.master_ip),
                              (self.kernel_ns, self.veth_k, self.kernel_ip)):
            _ip("-n", ns, "addr", "add", addr + "/24", "dev", dev)
            _ip("-n", ns, "link", "set", dev, "up")

    def start_cluster(self, workers: int = 1, cores: int = 2, memory: str = "1g",
                      master_port: int = 7077, ui_port: int = 8080,
                      **kw: Any) -> NetnsCluster:
        """Master and workers in master_ns, bound to master_ip (SPARK_LOCAL_IP and --host, as
        LocalCluster does for its host). The namespace is fresh, so fixed ports are free."""
        c = NetnsCluster(self.master_ns, workers=workers, cores=cores, memory=memory,
                         host=self.master_ip, master_port=master_port, ui_port=ui_port, **kw)
        self.clusters.append(c)
        c.start()
        return c

    def close(self) -> None:
        for c in reversed(self.clusters):
            try:
                c.stop(grace=5.0)
            except Exception:
                pass
        self.clusters.clear()
        for ns in reversed(self.created):
            # Whatever still runs in the namespace (a kernel left by a failed test) is
            # killed by pid, then the namespace goes (and the veth end inside it with it).
            pids = _ip("netns", "pids", ns, check=False).stdout.split()
            for p in pids:
                try:
                    os.kill(int(p), 9)
                except (OSError, ValueError):
                    pass
            _ip("netns", "del", ns, check=False)
        self.created.clear()
