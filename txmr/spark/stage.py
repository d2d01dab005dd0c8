"""
One step of a job as one Spark job: its map stage, the shuffle, its reduce
stage, its output committed.

    input splits (txmr's plan_splits)  ->  M map partitions (txmr's map task each)
        ->  shuffle by txmr's partition  ->  R reduce partitions (txmr's reduce)
        ->  out-0 ... out-{R-1}, then _SUCCESS
    (a map-only step: M map partitions  ->  out-0 ... out-{M-1}, then _SUCCESS)

The input is dealt to map tasks by the same code as txmr's driver, so each
Spark map partition is the very map task txmr would run (its hooks, its
combiner, its counters); files Spark must read (URLs) are read first and
dealt to the same tasks (L{txmr.spark.fetched}).  A C{TOTAL_ORDER} step's
bounds are sampled by txmr's driver's code (L{txmr.spark.sampling}).

This module imports without PySpark: L{txmr.spark.tasks} and
L{txmr.spark.reports}, which import it, are imported as a step runs.
"""

import threading
import uuid
from functools import partial

from txmr.data.inputs import plan_splits
from txmr.spark import sampling
from txmr.spark.failures import failure_of
from txmr.spark.fetched import fetched_input
from txmr.spark.options import SparkConfigError, is_url
from txmr.spark.plans import MapPlan, ReducePlan
from txmr.spark.progress import StageFeed
from txmr.spark.shuffle import by_partition
from txmr.spark.storage import HadoopOutput, LocalOutput, list_input


def run_step(spark, run, step, job, parsed, progress, options):
    """
    One step (a L{txmr.chain.StepRun}) as one Spark job: its input listed
    and dealt to map tasks by txmr's own code, its map tasks, its reduce
    tasks (none for a map-only step), its output committed.

    @return: the step's L{txmr.spark.result.SparkResult}.
    """
    from txmr.spark.reports import TaskReports, result_of

    sc = spark.sparkContext
    files = list_input(sc, step.input)
    output = HadoopOutput(sc, step.output) if is_url(step.output) else LocalOutput(step.output)
    # The splits of txmr's driver (compressed files dealt whole).
    splits = plan_splits([(f.name, f.size) for f in files], step.mappers, job.input_mode)
    # A map-only step runs no reduce task, however many -r asked for.
    n_map, n_reduce = len(splits), 0 if step.map_only else step.reducers
    bounds = _bounds(sc, job, parsed, step, files, splits, n_reduce)
    reports = sc.accumulator({}, TaskReports())
    local_output = output.path if isinstance(output, LocalOutput) else None
    map_plan = MapPlan(
        job=job.name, splits=splits, input=None if is_url(step.input) else step.input,
        stamps={f.name: f.stamp for f in files if f.stamp is not None},
        fetched=frozenset(f.name for f in files if f.location is not None),
        n_reduce=n_reduce, max_attempts=run.max_attempts,
        skip_bad_records=run.skip_bad_records, args=list(run.args), options=options,
        output=local_output if n_reduce == 0 else None, bounds=bounds)
    reduce_plan = ReducePlan(
        job=job.name, n_map=n_map, n_reduce=n_reduce, output=local_output,
        memory=run.memory, args=list(run.args), options=options) if n_reduce else None
    final = _stages(spark, files, map_plan, reduce_plan, reports)
    output.prepare(job.name)
    ok = False
    try:
        group = f"txmr-{uuid.uuid4().hex}"
        if isinstance(output, LocalOutput):
            action = final.collect
        else:
            def action():
                final.saveAsTextFile(output.staging)
        feed = StageFeed(sc, group, n_map, n_reduce)
        outcome = _follow(sc, group, f"txmr {job.name}", action, feed, progress)
        if isinstance(outcome, BaseException):
            # As txmr's engine: the counters of the tasks that finished.
            partial_result = result_of(reports.value)
            partial_result.failure, partial_result.traceback = failure_of(outcome)
            return partial_result
        if isinstance(output, LocalOutput):
            output.commit(dict(outcome))
        else:
            output.commit(n_reduce or n_map)
        ok = True
        if progress is not None:
            progress(feed.finished())
        return result_of(reports.value)
    finally:
        output.release(ok)


def _bounds(sc, job, parsed, step, files, splits, n_reduce):
    """
    A C{TOTAL_ORDER} step's bounds, sampled on this driver by txmr's
    driver's code, from the same splits: the same bounds, so the same
    C{out-R} files.  (No bounds for any other step.)
    """
    if not (job.total_order and n_reduce > 1):
        return []
    try:
        return sampling.bounds(sc, job, parsed, step.input, files, splits, n_reduce)
    except Exception as e:
        raise SparkConfigError(f"cannot sample the keys for TOTAL_ORDER: "
                               f"{type(e).__name__}: {e}") from e


def _stages(spark, files, map_plan, reduce_plan, reports):
    """
    The step's last RDD: its map stage, shuffled by txmr's partition to its
    reduce stage; for a map-only step (no C{reduce_plan}), its map stage.
    """
    from txmr.spark import tasks

    n_map = len(map_plan.splits)
    if map_plan.fetched:
        source = fetched_input(spark, files, map_plan.splits)
    else:
        source = spark.sparkContext.parallelize(range(n_map), n_map)
    if reduce_plan is None:
        # Map task M writes out-M, as txmr's map task of a map-only job.
        return source.mapPartitionsWithIndex(partial(tasks.map_only_partition, map_plan,
                                                     reports))
    return (source.mapPartitionsWithIndex(partial(tasks.map_partition, map_plan, reports))
            .partitionBy(reduce_plan.n_reduce, by_partition)
            .mapPartitionsWithIndex(partial(tasks.reduce_partition, reduce_plan, reports)))


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
