"""
A real driver and real workers in one process, in memory: the driver
service on a C{MemoryReactorClock}, each worker's C{ClientService}
connecting through an endpoint that joins it to the driver's port factory
with C{iosim}, task code run at once instead of in a thread.  The whole
protocol, heartbeats, commits and the ending run without a port or a sleep,
and the output is checked against the one-process answer.
"""

import os

from twisted.internet import defer
from twisted.internet.interfaces import IStreamClientEndpoint
from twisted.test import iosim
from twisted.trial import unittest
from zope.interface import implementer

from txmr.worker.service import WorkerService

from tests.memory import MemoryDriverMixin
from tests.oracle import read_output, reference


def at_once(f, *args):
    """
    The thread runner of these tests: run the task now.
    """
    return defer.maybeDeferred(f, *args)


@implementer(IStreamClientEndpoint)
class DriverEndpoint:
    """
    Connects to the in-memory driver's port.
    """

    def __init__(self, test):
        self.test = test

    def connect(self, factory):
        worker = factory.buildProtocol(None)
        driver = self.test.factory.buildProtocol(None)
        pump = iosim.connect(driver, iosim.makeFakeServer(driver), worker,
                             iosim.makeFakeClient(worker), greet=False)
        self.test.pumps.append(pump)
        return defer.succeed(worker)


class PairTests(MemoryDriverMixin, unittest.TestCase):
    timeout = 20
    maps = 4
    files = 6
    options = {"reducers": 3}

    def start_worker(self, name, run_in_thread=at_once):
        exits = []
        worker = WorkerService(DriverEndpoint(self), self.reactor, run_in_thread=run_in_thread,
                               give_up=30, host="memory", pid=len(self.workers) + 1,
                               on_exit=lambda code, message: exits.append((code, message)))
        worker.exits = exits
        worker.startService()
        self.addCleanup(self.stop_worker, worker)
        self.workers.append(worker)
        return worker

    def stop_worker(self, worker):
        if worker.running:
            worker.stopService()
            self.flush()
            self.reactor.advance(0)

    def run_until_over(self, seconds=60):
        """
        Deliver messages and let time pass until the driver exits.
        """
        for _ in range(int(seconds * 10)):
            self.flush()
            self.reactor.advance(0.1)
            if self.driver.done.called:
                self.flush()
                self.reactor.advance(0)
                return self.successResultOf(self.driver.done)
        self.fail(f"the driver did not exit within {seconds} seconds of its clock")

    def expected(self):
        return reference(self.config.job, self.config.input)

    def setUp(self):
        super().setUp()
        self.workers = []

    def test_two_workers_run_the_job(self):
        first = self.start_worker("a")
        second = self.start_worker("b")
        self.assertEqual(self.run_until_over(), 0)
        self.assertEqual(read_output(self.config.output, 3), self.expected())
        self.assertEqual([code for code, _ in first.exits + second.exits], [0, 0])
        done = [w.succeeded for w in self.scheduler.workers.values()]
        self.assertEqual(sum(done), 4 + 3)

    def test_a_worker_that_dies_mid_job_is_replaced_by_the_other(self):
        """
        A worker's connection drops while it holds a task: the driver gives
        the task to the other worker, and the output is still exact.
        """
        first = self.start_worker("a", run_in_thread=lambda f, *args: defer.Deferred())
        self.flush()
        held = [a for a in self.scheduler.attempts.values() if a.running]
        self.assertEqual(len(held), 1, "the first worker computes a task")
        # Its process dies: the connection closes, the worker never returns.
        first.stopService()
        self.flush()
        self.assertTrue(all(w.lost for w in self.scheduler.workers.values()))
        self.start_worker("b")
        self.assertEqual(self.run_until_over(), 0)
        self.assertEqual(read_output(self.config.output, 3), self.expected())
        self.assertFalse(any(name.startswith(".") for name in os.listdir(self.config.output)))

    def test_an_input_rewritten_under_the_job_fails_it_naming_the_file(self):
        """
        A file rewritten in place (same size, other words) after the job was
        planned: the maps that read it fail, and the job fails naming it,
        instead of exiting 0 with an answer to neither input.
        """
        path = os.path.join(self.config.input, "in-3.txt")
        with open(path, "r+") as f:
            text = f.read()
            f.seek(0)
            f.write(text.replace("the", "THE"))
        os.utime(path, ns=(1, 1))
        self.start_worker("a")
        self.start_worker("b")
        self.assertEqual(self.run_until_over(), 1)
        failure = self.scheduler.failure
        self.assertIn("InputChanged: input file 'in-3.txt' changed", failure.error)
        self.assertEqual(os.listdir(self.config.output), [])

    def test_a_worker_joining_after_the_end_is_told(self):
        self.start_worker("a")
        self.assertEqual(self.run_until_over(), 0)
        late = self.start_worker("late")
        self.flush()
        self.reactor.advance(0)
        self.assertEqual([code for code, _ in late.exits], [0])
