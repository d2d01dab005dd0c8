"""
The driver: a Twisted service that runs one job's L{Scheduler} for the
workers that connect to it over AMP.

It is thin on purpose.  The scheduler decides; the driver turns AMP
commands into scheduler calls, answers long polls when tasks become ready,
pings every worker from a C{LoopingCall} and gives up on the silent ones,
commits winning attempts by renaming their files, and ends the job.
"""

import hmac
import json
import os
import re
import time
import uuid
from dataclasses import dataclass

from twisted.application import service
from twisted.internet import defer, endpoints, task as ttask
from twisted.internet.protocol import Factory
from twisted.logger import Logger
from twisted.protocols import amp

from txmr import protocol, tasks, web
from txmr.job import JobError, load_job
from txmr.scheduler import MAP, STATE_NAMES, Scheduler, SchedulingError

log = Logger()

# Tasks that finish faster are not logged one by one (a log line costs the
# driver as much as handing out a task); a progress line each heartbeat
# sums them up.
LOG_TASKS_LONGER = 1.0
# What the driver keeps of an attempt's traceback (its end): a worker's report
# must not grow the driver without bound, nor fill its log.
TRACEBACK_CHARS = 16_000

# Files of an earlier run of a job, removed when a new one starts.
_STALE = re.compile(r"^(mr-\d+-\d+|out-\d+|\..*\.attempt-\d+\.tmp(\.spill-\d+)?)$")


class ConfigError(Exception):
    """
    The job cannot start: the message is the one line the user sees.
    """


@dataclass
class DriverConfig:
    """
    Everything a driver is started with.
    """

    input: str
    intermediate: str
    output: str
    mappers: int = 1
    reducers: int = 1
    listen: str = "tcp:5000:interface=127.0.0.1"
    job: str = "txmr.examples.wordcount"
    heartbeat: float = 1.0
    heartbeat_timeout: float = 5.0
    max_attempts: int = 4
    task_timeout: float | None = None
    speculation: bool = True
    speculate_after: float = 10.0
    skip_bad_records: bool = False
    memory: int = tasks.DEFAULT_MEMORY
    port_file: str | None = None
    poll: float = 10.0
    http: str | None = None
    http_lease: float = 60.0
    summary_file: str | None = None
    secret: str | None = None


def prepare(config):
    """
    Check the configuration, load the job, create the directories, clear
    files of an earlier run, and plan the map tasks' splits.

    @return: the job and the L{Scheduler}.
    @raise ConfigError: with the one line to show the user.
    """
    if config.mappers < 1 or config.reducers < 1:
        raise ConfigError("--mappers and --reducers must be at least 1")
    if config.heartbeat <= 0 or config.heartbeat_timeout <= config.heartbeat:
        raise ConfigError("--heartbeat must be positive and below --heartbeat-timeout")
    if config.max_attempts < 1:
        raise ConfigError("--max-attempts must be at least 1")
    if not config.input:
        raise ConfigError("--input DIR is required")
    if not os.path.isdir(config.input):
        raise ConfigError(f"input directory {config.input!r} does not exist")
    for flag, description in (("--listen", config.listen), ("--http", config.http)):
        if description:
            try:
                endpoints.serverFromString(_NoReactor(), description)
            except (ValueError, TypeError, KeyError) as e:
                raise ConfigError(f"{flag} {description!r} is not a server endpoint: {e}") from e
    try:
        job = load_job(config.job)
    except JobError as e:
        raise ConfigError(str(e)) from e
    for name in ("intermediate", "output"):
        path = getattr(config, name)
        if not path:
            raise ConfigError(f"--{name} is required")
        try:
            os.makedirs(path, exist_ok=True)
        except OSError as e:
            raise ConfigError(f"cannot create {name} directory {path!r}: {e.strerror}") from e
    config.input, config.intermediate, config.output = (
        os.path.abspath(p) for p in (config.input, config.intermediate, config.output)
    )
    for directory in {config.intermediate, config.output}:
        remove_job_files(directory)
    splits = tasks.plan_splits(tasks.list_inputs(config.input), config.mappers, job.input_mode)
    scheduler = Scheduler(
        splits,
        config.reducers,
        max_attempts=config.max_attempts,
        task_timeout=config.task_timeout,
        speculation=config.speculation,
        speculate_after=config.speculate_after,
        skip_bad_records=config.skip_bad_records,
    )
    return job, scheduler


class _NoReactor:
    """
    Enough of a reactor for serverFromString to parse a description: it
    builds the endpoint object without touching the reactor.
    """


def remove_job_files(directory):
    """
    Remove what a job writes in C{directory}: its intermediate and output
    files, and attempts' temporary files.
    """
    for name in os.listdir(directory):
        if _STALE.match(name):
            try:
                os.unlink(os.path.join(directory, name))
            except OSError:
                pass


class DriverProtocol(amp.AMP):
    """
    One worker's connection.  C{worker} is its session id after L{Hello}.
    """

    worker = None
    pinging = False

    def __init__(self, driver):
        super().__init__()
        self.driver = driver

    def connectionMade(self):
        super().connectionMade()
        protocol.no_delay(self.transport)

    def _worker(self):
        if self.worker is None:
            raise protocol.UnknownWorker("say Hello first")
        return self.worker

    @protocol.Hello.responder
    def hello(self, version, host, pid, secret=None):
        if not self.driver.authorized(secret):
            log.warn("refused a worker from {host} (pid {pid}): wrong or missing secret",
                     host=host, pid=pid)
            raise protocol.Unauthorized("the driver needs its secret (--secret-file)")
        if version != protocol.PROTOCOL_VERSION:
            raise protocol.VersionMismatch(
                f"driver speaks version {protocol.PROTOCOL_VERSION}, not {version}"
            )
        if self.worker is None:
            self.worker = self.driver.register(self, {"host": host, "pid": pid})
        return {
            "worker": self.worker,
            "job": self.driver.job.name,
            "heartbeat": float(self.driver.config.heartbeat),
        }

    @protocol.GetTask.responder
    def get_task(self, wait=None):
        return self.driver.get_task(self._worker(), wait is not False)

    @protocol.TaskDone.responder
    def task_done(self, kind, index, attempt, counters, ask=None):
        worker = self._worker()
        self.driver.task_done(worker, kind, index, attempt, counters)
        return self.driver.get_task(worker, wait=False) if ask else {}

    @protocol.TaskFailed.responder
    def task_failed(self, kind, index, attempt, error, traceback, record, ask=None):
        worker = self._worker()
        self.driver.task_failed(worker, kind, index, attempt, error, traceback, record)
        return self.driver.get_task(worker, wait=False) if ask else {}

    def connectionLost(self, reason):
        super().connectionLost(reason)
        if self.worker is not None:
            self.driver.disconnected(self)


class Driver(service.Service):
    """
    Runs one job for the workers that connect to it.

    @ivar done: a L{Deferred} that fires with the exit code once the job is
        over and every connected worker was told.
    """

    def __init__(self, config, job, scheduler, reactor=None, on_exit=None):
        if reactor is None:
            from twisted.internet import reactor
        self.config = config
        self.job = job
        self.scheduler = scheduler
        self.reactor = reactor
        self.on_exit = on_exit
        self.connections = {}
        self.waiters = {}
        self.tracebacks = {}
        self.rtts = {}
        self.started = None
        self.wall_started = None
        self.ended = None
        self.port = None
        self.http_port = None
        self.address = None
        self.done = defer.Deferred()
        self.job_uuid = uuid.uuid4().hex
        self.http_sessions = {}
        self._http_untold = set()
        self._http_all_told = None
        self._ids = 0
        self._finishing = False
        self._over_message = None
        self._told_late = []
        self._last_progress = None
        self.heartbeat = ttask.LoopingCall(self._tick_safely)
        self.heartbeat.clock = reactor

    # -- service -------------------------------------------------------------

    def startService(self):
        super().startService()
        self.started = self.reactor.seconds()
        self.wall_started = time.time()
        log.info(
            "txmr driver: job {job}, {maps} map and {reduces} reduce tasks",
            job=self.job.name, maps=len(self.scheduler.maps), reduces=len(self.scheduler.reduces),
        )
        amp_factory = Factory.forProtocol(lambda: DriverProtocol(self))
        self.site = web.site(self)
        endpoint = endpoints.serverFromString(self.reactor, self.config.listen)
        d = endpoint.listen(web.SniffingFactory(amp_factory, self.site))
        d.addCallbacks(self._listening, self._cannot_listen, errbackArgs=(self.config.listen,))
        if self.config.http:
            http = endpoints.serverFromString(self.reactor, self.config.http).listen(self.site)
            http.addCallbacks(self._listening_http, self._cannot_listen,
                              errbackArgs=(self.config.http,))
            d = defer.gatherResults([d, http])
        self.heartbeat.start(self.config.heartbeat, now=False)
        return d

    def _listening(self, port):
        self.port = port
        self.address = address_of(port.getHost())
        log.info("txmr driver listening on {address}", address=self.address)
        if self.config.port_file:
            write_atomically(self.config.port_file, self.address + "\n")

    def _listening_http(self, port):
        self.http_port = port
        log.info("txmr driver serving HTTP on {address}", address=address_of(port.getHost()))

    def _cannot_listen(self, failure, where):
        log.critical("txmr driver cannot listen on {where}: {error}",
                     where=where, error=failure.getErrorMessage())
        self._exit(1, f"cannot listen on {where}: {failure.getErrorMessage()}")

    def stopService(self):
        super().stopService()
        if self.heartbeat.running:
            self.heartbeat.stop()
        for d, call in self.waiters.values():
            if call.active():
                call.cancel()
        self.waiters.clear()
        if self._http_all_told is not None:
            self._http_all_told.cancel()
        for proto in list(self.connections.values()):
            proto.transport.loseConnection()
        ports = [p for p in (self.port, self.http_port) if p is not None]
        return defer.gatherResults([defer.maybeDeferred(p.stopListening) for p in ports])

    # -- workers -------------------------------------------------------------

    def authorized(self, secret):
        """
        Whether C{secret} opens this driver: anything does when it has none.
        """
        if not self.config.secret:
            return True
        return secret is not None and hmac.compare_digest(
            secret.encode("utf-8"), self.config.secret.encode("utf-8"))

    def now(self):
        return self.reactor.seconds()

    def register(self, proto, info):
        self._ids += 1
        worker = f"w{self._ids}"
        # A worker may ask for its next task while it runs one.
        self.scheduler.register(worker, self.now(), info, slots=protocol.WORKER_SLOTS)
        self.connections[worker] = proto
        log.info("worker {worker} joined from {host} (pid {pid})", worker=worker, **info)
        if self._finishing:
            # It joined after every worker was told the job is over: tell
            # it too, and do not exit before it heard.
            self._told_late.append(self._tell_over(proto))
        return worker

    def disconnected(self, proto):
        worker = proto.worker
        self.connections.pop(worker, None)
        self._drop_waiter(worker)
        if not self.scheduler.workers[worker].lost:
            self._lose(worker, "its connection closed")

    def _lose(self, worker, why):
        running = list(self.scheduler.workers[worker].attempts)
        self.scheduler.lose(worker, self.now())
        if not self.scheduler.over:
            log.warn("worker {worker} lost ({why}); tasks given back: {tasks}", worker=worker,
                     why=why, tasks=", ".join(f"{a.task.kind} {a.task.index}" for a in running)
                     or "none")
        proto = self.connections.pop(worker, None)
        if proto is not None:
            self._drop_waiter(worker)
            proto.transport.abortConnection()
        self.changed()

    # -- handing out tasks -----------------------------------------------------

    def get_task(self, worker, wait=True):
        """
        The answer to a worker's L{GetTask}, or a L{Deferred} of it: a long
        poll answered when a task is ready or C{poll} seconds have passed.
        """
        answer = self._answer(worker)
        if answer is not None:
            return answer
        if not wait:
            return _wait()
        # One long poll per worker: an earlier one still open is answered.
        earlier = self.waiters.pop(worker, None)
        if earlier is not None:
            earlier[1].cancel()
            earlier[0].callback(_wait())
        d = defer.Deferred()
        call = self.reactor.callLater(self.config.poll, self._poll_expired, worker)
        self.waiters[worker] = (d, call)
        return d

    def _answer(self, worker):
        if self.scheduler.over:
            return {"action": "done", "retry": 0.0, "task": {"ok": self.ok}}
        attempt = self.scheduler.assign(worker, self.now())
        if attempt is None:
            return None
        spec = self.spec(attempt)
        if len(attempt.task.attempts) > 1:
            # First attempts are logged when they finish: a log line costs
            # the driver as much as the hand-out itself.
            log.info("{kind} task {index} attempt {attempt}{backup} to worker {worker}",
                     kind=attempt.task.kind, index=attempt.task.index, attempt=attempt.id,
                     backup=" (backup)" if attempt.speculative else " (retry)", worker=worker)
        return {"action": "run", "retry": 0.0, "task": spec}

    def _poll_expired(self, worker):
        d, _ = self.waiters.pop(worker)
        d.callback(_wait())

    def _drop_waiter(self, worker):
        entry = self.waiters.pop(worker, None)
        if entry is not None:
            d, call = entry
            if call.active():
                call.cancel()

    def changed(self):
        """
        Something happened that may have made a task ready or ended the
        job: answer the long polls that can be answered now.
        """
        if self.scheduler.over:
            self.finish()
            return
        for worker in list(self.waiters):
            answer = self._answer(worker)
            if answer is not None:
                d, call = self.waiters.pop(worker)
                call.cancel()
                d.callback(answer)

    def spec(self, attempt):
        return task_spec(self.config, self.job.name, self.scheduler, attempt)

    # -- reports -------------------------------------------------------------

    def task_done(self, worker, kind, index, attempt_id, counters):
        """
        Commit the attempt if it still counts: rename its files into place,
        then mark the task finished.  Both happen in this one reactor turn,
        so no other report can slip between the check and the commit.
        Renames are metadata operations; they cost microseconds.
        """
        try:
            attempt = self.scheduler.running_attempt(worker, kind, index, attempt_id)
        except SchedulingError as e:
            self._refused(worker, kind, index, attempt_id, e)
            raise
        self._commit(attempt, valid_counters(counters))

    def _commit(self, attempt, counters, written_in_place=False):
        """
        Rename a running attempt's files into place and finish its task;
        C{written_in_place} as for L{tasks.commit}.
        """
        spec = self.spec(attempt)
        task, worker = attempt.task, attempt.worker
        try:
            tasks.commit(spec, written_in_place)
        except OSError as e:
            tasks.discard(spec)
            self.task_failed(worker, task.kind, task.index, attempt.id,
                             f"cannot commit the attempt's files: {e}", "", None)
            return
        # Only a worker on which this task failed can be blacklisted now.
        suspects = {self.scheduler.workers[a.worker] for a in task.attempts
                    if a.state == "failed" and not self.scheduler.workers[a.worker].blacklisted}
        killed = self.scheduler.succeed(worker, task.kind, task.index, attempt.id, self.now(),
                                        counters)
        for w in suspects:
            if w.blacklisted:
                log.warn("worker {worker} blacklisted: {n} of its attempts failed on tasks that "
                         "then succeeded elsewhere; it gets no more tasks of this job",
                         worker=w.id, n=len(w.failed_attempts))
        secs = attempt.duration(self.now())
        if secs >= LOG_TASKS_LONGER or len(task.attempts) > 1:
            log.info("{kind} task {index} attempt {attempt} finished on worker {worker} in "
                     "{secs:.2f}s", kind=task.kind, index=task.index, attempt=attempt.id,
                     worker=worker, secs=secs)
        for loser in killed:
            self.cancel(loser)
        self.changed()

    def task_failed(self, worker, kind, index, attempt_id, error, traceback, record):
        try:
            attempt = self.scheduler.running_attempt(worker, kind, index, attempt_id)
        except SchedulingError as e:
            self._refused(worker, kind, index, attempt_id, e)
            raise
        tasks.discard(self.spec(attempt))
        self.tracebacks[attempt_id] = tail(traceback, TRACEBACK_CHARS)
        if not tasks.is_record(record):
            record = None
        self.scheduler.fail(worker, kind, index, attempt_id, self.now(), error, record)
        log.warn("{kind} task {index} attempt {attempt} failed on worker {worker}: {error}",
                 kind=kind, index=index, attempt=attempt_id, worker=worker, error=error)
        self.changed()

    def _refused(self, worker, kind, index, attempt_id, why):
        log.info("refused a report from worker {worker} on {kind} task {index} attempt "
                 "{attempt}: {why}", worker=worker, kind=kind, index=index,
                 attempt=attempt_id, why=why)
        attempt = self.scheduler.attempts.get(attempt_id)
        if attempt is not None and attempt.task.winner is not attempt:
            tasks.discard(self.spec(attempt))

    def cancel(self, attempt):
        """
        Tell the attempt's worker to stop it; its files are discarded.
        """
        proto = self.connections.get(attempt.worker)
        if proto is not None:
            d = proto.callRemote(protocol.Cancel, attempt=attempt.id)
            d.addTimeout(self.config.heartbeat_timeout, self.reactor)
            d.addErrback(lambda f: None)
        tasks.discard(self.spec(attempt))

    # -- the seed's HTTP workers ---------------------------------------------

    def http_worker(self, pid):
        """
        The session of the HTTP worker that sends this C{worker-pid}: every
        request renews its lease; one whose lease ran out starts anew.
        """
        now = self.now()
        worker = self.http_sessions.get(pid)
        if worker is not None and not self.scheduler.workers[worker].lost:
            self.scheduler.seen(worker, now)
            return worker
        self._ids += 1
        worker = f"h{self._ids}"
        self.scheduler.register(worker, now, {"host": "http", "pid": pid, "via": "http"},
                                timeout=self.config.http_lease, slots=None)
        self.http_sessions[pid] = worker
        log.info("HTTP worker {worker} joined (worker-pid {pid})", worker=worker, pid=pid)
        return worker

    def http_assign(self, pid):
        """
        Hand a task to an HTTP worker: the running L{Attempt}, or L{None}.
        Once the job is over, the worker is told so by the caller, and the
        driver counts it as told.
        """
        worker = self.http_worker(pid)
        if self.scheduler.over:
            self._http_told(worker)
            return None
        attempt = self.scheduler.assign(worker, self.now())
        if attempt is not None:
            log.info("{kind} task {index} attempt {attempt} to HTTP worker {worker}",
                     kind=attempt.task.kind, index=attempt.task.index, attempt=attempt.id,
                     worker=worker)
        return attempt

    def http_finished(self, pid, kind, index):
        """
        An HTTP worker says its task is FINISHED.

        @raise SchedulingError: the task is not RUNNING for this worker.
        """
        worker = self.http_worker(pid)
        task = self.scheduler.task(kind, index)
        mine = [a for a in task.running_attempts() if a.worker == worker]
        if not mine:
            raise SchedulingError(
                f"{kind} task {index} is not RUNNING for worker-pid {pid}"
                f" (it is {STATE_NAMES[task.state].upper()})")
        self._commit(mine[0], {}, written_in_place=True)

    def _http_told(self, worker):
        self._http_untold.discard(worker)
        if not self._http_untold and self._http_all_told is not None:
            d, self._http_all_told = self._http_all_told, None
            d.callback(None)

    def _wait_for_http_workers(self):
        """
        The seed's driver exited once every worker it had seen was told the
        job was over; HTTP workers are told when they next ask, so wait for
        each live one, at most for its lease.
        """
        self._http_untold = {
            w for w in self.http_sessions.values() if not self.scheduler.workers[w].lost
        }
        if not self._http_untold:
            return defer.succeed(None)
        self._http_all_told = defer.Deferred()
        self._http_all_told.addTimeout(self.config.http_lease, self.reactor,
                                       onTimeoutCancel=lambda *a: None)
        return self._http_all_told

    # -- heartbeats ----------------------------------------------------------

    def _tick_safely(self):
        # An exception would stop the LoopingCall, and with it every
        # heartbeat of the job: log it and tick again next time.
        try:
            self.tick()
        except Exception:
            log.failure("heartbeat tick failed")

    def tick(self):
        """
        Ping every worker, give up on the silent ones, abandon attempts that
        ran too long, and offer backup attempts to idle workers.
        """
        now = self.now()
        for worker, proto in list(self.connections.items()):
            if not proto.pinging:
                self._ping(worker, proto, now)
        for worker in self.scheduler.expire(now, self.config.heartbeat_timeout):
            self._lose(worker, f"silent for more than {self.config.heartbeat_timeout:g}s")
        for attempt in self.scheduler.check_timeouts(now):
            log.warn("{kind} task {index} attempt {attempt} timed out on worker {worker}",
                     kind=attempt.task.kind, index=attempt.task.index, attempt=attempt.id,
                     worker=attempt.worker)
            self.cancel(attempt)
        self._log_progress()
        self.changed()

    def _log_progress(self):
        counts = self.scheduler.counts()
        progress = ", ".join(
            f"{kind} {c['finished']}/{sum(c.values())} finished, {c['running']} running"
            for kind, c in counts.items())
        if progress != self._last_progress:
            self._last_progress = progress
            log.info("progress: {progress}", progress=progress)

    def _ping(self, worker, proto, sent):
        proto.pinging = True

        def answered(_):
            now = self.now()
            self.rtts[worker] = now - sent
            if not self.scheduler.workers[worker].lost:
                self.scheduler.seen(worker, now)

        def over(result):
            proto.pinging = False
            return result

        d = proto.callRemote(protocol.Ping)
        d.addTimeout(self.config.heartbeat_timeout, self.reactor)
        d.addCallback(answered)
        d.addBoth(over)
        d.addErrback(lambda f: None)

    # -- the end -------------------------------------------------------------

    @property
    def ok(self):
        return self.scheduler.failure is None

    def _last_failed(self):
        task, _ = self.scheduler.failure
        return [a for a in task.attempts if a.error is not None][-1]

    def failure_message(self):
        task, error = self.scheduler.failure
        last = self._last_failed()
        return (f"{task.kind} task {task.index} failed {task.failures} times; last, attempt "
                f"{last.id} on worker {last.worker}: {error}")

    def finish(self):
        """
        End the job: make the output durable (or remove it if the job
        failed), answer every long poll, tell every worker, then exit.
        """
        if self._finishing:
            return
        self._finishing = True
        self.ended = self.now()
        if self.heartbeat.running:
            self.heartbeat.stop()
        for attempt in self.scheduler.attempts.values():
            if attempt.task.winner is not attempt:
                tasks.discard(self.spec(attempt))
        if self.ok:
            message = "job finished"
            fsync_directory(self.config.output)
            self._report()
        else:
            message = "job failed: " + self.failure_message()
            for directory in {self.config.intermediate, self.config.output}:
                remove_job_files(directory)
            log.critical("{message}\n{traceback}", message=message,
                         traceback=self.tracebacks.get(self._last_failed().id, ""))
        if self.config.summary_file:
            summary = web.job_state(self)
            if not self.ok:
                summary["traceback"] = self.tracebacks.get(self._last_failed().id, "")
            write_atomically(self.config.summary_file, json.dumps(summary, indent=1) + "\n")
        for worker in list(self.waiters):
            d, call = self.waiters.pop(worker)
            call.cancel()
            d.callback(self._answer(worker))
        self._over_message = message
        told = [self._tell_over(proto) for proto in list(self.connections.values())]
        told.append(self._wait_for_http_workers())
        code = 0 if self.ok else 1
        done = defer.DeferredList(told, consumeErrors=True)
        done.addCallback(self._told_late_joiners)
        done.addCallback(lambda _: self._exit(code, message))

    def _tell_over(self, proto):
        d = proto.callRemote(protocol.JobOver, ok=self.ok, message=self._over_message)
        d.addTimeout(self.config.heartbeat_timeout, self.reactor)
        d.addErrback(lambda f: None)
        return d

    def _told_late_joiners(self, _=None):
        """
        Fires once every worker that joined while the job was ending has
        been told it is over (or could not be).
        """
        pending, self._told_late = self._told_late, []
        if not pending:
            return None
        return defer.DeferredList(pending, consumeErrors=True).addCallback(
            self._told_late_joiners)

    def _report(self):
        counters = self.scheduler.summed_counters()
        lines = [f"  {group}.{name} = {value}"
                 for group, names in sorted(counters.items())
                 for name, value in sorted(names.items())]
        log.info("job finished in {secs:.2f}s; counters:\n{counters}",
                 secs=self.ended - self.started, counters="\n".join(lines))
        for kind, index, record in self.scheduler.skipped_records:
            log.warn("skipped bad record {record} of {kind} task {index}",
                     record=record, kind=kind, index=index)

    def _exit(self, code, message):
        if not self.done.called:
            self.done.callback(code)
            if self.on_exit is not None:
                self.on_exit(code, message)


def tail(text, limit):
    """
    The end of C{text}, at most about C{limit} characters: a traceback's last
    lines are the ones that say what went wrong.
    """
    if len(text) <= limit:
        return text
    return f"[{len(text) - limit} characters cut]\n" + text[-limit:]


def _wait():
    """
    The answer to GetTask when nothing is ready: ask again.
    """
    return {"action": "wait", "retry": 0.0, "task": None}


def valid_counters(counters):
    """
    The part of a worker's counters that has their shape, C{{group: {name:
    number}}}: a malformed report must not break the sums.
    """
    if not isinstance(counters, dict):
        return {}
    return {
        str(group): {str(name): value for name, value in names.items()
                     if isinstance(value, (int, float)) and not isinstance(value, bool)}
        for group, names in counters.items() if isinstance(names, dict)
    }


def task_spec(config, job_name, scheduler, attempt):
    """
    What a worker needs to run an attempt: a small JSON document.
    """
    task = attempt.task
    spec = {
        "kind": task.kind,
        "index": task.index,
        "attempt": attempt.id,
        "job": job_name,
        "intermediate": config.intermediate,
    }
    if task.kind == MAP:
        spec.update(input=config.input, splits=task.inputs, n_reduce=len(scheduler.reduces),
                    skip=list(task.skip))
    else:
        spec.update(output=config.output, n_map=len(scheduler.maps), memory=config.memory)
    return spec


def address_of(host):
    """
    A client endpoint string that reaches a listening port's address.
    """
    if hasattr(host, "port"):
        interface = host.host
        if interface in ("0.0.0.0", ""):
            interface = "127.0.0.1"
        elif interface == "::":
            interface = "::1"
        return f"tcp:host={interface.replace(':', chr(92) + ':')}:port={host.port}"
    return f"unix:path={host.name.decode() if isinstance(host.name, bytes) else host.name}"


def write_atomically(path, text):
    temporary = f"{path}.{os.getpid()}.tmp"
    with open(temporary, "w") as f:
        f.write(text)
    os.replace(temporary, path)


def fsync_directory(path):
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def makeService(config, reactor=None, on_exit=None):
    """
    The driver service for C{config}; raises L{ConfigError} before anything
    runs if the job cannot start.
    """
    job, scheduler = prepare(config)
    return Driver(config, job, scheduler, reactor, on_exit)
