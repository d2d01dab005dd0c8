"""
What the scheduler keeps: tasks, their attempts, and worker sessions.
"""

from dataclasses import dataclass, field
from typing import NamedTuple

from txmr.core.states import AttemptState, Kind, TaskState, Via

_RUNNING = AttemptState.RUNNING


@dataclass(eq=False)
class Attempt:
    """
    One execution of a task on one worker.
    """

    id: int
    task: "Task"
    worker: str
    started: float
    speculative: bool = False
    state: AttemptState = AttemptState.RUNNING
    finished: float | None = None
    error: str | None = None
    # A map attempt of one of the seed's HTTP workers: its output is in the
    # seed's format and buckets.  Kept with the attempt, and journaled, not
    # looked up from its worker, which a restarted driver no longer knows.
    seed_format: bool = False

    @property
    def running(self):
        return self.state is AttemptState.RUNNING

    def duration(self, now):
        return (self.finished if self.finished is not None else now) - self.started

    def __str__(self):
        return f"{self.task} attempt {self.id}"


@dataclass(eq=False)
class Task:
    """
    A map or reduce task: its inputs, state and attempts.

    @ivar inputs: for a map task, its splits C{[name, start, end]}.
    @ivar failures: attempts that failed by the task's own fault (the code
        raised, its files could not be committed, or it timed out); lost
        workers do not count.
    @ivar record_failures: for skipping mode, how often each input record
        was named by a failed attempt; C{skip} holds the records to skip.
    @ivar losses: attempts lost with their worker while they ran.  Not the
        task's fault, usually; but a task that kills its worker (a crash, all
        its memory) would otherwise be retried for ever.
    """

    kind: Kind
    index: int
    inputs: list = field(default_factory=list)
    state: TaskState = TaskState.READY
    attempts: list = field(default_factory=list)
    failures: int = 0
    losses: int = 0
    winner: Attempt | None = None
    counters: dict = field(default_factory=dict)
    record_failures: dict = field(default_factory=dict)
    skip: list = field(default_factory=list)

    @property
    def key(self):
        return (self.kind, self.index)

    def running_attempts(self):
        return [a for a in self.attempts if a.state is _RUNNING]

    def __str__(self):
        return f"{self.kind} task {self.index}"


@dataclass(frozen=True)
class WorkerInfo:
    """
    Who a worker says it is.  C{pid} is a number for AMP workers, and the
    C{worker-pid} header, as sent, for HTTP workers.
    """

    host: str = "?"
    pid: int | str | None = None
    via: Via = Via.AMP


@dataclass(eq=False)
class Worker:
    """
    A worker session: one connection of a worker process, or one HTTP
    worker-pid.  A worker that reconnects is a new session.

    @ivar timeout: how long it may stay silent before it is lost, if not
        the driver's heartbeat timeout (an HTTP worker's lease).
    @ivar slots: how many attempts it may hold at once (L{None}: any).
    @ivar ran: how many attempts it was ever handed.
    """

    id: str
    joined: float
    last_seen: float
    info: WorkerInfo = field(default_factory=WorkerInfo)
    timeout: float | None = None
    slots: int | None = 1
    attempts: set = field(default_factory=set)
    lost: bool = False
    blacklisted: bool = False
    failed_attempts: list = field(default_factory=list)
    succeeded: int = 0
    ran: int = 0


@dataclass(frozen=True)
class JobFailure:
    """
    Why a job failed: the task that used up its attempts, and the last
    attempt that failed.
    """

    task: Task
    error: str
    attempt: Attempt
    # The task lost its worker too often, rather than failed.
    lost: bool = False

    def message(self):
        if self.lost:
            return (f"{self.task} lost its worker {self.task.losses} times while running (it "
                    f"may be what kills it: a crash, or all its memory); last, attempt "
                    f"{self.attempt.id} on worker {self.attempt.worker}: {self.error}")
        return (f"{self.task} failed {self.task.failures} times; last, attempt "
                f"{self.attempt.id} on worker {self.attempt.worker}: {self.error}")


class SkippedRecord(NamedTuple):
    """
    An input record that skipping mode left out of a map task.
    """

    kind: Kind
    index: int
    record: list
