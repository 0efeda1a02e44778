"""A class-data-sharing archive for the driver JVM: Spark's driver loads some 10,000
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

The archive lives in $SPARKERNEL_CACHE_DIR/cds, else $XDG_CACHE_HOME/sparkernel/cds, else
~/.cache/sparkernel/cds."""
from __future__ import annotations

import hashlib
import os
import pathlib
import shutil
import subprocess
import sys
import time

# Unified logging off: a JVM that cannot map the archive says so as a warning, and the
# dump prints one line per class it skips. Errors still reach stderr.
_QUIET = "-Xlog:disable -Xlog:all=error:stderr"
_STALE_S = 600  # a trainer's leftovers older than this are removed

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


def cache_dir() -> pathlib.Path:
    base = os.environ.get("SPARKERNEL_CACHE_DIR")
    if not base:
        xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        base = os.path.join(xdg, "sparkernel")
    return pathlib.Path(base, "cds")


def _java() -> str | None:
    home = os.environ.get("JAVA_HOME")
    java = os.path.join(home, "bin", "java") if home else shutil.which("java")
    return os.path.realpath(java) if java and os.access(java, os.X_OK) else None


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
        try:
            from pyspark.find_spark_home import _find_spark_home

            conf = os.path.join(_find_spark_home(), "conf")
        except (ImportError, SystemExit):
            return False, None, None
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
    try:
        import pyspark
        from pyspark.find_spark_home import _find_spark_home

        home = _find_spark_home()
        jars = os.path.join(home, "jars")
        st, jst = os.stat(java), os.stat(jars)
    except (ImportError, OSError, SystemExit):
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
