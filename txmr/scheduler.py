"""
The scheduling core: tasks, attempts and workers, and nothing else.

This module does no I/O and reads no clock: every method that depends on
time takes C{now}.  The AMP driver, the HTTP API and the tests all drive the
same L{Scheduler}, so the rules of the job's life cycle live in one place:

  - map tasks start READY; reduce tasks start BLOCKED and become READY when
    every map task is FINISHED (the seed system's life cycle);
  - every hand-out of a task is a new L{Attempt} with a job-unique id, and
    every report names its attempt: the first successful attempt of a task
    wins, any other report about it is refused with L{StaleReport};
  - a lost worker's running attempts are given back at once, a failed
    attempt is retried until C{max_attempts} failures fail the job, an
    attempt running past C{task_timeout} is abandoned, and near the end of a
    phase a straggler gets a backup attempt (the MapReduce paper's
    speculative execution);
  - a worker whose attempts keep failing while the same tasks succeed
    elsewhere is blacklisted for the job (Hadoop's rule).
"""

from bisect import insort
from collections import deque
from dataclasses import dataclass, field

# Task states, with the seed's numbers: they are part of its HTTP API.
BLOCKED, READY, RUNNING, FINISHED = 1, 2, 3, 4
STATE_NAMES = {BLOCKED: "blocked", READY: "ready", RUNNING: "running", FINISHED: "finished"}

# Job states, the seed's numbers, and one it lacked.
JOB_RUNNING, JOB_FINISHED, JOB_FAILED = 1, 2, 3

MAP, REDUCE = "map", "reduce"

# A backup attempt is considered only for attempts running longer than
# SPECULATION_FACTOR times the median duration of the phase's finished tasks.
SPECULATION_FACTOR = 2.0
# Tasks shorter than this (seconds) are quick: a worker running quick tasks
# may hold one more, to run next, and runs what it holds as a batch.
QUICK_TASK = 0.05


class SchedulingError(Exception):
    """
    A request the scheduler refuses; the message says why, for the peer.
    """


class UnknownTask(SchedulingError):
    """
    No task of that kind and index exists in this job.
    """


class UnknownWorker(SchedulingError):
    """
    The worker never registered, or the driver already gave up on it.
    """


class StaleReport(SchedulingError):
    """
    A report about an attempt that no longer counts: it lost, it was
    abandoned, its worker was presumed dead, or the task already finished.
    """


@dataclass(eq=False)
class Attempt:
    """
    One execution of a task on one worker.

    @ivar state: C{running}, then one of C{succeeded}, C{failed}, C{lost}
        (its worker went away), C{timed-out} or C{killed} (another attempt
        won, or the job ended).
    """

    id: int
    task: "Task"
    worker: str
    started: float
    speculative: bool = False
    state: str = "running"
    finished: float | None = None
    error: str | None = None

    @property
    def running(self):
        return self.state == "running"

    def duration(self, now):
        return (self.finished if self.finished is not None else now) - self.started


@dataclass(eq=False)
class Task:
    """
    A map or reduce task: its inputs, state and attempts.

    @ivar inputs: for a map task, its splits; unused for a reduce task.
    @ivar failures: attempts that failed by the task's own fault (the code
        raised, or the attempt timed out); lost workers do not count.
    @ivar record_failures: for skipping mode, how often each input record
        was named by a failed attempt; C{skip} holds the records to skip.
    """

    kind: str
    index: int
    inputs: list = field(default_factory=list)
    state: int = READY
    attempts: list = field(default_factory=list)
    failures: int = 0
    winner: Attempt | None = None
    counters: dict = field(default_factory=dict)
    record_failures: dict = field(default_factory=dict)
    skip: list = field(default_factory=list)

    @property
    def key(self):
        return (self.kind, self.index)

    def running_attempts(self):
        return [a for a in self.attempts if a.running]


@dataclass(eq=False)
class Worker:
    """
    A worker session: one connection of a worker process, or one HTTP
    worker-pid.  A worker that reconnects is a new session.
    """

    id: str
    joined: float
    last_seen: float
    info: dict = field(default_factory=dict)
    timeout: float | None = None
    slots: int | None = 1
    attempts: set = field(default_factory=set)
    lost: bool = False
    blacklisted: bool = False
    failed_attempts: list = field(default_factory=list)
    succeeded: int = 0


class Scheduler:
    """
    The state machine of one job.

    @param map_inputs: one list of input splits per map task.
    @param n_reduce: the number of reduce tasks.
    @param max_attempts: failures of one task that fail the job.
    @param task_timeout: seconds after which a running attempt is abandoned,
        or L{None} for no limit.
    @param speculation: whether stragglers get backup attempts.
    @param speculate_after: the least running time for a backup attempt.
    @param blacklist_after: failed attempts on one worker, of tasks that then
        succeeded elsewhere, after which that worker gets no more tasks.
    @param skip_bad_records: whether input records that made map attempts
        fail twice are skipped by later attempts.
    """

    def __init__(
        self,
        map_inputs,
        n_reduce,
        max_attempts=4,
        task_timeout=None,
        speculation=True,
        speculate_after=10.0,
        blacklist_after=3,
        skip_bad_records=False,
    ):
        if not map_inputs or n_reduce < 1:
            raise ValueError("a job needs at least one map and one reduce task")
        self.maps = [Task(MAP, i, list(inputs)) for i, inputs in enumerate(map_inputs)]
        self.reduces = [Task(REDUCE, i, state=BLOCKED) for i in range(n_reduce)]
        self.max_attempts = max_attempts
        self.task_timeout = task_timeout
        self.speculation = speculation
        self.speculate_after = speculate_after
        self.blacklist_after = blacklist_after
        self.skip_bad_records = skip_bad_records
        self.workers = {}
        self.attempts = {}
        # What makes every step cheap with many tasks: READY tasks in hand-out
        # order (a task may appear twice; only its state counts), running
        # attempts, unfinished tasks, and each phase's sorted durations.
        self._ready = deque(self.maps)
        self._running = set()
        self._unfinished = {MAP: len(self.maps), REDUCE: len(self.reduces)}
        self._durations = {MAP: [], REDUCE: []}
        self._next_attempt = 1
        self.state = JOB_RUNNING
        self.failure = None
        self.skipped_records = []

    # -- lookups ----------------------------------------------------------

    def task(self, kind, index):
        """
        The task of that kind and index, or L{UnknownTask}.
        """
        tasks = {MAP: self.maps, REDUCE: self.reduces}.get(kind)
        if tasks is None or not isinstance(index, int) or not 0 <= index < len(tasks):
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
        How many tasks of each kind are in each state.
        """
        out = {}
        for task in self.tasks():
            kind = out.setdefault(task.kind, {name: 0 for name in STATE_NAMES.values()})
            kind[STATE_NAMES[task.state]] += 1
        return out

    @property
    def over(self):
        return self.state != JOB_RUNNING

    # -- workers ----------------------------------------------------------

    def register(self, worker_id, now, info=None, timeout=None, slots=1):
        """
        A new worker session joins the job.

        @param timeout: how long it may stay silent before it is lost, if not
            the default that L{expire} is given (an HTTP worker's lease).
        @param slots: how many attempts it may run at once (L{None}: any, as
            the seed's HTTP workers could ask for task after task).
        """
        if worker_id in self.workers:
            raise SchedulingError(f"worker {worker_id!r} is already registered")
        self.workers[worker_id] = Worker(worker_id, now, now, dict(info or {}), timeout, slots)

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
        """
        worker = self.workers.get(worker_id)
        if worker is None or worker.lost:
            return
        worker.lost = True
        for attempt in list(worker.attempts):
            self._end_attempt(attempt, "lost", now)

    def expire(self, now, timeout):
        """
        Lose every worker not seen for C{timeout} seconds (or its own).

        @return: the ids of the workers lost now.
        """
        silent = [
            w.id for w in self.workers.values()
            if not w.lost and now - w.last_seen > (w.timeout or timeout)
        ]
        for worker_id in silent:
            self.lose(worker_id, now)
        return silent

    def live_workers(self):
        return [w for w in self.workers.values() if not w.lost]

    # -- handing out tasks --------------------------------------------------

    def assign(self, worker_id, now):
        """
        Give the worker a ready task, or a backup attempt of a straggler.

        @return: a new running L{Attempt}, or L{None} when there is nothing
            for this worker now (the job is over, every task is running or
            blocked, or the worker is blacklisted).
        """
        worker = self.worker(worker_id)
        worker.last_seen = now
        if self.over or worker.blacklisted:
            return None
        if worker.slots is not None and len(worker.attempts) >= worker.slots:
            return None
        if worker.attempts and not self._may_look_ahead(worker):
            return None
        task = self._next_ready(worker)
        if task is not None:
            return self._start(task, worker, now, speculative=False)
        task = self._straggler(worker, now)
        if task is not None:
            return self._start(task, worker, now, speculative=True)
        return None

    def _may_look_ahead(self, worker):
        """
        Whether a worker that holds a task may take another, to run after
        it.  Only if the phase's tasks have been quick so far (its first
        tasks, whose durations are unknown, are never held back behind
        another), and only if that leaves a ready task for every worker
        that has none: near the end of a phase, or when a worker joins
        late, the last tasks go to idle workers.
        """
        done = self._durations[self._phase()]
        if not done or _median(done) >= QUICK_TASK:
            return False
        idle = sum(1 for w in self._others(worker) if not w.attempts)
        ready = 0
        for task in self._ready:
            if task.state == READY:
                ready += 1
                if ready > idle:
                    return True
        return False

    def _next_ready(self, worker):
        """
        The first READY task in line that has not failed on this worker; one
        that has, only if no other worker could take it (Hadoop's rule: a
        retry goes elsewhere, so one bad worker cannot use up its attempts).
        """
        ready = self._ready
        while ready and ready[0].state != READY:
            ready.popleft()
        fallback = None
        for task in ready:
            if task.state != READY:
                continue
            if not self._failed_on(task, worker):
                ready.remove(task)
                return task
            if fallback is None:
                fallback = task
        if fallback is not None and not any(self._others(worker)):
            ready.remove(fallback)
            return fallback
        return None

    def _others(self, worker):
        """
        The live workers other than this one that may still get tasks.
        """
        return (w for w in self.workers.values()
                if w is not worker and not w.lost and not w.blacklisted)

    @staticmethod
    def _failed_on(task, worker):
        return task.failures and any(
            a.worker == worker.id and a.state in ("failed", "timed-out") for a in task.attempts)

    def _start(self, task, worker, now, speculative):
        attempt = Attempt(self._next_attempt, task, worker.id, now, speculative)
        self._next_attempt += 1
        self.attempts[attempt.id] = attempt
        task.attempts.append(attempt)
        task.state = RUNNING
        worker.attempts.add(attempt)
        self._running.add(attempt)
        return attempt

    def _make_ready(self, task, retry=False):
        """
        A task given back (its attempt failed or was lost) goes first: a
        task that keeps failing then fails the job early, not last.
        """
        task.state = READY
        if retry:
            self._ready.appendleft(task)
        else:
            self._ready.append(task)

    def _phase(self):
        return MAP if self._unfinished[MAP] else REDUCE

    def _straggler(self, worker, now):
        """
        The task that most deserves a backup attempt on this worker, if any:
        the phase has nothing left to hand out, and the task's only attempt
        has run more than twice the median of the phase's finished tasks,
        and at least C{speculate_after} seconds.
        """
        phase = self._phase()
        done = self._durations[phase]
        if not self.speculation or not done:
            return None
        # Nothing of the phase is READY here (assign hands those out first).
        threshold = max(SPECULATION_FACTOR * _median(done), self.speculate_after)
        candidates = []
        for only in self._running:
            task = only.task
            if task.kind == phase and len(task.running_attempts()) == 1:
                if only.worker != worker.id and only.duration(now) > threshold:
                    candidates.append((only.duration(now), only.id, task))
        if not candidates:
            return None
        return max(candidates)[2]

    # -- reports ------------------------------------------------------------

    def running_attempt(self, worker_id, kind, index, attempt_id):
        """
        The running attempt a report is about, or the reason it is refused.
        """
        task = self.task(kind, index)
        worker = self.workers.get(worker_id)
        if worker is None:
            raise UnknownWorker(f"unknown worker {worker_id!r}")
        attempt = self.attempts.get(attempt_id)
        if attempt is None or attempt.task is not task:
            raise StaleReport(f"{kind} task {index} has no attempt {attempt_id!r}")
        if attempt.worker != worker_id:
            raise StaleReport(f"attempt {attempt_id} of {kind} task {index} is not this worker's")
        if worker.lost:
            raise StaleReport(
                f"attempt {attempt_id} of {kind} task {index} was given up with its worker"
            )
        if not attempt.running:
            raise StaleReport(
                f"attempt {attempt_id} of {kind} task {index} is no longer running"
                f" ({attempt.state})"
            )
        return attempt

    def succeed(self, worker_id, kind, index, attempt_id, now, counters=None):
        """
        An attempt finished: the task is FINISHED and its other attempts are
        killed.  The caller must have committed the attempt's output (by
        rename) before calling this, and only after L{running_attempt}
        accepted it.

        @return: the attempts killed because this one won.
        """
        attempt = self.running_attempt(worker_id, kind, index, attempt_id)
        task = attempt.task
        self._end_attempt(attempt, "succeeded", now)
        task.winner = attempt
        task.state = FINISHED
        self._unfinished[kind] -= 1
        insort(self._durations[kind], attempt.duration(now))
        task.counters = counters or {}
        self.workers[worker_id].succeeded += 1
        killed = task.running_attempts()
        for other in killed:
            self._end_attempt(other, "killed", now)
        self._blame_failed_workers(task)
        if task.kind == MAP and not self._unfinished[MAP]:
            for reduce in self.reduces:
                self._make_ready(reduce)
        if not self._unfinished[REDUCE]:
            self.state = JOB_FINISHED
        return killed

    def fail(self, worker_id, kind, index, attempt_id, now, error, record=None):
        """
        An attempt's code raised.  The task is retried, unless it has now
        failed C{max_attempts} times: then the job fails.

        @param record: the input record the map code failed on, if known; in
            skipping mode a record named by two failures is skipped next time.
        """
        attempt = self.running_attempt(worker_id, kind, index, attempt_id)
        attempt.error = error
        self._end_attempt(attempt, "failed", now)
        self.workers[worker_id].failed_attempts.append(attempt)
        self._count_failure(attempt.task, error, record, now)

    def check_timeouts(self, now):
        """
        Abandon attempts that ran longer than C{task_timeout}; each counts as
        a failure of its task.

        @return: the attempts abandoned now.
        """
        if self.task_timeout is None or self.over:
            return []
        late = [a for a in self._running if now - a.started > self.task_timeout]
        late.sort(key=lambda a: a.id)
        for attempt in late:
            attempt.error = f"timed out after {self.task_timeout:g} seconds"
            self._end_attempt(attempt, "timed-out", now)
            self._count_failure(attempt.task, attempt.error, None, now)
        return late

    def _count_failure(self, task, error, record, now):
        if task.state == FINISHED or self.over:
            return
        if record is not None and self.skip_bad_records:
            key = repr(record)
            seen = task.record_failures.get(key, 0) + 1
            task.record_failures[key] = seen
            if seen == 2:
                # The paper's rule: a record seen failing twice is skipped by
                # the next attempt.  That failure made progress, so it does
                # not count towards max_attempts.
                task.skip.append(record)
                self.skipped_records.append((task.kind, task.index, record))
                return
        task.failures += 1
        if task.failures >= self.max_attempts:
            self.state = JOB_FAILED
            self.failure = (task, error)
            for attempt in list(self._running):
                self._end_attempt(attempt, "killed", now)

    def _end_attempt(self, attempt, state, now):
        attempt.state = state
        attempt.finished = max(now, attempt.started)
        self._running.discard(attempt)
        worker = self.workers.get(attempt.worker)
        if worker is not None:
            worker.attempts.discard(attempt)
        task = attempt.task
        if task.state == RUNNING and not task.running_attempts():
            self._make_ready(task, retry=True)

    def _blame_failed_workers(self, task):
        """
        The task succeeded: each worker on which it failed earlier takes the
        blame; one that collects C{blacklist_after} of them is blacklisted,
        unless no other live worker would be left.
        """
        blamed = {a.worker for a in task.attempts if a.state == "failed"}
        for worker_id in blamed - {task.winner.worker}:
            worker = self.workers[worker_id]
            strikes = sum(1 for a in worker.failed_attempts if a.task.state == FINISHED
                          and a.task.winner.worker != worker_id)
            if strikes >= self.blacklist_after and any(self._others(worker)):
                worker.blacklisted = True

    def summed_counters(self):
        """
        Counters summed over the winning attempt of every finished task.
        """
        total = {}
        for task in self.tasks():
            for group, names in task.counters.items():
                mine = total.setdefault(group, {})
                for name, value in names.items():
                    mine[name] = mine.get(name, 0) + value
        return total


def _median(ordered):
    half = len(ordered) // 2
    return ordered[half] if len(ordered) % 2 else (ordered[half - 1] + ordered[half]) / 2
