"""
A driver that survives its own crash: its journal, and the run that
resumes it, in memory.  A "crash" here stops the first driver without
letting it end its job, as a killed process would.
"""

import dataclasses
from contextlib import closing
import json
import marshal
import os
import sqlite3

from twisted.trial import unittest

from txmr import protocol
from txmr.core.spec import TaskSpec
from txmr.core.states import AttemptState, Kind
from txmr.driver.files import FLUSH_EVERY
from txmr.driver.journal import ATTEMPT_BLOCK, journal_path
from txmr.driver.seed import SeedWorkers
from txmr.driver.service import makeService
from txmr.plan import ConfigError

from tests.memory import MemoryDriverMixin
from tests.seed_worker import do_map, do_reduce
from tests.oracle import read_output, reference


class ResumeTests(MemoryDriverMixin, unittest.TestCase):
    maps = 3
    files = 4
    options = {"reducers": 2}

    def crash(self):
        """
        The driver dies mid-job, after its journal was written: no ending,
        its connections gone, its locks released (as the kernel does for a
        dead process).
        """
        self.reactor.advance(FLUSH_EVERY)
        self.driver.stopService()
        self.flush()
        self.pumps = []

    def restart(self, **changes):
        """
        The same command line again (with C{changes}): the new driver.
        """
        self.config = dataclasses.replace(self.config, **changes)
        self.driver = makeService(self.config, self.reactor,
                                  on_exit=lambda code, message: self.exits.append(code))
        self.coordinator = self.driver.coordinator
        self.scheduler = self.coordinator.scheduler
        self.driver.startService()
        self.addCleanup(self.driver.stopService)
        self.factory = self.reactor.tcpServers[-1][1]
        return self.driver

    def run_tasks(self, client, kinds=(Kind.MAP, Kind.REDUCE), limit=None):
        """
        Run the tasks the driver hands out, while they are of C{kinds}.
        """
        ran = []
        answer = self.successResultOf(self.call(client, protocol.GetTask, wait=False))
        while answer["action"] == "run" and (limit is None or len(ran) < limit):
            spec = TaskSpec.from_json(answer["task"])
            if spec.kind not in kinds:
                break
            ran.append((spec.kind, spec.index, spec.attempt))
            self.successResultOf(self.run_and_report(client, spec))
            answer = self.successResultOf(self.call(client, protocol.GetTask, wait=False))
        return ran

    def expected(self):
        return reference(self.config.job, self.config.input)

    def test_crash_after_the_maps_resumes_with_the_reduces(self):
        ran = self.run_tasks(self.connect(), kinds=(Kind.MAP,))
        self.assertEqual([k for k, _, _ in ran], [Kind.MAP] * 3)
        self.crash()
        self.restart()
        restored = [a for a in self.scheduler.attempts.values()]
        self.assertEqual(sorted((a.task.kind, a.task.index, a.id) for a in restored), ran)
        self.assertTrue(all(a.state is AttemptState.SUCCEEDED for a in restored))
        again = self.run_tasks(self.connect())
        self.assertEqual([(k, i) for k, i, _ in again], [(Kind.REDUCE, 0), (Kind.REDUCE, 1)],
                         "no map runs again")
        self.assertTrue(all(a > ATTEMPT_BLOCK for _, _, a in again),
                        "the new run's attempt ids are its own")
        self.assertEqual(self.successResultOf(self.driver.done), 0)
        self.assertEqual(read_output(self.config.output, 2), self.expected())
        counters = self.scheduler.summed_counters()["txmr"]
        self.assertEqual(counters["map_input_records"], 8, "the earlier run's counters count")

    def test_crash_mid_reduce_keeps_the_finished_reduce(self):
        ran = self.run_tasks(self.connect(), limit=4)
        self.assertEqual(ran[-1][0], Kind.REDUCE)
        self.crash()
        self.restart()
        again = self.run_tasks(self.connect())
        self.assertEqual(len(again), 1)
        self.assertEqual(again[0][:2], (Kind.REDUCE, 1 - ran[-1][1]))
        self.assertEqual(self.successResultOf(self.driver.done), 0)
        self.assertEqual(read_output(self.config.output, 2), self.expected())

    def test_a_commit_whose_files_are_gone_runs_again(self):
        """
        The crash came between the journal write and the renames (or the
        files were lost since): the task runs again.
        """
        ran = self.run_tasks(self.connect(), kinds=(Kind.MAP,))
        self.crash()
        lost = ran[1]
        os.unlink(self.coordinator.layout.map_output(lost[1], 0))
        self.restart()
        again = self.run_tasks(self.connect())
        self.assertEqual([(k, i) for k, i, _ in again],
                         [(Kind.MAP, lost[1]), (Kind.REDUCE, 0), (Kind.REDUCE, 1)])
        self.assertEqual(read_output(self.config.output, 2), self.expected())

    def test_files_the_journal_does_not_claim_are_redone(self):
        """
        The crash came between the renames and the journal write: the
        files are there, unclaimed; the task runs again and replaces them.
        """
        ran = self.run_tasks(self.connect(), kinds=(Kind.MAP,))
        self.crash()
        # Closed before the restart: the driver holds its journal alone.
        with closing(sqlite3.connect(journal_path(self.config))) as db, db:
            db.execute("DELETE FROM commits WHERE task = ?", (ran[0][1],))
        self.restart()
        again = self.run_tasks(self.connect())
        self.assertEqual([(k, i) for k, i, _ in again][:1], [(Kind.MAP, ran[0][1])])
        self.assertEqual(self.successResultOf(self.driver.done), 0)
        self.assertEqual(read_output(self.config.output, 2), self.expected())

    def test_records_an_earlier_txmr_wrote_in_json_are_resumed(self):
        """
        A journal whose commits an earlier txmr recorded as JSON text (now
        marshal data) resumes as well: no map runs again.
        """
        ran = self.run_tasks(self.connect(), kinds=(Kind.MAP,))
        self.crash()
        with closing(sqlite3.connect(journal_path(self.config))) as db, db:
            rows = db.execute("SELECT rowid, record FROM commits").fetchall()
            self.assertTrue(rows and all(isinstance(r, bytes) for _, r in rows))
            for rowid, record in rows:
                db.execute("UPDATE commits SET record = ? WHERE rowid = ?",
                           (json.dumps(marshal.loads(record)), rowid))
        self.restart()
        again = self.run_tasks(self.connect())
        self.assertEqual([k for k, _, _ in again], [Kind.REDUCE, Kind.REDUCE])
        self.assertEqual(read_output(self.config.output, 2), self.expected())
        self.assertEqual(len(ran), 3)

    def test_a_record_that_does_not_read_refuses_in_one_line(self):
        """
        A damaged commit record: the driver refuses to start, naming the
        journal (and --fresh is the way on), rather than die of a traceback.
        """
        self.run_tasks(self.connect(), kinds=(Kind.MAP,))
        self.crash()
        with closing(sqlite3.connect(journal_path(self.config))) as db, db:
            db.execute("UPDATE commits SET record = ? WHERE rowid = 1", (b"\xff\x00",))
        e = self.assertRaises(ConfigError, self.restart)
        self.assertIn("cannot use the journal", str(e))
        self.restart(fresh=True)
        self.run_tasks(self.connect())
        self.assertEqual(read_output(self.config.output, 2), self.expected())

    def test_a_changed_input_refuses_to_resume(self):
        self.run_tasks(self.connect(), kinds=(Kind.MAP,), limit=1)
        self.crash()
        with open(os.path.join(self.config.input, "in-2.txt"), "a") as f:
            f.write("one more line\n")
        e = self.assertRaises(ConfigError, self.restart)
        self.assertIn("input files changed: in-2.txt", str(e))
        self.assertIn("--fresh", str(e))
        self.assertEqual(self.exits, [])
        self.restart(fresh=True)
        again = self.run_tasks(self.connect())
        self.assertEqual(len(again), 5, "everything runs again")
        self.assertEqual(read_output(self.config.output, 2), self.expected())

    def test_other_flags_refuse_to_resume(self):
        self.run_tasks(self.connect(), kinds=(Kind.MAP,), limit=1)
        self.crash()
        e = self.assertRaises(ConfigError, self.restart, reducers=3)
        self.assertIn("reducers was 2, now 3", str(e))

    def test_a_report_of_the_earlier_run_is_refused(self):
        """
        Fencing across restarts: a worker of the dead driver finishes its
        attempt and reports it to the new driver, which never handed it
        out: refused (a real worker then removes its files), and the task
        runs again under an attempt of this run, whose files win.
        """
        from txmr.core.errors import StaleReport
        from txmr.data.run import run_task

        client = self.connect()
        answer = self.successResultOf(self.call(client, protocol.GetTask, wait=False))
        old = TaskSpec.from_json(answer["task"])
        self.crash()
        self.restart()
        run_task(self.job, old)
        late = self.connect()
        self.failureResultOf(
            self.call(late, protocol.TaskDone, kind=old.kind, index=old.index,
                      attempt=old.attempt, counters={}, ask=False), StaleReport)
        self.assertEqual(self.scheduler.task(old.kind, old.index).state.name, "READY")
        self.assertNotIn(old.attempt, self.scheduler.attempts)
        again = self.run_tasks(late)
        self.assertIn((old.kind, old.index), [(k, i) for k, i, _ in again])
        self.assertTrue(all(a > ATTEMPT_BLOCK for _, _, a in again))
        self.assertEqual(read_output(self.config.output, 2), self.expected())

    def test_a_complete_job_is_not_run_again(self):
        self.run_tasks(self.connect())
        self.assertEqual(self.successResultOf(self.driver.done), 0)
        output = read_output(self.config.output, 2)
        self.driver.stopService()
        self.restart()
        self.assertEqual(self.successResultOf(self.driver.done), 0)
        self.assertEqual([a.worker for a in self.scheduler.attempts.values()],
                         ["earlier-run"] * 5)
        self.assertEqual(read_output(self.config.output, 2), output)

    def test_another_run_in_the_same_directories_is_not_resumed(self):
        """
        A finished job's directories are rewritten by another job run
        inline; the first job's command again must not claim those files
        as its own output.
        """
        from txmr.inline import run_inline
        from txmr.plan import JobConfig

        self.run_tasks(self.connect())
        self.assertEqual(self.successResultOf(self.driver.done), 0)
        expected = read_output(self.config.output, 2)
        self.driver.stopService()
        other = os.path.join(os.path.dirname(__file__), "jobs", "pairs.py")
        run_inline(JobConfig(input=self.config.input, intermediate=self.config.intermediate,
                             output=self.config.output, mappers=3, reducers=2, job=other))
        self.assertNotEqual(read_output(self.config.output, 2), expected)
        self.restart()
        self.assertFalse(self.scheduler.over, "another job's output is not this job's")
        self.run_tasks(self.connect())
        self.assertEqual(read_output(self.config.output, 2), expected)

    def test_a_failed_job_starts_over(self):
        client = self.connect()
        for _ in range(10):
            spec = TaskSpec.from_json(self.successResultOf(
                self.call(client, protocol.GetTask))["task"])
            self.successResultOf(self.call(
                client, protocol.TaskFailed, kind=str(spec.kind), index=spec.index,
                attempt=spec.attempt, error="E", traceback="", record=None))
            if self.driver.done.called:
                break
        self.assertEqual(self.successResultOf(self.driver.done), 1)
        self.driver.stopService()
        self.restart()
        self.assertEqual(self.scheduler.attempts, {})
        self.run_tasks(self.connect())
        self.assertEqual(read_output(self.config.output, 2), self.expected())


class SeedResumeTests(ResumeTests.__bases__[0], unittest.TestCase):
    """
    A job the seed's own workers run: their map output is in the seed's
    buckets, and its reduces read it by them, whoever runs them.  That
    holds across a restart of the driver, which no longer knows who wrote
    the committed maps.
    """

    maps = 3
    files = 3
    options = {"reducers": 2}
    crash = ResumeTests.crash
    restart = ResumeTests.restart
    run_tasks = ResumeTests.run_tasks
    expected = ResumeTests.expected

    def seed_task(self, seed, pid):
        attempt = seed.assign(pid)
        task = attempt.task
        o_path = self.coordinator.files.seed_directory(attempt)
        answer = {"id": task.index, "o_path": o_path}
        if task.kind is Kind.MAP:
            do_map(dict(answer, i_path=[os.path.join(self.config.input, name)
                                        for name, _, _ in task.inputs],
                        n_buckets=len(self.scheduler.reduces)))
        else:
            do_reduce(dict(answer, i_path=self.config.intermediate,
                           n_mappers=len(self.scheduler.maps)))
        self.coordinator.finished_in_place(attempt.worker, task.kind, task.index, pid)
        return task

    def test_seed_buckets_survive_a_restart(self):
        seed = SeedWorkers(self.coordinator, lease=60)
        done = [self.seed_task(seed, "7") for _ in range(4)]
        self.assertEqual([t.kind for t in done], [Kind.MAP] * 3 + [Kind.REDUCE])
        self.crash()
        self.restart()
        self.assertTrue(self.scheduler.maps_in_seed_format())
        again = self.run_tasks(self.connect())
        self.assertEqual([(k, i) for k, i, _ in again], [(Kind.REDUCE, 1 - done[-1].index)])
        self.assertEqual(self.successResultOf(self.driver.done), 0)
        counts = {}
        for r in range(2):
            with open(os.path.join(self.config.output, f"out-{r}")) as f:
                for line in f:
                    # The seed's reducer writes "word count", txmr's "word\tcount".
                    word, n = line.rstrip("\n").replace("\t", " ").rsplit(" ", 1)
                    self.assertNotIn(word, counts, "a word reached two reducers")
                    counts[word] = n
        self.assertEqual(counts, self.expected())
