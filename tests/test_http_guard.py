"""
Who may use the driver's web site, over a real socket: the secret, the
cookie the status page trades it for, and the Host rule of a driver
without a secret (no DNS rebinding from a browser).
"""

import json
import os
import socket
import time

from twisted.internet import defer, reactor, threads
from twisted.internet.task import deferLater
from twisted.trial import unittest
from twisted.web.client import Agent
from twisted.web.http_headers import Headers

from tests.test_web import DriverFixture, HTTPFixture, chromium, read_body
from txmr.driver.guard import cookie_value
from txmr.driver.web import BoundedRequest, SniffingFactory


def exchange(port, request, timeout=10):
    """
    Send raw bytes to the driver's port (in a thread), and return all it
    answers until it closes the connection.
    """
    def blocking():
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(request)
            chunks = []
            while True:
                data = s.recv(65536)
                if not data:
                    return b"".join(chunks)
                chunks.append(data)

    return threads.deferToThread(blocking)


def status_and_headers(response):
    head, _, body = response.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    code = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        headers.setdefault(name.strip().lower().decode(), []).append(value.strip().decode())
    return code, headers, body


class SecretTests(HTTPFixture, unittest.TestCase):
    """
    A driver with a secret opens to no worker and no HTTP client without it.
    """

    maps = 1
    files = 1

    def setUp(self):
        DriverFixture.setUp(self)
        self.driver.config.secret = "s3cret"
        self.port = self.driver.port.getHost().port

    def get(self, path, *headers):
        lines = [f"GET {path} HTTP/1.1", f"Host: 127.0.0.1:{self.port}", "Connection: close",
                 *headers]
        return exchange(self.port, ("\r\n".join(lines) + "\r\n\r\n").encode()).addCallback(
            status_and_headers)

    @defer.inlineCallbacks
    def test_http_needs_the_secret(self):
        for path in ("/task", "/api/job", "/metrics", "/", "/api/attempt/1"):
            code, _ = yield self.http(b"PUT" if path == "/task" else b"GET", path)
            self.assertEqual(code, 401, path)
        code, _ = yield self.http(b"GET", "/api/job?token=s3cret")
        self.assertEqual(code, 200)
        code, _ = yield self.http(b"GET", "/api/job?token=wrong")
        self.assertEqual(code, 401)
        headers = Headers({b"worker-pid": [b"1"], b"authorization": [b"Bearer s3cret"]})
        response = yield Agent(reactor).request(b"PUT", self.url("/task"), headers)
        body = yield read_body(response)
        self.assertEqual(json.loads(body)["type"], "mapper")

    @defer.inlineCallbacks
    def test_the_access_log_never_shows_the_secret(self):
        """
        Over a real socket, as a browser polls: the request line and the
        Referer carry the token; the access log shows neither.
        """
        from tests.test_auth import collect_log

        log = collect_log(self)
        for _ in range(3):
            code, _, _ = yield self.get("/api/job?token=s3cret",
                                        f"Referer: http://127.0.0.1:{self.port}/?token=s3cret")
            self.assertEqual(code, 200)
        yield deferLater(reactor, 0.1, lambda: None)
        access = [line for line in log if '"GET /api/job' in line]
        self.assertEqual(len(access), 3, log)
        for line in access:
            self.assertNotIn("s3cret", line)
            self.assertIn("token=REDACTED", line)

    @defer.inlineCallbacks
    def test_page_trades_the_token_for_a_cookie(self):
        """
        The status page opened with ?token= answers with an HttpOnly,
        SameSite=Strict cookie and a redirect to the URL without the token;
        the cookie then opens the page and its API, and nothing else does.
        """
        code, headers, body = yield self.get("/?token=s3cret&x=1")
        self.assertEqual(code, 303)
        self.assertEqual(headers["location"], ["/?x=1"])
        (cookie,) = headers["set-cookie"]
        name_value, *attributes = [part.strip() for part in cookie.split(";")]
        name = f"txmr_token_{self.port}"
        self.assertEqual(name_value, f"{name}={cookie_value('s3cret')}")
        self.assertNotIn("s3cret", cookie)
        self.assertEqual({a.lower() for a in attributes},
                         {"path=/", "httponly", "samesite=strict"})
        self.assertNotIn(b"s3cret", body)
        for path in ("/", "/api/job", "/api/attempt/1", "/metrics"):
            code, _, _ = yield self.get(path, f"Cookie: {name_value}")
            self.assertIn(code, (200, 404), path)
        code, headers, _ = yield self.get("/", f"Cookie: {name_value}")
        self.assertIn("frame-ancestors 'none'", headers["content-security-policy"][0])
        self.assertEqual(headers["referrer-policy"], ["no-referrer"])
        code, _, body = yield self.get("/api/job", f"Cookie: {name_value}")
        self.assertEqual((code, json.loads(body)["state"]), (200, "running"))
        for wrong in (f"{name}=s3cret", f"{name}={cookie_value('other')}",
                      f"txmr_token_1={cookie_value('s3cret')}"):
            code, _, _ = yield self.get("/api/job", f"Cookie: {wrong}")
            self.assertEqual(code, 401, wrong)
        # A wrong token is no trade.
        code, headers, _ = yield self.get("/?token=wrong")
        self.assertEqual((code, headers.get("set-cookie")), (401, None))

    @defer.inlineCallbacks
    def test_page_with_the_token_in_chromium(self):
        """
        A browser opened on the URL txmr run prints (with ?token=) shows the
        job: its requests carry the cookie alone.
        """
        browser = chromium()
        if browser is None:
            raise unittest.SkipTest("no Chromium installed (Debian: apt-get install chromium)")
        from twisted.internet import utils

        profile = os.path.abspath(self.mktemp())
        out, err, code = yield utils.getProcessOutputAndValue(browser, [
            "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            f"--user-data-dir={profile}", "--virtual-time-budget=3000", "--dump-dom",
            self.url("/?token=s3cret").decode()], env=dict(os.environ))
        dom = out.decode("utf-8", "replace")
        self.assertEqual(code, 0, err)
        self.assertIn('class="state running"', dom)
        self.assertIn("0 / 1 done, 0 running", dom)


class HostTests(HTTPFixture, unittest.TestCase):
    """
    A driver without a secret answers only requests that name it by an IP
    address, a loopback name or the machine's host name.
    """

    maps = 1
    files = 1

    @defer.inlineCallbacks
    def request(self, host, path="/api/job", method="GET", version="HTTP/1.1"):
        port = self.driver.port.getHost().port
        lines = [f"{method} {path} {version}", "Connection: close", "worker-pid: 7"]
        if host is not None:
            lines.append(f"Host: {host}")
        answer = yield exchange(port, ("\r\n".join(lines) + "\r\n\r\n").encode())
        code, _, body = status_and_headers(answer)
        return code, body

    @defer.inlineCallbacks
    def test_rebinding_names_are_refused(self):
        port = self.driver.port.getHost().port
        for host in (f"evil.example:{port}", "evil.example", f"localhost.evil.example:{port}",
                     f"127.0.0.1.nip.io:{port}", "", "[::1"):
            for path, method in (("/", "GET"), ("/api/job", "GET"), ("/task", "PUT"),
                                 ("/metrics", "GET")):
                code, body = yield self.request(host, path, method)
                self.assertEqual(code, 403, (host, path))
                self.assertIn(b"DNS rebinding", body)
        self.assertEqual(self.coordinator.scheduler.workers, {}, "no task went out")

    @defer.inlineCallbacks
    def test_addresses_and_own_names_are_served(self):
        port = self.driver.port.getHost().port
        for host in (f"127.0.0.1:{port}", "127.0.0.1", f"localhost:{port}", "LOCALHOST.",
                     f"status.localhost:{port}", f"[::1]:{port}", f"10.1.2.3:{port}",
                     f"{socket.gethostname()}:{port}"):
            code, body = yield self.request(host)
            self.assertEqual(code, 200, host)
            self.assertEqual(json.loads(body)["state"], "running")
        # An HTTP/1.0 client without Host (not a browser) is served.
        code, _ = yield self.request(None, version="HTTP/1.0")
        self.assertEqual(code, 200)

    @defer.inlineCallbacks
    def test_a_secret_replaces_the_host_rule(self):
        self.driver.config.secret = "s3cret"
        port = self.driver.port.getHost().port
        answer = yield exchange(port, (
            f"GET /api/job HTTP/1.1\r\nHost: driver.example:{port}\r\n"
            f"Authorization: Bearer s3cret\r\nConnection: close\r\n\r\n").encode())
        self.assertEqual(status_and_headers(answer)[0], 200)


class BoundedRequestTests(HTTPFixture, unittest.TestCase):
    """
    A request's body is bounded, and a request must arrive whole in time:
    twisted.web bounds neither.
    """

    maps = 1
    files = 1

    def setUp(self):
        DriverFixture.setUp(self)
        self.port = self.driver.port.getHost().port

    def send(self, head, body=b"", timeout=10):
        """
        Send a request; what the driver answers before it closes the
        connection (b"" if it drops it, as a reset).
        """
        def blocking():
            chunks = []
            with socket.create_connection(("127.0.0.1", self.port), timeout=timeout) as s:
                try:
                    s.sendall(head.encode() + body)
                    while True:
                        data = s.recv(65536)
                        if not data:
                            break
                        chunks.append(data)
                except (ConnectionResetError, BrokenPipeError):
                    pass
            return b"".join(chunks)

        return threads.deferToThread(blocking)

    @defer.inlineCallbacks
    def test_a_body_announced_too_large_is_dropped_at_once(self):
        answer = yield self.send(f"POST /task/mapper/0/status HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                 f"worker-pid: 1\r\nContent-Length: {10 ** 10}\r\n\r\n",
                                 b"x" * 1000)
        self.assertEqual(answer, b"", "dropped without an answer")

    @defer.inlineCallbacks
    def test_a_chunked_body_too_large_is_dropped(self):
        chunk = b"%x\r\n%s\r\n" % (32 * 1024, b"x" * 32 * 1024)
        answer = yield self.send("POST /task/mapper/0/status HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                 "worker-pid: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
                                 chunk * 3 + b"0\r\n\r\n")
        self.assertEqual(answer, b"")

    @defer.inlineCallbacks
    def test_a_request_trickled_too_slowly_is_dropped(self):
        self.patch(BoundedRequest, "ARRIVE_WITHIN", 1.0)

        def trickle():
            with socket.create_connection(("127.0.0.1", self.port), timeout=10) as s:
                s.sendall(b"GET /api/job HTTP/1.1\r\n")
                for _ in range(30):
                    try:
                        s.sendall(b"X-Slow: 1\r\n")
                    except OSError:
                        return "dropped"
                    time.sleep(0.2)
                return "kept"

        result = yield threads.deferToThread(trickle)
        self.assertEqual(result, "dropped")

    @defer.inlineCallbacks
    def test_small_requests_are_served(self):
        answer = yield self.send("GET /api/job HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                 "Connection: close\r\n\r\n")
        self.assertEqual(status_and_headers(answer)[0], 200)


class WebPeersTests(HTTPFixture, unittest.TestCase):
    """
    HTTP connections are bounded in number: one byte a minute would keep
    each open, so without a bound a stranger could hold every socket.
    """

    maps = 1
    files = 1

    def setUp(self):
        DriverFixture.setUp(self)
        self.port = self.driver.port.getHost().port

    @defer.inlineCallbacks
    def test_many_trickling_connections_do_not_keep_a_client_out(self):
        self.patch(SniffingFactory, "MAX_WEB", 8)
        self.patch(SniffingFactory, "WEB_GRACE", 0.5)
        factory = self.driver.listener.factory
        factory.web_peers.limit = 8
        factory.web_peers.grace = 0.5
        held = []
        for _ in range(20):
            s = socket.create_connection(("127.0.0.1", self.port))
            s.sendall(b"GET /api/job HTTP/1.1\r\n")
            held.append(s)
        self.addCleanup(lambda: [s.close() for s in held])
        yield deferLater(reactor, 1.0, lambda: None)
        self.assertLessEqual(len(factory.web_peers), 8)
        code, _, _ = yield self.get_job()
        self.assertEqual(code, 200, "a newcomer is served: the oldest idle one made room")

    def get_job(self):
        return exchange(self.port, b"GET /api/job HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                   b"Connection: close\r\n\r\n").addCallback(status_and_headers)
