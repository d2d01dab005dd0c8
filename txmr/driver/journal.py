"""
The driver's journal: what a restarted driver needs to resume its job.

An SQLite database (the standard library's C{sqlite3}, in WAL mode) holds
the job's identity (its code, its input files with their sizes and
modification times, the flags that change its output), an epoch that grows
at each start, and every committed attempt with its counters and skipped
records (written in groups: see L{txmr.driver.files.FLUSH_EVERY}).  The
driver renames an attempt's files into place first and journals the commit
second: a crash between the two
leaves a task whose files are there but that the journal does not claim,
and it simply runs again.

A restarted driver with the same identity keeps the tasks the journal
claims whose files are all present; with another identity it refuses to
resume and says what changed.
"""

import json
import marshal
import os
import sqlite3

from txmr.core.states import Kind

JOURNAL_NAME = ".txmr-journal.sqlite"

_INSERT = "INSERT INTO commits VALUES (?, ?, ?, ?, ?)"

# Attempt ids of epoch E start at (E - 1) * ATTEMPT_BLOCK + 1: an attempt
# of an earlier run never shares a temporary file name with one of this run.
ATTEMPT_BLOCK = 10 ** 9


def identity(config, job, stamps, splits):
    """
    What must be equal for a run to resume another: the job's code, its
    input, and every flag that changes its output.
    """
    return {
        "job": job.name,
        "job_source": job.source_digest(),
        "input": config.input,
        "inputs": stamps,
        "splits": splits,
        "intermediate": config.intermediate,
        "output": config.output,
        "mappers": config.mappers,
        "reducers": config.reducers,
        "skip_bad_records": config.skip_bad_records,
        "job_args": list(config.job_args),
    }


def differences(old, new):
    """
    What changed between two identities, in words.
    """
    out = []
    for key in new:
        if old.get(key) == new[key]:
            continue
        if key == "inputs":
            before, after = old.get(key) or {}, new[key]
            changed = sorted(n for n in set(before) | set(after) if before.get(n) != after.get(n))
            shown = ", ".join(changed[:5]) + (f" and {len(changed) - 5} more"
                                             if len(changed) > 5 else "")
            out.append(f"input files changed: {shown}")
        elif key == "job_source":
            out.append("the job's source changed")
        elif key == "splits":
            out.append("the input is dealt to map tasks differently")
        else:
            out.append(f"{key} was {old.get(key)!r}, now {new[key]!r}")
    return out


class Journal:
    """
    One job's journal.  C{epoch} is this run's; C{previous} the identity of
    the run that wrote it, if any.
    """

    def __init__(self, path):
        self.path = path
        self._pending = []
        # Whether commits wait for the next flush: an attribute, not a
        # property, as the driver reads it after every write.
        self.dirty = False
        self.db = sqlite3.connect(path, isolation_level=None)
        # The driver is the journal's only user (it holds its directories'
        # lock): an exclusive lock, taken once, spares every transaction
        # the shared-memory index and its file locks.
        self.db.execute("PRAGMA locking_mode=EXCLUSIVE")
        self.db.execute("PRAGMA journal_mode=WAL")
        # NORMAL: a commit survives the driver's crash (it is in the WAL,
        # in the system's cache); one lost to a power cut only runs again.
        # FULL would cost an fsync, 300 us, per task.
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute("CREATE TABLE IF NOT EXISTS job (key TEXT PRIMARY KEY, value TEXT)")
        # Appended, never updated: a task committed again (its files were
        # gone when a later run resumed) has a newer row, and the newest
        # row of a task is the one that counts.  No index to maintain: a
        # commit is one appended row of one JSON record.
        self.db.execute("CREATE TABLE IF NOT EXISTS commits (kind TEXT, task INTEGER, "
                        "attempt INTEGER, epoch INTEGER, record TEXT)")

    def _get(self, key):
        row = self.db.execute("SELECT value FROM job WHERE key = ?", (key,)).fetchone()
        return None if row is None else json.loads(row[0])

    def _set(self, key, value):
        self.db.execute("INSERT OR REPLACE INTO job VALUES (?, ?)", (key, json.dumps(value)))

    @property
    def previous(self):
        return self._get("identity")

    def start(self, identity, fresh):
        """
        Begin a run: a new epoch of the same job, or (C{fresh}) a new job.

        @return: this run's epoch.
        """
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            epoch = (self._get("epoch") or 0) + 1
            if fresh:
                # The epoch is kept: a fresh run's attempt ids are its own too.
                self.db.execute("DELETE FROM commits")
                self.db.execute("DELETE FROM job")
            self._set("identity", identity)
            self._set("epoch", epoch)
        self.epoch = epoch
        return epoch

    def commits(self):
        """
        The committed attempts: C{(kind, task, attempt, counters, skip,
        files, seed_format)}, C{files} being each final file's name and stamp
        as committed, C{seed_format} whether a seed worker wrote them.
        """
        newest = {}
        for kind, task, attempt, record in self.db.execute(
                "SELECT kind, task, attempt, record FROM commits ORDER BY rowid"):
            newest[kind, task] = (attempt, record)
        out = []
        for (kind, task), (attempt, record) in sorted(newest.items()):
            counters, skip, files, seed_format = _record(record)
            out.append((Kind(kind), task, attempt, counters, skip, files, seed_format))
        return out

    def committed(self, attempt, counters, files):
        """
        An attempt's files are in place: its task is done, for good.  The
        row is written by the next L{flush}, within
        L{txmr.driver.files.FLUSH_EVERY} seconds: until then a crash only
        makes the task run again.
        """
        task = attempt.task
        self._pending.append((str(task.kind), task.index, attempt.id, self.epoch,
                              marshal.dumps([counters, task.skip or [], files,
                                             attempt.seed_format])))
        self.dirty = True

    def flush(self):
        """
        Write the commits noted since the last flush, in one transaction.
        """
        rows, self._pending, self.dirty = self._pending, [], False
        if len(rows) == 1:
            # In autocommit mode, a statement is its own transaction.
            self.db.execute(_INSERT, rows[0])
        elif rows:
            # One transaction, not one per row: one WAL frame for a page of
            # rows, where each transaction would write its own.
            self.db.execute("BEGIN")
            try:
                self.db.executemany(_INSERT, rows)
                self.db.execute("COMMIT")
            except BaseException:
                # A COMMIT that failed (a full disk) leaves the transaction
                # open: every later BEGIN would fail too.
                if self.db.in_transaction:
                    self.db.execute("ROLLBACK")
                raise

    def ended(self, ok):
        """
        The job is over.  A finished job's journal stays, so that the same
        command does not run it again; a failed job's is removed with its
        files, and its next run starts over.  Either way it is closed: the
        driver lets go of its directories, and the next run may open it.
        """
        if ok:
            self.close()
        else:
            self.remove()

    def remove(self):
        self._pending, self.dirty = [], False
        self.db.close()
        for suffix in ("", "-wal", "-shm"):
            try:
                os.unlink(self.path + suffix)
            except FileNotFoundError:
                pass

    def close(self):
        try:
            self.flush()
        finally:
            self.db.close()


def journal_path(config):
    """
    C{--journal}, or a hidden file in the intermediate directory.
    """
    return config.journal or os.path.join(config.intermediate, JOURNAL_NAME)


def _record(record):
    """
    A commit's record: C{marshal} data (a BLOB), or JSON text as an earlier
    txmr wrote it.  Marshal, as the map output's chunks are: the record is
    written at every commit, and C{json.dumps} cost the driver a sixth of
    its journal's time per quick task.  It holds lists, strings, numbers and
    booleans only, which every Python 3 reads back alike.

    @raise ValueError: the record is neither.
    """
    if isinstance(record, bytes):
        try:
            return marshal.loads(record)
        except (EOFError, TypeError) as e:
            raise ValueError(f"a commit's record does not read: {e}") from e
    return json.loads(record)
