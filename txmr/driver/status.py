"""
The job's state as the status page, C{/api/job}, the summary file and the
metrics see it: one L{JobView}, read from the coordinator, and its JSON,
with the failed attempts and, in words, what the job waits for
(L{waiting_for}).
"""

from dataclasses import dataclass, field

from txmr.core.placement import failed_on
from txmr.core.scheduler import Scheduler
from txmr.core.states import AttemptState, JobState, TaskState, Via

# How many workers /api/job lists (the live ones first): the seed's HTTP
# workers join by naming a worker-pid, and thousands of them must not make
# a page that polls once a second heavy.
LIST_WORKERS = 200
# How many failed attempts it lists (the latest).
LIST_FAILURES = 100
# How many idle workers the sentence of what the job waits for looks at.
EXAMINE_WORKERS = 50
# Attempts that failed, by their task's fault or their worker's.
_FAILED = (AttemptState.FAILED, AttemptState.TIMED_OUT, AttemptState.LOST)


@dataclass(frozen=True)
class JobView:
    """
    What the driver shows of its job.  Times are the driver clock's,
    C{wall_started} is the wall clock's.  C{tracebacks}: the failed
    attempts' tracebacks, by attempt id.
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
    tracebacks: dict = field(default_factory=dict)


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
    listed = sorted(s.workers.values(),
                    key=lambda w: (w.lost, not w.attempts, -w.last_seen))[:LIST_WORKERS]
    workers = [{
        "id": w.id, "host": w.info.host, "pid": w.info.pid,
        "via": str(w.info.via), "lost": w.lost, "blacklisted": w.blacklisted,
        "last_seen_ago": round(view.now - w.last_seen, 3),
        "attempts": sorted(a.id for a in w.attempts),
        "succeeded": w.succeeded, "failed": len(w.failed_attempts),
        "rtt": view.rtts.get(w.id),
    } for w in listed]
    live = sum(1 for w in s.workers.values() if not w.lost)
    failed = sorted((a for t in s.tasks() for a in t.attempts if a.state in _FAILED),
                    key=lambda a: a.id)
    return {
        "job": view.job, "uuid": view.uuid, "state": s.state.label,
        "elapsed": round((view.ended if view.ended is not None else view.now) - view.started, 3),
        "started_at": view.wall_started,
        "counts": s.counts(), "tasks": tasks, "workers": workers,
        "worker_counts": {"live": live, "lost": len(s.workers) - live,
                          "listed": len(workers)},
        "counters": s.summed_counters(),
        "failure": view.failure,
        "waiting_for": waiting_for(s, view.now),
        "failures": [failure(a, since, a.id in view.tracebacks)
                     for a in failed[-LIST_FAILURES:]],
        "failures_total": len(failed),
        "skipped_records": [[str(kind), index, record]
                            for kind, index, record in s.skipped_records],
    }


def failure(attempt, since, has_traceback):
    """
    A failed (or lost, or timed-out) attempt, as the failures table shows it.
    """
    error = attempt.error
    if error is None and attempt.state is AttemptState.LOST:
        error = "its worker was lost"
    return {"task": f"{attempt.task.kind} {attempt.task.index}", "kind": str(attempt.task.kind),
            "index": attempt.task.index, "attempt": attempt.id, "worker": attempt.worker,
            "state": str(attempt.state), "error": error, "start": since(attempt.started),
            "end": since(attempt.finished), "traceback": has_traceback}


def attempt_state(view, attempt_id):
    """
    One attempt with its traceback, or L{None} if the job has no such
    attempt.
    """
    attempt = view.scheduler.attempts.get(attempt_id)
    if attempt is None:
        return None

    def since(t):
        return None if t is None else round(t - view.started, 3)

    out = failure(attempt, since, attempt_id in view.tracebacks)
    out["traceback"] = view.tracebacks.get(attempt_id, "")
    return out


def waiting_for(s, now):
    """
    What a running job waits for, in one sentence, read from the
    scheduler's state and its placement rules: L{None} once it is over.
    """
    if s.state is not JobState.RUNNING:
        return None
    ready = [t for t in s.tasks() if t.state is TaskState.READY]
    if ready:
        return _ready_waits(s, ready)
    running = [t for t in s.tasks() if t.state is TaskState.RUNNING]
    blocked = sum(1 for t in s.reduces if t.state is TaskState.BLOCKED)
    first = ", ".join(_running_text(t, now) for t in running[:3])
    more = f" and {len(running) - 3} more" if len(running) > 3 else ""
    text = f"waiting for {_tasks(running)} to finish: {first}{more}"
    if blocked:
        reduces = "the reduce task starts" if blocked == 1 else f"the {blocked} reduce tasks start"
        text += f"; {reduces} when every map has finished"
    return text


def _ready_waits(s, ready):
    """
    Ready tasks: why no worker runs them.
    """
    head = f"{_tasks(ready)} ready"
    live = s.live_workers()
    if not live:
        return f"{head}, waiting for a worker"
    # A worker that holds a task gets another only while the phase's tasks
    # are quick (Placement's look-ahead): then this is over in a moment.
    idle = [w for w in live if not w.attempts]
    busy = [w for w in live if w.attempts]
    if not idle:
        return f"{head}, waiting for a worker: {_who(busy)} busy"
    reasons = {}
    askers = []
    eligible = [w for w in live if not w.blacklisted]
    rules = _Rules(s, eligible)
    # txmr workers first; a sample of the seed's (any pid may be one).
    idle.sort(key=lambda w: w.info.via is Via.HTTP)
    for worker in idle[:EXAMINE_WORKERS]:
        for task in ready:
            why = rules.why_not(worker, task)
            if why is None:
                askers.append(worker)
                break
            tasks, workers = reasons.setdefault(why[0] if why[0] != "failed" else why, ({}, {}))
            tasks[task.key] = None
            workers[worker.id] = None
    if askers:
        http = [w for w in askers if w.info.via is Via.HTTP]
        if len(http) == len(askers):
            return (f"{head}, waiting for {_who(http)} to ask for them (a seed worker asks "
                    f"when it wants; its lease runs out if it does not)")
        ask = "it asks" if len(askers) == 1 else "they ask"
        return f"{head}, to be handed to {_who(askers)} as {ask}"
    why = "; ".join(_reason(key, list(tasks), list(workers), len(ready))
                    for key, (tasks, workers) in sorted(reasons.items(), key=str))
    then = f"waiting for {_who(busy)} to finish" if busy else "waiting for another worker"
    if busy and any(w.info.via is Via.HTTP for w in busy):
        then += " (a seed worker's task gets a backup once it is slow)"
    no = "no worker" if len(idle) == len(live) else "no idle worker"
    return f"{head}, {no} may take {'it' if len(ready) == 1 else 'them'}: {why}; {then}"


def _reason(key, tasks, workers, n_ready):
    if key[0] == "failed":
        return f"{_which(tasks, n_ready)} failed on {key[1]}"
    ids = _ids(workers)
    one = len(workers) == 1
    if key == "blacklisted":
        return f"{ids} {'is' if one else 'are'} blacklisted"
    return (f"{ids} {'is a seed worker' if one else 'are seed workers'} (running only word "
            f"count maps of whole files that no other task reads)")


class _Rules:
    """
    The scheduler's rules (L{Scheduler.assign}, L{Placement}) as reasons
    why an idle worker would not be handed a ready task.
    """

    def __init__(self, scheduler, eligible):
        self.s = scheduler
        self.eligible = eligible
        self._seed_can_run = {}

    def can_run(self, worker, task):
        if worker.info.via is not Via.HTTP:
            return True
        # The same for every seed worker, and a reduce's answer costs a look
        # at every map: asked once per task.
        if task.key not in self._seed_can_run:
            self._seed_can_run[task.key] = self.s.can_run(worker.id, task)
        return self._seed_can_run[task.key]

    def why_not(self, worker, task):
        """
        L{None} if the worker may take the task; else C{"blacklisted"},
        C{"seed"}, or C{("failed", worker id)}.
        """
        def others():
            return (w for w in self.eligible if w is not worker)

        if worker.blacklisted and any(w.info.via is not Via.HTTP for w in others()):
            return "blacklisted"
        if not self.can_run(worker, task):
            return "seed"
        if failed_on(task, worker) and not all(failed_on(task, w) for w in others()
                                               if self.can_run(w, task)):
            return ("failed", worker.id)
        return None


def _which(keys, n_ready):
    if len(keys) == n_ready:
        return {1: "it", 2: "both"}.get(n_ready, "all")
    return _ids([f"{kind} {index}" for kind, index in sorted(keys)])


def _running_text(task, now):
    attempts = task.running_attempts()
    where = " and ".join(f"{a.worker} for {a.duration(now):.0f} s" for a in attempts)
    return f"{task.kind} {task.index} on {where}"


def _who(workers):
    return _ids([w.id for w in workers])


def _ids(ids):
    more = f" and {len(ids) - 5} more" if len(ids) > 5 else ""
    return ", ".join(ids[:5]) + more


def _tasks(tasks):
    kinds = sorted({str(t.kind) for t in tasks})
    return _plural(len(tasks), f"{kinds[0]} task" if len(kinds) == 1 else "task")


def _plural(n, noun):
    return f"{n} {noun}{'' if n == 1 else 's'}"
