"""
The driver's heartbeat: each period, ping every AMP worker, let the
coordinator give up on silent workers and abandon attempts that ran too
long, and log progress when it changed.  Run by a C{TimerService} of the
driver's service.
"""

from twisted.logger import Logger

log = Logger()


class Heartbeat:
    """
    One tick per period; a worker is pinged again only once its last ping
    was answered or timed out.
    """

    def __init__(self, coordinator):
        self.coordinator = coordinator
        self.timeout = coordinator.config.heartbeat_timeout
        self._pinging = set()
        self._last_progress = None

    def __call__(self):
        # An exception would stop the timer, and with it every heartbeat of
        # the job: log it and tick again next time.
        try:
            self.tick()
        except Exception:
            log.failure("heartbeat tick failed")

    def tick(self):
        c = self.coordinator
        if c.over:
            return
        now = c.now()
        for worker, peer in list(c.peers.items()):
            if worker not in self._pinging:
                self._ping(worker, peer, now)
        c.tick(self.timeout)
        self._log_progress()

    def _ping(self, worker, peer, sent):
        self._pinging.add(worker)

        def answered(ok):
            self._pinging.discard(worker)
            if ok:
                self.coordinator.seen(worker, rtt=self.coordinator.now() - sent)

        peer.ping().addCallback(answered)

    def _log_progress(self):
        progress = ", ".join(
            f"{kind} {c['finished']}/{sum(c.values())} finished, {c['running']} running"
            for kind, c in self.coordinator.scheduler.counts().items())
        if progress != self._last_progress:
            self._last_progress = progress
            log.info("progress: {progress}", progress=progress)
