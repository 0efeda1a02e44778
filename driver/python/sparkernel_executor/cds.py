"""Class-data-sharing archives for the driver JVM and for the executors' JVMs.

The driver: Spark's driver loads some 10,000
classes while its session starts and runs its first job, and a JVM that maps them from an
archive instead of parsing and verifying them starts about twice as fast.

Java 17 writes a dynamic archive when a JVM started with -XX:ArchiveClassesAtExit exits.
The kernel's own JVM is a poor candidate for that (it lives as long as the notebook and may
be killed at the end), so the first session that finds no archive starts a short-lived
trainer in the background, at the lowest CPU priority: a local-mode session with the same
class path that runs a small job and exits, leaving the archive. Later sessions map it with
-XX:SharedArchiveFile. A JVM that finds the archive does not match (another JDK, other
jars) runs without it; the archive's name hashes what decides the match, so an upgrade
builds a new one.

The archive lives in sparkernel.cache.dir/cds (SPARKERNEL_CACHE_DIR, sent by the kernel),
else $XDG_CACHE_HOME/sparkernel/cds, else ~/.cache/sparkernel/cds.

The executors: a worker starts each executor JVM, and on a cold cluster that start (4 s
on two cores) is what the first job waits for. The executor's own JVM is the only one
with the worker's class path, so the first session with no archive asks its executors to
dump one when they exit (-XX:ArchiveClassesAtExit, a name of their own per executor from
the worker's {{APP_ID}} and {{EXECUTOR_ID}}), and a later session start moves a finished
dump into place (executor_plan). The directory must be at the same path on the workers
and on the kernel's host: the kernel's cache dir when they share a filesystem, the shared
volume in the chart (sparkernel.executor.cds.dir). Two things make the archive usable:
Spark's jars must come first on the executor's class path (the worker puts its
configuration directory first, and a JVM cannot dump or map an archive with a non-empty
directory before the jars it loads from), so the session passes them as
spark.executor.extraClassPath, which Spark places first and which then replaces the
later entry of the same name; and every executor JVM of the archive's key must see the
same jars, which the JVM checks itself (a mismatched archive is not used)."""
from __future__ import annotations

import hashlib
import os
import pathlib
import re
import shutil
import socket
import subprocess
import sys
import time

# Unified logging off: a JVM that cannot map the archive says so as a warning, and the
# dump prints one line per class it skips. Errors still reach stderr.
_QUIET = "-Xlog:disable -Xlog:all=error:stderr"
_STALE_S = 600  # a trainer's leftovers older than this are removed
_DUMP_S = 30  # an executor's dump at exit unchanged this long is not being written

_TRAINER = """
import os, sys
from pyspark.sql import SparkSession
spark = (SparkSession.builder.master("local[1]").appName("sparkernel-cds-trainer")
         .config("spark.driver.extraJavaOptions", sys.argv[1])
         .config("spark.ui.port", "0").config("spark.port.maxRetries", "100")
         .config("spark.ui.showConsoleProgress", "false").getOrCreate())
df = spark.range(10000).selectExpr("id % 7 AS k", "id AS v")
df.groupBy("k").count().collect()
df.createOrReplaceTempView("t")
spark.sql("SELECT k, sum(v) FROM t GROUP BY k ORDER BY k").collect()
spark.sparkContext.parallelize(range(100), 2).map(lambda x: x * 2).sum()
spark.stop()
"""


_cache_base: str | None = None  # sparkernel.cache.dir, as the kernel sent it


def use_cache_dir(base: str | None) -> None:
    """The kernel's sparkernel.cache.dir (its setting, SPARKERNEL_CACHE_DIR; None: unset)."""
    global _cache_base
    _cache_base = base or None


def cache_dir() -> pathlib.Path:
    """sparkernel.cache.dir/cds; unset, the user's cache directory as XDG defines it."""
    base = _cache_base
    if not base:
        xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        base = os.path.join(xdg, "sparkernel")
    return pathlib.Path(base, "cds")


def _java() -> str | None:
    home = os.environ.get("JAVA_HOME")
    java = os.path.join(home, "bin", "java") if home else shutil.which("java")
    return os.path.realpath(java) if java and os.access(java, os.X_OK) else None


def spark_home() -> str:
    """This host's Spark home (pyspark's), or "" when pyspark cannot say."""
    try:
        from pyspark.find_spark_home import _find_spark_home

        return str(_find_spark_home())
    except (ImportError, SystemExit):
        return ""


# Files of a Spark configuration directory that the driver JVM does not need on its class
# path: spark-defaults.conf is handed over with --properties-file, and the kernel brings
# its own log4j configuration.
_CONF_NOT_ON_CLASSPATH = ("spark-defaults.conf", "log4j2.properties")


def conf_dir_plan() -> tuple[bool, str | None, str | None]:
    """The JVM cannot dump or map an archive with a non-empty directory on its class path,
    and spark-class puts the configuration directory first on it ($SPARK_CONF_DIR, else
    $SPARK_HOME/conf; the chart's holds spark-defaults.conf). Returns (possible, an empty
    directory to launch with as SPARK_CONF_DIR or None, the properties file to pass or
    None). Not possible when the directory holds what must stay on the class path (Hadoop
    or Hive site files, spark-env.sh)."""
    conf = os.environ.get("SPARK_CONF_DIR")
    if not conf:
        home = spark_home()
        if not home:
            return False, None, None
        conf = os.path.join(home, "conf")
    try:
        names = [n for n in os.listdir(conf) if not n.endswith(".template")]
    except OSError:
        return True, None, None  # absent: nothing on the class path
    if not names:
        return True, None, None
    if any(n not in _CONF_NOT_ON_CLASSPATH for n in names):
        return False, None, None
    empty = cache_dir() / "empty-conf"
    try:
        empty.mkdir(parents=True, exist_ok=True)
        for stray in empty.iterdir():  # it must stay empty
            stray.unlink()
    except OSError:
        return False, None, None
    props = os.path.join(conf, "spark-defaults.conf")
    return True, str(empty), props if os.path.isfile(props) else None


def archive_path(conf_dir: str | None = None) -> pathlib.Path | None:
    """The archive for this JDK, Spark and configuration directory, or None without Java."""
    java = _java()
    if java is None:
        return None
    home = spark_home()
    if not home:
        return None
    try:
        import pyspark

        st, jst = os.stat(java), os.stat(os.path.join(home, "jars"))
    except (ImportError, OSError):
        return None
    key = "|".join([java, str(st.st_size), str(st.st_mtime_ns), home, str(jst.st_mtime_ns),
                    pyspark.__version__, conf_dir or os.environ.get("SPARK_CONF_DIR", "")])
    return cache_dir() / f"driver-{hashlib.sha256(key.encode()).hexdigest()[:16]}.jsa"


def java_options(archive: pathlib.Path | None) -> str:
    """Options for spark.driver.extraJavaOptions: map the archive when there is one."""
    if archive is None or not archive.is_file():
        return ""
    return f"-XX:SharedArchiveFile={archive} -Xshare:auto {_QUIET}"


def train(archive: pathlib.Path | None, log4j_options: str,
          conf_dir: str | None = None) -> subprocess.Popen | None:
    """Starts the trainer unless the archive exists or another kernel's trainer is at it.
    Returns the trainer process (never waited for by the caller) or None."""
    if archive is None or archive.exists():
        return None
    d = archive.parent
    try:
        d.mkdir(parents=True, exist_ok=True)
        now = time.time()
        for old in d.glob("*.tmp*"):
            if now - old.stat().st_mtime > _STALE_S:
                old.unlink(missing_ok=True)
        lock = archive.with_suffix(".tmp-lock")
        fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except OSError:
        return None  # another trainer runs, or the cache is not writable
    os.close(fd)
    _prune(archive)
    tmp = archive.with_suffix(f".tmp-{os.getpid()}")
    options = f"-XX:ArchiveClassesAtExit={tmp} {_QUIET} {log4j_options}".strip()
    # The trainer moves the archive into place once its JVM has written it, then drops the
    # lock; it outlives this executor if need be.
    script = (_TRAINER + "\nimport time, pathlib\n"
              f"tmp, final, lock = pathlib.Path({str(tmp)!r}), pathlib.Path({str(archive)!r}), "
              f"pathlib.Path({str(lock)!r})\n"
              "from pyspark import SparkContext\n"
              "gw = SparkContext._gateway\n"
              "proc = getattr(gw, 'proc', None)\n"
              "gw.shutdown()\n"
              "if proc is not None:\n"
              "    proc.stdin.close(); proc.wait(300)\n"
              "if proc is not None and proc.returncode == 0 and tmp.is_file():\n"
              "    tmp.replace(final)\n"
              "tmp.unlink(missing_ok=True); lock.unlink(missing_ok=True)\n")
    env = dict(os.environ)
    env.pop("PYSPARK_SUBMIT_ARGS", None)
    if conf_dir:
        env["SPARK_CONF_DIR"] = conf_dir
    log = open(d / "trainer.log", "ab")
    try:
        return subprocess.Popen([sys.executable, "-c", script, options], env=env,
                                stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                start_new_session=True, preexec_fn=lambda: os.nice(19))
    except OSError:
        lock.unlink(missing_ok=True)
        return None
    finally:
        log.close()


# ---- executors ----

_DYNAMIC_MAGIC = bytes.fromhex("a8ab0bf0")  # a dynamic archive's header, written last
_KEEP = 4  # archives of one kind kept; older ones are removed when a new one arrives


def spark_defaults() -> dict[str, str]:
    """The properties of spark-defaults.conf in $SPARK_CONF_DIR, else Spark's home's conf
    (Java properties: key and value separated by '=', ':' or blanks; no continuations)."""
    conf = os.environ.get("SPARK_CONF_DIR") or os.path.join(spark_home(), "conf")
    out: dict[str, str] = {}
    try:
        with open(os.path.join(conf, "spark-defaults.conf"), encoding="utf-8") as f:
            for line in f:
                line = line.strip()
                if not line or line[0] in "#!":
                    continue
                parts = re.split(r"\s*[=:]\s*|\s+", line, maxsplit=1)
                out[parts[0]] = parts[1].strip() if len(parts) > 1 else ""
    except (OSError, UnicodeDecodeError):
        pass
    return out


def executor_archive_path(directory: str | os.PathLike, spark_home: str) -> pathlib.Path | None:
    """The executors' archive for this Spark version and the workers' Spark home."""
    try:
        import pyspark
    except ImportError:
        return None
    jars = os.path.join(spark_home, "jars")
    try:  # the jars of this host when they are the workers' too (one machine, one image)
        stamp = str(os.stat(jars).st_mtime_ns)
    except OSError:
        stamp = ""
    key = "|".join([pyspark.__version__, spark_home, stamp])
    return pathlib.Path(directory, f"executor-{hashlib.sha256(key.encode()).hexdigest()[:16]}.jsa")


def _finished(path: pathlib.Path) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(4) == _DYNAMIC_MAGIC
    except OSError:
        return False


def executor_ready(archive: pathlib.Path) -> bool:
    """Whether the next session start will map the executors' archive: it is in place, or
    a finished dump waits to be moved there."""
    return archive.is_file() or any(
        _finished(p) for p in archive.parent.glob(archive.name + ".tmp-*"))


def _prune(archive: pathlib.Path) -> None:
    """Keeps the _KEEP archives of archive's kind used last (atime, else mtime)."""
    kind = archive.name.split("-", 1)[0]
    found = []
    for p in archive.parent.glob(f"{kind}-*.jsa"):
        try:
            st = p.stat()
        except OSError:
            continue
        found.append((max(st.st_atime, st.st_mtime), p))
    for _, p in sorted(found, reverse=True)[_KEEP:]:
        if p != archive:
            p.unlink(missing_ok=True)


def _size(path: pathlib.Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return -1


def promote(archive: pathlib.Path) -> bool:
    """Moves the largest finished executor dump into place (rename: a JVM that maps the
    old file keeps it), removes the others and the lock. Returns whether the archive exists."""
    dumps = sorted(archive.parent.glob(archive.name + ".tmp-*"))
    done = [p for p in dumps if not p.name.endswith(".tmp-lock") and _finished(p)]
    # The largest: the executor that loaded the most classes (ran the most kinds of task).
    done.sort(key=_size, reverse=True)
    if done:
        try:
            done[0].replace(archive)
        except OSError:
            return archive.is_file()
        for p in dumps:
            if p != done[0]:
                p.unlink(missing_ok=True)
        _prune(archive)
    return archive.is_file()


def _owner_gone(lock: pathlib.Path, archive: pathlib.Path) -> bool:
    """Whether the session that took the dump lock is gone for good: the kernel process
    that wrote it (host and pid in the lock) no longer runs on this host, and none of the
    dumps its executors write at exit is still growing. Its sessions may never have
    started executors with the dump option (a local session, a session stopped before its
    executors came, a kernel killed), and the lock would otherwise keep every session of
    the machine from dumping or mapping an archive until _STALE_S has passed. A lock from
    another host, or from before locks named their owner, waits for _STALE_S as before."""
    try:
        host, pid = lock.read_text().split()
        if host != socket.gethostname():
            return False
        os.kill(int(pid), 0)
        return False  # its kernel still runs
    except ProcessLookupError:
        pass
    except (OSError, ValueError):
        return False
    now = time.time()
    for p in archive.parent.glob(archive.name + ".tmp-*"):
        try:
            if p != lock and not _finished(p) and now - p.stat().st_mtime < _DUMP_S:
                return False  # an executor of its still writes
        except OSError:
            continue
    return True


def executor_plan(directory: str | os.PathLike | None, spark_home: str,
                  conf: dict[str, str]) -> tuple[dict[str, str], pathlib.Path | None]:
    """spark.executor.* properties to add to conf: map the executors' archive, or dump one
    when there is none and no other session is at it (a lock; a dump that never finished,
    for instance because the workers cannot write the directory, is tried again after
    _STALE_S). Nothing when the session sets the executors' class path or archive itself.
    Also returns the archive when this session's executors dump it: every one of them
    does when it exits (the option is fixed for the application's life), so the session
    moves the first finished dump into place after each cell (promote) rather than leave
    the others to pile up until the next session starts."""
    opts = conf.get("spark.executor.extraJavaOptions", "")
    if "spark.executor.extraClassPath" in conf or "SharedArchiveFile" in opts \
            or "ArchiveClassesAtExit" in opts or not spark_home:
        return {}, None
    archive = executor_archive_path(directory or cache_dir(), spark_home)
    if archive is None:
        return {}, None
    try:
        archive.parent.mkdir(parents=True, exist_ok=True)
        if not promote(archive):
            lock = archive.parent / (archive.name + ".tmp-lock")
            now = time.time()
            for old in archive.parent.glob(archive.name + ".tmp-*"):
                if now - old.stat().st_mtime > _STALE_S:
                    old.unlink(missing_ok=True)
            if _owner_gone(lock, archive):
                lock.unlink(missing_ok=True)
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            with os.fdopen(fd, "w") as f:
                f.write(f"{socket.gethostname()} {os.getpid()}\n")
            ours = f"-XX:ArchiveClassesAtExit={archive}.tmp-{{{{APP_ID}}}}-{{{{EXECUTOR_ID}}}}"
        else:
            ours = f"-XX:SharedArchiveFile={archive} -Xshare:auto"
    except OSError:
        return {}, None  # another session dumps, or the directory is not writable
    # Ours first: a -Xlog the user gives the executors still applies after _QUIET.
    return ({"spark.executor.extraClassPath": os.path.join(spark_home, "jars", "*"),
             "spark.executor.extraJavaOptions": f"{ours} {_QUIET} {opts}".strip()},
            archive if "ArchiveClassesAtExit" in ours else None)
