"""
The scheduling core on its own: no network, time passed in by hand.
"""

from twisted.trial import unittest

from txmr.core.errors import SchedulingError, StaleReport, UnknownTask, UnknownWorker
from txmr.core.instructions import (
    Blacklisted, Cancel, Commit, Discard, GivenBack, JobOver, OutputLost)
from txmr.core.scheduler import Scheduler
from txmr.core.model import WorkerInfo
from txmr.core.states import AttemptState, JobState, TaskState, Via

BLOCKED, READY, RUNNING, FINISHED = (TaskState.BLOCKED, TaskState.READY, TaskState.RUNNING,
                                     TaskState.FINISHED)


def make(maps=2, reduces=1, **kwargs):
    scheduler = Scheduler([[["f%d" % i, 0, 10]] for i in range(maps)], reduces, **kwargs)
    return scheduler


def finish(scheduler, worker, attempt, now, counters=None):
    """
    The worker reports the attempt done and its files are committed: the
    instructions that follow.
    """
    commit = scheduler.report_done(worker, attempt.task.kind, attempt.task.index, attempt.id,
                                   counters)
    return scheduler.committed(commit, now)


def fail(scheduler, worker, attempt, now, error="E", record=None):
    return scheduler.report_failed(worker, attempt.task.kind, attempt.task.index, attempt.id,
                                   now, error, record)


def cancelled(instructions):
    return [i.attempt for i in instructions if isinstance(i, Cancel)]


class LifeCycleTests(unittest.TestCase):
    def test_seed_life_cycle(self):
        """
        Maps start READY and reduces BLOCKED; reduces become READY only when
        every map is FINISHED; the job is FINISHED with the last reduce.
        """
        s = make(maps=2, reduces=2)
        s.register("a", 0)
        self.assertEqual([t.state for t in s.maps], [READY, READY])
        self.assertEqual([t.state for t in s.reduces], [BLOCKED, BLOCKED])
        m0 = s.assign("a", 1)
        self.assertEqual((m0.task.kind, m0.task.index, m0.task.state), ("map", 0, RUNNING))
        finish(s, "a", m0, 2)
        self.assertEqual(s.maps[0].state, FINISHED)
        self.assertEqual(s.reduces[0].state, BLOCKED)
        m1 = s.assign("a", 3)
        self.assertEqual(m1.task.index, 1)
        s.register("b", 3)
        self.assertIsNone(s.assign("b", 3), "reduces wait for the last map")
        self.assertEqual(finish(s, "a", m1, 4), [])
        self.assertEqual([t.state for t in s.reduces], [READY, READY])
        r0 = s.assign("a", 5)
        finish(s, "a", r0, 6)
        self.assertEqual(s.state, JobState.RUNNING)
        r1 = s.assign("b", 7)
        self.assertEqual(finish(s, "b", r1, 8), [JobOver(ok=True)])
        self.assertEqual(s.state, JobState.FINISHED)
        self.assertIsNone(s.assign("a", 9))

    def test_nothing_ready(self):
        """
        While the only map runs, a second worker gets nothing.
        """
        s = make(maps=1)
        s.register("a", 0)
        s.register("b", 0)
        s.assign("a", 0)
        self.assertIsNone(s.assign("b", 1))

    def test_one_task_per_worker(self):
        s = make(maps=2)
        s.register("a", 0)
        s.assign("a", 0)
        self.assertIsNone(s.assign("a", 1))

    def test_lookahead_leaves_tasks_for_idle_workers(self):
        """
        A worker with a slot to spare may take a task to run next, but not
        one that an idle worker could run at once.
        """
        s = make(maps=4)
        s.register("a", 0, slots=2)
        s.register("b", 0, slots=2)
        s.register("c", 0, slots=2)
        finish(s, "a", s.assign("a", 0), 0.01)
        first = s.assign("a", 1)
        # Two tasks ready, two idle workers: nothing to spare for a.
        self.assertIsNone(s.assign("a", 1))
        second = s.assign("b", 1)
        # One ready, c idle: still nothing for a, nor for b.
        self.assertIsNone(s.assign("a", 2))
        self.assertIsNone(s.assign("b", 2))
        third = s.assign("c", 2)
        self.assertEqual(sorted(x.task.index for x in (first, second, third)), [1, 2, 3])

    def test_lookahead_when_tasks_are_quick_and_plenty(self):
        s = make(maps=6)
        s.register("a", 0, slots=2)
        s.register("b", 0, slots=2)
        first = s.assign("a", 0)
        # The phase's durations are unknown yet: no look-ahead.
        self.assertIsNone(s.assign("a", 0))
        finish(s, "a", first, 0.01)
        s.assign("a", 0.01)
        # Quick so far, four ready, one idle worker: a may take one more.
        self.assertIsNotNone(s.assign("a", 0.02))
        self.assertIsNone(s.assign("a", 0.03), "two slots")
        self.assertIsNotNone(s.assign("b", 0.03))

    def test_no_lookahead_when_tasks_are_slow(self):
        s = make(maps=6)
        s.register("a", 0, slots=2)
        finish(s, "a", s.assign("a", 0), 3.0)
        s.assign("a", 3.0)
        self.assertIsNone(s.assign("a", 3.0))

    def test_no_lookahead_into_a_new_phase(self):
        """
        Quick maps say nothing of the reduces: a worker that ran every map
        alone takes one reduce at a time, and one that joins later gets the
        other.
        """
        s = make(maps=3, reduces=2)
        s.register("a", 0, slots=2)
        for i in range(3):
            finish(s, "a", s.assign("a", i * 0.01), i * 0.01 + 0.005)
        first = s.assign("a", 0.1)
        self.assertEqual(first.task.kind, "reduce")
        self.assertIsNone(s.assign("a", 0.1))
        s.register("b", 0.2, slots=2)
        self.assertEqual(s.assign("b", 0.2).task.kind, "reduce")

    def test_attempt_ids_unique(self):
        s = make(maps=3)
        for w in "abc":
            s.register(w, 0)
        ids = [s.assign(w, 0).id for w in "abc"]
        self.assertEqual(len(set(ids)), 3)

    def test_unknown_worker_and_task(self):
        s = make()
        self.assertRaises(UnknownWorker, s.assign, "ghost", 0)
        s.register("a", 0)
        self.assertRaises(SchedulingError, s.register, "a", 0)
        a = s.assign("a", 0)
        self.assertRaises(UnknownTask, s.report_done, "a", "map", 7, a.id)
        self.assertRaises(UnknownTask, s.report_done, "a", "shuffle", 0, a.id)
        self.assertRaises(UnknownTask, s.report_done, "a", ["map"], 0, a.id)
        self.assertRaises(StaleReport, s.report_done, "a", "map", 0, 999)
        self.assertRaises(StaleReport, s.report_done, "a", "map", 0, str(a.id))
        self.assertEqual(a.state, AttemptState.RUNNING, "refusals change nothing")

    def test_counters_summed_over_winners(self):
        s = make(maps=2)
        s.register("a", 0)
        for n in range(2):
            finish(s, "a", s.assign("a", n), n, {"g": {"x": 2}})
        self.assertEqual(s.summed_counters(), {"g": {"x": 4}})


class FaultTests(unittest.TestCase):
    def test_lost_worker_gives_task_back(self):
        s = make(maps=1)
        s.register("a", 0)
        s.register("b", 0)
        a = s.assign("a", 0)
        self.assertEqual(s.lose("a", 1), [GivenBack(a)])
        self.assertEqual(s.lose("a", 1), [], "losing twice does nothing")
        self.assertEqual(s.maps[0].state, READY)
        self.assertEqual(a.state, AttemptState.LOST)
        b = s.assign("b", 2)
        self.assertEqual(b.task, s.maps[0])
        # The lost worker's late report changes nothing.
        self.assertRaises(StaleReport, s.report_done, "a", "map", 0, a.id)
        self.assertRaises(UnknownWorker, s.assign, "a", 3)
        self.assertEqual(s.maps[0].state, RUNNING)
        finish(s, "b", b, 4)
        self.assertEqual(s.maps[0].winner, b)

    def test_expire_silent_workers(self):
        s = make(maps=1)
        s.register("a", 0)
        s.register("b", 0)
        s.assign("a", 0)
        s.seen("b", 4)
        self.assertEqual(s.silent(4, 5), [])
        self.assertEqual([w.id for w in s.silent(5.5, 5)], ["a"])
        s.lose("a", 5.5)
        self.assertEqual(s.maps[0].state, READY)
        self.assertEqual([w.id for w in s.silent(20, 5)], ["b"])

    def test_failure_retried_then_fails_job(self):
        s = make(maps=1, max_attempts=3)
        s.register("a", 0)
        for n in range(2):
            a = s.assign("a", n)
            self.assertEqual(fail(s, "a", a, n, "ValueError: boom"), [Discard(a)])
            self.assertEqual(s.maps[0].state, READY)
        a = s.assign("a", 5)
        self.assertEqual(fail(s, "a", a, 5, "ValueError: boom"),
                         [Discard(a), JobOver(ok=False)])
        self.assertEqual(s.state, JobState.FAILED)
        self.assertEqual((s.failure.task, s.failure.error, s.failure.attempt),
                         (s.maps[0], "ValueError: boom", a))
        self.assertIn("map task 0 failed 3 times", s.failure.message())
        self.assertIsNone(s.assign("a", 6))

    def test_lost_workers_do_not_count_as_failures(self):
        s = make(maps=1, max_attempts=2)
        for n in range(3):
            s.register(str(n), n)
            s.assign(str(n), n)
            s.lose(str(n), n)
        self.assertEqual(s.state, JobState.RUNNING)
        self.assertEqual(s.maps[0].failures, 0)
        self.assertEqual(s.maps[0].losses, 3)

    def test_a_task_that_keeps_losing_its_worker_fails_the_job(self):
        """
        A task that kills every worker it runs on (a crash, all its
        memory), under a supervisor that starts new ones: twice
        --max-attempts losses, and the job fails saying so.
        """
        s = make(maps=2, max_attempts=2)
        s.register("bystander", 0)
        other = s.assign("bystander", 0)
        for n in range(4):
            s.register(str(n), n)
            attempt = s.assign(str(n), n)
            self.assertEqual(attempt.task.index, 1 - other.task.index)
            out = s.lose(str(n), n)
        self.assertEqual(out[-1], JobOver(ok=False))
        self.assertEqual(s.state, JobState.FAILED)
        self.assertIn(f"map task {attempt.task.index} lost its worker 4 times while running",
                      s.failure.message())
        self.assertEqual(other.state, AttemptState.KILLED)

    def test_task_timeout(self):
        s = make(maps=1, task_timeout=30)
        s.register("a", 0)
        a = s.assign("a", 0)
        self.assertEqual(s.check_timeouts(29), [])
        self.assertEqual(s.check_timeouts(31), [Cancel(a)])
        self.assertEqual(a.state, AttemptState.TIMED_OUT)
        self.assertEqual(s.maps[0].state, READY)
        self.assertEqual(s.maps[0].failures, 1)
        self.assertRaises(StaleReport, s.report_done, "a", "map", 0, a.id)
        b = s.assign("a", 33)
        self.assertNotEqual(a.id, b.id)

    def test_first_success_wins(self):
        s = make(maps=2, speculate_after=10)
        for w in "abc":
            s.register(w, 0)
        fast = s.assign("a", 0)
        slow = s.assign("b", 0)
        finish(s, "a", fast, 3)
        self.assertIsNone(s.assign("c", 5), "too early for a backup")
        backup = s.assign("c", 12)
        self.assertIsNotNone(backup)
        self.assertTrue(backup.speculative)
        self.assertEqual(backup.task, slow.task)
        self.assertEqual(cancelled(finish(s, "c", backup, 14)), [slow])
        self.assertEqual(slow.state, AttemptState.KILLED)
        self.assertRaises(StaleReport, finish, s, "b", slow, 15)
        self.assertEqual(slow.task.winner, backup)

    def test_no_backup_for_uneven_durations(self):
        """
        Tasks that take 2 to 5 seconds are never speculated with defaults.
        """
        s = make(maps=3)
        for w in "abcd":
            s.register(w, 0)
        attempts = [s.assign(w, 0) for w in "abc"]
        finish(s, "a", attempts[0], 2)
        finish(s, "b", attempts[1], 2.5)
        for now in (3, 4, 5, 6):
            self.assertIsNone(s.assign("d", now))

    def test_no_speculation(self):
        s = make(maps=2, speculation=False, speculate_after=0)
        for w in "abc":
            s.register(w, 0)
        a = s.assign("a", 0)
        s.assign("b", 0)
        finish(s, "a", a, 1)
        self.assertIsNone(s.assign("c", 100))

    def test_blacklist(self):
        s = make(maps=3, blacklist_after=2)
        s.register("bad", 0)
        s.register("good", 0)
        said = []
        for n in range(2):
            a = s.assign("bad", n)
            fail(s, "bad", a, n, "OSError: disk")
            g = s.assign("good", n)
            said += finish(s, "good", g, n)
        self.assertTrue(s.workers["bad"].blacklisted)
        self.assertEqual(said, [Blacklisted(s.workers["bad"])], "said once")
        self.assertIsNone(s.assign("bad", 10))
        self.assertIsNotNone(s.assign("good", 10))

    def test_retry_goes_to_another_worker(self):
        s = make(maps=2)
        s.register("bad", 0)
        s.register("good", 0)
        a = s.assign("bad", 0)
        fail(s, "bad", a, 1)
        other = s.assign("bad", 2)
        self.assertNotEqual(other.task, a.task, "the failed task is not handed back to bad")
        retry = s.assign("good", 2)
        self.assertEqual(retry.task, a.task)

    def test_retry_on_the_same_worker_when_alone(self):
        s = make(maps=1)
        s.register("only", 0)
        a = s.assign("only", 0)
        fail(s, "only", a, 1)
        self.assertEqual(s.assign("only", 2).task, a.task)

    def test_a_task_failing_everywhere_fails_the_job(self):
        """
        With fewer workers than attempts, a task that fails on every worker
        is retried where it failed, so the job fails after max_attempts
        failures instead of waiting for ever for a worker it has not failed
        on.
        """
        s = make(maps=1, max_attempts=4)
        s.register("a", 0)
        s.register("b", 0)
        for n in range(4):
            attempt = s.assign("a", n) or s.assign("b", n)
            self.assertIsNotNone(attempt, f"attempt {n + 1} went nowhere")
            fail(s, attempt.worker, attempt, n)
        self.assertEqual(s.state, JobState.FAILED)

    def test_a_seed_worker_never_strands_a_retry(self):
        """
        A reduce fails on the only txmr worker while a seed worker polls:
        the seed worker cannot run it, so the txmr worker retries it.
        """
        s = make(maps=1)
        s.register("txmr", 0)
        s.register("seed", 0, WorkerInfo(host="http", pid="1", via=Via.HTTP), slots=None)
        finish(s, "txmr", s.assign("txmr", 0), 0)
        reduce = s.assign("txmr", 1)
        fail(s, "txmr", reduce, 1)
        self.assertIsNone(s.assign("seed", 2), "its maps were not the seed's")
        self.assertEqual(s.assign("txmr", 2).task, reduce.task)

    def test_blacklisting_yields_when_only_blacklisted_workers_are_left(self):
        s = make(maps=3, blacklist_after=1)
        s.register("bad", 0)
        s.register("good", 0)
        a = s.assign("bad", 0)
        fail(s, "bad", a, 0)
        finish(s, "good", s.assign("good", 1), 1)
        self.assertTrue(s.workers["bad"].blacklisted)
        self.assertIsNone(s.assign("bad", 2))
        s.lose("good", 3)
        self.assertIsNotNone(s.assign("bad", 4), "the only worker left")

    def test_last_worker_never_blacklisted(self):
        """
        A task fails on the only txmr worker and then succeeds on a seed
        worker: the txmr worker is to blame, but blacklisting it would leave
        no worker that can run every task, so it is not.
        """
        s = make(maps=3, blacklist_after=1)
        s.register("a", 0)
        s.register("seed", 0, WorkerInfo(host="http", pid="1", via=Via.HTTP), slots=None)
        first = s.assign("a", 0)
        fail(s, "a", first, 0)
        retry = s.assign("seed", 1)
        self.assertEqual(retry.task, first.task, "the seed worker takes the retry")
        self.assertEqual(finish(s, "seed", retry, 1), [])
        self.assertFalse(s.workers["a"].blacklisted)
        self.assertIsNotNone(s.assign("a", 2))

    def test_skip_bad_records(self):
        s = make(maps=1, max_attempts=2, skip_bad_records=True)
        s.register("a", 0)
        record = ["f0", 0, 3]
        a = s.assign("a", 0)
        fail(s, "a", a, 0, record=record)
        a = s.assign("a", 1)
        self.assertEqual(s.maps[0].skip, [])
        fail(s, "a", a, 1, record=record)
        self.assertEqual(s.state, JobState.RUNNING, "the second failure on a record skips it")
        self.assertEqual(s.maps[0].skip, [record])
        self.assertEqual(s.skipped_records, [("map", 0, record)])

    def test_commit_failure_retries_without_blaming_the_worker(self):
        """
        Files that cannot be committed fail the attempt, not its worker: the
        task is retried and counts a failure, the worker is not blamed.
        """
        s = make(maps=1, max_attempts=2)
        s.register("a", 0)
        a = s.assign("a", 0)
        commit = s.report_done("a", "map", 0, a.id)
        self.assertEqual(commit, Commit(a, {}))
        self.assertEqual(s.commit_failed(commit, 1, "OSError: disk full"), [Discard(a)])
        self.assertEqual((a.state, a.error), (AttemptState.FAILED, "OSError: disk full"))
        self.assertEqual((s.maps[0].state, s.maps[0].failures), (READY, 1))
        self.assertEqual(s.workers["a"].failed_attempts, [])
        b = s.assign("a", 2)
        self.assertEqual(s.commit_failed(s.report_done("a", "map", 0, b.id), 3, "E"),
                         [Discard(b), JobOver(ok=False)])

    def test_stale_report_names_leftover_files(self):
        """
        A refused report says whose files may be left over: a lost or
        abandoned attempt's, never another worker's running attempt's.
        """
        s = make(maps=1)
        s.register("a", 0)
        s.register("b", 0)
        a = s.assign("a", 0)
        e = self.assertRaises(StaleReport, s.report_done, "b", "map", 0, a.id)
        self.assertIsNone(e.leftover, "a's attempt still runs")
        s.lose("a", 1)
        e = self.assertRaises(StaleReport, s.report_done, "a", "map", 0, a.id)
        self.assertIs(e.leftover, a)


class SharedNothingTests(unittest.TestCase):
    """
    Map output kept by the workers that wrote it: lost with a worker, or
    when a reducer cannot fetch it, the map runs again.
    """

    def setUp(self):
        self.s = make(maps=2, reduces=2, shared_nothing=True)
        for w in "abc":
            self.s.register(w, 0)
        self.m0 = self.s.assign("a", 0)
        self.m1 = self.s.assign("b", 0)
        finish(self.s, "a", self.m0, 1)
        finish(self.s, "b", self.m1, 1)

    def test_lost_worker_runs_its_maps_again_while_reduces_need_them(self):
        s = self.s
        r0 = s.assign("c", 2)
        out = s.lose("a", 3)
        self.assertIn(OutputLost(self.m0), out)
        self.assertIn(Cancel(r0), out, "the running reduce would read the lost output")
        self.assertEqual([t.state for t in s.maps], [READY, FINISHED])
        self.assertEqual([t.state for t in s.reduces], [BLOCKED, BLOCKED])
        self.assertEqual(self.m0.state, AttemptState.LOST)
        self.assertEqual(s.reduces[0].failures, 0)
        self.assertEqual(s.maps[0].failures, 0, "a lost worker is no fault of the map")
        again = s.assign("b", 4)
        self.assertEqual(again.task, s.maps[0])
        self.assertIsNone(s.assign("c", 4), "the reduces wait for the map")
        finish(s, "b", again, 5)
        self.assertEqual([t.state for t in s.reduces], [READY, READY])
        for w in "bc":
            finish(s, w, s.assign(w, 6), 7)
        self.assertEqual(s.state, JobState.FINISHED)

    def test_a_finished_reduce_stays_finished(self):
        s = self.s
        r0 = s.assign("c", 2)
        finish(s, "c", r0, 3)
        s.lose("a", 4)
        self.assertEqual([t.state for t in s.reduces], [FINISHED, BLOCKED])
        finish(s, "b", s.assign("b", 5), 6)
        self.assertEqual([t.state for t in s.reduces], [FINISHED, READY])
        self.assertEqual(finish(s, "c", s.assign("c", 7), 8), [JobOver(ok=True)])

    def test_no_reduce_left_nothing_runs_again(self):
        s = self.s
        for w in "bc":
            finish(s, w, s.assign(w, 2), 3)
        self.assertTrue(s.over)
        self.assertEqual(s.lose("a", 4), [])
        self.assertEqual(s.maps[0].state, FINISHED)

    def test_fetch_failure_reported_by_a_reduce(self):
        s = self.s
        r0 = s.assign("c", 2)
        r1 = s.assign("a", 2)
        out = s.map_output_lost(1, self.m1.id, 3, ("c", 0, r0.id), why="HTTP 404")
        self.assertEqual(out[0], GivenBack(r0))
        self.assertIn(OutputLost(self.m1), out)
        self.assertIn(Cancel(r1), out)
        self.assertEqual(r0.state, AttemptState.LOST)
        self.assertEqual([t.failures for t in s.reduces], [0, 0], "no reduce is blamed")
        self.assertEqual(s.maps[1].failures, 1)
        self.assertEqual([t.state for t in s.maps], [FINISHED, READY])
        # A second report of the same loss, or of an attempt that is not the
        # committed one, is refused and changes nothing.
        self.assertRaises(StaleReport, s.map_output_lost, 1, self.m1.id, 4, ("a", 1, r1.id))
        self.assertRaises(StaleReport, s.map_output_lost, 0, self.m0.id + 100, 4)

    def test_output_lost_again_and_again_fails_the_job(self):
        s = make(maps=1, reduces=1, shared_nothing=True, max_attempts=2)
        s.register("a", 0)
        for now in (1, 3):
            m = s.assign("a", now)
            finish(s, "a", m, now)
            r = s.assign("a", now)
            out = s.map_output_lost(0, m.id, now + 1, ("a", 0, r.id))
        self.assertEqual(out[-1], JobOver(ok=False))
        self.assertIn("its output was lost", s.failure.message())

    def test_shared_directory_output_is_never_lost(self):
        s = make(maps=1, reduces=1)
        s.register("a", 0)
        m = s.assign("a", 0)
        finish(s, "a", m, 1)
        self.assertRaises(SchedulingError, s.map_output_lost, 0, m.id, 2)
        self.assertEqual(s.lose("a", 2), [])
        self.assertEqual(s.maps[0].state, FINISHED)
