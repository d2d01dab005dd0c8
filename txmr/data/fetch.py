"""
A reducer's copy of map output kept on other workers (shared-nothing): each
partition is streamed over HTTP into a local file, in blocks, its checksum
computed on the way and checked against the one the map reported, so a
reduce's memory never grows with its input and a damaged file is never
read.  The worker's own partitions are linked, not fetched.

This runs in a worker's task thread (urllib blocks; the reactor does not
wait for it).  A partition that cannot be had (its host is gone, the file
is missing, the bytes are not the map's) raises L{FetchFailed}, which the
worker reports to the driver: the map then runs again.
"""

import hashlib
import hmac
import http.client
import os
import shutil
import time
import urllib.error
import urllib.request
import zlib
from dataclasses import dataclass

from txmr.data.attempt import TaskCancelled, check_cancelled

# Read and hash in blocks of this size: the memory a fetch holds.
BLOCK = 1 << 20
# Seconds a request may wait for its host before the fetch is retried.
TIMEOUT = 30.0
# Tries of one partition against a host that does not answer, and the pause
# between them: a host that is slow for a moment is not given up at once.
TRIES = 3
PAUSE = 0.5


def checksum(path):
    """
    The checksum of a file as a map reports it and a reducer checks it:
    C{crc32:HEX} (integrity against damage on disk and on the wire; the
    job's secret, not this, is what keeps strangers out).
    """
    crc = 0
    with open(path, "rb") as f:
        while block := f.read(BLOCK):
            crc = zlib.crc32(block, crc)
    return f"crc32:{crc:08x}"


def fetch_token(secret, job):
    """
    What a fetch request carries as its bearer token: an HMAC of the job's
    uuid under the secret, not the secret itself, which so never crosses
    the wire even where map output travels over plain HTTP.  Whoever
    watches that network learns a token good for this job's map output
    only, which it could read anyway.
    """
    return hmac.new(secret.encode("utf-8"), b"txmr-fetch\x00" + job.encode("ascii"),
                    hashlib.sha256).hexdigest()


def part_path(url, job, attempt, partition):
    """
    The URL of partition C{partition} of map attempt C{attempt}.
    """
    return f"{url.rstrip('/')}/job/{job}/attempt/{int(attempt)}/part/{int(partition)}"


@dataclass(frozen=True)
class Source:
    """
    Where one map's partition for this reduce is, and what it must be.
    """

    map_index: int
    attempt: int
    url: str
    sum: str
    size: int


class FetchFailed(Exception):
    """
    A map's partition could not be fetched; the driver runs the map again.
    """

    def __init__(self, source, why):
        super().__init__(f"cannot fetch map task {source.map_index} attempt {source.attempt} "
                         f"from {source.url}: {why}")
        self.source = source
        self.why = why


def fetch(source, job, partition, dest, secret=None, ssl_context=None, cancel=None,
          local_path=None):
    """
    Make C{dest} a copy of the partition C{source} names, checked.

    @param local_path: the partition's file, when this worker holds it: it
        is linked (or copied), not fetched.
    @param cancel: an event set when the attempt is cancelled.
    @raise FetchFailed: it cannot be had, or is not what the map wrote.
    """
    if local_path is not None:
        _local(source, local_path, dest)
        return
    url = part_path(source.url, job, source.attempt, partition)
    headers = {"Authorization": f"Bearer {fetch_token(secret, job)}"} if secret else {}
    last = None
    for attempt in range(TRIES):
        check_cancelled(cancel)
        try:
            _download(source, urllib.request.Request(url, headers=headers), dest,
                      ssl_context, cancel)
            return
        except urllib.error.HTTPError as e:
            # The host answered.  A 404 may come from a holder that has not
            # yet heard its attempt was committed (the driver's answer and
            # this request race): it is asked again, after a pause.  Any
            # other answer will not change by waiting.
            last = e
            if e.code != 404:
                raise FetchFailed(source, f"HTTP {e.code} {e.reason}") from None
        except TaskCancelled:
            raise
        except (OSError, ValueError, http.client.HTTPException) as e:
            last = e
        if attempt + 1 < TRIES:
            time.sleep(PAUSE)
    if isinstance(last, urllib.error.HTTPError):
        raise FetchFailed(source, f"HTTP {last.code} {last.reason}")
    raise FetchFailed(source, f"{type(last).__name__}: {last}")


def _download(source, request, dest, ssl_context, cancel):
    crc = size = 0
    with urllib.request.urlopen(request, timeout=TIMEOUT, context=ssl_context) as response, \
            open(dest, "wb") as out:
        while block := response.read(BLOCK):
            check_cancelled(cancel)
            crc = zlib.crc32(block, crc)
            size += len(block)
            if size > source.size:
                break
            out.write(block)
    _check(source, size, f"crc32:{crc:08x}")


def _local(source, path, dest):
    try:
        try:
            os.link(path, dest)
        except OSError:
            shutil.copyfile(path, dest)
        size = os.path.getsize(dest)
    except OSError as e:
        raise FetchFailed(source, f"its file on this worker is gone: {e}") from None
    if size != source.size:
        _check(source, size, None)


def _check(source, size, crc):
    if size != source.size:
        raise FetchFailed(source, f"{size} bytes arrived, not {source.size}")
    if crc is not None and crc != source.sum:
        raise FetchFailed(source, f"checksum {crc}, not {source.sum}")
