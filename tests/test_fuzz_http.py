"""
The HTTP front door under fuzzing: Hypothesis makes requests (well formed
or not: methods, paths, Host, worker-pid, tokens, cookies, lengths and
bodies), each sent to a real driver process through its real port.  No
request gets a server error or takes the driver down; then real workers
run the job, and its output is exact.
"""

import socket

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from twisted.trial import unittest

from tests.cluster import Cluster, counted, write_corpus
from tests.oracle import read_output

# Bounds: how many stories of requests, and how long one request may take.
EXAMPLES = 200
TIMEOUT = 5.0

SEGMENTS = st.sampled_from([
    "", "task", "mapper", "reducer", "TaskType.mapper", "TaskType.reducer", "sorter", "0", "1",
    "3", "4", "-1", "99999999999999999999", "status", "api", "job", "attempt", "metrics", "..",
    "%00", "%2e%2e", "%ff", "\u00e9", "a" * 300,
])
TEXT = st.text(max_size=40)


def header_value(draw):
    return draw(st.one_of(TEXT.map(lambda t: t.encode("utf-8")),
                          st.binary(max_size=40).filter(lambda b: b"\r" not in b
                                                        and b"\n" not in b)))


@st.composite
def requests(draw, port, pid):
    """
    One request's bytes: mostly HTTP that the seed API and the pages could
    receive, with a part or two of it wrong (its method, path, version,
    Host, length or headers); sometimes bytes at random (an AMP box or
    garbage).
    """
    if draw(st.integers(0, 9)) == 0:
        return draw(st.binary(max_size=300))
    broken = draw(st.sets(st.sampled_from(["method", "version", "host", "length", "headers"]),
                          max_size=2))
    if "method" in broken:
        method = draw(st.one_of(st.sampled_from([b"HEAD", b"DELETE", b"OPTIONS", b"get"]),
                                st.binary(min_size=1, max_size=8).filter(
                                    lambda b: not set(b) & set(b" \r\n"))))
    else:
        method = draw(st.sampled_from([b"PUT", b"GET", b"POST"]))
    path = "/" + "/".join(draw(st.one_of(
        st.sampled_from([["task"], ["task"], ["task", "mapper", "0", "status"], ["api", "job"],
                         ["task", "TaskType.mapper", "1", "status"], ["metrics"], [""],
                         ["task", "mapper", "2", "status"], ["api", "attempt", "1"],
                         ["task", "reducer", "0", "status"]]),
        st.lists(SEGMENTS, max_size=5))))
    query = draw(st.sampled_from(["", "", "?token=", "?token=x", "?token=%00&token=y", "?a=1&b",
                                  "?" + "x" * 50]))
    version = (draw(st.sampled_from([b"HTTP/2.0", b"HTTP/x", b"", b"HTTP/1.1 extra"]))
               if "version" in broken else draw(st.sampled_from([b"HTTP/1.1", b"HTTP/1.0"])))
    host = (draw(st.sampled_from(["evil.example", f"evil.example:{port}", "", "[::1",
                                  "a" * 300]))
            if "host" in broken else f"127.0.0.1:{port}")
    body = draw(st.one_of(
        st.sampled_from([b'{"status": 4}', b'{"status": 3}', b'{"status": "4"}', b"null",
                         b"[" * 2000, b'{"status": 4' + b" " * 5000 + b"}", b""]),
        st.binary(max_size=200)))
    headers = [b"Host: " + host.encode()]
    if pid is not None:
        headers.append(b"worker-pid: " + pid)
    if "headers" in broken:
        for name in draw(st.lists(st.sampled_from([b"Authorization", b"Cookie", b"Content-Type",
                                                   b"Transfer-Encoding", b"Expect", b"Host",
                                                   b"Bad Name", b""]),
                                  min_size=1, max_size=3)):
            headers.append(name + b": " + header_value(draw))
    n = len(body)
    if "length" in broken:
        n = draw(st.sampled_from([n + 100, max(0, n - 3), -5, "x", None]))
    if n is not None:
        headers.append(b"Content-Length: " + str(n).encode())
    return (method + b" " + path.encode("utf-8") + query.encode() + b" " + version + b"\r\n"
            + b"".join(h + b"\r\n" for h in headers) + b"\r\n" + body)


@st.composite
def stories(draw, port):
    """
    One to four requests in a row, most of them by one worker-pid: one
    asks for a task, then reports on it, for example.
    """
    pid = draw(st.one_of(st.sampled_from([b"1", b"2", b"42", b" ", b"x" * 1000, None]),
                         st.binary(max_size=20).filter(lambda b: not set(b) & set(b"\r\n"))))
    return draw(st.lists(requests(port, pid), min_size=1, max_size=4))


def send(port, data):
    """
    Send one request and read the answer until the driver closes the
    connection (the request is followed by our end of the stream, so a
    driver waiting for more bytes sees it end).

    @return: what the driver answered, maybe nothing.
    """
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as s:
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        chunks = []
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                chunks.append(chunk)
        except (ConnectionResetError, socket.timeout):
            pass
    return b"".join(chunks)


class FrontDoorFuzzTests(unittest.TestCase):
    def test_fuzzed_requests_then_an_exact_job(self):
        cluster = Cluster(self, maps=4, reduces=2)
        write_corpus(cluster.input, files=8)
        # Fuzzed requests may take tasks (their lease runs out in 2 s), and
        # report them finished without their files (the attempt fails):
        # enough attempts that those failures do not fail the job.
        driver = cluster.start_driver("--http-lease", "2", "--max-attempts", "1000")
        port = int(cluster.address.rsplit("port=", 1)[1])
        answers = {}

        @settings(max_examples=EXAMPLES, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        # Twisted 26 raises on a Content-Type with a vertical tab (found by
        # this test): the driver answers 400.
        @example([b"POST /task HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: a\x0bb\r\n"
                  b"Content-Length: 2\r\n\r\n{}"])
        # A foreign Host, always among the stories: whether the random ones
        # hold one that reaches the Host rule is chance (the check below
        # failed now and then without it).
        @example([b"GET /api/job HTTP/1.1\r\nHost: evil.example\r\n\r\n"])
        @given(stories(port))
        def one(story):
            for data in story:
                answer = send(port, data)
                self.assertIsNone(driver.poll(), f"the driver died on {data!r}:\n{cluster.log()}")
                if answer.startswith(b"HTTP/1."):
                    code = int(answer.split(b" ", 2)[1])
                    answers[code] = answers.get(code, 0) + 1
                    # 501: twisted.web's answer to a method a page does not know.
                    self.assertTrue(code < 500 or code == 501, f"{data!r} got {answer[:300]!r}")

        one()
        self.assertIsNone(driver.poll(), cluster.log())
        # The fuzzing reached the API: some answers were served, some refused.
        self.assertTrue({200, 400} <= set(answers), answers)
        self.assertIn(403, answers, "some Host headers were refused")
        self.assertNotIn("Traceback", cluster.log(), "no request raised in the driver")
        self.assertIn("refused an HTTP request that twisted.web could not parse", cluster.log())
        cluster.start_worker("worker-1")
        cluster.start_worker("worker-2")
        self.assertEqual(cluster.wait(timeout=120), 0, cluster.log())
        self.assertEqual(read_output(cluster.output, 2), counted(cluster.input))
