"""
Who a driver lets in, and whom a worker trusts.

Neither side sends the secret: each proves it knows it (a challenge and
HMACs both ways), and a worker runs nothing for a peer on its driver's
address that cannot prove it, even one on a real port, with a real worker
process.  A worker reads no input outside the root its driver named, runs
only the jobs its owner allows, and the driver keeps only so many strangers
(connections that have not said Hello) without keeping real workers out.
"""

import os

from twisted.internet import defer, endpoints, reactor
from twisted.internet.protocol import Factory
from twisted.logger import globalLogPublisher
from twisted.protocols import amp
from twisted.trial import unittest

from txmr import protocol
from txmr.core.spec import Run, TaskSpec, answer_to_json
from txmr.core.states import Kind
from txmr.driver.web import Sniffer
from txmr.worker.execution import Executor, escapes
from txmr.worker.options import WorkerOptions
from txmr.worker.service import WorkerService

from tests.cluster import JOBS, Cluster, worker_exit, write_corpus
from tests.memory import FakeWorker, MemoryDriverMixin, Silent
from tests.oracle import read_output, reference
from tests.test_pair import DriverEndpoint, at_once
from tests.test_worker import Clock, FakeDriver, MemoryEndpoint

SECRET = "correct horse battery staple"


def write_marker_job(directory, marker):
    """
    A job file whose import alone leaves C{marker}: proof that a worker ran
    a driver's code.
    """
    path = os.path.join(directory, "intruder.py")
    with open(path, "w") as f:
        f.write(f"open({marker!r}, 'w').close()\n"
                "def map(name, line):\n    yield line, 1\n"
                "def reduce(key, values):\n    yield key, sum(values)\n")
    return path


def collect_log(test):
    """
    Every event logged from now to the end of the test, as text.
    """
    lines = []

    def observe(event):
        from twisted.logger import formatEvent
        lines.append(formatEvent(event))

    globalLogPublisher.addObserver(observe)
    test.addCleanup(globalLogPublisher.removeObserver, observe)
    return lines


def stop_memory_worker(worker, endpoint):
    """
    Stop a worker whose endpoint is a L{MemoryEndpoint}, delivering the
    closing of its connection.
    """
    if worker.running:
        worker.stopService()
        endpoint.flush()


class Recording(FakeWorker):
    """
    A raw AMP client that keeps every byte it receives.
    """

    def __init__(self):
        super().__init__()
        self.received = []

    def dataReceived(self, data):
        self.received.append(data)
        super().dataReceived(data)


# -- the driver's front door ---------------------------------------------------


class DriverProofTests(MemoryDriverMixin, unittest.TestCase):
    options = {"secret": SECRET}

    def test_the_secret_never_crosses_the_wire(self):
        """
        A worker that knows the secret joins, and neither side's bytes hold
        it; the driver's answer carries a proof the worker checks (in
        L{MemoryDriverMixin.hello}).
        """
        client = self.connect(kind=Recording, hello=False)
        sent = []
        write = client.transport.write
        client.transport.write = lambda data: (sent.append(data), write(data))
        answer = self.successResultOf(self.hello(client, SECRET))
        self.assertIn(answer["worker"], self.scheduler.workers)
        for direction in (b"".join(sent), b"".join(client.received)):
            self.assertIn(b"Hello", b"".join(sent))
            self.assertNotIn(SECRET.encode(), direction)
            self.assertNotIn(SECRET.split()[0].encode(), direction)

    def test_no_hello_without_a_challenge(self):
        client = self.connect(hello=False)
        nonce = protocol.new_nonce()
        self.failureResultOf(self.call(
            client, protocol.Hello, version=protocol.PROTOCOL_VERSION, host="h", pid=1,
            nonce=nonce, proof=protocol.worker_proof(SECRET, b"\0" * 32, nonce)),
            protocol.Unauthorized)
        self.assertEqual(self.scheduler.workers, {})

    def test_a_proof_cannot_be_replayed(self):
        """
        A proof overheard on one connection opens no other: each answers a
        challenge of its own.  Nor does a challenge serve twice.
        """
        first = self.connect(hello=False)
        driver_nonce = self.successResultOf(self.call(first, protocol.Challenge))["nonce"]
        nonce = protocol.new_nonce()
        proof = protocol.worker_proof(SECRET, driver_nonce, nonce)
        second = self.connect(hello=False)
        self.successResultOf(self.call(second, protocol.Challenge))
        self.failureResultOf(self.call(
            second, protocol.Hello, version=protocol.PROTOCOL_VERSION, host="h", pid=1,
            nonce=nonce, proof=proof), protocol.Unauthorized)
        self.assertEqual(self.scheduler.workers, {})
        self.successResultOf(self.call(
            first, protocol.Hello, version=protocol.PROTOCOL_VERSION, host="h", pid=1,
            nonce=nonce, proof=proof))
        self.failureResultOf(self.call(
            first, protocol.Hello, version=protocol.PROTOCOL_VERSION, host="h", pid=1,
            nonce=nonce, proof=proof), protocol.Unauthorized)

    def test_a_worker_proof_is_not_a_driver_proof(self):
        a, b = protocol.new_nonce(), protocol.new_nonce()
        self.assertNotEqual(protocol.worker_proof(SECRET, a, b),
                            protocol.driver_proof(SECRET, b, a))
        self.assertNotEqual(protocol.worker_proof(SECRET, a, b),
                            protocol.driver_proof(SECRET, a, b))

    def test_the_version_is_checked_first(self):
        client = self.connect(hello=False)
        self.failureResultOf(self.call(client, protocol.Hello, version=3, host="h", pid=1),
                             protocol.VersionMismatch)


# -- strangers -----------------------------------------------------------------


class StrangerTests(MemoryDriverMixin, unittest.TestCase):
    """
    Connections that have not said Hello: capped, timed out, and never a
    reason to keep a real worker out.
    """

    options = {"secret": SECRET}

    def stranger(self):
        """
        A connection that starts an AMP box (so the driver's AMP side has
        it) and then says nothing.
        """
        client = self.connect(hello=False)
        client.transport.write(b"\x00")
        self.flush()
        return client

    def open_count(self, clients):
        return sum(not c.server_transport.disconnecting for c in clients)

    def test_idle_strangers_do_not_keep_a_worker_out(self):
        cap = self.factory.amp.MAX_STRANGERS
        strangers = [self.stranger() for _ in range(3 * cap)]
        self.assertEqual(self.open_count(strangers), cap, "no more than the cap are kept")
        self.advance(self.factory.amp.STRANGER_GRACE + 1)
        worker = self.connect(secret=SECRET)
        self.assertIn(worker.worker, self.scheduler.workers)
        self.assertEqual(self.open_count(strangers), cap - 1, "the oldest idle one made room")
        self.assertEqual(self.run_job(worker), {"action": "done", "task": {"ok": True}})
        self.assertEqual(self.successResultOf(self.driver.done), 0)
        self.assertEqual(read_output(self.config.output, 1),
                         reference(self.config.job, self.config.input))

    def test_silent_connections_do_not_keep_a_worker_out(self):
        """
        Connections that send not a byte are not yet AMP's or HTTP's: the
        port keeps at most so many of them, evicting the oldest idle one
        for a newcomer.
        """
        cap = self.factory.MAX_SILENT
        silent = [self.connect(hello=False) for _ in range(2 * cap)]
        self.assertEqual(self.open_count(silent), cap, "no more than the cap are kept")
        self.advance(self.factory.SILENT_GRACE + 1)
        worker = self.connect(secret=SECRET)
        self.assertIn(worker.worker, self.scheduler.workers)
        self.assertEqual(self.open_count(silent), cap - 1, "the oldest idle one made room")
        self.assertEqual(len(self.factory.silent), cap - 1)
        self.advance(Sniffer.FIRST_BYTE_WITHIN)
        self.assertEqual(self.open_count(silent), 0, "and the rest time out")
        self.assertEqual(len(self.factory.silent), 0)
        self.assertEqual(self.run_job(worker), {"action": "done", "task": {"ok": True}})

    def test_a_burst_beyond_the_cap_is_closed_at_once(self):
        cap = self.factory.amp.MAX_STRANGERS
        first = [self.stranger() for _ in range(cap)]
        more = [self.stranger() for _ in range(10)]
        self.assertEqual(self.open_count(first), cap)
        self.assertEqual(self.open_count(more), 0)

    def test_workers_that_said_hello_are_not_counted(self):
        cap = self.factory.amp.MAX_STRANGERS
        workers = [self.connect(secret=SECRET) for _ in range(3)]
        strangers = [self.stranger() for _ in range(cap)]
        self.assertEqual(len(self.factory.amp.strangers), cap)
        self.assertEqual(self.open_count(strangers), cap)
        self.assertEqual(self.open_count(workers), 3)
        # Those that leave are no longer counted either.
        for client in strangers[:10]:
            client.transport.loseConnection()
        self.flush()
        self.assertEqual(len(self.factory.amp.strangers), cap - 10)

    def test_a_stranger_is_dropped_after_hello_within_whatever_it_sends(self):
        """
        A trickle of bytes does not keep a stranger: the time to say Hello
        runs from the connection.
        """
        client = self.stranger()
        # The rest of an AMP box's first key, then its value, a byte a second.
        trickle = b"\x01k\xea\x60" + b"x" * 25
        for i in range(len(trickle)):
            client.transport.write(trickle[i:i + 1])
            self.advance(1)
        self.assertFalse(client.server_transport.disconnecting)
        self.advance(2)
        self.assertTrue(client.server_transport.disconnecting)
        self.assertEqual(self.factory.amp.strangers, {})

    def test_a_joined_worker_silent_for_long_is_dropped_without_the_heartbeat(self):
        """
        After Hello the limit is on silence: a joined worker answers a ping
        each heartbeat, so one silent for ten periods past the heartbeat
        timeout is dropped, even where the heartbeat no longer runs.
        """
        self.driver.heartbeat.stopService()
        silent = self.connect(kind=Silent, secret=SECRET)
        talking = self.connect(secret=SECRET)
        limit = self.config.heartbeat_timeout + 10 * self.config.heartbeat
        for _ in range(int(limit) - 1):
            self.call(talking, protocol.TaskDone, kind="map", index=0, attempt=999,
                      counters={}).addErrback(lambda f: None)
            self.advance(1)
        self.assertFalse(silent.server_transport.disconnecting)
        self.advance(2)
        self.assertTrue(silent.server_transport.disconnecting)
        self.assertTrue(self.scheduler.workers[silent.worker].lost)
        self.assertFalse(talking.server_transport.disconnecting, "it spoke")


# -- the worker's trust --------------------------------------------------------


class WorkerProofTests(MemoryDriverMixin, unittest.TestCase):
    """
    A real worker service and a real driver, in memory.
    """

    maps = 3
    files = 4
    options = {"secret": SECRET}

    def start_worker(self, secret, give_up=30):
        exits = []
        worker = WorkerService(DriverEndpoint(self), self.reactor, run_in_thread=at_once,
                               give_up=give_up, host="memory", pid=1, secret=secret,
                               on_exit=lambda code, message: exits.append((code, message)))
        worker.exits = exits
        worker.startService()
        self.addCleanup(self.stop_worker, worker)
        return worker

    def stop_worker(self, worker):
        if worker.running:
            worker.stopService()
            self.flush()
            self.reactor.advance(0)

    def run_until(self, predicate, seconds):
        for _ in range(int(seconds * 10)):
            self.flush()
            self.reactor.advance(0.1)
            if predicate():
                return
        self.fail(f"not within {seconds} seconds of the clock")

    def test_both_sides_prove_the_secret_and_run_the_job(self):
        worker = self.start_worker(SECRET)
        self.run_until(lambda: self.driver.done.called, 60)
        self.assertEqual(self.successResultOf(self.driver.done), 0)
        self.assertEqual(read_output(self.config.output, 1),
                         reference(self.config.job, self.config.input))
        self.flush()
        self.reactor.advance(0)
        self.assertEqual([code for code, _ in worker.exits], [0])

    def test_a_worker_with_another_secret_is_refused(self):
        worker = self.start_worker("another secret")
        self.run_until(lambda: worker.exits, 5)
        code, message = worker.exits[0]
        self.assertEqual(code, 1)
        self.assertIn("refused this worker", message)
        self.assertEqual(self.scheduler.attempts, {})


class OpenDriverTests(MemoryDriverMixin, unittest.TestCase):
    """
    A driver without a secret cannot prove one: a worker that has one runs
    nothing for it, and gives up.
    """

    def test_a_worker_with_a_secret_runs_nothing_for_a_driver_without(self):
        log = collect_log(self)
        exits = []
        worker = WorkerService(DriverEndpoint(self), self.reactor, run_in_thread=at_once,
                               give_up=5, host="memory", pid=1, secret=SECRET,
                               on_exit=lambda code, message: exits.append((code, message)))
        worker.startService()
        self.addCleanup(WorkerProofTests.stop_worker, self, worker)
        for _ in range(80):
            self.flush()
            self.reactor.advance(0.1)
        self.assertEqual(self.scheduler.attempts, {}, "it asked for no task")
        self.assertEqual(exits, [(1, "cannot reach the driver at "
                                     f"{worker.address} for 5s")])
        lines = [line for line in log if "is not this worker's driver" in line]
        self.assertTrue(lines)
        self.assertIn("it did not prove it knows the secret (--secret-file)", lines[0])
        self.assertLess(len(lines), 20, "one line per try, with back-off")


class OldDriverTests(unittest.TestCase):
    def test_a_driver_that_knows_no_challenge_is_named_old(self):
        clock = Clock()
        endpoint = MemoryEndpoint(clock, lambda: FakeDriver([]))
        exits = []
        worker = WorkerService(endpoint, clock, give_up=10, secret=SECRET, name="memory",
                               on_exit=lambda code, message: exits.append((code, message)))
        worker.startService()
        self.addCleanup(stop_memory_worker, worker, endpoint)
        endpoint.flush()
        self.assertEqual(exits, [(1, "the driver at memory refused this worker: it does not "
                                     "know Challenge: it speaks an older protocol than this "
                                     f"worker's (version {protocol.PROTOCOL_VERSION})")])
        self.assertEqual(endpoint.drivers[0].names(), [])


class Impostor(amp.AMP):
    """
    Answers on a driver's address, speaks the protocol, and does not know
    the secret: it answers Hello with no proof on the first connection and a
    made-up one after, tells the worker the job is over before anything,
    and would hand out a task of its own code reading outside its input.
    """

    def connectionMade(self):
        super().connectionMade()
        self.factory.connections += 1
        self.callRemote(protocol.JobOver, ok=True, message="go away").addErrback(
            lambda failure: self.factory.heard.append(("JobOver refused", failure.type)))

    def dataReceived(self, data):
        self.factory.received.append(data)
        super().dataReceived(data)

    @protocol.Challenge.responder
    def challenge(self):
        self.factory.heard.append(("Challenge", None))
        return {"nonce": protocol.new_nonce()}

    @protocol.Hello.responder
    def hello(self, version, host, pid, nonce=None, proof=None, url=None):
        self.factory.heard.append(("Hello", proof))
        made_up = None if self.factory.connections == 1 else os.urandom(32)
        return {"worker": "w1", "job": self.factory.spec.job, "heartbeat": 1.0,
                "proof": made_up}

    @protocol.GetTask.responder
    def get_task(self, wait=None):
        self.factory.heard.append(("GetTask", None))
        return answer_to_json(Run(self.factory.spec))


class ImpostorTests(unittest.TestCase):
    """
    The finding, on a real loopback port with a real worker process: the
    driver is gone and something else answers on its address.
    """

    @defer.inlineCallbacks
    def test_a_worker_runs_nothing_for_a_peer_that_does_not_know_the_secret(self):
        cluster = Cluster(self)
        secret_file = os.path.join(cluster.base, "secret")
        with open(secret_file, "w") as f:
            f.write(SECRET + "\n")
        os.makedirs(cluster.input)
        with open(os.path.join(cluster.base, "private.txt"), "w") as f:
            f.write("private\n")
        marker = os.path.join(cluster.base, "RAN")
        factory = Factory.forProtocol(Impostor)
        factory.connections = 0
        factory.heard = []
        factory.received = []
        factory.spec = TaskSpec(
            kind=Kind.MAP, index=0, attempt=1, job=write_marker_job(cluster.base, marker),
            intermediate=cluster.scratch, n_map=1, n_reduce=1, input=cluster.input,
            splits=[["../private.txt", 0, 8]])
        port = yield endpoints.TCP4ServerEndpoint(
            reactor, 0, interface="127.0.0.1").listen(factory)
        self.addCleanup(port.stopListening)
        worker = cluster.start_worker("w", f"127.0.0.1:{port.getHost().port}",
                                      "--secret-file", secret_file, "--give-up", "3")
        yield worker_exit(cluster, worker, "w", 20)
        log = cluster.log("w")
        self.assertEqual(worker.returncode, 1, log)
        self.assertIn("cannot reach the driver", log)
        self.assertFalse(os.path.exists(marker), "the impostor's code ran")
        self.assertEqual(os.listdir(cluster.scratch), [])
        names = {name for name, _ in factory.heard}
        self.assertNotIn("GetTask", names, "it asked the impostor for a task")
        self.assertIn("JobOver refused", names)
        self.assertGreaterEqual(factory.connections, 2)
        self.assertNotIn(SECRET.encode(), b"".join(factory.received))
        self.assertIn("is not this worker's driver: it did not prove it knows the secret", log)
        self.assertIn("is not this worker's driver: its proof of the secret is wrong", log)
        self.assertNotIn("job over", log)


# -- what a worker reads and runs ------------------------------------------------


class SplitNameTests(unittest.SynchronousTestCase):
    def test_names_that_escape(self):
        for name in ["../x", "a/../../x", "/etc/passwd", "..", "", ".", "a/..", "x\0y", None,
                     7]:
            self.assertTrue(escapes(name), name)
        for name in ["x", "a/b.txt", "a/../b", "./x", "..x", "a/..b"]:
            self.assertFalse(escapes(name), name)


class AdmissionTests(unittest.TestCase):
    """
    A worker service, its real executor and the real data path, against a
    scripted driver in memory.
    """

    def setUp(self):
        self.base = os.path.abspath(self.mktemp())
        self.input = os.path.join(self.base, "in")
        self.intermediate = os.path.join(self.base, "mid")
        os.makedirs(self.input)
        os.makedirs(self.intermediate)
        with open(os.path.join(self.input, "a.txt"), "w") as f:
            f.write("one two two\n")
        with open(os.path.join(self.base, "private.txt"), "w") as f:
            f.write("private words\n")
        self.marker = os.path.join(self.base, "RAN")
        self.log = collect_log(self)

    def spec(self, attempt, splits, job="txmr.examples.wordcount"):
        return TaskSpec(kind=Kind.MAP, index=attempt - 1, attempt=attempt, job=job,
                        intermediate=self.intermediate, n_map=3, n_reduce=1, input=self.input,
                        splits=splits)

    def run_tasks(self, specs, job_allow=()):
        clock = Clock()
        endpoint = MemoryEndpoint(clock, lambda: FakeDriver(specs))
        exits = []
        worker = WorkerService(endpoint, clock, give_up=10, name="memory",
                               executor=Executor(at_once, job_allow=job_allow),
                               on_exit=lambda code, message: exits.append((code, message)))
        worker.startService()
        self.addCleanup(stop_memory_worker, worker, endpoint)
        endpoint.flush()
        clock.advance(0)
        endpoint.flush()
        self.assertEqual([code for code, _ in exits], [0])
        return {r["attempt"]: r for r in endpoint.drivers[0].reports()}

    def written(self):
        return sorted(os.listdir(self.intermediate))

    def test_splits_that_escape_the_input_root_are_refused(self):
        reports = self.run_tasks([
            self.spec(1, [["../private.txt", 0, 14]]),
            self.spec(2, [["a.txt", 0, 12], [os.path.join(self.base, "private.txt"), 0, 14]]),
            self.spec(3, [["a.txt", 0, 12]]),
        ])
        self.assertEqual(reports[1]["error"], "refused by the worker: split '../private.txt' "
                                              f"escapes the input root {self.input!r}")
        self.assertIn("refused by the worker: split", reports[2]["error"])
        self.assertNotIn("Traceback", reports[1]["traceback"])
        self.assertEqual(reports[3]["counters"]["txmr"]["map_input_records"], 1)
        self.assertEqual(self.written(), [".mr-2-0.attempt-3.tmp"], "only the good map wrote")
        self.assertTrue(any("map task 0 attempt 1 failed: refused by the worker" in line
                            for line in self.log))

    def test_a_job_not_allowed_is_refused_before_its_import(self):
        intruder = write_marker_job(self.base, self.marker)
        reports = self.run_tasks([self.spec(1, [["a.txt", 0, 12]], job=intruder),
                                  self.spec(2, [["a.txt", 0, 12]])],
                                 job_allow=("txmr.examples.*", "/nowhere/*.py"))
        self.assertFalse(os.path.exists(self.marker), "the job was imported")
        self.assertEqual(reports[1]["error"],
                         "refused by the worker: this worker runs only jobs matching "
                         f"--job-allow txmr.examples.* /nowhere/*.py, not {intruder!r}")
        self.assertIn("counters", reports[2], "an allowed job still runs")
        self.assertTrue(any("failed: refused by the worker: this worker runs only jobs" in line
                            for line in self.log))

    def test_a_job_that_spells_its_way_out_of_a_pattern_is_refused(self):
        """
        A job named by a path is matched by the file it really is: no
        C{..}, no symbolic link and no module-looking prefix takes a driver
        past C{--job-allow} to a file elsewhere.
        """
        intruder = write_marker_job(self.base, self.marker)
        allowed = os.path.join(self.base, "allowed")
        os.makedirs(os.path.join(allowed, "sub"))
        os.symlink(intruder, os.path.join(allowed, "link.py"))
        spellings = [
            os.path.join(allowed, "..", os.path.basename(intruder)),
            os.path.join(allowed, "link.py"),
            os.path.join(allowed, "sub", "..", "..", os.path.basename(intruder)),
            "txmr.examples." + os.path.relpath(intruder, os.getcwd()),
            "txmr.examples.wordcount/../../" + os.path.relpath(intruder, os.getcwd()),
        ]
        reports = self.run_tasks([self.spec(i + 1, [["a.txt", 0, 12]], job=job)
                                  for i, job in enumerate(spellings)],
                                 job_allow=("txmr.examples.*", os.path.join(allowed, "*.py")))
        self.assertFalse(os.path.exists(self.marker), "the intruder's code ran")
        for i, job in enumerate(spellings):
            self.assertIn("refused by the worker: this worker runs only jobs matching",
                          reports[i + 1]["error"], job)

    def test_a_job_allowed_by_a_pattern_runs(self):
        intruder = write_marker_job(self.base, self.marker)
        reports = self.run_tasks([self.spec(1, [["a.txt", 0, 12]], job=intruder)],
                                 job_allow=(os.path.join(self.base, "*.py"),))
        self.assertIn("counters", reports[1])
        self.assertTrue(os.path.exists(self.marker))

    def test_job_allow_is_a_repeatable_option(self):
        options = WorkerOptions()
        options.parseOptions(["--job-allow", "txmr.examples.*", "--job-allow", "/srv/*.py"])
        self.assertEqual(options["job-allow"], ["txmr.examples.*", "/srv/*.py"])
        self.assertEqual(WorkerOptions()["job-allow"], [])


class JobAllowProcessTests(unittest.TestCase):
    def test_a_driver_of_a_job_not_allowed_fails_naming_the_refusal(self):
        """
        A real driver and a real worker started with C{--job-allow}: the
        driver's job matches no pattern, so every attempt fails before the
        job's code is imported, and the job fails with the worker's reason.
        """
        cluster = Cluster(self, job="jobs/marked.py", maps=2, reduces=1)
        write_corpus(cluster.input, files=2)
        cluster.start_driver("--max-attempts", "2")
        cluster.start_worker("w", None, "--job-allow", "txmr.examples.*")
        self.assertEqual(cluster.wait(), 1, cluster.log())
        self.assertIn("refused by the worker: this worker runs only jobs matching --job-allow "
                      f"txmr.examples.*, not '{os.path.join(JOBS, 'marked.py')}'", cluster.log())
        self.assertEqual(cluster.scratch_files(), [], "the job's code ran")
        self.assertIn("matches no --job-allow pattern", cluster.log("w"))

