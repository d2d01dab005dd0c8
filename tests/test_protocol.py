"""
The driver's AMP protocol: over a real loopback connection with raw AMP
clients, and its heartbeats driven by a fake clock.
"""

import os

from twisted.internet import defer, endpoints, error, reactor, task
from twisted.internet.protocol import Factory
from twisted.internet.testing import StringTransport
from twisted.protocols import amp
from twisted.python import failure
from twisted.trial import unittest

from txmr import protocol, tasks
from txmr.driver import DriverConfig, DriverProtocol, makeService
from txmr.job import load_job


class FakeWorker(amp.AMP):
    """
    A raw AMP client that answers pings and remembers what it was told.
    """

    def __init__(self):
        super().__init__()
        self.cancelled = []
        self.over = []

    @protocol.Ping.responder
    def ping(self):
        return {}

    @protocol.Cancel.responder
    def cancel(self, attempt):
        self.cancelled.append(attempt)
        return {}

    @protocol.JobOver.responder
    def job_over(self, ok, message):
        self.over.append((ok, message))
        return {}


class SlowToHear(FakeWorker):
    """
    A worker that acknowledges L{JobOver} only when the test says so.
    """

    @protocol.JobOver.responder
    def job_over(self, ok, message):
        self.over.append((ok, message))
        self.heard = defer.Deferred()
        return self.heard.addCallback(lambda _: {})


def write_input(directory, files):
    os.makedirs(directory)
    for i in range(files):
        with open(os.path.join(directory, f"in-{i}.txt"), "w") as f:
            f.write(f"the quick fox {i}\nthe lazy dog\n")


class DriverFixture:
    """
    A real driver on a loopback port, and raw AMP clients.
    """

    maps = 2
    files = 2

    def setUp(self):
        base = self.mktemp()
        write_input(os.path.join(base, "in"), self.files)
        self.config = DriverConfig(
            input=os.path.join(base, "in"), intermediate=os.path.join(base, "mid"),
            output=os.path.join(base, "out"), mappers=self.maps, reducers=1,
            listen="tcp:0:interface=127.0.0.1", heartbeat=60, heartbeat_timeout=120,
            poll=30, max_attempts=2,
        )
        self.driver = makeService(self.config, reactor)
        self.job = load_job(self.config.job)
        self.addCleanup(self.driver.stopService)
        return self.driver.startService()

    @defer.inlineCallbacks
    def connect(self, hello=True, kind=FakeWorker):
        port = self.driver.port.getHost().port
        endpoint = endpoints.TCP4ClientEndpoint(reactor, "127.0.0.1", port)
        client = yield endpoint.connect(Factory.forProtocol(kind))
        self.addCleanup(client.transport.loseConnection)
        if hello:
            answer = yield client.callRemote(protocol.Hello, version=protocol.PROTOCOL_VERSION,
                                             host="test", pid=os.getpid())
            client.worker = answer["worker"]
            client.job = answer["job"]
        return client

    def run_and_report(self, client, spec):
        counters = tasks.run_task(self.job, spec)
        return client.callRemote(protocol.TaskDone, kind=spec["kind"], index=spec["index"],
                                 attempt=spec["attempt"], counters=counters)



class ProtocolTests(DriverFixture, unittest.TestCase):
    @defer.inlineCallbacks
    def test_hello(self):
        client = yield self.connect()
        self.assertEqual(client.job, "txmr.examples.wordcount")
        self.assertIn(client.worker, self.driver.scheduler.workers)

    @defer.inlineCallbacks
    def test_must_say_hello(self):
        client = yield self.connect(hello=False)
        yield self.assertFailure(client.callRemote(protocol.GetTask), protocol.UnknownWorker)

    @defer.inlineCallbacks
    def test_version_mismatch(self):
        client = yield self.connect(hello=False)
        yield self.assertFailure(
            client.callRemote(protocol.Hello, version=999, host="h", pid=1),
            protocol.VersionMismatch)

    @defer.inlineCallbacks
    def test_whole_job_over_amp(self):
        client = yield self.connect()
        while True:
            answer = yield client.callRemote(protocol.GetTask)
            if answer["action"] == "done":
                break
            self.assertEqual(answer["action"], "run")
            yield self.run_and_report(client, answer["task"])
        self.assertEqual(answer["task"], {"ok": True})
        code = yield self.driver.done
        self.assertEqual(code, 0)
        with open(os.path.join(self.config.output, "out-0")) as f:
            self.assertEqual(f.read(), "0\t1\n1\t1\ndog\t2\nfox\t2\nlazy\t2\nquick\t2\nthe\t4\n")

    @defer.inlineCallbacks
    def test_report_that_asks_is_answered_with_the_next_task(self):
        """
        A report with C{ask} carries the worker's next action in its answer:
        a whole job runs on reports alone after the first question.  A
        report without C{ask} is answered with nothing.
        """
        client = yield self.connect()
        answer = yield client.callRemote(protocol.GetTask)
        first = answer["task"]
        counters = tasks.run_task(self.job, first)
        plain = yield client.callRemote(protocol.TaskDone, kind="map", index=first["index"],
                                        attempt=first["attempt"], counters=counters)
        self.assertEqual(plain, {"action": None, "retry": None, "task": None})
        answer = yield client.callRemote(protocol.GetTask)
        kinds = []
        while answer["action"] == "run":
            spec = answer["task"]
            kinds.append(spec["kind"])
            answer = yield client.callRemote(
                protocol.TaskDone, kind=spec["kind"], index=spec["index"],
                attempt=spec["attempt"], counters=tasks.run_task(self.job, spec), ask=True)
        self.assertEqual(kinds, ["map", "reduce"])
        self.assertEqual((answer["action"], answer["task"]), ("done", {"ok": True}))
        code = yield self.driver.done
        self.assertEqual(code, 0)

    @defer.inlineCallbacks
    def test_refused_report_that_asks_gets_no_task(self):
        a = yield self.connect()
        answer = yield a.callRemote(protocol.GetTask)
        spec = answer["task"]
        yield self.assertFailure(
            a.callRemote(protocol.TaskDone, kind="map", index=spec["index"], attempt=12345,
                         counters={}, ask=True), protocol.StaleReport)
        self.assertEqual(len(self.driver.scheduler.workers[a.worker].attempts), 1)

    @defer.inlineCallbacks
    def test_worker_joining_as_the_job_ends_is_told(self):
        """
        A worker that says Hello after the job ended, while the driver waits
        for the others to hear it, is told the job is over too, and the
        driver waits for it before exiting.
        """
        slow = yield self.connect(kind=SlowToHear)
        answer = yield slow.callRemote(protocol.GetTask)
        while answer["action"] == "run":
            spec = answer["task"]
            answer = yield slow.callRemote(
                protocol.TaskDone, kind=spec["kind"], index=spec["index"],
                attempt=spec["attempt"], counters=tasks.run_task(self.job, spec), ask=True)
        self.assertEqual(answer["action"], "done")
        self.assertFalse(self.driver.done.called)
        late = yield self.connect(kind=SlowToHear)
        yield task.deferLater(reactor, 0.1, lambda: None)
        self.assertEqual(late.over, [(True, "job finished")])
        slow.heard.callback(None)
        yield task.deferLater(reactor, 0.1, lambda: None)
        self.assertFalse(self.driver.done.called, "exited before the late worker heard")
        late.heard.callback(None)
        code = yield self.driver.done
        self.assertEqual(code, 0)

    @defer.inlineCallbacks
    def test_refusals(self):
        """
        Unknown tasks, unknown attempts and reports about another worker's
        attempt are refused, and change nothing.
        """
        a = yield self.connect()
        b = yield self.connect()
        answer = yield a.callRemote(protocol.GetTask)
        spec = answer["task"]
        yield self.assertFailure(
            a.callRemote(protocol.TaskDone, kind="map", index=99, attempt=spec["attempt"],
                         counters={}), protocol.UnknownTask)
        yield self.assertFailure(
            a.callRemote(protocol.TaskDone, kind="sort", index=0, attempt=spec["attempt"],
                         counters={}), protocol.UnknownTask)
        yield self.assertFailure(
            a.callRemote(protocol.TaskDone, kind="map", index=spec["index"], attempt=12345,
                         counters={}), protocol.StaleReport)
        yield self.assertFailure(self.run_and_report(b, spec), protocol.StaleReport)
        task = self.driver.scheduler.task("map", spec["index"])
        self.assertEqual(task.state, 3)
        yield self.run_and_report(a, spec)
        self.assertEqual(task.state, 4)
        # A duplicate of an accepted report is refused too.
        yield self.assertFailure(
            a.callRemote(protocol.TaskDone, kind="map", index=spec["index"],
                         attempt=spec["attempt"], counters={}), protocol.StaleReport)

    @defer.inlineCallbacks
    def test_report_from_lost_worker_refused(self):
        a = yield self.connect()
        b = yield self.connect()
        answer = yield a.callRemote(protocol.GetTask)
        spec = answer["task"]
        tasks.run_task(self.job, spec)
        # The driver gives up on a (as a heartbeat timeout would).
        self.driver._lose(a.worker, "test")
        yield self.assertFailure(
            a.callRemote(protocol.TaskDone, kind="map", index=spec["index"],
                         attempt=spec["attempt"], counters={}),
            protocol.StaleReport, protocol.UnknownWorker, Exception)
        retry = yield b.callRemote(protocol.GetTask)
        self.assertEqual(retry["task"]["index"], spec["index"])
        self.assertNotEqual(retry["task"]["attempt"], spec["attempt"])
        # The lost attempt's files never became the task's output.
        self.assertFalse(any(name.startswith("mr-") for name in os.listdir(self.config.intermediate)))

    @defer.inlineCallbacks
    def test_malformed_counters_are_dropped(self):
        client = yield self.connect()
        answer = yield client.callRemote(protocol.GetTask)
        spec = answer["task"]
        tasks.run_task(self.job, spec)
        yield client.callRemote(protocol.TaskDone, kind="map", index=spec["index"],
                                attempt=spec["attempt"],
                                counters={"g": {"ok": 2, "bad": "x", "no": None}, "h": [1]})
        self.assertEqual(self.driver.scheduler.summed_counters(), {"g": {"ok": 2}})

    @defer.inlineCallbacks
    def test_long_poll(self):
        """
        A worker with nothing to do is answered when a task becomes ready,
        not before.
        """
        a = yield self.connect()
        b = yield self.connect()
        first = yield a.callRemote(protocol.GetTask)
        second = yield b.callRemote(protocol.GetTask)
        waiting = a.callRemote(protocol.GetTask)
        yield task.deferLater(reactor, 0.2, lambda: None)
        self.assertFalse(waiting.called)
        yield self.run_and_report(a, first["task"])
        yield task.deferLater(reactor, 0.2, lambda: None)
        self.assertFalse(waiting.called, "reduces wait for every map")
        yield self.run_and_report(b, second["task"])
        answer = yield waiting
        self.assertEqual((answer["action"], answer["task"]["kind"]), ("run", "reduce"))

    @defer.inlineCallbacks
    def test_failure_report_retries_then_fails_job(self):
        """
        Every attempt fails: the lone worker gets the other map before a
        retry of the one that failed on it, then the latest retry, whose
        second failure fails the job.
        """
        client = yield self.connect()
        given = []
        for n in range(3):
            answer = yield client.callRemote(protocol.GetTask)
            spec = answer["task"]
            given.append(spec["index"])
            yield client.callRemote(protocol.TaskFailed, kind="map", index=spec["index"],
                                    attempt=spec["attempt"], error="ValueError: no",
                                    traceback="Traceback...\n" + "x" * 100_000, record=None)
        self.assertEqual(given, [0, 1, 1])
        code = yield self.driver.done
        self.assertEqual(code, 1)
        self.assertEqual(client.over[0][0], False)
        self.assertIn("map task 1 failed 2 times", client.over[0][1])
        self.assertIn("ValueError: no", client.over[0][1])
        self.assertEqual(os.listdir(self.config.output), [])
        # Only the end of a huge traceback is kept.
        for kept in self.driver.tracebacks.values():
            self.assertLess(len(kept), 16_100)
            self.assertTrue(kept.startswith("[84013 characters cut]\n"), kept[:40])

    @defer.inlineCallbacks
    def test_malformed_bytes_drop_only_that_connection(self):
        bad = yield self.connect(hello=False)
        bad.transport.write(b"\x00\x05hello\xff\xff garbage that is not AMP at all")
        yield task.deferLater(reactor, 0.2, lambda: None)
        good = yield self.connect()
        answer = yield good.callRemote(protocol.GetTask)
        self.assertEqual(answer["action"], "run")


class BigSpecTests(DriverFixture, unittest.TestCase):
    """
    The same, with a task spec far over AMP's 64 KiB value limit.
    """

    maps = 1
    files = 3000

    @defer.inlineCallbacks
    def test_big_spec(self):
        client = yield self.connect()
        answer = yield client.callRemote(protocol.GetTask)
        self.assertEqual(len(answer["task"]["splits"]), 3000)


class HeartbeatTests(unittest.TestCase):
    """
    The heartbeat LoopingCall, driven by a fake clock.
    """

    def setUp(self):
        base = self.mktemp()
        write_input(os.path.join(base, "in"), 1)
        self.clock = task.Clock()
        config = DriverConfig(
            input=os.path.join(base, "in"), intermediate=os.path.join(base, "mid"),
            output=os.path.join(base, "out"), mappers=1, reducers=1,
            heartbeat=1, heartbeat_timeout=5,
        )
        self.driver = makeService(config, self.clock)
        self.driver.heartbeat.start(1, now=False)
        self.addCleanup(lambda: self.driver.heartbeat.running and self.driver.heartbeat.stop())

    def join(self):
        proto = DriverProtocol(self.driver)
        proto.makeConnection(StringTransport())
        proto.hello(protocol.PROTOCOL_VERSION, "host", 1)
        return proto

    def answer_pings(self, proto):
        """
        Answer every ping the driver wrote to this connection.
        """
        sent = proto.transport.value()
        proto.transport.clear()
        boxes = amp.parse(__import__("io").BytesIO(sent))
        for box in boxes:
            if box.get(b"_command") == b"Ping":
                proto.dataReceived(amp.AmpBox(_answer=box[b"_ask"]).serialize())

    def test_silent_worker_loses_its_task(self):
        silent = self.join()
        alive = self.join()
        answer = self.driver.get_task(silent.worker)
        self.assertEqual(answer["action"], "run")
        waiting = self.driver.get_task(alive.worker)
        self.assertIsInstance(waiting, defer.Deferred)
        for _ in range(5):
            self.clock.advance(1)
            self.answer_pings(alive)
        self.assertIn(b"Ping", silent.transport.value())
        self.assertFalse(self.driver.scheduler.workers[silent.worker].lost)
        self.clock.advance(1)
        self.answer_pings(alive)
        self.assertTrue(self.driver.scheduler.workers[silent.worker].lost)
        self.assertTrue(silent.transport.disconnecting)
        self.assertFalse(self.driver.scheduler.workers[alive.worker].lost)
        # The waiting worker got the task back, at once.
        self.assertTrue(waiting.called)
        self.assertEqual(self.successResultOf(waiting)["task"]["index"], 0)

    def test_dropped_connection_loses_worker(self):
        proto = self.join()
        self.driver.get_task(proto.worker)
        proto.connectionLost(failure.Failure(error.ConnectionDone()))
        self.assertEqual(self.driver.scheduler.maps[0].state, 2)

    def test_long_poll_expires(self):
        a = self.join()
        b = self.join()
        self.driver.get_task(a.worker)
        waiting = self.driver.get_task(b.worker)
        for _ in range(10):
            self.clock.advance(1)
            self.answer_pings(a)
            self.answer_pings(b)
        self.assertEqual(self.successResultOf(waiting)["action"], "wait")
