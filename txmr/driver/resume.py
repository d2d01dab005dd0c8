"""
How a driver starts: afresh, or resuming the run its journal describes.

  - No journal (none yet, or the earlier run failed and removed it), or
    C{--fresh}: the earlier run's files are removed and the job starts over.
  - The same job (code, input, output-changing flags): the tasks the
    journal claims and whose files are all present stay done; everything
    else runs again, with attempt ids that no earlier run used.
  - Another job on the same directories: the driver refuses, saying what
    changed.
"""

import sqlite3

from twisted.logger import Logger

from txmr.core.states import Kind
from txmr.data.inputs import stamp
from txmr.data.layout import remove_attempt_files, remove_job_files
from txmr.driver.journal import ATTEMPT_BLOCK, Journal, differences, identity, journal_path
from txmr.plan import ConfigError, removed_line

log = Logger()


def open_journal(config, plan, now=0.0):
    """
    Open the job's journal and start this run in it, restoring what an
    earlier run of the same job committed.

    @raise ConfigError: the journal is unusable, or belongs to another job.
    """
    path = journal_path(config)
    try:
        journal = Journal(path)
        previous = journal.previous
    except sqlite3.Error as e:
        raise ConfigError(f"cannot use the journal {path!r}: {e}") from e
    splits = [task.inputs for task in plan.scheduler.maps]
    current = identity(config, plan.job, plan.stamps, splits)
    # A failed run removed its journal: nothing to resume there either.
    fresh = config.fresh or previous is None
    if not fresh:
        changed = differences(previous, current)
        if changed:
            journal.close()
            raise ConfigError(f"cannot resume the earlier run of this job's directories: "
                              f"{'; '.join(changed)} (--fresh starts over)")
    if fresh:
        for directory in sorted({config.intermediate, config.output}):
            removed = remove_job_files(directory, keep_journal=True)
            if removed:
                log.warn("{line}", line=removed_line(removed, directory))
    else:
        for directory in {config.intermediate, config.output}:
            remove_attempt_files(directory)
    try:
        epoch = journal.start(current, fresh)
        commits = [] if fresh else journal.commits()
    except (sqlite3.Error, ValueError) as e:
        # ValueError: a record that does not read (see journal._record).
        journal.close()
        raise ConfigError(f"cannot use the journal {path!r}: {e}") from e
    plan.scheduler.number_attempts_from((epoch - 1) * ATTEMPT_BLOCK + 1)
    if not fresh:
        restored = restore(plan, commits, now)
        log.info("resuming the earlier run (epoch {epoch}): {maps} map and {reduces} reduce "
                 "tasks already done", epoch=epoch, maps=restored[Kind.MAP],
                 reduces=restored[Kind.REDUCE])
    return journal


def restore(plan, commits, now):
    """
    Mark done the committed tasks whose files are all in place, and still
    the very files committed (same size, times and inode: not another
    run's of the same name); reduces only once every map is.  Return how
    many of each kind.
    """
    scheduler = plan.scheduler
    restored = {Kind.MAP: 0, Kind.REDUCE: 0}
    for kind in (Kind.MAP, Kind.REDUCE):
        if kind is Kind.REDUCE and restored[Kind.MAP] < len(scheduler.maps):
            break
        for k, index, attempt, counters, skip, files, seed_format in commits:
            expected = [final for _, final in plan.layout.files(k, index, attempt)]
            if (k is kind and [name for name, _ in files] == expected
                    and all(_unchanged(name, was) for name, was in files)):
                scheduler.restore(kind, index, attempt, counters, skip, now, seed_format)
                restored[kind] += 1
    return restored


def _unchanged(path, was):
    try:
        return stamp(path) == was
    except OSError:
        return False
