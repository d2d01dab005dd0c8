"""
The end of a job, as one state machine.

    RUNNING --begin--> TELLING --(every worker told)--> EXITED
    RUNNING --exit---> EXITED                 (the driver cannot listen)

In TELLING, every connected worker is told the job is over, and so is any
worker that joins meanwhile; the seed's HTTP workers are told when they
next ask, so each live one is waited for, at most for its lease.  The
driver exits once all have heard (or could not be told).
"""

from enum import Enum

from twisted.internet import defer


class Phase(Enum):
    RUNNING = "running"
    TELLING = "telling"
    EXITED = "exited"


class Ending:
    """
    @ivar done: fires with the exit code when the driver exits.
    """

    def __init__(self, clock, http_lease, on_exit=None):
        self.clock = clock
        self.http_lease = http_lease
        self.on_exit = on_exit
        self.phase = Phase.RUNNING
        self.ok = None
        self.message = None
        self.done = defer.Deferred()
        self._telling = 0
        self._untold_http = set()
        self._lease_call = None

    @property
    def running(self):
        return self.phase is Phase.RUNNING

    def begin(self, ok, message, peers, http_workers):
        """
        The job is over: tell every peer (see L{tell}), wait for the HTTP
        workers, then exit 0 if C{ok}, else 1.
        """
        if self.phase is not Phase.RUNNING:
            return
        self.phase = Phase.TELLING
        self.ok, self.message = ok, message
        self._untold_http = set(http_workers)
        if self._untold_http:
            self._lease_call = self.clock.callLater(self.http_lease, self._lease_over)
        for peer in peers:
            self.tell(peer)
        self._maybe_exit()

    def tell(self, peer):
        """
        Tell a worker the job is over; in RUNNING, nothing.  C{peer.tell_over}
        returns a Deferred that fires when the worker heard, or could not.
        """
        if self.phase is not Phase.TELLING:
            return
        self._telling += 1
        peer.tell_over(self.ok, self.message).addBoth(self._heard)

    def told_http(self, worker):
        """
        An HTTP worker asked for a task and was told the job is over.
        """
        self._untold_http.discard(worker)
        self._maybe_exit()

    def _heard(self, _):
        self._telling -= 1
        self._maybe_exit()

    def _lease_over(self):
        self._lease_call = None
        self._untold_http.clear()
        self._maybe_exit()

    def _maybe_exit(self):
        if self.phase is Phase.TELLING and not self._telling and not self._untold_http:
            self.exit(0 if self.ok else 1, self.message)

    def exit(self, code, message):
        """
        Exit now with C{code}; later calls do nothing.
        """
        if self.phase is Phase.EXITED:
            return
        self.phase = Phase.EXITED
        self.stop()
        self.done.callback(code)
        if self.on_exit is not None:
            self.on_exit(code, message)

    def stop(self):
        if self._lease_call is not None and self._lease_call.active():
            self._lease_call.cancel()
        self._lease_call = None
