"""
What runs in Spark's Python workers: txmr's own map and reduce attempts
(L{txmr.data.run.run_task}), one per Spark partition.

A map partition runs map task M over its splits, exactly as a txmr worker
would (hooks once per task, combiner, counters, skipped records), into map
output files in a scratch directory; it then hands those files to Spark's
shuffle as C{(R, (M, piece, bytes))} records, R being the reduce task that
txmr's CRC-32 partitioning gave them.  A reduce partition puts the pieces
back into the same files and runs reduce task R over them, as txmr's
reduce would, in map order; its output is txmr's C{out-R}, byte for byte.

Each task's counters (and skipped records) reach the driver through one
Spark accumulator, keyed by task: a task Spark runs again replaces its
earlier report instead of adding to it, so counters are summed over one
successful attempt per task, as txmr's driver sums them.
"""

import os
import shutil
import tempfile
import traceback
from dataclasses import dataclass, field

from pyspark.accumulators import AccumulatorParam

from txmr.core.spec import DEFAULT_MEMORY, TaskSpec
from txmr.core.states import Kind
from txmr.data.attempt import RecordError
from txmr.data.inputs import InputChanged
from txmr.data.layout import Layout
from txmr.data.run import run_task
from txmr.job import JobError, load_job
from txmr.steps import split_step, step_name

# Map output crosses the shuffle in pieces of this size (a record must stay
# well under what Spark's serializers take in one piece).
PIECE = 8 << 20
BEGIN, END = "<txmr-task-failure>", "</txmr-task-failure>"


class TaskFailed(Exception):
    """
    A task's code raised: the message carries its Python traceback between
    markers, for the driver to show instead of the JVM's stack.
    """


class TaskReports(AccumulatorParam):
    """
    C{{(kind, index): {"counters": ..., "skipped": [...]}}}: one report per
    task, the last successful attempt's.
    """

    def zero(self, value):
        return {}

    def addInPlace(self, a, b):
        a.update(b)
        return a


@dataclass(frozen=True)
class MapPlan:
    """
    What every map partition needs: the job, its splits, where to read.

    @ivar splits: per map task, its C{[name, start, end]} splits.
    @ivar input: the local input root, or L{None} (every file is fetched).
    @ivar stamps: C{{name: stamp}} of the local input files.
    @ivar fetched: the names of the files Spark reads (as they are, not
        decompressed) and hands to the map tasks.
    @ivar output: a map-only job's local output directory, where map
        attempts write their files for the driver to rename, or L{None}.
    @ivar bounds: C{TOTAL_ORDER}'s sampled bounds (L{txmr.data.sampling}).
    """

    job: str
    splits: list
    input: str | None
    stamps: dict
    fetched: frozenset
    n_reduce: int
    max_attempts: int
    skip_bad_records: bool
    # The job's options: its argument list, and the plain values the driver
    # parsed (as txmr's engine carries them in each task's spec).
    args: list = field(default_factory=list)
    options: dict = field(default_factory=dict)
    output: str | None = None
    bounds: list = field(default_factory=list)


@dataclass(frozen=True)
class ReducePlan:
    """
    What every reduce partition needs.

    @ivar output: the local output directory where reduce attempts write
        their files for the driver to rename, or L{None}: the output goes
        to Spark's writer as lines.
    """

    job: str
    n_map: int
    n_reduce: int
    output: str | None
    memory: int = DEFAULT_MEMORY
    args: list = field(default_factory=list)
    options: dict = field(default_factory=dict)


_jobs = {}


def task_job(name):
    """
    The job, loaded once per Python worker.  A job given as a file the
    driver shipped (C{sc.addPyFile}) is found among Spark's files where
    its path does not exist (on another host).
    """
    job = _jobs.get(name)
    if job is None:
        try:
            job = load_job(name)
        except JobError:
            whole, step = split_step(name)
            where, colon, attribute = whole.rpartition(":") if ":" in whole else (whole, "", "")
            if not where.endswith(".py") or os.path.exists(where):
                raise
            from pyspark import SparkFiles

            shipped = SparkFiles.get(os.path.basename(where)) + colon + attribute
            job = load_job(shipped if step is None else step_name(shipped, step))
        _jobs[name] = job
    return job


def failure(kind, index):
    """
    The L{TaskFailed} for the exception being handled.
    """
    import sys

    error = sys.exc_info()[1]
    if isinstance(error, RecordError):
        error = error.error
    return TaskFailed(f"{BEGIN}{kind} task {index} failed: {type(error).__name__}: {error}\n"
                      f"{traceback.format_exc()}{END}")


def attempt_id():
    """
    A number no other attempt of this Spark application has: files an
    attempt writes are named by it.
    """
    from pyspark import TaskContext

    context = TaskContext.get()
    return context.taskAttemptId() if context is not None else 0


def scratch(kind):
    """
    A new scratch directory for one task, in the executor's local
    directories (YARN's, or Spark's) where it has them.
    """
    root = None
    for variable in ("SPARK_LOCAL_DIRS", "LOCAL_DIRS"):
        if os.environ.get(variable):
            root = os.environ[variable].split(",")[0]
            break
    return tempfile.mkdtemp(prefix=f"txmr-spark-{kind}-", dir=root)


def map_partition(plan, reports, index, records):
    """
    Map task C{index}, given the records Spark read for it (none when its
    input is local): yields its output for the shuffle.
    """
    work = scratch("map")
    try:
        try:
            job = task_job(plan.job)
            root, splits, stamps = materialize(plan, index, records, work)
            intermediate = os.path.join(work, "intermediate")
            os.makedirs(intermediate)
            counters, skipped, spec = run_map_attempts(job, plan, index, root, splits, stamps,
                                                       intermediate, None)
        except Exception:
            raise failure("map", index)
        reports.add({("map", index): {"counters": counters, "skipped": skipped}})
        for r, (temporary, _) in enumerate(Layout.of(spec).files(Kind.MAP, index,
                                                                   spec.attempt)):
            with open(temporary, "rb") as f:
                piece = 0
                while True:
                    data = f.read(PIECE)
                    if data or piece == 0:
                        yield r, (index, piece, data)
                    if len(data) < PIECE:
                        break
                    piece += 1
    finally:
        shutil.rmtree(work, ignore_errors=True)


def map_only_partition(plan, reports, index, records):
    """
    Map task C{index} of a map-only job, given the records Spark read for
    it: its C{out-M}, as txmr's map task writes it.  Yields C{(index,
    temporary path)} where the driver commits local output, else the lines
    of C{out-M} for Spark's writer.
    """
    work = scratch("map")
    try:
        try:
            job = task_job(plan.job)
            root, splits, stamps = materialize(plan, index, records, work)
            output = plan.output or os.path.join(work, "output")
            os.makedirs(output, exist_ok=True)
            counters, skipped, spec = run_map_attempts(job, plan, index, root, splits, stamps,
                                                       os.path.join(work, "intermediate"),
                                                       output)
            ((temporary, _),) = Layout.of(spec).files(Kind.MAP, index, spec.attempt)
        except Exception:
            raise failure("map", index)
        reports.add({("map", index): {"counters": counters, "skipped": skipped}})
        if plan.output is not None:
            yield index, temporary
            return
        yield from output_lines(temporary, index, "map")
    finally:
        shutil.rmtree(work, ignore_errors=True)


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


def materialize(plan, index, records, work):
    """
    The input root, splits and stamps map task C{index} reads.  Files that
    Spark read for it are written under a scratch root, each at its own
    offsets (a sparse file of its full size), so the map reads them as it
    would read the original: the same lines, named by the same offsets; a
    compressed file, which Spark hands as it is, whole, is decompressed by
    txmr's own reader, by its name, as on txmr's engine.  The task's local
    files are linked beside them.
    """
    splits = plan.splits[index]
    fetched = {name for name, _, _ in splits if name in plan.fetched}
    if not fetched:
        return plan.input, splits, {name: list(plan.stamps[name]) for name, _, _ in splits}
    root = os.path.join(work, "input")
    sizes = {}
    handles = {}
    try:
        for _, (name, offset, size, data) in records:
            if name not in handles:
                path = os.path.join(root, name)
                os.makedirs(os.path.dirname(path), exist_ok=True)
                handles[name] = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                os.ftruncate(handles[name], size)
                sizes[name] = size
            os.pwrite(handles[name], data, offset)
    finally:
        for fd in handles.values():
            os.close(fd)
    out = []
    for name, start, end in splits:
        path = os.path.join(root, name)
        if name in fetched:
            if name not in sizes:  # Spark gives no row for an empty file
                os.makedirs(os.path.dirname(path), exist_ok=True)
                open(path, "wb").close()
                sizes[name] = 0
        elif not os.path.lexists(path):
            os.makedirs(os.path.dirname(path), exist_ok=True)
            os.symlink(os.path.join(plan.input, name), path)
        out.append([name, start, end])
    stamps = {name: list(plan.stamps[name]) for name, _, _ in splits if name in plan.stamps}
    return root, out, stamps


def route(wanted, row):
    """
    Deal one file Spark read, C{(location, bytes)}, to the map tasks whose
    splits hold it: C{(M, (name, offset, size, bytes))}, each task getting
    only the bytes its splits read (from the byte before its start to the
    end of the line holding its last byte; a compressed file is one split,
    whole).

    @param wanted: C{{normalized location: (name, size, [(M, start, end)])}}.
    """
    from txmr.spark.storage import normalize

    location, data = row
    data = bytes(data or b"")
    entry = wanted.get(normalize(location))
    if entry is None:
        raise InputChanged(f"Spark read {location!r}, which is not an input file of the job")
    name, size, splits = entry
    if len(data) != size:
        raise InputChanged(f"input file {name!r} changed since the job was planned (size "
                           f"{size} -> {len(data)} bytes)")
    for m, start, end in splits:
        low = max(0, start - 1)
        newline = data.find(b"\n", max(low, end - 1)) if end > 0 else -1
        high = newline + 1 if newline >= 0 else len(data)
        yield m, (name, low, size, data[low:high])


def reduce_partition(plan, reports, index, records):
    """
    Reduce task C{index} over the pieces of map output Spark shuffled to
    it.  Yields C{(index, temporary path)} where the driver commits local
    output, else the lines of C{out-R} for Spark's writer.
    """
    work = scratch("reduce")
    try:
        try:
            job = task_job(plan.job)
            intermediate = os.path.join(work, "intermediate")
            output = plan.output or os.path.join(work, "output")
            os.makedirs(intermediate)
            os.makedirs(output, exist_ok=True)
            layout = Layout(intermediate, output, plan.n_map, plan.n_reduce)
            present = set()
            for _, (m, piece, data) in records:
                fd = os.open(layout.map_output(m, index), os.O_WRONLY | os.O_CREAT, 0o600)
                try:
                    os.pwrite(fd, data, piece * PIECE)
                finally:
                    os.close(fd)
                present.add(m)
            missing = sorted(set(range(plan.n_map)) - present)
            if missing:
                raise RuntimeError(f"no output of map tasks {missing} reached reduce task "
                                   f"{index}")
            spec = TaskSpec(kind=Kind.REDUCE, index=index, attempt=attempt_id(), job=job.name,
                            intermediate=intermediate, n_map=plan.n_map,
                            n_reduce=plan.n_reduce, output=output, memory=plan.memory,
                            args=list(plan.args), options=dict(plan.options))
            counters = run_task(job, spec)
            ((temporary, _),) = layout.files(Kind.REDUCE, index, spec.attempt)
        except Exception:
            raise failure("reduce", index)
        reports.add({("reduce", index): {"counters": counters, "skipped": []}})
        if plan.output is not None:
            yield index, temporary
            return
        yield from output_lines(temporary, index, "reduce")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def output_lines(path, index, kind):
    """
    The lines of an output file, without their newline, as bytes: Spark's
    text writer adds one newline to each, giving back the same bytes.  It
    writes text as UTF-8, so a file that is not (a key kept undecodable
    input bytes) fails the job rather than come out different.
    """
    with open(path, "rb") as f:
        for number, line in enumerate(f, 1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError:
                raise TaskFailed(
                    f"{BEGIN}{kind} task {index} failed: line {number} of out-{index} is not "
                    f"UTF-8, which Spark's text writer cannot write unchanged; write the "
                    f"output to a local directory instead{END}") from None
            yield line[:-1]
