"""
The job's state as the status page, C{/api/job}, the summary file and the
metrics see it: one L{JobView}, read from the coordinator, and its JSON.
"""

from dataclasses import dataclass

from txmr.core.scheduler import Scheduler


@dataclass(frozen=True)
class JobView:
    """
    What the driver shows of its job.  Times are the driver clock's,
    C{wall_started} is the wall clock's.
    """

    job: str
    uuid: str
    scheduler: Scheduler
    now: float
    started: float
    wall_started: float
    ended: float | None
    rtts: dict
    failure: str | None


def job_state(view):
    """
    Everything the status page shows, as JSON-ready data.  Times are
    seconds since the job started.
    """
    s = view.scheduler

    def since(t):
        return None if t is None else round(t - view.started, 3)

    tasks = [{
        "kind": str(task.kind), "index": task.index, "state": task.state.label,
        "failures": task.failures,
        "attempts": [{
            "id": a.id, "worker": a.worker, "state": str(a.state),
            "speculative": a.speculative, "start": since(a.started),
            "end": since(a.finished), "error": a.error,
        } for a in task.attempts],
    } for task in s.tasks()]
    workers = [{
        "id": w.id, "host": w.info.host, "pid": w.info.pid,
        "via": str(w.info.via), "lost": w.lost, "blacklisted": w.blacklisted,
        "last_seen_ago": round(view.now - w.last_seen, 3),
        "attempts": sorted(a.id for a in w.attempts),
        "succeeded": w.succeeded, "failed": len(w.failed_attempts),
        "rtt": view.rtts.get(w.id),
    } for w in s.workers.values()]
    return {
        "job": view.job, "uuid": view.uuid, "state": s.state.label,
        "elapsed": round((view.ended if view.ended is not None else view.now) - view.started, 3),
        "started_at": view.wall_started,
        "counts": s.counts(), "tasks": tasks, "workers": workers,
        "counters": s.summed_counters(),
        "failure": view.failure,
        "skipped_records": [[str(kind), index, record]
                            for kind, index, record in s.skipped_records],
    }
