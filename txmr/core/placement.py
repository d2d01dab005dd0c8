"""
Which task a worker gets next: the line of ready tasks, the look-ahead rule
for quick tasks, Hadoop's rule that a retry goes elsewhere, and the paper's
backup attempts for stragglers.  Part of the core: no I/O, time passed in.
"""

from bisect import insort
from collections import deque
from typing import NamedTuple

from txmr.core.states import AttemptState, Kind, TaskState

# A backup attempt is considered only for attempts running longer than
# SPECULATION_FACTOR times the median duration of the phase's finished tasks.
SPECULATION_FACTOR = 2.0
# Tasks shorter than this (seconds) are quick: a worker running quick tasks
# may hold one more, to run next, and runs what it holds as a batch.
QUICK_TASK = 0.05

_FAULTS = (AttemptState.FAILED, AttemptState.TIMED_OUT)


class Choice(NamedTuple):
    """
    A task for a worker, and whether it is a backup attempt.
    """

    task: object
    speculative: bool


class Placement:
    """
    The ready tasks in hand-out order, and each phase's finished durations.

    What makes every step cheap with many tasks: a task may appear twice in
    the line (only its state counts), and durations are kept sorted.
    """

    def __init__(self, tasks, speculation=True, speculate_after=10.0):
        self._ready = deque(tasks)
        self._durations = {Kind.MAP: [], Kind.REDUCE: []}
        self.speculation = speculation
        self.speculate_after = speculate_after

    def ready(self, task, retry=False):
        """
        The task is READY.  A task given back (its attempt failed or was
        lost) goes first: a task that keeps failing then fails the job
        early, not last.
        """
        task.state = TaskState.READY
        if retry:
            self._ready.appendleft(task)
        else:
            self._ready.append(task)

    def finished(self, kind, duration):
        insort(self._durations[kind], duration)

    def choose(self, worker, others, phase, running, now, fits=None, can_run=None,
               on_lease=None):
        """
        The L{Choice} for C{worker}, or L{None}.

        @param others: returns the live, not blacklisted workers but this one.
        @param fits: whether a task is one this worker can run (L{None}: any);
            such a worker gets no backup attempts.
        @param can_run: whether a worker can run a task (L{None}: any can).
        @param phase: the kind of task still unfinished first.
        @param running: every running attempt.
        @param on_lease: whether an attempt's worker is alive only by its own
            word (a seed HTTP worker's lease, renewed by any request).
        """
        if worker.attempts and not self._may_look_ahead(worker, others, phase):
            return None
        task = self._next_ready(worker, others, fits, can_run)
        if task is not None:
            return Choice(task, speculative=False)
        task = (self._straggler(worker, phase, running, now, on_lease)
                if fits is None else None)
        if task is not None:
            return Choice(task, speculative=True)
        return None

    def _may_look_ahead(self, worker, others, phase):
        """
        Whether a worker that holds a task may take another, to run after
        it.  Only if the phase's tasks have been quick so far (its first
        tasks, whose durations are unknown, are never held back behind
        another), and only if that leaves a ready task for every worker
        that has none: near the end of a phase, or when a worker joins
        late, the last tasks go to idle workers.
        """
        done = self._durations[phase]
        if not done or median(done) >= QUICK_TASK:
            return False
        idle = sum(1 for w in others() if not w.attempts)
        ready = 0
        for task in self._ready:
            if task.state is TaskState.READY:
                ready += 1
                if ready > idle:
                    return True
        return False

    def _next_ready(self, worker, others, fits, can_run):
        """
        The first READY task in line that has not failed on this worker; one
        that has, only if every other worker has failed it too (Hadoop's
        rule: a retry goes elsewhere, so one bad worker cannot use up its
        attempts; but where it can go nowhere else, it is retried here, so
        that C{max_attempts} bounds the job's life whatever the number of
        workers).
        """
        ready = self._ready
        while ready and ready[0].state is not TaskState.READY:
            ready.popleft()
        fallback = None
        for task in ready:
            if task.state is not TaskState.READY or (fits is not None and not fits(task)):
                continue
            if not failed_on(task, worker):
                ready.remove(task)
                return task
            if fallback is None:
                fallback = task
        if fallback is not None and all(failed_on(fallback, w) for w in others()
                                        if can_run is None or can_run(w, fallback)):
            ready.remove(fallback)
            return fallback
        return None

    def _straggler(self, worker, phase, running, now, on_lease=None):
        """
        The task that most deserves a backup attempt on this worker, if any:
        the phase has nothing left to hand out, and the task's only attempt
        has run more than twice the median of the phase's finished tasks,
        and at least C{speculate_after} seconds.

        Before any task of the phase has finished there is no median, and
        no backup, except for an attempt on a worker that is alive only by
        its own word (C{on_lease}: a seed HTTP worker, whose every request
        renews its lease, so that it could hold a task for ever without
        doing it): such an attempt gets one after C{speculate_after}.
        """
        done = self._durations[phase]
        if not self.speculation:
            return None
        # Nothing of the phase is READY here (choose hands those out first).
        if done:
            threshold = max(SPECULATION_FACTOR * median(done), self.speculate_after)
        elif on_lease is not None:
            threshold = self.speculate_after
        else:
            return None
        candidates = []
        for only in running:
            task = only.task
            if task.kind == phase and len(task.running_attempts()) == 1:
                if (only.worker != worker.id and only.duration(now) > threshold
                        and (done or on_lease(only))):
                    candidates.append((only.duration(now), only.id, task))
        if not candidates:
            return None
        return max(candidates)[2]


def failed_on(task, worker):
    """
    Whether the task failed on this worker (it goes elsewhere if it can).
    """
    return task.failures and any(
        a.worker == worker.id and a.state in _FAULTS for a in task.attempts)


def median(ordered):
    half = len(ordered) // 2
    return ordered[half] if len(ordered) % 2 else (ordered[half - 1] + ordered[half]) / 2
