"""
Shared-nothing jobs: a driver without --intermediate, whose workers keep
their map output on their own disks and serve it to each other over HTTP.
Real driver and worker processes; where the test runs as root on Linux,
each worker also gets a private mount namespace with its own tmpfs at the
same work directory path, so that nothing can be read through a shared
directory.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import urllib.request

from twisted.internet import defer
from twisted.trial import unittest

from tests.cluster import JOBS, Cluster, twistd, wait_for, write_corpus
from tests.memory import MemoryDriverMixin
from tests.oracle import read_output, reference
from txmr import protocol
from txmr.core.spec import TaskSpec
from txmr.core.states import TaskState
from txmr.data.fetch import fetch, fetch_token


def private_mounts():
    """
    Why workers cannot each have a private tmpfs here, or L{None}.
    """
    if not sys.platform.startswith("linux"):
        return "private mount namespaces are Linux's"
    if os.geteuid() != 0:
        return "a mount namespace of its own, with a tmpfs, needs root"
    if shutil.which("unshare") is None:
        return "no unshare(1)"
    probe = subprocess.run(["unshare", "--mount", "sh", "-c",
                            "mount -t tmpfs tmpfs /mnt && umount /mnt"],
                           capture_output=True)
    if probe.returncode:
        return f"unshare --mount cannot mount a tmpfs here: {probe.stderr.decode()[:200]}"
    return None


class SharedNothingCluster(Cluster):
    """
    A L{Cluster} whose driver has no intermediate directory.
    """

    def driver_args(self, *extra, listen=True):
        args = super().driver_args(*extra, listen=listen)
        i = args.index("--intermediate")
        return args[:i] + args[i + 2:]

    def start_private_worker(self, name, work_dir, isolated, *extra):
        """
        A worker whose work directory is C{work_dir}; with C{isolated}, in
        a mount namespace of its own with a fresh tmpfs mounted there.
        """
        command = twistd() + ["--pidfile=", "-n", "txmr-worker", "--driver", self.address,
                              "--give-up", "30", "--work-dir", work_dir, *extra]
        if isolated:
            command = ["unshare", "--mount", "--propagation", "private", "sh", "-c",
                       'mount -t tmpfs tmpfs "$0" && exec "$@"', work_dir] + command
        log = open(os.path.join(self.base, name + ".log"), "wb")
        process = subprocess.Popen(command, cwd=self.base, env=self.env, stdout=log,
                                   stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        log.close()
        self.processes[name] = process
        return process


class SharedNothingTests(unittest.TestCase):
    def three_workers(self, isolated, secret=False):
        """
        Three workers with a work directory each, none shared: the output
        is the one-process answer, and _SUCCESS is written.  With
        C{isolated}, every worker's work directory is a tmpfs private to it
        (its own mount namespace), at the same path.  With C{secret}, the
        driver and the workers have one, and fetches carry its token.
        """
        # Maps slow enough that the three workers share them.
        cluster = SharedNothingCluster(self, job=os.path.join(JOBS, "slow.py"), maps=6,
                                       reduces=3)
        cluster.env["TXMR_SLOW_SECONDS"] = "0.3"
        write_corpus(cluster.input, files=9, lines=600)
        extra = []
        if secret:
            path = os.path.join(cluster.base, "secret")
            with open(path, "w") as f:
                f.write("a secret of this test\n")
            os.chmod(path, 0o600)
            extra = ["--secret-file", path]
        cluster.start_driver(*extra)
        work = os.path.join(cluster.base, "work")
        for i in range(3):
            path = work if isolated else f"{work}-{i}"
            os.makedirs(path, exist_ok=True)
            cluster.start_private_worker(f"w{i}", path, isolated, *extra)
        self.assertEqual(cluster.wait(), 0, cluster.log())
        self.assertEqual(read_output(cluster.output, 3),
                         reference("txmr.examples.wordcount", cluster.input))
        self.assertIn("_SUCCESS", os.listdir(cluster.output))
        self.assertFalse(os.path.exists(cluster.intermediate))
        # Reducers fetched partitions from other workers, over HTTP.
        counters = cluster.summary()["counters"]["txmr"]
        self.assertGreater(counters["shuffle_fetched_partitions"], 0, counters)
        self.assertGreater(counters["shuffle_fetched_bytes"], 0, counters)
        ran_maps = {name.rsplit("-", 1)[1] for name in cluster.scratch_files("running-map-")}
        self.assertGreater(len(ran_maps), 1, "the maps were shared among the workers")
        for i in range(3):
            self.assertEqual(cluster.wait(f"w{i}", 40), 0, cluster.log(f"w{i}"))
            self.assertIn("serving map output", cluster.log(f"w{i}"))
        if isolated:
            # What the workers wrote was in their own tmpfs: nothing of it
            # ever was in the directory this process sees.
            self.assertEqual(os.listdir(work), [])
        else:
            # Each worker removed its job's files as it exited.
            self.assertEqual([os.listdir(f"{work}-{i}") for i in range(3)], [[], [], []])

    def test_three_workers_no_shared_directory(self):
        self.three_workers(isolated=False, secret=True)

    def test_three_workers_private_tmpfs(self):
        """
        As root on Linux: each worker in a mount namespace of its own, its
        work directory a tmpfs of its own at the same path.
        """
        why_not = private_mounts()
        if why_not is not None:
            raise unittest.SkipTest(why_not)
        self.three_workers(isolated=True)

    def test_worker_killed_between_map_and_reduce_phase(self):
        """
        A worker that holds committed map output is killed (SIGKILL) once
        every map is committed and before any reduce has reduced: its maps
        run again on the others, and the output is exact.
        """
        cluster = SharedNothingCluster(self, job=os.path.join(JOBS, "gated_reduce.py"),
                                       maps=6, reduces=2)
        write_corpus(cluster.input, files=9, lines=600)
        cluster.start_driver()
        workers = {}
        for i in range(3):
            process = cluster.start_worker(f"w{i}", None, "--work-dir",
                                           os.path.join(cluster.base, f"work-{i}"))
            workers[process.pid] = f"w{i}"
        wait_for(lambda: cluster.scratch_files("reducing-"), 60, "a reduce to start")
        mapped = {}
        for name in cluster.scratch_files("mapped-"):
            pid = int(name.split("-")[1])
            mapped[pid] = mapped.get(pid, 0) + 1
        victim_pid = max(mapped, key=mapped.get)
        victim = workers[victim_pid]
        cluster.kill(victim, signal.SIGKILL)
        wait_for(lambda: "is lost; the map runs again" in cluster.log(), 30,
                 "the driver to run the victim's maps again")
        with open(os.path.join(cluster.scratch, "go"), "w"):
            pass
        self.assertEqual(cluster.wait(), 0, cluster.log())
        self.assertEqual(read_output(cluster.output, 2),
                         reference("txmr.examples.wordcount", cluster.input))
        # The victim's maps ran again elsewhere: more maps ended than there
        # are map tasks.
        self.assertGreaterEqual(len(cluster.scratch_files("mapped-")), 6 + mapped[victim_pid])
        self.assertTrue(os.path.exists(os.path.join(cluster.output, "_SUCCESS")))


class FetchFailureTests(unittest.TestCase):
    def test_missing_map_output_is_reported_and_the_map_runs_again(self):
        """
        A worker's committed map output disappears (its files are removed
        while it runs) before the reduces fetch it: a reducer reports it,
        the driver runs the map again, and the output is exact.
        """
        cluster = SharedNothingCluster(self, job=os.path.join(JOBS, "gated_map.py"), maps=6,
                                       reduces=2)
        write_corpus(cluster.input, files=9, lines=600)
        with open(os.path.join(cluster.input, "gate.txt"), "w") as f:
            f.write("gate keeper\n")
        cluster.start_driver("--no-speculation")
        work = {}
        for i in range(3):
            work[cluster.start_worker(f"w{i}", None, "--work-dir",
                                      os.path.join(cluster.base, f"work-{i}")).pid] = i
        port = int(cluster.address.rsplit("=", 1)[1])

        def state():
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/job", timeout=10) as r:
                return json.load(r)

        job = wait_for(lambda: (lambda j: j if j["counts"]["map"]["finished"] == 5
                                and cluster.scratch_files("gated-") else None)(state()),
                       60, "every map but the gated one to be committed")
        [gated] = cluster.scratch_files("gated-")
        gated_pid = int(gated.split("-")[1])
        pids = {w["id"]: w["pid"] for w in job["workers"]}
        holders = [pids[a["worker"]] for t in job["tasks"] if t["kind"] == "map"
                   for a in t["attempts"] if a["state"] == "succeeded"]
        victims = [pid for pid in holders if pid != gated_pid]
        self.assertTrue(victims, job)
        victim = max(set(victims), key=victims.count)
        removed = 0
        root = os.path.join(cluster.base, f"work-{work[victim]}")
        for directory in os.listdir(root):
            for name in os.listdir(os.path.join(root, directory)):
                os.unlink(os.path.join(root, directory, name))
                removed += 1
        self.assertGreater(removed, 0)
        with open(os.path.join(cluster.scratch, "go"), "w"):
            pass
        self.assertEqual(cluster.wait(), 0, cluster.log())
        self.assertEqual(read_output(cluster.output, 2),
                         reference("txmr.examples.wordcount", cluster.input))
        log = cluster.log()
        self.assertIn("could not fetch map task", log)
        self.assertIn("the map runs again", log)


class FetchRefusalTests(unittest.TestCase):
    """
    A worker's map output server, on a real port: it serves a committed
    attempt's partition to a request with the secret, and refuses anything
    else.
    """

    job = "0123456789abcdef0123456789abcdef"

    def setUp(self):
        from twisted.internet import reactor

        from txmr.worker.serve import MapOutputStore, site

        root = os.path.abspath(self.mktemp())
        self.store = MapOutputStore(root)
        self.store.start_job(self.job)
        directory = self.store.directory(self.job)
        os.makedirs(directory)
        # Map task 1, attempt 7, committed; attempt 8 written, not committed.
        for attempt in (7, 8):
            for r in range(2):
                with open(os.path.join(directory, f".mr-1-{r}.attempt-{attempt}.tmp"),
                          "wb") as f:
                    f.write(b"partition %d of attempt %d" % (r, attempt))
        self.store.committed(self.job, 7, 1, 2)
        with open(os.path.join(root, "secret-file"), "w") as f:
            f.write("not to be served")
        self.port = reactor.listenTCP(0, site(self.store, "s3cret"), interface="127.0.0.1")
        self.addCleanup(self.port.stopListening)
        self.base = f"http://127.0.0.1:{self.port.getHost().port}"

    def get(self, path, secret="s3cret", raw=None):
        """
        A Deferred of C{(status, body)} for a raw GET of C{path} (sent as it
        is, dots and all).
        """
        from twisted.internet import threads

        def get():
            import http.client

            connection = http.client.HTTPConnection("127.0.0.1", self.port.getHost().port,
                                                    timeout=10)
            token = fetch_token(secret, self.job) if secret else None
            headers = {"Authorization": f"Bearer {token or raw}"} if token or raw else {}
            connection.request("GET", path, headers=headers)
            response = connection.getresponse()
            try:
                return response.status, response.read()
            finally:
                connection.close()

        return threads.deferToThread(get)

    @defer.inlineCallbacks
    def test_committed_partition_is_served(self):
        status, body = yield self.get(f"/job/{self.job}/attempt/7/part/1")
        self.assertEqual((status, body), (200, b"partition 1 of attempt 7"))

    @defer.inlineCallbacks
    def test_fetch_checks_the_checksum(self):
        from twisted.internet import threads

        from txmr.data.fetch import FetchFailed, Source, checksum

        directory = self.store.directory(self.job)
        right = checksum(os.path.join(directory, ".mr-1-0.attempt-7.tmp"))
        dest = os.path.abspath(self.mktemp())
        source = Source(1, 7, self.base, right, len(b"partition 0 of attempt 7"))
        yield threads.deferToThread(fetch, source, self.job, 0, dest, "s3cret")
        with open(dest, "rb") as f:
            self.assertEqual(f.read(), b"partition 0 of attempt 7")
        wrong = Source(1, 7, self.base, "crc32:00000000", source.size)
        with self.assertRaises(FetchFailed) as caught:
            yield threads.deferToThread(fetch, wrong, self.job, 0, dest, "s3cret")
        self.assertIn("checksum", str(caught.exception))
        missing = Source(1, 8, self.base, right, source.size)
        with self.assertRaises(FetchFailed) as caught:
            yield threads.deferToThread(fetch, missing, self.job, 0, dest, "s3cret")
        self.assertIn("404", str(caught.exception))

    @defer.inlineCallbacks
    def test_a_large_partition_streams_whole(self):
        """
        A partition of several blocks arrives whole and checked.
        """
        from twisted.internet import threads

        from txmr.data.fetch import Source, checksum

        path = os.path.join(self.store.directory(self.job), ".mr-2-0.attempt-9.tmp")
        with open(path, "wb") as f:
            f.write(os.urandom(3 << 20) + b"end")
        self.store.committed(self.job, 9, 2, 1)
        dest = os.path.abspath(self.mktemp())
        source = Source(2, 9, self.base, checksum(path), os.path.getsize(path))
        yield threads.deferToThread(fetch, source, self.job, 0, dest, "s3cret")
        with open(dest, "rb") as a, open(path, "rb") as b:
            self.assertEqual(a.read(), b.read())

    @defer.inlineCallbacks
    def test_refusals(self):
        cases = [
            # No secret, or a wrong one.
            (f"/job/{self.job}/attempt/7/part/1", None, 401),
            (f"/job/{self.job}/attempt/7/part/1", "wrong", 401),
            # The secret itself is not the token.
            (f"/job/{self.job}/attempt/7/part/1", None, 401, "s3cret"),
            # Another job's file.
            ("/job/fedcba9876543210fedcba9876543210/attempt/7/part/1", "s3cret", 404),
            # An attempt written but not committed; a partition out of range.
            (f"/job/{self.job}/attempt/8/part/1", "s3cret", 404),
            (f"/job/{self.job}/attempt/7/part/2", "s3cret", 404),
            # Paths that climb, or name files.
            (f"/job/{self.job}/attempt/7/part/../../../../secret-file", "s3cret", 404),
            (f"/job/{self.job}/attempt/7/part/..", "s3cret", 404),
            ("/job/../secret-file", "s3cret", 404),
            (f"/job/{self.job}/attempt/7/part/%2e%2e%2fsecret-file", "s3cret", 404),
            (f"/job/{self.job}/attempt/-7/part/1", "s3cret", 404),
            (f"/job/{self.job}/attempt/7/part/1/", "s3cret", 404),
            ("/secret-file", "s3cret", 404),
        ]
        for path, secret, code, *raw in cases:
            status, body = yield self.get(path, secret, *raw)
            self.assertEqual(status, code, (path, secret, body))
            self.assertNotIn(b"not to be served", body)
            self.assertNotIn(b"partition", body)


class DriverInMemoryTests(MemoryDriverMixin, unittest.TestCase):
    """
    A shared-nothing driver over AMP, in memory: what a map's report
    carries, what a reduce's spec carries, and a reducer's report that it
    could not fetch a map's output.
    """

    maps = 2
    options = {"intermediate": None}

    def join(self, url):
        client = self.connect(hello=False)
        answer = self.successResultOf(self.call(
            client, protocol.Hello, version=protocol.PROTOCOL_VERSION, host="test", pid=1,
            url=url))
        client.worker = answer["worker"]
        return client, answer

    def task(self, client):
        answer = self.successResultOf(self.call(client, protocol.GetTask, wait=False))
        self.assertEqual(answer["action"], "run", answer)
        return TaskSpec.from_json(answer["task"])

    def done(self, client, spec, output):
        """
        Report a map done; whether the driver committed it (it refuses the
        report of one it does not commit, with StaleReport).
        """
        answer = self.call(client, protocol.TaskDone, kind=spec.kind, index=spec.index,
                           attempt=spec.attempt, counters={}, output=output)
        failures = []
        answer.addErrback(lambda f: failures.append(f.trap(protocol.StaleReport)))
        self.flush()
        return not failures

    def test_map_output_lost_runs_the_map_again(self):
        self.assertTrue(self.scheduler.shared_nothing)
        client, hello = self.join("http://127.0.0.1:9")
        self.assertRegex(hello["uuid"], "^[0-9a-f]{32}$")
        first = self.task(client)
        self.assertEqual(first.shuffle, {"job": hello["uuid"]})
        # A report without its output's checksums cannot be committed.
        self.assertFalse(self.done(client, first, {"sums": []}))
        self.assertEqual(self.scheduler.maps[first.index].state, TaskState.READY)
        maps = {}
        for _ in range(2):
            spec = self.task(client)
            self.assertEqual(spec.kind, "map")
            output = {"sums": [f"crc32:{spec.index}"], "sizes": [spec.index + 3]}
            self.assertTrue(self.done(client, spec, output))
            maps[spec.index] = spec.attempt
        reduce = self.task(client)
        self.assertEqual(reduce.shuffle["maps"], [
            [maps[0], "http://127.0.0.1:9", "crc32:0", 3],
            [maps[1], "http://127.0.0.1:9", "crc32:1", 4]])
        self.successResultOf(self.call(
            client, protocol.MapOutputLost, kind="reduce", index=0, attempt=reduce.attempt,
            map_index=1, map_attempt=maps[1], error="HTTP 404"))
        self.assertEqual([t.state for t in self.scheduler.maps],
                         [TaskState.FINISHED, TaskState.READY])
        self.assertEqual(self.scheduler.reduces[0].failures, 0)
        self.assertEqual(self.scheduler.reduces[0].state, TaskState.BLOCKED)
        # The same report again is refused, and changes nothing.
        refused = self.call(
            client, protocol.MapOutputLost, kind="reduce", index=0, attempt=reduce.attempt,
            map_index=1, map_attempt=maps[1], error="HTTP 404")
        self.failureResultOf(refused, protocol.StaleReport)
        rerun = self.task(client)
        self.assertEqual((rerun.kind, rerun.index), ("map", 1))

    def test_a_worker_without_url_cannot_commit_maps(self):
        client, _ = self.join(None)
        spec = self.task(client)
        self.assertFalse(self.done(client, spec, {"sums": ["crc32:0"], "sizes": [0]}))
