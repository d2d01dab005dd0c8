"""
What every attempt shares, map or reduce: its cancellation, the error
that names an input record its map code raised on, and how an error is
told to the driver (L{describe}).
"""

import traceback


class TaskCancelled(Exception):
    """
    The driver cancelled the attempt (another one won, or it timed out).
    """


def is_record(record):
    """
    Whether C{record} names an input record: C{[file]} in file mode,
    C{[file, block offset, line]} in lines mode.
    """
    return (isinstance(record, list) and len(record) in (1, 3)
            and isinstance(record[0], str)
            and all(isinstance(n, int) and not isinstance(n, bool) for n in record[1:]))


class RecordError(Exception):
    """
    The job's map code raised on one input record.

    @ivar record: C{[filename, block offset, line]} that names the record.
    """

    def __init__(self, record, error):
        super().__init__(f"{type(error).__name__}: {error}")
        self.record = record
        self.error = error


def check_cancelled(cancel):
    """
    @raise TaskCancelled: if the event C{cancel} (or L{None}) is set.
    """
    if cancel is not None and cancel.is_set():
        raise TaskCancelled("attempt cancelled by the driver")


def describe(error):
    """
    How an attempt's error is reported, the same by a worker and by the
    inline runner: C{(one line, traceback, record)}.  A L{RecordError} is
    told by its cause (the job's own exception and traceback), with the
    record it names; other errors have no record (L{None}).
    """
    record = None
    if isinstance(error, RecordError):
        error, record = error.error, error.record
    text = f"{type(error).__name__}: {error}".splitlines()
    line = (text[0] if text else type(error).__name__)[:2000]
    return line, "".join(traceback.format_exception(type(error), error,
                                                    error.__traceback__)), record
