"""
The end of a job as a state machine (L{txmr.driver.ending.Ending}), told
as stories, with fake peers and a fake clock.
"""

import os

from twisted.internet import defer, task
from twisted.trial import unittest

from txmr.driver.ending import Ending, Phase

from tests.memory import MemoryDriverMixin


class Peer:
    """
    A worker that hears C{tell_over} now (C{heard=True}) or when the test
    fires C{hearing}.
    """

    def __init__(self, heard=False):
        self.told = []
        self.hearing = defer.succeed(None) if heard else defer.Deferred()

    def tell_over(self, ok, message):
        self.told.append((ok, message))
        return self.hearing


class EndingTests(unittest.TestCase):
    def setUp(self):
        self.clock = task.Clock()
        self.exits = []
        self.ending = Ending(self.clock, http_lease=60,
                             on_exit=lambda code, message: self.exits.append((code, message)))

    def test_exits_with_the_jobs_code_once_every_worker_heard(self):
        quick, slow = Peer(heard=True), Peer()
        self.ending.begin(False, "job failed: x")
        self.ending.tell(quick)
        self.ending.tell(slow)
        self.ending.settled()
        self.assertEqual(slow.told, [(False, "job failed: x")])
        self.assertEqual(self.exits, [], "a worker that heard at once does not end the wait")
        slow.hearing.callback(None)
        self.assertEqual(self.exits, [(1, "job failed: x")])
        self.assertEqual(self.successResultOf(self.ending.done), 1)

    def test_no_exit_before_the_driver_settled(self):
        self.ending.begin(True, "job finished")
        self.ending.tell(Peer(heard=True))
        self.assertEqual(self.exits, [])
        self.ending.settled()
        self.assertEqual(self.exits, [(0, "job finished")])

    def test_a_worker_joining_while_telling_is_waited_for(self):
        self.ending.begin(True, "job finished")
        self.ending.settled()
        self.assertEqual(self.exits, [(0, "job finished")])
        late = Peer()
        self.ending.tell(late)
        self.assertEqual(late.told, [], "after the exit, nobody is told")

    def test_http_workers_waited_for_at_most_their_lease(self):
        self.ending.begin(True, "job finished")
        self.ending.wait_for_http(["h1", "h2"])
        self.ending.settled()
        self.ending.told_http("h1")
        self.clock.advance(59)
        self.assertEqual(self.exits, [])
        self.clock.advance(1)
        self.assertEqual(self.exits, [(0, "job finished")])

    def test_stopped_while_telling_exits_with_the_jobs_code(self):
        self.ending.begin(False, "job failed: x")
        self.ending.tell(Peer())
        self.ending.wait_for_http(["h1"])
        self.ending.settled()
        self.ending.stop()
        self.assertEqual(self.exits, [(1, "job failed: x")])
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_stopped_while_running_does_not_exit(self):
        self.ending.stop()
        self.assertEqual((self.ending.phase, self.exits), (Phase.RUNNING, []))

    def test_lingers_telling_late_workers_then_exits(self):
        ending = Ending(self.clock, http_lease=60, linger=5,
                        on_exit=lambda code, message: self.exits.append((code, message)))
        ending.begin(True, "job finished")
        ending.settled()
        self.assertEqual((ending.phase, self.exits), (Phase.LINGERING, []))
        late = Peer()
        self.clock.advance(4)
        ending.tell(late)
        self.assertEqual(late.told, [(True, "job finished")])
        self.clock.advance(1)
        self.assertEqual(self.exits, [(0, "job finished")], "a late worker is not waited for")

    def test_stopped_while_lingering_exits_at_once(self):
        ending = Ending(self.clock, http_lease=60, linger=5,
                        on_exit=lambda code, message: self.exits.append((code, message)))
        ending.begin(False, "job failed: x")
        ending.settled()
        ending.stop()
        self.assertEqual(self.exits, [(1, "job failed: x")])
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_exit_once(self):
        self.ending.exit(1, "cannot listen")
        self.ending.begin(True, "job finished")
        self.ending.settled()
        self.assertEqual(self.exits, [(1, "cannot listen")])


class UnwritableSummaryTests(MemoryDriverMixin, unittest.TestCase):
    """
    The end of a job whose files cannot all be settled still tells the
    workers and exits with the job's code.
    """

    maps = 1
    files = 1

    def setUp(self):
        self.options = {"summary_file": os.path.join(os.path.abspath(self.mktemp()), "no",
                                                     "such", "dir", "summary.json")}
        super().setUp()

    def test_driver_exits_though_the_summary_cannot_be_written(self):
        client = self.connect()
        self.run_job(client)
        self.assertEqual(client.over, [(True, "job finished")])
        self.assertEqual(self.successResultOf(self.driver.done), 0)
        self.assertFalse(os.path.exists(self.config.summary_file))
