"""
A txmr job as Spark jobs: the pipeline from the input's listing to the
committed C{out-R} files, one Spark job per step of the job.

    input splits (txmr's plan_splits)  ->  M map partitions (txmr's map task each)
        ->  shuffle by txmr's partition  ->  R reduce partitions (txmr's reduce)
        ->  out-0 ... out-{R-1}, then _SUCCESS
    (a map-only step: M map partitions  ->  out-0 ... out-{M-1}, then _SUCCESS)

The input is dealt to map tasks by the same code as txmr's driver, so each
Spark map partition is the very map task txmr would run (its hooks, its
combiner, its counters); files Spark must read (URLs) are read first and
dealt to the same tasks.  The steps of a job are planned by txmr's own
chain (L{txmr.chain.plan_chain}): step K writes C{step-K-out/} as txmr's
engine writes it, which step K+1 reads as its input; a C{TOTAL_ORDER}
step's bounds are sampled by txmr's driver's code.  PySpark is imported
here only.
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

from txmr.chain import plan_chain, step_job
from txmr.core.counters import summed
from txmr.data.inputs import plan_splits
from txmr.job import JobError, load_job
from txmr.job_options import plain_values
from txmr.spark.options import (SparkConfigError, check_run, check_step, check_supported,
                                is_url)
from txmr.spark.storage import (HadoopOutput, LocalOutput, list_input, normalize,
                                remove_output, remove_tree)
from txmr.steps import StepJob, sum_counters

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
    # Each step's own result, in order (the run's alone for one step).
    steps: list = field(default_factory=list)

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
    local = is_local_master(run.master)
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


class StepListener:
    """
    What a caller hears of a run's steps (C{txmr run} prints them as it
    prints the steps of a chain on txmr's engine).  Every method does
    nothing here.
    """

    def planned(self, chain):
        """
        The steps are planned (a L{txmr.chain.Chain}); none has run.
        """

    def started(self, step):
        """
        Step C{step} (a L{txmr.chain.StepRun}) starts: return what its
        progress is fed to, or L{None}.
        """
        return None

    def ended(self, step, result):
        """
        Step C{step} ended with C{result} (a L{SparkResult}).
        """


INTERMEDIATE_REFUSED = ("--intermediate: Spark keeps map output in its shuffle; set "
                        "--spark-conf spark.local.dir=DIR instead (only a job of several steps "
                        "writes its steps' output there)")


def is_local_master(master):
    """
    Whether Spark's Python workers run on this host, in this Python.
    """
    return re.fullmatch(r"local(\[[^\]]*\])?", master.strip()) is not None


def run_spark(run, progress=None, session=None, listener=None):
    """
    Run the job C{run} (a L{txmr.spark.options.SparkRun}) describes: its
    steps one after another, as L{txmr.chain} plans them for txmr's engine,
    each step's output the next one's input, in one Spark session.

    @param progress: called with the phases' task counts as the job goes
        (each step's in turn), unless C{listener} gives each step's.
    @param session: a Spark session to run in (tests share one); by default
        one is started on C{run.master}, and stopped at the end.
    @param listener: a L{StepListener}, or L{None}.
    @raise SparkConfigError: the job cannot start; nothing was written (or,
        for a step after the first, its steps before it ran).
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
    listener = listener or StepListener()
    chain, temporary = _plan_steps(run, job)
    try:
        steps = []
        for step in chain.steps:
            step_job_ = step_job(job, step)
            try:
                # The step's shape (map-only, formats...) follows the options.
                parsed = step_job_.parse_args(run.args)
            except JobError as e:
                raise SparkConfigError(str(e)) from e
            check_step(step_job_, step)
            steps.append((step, step_job_, parsed))
        listener.planned(chain)
        spark = session or start_session(run, job)
    except BaseException:
        if temporary is not None and not is_url(temporary):
            shutil.rmtree(temporary, ignore_errors=True)
        raise
    try:
        results = []
        for step, step_job_, parsed in steps:
            feed = listener.started(step) or progress
            try:
                result = _run_step(spark, run, step, step_job_, parsed, feed, options)
            except BaseException:
                if step is not chain.steps[-1]:
                    remove_output(spark.sparkContext, chain.steps[-1].output)
                raise
            results.append(result)
            listener.ended(step, result)
            if not result.ok:
                if step is not chain.steps[-1]:
                    # As txmr's chain: no earlier run's answer is left to be
                    # taken for this one's.
                    remove_output(spark.sparkContext, chain.steps[-1].output)
                break
        return _chain_result(results)
    finally:
        if temporary is not None:
            remove_tree(spark.sparkContext, temporary)
        if session is None:
            spark.stop()


def _plan_steps(run, job):
    """
    The steps of the run, planned by txmr's own L{txmr.chain.plan_chain}
    (their task counts, JOBCONF included, and their directories), and the
    directory made for their output (L{None}: none was made).

    @raise SparkConfigError: before anything is written.
    """
    stepped = isinstance(job, StepJob) and job.n_steps > 1
    if run.intermediate and not stepped:
        raise SparkConfigError(INTERMEDIATE_REFUSED)
    root = temporary = None
    if stepped:
        if run.intermediate:
            root = run.intermediate if is_url(run.intermediate) else os.path.abspath(
                run.intermediate)
        elif is_local_master(run.master):
            root = temporary = tempfile.mkdtemp(prefix="txmr-spark-steps-")
        elif is_url(run.output):
            root = temporary = f"{run.output.rstrip('/')}/_txmr-steps-{uuid.uuid4().hex}"
        else:
            raise SparkConfigError(
                f"job {job.name!r} has {job.n_steps} steps: on a cluster master their output "
                f"must be where every host reads it; give --intermediate (a shared directory, "
                f"or a URL) or an output URL")
    try:
        return plan_chain(job, run.input, root, run.output, run.mappers, run.reducers,
                          run.args), temporary
    except JobError as e:
        if temporary is not None and not is_url(temporary):
            shutil.rmtree(temporary, ignore_errors=True)
        raise SparkConfigError(str(e)) from e


def _chain_result(results):
    """
    The result of a run from its steps' results: their counters summed, as
    txmr's chain sums them (for one step, its own).
    """
    if len(results) == 1:
        result = results[0]
        result.steps = [result]
        return result
    failed = next((r for r in results if not r.ok), None)
    return SparkResult(
        counters=sum_counters(r.counters for r in results),
        skipped_records=[record for r in results for record in r.skipped_records],
        failure=failed.failure if failed else None,
        traceback=failed.traceback if failed else "", steps=list(results))


def _run_step(spark, run, step, job, parsed, progress, options):
    """
    One step (a L{txmr.chain.StepRun}) as one Spark job: its input listed
    and dealt to map tasks by txmr's own code, its map tasks, its reduce
    tasks (none for a map-only step), its output committed.
    """
    from txmr.spark import sampling, tasks

    sc = spark.sparkContext
    files = list_input(sc, step.input)
    output = HadoopOutput(sc, step.output) if is_url(step.output) else LocalOutput(step.output)
    # The splits of txmr's driver (compressed files dealt whole).
    splits = plan_splits([(f.name, f.size) for f in files], step.mappers, job.input_mode)
    # A map-only step runs no reduce task, however many -r asked for.
    n_map, n_reduce = len(splits), 0 if step.map_only else step.reducers
    bounds = []
    if job.total_order and n_reduce > 1:
        # Sampled on this driver by txmr's driver's code, from the same
        # splits: the same bounds, so the same out-R files.
        try:
            bounds = sampling.bounds(sc, job, parsed, step.input, files, splits, n_reduce)
        except Exception as e:
            raise SparkConfigError(f"cannot sample the keys for TOTAL_ORDER: "
                                   f"{type(e).__name__}: {e}") from e
    fetched = frozenset(f.name for f in files if f.location is not None)
    reports = sc.accumulator({}, tasks.TaskReports())
    local_output = output.path if isinstance(output, LocalOutput) else None
    map_plan = tasks.MapPlan(
        job=job.name, splits=splits, input=None if is_url(step.input) else step.input,
        stamps={f.name: f.stamp for f in files if f.stamp is not None}, fetched=fetched,
        n_reduce=n_reduce, max_attempts=run.max_attempts,
        skip_bad_records=run.skip_bad_records, args=list(run.args), options=options,
        output=local_output if n_reduce == 0 else None, bounds=bounds)
    if fetched:
        source = _fetched_input(spark, files, splits)
    else:
        source = sc.parallelize(range(n_map), n_map)
    if n_reduce:
        reduce_plan = tasks.ReducePlan(
            job=job.name, n_map=n_map, n_reduce=n_reduce, output=local_output,
            memory=run.memory, args=list(run.args), options=options)
        final = (source.mapPartitionsWithIndex(partial(tasks.map_partition, map_plan, reports))
                 .partitionBy(n_reduce, _identity)
                 .mapPartitionsWithIndex(partial(tasks.reduce_partition, reduce_plan,
                                                 reports)))
    else:
        # Map task M writes out-M, as txmr's map task of a map-only job.
        final = source.mapPartitionsWithIndex(partial(tasks.map_only_partition, map_plan,
                                                      reports))
    n_out = n_reduce or n_map
    output.prepare(job.name)
    ok = False
    try:
        group = f"txmr-{uuid.uuid4().hex}"
        if isinstance(output, LocalOutput):
            action = final.collect
        else:
            def action():
                final.saveAsTextFile(output.staging)
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
            output.commit(n_out)
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
    The files Spark reads (URLs), read whole as they are (compressed ones
    too: Spark's C{binaryFile} source decompresses nothing, txmr's reader
    does, by the file's name) and dealt to the map tasks whose splits hold
    them: an RDD of one partition per map task, of C{(M, (name, offset,
    size, bytes))}.
    """
    from txmr.spark import tasks

    by_name = {f.name: f for f in files if f.location is not None}
    wanted = {}
    for m, task in enumerate(splits):
        for name, start, end in task:
            f = by_name.get(name)
            if f is not None:
                entry = wanted.setdefault(normalize(f.location), (f.name, f.size, []))
                entry[2].append((m, start, end))
    # Spark takes a path holding any of {}[]*?\\ for a glob: escape them.
    # (An empty file cut into byte ranges is in no split: not read.)
    dealt = {name for name, _, _ in wanted.values()}
    paths = [GLOB.sub(r"\\\1", f.location) for f in by_name.values() if f.name in dealt]
    if not paths:
        return spark.sparkContext.parallelize([], len(splits))
    rows = spark.read.format("binaryFile").load(paths).select("path", "content")
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
