"""
Who may use the driver's web site: the secret, the cookie a browser trades
it for, the Host rule of a driver without a secret, and an access log that
never shows the secret.

With a secret, every request carries it: C{Authorization: Bearer SECRET},
C{?token=SECRET}, or the cookie.  A browser opens the status page with the
URL C{txmr run} prints (C{/?token=SECRET}); the page answers with the cookie
(HttpOnly, SameSite=Strict) and a redirect to the same URL without the
token, so that the secret leaves the address bar and the history, and the
page's own requests carry only the cookie.

Without a secret, the site trusts whoever reaches its port; a web page in
a browser on that machine must not reach it by DNS rebinding (a name of
the attacker's, that first pointed to the attacker's server, now points to
127.0.0.1: the browser then sends the attacker's name as C{Host}, and sees
the driver as the attacker's own site).  Such a request is refused with
403.  Rebinding needs a DNS name, so any IP address is accepted as C{Host},
as are loopback names (C{localhost}, C{*.localhost}) and the machine's own
host name (what C{hostname} prints): what a user or a seed worker on
another machine types to reach the driver.  Another name (an alias) needs
an IP address instead, or a driver with a secret.
"""

import hashlib
import hmac
import ipaddress
import re
import socket

from twisted.internet.address import IPv4Address, IPv6Address
from twisted.web import http, pages, resource

# The cookie's name; a driver on a TCP port adds its port, as a browser
# keeps one cookie jar per host for all its ports.
COOKIE = "txmr_token"
_TOKEN = re.compile(rb"([?&]token=)[^&\s\"]*")


def cookie_value(secret):
    """
    What the cookie holds: derived from the secret, so that the cookie
    (which a browser keeps) is not the secret that a worker gives.
    """
    return hmac.new(secret.encode("utf-8"), b"txmr status page cookie",
                    hashlib.sha256).hexdigest()


def cookie_name(request):
    local = request.getHost()
    port = getattr(local, "port", None)
    return f"{COOKIE}_{port}" if port else COOKIE


def without_token(uri):
    """
    The URI with its C{token} query arguments removed.
    """
    path, _, query = uri.partition(b"?")
    kept = [arg for arg in query.split(b"&") if arg and not arg.startswith(b"token=")]
    return path + (b"?" + b"&".join(kept) if kept else b"")


def host_name(header):
    """
    The host name of a C{Host} header, lower case, without its port (an
    IPv6 address without its brackets).
    """
    host = header.decode("ascii", "replace").strip().lower()
    if host.startswith("["):
        inner, bracket, _ = host[1:].partition("]")
        return inner if bracket else host
    if host.count(":") == 1:
        host = host.partition(":")[0]
    return host.rstrip(".")


def local_names():
    """
    The machine's own names, accepted as C{Host} (no DNS lookup: a broken
    resolver must not stall the driver's start).
    """
    name = socket.gethostname().lower()
    return {"localhost", name} if name else {"localhost"}


def host_refusal(request, names):
    """
    Why a request to a driver without a secret is refused (see the module's
    docstring), or L{None}.
    """
    if not isinstance(request.getHost(), (IPv4Address, IPv6Address)):
        return None  # a UNIX socket: no browser reaches it by a name
    header = request.getHeader(b"host")
    if header is None:
        return None  # HTTP/1.0 without Host: no browser sends that
    name = host_name(header)
    try:
        ipaddress.ip_address(name)
        return None
    except ValueError:
        pass
    if name in names or name.endswith(".localhost"):
        return None
    return (f"this driver has no secret, so it answers only requests that name it by an IP "
            f"address, localhost or {socket.gethostname()!r} (Host: {name!r} could be a DNS "
            f"rebinding attack from a web page); use one of those, or give the driver a "
            f"--secret-file")


class _TradeToken(resource.Resource):
    """
    The status page opened with C{?token=}: the cookie, and a redirect to
    the same URL without the token.
    """

    isLeaf = True

    def __init__(self, secret):
        super().__init__()
        self.secret = secret

    def render(self, request):
        request.addCookie(cookie_name(request).encode(), cookie_value(self.secret).encode(),
                          path=b"/", httpOnly=True, secure=request.isSecure(),
                          sameSite="strict")
        request.setHeader(b"cache-control", b"no-store")
        request.setHeader(b"referrer-policy", b"no-referrer")
        request.redirect(without_token(request.uri))
        request.setResponseCode(http.SEE_OTHER)
        return b""


class Guarded(resource.Resource):
    """
    The site's root resource behind the guard: the secret (or its cookie)
    with one, the Host rule without.
    """

    def __init__(self, config, root, names=None):
        super().__init__()
        self.config = config
        self.root = root
        self.names = local_names() if names is None else names

    def getChildWithDefault(self, name, request):
        secret = self.config.secret
        if not secret:
            refusal = host_refusal(request, self.names)
            if refusal:
                return pages.errorPage(403, "Forbidden", refusal)
        else:
            header = request.getHeader(b"authorization") or b""
            bearer = header[7:] if header.lower().startswith(b"bearer ") else None
            query = (request.args.get(b"token") or [None])[0]
            if bearer is None and query is not None and self._authorizes(query):
                if name == b"" and not request.postpath and request.method in (b"GET", b"HEAD"):
                    return _TradeToken(secret)
            elif not self._authorizes(bearer or query) and not self._cookie_opens(request):
                return pages.errorPage(
                    401, "Unauthorized", "this driver needs its secret: open the status page "
                    "with ?token=SECRET (the URL txmr run prints), or send Authorization: "
                    "Bearer SECRET")
        request.prepath.pop()
        request.postpath.insert(0, name)
        return resource.getChildForRequest(self.root, request)

    def _authorizes(self, token):
        return self.config.authorizes(token.decode("utf-8", "replace") if token else None)

    def _cookie_opens(self, request):
        value = request.getCookie(cookie_name(request).encode())
        return value is not None and hmac.compare_digest(
            value, cookie_value(self.config.secret).encode())


def redacted_log_line(timestamp, request):
    """
    The access log's line for a request, with any C{?token=} secret
    replaced, in its URI and in its Referer (a page opened with the token
    would name it in the requests it makes).
    """
    uri = request.uri
    headers = request.requestHeaders
    referers = headers.getRawHeaders(b"referer")
    request.uri = _TOKEN.sub(rb"\1REDACTED", uri)
    if referers:
        headers.setRawHeaders(b"referer", [_TOKEN.sub(rb"\1REDACTED", r) for r in referers])
    try:
        return http.combinedLogFormatter(timestamp, request)
    finally:
        request.uri = uri
        if referers:
            headers.setRawHeaders(b"referer", referers)
