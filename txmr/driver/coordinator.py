"""
The coordinator: the driver's one interpreter of its scheduler.

The front doors (L{txmr.driver.connection} for AMP, L{txmr.driver.seed}
for the seed's HTTP API) and the heartbeat call it; it asks the scheduler,
carries out the instructions the scheduler returns (commit, cancel,
discard, log; the file work through L{txmr.driver.files}), answers long
polls when tasks become ready, and ends the job.  An AMP worker's
connection is a I{peer} to it: anything with C{cancel}, C{tell_over},
C{ping}, C{abort} and C{close}.
"""

import dataclasses
import time
import uuid

from twisted.logger import Logger

from txmr.core.counters import valid
from txmr.core.errors import SchedulingError, StaleReport
from txmr.core.instructions import (
    Blacklisted, Cancel, Commit, Discard, GivenBack, JobOver, OutputLost)
from txmr.core.spec import Done, Run, Wait
from txmr.core.states import AttemptState, Kind, Via
from txmr.data.attempt import is_record
from txmr.driver.ending import Ending
from txmr.driver.files import JobFiles
from txmr.driver.outputs import MapOutputs
from txmr.driver.polls import LongPolls
from txmr.driver.status import JobView

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
    @ivar done: fires with the driver's exit code.
    """

    def __init__(self, config, plan, clock, on_exit=None, journal=None):
        self.config = config
        self.plan = plan
        self.job = plan.job
        self.scheduler = plan.scheduler
        self.layout = plan.layout
        self.files = JobFiles(plan, config, clock, journal)
        self.clock = clock
        self.peers = {}
        self.polls = LongPolls(clock, config.poll)
        self.ending = Ending(clock, config.http_lease, on_exit, linger=config.linger)
        self.done = self.ending.done
        self.tracebacks = {}
        self.rtts = {}
        self.job_uuid = uuid.uuid4().hex
        # Shared-nothing: where each worker serves its map output, and each
        # committed map's; the output a TaskDone being committed reports.
        self.shared_nothing = bool(getattr(config, "shared_nothing", False))
        self.outputs = MapOutputs(self.job_uuid, len(self.scheduler.reduces))
        self._output = None
        self.started = clock.seconds()
        self.wall_started = time.time()
        self.ended = None
        self._ids = 0

    def start(self):
        """
        The job's clock starts (when the daemon does, not when it is built).
        """
        self.started = self.clock.seconds()
        self.wall_started = time.time()

    def now(self):
        return self.clock.seconds()

    @property
    def over(self):
        return not self.ending.running

    def view(self):
        """
        What the status page, its JSON, the metrics and the summary read.
        """
        failure = self.scheduler.failure
        return JobView(
            job=self.job.name, uuid=self.job_uuid, scheduler=self.scheduler,
            now=self.now(), started=self.started, wall_started=self.wall_started,
            ended=self.ended, rtts=dict(self.rtts),
            failure=failure.message() if failure else None, tracebacks=self.tracebacks)

    # -- workers -------------------------------------------------------------

    def join(self, info, peer=None, slots=1, timeout=None, url=None):
        """
        A worker session joins; return its id (C{wN}, C{hN} for HTTP).  A
        peer that joins while the job ends is told at once, and the driver
        waits for it to hear.

        @param url: where the worker serves the map output it keeps.
        """
        self._ids += 1
        worker = f"{'h' if info.via is Via.HTTP else 'w'}{self._ids}"
        self.scheduler.register(worker, self.now(), info, timeout=timeout, slots=slots)
        self.outputs.joined(worker, url)
        if peer is not None:
            self.peers[worker] = peer
            self.ending.tell(peer)
        return worker

    def is_live(self, worker):
        return not self.scheduler.workers[worker].lost

    def seen(self, worker, rtt=None):
        """
        The worker answered a ping (in C{rtt} seconds), or made a request.
        """
        if rtt is not None:
            self.rtts[worker] = rtt
        if self.is_live(worker):
            self.scheduler.seen(worker, self.now())

    def disconnected(self, worker):
        self.peers.pop(worker, None)
        self.polls.drop(worker)
        if self.is_live(worker):
            self.lose(worker, "its connection closed")

    def lose(self, worker, why):
        """
        Give up on a worker: its attempts go to others, its connection is
        closed.
        """
        given_back = self.scheduler.lose(worker, self.now())
        if not self.scheduler.over:
            log.warn("worker {worker} lost ({why}); {what}", worker=worker, why=why,
                     what=what_was_lost(given_back))
        peer = self.peers.pop(worker, None)
        if peer is not None:
            self.polls.drop(worker)
            peer.abort()
        self.follow(given_back)

    def tick(self, heartbeat_timeout):
        """
        A heartbeat: give up on silent workers, abandon attempts that ran
        too long, and offer backup attempts to waiting workers.
        """
        now = self.now()
        for worker in self.scheduler.silent(now, heartbeat_timeout):
            self.lose(worker.id, f"its lease of {worker.timeout:g}s ran out" if worker.timeout
                      else f"silent for more than {heartbeat_timeout:g}s")
        timed_out = self.scheduler.check_timeouts(now)
        for instruction in timed_out:
            if isinstance(instruction, Cancel):
                log.warn("{attempt} timed out on worker {worker}",
                         attempt=instruction.attempt, worker=instruction.attempt.worker)
        self.follow(timed_out)

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
        A new attempt for the worker, or L{None}.  An AMP worker's first
        attempts are logged when they finish (a log line costs the driver
        as much as the hand-out itself); retries, backups and every HTTP
        hand-out are logged now.
        """
        attempt = self.scheduler.assign(worker, self.clock.seconds())
        if attempt is None:
            return None
        retry = len(attempt.task.attempts) > 1
        http = self.scheduler.workers[worker].info.via is Via.HTTP
        if http or retry:
            how = " (backup)" if attempt.speculative else " (retry)" if retry else ""
            log.info("{attempt}{how} to {via}worker {worker}", attempt=attempt, how=how,
                     via="HTTP " if http else "", worker=worker)
        return attempt

    def _answer(self, worker):
        if self.scheduler.over:
            return Done(self.scheduler.ok)
        attempt = self.assign(worker)
        return None if attempt is None else Run(self.spec(attempt))

    def spec(self, attempt):
        """
        The attempt's L{TaskSpec<txmr.core.spec.TaskSpec>}; in a
        shared-nothing job, with what its worker needs to write or fetch
        map output: the job's uuid, and for a reduce, each map's committed
        attempt, holder's URL, and this partition's checksum and size.
        """
        spec = self.plan.spec(attempt)
        if not self.shared_nothing or not self.scheduler.reduces:
            return spec
        return dataclasses.replace(
            spec, shuffle=self.outputs.shuffle(attempt, self.scheduler.maps))

    def changed(self):
        """
        Something happened that may have made a task ready: answer the long
        polls that can be answered now.
        """
        if not self.polls or self.scheduler.over:
            return
        for worker in self.polls:
            answer = self._answer(worker)
            if answer is not None:
                self.polls.answer(worker, answer)

    # -- reports -------------------------------------------------------------

    def task_done(self, worker, kind, index, attempt_id, counters, in_place=False,
                  output=None):
        """
        Commit the attempt if it still counts: rename its files into place,
        then mark the task finished, in this one reactor turn, so that no
        other report slips between the check and the commit.  Renames are
        metadata operations; they cost microseconds.

        @param in_place: one of the seed's HTTP workers wrote the files (in its
            attempt's directory, under their final names).
        @param output: a shared-nothing map's partitions' checksums and sizes.
        @raise SchedulingError: the report is refused; nothing changed.  Or
            a shared-nothing map could not be committed (L{StaleReport}): it
            failed, and its worker is not to serve its files.
        """
        try:
            commit = self.scheduler.report_done(worker, kind, index, attempt_id, valid(counters))
        except SchedulingError as e:
            self._refused(worker, kind, index, attempt_id, e)
            raise
        self._output = output
        try:
            self.follow([commit], in_place)
        finally:
            self._output = None
        attempt = commit.attempt
        if self._kept_on_worker(attempt) and attempt.state is not AttemptState.SUCCEEDED:
            raise StaleReport(f"{attempt} was not committed: {attempt.error}")

    def map_output_lost(self, worker, kind, index, attempt_id, map_index, map_attempt, error):
        """
        A reduce attempt could not fetch a map's committed output: the map
        runs again, and the reduce attempt is given back, not failed.

        @raise SchedulingError: the report is refused; nothing changed.
        """
        if kind != Kind.REDUCE:
            raise StaleReport(f"only a reduce attempt fetches map output, not {kind}")
        try:
            instructions = self.scheduler.map_output_lost(
                map_index, map_attempt, self.now(), (worker, index, attempt_id),
                why=error[:500])
        except SchedulingError as e:
            self._refused(worker, kind, index, attempt_id, e)
            raise
        log.warn("reduce task {index} attempt {attempt} on worker {worker} could not fetch "
                 "map task {map} attempt {map_attempt}: {error}", index=index,
                 attempt=attempt_id, worker=worker, map=map_index, map_attempt=map_attempt,
                 error=error[:500])
        self.follow(instructions)

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

    def finished_in_place(self, worker, kind, index, who):
        """
        An HTTP worker says its task is FINISHED, its files written in its
        attempt's directory.  If they are not all there, the attempt failed.

        @param who: the worker as the refusal's message names it.
        @raise SchedulingError: the task is not RUNNING for this worker, or
            its files are missing (the attempt then failed).
        """
        task = self.scheduler.task(kind, index)
        mine = [a for a in task.running_attempts() if a.worker == worker]
        if not mine:
            raise SchedulingError(f"{task} is not RUNNING for {who} (it is {task.state.name})")
        changed = self.files.changed_input(task) if task.kind is Kind.MAP else None
        if changed:
            self.task_failed(worker, kind, index, mine[0].id, changed, "", None)
            raise SchedulingError(f"{task} did not finish: {changed}")
        self.task_done(worker, kind, index, mine[0].id, {}, in_place=True)
        if mine[0].state is not AttemptState.SUCCEEDED:
            raise SchedulingError(f"{task} did not finish: {mine[0].error}")

    def _refused(self, worker, kind, index, attempt_id, why):
        log.info("refused a report from worker {worker} on {kind} task {index} attempt "
                 "{attempt}: {why}", worker=worker, kind=kind, index=index,
                 attempt=attempt_id, why=why)
        leftover = getattr(why, "leftover", None)
        if leftover is not None:
            self.files.discard(leftover)

    # -- carrying out the scheduler's instructions ---------------------------

    def follow(self, instructions, in_place=False):
        """
        Carry out the scheduler's instructions, and those that follow from
        them, in order; then end the job, or answer whoever can be answered.
        """
        pending = list(instructions)
        over = False
        while pending:
            instruction = pending.pop(0)
            if isinstance(instruction, Commit):
                pending += self._commit(instruction, in_place)
            elif isinstance(instruction, Cancel):
                self._cancel(instruction.attempt)
            elif isinstance(instruction, Discard):
                self.files.discard(instruction.attempt)
            elif isinstance(instruction, Blacklisted):
                w = instruction.worker
                log.warn("worker {worker} blacklisted: {n} of its attempts failed on tasks that "
                         "then succeeded elsewhere; it gets no more tasks of this job",
                         worker=w.id, n=len(w.failed_attempts))
            elif isinstance(instruction, JobOver):
                over = True
            elif isinstance(instruction, OutputLost):
                lost = instruction.attempt
                self.outputs.lost(lost)
                log.warn("the output of {attempt} (on worker {worker}) is lost; the map runs "
                         "again", attempt=lost, worker=lost.worker)
            elif isinstance(instruction, GivenBack):
                # Logged with the loss of its worker.  Its files can never
                # count (a lost worker's report is refused): remove them, and
                # a seed worker's directory, so that what it writes late
                # lands nowhere.
                self.files.discard(instruction.attempt)
        if over:
            self.finish()
        else:
            self.changed()

    def _commit(self, commit, in_place):
        attempt = commit.attempt
        if self._kept_on_worker(attempt):
            error = self.outputs.keep(attempt, self._output)
        else:
            error = self.files.commit(attempt, commit.counters, in_place)
        now = self.clock.seconds()
        if error is not None:
            log.warn("{attempt} on worker {worker}: {error}", attempt=attempt,
                     worker=attempt.worker, error=error)
            return self.scheduler.commit_failed(commit, now, error)
        instructions = self.scheduler.committed(commit, now)
        secs = attempt.duration(now)
        if secs >= LOG_TASKS_LONGER or len(attempt.task.attempts) > 1:
            log.info("{attempt} finished on worker {worker} in {secs:.2f}s",
                     attempt=attempt, worker=attempt.worker, secs=secs)
        return instructions

    def _kept_on_worker(self, attempt):
        """
        Whether the attempt's files stay on its worker (a shared-nothing map
        of a job with reduces).
        """
        return (self.shared_nothing and attempt.task.kind is Kind.MAP
                and bool(self.scheduler.reduces))

    def _cancel(self, attempt):
        peer = self.peers.get(attempt.worker)
        if peer is not None:
            peer.cancel(attempt.id)
        self.files.discard(attempt)

    # -- the end -------------------------------------------------------------

    def last_traceback(self):
        failure = self.scheduler.failure
        return self.tracebacks.get(failure.attempt.id, "") if failure else ""

    def finish(self):
        """
        End the job: settle its files (L{JobFiles.settle}), answer every
        long poll, and tell every worker; the driver exits once all heard.
        """
        if not self.ending.running:
            return
        ok = self.scheduler.ok
        message = "job finished" if ok else "job failed: " + self.scheduler.failure.message()
        # First, so that nothing below can end the job twice.
        self.ending.begin(ok, message)
        self.ended = self.now()
        problem = self.files.settle(self.scheduler, self.view(), message, self.last_traceback())
        if problem:
            ok = False
            self.ending.ok, self.ending.message = False, f"job failed: {problem}"
        for worker in self.polls:
            self.polls.answer(worker, Done(ok))
        for peer in list(self.peers.values()):
            self.ending.tell(peer)
        self.ending.wait_for_http(w.id for w in self.scheduler.live_workers()
                                  if w.info.via is Via.HTTP)
        self.ending.settled()

    def http_told(self, worker):
        """
        An HTTP worker asked for a task after the job ended: it knows now.
        """
        self.ending.told_http(worker)

    def exit(self, code, message):
        """
        Exit now (the driver cannot serve the job).
        """
        self.ending.exit(code, message)

    def stop(self):
        """
        The daemon stops: a job that is over exits with its code; open
        questions are forgotten, every connection closed, the journal
        written and closed, the directories released.
        """
        self.ending.stop()
        self.polls.drop_all()
        for peer in list(self.peers.values()):
            peer.close()
        self.files.close()


def tail(text, limit):
    """
    The end of C{text}, at most about C{limit} characters: a traceback's last
    lines are the ones that say what went wrong.
    """
    if len(text) <= limit:
        return text
    return f"[{len(text) - limit} characters cut]\n" + text[-limit:]


def what_was_lost(instructions):
    """
    What a lost worker's loss did, in words, from the scheduler's
    instructions: the tasks given back (ready again), those whose other
    attempt still runs, and the committed map output it held, which runs
    again.
    """
    back, still, outputs = [], [], []
    for i in instructions:
        if isinstance(i, GivenBack):
            task = i.attempt.task
            (still if task.running_attempts() else back).append(str(task))
        elif isinstance(i, OutputLost):
            outputs.append(str(i.attempt.task))
    what = f"tasks given back: {', '.join(back) or 'none'}"
    if still:
        what += f"; still running elsewhere: {', '.join(still)}"
    if outputs:
        what += f"; map output it held, to run again: {', '.join(outputs)}"
    return what
