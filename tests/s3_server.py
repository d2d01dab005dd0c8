"""
A real S3 server for tests: moto's (C{moto[server]}), run as its own
process on a free port of 127.0.0.1 and stopped by the test's cleanup.

Daemons reach it as they would reach S3, through the standard environment
(L{S3Server.env}: C{AWS_ENDPOINT_URL} and test credentials); the test
itself reads and writes it through an s3fs filesystem of its own
(L{S3Server.filesystem}), so nothing in this process's environment changes.
"""

import os
import socket
import subprocess
import sys
import time
import urllib.request

from twisted.trial.unittest import SkipTest

CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
               "AWS_DEFAULT_REGION": "us-east-1"}


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class S3Server:
    """
    One moto S3 server process.

    @ivar endpoint: its URL, C{http://127.0.0.1:PORT}.
    """

    def __init__(self, testcase, log_dir):
        for module, package in (("moto.server", "moto[server]"), ("s3fs", "s3fs")):
            try:
                __import__(module)
            except ImportError:
                raise SkipTest(f"the S3 tests need {package} (pip install -e '.[test]')")
        self.process = None
        self.log_path = os.path.join(log_dir, "moto.log")
        testcase.addCleanup(self.stop)
        # Another process may take the free port before the server binds it:
        # try another.
        for _ in range(3):
            if self._start(_free_port()):
                return
        raise AssertionError(f"the S3 server did not start:\n{self.log()}")

    def _start(self, port):
        self.endpoint = f"http://127.0.0.1:{port}"
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return False
            try:
                with urllib.request.urlopen(self.endpoint + "/moto-api/", timeout=1):
                    return True
            except OSError:
                time.sleep(0.1)
        self.stop()
        return False

    def log(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def env(self, endpoint=True):
        """
        What a process needs to reach the server as S3: credentials, and
        (unless not C{endpoint}) C{AWS_ENDPOINT_URL}.
        """
        env = dict(CREDENTIALS)
        if endpoint:
            env["AWS_ENDPOINT_URL"] = self.endpoint
        return env

    def filesystem(self):
        """
        An s3fs filesystem on this server, for the test itself, with no
        listing cache (the test watches the output change).
        """
        import s3fs

        return s3fs.S3FileSystem(
            endpoint_url=self.endpoint, key=CREDENTIALS["AWS_ACCESS_KEY_ID"],
            secret=CREDENTIALS["AWS_SECRET_ACCESS_KEY"], skip_instance_cache=True,
            use_listings_cache=False)

    def stop(self):
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
