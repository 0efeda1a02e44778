"""Notebooks as PySpark users write them (issue 15), each run through sparkernel and
through ipykernel + PySpark on the same local standalone cluster: the outputs must agree
(times and ids masked), so must the applications the master registered (by name), and
nothing may be left running. The notebooks are written here for the tests.

sparkernel keeps a warm session; until a cell uses the predefined `spark`/`sc`, a
builder or SparkContext(...) gets exactly what it asks for (DESIGN.md, "Sessions a
notebook builds"). Its one line saying so ("sparkernel: ...") and its progress displays
are the only outputs ipykernel has no counterpart for; the warm session's own application
("sparkernel <kernel id>") is left out of the comparison of applications."""
from __future__ import annotations

import json
import os
import random
import re
import secrets
import sys
import tempfile
import time

import nbformat
import psutil
import pytest
from nbclient import NotebookClient

from cluster import LocalCluster, free_port

pytestmark = pytest.mark.timeout(2400)

MARKER = "SPARKERNEL_WILD_TEST"
PEER = "wild-ipykernel"
MASKS = [
    (re.compile(r"\b(app|local|driver)-\d{14}-\d{4}\b|\blocal-\d{10,}\b"), "<app-id>"),
    (re.compile(r"0x[0-9a-f]+"), "0x<addr>"),
    (re.compile(r"\d+\.\d+ s\b"), "<t> s"),
    (re.compile(r"/ipykernel_\d+/"), "/ipykernel_<pid>/"),  # a cell's file, in tracebacks
    # py4j's id of the Java object a failing call was made on ("An error occurred while
    # calling o95.saveAsTextFile"): the gateway numbers every object it hands to Python,
    # and the warm JVM has handed out more (DESIGN.md, "Sessions a notebook builds")
    (re.compile(r"(while calling )o\d+\."), r"\1o<id>."),
    (re.compile(r"/wild-wh-[A-Za-z0-9_]+"), "/wild-wh-<run>"),  # each run's own warehouse
]
# Lines only one side prints: sparkernel's one line when a cell's own session replaces
# the unused warm one, and, in the first cell that uses the session a `%spark restart`
# asked for, the negotiation's verdict and the wait for the start (plain PySpark's
# builder blocks silently instead); the JDK's warning when a JVM starts (pyspark prints
# it through ipykernel's terminal, not into the cell);
# PySpark 4's second report of an SQL error, one JSON line on stderr (quiet logs: the cell
# shows the exception).
ONE_SIDED = re.compile(r"^(sparkernel: .*|WARNING: Using incubator modules.*"
                       r'|\{"ts": "[^"]*", "level": "ERROR", "logger": '
                       r'"(?:SQL|DataFrame)QueryContextLogger".*'
                       r"|Executors of \d+ core\(s\) and .* fit on .*"
                       r"|Waiting for the Spark session .*)\n?", re.M)


# Spark's console progress bar, which plain PySpark's JVM draws on its stderr for a stage
# that runs longer than 0.5 s (ipykernel captures that fd into the cell): sparkernel shows
# its own progress displays instead, which are not compared either.
CONSOLE_BAR = re.compile(r"\r(\[Stage \d+:[^\r]*| +)\r")


def builder(name: str, master: str = "{master}") -> str:
    return (f"SparkSession.builder.appName({name!r}).master({master!r}).getOrCreate()")


# Each notebook: a list of cells; a cell is code (the same for both kernels, outputs
# compared) or a dict {"sparkernel": code, "ipykernel": code} for what only one kernel
# has (%spark, the predefined `spark`), whose outputs are not compared.
CORPUS = {
    "four_cells": [
        "import logging\nfrom pyspark.sql import SparkSession\n"
        f"spark = {builder('example-1')}\n"
        "df = spark.createDataFrame([(1, 'a'), (2, 'b'), (3, 'c')], ['id', 'letter'])\n"
        "df.show()\nspark.stop()",
        f"spark = {builder('example-2')}\n"
        "logging.getLogger('py4j').setLevel(logging.ERROR)\n"
        "spark.sparkContext.setLogLevel('ERROR')\n"
        "people = spark.read.csv({csv!r}, header=True)\n"
        "people.show()\npeople.printSchema()\nspark.stop()",
        f"spark = {builder('example-3', 'local[*]')}\n"
        "local_df = spark.createDataFrame([(i, i * i) for i in range(100)], ['n', 'sq'])\n"
        "print(local_df.groupBy((local_df.n % 3).alias('k')).count().orderBy('k').collect())",
        "from pyspark.ml.feature import VectorAssembler\n"
        "from pyspark.ml.regression import LinearRegression\n"
        f"spark = {builder('example-4')}\n"
        "print(spark.sparkContext.master, spark.sparkContext.appName)\n"
        "data = spark.createDataFrame([(float(x), 2.0 * x) for x in range(20)], ['x', 'y'])\n"
        "train = VectorAssembler(inputCols=['x'], outputCol='features').transform(data)\n"
        "model = LinearRegression(featuresCol='features', labelCol='y').fit(train)\n"
        "print('RMSE', round(model.summary.rootMeanSquaredError, 6))\n"
        "print('Coefficients:', [round(c, 6) for c in model.coefficients])",
    ],
    # Old style: SparkContext(master, name) and sc.stop(), then
    # SparkContext.getOrCreate(SparkConf()...) in the same notebook.
    "old_style_contexts": [
        "from pyspark import SparkConf, SparkContext\n"
        "sc = SparkContext({master!r}, 'old-style')\n"
        "print(sc.appName, sc.parallelize(range(100), 4).map(lambda x: x * 2).sum())",
        "sc.stop()",
        "print(SparkContext._active_spark_context is None)",
        "conf = SparkConf().setAppName('from-conf').setMaster({master!r})\n"
        "sc = SparkContext.getOrCreate(conf)\n"
        "print(sc.appName, sc.parallelize([1, 2, 3]).count())",
        "print(SparkContext.getOrCreate() is sc)\nsc.stop()",
        # No master named: PySpark's default (the first context named none to launch the
        # JVM with: local[*] here, as spark-submit gives), not the kernel's cluster.
        "from pyspark.sql import SparkSession\n"
        "later = SparkSession.builder.appName('no-master-named').getOrCreate()\n"
        "print(later.sparkContext.master, later.range(3).count())\nlater.stop()",
    ],
    # The predefined spark used first, a builder later (PySpark's getOrCreate returns the
    # active session), then the user stops it and asks for another: %spark restart
    # (sparkernel) or a new builder (plain PySpark).
    "predefined_then_restart": [
        {"sparkernel": "from pyspark.sql import SparkSession\nprint(spark.range(5).count())",
         "ipykernel": "from pyspark.sql import SparkSession\n"
                      "spark = SparkSession.builder.master({master!r})"
                      ".appName('sparkernel-peer').getOrCreate()\n"
                      "print(spark.range(5).count())"},
        "later = SparkSession.builder.appName('too-late').getOrCreate()\n"
        "print(later is spark, later.range(3).count())",
        "spark.stop()",
        {"sparkernel": "%spark restart",
         "ipykernel": "spark = SparkSession.builder.master({master!r})"
                      ".appName('sparkernel-peer-2').getOrCreate()"},
        "print(spark.range(4).count(), spark.sparkContext.master == {master!r})",
        # Stopped again, a builder naming no master: the first session's (the JVM was
        # launched for it), the cluster on both kernels.
        "spark.stop()\nagain = SparkSession.builder.appName('no-master-again').getOrCreate()\n"
        "print(again.sparkContext.master == {master!r}, again.range(2).count())\nagain.stop()",
    ],
    # findspark before the imports, one builder never stopped, an ML fit: run by papermill
    # with parameters (PAPERMILL), its first cell tagged "parameters".
    "findspark_ml_papermill": [
        "app_name = 'housing-default'\nrows = 10",
        "import findspark\nfindspark.init()\n"
        "from pyspark.sql import SparkSession\n"
        "from pyspark.ml.feature import VectorAssembler\n"
        "from pyspark.ml.regression import LinearRegression\n"
        "spark = SparkSession.builder.appName(app_name).master({master!r}).getOrCreate()\n"
        "print(spark.sparkContext.appName)",
        "rows_df = spark.createDataFrame([(float(i), float(i % 7), 3.0 * i - 2.0 * (i % 7) + 1)"
        " for i in range(rows)], ['rooms', 'age', 'price'])\n"
        "data = VectorAssembler(inputCols=['rooms', 'age'], outputCol='features')"
        ".transform(rows_df)\n"
        "train, test = data.randomSplit([0.8, 0.2], seed=42)\n"
        "model = LinearRegression(featuresCol='features', labelCol='price').fit(train)\n"
        "print('Coefficients:', [round(c, 4) for c in model.coefficients])\n"
        "print('Intercept:', round(model.intercept, 4))\n"
        "model.transform(test).select('price', 'prediction').orderBy('price').show()",
    ],
    # The everyday API after a builder: RDDs with lambdas, a Python UDF on the cluster's
    # workers, toPandas, the eager HTML/text repr, a UDF that fails (the cell shows the
    # exception alone), accumulators and broadcasts, cache, parquet, a temp view, schema.
    "everyday_api": [
        "from pyspark.sql import SparkSession\n"
        "from pyspark.sql.functions import udf, col\n"
        "from pyspark.sql.types import IntegerType\n"
        "spark = " + builder("everyday") + "\nsc = spark.sparkContext\n"
        "print(sc.parallelize(range(10)).map(lambda x: x * 2).sum())\n"
        "sq = udf(lambda x: x * x, IntegerType())\n"
        "spark.range(5).select(sq(col('id')).alias('sq')).show()",
        "spark.range(4).toPandas()",
        "spark.conf.set('spark.sql.repl.eagerEval.enabled', True)\nspark.range(3)",
        "spark.conf.set('spark.sql.repl.eagerEval.enabled', False)\n"
        "bad = udf(lambda x: 1 // 0, IntegerType())\n"
        "spark.range(2).select(bad(col('id'))).collect()",
        "acc = sc.accumulator(0)\nsc.parallelize(range(10)).foreach(lambda x: acc.add(x))\n"
        "b = sc.broadcast({{'a': 1}})\n"
        "print(acc.value, sc.parallelize(['a', 'a']).map(lambda k: b.value[k]).sum())",
        "df = spark.createDataFrame([(1, 'a'), (2, 'b')], ['n', 's']).cache()\n"
        "df.write.mode('overwrite').parquet('{warehouse}/p')\n"
        "df.createOrReplaceTempView('t')\n"
        "print(df.is_cached, spark.read.parquet('{warehouse}/p').count())\n"
        "spark.sql('select * from t order by n desc').show()\ndf.printSchema()",
        "spark.stop()",
    ],
    # A builder's runtime and static settings, the user's own driver host and port,
    # newSession, getActiveSession, a later builder returning the active session, the
    # notebook's own job descriptions, job group and tags.
    "builder_settings": [
        "from pyspark.sql import SparkSession\n"
        "spark = (SparkSession.builder.appName('api-tour').master({master!r})\n"
        "         .config('spark.sql.shuffle.partitions', '7')\n"
        "         .config('spark.executor.memory', '600m')\n"
        "         .config('spark.driver.host', '127.0.0.1')\n"
        "         .config('spark.driver.port', '{driver_port}')\n"
        "         .getOrCreate())\n"
        "conf = spark.sparkContext.getConf()\n"
        "print(spark.conf.get('spark.sql.shuffle.partitions'), conf.get('spark.executor.memory'),"
        " conf.get('spark.driver.host'), conf.get('spark.driver.port'))\n"
        "df = spark.range(100)\n"
        "print(sorted(df.groupBy((df.id % 5).alias('k')).count().collect()))",
        "other = spark.newSession()\nother.conf.set('spark.sql.shuffle.partitions', '3')\n"
        "print(other is spark, other.sparkContext is spark.sparkContext,"
        " spark.conf.get('spark.sql.shuffle.partitions'),"
        " other.conf.get('spark.sql.shuffle.partitions'))",
        "print(SparkSession.getActiveSession() is spark)\n"
        "again = SparkSession.builder.appName('ignored-name').getOrCreate()\n"
        "print(again is spark, again.sparkContext.appName)",
        # The notebook's own job description stays, cell after cell, until it clears it.
        "sc = spark.sparkContext\nprint(spark.range(1).count(), sc.getLocalProperty("
        "'spark.job.description'), sc.getLocalProperty('spark.jobGroup.id'))\n"
        "sc.setJobDescription('count the numbers')\n"
        "print(spark.range(5).count(), sc.getLocalProperty('spark.job.description'))",
        "print(spark.range(2).count(), sc.getLocalProperty('spark.job.description'))\n"
        "sc.setJobGroup(groupId='etl', description='load step', interruptOnCancel=False)\n"
        "print(spark.range(3).count(), sc.getLocalProperty('spark.job.description'))\n"
        "sc.setJobDescription(None)\nprint(sc.getLocalProperty('spark.job.description'),"
        " sc.getLocalProperty('spark.jobGroup.id'))",
        # The notebook's own job group and tags stay its own from cell to cell (the
        # kernel follows a cell's jobs by a tag of its own, which the notebook never sees).
        "print(sc.getLocalProperty('spark.jobGroup.id'),"
        " sc.getLocalProperty('spark.job.interruptOnCancel'))\n"
        "sc.addJobTag('nightly')\nprint(spark.range(4).count(),"
        " len(sc.statusTracker().getJobIdsForGroup('etl')), sorted(sc.getJobTags()))",
        "print(spark.range(6).count(), len(sc.statusTracker().getJobIdsForGroup('etl')),"
        " sorted(sc.getJobTags()), sc.getLocalProperty('spark.job.tags'))\n"
        "sc.clearJobTags()\nprint(sorted(sc.getJobTags()), sc.getLocalProperty('spark.job.tags'),"
        " spark.range(7).count(), len(sc.statusTracker().getJobIdsForGroup('etl')))\n"
        "spark.stop()",
    ],
    # A SparkContext built first and a session wrapped around it (SparkSession(sc)), the
    # errors users meet (an unresolved column, a Python error) with the session still
    # usable after them, a session as a context manager (stopped on leaving it), then a
    # new builder.
    "context_first_and_errors": [
        "from pyspark import SparkConf, SparkContext\n"
        "from pyspark.sql import SparkSession\n"
        "sc = SparkContext(conf=SparkConf().setMaster({master!r}).setAppName('context-first'))\n"
        "spark = SparkSession(sc)\n"
        "print(spark.sparkContext is sc, sc.appName, spark.range(10).count())",
        "df = spark.createDataFrame([(1, 'x'), (2, 'y')], ['a', 'b'])\n"
        "df.select('nope').show()",
        "print(df.count())\n1 / 0",
        "print(SparkSession.builder.getOrCreate() is spark, df.filter(df.a > 1).count())",
        "with SparkSession.builder.getOrCreate() as inner:\n"
        "    print(inner.sparkContext is sc, inner.range(7).count())\n"
        "print(SparkContext._active_spark_context is None)",
        "spark = SparkSession.builder.appName('after-with').master({master!r}).getOrCreate()\n"
        "print(spark.sparkContext.appName, spark.range(3).count())\nspark.stop()",
    ],
    # A session the notebook bound to `spark` itself, stopped twice, then used: the name
    # keeps PySpark's stopped session (PySpark's own error, not the kernel's), and a stop
    # of a stopped session does nothing; then `sc` bound by the user, stopped the same way.
    # %who lists `spark` and `sc` once the notebook's code made them, not before.
    # The notebook's first builder comes after a pause (a user reading the notebook): the
    # kernel's session is up by then and has run its warm-up query, and the plan the
    # user's session explains numbers its columns as in a fresh JVM.
    "own_names_after_stop": [
        "print([n for n in get_ipython().run_line_magic('who_ls', '') if n in ('spark', 'sc')])",
        {"sparkernel": "import time\ntime.sleep(10)", "ipykernel": "pass"},
        "from pyspark.sql import SparkSession\n"
        "spark = SparkSession.builder.master({master!r}).appName('stops').getOrCreate()\n"
        "spark.range(5).selectExpr('id * 2 AS x').groupBy('x').count().explain()\n"
        "print(spark.range(3).count())",
        "spark.stop()",
        "spark.stop()\nprint('stopped twice')",
        "print(type(spark).__name__, spark.sparkContext._jsc is None)",
        "spark.range(1).count()",
        "spark = SparkSession.builder.master({master!r}).appName('stops-again').getOrCreate()\n"
        "sc = spark.sparkContext\nprint(sc.appName, spark.range(2).count())",
        "sc.stop()",
        "print(sc._jsc is None, type(spark).__name__)\nsc.stop()\nspark.stop()\n"
        "print([n for n in get_ipython().run_line_magic('who_ls', '') if n in ('spark', 'sc')])",
        "def local():\n    spark = 'a local of the same name'\n    return spark\n"
        "print(local(), type(spark).__name__)",
        # A builder naming no master after the first session of the notebook stopped: the
        # master the first one named (plain PySpark launched its JVM with it).
        "spark = SparkSession.builder.appName('stops-no-master').getOrCreate()\n"
        "print(spark.sparkContext.master == {master!r}, spark.range(2).count())\nspark.stop()",
    ],
    # Sessions built out of the cell's sight, as project notebooks do: a helper module's
    # function called in the first cell (run while the kernel's own session still starts),
    # then a setup script through %run with arguments.
    "helpers_out_of_sight": [
        "import sys\nsys.path.insert(0, {helpers!r})\nfrom spark_helpers import get_spark\n"
        "spark = get_spark('helper-built', {master!r})\n"
        "print(spark.sparkContext.appName, spark.range(10).count())",
        "spark.stop()",
        "%run {helpers}/setup_spark.py {master} run-built",
        "print(spark.sparkContext.appName, spark.sparkContext.master == {master!r},"
        " spark.range(4).count())\nspark.stop()",
    ],
    # Settings a driver JVM takes only at its launch (its heap, from PYSPARK_SUBMIT_ARGS;
    # its java options, here the JVM's time zone, which Spark's session time zone
    # follows), in a SparkConf made after a pause (on sparkernel the warm JVM is up then,
    # and the SparkConf is made in it):
    # plain PySpark launches its JVM with them, and sparkernel launches one for them. A
    # later session gets the running JVM on both, its launch settings doing nothing.
    "launch_settings": [
        {"sparkernel": "import time\ntime.sleep(10)", "ipykernel": "pass"},
        "import os\nos.environ['PYSPARK_SUBMIT_ARGS'] = '--driver-memory 1536m pyspark-shell'\n"
        "from pyspark import SparkConf, SparkContext\n"
        "from pyspark.sql import SparkSession\n"
        "conf = (SparkConf().setMaster({master!r}).setAppName('launch-settings')\n"
        "        .set('spark.driver.extraJavaOptions',\n"
        "             '-Duser.timezone=America/New_York -Dwild.flag=on'))\n"
        "sc = SparkContext(conf=conf)\nspark = SparkSession(sc)\njava = sc._jvm.java.lang\n"
        "print(java.System.getProperty('wild.flag'),\n"
        "      java.Runtime.getRuntime().maxMemory() > 1400 * 2 ** 20,\n"
        "      spark.conf.get('spark.sql.session.timeZone'),\n"
        "      spark.sql(\"select cast(timestamp'2024-01-01 12:00:00' as long) t\").first().t)",
        "sc.stop()",
        "spark = (SparkSession.builder.master({master!r}).appName('launch-again')\n"
        "         .config('spark.driver.memory', '1g').getOrCreate())\n"
        "print(spark.sparkContext._jvm.java.lang.Runtime.getRuntime().maxMemory() > 1400 * 2 ** 20,\n"
        "      spark.conf.get('spark.sql.session.timeZone'))\nspark.stop()",
    ],
    # pandas with Arrow: a builder that turns Arrow on, pandas round trips, a pandas UDF,
    # grouped and iterator pandas functions (Python workers with pyarrow on the cluster's
    # executors), pandas-on-Spark with ANSI mode off as its error asks.
    "pandas_and_arrow": [
        "import pandas as pd\nfrom pyspark.sql import SparkSession\n"
        "from pyspark.sql.functions import pandas_udf\n"
        "spark = (SparkSession.builder.appName('arrow').master({master!r})\n"
        "         .config('spark.sql.execution.arrow.pyspark.enabled', 'true').getOrCreate())\n"
        "pdf = pd.DataFrame({{'k': ['a', 'b', 'a', 'c'], 'v': [1.0, 2.0, 3.0, 4.0]}})\n"
        "sdf = spark.createDataFrame(pdf)\nprint(sdf.toPandas())",
        "@pandas_udf('double')\ndef plus_one(s: pd.Series) -> pd.Series:\n    return s + 1\n\n"
        "sdf.select(plus_one('v').alias('p')).show()",
        "def center(g: pd.DataFrame) -> pd.DataFrame:\n    return g.assign(v=g.v - g.v.mean())\n\n"
        "sdf.groupBy('k').applyInPandas(center, schema='k string, v double')"
        ".orderBy('k', 'v').show()",
        "def doubled(batches):\n    for b in batches:\n        yield b.assign(v=b.v * 2)\n\n"
        "sdf.mapInPandas(doubled, schema=sdf.schema).orderBy('v').show()",
        "spark.conf.set('spark.sql.ansi.enabled', 'false')\nimport pyspark.pandas as ps\n"
        "psdf = ps.DataFrame({{'a': [1, 2, 3], 'b': [4.0, 5.0, 6.0]}})\nprint(psdf.sum())\npsdf",
        "spark.stop()",
    ],
    # Writes that fail (a parquet file, DataSource V2's noop sink, an RDD's text files where
    # they exist already) and
    # streaming queries: a rate source into a memory table, stopped, and a foreachBatch
    # that fails in the background, its error raised where the notebook awaits it. The
    # JVM logs each abort before the exception: never a cell's output (ipykernel's cells
    # show the exceptions alone).
    "writes_and_streams": [
        "from pyspark.sql import SparkSession\nfrom pyspark.sql.functions import udf\n"
        "spark = " + builder("writes") + "\nbad = udf(lambda x: 1 // 0, 'int')\n"
        "spark.range(3).select(bad('id').alias('x')).write.format('noop').mode('overwrite')"
        ".save()",
        # the failing UDF is the first cell's: the traceback names its file, whose name
        # ipykernel derives from the cell's text (the same on both kernels)
        "spark.range(3).select(bad('id').alias('x')).write.mode('overwrite')"
        ".parquet('{warehouse}/bad')",
        "rdd = spark.sparkContext.parallelize(range(4), 2)\n"
        "rdd.saveAsTextFile('{warehouse}/text')\nrdd.saveAsTextFile('{warehouse}/text')",
        "import time\nq = (spark.readStream.format('rate').option('rowsPerSecond', 10).load()\n"
        "     .writeStream.format('memory').queryName('ticks').start())\n"
        "while not spark.sql('select * from ticks').count():\n    time.sleep(0.2)\n"
        "q.stop()\nprint(q.isActive)",
        "def each(df, batch):\n    raise ValueError('bad batch')\n\n"
        "q = spark.readStream.format('rate').load().writeStream.foreachBatch(each).start()\n"
        "try:\n    q.awaitTermination()\nexcept Exception as e:\n"
        "    print(type(e).__name__, 'bad batch' in str(e), q.isActive)",
        "spark.stop()",
    ],
}
# The helpers' code: a module and a script, written next to the notebook's data.
HELPERS = {
    "spark_helpers.py": "from pyspark.sql import SparkSession\n\n\n"
                        "def get_spark(name, master):\n"
                        "    return SparkSession.builder.appName(name).master(master)"
                        ".getOrCreate()\n",
    "setup_spark.py": "import sys\nfrom pyspark.sql import SparkSession\n\n"
                      "spark = SparkSession.builder.master(sys.argv[1]).appName(sys.argv[2])"
                      ".getOrCreate()\n",
}
PAPERMILL = {"findspark_ml_papermill": {"app_name": "housing-pm", "rows": 40}}


def notebook(cells: list, kernel: str, values: dict,
             parameters: bool = False) -> tuple[nbformat.NotebookNode, list]:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "sparkernel" if kernel == "sparkernel" else PEER,
                                 "display_name": kernel, "language": "python"}
    compared = []
    for cell in cells:
        code = cell[kernel] if isinstance(cell, dict) else cell
        nb.cells.append(nbformat.v4.new_code_cell(code.format(**values)))
        compared.append(not isinstance(cell, dict))
    if parameters:
        nb.cells[0].metadata["tags"] = ["parameters"]
    return nb, compared


ANSI = re.compile(r"\x1b\[[0-9;]*m")
FRAME = re.compile(r"^(Cell In\[\d+\], line \d+|File [^\n]*, in [^\n(]*)")


def frames(traceback: list[str]) -> list[str]:
    """Where an error's traceback passes: the cell's lines and the libraries' functions
    (the kernel's own frames would show here)."""
    return [m.group(1) for t in traceback if (m := FRAME.match(ANSI.sub("", t)))]


def normal(outputs: list) -> list[tuple[str, str]]:
    """Streams joined per name, results and errors; masked. Display data (sparkernel's
    progress) is not compared."""
    streams: dict[str, str] = {}
    out = []
    for o in outputs:
        if o.output_type == "stream":
            streams[o.name] = streams.get(o.name, "") + o.text
        elif o.output_type == "execute_result":
            out.append(("result", o.data.get("text/plain", "")))
        elif o.output_type == "error":
            out.append(("error", f"{o.ename}: {o.evalue}"))
            out.append(("frames", "\n".join(frames(o.traceback))))
    for name, text in sorted(streams.items()):
        text = ONE_SIDED.sub("", CONSOLE_BAR.sub("", text))
        if text:
            out.append((name, text))
    masked = []
    for kind, text in out:
        for pattern, repl in MASKS:
            text = pattern.sub(repl, text)
        masked.append((kind, text))
    return masked


def ours(token: str) -> list[psutil.Process]:
    """Live processes started for this run (kernels, executors, JVMs), except the
    class-data archive's trainer, which a first session leaves running on purpose at the
    lowest priority (README, "Fast session start"), and its JVM."""
    found, trainers = [], set()
    for p in psutil.process_iter():
        try:
            if p.environ().get(MARKER) != token or p.status() == psutil.STATUS_ZOMBIE:
                continue
            if "cds-trainer" in " ".join(p.cmdline()):
                trainers |= {p.pid} | {c.pid for c in p.children(recursive=True)}
            found.append(p)
        except (psutil.Error, OSError):
            continue
    return [p for p in found if p.pid not in trainers]


def assert_none_left(token: str, deadline: float) -> None:
    """The run's kernels, executors and JVMs are all gone by the deadline."""
    while (left := ours(token)) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not left, [p.cmdline()[:3] for p in left]


@pytest.fixture(scope="module")
def cluster():
    with LocalCluster(workers=1, cores=2, memory="1g", timeout=240) as c:
        yield c


@pytest.fixture(scope="module")
def setup(cluster, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("wild")
    spec = tmp / "jupyter" / "kernels" / PEER
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "ipykernel + PySpark", "language": "python"}))
    csv = tmp / "people.csv"
    csv.write_text("name,age\nAda,36\nGrace,45\nLinus,28\n")
    common = cluster.driver_env()
    common["JUPYTER_PATH"] = os.pathsep.join(
        [str(tmp / "jupyter")] + [p for p in os.environ.get("JUPYTER_PATH", "").split(
            os.pathsep) if p])
    base = random.randrange(20000, 40000, 2)
    sparkernel = dict(common, SPARK_MASTER_URL=cluster.master_url,
                      SPARKERNEL_MASTER_UI_URL=cluster.ui_url, SPARKERNEL_WARM="true",
                      SPARKERNEL_BIND_ADDRESS="127.0.0.1",
                      SPARKERNEL_EXECUTOR_MEMORY="512m",
                      SPARKERNEL_DRIVER_PORT=str(base),
                      SPARKERNEL_BLOCKMANAGER_PORT=str(base + 1),
                      SPARKERNEL_UI_PORT=str(base + 25000),
                      SPARKERNEL_WAITING_REPORT_S="120")
    driver_port = free_port()  # the user's own driver port (builder_settings)
    helpers = tmp / "helpers"
    helpers.mkdir()
    for name, text in HELPERS.items():
        (helpers / name).write_text(text)
    values = {"master": cluster.master_url, "csv": str(csv), "driver_port": driver_port,
              "helpers": str(helpers)}
    yield {"envs": {"sparkernel": sparkernel, "ipykernel": common}, "values": values,
           "tmp": tmp}


def run(cluster, setup, name: str, kernel: str) -> tuple[list, list, list[str]]:
    """Runs one notebook; returns its cells' normalised outputs, which are compared, and
    the names of the applications it registered with the master."""
    values = dict(setup["values"], warehouse=tempfile.mkdtemp(prefix="wild-wh-",
                                                              dir=setup["tmp"]))
    nb, compared = notebook(CORPUS[name], kernel, values, parameters=name in PAPERMILL)
    before = {a["id"] for key in ("activeapps", "completedapps")
              for a in cluster.json().get(key, [])}
    token = secrets.token_hex(8)
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(setup["envs"][kernel], **{MARKER: token})
    try:
        kernel_name = "sparkernel" if kernel == "sparkernel" else PEER
        if name in PAPERMILL:
            import papermill  # here: the PySpark 3.5 venv runs only the four-cell notebook
            src, dst = (setup["tmp"] / f"{name}-{kernel}-{token}{end}.ipynb"
                        for end in ("", "-out"))
            nbformat.write(nb, str(src))
            nb = papermill.execute_notebook(str(src), str(dst), kernel_name=kernel_name,
                                            parameters=PAPERMILL[name], progress_bar=False,
                                            execution_timeout=300)
            # papermill put its injected cell after the tagged one: compared too
            compared.insert(1, True)
        else:
            NotebookClient(nb, kernel_name=kernel_name, timeout=300,
                           allow_errors=True).execute()
    finally:
        os.environ.clear()
        os.environ.update(saved)
    # Nothing left running: the kernel's processes and JVMs, and the applications.
    deadline = time.monotonic() + 30
    assert_none_left(token, deadline)
    while True:
        state = cluster.json()
        active = [a for a in state.get("activeapps", []) if a["id"] not in before]
        if not active or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert not active, active
    apps = sorted(a["name"] for a in state.get("completedapps", [])
                  if a["id"] not in before and not a["name"].startswith("sparkernel"))
    outs = [normal(c.outputs) for c in nb.cells]
    return outs, compared, apps


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_same_as_plain_pyspark(cluster, setup, name):
    got, compared, apps = run(cluster, setup, name, "sparkernel")
    want, _, want_apps = run(cluster, setup, name, "ipykernel")
    for i, (g, w, c) in enumerate(zip(got, want, compared)):
        if c:
            assert g == w, f"cell {i + 1} of {name}:\nsparkernel {g}\nipykernel  {w}"
        else:
            assert not [o for o in g if o[0] == "error"], g
    for text in (t for cell in got for _, t in cell):
        assert "[Stage " not in text and " WARN " not in text, text
    assert apps == want_apps


def test_job_titles_and_stopped_spark(cluster, setup):
    """Job titles are the user's line (issue 15, item 4); the predefined `spark` stopped
    by a cell gives one error naming that cell, and a builder in the next cell works."""
    from kernels import Kernel

    k = Kernel(env=dict(setup["envs"]["sparkernel"]))
    try:
        def run_ok(code: str) -> str:
            reply, out = k.execute(code, timeout=600)
            text = "".join(m["content"].get("text", "") for m in out
                           if m["msg_type"] == "stream")
            assert reply["content"]["status"] == "ok", (code, out)
            return text

        reply, out = k.execute("x = 1\nn = spark.range(10).count()", timeout=600)  # cell [1]
        assert reply["content"]["status"] == "ok", out
        # The displays say it too, in text as in HTML (nbconvert to text, consoles).
        shown = [m["content"]["data"]["text/plain"] for m in out
                 if m["msg_type"] in ("display_data", "update_display_data")
                 and "[Spark job" in m["content"].get("data", {}).get("text/plain", "")]
        assert shown and all("] count at cell [1] line 2: n = spark.range(10).count() \u2014"
                             in t for t in shown), shown
        run_ok("%%sql\nselect 1 as one")
        run_ok("print('rows', spark.range(5).collect()[0])")
        titles = run_ok(
            "import json, urllib.request\n"
            "u = f'{sc.uiWebUrl}/api/v1/applications/{sc.applicationId}/jobs'\n"
            "opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))\n"
            "for j in json.load(opener.open(u)):\n"
            "    print('TITLE', j.get('description'), '|', j['name'])")
        titles = [t for t in titles.splitlines() if t.startswith("TITLE")]
        assert any("count at cell [1] line 2: n = spark.range(10).count()" in t
                   for t in titles), titles
        assert any("%%sql: select 1 as one" in t for t in titles), titles
        assert any("collect at cell [3] line 1: print('rows'" in t for t in titles), titles
        assert not any("sparkernel_executor" in t.split("|")[0] for t in titles), titles
        run_ok("spark.stop()")
        run_ok("spark.stop()\nsc.stop()")  # as PySpark: stopping a stopped session is no error
        reply, out = k.execute("spark.range(1).count()", timeout=120)
        errors = [m["content"] for m in out if m["msg_type"] == "error"]
        assert len(errors) == 1 and errors[0]["ename"] == "SparkUnavailable", out
        assert "stopped by cell [5]" in errors[0]["evalue"], errors
        assert "%spark restart" in errors[0]["evalue"]
        text = run_ok("from pyspark.sql import SparkSession\n"
                      f"s = SparkSession.builder.appName('after-stop').master("
                      f"{cluster.master_url!r}).getOrCreate()\n"
                      "print(s.range(3).count(), s.sparkContext.appName)")
        assert text.strip().splitlines()[-1] == "3 after-stop", text
    finally:
        k.shutdown()


def test_session_interrupted_while_it_starts(cluster, setup):
    """A user interrupts the cell whose builder is starting a session (issue 15, item 5).
    On both kernels the cell ends (interrupted, or done if the start won the race) and the
    next cell's builder gets a working session; on sparkernel the interrupt waits for the
    start to end and stops the half-born context (plain PySpark may leave it running in the
    JVM, where the next SparkContext then refuses to start), so the next cell always works.
    Nothing is left running afterwards."""
    from kernels import Kernel

    cell = ("from pyspark.sql import SparkSession\n"
            f"s = {builder('interrupted-start', setup['values']['master'])}\n"
            "print(s.range(3).count(), s.sparkContext.appName)")
    outcomes = {}
    for kernel in ("sparkernel", "ipykernel"):
        token = secrets.token_hex(8)
        env = dict(setup["envs"][kernel], **{MARKER: token})
        saved = os.environ.get("JUPYTER_PATH")
        os.environ["JUPYTER_PATH"] = env["JUPYTER_PATH"]  # where the peer's spec is
        try:
            k = Kernel("sparkernel" if kernel == "sparkernel" else PEER, env=env)
        finally:
            if saved is None:
                os.environ.pop("JUPYTER_PATH", None)
            else:
                os.environ["JUPYTER_PATH"] = saved
        try:
            if kernel == "sparkernel":  # the warm session is up: the start is the user's
                reply, _ = k.execute("%spark status", timeout=120)
            msg_id = k.kc.execute(cell)
            time.sleep(0.5)
            k.km.interrupt_kernel()
            reply, out = k.collect(msg_id, timeout=120)
            first = reply["content"]["status"], reply["content"].get("ename")
            reply, out = k.execute(cell, timeout=300)
            text = "".join(m["content"].get("text", "") for m in out
                           if m["msg_type"] == "stream" and m["content"]["name"] == "stdout")
            outcomes[kernel] = (first, reply["content"]["status"],
                                text.strip().splitlines()[-1] if text.strip() else "")
        finally:
            k.shutdown()
        assert_none_left(token, time.monotonic() + 30)
    first, status, line = outcomes["sparkernel"]
    assert first in (("error", "KeyboardInterrupt"), ("ok", None)), outcomes
    assert (status, line) == ("ok", "3 interrupted-start"), outcomes
    if outcomes["ipykernel"][1] == "ok":  # where plain PySpark recovers, the same output
        assert outcomes["ipykernel"][2] == line, outcomes
    deadline = time.monotonic() + 30
    while [a for a in cluster.json().get("activeapps", [])] and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not cluster.json().get("activeapps"), cluster.json()["activeapps"]


def test_job_of_a_session_the_notebook_built_interrupted(cluster, setup):
    """A cell's running job, in a session the notebook's own builder made, interrupted:
    the cell ends with KeyboardInterrupt alone and the job is cancelled, so the next
    cell's job gets the executors at once. The context the builder started on the main
    thread installed PySpark's SIGINT handler over the kernel's; its cancelAllJobs, called
    from inside the JVM call the cell waited in, failed (a reentrant py4j read): the cell
    showed a Py4JError with py4j's tracebacks and the job ran on. (Plain PySpark under
    ipykernel ends the cell with KeyboardInterrupt but leaves the job running.)"""
    from kernels import Kernel

    token = secrets.token_hex(8)
    env = dict(setup["envs"]["sparkernel"], **{MARKER: token})
    k = Kernel("sparkernel", env=env)
    try:
        reply, _ = k.execute("from pyspark.sql import SparkSession\n"
                             f"spark = {builder('interrupted-job', setup['values']['master'])}\n"
                             "print(spark.range(3).count())", timeout=180)
        assert reply["content"]["status"] == "ok", reply["content"]
        msg_id = k.kc.execute("spark.range(0, 10**11, 1, 4).selectExpr('sum(sqrt(id))')"
                              ".collect()")
        deadline = time.monotonic() + 60
        while not [a for a in cluster.json().get("activeapps", [])  # executors granted
                   if a["name"] == "interrupted-job" and a.get("cores", 0) > 0]:
            assert time.monotonic() < deadline, cluster.json()
            time.sleep(0.5)
        time.sleep(4)  # the job planned and running (it would run for minutes)
        k.km.interrupt_kernel()
        reply, out = k.collect(msg_id, timeout=120)
        assert reply["content"].get("ename") == "KeyboardInterrupt", reply["content"]
        shown = [m["content"] for m in out if m["msg_type"] in ("stream", "error")]
        assert not [c for c in shown if "Py4J" in str(c) or "reentrant" in str(c)], shown
        reply, out = k.execute("print(spark.sparkContext.statusTracker().getActiveJobsIds(),"
                               " spark.range(5).count())\nspark.stop()", timeout=120)
        text = "".join(m["content"].get("text", "") for m in out if m["msg_type"] == "stream")
        assert reply["content"]["status"] == "ok" and text.endswith("[] 5\n"), (reply, text)
    finally:
        k.shutdown()
    assert_none_left(token, time.monotonic() + 30)
