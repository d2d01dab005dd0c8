"""
The driver's own file work, in one place: it commits an attempt's files
by renaming them, discards a losing or failed attempt's, journals each
commit (group commit: one transaction for those of a short window),
settles the job's files at the end, and releases its directories.

Every file error is caught here and turned into what the coordinator
decides on: a commit that fails is an error message (the attempt then
fails), a discard or a journal write that fails is logged, never raised
into an AMP responder or a timer.
"""

import os
import signal
import sqlite3

from twisted.logger import Logger

from txmr.data.inputs import InputChanged, check_unchanged, stamp
from txmr.driver import closing

log = Logger()

# Group commit: at most one journal transaction in this many seconds.  A
# commit after a quiet spell is written at the next turn of the reactor;
# under a burst of quick tasks, the commits of FLUSH_EVERY seconds share
# one transaction (a transaction per commit was a sixth of the driver's
# CPU per no-op task).  A crash loses at most those: their tasks run
# again, and their files are replaced whole.
FLUSH_EVERY = 0.01


class JobFiles:
    def __init__(self, plan, config, clock, journal=None):
        self.plan = plan
        self.layout = plan.layout
        self.config = config
        self.clock = clock
        self.journal = journal
        self._flush_call = None
        self._flushed_at = float("-inf")
        self._commits = 0

    def commit(self, attempt, counters, in_place=False):
        """
        Rename the attempt's files into place, then journal the commit.

        @param in_place: one of the seed's HTTP workers wrote the files, in
            its L{seed_directory}.
        @return: L{None}, or why the files could not be committed.
        """
        task = attempt.task
        try:
            finals = self.layout.commit(task.kind, task.index, attempt.id,
                                        written_in_place=in_place)
        except OSError as e:
            return f"cannot commit the attempt's files: {e}"
        self._commits += 1
        crash_point("after-rename", self._commits)
        if self.journal is not None:
            # What the files are now: a later run resumes the task only if
            # they are still these files, not another run's of the same name.
            try:
                files = [[final, stamp(final)] for final in finals]
            except OSError:
                files = None
            if files is not None:
                self._journal(lambda j: j.committed(attempt, counters, files))
        return None

    def seed_directory(self, attempt):
        """
        Make the directory where one of the seed's HTTP workers writes this
        attempt's files.

        @return: its path, or L{None} if it cannot be made (logged).
        """
        path = self.layout.seed_directory(attempt.task.kind, attempt.id)
        try:
            os.makedirs(path, exist_ok=True)
        except OSError as e:
            log.error("cannot make {path} for {attempt}: {error}", path=path, attempt=attempt,
                      error=e)
            return None
        return path

    def changed_input(self, task):
        """
        Why a map task's input files are not what the plan saw, or L{None}:
        the seed's workers do not check, so the driver does it for them.
        """
        for name, _, _ in task.inputs:
            try:
                check_unchanged(name, os.path.join(self.config.input, name),
                                self.plan.stamps.get(name))
            except InputChanged as e:
                return f"InputChanged: {e}"
        return None

    def discard(self, attempt):
        try:
            self.layout.discard(attempt.task.kind, attempt.task.index, attempt.id)
        except OSError as e:
            log.warn("cannot remove the files of {attempt}: {error}", attempt=attempt, error=e)

    def settle(self, scheduler, view, message, traceback):
        """
        The job is over: remove the losers' files, make the output durable
        (or remove a failed job's), log the result, write the summary, close
        the journal's account of the job, and release the directories: the
        driver writes nothing more in them.

        @return: why a finished job's output could not be marked complete
            (the job then fails), or L{None}.
        """
        ok = view.failure is None
        problem = None
        try:
            closing.discard_losers(scheduler, self.discard)
            problem = closing.keep_or_remove_output(self.config, ok)
            if problem:
                log.critical("job failed: {problem}", problem=problem)
            else:
                closing.log_result(view, message, traceback)
            if self.config.summary_file:
                closing.write_summary(self.config.summary_file, view, traceback, problem)
        except Exception:
            log.failure("while settling the job's files")
        self._journal(lambda j: j.ended(ok))
        self.journal = None
        self.plan.release()
        return problem

    def close(self):
        """
        The daemon stops: write and close the journal, release the
        directories.
        """
        if self._flush_call is not None and self._flush_call.active():
            self._flush_call.cancel()
        self._flush_call = None
        if self.journal is not None:
            self._journal(lambda j: j.close())
            self.journal = None
        self.plan.release()

    def _journal(self, write):
        """
        Journal something; a journal that cannot be written costs only the
        ability to resume (the task runs again after a crash), not the job.
        """
        if self.journal is None:
            return
        try:
            write(self.journal)
        except (sqlite3.Error, OSError) as e:
            log.error("cannot write the journal: {error}", error=e)
        if self.journal.dirty and not self._flush_call:
            # Within [0, FLUSH_EVERY] even if the wall clock stepped back.
            wait = min(FLUSH_EVERY, max(0.0, self._flushed_at + FLUSH_EVERY - self.clock.seconds()))
            self._flush_call = self.clock.callLater(wait, self._flush)

    def _flush(self):
        self._flush_call = None
        self._flushed_at = self.clock.seconds()
        self._journal(lambda j: j.flush())
        crash_point("after-journal", self._commits)


def _crash_at():
    wanted = os.environ.get("TXMR_CRASH_AT")
    if not wanted:
        return None
    point, _, count = wanted.partition(":")
    return point, int(count)


# Read once, when the driver starts: it is looked for at every commit.
_CRASH_AT = _crash_at()


def crash_point(name, commits):
    """
    For the crash tests: with C{TXMR_CRASH_AT=NAME:N} in the driver's
    environment, the driver kills itself (SIGKILL, as a crash would) at that
    point once it has made N commits.  Points: C{after-rename} (the N-th
    commit's files in place, not yet journaled) and C{after-journal} (the
    journal written with the N-th commit in it).
    """
    if _CRASH_AT is not None and _CRASH_AT[0] == name and commits >= _CRASH_AT[1]:
        os.kill(os.getpid(), signal.SIGKILL)
