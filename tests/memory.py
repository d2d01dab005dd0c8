"""
A whole driver service in memory: its reactor is a C{MemoryReactorClock},
so its listeners record their factories instead of opening ports, time
moves only when a test says so, and each connection is a pair of protocols
joined by C{twisted.test.iosim} (as Twisted's own C{trial/_dist} tests do).
"""

import os

from twisted.internet import defer
from twisted.internet.testing import MemoryReactorClock
from twisted.protocols import amp
from twisted.test import iosim

from txmr import protocol
from txmr.core.spec import TaskSpec
from txmr.data.run import run_task
from txmr.driver.config import DriverConfig
from txmr.driver.service import makeService
from txmr.job import load_job


class FakeWorker(amp.AMP):
    """
    A raw AMP client that answers pings and remembers what it was told.

    @ivar hold_job_over: while true, L{protocol.JobOver} is acknowledged
        only when the test fires C{heard}.
    """

    hold_job_over = False

    def __init__(self):
        super().__init__()
        self.cancelled = []
        self.over = []
        self.pings = 0
        self.heard = None

    @protocol.Ping.responder
    def ping(self):
        self.pings += 1
        return {}

    @protocol.Cancel.responder
    def cancel(self, attempt):
        self.cancelled.append(attempt)
        return {}

    @protocol.JobOver.responder
    def job_over(self, ok, message):
        self.over.append((ok, message))
        if self.hold_job_over:
            self.heard = defer.Deferred()
            return self.heard.addCallback(lambda _: {})
        return {}


class Silent(FakeWorker):
    """
    A worker whose process froze: it never answers a ping.
    """

    @protocol.Ping.responder
    def ping(self):
        return defer.Deferred()


def write_input(directory, files):
    os.makedirs(directory)
    for i in range(files):
        with open(os.path.join(directory, f"in-{i}.txt"), "w") as f:
            f.write(f"the quick fox {i}\nthe lazy dog\n")


class MemoryDriverMixin:
    """
    For a TestCase: C{self.driver}, a started driver service in memory, and
    L{connect} to join it.  Set C{maps}, C{files}, and C{options} (more
    L{DriverConfig} fields) on the class.
    """

    maps = 2
    files = 2
    options = {}

    def setUp(self):
        base = self.mktemp()
        write_input(os.path.join(base, "in"), self.files)
        settings = dict(
            input=os.path.join(base, "in"), intermediate=os.path.join(base, "mid"),
            output=os.path.join(base, "out"), mappers=self.maps, reducers=1,
            listen="tcp:0:interface=127.0.0.1", heartbeat=1, heartbeat_timeout=5,
            poll=30, max_attempts=2, linger=0)
        settings.update(self.options)
        self.config = DriverConfig(**settings)
        self.reactor = MemoryReactorClock()
        self.exits = []
        self.driver = makeService(self.config, self.reactor,
                                  on_exit=lambda code, message: self.exits.append(code))
        self.coordinator = self.driver.coordinator
        self.scheduler = self.coordinator.scheduler
        self.job = load_job(self.config.job)
        self.driver.startService()
        self.addCleanup(self.driver.stopService)
        self.factory = self.reactor.tcpServers[0][1]
        self.pumps = []

    def connect(self, kind=FakeWorker, hello=True, secret=None):
        """
        A new connection to the driver's port, as C{kind}; with C{hello},
        joined as a worker (its id in C{client.worker}).
        """
        server = self.factory.buildProtocol(None)
        client = kind()
        pump = iosim.connect(server, iosim.makeFakeServer(server),
                             client, iosim.makeFakeClient(client), greet=False)
        self.pumps.append(pump)
        client.server_transport = pump.serverIO
        if hello:
            answer = self.successResultOf(self.hello(client, secret))
            client.worker = answer["worker"]
            client.job = answer["job"]
        return client

    def hello(self, client, secret=None):
        """
        Say Hello as a worker does: with a secret, after a Challenge, with
        the proof of the secret; a Deferred of the answer, whose C{proof}
        was checked.
        """
        nonce = proof = driver_nonce = None
        if secret is not None:
            driver_nonce = self.successResultOf(self.call(client, protocol.Challenge))["nonce"]
            nonce = protocol.new_nonce()
            proof = protocol.worker_proof(secret, driver_nonce, nonce)

        def check(answer):
            if secret is not None:
                assert answer["proof"] == protocol.driver_proof(secret, driver_nonce, nonce)
            return answer

        return self.call(client, protocol.Hello, version=protocol.PROTOCOL_VERSION, host="test",
                         pid=os.getpid(), nonce=nonce, proof=proof).addCallback(check)

    def flush(self):
        """
        Deliver everything written on every connection, until quiet.
        """
        while any([pump.flush() for pump in self.pumps]):
            pass

    def call(self, client, command, **kwargs):
        """
        Send a command and deliver it; a Deferred of the answer.  (An AMP
        client drops its connection when an error answer arrives at a
        Deferred with no errback yet: this one has one.)
        """
        answer = defer.Deferred()
        client.callRemote(command, **kwargs).chainDeferred(answer)
        self.flush()
        return answer

    def advance(self, seconds, step=1.0):
        """
        Let time pass, a heartbeat at a time, delivering what is sent.
        """
        while seconds > 0:
            self.reactor.advance(min(step, seconds))
            seconds -= step
            self.flush()

    def run_job(self, client):
        """
        Run every task the driver hands C{client}, each report asking for
        the next, until it answers something else; return that answer.
        """
        answer = self.successResultOf(self.call(client, protocol.GetTask))
        while answer["action"] == "run":
            answer = self.successResultOf(
                self.run_and_report(client, TaskSpec.from_json(answer["task"]), ask=True))
        return answer

    def run_and_report(self, client, spec, ask=False):
        counters = run_task(self.job, spec)
        return self.call(client, protocol.TaskDone, kind=spec.kind, index=spec.index,
                         attempt=spec.attempt, counters=counters, ask=ask)
