"""
The driver daemon's configuration: the job's (L{txmr.plan.JobConfig}),
plus where it listens, how it watches workers, and its secret.
"""

import hmac
from dataclasses import dataclass

from twisted.internet import endpoints

from txmr.plan import ConfigError, JobConfig


@dataclass
class DriverConfig(JobConfig):
    """
    Everything a driver is started with.

    @ivar poll: how long a worker's long poll is held before it is told to
        ask again.
    @ivar http_lease: how long an HTTP worker's task stays leased without a
        request bearing its C{worker-pid}.
    @ivar linger: how long the driver stays after a job, telling workers
        that arrive late that it is over.
    @ivar journal: where the driver journals the job (default: in the
        intermediate directory); see L{txmr.driver.journal}.
    @ivar fresh: start over even if the journal holds an earlier run.
    """

    listen: str = "tcp:5000:interface=127.0.0.1"
    heartbeat: float = 1.0
    heartbeat_timeout: float = 5.0
    port_file: str | None = None
    poll: float = 10.0
    http: str | None = None
    http_lease: float = 60.0
    summary_file: str | None = None
    secret: str | None = None
    linger: float = 5.0
    journal: str | None = None
    fresh: bool = False
    # No --intermediate: map output stays on the workers that wrote it
    # (L{txmr.worker.shuffle}); the driver keeps its own files (journal,
    # locks) in a temporary directory of its own.
    shared_nothing: bool = False

    def check(self):
        """
        @raise ConfigError: a daemon setting is wrong (the job's are checked
            by L{txmr.plan.plan_job}).
        """
        if self.heartbeat <= 0 or self.heartbeat_timeout <= self.heartbeat:
            raise ConfigError("--heartbeat must be positive and below --heartbeat-timeout")
        if self.linger < 0:
            raise ConfigError("--linger must not be negative")
        for flag, description in (("--listen", self.listen), ("--http", self.http)):
            if description:
                try:
                    endpoints.serverFromString(_NoReactor(), description)
                except (ValueError, TypeError, KeyError) as e:
                    raise ConfigError(
                        f"{flag} {description!r} is not a server endpoint: {e}") from e

    def authorizes(self, secret):
        """
        Whether C{secret} opens this driver: anything does when it has none.
        The compare takes the same time whatever the secret.
        """
        if not self.secret:
            return True
        return secret is not None and hmac.compare_digest(
            secret.encode("utf-8"), self.secret.encode("utf-8"))


class _NoReactor:
    """
    Enough of a reactor for serverFromString to parse a description: it
    builds the endpoint object without touching the reactor.
    """
