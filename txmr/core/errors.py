"""
The scheduler's refusals.  A refusal changes nothing; the front doors send
its message back to the peer (over AMP by the codes in L{txmr.protocol}).
"""


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

    @ivar leftover: the attempt whose files the report may have left behind
        (one that no longer runs and did not win), or L{None}.
    """

    def __init__(self, message, leftover=None):
        super().__init__(message)
        self.leftover = leftover
