"""
The states of tasks, attempts and jobs, and the kinds of tasks.

Task and job states keep the seed system's numbers: they are part of its
HTTP API, and an C{IntEnum} serialises to JSON as that number.  Kinds and
attempt states are C{str} enums: they serialise as their names.
"""

from enum import Enum, IntEnum


class _Text(str, Enum):
    """
    A C{str} enum that prints and formats as its value on every Python.
    """

    # _value_, not value: the property costs two calls, and a task's kind
    # is printed in each of its specs and journal rows.
    def __str__(self):
        return self._value_

    def __format__(self, spec):
        return format(self._value_, spec)


class Kind(_Text):
    MAP = "map"
    REDUCE = "reduce"


class TaskState(IntEnum):
    BLOCKED = 1
    READY = 2
    RUNNING = 3
    FINISHED = 4

    @property
    def label(self):
        return self.name.lower()


class JobState(IntEnum):
    RUNNING = 1
    FINISHED = 2
    FAILED = 3  # the seed lacked it

    @property
    def label(self):
        return self.name.lower()


class AttemptState(_Text):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"          # the job's code raised, or its files could not be committed
    LOST = "lost"              # its worker went away
    TIMED_OUT = "timed-out"
    KILLED = "killed"          # another attempt won, or the job ended


class Via(_Text):
    """
    How a worker reaches the driver.
    """

    AMP = "amp"
    HTTP = "http"  # the seed's workers, through its HTTP API


MAP, REDUCE = Kind.MAP, Kind.REDUCE
