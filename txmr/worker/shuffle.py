"""
A worker's part in a shared-nothing job: it keeps the map output it wrote
under its work directory, serves it over HTTP (L{txmr.worker.serve}) from
a listener of its own, and has its reduce attempts fetch their partition
of every map (L{txmr.data.fetch}) before they run.

The listener starts before the worker's first L{Hello <txmr.protocol.Hello>}
(which tells the driver its URL): on C{--serve ENDPOINT}, or by default on
an ephemeral port of the address the worker uses to reach its driver.
C{--advertise HOST} names the worker where that address is not one other
workers can reach.

A spec for such a job carries C{shuffle} (L{txmr.core.spec.TaskSpec}):
the job's uuid, and for a reduce, for each map, its committed attempt, the
URL of the worker that holds it, and the checksum and size of the
partition.  Everything here except the listener runs in the task thread.
"""

import os
import shutil
import ssl
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import replace

from twisted.internet import defer, endpoints
from twisted.logger import Logger

from txmr.core.counters import add
from txmr.core.states import Kind
from txmr.data.fetch import FetchFailed, Source, checksum, fetch
from txmr.data.layout import Layout
from txmr.worker.serve import MapOutputStore, site

log = Logger()

# Partitions a reduce attempt fetches at once.
FETCHES = 4


class NotServing(Exception):
    """
    A shared-nothing task reached a worker that serves no map output.
    """


class Shuffle:
    """
    The work directory, the map output server, and the fetches of one worker.

    @param work_dir: where map output and fetched partitions go (L{None}: a
        fresh temporary directory, made by the first task that needs it and
        removed by L{close}; a worker of shared-directory jobs makes none).
    @param serve: the server endpoint to listen on (L{None}: an ephemeral
        TCP port on the address used to reach the driver).
    @param advertise: the host name or address others reach it by.
    @param secret: the job's secret, required of and sent with requests.
    @param ca_file: the CAs that an https peer's certificate must chain to.
    @param insecure_tls: check no https peer's certificate.
    """

    def __init__(self, reactor, work_dir=None, serve=None, advertise=None, secret=None,
                 ca_file=None, insecure_tls=False):
        self.reactor = reactor
        self.own_root = work_dir is None
        self.root = work_dir
        self.serve = serve
        self.advertise = advertise
        self.secret = secret
        self.store = MapOutputStore(None)
        self.url = None
        self.port = None
        self._listening = None
        self.ssl_context = None
        if ca_file or insecure_tls:
            self.ssl_context = ssl.create_default_context(cafile=ca_file)
            if insecure_tls:
                self.ssl_context.check_hostname = False
                self.ssl_context.verify_mode = ssl.CERT_NONE

    # -- the listener (reactor thread) ---------------------------------------

    def listen(self, connection):
        """
        Listen, once: a Deferred of this worker's URL (or of L{None}, logged,
        when it cannot listen: it then takes part in shared-directory jobs
        only, as the driver will find).
        """
        if self._listening is None:
            self._listening = self._listen(connection)
        return self._listening

    @defer.inlineCallbacks
    def _listen(self, connection):
        local = connection.transport.getHost()
        host = getattr(local, "host", None) or "127.0.0.1"
        description = self.serve or f"tcp:0:interface={host.replace(':', chr(92) + ':')}"
        try:
            endpoint = endpoints.serverFromString(self.reactor, description)
            self.port = yield endpoint.listen(site(self.store, self.secret))
        except Exception as e:
            log.error("cannot serve map output on {where}: {error}", where=description,
                      error=e)
            return None
        address = self.port.getHost()
        name = self.advertise or (address.host if address.host not in ("0.0.0.0", "::")
                                  else host)
        if ":" in name:
            name = f"[{name}]"
        scheme = "https" if description.startswith(("ssl:", "tls:")) else "http"
        self.url = f"{scheme}://{name}:{address.port}"
        log.info("serving map output at {url}", url=self.url)
        return self.url

    def _work_dir(self):
        """
        The work directory, made when first needed (in the task thread).
        """
        if self.store.root is None:
            if self.root is None:
                self.root = tempfile.mkdtemp(prefix="txmr-worker-")
            os.makedirs(self.root, exist_ok=True)
            self.store.root = self.root
        return self.root

    def close(self):
        """
        The worker stops: stop listening, and remove the job's files (and
        the work directory, if it made it).
        """
        if self.port is not None:
            self.port.stopListening()
            self.port = None
        self.store.remove_job()
        if self.own_root and self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)

    # -- attempts (task thread) ----------------------------------------------

    def run(self, job, spec, cancel, run_task):
        """
        Run a shared-nothing attempt: a map writes under this worker's work
        directory, and returns its partitions' checksums and sizes; a reduce
        first fetches its partition of every map.

        @return: C{(counters, output)}, C{output} a map's C{{"sums": [...],
            "sizes": [...]}}, or L{None}.
        @raise FetchFailed: a map's partition cannot be had.
        """
        if self.url is None:
            raise NotServing("this worker serves no map output (it could not listen), so it "
                             "cannot run tasks of a job without a shared intermediate directory")
        uuid = spec.shuffle["job"]
        if uuid != self.store.job:
            raise NotServing(f"the task belongs to job {uuid}, not to this worker's current job")
        self._work_dir()
        directory = self.store.directory(uuid)
        os.makedirs(directory, exist_ok=True)
        if spec.kind is Kind.MAP:
            return self._map(job, replace(spec, intermediate=directory), cancel, run_task)
        return self._reduce(job, spec, directory, cancel, run_task)

    def _map(self, job, spec, cancel, run_task):
        counters = run_task(job, spec, cancel)
        sums, sizes = [], []
        for temporary, _ in Layout.of(spec).files(spec.kind, spec.index, spec.attempt):
            sums.append(checksum(temporary))
            sizes.append(os.path.getsize(temporary))
        return counters, {"sums": sums, "sizes": sizes}

    def _reduce(self, job, spec, directory, cancel, run_task):
        uuid = spec.shuffle["job"]
        here = os.path.join(directory, f"reduce-{spec.attempt}")
        os.makedirs(here, exist_ok=True)
        fetched = fetched_bytes = 0
        try:
            work = []
            for m, (attempt, url, sum_, size) in enumerate(spec.shuffle["maps"]):
                source = Source(m, int(attempt), str(url), str(sum_), int(size))
                local = None
                if url == self.url:
                    local = self.store.path(uuid, source.attempt, spec.index)
                    if local is None:
                        raise FetchFailed(source, "this worker does not hold it")
                else:
                    fetched += 1
                    fetched_bytes += source.size
                work.append((source, os.path.join(here, f"mr-{m}-{spec.index}"), local))
            self._fetch_all(uuid, spec.index, work, cancel)
            counters = run_task(job, replace(spec, intermediate=here), cancel)
            add(counters, "shuffle_fetched_partitions", fetched)
            add(counters, "shuffle_fetched_bytes", fetched_bytes)
            return counters, None
        finally:
            shutil.rmtree(here, ignore_errors=True)

    def _fetch_all(self, job, partition, work, cancel):
        """
        Fetch C{work}'s partitions, C{FETCHES} at a time (a partition's
        latency is mostly its holder's and the network's); the first that
        fails stops the others and is raised.
        """
        stop = _Either(cancel)
        pool = ThreadPoolExecutor(max_workers=FETCHES, thread_name_prefix="txmr-fetch")
        try:
            futures = [pool.submit(fetch, source, job, partition, dest, self.secret,
                                   self.ssl_context, stop, local)
                       for source, dest, local in work]
            for future in as_completed(futures):
                error = future.exception()
                if error is not None:
                    stop.set()
                    raise error
        finally:
            pool.shutdown(wait=True, cancel_futures=True)


class _Either:
    """
    An event set when the attempt is cancelled, or when one fetch of its
    batch failed (the others then stop).
    """

    def __init__(self, cancel):
        self.cancel = cancel
        self.stopped = threading.Event()

    def set(self):
        self.stopped.set()

    def is_set(self):
        return self.stopped.is_set() or (self.cancel is not None and self.cancel.is_set())
