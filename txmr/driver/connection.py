"""
One AMP worker's connection to the driver: the front door that turns AMP
commands into calls of the L{Coordinator<txmr.driver.coordinator.Coordinator>},
and the peer through which the coordinator reaches that worker.

Before a peer says L{Hello<txmr.protocol.Hello>} (and, with a secret,
proves it knows it) it is a stranger: it may send little, for a short
time, and only so many strangers are kept at once (L{DriverFactory}).
"""

import re

from twisted.internet import defer
from twisted.internet.protocol import Factory
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.protocols import amp, policies

from txmr import protocol
from txmr.core.model import WorkerInfo
from txmr.core.spec import answer_to_json
from txmr.driver.strangers import Strangers

log = Logger()

# The longest host name a worker may give (DNS names have at most 253).
MAX_HOST = 253

# A joined worker answers a ping every heartbeat period: silent for this
# many periods past the heartbeat timeout, its connection is dropped even
# where the heartbeat no longer runs (once the job is over).
IDLE_PERIODS = 10


# The commands a worker sends, by their names on the wire.
_COMMANDS = {c.commandName: c for c in (protocol.Challenge, protocol.Hello, protocol.GetTask,
                                        protocol.TaskDone, protocol.TaskFailed,
                                        protocol.MapOutputLost)}

# The longest map output URL a worker may give.
_URL_CHARS = 2000
_URL = re.compile(r"^https?://(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+):[0-9]{1,5}$")


class DriverFactory(Factory):
    """
    Builds a L{DriverProtocol} for each AMP connection, and keeps at most
    C{MAX_STRANGERS} connections that have not said Hello yet (see
    L{txmr.driver.strangers}); workers that said Hello are not counted.
    """

    MAX_STRANGERS = 64
    STRANGER_GRACE = 2.0

    def __init__(self, coordinator):
        self.coordinator = coordinator
        self._strangers = Strangers(coordinator.clock, self.MAX_STRANGERS, self.STRANGER_GRACE,
                                    "to say Hello")

    @property
    def strangers(self):
        return self._strangers.waiting

    def buildProtocol(self, addr):
        p = DriverProtocol(self.coordinator)
        p.factory = self
        return p

    def admit(self, stranger):
        """
        Whether a new connection may stay, to say Hello.
        """
        return self._strangers.admit(stranger)

    def known(self, stranger):
        """
        C{stranger} said Hello, or is gone.
        """
        self._strangers.known(stranger)


class DriverProtocol(amp.AMP, policies.TimeoutMixin):
    """
    C{worker} is the worker session's id after L{protocol.Hello}.

    Built by a L{DriverFactory} (its C{factory}), which counts it as a
    stranger until Hello.
    """

    worker = None
    factory = None
    # Before Hello, a peer is nobody: it has this long to say it, whatever
    # it sends meanwhile, and may send this much (a Hello is a few hundred
    # bytes; AMP would otherwise buffer any number of 64 KiB values of one
    # unfinished box).
    HELLO_WITHIN = 30.0
    BYTES_BEFORE_HELLO = 1 << 20

    def __init__(self, coordinator):
        super().__init__()
        self.coordinator = coordinator
        self._unauthenticated = 0
        # The nonce of this connection's last Challenge, for its next Hello.
        self._challenge = None

    def callLater(self, period, func):
        # TimeoutMixin would use the global reactor.
        return self.coordinator.clock.callLater(period, func)

    def connectionMade(self):
        super().connectionMade()
        protocol.no_delay(self.transport)
        if self.factory is not None and not self.factory.admit(self):
            self.transport.abortConnection()
            return
        # Not reset by data: a trickle of bytes does not keep a stranger.
        self.setTimeout(self.HELLO_WITHIN)

    def dataReceived(self, data):
        if self.worker is None:
            self._unauthenticated += len(data)
            if self._unauthenticated > self.BYTES_BEFORE_HELLO:
                self._drop(f"it sent more than {self.BYTES_BEFORE_HELLO} bytes before Hello")
                return
        else:
            self.resetTimeout()
        try:
            super().dataReceived(data)
        except Exception as e:
            # Bytes that are no AMP (an empty box, a key too long...): the
            # transport would log a traceback and drop the connection.  Say
            # it in one line, and drop only this one.
            self._drop(f"it sent malformed AMP ({type(e).__name__})")

    def timeoutConnection(self):
        if self.worker is None:
            self._drop("it said no Hello in time")
        else:
            self._drop(f"worker {self.worker} sent nothing for {self.timeOut:g}s")

    def _drop(self, why):
        self.setTimeout(None)
        log.info("dropped a connection from {peer}: {why}", peer=self.transport.getPeer(),
                 why=why)
        self.transport.abortConnection()

    def _worker(self):
        if self.worker is None:
            raise protocol.UnknownWorker("say Hello first")
        return self.worker

    def unhandledError(self, failure):
        """
        A stranger's box that failed and asked for no answer: one line, and
        the connection dropped (AMP would log a traceback).
        """
        if self.worker is not None:
            return super().unhandledError(failure)
        self._drop(f"its box failed: {failure.type.__name__}")

    def ampBoxReceived(self, box):
        """
        A joined worker's report is answered here, in this call, with the
        box AMP's dispatch would send: the responder's answer; or the error
        its command declares, or a L{amp.RemoteAmpError}'s own (the
        connection closed after it if fatal); or, for any other exception,
        AMP's unknown error, logged, and the connection closed.  AMP would
        wrap each command in three Deferreds and their callbacks, a sixth of
        the driver's CPU per quick task.  Everything else goes through AMP:
        other commands, a stranger's boxes, a box that is also an answer.
        """
        report = _REPORTS.get(box.get(amp.COMMAND)) if self.worker is not None else None
        if report is None or amp.ASK not in box or amp.ANSWER in box or amp.ERROR in box:
            return super().ampBoxReceived(box)
        command, responder = report
        tag = box[amp.ASK]
        try:
            result = responder(self, **command.parseArguments(box, self))
            if isinstance(result, defer.Deferred):
                # A report's responder answers at once; were one to wait,
                # its answer would still be AMP's.
                result.addCallback(command.makeResponse, self).addCallbacks(
                    lambda answer: self._emit(_tagged(answer, tag)),
                    lambda failure: self._emit(_error_box(command, failure, tag)))
                return
            answer = _tagged(command.makeResponse(result, self), tag)
        except BaseException:
            answer = _error_box(command, Failure(), tag)
        self._emit(answer)

    def _emit(self, answer):
        """
        Send an answer as AMP does (L{amp.BoxDispatcher._safeEmit}); an error
        in sending is AMP's unhandled error, not the worker's.
        """
        try:
            self._safeEmit(answer)
        except Exception:
            self.unhandledError(Failure())

    def dispatchCommand(self, box):
        """
        A stranger's command whose arguments do not parse is answered with a
        clear error, and its connection closed, with one line in the log
        (AMP would log a traceback for each).  A joined worker's commands
        are not parsed twice: they are a trusted peer's, and a traceback is
        what its bug deserves.
        """
        command = _COMMANDS.get(box.get(amp.COMMAND)) if self.worker is None else None
        if command is not None:
            try:
                command.parseArguments(amp.AmpBox(box), self)
            except Exception as e:
                why = f"malformed {command.__name__}: {type(e).__name__}: {e}"[:300]
                log.info("dropped a connection from {peer}: {why}",
                         peer=self.transport.getPeer(), why=why)
                return defer.fail(amp.RemoteAmpError(b"MALFORMED", why, fatal=True))
        return super().dispatchCommand(box)

    # -- the front door ------------------------------------------------------

    @protocol.Challenge.responder
    def challenge(self):
        self._challenge = protocol.new_nonce()
        return {"nonce": self._challenge}

    def _refuse(self, host, pid, why):
        log.warn("refused a worker from {host} (pid {pid}): {why}", host=host[:MAX_HOST], pid=pid,
                 why=why)
        # No second guess on this connection: close it once the refusal is
        # sent.
        self.coordinator.clock.callLater(0, self.transport.loseConnection)
        return protocol.Unauthorized("the driver needs proof of its secret (--secret-file)")

    def _prove(self, host, pid, nonce, proof):
        """
        With a secret: check the worker's proof over this connection's
        challenge (used once) and the worker's nonce, and return the
        driver's own proof.  Without one: L{None}, and anyone is let in.

        @raise protocol.Unauthorized: the proof is missing or wrong.
        """
        secret = self.coordinator.config.secret
        challenge, self._challenge = self._challenge, None
        if not secret:
            return None
        if challenge is None:
            raise self._refuse(host, pid, "no Challenge before Hello (no secret, or an old "
                                          "worker)")
        if not protocol.valid_nonce(nonce) or not protocol.proof_matches(
                protocol.worker_proof(secret, challenge, nonce), proof):
            raise self._refuse(host, pid, "wrong or missing proof of the secret")
        return protocol.driver_proof(secret, challenge, nonce)

    @protocol.Hello.responder
    def hello(self, version, host, pid, nonce=None, proof=None, url=None):
        coordinator = self.coordinator
        if version != protocol.PROTOCOL_VERSION:
            raise protocol.VersionMismatch(
                f"driver speaks version {protocol.PROTOCOL_VERSION}, not {version}")
        answer = self._prove(host, pid, nonce, proof)
        # A host name has at most 253 characters: more is junk, which would
        # fill the log and the status page.
        host = host[:MAX_HOST]
        if url is not None and (len(url) > _URL_CHARS or not _URL.match(url)):
            log.warn("worker from {host} (pid {pid}) gave no valid map output URL: {url!r}",
                     host=host[:100], pid=pid, url=url[:100])
            url = None
        if self.worker is None:
            if self.factory is not None:
                self.factory.known(self)
            config = coordinator.config
            self.setTimeout(config.heartbeat_timeout + IDLE_PERIODS * config.heartbeat)
            self.worker = coordinator.join(WorkerInfo(host=host, pid=pid), peer=self,
                                           slots=protocol.WORKER_SLOTS, url=url)
            log.info("worker {worker} joined from {host} (pid {pid})", worker=self.worker,
                     host=host, pid=pid)
        return {"worker": self.worker, "job": coordinator.job.name,
                "heartbeat": float(coordinator.config.heartbeat), "proof": answer,
                "uuid": coordinator.job_uuid}

    @protocol.GetTask.responder
    def get_task(self, wait=None):
        answer = self.coordinator.get_task(self._worker(), wait is not False)
        if isinstance(answer, defer.Deferred):
            return answer.addCallback(answer_to_json)
        return answer_to_json(answer)

    def _next(self, ask):
        if not ask:
            return {}
        return answer_to_json(self.coordinator.get_task(self.worker, wait=False))

    @protocol.TaskDone.responder
    def task_done(self, kind, index, attempt, counters, ask=None, output=None):
        self.coordinator.task_done(self._worker(), kind, index, attempt, counters, output=output)
        return self._next(ask)

    @protocol.TaskFailed.responder
    def task_failed(self, kind, index, attempt, error, traceback, record, ask=None):
        self.coordinator.task_failed(self._worker(), kind, index, attempt, error, traceback,
                                     record)
        return self._next(ask)

    @protocol.MapOutputLost.responder
    def map_output_lost(self, kind, index, attempt, map_index, map_attempt, error, ask=None):
        self.coordinator.map_output_lost(self._worker(), kind, index, attempt, map_index,
                                         map_attempt, error)
        return self._next(ask)

    def connectionLost(self, reason):
        self.setTimeout(None)
        if self.factory is not None:
            self.factory.known(self)
        super().connectionLost(reason)
        if self.worker is not None:
            self.coordinator.disconnected(self.worker)

    # -- the peer ------------------------------------------------------------

    def _call(self, command, **kwargs):
        """
        Send a command; a Deferred that never fails, of whether it was
        answered within the heartbeat timeout.
        """
        d = self.callRemote(command, **kwargs)
        d.addTimeout(self.coordinator.config.heartbeat_timeout, self.coordinator.clock)
        return d.addCallbacks(lambda _: True, lambda _: False)

    def ping(self):
        return self._call(protocol.Ping)

    def cancel(self, attempt_id):
        return self._call(protocol.Cancel, attempt=attempt_id)

    def tell_over(self, ok, message):
        return self._call(protocol.JobOver, ok=ok, message=message)

    def abort(self):
        self.setTimeout(None)
        self.transport.abortConnection()

    def close(self):
        self.transport.loseConnection()


def _tagged(answer, tag):
    answer[amp.ANSWER] = tag
    return answer


def _error_box(command, failure, tag):
    """
    The box that answers the command C{tag} with C{failure}, as AMP's
    dispatch builds it (L{amp.CommandLocator._wrapWithSerialization}, then
    L{amp.BoxDispatcher._commandReceived}): an error the command declares,
    with its code; then a L{amp.RemoteAmpError}, with its own; either closes
    the connection after it if fatal.  Any other one is logged, and
    answered as an unknown error that closes the connection.
    """
    error = failure.value
    for kind, code in command.allErrors.items():
        if isinstance(error, kind):
            error = amp.RemoteAmpError(code, str(error), kind in command.fatalErrors)
            break
    if isinstance(error, amp.RemoteAmpError):
        code, description = error.errorCode, error.description
        box = amp.QuitBox() if error.fatal else amp.AmpBox()
    else:
        log.failure("while answering {command}", failure, command=command.__name__)
        box, code, description = amp.QuitBox(), amp.UNKNOWN_ERROR_CODE, b"Unknown Error"
    if isinstance(description, str):
        description = description.encode("utf-8", "replace")
    box[amp.ERROR] = tag
    box[amp.ERROR_CODE] = code
    box[amp.ERROR_DESCRIPTION] = description
    return box


# A joined worker's reports, by their names on the wire, with their
# registered responders: answered without AMP's Deferreds (see
# L{DriverProtocol.ampBoxReceived}).
_REPORTS = {c.commandName: DriverProtocol._commandDispatch[c.commandName] for c in (
    protocol.TaskDone, protocol.TaskFailed, protocol.MapOutputLost)}
