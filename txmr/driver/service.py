"""
The driver daemon as a C{MultiService}: its listeners and its heartbeat
timer are child services around one L{Coordinator}.

The main listener serves AMP and HTTP on one port (L{SniffingFactory});
C{--http} adds an HTTP-only one.  The reactor (clock and endpoints) is
passed in, so tests run the whole driver on a C{task.Clock}.
"""

import shutil
import tempfile

from twisted.application import service
from twisted.application.internet import TimerService
from twisted.internet import defer, endpoints
from twisted.logger import Logger

from txmr.data.layout import write_atomically
from txmr.driver.connection import DriverFactory
from txmr.driver.coordinator import Coordinator
from txmr.driver.heartbeat import Heartbeat
from txmr.driver.resume import open_journal
from txmr.driver.web import SniffingFactory, site
from txmr.plan import plan_job
from txmr.tls import scheme

log = Logger()

class Listener(service.Service):
    """
    Listens on an endpoint while running.

    @ivar listening: fires with the port once it listens, or fails.
    """

    def __init__(self, reactor, description, factory):
        self.reactor = reactor
        self.description = description
        self.factory = factory
        self.port = None
        self.listening = None

    def startService(self):
        super().startService()
        endpoint = endpoints.serverFromString(self.reactor, self.description)
        self.listening = endpoint.listen(self.factory)
        self.listening.addCallback(self._listening)
        return self.listening

    def _listening(self, port):
        self.port = port
        return port

    def stopService(self):
        super().stopService()
        if self.port is not None:
            return defer.maybeDeferred(self.port.stopListening)

class DriverService(service.MultiService):
    """
    Runs one job for the workers that connect to it.

    @ivar done: fires with the exit code once the job is over and every
        connected worker was told.
    @ivar address: a client endpoint string of the main listener, once it
        listens.
    """

    def __init__(self, config, plan, reactor=None, on_exit=None, journal=None):
        super().__init__()
        if reactor is None:
            from twisted.internet import reactor
        self.config = config
        self.reactor = reactor
        self.coordinator = Coordinator(config, plan, reactor, on_exit, journal)
        self.done = self.coordinator.done
        self.address = None
        web = site(self.coordinator)
        amp = DriverFactory(self.coordinator)
        self.listener = Listener(reactor, config.listen, SniffingFactory(amp, web, reactor))
        self.listener.setServiceParent(self)
        self.http_listener = None
        if config.http:
            self.http_listener = Listener(reactor, config.http, web)
            self.http_listener.setServiceParent(self)
        self.heartbeat = TimerService(config.heartbeat, Heartbeat(self.coordinator))
        self.heartbeat.clock = reactor
        self.heartbeat.setServiceParent(self)

    @property
    def port(self):
        return self.listener.port

    def startService(self):
        """
        @return: a Deferred that fires once every listener listens.
        """
        plan = self.coordinator.plan
        log.info("txmr driver: job {job}, {maps} map and {reduces} reduce tasks",
                 job=plan.job.name, maps=len(plan.scheduler.maps),
                 reduces=len(plan.scheduler.reduces))
        self.coordinator.start()
        super().startService()
        waits = [self.listener.listening.addCallbacks(
            self._listening, self._cannot_listen, errbackArgs=(self.config.listen,))]
        if self.http_listener is not None:
            waits.append(self.http_listener.listening.addCallbacks(
                self._listening_http, self._cannot_listen, errbackArgs=(self.config.http,)))
        return defer.gatherResults(waits)

    def _listening(self, port):
        self.address = address_of(port.getHost(), scheme(self.config.listen))
        log.info("txmr driver listening on {address}", address=self.address)
        if self.config.port_file:
            write_atomically(self.config.port_file, self.address + "\n")
        if self.coordinator.scheduler.over:
            log.info("the journal says this job is already complete: nothing to run")
            self.coordinator.finish()

    def _listening_http(self, port):
        log.info("txmr driver serving HTTP on {address}",
                 address=address_of(port.getHost(), scheme(self.config.http)))

    def _cannot_listen(self, failure, where):
        log.critical("txmr driver cannot listen on {where}: {error}",
                     where=where, error=failure.getErrorMessage())
        self.coordinator.exit(1, f"cannot listen on {where}: {failure.getErrorMessage()}")

    def stopService(self):
        self.coordinator.stop()
        remove_scratch(self.config)
        return super().stopService()

def address_of(host, listened="tcp"):
    """
    A client endpoint string that reaches a listening port's address: an
    C{ssl:} one for a port that listens with TLS (C{listened}, the scheme
    of its server endpoint, is C{ssl}), so that a worker that reads it
    speaks TLS, and checks the certificate.
    """
    if hasattr(host, "port"):
        interface = host.host
        if interface in ("0.0.0.0", ""):
            interface = "127.0.0.1"
        elif interface == "::":
            interface = "::1"
        kind = "ssl" if listened == "ssl" else "tcp"
        return f"{kind}:host={interface.replace(':', chr(92) + ':')}:port={host.port}"
    name = host.name.decode() if isinstance(host.name, bytes) else host.name
    return f"unix:path={name}"

def makeService(config, reactor=None, on_exit=None):
    """
    The driver service for C{config}.

    @raise txmr.plan.ConfigError: before anything runs, if the job cannot
        start.
    """
    if reactor is None:
        from twisted.internet import reactor
    config.check()
    if not config.intermediate:
        # Shared-nothing: map output stays on the workers; the driver's own
        # files go in a directory of its own, removed when it stops.
        config.shared_nothing = True
        config.intermediate = tempfile.mkdtemp(prefix="txmr-driver-")
    try:
        plan = plan_job(config, clear=False)
    except BaseException:
        remove_scratch(config)
        raise
    if config.shared_nothing:
        plan.scheduler.shared_nothing = True
        # The seed's workers write their map output in the shared directory.
        plan.scheduler.seed_workers = False
    try:
        journal = open_journal(config, plan, reactor.seconds())
    except BaseException:
        plan.release()
        remove_scratch(config)
        raise
    return DriverService(config, plan, reactor, on_exit, journal)


def remove_scratch(config):
    """
    Remove a shared-nothing driver's own temporary directory.
    """
    if config.shared_nothing and config.intermediate:
        shutil.rmtree(config.intermediate, ignore_errors=True)
