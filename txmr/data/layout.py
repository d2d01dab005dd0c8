"""
The names of a job's files, and their commit.

Map task M writes C{mr-M-R} for each reduce task R in the intermediate
directory; reduce task R writes C{out-R} in the output directory (in a
map-only job, map task M writes C{out-M} there).  Every
file is written under a temporary name owned by the attempt
(L{attempt_name}).  The driver commits the winning attempt by renaming
(L{Layout.commit}), so a losing attempt's output is never read and never
seen.
"""

import os
import re
import shutil
from dataclasses import dataclass
from functools import cached_property, lru_cache

from txmr.core.states import Kind
from txmr.data import storage, store_output
from txmr.data.success import SUCCESS, output_names, success_listing

# Files of an earlier run of a job, removed when a new one starts: its
# output, its attempts' temporary files, and the driver's journal.
_STALE = re.compile(r"^(mr-\d+-\d+|out-\d+|_SUCCESS|\..*\.attempt-\d+\.tmp(\.spill-\d+)?"
                    r"|\.txmr-attempt-\d+|\.txmr-journal\.sqlite(-wal|-shm)?)$")
_JOURNAL = re.compile(r"^\.txmr-journal\.sqlite")


def attempt_name(final, attempt):
    """
    Where an attempt writes a file before the driver commits it.
    """
    head, tail = os.path.split(final)
    return os.path.join(head, f".{tail}.attempt-{attempt}.tmp")


@dataclass(frozen=True)
class Layout:
    """
    Where one job's tasks write.

    @ivar intermediate: the directory of map output (and reduce spills).
    @ivar output: the directory of reduce output.
    @ivar n_map: the number of map tasks.
    @ivar n_reduce: the number of reduce tasks: partitions per map task.
    """

    intermediate: str
    output: str | None
    n_map: int
    n_reduce: int

    @classmethod
    def of(cls, spec):
        """
        The layout of the job a L{txmr.core.spec.TaskSpec} belongs to: the
        same object for every task of a job, so that what it caches is
        worked out once per job, not at every attempt.
        """
        return _layout(cls, spec.intermediate, spec.output, spec.n_map, spec.n_reduce)

    @cached_property
    def all_local(self):
        """
        Whether every file of the job is a local path (no output URL).  (A
        cached property writes the instance's C{__dict__}, which a frozen
        dataclass allows.)
        """
        return not (storage.is_url(self.output) or storage.is_url(self.intermediate))

    @cached_property
    def _directories(self):
        """
        The intermediate and output directories, each ending in a separator.
        """
        return tuple(os.path.join(d, "") if d is not None else None
                     for d in (self.intermediate, self.output))

    def map_output(self, map_index, reduce_index):
        """
        The path of C{mr-M-R}: map task M's partition R.
        """
        return os.path.join(self.intermediate, f"mr-{map_index}-{reduce_index}")

    def reduce_output(self, reduce_index):
        """
        The path of C{out-R}: reduce task R's output.
        """
        return os.path.join(self.output, f"out-{reduce_index}")

    def files(self, kind, index, attempt):
        """
        The C{(temporary, final)} names of every file an attempt produces.
        """
        if kind == Kind.MAP and self.n_reduce:
            directory, names = self._directories[0], [
                f"mr-{index}-{r}" for r in range(self.n_reduce)]
        else:
            # A reduce's output; or a map-only job's map writes the job's.
            directory, names = self._directories[1], [f"out-{index}"]
        if self.all_local:
            # What attempt_name gives, built directly: the driver asks at
            # every commit, the worker at every attempt.
            return [(f"{directory}.{name}.attempt-{attempt}.tmp", directory + name)
                    for name in names]
        # An output URL's file is written locally, then uploaded (see
        # L{txmr.data.store_output}).
        finals = [directory + name for name in names]
        return [(store_output.staging_path(self.intermediate, final, attempt)
                 if storage.is_url(final) else attempt_name(final, attempt), final)
                for final in finals]

    def seed_directory(self, kind, attempt):
        """
        Where one of the seed's HTTP workers writes an attempt's files (the
        C{o_path} it is given): a directory of the attempt's own, beside
        the final names.  The seed's workers write under final names; were
        they the job's, a worker whose lease ran out could overwrite a
        committed file while reducers read it.
        """
        parent = self.intermediate if kind == Kind.MAP else self.output
        return os.path.join(parent, f".txmr-attempt-{attempt}")

    def commit(self, kind, index, attempt, written_in_place=False):
        """
        Make an attempt's files visible under their final names, each whole.

        @param written_in_place: one of the seed's HTTP workers wrote the
            files, under their final names in its L{seed_directory}.
        @raise OSError: a file could not be renamed, or is missing.
        @return: the final names, now in place.
        """
        files = self.files(kind, index, attempt)
        if written_in_place:
            directory = self.seed_directory(kind, attempt)
            files = [(os.path.join(directory, os.path.basename(final)), final)
                     for _, final in files]
            self._check_seed_files(kind, index, files)
        for temporary, final in files:
            if not self.all_local and storage.is_url(final):
                store_output.promote(final, attempt)
            else:
                os.replace(temporary, final)
        if written_in_place:
            shutil.rmtree(directory, ignore_errors=True)
        return [final for _, final in files]

    @staticmethod
    def _check_seed_files(kind, index, files):
        """
        A seed worker's task must have written its files: a reduce its
        C{out-R}; a map at least one partition, the others being empty (the
        seed's mappers create a partition's file with its first word).
        Otherwise a report alone, forged or mistaken, would finish a task
        that never ran.
        """
        present = [os.path.isfile(written) for written, _ in files]
        if kind != Kind.MAP:
            if not all(present):
                raise FileNotFoundError(f"reduce task {index} wrote no {files[0][1]}")
            return
        if not any(present):
            raise FileNotFoundError(f"map task {index} wrote none of its output files")
        for (written, _), there in zip(files, present):
            if not there:
                open(written, "wb").close()

    def discard(self, kind, index, attempt):
        """
        Remove whatever files an attempt left under temporary names (or in
        its seed worker's directory).
        """
        for temporary, final in self.files(kind, index, attempt):
            try:
                os.unlink(temporary)
            except FileNotFoundError:
                pass
            if storage.is_url(final):
                store_output.discard(final, attempt)
        shutil.rmtree(self.seed_directory(kind, attempt), ignore_errors=True)


def remove_job_files(directory, keep_journal=False):
    """
    Remove what a job writes in C{directory}: its intermediate and output
    files, attempts' temporary files, and (unless C{keep_journal}) the
    driver's journal of an earlier run.

    @return: the names removed, for the caller to say so.
    """
    if storage.is_url(directory):
        return store_output.remove_job_files(directory)
    return _remove(directory, lambda name: not (keep_journal and _JOURNAL.match(name)))


def remove_attempt_files(directory):
    """
    Remove attempts' temporary files only (those of an earlier run's
    attempts that were running when it died), and its seed workers'
    attempt directories.
    """
    if storage.is_url(directory):
        return store_output.remove_attempt_files(directory)
    _remove(directory, lambda name: ".attempt-" in name or name.startswith(".txmr-attempt-"))


def _remove(directory, wanted):
    """
    Remove the job files in C{directory} that C{wanted} accepts; return
    their names.
    """
    removed = []
    for name in sorted(os.listdir(directory)):
        if _STALE.match(name) and wanted(name):
            path = os.path.join(directory, name)
            try:
                if name.startswith(".txmr-attempt-") and not os.path.islink(path):
                    shutil.rmtree(path)
                else:
                    os.unlink(path)
                removed.append(name)
            except OSError:
                pass
    return removed


def write_atomically(path, text):
    """
    Write C{text} to C{path} whole or not at all: to a new temporary file
    beside it (made by C{mkstemp}, so a planted symlink is never followed),
    then renamed.
    """
    import tempfile

    directory, name = os.path.split(os.path.abspath(path))
    fd, temporary = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(temporary, path)
    except BaseException:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        raise


def mark_success(directory):
    """
    Write C{_SUCCESS} in a finished job's output directory, last, after
    every C{out-R} is in place and durable (the marker Hadoop and Spark
    write, which their users' scripts test for), listing them
    (L{success_listing}); then make it durable.  An output URL's is
    written by L{txmr.data.store_output}.
    """
    if storage.is_url(directory):
        return store_output.mark_success(directory)
    fsync_directory(directory)
    write_atomically(os.path.join(directory, SUCCESS),
                     success_listing(output_names(os.listdir(directory))))
    fsync_directory(directory)


def fsync_directory(path):
    """
    Make the renames in directory C{path} durable, if the system can.
    """
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class DirectoryInUse(Exception):
    """
    Another txmr run holds the directory.
    """


LOCK_NAME = ".txmr.lock"


def lock_directory(directory, who):
    """
    Take the directory for one run, so that a second driver (or inline run)
    on it refuses to start instead of removing the first one's files.  The
    lock (an C{flock} on C{.txmr.lock}) lasts while the returned file is
    open: the process's life, unless it is closed sooner (see
    L{txmr.plan.Plan.release}).

    @param who: what the lock file says of its holder, for the refusal.
    @raise DirectoryInUse: naming the holder.
    """
    import fcntl

    path = os.path.join(directory, LOCK_NAME)
    while True:
        f = open(path, "a+")
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            f.seek(0)
            holder = f.read().strip() or "another process"
            f.close()
            raise DirectoryInUse(f"{directory} is in use by {holder}") from None
        # Between our open and our flock, the holder may have let go and
        # removed the file (L{txmr.plan.Plan.release}): a lock on a file no
        # longer under the name guards nothing, since the next run creates
        # a new one.  Lock the file the name holds now instead.
        try:
            same = os.path.samestat(os.fstat(f.fileno()), os.stat(path))
        except FileNotFoundError:
            same = False
        if same:
            break
        f.close()
    f.seek(0)
    f.truncate()
    f.write(who + "\n")
    f.flush()
    return f


@lru_cache(maxsize=16)
def _layout(cls, intermediate, output, n_map, n_reduce):
    return cls(intermediate, output, n_map, n_reduce)
