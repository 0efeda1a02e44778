#!/usr/bin/env python3
"""A real Spark standalone cluster on this machine: one master and N workers started from the
pyspark package (its jars and bin/spark-class), bound to loopback, for the main job and the
tests.

CLI (state, logs and pid files under --dir, default out/cluster/):
    python tests/support/cluster.py start  [--workers N] [--cores C] [--memory 2g]
                                           [--host 127.0.0.1] [--master-port 7077]
                                           [--ui-port 8080] [--dir DIR]
    python tests/support/cluster.py status [--dir DIR]
    python tests/support/cluster.py stop   [--dir DIR]

Python (free ports chosen by default, stopped on exit):
    with LocalCluster(workers=1, cores=2, memory="1g") as c:
        c.master_url, c.ui_url, c.json(), c.driver_env()
        c.restart_master()  # or stop_master() ... start_master(): the workers stay

Every daemon runs in its own process group (executors and Python workers it starts join it),
so stop() takes down the whole tree. SPARK_CONF_DIR is <dir>/conf, whose log4j2.properties
sends Spark's logging at WARN to <dir>/logs/spark.log; a driver started with driver_env()
uses the same conf dir, so its log4j chatter stays out of the notebook.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import pathlib
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from typing import Any, Optional

ROOT = pathlib.Path(__file__).resolve().parents[2]
DEFAULT_DIR = ROOT / "out" / "cluster"
STATE_FILE = "cluster.json"
MASTER_CLASS = "org.apache.spark.deploy.master.Master"
WORKER_CLASS = "org.apache.spark.deploy.worker.Worker"

LOG4J2 = """\
# Written by tests/support/cluster.py. Spark's own logging, at {level}, into one file so
# that daemons, executors and drivers using this SPARK_CONF_DIR stay quiet on the console.
# A process may pick its own file with -Dsparkernel.log.file=PATH.
rootLogger.level = {level}
rootLogger.appenderRef.file.ref = file

appender.file.type = File
appender.file.name = file
appender.file.fileName = ${{sys:sparkernel.log.file:-{logfile}}}
appender.file.append = true
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = %d{{yy/MM/dd HH:mm:ss.SSS}} %p [%pid] %c{{1}}: %m%n%ex

# Jetty and Netty say nothing useful at WARN during normal shutdowns.
logger.jetty.name = org.sparkproject.jetty
logger.jetty.level = error
logger.netty.name = io.netty
logger.netty.level = error
"""


class ClusterError(RuntimeError):
    """A cluster that cannot start or be found; the message says what to do."""


def spark_home() -> pathlib.Path:
    """The pyspark package directory: it holds jars/ and bin/spark-class."""
    try:
        import pyspark
    except ImportError as e:
        raise ClusterError(
            "pyspark is not importable from %s; run this with the project's venv "
            "(.venv/bin/python) or pip install -r requirements.txt" % sys.executable) from e
    home = pathlib.Path(pyspark.__file__).resolve().parent
    if not (home / "bin" / "spark-class").exists():
        raise ClusterError("%s has no bin/spark-class; reinstall pyspark" % home)
    return home


def find_java(env: Optional[dict] = None) -> str:
    """The java binary spark-class will run: $JAVA_HOME/bin/java, else java on PATH."""
    env = os.environ if env is None else env
    java_home = env.get("JAVA_HOME")
    if java_home:
        java = os.path.join(java_home, "bin", "java")
        if os.access(java, os.X_OK):
            return java
        raise ClusterError(
            "JAVA_HOME is %s but %s is not an executable; point JAVA_HOME at a JDK 17 or "
            "newer (e.g. /usr/lib/jvm/java-17-openjdk-amd64) or unset it to use java on "
            "PATH" % (java_home, java))
    java = shutil.which("java", path=env.get("PATH"))
    if java is None:
        raise ClusterError(
            "Java is missing: Spark needs a JVM (17 or newer) but there is no `java` on PATH "
            "and JAVA_HOME is not set. Install one (apt-get install openjdk-17-jre-headless) "
            "or set JAVA_HOME to a JDK directory.")
    return java


def ephemeral_low() -> int:
    """The first port of the range the kernel hands out for bind(0) and outgoing
    connections (32768 unless configured otherwise)."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def below_ephemeral() -> int:
    """The end (exclusive) of the ports tests choose for daemons started later, from 10000:
    the start of the ephemeral range, at most 60000 (60000 when the range starts too low
    to leave room below it)."""
    low = ephemeral_low()
    return min(60000, low) if low > 12000 else 60000


def free_port(host: str = "127.0.0.1", taken: frozenset = frozenset()) -> int:
    """A port free now for a daemon started later, below the ephemeral range: one chosen
    with bind(0) lies inside it, where any process's bind(0) or outgoing connection may be
    handed it before the daemon binds it (a CI flake of the charts test: a worker's own RPC
    server took the port chosen for its web UI). `taken`: ports not to return."""
    top = below_ephemeral()
    rng = random.Random()
    for _ in range(1000):
        port = rng.randrange(10000, top)
        if port in taken:
            continue
        with socket.socket() as s:
            try:
                s.bind((host, port))
            except OSError:
                continue
            return port
    raise ClusterError("no free port on %s between 10000 and %d" % (host, top))


def port_holder(port: int) -> str:
    """' (held by pid N: name)' when psutil can tell, else ''."""
    try:
        import psutil

        for c in psutil.net_connections(kind="inet"):
            if c.laddr and c.laddr.port == port and c.status == psutil.CONN_LISTEN and c.pid:
                return " (held by pid %d: %s)" % (c.pid, psutil.Process(c.pid).name())
    except Exception:
        pass
    return ""


def check_port_free(host: str, port: int, what: str, option: str) -> None:
    """Raises ClusterError naming the port and what to do when something listens on it.
    SO_REUSEADDR so that sockets in TIME_WAIT from a previous run do not count; a listener
    on the port (on host or on the wildcard address) still makes bind fail."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as e:
            raise ClusterError(
                "port %d on %s (the %s) is already in use%s: %s. Stop whatever holds it "
                "(`python tests/support/cluster.py stop` if it is an earlier cluster) or "
                "choose another port with %s." % (port, host, what, port_holder(port),
                                                   e.strerror, option)) from None


def pid_alive(pid: int) -> bool:
    """True while pid exists and is not a zombie (a reaped-late daemon counts as gone)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False


def pid_is_ours(pid: int, state_dir: pathlib.Path) -> bool:
    """Guards against pid reuse: the process must be a Spark daemon (spark-class, or the
    java it execs) started in this state dir (daemons run with it as working directory)."""
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            cmd = f.read().decode(errors="replace")
        cwd = os.readlink("/proc/%d/cwd" % pid)
    except OSError:
        return False
    return "org.apache.spark.deploy" in cmd and cwd == str(pathlib.Path(state_dir).resolve())


def tail(path: pathlib.Path, n: int = 15) -> str:
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return "(no log)"
    return "\n".join("    " + line for line in lines[-n:])


def http_json(url: str, timeout: float = 5.0) -> Any:
    # The cluster is local: never go through a proxy from the environment.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(url, timeout=timeout) as r:
        return json.loads(r.read().decode())


class LocalCluster:
    """One master and `workers` workers of `cores` cores and `memory` each.

    Ports left as None are chosen free at start. state_dir None means a fresh temporary
    directory, removed by stop() (logs are kept when start() fails, and its path named)."""

    def __init__(self, workers: int = 1, cores: int = 1, memory: str = "1g",
                 host: str = "127.0.0.1", master_port: Optional[int] = None,
                 ui_port: Optional[int] = None, state_dir: Optional[os.PathLike] = None,
                 timeout: float = 60.0, log_level: str = "warn",
                 master_opts: str = "", worker_opts: str = ""):
        if workers < 0:
            raise ValueError("workers must be >= 0")
        self.workers = workers
        self.cores = cores
        self.memory = memory
        self.host = host
        self.master_port = master_port
        self.ui_port = ui_port
        self.timeout = timeout
        self.log_level = log_level
        self.master_opts = master_opts
        self.worker_opts = worker_opts
        self._temp = state_dir is None
        self.dir = pathlib.Path(state_dir or tempfile.mkdtemp(prefix="sparkernel-cluster-"))
        self.dir = self.dir.resolve()
        self.procs: list[subprocess.Popen] = []
        self.pids: dict[str, int] = {}

    # --- paths and URLs
    @property
    def conf_dir(self) -> pathlib.Path:
        return self.dir / "conf"

    @property
    def log_dir(self) -> pathlib.Path:
        return self.dir / "logs"

    @property
    def master_url(self) -> str:
        return "spark://%s:%d" % (self.host, self.master_port)

    @property
    def ui_url(self) -> str:
        return "http://%s:%d" % (self.host, self.ui_port)

    def json(self, timeout: float = 5.0) -> dict:
        """The master's own /json/ (MasterPage.renderJson)."""
        return http_json(self.ui_url + "/json/", timeout)

    def driver_env(self, base: Optional[dict] = None) -> dict:
        """Environment for a PySpark driver on this cluster: same conf dir (quiet log4j,
        into <dir>/logs/spark.log), the venv's Python for Python workers, loopback only."""
        env = dict(os.environ if base is None else base)
        env.update({
            "SPARK_HOME": str(spark_home()),
            "SPARK_CONF_DIR": str(self.conf_dir),
            "SPARK_LOCAL_IP": self.host,
            "PYSPARK_PYTHON": sys.executable,
            "PYSPARK_DRIVER_PYTHON": sys.executable,
        })
        return env

    def sparkernel_env(self) -> dict:
        """What a sparkernel kernel needs on top of driver_env() for this cluster: the
        master, the warm session, loopback, and driver ports of its own, so that other
        kernels on this machine do not push it to another slot; no WAITING report in the
        first 120 s (launching the first executor can take more than 10 s on a loaded
        2-core machine, and the report is an output ipykernel has no counterpart for)."""
        base = random.randrange(20000, 40000, 2)
        return {"SPARK_MASTER_URL": self.master_url, "SPARKERNEL_MASTER_UI_URL": self.ui_url,
                "SPARKERNEL_WARM": "true", "SPARKERNEL_BIND_ADDRESS": "127.0.0.1",
                "SPARKERNEL_DRIVER_PORT": str(base),
                "SPARKERNEL_BLOCKMANAGER_PORT": str(base + 1),
                "SPARKERNEL_UI_PORT": str(base + 25000), "SPARKERNEL_WAITING_REPORT_S": "120"}

    # --- lifecycle
    def __enter__(self) -> "LocalCluster":
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def _daemon_env(self, java: str, name: str, opts: str) -> dict:
        env = dict(os.environ)
        env.update({
            "SPARK_HOME": str(spark_home()),
            "SPARK_CONF_DIR": str(self.conf_dir),
            # Web UIs bind to SPARK_LOCAL_IP (0.0.0.0 without it); executors inherit it.
            "SPARK_LOCAL_IP": self.host,
            "SPARK_LOCAL_DIRS": str(self.dir / "local"),
            "SPARK_LOG_DIR": str(self.log_dir),
            "SPARK_PID_DIR": str(self.dir),
            "PYSPARK_PYTHON": sys.executable,
            "SPARK_DAEMON_JAVA_OPTS": ("-Dsparkernel.log.file=%s %s"
                                       % (self.log_dir / (name + ".log"), opts)).strip(),
        })
        home = pathlib.Path(os.path.realpath(java)).parents[1]
        if "JAVA_HOME" not in env and (home / "bin" / "java").exists():
            env["JAVA_HOME"] = str(home)  # the java found on PATH, whatever PATH becomes
        env.pop("SPARK_MASTER_OPTS", None)
        env.pop("SPARK_WORKER_OPTS", None)
        return env

    def _write_conf(self) -> None:
        self.conf_dir.mkdir(parents=True, exist_ok=True)
        (self.conf_dir / "log4j2.properties").write_text(
            LOG4J2.format(level=self.log_level, logfile=self.log_dir / "spark.log"))

    def _spawn(self, name: str, java: str, args: list[str], opts: str) -> None:
        out = open(self.log_dir / (name + ".out"), "ab")
        try:
            p = subprocess.Popen([str(spark_home() / "bin" / "spark-class")] + args,
                                 stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                 env=self._daemon_env(java, name, opts), cwd=self.dir,
                                 start_new_session=True)
        finally:
            out.close()
        self.procs.append(p)
        self.pids[name] = p.pid
        (self.dir / (name + ".pid")).write_text("%d\n" % p.pid)

    def start(self) -> "LocalCluster":
        java = find_java()
        spark_home()
        running = read_state(self.dir)
        if running and any(pid_alive(p) and pid_is_ours(p, self.dir)
                           for p in running["pids"].values()):
            raise ClusterError(
                "a cluster from %s is already running (%s); run `python "
                "tests/support/cluster.py stop --dir %s` first" % (
                    self.dir, running["master_url"], self.dir))
        if self.master_port is None:
            self.master_port = free_port(self.host)
        if self.ui_port is None:
            self.ui_port = free_port(self.host, frozenset([self.master_port]))
        check_port_free(self.host, self.master_port, "master RPC port", "--master-port")
        check_port_free(self.host, self.ui_port, "master web UI port", "--ui-port")

        self.log_dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "local").mkdir(exist_ok=True)
        self._write_conf()
        try:
            self._spawn("master", java, [MASTER_CLASS, "--host", self.host, "--port",
                                         str(self.master_port), "--webui-port", str(self.ui_port)],
                        self.master_opts)
            self._write_state()
            self._wait(lambda s: s.get("status") == "ALIVE", "the master to be ALIVE")
            for i in range(self.workers):
                work = self.dir / "work" / ("worker-%d" % (i + 1))
                work.mkdir(parents=True, exist_ok=True)
                self._spawn("worker-%d" % (i + 1), java,
                            [WORKER_CLASS, "--host", self.host, "--cores", str(self.cores),
                             "--memory", self.memory, "--webui-port", "0", "--work-dir",
                             str(work), self.master_url], self.worker_opts)
            self._write_state()
            self._wait(lambda s: alive_workers(s) == self.workers,
                       "%d worker(s) to be ALIVE" % self.workers)
        except BaseException:
            self._temp = False  # keep the logs the message points at
            self.stop()
            raise
        return self

    def stop_master(self, sig: int = signal.SIGTERM, grace: float = 10.0) -> None:
        """Stops the master alone (`sig` to its process group, SIGKILL after `grace`
        seconds); the workers keep running and try to reconnect to it."""
        old = self.pids.pop("master", None)
        if old is None:
            return
        if pid_alive(old) and pid_is_ours(old, self.dir):
            _killpg_wait(old, sig, grace)
        for p in [p for p in self.procs if p.pid == old]:
            try:
                p.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                pass
            self.procs.remove(p)
        self._write_state()

    def start_master(self, wait_workers: bool = True) -> float:
        """Starts a new master on the same host and ports after stop_master(). Without
        recovery mode it knows no worker nor application: each worker finds it by itself
        (its reconnection attempts come every 5 to 15 s at first, then every 60 s). With
        wait_workers, returns once every worker is ALIVE on it. Returns the monotonic time
        at which the new master was ALIVE."""
        if "master" in self.pids:
            raise ClusterError("the master is running; stop_master() first")
        self._spawn("master", find_java(), [MASTER_CLASS, "--host", self.host, "--port",
                                            str(self.master_port), "--webui-port",
                                            str(self.ui_port)], self.master_opts)
        self._write_state()
        self._wait(lambda s: s.get("status") == "ALIVE", "the new master to be ALIVE")
        alive_at = time.monotonic()
        if wait_workers:
            saved, self.timeout = self.timeout, max(self.timeout, 120.0)
            try:
                self._wait(lambda s: alive_workers(s) == self.workers,
                           "%d worker(s) to re-register with the new master" % self.workers)
            finally:
                self.timeout = saved
        return alive_at

    def restart_master(self, down: float = 0.0, wait_workers: bool = True,
                       sig: int = signal.SIGTERM) -> float:
        """stop_master(sig), `down` seconds, start_master(wait_workers): the workers keep
        running. Returns the monotonic time at which the new master was ALIVE."""
        self.stop_master(sig)
        if down > 0:
            time.sleep(down)
        return self.start_master(wait_workers)

    def _wait(self, ready, what: str) -> None:
        deadline = time.monotonic() + self.timeout
        last = "no answer yet"
        while True:
            for name, pid in self.pids.items():
                p = next(p for p in self.procs if p.pid == pid)
                if p.poll() is not None:
                    raise ClusterError(
                        "the %s exited with status %s while waiting for %s; its log (%s):\n%s"
                        % (name, p.returncode, what, self.log_dir / (name + ".out"),
                           tail(self.log_dir / (name + ".out"))))
            try:
                state = self.json(timeout=2)
                if ready(state):
                    return
                last = "status %s, %d alive worker(s)" % (state.get("status"),
                                                         alive_workers(state))
            except (OSError, ValueError) as e:
                last = str(e)
            if time.monotonic() > deadline:
                raise ClusterError(
                    "timed out after %.0f s waiting for %s at %s/json/ (last: %s); logs in %s:"
                    "\n%s" % (self.timeout, what, self.ui_url, last, self.log_dir,
                              tail(self.log_dir / "master.out")))
            time.sleep(0.25)

    def _write_state(self) -> None:
        state = {"master_url": self.master_url, "ui_url": self.ui_url, "host": self.host,
                 "master_port": self.master_port, "ui_port": self.ui_port,
                 "workers": self.workers, "cores": self.cores, "memory": self.memory,
                 "conf_dir": str(self.conf_dir), "pids": self.pids}
        (self.dir / STATE_FILE).write_text(json.dumps(state, indent=2) + "\n")

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM to every daemon's process group, SIGKILL after `grace` seconds; waits."""
        pids = dict(self.pids)
        state = read_state(self.dir)
        if state:
            pids.update(state["pids"])
        stop_pids(pids.values(), self.dir, grace)
        for p in self.procs:
            try:
                p.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                pass
        self.procs.clear()
        self.pids.clear()
        for f in [self.dir / STATE_FILE] + list(self.dir.glob("*.pid")):
            f.unlink(missing_ok=True)
        if self._temp:
            shutil.rmtree(self.dir, ignore_errors=True)


def alive_workers(state: dict) -> int:
    return sum(1 for w in state.get("workers", []) if w.get("state") == "ALIVE")


def read_state(state_dir: pathlib.Path) -> Optional[dict]:
    try:
        return json.loads((pathlib.Path(state_dir) / STATE_FILE).read_text())
    except (OSError, ValueError):
        return None


def stop_pids(pids, state_dir: pathlib.Path, grace: float = 10.0) -> None:
    """Signals whole process groups: executors and Python workers die with their worker.
    Workers go first so that the master does not log them as lost."""
    pids = [p for p in pids if pid_alive(p) and pid_is_ours(p, pathlib.Path(state_dir))]
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in reversed(pids):
            try:
                os.killpg(pid, sig)
            except (ProcessLookupError, PermissionError):
                pass
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and any(group_alive(p) for p in pids):
            time.sleep(0.1)
        if not any(group_alive(p) for p in pids):
            return


def _killpg_wait(pgid: int, sig: int, grace: float = 10.0) -> None:
    """`sig` to a process group, SIGKILL if it is still there after `grace` seconds."""
    for s in (sig, signal.SIGKILL):
        try:
            os.killpg(pgid, s)
        except (ProcessLookupError, PermissionError):
            return
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and group_alive(pgid):
            time.sleep(0.1)
        if not group_alive(pgid):
            return


def group_alive(pgid: int) -> bool:
    """True while any non-zombie process of the group exists."""
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False


def reap_group(pgid: int, timeout: float = 30.0) -> bool:
    """Waits for every process of a group (e.g. a PySpark driver started with
    start_new_session=True, and the JVM it launched) to exit; SIGKILLs what is left after
    timeout. True when the group ended on its own."""
    deadline = time.monotonic() + timeout
    while group_alive(pgid):
        if time.monotonic() > deadline:
            try:
                os.killpg(pgid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            return False
        time.sleep(0.1)
    return True


def print_status(state_dir: pathlib.Path) -> int:
    state = read_state(state_dir)
    if not state:
        print("no cluster state in %s (start one with `python tests/support/cluster.py start`)"
              % state_dir)
        return 1
    down = [n for n, p in state["pids"].items() if not pid_alive(p)]
    print("master   %s" % state["master_url"])
    print("web UI   %s" % state["ui_url"])
    print("conf     %s  (SPARK_CONF_DIR for drivers)" % state["conf_dir"])
    try:
        m = http_json(state["ui_url"] + "/json/")
    except (OSError, ValueError) as e:
        print("status   unreachable: %s" % e)
        if down:
            print("exited   %s" % ", ".join(down))
        return 1
    print("status   %s" % m.get("status"))
    print("totals   %s cores (%s used), %s MiB (%s used), %d alive worker(s)" % (
        m.get("cores"), m.get("coresused"), m.get("memory"), m.get("memoryused"),
        alive_workers(m)))
    print("workers")
    for w in m.get("workers", []):
        print("  %-24s %-6s cores %s/%s  memory %s/%s MiB  %s" % (
            "%s:%s" % (w.get("host"), w.get("port")), w.get("state"), w.get("coresused"),
            w.get("cores"), w.get("memoryused"), w.get("memory"), w.get("webuiaddress")))
    for a in m.get("activeapps", []):
        print("app      %s %s %s (%s cores)" % (a.get("id"), a.get("name"), a.get("state"),
                                              a.get("cores")))
    if down:
        print("exited   %s" % ", ".join(down))
    return 0 if m.get("status") == "ALIVE" and not down else 1


def main(argv: Optional[list[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("command", choices=["start", "status", "stop"])
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--memory", default="2g", help="per worker, e.g. 2g or 1536m")
    ap.add_argument("--host", default="127.0.0.1", help="address every daemon binds to")
    ap.add_argument("--master-port", type=int, default=7077)
    ap.add_argument("--ui-port", type=int, default=8080)
    ap.add_argument("--dir", type=pathlib.Path, default=DEFAULT_DIR, help="state, logs, pids")
    ap.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for ALIVE")
    ap.add_argument("--log-level", default="warn", help="log4j2 root level for Spark")
    args = ap.parse_args(argv)
    state_dir = args.dir.resolve()
    try:
        if args.command == "start":
            c = LocalCluster(workers=args.workers, cores=args.cores, memory=args.memory,
                             host=args.host, master_port=args.master_port,
                             ui_port=args.ui_port, state_dir=state_dir, timeout=args.timeout,
                             log_level=args.log_level)
            t0 = time.monotonic()
            c.start()
            print("started in %.1f s" % (time.monotonic() - t0))
            return print_status(state_dir)
        if args.command == "status":
            return print_status(state_dir)
        state = read_state(state_dir)
        if not state:
            print("no cluster state in %s; nothing to stop" % state_dir)
            return 0
        stop_pids(state["pids"].values(), state_dir)
        for f in [state_dir / STATE_FILE] + list(state_dir.glob("*.pid")):
            f.unlink(missing_ok=True)
        print("stopped %s" % state["master_url"])
        return 0
    except ClusterError as e:
        print("cluster: %s" % e, file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
