"""
The coordinator: the one place where the driver acts on its scheduler.

The front doors (L{txmr.driver.connection} for AMP, L{txmr.driver.seed}
for the seed's HTTP API) and the heartbeat call it; it asks the scheduler,
carries out the instructions the scheduler returns (commit, cancel,
discard, log), answers long polls when tasks become ready, and ends the
job.  A worker's connection is a I{peer} to it: anything with C{cancel},
C{tell_over}, C{ping} and C{abort}.
"""

import json
import time
import uuid

from twisted.logger import Logger

from txmr.core.counters import lines, valid
from txmr.core.errors import SchedulingError
from txmr.core.instructions import Blacklisted, Cancel, Commit, Discard, GivenBack
from txmr.core.spec import Done, Run, Wait
from txmr.data.attempt import is_record
from txmr.data.layout import fsync_directory, remove_job_files, write_atomically
from txmr.driver.ending import Ending
from txmr.driver.polls import LongPolls
from txmr.driver.status import JobView, job_state

log = Logger()

# Tasks that finish faster are not logged one by one (a log line costs the
# driver as much as handing out a task); a progress line each heartbeat
# sums them up.
LOG_TASKS_LONGER = 1.0
# What the driver keeps of an attempt's traceback (its end): a worker's report
# must not grow the driver without bound, nor fill its log.
TRACEBACK_CHARS = 16_000


class Coordinator:
    """
    Runs one job's plan for its workers.

    @ivar peers: the live AMP workers' connections, by worker id.
    @ivar ending: the end of the job (L{Ending}); its C{done} fires with the
        exit code.
    """

    def __init__(self, config, plan, clock, on_exit=None):
        self.config = config
        self.plan = plan
        self.job = plan.job
        self.scheduler = plan.scheduler
        self.layout = plan.layout
        self.clock = clock
        self.peers = {}
        self.polls = LongPolls(clock, config.poll)
        self.ending = Ending(clock, config.http_lease, on_exit)
        self.tracebacks = {}
        self.rtts = {}
        self.job_uuid = uuid.uuid4().hex
        self.started = clock.seconds()
        self.wall_started = time.time()
        self.ended = None
        self._ids = 0

    def now(self):
        return self.clock.seconds()

    @property
    def over(self):
        return not self.ending.running

    def view(self):
        """
        What the status page, its JSON and the metrics read.
        """
        failure = self.scheduler.failure
        return JobView(
            job=self.job.name, uuid=self.job_uuid, scheduler=self.scheduler,
            now=self.now(), started=self.started, wall_started=self.wall_started,
            ended=self.ended, rtts=dict(self.rtts),
            failure=failure.message() if failure else None)

    # -- workers -------------------------------------------------------------

    def join(self, info, peer=None, slots=1, timeout=None, prefix="w"):
        """
        A worker session joins; return its id.  A peer that joins while the
        job ends is told at once, and the driver waits for it to hear.
        """
        self._ids += 1
        worker = f"{prefix}{self._ids}"
        self.scheduler.register(worker, self.now(), info, timeout=timeout, slots=slots)
        if peer is not None:
            self.peers[worker] = peer
            self.ending.tell(peer)
        return worker

    def disconnected(self, worker):
        self.peers.pop(worker, None)
        self.polls.drop(worker)
        if not self.scheduler.workers[worker].lost:
            self.lose(worker, "its connection closed")

    def lose(self, worker, why):
        """
        Give up on a worker: its attempts go to others, its connection is
        closed.
        """
        given_back = self.scheduler.lose(worker, self.now())
        if not self.scheduler.over:
            log.warn("worker {worker} lost ({why}); tasks given back: {tasks}", worker=worker,
                     why=why, tasks=", ".join(str(g.attempt.task) for g in given_back) or "none")
        peer = self.peers.pop(worker, None)
        if peer is not None:
            self.polls.drop(worker)
            peer.abort()
        self.changed()

    def seen(self, worker, rtt=None):
        if rtt is not None:
            self.rtts[worker] = rtt
        if not self.scheduler.workers[worker].lost:
            self.scheduler.seen(worker, self.now())

    # -- handing out tasks -----------------------------------------------------

    def get_task(self, worker, wait=True):
        """
        The worker's next action (L{Run}, L{Wait}, L{Done}), or a Deferred of
        it: with C{wait}, a long poll answered when a task is ready.
        """
        answer = self._answer(worker)
        if answer is not None:
            return answer
        return self.polls.wait(worker) if wait else Wait()

    def assign(self, worker):
        """
        A new attempt for the worker, or L{None}; logged when it is a retry
        or a backup (first attempts are logged when they finish: a log line
        costs the driver as much as the hand-out itself).
        """
        attempt = self.scheduler.assign(worker, self.now())
        if attempt is not None and len(attempt.task.attempts) > 1:
            log.info("{attempt}{how} to worker {worker}", attempt=attempt, worker=worker,
                     how=" (backup)" if attempt.speculative else " (retry)")
        return attempt

    def _answer(self, worker):
        if self.scheduler.over:
            return Done(self.scheduler.ok)
        attempt = self.assign(worker)
        return None if attempt is None else Run(self.plan.spec(attempt))

    def changed(self):
        """
        Something happened that may have made a task ready or ended the
        job: answer the long polls that can be answered now.
        """
        if self.scheduler.over:
            self.finish()
            return
        for worker in self.polls:
            answer = self._answer(worker)
            if answer is not None:
                self.polls.answer(worker, answer)

    # -- reports -------------------------------------------------------------

    def task_done(self, worker, kind, index, attempt_id, counters, in_place=False):
        """
        Commit the attempt if it still counts: rename its files into place,
        then mark the task finished, in this one reactor turn, so that no
        other report slips between the check and the commit.  Renames are
        metadata operations; they cost microseconds.

        @param in_place: the seed's HTTP workers write under the final names.
        @raise SchedulingError: the report is refused; nothing changed.
        """
        try:
            commit = self.scheduler.report_done(worker, kind, index, attempt_id,
                                                valid(counters))
        except SchedulingError as e:
            self._refused(worker, kind, index, attempt_id, e)
            raise
        self.follow([commit], in_place)

    def task_failed(self, worker, kind, index, attempt_id, error, traceback, record):
        """
        @raise SchedulingError: the report is refused; nothing changed.
        """
        try:
            instructions = self.scheduler.report_failed(
                worker, kind, index, attempt_id, self.now(), error,
                record if is_record(record) else None)
        except SchedulingError as e:
            self._refused(worker, kind, index, attempt_id, e)
            raise
        self.tracebacks[attempt_id] = tail(traceback, TRACEBACK_CHARS)
        log.warn("{kind} task {index} attempt {attempt} failed on worker {worker}: {error}",
                 kind=kind, index=index, attempt=attempt_id, worker=worker, error=error)
        self.follow(instructions)

    def finished_in_place(self, worker, kind, index):
        """
        An HTTP worker says its task is FINISHED, its files written under
        their final names.

        @raise SchedulingError: the task is not RUNNING for this worker.
        """
        task = self.scheduler.task(kind, index)
        mine = [a for a in task.running_attempts() if a.worker == worker]
        if not mine:
            raise SchedulingError(f"{task} is not RUNNING for this worker"
                                  f" (it is {task.state.name})")
        self.task_done(worker, kind, index, mine[0].id, {}, in_place=True)

    def _refused(self, worker, kind, index, attempt_id, why):
        log.info("refused a report from worker {worker} on {kind} task {index} attempt "
                 "{attempt}: {why}", worker=worker, kind=kind, index=index,
                 attempt=attempt_id, why=why)
        leftover = getattr(why, "leftover", None)
        if leftover is not None:
            self._discard(leftover)

    # -- carrying out the scheduler's instructions ---------------------------------

    def follow(self, instructions, in_place=False):
        """
        Carry out the scheduler's instructions, and those that follow from
        them, in order; then answer whoever can be answered.
        """
        pending = list(instructions)
        while pending:
            instruction = pending.pop(0)
            if isinstance(instruction, Commit):
                pending += self._commit(instruction, in_place)
            elif isinstance(instruction, Cancel):
                self._cancel(instruction.attempt)
            elif isinstance(instruction, Discard):
                self._discard(instruction.attempt)
            elif isinstance(instruction, Blacklisted):
                w = instruction.worker
                log.warn("worker {worker} blacklisted: {n} of its attempts failed on tasks that "
                         "then succeeded elsewhere; it gets no more tasks of this job",
                         worker=w.id, n=len(w.failed_attempts))
            elif isinstance(instruction, GivenBack):
                pass  # logged with the loss of its worker
        self.changed()

    def _commit(self, commit, in_place):
        attempt = commit.attempt
        task = attempt.task
        try:
            self.layout.commit(task.kind, task.index, attempt.id, written_in_place=in_place)
        except OSError as e:
            error = f"cannot commit the attempt's files: {e}"
            log.warn("{attempt} on worker {worker}: {error}", attempt=attempt,
                     worker=attempt.worker, error=error)
            return self.scheduler.commit_failed(commit, self.now(), error)
        instructions = self.scheduler.committed(commit, self.now())
        secs = attempt.duration(self.now())
        if secs >= LOG_TASKS_LONGER or len(task.attempts) > 1:
            log.info("{attempt} finished on worker {worker} in {secs:.2f}s",
                     attempt=attempt, worker=attempt.worker, secs=secs)
        return instructions

    def _cancel(self, attempt):
        peer = self.peers.get(attempt.worker)
        if peer is not None:
            peer.cancel(attempt.id)
        self._discard(attempt)

    def _discard(self, attempt):
        try:
            self.layout.discard(attempt.task.kind, attempt.task.index, attempt.id)
        except OSError as e:
            log.warn("cannot remove the files of {attempt}: {error}", attempt=attempt, error=e)

    # -- the end -------------------------------------------------------------

    def last_traceback(self):
        failure = self.scheduler.failure
        return self.tracebacks.get(failure.attempt.id, "") if failure else ""

    def finish(self):
        """
        End the job: make the output durable (or remove it if the job
        failed), answer every long poll, then tell every worker.
        """
        if not self.ending.running:
            return
        self.ended = self.now()
        for attempt in self.scheduler.attempts.values():
            if attempt.task.winner is not attempt:
                self._discard(attempt)
        ok = self.scheduler.ok
        if ok:
            message = "job finished"
            fsync_directory(self.config.output)
            self._report()
        else:
            message = "job failed: " + self.scheduler.failure.message()
            for directory in {self.config.intermediate, self.config.output}:
                remove_job_files(directory)
            log.critical("{message}\n{traceback}", message=message,
                         traceback=self.last_traceback())
        if self.config.summary_file:
            summary = job_state(self.view())
            if not ok:
                summary["traceback"] = self.last_traceback()
            write_atomically(self.config.summary_file, json.dumps(summary, indent=1) + "\n")
        for worker in self.polls:
            self.polls.answer(worker, Done(ok))
        http_workers = [w.id for w in self.scheduler.live_workers()
                        if w.info.get("via") == "http"]
        self.ending.begin(ok, message, list(self.peers.values()), http_workers)

    def _report(self):
        summed = self.scheduler.summed_counters()
        log.info("job finished in {secs:.2f}s; counters:\n{counters}",
                 secs=self.ended - self.started,
                 counters="\n".join("  " + line for line in lines(summed)))
        for kind, index, record in self.scheduler.skipped_records:
            log.warn("skipped bad record {record} of {kind} task {index}",
                     record=record, kind=kind, index=index)

    def stop(self):
        """
        The daemon stops: forget open questions, close every connection.
        """
        self.polls.drop_all()
        self.ending.stop()
        for peer in list(self.peers.values()):
            peer.close()


def tail(text, limit):
    """
    The end of C{text}, at most about C{limit} characters: a traceback's last
    lines are the ones that say what went wrong.
    """
    if len(text) <= limit:
        return text
    return f"[{len(text) - limit} characters cut]\n" + text[-limit:]

