"""
A model-based test of the scheduling core: Hypothesis drives random stories
(workers joining, leaving and going silent, tasks handed out, succeeding,
failing, timing out, commits failing, reports arriving late or twice) and
checks the promise's invariants after every step.
"""

import copy

from hypothesis import HealthCheck, settings, strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine, initialize, invariant, precondition, rule,
    run_state_machine_as_test)
from twisted.trial import unittest

from txmr.core.errors import SchedulingError
from txmr.core.instructions import JobOver, OutputLost
from txmr.core.model import WorkerInfo
from txmr.core.scheduler import Scheduler
from txmr.core.states import AttemptState, JobState, Kind, TaskState, Via


class SchedulerStories(RuleBasedStateMachine):
    @initialize(maps=st.integers(1, 4), reduces=st.integers(1, 3),
                max_attempts=st.integers(1, 4), timeout=st.sampled_from([None, 5.0]),
                skipping=st.booleans(), shared_nothing=st.booleans(), seed=st.booleans(),
                cut=st.booleans())
    def plan(self, maps, reduces, max_attempts, timeout, skipping, shared_nothing, seed, cut):
        # With cut, map 0 reads part of a file that map 1 reads too: not a
        # task for the seed's workers, which read whole files.
        splits = [[[f"f{i}", 0, 10]] for i in range(maps)]
        if cut and maps > 1:
            splits[0], splits[1] = [["f0", 0, 5]], [["f0", 5, 10]]
        self.s = Scheduler(splits, reduces,
                           max_attempts=max_attempts, task_timeout=timeout,
                           speculate_after=3.0, blacklist_after=2,
                           skip_bad_records=skipping, shared_nothing=shared_nothing,
                           seed_workers=seed)
        self.now = 0.0
        self.ids = 0
        self.committed = {}
        self.job_overs = 0
        # For each reduce attempt handed out: the map attempts it reads
        # (the committed ones when it started), and whether they were
        # still committed when it committed (fencing).
        self.reads = {}

    def live(self):
        return [w for w in self.s.workers.values() if not w.lost]

    def running(self):
        return [a for a in self.s.attempts.values() if a.running]

    def follow(self, instructions):
        self.job_overs += sum(isinstance(i, JobOver) for i in instructions)
        for lost in (i.attempt for i in instructions if isinstance(i, OutputLost)):
            # Its output is gone: the map may be committed again, once.
            assert self.s.shared_nothing
            self.committed[lost.task.key].remove(lost.id)

    def committed_maps(self):
        return [m for m in self.s.maps if m.winner is not None]

    # -- events ---------------------------------------------------------------

    @rule(slots=st.sampled_from([1, 2]))
    def join(self, slots):
        self.ids += 1
        self.s.register(f"w{self.ids}", self.now, slots=slots)

    @rule()
    def seed_worker_joins(self):
        """
        One of the seed's HTTP workers: any number of tasks at once, a
        60 s lease, and only the tasks it can do exactly.
        """
        self.ids += 1
        self.s.register(f"h{self.ids}", self.now, info=WorkerInfo(via=Via.HTTP), timeout=60.0,
                        slots=None)

    @precondition(lambda self: self.live())
    @rule(data=st.data())
    def lose(self, data):
        worker = data.draw(st.sampled_from(self.live()))
        self.follow(self.s.lose(worker.id, self.now))

    @rule(seconds=st.sampled_from([0.01, 1.0, 4.0]))
    def time_passes(self, seconds):
        self.now += seconds
        for worker in self.s.silent(self.now, 10.0):
            self.follow(self.s.lose(worker.id, self.now))
        self.follow(self.s.check_timeouts(self.now))

    @precondition(lambda self: self.live())
    @rule(data=st.data())
    def ask(self, data):
        worker = data.draw(st.sampled_from(self.live()))
        attempt = self.s.assign(worker.id, self.now)
        if attempt is not None and attempt.task.kind is Kind.REDUCE:
            self.reads[attempt.id] = [m.winner.id for m in self.s.maps]
        if attempt is not None and worker.info.via is Via.HTTP:
            assert self.s.seed_workers, attempt
            if attempt.task.kind is Kind.MAP:
                assert all(end - start == 10 for _, start, end in attempt.task.inputs), attempt
                assert attempt.seed_format
            else:
                # Its reduce reads the seed's buckets: every map's output
                # must be in them.
                assert all(m.winner.seed_format for m in self.s.maps), attempt
        elif attempt is not None:
            assert not attempt.seed_format

    @precondition(lambda self: self.running())
    @rule(data=st.data(), commit_fails=st.booleans())
    def succeed(self, data, commit_fails):
        attempt = data.draw(st.sampled_from(self.running()))
        task = attempt.task
        commit = self.s.report_done(attempt.worker, task.kind, task.index, attempt.id, {})
        if commit_fails:
            self.follow(self.s.commit_failed(commit, self.now, "OSError"))
        else:
            if task.kind is Kind.REDUCE:
                # Fencing: a reduce commits only output read from the maps'
                # committed attempts.
                assert self.reads[attempt.id] == [m.winner and m.winner.id
                                                  for m in self.s.maps], attempt
            self.committed.setdefault(task.key, []).append(attempt.id)
            self.follow(self.s.committed(commit, self.now))

    @precondition(lambda self: self.committed_maps())
    @rule(data=st.data(), reported=st.booleans())
    def map_output_lost(self, data, reported):
        """
        A reducer cannot fetch a committed map's output: with a running
        reduce attempt as the reporter, or none.
        """
        task = data.draw(st.sampled_from(self.committed_maps()))
        reduces = [a for a in self.running() if a.task.kind is Kind.REDUCE]
        reporter = None
        if reported and reduces:
            attempt = data.draw(st.sampled_from(reduces))
            reporter = (attempt.worker, attempt.task.index, attempt.id)
        before = self.snapshot()
        failures = {t.key: t.failures for t in self.s.reduces}
        try:
            self.follow(self.s.map_output_lost(task.index, task.winner.id, self.now, reporter))
        except SchedulingError:
            assert not self.s.shared_nothing
            assert self.snapshot() == before, "a refused loss changed the state"
            return
        assert self.s.shared_nothing
        if not self.s.over:
            assert task.state is TaskState.READY, task
            # The reducers that were given back or cancelled are not blamed.
            assert failures == {t.key: t.failures for t in self.s.reduces}

    @precondition(lambda self: self.running())
    @rule(data=st.data(), bad_record=st.booleans())
    def fail(self, data, bad_record):
        attempt = data.draw(st.sampled_from(self.running()))
        task = attempt.task
        record = [f"f{task.index}", 0, 1] if bad_record and task.kind is Kind.MAP else None
        self.follow(self.s.report_failed(attempt.worker, task.kind, task.index, attempt.id,
                                         self.now, "E", record))

    @precondition(lambda self: self.s.attempts)
    @rule(data=st.data(), failed=st.booleans())
    def stale_report(self, data, failed):
        """
        A report about an attempt that no longer runs, or from another
        worker: refused, and nothing changes.
        """
        attempt = data.draw(st.sampled_from(list(self.s.attempts.values())))
        workers = list(self.s.workers)
        worker = data.draw(st.sampled_from(workers))
        if attempt.running and worker == attempt.worker and not self.s.workers[worker].lost:
            return
        before = self.snapshot()
        task = attempt.task
        try:
            if failed:
                self.s.report_failed(worker, task.kind, task.index, attempt.id, self.now, "E")
            else:
                self.s.report_done(worker, task.kind, task.index, attempt.id, {})
        except SchedulingError:
            pass
        else:
            raise AssertionError(f"a stale report of {attempt} by {worker} was accepted")
        assert self.snapshot() == before, "a refused report changed the state"

    def snapshot(self):
        return (self.s.state, [(t.state, t.failures, t.winner and t.winner.id)
                               for t in self.s.tasks()],
                [(a.id, a.state) for a in self.s.attempts.values()])

    # -- invariants -----------------------------------------------------------

    @invariant()
    def at_most_one_winner(self):
        for task in self.s.tasks():
            winners = [a for a in task.attempts if a.state is AttemptState.SUCCEEDED]
            assert len(winners) <= 1, task
            assert (task.state is TaskState.FINISHED) == bool(winners), task
            assert len(self.committed.get(task.key, [])) <= 1, task

    @invariant()
    def no_task_lost(self):
        for task in self.s.tasks():
            running = task.running_attempts()
            if task.state is TaskState.RUNNING:
                assert running, f"{task} RUNNING with no attempt"
            else:
                assert not running, f"{task} {task.state.name} with a running attempt"
            if task.kind is Kind.REDUCE and any(m.state is not TaskState.FINISHED
                                                for m in self.s.maps):
                # A reduce that finished before a map's output was lost
                # stays finished; the others wait for the map.
                assert task.state in (TaskState.BLOCKED, TaskState.FINISHED), task

    @invariant()
    def lost_output_runs_again(self):
        """
        Shared-nothing: a map whose committed output went with its worker is
        not FINISHED while a reduce still needs it.
        """
        if not self.s.shared_nothing or self.s.over:
            return
        if all(r.state is TaskState.FINISHED for r in self.s.reduces):
            return
        for task in self.s.maps:
            if task.winner is not None:
                assert not self.s.workers[task.winner.worker].lost, task

    @invariant()
    def failures_bounded(self):
        for task in self.s.tasks():
            assert task.failures <= self.s.max_attempts, task
            assert task.losses <= self.s.max_losses, task

    @invariant()
    def job_state_follows_tasks(self):
        finished = all(t.state is TaskState.FINISHED for t in self.s.reduces)
        assert (self.s.state is JobState.FINISHED) == finished
        if self.s.state is JobState.FAILED:
            task = self.s.failure.task
            assert (task.failures >= self.s.max_attempts
                    or task.losses >= self.s.max_losses and self.s.failure.lost)
        assert self.job_overs == (1 if self.s.over else 0)
        if self.s.over:
            assert not self.running()

    @invariant()
    def an_idle_worker_is_never_stranded(self):
        """
        While the job runs and a live worker is idle, some task is running,
        or one of the idle workers would be given a task now.
        """
        if self.s.over or self.running():
            return
        # A seed worker may be left with nothing it can do (a job of seed
        # workers alone then waits for a txmr worker: the status page says
        # so); an idle txmr worker never is, though the task may be the
        # idle seed worker's to take (a retry goes elsewhere first).
        idle = [w for w in self.live() if not w.attempts]
        if not any(w.info.via is Via.AMP for w in idle):
            return
        trial = copy.deepcopy(self.s)
        assert any(trial.assign(w.id, self.now) is not None for w in idle), \
            "ready tasks and idle workers, but nothing can run"


class SchedulerModelTests(unittest.SynchronousTestCase):
    def test_random_stories_keep_the_invariants(self):
        run_state_machine_as_test(SchedulerStories, settings=settings(
            max_examples=300, stateful_step_count=40, deadline=None,
            suppress_health_check=[HealthCheck.too_slow]))
