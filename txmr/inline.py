"""
Run a whole job in one process, with no network: for debugging a job
(C{txmr run --inline}), and as the simplest driver of the scheduler.

The same scheduler and data path run as in a cluster, one attempt at a
time, a failed attempt retried as a driver retries it; the error that
fails the job is raised as it is, so a debugger stops on it.  Only
the core and the data path are used here: no daemon, no protocol.
"""

from txmr.core.instructions import Commit
from txmr.data.attempt import describe
from txmr.data.layout import SUCCESS, mark_success, remove_job_files
from txmr.data.run import run_task
from txmr.plan import plan_job

INLINE_WORKER = "inline"


class OutputNotMarked(Exception):
    """
    The job ran, but its output could not be marked complete (C{_SUCCESS}).
    """


def run_inline(config, progress=None, job=None, skipped=None):
    """
    Run the job C{config} (a L{txmr.plan.JobConfig}) describes to completion.

    @param progress: called with the scheduler after every task, if given.
    @param job: the L{txmr.job.Job}, if it is loaded already (a class
        defined in a notebook has no name to load it by).
    @param skipped: a list to extend with the bad records skipped, as the
        driver's summary lists them, if given.
    @return: the counters summed over the tasks.
    """
    plan = plan_job(config, job=job)
    scheduler = plan.scheduler
    scheduler.register(INLINE_WORKER, 0)
    now = 0
    try:
        while not scheduler.over:
            now += 1
            attempt = scheduler.assign(INLINE_WORKER, now)
            if attempt is None:
                raise RuntimeError(f"no task for the inline runner in {scheduler.counts()}")
            task = attempt.task
            try:
                counters = run_task(plan.job, plan.spec(attempt))
            except KeyboardInterrupt:
                raise
            except BaseException as e:
                # SystemExit too: a job that calls sys.exit(0) fails its
                # task, as it does in a worker, rather than end the run
                # with 0 and no output.
                # As a driver does: retried up to --max-attempts times
                # (skipping the bad record in skipping mode); then the last
                # error is raised as it is (a debugger stops in the job's
                # code), with the line and the traceback a driver prints.
                line, text, record = describe(e)
                scheduler.report_failed(INLINE_WORKER, task.kind, task.index, attempt.id, now,
                                        line, record)
                plan.layout.discard(task.kind, task.index, attempt.id)
                if scheduler.over:
                    e.txmr_failure, e.txmr_traceback = scheduler.failure.message(), text
                    raise
                continue
            plan.layout.commit(task.kind, task.index, attempt.id)
            scheduler.committed(Commit(attempt, counters), now)
            if progress is not None:
                progress(scheduler)
        if skipped is not None:
            skipped.extend([str(kind), index, record]
                           for kind, index, record in scheduler.skipped_records)
        try:
            mark_success(config.output)
        except Exception as e:
            # As a driver does: whoever waits for the marker would wait for
            # ever, so the job fails.
            raise OutputNotMarked(f"cannot write {SUCCESS} in {config.output}: {e}") from e
    except BaseException:
        # As a driver does: no part of a failed job's output is left to be
        # mistaken for a result.
        for directory in {config.intermediate, config.output}:
            remove_job_files(directory)
        raise
    finally:
        # A notebook that catches the error may run the job again.
        plan.release()
    return scheduler.summed_counters()
