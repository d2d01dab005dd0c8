"""
Real driver and worker processes, started through twistd, for tests.

Every process is started by L{Cluster} and killed by its cleanup, so a
failing test leaves nothing running.  A monitor thread records, at the
moment each process exits, whether the output was already complete: no
process may exit before the job's output is whole.
"""

import collections
import json
import os
import signal
import subprocess
import threading
import time

from txmr.local import twistd

HERE = os.path.dirname(os.path.abspath(__file__))
JOBS = os.path.join(HERE, "jobs")
EXAMPLES = os.path.join(os.path.dirname(HERE), "examples", "input")


def write_corpus(directory, files=6, lines=400):
    """
    Small text files for word count, with mixed case and punctuation.
    """
    os.makedirs(directory, exist_ok=True)
    words = "the quick brown Fox jumps over THE lazy dog, again and again".split()
    for i in range(files):
        with open(os.path.join(directory, f"in-{i}.txt"), "w") as f:
            for n in range(lines):
                f.write(" ".join(words[(n * 7 + i + k) % len(words)] for k in range(n % 9)) + "\n")


def counted(directory):
    """
    Word count of a directory, computed here as the seed counted.
    """
    counts = collections.Counter()
    for name in os.listdir(directory):
        with open(os.path.join(directory, name)) as f:
            for line in f:
                counts.update(line.lower().split())
    return {w: str(c) for w, c in counts.items()}


def wait_for(predicate, timeout, what, interval=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def worker_exit(cluster, worker, name, seconds):
    """
    A Deferred that fires once the worker process C{worker} has exited,
    polling without blocking the reactor; the test fails, with the
    worker's log, if it still runs after C{seconds}.
    """
    from twisted.internet import reactor, task

    def poll(left):
        if worker.poll() is not None:
            return None
        if left <= 0:
            worker.kill()
            raise AssertionError(f"the worker did not give up:\n{cluster.log(name)[-3000:]}")
        return task.deferLater(reactor, 0.05, poll, left - 1)

    return poll(int(seconds * 20))


class Cluster:
    """
    One job: a driver and any number of workers, as processes.

    @ivar exits: C{(name, returncode, output complete)} for every process
        that exited by itself, in order.
    """

    def __init__(self, testcase, job="txmr.examples.wordcount", maps=2, reduces=2,
                 input_dir=None, heartbeat=0.5, heartbeat_timeout=3.0):
        self.testcase = testcase
        self.base = os.path.abspath(testcase.mktemp())
        os.makedirs(self.base)
        self.input = input_dir or os.path.join(self.base, "in")
        self.intermediate = os.path.join(self.base, "mid")
        self.output = os.path.join(self.base, "out")
        self.scratch = os.path.join(self.base, "scratch")
        os.makedirs(self.scratch)
        self.job = job if "/" not in job else os.path.join(os.path.dirname(JOBS), job)
        self.maps = maps
        self.reduces = reduces
        self.heartbeat = heartbeat
        self.heartbeat_timeout = heartbeat_timeout
        self.processes = {}
        self.killed = set()
        self.exits = []
        self.env = dict(os.environ, TXMR_TEST_DIR=self.scratch, PYTHONUNBUFFERED="1")
        self._stop = threading.Event()
        self._monitor = threading.Thread(target=self._watch, daemon=True)
        self._monitor.start()
        testcase.addCleanup(self.cleanup)

    # -- processes -----------------------------------------------------------

    def _spawn(self, name, args):
        log = open(os.path.join(self.base, name + ".log"), "wb")
        process = subprocess.Popen(
            twistd() + ["--pidfile=", "-n"] + args, cwd=self.base, env=self.env,
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )
        log.close()
        self.processes[name] = process
        return process

    @classmethod
    def slow_job(cls, testcase, maps, seconds, *driver_args):
        """
        A running driver of jobs/slow.py over a small corpus: each map task
        marks its start, then takes C{seconds}.
        """
        cluster = cls(testcase, job="jobs/slow.py", maps=maps)
        write_corpus(cluster.input)
        cluster.env["TXMR_SLOW_SECONDS"] = str(seconds)
        cluster.start_driver(*driver_args)
        return cluster

    def driver_args(self, *extra, listen=True):
        args = ["txmr-driver", "--input", self.input, "--intermediate", self.intermediate,
                "--output", self.output, "--mappers", str(self.maps),
                "--reducers", str(self.reduces), "--job", self.job,
                "--heartbeat", str(self.heartbeat),
                "--heartbeat-timeout", str(self.heartbeat_timeout), "--linger", "1"]
        if listen:
            args += ["--listen", "tcp:0:interface=127.0.0.1",
                     "--port-file", os.path.join(self.base, "address")]
        args += ["--summary-file", os.path.join(self.base, "summary.json")]
        return args + list(extra)

    def summary(self):
        """
        The driver's final state of the job (written when the job ends).
        """
        with open(os.path.join(self.base, "summary.json")) as f:
            return json.load(f)

    def start_driver(self, *extra, name="driver"):
        path = os.path.join(self.base, "address")
        if os.path.exists(path):
            os.unlink(path)
        process = self._spawn(name, self.driver_args(*extra))
        wait_for(lambda: os.path.exists(path) or process.poll() is not None, 60,
                 "the driver to listen")
        if process.poll() is not None:
            raise AssertionError(f"driver exited {process.returncode}:\n{self.log(name)}")
        with open(path) as f:
            self.address = f.read().strip()
        return process

    def start_worker(self, name=None, address=None, *extra):
        name = name or f"worker-{len(self.processes)}"
        return self._spawn(name, ["txmr-worker", "--driver", address or self.address,
                                  "--give-up", "30", *extra])

    def start_busy_worker(self, name):
        """
        Start a worker and wait until it runs a map task of a job that
        marks its maps (jobs/slow.py).
        """
        process = self.start_worker(name)
        wait_for(lambda: f"running-map-{process.pid}" in self.scratch_files(), 60,
                 f"a map task on {name}")
        return process

    def kill(self, name, sig=signal.SIGKILL):
        self.killed.add(name)
        self.processes[name].send_signal(sig)

    def wait(self, name="driver", timeout=180):
        process = self.processes[name]
        try:
            return process.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"{name} still running after {timeout}s:\n{self.log(name)}")

    def log(self, name="driver"):
        with open(os.path.join(self.base, name + ".log"), encoding="utf-8",
                  errors="replace") as f:
            return f.read()

    def scratch_files(self, prefix=""):
        return sorted(n for n in os.listdir(self.scratch) if n.startswith(prefix))

    # -- output --------------------------------------------------------------

    def output_complete(self):
        names = [f"out-{r}" for r in range(self.reduces)]
        try:
            return sorted(n for n in os.listdir(self.output) if n.startswith("out-")) == names
        except FileNotFoundError:
            return False

    def _watch(self):
        seen = set()
        while not self._stop.is_set():
            for name, process in list(self.processes.items()):
                if name not in seen and process.poll() is not None:
                    seen.add(name)
                    if name not in self.killed:
                        self.exits.append((name, process.returncode, self.output_complete()))
            time.sleep(0.02)

    def cleanup(self):
        self._stop.set()
        for process in self.processes.values():
            if process.poll() is None:
                try:
                    process.send_signal(signal.SIGCONT)
                    process.kill()
                except ProcessLookupError:
                    pass
                process.wait()
        self._monitor.join()
