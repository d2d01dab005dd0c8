"""
The driver's AMP front door under random boxes: Hypothesis writes boxes
(real command names with random arguments, random keys, empty boxes, bytes
that are no AMP at all) from strangers and from joined workers, to a real
driver in memory.  No box may end the driver, let a stranger in, or lose a
task; after them all, a real worker that proves the secret runs the job to
the exact answer.
"""

from hypothesis import HealthCheck, given, settings, strategies as st
from twisted.internet.protocol import Protocol
from twisted.protocols import amp
from twisted.test import iosim
from twisted.trial import unittest

from txmr import protocol
from txmr.core.states import TaskState
from txmr.worker.service import WorkerService

from tests.memory import FakeWorker, MemoryDriverMixin
from tests.oracle import read_output, reference
from tests.test_pair import DriverEndpoint, at_once

SECRET = "fuzzed but never guessed"

_COMMANDS = [protocol.Challenge, protocol.Hello, protocol.GetTask, protocol.TaskDone,
             protocol.TaskFailed, protocol.Ping, protocol.Cancel, protocol.JobOver]
_NAMES = sorted({name for command in _COMMANDS
                 for name, _ in command.arguments + command.response})
_SPECIAL = [amp.COMMAND, amp.ASK, amp.ANSWER, amp.ERROR, amp.ERROR_CODE, amp.ERROR_DESCRIPTION]

values = st.one_of(
    st.binary(max_size=40),
    st.integers(-2**70, 2**70).map(lambda n: str(n).encode()),
    st.sampled_from([b"True", b"False", b"map", b"reduce", b"{}", b"[]", b"null", b"1.5",
                     b"nan", b'{"txmr": {"x": 1}}', b"\xff\xfe", b"[\"a\", 0, 10]",
                     b"x" * 70_000]),
)
keys = st.one_of(st.sampled_from(_NAMES + _SPECIAL), st.binary(min_size=1, max_size=12))
commands = st.one_of(st.sampled_from([c.commandName for c in _COMMANDS]),
                     st.binary(max_size=12))


@st.composite
def boxes(draw):
    """
    One AMP box's bytes: usually a command with arguments of its own and
    others, sometimes asking for an answer; at times an empty box, bytes
    that are no AMP, or a box cut short.
    """
    kind = draw(st.sampled_from(["command", "command", "command", "box", "raw", "cut"]))
    if kind == "raw":
        return draw(st.binary(max_size=200))
    box = {key: value[:65_535] for key, value in
           draw(st.dictionaries(keys, values, max_size=6)).items()}
    if kind in ("command", "cut"):
        box[amp.COMMAND] = draw(commands)
        if draw(st.booleans()):
            box[amp.ASK] = draw(st.sampled_from([b"1", b"2", b"x"]))
    data = amp.AmpBox(box).serialize()
    if kind == "cut":
        data = data[:draw(st.integers(0, max(0, len(data) - 1)))]
    return data


class Sink(Protocol):
    """
    The far end of a fuzzed connection: it hears the driver's answers and
    ignores them.
    """


class RawAfterHello(FakeWorker):
    """
    A worker that joins properly, then sends raw bytes, and ignores what it
    hears from then on.
    """

    raw = False

    def dataReceived(self, data):
        if not self.raw:
            super().dataReceived(data)


class FrontDoorFuzzTests(MemoryDriverMixin, unittest.TestCase):
    maps = 3
    files = 4
    # A joined worker may fail attempts it guessed the ids of: that must not
    # fail the job here.
    options = {"secret": SECRET, "max_attempts": 10_000, "reducers": 2}

    def stranger(self):
        server = self.factory.buildProtocol(None)
        client = Sink()
        pump = iosim.connect(server, iosim.makeFakeServer(server),
                             client, iosim.makeFakeClient(client), greet=False)
        self.pumps.append(pump)
        client.server_transport = pump.serverIO
        return client

    def send(self, client, messages):
        for data in messages:
            if client.transport is None or client.server_transport.disconnecting:
                break
            client.transport.write(data)
            self.flush()
            self.reactor.advance(0)
            self.flush()

    def check(self, joined):
        """
        Nothing a fuzzed box did may end the job, let a stranger join, or
        leave a task with no live worker running it.
        """
        self.assertFalse(self.driver.done.called, "the driver ended")
        self.assertEqual(len(self.scheduler.workers), joined, "a stranger joined")
        self.assertEqual(dict(self.factory.amp.strangers), {})
        for t in self.scheduler.maps + self.scheduler.reduces:
            self.assertNotIn(t.state, (TaskState.FINISHED,), "a task finished without files")
            if t.state == TaskState.RUNNING:
                self.assertTrue(any(not self.scheduler.workers[a.worker].lost
                                    for a in t.attempts if a.running))

    def test_random_boxes_then_a_real_job(self):
        joined = [0]

        @settings(max_examples=50, deadline=None,
                  suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
        @given(from_stranger=st.lists(boxes(), max_size=5),
               from_worker=st.lists(boxes(), max_size=5))
        def fuzz(from_stranger, from_worker):
            stranger = self.stranger()
            self.send(stranger, from_stranger)
            # A stranger's box is never worth a traceback in the log.
            self.assertEqual(self.flushLoggedErrors(), [])
            worker = self.connect(kind=RawAfterHello, secret=SECRET)
            joined[0] += 1
            worker.raw = True
            self.send(worker, from_worker)
            for client in (stranger, worker):
                if client.transport is not None:
                    client.transport.loseConnection()
            self.flush()
            self.reactor.advance(0)
            self.flush()
            self.check(joined[0])
            # A joined worker's malformed box is logged with its traceback
            # (a trusted peer's bug).
            self.flushLoggedErrors(KeyError, ValueError, TypeError, UnicodeDecodeError,
                                   OverflowError, amp.AmpError)

        fuzz()

        exits = []
        worker = WorkerService(DriverEndpoint(self), self.reactor, run_in_thread=at_once,
                               give_up=30, host="memory", pid=1, secret=SECRET,
                               on_exit=lambda code, message: exits.append(code))
        worker.startService()
        for _ in range(600):
            self.flush()
            self.reactor.advance(0.1)
            if self.driver.done.called:
                break
        self.assertEqual(self.successResultOf(self.driver.done), 0)
        self.assertEqual(read_output(self.config.output, 2),
                         reference(self.config.job, self.config.input))
        self.flush()
        self.reactor.advance(0)
        self.assertEqual(exits, [0])
