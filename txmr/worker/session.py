"""
One connection's life, seen from the worker: say L{Hello} (with a secret,
after a L{Challenge}, and check the driver's proof), then ask for tasks,
run them, report them, until the driver says the job is over or the
connection ends.

A worker with a secret trusts the peer on its driver's address only once
that peer has proved it knows the secret (L{protocol.driver_proof}); until
then it asks for no task and heeds no command.  A peer that fails the proof
is not the worker's driver (the real one may have exited, and another
program taken its port; or it was started with another secret): the worker
logs one line, drops the connection and tries again, with back-off, as if
it had not reached its driver, so it joins the real driver if one comes
back on that address and exits 1 after C{--give-up} seconds if none does.
It does not exit at once: a restarted driver on that address takes it back.
(A stranger can still answer Hello with L{protocol.Unauthorized}, as a
driver that refuses the worker's secret does, and so make it exit 1 early:
the two cannot be told apart.  It cannot make it exit 0, nor run anything.)

A L{Session} talks over a connected L{WorkerProtocol
<txmr.worker.connection.WorkerProtocol>} and runs attempts with an
L{Executor <txmr.worker.execution.Executor>}; it ends with a typed value
(L{JobEnded}, L{Refused} or L{Lost}) and leaves what follows (exit, or
reconnect) to the L{service <txmr.worker.service>}.  The driver's answers
are read by L{txmr.core.spec}.
"""

from dataclasses import dataclass, replace

from twisted.internet import defer, error
from twisted.logger import Logger
from twisted.protocols import amp

from txmr import protocol
from txmr.core.placement import QUICK_TASK
from txmr.core.spec import Done, Run, Wait, answer_from_json
from txmr.data.layout import Layout
from txmr.worker.execution import Cancelled, MapOutputMissing, Succeeded

log = Logger()

# Nothing from the driver for this many heartbeat periods: drop the
# connection and reconnect.
SILENCE_PERIODS = 10

# Seconds each question may take.  The driver holds a waiting GetTask up to
# its poll time, and pings meanwhile, so a generous timeout loses nothing.
HELLO_TIMEOUT = 30
ASK_TIMEOUT = 300
REPORT_TIMEOUT = 60


class Unproven(Exception):
    """
    The peer did not prove it knows the worker's secret: it is not the
    worker's driver.
    """


@dataclass(frozen=True)
class Identity:
    """What a worker tells the driver in its L{Hello}."""

    host: str
    pid: int
    # Never sent: it makes and checks the proofs of L{protocol.Hello}.
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
            hello = yield self._hello()
        except (protocol.Unauthorized, protocol.VersionMismatch) as e:
            return Refused(str(e))
        except amp.UnhandledCommand:
            return Refused(f"it does not know {protocol.Challenge.__name__}: it speaks an "
                           f"older protocol than this worker's (version "
                           f"{protocol.PROTOCOL_VERSION})")
        except Unproven as e:
            log.warn("the peer at {peer} is not this worker's driver: {why}; running nothing "
                     "for it, and trying again", peer=_peer(self.connection), why=e)
            self.connection.transport.abortConnection()
            return Lost("the driver did not prove it knows the secret")
        self.on_joined(hello)
        if not self.executor.allows(hello["job"]):
            log.warn("the driver's job {job} matches no --job-allow pattern of this worker: "
                     "it will refuse every task", job=hello["job"])
        # Commands the driver sent before its proof arrived are carried out
        # now (a JobOver for a worker that joins as the job ends).
        self.connection.trust()
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
    def _hello(self):
        """
        Join: with a secret, a L{Challenge} first, and a L{Hello} that
        proves the secret and checks the driver's proof; without one, a
        bare Hello (the door is open, and trust is given).

        @return: a L{Deferred} of the Hello answer.
        @raise Unproven: the peer did not prove it knows the secret.
        """
        secret = self.identity.secret
        nonce = proof = driver_nonce = None
        if secret:
            challenge = yield self._call(protocol.Challenge, HELLO_TIMEOUT)
            driver_nonce = challenge["nonce"]
            if not protocol.valid_nonce(driver_nonce):
                raise Unproven("its challenge is no valid nonce")
            nonce = protocol.new_nonce()
            proof = protocol.worker_proof(secret, driver_nonce, nonce)
        shuffle = getattr(self.executor, "shuffle", None)
        # Where this worker serves the map output it keeps, for a driver
        # without a shared intermediate directory.
        url = (yield shuffle.listen(self.connection)) if shuffle is not None else None
        hello = yield self._call(
            protocol.Hello, HELLO_TIMEOUT, version=protocol.PROTOCOL_VERSION,
            host=self.identity.host, pid=self.identity.pid, nonce=nonce, proof=proof,
            url=url)
        if secret and not protocol.proof_matches(
                protocol.driver_proof(secret, driver_nonce, nonce), hello["proof"]):
            raise Unproven("it did not prove it knows the secret (--secret-file)" if
                           hello["proof"] is None else "its proof of the secret is wrong")
        if shuffle is not None and hello.get("uuid"):
            shuffle.store.start_job(hello["uuid"])
        return hello

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

    def _run_batch(self, specs):
        """
        Run the attempts in one thread call; learn whether they were quick.
        (A callback, not a generator of its own: this runs for every batch.)
        """
        started = self.clock.seconds()

        def learn(outcomes):
            self.quick = (self.clock.seconds() - started) / len(specs) < QUICK_TASK
            return outcomes

        return self.executor.run_batch(specs).addCallback(learn)

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
                                counters=outcome.counters, ask=ask, output=outcome.output,
                                **where)
            if outcome.output is not None:
                report.addCallback(self._committed, spec)
        elif isinstance(outcome, MapOutputMissing):
            log.warn("{kind} task {index} attempt {attempt}: {error}; the driver runs the "
                     "map again", error=outcome.message, **where)
            report = self._call(protocol.MapOutputLost, REPORT_TIMEOUT,
                                map_index=outcome.map_index, map_attempt=outcome.map_attempt,
                                error=outcome.message, ask=ask, **where)
        else:
            # Not "message": the legacy log bridge takes that key for its own.
            log.warn("{kind} task {index} attempt {attempt} failed: {error}",
                     error=outcome.message, **where)
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
                discard_files(spec, self.executor.shuffle)
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


    def _committed(self, answer, spec):
        """
        The driver answered a shared-nothing map's report: it committed the
        attempt (it refuses one it does not commit), so serve its files.
        """
        self.executor.shuffle.store.committed(spec.shuffle["job"], spec.attempt, spec.index,
                                              spec.n_reduce)
        return answer


def discard_files(spec, shuffle=None):
    """
    Remove the files an attempt wrote under its temporary names (a
    shared-nothing map's, under the worker's work directory).
    """
    try:
        if spec.shuffle is not None and shuffle is not None:
            spec = replace(spec, intermediate=shuffle.store.directory(spec.shuffle["job"]))
        Layout.of(spec).discard(spec.kind, spec.index, spec.attempt)
    except (OSError, ValueError) as e:
        log.warn("cannot remove the files of {kind} task {index} attempt {attempt}: {error}",
                 kind=str(spec.kind), index=spec.index, attempt=spec.attempt, error=e)


def _peer(connection):
    """
    The peer's address, as a log line gives it.
    """
    peer = connection.transport.getPeer()
    host, port = getattr(peer, "host", None), getattr(peer, "port", None)
    return f"{host}:{port}" if host is not None else str(peer)


def _actionable(answers):
    """
    Whether any of the driver's answers says to do something (run or end).
    """
    return any(not isinstance(answer, Wait) for answer in answers)
