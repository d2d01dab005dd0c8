"""
The task functions Spark runs in its Python workers: txmr's own map and
reduce attempts (L{txmr.data.run.run_task}), one per Spark partition.

A map partition runs map task M over its splits, exactly as a txmr worker
would (hooks once per task, combiner, counters, skipped records), into map
output files in a scratch directory, and hands them to Spark's shuffle
(L{txmr.spark.shuffle}); a map-only job's map task writes its C{out-M}
instead.  A reduce partition puts the pieces back into the same files and
runs reduce task R over them, as txmr's reduce would, in map order; its
output is txmr's C{out-R}, byte for byte.  Each task reports its counters
through L{txmr.spark.reports}, and fails as L{txmr.spark.failures} says.

PySpark comes in with L{txmr.spark.reports}: L{txmr.spark.stage} imports
this module only as a step runs.
"""

import os

from txmr.core.spec import TaskSpec
from txmr.core.states import Kind
from txmr.data.attempt import RecordError
from txmr.data.layout import Layout
from txmr.data.run import run_task
from txmr.spark.executor import attempt_id, handed_back, scratch, task_job
from txmr.spark.failures import failure
from txmr.spark.fetched import materialize
from txmr.spark.reports import report
from txmr.spark.shuffle import map_pieces, reassemble


def map_partition(plan, reports, index, records):
    """
    Map task C{index}, given the records Spark read for it (none when its
    input is local): yields its output for the shuffle.
    """
    with scratch("map") as work:
        try:
            os.makedirs(os.path.join(work, "intermediate"))
            counters, skipped, spec = _map_task(plan, index, records, work, None)
        except Exception:
            raise failure("map", index)
        report(reports, "map", index, counters, skipped)
        yield from map_pieces(spec)


def map_only_partition(plan, reports, index, records):
    """
    Map task C{index} of a map-only job, given the records Spark read for
    it: its C{out-M}, as txmr's map task writes it, handed back
    (L{txmr.spark.executor.handed_back}).
    """
    with scratch("map") as work:
        try:
            output = plan.output or os.path.join(work, "output")
            os.makedirs(output, exist_ok=True)
            counters, skipped, spec = _map_task(plan, index, records, work, output)
            ((temporary, _),) = Layout.of(spec).files(Kind.MAP, index, spec.attempt)
        except Exception:
            raise failure("map", index)
        report(reports, "map", index, counters, skipped)
        yield from handed_back(plan.output, temporary, index, "map")


def _map_task(plan, index, records, work, output):
    """
    Map task C{index} run to success in the scratch directory C{work}, its
    input the local files or those Spark read for it.
    """
    job = task_job(plan.job)
    root, splits, stamps = materialize(plan, index, records, work)
    return run_map_attempts(job, plan, index, root, splits, stamps,
                            os.path.join(work, "intermediate"), output)


def run_map_attempts(job, plan, index, root, splits, stamps, intermediate, output):
    """
    Run map task C{index} to success, skipping bad records by txmr's rule
    (L{txmr.core.scheduler.Scheduler}: a record that failed twice is skipped
    by the next attempt; other record failures count towards
    C{max_attempts}).  Without skipping, the first failure is the task's.

    @param output: a map-only job's output directory (where its attempts
        write their C{out-M} under names of their own), else L{None}.
    @return: the counters, the skipped records, the successful spec.
    """
    skip, skipped, seen, failures = [], [], {}, 0
    # Attempts of this Spark task are numbered after Spark's attempt, so
    # that no other attempt of the application (a task Spark runs again,
    # writing in the same output directory) has their file names.
    attempt = attempt_id() << 20
    while True:
        spec = TaskSpec(kind=Kind.MAP, index=index, attempt=attempt, job=job.name,
                        intermediate=intermediate, n_map=len(plan.splits),
                        n_reduce=plan.n_reduce, input=root, splits=splits, skip=list(skip),
                        stamps=stamps, output=output, args=list(plan.args),
                        options=dict(plan.options), bounds=list(plan.bounds))
        try:
            return run_task(job, spec), skipped, spec
        except RecordError as e:
            if not plan.skip_bad_records:
                raise
            key = repr(e.record)
            seen[key] = seen.get(key, 0) + 1
            if seen[key] == 2:
                skip.append(e.record)
                skipped.append(e.record)
            else:
                failures += 1
                if failures >= plan.max_attempts:
                    raise
        attempt += 1


def reduce_partition(plan, reports, index, records):
    """
    Reduce task C{index} over the pieces of map output Spark shuffled to
    it: its C{out-R}, handed back (L{txmr.spark.executor.handed_back}).
    """
    with scratch("reduce") as work:
        try:
            job = task_job(plan.job)
            intermediate = os.path.join(work, "intermediate")
            output = plan.output or os.path.join(work, "output")
            os.makedirs(intermediate)
            os.makedirs(output, exist_ok=True)
            layout = Layout(intermediate, output, plan.n_map, plan.n_reduce)
            reassemble(layout, index, records)
            spec = TaskSpec(kind=Kind.REDUCE, index=index, attempt=attempt_id(), job=job.name,
                            intermediate=intermediate, n_map=plan.n_map,
                            n_reduce=plan.n_reduce, output=output, memory=plan.memory,
                            args=list(plan.args), options=dict(plan.options))
            counters = run_task(job, spec)
            ((temporary, _),) = layout.files(Kind.REDUCE, index, spec.attempt)
        except Exception:
            raise failure("reduce", index)
        report(reports, "reduce", index, counters)
        yield from handed_back(plan.output, temporary, index, "reduce")
