"""
Running attempts: the jobs a worker has loaded, the batch of attempts it
runs now in a thread, and their typed outcomes (L{Succeeded}, L{Failed},
L{Cancelled}).

Task code runs outside the reactor thread, so the reactor keeps answering
the driver however long a task computes.  A batch of attempts runs one
after the other in I{one} call of the thread runner (one hand-off for
several tiny tasks), and each attempt has its own event, so the driver can
cancel any one of them alone.  This module knows nothing of the network:
what to run, and what to do with an outcome, is the session's affair.

Before it imports a job's code or opens an input file, the executor checks
that the attempt is one this worker may run (L{check_admitted}): its job
matches the owner's C{--job-allow} patterns, if any, and its splits stay
under the input root the driver named.  One that is not fails, with the
reason, and nothing of it runs.
"""

import fnmatch
import os
import threading
from dataclasses import dataclass
from pathlib import PurePosixPath

from twisted.logger import Logger

from txmr.data.attempt import TaskCancelled, describe
from txmr.data.fetch import FetchFailed
from txmr.job import load_job as _load_job

log = Logger()


@dataclass(frozen=True)
class Succeeded:
    """
    The attempt ran to its end; its files are written under attempt names.
    C{output}: a shared-nothing map's partitions' checksums and sizes.
    """

    counters: dict
    output: dict | None = None


@dataclass(frozen=True)
class Failed:
    """
    The job's code raised (or the job could not be loaded).

    @ivar record: the input record the map code raised on, or L{None}.
    """

    message: str
    traceback: str
    record: list | None = None


@dataclass(frozen=True)
class MapOutputMissing:
    """
    A shared-nothing reduce could not fetch a map's committed output: the
    driver is to run that map again (the attempt is not the reduce's fault).
    """

    map_index: int
    map_attempt: int
    message: str


@dataclass(frozen=True)
class Cancelled:
    """
    The driver cancelled the attempt, before or while it ran.
    """


Outcome = Succeeded | Failed | MapOutputMissing | Cancelled


class TaskRefused(Exception):
    """
    This worker will not run the attempt: its job is not one the worker's
    owner allows, or it would read outside its input root.
    """


def job_allowed(job, patterns):
    """
    Whether the job named C{job} matches one of the glob C{patterns}.  No
    patterns: any job is allowed.

    A job named by its file (C{path/job.py}, C{path/job.py:Class}) is
    matched by the file's real path, resolved as the worker will resolve it
    (C{..} and symbolic links followed), against the patterns that are
    absolute paths, in which C{*} does not cross C{/}: so C{/srv/jobs/*.py}
    admits no file outside C{/srv/jobs}, however the driver spells it.  A
    job named by its module (C{pkg.mod}, C{pkg.mod:Class}) must be a dotted
    name, and is matched against the other patterns (C{txmr.examples.*}).
    """
    if not patterns:
        return True
    where, _, attribute = job.rpartition(":") if ":" in job else (job, "", "")
    if where.endswith(".py") or os.sep in where:
        real = PurePosixPath(os.path.realpath(where))
        return any(os.path.isabs(p) and real.match(p) and len(real.parts) == len(
            PurePosixPath(p).parts) for p in patterns)
    if not all(part.isidentifier() for part in where.split(".")) or (
            attribute and not all(part.isidentifier() for part in attribute.split("."))):
        return False
    return any(not os.path.isabs(p) and fnmatch.fnmatchcase(job, p) for p in patterns)


def escapes(name):
    """
    Whether the split name C{name}, joined to an input root, would name a
    file outside it: not a relative path, or one that climbs out with
    C{..}.  The check is on the name, not the file system: a symbolic link
    the input's owner put under the root is followed, as the driver's
    listing of the input followed it.
    """
    if not isinstance(name, str) or not name or "\x00" in name or os.path.isabs(name):
        return True
    normal = os.path.normpath(name)
    return normal == os.curdir or normal.split(os.sep)[0] == os.pardir


def check_admitted(spec, patterns=()):
    """
    @raise TaskRefused: with a one-line reason, if this worker may not run
        C{spec}: its job matches none of C{patterns}, or a map's split names
        a file outside its input root.
    """
    if not job_allowed(spec.job, patterns):
        raise TaskRefused(f"this worker runs only jobs matching --job-allow "
                          f"{' '.join(patterns)}, not {spec.job!r}")
    for split in spec.splits:
        name = split[0] if isinstance(split, (list, tuple)) and split else split
        if escapes(name):
            raise TaskRefused(f"split {name!r} escapes the input root {spec.input!r}")


def _run_task(job, spec, cancel):
    # Imported when first needed: the data path's modules are the heavy
    # part of a worker, and the tests give their own task runner.
    from txmr.data.run import run_task

    return run_task(job, spec, cancel)


def _default_thread_runner(f, *args):
    from twisted.internet import threads

    return threads.deferToThread(f, *args)


class Executor:
    """
    Runs batches of attempts, one batch at a time, in a thread.

    @param run_in_thread: C{run_in_thread(f, *args)} calls C{f(*args)}
        outside the reactor thread and returns a L{Deferred} of its result
        (default: L{twisted.internet.threads.deferToThread}).
    @param run_task: C{run_task(job, spec, cancel)} runs one attempt and
        returns its counters; it raises L{TaskCancelled} once C{cancel} (a
        L{threading.Event}) is set (default: L{txmr.data.run.run_task}).
    @param load_job: loads a job by its name (default: L{txmr.job.load_job}).
    @param job_allow: glob patterns of the jobs this worker may run (see
        L{job_allowed}); empty: any job.
    @param shuffle: what runs shared-nothing attempts (a
        L{txmr.worker.shuffle.Shuffle}), or L{None}: this worker then runs
        only attempts of jobs with a shared intermediate directory.
    """

    def __init__(self, run_in_thread=None, run_task=None, load_job=None, job_allow=(),
                 shuffle=None):
        self.shuffle = shuffle
        self.run_in_thread = run_in_thread or _default_thread_runner
        self.run_task = run_task or _run_task
        self.load_job = load_job or _load_job
        self.job_allow = tuple(job_allow)
        self.jobs = {}
        # The attempts running now (a batch of quick ones, or one), each
        # with the event that cancels it.
        self.running = {}
        # Every attempt the driver cancelled: one cancelled before it
        # started is never started.
        self.cancelled = set()

    @property
    def busy(self):
        """
        Whether a batch is running now.
        """
        return bool(self.running)

    def is_cancelled(self, attempt_id):
        return attempt_id in self.cancelled

    def allows(self, job):
        """
        Whether this worker may run tasks of the job named C{job}.
        """
        return job_allowed(job, self.job_allow)

    def run_batch(self, specs):
        """
        Run the attempts C{specs} (L{TaskSpec}s) one after the other, in one
        call of the thread runner.

        @return: a L{Deferred} of their L{Outcome}s, in order.
        """
        events = {spec.attempt: threading.Event() for spec in specs}
        for attempt_id, event in events.items():
            if attempt_id in self.cancelled:
                event.set()
        self.running = events

        def finished(result):
            self.running = {}
            return result

        return self.run_in_thread(self._run_all, specs, events).addBoth(finished)

    def cancel(self, attempt_id):
        """
        The driver no longer wants this attempt: stop it if it runs, and
        never start it.
        """
        self.cancelled.add(attempt_id)
        event = self.running.get(attempt_id)
        if event is not None:
            log.info("the driver cancelled attempt {attempt}", attempt=attempt_id)
            event.set()

    def cancel_all(self):
        """
        Stop every attempt of the running batch (the connection is lost, or
        the job is over: nobody wants their results).
        """
        for event in list(self.running.values()):
            event.set()

    def _run_all(self, specs, events):
        """
        Run attempts in turn; in a worker thread.  One cancelled before its
        turn is not started.
        """
        outcomes = []
        for spec in specs:
            cancel = events[spec.attempt]
            outcomes.append(Cancelled() if cancel.is_set() else self._run_one(spec, cancel))
        return outcomes

    def _run_one(self, spec, cancel):
        """
        Run one attempt; in a worker thread.  A refused attempt fails with
        its reason alone (no traceback: no code of the job ran).
        """
        try:
            check_admitted(spec, self.job_allow)
        except TaskRefused as e:
            message = f"refused by the worker: {e}"
            return Failed(message, message + "\n")
        try:
            job = self.jobs.get(spec.job)
            if job is None:
                job = self.jobs[spec.job] = self.load_job(spec.job)
            if spec.shuffle is None:
                return Succeeded(self.run_task(job, spec, cancel))
            if self.shuffle is None:
                raise TaskRefused("this worker serves no map output, so it cannot run tasks "
                                  "of a job without a shared intermediate directory")
            return Succeeded(*self.shuffle.run(job, spec, cancel, self.run_task))
        except TaskCancelled:
            return Cancelled()
        except FetchFailed as e:
            return MapOutputMissing(e.source.map_index, e.source.attempt, str(e))
        except BaseException as e:
            if isinstance(e, KeyboardInterrupt):
                raise
            line, text, record = describe(e)
            return Failed(line, text, record)
