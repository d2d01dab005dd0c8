"""
The driver's HTTP side, served by twisted.web: the seed system's task API
(so its workers and curl sessions keep working), a live status page, its
JSON, and Prometheus metrics.

AMP and HTTP share the driver's port: L{SniffingFactory} looks at the first
byte of each connection.  An AMP box starts with the zero byte of its first
key's length; an HTTP request starts with a letter.
"""

import json
import os
from importlib import resources

from twisted.internet.protocol import Factory, Protocol
from twisted.web import resource, server

from txmr import scheduler as sched
from txmr.scheduler import SchedulingError, UnknownTask

# The seed's names of task kinds, in its URLs and JSON.
SEED_KINDS = {"mapper": sched.MAP, "reducer": sched.REDUCE}
SEED_NAMES = {kind: name for name, kind in SEED_KINDS.items()}


class Sniffer(Protocol):
    """
    Waits for a connection's first byte, then hands the connection to an
    AMP or an HTTP protocol, and relays to it from then on.
    """

    def __init__(self, factory):
        self.factory = factory
        self.inner = None

    def dataReceived(self, data):
        if self.inner is None:
            if not data:
                return
            build = self.factory.amp if data[:1] == b"\x00" else self.factory.http
            self.inner = build.buildProtocol(self.transport.getPeer())
            if self.inner is None:
                self.transport.loseConnection()
                return
            self.transport.protocol = self.inner
            self.inner.makeConnection(self.transport)
        self.inner.dataReceived(data)

    def connectionLost(self, reason):
        if self.inner is not None:
            self.inner.connectionLost(reason)


class SniffingFactory(Factory):
    """
    Serves AMP and HTTP on one port.
    """

    def __init__(self, amp_factory, http_factory):
        self.amp = amp_factory
        self.http = http_factory

    def buildProtocol(self, addr):
        return Sniffer(self)

    def doStart(self):
        self.amp.doStart()
        self.http.doStart()

    def doStop(self):
        self.amp.doStop()
        self.http.doStop()


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
    The seed's API under C{/task}: C{PUT /task},
    C{GET|POST /task/{type}/{id}/status}.  Every request must carry a
    C{worker-pid} header.
    """

    isLeaf = True

    def __init__(self, driver):
        super().__init__()
        self.driver = driver

    def render(self, request):
        pid = request.getHeader(b"worker-pid")
        pid = pid.decode("utf-8", "replace").strip() if pid else ""
        if not pid:
            return _text(request, "a worker-pid header is required", 400)
        path = [p.decode("utf-8", "replace") for p in request.postpath if p]
        method = request.method
        if not path and method == b"PUT":
            return self.put_task(request, pid)
        if len(path) == 3 and path[2] == "status" and method in (b"GET", b"POST"):
            kind = SEED_KINDS.get(path[0])
            try:
                index = int(path[1])
                task = self.driver.scheduler.task(kind, index)
            except (ValueError, UnknownTask):
                return _text(request, f"no task {path[0]}/{path[1]}", 404)
            if method == b"GET":
                self.driver.http_worker(pid)
                return _json(request, {"status": task.state})
            return self.post_status(request, pid, task)
        return _text(request, "not found", 404)

    def _job(self, status):
        return {"job_uuid": self.driver.job_uuid, "job_status": status}

    def put_task(self, request, pid):
        attempt = self.driver.http_assign(pid)
        scheduler = self.driver.scheduler
        if attempt is None:
            if scheduler.state == sched.JOB_RUNNING:
                return _json(request, self._job(sched.JOB_RUNNING))
            return _json(request, self._job(scheduler.state))
        task = attempt.task
        config = self.driver.config
        answer = dict(self._job(sched.JOB_RUNNING), id=task.index, status=task.state,
                      type=SEED_NAMES[task.kind], attempt=attempt.id)
        if task.kind == sched.MAP:
            # The seed's workers read whole files: list each file in the one
            # task that holds its first byte.  `splits` is the exact work.
            names = [name for name, start, _ in task.inputs if start == 0]
            answer.update(i_path=[os.path.join(config.input, n) for n in names],
                          splits=task.inputs, o_path=config.intermediate,
                          n_buckets=len(scheduler.reduces))
        else:
            answer.update(i_path=config.intermediate, o_path=config.output,
                          n_mappers=len(scheduler.maps))
        return _json(request, answer)

    def post_status(self, request, pid, task):
        try:
            body = json.loads(request.content.read() or b"null")
            status = body["status"]
        except (ValueError, TypeError, KeyError):
            return _text(request, 'the body must be JSON like {"status": 4}', 400)
        if status != sched.FINISHED:
            return _text(request, f"only status {sched.FINISHED} (FINISHED) may be posted", 400)
        try:
            self.driver.http_finished(pid, task.kind, task.index)
        except SchedulingError as e:
            return _text(request, str(e), 400)
        return _text(request, "Ok", 200)


class JobAPI(resource.Resource):
    """
    C{GET /api/job}: the job's state as JSON, for the page and for tools.
    """

    isLeaf = True

    def __init__(self, driver):
        super().__init__()
        self.driver = driver

    def render_GET(self, request):
        request.setHeader(b"cache-control", b"no-store")
        return _json(request, job_state(self.driver))


def job_state(driver):
    """
    Everything the status page shows, as JSON-ready data.  Times are
    seconds since the job started.
    """
    s = driver.scheduler
    now = driver.now()
    start = driver.started if driver.started is not None else now

    def since(t):
        return None if t is None else round(t - start, 3)

    tasks = []
    for task in s.tasks():
        tasks.append({
            "kind": task.kind, "index": task.index,
            "state": sched.STATE_NAMES[task.state],
            "failures": task.failures,
            "attempts": [{
                "id": a.id, "worker": a.worker, "state": a.state,
                "speculative": a.speculative, "start": since(a.started),
                "end": since(a.finished), "error": a.error,
            } for a in task.attempts],
        })
    workers = []
    for w in s.workers.values():
        running = sorted(a.id for a in w.attempts)
        workers.append({
            "id": w.id, "host": w.info.get("host"), "pid": w.info.get("pid"),
            "via": w.info.get("via", "amp"), "lost": w.lost, "blacklisted": w.blacklisted,
            "last_seen_ago": round(now - w.last_seen, 3), "attempts": running,
            "succeeded": w.succeeded, "failed": len(w.failed_attempts),
            "rtt": driver.rtts.get(w.id),
        })
    state = {sched.JOB_RUNNING: "running", sched.JOB_FINISHED: "finished",
             sched.JOB_FAILED: "failed"}[s.state]
    return {
        "job": driver.job.name, "uuid": driver.job_uuid, "state": state,
        "elapsed": round((driver.ended if driver.ended is not None else now) - start, 3),
        "started_at": driver.wall_started,
        "counts": s.counts(), "tasks": tasks, "workers": workers,
        "counters": s.summed_counters(),
        "failure": driver.failure_message() if s.failure else None,
        "skipped_records": [list(r) for r in s.skipped_records],
    }


class StatusPage(resource.Resource):
    """
    C{GET /}: one self-contained page that polls C{/api/job}.
    """

    isLeaf = True

    def render_GET(self, request):
        request.setHeader(b"content-type", b"text/html; charset=utf-8")
        return resources.files("txmr").joinpath("status.html").read_bytes()


class Guarded(resource.Resource):
    """
    With a driver secret, every request must carry it: C{Authorization:
    Bearer SECRET}, or C{?token=SECRET} (for a browser on the status page).
    """

    def __init__(self, driver, root):
        super().__init__()
        self.driver = driver
        self.root = root

    def getChildWithDefault(self, name, request):
        if self.driver.config.secret:
            header = request.getHeader(b"authorization") or b""
            token = header[7:] if header.lower().startswith(b"bearer ") else None
            token = token or (request.args.get(b"token") or [None])[0]
            if not self.driver.authorized(token.decode("utf-8", "replace") if token else None):
                return resource.ErrorPage(401, "Unauthorized",
                                          "this driver needs its secret: "
                                          "Authorization: Bearer SECRET, or ?token=SECRET")
        request.prepath.pop()
        request.postpath.insert(0, name)
        return resource.getChildForRequest(self.root, request)


def site(driver):
    """
    The driver's web site.
    """
    from txmr.metrics import MetricsPage

    root = resource.Resource()
    root.putChild(b"", StatusPage())
    root.putChild(b"task", SeedTaskAPI(driver))
    api = resource.Resource()
    api.putChild(b"job", JobAPI(driver))
    root.putChild(b"api", api)
    root.putChild(b"metrics", MetricsPage(driver))
    web = server.Site(Guarded(driver, root))
    web.displayTracebacks = False
    return web
