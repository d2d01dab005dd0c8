"""
The scheduling core: the rules of one job's life, and nothing else.

This module does no I/O and reads no clock: every method that depends on
time takes C{now}, and every event returns the L{instructions
<txmr.core.instructions>} that follow from it.  The AMP and HTTP front
doors, the inline runner and the tests all drive the same L{Scheduler}:

  - map tasks start READY; reduce tasks start BLOCKED and become READY when
    every map task is FINISHED (the seed system's life cycle);
  - every hand-out of a task is a new L{Attempt} with a job-unique id, and
    every report names its attempt: the first successful attempt of a task
    wins (L{report_done} accepts it, the caller commits its files, then
    L{committed}), any other report about it is refused with L{StaleReport};
  - a lost worker's running attempts are given back at once, a failed
    attempt is retried until C{max_attempts} failures fail the job, an
    attempt running past C{task_timeout} is abandoned, and near the end of a
    phase a straggler gets a backup attempt (the MapReduce paper's
    speculative execution);
  - a worker whose attempts keep failing while the same tasks succeed
    elsewhere is blacklisted for the job (Hadoop's rule); but a task that
    failed on every worker is retried where it failed, and blacklisting
    yields when only blacklisted workers are left, so that no job ever
    waits with ready tasks and idle workers;
  - a run resumed from the driver's journal starts with the tasks an
    earlier run committed (L{restore});
  - where map output stays on the disk of the worker that wrote it
    (C{shared_nothing}), a map whose output is lost (its worker is lost, or
    a reducer cannot fetch it: L{map_output_lost}) is READY again while any
    reduce still needs it, and the reduces wait for it (the paper's rule).
"""

from txmr.core import counters
from txmr.core.errors import SchedulingError, StaleReport, UnknownTask, UnknownWorker
from txmr.core.instructions import Blacklisted, Cancel, Commit, Discard, GivenBack, JobOver
from txmr.core.model import Attempt, JobFailure, SkippedRecord, Task, Worker, WorkerInfo
from txmr.core.lost_output import LostOutput
from txmr.core.placement import Placement
from txmr.core.states import AttemptState, JobState, Kind, TaskState, Via


class Scheduler(LostOutput):
    """
    The state machine of one job.

    @param map_inputs: one list of input splits per map task.
    @param n_reduce: the number of reduce tasks (0: a map-only job).
    @param max_attempts: failures of one task that fail the job.
    @param task_timeout: seconds after which a running attempt is abandoned,
        or L{None} for no limit.
    @param speculation: whether stragglers get backup attempts.
    @param speculate_after: the least running time for a backup attempt.
    @param blacklist_after: failed attempts on one worker, of tasks that then
        succeeded elsewhere, after which that worker gets no more tasks.
    @param skip_bad_records: whether input records that made map attempts
        fail twice are skipped by later attempts.
    @param seed_workers: whether the seed's HTTP workers may run this job's
        tasks (they run word count only).
    @param shared_nothing: map output stays on the worker that wrote it:
        a lost worker's committed maps run again while reduces need them.
    """

    def __init__(self, map_inputs, n_reduce, max_attempts=4, task_timeout=None,
                 speculation=True, speculate_after=10.0, blacklist_after=3,
                 skip_bad_records=False, seed_workers=True, shared_nothing=False):
        if not map_inputs or n_reduce < 0:
            raise ValueError("a job needs at least one map task")
        self.maps = [Task(Kind.MAP, i, list(inputs)) for i, inputs in enumerate(map_inputs)]
        self._whole_files = _whole_file_tasks(self.maps)
        self.reduces = [Task(Kind.REDUCE, i, state=TaskState.BLOCKED) for i in range(n_reduce)]
        self._by_kind = {Kind.MAP: self.maps, Kind.REDUCE: self.reduces}
        self.max_attempts = max_attempts
        # Lost workers are rarely a task's fault: a task may lose twice as
        # many as it may fail before the job gives up on it.
        self.max_losses = 2 * max_attempts
        self.task_timeout = task_timeout
        self.blacklist_after = blacklist_after
        self.skip_bad_records = skip_bad_records
        self.seed_workers = seed_workers
        self.shared_nothing = shared_nothing
        self.workers = {}
        self.attempts = {}
        self.placement = Placement(self.maps, speculation, speculate_after)
        self._running = set()
        self._unfinished = {Kind.MAP: len(self.maps), Kind.REDUCE: len(self.reduces)}
        self._next_attempt = 1
        self.state = JobState.RUNNING
        self.failure: JobFailure | None = None
        self.skipped_records: list[SkippedRecord] = []

    # -- lookups ----------------------------------------------------------

    def task(self, kind, index):
        """
        The task of that kind and index, or L{UnknownTask}.
        """
        tasks = self._by_kind.get(kind) if isinstance(kind, str) else None
        if tasks is None:
            raise UnknownTask(f"no {kind!r} tasks in this job")
        if type(index) is not int or not 0 <= index < len(tasks):
            raise UnknownTask(f"no {kind} task {index!r} in this job")
        return tasks[index]

    def tasks(self):
        return self.maps + self.reduces

    def worker(self, worker_id):
        """
        A live worker session, or L{UnknownWorker}.
        """
        worker = self.workers.get(worker_id)
        if worker is None:
            raise UnknownWorker(f"unknown worker {worker_id!r}")
        if worker.lost:
            raise UnknownWorker(f"worker {worker_id!r} was presumed dead")
        return worker

    def counts(self):
        """
        How many tasks of each kind are in each state, by the states' names.
        """
        out = {}
        for kind, tasks in ((Kind.MAP, self.maps), (Kind.REDUCE, self.reduces)):
            by_state = dict.fromkeys(TaskState, 0)
            for task in tasks:
                by_state[task.state] += 1
            out[kind.value] = {state.name.lower(): n for state, n in by_state.items()}
        return out

    @property
    def over(self):
        return self.state is not JobState.RUNNING

    @property
    def ok(self):
        return self.state is JobState.FINISHED

    def live_workers(self):
        return [w for w in self.workers.values() if not w.lost]

    def silent(self, now, timeout):
        """
        The live workers not seen for C{timeout} seconds (or their own).
        """
        return [w for w in self.workers.values()
                if not w.lost and now - w.last_seen > (w.timeout or timeout)]

    # -- a run resumed -------------------------------------------------------

    def number_attempts_from(self, first):
        """
        Number this run's attempts from C{first}: a resumed run's attempts
        never share an id (nor a temporary file) with an earlier run's.
        """
        if self.attempts:
            raise SchedulingError("attempts were already handed out")
        self._next_attempt = first

    def restore(self, kind, index, attempt_id, counters, skip, now, seed_format=False):
        """
        A task that an earlier run of this job committed, and whose files
        are still in place: it is FINISHED, by that run's attempt.

        @param seed_format: the attempt was a seed worker's map.
        """
        task = self.task(kind, index)
        if task.state is TaskState.FINISHED:
            return
        if task.kind is Kind.REDUCE and self._unfinished[Kind.MAP]:
            raise SchedulingError(f"{task} cannot be restored before every map")
        attempt = Attempt(attempt_id, task, "earlier-run", now, state=AttemptState.SUCCEEDED,
                          finished=now, seed_format=seed_format)
        self.attempts[attempt_id] = attempt
        task.attempts.append(attempt)
        task.winner = attempt
        task.state = TaskState.FINISHED
        task.counters = counters
        for record in skip:
            task.skip.append(record)
            self.skipped_records.append(SkippedRecord(task.kind, task.index, record))
        self._unfinished[task.kind] -= 1
        if task.kind is Kind.MAP and not self._unfinished[Kind.MAP]:
            self._unblock_reduces()
        if not any(self._unfinished.values()):
            self.state = JobState.FINISHED

    # -- workers ----------------------------------------------------------

    def register(self, worker_id, now, info=None, timeout=None, slots=1):
        """
        A new worker session joins the job.

        @param timeout: how long it may stay silent before it is lost, if not
            the default the caller uses (an HTTP worker's lease).
        @param slots: how many attempts it may run at once (L{None}: any, as
            the seed's HTTP workers could ask for task after task).
        """
        if worker_id in self.workers:
            raise SchedulingError(f"worker {worker_id!r} is already registered")
        worker = Worker(worker_id, now, now, info or WorkerInfo(), timeout, slots)
        self.workers[worker_id] = worker
        return worker

    def seen(self, worker_id, now):
        """
        The worker answered a heartbeat or made a request.
        """
        self.worker(worker_id).last_seen = now

    def lose(self, worker_id, now):
        """
        The driver gives up on a worker: its running attempts are lost and
        their tasks are ready again at once.  Later reports from it are
        refused.  Losing a worker twice, or one never seen, does nothing.

        @return: a L{GivenBack} for each attempt lost.
        """
        worker = self.workers.get(worker_id)
        if worker is None or worker.lost:
            return []
        worker.lost = True
        out = []
        for attempt in sorted(worker.attempts, key=lambda a: a.id):
            self._end_attempt(attempt, AttemptState.LOST, now)
            out += [GivenBack(attempt)] + self._count_loss(attempt, now)
        return out + self._outputs_lost_with(worker_id, now)

    def _count_loss(self, attempt, now):
        """
        A task whose attempts lost their workers C{max_losses} times fails
        the job: lost workers are not the task's fault, usually, but a task
        that kills each worker it runs on would otherwise be retried for
        ever (under a supervisor that restarts workers).
        """
        task = attempt.task
        if task.state is TaskState.FINISHED or self.over:
            return []
        task.losses += 1
        if task.losses < self.max_losses:
            return []
        self.state = JobState.FAILED
        self.failure = JobFailure(task, "its worker was lost while it ran", attempt, lost=True)
        for other in list(self._running):
            self._end_attempt(other, AttemptState.KILLED, now)
        return [JobOver(ok=False)]

    def forget(self, worker_id):
        """
        Forget a lost worker that was never handed an attempt: it left no
        trace in the job.  The seed's HTTP workers join on their first
        request, so thousands of them may come and go.

        @return: whether it was forgotten.
        """
        worker = self.workers.get(worker_id)
        if worker is None or not worker.lost or worker.ran:
            return False
        del self.workers[worker_id]
        return True

    def _unblock_reduces(self):
        for reduce in self.reduces:
            if reduce.state is TaskState.BLOCKED:
                self.placement.ready(reduce)

    # -- handing out tasks --------------------------------------------------

    def assign(self, worker_id, now):
        """
        Give the worker a ready task, or a backup attempt of a straggler.

        @return: a new running L{Attempt}, or L{None} when there is nothing
            for this worker now (the job is over, every task is running or
            blocked, or the worker is blacklisted while others are not).
        """
        worker = self.worker(worker_id)
        worker.last_seen = now
        if self.over:
            return None
        if worker.blacklisted and any(self._stand_ins(worker)):
            # Blacklisting yields when only blacklisted workers are left.
            return None
        if worker.slots is not None and len(worker.attempts) >= worker.slots:
            return None
        fits = self._fits_seed_worker if worker.info.via is Via.HTTP else None
        choice = self.placement.choose(worker, lambda: self._others(worker), self._phase(),
                                       self._running, now, fits, self._can_run, self._on_lease)
        if choice is None:
            return None
        return self._start(choice.task, worker, now, choice.speculative)

    def _others(self, worker):
        """
        The live workers other than this one that may still get tasks.
        """
        return (w for w in self.workers.values()
                if w is not worker and not w.lost and not w.blacklisted)

    def _start(self, task, worker, now, speculative):
        attempt = Attempt(self._next_attempt, task, worker.id, now, speculative,
                          seed_format=task.kind is Kind.MAP and worker.info.via is Via.HTTP)
        self._next_attempt += 1
        self.attempts[attempt.id] = attempt
        task.attempts.append(attempt)
        task.state = TaskState.RUNNING
        worker.attempts.add(attempt)
        worker.ran += 1
        self._running.add(attempt)
        return attempt

    def _stand_ins(self, worker):
        """
        The other workers that could run any task in this one's place: the
        seed's workers can run only some, so they stand in for nobody.
        """
        return (w for w in self._others(worker) if w.info.via is not Via.HTTP)

    def _can_run(self, worker, task):
        return worker.info.via is not Via.HTTP or self._fits_seed_worker(task)

    def can_run(self, worker_id, task):
        """
        Whether this worker could run this task (the seed's workers run
        only some).
        """
        return self._can_run(self.workers[worker_id], task)

    def _on_lease(self, attempt):
        worker = self.workers.get(attempt.worker)
        return worker is not None and worker.info.via is Via.HTTP

    def _fits_seed_worker(self, task):
        """
        What the seed's workers can do exactly: a map of whole files that no
        other task reads (they read whole files, and bucket words their own
        way), and a reduce once every map's output is in their format.  A
        map-only job has no buckets: the seed's mappers cannot write its
        output.
        """
        if not self.seed_workers or not self.reduces:
            return False
        if task.kind is Kind.MAP:
            return task.index in self._whole_files
        return self.maps_in_seed_format()

    def maps_in_seed_format(self):
        """
        Whether every map's output was written by a seed worker: then its
        reduces read it by the seed's own bucketing, whoever runs them.
        """
        return all(m.winner is not None and m.winner.seed_format for m in self.maps)

    def ready_but_not_for(self, worker_id):
        """
        How many READY tasks this worker cannot run.
        """
        worker = self.worker(worker_id)
        return sum(1 for t in self.tasks()
                   if t.state is TaskState.READY and not self._can_run(worker, t))

    def _phase(self):
        return Kind.MAP if self._unfinished[Kind.MAP] else Kind.REDUCE

    # -- reports ------------------------------------------------------------

    def running_attempt(self, worker_id, kind, index, attempt_id):
        """
        The running attempt a report is about, or the reason it is refused.
        """
        task = self.task(kind, index)
        worker = self.workers.get(worker_id)
        if worker is None:
            raise UnknownWorker(f"unknown worker {worker_id!r}")
        attempt = self.attempts.get(attempt_id) if type(attempt_id) is int else None
        if attempt is None or attempt.task is not task:
            raise StaleReport(f"{task} has no attempt {attempt_id!r}")
        if attempt.worker != worker_id:
            raise StaleReport(f"attempt {attempt_id} of {task} is not this worker's")
        if attempt.running and not worker.lost:
            return attempt
        leftover = attempt if task.winner is not attempt and not attempt.running else None
        if worker.lost:
            raise StaleReport(f"attempt {attempt_id} of {task} was given up with its worker",
                              leftover)
        raise StaleReport(
            f"attempt {attempt_id} of {task} is no longer running ({attempt.state})", leftover)

    def report_done(self, worker_id, kind, index, attempt_id, counters=None):
        """
        A worker says an attempt succeeded.  If it still counts, its files
        are to be committed: the caller carries out the L{Commit}, then
        calls L{committed} or L{commit_failed}, in the same reactor turn so
        that no other report slips in between.

        @raise SchedulingError: the report is refused; nothing changed.
        """
        return Commit(self.running_attempt(worker_id, kind, index, attempt_id),
                      dict(counters or {}))

    def committed(self, commit, now):
        """
        The attempt's files are in place: its task is FINISHED and its other
        attempts are cancelled.
        """
        attempt = commit.attempt
        task = attempt.task
        # FINISHED first: the attempt's end puts only a RUNNING task in line.
        task.winner = attempt
        task.state = TaskState.FINISHED
        self._end_attempt(attempt, AttemptState.SUCCEEDED, now)
        self._unfinished[task.kind] -= 1
        self.placement.finished(task.kind, attempt.duration(now))
        task.counters = commit.counters
        self.workers[attempt.worker].succeeded += 1
        out = []
        if len(task.attempts) > 1:
            for other in task.running_attempts():
                self._end_attempt(other, AttemptState.KILLED, now)
                out.append(Cancel(other))
            out += self._blame(task, {a.worker for a in task.attempts
                                      if a.state is AttemptState.FAILED} - {attempt.worker})
        if task.kind is Kind.MAP and not self._unfinished[Kind.MAP]:
            self._unblock_reduces()
        # A map-only job (no reduce task) is over when its maps are.
        if not any(self._unfinished.values()):
            self.state = JobState.FINISHED
            out.append(JobOver(ok=True))
        return out

    def commit_failed(self, commit, now, error):
        """
        The attempt's files could not be committed (a full or read-only
        disk): it failed, though its worker reported success, and the task
        is retried.  Its worker is not blamed for it.
        """
        attempt = commit.attempt
        attempt.error = error
        self._end_attempt(attempt, AttemptState.FAILED, now)
        return [Discard(attempt)] + self._count_failure(attempt, None, now)

    def report_failed(self, worker_id, kind, index, attempt_id, now, error, record=None):
        """
        An attempt's code raised.  The task is retried, unless it has now
        failed C{max_attempts} times: then the job fails.

        @param record: the input record the map code failed on, if known; in
            skipping mode a record named by two failures is skipped next time.
        @raise SchedulingError: the report is refused; nothing changed.
        """
        attempt = self.running_attempt(worker_id, kind, index, attempt_id)
        attempt.error = error
        self._end_attempt(attempt, AttemptState.FAILED, now)
        self.workers[worker_id].failed_attempts.append(attempt)
        return [Discard(attempt)] + self._count_failure(attempt, record, now)

    def check_timeouts(self, now):
        """
        Abandon attempts that ran longer than C{task_timeout}; each counts as
        a failure of its task.
        """
        if self.task_timeout is None or self.over:
            return []
        late = sorted((a for a in self._running if now - a.started > self.task_timeout),
                      key=lambda a: a.id)
        out = []
        for attempt in late:
            attempt.error = f"timed out after {self.task_timeout:g} seconds"
            self._end_attempt(attempt, AttemptState.TIMED_OUT, now)
            out.append(Cancel(attempt))
            out += self._count_failure(attempt, None, now)
        return out

    def _count_failure(self, attempt, record, now):
        task = attempt.task
        if task.state is TaskState.FINISHED or self.over:
            return []
        if record is not None and self.skip_bad_records:
            key = repr(record)
            seen = task.record_failures.get(key, 0) + 1
            task.record_failures[key] = seen
            if seen == 2:
                # The paper's rule: a record seen failing twice is skipped by
                # the next attempt.  That failure made progress, so it does
                # not count towards max_attempts.
                task.skip.append(record)
                self.skipped_records.append(SkippedRecord(task.kind, task.index, record))
                return []
        task.failures += 1
        if task.failures < self.max_attempts:
            return []
        self.state = JobState.FAILED
        self.failure = JobFailure(task, attempt.error, attempt)
        for other in list(self._running):
            self._end_attempt(other, AttemptState.KILLED, now)
        return [JobOver(ok=False)]

    def _end_attempt(self, attempt, state, now):
        attempt.state = state
        attempt.finished = max(now, attempt.started)
        self._running.discard(attempt)
        worker = self.workers.get(attempt.worker)
        if worker is not None:
            worker.attempts.discard(attempt)
        task = attempt.task
        if task.state is TaskState.RUNNING and not task.running_attempts():
            self.placement.ready(task, retry=True)

    def _blame(self, task, suspects):
        """
        The task succeeded: each worker on which it failed earlier takes the
        blame; one that collects C{blacklist_after} of them is blacklisted,
        unless no other live worker would be left.
        """
        out = []
        for worker_id in sorted(suspects):
            worker = self.workers[worker_id]
            if worker.blacklisted:
                continue
            strikes = sum(1 for a in worker.failed_attempts
                          if a.task.winner is not None and a.task.winner.worker != worker_id)
            if strikes >= self.blacklist_after and any(self._stand_ins(worker)):
                worker.blacklisted = True
                out.append(Blacklisted(worker))
        return out

    def summed_counters(self):
        """
        Counters summed over the winning attempt of every finished task.
        """
        return counters.summed(task.counters for task in self.tasks())


def _whole_file_tasks(maps):
    """
    The indexes of the map tasks that read whole files no other task reads.
    """
    readers = {}
    for task in maps:
        for name, _, _ in task.inputs:
            readers[name] = readers.get(name, 0) + 1
    return {task.index for task in maps
            if all(start == 0 and readers[name] == 1 for name, start, _ in task.inputs)}
