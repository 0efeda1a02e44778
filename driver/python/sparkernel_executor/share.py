"""Executors given back to the cluster while another application waits for cores: the
idle notebook's (spark_give_back), and an elastic share held to its fair part, the
executors above it gone at their next task boundary and no more asked for (spark_shrink),
until nobody waits (spark_grow)."""
from __future__ import annotations

from typing import Any

from .cell import Cell
from .session import Session


def _jvm() -> Any:
    from pyspark import SparkContext

    return SparkContext._jvm


def _shrink(jsc: Any, keep: int) -> None:
    """Holds the session to `keep` executors while another application waits. Those above
    it are decommissioned (the newest first: the oldest hold the most cached blocks and warm
    JIT code): a decommissioned executor takes no new task, ends the ones it runs and exits,
    and the target the master holds for the application drops with it. A session at or under
    `keep` asks the master for no more than `keep` (nor more than dynamic allocation wants),
    so that cores given back by another go to the application that waits, not to this one.
    Nothing is killed: needs spark.decommission.enabled, which the kernel sets."""
    backend = jsc.schedulerBackend()
    pending = backend.executorsPendingDecommission()
    seq = jsc.getExecutorIds()
    ids = [seq.apply(n) for n in range(seq.size())]
    live = sorted((i for i in ids if not pending.contains(i)), key=lambda i: (len(i), i))
    excess = live[keep:]
    if not excess:
        wanted = _allocation_target(jsc)
        if wanted is not None and wanted > keep:
            jsc.requestTotalExecutors(keep, 0, _empty_map())
        return
    info_cls = _jvm().org.apache.spark.scheduler.ExecutorDecommissionInfo
    host = getattr(info_cls, "apply$default$2")()
    for executor in reversed(excess):
        info = info_cls.apply("sparkernel: another application waits for cores", host)
        backend.decommissionExecutor(executor, info, True, False)


def _allocation_target(jsc: Any) -> int | None:
    """The executors dynamic allocation wants for the session now (None: not known)."""
    manager = jsc.executorAllocationManager()
    if manager.isEmpty():
        return None
    targets = manager.get().numExecutorsTargetPerResourceProfileId()
    default_id = jsc.resourceProfileManager().defaultResourceProfile().id()
    target = targets.get(default_id)
    return None if target.isEmpty() else int(target.get())


def _empty_map() -> Any:
    return getattr(getattr(_jvm().scala.collection.immutable, "Map$"), "MODULE$").empty()


def _grow(jsc: Any) -> None:
    """Gives the master back the target dynamic allocation holds (a shrink lowered the
    master's, not the allocation manager's): the session may take free cores again."""
    wanted = _allocation_target(jsc)
    if wanted is not None:
        jsc.requestTotalExecutors(wanted, 0, _empty_map())


class Share:
    def __init__(self, session: Session, cell: Cell) -> None:
        self._session = session
        self._cell = cell

    # ---- a command from the kernel (main thread, between cells) ----

    def give_back(self, msg: dict) -> None:
        """Gives the session's idle executors back to the cluster now (the notebook is idle
        and another application waits for cores); the driver stays, and dynamic allocation
        asks for executors again when a job needs them. SparkContext.killExecutors refuses
        under dynamic allocation, so the scheduler backend is asked directly, without
        lowering its target (which is already zero with no task pending) and without
        force, so an executor that is busy after all keeps running."""
        session = self._session.current
        if session is None or self._cell.running:
            return
        try:
            jsc = session.sparkContext._jsc.sc()
            ids = jsc.getExecutorIds()
            if not ids.isEmpty():
                jsc.schedulerBackend().killExecutors(ids, False, False, False)
        except Exception:
            pass  # the session is going away; nothing to give back

    # ---- control commands (the control thread, at any time, a cell running or not) ----
    # An elastic share (sparkernel.share.elastic): the kernel sends them again while the
    # state lasts, so one lost or refused here costs one poll.

    def shrink(self, msg: dict) -> None:
        """Holds the session to `keep` executors: those above it go at their next task
        boundary, and no more are asked for (another application waits)."""
        sc, jsc = self._context()
        if jsc is None:
            return
        keep = msg.get("keep")
        try:
            if isinstance(keep, int) and not isinstance(keep, bool) and keep >= 0 \
                    and self._elastic(sc):
                _shrink(jsc, keep)
        except Exception:
            pass  # the session is stopping: nothing to give

    def grow(self, msg: dict) -> None:
        """Lets the session grow again: nobody waits any more."""
        _, jsc = self._context()
        if jsc is None:
            return
        try:
            _grow(jsc)
        except Exception:
            pass  # the session is stopping: nothing to take

    def _context(self) -> tuple[Any, Any]:
        """The context cells use, and its JVM SparkContext (None when there is none)."""
        sc = self._session.active_context()
        return sc, getattr(getattr(sc, "_jsc", None), "sc", lambda: None)()

    def _elastic(self, sc: Any) -> bool:
        """Whether the context cells use shares elastically: the kernel's settings said so
        (it sends shrinks only then), and a session the user built did not fix its own
        share (spark.cores.max, its own maxExecutors, no dynamic allocation or
        decommissioning): those are honoured as written."""
        conf = sc.getConf()
        mine = self._session.conf or {}
        key = "spark.dynamicAllocation.maxExecutors"
        return (conf.get("spark.dynamicAllocation.enabled", "false").lower() == "true"
                and conf.get("spark.decommission.enabled", "false").lower() == "true"
                and conf.get("spark.cores.max") is None
                and conf.get(key) == mine.get(key))
