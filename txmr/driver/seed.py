"""
The seed system's HTTP task API, so its workers and curl sessions keep
working: C{PUT /task}, C{GET|POST /task/{type}/{id}/status}.

A front door like L{txmr.driver.connection}, thin on purpose: an HTTP
worker is a worker session of the coordinator, named by its C{worker-pid}
header; every request renews its lease, and one whose lease ran out starts
anew.
"""

import json
import os

from twisted.logger import Logger
from twisted.web import resource, server

from txmr.core.errors import SchedulingError, UnknownTask
from txmr.core.model import WorkerInfo
from txmr.core.states import JobState, Kind, TaskState, Via

log = Logger()

# The longest worker-pid accepted: it is kept, shown and logged.
MAX_PID = 100

# The seed's names of task kinds, in its URLs and JSON.
SEED_NAMES = {Kind.MAP: "mapper", Kind.REDUCE: "reducer"}
# In its URLs also as its workers write them on Python 3.11 and later, where
# their str-mixin Enum formats as its qualified name.
SEED_KINDS = {name: kind for kind, name in SEED_NAMES.items()}
SEED_KINDS.update({f"TaskType.{name}": kind for kind, name in SEED_NAMES.items()})


class SeedWorkers:
    """
    The sessions of the seed's HTTP workers, by C{worker-pid}.

    Only a request for a task makes a session (a status question or report
    renews one): anyone may name a new C{worker-pid}, and each live session
    is a worker the driver waits for at the end (at most a lease).  Sessions
    whose lease ran out are pruned as new ones come (L{prune}): thousands of
    pids that asked once leave nothing behind.
    """

    # Prune when the sessions double, and not below this many.
    PRUNE_FROM = 64

    def __init__(self, coordinator, lease):
        self.coordinator = coordinator
        self.lease = lease
        self._sessions = {}
        self._warned = set()
        self._prune_at = self.PRUNE_FROM

    def __len__(self):
        return len(self._sessions)

    def worker(self, pid):
        """
        The live session of this C{worker-pid}, renewed; a new one if its
        lease ran out (or it never had one).
        """
        worker = self.renew(pid)
        if worker is not None:
            return worker
        expired = self._sessions.get(pid)
        if expired is not None:
            self._warned.discard(expired)
            self.coordinator.scheduler.forget(expired)
        worker = self.coordinator.join(WorkerInfo(host="http", pid=pid, via=Via.HTTP),
                                       slots=None, timeout=self.lease)
        self._sessions[pid] = worker
        log.info("HTTP worker {worker} joined (worker-pid {pid})", worker=worker, pid=ascii(pid))
        if len(self._sessions) >= self._prune_at:
            self.prune()
        return worker

    def prune(self):
        """
        Forget the sessions whose lease ran out (their tasks were given back
        then); the scheduler forgets those that never ran an attempt.  Those
        that did stay in the job's history, which the attempts bound.
        """
        scheduler = self.coordinator.scheduler
        for pid, worker in list(self._sessions.items()):
            if not self.coordinator.is_live(worker):
                del self._sessions[pid]
                self._warned.discard(worker)
                scheduler.forget(worker)
        self._prune_at = max(self.PRUNE_FROM, 2 * len(self._sessions))

    def renew(self, pid):
        """
        The live session of this C{worker-pid}, renewed, or L{None}.
        """
        worker = self._sessions.get(pid)
        if worker is not None and self.coordinator.is_live(worker):
            self.coordinator.seen(worker)
            return worker
        return None

    def assign(self, pid):
        """
        A task for an HTTP worker: the running attempt, or L{None}.  Once the
        job is over the worker is told so by the caller, and the driver
        counts it as told.
        """
        if self.coordinator.scheduler.over:
            # No new session once the job is over: only a live one is waited for.
            worker = self.renew(pid)
            if worker is not None:
                self.coordinator.http_told(worker)
            return None
        worker = self.worker(pid)
        attempt = self.coordinator.assign(worker)
        if attempt is None and worker not in self._warned:
            stranded = self.coordinator.scheduler.ready_but_not_for(worker)
            if stranded:
                self._warned.add(worker)
                log.warn("HTTP worker {worker} can run none of the {n} ready tasks: the seed's "
                         "workers run word count, over whole files no other task reads; a txmr "
                         "worker (twistd txmr-worker) can run them", worker=worker, n=stranded)
        return attempt

    def finished(self, pid, task):
        """
        @raise SchedulingError: the task is not RUNNING for this worker (a
            pid without a live session holds no task, and gets none by
            reporting).
        """
        worker = self.renew(pid)
        if worker is None:
            raise SchedulingError(f"{task} is not RUNNING for worker-pid {pid} (it has no live "
                                  f"session: ask for a task with PUT /task)")
        self.coordinator.finished_in_place(worker, task.kind, task.index,
                                           who=f"worker-pid {pid}")


def _json(request, value, code=200):
    request.setResponseCode(code)
    request.setHeader(b"content-type", b"application/json")
    return json.dumps(value).encode() + b"\n"


def _text(request, text, code):
    request.setResponseCode(code)
    request.setHeader(b"content-type", b"text/plain; charset=utf-8")
    return text.encode() + b"\n"


class SeedTaskAPI(resource.Resource):
    """
    The seed's API under C{/task}.  Every request must carry a
    C{worker-pid} header.
    """

    isLeaf = True

    def __init__(self, coordinator, workers):
        super().__init__()
        self.coordinator = coordinator
        self.workers = workers

    def render(self, request):
        pid = request.getHeader(b"worker-pid")
        pid = pid.decode("utf-8", "replace").strip() if pid else ""
        if not pid:
            return _text(request, "a worker-pid header is required", 400)
        if len(pid) > MAX_PID:
            return _text(request, f"a worker-pid header has at most {MAX_PID} characters", 400)
        path = [p.decode("utf-8", "replace") for p in request.postpath if p]
        method = request.method
        if not path and method == b"PUT":
            return self.put_task(request, pid)
        if len(path) == 3 and path[2] == "status" and method in (b"GET", b"POST"):
            try:
                task = self.coordinator.scheduler.task(SEED_KINDS.get(path[0]), int(path[1]))
            except (ValueError, UnknownTask):
                return _text(request, f"no task {path[0]}/{path[1]}", 404)
            if method == b"GET":
                # Only task requests make a session; a status question
                # renews one, if it has one.
                self.workers.renew(pid)
                return _json(request, {"status": task.state})
            return self.post_status(request, pid, task)
        return _text(request, "not found", 404)

    def _job(self, status):
        return {"job_uuid": self.coordinator.job_uuid, "job_status": status}

    # A worker told "no task now" asks again at once (the seed's own worker
    # does, thousands of times a second, each request a line in the access
    # log): that answer waits this long, asking again at its end, so that
    # no client keeps the reactor busy.
    IDLE_ANSWER_AFTER = 1.0

    def put_task(self, request, pid, waited=False):
        attempt = self.workers.assign(pid)
        scheduler = self.coordinator.scheduler
        if attempt is None:
            if waited or scheduler.over:
                return _json(request, self._job(scheduler.state))
            call = self.coordinator.clock.callLater(self.IDLE_ANSWER_AFTER, self._answer_later,
                                                    request, pid)
            request.notifyFinish().addErrback(lambda _: call.active() and call.cancel())
            return server.NOT_DONE_YET
        task = attempt.task
        config = self.coordinator.config
        # The worker writes under final names, in a directory of this
        # attempt's own: the driver moves the files into place when the
        # attempt is committed, so a worker whose lease ran out never
        # writes over a committed file.
        o_path = self.coordinator.files.seed_directory(attempt)
        if o_path is None:
            self.coordinator.task_failed(attempt.worker, task.kind, task.index, attempt.id,
                                         "cannot make the attempt's directory", "", None)
            return _json(request, self._job(scheduler.state))
        answer = dict(self._job(JobState.RUNNING), id=task.index, status=task.state,
                      type=SEED_NAMES[task.kind], attempt=attempt.id, o_path=o_path)
        if task.kind is Kind.MAP:
            # The seed's workers read whole files: list each file in the one
            # task that holds its first byte.  `splits` is the exact work.
            names = [name for name, start, _ in task.inputs if start == 0]
            answer.update(i_path=[os.path.join(config.input, n) for n in names],
                          splits=task.inputs, n_buckets=len(scheduler.reduces))
        else:
            answer.update(i_path=config.intermediate, n_mappers=len(scheduler.maps))
        return _json(request, answer)

    def _answer_later(self, request, pid):
        request.write(self.put_task(request, pid, waited=True))
        request.finish()

    def post_status(self, request, pid, task):
        try:
            body = json.loads(request.content.read(4096) or b"null")
            status = body["status"]
        except (ValueError, TypeError, KeyError, RecursionError):
            return _text(request, 'the body must be JSON like {"status": 4}', 400)
        if status != TaskState.FINISHED:
            return _text(request, f"only status {TaskState.FINISHED:d} (FINISHED) may be posted",
                         400)
        try:
            self.workers.finished(pid, task)
        except SchedulingError as e:
            return _text(request, str(e), 400)
        return _text(request, "Ok", 200)
