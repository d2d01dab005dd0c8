"""
The worker's end of one AMP connection: a thin adapter that answers the
driver's commands (L{Ping}, L{Cancel}, L{JobOver}) by calling into the
worker's service, and drops a connection the driver has gone silent on.

It holds no state of its own beyond the connection: what to do about a
cancel, the end of the job or a lost connection is the service's affair,
and the questions the worker asks are its L{session<txmr.worker.session>}'s.
"""

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
    """

    def __init__(self, service, clock):
        super().__init__()
        self.service = service
        self.clock = clock

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
        self.service.cancel(attempt)
        return {}

    @protocol.JobOver.responder
    def job_over(self, ok, message):
        self.service.job_over(ok, message)
        return {}

    def connectionLost(self, reason):
        self.setTimeout(None)
        super().connectionLost(reason)
        self.service.disconnected()
