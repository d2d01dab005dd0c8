"""
The driver's AMP side, in memory: a whole driver service on a
C{MemoryReactorClock}, raw AMP clients joined to its port's factory by
C{iosim}, time moved by hand.  No port is opened and nothing sleeps.
"""

import os

from twisted.internet import defer
from twisted.protocols import amp
from twisted.trial import unittest

from txmr import protocol
from txmr.core.spec import TaskSpec
from txmr.core.states import AttemptState, TaskState

from tests.memory import FakeWorker, MemoryDriverMixin, Silent


def spec_of(answer):
    return TaskSpec.from_json(answer["task"])


class ProtocolTests(MemoryDriverMixin, unittest.TestCase):
    def test_hello(self):
        client = self.connect()
        self.assertEqual(client.job, "txmr.examples.wordcount")
        self.assertIn(client.worker, self.scheduler.workers)

    def test_must_say_hello(self):
        client = self.connect(hello=False)
        self.failureResultOf(self.call(client, protocol.GetTask), protocol.UnknownWorker)

    def test_version_mismatch(self):
        client = self.connect(hello=False)
        self.failureResultOf(self.call(client, protocol.Hello, version=999, host="h", pid=1),
                             protocol.VersionMismatch)
        self.assertEqual(self.scheduler.workers, {})

    def test_whole_job_over_amp(self):
        client = self.connect()
        while True:
            answer = self.successResultOf(self.call(client, protocol.GetTask))
            if answer["action"] == "done":
                break
            self.assertEqual(answer["action"], "run")
            self.successResultOf(self.run_and_report(client, spec_of(answer)))
        self.assertEqual(answer["task"], {"ok": True})
        self.assertEqual(client.over, [(True, "job finished")])
        self.assertEqual(self.successResultOf(self.driver.done), 0)
        self.assertEqual(self.exits, [0])
        with open(os.path.join(self.config.output, "out-0")) as f:
            self.assertEqual(f.read(), "0\t1\n1\t1\ndog\t2\nfox\t2\nlazy\t2\nquick\t2\nthe\t4\n")

    def test_report_that_asks_is_answered_with_the_next_task(self):
        """
        A report with C{ask} carries the worker's next action in its answer:
        a whole job runs on reports alone after the first question.  A
        report without C{ask} is answered with nothing.
        """
        client = self.connect()
        first = spec_of(self.successResultOf(self.call(client, protocol.GetTask)))
        plain = self.successResultOf(self.run_and_report(client, first))
        self.assertEqual(plain, {"action": None, "task": None})
        answer = self.successResultOf(self.call(client, protocol.GetTask))
        kinds = []
        while answer["action"] == "run":
            spec = spec_of(answer)
            kinds.append(spec.kind)
            answer = self.successResultOf(self.run_and_report(client, spec, ask=True))
        self.assertEqual(kinds, ["map", "reduce"])
        self.assertEqual((answer["action"], answer["task"]), ("done", {"ok": True}))
        self.assertEqual(self.successResultOf(self.driver.done), 0)

    def test_refused_report_that_asks_gets_no_task(self):
        a = self.connect()
        spec = spec_of(self.successResultOf(self.call(a, protocol.GetTask)))
        self.failureResultOf(
            self.call(a, protocol.TaskDone, kind="map", index=spec.index, attempt=12345,
                      counters={}, ask=True), protocol.StaleReport)
        self.assertEqual(len(self.scheduler.workers[a.worker].attempts), 1)

    def test_worker_joining_as_the_job_ends_is_told(self):
        """
        A worker that says Hello after the job ended, while the driver waits
        for the others to hear it, is told the job is over too, and the
        driver waits for it before exiting.
        """
        slow = self.connect(kind=type("Slow", (FakeWorker,), {"hold_job_over": True}))
        self.assertEqual(self.run_job(slow)["action"], "done")
        self.assertNoResult(self.driver.done)
        late = self.connect(kind=type("Late", (FakeWorker,), {"hold_job_over": True}))
        self.assertEqual(late.over, [(True, "job finished")])
        slow.heard.callback(None)
        self.flush()
        self.assertNoResult(self.driver.done)
        late.heard.callback(None)
        self.flush()
        self.assertEqual(self.successResultOf(self.driver.done), 0)

    def test_refusals(self):
        """
        Unknown tasks, unknown attempts and reports about another worker's
        attempt are refused with their own errors, and change nothing.
        """
        a = self.connect()
        b = self.connect()
        spec = spec_of(self.successResultOf(self.call(a, protocol.GetTask)))
        for kind, index, attempt, error in [
                ("map", 99, spec.attempt, protocol.UnknownTask),
                ("sort", 0, spec.attempt, protocol.UnknownTask),
                ("map", spec.index, 12345, protocol.StaleReport)]:
            self.failureResultOf(
                self.call(a, protocol.TaskDone, kind=kind, index=index, attempt=attempt,
                          counters={}), error)
        self.failureResultOf(self.run_and_report(b, spec), protocol.StaleReport)
        task = self.scheduler.task("map", spec.index)
        self.assertEqual(task.state, TaskState.RUNNING)
        self.successResultOf(self.run_and_report(a, spec))
        self.assertEqual(task.state, TaskState.FINISHED)
        # A duplicate of an accepted report is refused too.
        self.failureResultOf(
            self.call(a, protocol.TaskDone, kind="map", index=spec.index,
                      attempt=spec.attempt, counters={}), protocol.StaleReport)
        self.assertTrue(os.path.exists(self.coordinator.layout.map_output(spec.index, 0)))

    def test_report_from_lost_worker_refused(self):
        a = self.connect(kind=Silent)
        b = self.connect()
        spec = spec_of(self.successResultOf(self.call(a, protocol.GetTask)))
        # a computes, but stops answering pings: after the heartbeat
        # timeout the driver gives up on it and drops its connection.
        self.advance(6)
        self.assertTrue(self.scheduler.workers[a.worker].lost)
        self.assertTrue(a.server_transport.disconnecting)
        retry = spec_of(self.successResultOf(self.call(b, protocol.GetTask)))
        self.assertEqual(retry.index, spec.index)
        self.assertNotEqual(retry.attempt, spec.attempt)
        # Its late report, had it arrived, is refused; its files are removed.
        from txmr.data.run import run_task
        run_task(self.job, spec)
        self.assertRaises(protocol.StaleReport, self.coordinator.task_done,
                          a.worker, "map", spec.index, spec.attempt, {})
        self.assertFalse(any(name.startswith(("mr-", ".mr-"))
                             for name in os.listdir(self.config.intermediate)))

    def test_commit_that_fails_is_a_failed_attempt(self):
        """
        A report whose files cannot be committed (here: they vanished) is
        accepted as a report, but the attempt fails and the task is
        retried; the worker is not blamed for it, and the connection stays.
        """
        client = self.connect()
        spec = spec_of(self.successResultOf(self.call(client, protocol.GetTask)))
        from txmr.data.run import run_task
        run_task(self.job, spec)
        for temporary, _ in self.coordinator.layout.files(spec.kind, spec.index, spec.attempt):
            os.unlink(temporary)
        self.successResultOf(self.call(
            client, protocol.TaskDone, kind="map", index=spec.index, attempt=spec.attempt,
            counters={}))
        attempt = self.scheduler.attempts[spec.attempt]
        self.assertEqual(attempt.state, AttemptState.FAILED)
        self.assertIn("cannot commit the attempt's files", attempt.error)
        self.assertEqual(self.scheduler.workers[client.worker].failed_attempts, [])
        self.assertEqual(attempt.task.state, TaskState.READY)
        self.assertFalse(client.transport.disconnecting)
        retry = spec_of(self.successResultOf(self.call(client, protocol.GetTask)))
        self.assertEqual(retry.index, 1 - spec.index, "the retry goes elsewhere first")

    def test_malformed_counters_are_dropped(self):
        client = self.connect()
        spec = spec_of(self.successResultOf(self.call(client, protocol.GetTask)))
        from txmr.data.run import run_task
        run_task(self.job, spec)
        self.successResultOf(self.call(
            client, protocol.TaskDone, kind="map", index=spec.index, attempt=spec.attempt,
            counters={"g": {"ok": 2, "bad": "x", "no": None}, "h": [1]}))
        self.assertEqual(self.scheduler.summed_counters(), {"g": {"ok": 2}})

    def test_long_poll(self):
        """
        A worker with nothing to do is answered when a task becomes ready,
        not before.
        """
        a = self.connect()
        b = self.connect()
        first = spec_of(self.successResultOf(self.call(a, protocol.GetTask)))
        second = spec_of(self.successResultOf(self.call(b, protocol.GetTask)))
        waiting = self.call(a, protocol.GetTask)
        self.advance(3)
        self.assertNoResult(waiting)
        self.successResultOf(self.run_and_report(a, first))
        self.assertNoResult(waiting)  # reduces wait for every map
        self.successResultOf(self.run_and_report(b, second))
        answer = self.successResultOf(waiting)
        self.assertEqual((answer["action"], spec_of(answer).kind), ("run", "reduce"))

    def test_long_poll_expires(self):
        a = self.connect()
        b = self.connect()
        self.call(a, protocol.GetTask)
        self.call(b, protocol.GetTask)
        waiting = self.call(a, protocol.GetTask)
        self.advance(29)
        self.assertNoResult(waiting)
        self.advance(1)
        self.assertEqual(self.successResultOf(waiting), {"action": "wait", "task": None})

    def test_second_long_poll_answers_the_first(self):
        a = self.connect()
        b = self.connect()
        self.call(a, protocol.GetTask)
        self.call(b, protocol.GetTask)
        first = self.call(a, protocol.GetTask)
        second = self.call(a, protocol.GetTask)
        self.assertEqual(self.successResultOf(first)["action"], "wait")
        self.assertNoResult(second)

    def test_failure_report_retries_then_fails_job(self):
        """
        Every attempt fails: the lone worker gets the other map before a
        retry of the one that failed on it, then the latest retry, whose
        second failure fails the job; only the end of a huge traceback is
        kept, and no output is left.
        """
        client = self.connect()
        given = []
        for n in range(3):
            spec = spec_of(self.successResultOf(self.call(client, protocol.GetTask)))
            given.append(spec.index)
            self.successResultOf(self.call(
                client, protocol.TaskFailed, kind="map", index=spec.index,
                attempt=spec.attempt, error="ValueError: no",
                traceback="Traceback...\n" + "x" * 100_000, record=None))
        self.assertEqual(given, [0, 1, 1])
        self.assertEqual(self.successResultOf(self.driver.done), 1)
        self.assertEqual(self.exits, [1])
        ok, message = client.over[0]
        self.assertFalse(ok)
        self.assertIn("map task 1 failed 2 times", message)
        self.assertIn("ValueError: no", message)
        self.assertEqual(os.listdir(self.config.output), [])
        kept = self.coordinator.last_traceback()
        self.assertLess(len(kept), 16_100)
        self.assertTrue(kept.startswith("[84013 characters cut]\n"), kept[:40])

    def test_second_driver_on_the_same_directories_refuses(self):
        """
        A second driver on the same output directory refuses to start,
        naming the holder, and removes none of the first one's files; once
        the first job is over, the directories are free again.
        """
        import dataclasses

        from txmr.driver.service import makeService
        from txmr.plan import ConfigError

        client = self.connect()
        spec = spec_of(self.successResultOf(self.call(client, protocol.GetTask)))
        self.successResultOf(self.run_and_report(client, spec))
        committed = self.coordinator.layout.map_output(spec.index, 0)
        second = dataclasses.replace(self.config, intermediate=self.mktemp())
        e = self.assertRaises(ConfigError, makeService, second, self.reactor)
        self.assertIn(f"{self.config.output} is in use by a txmr run of", str(e))
        self.assertIn(f"pid {os.getpid()}", str(e))
        self.assertTrue(os.path.exists(committed))
        self.run_job(client)
        self.assertEqual(self.successResultOf(self.driver.done), 0)
        self.assertEqual(sorted(os.listdir(self.config.output)), ["_SUCCESS", "out-0"])
        third = makeService(dataclasses.replace(self.config), self.reactor)
        third.coordinator.plan.release()

    def test_a_peer_that_says_no_hello_is_dropped(self):
        silent = self.connect(hello=False)
        self.advance(29)
        self.assertFalse(silent.server_transport.disconnecting)
        self.advance(2)
        self.assertTrue(silent.server_transport.disconnecting)
        joined = self.connect()
        self.advance(60)
        self.assertFalse(joined.server_transport.disconnecting, "a worker has no such limit")

    def test_a_peer_that_sends_much_before_hello_is_dropped(self):
        """
        One unfinished AMP box of many 64 KiB values: the driver would keep
        it all in memory; before Hello it stops at 1 MiB.
        """
        greedy = self.connect(hello=False)
        value = b"x" * 60_000
        for i in range(20):
            greedy.transport.write(b"\x00\x04k%03d" % i + len(value).to_bytes(2, "big") + value)
        self.flush()
        self.assertTrue(greedy.server_transport.disconnecting)

    def test_malformed_bytes_drop_only_that_connection(self):
        bad = self.connect(hello=False)
        # A key, its value, then a key length AMP forbids (keys are < 256).
        bad.transport.write(b"\x00\x05hello\x00\x01x" + b"\x01\x00" + b"k" * 256)
        self.flush()
        self.assertTrue(bad.server_transport.disconnecting, "the bad connection is dropped")
        self.assertEqual(self.scheduler.workers, {})
        good = self.connect()
        answer = self.successResultOf(self.call(good, protocol.GetTask))
        self.assertEqual(answer["action"], "run")


class ReportAnswerTests(MemoryDriverMixin, unittest.TestCase):
    """
    A joined worker's reports are answered by the driver itself, not by
    AMP's dispatch (L{txmr.driver.connection.DriverProtocol.ampBoxReceived}):
    what goes on the wire must be what AMP would send.
    """

    maps = 2

    def driver_side(self, client):
        """
        The driver's protocol of the client's connection (behind the
        listener's first-byte sniffer).
        """
        server = [pump.server for pump in self.pumps if pump.client is client][0]
        return getattr(server, "inner", server)

    def sent_by(self, client, amp_dispatch, **report):
        """
        The boxes the driver sends back for one TaskDone, answered by its
        own path or (C{amp_dispatch}) by AMP's.
        """
        server = self.driver_side(client)
        if amp_dispatch:
            self.patch(server, "ampBoxReceived",
                       lambda box: amp.AMP.ampBoxReceived(server, box))
        sent = []
        self.patch(server, "_safeEmit", lambda box: sent.append(dict(box)))
        self.call(client, protocol.TaskDone, **report)
        return sent

    def test_answers_as_amp_does(self):
        """
        An answer that runs the next task, and a refusal, are the same boxes
        either way (the refusal's tag and code included).
        """
        a, b = self.connect(), self.connect()
        specs = [spec_of(self.successResultOf(self.call(c, protocol.GetTask))) for c in (a, b)]
        stale = dict(kind="map", index=specs[0].index, attempt=999, counters={}, ask=True)
        own, amps = self.sent_by(a, False, **stale), self.sent_by(b, True, **dict(
            stale, index=specs[1].index))
        self.assertEqual(own[0][b"_error_code"], b"STALE_REPORT")
        self.assertEqual(own[0][b"_error_description"], amps[0][b"_error_description"]
                         .replace(str(specs[1].index).encode(), str(specs[0].index).encode()))
        self.assertEqual(sorted(own[0]), sorted(amps[0]))
        from txmr.data.run import run_task
        run_task(self.job, specs[0])
        done = self.sent_by(a, False, kind="map", index=specs[0].index,
                            attempt=specs[0].attempt, counters={}, ask=True)
        # The other map still runs: nothing for this worker yet.
        self.assertEqual(done[0], {b"_answer": done[0][b"_answer"], b"action": b"wait"})
        self.assertEqual(self.scheduler.task("map", specs[0].index).state, TaskState.FINISHED)

    def test_unexpected_error_is_amps_unknown_error(self):
        """
        A bug in the driver while it answers a report: logged with its
        traceback, the worker told an unknown error, its connection closed,
        as AMP does; the driver goes on.
        """
        client = self.connect()
        spec = spec_of(self.successResultOf(self.call(client, protocol.GetTask)))

        def broken(*args, **kwargs):
            raise ZeroDivisionError("a bug")

        self.patch(self.coordinator, "task_done", broken)
        self.failureResultOf(
            self.call(client, protocol.TaskDone, kind="map", index=spec.index,
                      attempt=spec.attempt, counters={}, ask=True), amp.UnknownRemoteError)
        self.assertEqual(len(self.flushLoggedErrors(ZeroDivisionError)), 1)
        self.assertTrue(client.server_transport.disconnecting)
        other = self.connect()
        self.assertEqual(self.successResultOf(self.call(other, protocol.GetTask))["action"],
                         "run")

    def test_malformed_report_from_a_worker(self):
        """
        A joined worker's report whose arguments do not parse: AMP's unknown
        error too, and only that connection closed.
        """
        client = self.connect()
        self.call(client, protocol.GetTask)
        box = amp.AmpBox(_command=b"TaskDone", _ask=b"77", kind=b"map", index=b"x",
                         attempt=b"1", counters=b"{}")
        sent = []
        self.patch(self.driver_side(client), "_safeEmit",
                   lambda answer: sent.append(dict(answer)))
        client.transport.write(box.serialize())
        self.flush()
        self.assertEqual(sent[0][b"_error"], b"77")
        self.assertEqual(sent[0][b"_error_code"], amp.UNKNOWN_ERROR_CODE)
        self.assertEqual(len(self.flushLoggedErrors(ValueError)), 1)


    def both_ways(self, setup, box=None, **report):
        """
        What the driver sends back for one report, answered by its own path
        and by AMP's, each on a connection of its own prepared by C{setup}
        (called with the driver's protocol), as the sorted items of each box.
        """
        sent = []
        for amp_dispatch in (False, True):
            client = self.connect()
            spec = spec_of(self.successResultOf(self.call(client, protocol.GetTask)))
            setup(self.driver_side(client))
            if box is None:
                boxes = self.sent_by(client, amp_dispatch, kind="map", index=spec.index,
                                     attempt=spec.attempt, counters={}, ask=True, **report)
            else:
                server = self.driver_side(client)
                if amp_dispatch:
                    self.patch(server, "ampBoxReceived",
                               lambda b, server=server: amp.AMP.ampBoxReceived(server, b))
                boxes = []
                self.patch(server, "_safeEmit", lambda b: boxes.append(dict(b)))
                server.dataReceived(box(spec).serialize())
                self.flush()
            sent.append([sorted(b.items()) for b in boxes])
        return sent

    def test_a_box_that_is_also_an_answer_goes_to_amp(self):
        """
        A report box that also carries C{_answer} is AMP's to judge (an
        answer to nothing asked: the connection is dropped), never taken for
        a report: its task is not committed.
        """
        box = lambda spec: amp.AmpBox(  # noqa: E731
            _command=b"TaskDone", _ask=b"5", _answer=b"12345", kind=b"map",
            index=str(spec.index).encode(), attempt=str(spec.attempt).encode(), counters=b"{}")
        own, amps = self.both_ways(lambda server: None, box=box)
        self.assertEqual(own, amps)
        self.assertEqual([t.state for t in self.scheduler.maps].count(TaskState.FINISHED), 0)

    def test_remote_amp_error_keeps_its_code(self):
        """
        A responder's own L{amp.RemoteAmpError} is answered with its code,
        and the connection kept, as AMP does.
        """
        def busy(*args, **kwargs):
            raise amp.RemoteAmpError(b"BUSY", "try later")

        own, amps = self.both_ways(lambda server: self.patch(self.coordinator, "task_done",
                                                             busy))
        self.assertEqual(own, amps)
        self.assertIn((b"_error_code", b"BUSY"), own[0])

    def test_a_responder_that_waits_is_answered_when_it_fires(self):
        def later(server):
            self.patch(type(server), "_next",
                       lambda self, ask: defer.succeed({"action": "wait"}))

        own, amps = self.both_ways(later)
        self.assertEqual(own, amps)
        self.assertIn((b"action", b"wait"), own[0])

    def test_an_answer_that_cannot_be_sent_is_amps_unhandled_error(self):
        """
        An answer AMP cannot send (a value over its 64 KiB limit): logged
        with its traceback, and the connection closed, as AMP does; not
        blamed on the worker as malformed AMP.
        """
        client = self.connect()
        self.call(client, protocol.GetTask)
        d = self.call(client, protocol.TaskDone, kind="\x00" * 30000, index=0, attempt=1,
                      counters={}, ask=True)
        self.assertTrue(self.flushLoggedErrors(amp.TooLong))
        self.assertTrue(client.server_transport.disconnecting)
        d.addErrback(lambda failure: None)


class BigSpecTests(MemoryDriverMixin, unittest.TestCase):
    """
    A task spec far over AMP's 64 KiB value limit.
    """

    maps = 1
    files = 3000

    def test_big_spec(self):
        client = self.connect()
        answer = self.successResultOf(self.call(client, protocol.GetTask))
        self.assertEqual(len(spec_of(answer).splits), 3000)


class HeartbeatTests(MemoryDriverMixin, unittest.TestCase):
    """
    The heartbeat timer: pings, silent workers, task timeouts.
    """

    maps = 1
    files = 1
    options = {"task_timeout": 20}

    def test_silent_worker_loses_its_task(self):
        silent = self.connect(kind=Silent)
        alive = self.connect()
        answer = self.successResultOf(self.call(silent, protocol.GetTask))
        self.assertEqual(answer["action"], "run")
        waiting = self.call(alive, protocol.GetTask)
        self.advance(5)
        self.assertGreaterEqual(alive.pings, 5)
        self.assertFalse(self.scheduler.workers[silent.worker].lost)
        self.assertNoResult(waiting)
        self.advance(1)
        self.assertTrue(self.scheduler.workers[silent.worker].lost)
        self.assertTrue(silent.server_transport.disconnecting)
        self.assertFalse(self.scheduler.workers[alive.worker].lost)
        # The waiting worker got the task back, at once.
        self.assertEqual(spec_of(self.successResultOf(waiting)).index, 0)

    def test_dropped_connection_loses_worker(self):
        client = self.connect()
        self.call(client, protocol.GetTask)
        self.assertEqual(self.scheduler.maps[0].state, TaskState.RUNNING)
        client.transport.loseConnection()
        self.flush()
        self.assertTrue(self.scheduler.workers[client.worker].lost)
        self.assertEqual(self.scheduler.maps[0].state, TaskState.READY)

    def test_attempt_past_the_task_timeout_is_cancelled(self):
        client = self.connect()
        spec = spec_of(self.successResultOf(self.call(client, protocol.GetTask)))
        self.advance(20)
        self.assertEqual(client.cancelled, [])
        self.advance(1)
        self.assertEqual(client.cancelled, [spec.attempt])
        attempt = self.scheduler.attempts[spec.attempt]
        self.assertEqual(attempt.state, AttemptState.TIMED_OUT)
        self.failureResultOf(self.run_and_report(client, spec), protocol.StaleReport)


class SecretTests(MemoryDriverMixin, unittest.TestCase):
    options = {"secret": "s3cret"}

    def test_amp_hello_needs_the_secret(self):
        for secret in (None, "wrong"):
            client = self.connect(hello=False)
            self.failureResultOf(self.hello(client, secret), protocol.Unauthorized)
            self.reactor.advance(0)
            self.assertTrue(client.server_transport.disconnecting, "no second guess")
        self.assertEqual(self.scheduler.workers, {})
        good = self.connect(secret="s3cret")
        self.assertIn(good.worker, self.scheduler.workers)
