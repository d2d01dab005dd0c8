"""
What both daemons share: the way a daemon ends with the right exit code,
and how a secret is read.  Each daemon's options and wiring live in its
own folder (L{txmr.driver.options}, L{txmr.worker.options}).

twistd itself has no notion of an exit code: the process exits 0 whenever
the reactor stops.  A driver whose job failed must exit non-zero, so
L{exit_process} records the code and an C{atexit} hook ends the process with
it, after twistd has cleaned up.
"""

import atexit
import os
import sys

from twisted.python import usage

_exit_code = 0


def _exit_with_code():
    if _exit_code:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(_exit_code)


atexit.register(_exit_with_code)


def exit_process(reactor, code, message, now=False):
    """
    Stop the reactor so that the process exits with C{code}; print the
    message on standard error when it is an error.  With C{now}, exit at
    once, without waiting for threads that may compute for a long time.
    """
    global _exit_code
    _exit_code = code
    if code:
        print(f"txmr: {message}", file=sys.stderr, flush=True)
    if now:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    if reactor.running:
        reactor.callLater(0, reactor.stop)
    else:
        # twistd starts the services before the reactor runs: a job that
        # is over at once (its journal says it is complete) stops it as
        # soon as it runs.
        reactor.callWhenRunning(reactor.callLater, 0, reactor.stop)


def read_secret(path):
    """
    The secret in a file (its first line), or L{None} without a file.
    """
    if not path:
        return None
    try:
        with open(path, encoding="utf-8") as f:
            secret = f.readline().strip()
    except OSError as e:
        raise usage.UsageError(f"cannot read the secret file {path!r}: {e.strerror}")
    if not secret:
        raise usage.UsageError(f"the secret file {path!r} is empty")
    return secret


def seconds(name, zero=False):
    """
    The coercer of a flag of seconds, whose refusal names the flag (twistd
    shows it as "Parameter type enforcement failed: ..."): more than 0, or
    0 or more with C{zero}.
    """
    bound = "0 or more" if zero else "more than 0"

    def coerce(text):
        try:
            value = float(text)
        except ValueError:
            value = None
        if value is None or not (value >= 0 if zero else value > 0) or value == float("inf"):
            raise ValueError(f"--{name} must be a number of seconds, {bound}, not {text!r}")
        return value
    coerce.coerceDoc = f"Seconds, {bound}."
    return coerce
