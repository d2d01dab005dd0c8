"""
The driver daemon (C{twistd txmr-driver}): one job's scheduler, served to
the workers that connect.

  - L{config}: the daemon's configuration on top of the job's.
  - L{service}: the daemon as a C{MultiService}: listeners, a heartbeat
    timer, and the coordinator.
  - L{coordinator}: the one interpreter of the scheduler's instructions:
    worker registry, hand-outs, commits, cancels.  L{polls} holds the
    workers' long polls; L{ending} the end of the job.
  - L{connection} (AMP) and L{seed} (the seed's HTTP API): thin front doors
    into the coordinator.
  - L{heartbeat}: pings, silent workers, timeouts, progress.
  - L{web}, L{status}, L{metrics}: the HTTP site, the job's state as JSON,
    and Prometheus metrics, all reading one L{status.JobView}.
"""
