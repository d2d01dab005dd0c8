"""
The worker: an AMP client that asks its driver for tasks and runs them.

Task code runs in a thread (C{deferToThread}), so the reactor keeps
answering the driver's pings however long a task computes.  The connection
is kept by a C{ClientService}, which reconnects with back-off; a connection
from which nothing arrives for several heartbeat periods is dropped (the
driver pings every period), and a worker that cannot reach its driver for
C{give_up} seconds exits.
"""

import os
import random
import re
import socket
import threading
import traceback

from twisted.application import service
from twisted.application.internet import ClientService, backoffPolicy
from twisted.internet import defer, endpoints, error, task as ttask, threads
from twisted.internet.protocol import Factory
from twisted.logger import Logger
from twisted.protocols import amp, policies

from txmr import protocol, tasks
from txmr.job import load_job
from txmr.scheduler import QUICK_TASK

log = Logger()

# Nothing from the driver for this many heartbeat periods: drop the
# connection and reconnect.
SILENCE_PERIODS = 10


def client_endpoint_string(address):
    """
    The Twisted client endpoint string for a driver address given as
    C{http://HOST:PORT} (the seed's form), C{HOST:PORT}, or an endpoint string.
    """
    address = address.strip()
    match = re.match(r"^(?:https?://)?(\[[^\]]+\]|[^:/\[\]=]+):(\d+)/?$", address)
    if match:
        host, port = match.groups()
        host = host.strip("[]").replace(":", "\\:")
        return f"tcp:host={host}:port={port}"
    if re.match(r"^\d+$", address):
        return f"tcp:host=127.0.0.1:port={address}"
    return address


class WorkerProtocol(amp.AMP, policies.TimeoutMixin):
    """
    The worker's end of a connection: it answers the driver's commands.
    """

    def __init__(self, worker):
        super().__init__()
        self.worker = worker

    def connectionMade(self):
        super().connectionMade()
        protocol.no_delay(self.transport)

    def dataReceived(self, data):
        self.resetTimeout()
        super().dataReceived(data)

    def timeoutConnection(self):
        log.warn("the driver has been silent too long; reconnecting")
        self.transport.abortConnection()

    @protocol.Ping.responder
    def ping(self):
        return {}

    @protocol.Cancel.responder
    def cancel(self, attempt):
        self.worker.cancel(attempt)
        return {}

    @protocol.JobOver.responder
    def job_over(self, ok, message):
        self.worker.job_over(ok, message)
        return {}

    def connectionLost(self, reason):
        self.setTimeout(None)
        super().connectionLost(reason)
        self.worker.disconnected()


class Worker(service.Service):
    """
    Asks one driver for tasks and runs them one at a time.

    @param on_exit: called with an exit code and a message when the worker
        is done: the job is over, or the driver stayed out of reach.
    """

    def __init__(self, address, reactor=None, give_up=60.0, on_exit=None, secret=None):
        if reactor is None:
            from twisted.internet import reactor
        self.reactor = reactor
        self.address = client_endpoint_string(address)
        self.give_up = give_up
        self.on_exit = on_exit
        self.secret = secret
        self.jobs = {}
        # The attempts running now (a batch of quick ones, or one), each
        # with the event that cancels it.
        self.current = {}
        self.cancelled = set()
        self.finished = False
        self.protocol = None
        self.unreachable_since = None
        # Sessions in a row that ended before the driver answered Hello.
        self.hangups = 0
        self.done = defer.Deferred()
        self.watchdog = ttask.LoopingCall(self._check_reachable)
        self.watchdog.clock = reactor

    def startService(self):
        super().startService()
        endpoint = endpoints.clientFromString(self.reactor, self.address)
        factory = Factory.forProtocol(lambda: WorkerProtocol(self))
        self.client = ClientService(
            endpoint, factory,
            retryPolicy=self._retry_delay,
            clock=self.reactor,
        )
        self.client.startService()
        self.unreachable_since = self.reactor.seconds()
        if self.give_up:
            self.watchdog.start(1.0, now=False)
        self._loop()

    # Back off from 0.02 s to 5 s, with a little jitter (the default jitter
    # adds up to a whole second to every try): a worker started beside its
    # driver joins within a few hundredths of a second of the driver listening.
    _backoff = staticmethod(backoffPolicy(initialDelay=0.02, maxDelay=5.0,
                                          jitter=lambda: random.uniform(0, 0.02)))

    def _retry_delay(self, failed_attempts):
        """
        ClientService counts failed connection attempts only: a server that
        accepts and hangs up (not a driver, or one shutting down) would be
        tried again and again at the first delay.  Sessions that ended
        before Hello was answered count too.
        """
        return self._backoff(max(failed_attempts, self.hangups))

    def stopService(self):
        super().stopService()
        if self.watchdog.running:
            self.watchdog.stop()
        self._cancel_current()
        return self.client.stopService()

    @property
    def busy(self):
        return bool(self.current)

    # -- connection ----------------------------------------------------------

    def disconnected(self):
        self.protocol = None
        if self.unreachable_since is None:
            self.unreachable_since = self.reactor.seconds()
        # The driver gives the attempt to another worker: stop computing it.
        self._cancel_current()

    def _check_reachable(self):
        since = self.unreachable_since
        if since is not None and self.reactor.seconds() - since > self.give_up:
            self._exit(1, f"cannot reach the driver at {self.address} for {self.give_up:g}s")

    @defer.inlineCallbacks
    def _loop(self):
        while self.running and not self.finished:
            try:
                proto = yield self.client.whenConnected()
            except defer.CancelledError:
                return
            self.hangups += 1
            try:
                yield self._session(proto)
            except (error.ConnectionClosed, defer.TimeoutError, amp.ProtocolSwitched) as e:
                log.info("connection to the driver ended ({why}); reconnecting",
                         why=type(e).__name__)
            except Exception:
                log.failure("unexpected error talking to the driver; reconnecting")
                proto.transport.abortConnection()
                yield ttask.deferLater(self.reactor, 1.0, lambda: None)
            # A lost connection fails the session from inside the protocol's
            # connectionLost, before ClientService hears of the loss: until
            # the reactor turns, whenConnected would hand back the dead
            # connection, and every call on it fails at once (a busy loop).
            yield ttask.deferLater(self.reactor, 0, lambda: None)

    def _call(self, proto, command, timeout, **kwargs):
        d = proto.callRemote(command, **kwargs)
        d.addTimeout(timeout, self.reactor)
        return d

    @defer.inlineCallbacks
    def _session(self, proto):
        try:
            hello = yield self._call(proto, protocol.Hello, 30,
                                     version=protocol.PROTOCOL_VERSION, host=socket.gethostname(),
                                     pid=os.getpid(), secret=self.secret)
        except (protocol.Unauthorized, protocol.VersionMismatch) as e:
            # Trying again would not help: say why and leave.
            self._exit(1, f"the driver at {self.address} refused this worker: {e}")
            return
        # A driver answered (not merely a socket): the give-up clock stops.
        self.unreachable_since = None
        self.hangups = 0
        self.protocol = proto
        heartbeat = hello["heartbeat"]
        proto.setTimeout(max(heartbeat * SILENCE_PERIODS, 5.0))
        log.info("joined the driver at {address} as worker {worker} (job {job})",
                 address=self.address, worker=hello["worker"], job=hello["job"])
        # What the driver will answer next, oldest first: Deferreds of
        # answers (as GetTask's), or of None where a report's answer tells
        # nothing (it was refused, or asked for nothing).
        upcoming = []
        quick = False
        while not self.finished:
            # After quick tasks, take every answer on its way (the driver
            # answers reports and prefetches at once) and run their tasks as
            # one batch: one thread hand-off, and one exchange of messages,
            # for several tiny tasks.  After a slow task, run the first task
            # known.
            answers = []
            while upcoming and (quick or not _actionable(answers)):
                answer = yield upcoming.pop(0)
                if answer is not None:
                    answers.append(answer)
            if not _actionable(answers):
                # Nothing to do known: ask, and let the driver hold the
                # question up to its poll time.  It pings meanwhile, so a
                # generous timeout loses nothing.
                answers = [(yield self._call(proto, protocol.GetTask, 300, wait=True))]
            over = [a for a in answers if a["action"] == "done"]
            if over:
                self.job_over(bool((over[0]["task"] or {}).get("ok")),
                              "the driver says the job is over")
                return
            retry = max(a["retry"] for a in answers)
            specs = [a["task"] for a in answers if a["action"] == "run"
                     and a["task"]["attempt"] not in self.cancelled]
            if not specs:
                if retry > 0:
                    yield ttask.deferLater(self.reactor, retry, lambda: None)
                continue
            # After quick tasks, ask for more while these run, so that tiny
            # tasks do not wait for a round trip each.  (After a long one,
            # do not: the next task would wait behind this one instead of
            # going to an idle worker.)
            if quick and len(specs) < protocol.WORKER_SLOTS and not upcoming:
                upcoming.append(self._call(proto, protocol.GetTask, 300, wait=False))
            started = self.reactor.seconds()
            outcomes = yield self._attempts(specs)
            quick = (self.reactor.seconds() - started) / len(specs) < QUICK_TASK
            for spec, outcome in zip(specs, outcomes):
                # Each report asks for a next task, unless this batch was
                # slow and one is already coming (a worker busy with long
                # tasks should not hold on to more of them).  The reports
                # leave in one segment, and their answers come back in one.
                ask = quick or not upcoming
                report = self._report(proto, spec, outcome, ask)
                if report is not None:
                    upcoming.append(report)

    @defer.inlineCallbacks
    def _attempts(self, specs):
        """
        Run attempts one after the other in one thread; return their
        outcomes (see L{_execute}).  Each can be cancelled alone.
        """
        events = {spec["attempt"]: threading.Event() for spec in specs}
        self.current = events
        try:
            outcomes = yield threads.deferToThread(self._execute_all, specs, events)
        finally:
            self.current = {}
        return outcomes

    def _execute_all(self, specs, events):
        """
        Run attempts in turn; in a worker thread.  One cancelled before its
        turn is not started.
        """
        outcomes = []
        for spec in specs:
            cancel = events[spec["attempt"]]
            outcomes.append(("cancelled",) if cancel.is_set() else self._execute(spec, cancel))
        return outcomes

    def _report(self, proto, spec, outcome, ask):
        """
        Send an attempt's report; with C{ask}, it also asks for the next task.

        @return: a L{Deferred} that never fails, of the driver's next action
            (or None, when the report asked for nothing or was refused; a
            lost connection shows at the next question); or None for a
            cancelled attempt, which is not reported.
        """
        where = dict(kind=spec["kind"], index=spec["index"], attempt=spec["attempt"])
        if outcome[0] == "cancelled":
            log.info("{kind} task {index} attempt {attempt} cancelled", **where)
            return None
        if outcome[0] == "ok":
            counters = outcome[1]
            report = self._call(proto, protocol.TaskDone, 60, counters=counters, ask=ask, **where)
        else:
            _, message, trace, record = outcome
            log.warn("{kind} task {index} attempt {attempt} failed: {message}",
                     message=message, **where)
            report = self._call(proto, protocol.TaskFailed, 60, error=message,
                                traceback=trace, record=record, ask=ask, **where)

        def next_action(answer):
            return answer if answer.get("action") else None

        def refused(failure):
            failure.trap(protocol.StaleReport, protocol.UnknownTask, protocol.UnknownWorker)
            log.info("the driver refused the report of {kind} task {index} attempt {attempt}: "
                     "{why}", why=failure.value, **where)

        report.addCallback(next_action)
        report.addErrback(refused)
        report.addErrback(lambda failure: None)
        return report

    def _execute(self, spec, cancel):
        """
        Run an attempt; in a worker thread.  Returns C{("ok", counters)},
        C{("cancelled",)} or C{("failed", message, traceback, record)}.
        """
        try:
            job = self.jobs.get(spec["job"])
            if job is None:
                job = self.jobs[spec["job"]] = load_job(spec["job"])
            return ("ok", tasks.run_task(job, spec, cancel))
        except tasks.TaskCancelled:
            return ("cancelled",)
        except tasks.RecordError as e:
            cause = e.error
            return ("failed", _one_line(cause), _format(cause), e.record)
        except BaseException as e:
            if isinstance(e, KeyboardInterrupt):
                raise
            return ("failed", _one_line(e), traceback.format_exc(), None)

    def _cancel_current(self):
        for event in list(self.current.values()):
            event.set()

    def cancel(self, attempt):
        self.cancelled.add(attempt)
        event = self.current.get(attempt)
        if event is not None:
            log.info("the driver cancelled attempt {attempt}", attempt=attempt)
            event.set()

    def job_over(self, ok, message):
        if self.finished:
            return
        self.finished = True
        log.info("job over ({how}): {message}; exiting", how="ok" if ok else "failed",
                 message=message)
        self._cancel_current()
        self.reactor.callLater(0, self._exit, 0, message)

    def _exit(self, code, message):
        if not self.done.called:
            self.finished = True
            if code:
                log.error("{message}", message=message)
            self.done.callback(code)
            if self.on_exit is not None:
                self.on_exit(code, message)


def _one_line(e):
    text = f"{type(e).__name__}: {e}".splitlines()
    return (text[0] if text else type(e).__name__)[:2000]


def _actionable(answers):
    """
    Whether any of the driver's answers says to do something (run or end).
    """
    return any(answer["action"] != "wait" for answer in answers)


def _format(e):
    return "".join(traceback.format_exception(type(e), e, e.__traceback__))


def makeService(address, reactor=None, give_up=60.0, on_exit=None, secret=None):
    return Worker(address, reactor, give_up, on_exit, secret)
