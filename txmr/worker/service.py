"""
The worker as a Twisted service: it keeps a connection to its driver,
holds one L{Session <txmr.worker.session.Session>} on it at a time, and
decides when the worker exits, and with which code.

The connection is kept by a C{ClientService} (on the endpoint and clock
given), which reconnects with back-off; a worker that cannot reach its
driver for C{give_up} seconds exits 1, a worker the driver refuses exits 1,
and a worker told the job is over exits 0.  What a session says and runs is
L{txmr.worker.session}'s; how a driver address becomes an endpoint,
L{txmr.worker.address}'s.
"""

import os
import random
import socket

from twisted.application import service
from twisted.application.internet import ClientService, backoffPolicy
from twisted.internet import defer, task
from twisted.internet.protocol import Factory
from twisted.logger import Logger

from txmr.tls import Trust
from txmr.worker.address import client_endpoint, client_endpoint_string
from txmr.worker.connection import WorkerProtocol
from txmr.worker.execution import Executor
from txmr.worker.session import Identity, JobEnded, Lost, Refused, Session

log = Logger()

# Back off from 0.02 s to 5 s, with a little jitter (the default jitter adds
# up to a whole second to every try): a worker started beside its driver
# joins within a few hundredths of a second of the driver listening.
_backoff = backoffPolicy(initialDelay=0.02, maxDelay=5.0,
                         jitter=lambda: random.uniform(0, 0.02))

# After an unexpected error in a session, wait this long before the next.
_PAUSE_AFTER_ERROR = 1.0


class WorkerService(service.Service):
    """
    Asks one driver for tasks and runs them, until the job is over.

    @param endpoint: the driver's client endpoint.
    @param clock: the clock of reconnections, timeouts and the give-up
        watchdog (an C{IReactorTime}).
    @param run_in_thread: runs task code outside the reactor thread (see
        L{Executor}); default C{deferToThread}.
    @param give_up: exit after this many seconds without a driver that
        answers Hello (0 or None: never).
    @param on_exit: called with an exit code and a message when the worker
        is done: the job is over, the driver refused it, or stayed out of
        reach.
    @param secret: the driver's secret, if it has one.
    @param host: the host name the driver is told (default: this one's).
    @param pid: the process id the driver is told (default: this one's).
    @param name: the driver's address as messages give it.
    @param executor: what runs the attempts (default: an L{Executor} on
        C{run_in_thread}).
    @param shuffle: the worker's map output server and fetches (a
        L{txmr.worker.shuffle.Shuffle}), for jobs without a shared
        intermediate directory; closed when the service stops.
    """

    def __init__(self, endpoint, clock, run_in_thread=None, give_up=60.0, on_exit=None,
                 secret=None, host=None, pid=None, name=None, executor=None, shuffle=None):
        self.endpoint = endpoint
        self.clock = clock
        self.give_up = give_up
        self.on_exit = on_exit
        self.identity = Identity(host=socket.gethostname() if host is None else host,
                                 pid=os.getpid() if pid is None else pid, secret=secret)
        self.address = name if name is not None else repr(endpoint)
        self.executor = executor or Executor(run_in_thread)
        self.shuffle = shuffle
        if shuffle is not None:
            self.executor.shuffle = shuffle
        self.finished = False
        self.session = None
        self.unreachable_since = None
        # Sessions in a row that ended before the driver answered Hello.
        self.hangups = 0
        # Fires with the exit code.
        self.done = defer.Deferred()
        factory = Factory.forProtocol(lambda: WorkerProtocol(self, clock))
        # ClientService logs each retry, and what it connects to; the
        # factory's start and stop around every try would be noise.
        factory.noisy = False
        self.client = ClientService(endpoint, factory, retryPolicy=self._retry_delay,
                                    clock=clock)
        self.watchdog = task.LoopingCall(self._check_reachable)
        self.watchdog.clock = clock

    @property
    def busy(self):
        """
        Whether task code is running now.
        """
        return self.executor.busy

    def startService(self):
        super().startService()
        self.client.startService()
        self.unreachable_since = self.clock.seconds()
        if self.give_up:
            self.watchdog.start(1.0, now=False)
        self._loop()

    def stopService(self):
        super().stopService()
        if self.watchdog.running:
            self.watchdog.stop()
        self.executor.cancel_all()
        self.close_shuffle()
        return self.client.stopService()

    def close_shuffle(self):
        """
        Stop serving map output, and remove it (and a temporary work
        directory).
        """
        if self.shuffle is not None:
            self.shuffle.close()

    def _retry_delay(self, failed_attempts):
        """
        ClientService counts failed connection attempts only: a server that
        accepts and hangs up (not a driver, or one shutting down) would be
        tried again and again at the first delay.  Sessions that ended
        before Hello was answered count too.
        """
        return _backoff(max(failed_attempts, self.hangups))

    # -- what the connection and the session call ---------------------------

    def cancel(self, attempt_id):
        self.executor.cancel(attempt_id)

    def disconnected(self):
        if self.unreachable_since is None:
            self.unreachable_since = self.clock.seconds()
        # The driver gives the attempts to other workers: stop computing them.
        self.executor.cancel_all()

    def job_over(self, ok, message):
        if self.finished:
            return
        self.finished = True
        log.info("job over ({how}): {message}; exiting", how="ok" if ok else "failed",
                 message=message)
        self.executor.cancel_all()
        if self.session is not None:
            self.session.stop(ok, message)
        self.clock.callLater(0, self._exit, 0, message)

    def _joined(self, hello):
        # A driver answered (not merely a socket): the give-up clock stops.
        self.unreachable_since = None
        self.hangups = 0
        log.info("joined the driver at {address} as worker {worker} (job {job})",
                 address=self.address, worker=hello["worker"], job=hello["job"])

    # -- the life of the worker ---------------------------------------------

    @defer.inlineCallbacks
    def _loop(self):
        """
        A session on each connection, until the worker is finished.
        """
        while self.running and not self.finished:
            try:
                connection = yield self.client.whenConnected()
            except defer.CancelledError:
                return
            self.hangups += 1
            self.session = Session(connection, self.executor, self.clock, self.identity,
                                   on_joined=self._joined)
            end = yield self.session.run()
            self.session = None
            if isinstance(end, Refused):
                # Trying again would not help: say why and leave.
                self._exit(1, f"the driver at {self.address} refused this worker: "
                              f"{end.message}")
            elif isinstance(end, JobEnded):
                self.job_over(end.ok, end.message)
            elif isinstance(end, Lost) and end.unexpected:
                yield task.deferLater(self.clock, _PAUSE_AFTER_ERROR, lambda: None)
            # A lost connection fails the session from inside the protocol's
            # connectionLost, before ClientService hears of the loss: until
            # the reactor turns, whenConnected would hand back the dead
            # connection, and every call on it fails at once (a busy loop).
            yield task.deferLater(self.clock, 0, lambda: None)

    def _check_reachable(self):
        since = self.unreachable_since
        if since is not None and self.clock.seconds() - since > self.give_up:
            self._exit(1, f"cannot reach the driver at {self.address} for {self.give_up:g}s")

    def _exit(self, code, message):
        if self.done.called:
            return
        self.finished = True
        if self.watchdog.running:
            self.watchdog.stop()
        if code:
            log.error("{message}", message=message)
        self.done.callback(code)
        if self.on_exit is not None:
            self.on_exit(code, message)


def makeService(address, reactor=None, give_up=60.0, on_exit=None, secret=None, trust=None,
                shuffle=None):
    """
    A L{WorkerService} for the driver at C{address} (as
    L{client_endpoint} reads it, checking a TLS driver as C{trust} says),
    on the reactor.

    @raise ValueError: (or C{TypeError}, C{KeyError}) C{address} is no
        endpoint.
    @raise txmr.tls.TLSConfigError: TLS is asked for and cannot be had.
    """
    if reactor is None:
        from twisted.internet import reactor
    endpoint = client_endpoint(reactor, address, trust or Trust())
    return WorkerService(endpoint, reactor, give_up=give_up, on_exit=on_exit, secret=secret,
                         name=client_endpoint_string(address), shuffle=shuffle)
