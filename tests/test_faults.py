"""
Fault tolerance with real processes: the MIT 6.824 crash suite's spirit.

Each test runs a job whose workers crash, hang, straggle or report late,
and compares the output with the answer computed in one process.
"""

import itertools
import os
import signal
import subprocess
import time

from twisted.trial import unittest

from tests.cluster import EXAMPLES, Cluster, counted, twistd, wait_for, write_corpus
from tests.oracle import read_output, reference


def write_files(directory, n):
    os.makedirs(directory, exist_ok=True)
    for i in range(n):
        with open(os.path.join(directory, f"in-{i}.txt"), "w") as f:
            f.write(f"file {i}\n" + "lorem ipsum dolor\n" * (i + 1))


def sizes(directory):
    """
    What the file-size jobs compute, without running their slow code.
    """
    return {name: str(os.path.getsize(os.path.join(directory, name)))
            for name in os.listdir(directory)}


class CrashTests(unittest.TestCase):
    def test_crash_loop(self):
        """
        Every map and reduce call exits its process with probability 1/3;
        four worker slots are refilled as workers die.  The output is the
        one-process answer, and no process exited before it was complete.
        """
        cluster = Cluster(self, job="jobs/crash.py", maps=8, reduces=3)
        write_files(cluster.input, 8)
        started = time.monotonic()
        cluster.start_driver()
        driver = cluster.processes["driver"]
        slots = {}
        serial = itertools.count()
        while driver.poll() is None and time.monotonic() - started < 600:
            for slot in range(4):
                process = slots.get(slot)
                if process is None or process.poll() is not None:
                    slots[slot] = cluster.start_worker(f"slot{slot}-{next(serial)}")
            time.sleep(0.1)
        self.assertEqual(cluster.wait(timeout=10), 0, cluster.log())
        elapsed = time.monotonic() - started
        self.patch(os, "environ", dict(os.environ, TXMR_NO_CRASH="1"))
        self.assertEqual(read_output(cluster.output, 3),
                         reference(cluster.job, cluster.input))
        early = [(name, code) for name, code, complete in cluster.exits
                 if code == 0 and not complete]
        self.assertEqual(early, [], "processes exited 0 before the output was complete")
        attempts = sum(len(t["attempts"]) for t in cluster.summary()["tasks"])
        print(f"\ncrash loop: {elapsed:.1f}s, {attempts} attempts for 11 tasks, "
              f"{next(serial)} worker processes")

    def test_all_workers_killed_then_new_one(self):
        """
        Every worker dies; the job waits, and a worker that joins later
        finishes it.
        """
        cluster = Cluster.slow_job(self, maps=3, seconds=2)
        workers = [cluster.start_worker(f"w{i}") for i in range(2)]
        wait_for(lambda: len(cluster.scratch_files("running-map")) >= 2, 60,
                 "both workers to run a map")
        for i in range(2):
            cluster.kill(f"w{i}")
        for w in workers:
            w.wait()
        time.sleep(2)
        self.assertIsNone(cluster.processes["driver"].poll(), "the driver waits")
        cluster.start_worker("late")
        self.assertEqual(cluster.wait(), 0, cluster.log())
        self.assertEqual(read_output(cluster.output, 2), counted(cluster.input))


class DriverCrashTests(unittest.TestCase):
    def test_driver_killed_mid_map_and_mid_reduce_resumes(self):
        """
        The driver is SIGKILLed while a map runs, then while a reduce runs,
        and started again each time with the same command: it resumes from
        its journal, the worker reconnects, finished tasks do not run again,
        and the output is exact.
        """
        cluster = Cluster(self, job="jobs/marked.py", maps=4, reduces=2)
        write_corpus(cluster.input)
        cluster.env.update(TXMR_SLOW_SECONDS="1", TXMR_SLOW_REDUCE="1")
        cluster.start_driver()
        port = cluster.address.rsplit("port=", 1)[1]
        same_port = ("--listen", f"tcp:{port}:interface=127.0.0.1")
        cluster.start_worker("w")
        wait_for(lambda: len(cluster.scratch_files("map-run")) >= 3, 60,
                 "two maps done and a third running")
        cluster.kill("driver")
        cluster.wait("driver")
        cluster.start_driver(*same_port, name="driver-2")
        wait_for(lambda: cluster.scratch_files("reduce-run"), 60, "a reduce to start")
        cluster.kill("driver-2")
        cluster.wait("driver-2")
        cluster.start_driver(*same_port, name="driver-3")
        self.assertEqual(cluster.wait("driver-3"), 0, cluster.log("driver-3"))
        self.assertEqual(read_output(cluster.output, 2), counted(cluster.input))
        maps, reduces = (len(cluster.scratch_files(f"{k}-run")) for k in ("map", "reduce"))
        self.assertLessEqual(maps, 4 + 1, "only the map in flight ran again")
        self.assertLessEqual(reduces, 2 + 1, "only the reduce in flight ran again")
        self.assertIn("resuming the earlier run (epoch 3)", cluster.log("driver-3"))
        self.assertEqual(cluster.wait("w"), 0)

    def test_driver_killed_inside_a_commit_resumes(self):
        """
        The driver dies inside its third commit, once with the files renamed
        but not journaled, once just after the journal write: started again,
        it finishes the job with exact output either way.
        """
        for point in ("after-rename:3", "after-journal:3"):
            cluster = Cluster(self, job="jobs/marked.py", maps=4, reduces=2)
            write_corpus(cluster.input)
            cluster.env["TXMR_CRASH_AT"] = point
            cluster.start_driver()
            port = cluster.address.rsplit("port=", 1)[1]
            cluster.start_worker("w")
            self.assertEqual(cluster.wait("driver", 60), -signal.SIGKILL, point)
            del cluster.env["TXMR_CRASH_AT"]
            cluster.start_driver("--listen", f"tcp:{port}:interface=127.0.0.1", name="again")
            self.assertEqual(cluster.wait("again", 60), 0, cluster.log("again"))
            self.assertEqual(read_output(cluster.output, 2), counted(cluster.input), point)
            self.assertEqual(cluster.wait("w", 60), 0, point)
            # A commit the journal holds is not run again; one it lacks is.
            log = cluster.log("again")
            kept = int(log.split("resuming the earlier run (epoch 2): ")[1].split()[0])
            if point.startswith("after-rename"):
                # Commits are journaled in groups (files.FLUSH_EVERY): the
                # first two may or may not be in by then; the third is not.
                self.assertLess(kept, 3, "the third commit was not journaled: it runs again")
            else:
                self.assertGreaterEqual(kept, 3, "the journaled commits stay done")


    def test_a_changed_input_refuses_to_resume_and_fresh_starts_over(self):
        """
        Killed mid-job, then its input changed: the same command refuses to
        resume, naming the file and --fresh, and leaves the earlier run's
        files; with --fresh it starts over and gives the new input's answer.
        """
        cluster = Cluster(self, job="jobs/marked.py", maps=4, reduces=2)
        write_corpus(cluster.input)
        cluster.env.update(TXMR_SLOW_SECONDS="1")
        cluster.start_driver()
        port = cluster.address.rsplit("port=", 1)[1]
        cluster.start_worker("w")
        wait_for(lambda: len(cluster.scratch_files("map-run")) >= 2, 60, "a map done")
        cluster.kill("driver")
        cluster.wait("driver")
        changed = sorted(os.listdir(cluster.input))[0]
        with open(os.path.join(cluster.input, changed), "a") as f:
            f.write("a line added after the crash\n")
        again = subprocess.run(twistd() + ["--pidfile=", "-n"] + cluster.driver_args(),
                               cwd=cluster.base, capture_output=True, text=True, timeout=60,
                               stdin=subprocess.DEVNULL, env=cluster.env)
        self.assertEqual(again.returncode, 2, again.stderr)
        self.assertIn(f"input files changed: {changed}", again.stderr)
        self.assertIn("--fresh", again.stderr)
        cluster.start_driver("--listen", f"tcp:{port}:interface=127.0.0.1", "--fresh",
                             name="fresh")
        self.assertEqual(cluster.wait("fresh", 60), 0, cluster.log("fresh"))
        self.assertEqual(read_output(cluster.output, 2), counted(cluster.input))
        self.assertEqual(cluster.wait("w", 60), 0)


class WorkerKillingTaskTests(unittest.TestCase):
    def test_a_task_that_kills_every_worker_fails_the_job(self):
        """
        A map that kills the process running it, under a supervisor that
        starts a new worker each time one dies (as systemd or Kubernetes
        would): the job fails, naming the task, after twice --max-attempts
        lost workers, instead of running for ever.
        """
        cluster = Cluster(self, job="jobs/always_dies.py", maps=1, reduces=1,
                          input_dir=EXAMPLES)
        cluster.start_driver("--max-attempts", "2")
        started = 0
        deadline = time.monotonic() + 90
        while cluster.processes["driver"].poll() is None and time.monotonic() < deadline:
            name = f"w{started}"
            started += 1
            cluster.start_worker(name)
            while (cluster.processes[name].poll() is None
                   and cluster.processes["driver"].poll() is None):
                time.sleep(0.05)
            cluster.killed.add(name)
        self.assertEqual(cluster.wait(timeout=30), 1, cluster.log())
        self.assertIn("job failed: map task 0 lost its worker 4 times while running",
                      cluster.log())
        self.assertEqual([n for n in os.listdir(cluster.output) if n.startswith("out-")], [])


class ChangedInputTests(unittest.TestCase):
    def test_input_rewritten_mid_job_fails_it_naming_the_file(self):
        cluster = Cluster.slow_job(self, maps=2, seconds=2)
        cluster.start_busy_worker("w")
        for name in os.listdir(cluster.input):
            path = os.path.join(cluster.input, name)
            with open(path, "r+") as f:
                text = f.read()
                f.seek(0)
                f.write(text.upper())
        self.assertEqual(cluster.wait(timeout=90), 1, cluster.log())
        self.assertIn("InputChanged: input file 'in-", cluster.log())
        self.assertEqual([n for n in os.listdir(cluster.output) if n.startswith("out-")], [])


class BlacklistTests(unittest.TestCase):
    def test_worker_failing_where_others_succeed_is_blacklisted(self):
        """
        Each task that fails on the bad worker is retried elsewhere, never
        on it again, so the job succeeds; once three of its failed tasks
        have succeeded elsewhere, the bad worker is blacklisted.
        """
        cluster = Cluster(self, job="jobs/flaky.py", maps=12, reduces=1)
        write_files(cluster.input, 12)
        cluster.start_driver()
        cluster.start_worker("good")
        wait_for(lambda: "worker w1 joined" in cluster.log(), 60, "the good worker")
        env = cluster.env
        cluster.env = dict(env, TXMR_BAD_WORKER="1")
        bad = cluster.start_worker("bad")
        cluster.env = env
        self.assertEqual(cluster.wait(), 0, cluster.log())
        self.assertIn("worker w2 blacklisted", cluster.log())
        self.assertEqual(read_output(cluster.output, 1), sizes(cluster.input))
        workers = {w["id"]: w for w in cluster.summary()["workers"]}
        self.assertTrue(workers["w2"]["blacklisted"])
        self.assertGreaterEqual(workers["w2"]["failed"], 3)
        self.assertEqual(workers["w2"]["succeeded"], 0)
        self.assertFalse(workers["w1"]["blacklisted"])
        for task in cluster.summary()["tasks"]:
            failed_on = [a["worker"] for a in task["attempts"] if a["state"] == "failed"]
            self.assertLessEqual(len(failed_on), 1, "a retry never went back to the bad worker")
        self.assertEqual(bad.wait(30), 0)


class ExactlyOnceTests(unittest.TestCase):
    def test_exactly_once(self):
        """
        With no failures, 8 map tasks that take 2 to 5 s are each run
        exactly once by 4 workers: no spurious backups or re-runs.
        """
        cluster = Cluster(self, job="jobs/once.py", maps=8, reduces=2)
        write_files(cluster.input, 8)
        cluster.start_driver()
        for i in range(4):
            cluster.start_worker(f"w{i}")
        self.assertEqual(cluster.wait(), 0, cluster.log())
        with open(os.path.join(cluster.scratch, "invocations")) as f:
            invocations = f.read().splitlines()
        self.assertEqual(len(invocations), 8, invocations)
        self.assertEqual(sorted(i.split()[0] for i in invocations),
                         sorted(f"in-{i}.txt" for i in range(8)))
        self.assertEqual(read_output(cluster.output, 2), sizes(cluster.input))
        for i in range(4):
            self.assertEqual(cluster.wait(f"w{i}", 30), 0)
        self.assertTrue(all(complete for _, _, complete in cluster.exits), cluster.exits)

    def test_parallelism(self):
        """
        With two workers, two map tasks and two reduce tasks run at the
        same time, in different processes.
        """
        cluster = Cluster(self, job="jobs/parallel.py", maps=2, reduces=2)
        write_files(cluster.input, 4)
        cluster.start_driver()
        cluster.start_worker("a")
        cluster.start_worker("b")
        self.assertEqual(cluster.wait(), 0, cluster.log())
        for kind in ("map", "reduce"):
            spans = []
            for name in cluster.scratch_files(kind + "-"):
                _, pid, start, end = name.split("-")
                spans.append((int(pid), float(start), float(end)))
            self.assertEqual(len(spans), 2, spans)
            (p1, s1, e1), (p2, s2, e2) = spans
            self.assertNotEqual(p1, p2)
            self.assertLess(max(s1, s2), min(e1, e2), f"{kind} tasks did not overlap: {spans}")


    def test_reduces_after_quick_maps_run_in_parallel(self):
        """
        After many quick map tasks a worker asks for its next task while it
        runs one; the two slow reduce tasks must still go to both workers,
        not wait one behind the other on the worker that asked first.
        """
        cluster = Cluster(self, job="jobs/parallel.py", maps=12, reduces=2)
        cluster.env["TXMR_MAP_SECONDS"] = "0"
        write_files(cluster.input, 12)
        cluster.start_driver()
        cluster.start_worker("a")
        cluster.start_worker("b")
        self.assertEqual(cluster.wait(), 0, cluster.log())
        spans = []
        for name in cluster.scratch_files("reduce-"):
            _, pid, start, end = name.split("-")
            spans.append((int(pid), float(start), float(end)))
        self.assertEqual(len(spans), 2, spans)
        (p1, s1, e1), (p2, s2, e2) = spans
        self.assertNotEqual(p1, p2, "both reduce tasks ran on one worker")
        self.assertLess(max(s1, s2), min(e1, e2), f"reduce tasks did not overlap: {spans}")


class SlownessTests(unittest.TestCase):
    def test_straggler_gets_backup(self):
        """
        One map attempt sleeps a minute; a backup attempt on an idle worker
        finishes the task and the job, long before the straggler wakes.
        """
        cluster = Cluster(self, job="jobs/straggler.py", maps=4, reduces=1)
        write_files(cluster.input, 4)
        cluster.start_driver("--speculate-after", "1")
        for i in range(3):
            cluster.start_worker(f"w{i}")
        self.assertEqual(cluster.wait(timeout=50), 0, cluster.log())
        self.assertIn("(backup)", cluster.log())
        self.assertNotIn("straggler-started-woke", cluster.scratch_files())
        self.assertEqual(read_output(cluster.output, 1), sizes(cluster.input))

    def test_timed_out_attempt_reports_late_and_is_refused(self):
        """
        An attempt past --task-timeout is abandoned and retried elsewhere;
        its late report is refused and its files are never committed.
        """
        cluster = Cluster(self, job="jobs/straggler.py", maps=2, reduces=1)
        write_files(cluster.input, 2)
        cluster.env["TXMR_STRAGGLE_SECONDS"] = "2.5"
        cluster.env["TXMR_REDUCE_SECONDS"] = "1"
        cluster.start_driver("--task-timeout", "1.5", "--no-speculation")
        for i in range(2):
            cluster.start_worker(f"w{i}")
        self.assertEqual(cluster.wait(timeout=60), 0, cluster.log())
        log = cluster.log()
        self.assertIn("timed out on worker", log)
        self.assertIn("refused a report", log)
        self.assertRegex(log, r"no longer running \(timed-out\)")
        self.assertEqual(sorted(os.listdir(cluster.output)), ["_SUCCESS", "out-0"])

    def test_frozen_worker_resumes_and_its_attempt_never_counts(self):
        """
        A worker frozen mid-task is given up and its connection closed: its
        attempt is lost, never the task's winner, whatever it does when it
        thaws (it joins again as a new worker, its old attempt's files
        removed); the job's output is still exactly right.  (That a report
        of a lost worker's attempt is refused is shown in memory, by
        test_protocol's test_report_from_lost_worker_refused: a real frozen
        worker's report never reaches the driver, which closed its
        connection.)
        """
        cluster = Cluster.slow_job(self, maps=2, seconds=4)
        frozen = cluster.start_busy_worker("frozen")
        cluster.kill("frozen", signal.SIGSTOP)
        other = cluster.start_worker("other")
        wait_for(lambda: "silent for more than" in cluster.log(), 30, "the driver to give up")
        frozen.send_signal(signal.SIGCONT)
        cluster.killed.discard("frozen")
        self.assertEqual(cluster.wait(), 0, cluster.log())
        self.assertEqual(read_output(cluster.output, 2), counted(cluster.input))
        self.assertEqual(cluster.wait("frozen", 60), 0, cluster.log("frozen"))
        self.assertEqual(other.wait(30), 0)
        summary = cluster.summary()
        sessions = {w["id"] for w in summary["workers"] if w["pid"] == frozen.pid}
        attempts = [a for t in summary["tasks"] for a in t["attempts"]]
        frozen_attempts = [a for a in attempts if a["worker"] in sessions]
        first = min(frozen_attempts, key=lambda a: a["id"])
        self.assertEqual(first["state"], "lost", "the attempt it was frozen in never counts")
        for directory in (cluster.intermediate, cluster.output):
            self.assertEqual([n for n in os.listdir(directory) if ".attempt-" in n], [])

    def test_worker_frozen_past_the_end_of_the_job_leaves_nothing(self):
        """
        A worker frozen mid-task thaws after the job is over and its driver
        gone: it finishes its task, cannot report it, and removes its files;
        nothing is left in the job's directories, and it exits.
        """
        cluster = Cluster.slow_job(self, maps=2, seconds=2)
        frozen = cluster.start_busy_worker("frozen")
        cluster.kill("frozen", signal.SIGSTOP)
        cluster.start_worker("other")
        self.assertEqual(cluster.wait(), 0, cluster.log())
        frozen.send_signal(signal.SIGCONT)
        frozen.wait(60)
        for directory in (cluster.intermediate, cluster.output):
            self.assertEqual([n for n in os.listdir(directory) if ".attempt-" in n], [],
                             cluster.log("frozen"))
        self.assertEqual(read_output(cluster.output, 2), counted(cluster.input))


class BadRecordTests(unittest.TestCase):
    def poisoned(self, cluster):
        write_corpus(cluster.input, files=3)
        with open(os.path.join(cluster.input, "in-1.txt"), "a") as f:
            f.write("this line is POISON for the map\nlast clean line\n")

    def test_skip_bad_records(self):
        cluster = Cluster(self, job="jobs/poison.py", maps=2)
        self.poisoned(cluster)
        cluster.start_driver("--skip-bad-records")
        cluster.start_worker("w")
        self.assertEqual(cluster.wait(), 0, cluster.log())
        self.assertIn("skipped bad record", cluster.log())
        self.assertIn("txmr.skipped_records = 1", cluster.log())
        expected = counted(cluster.input)
        out = read_output(cluster.output, 2)
        self.assertNotIn("POISON", out)
        self.assertEqual(out["last"], "1")
        self.assertEqual(int(out["line"]), int(expected["line"]) - 1)

    def test_bad_record_fails_job_without_skipping(self):
        cluster = Cluster(self, job="jobs/poison.py", maps=2)
        self.poisoned(cluster)
        cluster.start_driver()
        cluster.start_worker("w")
        self.assertEqual(cluster.wait(), 1)
        self.assertIn("ValueError: poisoned record", cluster.log())
