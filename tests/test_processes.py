"""
Whole jobs with a real driver and real worker processes, through twistd:
the seed's command lines, workers killed and frozen, and bad input.
"""

import os
import shutil
import signal
import socket
import subprocess
import sys

from twisted.internet import defer, endpoints, reactor
from twisted.internet.protocol import Factory, Protocol
from twisted.trial import unittest

from tests.cluster import (EXAMPLES, JOBS, Cluster, counted, twistd, wait_for, worker_exit,
                           write_corpus)
from tests.oracle import read_output


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class WholeJobTests(unittest.TestCase):
    def test_wordcount_two_workers(self):
        cluster = Cluster(self, maps=4, reduces=2, input_dir=EXAMPLES)
        cluster.start_driver()
        cluster.start_worker("w1")
        cluster.start_worker("w2")
        self.assertEqual(cluster.wait(), 0, cluster.log())
        self.assertEqual(read_output(cluster.output, 2), counted(EXAMPLES))
        for name in ("w1", "w2"):
            code = cluster.wait(name, 40)
            if "joined the driver" in cluster.log(name):
                self.assertEqual(code, 0, cluster.log(name))
            else:
                # On a loaded machine a worker may start after this small
                # job is over: it cannot know the job's fate, and says so.
                self.assertEqual(code, 1)
                self.assertIn("cannot reach the driver", cluster.log(name))
        self.assertTrue(all(complete for _, _, complete in cluster.exits), cluster.exits)
        self.assertIn("txmr.reduce_output_records", cluster.log())

    def test_seed_command_lines(self):
        """
        The seed's flags, with twistd in place of python run_driver.py and
        run_worker.py, and its worker address form.
        """
        cluster = Cluster(self)
        write_corpus(cluster.input)
        port = free_port()
        driver = cluster._spawn("driver", [
            "txmr-driver", "--mappers", "4", "--reducers", "2", "--port", str(port),
            "-ip", cluster.input, "-mp", cluster.intermediate, "--o_path", cluster.output,
        ])
        cluster.start_worker("w1", f"http://localhost:{port}")
        cluster.start_worker("w2", f"localhost:{port}")
        self.assertEqual(cluster.wait(), 0, cluster.log())
        self.assertEqual(driver.returncode, 0)
        self.assertEqual(read_output(cluster.output, 2), counted(cluster.input))
        self.assertEqual(sorted(n for n in os.listdir(cluster.intermediate)
                                if not n.startswith(".txmr-journal")),
                         sorted(f"mr-{m}-{r}" for m in range(4) for r in range(2)))

    def test_worker_started_before_driver(self):
        cluster = Cluster(self)
        write_corpus(cluster.input, files=2)
        port = free_port()
        cluster.start_worker("early", f"127.0.0.1:{port}")
        cluster._spawn("driver", cluster.driver_args("--port", str(port), listen=False))
        self.assertEqual(cluster.wait(), 0, cluster.log())
        self.assertEqual(cluster.wait("early", 30), 0)
        self.assertEqual(read_output(cluster.output, 2), counted(cluster.input))

    def test_worker_killed_mid_task(self):
        cluster = Cluster.slow_job(self, maps=4, seconds=2)
        cluster.start_busy_worker("victim")
        cluster.kill("victim")
        cluster.start_worker("survivor")
        self.assertEqual(cluster.wait(), 0, cluster.log())
        self.assertEqual(read_output(cluster.output, 2), counted(cluster.input))
        self.assertIn("worker w1 lost", cluster.log())

    def test_worker_frozen_mid_task(self):
        """
        A worker stopped with SIGSTOP answers no heartbeat: the driver gives
        its task to another worker, and the job still ends right.
        """
        cluster = Cluster.slow_job(self, maps=3, seconds=2)
        frozen = cluster.start_busy_worker("frozen")
        cluster.kill("frozen", signal.SIGSTOP)
        cluster.start_worker("thawed")
        self.assertEqual(cluster.wait(), 0, cluster.log())
        self.assertIn("silent for more than", cluster.log())
        self.assertEqual(read_output(cluster.output, 2), counted(cluster.input))
        # Thawed after the job ended, the worker finds no driver and leaves.
        frozen.send_signal(signal.SIGCONT)


class Hangup(Protocol):
    """
    Not a driver: it closes every connection as soon as it is made.
    """

    def connectionMade(self):
        self.factory.connections += 1
        self.transport.loseConnection()


class NotADriverTests(unittest.TestCase):
    @defer.inlineCallbacks
    def test_worker_gives_up_on_a_server_that_hangs_up(self):
        """
        A server that accepts and closes at once is not a driver: the worker
        keeps trying, backing off, without spinning, and gives up on time.
        """
        factory = Factory.forProtocol(Hangup)
        factory.connections = 0
        port = yield endpoints.TCP4ServerEndpoint(
            reactor, 0, interface="127.0.0.1").listen(factory)
        self.addCleanup(port.stopListening)
        cluster = Cluster(self)
        worker = cluster.start_worker(
            "w", f"127.0.0.1:{port.getHost().port}", "--give-up", "3")
        yield worker_exit(cluster, worker, "w", 15)
        self.assertEqual(worker.returncode, 1)
        self.assertIn("cannot reach the driver", cluster.log("w"))
        self.assertGreater(factory.connections, 3)
        self.assertLess(factory.connections, 25)
        self.assertLess(cluster.log("w").count("\n"), 200)


class SecretTests(unittest.TestCase):
    def test_workers_need_the_secret(self):
        cluster = Cluster(self)
        write_corpus(cluster.input, files=2)
        secret = os.path.join(cluster.base, "secret")
        with open(secret, "w") as f:
            f.write("correct horse battery staple\n")
        wrong = os.path.join(cluster.base, "wrong")
        with open(wrong, "w") as f:
            f.write("guess\n")
        cluster.start_driver("--secret-file", secret)
        intruder = cluster.start_worker("intruder", None, "--secret-file", wrong)
        self.assertEqual(intruder.wait(30), 1)
        self.assertIn("refused this worker", cluster.log("intruder"))
        cluster.start_worker("w", None, "--secret-file", secret)
        self.assertEqual(cluster.wait(), 0, cluster.log())
        self.assertEqual(read_output(cluster.output, 2), counted(cluster.input))


class BadInputTests(unittest.TestCase):
    """
    Bad input gets a one-line error and a non-zero exit, before anything runs.
    """

    def start_driver(self, *args):
        base = self.mktemp()
        os.makedirs(base)
        result = subprocess.run(
            twistd() + ["--pidfile=", "-n", "txmr-driver", "--intermediate",
                        os.path.join(base, "m"), "--output", os.path.join(base, "o"),
                        "--listen", "tcp:0:interface=127.0.0.1"] + list(args),
            cwd=base, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
        )
        return result

    def assertOneLineError(self, result, *fragments):
        self.assertNotEqual(result.returncode, 0)
        lines = result.stderr.strip().splitlines()
        self.assertEqual(len(lines), 1, result.stderr)
        for fragment in fragments:
            self.assertIn(fragment, lines[0])

    def test_missing_input_directory(self):
        result = self.start_driver("--input", "/nonexistent/txmr-input")
        self.assertOneLineError(result, "input directory", "does not exist")

    def test_broken_job_module(self):
        result = self.start_driver("--input", EXAMPLES, "--job", os.path.join(JOBS, "broken.py"))
        self.assertOneLineError(result, "broken.py", "this job module is broken")

    def test_unknown_job_module(self):
        result = self.start_driver("--input", EXAMPLES, "--job", "no_such_module_at_all")
        self.assertOneLineError(result, "no_such_module_at_all", "ModuleNotFoundError")

    def test_job_without_reduce(self):
        result = self.start_driver("--input", EXAMPLES, "--job", os.path.join(JOBS, "noreduce.py"))
        self.assertOneLineError(result, "no reduce() function")

    def test_a_flag_out_of_range_is_named(self):
        """
        twistd said "must be positive" without naming the flag.
        """
        for flag, value, bound in [("--task-timeout", "-1", "more than 0"),
                                   ("--heartbeat", "abc", "more than 0"),
                                   ("--linger", "-2", "0 or more"),
                                   ("--http-lease", "nan", "more than 0")]:
            result = self.start_driver("--input", EXAMPLES, flag, value)
            self.assertNotEqual(result.returncode, 0)
            # twistd prints its usage errors on standard output.
            self.assertIn(f"{flag} must be a number of seconds, {bound}, not {value!r}",
                          result.stdout + result.stderr)

    def test_no_input(self):
        result = self.start_driver()
        self.assertOneLineError(result, "--input DIR is required")

    def test_bad_listen_endpoint(self):
        result = self.start_driver("--input", EXAMPLES, "--listen", "carrier-pigeon:5000")
        self.assertOneLineError(result, "--listen", "not a server endpoint")

    def test_bad_driver_address(self):
        result = subprocess.run(
            twistd() + ["--pidfile=", "-n", "txmr-worker", "--driver", "carrier-pigeon:x:y"],
            capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
        self.assertOneLineError(result, "txmr-worker: error: --driver", "not a driver address")

    def test_bad_task_counts(self):
        result = self.start_driver("--input", EXAMPLES, "--mappers", "0")
        self.assertOneLineError(result, "at least 1")
        result = self.start_driver("--input", EXAMPLES, "--reducers", "-2")
        self.assertOneLineError(result, "at least 1")

    def test_job_whose_map_raises(self):
        """
        The job fails after --max-attempts, with the task, the error and the
        worker's traceback; no partial output is left; the worker survives
        every failure and exits 0 when told.
        """
        cluster = Cluster(self, job="jobs/raises.py", maps=2, reduces=2)
        write_corpus(cluster.input, files=2)
        cluster.start_driver("--max-attempts", "3")
        cluster.start_worker("w1")
        self.assertEqual(cluster.wait(), 1)
        log = cluster.log()
        self.assertIn("job failed: map task", log)
        self.assertIn("failed 3 times", log)
        self.assertIn("ValueError: cannot map in-", log)
        self.assertIn('raise ValueError(f"cannot map {filename}")', log, "the traceback")
        self.assertEqual(cluster.wait("w1", 30), 0)
        self.assertEqual(os.listdir(cluster.output), [])
        self.assertEqual(os.listdir(cluster.intermediate), [])


def mount_tmpfs(testcase, path, options):
    """
    A small tmpfs at C{path} for the test, or a skip where mounting is not
    allowed (not root, or in a container that forbids it).
    """
    os.makedirs(path, exist_ok=True)
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", path],
                            capture_output=True, text=True)
    if result.returncode:
        raise unittest.SkipTest(f"cannot mount a tmpfs here: {result.stderr.strip()}")
    testcase.addCleanup(subprocess.run, ["umount", "-l", path], capture_output=True)


def write_many_words(directory, words=6000):
    """
    Input whose word count output is far larger than a few KiB.
    """
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, "words.txt"), "w") as f:
        for i in range(words):
            f.write(f"distinct-word-number-{i:06d} common\n")


class DiskTests(unittest.TestCase):
    """
    Disks that fail a job: a clear failure within seconds, never a hang,
    never a loop of attempts, never exit 0.
    """

    def full_disk_fails_the_job(self, which, task, **corpus):
        cluster = Cluster(self, maps=2, reduces=2)
        write_many_words(cluster.input, **corpus)
        mount_tmpfs(self, getattr(cluster, which), "size=64k" if corpus else "size=16k")
        cluster.start_driver()
        cluster.start_worker("w1")
        cluster.start_worker("w2")
        self.assertEqual(cluster.wait(timeout=60), 1, cluster.log())
        log = cluster.log()
        self.assertIn(f"job failed: {task} task", log)
        self.assertIn("No space left on device", log)
        self.assertEqual([n for n in os.listdir(cluster.output) if n.startswith("out-")], [])

    def read_only_refuses_to_start(self, which):
        cluster = Cluster(self, maps=2, reduces=2, input_dir=EXAMPLES)
        directory = getattr(cluster, which)
        mount_tmpfs(self, directory, "ro,size=16k")
        result = subprocess.run(twistd() + ["--pidfile=", "-n"] + cluster.driver_args(),
                                cwd=cluster.base, capture_output=True, text=True, timeout=60,
                                stdin=subprocess.DEVNULL)
        self.assertEqual(result.returncode, 2, result.stderr)
        self.assertIn(f"cannot write in {directory!r}", result.stderr)

    def test_full_output_disk_fails_the_job(self):
        self.full_disk_fails_the_job("output", "reduce")

    def test_read_only_output_refuses_to_start(self):
        self.read_only_refuses_to_start("output")

    def test_intermediate_deleted_mid_job_fails_the_job(self):
        cluster = Cluster.slow_job(self, 4, 1)
        cluster.start_worker("w1")
        cluster.start_worker("w2")
        wait_for(lambda: any(n.startswith("mr-") for n in os.listdir(cluster.intermediate)),
                 60, "a map to finish")
        shutil.rmtree(cluster.intermediate)
        self.assertEqual(cluster.wait(timeout=90), 1, cluster.log())
        self.assertIn("job failed:", cluster.log())
        self.assertEqual([n for n in os.listdir(cluster.output) if n.startswith("out-")], [])

    def test_full_intermediate_disk_fails_the_job(self):
        self.full_disk_fails_the_job("intermediate", "map", words=20000)

    def test_read_only_intermediate_refuses_to_start(self):
        self.read_only_refuses_to_start("intermediate")


class SecondDriverTests(unittest.TestCase):
    def test_second_driver_on_the_same_directories_refuses(self):
        cluster = Cluster.slow_job(self, 2, 5)
        result = subprocess.run(
            twistd() + ["--pidfile=", "-n"] + cluster.driver_args(listen=False) +
            ["--listen", "tcp:0:interface=127.0.0.1"],
            cwd=cluster.base, capture_output=True, text=True, timeout=60,
            stdin=subprocess.DEVNULL, env=cluster.env)
        self.assertEqual(result.returncode, 2, result.stderr)
        self.assertIn("is in use by a txmr run of", result.stderr)
        cluster.start_worker("w")
        self.assertEqual(cluster.wait(), 0, cluster.log())
        self.assertEqual(read_output(cluster.output, 2), counted(cluster.input))


class LateWorkerTests(unittest.TestCase):
    def test_worker_arriving_after_a_short_job_exits_0_at_once(self):
        cluster = Cluster(self, maps=1, reduces=1, input_dir=EXAMPLES)
        cluster.start_driver("--linger", "10")
        cluster.start_worker("w1")
        wait_for(lambda: "job finished" in cluster.log(), 60, "the job to finish")
        late = cluster.start_worker("late")
        self.assertEqual(cluster.wait("late", 8), 0, cluster.log("late"))
        self.assertEqual(cluster.wait(), 0)
        self.assertIsNotNone(late.returncode)


SEED_WORKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "seed_worker.py")


def read_any_output(directory, reduces):
    """
    The pairs of out-0 ... out-{R-1}, whether a txmr reducer wrote them
    (`word<TAB>count`) or a seed worker (`word count`); a word in two files
    is an error.
    """
    pairs = {}
    for r in range(reduces):
        with open(os.path.join(directory, f"out-{r}"), encoding="utf-8") as f:
            for line in f:
                line = line.rstrip("\n")
                word, _, count = line.rpartition("\t" if "\t" in line else " ")
                assert word not in pairs, f"{word!r} in two output files"
                pairs[word] = count
    return pairs


class SeedWorkerTests(unittest.TestCase):
    """
    The seed's own workers (as their code behaves on Python 3.11+), alone
    and beside txmr's: the answer is exact whatever the mix.
    """

    def start_seed_worker(self, cluster, name, *extra):
        port = cluster.address.rsplit("port=", 1)[1]
        log = open(os.path.join(cluster.base, name + ".log"), "wb")
        process = subprocess.Popen([sys.executable, SEED_WORKER, f"http://127.0.0.1:{port}",
                                    name, *extra], stdout=log, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL)
        log.close()
        cluster.processes[name] = process
        return process

    def test_two_seed_workers_alone_on_small_files(self):
        cluster = Cluster(self, maps=3, reduces=2)
        write_corpus(cluster.input, files=6)
        cluster.start_driver()
        self.start_seed_worker(cluster, "seed-1")
        self.start_seed_worker(cluster, "seed-2")
        self.assertEqual(cluster.wait(timeout=60), 0, cluster.log())
        self.assertEqual(read_any_output(cluster.output, 2), counted(cluster.input))
        for name in ("seed-1", "seed-2"):
            self.assertEqual(cluster.wait(name, 30), 0, cluster.log(name))

    def test_seed_workers_carry_on_with_a_driver_started_again(self):
        """
        The driver is killed mid-job and started again on its port with
        the same command: the seed's workers (which retry a driver they
        cannot reach) carry on with it, and the answer is exact.
        """
        cluster = Cluster(self, maps=6, reduces=2)
        write_corpus(cluster.input, files=12, lines=2000)
        cluster.start_driver()
        port = cluster.address.rsplit("port=", 1)[1]
        self.start_seed_worker(cluster, "seed-1")
        self.start_seed_worker(cluster, "seed-2")
        wait_for(lambda: any(n.startswith("mr-") for n in os.listdir(cluster.intermediate)),
                 60, "a map to be committed")
        cluster.kill("driver")
        cluster.wait("driver")
        cluster.start_driver("--listen", f"tcp:{port}:interface=127.0.0.1", name="again")
        self.assertEqual(cluster.wait("again", 90), 0, cluster.log("again"))
        self.assertIn("resuming the earlier run", cluster.log("again"))
        self.assertEqual(read_any_output(cluster.output, 2), counted(cluster.input))
        for name in ("seed-1", "seed-2"):
            self.assertEqual(cluster.wait(name, 30), 0, cluster.log(name))

    def test_seed_workers_alone_on_a_file_cut_in_pieces_say_why_they_wait(self):
        """
        Only seed workers, and one file larger than a split: txmr cuts it,
        and the seed's workers read whole files, so no map is theirs to run.
        The driver says so, naming what can run them, instead of waiting
        silently; a txmr worker then finishes the job.
        """
        cluster = Cluster(self, maps=4, reduces=2)
        write_corpus(cluster.input, files=1, lines=4000)
        cluster.start_driver()
        self.start_seed_worker(cluster, "seed")
        wait_for(lambda: "can run none of the 4 ready tasks" in cluster.log(), 30,
                 "the driver to say why the seed worker waits")
        self.assertIn("a txmr worker (twistd txmr-worker) can run them", cluster.log())
        cluster.start_worker("txmr")
        self.assertEqual(cluster.wait(timeout=60), 0, cluster.log())
        self.assertEqual(read_any_output(cluster.output, 2), counted(cluster.input))

    def test_a_seed_worker_past_its_lease_writes_nowhere_that_counts(self):
        """
        A seed worker stalls on its map past its lease (2 s); a txmr worker
        takes the map over and its output is committed; then the seed
        worker wakes and writes garbage as that map's output: it lands in
        no file any reducer reads, and the answer is exact.
        """
        cluster = Cluster(self, maps=2, reduces=2)
        write_corpus(cluster.input, files=4)
        # It lingers so that the late worker, no longer waited for, is told
        # the job is over when it wakes.
        cluster.start_driver("--http-lease", "2", "--linger", "15")
        seed = self.start_seed_worker(cluster, "seed", "stale")
        wait_for(lambda: "to HTTP worker" in cluster.log(), 30, "the seed worker's map")
        cluster.start_worker("txmr")
        wait_for(lambda: "job finished" in cluster.log(), 60, "the job to finish")
        self.assertEqual(seed.wait(30), 0, cluster.log("seed"))
        self.assertEqual(read_any_output(cluster.output, 2), counted(cluster.input))
        self.assertIn("lease of 2s ran out", cluster.log())

    def test_seed_worker_beside_a_txmr_worker_on_small_files(self):
        cluster = Cluster(self, maps=6, reduces=2)
        write_corpus(cluster.input, files=12, lines=2000)
        cluster.start_driver()
        self.start_seed_worker(cluster, "seed")
        cluster.start_worker("txmr")
        self.assertEqual(cluster.wait(timeout=60), 0, cluster.log())
        self.assertEqual(read_any_output(cluster.output, 2), counted(cluster.input))
        self.assertEqual(cluster.wait("seed", 30), 0, cluster.log("seed"))
        self.assertIn("to HTTP worker", cluster.log(), "the seed worker did maps")

    def test_seed_maps_then_txmr_reduces(self):
        """
        A seed worker runs every map, then leaves with a reduce (its lease
        runs out); a txmr worker runs the reduces over the seed's buckets.
        """
        cluster = Cluster(self, maps=3, reduces=2)
        write_corpus(cluster.input, files=6)
        cluster.start_driver("--http-lease", "2")
        seed = self.start_seed_worker(cluster, "seed", "maps-only")
        self.assertEqual(seed.wait(60), 3, "it left when handed a reduce")
        cluster.killed.add("seed")
        cluster.start_worker("txmr")
        self.assertEqual(cluster.wait(timeout=60), 0, cluster.log())
        self.assertEqual(read_any_output(cluster.output, 2), counted(cluster.input))

    def test_seed_worker_beside_a_txmr_worker_on_a_file_cut_in_pieces(self):
        """
        A large file is cut inside, across map tasks: the seed worker, which
        reads whole files, gets none of them, and the txmr worker does the
        job alone, exactly.
        """
        cluster = Cluster(self, maps=4, reduces=2)
        write_corpus(cluster.input, files=1, lines=20000)
        cluster.start_driver()
        self.start_seed_worker(cluster, "seed")
        cluster.start_worker("txmr")
        self.assertEqual(cluster.wait(timeout=60), 0, cluster.log())
        self.assertEqual(read_any_output(cluster.output, 2), counted(cluster.input))
        self.assertEqual(cluster.wait("seed", 30), 0, cluster.log("seed"))
        self.assertNotIn("to HTTP worker", cluster.log())
