"""
What every task needs in Spark's Python worker, whatever its kind: the job,
loaded once per worker; a number no other attempt has; a scratch directory;
its output file handed back to the driver or to Spark's writer.

PySpark is imported here lazily, in the Python worker (C{SparkFiles},
C{TaskContext}).
"""

import os
import shutil
import tempfile
from contextlib import contextmanager

from txmr.job import JobError, load_job
from txmr.spark.failures import task_failed
from txmr.spark.options import job_file
from txmr.steps import split_step, step_name

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
            where, rest = job_file(whole)
            if not where.endswith(".py") or os.path.exists(where):
                raise
            from pyspark import SparkFiles

            shipped = SparkFiles.get(os.path.basename(where)) + rest
            job = load_job(shipped if step is None else step_name(shipped, step))
        _jobs[name] = job
    return job


def attempt_id():
    """
    A number no other attempt of this Spark application has: files an
    attempt writes are named by it.
    """
    from pyspark import TaskContext

    context = TaskContext.get()
    return context.taskAttemptId() if context is not None else 0


@contextmanager
def scratch(kind):
    """
    A new scratch directory for one task, in the executor's local
    directories (YARN's, or Spark's) where it has them; removed when the
    task ends.
    """
    root = None
    for variable in ("SPARK_LOCAL_DIRS", "LOCAL_DIRS"):
        if os.environ.get(variable):
            root = os.environ[variable].split(",")[0]
            break
    work = tempfile.mkdtemp(prefix=f"txmr-spark-{kind}-", dir=root)
    try:
        yield work
    finally:
        shutil.rmtree(work, ignore_errors=True)


def handed_back(output, temporary, index, kind):
    """
    A task's output file, as the task yields it: C{(index, temporary
    path)} where the driver commits local output (C{output}, the plan's,
    is not L{None}), else the file's lines for Spark's writer.
    """
    if output is not None:
        yield index, temporary
        return
    yield from output_lines(temporary, index, kind)


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
                raise task_failed(
                    kind, index,
                    f"line {number} of out-{index} is not UTF-8, which Spark's text writer "
                    f"cannot write unchanged; write the output to a local directory "
                    f"instead") from None
            yield line[:-1]
