"""
One connection's life, seen from the worker: say L{Hello}, then ask for
tasks, run them, report them, until the driver says the job is over or the
connection ends.

A L{Session} talks over a connected L{WorkerProtocol
<txmr.worker.connection.WorkerProtocol>} and runs attempts with an
L{Executor <txmr.worker.execution.Executor>}; it ends with a typed value
(L{JobEnded}, L{Refused} or L{Lost}) and leaves what follows (exit, or
reconnect) to the L{service <txmr.worker.service>}.  The driver's answers
are read by L{txmr.core.spec}.
"""

from dataclasses import dataclass

from twisted.internet import defer, error
from twisted.logger import Logger
from twisted.protocols import amp

from txmr import protocol
from txmr.core.placement import QUICK_TASK
from txmr.core.spec import Done, Run, Wait, answer_from_json
from txmr.data.layout import Layout
from txmr.worker.execution import Cancelled, Succeeded

log = Logger()

# Nothing from the driver for this many heartbeat periods: drop the
# connection and reconnect.
SILENCE_PERIODS = 10

# Seconds each question may take.  The driver holds a waiting GetTask up to
# its poll time, and pings meanwhile, so a generous timeout loses nothing.
HELLO_TIMEOUT = 30
ASK_TIMEOUT = 300
REPORT_TIMEOUT = 60


@dataclass(frozen=True)
class Identity:
    """What a worker tells the driver in its L{Hello}."""

    host: str
    pid: int
    secret: str | None = None


@dataclass(frozen=True)
class JobEnded:
    """The driver said the job is over (C{ok} tells how)."""

    ok: bool
    message: str


@dataclass(frozen=True)
class Refused:
    """The driver refused the worker's Hello: trying again would not help."""

    message: str


@dataclass(frozen=True)
class Lost:
    """
    The connection ended, or a question timed out.  C{unexpected}: by an
    error that is not the network's (logged, and the connection dropped).
    """

    why: str
    unexpected: bool = False


class Session:
    """
    One connection's conversation with the driver.

    @param connection: a connected L{WorkerProtocol}.
    @param executor: runs the attempts.
    @param clock: times questions out, and tells quick tasks from slow.
    @param identity: the worker's L{Identity}.
    @param on_joined: called with the Hello answer (a dict of C{worker},
        C{job} and C{heartbeat}) when the driver accepts the worker.
    """

    def __init__(self, connection, executor, clock, identity, on_joined=lambda hello: None):
        self.connection = connection
        self.executor = executor
        self.clock = clock
        self.identity = identity
        self.on_joined = on_joined
        # What the driver will answer next, oldest first: Deferreds of
        # answers (as GetTask's), or of None where a report's answer tells
        # nothing (it was refused, or asked for nothing).
        self.upcoming = []
        # Whether the last batch's tasks were quick (see QUICK_TASK).
        self.quick = False
        self.ended = defer.Deferred()

    def run(self):
        """
        Converse until the session ends.

        @return: a L{Deferred} that fires with L{JobEnded}, L{Refused} or
            L{Lost}, and never fails.
        """
        d = self._converse()
        d.addErrback(self._lost)
        d.addCallback(self._end)
        return self.ended

    def stop(self, ok, message):
        """
        The driver sent L{JobOver}: end the session now, with L{JobEnded}.
        """
        self._end(JobEnded(ok, message))

    def _end(self, outcome):
        if not self.ended.called:
            self.ended.callback(outcome)

    def _lost(self, failure):
        expected = failure.check(error.ConnectionClosed, defer.TimeoutError,
                                 amp.ProtocolSwitched)
        if expected:
            log.info("connection to the driver ended ({why}); reconnecting",
                     why=failure.type.__name__)
            return Lost(failure.type.__name__)
        log.failure("unexpected error talking to the driver; reconnecting", failure)
        self.connection.transport.abortConnection()
        return Lost(failure.type.__name__, unexpected=True)

    def _call(self, command, timeout, **kwargs):
        d = self.connection.callRemote(command, **kwargs)
        d.addTimeout(timeout, self.clock)
        return d

    @defer.inlineCallbacks
    def _converse(self):
        """
        Hello, then the loop of asking, running and reporting.
        """
        try:
            hello = yield self._call(
                protocol.Hello, HELLO_TIMEOUT, version=protocol.PROTOCOL_VERSION,
                host=self.identity.host, pid=self.identity.pid, secret=self.identity.secret)
        except (protocol.Unauthorized, protocol.VersionMismatch) as e:
            return Refused(str(e))
        self.on_joined(hello)
        self.connection.setTimeout(max(hello["heartbeat"] * SILENCE_PERIODS, 5.0))
        while not self.ended.called:
            answers = yield self._next_answers()
            over = [answer for answer in answers if isinstance(answer, Done)]
            if over:
                return JobEnded(over[0].ok, "the driver says the job is over")
            specs = [answer.spec for answer in answers if isinstance(answer, Run)
                     and not self.executor.is_cancelled(answer.spec.attempt)]
            if specs:
                self._prefetch(specs)
                outcomes = yield self._run_batch(specs)
                self._report_batch(specs, outcomes)

    @defer.inlineCallbacks
    def _next_answers(self):
        """
        The driver's next answers, at least one of them to run or end.

        After quick tasks, take every answer on its way (the driver answers
        reports and prefetches at once) so that their tasks run as one batch:
        one thread hand-off, and one exchange of messages, for several tiny
        tasks.  After a slow task, the first task known is enough.  With
        nothing to do known, ask, and let the driver hold the question.
        """
        answers = []
        while self.upcoming and (self.quick or not _actionable(answers)):
            answer = yield self.upcoming.pop(0)
            if answer is not None:
                answers.append(answer)
        if not _actionable(answers):
            answers = [(yield self._ask(wait=True))]
        return answers

    def _ask(self, wait):
        """GetTask: a L{Deferred} of the driver's typed answer."""
        d = self._call(protocol.GetTask, ASK_TIMEOUT, wait=wait)
        d.addCallback(answer_from_json)
        return d

    def _prefetch(self, specs):
        """
        After quick tasks, ask for more while these run, so that tiny tasks
        do not wait for a round trip each.  (After a slow one, do not: the
        next task would wait behind this one instead of going to an idle
        worker.)
        """
        if self.quick and len(specs) < protocol.WORKER_SLOTS and not self.upcoming:
            self.upcoming.append(self._ask(wait=False))

    @defer.inlineCallbacks
    def _run_batch(self, specs):
        """
        Run the attempts in one thread call; learn whether they were quick.
        """
        started = self.clock.seconds()
        outcomes = yield self.executor.run_batch(specs)
        self.quick = (self.clock.seconds() - started) / len(specs) < QUICK_TASK
        return outcomes

    def _report_batch(self, specs, outcomes):
        """
        Report each attempt.  Each report asks for a next task, unless this
        batch was slow and one is already coming (a worker busy with long
        tasks should not hold on to more of them).  The reports leave in one
        segment, and their answers come back in one.
        """
        for spec, outcome in zip(specs, outcomes):
            report = self._report(spec, outcome, ask=self.quick or not self.upcoming)
            if report is not None:
                self.upcoming.append(report)

    def _report(self, spec, outcome, ask):
        """
        Send an attempt's report; with C{ask}, it also asks for the next task.

        @return: a L{Deferred} that never fails, of the driver's next answer
            (or None, when the report asked for nothing or was refused; a
            lost connection shows at the next question); or None for a
            cancelled attempt, which is not reported.
        """
        where = dict(kind=str(spec.kind), index=spec.index, attempt=spec.attempt)
        if isinstance(outcome, Cancelled):
            log.info("{kind} task {index} attempt {attempt} cancelled", **where)
            return None
        if isinstance(outcome, Succeeded):
            report = self._call(protocol.TaskDone, REPORT_TIMEOUT,
                                counters=outcome.counters, ask=ask, **where)
        else:
            log.warn("{kind} task {index} attempt {attempt} failed: {message}",
                     message=outcome.message, **where)
            report = self._call(protocol.TaskFailed, REPORT_TIMEOUT, error=outcome.message,
                                traceback=outcome.traceback, record=outcome.record,
                                ask=ask, **where)

        def undelivered(failure):
            # The driver will never commit this attempt's files (it refused
            # the report, or is gone): remove them, so that nothing is left
            # behind, even by a worker that thawed after its job ended.  An
            # attempt the driver did commit has no file left under these
            # names, so this removes nothing of it.
            if isinstance(outcome, Succeeded):
                discard_files(spec)
            return failure

        def refused(failure):
            failure.trap(protocol.StaleReport, protocol.UnknownTask, protocol.UnknownWorker)
            log.info("the driver refused the report of {kind} task {index} attempt {attempt}: "
                     "{why}", why=failure.value, **where)

        report.addCallback(answer_from_json)
        report.addErrback(undelivered)
        report.addErrback(refused)
        report.addErrback(lambda failure: None)
        return report


def discard_files(spec):
    """
    Remove the files an attempt wrote under its temporary names.
    """
    try:
        Layout.of(spec).discard(spec.kind, spec.index, spec.attempt)
    except OSError as e:
        log.warn("cannot remove the files of {kind} task {index} attempt {attempt}: {error}",
                 kind=str(spec.kind), index=spec.index, attempt=spec.attempt, error=e)


def _actionable(answers):
    """
    Whether any of the driver's answers says to do something (run or end).
    """
    return any(not isinstance(answer, Wait) for answer in answers)
