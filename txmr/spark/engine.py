"""
A txmr job as Spark jobs: its steps planned by txmr's own chain
(L{txmr.chain.plan_chain}) and run one after another in one Spark session,
one Spark job per step (L{txmr.spark.stage}); step K writes C{step-K-out/}
as txmr's engine writes it, which step K+1 reads as its input.

What can be refused is refused here, before Spark starts: the run's
numbers, the job and each step's options and shape.  This module imports
without PySpark (the session is started by L{txmr.spark.session}).
"""

import os
import shutil
import tempfile
import uuid
from contextlib import contextmanager

from txmr.chain import plan_chain, step_job
from txmr.job import JobError, load_job
from txmr.job_options import plain_values
from txmr.plan import release_locks
from txmr.spark.options import (SparkConfigError, check_run, check_step, check_supported,
                                is_url)
from txmr.spark.result import chain_result
from txmr.spark.session import is_local_master, start_session
from txmr.spark.stage import run_step
from txmr.spark.storage import lock_output, remove_output, remove_tree
from txmr.steps import StepJob

INTERMEDIATE_REFUSED = ("--intermediate: Spark keeps map output in its shuffle; set "
                        "--spark-conf spark.local.dir=DIR instead (only a job of several steps "
                        "writes its steps' output there)")


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
        Step C{step} ended with C{result} (a L{txmr.spark.result.SparkResult}).
        """


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
    @return: a L{txmr.spark.result.SparkResult}.
    """
    check_run(run)
    if not is_url(run.input):
        run.input = os.path.abspath(run.input)
    if not is_url(run.output):
        run.output = os.path.abspath(run.output)
    with _refused():
        job = load_job(run.job)
    check_supported(job)
    with _refused():
        # Parsed here, once, as txmr's driver parses them: a bad option
        # fails before anything runs, naming it; each task parses them again.
        options = plain_values(job.parse_args(run.args))
    listener = listener or StepListener()
    chain, temporary = _plan_steps(run, job)
    locks = []
    try:
        steps = []
        for step in chain.steps:
            step_job_ = step_job(job, step)
            with _refused():
                # The step's shape (map-only, formats...) follows the options.
                parsed = step_job_.parse_args(run.args)
            check_step(step_job_, step)
            steps.append((step, step_job_, parsed))
        # Before Spark starts: a run refused for its output starts nothing.
        locks = lock_output(run.output, job.name)
        listener.planned(chain)
        spark = session or start_session(run, job)
    except BaseException:
        release_locks(locks)
        _discard(temporary)
        raise
    try:
        results = []
        for step, step_job_, parsed in steps:
            feed = listener.started(step) or progress
            try:
                result = run_step(spark, run, step, step_job_, parsed, feed, options)
            except BaseException:
                _remove_stale(spark.sparkContext, chain, step)
                raise
            results.append(result)
            listener.ended(step, result)
            if not result.ok:
                _remove_stale(spark.sparkContext, chain, step)
                break
        return chain_result(results)
    finally:
        try:
            if temporary is not None:
                remove_tree(spark.sparkContext, temporary)
        finally:
            # Once nothing more is written in the output, however the run
            # ended (done, failed, interrupted).
            release_locks(locks)
        if session is None:
            spark.stop()


@contextmanager
def _refused():
    """
    The job's own refusal (L{JobError}) as the run's: nothing has run.
    """
    try:
        yield
    except JobError as e:
        raise SparkConfigError(str(e)) from e


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
        with _refused():
            return plan_chain(job, run.input, root, run.output, run.mappers, run.reducers,
                              run.args), temporary
    except SparkConfigError:
        _discard(temporary)
        raise


def _discard(temporary):
    """
    Remove the local directory made for the steps' output (if one was) of a
    run that stops before Spark starts: an output URL's has not been written.
    """
    if temporary is not None and not is_url(temporary):
        shutil.rmtree(temporary, ignore_errors=True)


def _remove_stale(sc, chain, step):
    """
    As txmr's chain, when C{step} failed before the last: remove the
    output of an earlier run, so that no answer is taken for this one's.
    """
    if step is not chain.steps[-1]:
        remove_output(sc, chain.steps[-1].output)
