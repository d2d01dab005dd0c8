"""
The scheduling core on its own: no network, time passed in by hand.
"""

from twisted.trial import unittest

from txmr.scheduler import (
    BLOCKED, FINISHED, JOB_FAILED, JOB_FINISHED, READY, RUNNING,
    Scheduler, SchedulingError, StaleReport, UnknownTask, UnknownWorker,
)


def make(maps=2, reduces=1, **kwargs):
    scheduler = Scheduler([[["f%d" % i, 0, 10]] for i in range(maps)], reduces, **kwargs)
    return scheduler


def finish(scheduler, worker, attempt, now):
    return scheduler.succeed(worker, attempt.task.kind, attempt.task.index, attempt.id, now)


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
        self.assertIsNone(s.assign("b", 3) if "b" in s.workers else None)
        finish(s, "a", m1, 4)
        self.assertEqual([t.state for t in s.reduces], [READY, READY])
        r0 = s.assign("a", 5)
        finish(s, "a", r0, 6)
        self.assertEqual(s.state, 1)
        r1 = s.assign("a", 7)
        finish(s, "a", r1, 8)
        self.assertEqual(s.state, JOB_FINISHED)
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
        self.assertRaises(UnknownTask, s.succeed, "a", "map", 7, a.id, 1)
        self.assertRaises(UnknownTask, s.succeed, "a", "shuffle", 0, a.id, 1)
        self.assertRaises(StaleReport, s.succeed, "a", "map", 0, 999, 1)

    def test_counters_summed_over_winners(self):
        s = make(maps=2)
        s.register("a", 0)
        for n in range(2):
            a = s.assign("a", n)
            s.succeed("a", "map", a.task.index, a.id, n, {"g": {"x": 2}})
        self.assertEqual(s.summed_counters(), {"g": {"x": 4}})


class FaultTests(unittest.TestCase):
    def test_lost_worker_gives_task_back(self):
        s = make(maps=1)
        s.register("a", 0)
        s.register("b", 0)
        a = s.assign("a", 0)
        s.lose("a", 1)
        self.assertEqual(s.maps[0].state, READY)
        self.assertEqual(a.state, "lost")
        b = s.assign("b", 2)
        self.assertEqual(b.task, s.maps[0])
        # The lost worker's late report changes nothing.
        self.assertRaises(StaleReport, s.succeed, "a", "map", 0, a.id, 3)
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
        self.assertEqual(s.expire(4, 5), [])
        self.assertEqual(s.expire(5.5, 5), ["a"])
        self.assertEqual(s.maps[0].state, READY)
        self.assertEqual(s.expire(20, 5), ["b"])

    def test_failure_retried_then_fails_job(self):
        s = make(maps=1, max_attempts=3)
        s.register("a", 0)
        for n in range(2):
            a = s.assign("a", n)
            s.fail("a", "map", 0, a.id, n, "ValueError: boom")
            self.assertEqual(s.maps[0].state, READY)
        a = s.assign("a", 5)
        s.fail("a", "map", 0, a.id, 5, "ValueError: boom")
        self.assertEqual(s.state, JOB_FAILED)
        self.assertEqual(s.failure, (s.maps[0], "ValueError: boom"))
        self.assertIsNone(s.assign("a", 6))

    def test_lost_workers_do_not_count_as_failures(self):
        s = make(maps=1, max_attempts=1)
        for n in range(5):
            s.register(str(n), n)
            s.assign(str(n), n)
            s.lose(str(n), n)
        self.assertEqual(s.state, 1)
        self.assertEqual(s.maps[0].failures, 0)

    def test_task_timeout(self):
        s = make(maps=1, task_timeout=30)
        s.register("a", 0)
        a = s.assign("a", 0)
        self.assertEqual(s.check_timeouts(29), [])
        self.assertEqual(s.check_timeouts(31), [a])
        self.assertEqual(s.maps[0].state, READY)
        self.assertEqual(s.maps[0].failures, 1)
        self.assertRaises(StaleReport, s.succeed, "a", "map", 0, a.id, 32)
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
        killed = finish(s, "c", backup, 14)
        self.assertEqual(killed, [slow])
        self.assertEqual(slow.state, "killed")
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
        for n in range(2):
            a = s.assign("bad", n)
            s.fail("bad", "map", a.task.index, a.id, n, "OSError: disk")
            g = s.assign("good", n)
            finish(s, "good", g, n)
        self.assertTrue(s.workers["bad"].blacklisted)
        self.assertIsNone(s.assign("bad", 10))
        self.assertIsNotNone(s.assign("good", 10))

    def test_retry_goes_to_another_worker(self):
        s = make(maps=2)
        s.register("bad", 0)
        s.register("good", 0)
        a = s.assign("bad", 0)
        s.fail("bad", "map", a.task.index, a.id, 1, "E")
        other = s.assign("bad", 2)
        self.assertNotEqual(other.task, a.task, "the failed task is not handed back to bad")
        retry = s.assign("good", 2)
        self.assertEqual(retry.task, a.task)

    def test_retry_on_the_same_worker_when_alone(self):
        s = make(maps=1)
        s.register("only", 0)
        a = s.assign("only", 0)
        s.fail("only", "map", 0, a.id, 1, "E")
        self.assertEqual(s.assign("only", 2).task, a.task)

    def test_last_worker_never_blacklisted(self):
        s = make(maps=3, blacklist_after=1)
        s.register("a", 0)
        s.register("b", 0)
        a = s.assign("a", 0)
        s.fail("a", "map", a.task.index, a.id, 0, "E")
        s.lose("b", 0)
        a2 = s.assign("a", 1)
        finish(s, "a", a2, 1)
        self.assertFalse(s.workers["a"].blacklisted)

    def test_skip_bad_records(self):
        s = make(maps=1, max_attempts=2, skip_bad_records=True)
        s.register("a", 0)
        record = ["f0", 0, 3]
        a = s.assign("a", 0)
        s.fail("a", "map", 0, a.id, 0, "E", record)
        a = s.assign("a", 1)
        self.assertEqual(s.maps[0].skip, [])
        s.fail("a", "map", 0, a.id, 1, "E", record)
        self.assertEqual(s.state, 1, "the second failure on a record skips it")
        self.assertEqual(s.maps[0].skip, [record])
        self.assertEqual(s.skipped_records, [("map", 0, record)])
