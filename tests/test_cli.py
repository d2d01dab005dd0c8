"""
The txmr command line, run as a user runs it.
"""

import os
import shutil
import signal
import subprocess
import sys
import time

from twisted.trial import unittest

from tests.cluster import EXAMPLES, JOBS, Cluster, counted, wait_for, write_corpus
from tests.oracle import read_output, reference

TXMR = [os.path.join(os.path.dirname(sys.executable), "txmr")]
if not os.path.exists(TXMR[0]):
    TXMR = [sys.executable, "-m", "txmr.cli"]


def processes_under(directory):
    """
    Pids of the processes whose working directory is under C{directory}.
    """
    found = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                cwd = os.readlink(f"/proc/{pid}/cwd")
            except OSError:
                continue
            if cwd.startswith(directory):
                found.append(int(pid))
    return found


class RunTests(unittest.TestCase):
    def setUp(self):
        self.base = os.path.abspath(self.mktemp())
        os.makedirs(self.base)
        self.env = dict(os.environ, TMPDIR=self.base, TXMR_TEST_DIR=self.base)

    def txmr(self, *args, timeout=120, **kwargs):
        return subprocess.run(TXMR + list(args), capture_output=True, text=True, env=self.env,
                              timeout=timeout, stdin=subprocess.DEVNULL, **kwargs)

    def test_run_example(self):
        out = os.path.join(self.base, "out")
        result = self.txmr("run", "-i", EXAMPLES, "-o", out, "-w", "2", "-m", "3", "-r", "2")
        self.assertEqual(result.returncode, 0, result.stderr + result.stdout)
        self.assertEqual(read_output(out, 2), counted(EXAMPLES))
        self.assertIn("txmr.reduce_output_records = ", result.stdout)
        self.assertIn("map 3/3 done", result.stdout, "plain progress lines off a terminal")
        self.assertRegex(result.stdout, r"finished in \d+\.\d+s")
        self.assertEqual(processes_under(self.base), [])

    def test_relative_paths(self):
        """
        Paths are the user's, relative to where txmr runs, though the
        daemons run elsewhere.
        """
        corpus = os.path.join(self.base, "in")
        write_corpus(corpus, files=2)
        shutil.copy(os.path.join(JOBS, "pairs.py"), os.path.join(self.base, "myjob.py"))
        result = self.txmr("run", "myjob.py", "-i", "in", "-o", "out", "-w", "1", "-r", "1",
                           cwd=self.base)
        self.assertEqual(result.returncode, 0, result.stderr + result.stdout)
        self.assertEqual(read_output(os.path.join(self.base, "out"), 1),
                         reference(os.path.join(JOBS, "pairs.py"), corpus))

    def test_dead_workers_are_replaced(self):
        corpus = os.path.join(self.base, "in")
        write_corpus(corpus, files=3)
        out = os.path.join(self.base, "out")
        result = self.txmr("run", os.path.join(JOBS, "dies_once.py"), "-i", corpus, "-o", out,
                           "-w", "2", "-m", "3", "-r", "1")
        self.assertEqual(result.returncode, 0, result.stderr + result.stdout)
        # Each map killed a worker once; both first workers died, so the job
        # finished only because dead workers were replaced.
        self.assertEqual(len([n for n in os.listdir(self.base) if n.startswith("died-")]), 3)
        self.assertGreaterEqual(result.stderr.count("exited with 1; starting another"), 2)
        self.assertEqual(read_output(out, 1), {
            name: str(os.path.getsize(os.path.join(corpus, name)))
            for name in os.listdir(corpus)})
        self.assertEqual(processes_under(self.base), [])

    def test_gives_up_when_workers_keep_dying(self):
        # The driver's own bound (a task losing its worker twice
        # --max-attempts times) is put beyond this command's.
        result = self.txmr("run", os.path.join(JOBS, "always_dies.py"), "-i", EXAMPLES, "-o",
                           os.path.join(self.base, "out"), "-w", "2", "--max-attempts", "10")
        self.assertEqual(result.returncode, 1)
        self.assertIn("every worker died, 6 restarted; giving up", result.stderr)
        self.assertEqual(processes_under(self.base), [])

    def test_inline_same_output(self):
        out = os.path.join(self.base, "out")
        result = self.txmr("run", "--inline", "-i", EXAMPLES, "-o", out, "-r", "3")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(read_output(out, 3), counted(EXAMPLES))

    def test_failing_job(self):
        result = self.txmr("run", os.path.join(JOBS, "raises.py"), "-i", EXAMPLES, "-o",
                           os.path.join(self.base, "out"), "-w", "1", "--max-attempts", "2")
        self.assertEqual(result.returncode, 1)
        self.assertIn("failed 2 times", result.stderr)
        self.assertIn("ValueError: cannot map", result.stderr)
        self.assertIn("Traceback", result.stderr)

    def test_a_killed_driver_is_started_again_and_resumes(self):
        corpus = os.path.join(self.base, "in")
        write_corpus(corpus)
        out = os.path.join(self.base, "out")
        env = dict(self.env, TXMR_SLOW_SECONDS="1")
        run = subprocess.Popen(TXMR + ["run", os.path.join(JOBS, "marked.py"), "-i", corpus,
                                       "-o", out, "-w", "1", "-m", "4", "-r", "2"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env=env, stdin=subprocess.DEVNULL)
        self.addCleanup(lambda: run.poll() is None and run.kill())
        wait_for(lambda: len([n for n in os.listdir(self.base) if n.startswith("map-run")]) >= 3,
                 60, "two maps done and a third running")
        drivers = [pid for pid in processes_under(self.base)
                   if b"txmr-driver" in open(f"/proc/{pid}/cmdline", "rb").read()]
        self.assertEqual(len(drivers), 1)
        os.kill(drivers[0], signal.SIGKILL)
        stdout, stderr = run.communicate(timeout=120)
        self.assertEqual(run.returncode, 0, stderr)
        self.assertIn("the driver died (exit -9); starting it again", stderr)
        self.assertEqual(read_output(out, 2), counted(corpus))
        self.assertLessEqual(len([n for n in os.listdir(self.base) if n.startswith("map-run")]),
                             5, "finished maps do not run again")

    def test_the_same_command_again_on_a_complete_job_exits_at_once(self):
        """
        The journal of a finished job says it is complete: the same command
        again runs nothing and exits 0 with the same output (the driver
        ends its job before its reactor runs; it once waited for ever).
        """
        corpus = os.path.join(self.base, "in")
        write_corpus(corpus)
        out, mid = os.path.join(self.base, "out"), os.path.join(self.base, "mid")
        command = ("run", os.path.join(JOBS, "marked.py"), "-i", corpus, "-o", out,
                   "--intermediate", mid, "-w", "1", "-m", "3", "-r", "2")
        first = self.txmr(*command)
        self.assertEqual(first.returncode, 0, first.stderr)
        ran = sorted(n for n in os.listdir(self.base) if n.startswith(("map-run", "reduce-run")))
        again = self.txmr(*command, timeout=60)
        self.assertEqual(again.returncode, 0, again.stderr)
        self.assertEqual(read_output(out, 2), counted(corpus))
        self.assertEqual(
            sorted(n for n in os.listdir(self.base) if n.startswith(("map-run", "reduce-run"))),
            ran, "nothing ran again")

    def test_files_of_an_earlier_run_are_never_removed_silently(self):
        """
        An output directory holding what looks like another run's output:
        the run replaces those files, and says so, by the driver or inline;
        nothing else in the directory is touched.
        """
        for inline in ((), ("--inline",)):
            out = os.path.join(self.base, "out" + "-inline" * bool(inline))
            os.makedirs(out)
            for name in ("out-0", "out-7", "notes.txt"):
                with open(os.path.join(out, name), "w") as f:
                    f.write("not this job's\n")
            result = self.txmr("run", "-i", EXAMPLES, "-o", out, "-w", "1", "-r", "2", *inline)
            self.assertEqual(result.returncode, 0, result.stderr)
            self.assertIn(f"txmr: removed 2 files of an earlier run from {out}: out-0, out-7",
                          result.stderr)
            self.assertEqual(sorted(os.listdir(out)), ["_SUCCESS", "notes.txt", "out-0", "out-1"])
            self.assertEqual(read_output(out, 2), counted(EXAMPLES))

    def test_an_output_that_cannot_be_marked_complete_fails_the_job(self):
        """
        Whoever waits for _SUCCESS would wait for ever: a job whose marker
        cannot be written fails, saying why, by the driver and inline.
        """
        for inline in ((), ("--inline",)):
            out = os.path.join(self.base, "out" + "-inline" * bool(inline))
            os.makedirs(os.path.join(out, "_SUCCESS"))
            result = self.txmr("run", "-i", EXAMPLES, "-o", out, "-w", "1", *inline)
            self.assertEqual(result.returncode, 1, result.stdout + result.stderr)
            self.assertIn("cannot write _SUCCESS in", result.stderr)

    def test_always_failing_jobs_fail_with_any_number_of_workers(self):
        """
        With fewer workers than --max-attempts (4), a task that fails on
        every worker is retried where it failed: the job fails within
        seconds, with the traceback and no output, instead of hanging.
        """
        for job, workers, error in [("raises.py", 1, "ValueError: cannot map"),
                                    ("raises.py", 2, "ValueError: cannot map"),
                                    ("raises.py", 3, "ValueError: cannot map"),
                                    ("raises.py", 5, "ValueError: cannot map"),
                                    ("reduce_raises.py", 1, "ValueError: cannot reduce"),
                                    ("reduce_raises.py", 2, "ValueError: cannot reduce"),
                                    ("reduce_raises.py", 3, "ValueError: cannot reduce"),
                                    ("reduce_raises.py", 5, "ValueError: cannot reduce")]:
            out = os.path.join(self.base, f"out-{job}-{workers}")
            started = time.monotonic()
            result = self.txmr("run", os.path.join(JOBS, job), "-i", EXAMPLES, "-o", out,
                               "-w", str(workers), timeout=60)
            where = f"{job} with {workers} workers"
            self.assertEqual(result.returncode, 1, where)
            self.assertIn("failed 4 times", result.stderr, where)
            self.assertIn(error, result.stderr, where)
            self.assertIn("Traceback", result.stderr, where)
            self.assertEqual([n for n in os.listdir(out) if n.startswith("out-")], [], where)
            self.assertLess(time.monotonic() - started, 45, where)

    def test_missing_input(self):
        result = self.txmr("run", "-i", "/nonexistent/in", "-o", os.path.join(self.base, "o"))
        self.assertNotEqual(result.returncode, 0)
        self.assertIn("does not exist", result.stderr)

    def test_job_as_module_of_the_current_directory_or_path_and_class(self):
        """
        `txmr run mymod` finds mymod.py in the current directory, as
        `python -m` would, and `path/job.py:Class` names a class in a file;
        the driver and its workers (in another directory) find them too.
        """
        here = os.path.join(self.base, "here")
        os.makedirs(here)
        with open(os.path.join(here, "mycount.py"), "w") as f:
            f.write("class Count:\n"
                    "    def map(self, name, line):\n"
                    "        for word in line.split():\n"
                    "            yield word.lower(), 1\n"
                    "    def reduce(self, word, counts):\n"
                    "        yield word, sum(counts)\n")
        for job in ("mycount:Count", os.path.join(here, "mycount.py") + ":Count"):
            for inline in ([], ["--inline"]):
                out = os.path.join(self.base, f"out-{len(os.listdir(self.base))}")
                result = self.txmr("run", job, *inline, "-i", EXAMPLES, "-o", out, "-w", "1",
                                   cwd=here)
                self.assertEqual(result.returncode, 0, (job, inline, result.stderr))
                self.assertEqual(read_output(out, 2), counted(EXAMPLES), (job, inline))

    def test_same_error_same_exit_and_message_inline_or_not(self):
        results = [self.txmr("run", *inline, "no_such_job_module", "-i", EXAMPLES, "-o",
                             os.path.join(self.base, "o"))
                   for inline in ([], ["--inline"])]
        self.assertEqual([r.returncode for r in results], [2, 2])
        self.assertEqual(results[0].stderr, results[1].stderr)
        self.assertTrue(results[0].stderr.startswith("txmr: cannot load job"), results[0].stderr)

    def test_links_in_the_input_are_followed_but_not_into_a_loop(self):
        """
        A link to a file and a link to a directory are input like the rest
        (a linked directory was skipped: its words were missing from an
        exit 0); a link to the directory above is not walked for ever.
        """
        elsewhere = os.path.join(self.base, "elsewhere")
        corpus = os.path.join(self.base, "in")
        os.makedirs(os.path.join(elsewhere, "more"))
        os.makedirs(os.path.join(corpus, "deep"))
        for path, text in [(os.path.join(elsewhere, "one.txt"), "linked file\n"),
                           (os.path.join(elsewhere, "more", "two.txt"), "linked folder\n"),
                           (os.path.join(corpus, "deep", "three.txt"), "plain file\n")]:
            with open(path, "w") as f:
                f.write(text)
        os.symlink(os.path.join(elsewhere, "one.txt"), os.path.join(corpus, "one.txt"))
        os.symlink(os.path.join(elsewhere, "more"), os.path.join(corpus, "more"))
        os.symlink("..", os.path.join(corpus, "deep", "up"))
        os.symlink(".", os.path.join(corpus, "here"))
        # Links that lead to each other: each directory is walked once (they
        # were walked some forty times, every count forty times too high).
        os.makedirs(os.path.join(corpus, "a"))
        os.makedirs(os.path.join(corpus, "b"))
        with open(os.path.join(corpus, "a", "apple.txt"), "w") as f:
            f.write("apple\n")
        with open(os.path.join(corpus, "b", "pear.txt"), "w") as f:
            f.write("pear\n")
        os.symlink(os.path.join("..", "b"), os.path.join(corpus, "a", "tob"))
        os.symlink(os.path.join("..", "a"), os.path.join(corpus, "b", "toa"))
        os.mkfifo(os.path.join(corpus, "a-pipe"))
        for inline in ([], ["--inline"]):
            out = os.path.join(self.base, f"out{len(inline)}")
            result = self.txmr("run", *inline, "-i", corpus, "-o", out, "-w", "1", "-r", "1",
                               timeout=60)
            self.assertEqual(result.returncode, 0, result.stderr)
            self.assertEqual(read_output(out, 1), {"linked": "2", "file": "2", "folder": "1",
                                                   "plain": "1", "apple": "1", "pear": "1"})

    def test_a_failing_job_fails_alike_inline_or_not(self):
        """
        The same failed task: exit 1, the driver's line (inline, it named
        txmr's own RecordError and said "failed 1 times" whatever
        --max-attempts), then the job's own traceback.
        """
        results = [self.txmr("run", *inline, os.path.join(JOBS, "raises.py"), "-i", EXAMPLES,
                             "-o", os.path.join(self.base, f"o{len(inline)}"), "-w", "1",
                             "-m", "1", "-r", "1", "--max-attempts", "3")
                   for inline in ([], ["--inline"])]
        self.assertEqual([r.returncode for r in results], [1, 1])
        for result, worker in zip(results, ("w1", "inline")):
            lines = [line for line in result.stderr.splitlines() if line.startswith("txmr: map")]
            self.assertEqual(len(lines), 1, result.stderr)
            self.assertRegex(lines[0], rf"^txmr: map task 0 failed 3 times; last, attempt \d+ "
                                       rf"on worker {worker}: ValueError: cannot map ")
            self.assertNotIn("RecordError", result.stderr)
            self.assertIn('raise ValueError(f"cannot map {filename}")', result.stderr)

    def test_a_job_that_calls_sys_exit_fails(self):
        """
        Inline, sys.exit(0) in the job's code ended the run with 0 and no
        output; a worker had always failed the task.
        """
        job = os.path.join(self.base, "exits.py")
        with open(job, "w") as f:
            f.write("import sys\n"
                    "def map(name, line):\n"
                    "    sys.exit(0)\n"
                    "def reduce(k, v):\n"
                    "    yield k, 1\n")
        for inline in ([], ["--inline"]):
            out = os.path.join(self.base, f"exit{len(inline)}")
            result = self.txmr("run", job, *inline, "-i", EXAMPLES, "-o", out, "-w", "1",
                               "--max-attempts", "2")
            self.assertEqual(result.returncode, 1, result.stderr)
            self.assertIn("failed 2 times; last, attempt", result.stderr)
            self.assertIn("SystemExit: 0", result.stderr)
            self.assertFalse(os.path.exists(os.path.join(out, "_SUCCESS")))

    def test_inline_retries_and_skips_as_a_driver_does(self):
        base = os.path.join(self.base, "bad")
        os.makedirs(base)
        with open(os.path.join(base, "a.txt"), "w") as f:
            f.write("good line\nbad line\nmore good\n")
        job = os.path.join(self.base, "badline.py")
        with open(job, "w") as f:
            f.write("def map(name, line):\n"
                    "    if line.startswith('bad'):\n"
                    "        raise ValueError('bad line')\n"
                    "    for w in line.split():\n"
                    "        yield w, 1\n"
                    "def reduce(k, v):\n"
                    "    yield k, sum(v)\n")
        for inline in ([], ["--inline"]):
            out = os.path.join(self.base, f"out{len(inline)}")
            result = self.txmr("run", job, *inline, "-i", base, "-o", out, "-w", "1", "-r", "1",
                               "--skip-bad-records")
            self.assertEqual(result.returncode, 0, result.stderr)
            self.assertEqual(read_output(out, 1), {"good": "2", "line": "1", "more": "1"})
            self.assertIn("skipped bad record: ['map', 3, ['a.txt', 10, 0]]", result.stdout)

    def test_input_that_is_a_file_is_named_so(self):
        for inline in ([], ["--inline"]):
            result = self.txmr("run", *inline, "-i", os.path.join(EXAMPLES, "pg-alice.txt"),
                               "-o", os.path.join(self.base, "o"))
            self.assertEqual(result.returncode, 2)
            self.assertIn("is a file, not a directory", result.stderr)

    def test_workers_must_be_at_least_one(self):
        result = self.txmr("run", "-i", EXAMPLES, "-o", os.path.join(self.base, "o"), "-w", "-1")
        self.assertEqual(result.returncode, 2)
        self.assertIn("--workers: must be at least 1", result.stderr)

    def test_numbers_out_of_range_are_refused_the_same_inline_or_not(self):
        """
        A negative task timeout was refused by the driver in words the
        user never saw ("the driver did not start"), and accepted inline.
        """
        for flags, error in [(["--task-timeout", "-1"], "--task-timeout: must be more than 0"),
                             (["--task-timeout", "nan"], "--task-timeout: must be more than 0"),
                             (["--memory", "0"], "--memory: must be at least 1"),
                             (["--max-attempts", "0"], "--max-attempts must be at least 1")]:
            results = [self.txmr("run", *inline, "-i", EXAMPLES, "-o",
                                 os.path.join(self.base, "o"), *flags)
                       for inline in ([], ["--inline"])]
            self.assertEqual([r.returncode for r in results], [2, 2], flags)
            self.assertEqual(results[0].stderr, results[1].stderr)
            self.assertIn(error, results[0].stderr)
            self.assertFalse(os.path.exists(os.path.join(self.base, "o", "_SUCCESS")))

    def test_ctrl_c_leaves_no_process(self):
        corpus = os.path.join(self.base, "in")
        write_corpus(corpus)
        self.env["TXMR_SLOW_SECONDS"] = "60"
        process = subprocess.Popen(
            TXMR + ["run", os.path.join(JOBS, "slow.py"), "-i", corpus, "-o",
                    os.path.join(self.base, "out"), "-w", "2"],
            env=self.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL)
        self.addCleanup(lambda: process.poll() is None and process.kill())
        wait_for(lambda: any(n.startswith("running-map") for n in os.listdir(self.base)), 60,
                 "a map task to start")
        self.assertGreaterEqual(len(processes_under(self.base)), 3)
        started = time.monotonic()
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=30)
        self.assertEqual(process.returncode, 130)
        self.assertIn(b"interrupted", err)
        self.assertLess(time.monotonic() - started, 15)
        self.assertEqual(processes_under(self.base), [])


class SecretRunTests(unittest.TestCase):
    def test_run_has_a_secret_and_prints_the_status_url(self):
        """
        Each txmr run makes a fresh secret for its own driver and workers,
        and prints the status page's URL with it: that URL works with
        txmr status; the driver's port without the secret does not.
        """
        base = os.path.abspath(self.mktemp())
        corpus = os.path.join(base, "in")
        write_corpus(corpus)
        env = dict(os.environ, TXMR_TEST_DIR=base, TXMR_SLOW_SECONDS="20", TMPDIR=base)
        run = subprocess.Popen(
            TXMR + ["run", os.path.join(JOBS, "slow.py"), "-i", corpus, "-o",
                    os.path.join(base, "out"), "-w", "1", "-m", "2"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env,
            stdin=subprocess.DEVNULL)

        def stop():
            if run.poll() is None:
                run.send_signal(signal.SIGINT)
                run.wait(30)
        self.addCleanup(stop)
        line = run.stderr.readline()
        self.assertIn("txmr: status page at http://127.0.0.1:", line)
        url = line.split(" at ", 1)[1].strip()
        self.assertIn("/?token=", url)
        wait_for(lambda: [n for n in os.listdir(base) if n.startswith("running-map")], 60,
                 "a map to start")
        result = subprocess.run(TXMR + ["status", url], capture_output=True, text=True,
                                timeout=30)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("map    0/2 finished, 1 running", result.stdout)
        bare = url.split("/?", 1)[0]
        result = subprocess.run(TXMR + ["status", bare], capture_output=True, text=True,
                                timeout=30)
        self.assertEqual(result.returncode, 1)
        self.assertIn("401", result.stderr)


class StatusTests(unittest.TestCase):
    def test_status_of_a_driver_with_a_secret_file(self):
        """
        Plain HTTP: without the secret 401 and how to give it; with
        --secret-file the job; with another secret, that it was refused.
        """
        base = os.path.abspath(self.mktemp())
        os.makedirs(base)
        secret, wrong = os.path.join(base, "secret"), os.path.join(base, "wrong")
        for path, text in ((secret, "s3cret-of-the-job\n"), (wrong, "not-the-secret\n")):
            with open(path, "w") as f:
                f.write(text)
        cluster = Cluster.slow_job(self, 2, 30, "--secret-file", secret)
        cluster.start_worker("w", None, "--secret-file", secret)
        wait_for(lambda: cluster.scratch_files("running-map"), 60, "a map to start")
        address = "127.0.0.1:" + cluster.address.rsplit("port=", 1)[1]

        def status(*args):
            return subprocess.run(TXMR + ["status", address, *args], capture_output=True,
                                  text=True, timeout=30)
        result = status()
        self.assertEqual(result.returncode, 1)
        self.assertIn("401", result.stderr)
        self.assertIn("or --secret-file", result.stderr)
        result = status("--secret-file", secret)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("map    0/2 finished, 1 running", result.stdout)
        result = status("--secret-file", wrong)
        self.assertEqual(result.returncode, 1)
        self.assertIn(f"the driver refused the secret in {wrong}", result.stderr)

    def test_status_of_running_job(self):
        cluster = Cluster.slow_job(self, maps=2, seconds=30)
        cluster.start_worker("w")
        wait_for(lambda: cluster.scratch_files("running-map"), 60, "a map to start")
        port = cluster.address.rsplit("port=", 1)[1]
        result = subprocess.run(TXMR + ["status", f"127.0.0.1:{port}"], capture_output=True,
                                text=True, timeout=30)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("running", result.stdout)
        self.assertIn("map    0/2 finished, 1 running, 1 ready, 0 blocked", result.stdout)
        self.assertIn("workers: 1 live", result.stdout)
