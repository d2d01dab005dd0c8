"""
The driver's HTTP side: the seed's curl session over a real socket (the
same port as AMP), leases of HTTP workers, /api/job, /metrics, and the
status page in headless Chromium.
"""

import json
import os
import shutil

from twisted.internet import defer, reactor, threads, utils
from twisted.internet.task import deferLater
from twisted.web.client import Agent
from twisted.web.http_headers import Headers
from twisted.trial import unittest

from twisted.internet import endpoints
from twisted.internet.protocol import Factory, Protocol

from txmr import protocol
from txmr.core.errors import SchedulingError
from txmr.core.model import WorkerInfo
from txmr.core.spec import TaskSpec
from txmr.core.states import AttemptState, TaskState
from txmr.data.run import run_task
from txmr.driver.config import DriverConfig
from txmr.driver.seed import SeedWorkers
from txmr.driver.status import LIST_WORKERS, job_state
from txmr.driver.service import makeService
from txmr.job import load_job
from tests.memory import FakeWorker, MemoryDriverMixin, write_input
from tests.oracle import read_output, reference


class DriverFixture:
    """
    A real driver on a loopback port, as a browser, curl or a seed worker
    meets it; raw AMP clients over real TCP.
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
            poll=30, max_attempts=2, linger=0)
        self.driver = makeService(self.config, reactor)
        self.coordinator = self.driver.coordinator
        self.job = load_job(self.config.job)
        self.addCleanup(self.driver.stopService)
        return self.driver.startService()

    @defer.inlineCallbacks
    def connect(self):
        port = self.driver.port.getHost().port
        endpoint = endpoints.TCP4ClientEndpoint(reactor, "127.0.0.1", port)
        client = yield endpoint.connect(Factory.forProtocol(FakeWorker))
        self.addCleanup(client.transport.loseConnection)
        answer = yield client.callRemote(protocol.Hello, version=protocol.PROTOCOL_VERSION,
                                         host="test", pid=os.getpid())
        client.worker = answer["worker"]
        return client


class _Collect(Protocol):
    def __init__(self, done):
        self.done = done
        self.chunks = []

    def dataReceived(self, data):
        self.chunks.append(data)

    def connectionLost(self, reason):
        self.done.callback(b"".join(self.chunks))


def read_body(response):
    """
    A response's body (twisted's readBody warns about this transport).
    """
    done = defer.Deferred()
    response.deliverBody(_Collect(done))
    return done


class _Body:
    """
    A request body for Agent.
    """

    def __init__(self, data):
        from twisted.web.client import FileBodyProducer
        import io

        self.producer = FileBodyProducer(io.BytesIO(data))


class HTTPFixture(DriverFixture):
    def url(self, path):
        return f"http://127.0.0.1:{self.driver.port.getHost().port}{path}".encode()

    @defer.inlineCallbacks
    def http(self, method, path, pid="4242", body=None):
        headers = Headers({b"worker-pid": [pid.encode()]} if pid else {})
        producer = _Body(body).producer if body is not None else None
        response = yield Agent(reactor).request(method, self.url(path), headers, producer)
        data = yield read_body(response)
        return response.code, data


def seed_work(task):
    """
    Do a task as the seed's workers did: words of the input files to
    `word 1` lines in mr-M-R; the sums of those to out-R.
    """
    if task["type"] == "mapper":
        buckets = {}
        for path in task["i_path"]:
            with open(path) as f:
                for word in f.read().split():
                    buckets.setdefault(ord(word[0]) % task["n_buckets"], []).append(word)
        for bucket, words in buckets.items():
            with open(os.path.join(task["o_path"], f"mr-{task['id']}-{bucket}"), "w") as f:
                f.writelines(f"{w} 1\n" for w in words)
        return
    counts = {}
    for m in range(task["n_mappers"]):
        path = os.path.join(task["i_path"], f"mr-{m}-{task['id']}")
        if os.path.exists(path):
            with open(path) as f:
                for line in f:
                    word, n = line.split()
                    counts[word] = counts.get(word, 0) + int(n)
    with open(os.path.join(task["o_path"], f"out-{task['id']}"), "w") as f:
        f.writelines(f"{w} {n}\n" for w, n in counts.items())


class SeedAPITests(HTTPFixture, unittest.TestCase):
    maps = 2
    files = 3

    @defer.inlineCallbacks
    def test_seed_curl_session(self):
        """
        The seed's session: a worker asks for tasks, reads and posts their
        status, until it is told the job is finished; the answers are the
        seed's, field for field.
        """
        code, body = yield self.http(b"PUT", "/task", pid=None)
        self.assertEqual(code, 400)
        code, body = yield self.http(b"PUT", "/task")
        self.assertEqual(code, 200)
        first = json.loads(body)
        self.assertEqual(first["type"], "mapper")
        self.assertEqual((first["id"], first["status"], first["job_status"]), (0, 3, 1))
        self.assertEqual(first["n_buckets"], 1)
        # Its own directory: its files are moved into place when committed.
        self.assertEqual(os.path.dirname(first["o_path"]), self.config.intermediate)
        self.assertEqual(os.path.basename(first["o_path"]), f".txmr-attempt-{first['attempt']}")
        self.assertTrue(all(p.startswith(self.config.input) for p in first["i_path"]))
        self.assertEqual(len(first["job_uuid"]), 32)
        seed_work(first)
        code, body = yield self.http(b"GET", "/task/mapper/0/status")
        self.assertEqual((code, json.loads(body)), (200, {"status": 3}))
        code, _ = yield self.http(b"GET", "/task/mapper/7/status")
        self.assertEqual(code, 404)
        code, _ = yield self.http(b"GET", "/task/sorter/0/status")
        self.assertEqual(code, 404)
        code, body = yield self.http(b"GET", "/task/reducer/0/status")
        self.assertEqual(json.loads(body), {"status": 1})
        code, _ = yield self.http(b"POST", "/task/mapper/0/status", body=b"{not json")
        self.assertEqual(code, 400)
        # Another worker cannot finish a task it does not hold.
        code, _ = yield self.http(b"POST", "/task/mapper/0/status", pid="999",
                                  body=b'{"status": 4}')
        self.assertEqual(code, 400)
        code, body = yield self.http(b"POST", "/task/mapper/0/status", body=b'{"status": 4}')
        self.assertEqual((code, body), (200, b"Ok\n"))
        code, _ = yield self.http(b"POST", "/task/mapper/0/status", body=b'{"status": 4}')
        self.assertEqual(code, 400, "the task is no longer RUNNING")
        code, body = yield self.http(b"PUT", "/task")
        second = json.loads(body)
        self.assertEqual((second["type"], second["id"]), ("mapper", 1))
        seed_work(second)
        # Nothing ready while the last map runs: try later.
        code, body = yield self.http(b"PUT", "/task", pid="777")
        self.assertEqual(set(json.loads(body)), {"job_uuid", "job_status"})
        self.assertEqual(json.loads(body)["job_status"], 1)
        yield self.http(b"POST", "/task/mapper/1/status", body=b'{"status": 4}')
        code, body = yield self.http(b"PUT", "/task")
        reducer = json.loads(body)
        self.assertEqual((reducer["type"], reducer["id"], reducer["n_mappers"]), ("reducer", 0, 2))
        self.assertEqual((reducer["i_path"], os.path.dirname(reducer["o_path"])),
                         (self.config.intermediate, self.config.output))
        seed_work(reducer)
        yield self.http(b"POST", "/task/reducer/0/status", body=b'{"status": 4}')
        code, body = yield self.http(b"PUT", "/task")
        self.assertEqual(json.loads(body), {"job_uuid": first["job_uuid"], "job_status": 2})
        # 777 asked for a task: it is waited for; 999 only posted a report,
        # which makes no session, so nobody waits for it.
        self.assertFalse(self.driver.done.called, "worker-pid 777 was not told yet")
        code, body = yield self.http(b"PUT", "/task", pid="777")
        self.assertEqual(json.loads(body)["job_status"], 2)
        code = yield self.driver.done
        self.assertEqual(code, 0)

    @defer.inlineCallbacks
    def test_status_question_makes_no_session_and_bad_bodies_get_400(self):
        """
        Only a request for a task makes a session: a status question or a
        report from a new worker-pid does not (each session is a worker the
        driver waits for at the end), nor does a pid too long to keep.
        """
        code, _ = yield self.http(b"GET", "/task/mapper/0/status", pid="curious")
        self.assertEqual(code, 200)
        code, body = yield self.http(b"POST", "/task/mapper/0/status", pid="forger",
                                     body=b'{"status": 4}')
        self.assertEqual(code, 400)
        self.assertIn(b"no live session", body)
        code, _ = yield self.http(b"PUT", "/task", pid="x" * 101)
        self.assertEqual(code, 400)
        self.assertEqual(self.coordinator.scheduler.workers, {})
        code, body = yield self.http(b"PUT", "/task")
        task = json.loads(body)
        code, _ = yield self.http(b"POST", f"/task/mapper/{task['id']}/status",
                                  body=b"[" * 60_000)
        self.assertEqual(code, 400)

    def test_access_log_hides_the_token(self):
        from twisted.web.test.requesthelper import DummyRequest

        from txmr.driver.web import redacted_log_line

        request = DummyRequest([b"api", b"job"])
        request.uri = b"/api/job?token=s3cret&x=1"
        request.method = b"GET"
        request.requestHeaders.setRawHeaders(b"referer", [b"http://h:5000/?token=s3cret"])
        request.code, request.sentLength = 200, 10
        line = redacted_log_line("[01/Dec/2026:00:00:00 +0000]", request)
        self.assertNotIn("s3cret", line)
        self.assertIn("token=REDACTED&x=1", line)
        self.assertIn("http://h:5000/?token=REDACTED", line)
        self.assertEqual(request.getHeader(b"referer"), b"http://h:5000/?token=s3cret")

    @defer.inlineCallbacks
    def test_a_hot_looping_worker_is_answered_slowly_when_there_is_nothing_to_do(self):
        """
        The seed's worker asks again at once when told there is no task:
        against the seed's driver, thousands of requests a second.  Told
        nothing, it now waits for its answer, so it asks about once a
        second, and the others are served meanwhile.
        """
        for pid in ("1", "2"):
            code, body = yield self.http(b"PUT", "/task", pid=pid)
            self.assertEqual(json.loads(body)["type"], "mapper")
        answers, started = 0, reactor.seconds()
        while reactor.seconds() - started < 2.5:
            code, body = yield self.http(b"PUT", "/task", pid="3")
            self.assertEqual((code, json.loads(body)["job_status"]), (200, 1))
            answers += 1
        self.assertLessEqual(answers, 4)
        code, body = yield self.http(b"GET", "/api/job", pid=None)
        self.assertEqual(code, 200, "others are served meanwhile")

    @defer.inlineCallbacks
    def test_seed_report_without_files_is_a_failed_attempt(self):
        """
        A POST that says FINISHED for a task whose files are not there (a
        forged or mistaken report) does not finish it: the attempt fails,
        the task is ready again, and no output is ever missing.
        """
        code, body = yield self.http(b"PUT", "/task")
        first = json.loads(body)
        code, body = yield self.http(b"POST", f"/task/mapper/{first['id']}/status",
                                     body=b'{"status": 4}')
        self.assertEqual(code, 400)
        self.assertIn(b"wrote none of its output files", body)
        task = self.coordinator.scheduler.task("map", first["id"])
        self.assertEqual(task.state, TaskState.READY)
        self.assertEqual(task.attempts[0].state, AttemptState.FAILED)
        self.assertIn("wrote none of its output files", task.attempts[0].error)

    @defer.inlineCallbacks
    def test_forged_reduce_report_never_finishes_the_job(self):
        """
        The finding's own story: after the maps, a forged FINISHED for a
        reduce whose out-R was never written is refused, and the job is not
        over; the reduce runs again and the output is whole.
        """
        for _ in range(2):
            code, body = yield self.http(b"PUT", "/task")
            task = json.loads(body)
            seed_work(task)
            yield self.http(b"POST", f"/task/mapper/{task['id']}/status", body=b'{"status": 4}')
        code, body = yield self.http(b"PUT", "/task", pid="forger")
        reducer = json.loads(body)
        self.assertEqual(reducer["type"], "reducer")
        code, body = yield self.http(b"POST", f"/task/reducer/{reducer['id']}/status",
                                     pid="forger", body=b'{"status": 4}')
        self.assertEqual(code, 400)
        self.assertIn(b"wrote no", body)
        self.assertFalse(self.driver.done.called, "the job did not end")
        code, body = yield self.http(b"PUT", "/task")
        again = json.loads(body)
        self.assertEqual((again["type"], again["id"]), ("reducer", reducer["id"]))
        seed_work(again)
        code, _ = yield self.http(b"POST", f"/task/reducer/{again['id']}/status",
                                  body=b'{"status": 4}')
        self.assertEqual(code, 200)
        with open(os.path.join(self.config.output, f"out-{again['id']}")) as f:
            counted = sum(int(line.split()[1]) for line in f)
        words = 0
        for name in os.listdir(self.config.input):
            with open(os.path.join(self.config.input, name)) as f:
                words += len(f.read().split())
        self.assertEqual(counted, words, "every word of the input, once")
        self.assertTrue(self.coordinator.scheduler.ok, "the job finished, with its output")

    @defer.inlineCallbacks
    def test_seed_worker_files_feed_txmr_reducers(self):
        """
        A seed worker writes its map output in place, as `word 1` lines; a
        txmr reducer reads it.
        """
        for _ in range(2):
            code, body = yield self.http(b"PUT", "/task")
            t = json.loads(body)
            with open(os.path.join(t["o_path"], f"mr-{t['id']}-0"), "w") as f:
                for path in t["i_path"]:
                    with open(path) as source:
                        for line in source:
                            f.writelines(f"{w.lower()} 1\n" for w in line.split())
            yield self.http(b"POST", f"/task/mapper/{t['id']}/status", body=b'{"status": 4}')
        worker = self.coordinator.join(WorkerInfo(host="test"))
        attempt = self.coordinator.assign(worker)
        run_task(self.job, self.coordinator.plan.spec(attempt))
        self.coordinator.task_done(worker, "reduce", 0, attempt.id, {})
        with open(os.path.join(self.config.output, "out-0")) as f:
            out = dict(line.rstrip("\n").split("\t") for line in f)
        self.assertEqual(out["the"], "6")
        self.assertEqual(out["fox"], "3")

    @defer.inlineCallbacks
    def test_api_job_and_metrics(self):
        client = yield self.connect()
        yield self.http(b"PUT", "/task")
        code, body = yield self.http(b"GET", "/api/job", pid=None)
        job = json.loads(body)
        self.assertEqual(job["state"], "running")
        self.assertEqual(job["counts"]["map"]["running"], 1)
        self.assertEqual(job["counts"]["reduce"]["blocked"], 1)
        self.assertEqual({w["via"] for w in job["workers"]}, {"amp", "http"})
        self.assertEqual(job["tasks"][0]["attempts"][0]["state"], "running")
        code, body = yield self.http(b"GET", "/metrics", pid=None)
        text = body.decode()
        self.assertIn('txmr_tasks{kind="map",state="running"} 1.0', text)
        self.assertIn('txmr_tasks{kind="reduce",state="blocked"} 1.0', text)
        self.assertIn('txmr_workers{state="live"} 2.0', text)
        self.assertIn("txmr_job_state 1.0", text)
        code, body = yield self.http(b"GET", "/", pid=None)
        self.assertIn(b"<title>txmr job</title>", body)
        self.assertTrue(client.worker)


class LeaseTests(MemoryDriverMixin, unittest.TestCase):
    maps = 1
    files = 1
    options = {"http_lease": 60}

    def test_http_lease_runs_out(self):
        seed = SeedWorkers(self.coordinator, lease=60)
        attempt = seed.assign("1")
        self.advance(30)
        seed.worker("1")  # a request renews the lease
        self.advance(59)
        self.assertEqual(attempt.task.state, TaskState.RUNNING)
        self.advance(2)
        self.assertEqual(attempt.task.state, TaskState.READY)
        self.assertEqual(attempt.state, AttemptState.LOST)
        # The worker comes back: a new session, and its old task is not its own.
        again = seed.assign("1")
        self.assertEqual(again.task, attempt.task)
        self.assertNotEqual(again.id, attempt.id)
        self.assertNotEqual(again.worker, attempt.worker)

    def test_seed_worker_past_its_lease_writes_nowhere_that_counts(self):
        """
        The seed's workers write under final names; given those of the job,
        one whose lease ran out could write over a committed file while
        reducers read it.  Each attempt has a directory of its own, removed
        when the attempt is lost: what the late worker writes reaches no one.
        """
        seed = SeedWorkers(self.coordinator, lease=60)
        attempt = seed.assign("1")
        o_path = self.coordinator.files.seed_directory(attempt)
        self.assertEqual(os.path.dirname(o_path), self.config.intermediate)
        with open(os.path.join(o_path, "mr-0-0"), "w") as f:
            f.write("stale-garbage 1000000\n")
        self.advance(61)
        self.assertEqual(attempt.state, AttemptState.LOST)
        self.assertFalse(os.path.exists(o_path))
        client = self.connect()
        self.run_job(client)
        # The late worker writes on, as the seed's does, after the commit.
        self.assertRaises(FileNotFoundError, open, os.path.join(o_path, "mr-0-0"), "w")
        self.assertEqual(read_output(self.config.output, self.config.reducers),
                         reference(self.config.job, self.config.input))

    def test_job_end_waits_for_http_workers_at_most_a_lease(self):
        """
        The seed's driver told HTTP workers the job was over when they next
        asked: the driver waits for a live one, but not beyond its lease.
        """
        seed = SeedWorkers(self.coordinator, lease=60)
        seed.worker("idle")
        client = self.connect()
        self.run_job(client)
        self.assertEqual(client.over, [(True, "job finished")])
        self.advance(59)
        self.assertNoResult(self.driver.done)
        self.advance(1)
        self.assertEqual(self.successResultOf(self.driver.done), 0)

    def test_job_end_waits_for_http_workers_until_they_ask(self):
        seed = SeedWorkers(self.coordinator, lease=60)
        seed.worker("idle")
        client = self.connect()
        self.run_job(client)
        self.advance(10)
        self.assertNoResult(self.driver.done)
        self.assertIsNone(seed.assign("idle"))
        self.assertEqual(self.successResultOf(self.driver.done), 0)


class SessionLimitTests(MemoryDriverMixin, unittest.TestCase):
    """
    What anyone who can name a worker-pid can cost the driver: sessions
    that expire are pruned, /api/job lists a bounded number of workers, and
    pids that hold every map without doing it get backups.
    """

    maps = 4
    files = 4
    options = {"http_lease": 60}

    def test_expired_sessions_are_pruned_and_the_list_is_capped(self):
        seed = SeedWorkers(self.coordinator, lease=60)
        held = [seed.assign(f"holder-{i}") for i in range(4)]
        self.assertTrue(all(held))
        for round in range(5):
            for i in range(400):
                self.assertIsNone(seed.assign(f"{round}-{i}"))
            for _ in range(61):
                self.advance(1)
                for i in range(4):
                    seed.renew(f"holder-{i}")
        # Those of the last round are live (their lease runs out later); of
        # the earlier rounds, only a remainder not swept yet is left.
        self.assertLess(len(self.scheduler.workers), 3 * 400)
        self.assertLess(len(seed), 3 * 400)
        self.assertTrue(all(self.coordinator.is_live(f"h{i}") for i in range(1, 5)),
                        "the holders' sessions stay")
        job = job_state(self.coordinator.view())
        self.assertEqual(len(job["workers"]), LIST_WORKERS)
        self.assertEqual(job["worker_counts"]["live"] + job["worker_counts"]["lost"],
                         len(self.scheduler.workers))
        self.assertEqual({w["id"] for w in job["workers"][:4]}, {"h1", "h2", "h3", "h4"},
                         "busy workers first")
        self.assertLess(len(json.dumps(job)), 60_000)

    def test_a_pid_back_after_its_lease_leaves_no_old_session(self):
        seed = SeedWorkers(self.coordinator, lease=60)
        for pid in range(4):
            self.assertIsNotNone(seed.assign(str(pid)))
        self.assertIsNone(seed.assign("idle"))
        self.advance(61)
        self.assertIsNone(seed.renew("idle"))
        self.assertIsNotNone(seed.assign("idle"))
        # The idle pid's first session (h5) ran nothing: it is forgotten.
        # The others ran a map each: they stay in the job's history.
        self.assertEqual(sorted(self.scheduler.workers), ["h1", "h2", "h3", "h4", "h6"])

    def test_seed_pids_holding_every_map_get_backups(self):
        """
        Four pids take the four maps and keep their leases with status
        questions, doing nothing: with no finished map there is no median,
        but a txmr worker gets a backup of each after --speculate-after,
        and the job ends with the exact output.
        """
        seed = SeedWorkers(self.coordinator, lease=60)
        held = [seed.assign(str(pid)) for pid in range(4)]
        self.assertEqual(sorted(a.task.index for a in held), [0, 1, 2, 3])
        client = self.connect()
        asked = self.call(client, protocol.GetTask)
        for _ in range(11):
            self.assertNoResult(asked)
            self.advance(1)
            for pid in range(4):
                seed.renew(str(pid))
        answer = self.successResultOf(asked)
        backups = []
        while answer["action"] == "run":
            spec = TaskSpec.from_json(answer["task"])
            backups.append(self.scheduler.attempts[spec.attempt])
            answer = self.successResultOf(self.run_and_report(client, spec, ask=True))
        self.assertEqual(answer["action"], "done")
        self.assertEqual([a.speculative for a in backups], [True] * 4 + [False])
        self.assertEqual({a.state for a in held}, {AttemptState.KILLED})
        self.assertEqual(read_output(self.config.output, 1),
                         reference(self.config.job, self.config.input))
        # A seed pid that reports its map now is refused: it lost.
        with self.assertRaises(SchedulingError):
            seed.finished("0", held[0].task)


def chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


class StatusPageTests(HTTPFixture, unittest.TestCase):
    maps = 4
    files = 4

    @defer.inlineCallbacks
    def stuck_job(self):
        """
        Two workers: w1 runs map 0, then fails map 1 and map 3; w2 runs map
        2.  Both ready maps failed on w1, so they wait for w2.

        @return: the two clients, and the attempt id of map 1's failure.
        """
        first = yield self.connect()
        answer = yield first.callRemote(protocol.GetTask)
        spec = TaskSpec.from_json(answer["task"])
        counters = yield threads.deferToThread(run_task, self.job, spec)
        yield first.callRemote(protocol.TaskDone, kind="map", index=spec.index,
                               attempt=spec.attempt, counters=counters)
        answer = yield first.callRemote(protocol.GetTask)
        spec = TaskSpec.from_json(answer["task"])
        second = yield self.connect()
        yield second.callRemote(protocol.GetTask)
        failed = []
        for _ in range(2):
            yield first.callRemote(protocol.TaskFailed, kind="map", index=spec.index,
                                   attempt=spec.attempt, error=f"ValueError: bad map {spec.index}",
                                   traceback=f"Traceback (most recent call last):\n  File "
                                             f"\"job.py\", line 3, in map\nValueError: bad "
                                             f"map {spec.index}\n", record=None)
            failed.append(spec)
            answer = yield first.callRemote(protocol.GetTask, wait=False)
            if answer["action"] == "run":
                spec = TaskSpec.from_json(answer["task"])
        self.assertEqual([s.index for s in failed], [1, 3])
        return first, second, failed[0].attempt

    def chromium(self, *args):
        browser = chromium()
        if browser is None:
            raise unittest.SkipTest("no Chromium installed (Debian: apt-get install chromium)")
        profile = os.path.abspath(self.mktemp())
        return utils.getProcessOutputAndValue(browser, [
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            f"--user-data-dir={profile}", "--virtual-time-budget=4000", *args],
            env=dict(os.environ))

    @defer.inlineCallbacks
    def test_page_in_chromium(self):
        """
        Headless Chromium runs the page's script against a stuck job; the
        DOM it ends with shows the job, the workers, the timeline, the
        failed attempts with the traceback asked for (#attempt-N), and in
        words what the job waits for; and a screenshot of it is taken.
        """
        first, second, map1 = yield self.stuck_job()
        out, err, code = yield self.chromium("--dump-dom", self.url(f"/#attempt-{map1}").decode())
        dom = out.decode("utf-8", "replace")
        self.assertEqual(code, 0, err)
        self.assertIn("txmr job <span id=\"job\" class=\"muted\">txmr.examples.wordcount", dom)
        self.assertIn('class="state running"', dom)
        self.assertIn("1 / 4 done, 1 running", dom)
        self.assertIn(f"<td>{first.worker}</td>", dom)
        self.assertIn("<td>map 0</td><td>finished</td>", dom)
        self.assertIn("<td>map 2</td><td>running</td>", dom)
        self.assertEqual(dom.count('class="attempt"'), 4, "four attempts on the timeline")
        self.assertIn("txmr.map_input_records", dom)
        self.assertIn(f"2 map tasks ready, no idle worker may take them: both failed on "
                      f"{first.worker}; waiting for {second.worker} to finish", dom)
        self.assertEqual(dom.count('class="failed'), 2, "two rows of failed attempts")
        self.assertIn('<td class="error">ValueError: bad map 3</td>', dom)
        self.assertIn('<pre class="traceback">Traceback (most recent call last):', dom)
        self.assertIn("ValueError: bad map 1\n</pre>", dom)
        self.assertNotIn("ValueError: bad map 3\n</pre>", dom, "only the one asked for")
        shot = os.path.abspath(self.mktemp()) + ".png"
        out, err, code = yield self.chromium(
            "--hide-scrollbars", "--window-size=1100,1000", f"--screenshot={shot}",
            self.url(f"/#attempt-{map1}").decode())
        self.assertEqual(code, 0, err)
        with open(shot, "rb") as f:
            png = f.read()
        self.assertTrue(png.startswith(b"\x89PNG"), "a PNG screenshot")
        self.assertGreater(len(png), 20_000, "a page, not a blank")
        target = os.environ.get("TXMR_SCREENSHOT")
        if target:
            shutil.copyfile(shot, target)

    @defer.inlineCallbacks
    def test_api_says_what_the_job_waits_for(self):
        """
        /api/job says in words what the job waits for, and lists the failed
        attempts; /api/attempt/N gives one's traceback.
        """
        first, second, map1 = yield self.stuck_job()
        code, body = yield self.http(b"GET", "/api/job", pid=None)
        job = json.loads(body)
        self.assertEqual(job["waiting_for"],
                         f"2 map tasks ready, no idle worker may take them: both failed on "
                         f"{first.worker}; waiting for {second.worker} to finish")
        self.assertEqual([(f["task"], f["worker"], f["error"], f["traceback"])
                          for f in job["failures"]],
                         [("map 1", first.worker, "ValueError: bad map 1", True),
                          ("map 3", first.worker, "ValueError: bad map 3", True)])
        code, body = yield self.http(b"GET", f"/api/attempt/{map1}", pid=None)
        self.assertEqual(code, 200)
        self.assertTrue(json.loads(body)["traceback"].endswith("ValueError: bad map 1\n"))
        for missing in ("/api/attempt/999", "/api/attempt/x", "/api/attempt/"):
            code, _ = yield self.http(b"GET", missing, pid=None)
            self.assertEqual(code, 404, missing)
        # w2 leaves: w1 is the only worker left, so it may take the retries
        # (and map 2, given back) when it next asks.
        second.transport.loseConnection()
        yield deferLater(reactor, 0.1)
        code, body = yield self.http(b"GET", "/api/job", pid=None)
        self.assertEqual(json.loads(body)["waiting_for"],
                         f"3 map tasks ready, to be handed to {first.worker} as it asks")
        yield first.callRemote(protocol.GetTask, wait=False)
        code, body = yield self.http(b"GET", "/api/job", pid=None)
        self.assertRegex(json.loads(body)["waiting_for"],
                         r"^2 map tasks ready, waiting for a worker: w1 busy")
