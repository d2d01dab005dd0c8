"""
The driver's web site, served by twisted.web: the seed system's task API
(L{txmr.driver.seed}), a live status page, its JSON (L{txmr.driver.status}),
and Prometheus metrics (L{txmr.driver.metrics}), behind the secret.

AMP and HTTP share the driver's port: L{SniffingFactory} looks at the first
byte of each connection.  An AMP box starts with the zero byte of its first
key's length; an HTTP request starts with a letter.
"""

import json
import re
from importlib import resources

from twisted.internet.protocol import Factory, Protocol
from twisted.web import http, pages, resource, server

from txmr.driver.metrics import MetricsPage
from txmr.driver.seed import SeedTaskAPI, SeedWorkers
from txmr.driver.status import job_state


class Sniffer(Protocol):
    """
    Waits for a connection's first byte, then hands the connection to an
    AMP or an HTTP protocol, and relays to it from then on.
    """

    # A connection that says nothing is dropped after this long.
    FIRST_BYTE_WITHIN = 30.0

    def __init__(self, factory):
        self.factory = factory
        self.inner = None
        self._deadline = None

    def connectionMade(self):
        if self.factory.clock is not None:
            self._deadline = self.factory.clock.callLater(
                self.FIRST_BYTE_WITHIN, self.transport.abortConnection)

    def _stop_waiting(self):
        if self._deadline is not None and self._deadline.active():
            self._deadline.cancel()
        self._deadline = None

    def dataReceived(self, data):
        if self.inner is None:
            if not data:
                return
            self._stop_waiting()
            build = self.factory.amp if data[:1] == b"\x00" else self.factory.http
            self.inner = build.buildProtocol(self.transport.getPeer())
            if self.inner is None:
                self.transport.loseConnection()
                return
            self.transport.protocol = self.inner
            self.inner.makeConnection(self.transport)
        self.inner.dataReceived(data)

    def connectionLost(self, reason):
        self._stop_waiting()
        if self.inner is not None:
            self.inner.connectionLost(reason)


class SniffingFactory(Factory):
    """
    Serves AMP and HTTP on one port.
    """

    def __init__(self, amp_factory, http_factory, clock=None):
        self.amp = amp_factory
        self.http = http_factory
        self.clock = clock

    def buildProtocol(self, addr):
        return Sniffer(self)

    def doStart(self):
        self.amp.doStart()
        self.http.doStart()

    def doStop(self):
        self.amp.doStop()
        self.http.doStop()


class JobAPI(resource.Resource):
    """
    C{GET /api/job}: the job's state as JSON, for the page and for tools.
    """

    isLeaf = True

    def __init__(self, view):
        super().__init__()
        self.view = view

    def render_GET(self, request):
        request.setHeader(b"cache-control", b"no-store")
        request.setHeader(b"content-type", b"application/json")
        return json.dumps(job_state(self.view())).encode() + b"\n"


class StatusPage(resource.Resource):
    """
    C{GET /}: one self-contained page that polls C{/api/job}.
    """

    isLeaf = True

    def render_GET(self, request):
        request.setHeader(b"content-type", b"text/html; charset=utf-8")
        return resources.files("txmr.driver").joinpath("status.html").read_bytes()


class Guarded(resource.Resource):
    """
    With a driver secret, every request must carry it: C{Authorization:
    Bearer SECRET}, or C{?token=SECRET} (for a browser on the status page).
    """

    def __init__(self, config, root):
        super().__init__()
        self.config = config
        self.root = root

    def getChildWithDefault(self, name, request):
        if self.config.secret:
            header = request.getHeader(b"authorization") or b""
            token = header[7:] if header.lower().startswith(b"bearer ") else None
            token = token or (request.args.get(b"token") or [None])[0]
            if not self.config.authorizes(token.decode("utf-8", "replace") if token else None):
                return pages.errorPage(401, "Unauthorized",
                                       "this driver needs its secret: "
                                       "Authorization: Bearer SECRET, or ?token=SECRET")
        request.prepath.pop()
        request.postpath.insert(0, name)
        return resource.getChildForRequest(self.root, request)


_TOKEN = re.compile(rb"([?&]token=)[^&\s\"]*")


def redacted_log_line(timestamp, request):
    """
    The access log's line for a request, with any C{?token=} secret
    replaced: a status page polls with its token once a second.
    """
    uri = request.uri
    request.uri = _TOKEN.sub(rb"\1REDACTED", uri)
    try:
        return http.combinedLogFormatter(timestamp, request)
    finally:
        request.uri = uri


class _Root(resource.Resource):
    """
    The site's root: an unknown path is a plain 404 (twisted.web's default
    page for it is deprecated).
    """

    def getChild(self, path, request):
        return pages.notFound()


def site(coordinator):
    """
    The driver's web site, over its coordinator.
    """
    root = _Root()
    root.putChild(b"", StatusPage())
    seed_workers = SeedWorkers(coordinator, coordinator.config.http_lease)
    root.putChild(b"task", SeedTaskAPI(coordinator, seed_workers))
    api = resource.Resource()
    api.putChild(b"job", JobAPI(coordinator.view))
    root.putChild(b"api", api)
    root.putChild(b"metrics", MetricsPage(coordinator.view))
    web = server.Site(Guarded(coordinator.config, root), logFormatter=redacted_log_line)
    web.displayTracebacks = False
    return web
