"""
Run a whole job in one process, with no network: for debugging a job
(C{txmr run --inline}), and as the simplest driver of the scheduler.

The same scheduler and data path run as in a cluster, one attempt at a
time; the first error is raised as it is, so a debugger stops on it.  Only
the core and the data path are used here: no daemon, no protocol.
"""

from txmr.core.instructions import Commit
from txmr.data.layout import fsync_directory
from txmr.data.run import run_task
from txmr.plan import plan_job

INLINE_WORKER = "inline"


def run_inline(config, progress=None):
    """
    Run the job C{config} (a L{txmr.plan.JobConfig}) describes to completion.

    @param progress: called with the scheduler after every task, if given.
    @return: the counters summed over the tasks.
    """
    plan = plan_job(config)
    scheduler = plan.scheduler
    scheduler.register(INLINE_WORKER, 0)
    now = 0
    while not scheduler.over:
        now += 1
        attempt = scheduler.assign(INLINE_WORKER, now)
        counters = run_task(plan.job, plan.spec(attempt))
        plan.layout.commit(attempt.task.kind, attempt.task.index, attempt.id)
        scheduler.committed(Commit(attempt, counters), now)
        if progress is not None:
            progress(scheduler)
    fsync_directory(config.output)
    plan.release()
    return scheduler.summed_counters()
