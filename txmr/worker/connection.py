"""
The worker's end of one AMP connection: a thin adapter that answers the
driver's commands (L{Ping}, L{Cancel}, L{JobOver}) by calling into the
worker's service, and drops a connection the driver has gone silent on.

It holds no state of its own beyond the connection and whether the driver
on it proved itself: what to do about a cancel, the end of the job or a
lost connection is the service's affair, and the questions the worker asks
are its L{session<txmr.worker.session>}'s.
"""

from twisted.internet import defer
from twisted.logger import Logger
from twisted.protocols import amp, policies

from txmr import protocol

log = Logger()


class WorkerProtocol(amp.AMP, policies.TimeoutMixin):
    """
    The worker's end of a connection: it answers the driver's commands.

    @param service: what the commands call into: its C{cancel(attempt)},
        C{job_over(ok, message)} and C{disconnected()}.
    @param clock: the clock of the silence timeout (see
        L{TimeoutMixin.setTimeout}).

    @ivar trusted: whether the peer is this worker's driver: it answered
        Hello with the proof of the secret (or neither side has a secret).
        Until then, L{protocol.Cancel} and L{protocol.JobOver} are held (a
        driver tells a worker that joins as the job ends at once, before
        its Hello answer leaves), and carried out only once the session
        calls L{trust}: a stranger on the driver's address cannot end the
        worker.
    """

    trusted = False
    # Commands held before the driver proved itself; more are refused.
    MAX_HELD = 8

    def __init__(self, service, clock):
        super().__init__()
        self.service = service
        self.clock = clock
        self._held = []

    def trust(self):
        """
        The driver proved itself: carry out the commands it sent before.
        """
        self.trusted = True
        held, self._held = self._held, []
        for answer, action in held:
            action()
            answer.callback({})

    def _refuse_held(self):
        held, self._held = self._held, []
        for answer, _ in held:
            answer.errback(protocol.Unauthorized("the driver did not prove itself"))

    def _when_trusted(self, command, action):
        if self.trusted:
            action()
            return {}
        if len(self._held) >= self.MAX_HELD:
            log.warn("refused {command} from a peer that has not proved it is the driver",
                     command=command.__name__)
            raise protocol.Unauthorized("prove you know the secret first")
        answer = defer.Deferred()
        self._held.append((answer, action))
        return answer

    def callLater(self, period, func):
        # TimeoutMixin would use the global reactor.
        return self.clock.callLater(period, func)

    def connectionMade(self):
        super().connectionMade()
        protocol.no_delay(self.transport)

    def dataReceived(self, data):
        self.resetTimeout()
        super().dataReceived(data)

    def timeoutConnection(self):
        log.warn("the driver has been silent too long; reconnecting")
        self.transport.abortConnection()

    @protocol.Ping.responder
    def ping(self):
        return {}

    @protocol.Cancel.responder
    def cancel(self, attempt):
        return self._when_trusted(protocol.Cancel, lambda: self.service.cancel(attempt))

    @protocol.JobOver.responder
    def job_over(self, ok, message):
        return self._when_trusted(protocol.JobOver,
                                  lambda: self.service.job_over(ok, message))

    def connectionLost(self, reason):
        self.setTimeout(None)
        self._refuse_held()
        super().connectionLost(reason)
        self.service.disconnected()
