"""
What the scheduler tells its caller to do, as typed values.

The scheduler decides and does no I/O; each of its methods returns the
instructions that follow from an event (as dask's worker state machine
does), and the driver's coordinator carries them out in order.
"""

from dataclasses import dataclass

from txmr.core.model import Attempt, Worker


@dataclass(frozen=True)
class Commit:
    """
    The attempt's report is accepted: make its files visible, then tell the
    scheduler it is L{committed<txmr.core.scheduler.Scheduler.committed>}
    (or that the commit failed).
    """

    attempt: Attempt
    counters: dict


@dataclass(frozen=True)
class Cancel:
    """
    The attempt no longer counts (another won, or it timed out): tell its
    worker to stop it, and remove its files.
    """

    attempt: Attempt


@dataclass(frozen=True)
class Discard:
    """
    The attempt failed: remove whatever files it left.
    """

    attempt: Attempt


@dataclass(frozen=True)
class GivenBack:
    """
    The attempt was lost with its worker; its task is ready again.
    """

    attempt: Attempt


@dataclass(frozen=True)
class OutputLost:
    """
    The committed map attempt's output, kept by the worker that wrote it,
    can no longer be read: its task is READY again, and the reduces wait.
    """

    attempt: Attempt


@dataclass(frozen=True)
class Blacklisted:
    """
    The worker's attempts kept failing on tasks that succeeded elsewhere: it
    gets no more tasks of this job.
    """

    worker: Worker


@dataclass(frozen=True)
class JobOver:
    """
    The job is over: every task finished (C{ok}), or one failed too often.
    """

    ok: bool
