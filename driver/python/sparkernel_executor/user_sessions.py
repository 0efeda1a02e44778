"""Sessions a notebook builds itself (issue 15): until a cell uses the predefined `spark`
or `sc`, the kernel's warm session gives way to a request that names something it does not
have, or becomes the user's when the request names nothing new; a session a cell built is
adopted (the predefined names, the cell's job tag, the kernel's progress and cleanup)."""
from __future__ import annotations

import ast
import os
import re
from typing import Any

from .cell import Cell
from .jvm import Jvm
from .quiet import kernel_calls
from .session import NAMES, Session

_SQL_MAGIC = re.compile(r"^\s*%%?sql\b", re.M)
_BUILDS = re.compile(r"\b(SparkSession|SparkContext|SparkConf|findspark|getOrCreate)\b")
# What may import modules (pyspark among them) or run code out of the cell's sight.
_IMPORTS = re.compile(r"\bimport\b|%run\b|\bexec\s*\(|\b__import__\b")


_parsed: tuple[str, ast.AST | None] = ("", None)


def _tree(shell: Any, code: str) -> ast.AST | None:
    """The cell's code as IPython runs it, parsed (None when it is not Python). The last
    one is kept: before_cell asks uses_predefined and binds about the same cell."""
    global _parsed
    if _parsed[0] != code or _parsed[1] is None:
        try:
            _parsed = (code, ast.parse(shell.transform_cell(code)))
        except Exception:  # not Python: the cell fails on its own
            return None
    return _parsed[1]


def uses_predefined(shell: Any, code: str) -> set[str]:
    """Which of `spark` and `sc` a cell reads before it binds the name itself
    (`spark = SparkSession.builder...getOrCreate()` then `spark.stop()` uses only its own),
    or is SQL. A binding counts where its statement ends, so `spark = spark.newSession()`
    reads the predefined one first."""
    if _SQL_MAGIC.search(code):
        return {"spark"}
    tree = _tree(shell, code)
    if tree is None:
        return set()
    used: set[str] = set()
    first_load: dict[str, tuple[int, int]] = {}
    first_store: dict[str, tuple[int, int]] = {}
    for node in ast.walk(tree):
        if isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign, ast.For, ast.With,
                             ast.Import, ast.ImportFrom)):
            end = (node.end_lineno or 0, node.end_col_offset or 0)
            targets = [n for n in ast.walk(node) if isinstance(n, ast.Name)
                       and isinstance(n.ctx, ast.Store)]
            targets += [ast.Name(id=(a.asname or a.name).split(".")[0])
                        for a in getattr(node, "names", [])]
            for t in targets:
                if t.id in NAMES and first_store.get(t.id, end) >= end:
                    first_store[t.id] = end
        elif isinstance(node, ast.Name) and node.id in NAMES and isinstance(node.ctx, ast.Load):
            at = (node.lineno, node.col_offset)
            if first_load.get(node.id, at) >= at:
                first_load[node.id] = at
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
              and node.func.attr in ("run_line_magic", "run_cell_magic")):
            for arg in node.args[1:]:
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    used |= uses_predefined(shell, arg.value)
    return used | {name for name, at in first_load.items()
                   if at < first_store.get(name, (1 << 30, 0))}


_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)


def binds(shell: Any, code: str) -> set[str]:
    """Which of `spark` and `sc` a cell's own code binds at the notebook's top level
    (`spark = SparkSession.builder...getOrCreate()`, `sc = spark.sparkContext`, an
    import as, a for or with target; not a function's local of the same name, unless
    declared global). From then on that name is the user's: the kernel no longer puts
    anything there except a working session after %spark restart or a JVM's death."""
    tree = _tree(shell, code)
    if tree is None:
        return set()
    found: set[str] = set()
    todo: list[ast.AST] = [tree]
    while todo:
        node = todo.pop()
        if isinstance(node, ast.Global):
            found |= {n for n in node.names if n in NAMES}
        elif isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            if node.id in NAMES:
                found.add(node.id)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            found |= {(a.asname or a.name).split(".")[0] for a in node.names} & set(NAMES)
        if isinstance(node, _SCOPES) and node is not tree:
            if getattr(node, "name", None) in NAMES:  # def spark(): ... / class sc: ...
                found.add(node.name)
            # its own scope: only its `global spark` declarations bind the notebook's name
            todo.extend(n for n in ast.walk(node) if isinstance(n, ast.Global))
            continue
        todo.extend(ast.iter_child_nodes(node))
    return found


def builds_session(code: str) -> bool:
    """Whether a cell's code may build a session of its own."""
    return _BUILDS.search(code) is not None


def may_import(code: str) -> bool:
    """Whether a cell's code may import pyspark, directly or through a module or script."""
    return _IMPORTS.search(code) is not None


def conf_pairs(conf: Any) -> dict[str, str]:
    """The settings a SparkConf holds (a JVM-backed one includes the JVM's defaults)."""
    if conf is None:
        return {}
    try:
        return {str(k): str(v) for k, v in conf.getAll()}
    except Exception:
        return {}


def _differences(session: Any, request: dict[str, str]) -> list[str]:
    """The keys of a session request that the running session cannot give: another app
    name or master, or a static setting with another value (runtime SQL settings apply to
    a running session, as PySpark's getOrCreate applies them)."""
    conf = session.sparkContext.getConf()
    out = []
    for key, value in request.items():
        if conf.get(key) == value:
            continue
        if key in ("spark.app.name", "spark.master"):
            out.append(key)
        elif not session.conf.isModifiable(key):
            out.append(key)
    return out


def _names_other(warm: dict[str, str], request: dict[str, str]) -> list[str]:
    """The keys of a session request that the warm session, still starting with the
    settings `warm`, will surely not have: another app name or master. (Whether another
    setting is static needs the session; such a request waits for it, then decides.)"""
    return [key for key in ("spark.app.name", "spark.master")
            if request.get(key) not in (None, warm.get(key))]


def _as_first_launch(launch: dict[str, str]) -> None:
    """The JVM's defaults as if plain PySpark had launched it for the first session a cell
    builds. Plain PySpark starts its JVM with that session's conf as system properties, so
    a later session that names no master or app name gets the first one's (or, when the
    first named none, spark-submit's: the deployment's spark.master or local[*], and
    "pyspark-shell", which the kernel's JVM starts with: jvm.launch). Only the master and
    the app name: the kernel's other settings are what it adds to every session."""
    from pyspark import SparkContext

    try:
        system = SparkContext._jvm.java.lang.System
        for key in ("spark.master", "spark.app.name"):
            if launch.get(key):
                system.setProperty(key, str(launch[key]))
    except Exception:
        pass  # the JVM is going away: the request fails on its own


# Settings the driver JVM takes at its launch only (spark-submit reads them: its heap, its
# options and class path, the jars put on the driver's class loader), and Spark's default
# where it has one.
_LAUNCH_ONLY = {"spark.driver.memory": "1g", "spark.driver.extraJavaOptions": None,
                "spark.driver.defaultJavaOptions": None, "spark.driver.extraClassPath": None,
                "spark.driver.extraLibraryPath": None, "spark.jars": None,
                "spark.jars.packages": None, "spark.jars.repositories": None,
                "spark.jars.excludes": None, "spark.jars.ivy": None,
                "spark.jars.ivySettings": None}


_SUBMIT_ARGS = "PYSPARK_SUBMIT_ARGS"


def _launch_changes(launch: dict[str, str], jvm: Jvm) -> dict[str, str]:
    """The launch-only settings of a request that the running JVM was not launched with
    (its system properties are what spark-submit gave it), and PYSPARK_SUBMIT_ARGS when
    the notebook set its own (plain PySpark hands it to spark-submit at the launch)."""
    from pyspark import SparkContext

    try:
        system = SparkContext._jvm.java.lang.System
        out = {key: str(launch[key]) for key, default in _LAUNCH_ONLY.items()
               if key in launch and str(launch[key]) != (system.getProperty(key) or default)}
    except Exception:
        return {}  # the JVM is going away: the request fails on its own
    args = _own_submit_args(jvm)
    if args:
        out[_SUBMIT_ARGS] = args
    return out


def _own_submit_args(jvm: Jvm) -> str | None:
    """PYSPARK_SUBMIT_ARGS, when a cell set other ones than the kernel started with."""
    args = os.environ.get(_SUBMIT_ARGS)
    return args if args and args != jvm.submit_args else None


def first_launch_of(session: Any) -> None:
    """The kernel's session is the first one a cell uses (the predefined `spark`/`sc`): the
    JVM's master and app name are its own, as if plain PySpark had launched the JVM for
    it, so a later builder naming none gets them after a stop."""
    try:
        sc = session.sparkContext
        _as_first_launch({"spark.master": sc.master, "spark.app.name": sc.appName})
    except Exception:
        pass  # stopped meanwhile: the cell's use of it says so


# JVM-wide counters that name what a query shows (`id#0L` in a plan, `[plan_id=3]` of an
# exchange): the warm session's warm-up query advanced them. (RDD, job and shuffle ids are
# the context's own and start again with the user's.)
_COUNTERS = (("org.apache.spark.sql.catalyst.expressions.NamedExpression$", "curId"),
             ("org.apache.spark.sql.execution.SparkPlan$", "nextPlanId"))


def _fresh_ids() -> None:
    """When the unused warm session has given way: the query counters back to 0, so that
    `df.explain()` in the cell's own session prints the ids it prints in a fresh JVM, as
    on plain PySpark. Safe then: no query of a live session exists (the warm one is
    stopped and no cell used it). The counters are private fields of Scala objects
    (static in Spark 4, on the object in 3.5), set through method handles because py4j
    hands an AtomicLong back to Python as a number. Nothing happens where a Spark version
    has no such field."""
    from pyspark import SparkContext

    jvm = SparkContext._jvm
    gateway = SparkContext._gateway
    if jvm is None or gateway is None:
        return
    handles = jvm.java.lang.invoke.MethodHandles
    for owner, name in _COUNTERS:
        try:
            cls = jvm.java.lang.Class.forName(owner)
            field = cls.getDeclaredField(name)
            field.setAccessible(True)
            kind = field.getType()
            prim = (jvm.java.lang.Long.TYPE if kind.getName().endswith("AtomicLong")
                    else jvm.java.lang.Integer.TYPE)
            lookup = handles.publicLookup()
            setter = lookup.findVirtual(kind, "set", jvm.java.lang.invoke.MethodType.methodType(
                jvm.java.lang.Void.TYPE, prim))
            reset = handles.collectArguments(setter, 0, lookup.unreflectGetter(field))
            args = gateway.new_array(jvm.java.lang.Object, reset.type().parameterCount())
            if len(args) == 2:  # an instance field: of the object's MODULE$
                args[0] = cls.getDeclaredField("MODULE$").get(None)
            args[len(args) - 1] = 0
            reset.invokeWithArguments(args)
        except Exception:
            continue


def _port_of(url: str | None) -> int:
    m = re.search(r":(\d+)/?$", url or "")
    return int(m.group(1)) if m else 0


class UserSessions:
    def __init__(self, session: Session, cell: Cell, jvm: Jvm) -> None:
        self._session = session
        self._cell = cell
        self._jvm = jvm

    def yield_warm(self, request: dict[str, str], launch: dict[str, str] | None = None,
                   conf: Any = None) -> None:
        """Until a cell uses the predefined `spark`/`sc`, a request that names something
        the warm session does not have (an app name, another master, a static setting)
        gets its own session, as on plain PySpark: the warm context stops here and the
        user's starts in the same JVM (the JVM's start is what the warm-up saves). A
        request that names nothing new gets the warm session, which is then the user's.
        `launch`: the settings plain PySpark would launch its JVM with for this request
        (its conf: a builder's options; not SparkContext's master and appName arguments);
        default `request`. `conf`: the request's SparkConf, if any."""
        launch = request if launch is None else launch
        life = self._session
        if not life.claimed and life.state == "starting":
            life.notice = ""  # about the kernel's request; plain PySpark prints nothing
            named = _names_other(life.conf or {}, request)
            if named and life.give_way(self._gave_way()):
                try:  # the JVM only: the warm session's context is not built
                    life.wait(quiet=True)
                except KeyboardInterrupt:
                    life.keep_way()
                    raise
                except Exception:
                    pass
                if life.state == "stopped":
                    life.claimed = True
                    self._given_way(request, named, launch, conf)
                return  # (or it failed: the request goes its own way, as on plain PySpark)
            try:  # built out of the cell's sight (a helper, %run): the warm one first
                life.wait(quiet=True)
            except Exception:
                return  # it failed: the request goes its own way, as on plain PySpark
        session = life.current
        if life.claimed or session is None or life.state != "ready":
            return
        sc = session.sparkContext
        if life.active_context() is not sc or sc._jsc is None:
            return
        try:
            differs = _differences(session, request)
        except Exception:
            return  # the JVM is going away: the request fails on its own
        if _own_submit_args(self._jvm):  # a JVM launched with them, as plain PySpark's
            differs.append(_SUBMIT_ARGS)
        if not differs:
            life.claimed = True
            _as_first_launch(launch)
            return
        with life.lock:
            life.current, life.claimed = None, True
            life.state, life.problem = "stopped", self._gave_way()
        life.live = None  # the JVM stays (unless the request needs its own): see _given_way
        try:
            session.stop()
        except Exception:
            pass
        life.withdraw(session)
        self._given_way(request, differs, launch, conf)

    def _given_way(self, request: dict[str, str], differs: list[str], launch: dict[str, str],
                   conf: Any) -> None:
        """The warm session has given way to a cell's request (its context stopped or never
        built): the JVM is made what plain PySpark's would be for the request, launched
        for it. A setting the JVM takes only at its launch (its heap, options, class path,
        jars) with another value than the running JVM's needs a new JVM, started with the
        kernel's settings and the request's; else the running one hosts the session, its
        defaults and query counters as a fresh JVM's. One line in the cell says which."""
        changes = _launch_changes(launch, self._jvm)
        self._announce(request, differs + [k for k in changes if k not in differs],
                       bool(changes))
        if changes:
            self._relaunch(changes, conf)
        _as_first_launch(launch)
        _fresh_ids()

    def _relaunch(self, changes: dict[str, str], conf: Any) -> None:
        """A new driver JVM in place of the running one (which no session uses): the
        kernel's settings with the request's launch settings over them. A SparkConf the
        cell made in the old JVM gets its settings again in the new one."""
        from pyspark import SparkContext

        held = conf_pairs(conf) if getattr(conf, "_jconf", None) is not None else None
        self._jvm.stop()
        settings = dict(self._session.conf or {})
        settings.update(changes)
        gateway, _ = self._jvm.launch(settings, settings.pop(_SUBMIT_ARGS, None))
        SparkContext._ensure_initialized(gateway=gateway)
        if held is not None:
            jconf = SparkContext._jvm.SparkConf(False)
            for k, v in held.items():
                jconf.set(k, v)
            conf._jconf = jconf

    def _gave_way(self) -> str:
        return (f"The kernel's unused Spark session gave way to the one cell "
                f"[{self._cell.count}] builds; use that one, or %spark restart.")

    @staticmethod
    def _announce(request: dict[str, str], differs: list[str], fresh: bool) -> None:
        name = request.get("spark.app.name")
        where = ("in a new driver JVM, as its launch settings ask" if fresh
                 else "in the kernel's running JVM")
        print(f"sparkernel: starting this cell's own Spark session"
              f"{f' {name!r}' if name else ''} {where} (the warm session it replaces was "
              f"never used; set {', '.join(differs[:3])}).", flush=True)

    def adopt(self, sc: Any, session: Any) -> None:
        """A session a cell built (or got back) is the one the kernel follows: the
        predefined names point to it, its jobs carry the cell's tag, and the kernel
        learns its application (progress, the WAITING report, cleanup)."""
        if sc is None or getattr(sc, "_jsc", None) is None:
            return
        if session is None:
            from pyspark.sql import SparkSession

            session = SparkSession._instantiatedSession
            if session is not None and session.sparkContext is not sc:
                session = None
        life = self._session
        life.claimed = True
        if session is not None and session is not life.current:
            with life.lock:
                life.current, life.state, life.problem = session, "ready", ""
                life.stopped_by = 0
            life.publish("spark", session)
        life.publish("sc", sc)
        self._cell.join_tag(sc)
        with kernel_calls():
            self._tell_kernel(sc)

    def _tell_kernel(self, sc: Any) -> None:
        """Tells the kernel the application of a session a cell built (once)."""
        life = self._session
        try:
            app = sc.applicationId
        except Exception:
            return
        if app and app != life.announced:
            life.announced = app
            port = _port_of(sc.uiWebUrl)
            try:  # what the WAITING report checks against the workers
                cores = int(sc._conf.get("spark.executor.cores") or 0)
            except Exception:
                cores = 0
            life.send({"type": "spark_state", "state": "ready", "app_id": app,
                       "ui_url": sc.uiWebUrl or "", "master": sc.master,
                       "spark_version": sc.version, "seconds": 0,
                       "log_file": self._jvm.log_file,
                       "ports": {"ui": port} if port else None, "switch": True,
                       "executor_cores": cores})

    def note_stop(self, sc: Any) -> None:
        """A cell stops context `sc`: remembered when it is the one `spark` refers to."""
        session = self._session.current
        if session is not None and session.sparkContext is sc:
            self._session.stopped_by = self._cell.count
