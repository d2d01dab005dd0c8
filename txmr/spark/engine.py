"""
A txmr job as one Spark job: the pipeline from the input's listing to the
committed C{out-R} files.

    input splits (txmr's plan_splits)  ->  M map partitions (txmr's map task each)
        ->  shuffle by txmr's CRC-32 partition  ->  R reduce partitions (txmr's reduce)
        ->  out-0 ... out-{R-1}, then _SUCCESS

The input is dealt to map tasks by the same code as txmr's driver, so each
Spark map partition is the very map task txmr would run (its hooks, its
combiner, its counters); files Spark must read (URLs, compressed files) are
read first and dealt to the same tasks.  PySpark is imported here only.
"""

import os
import re
import shutil
import sys
import tempfile
import threading
import uuid
from dataclasses import dataclass, field
from functools import partial

from txmr.core.counters import summed
from txmr.data.inputs import plan_splits
from txmr.job import JobError, load_job
from txmr.job_options import plain_values
from txmr.spark.options import SparkConfigError, check_run, check_supported, is_url
from txmr.spark.storage import HadoopOutput, LocalOutput, list_input, normalize

GLOB = re.compile(r"([{}\[\]*?\\])")


@dataclass
class SparkResult:
    """
    How a Spark run ended.

    @ivar skipped_records: C{[kind, index, record]}, as txmr's driver
        reports them.
    @ivar failure: the one-line reason the job failed, or L{None}.
    @ivar traceback: the failing task's Python traceback.
    """

    counters: dict = field(default_factory=dict)
    skipped_records: list = field(default_factory=list)
    failure: str | None = None
    traceback: str = ""

    @property
    def ok(self):
        return self.failure is None


def start_session(run, job):
    """
    A Spark session on C{run.master} whose Python workers can import txmr
    and the job.

    @raise SparkConfigError: Spark cannot start (no Java, a bad master).
    """
    from pyspark.sql import SparkSession

    # On a local master, Spark's Python workers run this interpreter, where
    # txmr is installed, and find modules in the current directory, as
    # txmr's own workers do.  On a cluster they run the executors' Python
    # (spark.pyspark.python), and txmr and a job file are shipped to them.
    local = re.fullmatch(r"local(\[[^\]]*\])?", run.master.strip()) is not None
    if local:
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        os.environ["PYTHONPATH"] = os.pathsep.join(
            p for p in (os.getcwd(), os.environ.get("PYTHONPATH")) if p)
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    builder = SparkSession.builder.master(run.master).appName(f"txmr {job.name}")
    if not any(key == "spark.driver.extraJavaOptions" for key, _ in run.conf):
        quiet = os.path.join(os.path.dirname(os.path.abspath(__file__)), "log4j2.properties")
        builder = builder.config("spark.driver.extraJavaOptions",
                                 f"-Dlog4j2.configurationFile=file:{quiet}")
    # The progress bar is txmr's; failures are shown as Python tracebacks.
    builder = builder.config("spark.ui.showConsoleProgress", "false")
    for key, value in run.conf:
        builder = builder.config(key, value)
    try:
        spark = builder.getOrCreate()
    except Exception as e:
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise SparkConfigError(f"cannot start Spark on {run.master!r}: {first} (--engine spark "
                               f"needs a Java runtime, 17 or later)") from e
    sc = spark.sparkContext
    where = job.name.rpartition(":")[0] if ":" in job.name else job.name
    if where.endswith(".py"):
        sc.addPyFile(where)
    if not local:
        sc.addPyFile(_txmr_archive())
    return spark


def _txmr_archive():
    """
    The txmr package as a zip, for executors on other hosts.
    """
    import txmr

    import atexit

    package = os.path.dirname(os.path.abspath(txmr.__file__))
    work = tempfile.mkdtemp(prefix="txmr-spark-")
    atexit.register(shutil.rmtree, work, True)
    return shutil.make_archive(os.path.join(work, "txmr"), "zip", os.path.dirname(package),
                               "txmr")


def run_spark(run, progress=None, session=None):
    """
    Run the job C{run} (a L{txmr.spark.options.SparkRun}) describes.

    @param progress: called with the phases' task counts as the job goes.
    @param session: a Spark session to run in (tests share one); by default
        one is started on C{run.master}, and stopped at the end.
    @raise SparkConfigError: the job cannot start; nothing was written.
    @return: a L{SparkResult}.
    """
    check_run(run)
    if not is_url(run.input):
        run.input = os.path.abspath(run.input)
    if not is_url(run.output):
        run.output = os.path.abspath(run.output)
    try:
        job = load_job(run.job)
    except JobError as e:
        raise SparkConfigError(str(e)) from e
    check_supported(job)
    try:
        # Parsed here, once, as txmr's driver parses them: a bad option
        # fails before anything runs, naming it; each task parses them again.
        options = plain_values(job.parse_args(run.args))
    except JobError as e:
        raise SparkConfigError(str(e)) from e
    spark = session or start_session(run, job)
    try:
        return _run(spark, run, job, progress, options)
    finally:
        if session is None:
            spark.stop()


def _run(spark, run, job, progress, options):
    from txmr.spark import tasks

    sc = spark.sparkContext
    files = list_input(sc, run.input)
    output = HadoopOutput(sc, run.output) if is_url(run.output) else LocalOutput(run.output)
    # Compressed files are dealt whole, as txmr's engine deals them.
    splits = plan_splits([(f.name, f.size) for f in files], run.mappers, job.input_mode)
    n_map, n_reduce = len(splits), run.reducers
    fetched = {f.name: f.compressed for f in files if f.location is not None}
    reports = sc.accumulator({}, tasks.TaskReports())
    map_plan = tasks.MapPlan(
        job=job.name, splits=splits, input=None if is_url(run.input) else run.input,
        stamps={f.name: f.stamp for f in files if f.stamp is not None}, fetched=fetched,
        n_reduce=n_reduce, max_attempts=run.max_attempts,
        skip_bad_records=run.skip_bad_records, args=list(run.args), options=options)
    reduce_plan = tasks.ReducePlan(
        job=job.name, n_map=n_map, n_reduce=n_reduce,
        output=output.path if isinstance(output, LocalOutput) else None, memory=run.memory,
        args=list(run.args), options=options)
    if fetched:
        source = _fetched_input(spark, files, splits)
    else:
        source = sc.parallelize(range(n_map), n_map)
    reduced = (source.mapPartitionsWithIndex(partial(tasks.map_partition, map_plan, reports))
               .partitionBy(n_reduce, _identity)
               .mapPartitionsWithIndex(partial(tasks.reduce_partition, reduce_plan, reports)))
    output.prepare(job.name)
    ok = False
    try:
        group = f"txmr-{uuid.uuid4().hex}"
        if isinstance(output, LocalOutput):
            action = reduced.collect
        else:
            def action():
                reduced.saveAsTextFile(output.staging)
        from txmr.spark.progress import StageFeed

        feed = StageFeed(sc, group, n_map, n_reduce)
        outcome = _follow(sc, group, f"txmr {job.name}", action, feed, progress)
        if isinstance(outcome, BaseException):
            # As txmr's engine: the counters of the tasks that finished.
            partial_result = _result(reports.value)
            partial_result.failure, partial_result.traceback = failure_of(outcome)
            return partial_result
        if isinstance(output, LocalOutput):
            output.commit(dict(outcome))
        else:
            output.commit(n_reduce)
        ok = True
        if progress is not None:
            progress(feed.finished())
        return _result(reports.value)
    finally:
        output.release(ok)


def _identity(r):
    return r


def _fetched_input(spark, files, splits):
    """
    The files Spark reads (URLs, compressed files), read whole as bytes and
    dealt to the map tasks whose splits hold them: an RDD of one partition
    per map task, of C{(M, (name, offset, size, bytes))}.
    """
    from pyspark.sql import functions as F

    from txmr.spark import tasks

    by_name = {f.name: f for f in files if f.location is not None}
    wanted = {}
    for m, task in enumerate(splits):
        for name, start, end in task:
            f = by_name.get(name)
            if f is not None:
                entry = wanted.setdefault(normalize(f.location),
                                          (f.name, f.size, f.compressed, []))
                entry[3].append((m, start, end))
    # Spark takes a path holding any of {}[]*?\\ for a glob: escape them.
    paths = [GLOB.sub(r"\\\1", f.location) for f in by_name.values()]
    rows = (spark.read.text(paths, wholetext=True)
            .select(F.col("_metadata.file_path"), F.col("value").cast("binary")))
    return (rows.rdd.map(tuple).flatMap(partial(tasks.route, wanted))
            .partitionBy(len(splits), _identity))


def _follow(sc, group, description, action, feed, progress):
    """
    Run C{action} in a thread, in its own job group, feeding C{progress}
    from the status tracker meanwhile; return its result or its exception.
    Ctrl-C cancels the Spark job.
    """
    outcome = []

    def target():
        sc.setJobGroup(group, description, interruptOnCancel=True)
        try:
            outcome.append(action())
        except BaseException as e:
            outcome.append(e)

    thread = threading.Thread(target=target, name="txmr-spark-action", daemon=True)
    thread.start()
    try:
        while thread.is_alive():
            if progress is not None:
                progress(feed.counts())
            thread.join(0.2)
    except KeyboardInterrupt:
        sc.cancelJobGroup(group)
        thread.join(30)
        raise
    return outcome[0] if outcome else RuntimeError("the Spark job ended without an outcome")


def failure_of(error):
    """
    The one-line reason and the Python traceback of a failed Spark job: the
    failing task's own, carried between markers by L{tasks.TaskFailed},
    rather than the JVM's stack.
    """
    from txmr.spark.tasks import BEGIN, END

    text = str(error)
    start = text.find(BEGIN)
    if start >= 0:
        end = text.find(END, start)
        body = text[start + len(BEGIN):end if end >= 0 else None]
        head, _, tb = body.partition("\n")
        return head, tb.rstrip("\n")
    # No task's code raised (a Python worker that died, a JVM error): the
    # reason Spark gives for the task it lost, without the JVM's stack.
    lost = re.search(r"Lost task (\S+) in stage (\S+) \([^)]*\) \([^)]*\): (.*)", text)
    if lost:
        reason = re.split(r"\b\w*(?:Exception|Error): ", lost.group(3))[-1]
        return (f"the Spark job failed: task {lost.group(1)} of stage {lost.group(2)}: "
                f"{reason.strip()}", "")
    lines = [line.strip(": ") for line in text.splitlines()
             if line.strip(": ") and not line.startswith(("\tat ", "\t... "))]
    return f"the Spark job failed: {lines[0] if lines else type(error).__name__}", ""


def _result(reports):
    counters = summed(report["counters"] for report in reports.values())
    skipped = [[kind, index, record]
               for (kind, index), report in sorted(reports.items())
               for record in report["skipped"]]
    return SparkResult(counters=counters, skipped_records=skipped)
