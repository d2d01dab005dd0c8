"""
Run a whole job in one process, with no network: for debugging a job
(C{txmr run --inline}), and as the simplest driver of the scheduler.

The same scheduler and task code run as in a cluster, one attempt at a
time; the first error is raised as it is, so a debugger stops on it.
"""

from txmr import driver, tasks

INLINE_WORKER = "inline"


def run_inline(config, progress=None):
    """
    Run the job C{config} describes to completion.

    @param progress: called with the scheduler after every task, if given.
    @return: the counters summed over the tasks.
    """
    job, scheduler = driver.prepare(config)
    scheduler.register(INLINE_WORKER, 0)
    now = 0
    while not scheduler.over:
        now += 1
        attempt = scheduler.assign(INLINE_WORKER, now)
        spec = driver.task_spec(config, job.name, scheduler, attempt)
        counters = tasks.run_task(job, spec)
        tasks.commit(spec)
        scheduler.succeed(INLINE_WORKER, attempt.task.kind, attempt.task.index, attempt.id,
                          now, counters)
        if progress is not None:
            progress(scheduler)
    driver.fsync_directory(config.output)
    return scheduler.summed_counters()
