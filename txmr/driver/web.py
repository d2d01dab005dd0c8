"""
The driver's web site, served by twisted.web: the seed system's task API
(L{txmr.driver.seed}), a live status page, its JSON (L{txmr.driver.status}),
and Prometheus metrics (L{txmr.driver.metrics}), behind the guard
(L{txmr.driver.guard}: the secret, or the Host rule without one).

AMP and HTTP share the driver's port: L{SniffingFactory} looks at the first
byte of each connection.  An AMP box starts with the zero byte of its first
key's length; an HTTP request starts with a letter.
"""

import json
from importlib import resources

from twisted.internet.interfaces import IProtocolNegotiationFactory
from twisted.internet.protocol import Factory, Protocol
from twisted.logger import Logger
from twisted.web import pages, resource, server
from zope.interface import implementer

from txmr.driver.guard import Guarded, redacted_log_line
from txmr.driver.metrics import MetricsPage
from txmr.driver.seed import SeedTaskAPI, SeedWorkers
from txmr.driver.status import attempt_state, job_state
from txmr.driver.strangers import Strangers

log = Logger()

HTTP_IDLE = 60.0


class Sniffer(Protocol):
    """
    Waits for a connection's first byte, then hands the connection to an
    AMP or an HTTP protocol, and relays to it from then on.
    """

    # A connection that says nothing is dropped after this long; and only
    # so many are kept waiting at once (L{SniffingFactory.silent}).
    FIRST_BYTE_WITHIN = 30.0

    def __init__(self, factory):
        self.factory = factory
        self.inner = None
        self._deadline = None

    def connectionMade(self):
        if self.factory.silent is not None:
            if not self.factory.silent.admit(self):
                self.transport.abortConnection()
                return
            self._deadline = self.factory.clock.callLater(
                self.FIRST_BYTE_WITHIN, self.transport.abortConnection)

    def abort(self):
        self.transport.abortConnection()

    def _stop_waiting(self):
        if self._deadline is not None and self._deadline.active():
            self._deadline.cancel()
        self._deadline = None
        if self.factory.silent is not None:
            self.factory.silent.known(self)

    def dataReceived(self, data):
        if self.inner is None:
            if not data:
                return
            self._stop_waiting()
            amp = data[:1] == b"\x00"
            build = self.factory.amp if amp else self.factory.http
            self.inner = build.buildProtocol(self.transport.getPeer())
            if self.inner is None:
                self.transport.loseConnection()
                return
            if amp:
                # AMP's bytes go straight to it from now on: its path is the
                # hot one.
                self.transport.protocol = self.inner
            elif self.factory.web_peers is not None and not self.factory.web_peers.admit(self):
                self.inner = None
                self.transport.abortConnection()
                return
            self.inner.makeConnection(self.transport)
            if amp:
                self.inner.dataReceived(data)
                return
        self._http_received(data)

    def _http_received(self, data):
        """
        Relay bytes to twisted.web, which raises on some malformed requests
        (a Content-Type that Python's email parser refuses, in Twisted 26):
        such a request is answered 400 and its connection closed, not left
        as an unhandled error.
        """
        try:
            self.inner.dataReceived(data)
        except Exception as e:
            log.warn("refused an HTTP request that twisted.web could not parse "
                     "({error}) from {peer}", error=repr(e)[:200], peer=self.transport.getPeer())
            self.transport.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n"
                                 b"Connection: close\r\n\r\n")
            self.transport.loseConnection()

    def connectionLost(self, reason):
        self._stop_waiting()
        if self.factory.web_peers is not None:
            self.factory.web_peers.known(self)
        if self.inner is not None:
            self.inner.connectionLost(reason)


@implementer(IProtocolNegotiationFactory)
class SniffingFactory(Factory):
    """
    Serves AMP and HTTP on one port.
    """

    def acceptableProtocols(self):
        """
        On a TLS port, the ALPN answer to browsers, curl and urllib, which
        offer it: Twisted's TLS server fails the handshake of a client that
        offers ALPN to a factory that names no protocol.  Workers offer
        none.
        """
        return [b"http/1.1"]

    # Connections that have sent nothing yet, kept at once.
    MAX_SILENT = 64
    SILENT_GRACE = 2.0
    # HTTP connections kept at once: the seed's workers open one per
    # request, a browser a few.
    MAX_WEB = 128
    WEB_GRACE = 2.0

    def __init__(self, amp_factory, http_factory, clock=None):
        self.amp = amp_factory
        self.http = http_factory
        self.clock = clock
        self.silent = None if clock is None else Strangers(
            clock, self.MAX_SILENT, self.SILENT_GRACE, "to send their first byte")
        # Open HTTP connections: each request must arrive whole in time
        # (L{BoundedRequest}), but one byte a minute keeps a connection
        # open; beyond this many, a new one closes the oldest.
        self.web_peers = None if clock is None else Strangers(
            clock, self.MAX_WEB, self.WEB_GRACE, "on HTTP")

    def buildProtocol(self, addr):
        return Sniffer(self)

    def doStart(self):
        self.amp.doStart()
        self.http.doStart()

    def doStop(self):
        self.amp.doStop()
        self.http.doStop()


class _JSONResource(resource.Resource):
    """
    A JSON answer computed from the job's view on each C{GET}, never cached.
    """

    isLeaf = True

    def __init__(self, view):
        super().__init__()
        self.view = view

    def render_GET(self, request):
        request.setHeader(b"cache-control", b"no-store")
        request.setHeader(b"content-type", b"application/json")
        return json.dumps(self.answer(request)).encode() + b"\n"


class JobAPI(_JSONResource):
    """
    C{GET /api/job}: the job's state as JSON, for the page and for tools.
    """

    def answer(self, request):
        return job_state(self.view())


class AttemptAPI(_JSONResource):
    """
    C{GET /api/attempt/ID}: one attempt, with its traceback if it failed
    (the page fetches it when a failure is clicked: tracebacks are too
    long to poll once a second).
    """

    def answer(self, request):
        try:
            (name,) = request.postpath
            found = attempt_state(self.view(), int(name))
        except ValueError:
            found = None
        if found is None:
            request.setResponseCode(404)
            return {"error": "no such attempt"}
        return found


class StatusPage(resource.Resource):
    """
    C{GET /}: one self-contained page that polls C{/api/job}.
    """

    isLeaf = True

    # The page runs its own inline script and talks only to its driver; no
    # other site may frame it, and it names no URL to others.
    POLICY = (b"default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
              b"connect-src 'self'; frame-ancestors 'none'")

    def render_GET(self, request):
        request.setHeader(b"content-type", b"text/html; charset=utf-8")
        request.setHeader(b"content-security-policy", self.POLICY)
        request.setHeader(b"x-frame-options", b"DENY")
        request.setHeader(b"referrer-policy", b"no-referrer")
        return resources.files("txmr.driver").joinpath("status.html").read_bytes()


class _Root(resource.Resource):
    """
    The site's root: an unknown path is a plain 404 (twisted.web's default
    page for it is deprecated).
    """

    def getChild(self, path, request):
        return pages.notFound()


class BoundedRequest(server.Request):
    """
    A request whose body is bounded, and which must arrive whole within a
    time of its first line.  twisted.web bounds neither (Twisted issue
    4898): without them, a client that knows no secret could fill the disk
    with one body (twisted.web keeps a large one in a temporary file), or
    hold a connection for ever by trickling its request a byte at a time,
    since every byte resets the idle timeout.  Every request of the API
    and the page is a few hundred bytes.
    """

    MAX_BODY = 64 * 1024
    ARRIVE_WITHIN = 30.0

    def __init__(self, channel, *args, **kwargs):
        super().__init__(channel, *args, **kwargs)
        self._body_bytes = 0
        self._dropped = False
        self._deadline = channel.callLater(self.ARRIVE_WITHIN, self._drop,
                                           "did not arrive whole in time")

    def gotLength(self, length):
        if self._dropped:
            return
        if length is not None and length > self.MAX_BODY:
            self._drop(f"announced a body of {length} bytes")
            return
        super().gotLength(length)

    def handleContentChunk(self, data):
        if self._dropped:
            return
        self._body_bytes += len(data)
        if self._body_bytes > self.MAX_BODY:
            self._drop(f"sent a body over {self.MAX_BODY} bytes")
            return
        super().handleContentChunk(data)

    def requestReceived(self, command, path, version):
        self._stop_waiting()
        if not self._dropped:
            super().requestReceived(command, path, version)

    def connectionLost(self, reason):
        self._stop_waiting()
        super().connectionLost(reason)

    def _stop_waiting(self):
        if self._deadline is not None and self._deadline.active():
            self._deadline.cancel()
        self._deadline = None

    def _drop(self, why):
        self._dropped = True
        self._stop_waiting()
        log.info("dropped an HTTP request from {peer} that {why}", peer=self.getClientAddress(),
                 why=why)
        self.channel.transport.abortConnection()


def site(coordinator):
    """
    The driver's web site, over its coordinator.
    """
    root = _Root()
    root.putChild(b"", StatusPage())
    seed_workers = SeedWorkers(coordinator, coordinator.config.http_lease)
    root.putChild(b"task", SeedTaskAPI(coordinator, seed_workers))
    api = _Root()
    api.putChild(b"job", JobAPI(coordinator.view))
    api.putChild(b"attempt", AttemptAPI(coordinator.view))
    root.putChild(b"api", api)
    root.putChild(b"metrics", MetricsPage(coordinator.view))
    # An idle HTTP connection is closed after a minute (twisted.web's
    # default is twelve hours): the seed's workers ask every few seconds,
    # and a browser opens a new connection when it needs one.
    web = server.Site(Guarded(coordinator.config, root), requestFactory=BoundedRequest,
                      logFormatter=redacted_log_line, timeout=HTTP_IDLE)
    web.displayTracebacks = False
    return web
