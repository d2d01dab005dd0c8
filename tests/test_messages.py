"""
What txmr says: the driver's line for a lost worker, and no deprecation
warning from the project's own code.
"""

import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request

from twisted.trial import unittest

from txmr import protocol
from txmr.driver.seed import SeedWorkers

from tests.cluster import Cluster, wait_for, write_corpus
from tests.memory import MemoryDriverMixin, Silent
from tests.test_auth import collect_log


class LostWorkerLineTests(MemoryDriverMixin, unittest.TestCase):
    maps = 2
    files = 2
    options = {"http_lease": 60, "heartbeat": 1.0, "heartbeat_timeout": 5.0}

    def test_an_amp_worker_silent_too_long(self):
        log = collect_log(self)
        client = self.connect(kind=Silent)
        answer = self.successResultOf(self.call(client, protocol.GetTask))
        self.assertEqual(answer["action"], "run")
        self.advance(7)
        line = [entry for entry in log if entry.startswith("worker ") and " lost (" in entry]
        self.assertEqual(len(line), 1, log)
        self.assertRegex(line[0], r"lost \(silent for more than 5s\); tasks given back: "
                                  r"map task \d")

    def test_an_http_worker_whose_lease_ran_out(self):
        log = collect_log(self)
        seed = SeedWorkers(self.coordinator, lease=60)
        attempt = seed.assign("4242")
        self.advance(61)
        line = [entry for entry in log if entry.startswith("worker ") and " lost (" in entry]
        self.assertEqual(len(line), 1, log)
        self.assertIn("lost (its lease of 60s ran out); tasks given back: "
                      f"{attempt.task}", line[0])


class WhatWasLostTests(unittest.SynchronousTestCase):
    def test_the_line_says_what_the_loss_did(self):
        """
        Without a shared directory, a lost worker takes the map output it
        held, and a task of which a backup runs elsewhere is not "given
        back": the line said "tasks given back: none" before the lines of
        lost output, and named a backed-up task as given back.
        """
        from txmr.core.scheduler import Scheduler
        from txmr.driver.coordinator import what_was_lost

        s = Scheduler([[["a", 0, 10]], [["b", 0, 10]], [["c", 0, 10]]], 1,
                      shared_nothing=True, speculate_after=3.0)
        s.register("w1", 0)
        first = s.assign("w1", 0)
        s.committed(s.report_done("w1", first.task.kind, first.task.index, first.id, {}), 1)
        slow = s.assign("w1", 1)
        s.register("w2", 1)
        other = s.assign("w2", 1)
        s.committed(s.report_done("w2", other.task.kind, other.task.index, other.id, {}), 2)
        backup = s.assign("w2", 10)
        self.assertEqual(backup.task, slow.task, "a backup of the slow map on w2")
        self.assertEqual(what_was_lost(s.lose("w1", 11)),
                         f"tasks given back: none; still running elsewhere: {slow.task}; "
                         f"map output it held, to run again: {first.task}")
        s.register("w3", 11)
        again = s.assign("w3", 11)
        self.assertEqual(what_was_lost(s.lose("w3", 12)), f"tasks given back: {again.task}")


class DeprecationTests(unittest.TestCase):
    def test_no_deprecation_warning_from_the_project(self):
        """
        Every module of the project imports, and a job runs inline, with
        deprecation warnings turned into errors: the test run's warnings
        are not the project's own.
        """
        code = (
            "import pkgutil, importlib, txmr\n"
            "for m in pkgutil.walk_packages(txmr.__path__, 'txmr.'):\n"
            "    if not m.name.startswith('txmr.spark'):\n"
            "        importlib.import_module(m.name)\n"
            "from txmr.cli import main\n"
            "import sys\n"
            "sys.argv = ['txmr', 'run', '--inline', '-i', sys.argv[1], '-o', sys.argv[2]]\n"
            "main()\n")
        examples = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "examples", "input")
        result = subprocess.run(
            [sys.executable, "-W", "error::DeprecationWarning",
             "-W", "error::PendingDeprecationWarning", "-c", code, examples, self.mktemp()],
            capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
        self.assertEqual(result.returncode, 0, result.stderr)


class DriverDeprecationTests(unittest.TestCase):
    def test_a_driver_and_its_pages_warn_of_nothing_deprecated(self):
        """
        A driver with a secret serves its pages, its API, its metrics, a
        refusal, a missing page and a bad seed request, and a worker runs,
        with every deprecation warning shown: none comes from the project.
        (Importing the modules, above, cannot see the warnings of code that
        runs only when a request comes.)
        """
        base = os.path.abspath(self.mktemp())
        os.makedirs(base)
        secret = os.path.join(base, "secret")
        with open(secret, "w") as f:
            f.write("the-secret-of-this-test\n")
        cluster = Cluster(self, job="jobs/slow.py", maps=2)
        write_corpus(cluster.input)
        cluster.env.update(TXMR_SLOW_SECONDS="30", PYTHONWARNINGS="always::DeprecationWarning")
        cluster.start_driver("--secret-file", secret)
        cluster.start_worker("w", None, "--secret-file", secret)
        wait_for(lambda: cluster.scratch_files("running-map"), 60, "a map to start")
        url = "http://127.0.0.1:" + cluster.address.rsplit("port=", 1)[1]
        token = {"Authorization": "Bearer the-secret-of-this-test"}
        for path, headers, method, code in [("/", token, "GET", 200),
                                            ("/api/job", token, "GET", 200),
                                            ("/metrics", token, "GET", 200),
                                            ("/api/attempt/999", token, "GET", 404),
                                            ("/no/such/page", token, "GET", 404),
                                            ("/", {}, "GET", 401),
                                            ("/task", dict(token), "PUT", 400)]:
            request = urllib.request.Request(url + path, headers=headers, method=method)
            try:
                with urllib.request.urlopen(request, timeout=10) as response:
                    got = response.status
            except urllib.error.HTTPError as e:
                got = e.code
            self.assertEqual(got, code, path)
        for name in ("w", "driver"):
            cluster.kill(name, signal.SIGTERM)
            cluster.wait(name, 60)
        for name in ("driver", "w"):
            log = cluster.log(name)
            ours = [line for line in log.splitlines()
                    if "Warning" in line and "/txmr/" in line]
            self.assertEqual(ours, [], name)


class ReconnectLineTests(unittest.TestCase):
    def test_each_attempt_to_reach_the_driver_says_what_it_waits_for(self):
        """
        A worker whose driver is not there yet logs one line per attempt,
        naming the driver's address (not an endpoint object's), and exits
        after --give-up saying so.
        """
        from txmr.local import twistd

        result = subprocess.run(
            twistd() + ["--pidfile=", "-n", "txmr-worker", "--driver", "127.0.0.1:1",
                        "--give-up", "1.5"],
            capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
        self.assertEqual(result.returncode, 1, result.stdout + result.stderr)
        lines = (result.stdout + result.stderr).splitlines()
        retries = [line for line in lines if "Scheduling retry" in line]
        self.assertGreater(len(retries), 1)
        for line in retries:
            self.assertIn("to connect the driver at tcp:host=127.0.0.1:port=1 in ", line)
        self.assertFalse([line for line in lines if "object at 0x" in line], lines)
        self.assertIn("cannot reach the driver at tcp:host=127.0.0.1:port=1 for 1.5s",
                      result.stdout + result.stderr)


class HostFieldTests(MemoryDriverMixin, unittest.TestCase):
    maps = 1
    files = 1

    def test_a_hello_host_of_junk_is_cut_in_the_log_and_the_worker_list(self):
        log = collect_log(self)
        client = self.connect(hello=False)
        answer = self.successResultOf(self.call(
            client, protocol.Hello, version=protocol.PROTOCOL_VERSION, host="x" * 60_000,
            pid=1))
        worker = self.scheduler.workers[answer["worker"]]
        self.assertEqual(worker.info.host, "x" * 253)
        joined = [line for line in log if " joined from " in line]
        self.assertEqual(len(joined), 1)
        self.assertLess(len(joined[0]), 400)
