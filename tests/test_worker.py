"""
The worker, run for real against a scripted driver connected in memory.

The driver here is a raw AMP peer that hands out the tasks a test gives it
and records every command it hears; the worker's endpoint connects to a new
one in memory (L{twisted.test.iosim}), its clock is a L{task.Clock}, and its
task code is a fake run in a fake thread: no port, no sleep, no file.
"""

import os
import threading
from collections import deque

from twisted.internet import defer, error, task
from twisted.internet.interfaces import IStreamClientEndpoint
from twisted.protocols import amp
from twisted.test import iosim
from twisted.trial import unittest
from zope.interface import implementer

from txmr import protocol
from txmr.core.errors import StaleReport
from txmr.core.spec import Done, Run, TaskSpec, Wait, answer_to_json
from txmr.core.states import Kind
from txmr.data.attempt import RecordError, TaskCancelled
from txmr.data.layout import Layout
from txmr.worker.address import client_endpoint_string
from txmr.worker.execution import Executor
from txmr.worker.service import WorkerService

JOB = "txmr.examples.wordcount"


def spec(index, kind=Kind.MAP):
    """
    A task spec; attempt ids are the index plus one, unique in a test.
    """
    if kind is Kind.MAP:
        return TaskSpec(kind=kind, index=index, attempt=index + 1, job=JOB, intermediate="mid",
                        n_map=8, n_reduce=1, input="in", splits=[[f"in-{index}", 0, 10]])
    return TaskSpec(kind=kind, index=index, attempt=100 + index, job=JOB, intermediate="mid",
                    n_map=8, n_reduce=1, output="out")


def counters(s):
    return {"txmr": {"records": s.index}}


class FakeDriver(amp.AMP):
    """
    A driver that hands out its tasks in order, holds a waiting GetTask
    while attempts are out, says the job is over once every attempt is
    reported (unless not C{ends}), and records each command it hears as
    C{(name, arguments)}.
    """

    def __init__(self, tasks=(), refuse=None, heartbeat=1.0, answer_hello=True,
                 hang_up=False, refuse_reports=False, ends=True):
        super().__init__()
        self.tasks = deque(tasks)
        self.ends = ends
        self.out = set()
        self.refuse = refuse
        self.heartbeat = heartbeat
        self.answer_hello = answer_hello
        self.hang_up = hang_up
        self.refuse_reports = refuse_reports
        self.heard = []
        self.held = []

    def connectionMade(self):
        super().connectionMade()
        if self.hang_up:
            self.transport.loseConnection()

    def names(self):
        return [name for name, _ in self.heard]

    def reports(self):
        return [args for name, args in self.heard if name in ("TaskDone", "TaskFailed")]

    def _next(self):
        if self.tasks:
            s = self.tasks.popleft()
            self.out.add(s.attempt)
            return Run(s)
        return Done(True) if self.ends and not self.out else Wait()

    def _after_report(self, attempt, ask):
        self.out.discard(attempt)
        while self.held and self.ends and not self.tasks and not self.out:
            self.held.pop(0).callback(answer_to_json(Done(True)))
        if self.refuse_reports:
            raise StaleReport("another attempt won")
        return answer_to_json(self._next()) if ask else {}

    @protocol.Hello.responder
    def hello(self, version, host, pid, nonce=None, proof=None, url=None):
        self.heard.append(("Hello", dict(version=version, host=host, pid=pid, proof=proof)))
        if self.refuse is not None:
            raise self.refuse
        if not self.answer_hello:
            return defer.Deferred()
        return {"worker": "w1", "job": JOB, "heartbeat": self.heartbeat}

    @protocol.GetTask.responder
    def get_task(self, wait=None):
        self.heard.append(("GetTask", dict(wait=wait)))
        answer = self._next()
        if wait and isinstance(answer, Wait):
            held = defer.Deferred()
            self.held.append(held)
            return held
        return answer_to_json(answer)

    @protocol.TaskDone.responder
    def task_done(self, kind, index, attempt, counters, ask=None, output=None):
        self.heard.append(("TaskDone", dict(kind=kind, index=index, attempt=attempt,
                                            counters=counters, ask=ask)))
        return self._after_report(attempt, ask)

    @protocol.TaskFailed.responder
    def task_failed(self, kind, index, attempt, error, traceback, record, ask=None):
        self.heard.append(("TaskFailed", dict(kind=kind, index=index, attempt=attempt,
                                              error=error, traceback=traceback,
                                              record=record, ask=ask)))
        return self._after_report(attempt, ask)


@implementer(IStreamClientEndpoint)
class MemoryEndpoint:
    """
    Connects each time to a new L{FakeDriver} in memory, or fails to connect
    while C{refusing}; remembers when it was asked to connect.
    """

    def __init__(self, clock, make_driver, refusing=False):
        self.clock = clock
        self.make_driver = make_driver
        self.refusing = refusing
        self.attempts = []
        self.drivers = []
        self.pumps = []

    def connect(self, factory):
        self.attempts.append(self.clock.seconds())
        if self.refusing:
            return defer.fail(error.ConnectionRefusedError())
        worker = factory.buildProtocol(None)
        driver = self.make_driver()
        self.drivers.append(driver)
        self.pumps.append(iosim.connect(driver, iosim.makeFakeServer(driver), worker,
                                        iosim.makeFakeClient(worker), greet=False,
                                        clock=self.clock))
        return defer.succeed(worker)

    def flush(self):
        # Every connection, each time (a list, not any()'s short cut), until
        # none moves data.
        while any([pump.flush() for pump in self.pumps]):
            pass


class Threads:
    """
    The injected thread runner: it counts its calls, and runs each at once
    or, while C{hold} is set, when the test calls L{release}.
    """

    def __init__(self):
        self.calls = 0
        self.hold = False
        self.held = []

    def __call__(self, f, *args):
        self.calls += 1
        if not self.hold:
            return defer.maybeDeferred(f, *args)
        d = defer.Deferred()
        self.held.append((d, f, args))
        return d

    def release(self):
        d, f, args = self.held.pop(0)
        d.callback(f(*args))


class FakeTasks:
    """
    The injected C{run_task}: it records each attempt it runs with the
    thread call it ran in, takes C{seconds} of the clock, raises what
    C{raises} gives for an attempt, and stops when cancelled.
    """

    def __init__(self, threads, clock, seconds=0.0):
        self.threads = threads
        self.clock = clock
        self.seconds = seconds
        self.raises = {}
        self.runs = []

    def __call__(self, job, spec, cancel):
        self.runs.append((self.threads.calls, spec.attempt))
        if self.seconds:
            self.clock.advance(self.seconds)
        if spec.attempt in self.raises:
            self.raises[spec.attempt]()
        if cancel.is_set():
            raise TaskCancelled("attempt cancelled by the driver")
        return counters(spec)

    def attempts(self):
        return [attempt for _, attempt in self.runs]


class Clock(task.Clock):
    """
    A fake clock that fails a test whose code schedules calls without end
    (a busy loop), where it would otherwise hang.
    """

    limit = 10_000

    def __init__(self):
        super().__init__()
        self.scheduled = 0

    def callLater(self, delay, f, *args, **kwargs):
        self.scheduled += 1
        if self.scheduled > self.limit:
            raise RuntimeError(f"more than {self.limit} calls scheduled: a busy loop?")
        return super().callLater(delay, f, *args, **kwargs)


class WorkerTests(unittest.TestCase):
    """
    A L{WorkerService} on a L{MemoryEndpoint}.
    """

    def setUp(self):
        self.clock = Clock()
        self.threads = Threads()
        self.tasks = FakeTasks(self.threads, self.clock)
        self.exits = []

    def start(self, tasks=(), give_up=60.0, refusing=False, run_task=None,
              run_in_thread=None, **driver_options):
        """
        Start a worker whose endpoint connects to new L{FakeDriver}s made
        with C{tasks} and C{driver_options}; return the first.
        """
        self.endpoint = MemoryEndpoint(
            self.clock, lambda: FakeDriver(tasks, **driver_options), refusing)
        executor = Executor(run_in_thread or self.threads, run_task or self.tasks,
                            load_job=lambda name: name)
        self.worker = WorkerService(
            self.endpoint, self.clock, give_up=give_up,
            on_exit=lambda code, message: self.exits.append((code, message)),
            host="test-host", pid=123, name="memory", executor=executor)
        self.worker.startService()
        self.addCleanup(self.stop)
        self.flush()
        return self.endpoint.drivers[0] if self.endpoint.drivers else None

    def stop(self):
        if self.worker.running:
            stopped = self.worker.stopService()
            self.flush()
            self.successResultOf(stopped)

    def flush(self):
        self.endpoint.flush()

    def advance(self, seconds, step=1.0):
        """
        Let C{seconds} of the clock pass, in steps, moving data between.
        """
        for _ in range(round(seconds / step)):
            self.clock.advance(step)
            self.flush()

    # -- the job's course -----------------------------------------------------

    def test_hello_then_every_task_run_and_reported(self):
        """
        The worker says Hello with its identity and the protocol's version,
        runs every task the driver hands out, reports each with TaskDone
        and its counters, and exits 0 when the driver says the job is over.
        """
        specs = [spec(0), spec(1), spec(2), spec(0, Kind.REDUCE)]
        driver = self.start(specs)
        self.assertEqual(driver.heard[0], ("Hello", dict(
            version=protocol.PROTOCOL_VERSION, host="test-host", pid=123, proof=None)))
        self.assertEqual(self.tasks.attempts(), [s.attempt for s in specs])
        self.assertEqual(
            [{k: r[k] for k in ("kind", "index", "attempt", "counters")}
             for r in driver.reports()],
            [dict(kind=str(s.kind), index=s.index, attempt=s.attempt, counters=counters(s))
             for s in specs])
        self.assertEqual(self.exits, [(0, "the driver says the job is over")])
        self.assertEqual(self.successResultOf(self.worker.done), 0)

    def test_report_that_asks_gets_the_next_task(self):
        """
        Each report asks for the next task, and its answer is that task: the
        worker asks GetTask once, for its first task only.
        """
        self.tasks.seconds = 1.0
        driver = self.start([spec(0), spec(1), spec(2)])
        self.assertEqual(driver.names(),
                         ["Hello", "GetTask", "TaskDone", "TaskDone", "TaskDone"])
        self.assertEqual([r["ask"] for r in driver.reports()], [True, True, True])
        self.assertEqual(self.tasks.attempts(), [1, 2, 3])
        self.assertEqual(self.exits, [(0, "the driver says the job is over")])

    def test_prefetch_while_a_quick_task_runs(self):
        """
        After a quick task, the worker asks GetTask without waiting while
        its next task runs.
        """
        self.threads.hold = True
        driver = self.start([spec(0), spec(1), spec(2)])
        self.threads.release()          # task 0: quick
        self.flush()
        self.assertEqual(len(self.threads.held), 1, "task 1 is running")
        self.assertEqual(driver.names(), ["Hello", "GetTask", "TaskDone", "GetTask"])
        self.assertEqual(driver.heard[-1], ("GetTask", {"wait": False}))
        self.assertEqual(driver.out, {2, 3}, "the prefetch brought task 2")

    def test_quick_tasks_known_run_as_one_batch(self):
        """
        After quick tasks, a prefetched task and the one a report brings run
        together, in one call of the thread runner.
        """
        self.threads.hold = True
        driver = self.start([spec(i) for i in range(4)])
        self.threads.release()          # task 0: quick
        self.flush()
        self.threads.release()          # task 1, while task 2 was prefetched
        self.flush()
        self.threads.release()          # tasks 2 and 3
        self.flush()
        self.assertEqual(self.tasks.runs, [(1, 1), (2, 2), (3, 3), (3, 4)])
        self.assertEqual([r["attempt"] for r in driver.reports()], [1, 2, 3, 4])
        self.assertEqual(self.exits, [(0, "the driver says the job is over")])

    def test_no_prefetch_after_a_slow_task(self):
        """
        After a slow task the worker asks for nothing more while its next
        task runs, and runs one task at a time.
        """
        self.tasks.seconds = 1.0
        driver = self.start([spec(i) for i in range(4)])
        self.assertNotIn(("GetTask", {"wait": False}), driver.heard)
        self.assertEqual(self.tasks.runs, [(1, 1), (2, 2), (3, 3), (4, 4)])
        self.assertEqual(self.exits, [(0, "the driver says the job is over")])

    # -- cancel ---------------------------------------------------------------

    def test_cancel_stops_the_running_attempt_which_is_not_reported(self):
        """
        A Cancel sets the running attempt's event, in its thread; the
        attempt is not reported, and the worker asks for more work.
        """
        started, seen, threads = threading.Event(), [], []

        def run_in_thread(f, *args):
            d, result = defer.Deferred(), []
            thread = threading.Thread(target=lambda: result.append(f(*args)))
            threads.append((thread, d, result))
            thread.start()
            return d

        def run_task(job, task_spec, cancel):
            started.set()
            seen.append(cancel.wait(10))
            raise TaskCancelled("attempt cancelled by the driver")

        driver = self.start([spec(0)], run_task=run_task, run_in_thread=run_in_thread)
        self.assertTrue(started.wait(10))
        self.assertTrue(self.worker.busy)
        cancelled = driver.callRemote(protocol.Cancel, attempt=1)
        self.flush()
        self.successResultOf(cancelled)
        thread, d, result = threads[0]
        thread.join(10)
        d.callback(result[0])
        self.flush()
        self.assertEqual(seen, [True])
        self.assertFalse(self.worker.busy)
        self.assertEqual(driver.reports(), [])
        self.assertEqual(driver.heard[-1], ("GetTask", {"wait": True}))

    def test_cancel_of_one_attempt_in_a_batch_spares_the_other(self):
        """
        In a batch of two, the attempt the driver cancels is not run nor
        reported; the other is.
        """
        self.threads.hold = True
        driver = self.start([spec(i) for i in range(4)])
        self.threads.release()
        self.flush()
        self.threads.release()
        self.flush()
        # Tasks 2 and 3 wait in one thread call.
        self.assertEqual(self.threads.calls, 3)
        cancelled = driver.callRemote(protocol.Cancel, attempt=4)
        self.flush()
        self.successResultOf(cancelled)
        self.threads.release()
        self.flush()
        self.assertEqual(self.tasks.attempts(), [1, 2, 3])
        self.assertEqual([r["attempt"] for r in driver.reports()], [1, 2, 3])

    # -- failures ---------------------------------------------------------------

    def test_task_that_raises_is_reported_failed_with_its_traceback(self):
        """
        An attempt whose code raises is reported with TaskFailed: the
        error's one line, its traceback, and no record.
        """
        def fail():
            raise ValueError("bad line\nsecond line")

        self.tasks.raises[1] = fail
        driver = self.start([spec(0)])
        [report] = driver.reports()
        self.assertEqual(driver.heard[-1][0], "TaskFailed")
        self.assertEqual(report["error"], "ValueError: bad line")
        self.assertIn("Traceback (most recent call last)", report["traceback"])
        self.assertIn("in fail", report["traceback"])
        self.assertIsNone(report["record"])

    def test_record_error_is_reported_with_its_record_and_cause(self):
        """
        A L{RecordError} is reported with the record it names, and the
        message and traceback of the error the map code raised.
        """
        def fail():
            try:
                {}["missing"]
            except KeyError as e:
                raise RecordError(["in-0", 0, 3], e)

        self.tasks.raises[1] = fail
        driver = self.start([spec(0)])
        [report] = driver.reports()
        self.assertEqual(report["record"], ["in-0", 0, 3])
        self.assertEqual(report["error"], "KeyError: 'missing'")
        self.assertIn('{}["missing"]', report["traceback"])
        self.assertNotIn("RecordError", report["traceback"])

    def test_refused_report_is_forgotten(self):
        """
        A report the driver refuses (stale) changes nothing: the worker
        asks for work again, and removes the attempt's files, which the
        driver will never commit.
        """
        (temporary, _), = Layout.of(spec(0)).files(Kind.MAP, 0, spec(0).attempt)
        os.makedirs("mid", exist_ok=True)
        with open(temporary, "wb") as f:
            f.write(b"the attempt's output")
        driver = self.start([spec(0)], refuse_reports=True, ends=False)
        self.assertEqual(driver.names(), ["Hello", "GetTask", "TaskDone", "GetTask"])
        self.assertEqual(driver.heard[-1], ("GetTask", {"wait": True}))
        self.assertEqual(self.exits, [])
        self.assertFalse(os.path.exists(temporary))

    # -- the end ----------------------------------------------------------------

    def test_job_over_exits_0_and_cancels_the_running_attempt(self):
        """
        JobOver ends the worker with code 0 and the driver's message, and
        the attempt it was running is cancelled, not reported.
        """
        self.threads.hold = True
        driver = self.start([spec(0)])
        told = driver.callRemote(protocol.JobOver, ok=False, message="the job failed")
        self.flush()
        self.successResultOf(told)
        self.assertEqual(self.exits, [(0, "the job failed")])
        self.assertEqual(self.successResultOf(self.worker.done), 0)
        self.threads.release()
        self.flush()
        self.assertEqual(driver.reports(), [])

    def test_unauthorized_exits_1_with_the_reason(self):
        """
        A driver that refuses the Hello ends the worker with code 1 and a
        message that says why; the worker does not try again.
        """
        self.start(refuse=protocol.Unauthorized("this driver wants a secret"))
        self.assertEqual(self.exits, [
            (1, "the driver at memory refused this worker: this driver wants a secret")])
        self.advance(10)
        self.assertEqual(len(self.endpoint.attempts), 1)

    def test_gives_up_after_give_up_seconds_out_of_reach(self):
        """
        A worker that cannot connect keeps trying, and exits 1 once
        C{give_up} seconds have passed, not before.
        """
        self.start(give_up=30.0, refusing=True)
        self.advance(30)
        self.assertEqual(self.exits, [])
        self.assertNoResult(self.worker.done)
        self.assertGreater(len(self.endpoint.attempts), 10)
        self.advance(1)
        self.assertEqual(self.exits, [(1, "cannot reach the driver at memory for 30s")])

    def test_only_a_hello_answer_stops_the_give_up_clock(self):
        """
        A peer that accepts the connection but never answers Hello is not a
        driver: the worker says Hello again when it times out, and still
        gives up on time.
        """
        driver = self.start(give_up=60.0, answer_hello=False)
        self.advance(60)
        self.assertEqual(self.exits, [])
        self.assertEqual(driver.names(), ["Hello"] * 3, "at 0, 30 and 60 s")
        self.advance(1)
        self.assertEqual(self.exits, [(1, "cannot reach the driver at memory for 60s")])

    def test_a_joined_worker_does_not_give_up(self):
        """
        Once a driver has answered Hello, time passing is no reason to exit.
        """
        self.start(give_up=10.0, heartbeat=100.0, ends=False)
        self.advance(120)
        self.assertEqual(self.exits, [])
        self.assertEqual(len(self.endpoint.attempts), 1)

    # -- connections --------------------------------------------------------------

    def test_silent_driver_is_dropped_after_ten_heartbeats(self):
        """
        Nothing from the driver for ten heartbeat periods: the worker drops
        the connection and joins again on a new one.
        """
        self.start(heartbeat=2.0, ends=False)
        self.advance(19.9, step=0.1)
        self.assertEqual(len(self.endpoint.drivers), 1)
        self.advance(0.2, step=0.1)
        self.assertEqual(len(self.endpoint.drivers), 2)
        self.assertEqual(self.endpoint.drivers[1].names(), ["Hello", "GetTask"])

    def test_lost_connection_cancels_the_attempt_and_reconnects(self):
        """
        When the connection drops, the running attempt is cancelled (its
        task goes to another worker), and the worker joins again.
        """
        self.threads.hold = True
        driver = self.start([spec(0)])
        driver.transport.loseConnection()
        self.flush()
        self.threads.release()
        self.advance(1, step=0.01)
        self.assertEqual(self.tasks.attempts(), [], "the attempt saw its cancel at once")
        self.assertEqual(len(self.endpoint.drivers), 2)
        self.assertEqual(self.endpoint.drivers[1].names()[0], "Hello")
        self.assertEqual(self.exits, [])

    def test_hangups_count_for_back_off(self):
        """
        A server that accepts and hangs up at once is tried again later and
        later, as if its connections had failed.
        """
        self.start(hang_up=True)
        self.advance(5, step=0.01)
        gaps = [b - a for a, b in zip(self.endpoint.attempts, self.endpoint.attempts[1:])]
        self.assertGreater(len(gaps), 8)
        self.assertLess(gaps[0], 0.1)
        # Back-off from 0.02 s by 1.5 a try, with up to 0.02 s of jitter
        # and 0.01 s of this test's steps: ClientService alone would count
        # each a first failure, and wait under 0.07 s every time.
        for tries, gap in enumerate(gaps, 1):
            self.assertGreaterEqual(gap, 0.02 * 1.5 ** tries - 0.01)
        self.assertGreater(gaps[8], 0.5)


class AddressTests(unittest.SynchronousTestCase):
    """
    L{client_endpoint_string}.
    """

    def test_forms_of_an_address(self):
        self.assertEqual(client_endpoint_string("http://localhost:5000/"),
                         "tcp:host=localhost:port=5000")
        self.assertEqual(client_endpoint_string("10.0.0.1:80"), "tcp:host=10.0.0.1:port=80")
        self.assertEqual(client_endpoint_string("[::1]:80"), "tcp:host=\\:\\:1:port=80")
        self.assertEqual(client_endpoint_string("5000"), "tcp:host=127.0.0.1:port=5000")
        self.assertEqual(client_endpoint_string("unix:/tmp/d.sock"), "unix:/tmp/d.sock")
