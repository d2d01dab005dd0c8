"""
One AMP worker's connection to the driver: the front door that turns AMP
commands into calls of the L{Coordinator<txmr.driver.coordinator.Coordinator>},
and the peer through which the coordinator reaches that worker.
"""

from twisted.internet import defer
from twisted.logger import Logger
from twisted.protocols import amp

from txmr import protocol
from txmr.core.model import WorkerInfo
from txmr.core.spec import answer_to_json

log = Logger()


class DriverProtocol(amp.AMP):
    """
    C{worker} is the worker session's id after L{protocol.Hello}.
    """

    worker = None
    # Before Hello, a peer is nobody: it has this long to say it, and may
    # send this much meanwhile (a Hello is a few hundred bytes; AMP would
    # otherwise buffer any number of 64 KiB values of one unfinished box).
    HELLO_WITHIN = 30.0
    BYTES_BEFORE_HELLO = 1 << 20

    def __init__(self, coordinator):
        super().__init__()
        self.coordinator = coordinator
        self._unauthenticated = 0
        self._hello_deadline = None

    def connectionMade(self):
        super().connectionMade()
        protocol.no_delay(self.transport)
        self._hello_deadline = self.coordinator.clock.callLater(
            self.HELLO_WITHIN, self._drop, "it said no Hello in time")

    def dataReceived(self, data):
        if self.worker is None:
            self._unauthenticated += len(data)
            if self._unauthenticated > self.BYTES_BEFORE_HELLO:
                self._drop(f"it sent more than {self.BYTES_BEFORE_HELLO} bytes before Hello")
                return
        super().dataReceived(data)

    def _drop(self, why):
        self._hello_deadline = None
        log.info("dropped a connection from {peer}: {why}", peer=self.transport.getPeer(),
                 why=why)
        self.transport.abortConnection()

    def _worker(self):
        if self.worker is None:
            raise protocol.UnknownWorker("say Hello first")
        return self.worker

    # -- the front door ------------------------------------------------------

    @protocol.Hello.responder
    def hello(self, version, host, pid, secret=None):
        coordinator = self.coordinator
        if not coordinator.config.authorizes(secret):
            log.warn("refused a worker from {host} (pid {pid}): wrong or missing secret",
                     host=host[:100], pid=pid)
            # No second guess on this connection: close it once the refusal
            # is sent.
            coordinator.clock.callLater(0, self.transport.loseConnection)
            raise protocol.Unauthorized("the driver needs its secret (--secret-file)")
        if version != protocol.PROTOCOL_VERSION:
            raise protocol.VersionMismatch(
                f"driver speaks version {protocol.PROTOCOL_VERSION}, not {version}")
        if self.worker is None:
            if self._hello_deadline is not None and self._hello_deadline.active():
                self._hello_deadline.cancel()
            self.worker = coordinator.join(WorkerInfo(host=host, pid=pid), peer=self,
                                           slots=protocol.WORKER_SLOTS)
            log.info("worker {worker} joined from {host} (pid {pid})", worker=self.worker,
                     host=host, pid=pid)
        return {"worker": self.worker, "job": coordinator.job.name,
                "heartbeat": float(coordinator.config.heartbeat)}

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
    def task_done(self, kind, index, attempt, counters, ask=None):
        self.coordinator.task_done(self._worker(), kind, index, attempt, counters)
        return self._next(ask)

    @protocol.TaskFailed.responder
    def task_failed(self, kind, index, attempt, error, traceback, record, ask=None):
        self.coordinator.task_failed(self._worker(), kind, index, attempt, error, traceback,
                                     record)
        return self._next(ask)

    def connectionLost(self, reason):
        if self._hello_deadline is not None and self._hello_deadline.active():
            self._hello_deadline.cancel()
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
        self.transport.abortConnection()

    def close(self):
        self.transport.loseConnection()
