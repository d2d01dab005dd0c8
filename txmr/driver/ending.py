"""
The end of a job, as one state machine.

    RUNNING --begin--> TELLING --(settled, every worker told)--> LINGERING
    LINGERING --(linger seconds)--> EXITED
    RUNNING --exit---> EXITED                    (the driver cannot listen)
    TELLING, LINGERING --stop---> EXITED         (the daemon is stopped)

In TELLING the driver settles the job's files, then tells every connected
worker the job is over, and any worker that joins meanwhile; the seed's
HTTP workers are told when they next ask, so each live one is waited for,
at most for its lease.  Once it has settled and all have heard (or could
not be told), it lingers a few seconds, telling any worker that arrives
late (one slower to start than a short job) that the job is over, so that
it exits 0 at once rather than wait for a driver that is gone.  Then the
driver exits, with the job's code.
"""

from enum import Enum

from twisted.internet import defer


class Phase(Enum):
    RUNNING = "running"
    TELLING = "telling"
    LINGERING = "lingering"
    EXITED = "exited"


class Ending:
    """
    @ivar done: fires with the exit code when the driver exits.
    """

    def __init__(self, clock, http_lease, on_exit=None, linger=0.0):
        self.clock = clock
        self.http_lease = http_lease
        self.linger = linger
        self.on_exit = on_exit
        self.phase = Phase.RUNNING
        self.ok = None
        self.message = None
        self.done = defer.Deferred()
        # What the exit waits for: the driver settling, and each tell.
        self._waiting = 0
        self._untold_http = set()
        self._lease_call = None
        self._linger_call = None

    @property
    def running(self):
        return self.phase is Phase.RUNNING

    def begin(self, ok, message):
        """
        The job is over: exit 0 if C{ok}, else 1, once L{settled} and every
        worker told.  Later calls do nothing.
        """
        if self.phase is not Phase.RUNNING:
            return
        self.phase = Phase.TELLING
        self.ok, self.message = ok, message
        self._waiting = 1

    def tell(self, peer):
        """
        Tell a worker the job is over; in RUNNING, nothing.  C{peer.tell_over}
        returns a Deferred that fires when the worker heard, or could not.
        While lingering, the driver does not wait for it.
        """
        if self.phase is Phase.LINGERING:
            peer.tell_over(self.ok, self.message).addErrback(lambda _: None)
            return
        if self.phase is not Phase.TELLING:
            return
        self._waiting += 1
        peer.tell_over(self.ok, self.message).addBoth(self._heard)

    def wait_for_http(self, workers):
        """
        Wait until each of these HTTP workers was told (L{told_http}), or
        their lease ran out.
        """
        self._untold_http |= set(workers)
        if self._untold_http and self._lease_call is None:
            self._lease_call = self.clock.callLater(self.http_lease, self._lease_over)

    def told_http(self, worker):
        """
        An HTTP worker asked for a task and was told the job is over.
        """
        self._untold_http.discard(worker)
        self._maybe_exit()

    def settled(self):
        """
        The driver settled the job's files and told whom it could.
        """
        self._heard(None)

    def _heard(self, _):
        self._waiting -= 1
        self._maybe_exit()

    def _lease_over(self):
        self._lease_call = None
        self._untold_http.clear()
        self._maybe_exit()

    def _maybe_exit(self):
        if self.phase is Phase.TELLING and not self._waiting and not self._untold_http:
            if self.linger > 0:
                self.phase = Phase.LINGERING
                self._linger_call = self.clock.callLater(self.linger, self._exit_with_code)
            else:
                self._exit_with_code()

    def _exit_with_code(self):
        self.exit(0 if self.ok else 1, self.message)

    def exit(self, code, message):
        """
        Exit now with C{code}; later calls do nothing.
        """
        if self.phase is Phase.EXITED:
            return
        self.phase = Phase.EXITED
        self._cancel_lease()
        self.done.callback(code)
        if self.on_exit is not None:
            self.on_exit(code, message)

    def stop(self):
        """
        The daemon stops: a job that is over exits now with its code.
        """
        if self.phase in (Phase.TELLING, Phase.LINGERING):
            self._exit_with_code()
        self._cancel_lease()

    def _cancel_lease(self):
        for call in (self._lease_call, self._linger_call):
            if call is not None and call.active():
                call.cancel()
        self._lease_call = self._linger_call = None
