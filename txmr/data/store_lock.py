"""
A run's hold on a directory of a store (an output or intermediate URL),
which has no C{flock}: an object C{_txmr.lock} naming its holder, so that
a second run on the same URL refuses to start instead of removing the
first one's files and mixing its own with them (a local directory has
L{txmr.data.layout.lock_directory} for this).

The lock is created only if absent where the store can do that (S3's
conditional write, a local file's C{O_EXCL}): of two runs starting at
once, one creates it and the other is refused.  Elsewhere it is written,
then read back, which narrows the race but cannot close it.
A run that dies leaves its lock behind.  The next run on the same host
takes it over when its holder's process is gone, or when the holder's
intermediate directory is the new run's, whose local lock it now holds;
otherwise it is refused, told which object to remove if the holder is
gone.
"""

import json
import os
import socket
import time
import uuid

from txmr.data.storage import StorageError, filesystem

LOCK = "_txmr.lock"


class StoreInUse(Exception):
    """
    Another run holds the URL; the message names it.
    """


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def _gone(holder, intermediate):
    """
    Whether the run that wrote C{holder} cannot be running any more.
    """
    if holder.get("host") != socket.gethostname():
        return False
    if intermediate is not None and holder.get("intermediate") == intermediate:
        return True
    pid = holder.get("pid")
    return type(pid) is int and not _alive(pid)


class StoreLock:
    """
    The lock object of one URL, held while the run lasts.
    """

    def __init__(self, url, who, intermediate=None):
        """
        Take C{url} for this run.

        @param who: what the lock says of its holder, for a refusal.
        @param intermediate: the run's local intermediate directory, which
            it holds locked already, if it has one.
        @raise StoreInUse: another run holds it, named.
        """
        self.url = url
        self.fs, base = filesystem(url)
        self.path = f"{base.rstrip('/')}/{LOCK}"
        self.record = {"id": uuid.uuid4().hex, "who": who, "host": socket.gethostname(),
                       "pid": os.getpid(), "intermediate": intermediate,
                       "since": time.time()}
        data = json.dumps(self.record).encode()
        try:
            if not self._create(data):
                holder = self._holder()
                if holder is not None and not _gone(holder, intermediate):
                    raise self._refusal(holder)
                # The holder is gone: take its lock over.
                self.fs.pipe_file(self.path, data)
            holder = self._holder()
        except StoreInUse:
            raise
        except Exception as e:
            raise StorageError(f"cannot lock {url!r} for this run: {type(e).__name__}: "
                               f"{e}") from e
        if holder != self.record:
            raise self._refusal(holder or {})

    def _create(self, data):
        """
        Write the lock only if there is none (C{"xb"}: S3's If-None-Match,
        a local file's O_EXCL), so that of two runs starting at once only
        one creates it.  A store that cannot create only if absent is
        written, and read back.

        @return: whether this run created it.
        """
        try:
            with self.fs.open(self.path, "xb") as f:
                f.write(data)
            return True
        except FileExistsError:
            return False
        except (ValueError, NotImplementedError, TypeError):
            if self._holder() is not None:
                return False
            self.fs.pipe_file(self.path, data)
            return True

    def _holder(self):
        self.fs.invalidate_cache(self.path)
        try:
            data = self.fs.cat_file(self.path)
        except FileNotFoundError:
            return None
        try:
            holder = json.loads(data)
        except ValueError:
            return {"who": f"something that wrote {data[:80]!r}"}
        return holder if isinstance(holder, dict) else {}

    def _refusal(self, holder):
        who = holder.get("who") or "another run"
        return StoreInUse(f"{self.url} is in use by {who}; if that run is gone, remove "
                          f"{self.url.rstrip('/')}/{LOCK}")

    def release(self):
        """
        Let go of the URL: remove the lock if it is still this run's.
        Never raises (a run that ends must not fail for its lock).
        """
        try:
            if self._holder() == self.record:
                self.fs.rm_file(self.path)
        except Exception:
            pass
