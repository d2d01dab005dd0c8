"""
The driver's heartbeat: each period, ping every AMP worker, give up on
the silent ones, abandon attempts that ran too long, offer backup attempts
to idle workers, and log progress when it changed.  Run by a
C{TimerService} of the driver's service.
"""

from twisted.logger import Logger

from txmr.core.instructions import Cancel

log = Logger()


class Heartbeat:
    def __init__(self, coordinator):
        self.coordinator = coordinator
        self.timeout = coordinator.config.heartbeat_timeout
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
            if not peer.pinging:
                self._ping(worker, peer, now)
        for worker in c.scheduler.silent(now, self.timeout):
            why = (f"its lease of {worker.timeout:g}s ran out" if worker.timeout
                   else f"silent for more than {self.timeout:g}s")
            c.lose(worker.id, why)
        timed_out = c.scheduler.check_timeouts(now)
        for instruction in timed_out:
            if isinstance(instruction, Cancel):
                attempt = instruction.attempt
                log.warn("{attempt} timed out on worker {worker}", attempt=attempt,
                         worker=attempt.worker)
        self._log_progress()
        c.follow(timed_out)

    def _ping(self, worker, peer, sent):
        peer.pinging = True

        def answered(ok):
            peer.pinging = False
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
