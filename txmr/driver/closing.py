"""
What the driver does with a job's files once it is over: remove every
losing attempt's leftovers, make a finished job's output durable (or
remove a failed job's output, so that none of it is ever mistaken for a
result), write the summary file, and log the counters.

Each step catches its own file errors: a full disk or a deleted directory
must not stop the driver from telling its workers and exiting with the
job's code.
"""

import json

from twisted.logger import Logger

from txmr.core.counters import lines
from txmr.data.layout import SUCCESS, mark_success, remove_job_files, write_atomically
from txmr.driver.status import job_state

log = Logger()


def discard_losers(scheduler, discard):
    """
    Remove the files of every attempt that did not win its task.
    """
    for attempt in scheduler.attempts.values():
        if attempt.task.winner is not attempt:
            discard(attempt)


def keep_or_remove_output(config, ok):
    """
    A finished job's output is made durable, then marked with a
    C{_SUCCESS} file listing it, written last, after every C{out-R} (the
    marker Hadoop and Spark write, which their users' scripts test for); a
    failed job's output is removed.

    @return: why the marker could not be written, or L{None}.
    """
    if ok:
        try:
            mark_success(config.output)
        except Exception as e:
            # Whoever waits for the marker would wait for ever: the job
            # fails, saying why (its output stays, unmarked).
            return f"cannot write {SUCCESS} in {config.output}: {e}"
        return None
    for directory in {config.intermediate, config.output}:
        try:
            remove_job_files(directory)
        except OSError as e:
            log.error("cannot remove the failed job's files in {directory}: {error}",
                      directory=directory, error=e)


def write_summary(path, view, traceback, problem=None):
    """
    The job's final state as JSON, for C{txmr run}; with the failing
    attempt's traceback when the job failed, or C{problem}, why a finished
    job's output could not be marked complete.
    """
    summary = job_state(view)
    if view.failure:
        summary["traceback"] = traceback
    if problem:
        summary["state"], summary["failure"] = "failed", problem
    try:
        # Compact: with indent, json takes its pure-Python encoder, a third
        # of the driver's work per task on a job of many quick tasks.
        write_atomically(path, json.dumps(summary) + "\n")
    except OSError as e:
        log.error("cannot write the summary file {path}: {error}", path=path, error=e)


def log_result(view, message, traceback):
    scheduler = view.scheduler
    if view.failure:
        log.critical("{message}\n{traceback}", message=message, traceback=traceback)
        return
    log.info("job finished in {secs:.2f}s; counters:\n{counters}",
             secs=view.ended - view.started,
             counters="\n".join("  " + line for line in lines(scheduler.summed_counters())))
    for kind, index, record in scheduler.skipped_records:
        log.warn("skipped bad record {record} of {kind} task {index}",
                 record=record, kind=kind, index=index)
