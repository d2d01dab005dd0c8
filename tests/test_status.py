"""
What the status page says a job waits for, read from the scheduler's state:
each sentence follows from one of the scheduler's rules, and says which.
"""

from twisted.trial import unittest

from txmr.core.model import WorkerInfo
from txmr.core.scheduler import Scheduler
from txmr.core.states import Via
from txmr.driver.status import JobView, job_state, waiting_for


def make(maps=2, files=None, **kwargs):
    """
    A scheduler over C{maps} map tasks of one whole file each (or of the
    splits given), and one reduce.
    """
    inputs = files or [[[f"f{i}", 0, 10]] for i in range(maps)]
    return Scheduler(inputs, 1, **kwargs)


def seed(s, name, now=0):
    return s.register(name, now, WorkerInfo(host="http", pid=name, via=Via.HTTP),
                      timeout=60, slots=None)


def finish(s, worker, attempt, now):
    commit = s.report_done(worker, attempt.task.kind, attempt.task.index, attempt.id)
    return s.committed(commit, now)


def fail(s, worker, attempt, now):
    return s.report_failed(worker, attempt.task.kind, attempt.task.index, attempt.id, now, "E")


class WaitingForTests(unittest.TestCase):
    def test_no_worker(self):
        s = make(maps=2)
        self.assertEqual(waiting_for(s, 0), "2 map tasks ready, waiting for a worker")

    def test_running_tasks_and_blocked_reduces(self):
        s = make(maps=2)
        for name in ("a", "b"):
            s.register(name, 0)
            s.assign(name, 0)
        self.assertEqual(waiting_for(s, 12), "waiting for 2 map tasks to finish: map 0 on a for "
                         "12 s, map 1 on b for 12 s; the reduce task starts when every map "
                         "has finished")

    def test_every_worker_busy(self):
        s = make(maps=2)
        s.register("a", 0)
        s.assign("a", 0)
        self.assertEqual(waiting_for(s, 1), "1 map task ready, waiting for a worker: a busy")

    def test_both_failed_there(self):
        s = make(maps=3)
        s.register("a", 0)
        s.register("b", 0)
        first = s.assign("a", 0)
        s.assign("b", 0)
        fail(s, "a", first, 1)
        second = s.assign("a", 1)
        fail(s, "a", second, 2)
        self.assertEqual(waiting_for(s, 3), "2 map tasks ready, no idle worker may take them: "
                                            "both failed on a; waiting for b to finish")

    def test_the_last_worker_retries_where_it_failed(self):
        s = make(maps=1)
        s.register("a", 0)
        fail(s, "a", s.assign("a", 0), 1)
        self.assertEqual(waiting_for(s, 2), "1 map task ready, to be handed to a as it asks")

    def test_a_seed_worker_that_may_run_nothing(self):
        # One file cut in two: the seed's workers read whole files only.
        s = make(files=[[["big", 0, 10]], [["big", 10, 20]]])
        seed(s, "h1")
        s.register("w1", 0)
        s.assign("w1", 0)
        self.assertEqual(waiting_for(s, 1),
                         "1 map task ready, no idle worker may take it: h1 is a seed worker "
                         "(running only word count maps of whole files that no other task "
                         "reads); waiting for w1 to finish")

    def test_a_seed_worker_that_has_not_asked(self):
        s = make(maps=2)
        seed(s, "h1")
        self.assertEqual(waiting_for(s, 1), "2 map tasks ready, waiting for h1 to ask for them "
                         "(a seed worker asks when it wants; its lease runs out if it does not)")

    def test_over(self):
        s = make(maps=1)
        s.register("a", 0)
        finish(s, "a", s.assign("a", 0), 1)
        finish(s, "a", s.assign("a", 1), 2)
        self.assertIsNone(waiting_for(s, 3))


class JobStateTests(unittest.TestCase):
    def view(self, s, now=10.0, tracebacks=None):
        return JobView(job="j", uuid="u", scheduler=s, now=now, started=0.0, wall_started=0.0,
                       ended=None, rtts={}, failure=None, tracebacks=tracebacks or {})

    def test_failures_are_listed_with_whether_a_traceback_is_kept(self):
        s = make(maps=2)
        s.register("a", 0)
        s.register("b", 0)
        first = s.assign("a", 0)
        s.assign("b", 0)
        fail(s, "a", first, 1)
        s.lose("b", 2)
        job = job_state(self.view(s, tracebacks={first.id: "Traceback ..."}))
        self.assertEqual([(f["task"], f["worker"], f["state"], f["error"], f["traceback"])
                          for f in job["failures"]],
                         [("map 0", "a", "failed", "E", True),
                          ("map 1", "b", "lost", "its worker was lost", False)])
        self.assertEqual(job["failures_total"], 2)
