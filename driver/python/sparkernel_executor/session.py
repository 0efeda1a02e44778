"""The kernel's Spark session: started on a background thread when the kernel says so
(spark_start, spark_stop, spark_refused), awaited by the first cell that uses `spark` or
`sc`, and started again when it died under the notebook (its JVM, or the cluster dropping
its application). pyspark is imported only on the background thread: the executor's own
start stays fast."""
from __future__ import annotations

import sys
import threading
import time
from typing import Any, Callable

from .background import BackgroundJob
from .cell import Cell
from .errors import SparkUnavailable, java_message
from .frames import Channel
from .jvm import Jvm, PerContext
from .quiet import kernel_calls, own_thread

NAMES = ("spark", "sc")
_NEVER = ("No Spark session has been started in this kernel. Start one with "
          "%spark restart.")
_STOPPED = "The Spark session was stopped. Start a new one with %spark restart."
_HINTS = (
    ("BindException", "A driver port is taken or the driver host is not an address of "
                      "this machine: check spark.driver.host, spark.driver.bindAddress "
                      "and the ports."),
    ("All masters are unresponsive", "The master did not answer: check spark.master "
                                     "and that the master is running."),
    ("JAVA_GATEWAY_EXITED", "The JVM exited while starting: check that Java 17 or newer "
                            "is installed (JAVA_HOME) and read its error output above."),
)


def _is_spark_object(value: Any) -> bool:
    """A SparkSession or SparkContext (whatever its state), without importing pyspark."""
    return any(f"{c.__module__}.{c.__name__}".startswith("pyspark.") and
               c.__name__ in ("SparkSession", "SparkContext") for c in type(value).__mro__)


class Pending:
    """What `spark` and `sc` are while no session is ready: used in a cell, they wait for
    the session (or raise SparkUnavailable), so they are never silently something else.
    Outside a cell (completion, inspection) they never wait."""

    def __init__(self, owner: "Session", name: str) -> None:
        self._owner = owner
        self._name = name

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith(("__", "_repr_", "_ipython_")) or not self._owner.cell.running:
            raise AttributeError(attr)
        if attr == "stop" and self._owner.state == "stopped":
            return _stopped_again  # PySpark's stop of a stopped session does nothing
        session = self._owner.wait()
        return getattr(session if self._name == "spark" else session.sparkContext, attr)

    def __repr__(self) -> str:
        return f"<{self._name}: {self._owner.describe()}>"


def _stopped_again(*args: Any, **kwargs: Any) -> None:
    return None


def master_answers(master: str, timeout: float = 2.0) -> bool:
    """Whether any master of a spark://h1:p1,h2:p2 URL accepts a connection."""
    import socket

    for hostport in master[len("spark://"):].split(","):
        host, _, port = hostport.strip().rpartition(":")
        try:
            with socket.create_connection((host.strip("[]"), int(port)), timeout):
                return True
        except (OSError, ValueError):
            continue
    return False


class Session:
    def __init__(self, channel: Channel, shell: Any, cell: Cell, jvm: Jvm,
                 on_import: Callable[[], None]) -> None:
        self._channel = channel
        self._shell = shell
        self.cell = cell
        self._jvm = jvm
        self._on_import = on_import  # pyspark imported, no JVM yet: hook its entry points
        self.lock = threading.Lock()  # current, state and problem, against the start job
        self._gen = 0  # bumped by every command: events of older ones are dropped
        self.state = "none"  # none starting ready failed stopped refused
        self.problem = _NEVER  # why there is no session
        self.current: Any = None  # the SparkSession cells see, when ready
        self.live: Any = None  # the newest session built, stopped by the next job
        self._job: BackgroundJob | None = None  # the newest start or stop; each waits
        self._since = 0.0
        self.notice = ""
        self.conf: dict[str, str] | None = None  # of the last spark_start, for a revival
        self._candidates: list[dict] = []  # the kernel's free port slots
        self._ui_proxy = ""  # the UI's path behind a proxy, "{port}" in it (sparkernel.ui.proxy)
        self._quiet_wait = False  # the notice already says a session is starting
        self._published: dict[str, Any] = {}
        self._gone_master: str | None = None  # a lost master not back yet (check_alive)
        self._jvm_context = PerContext(lambda sc: sc._jsc.sc())  # the JVM's SparkContext
        self.claimed = False  # a cell used the predefined spark/sc: PySpark's rules apply
        # The entry points are hooked (hooks.py): cells' jobs run in PySpark's active
        # context, whoever built it.
        self.follows_built = False
        self.stopped_by = 0  # the cell whose code stopped the session `spark` refers to
        self.announced = ""  # the application id the kernel was last told about
        self.importing = threading.Lock()  # held while the session's thread builds it
        # Set once the session's thread has imported pyspark and hooked its entry points
        # (and after a start that failed before): a cell that may import pyspark or build
        # a session out of sight (a helper module, %run) waits for it at the kernel's start.
        self.hooked = threading.Event()
        # A cell's own session asked for the JVM while ours started and before its context
        # was built (give_way): ours is then never built, and `spark` says this problem.
        self._give_way = ""
        self._decided = False  # the start job has decided whether to build its context
        for name in NAMES:
            self.publish(name, Pending(self, name))

    # ---- commands from the kernel (main thread, between cells) ----

    def on_start(self, msg: dict) -> None:
        conf = {str(k): ("true" if v is True else "false" if v is False else str(v))
                for k, v in (msg.get("conf") or {}).items()}
        self._candidates = [c for c in (msg.get("port_candidates") or [])
                            if isinstance(c, dict)]
        self._ui_proxy = str(msg.get("ui_proxy") or "")
        self._jvm.configure(msg)
        self.start(conf, str(msg.get("notice") or ""))

    def on_stop(self, msg: dict) -> None:
        self._detach("stopped", _STOPPED, self._stop_job)

    def on_refused(self, msg: dict) -> None:
        self._detach("refused", str(msg.get("message") or "The kernel refused to start "
                                    "a Spark session."), lambda gen: self._teardown())

    def start(self, conf: dict[str, str], notice: str) -> None:
        self.notice = notice
        self.conf = dict(conf)
        self._detach("starting", "", lambda gen: self._start_job(gen, conf))
        self.send({"type": "spark_state", "state": "starting"})

    def _detach(self, state: str, problem: str, job: Any) -> None:
        """Cells stop seeing the current session at once; `job` runs after the last one."""
        with self.lock:
            self._gen += 1
            gen = self._gen
            self.state, self.problem = state, problem
            self.current, self.cell.tag = None, None
            self._since = time.monotonic()
            self._give_way, self._decided = "", False
        for name in NAMES:
            self.publish(name, Pending(self, name))
        prev = self._job

        def run() -> None:
            if prev is not None:
                try:
                    prev.get()
                except BaseException:
                    pass
            job(gen)

        self._job = BackgroundJob(f"spark-{gen}", run).start()

    def send(self, event: dict, gen: int | None = None) -> None:
        if gen is not None and gen != self._gen:
            return  # a later command superseded this one
        try:
            self._channel.send(event)
        except OSError:
            pass  # the kernel is gone

    # ---- background jobs (one at a time, in order) ----

    def _start_job(self, gen: int, conf: dict[str, str]) -> None:
        self._teardown()
        # The kernel's free port slots, in order: when another kernel binds this slot's
        # ports between the kernel's probe and our JVM's bind, the next slot is tried here
        # (a waiting cell cannot receive a new command from the kernel).
        candidates: list[dict | None] = list(self._candidates) or [None]
        used: dict | None = None
        for i, ports in enumerate(candidates):
            attempt = dict(conf)
            if ports is not None:
                attempt["spark.driver.port"] = str(ports.get("driver"))
                attempt["spark.driver.blockManager.port"] = str(ports.get("block_manager"))
                attempt["spark.ui.port"] = str(ports.get("ui"))
                if self._ui_proxy:  # the UI's links follow the slot's port
                    attempt["spark.ui.proxyBase"] = self._ui_proxy.replace(
                        "{port}", str(ports.get("ui")))
            log_at = self._jvm.log_size()
            try:
                with self.importing:
                    session = self._build(attempt)
                used = ports
                break
            except BaseException as exc:
                self.hooked.set()  # nothing to wait for: the cells see the error
                message = self._explain(exc)
                self._teardown()
                # A port taken by another kernel between the kernel's probe and our bind:
                # the JVM may say so in the exception, or only in its log before it dies
                # (the UI's bind failure ends the gateway: the cell sees a py4j error).
                taken = "BindException" in message or self._jvm.log_says_bind_failed(log_at)
                if taken and i + 1 < len(candidates) and gen == self._gen:
                    continue
                with self.lock:
                    if gen == self._gen:
                        self.state, self.problem = "failed", message
                self.send({"type": "spark_state", "state": "failed", "error": message}, gen)
                return
        if session is None:  # it gave way before its context was built (give_way)
            with self.lock:
                if gen != self._gen:
                    return
                self.state, self.problem = "stopped", self._give_way
                self._jvm.mark_ready()
            self.send({"type": "spark_state", "state": "stopped", "gave_way": True}, gen)
            return
        sc = session.sparkContext
        with self.lock:
            if gen != self._gen:
                return
            self.current, self.state = session, "ready"
            self.claimed, self.stopped_by, self.announced = False, 0, sc.applicationId
            seconds = time.monotonic() - self._since
            self._jvm.mark_ready()
            self._gone_master = None
        self.publish("spark", session, revive=True)
        self.publish("sc", sc, revive=True)
        self.send({"type": "spark_state", "state": "ready", "app_id": sc.applicationId,
                   "ui_url": sc.uiWebUrl, "master": sc.master,
                   "spark_version": session.version, "seconds": round(seconds, 2),
                   "log_file": self._jvm.log_file, "ports": used}, gen)
        if not self.cell.waiting and gen == self._gen:
            # Its own thread: a start job must never wait for executors (a %spark stop
            # queued behind it would too); stopping the session cancels it.
            own_thread(threading.Thread(target=self._warm_up, args=(session,),
                                        name="spark-warm-up", daemon=True)).start()

    def _warm_up(self, session: Any) -> None:
        """One small job once the session is announced, when no cell waits for it: the
        first job of a fresh driver pays for query planning, code generation and the
        executor's first task (measured: a 10**6-row count took 4.5 s as a first job, well
        under a second afterwards). A cell that arrives meanwhile runs at once (the session
        is ready); one that already waited is not kept waiting for this."""
        try:
            # The group is this thread's own (pyspark pins local properties per thread).
            session.sparkContext.setJobGroup("sparkernel-warm-up",
                                             "sparkernel: warming up the session")
            session.range(1000, numPartitions=2).selectExpr("sum(id)").collect()
        except Exception:
            pass  # the session's own use will show what is wrong

    def _stop_job(self, gen: int) -> None:
        self._teardown()
        self.send({"type": "spark_state", "state": "stopped"}, gen)

    def _build(self, conf: dict[str, str]) -> Any:
        from pyspark import SparkContext
        from pyspark.sql import SparkSession

        # The entry points are hooked before the JVM starts: a session a cell's code builds
        # meanwhile (a helper function, %run) waits for this one and then replaces it
        # (yield_warm), rather than racing it for the JVM or getting it back unasked.
        self._on_import()
        self.hooked.set()
        gateway, pairs = self._jvm.launch(conf)
        SparkContext._ensure_initialized(gateway=gateway)
        with self.lock:
            self._decided = True
            gave_way = bool(self._give_way)
        if gave_way:  # the JVM, with the kernel's settings, hosts a cell's own session
            self._jvm.train_archive()
            return None
        builder = SparkSession.builder
        for k, v in pairs.items():
            builder = builder.config(k, v)
        self.live = builder.getOrCreate()
        self._jvm.train_archive()
        return self.live

    def give_way(self, problem: str) -> bool:
        """Main thread, in a cell whose own session request names what ours will not have,
        while ours starts: when its start has not begun building the context, it stops
        once its JVM runs (with the kernel's settings as the JVM's defaults) and the cell's
        session starts in that JVM. A context is not built only to be stopped (a second
        or more: an application registered, an executor launched and killed). Returns
        whether it will give way; then wait() for the JVM, and `spark` says `problem`."""
        with self.lock:
            if self.state != "starting" or self._decided:
                return False
            self._give_way = problem
            return True

    def keep_way(self) -> None:
        """A cell interrupted while waiting after give_way: the session is built after all,
        unless it already gave way."""
        with self.lock:
            if not self._decided:
                self._give_way = ""

    def _explain(self, exc: BaseException) -> str:
        what = java_message(exc).rstrip(".")
        hint = next((h for key, h in _HINTS if key in what or key in repr(exc)),
                    "Check the Spark settings (%spark config).")
        log = f" Spark's log: {self._jvm.log_file}." if self._jvm.log_file else ""
        return (f"The Spark session could not start: {what}. {hint}{log} "
                "Then start it again with %spark restart.")

    def _teardown(self) -> None:
        """Stops the newest session and its JVM, so the application leaves the master and
        the next session starts with its own driver options."""
        session, self.live = self.live, None
        if "pyspark" not in sys.modules:
            return
        from pyspark import SparkContext
        from pyspark.sql import SparkSession

        # A session a cell built in this JVM goes with it, its application stopped cleanly.
        active = SparkContext._active_spark_context
        for stop in ([session.stop] if session is not None else []) + \
                ([active.stop] if active is not None and (
                    session is None or active is not session.sparkContext) else []):
            stopper = own_thread(threading.Thread(target=stop, daemon=True))
            stopper.start()
            stopper.join(30)
        SparkSession._instantiatedSession = None
        SparkSession._activeSession = None
        SparkContext._active_spark_context = None
        self._jvm.stop()

    # ---- cells (main thread) ----

    def active_context(self) -> Any:
        """The SparkContext cells' jobs run in, whoever built it (None when there is none)."""
        if "pyspark" not in sys.modules or not self.follows_built:
            return self.current.sparkContext if self.current is not None else None
        from pyspark import SparkContext

        return SparkContext._active_spark_context

    def wait(self, quiet: bool = False) -> Any:
        """The ready session, waiting for it if it is starting (main thread, in a cell);
        `quiet`: for a cell that builds its own session, which must not hear about ours."""
        if self.notice and not quiet:
            print(self.notice, flush=True)
            self.notice = ""
        job = self._job
        quiet, self._quiet_wait = quiet or self._quiet_wait, False
        if self.state == "starting" and job is not None:
            if not quiet:
                waited = time.monotonic() - self._since
                print("Waiting for the Spark session to start\u2026" if waited < 1 else
                      f"Waiting for the Spark session (starting for {waited:.0f} s)\u2026",
                      flush=True)
            self.cell.waiting = True
            try:
                job.get()
            except KeyboardInterrupt:
                raise
            except BaseException:
                pass  # the job recorded what went wrong
        session = self.current
        if session is None:
            raise SparkUnavailable(self.problem or _NEVER) from None
        return session

    def describe(self) -> str:
        if self.state == "starting":
            return f"the Spark session is starting ({time.monotonic() - self._since:.1f} s)"
        return self.problem or _NEVER

    def publish(self, name: str, value: Any, revive: bool = False) -> None:
        """Sets `spark` or `sc` unless the user has put something else there; `revive`
        (a session the kernel started: %spark restart, after a JVM's death or a lost
        application) also replaces a session or context of the user's own binding, dead
        by then: what the user asked the restart for."""
        ns = self._shell.user_ns
        if name not in ns or ns[name] is self._published.get(name) or \
                (revive and _is_spark_object(ns[name])):
            ns[name] = value
            self._published[name] = value
            # Like IPython's own names (In, Out, exit): %who and %whos leave it out while
            # it holds what the kernel put there, as a notebook on ipykernel has no `spark`
            # until its code makes one.
            self._shell.user_ns_hidden[name] = value

    def release(self, names: set[str]) -> None:
        """The names a cell's own code bound are the user's from now on: a stop leaves
        them as PySpark leaves them (a stopped session, PySpark's own errors), and a
        session a later cell builds does not take them over (issue 15's rule)."""
        for name in names:
            if isinstance(self._shell.user_ns.get(name), Pending):
                continue  # the binding never ran (the cell failed before it): still ours
            self._published.pop(name, None)
            self._shell.user_ns_hidden.pop(name, None)

    def is_published(self, name: str) -> bool:
        """Whether `name` still holds what the kernel put there."""
        return name in self._published and self._shell.user_ns.get(name) is \
            self._published[name]

    def withdraw(self, session: Any) -> None:
        """`spark` and `sc`, where they still hold the kernel's `session` (stopped), become
        placeholders, and the kernel hears that there is no session."""
        ns = self._shell.user_ns
        for name, value in (("spark", session), ("sc", session.sparkContext)):
            if ns.get(name) is value and self._published.get(name) is value:
                self.publish(name, Pending(self, name))
        self.send({"type": "spark_state", "state": "stopped"})

    # ---- a session gone under the notebook (main thread, before a cell) ----

    def check_alive(self) -> None:
        """A `spark.stop()` in a cell or a dead JVM: cells get a clear error, not py4j's.
        A session the cluster dropped (master restarted, application killed) is revived."""
        session = self.current
        if session is None:
            if (self._gone_master and self.state == "failed" and self.conf is not None
                    and master_answers(self._gone_master)):
                self._quiet_wait = True  # the master is back: see _cluster_dropped
                self.start(self.conf, "The Spark master is back; a new Spark session is "
                                      "starting\u2026")
            return
        from pyspark import SparkContext

        proc = getattr(SparkContext._gateway, "proc", None)
        dead = proc is None or proc.poll() is not None
        if not dead and session.sparkContext._jsc is not None:
            self._cluster_dropped(session)
            return
        if dead and self.conf is not None:
            # The JVM died under the session (killed, OOM): what a user expects is a
            # working `spark` again, as %spark restart would give, and to be told once.
            self._quiet_wait = True
            self.start(self.conf, "The previous Spark driver (JVM) died; a new Spark "
                                  "session is starting\u2026")
            return
        if not dead:
            self._user_stopped(session)
            return
        self._detach("failed", f"The Spark driver (JVM) exited. Spark's log: "
                               f"{self._jvm.log_file}. Start a new session with %spark "
                               f"restart.", lambda gen: self._teardown())
        self.send({"type": "spark_state", "state": "failed", "error": self.problem})

    def _user_stopped(self, session: Any) -> None:
        """The cell's code stopped the session `spark` refers to: the notebook's own
        business, as on plain PySpark. The JVM stays (the next builder starts its session
        there) and no cell is refused; only a later use of that stopped `spark` or `sc`
        gets one error that says which cell stopped it and what to do."""
        by = f" by cell [{self.stopped_by}]" if self.stopped_by else ""
        problem = (f"The Spark session `spark` was stopped{by}. Build a new one "
                   "(SparkSession.builder.getOrCreate()) or run %spark restart.")
        with self.lock:
            self.current, self.state, self.problem = None, "stopped", problem
            self.cell.tag = None
        self.withdraw(session)

    def _cluster_dropped(self, session: Any) -> None:
        """A live JVM whose application the cluster no longer runs. Without recovery mode
        a restarted standalone master knows no application; the driver only logs
        "Disconnected from Spark cluster! Waiting for reconnection..." and waits forever
        (its app client re-registers only when a recovering master asks it to), the new
        master has the worker kill its executors, and every job then waits for executors
        that never come. An application the master killed (UI, "Master removed our
        application") leaves a stopped SparkContext in a live JVM. Either way the user
        gets a new session, as after a JVM death, and one line saying why; while the
        master does not answer, a clear error and a new session at the first cell after
        it is back."""
        why = None
        try:
            # One JVM call a cell: the JVM's SparkContext is kept per context.
            with kernel_calls():
                stopped = self._jvm_context.get(session.sparkContext).isStopped()
            if stopped:
                why = "The cluster stopped this notebook's Spark application"
        except Exception:
            self._jvm_context.forget()
            return  # the JVM is going away: the next cell sees it dead
        master = str(self.conf.get("spark.master", "")) if self.conf else ""
        if why is None and master.startswith("spark://") \
                and self._jvm.log_since_ready(b"Disconnected from Spark cluster"):
            why = ("The connection to the Spark master was lost (a restart?), and with it "
                   "this session's application")
        if why is None:
            return
        if self.conf is not None and (not master.startswith("spark://")
                                      or master_answers(master)):
            self._quiet_wait = True
            self.start(self.conf, f"{why}; a new Spark session is starting\u2026")
            return
        self._gone_master = master or None
        problem = (f"{why}, and the master ({master}) does not answer now. The next cell "
                   "starts a new session once it is back (or use %spark restart).")
        self._detach("failed", problem, lambda gen: self._teardown())
        self.send({"type": "spark_state", "state": "failed", "error": problem})

    # ---- exit ----

    def shutdown(self) -> None:
        """At exit (EOF on the command pipe, SIGTERM): stop the session cleanly."""
        with self.lock:
            self._gen += 1
            self.current = None
        job = self._job
        if job is not None:
            try:
                job.get(20)
            except BaseException:
                pass
        self._teardown()
