"""
A worker's map output, kept on its own disk and served to reducers over
HTTP (shared-nothing: the MapReduce paper's design, where no directory is
shared between hosts).

L{MapOutputStore} holds what may be served: the committed map attempts of
the worker's current job, each added only once the driver answered its
L{TaskDone <txmr.protocol.TaskDone>} with C{committed}.  L{MapOutputResource}
answers C{GET /job/<uuid>/attempt/<id>/part/<r>} and nothing else: every
part of the path is matched whole against a pattern (32 hex digits, then
decimal integers), the job must be the current one and the attempt a
committed one, and the file's name is built from those integers alone, so
no text of a request ever reaches the file system.  With a secret, a request
must carry C{Authorization: Bearer TOKEN}, the token derived from the
secret and the job (L{txmr.data.fetch.fetch_token}; compared in constant
time): the secret itself never crosses the wire.
"""

import hmac
import os
import re
import shutil

from twisted.logger import Logger
from twisted.protocols.basic import FileSender
from twisted.web import resource, server

from txmr.data.fetch import fetch_token
from txmr.data.layout import attempt_name

log = Logger()

_JOB = re.compile(rb"[0-9a-f]{32}")
_NUMBER = re.compile(rb"[0-9]{1,12}")


class MapOutputStore:
    """
    Where this worker's map attempts write, and which of them it serves.

    @ivar root: the worker's work directory (L{None} until a task needs
        it).
    @ivar job: the current job's uuid (L{None} before the first Hello).
    """

    def __init__(self, root):
        self.root = root
        self.job = None
        # Committed attempt id -> (map index, number of partitions).
        self._committed = {}

    def directory(self, job):
        """
        The directory of one job's map output on this worker.
        """
        _check_job(job)
        if self.root is None:
            raise ValueError("this worker has no work directory yet")
        return os.path.join(self.root, f"job-{job}")

    def start_job(self, job):
        """
        The driver names its job (at each Hello): another job than the
        current one replaces it, and the old job's files are removed.
        """
        if job == self.job:
            return
        if self.job is not None:
            self.remove_job()
        _check_job(job)
        self.job = job
        self._committed = {}

    def committed(self, job, attempt, map_index, partitions):
        """
        The driver committed this map attempt: serve its files from now on.
        """
        if job == self.job:
            self._committed[attempt] = (map_index, partitions)

    def path(self, job, attempt, partition):
        """
        The file of partition C{partition} of committed attempt C{attempt} of
        job C{job}, or L{None} if this worker serves no such file.
        """
        held = self._committed.get(attempt) if job == self.job else None
        if held is None or self.root is None:
            return None
        map_index, partitions = held
        if not 0 <= partition < partitions:
            return None
        return attempt_name(os.path.join(self.directory(job), f"mr-{map_index}-{partition}"),
                            attempt)

    def remove_job(self):
        """
        Remove the current job's files (its job is over, or replaced).
        """
        if self.job is not None and self.root is not None:
            shutil.rmtree(self.directory(self.job), ignore_errors=True)
        self._committed = {}


def _check_job(job):
    if not isinstance(job, str) or not _JOB.fullmatch(job.encode("ascii", "replace")):
        raise ValueError(f"not a job's uuid: {job!r}")


class MapOutputResource(resource.Resource):
    """
    The worker's HTTP root: partitions of committed map attempts, by number.
    """

    isLeaf = True

    def __init__(self, store, secret=None):
        super().__init__()
        self.store = store
        self.secret = secret

    def _authorized(self, request):
        if not self.secret:
            return True
        job = self.store.job
        given = request.getHeader(b"authorization") or b""
        scheme, _, token = given.partition(b" ")
        return job is not None and scheme.lower() == b"bearer" and hmac.compare_digest(
            token.strip(), fetch_token(self.secret, job).encode("ascii"))

    def _refuse(self, request, code, why):
        request.setResponseCode(code)
        request.setHeader(b"content-type", b"text/plain; charset=utf-8")
        return why.encode("utf-8") + b"\n"

    def render_GET(self, request):
        if not self._authorized(request):
            request.setHeader(b"www-authenticate", b'Bearer realm="txmr"')
            return self._refuse(request, 401, "this worker needs the job's secret")
        parts = request.postpath
        if (len(parts) != 6 or parts[0] != b"job" or parts[2] != b"attempt"
                or parts[4] != b"part" or not _JOB.fullmatch(parts[1])
                or not _NUMBER.fullmatch(parts[3]) or not _NUMBER.fullmatch(parts[5])):
            return self._refuse(request, 404, "no such map output")
        path = self.store.path(parts[1].decode("ascii"), int(parts[3]), int(parts[5]))
        try:
            f = open(path, "rb") if path is not None else None
        except OSError:
            f = None
        if f is None:
            return self._refuse(request, 404, "no such committed map output on this worker")
        return _send(request, f)


def _send(request, f):
    """
    Stream an open file as the answer, a block at a time as the client
    takes it (a producer: a slow reducer holds no more of it in memory).
    """
    request.setHeader(b"content-type", b"application/octet-stream")
    request.setHeader(b"content-length", b"%d" % os.fstat(f.fileno()).st_size)
    gone = []
    request.notifyFinish().addErrback(lambda failure: gone.append(failure))

    def sent(result):
        f.close()
        if not gone:
            request.finish()

    FileSender().beginFileTransfer(f, request).addBoth(sent)
    return server.NOT_DONE_YET


def site(store, secret=None):
    """
    The twisted.web site of a worker's map output.
    """
    factory = server.Site(MapOutputResource(store, secret))
    factory.noisy = False
    # A reducer's request is one file: an idle connection is not kept.
    factory.timeOut = 60
    factory.displayTracebacks = False
    # Not an access log line per fetched partition.
    factory.log = lambda request: None
    return factory
