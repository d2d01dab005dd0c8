"""
Input and output where Spark reads and writes them.

A local path is read and written by txmr's own data path, as by its
engine.  A URL (C{hdfs://}, C{s3a://}, C{file:/...}) is listed through
Hadoop's file systems on the driver, its files read by Spark (whole, as
bytes, compressed or not: Spark's C{binaryFile} source decompresses
nothing) and its output written by Spark's committer, then renamed
C{out-R}.  Either way the map attempt reads the same bytes of the same
files, and a compressed file is decompressed by txmr's own reader, by its
name, as on txmr's engine: input is named by the path relative to the
input root, as txmr's engine names it.
"""

import os
import re
import sys
import uuid
from dataclasses import dataclass

from txmr.data.inputs import list_inputs, stamp
from txmr.data.layout import (LOCK_NAME, lock_directory, mark_success, remove_attempt_files,
                              remove_job_files, success_listing)
from txmr.data.success import SUCCESS, is_job_output
from txmr.spark.options import SparkConfigError, is_url


@dataclass(frozen=True)
class InputFile:
    """
    One input file.

    @ivar name: its path relative to the input root: what map is given.
    @ivar size: its size in bytes (compressed, if it is).
    @ivar location: where Spark reads it (a URL), or L{None}: a local file
        that the map reads itself, under the input root.
    @ivar stamp: what tells that a local file changed (L{txmr.data.inputs.stamp}).
    """

    name: str
    size: int
    location: str | None = None
    stamp: tuple | None = None


def hadoop_path(sc, url):
    """
    The Hadoop C{Path} of C{url} and its file system, in the driver's JVM.
    """
    path = sc._jvm.org.apache.hadoop.fs.Path(url)
    return path, path.getFileSystem(sc._jsc.hadoopConfiguration())


def _delete_job_output(fs, path):
    """
    Delete the job's own files (C{out-R}, C{_SUCCESS}) in the directory at
    C{path}, leaving any other.
    """
    for status in fs.listStatus(path):
        if is_job_output(status.getPath().getName()):
            fs.delete(status.getPath(), False)


def list_input(sc, root):
    """
    The input files under C{root}, sorted by name; names starting with C{.}
    or C{_} are skipped, as txmr's engine (and Hadoop) skip them.

    @raise SparkConfigError: the input cannot be listed, or is empty.
    """
    if not is_url(root):
        # Local files, compressed or not, are read by txmr's own data path
        # in each task, as txmr's engine reads them (a compressed file
        # whole, decompressed by its extension).
        files = []
        for name, _ in list_inputs(root):
            st = stamp(os.path.join(root, name))
            files.append(InputFile(name, st[0], None, tuple(st)))
        return files
    path, fs = hadoop_path(sc, root)
    try:
        if not fs.getFileStatus(path).isDirectory():
            raise SparkConfigError(f"input {root!r} is a file, not a directory: give the "
                                   f"directory that holds it")
        base = fs.getFileStatus(path).getPath().toUri().getPath().rstrip("/")
        found = fs.listFiles(path, True)
        files = []
        while found.hasNext():
            status = found.next()
            location = status.getPath()
            name = location.toUri().getPath()[len(base) + 1:]
            if any(part.startswith((".", "_")) for part in name.split("/")):
                continue
            files.append(InputFile(name, status.getLen(), location.toString()))
    except SparkConfigError:
        raise
    except Exception as e:  # py4j's error carries the JVM's reason
        raise SparkConfigError(f"cannot list input {root!r}: {_reason(e)}") from e
    return sorted(files, key=lambda f: f.name)


def _reason(error):
    """
    The first line of a JVM exception's message, without its stack.
    """
    java = getattr(error, "java_exception", None)
    if java is not None:
        return str(java.toString())
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__


def normalize(url):
    """
    One spelling of a URL, to match the file names Spark reports with the
    ones listed (C{file:/a}, C{file:///a} and percent escapes differ).
    """
    from urllib.parse import unquote

    url = unquote(url)
    return re.sub(r"^file:/+", "file:/", url)


class LocalOutput:
    """
    A local output directory: reduce attempts write their temporary files
    in it, and the driver renames the winners C{out-R}, as txmr's driver
    does; the directory is locked while the job runs.
    """

    def __init__(self, path):
        self.path = os.path.abspath(path)
        self.lock = None

    def prepare(self, job_name):
        try:
            os.makedirs(self.path, exist_ok=True)
            self.lock = lock_directory(self.path, f"a txmr spark run of {job_name} "
                                                  f"(pid {os.getpid()})")
        except OSError as e:
            raise SparkConfigError(f"cannot write output directory {self.path!r}: "
                                   f"{e.strerror or e}") from e
        except Exception as e:  # DirectoryInUse
            raise SparkConfigError(str(e)) from e
        remove_job_files(self.path)
        self._remove_success()

    def _remove_success(self):
        try:
            os.unlink(os.path.join(self.path, SUCCESS))
        except FileNotFoundError:
            pass

    def commit(self, written):
        """
        Rename each reduce task's winning file into place, then mark the
        directory complete.

        @param written: C{{reduce index: temporary path}}.
        """
        for index, temporary in sorted(written.items()):
            os.replace(temporary, os.path.join(self.path, f"out-{index}"))
        mark_success(self.path)
        from txmr.data.layout import fsync_directory

        fsync_directory(self.path)

    def release(self, ok):
        """
        Remove the attempts' leftovers (and, for a failed job, every output
        file: a failed job leaves no partial output), then the lock.
        """
        if ok:
            remove_attempt_files(self.path)
        else:
            remove_job_files(self.path)
        if self.lock is not None:
            try:
                os.unlink(os.path.join(self.path, LOCK_NAME))
            except OSError:
                pass
            self.lock.close()
            self.lock = None


class HadoopOutput:
    """
    An output URL: Spark's committer writes C{part-NNNNN} files in a
    staging directory under it (hidden, its name starting with C{_}), each
    whole; the driver then renames them C{out-R} and writes C{_SUCCESS}.
    """

    def __init__(self, sc, url):
        self.sc = sc
        self.url = url.rstrip("/")
        self.staging = f"{self.url}/_txmr-staging-{uuid.uuid4().hex}"

    def _fs(self):
        return hadoop_path(self.sc, self.url)

    def prepare(self, job_name):
        try:
            # A scheme the JVM has no file system for fails here, named.
            path, fs = self._fs()
            fs.mkdirs(path)
            _delete_job_output(fs, path)
        except Exception as e:
            raise SparkConfigError(f"cannot write output {self.url!r}: {_reason(e)}") from e

    def commit(self, n_reduce):
        jvm = self.sc._jvm
        path, fs = self._fs()
        for index in range(n_reduce):
            source = jvm.org.apache.hadoop.fs.Path(f"{self.staging}/part-{index:05d}")
            target = jvm.org.apache.hadoop.fs.Path(f"{self.url}/out-{index}")
            if not fs.rename(source, target):
                raise OSError(f"cannot rename {source.toString()} to {target.toString()}")
        marker = fs.create(jvm.org.apache.hadoop.fs.Path(f"{self.url}/{SUCCESS}"), True)
        marker.write(bytearray(success_listing(f"out-{i}" for i in range(n_reduce)).encode()))
        marker.close()
        self._remove_checksums(fs, path, n_reduce)

    def _remove_checksums(self, fs, path, n_reduce):
        """
        Hadoop's local file system keeps a C{.NAME.crc} beside each file it
        writes: not part of the output, which must be the same as txmr's.
        """
        jvm = self.sc._jvm
        for name in [f"out-{i}" for i in range(n_reduce)] + [SUCCESS]:
            crc = jvm.org.apache.hadoop.fs.Path(f"{self.url}/.{name}.crc")
            if fs.exists(crc):
                fs.delete(crc, False)

    def release(self, ok):
        path, fs = self._fs()
        try:
            fs.delete(self.sc._jvm.org.apache.hadoop.fs.Path(self.staging), True)
            if not ok:
                _delete_job_output(fs, path)
        except Exception:
            pass


def lock_output(url, job_name):
    """
    Hold the output URL C{url} for the whole run, before anything in it is
    removed or written, with the lock txmr's engine takes on it
    (L{txmr.plan.lock_paths}: an object C{_txmr.lock}, created only if
    absent): another run on it, on either engine, is then refused, where it
    would remove this run's files or mix its own with them, and both would
    exit 0.  (A local output directory is locked by each step's
    L{LocalOutput}.)

    @return: the locks, for L{txmr.plan.release_locks} at the end: none for
        a local path, or for a URL that fsspec cannot open (no txmr run can
        write there either: the run goes on, saying it holds no lock).
    @raise SparkConfigError: another run holds it, named, or it cannot be
        locked.
    """
    if not is_url(url):
        return []
    from txmr.data.storage import filesystem
    from txmr.data.store_lock import LOCK
    from txmr.data.store_output import make_parent
    from txmr.plan import ConfigError, lock_paths

    # Hadoop's file:/a is file:///a to fsspec (and to txmr's engine).
    url = re.sub(r"^file:/(?=[^/])", "file:///", url.rstrip("/"))
    try:
        fs, base = filesystem(url)
    except Exception as e:  # StorageError, or the filesystem's own
        print(f"txmr: warning: {url} is not locked against other runs: {_reason(e)}",
              file=sys.stderr)
        return []
    try:
        # A local file system's directory must be there for the lock file.
        make_parent(fs, f"{base}/{LOCK}")
        return lock_paths([url], f"a txmr spark run of {job_name}")
    except ConfigError as e:
        raise SparkConfigError(str(e)) from e
    except OSError as e:
        raise SparkConfigError(f"cannot write output {url!r}: {e.strerror or e}") from e


def remove_output(sc, path):
    """
    Remove the job's own files (C{out-R}, C{_SUCCESS}) from an earlier run
    in the output C{path}, local or a URL: what a chain whose step failed
    before the last does (L{txmr.chain.remove_stale_output}), so an earlier
    answer is not taken for this run's.
    """
    if not is_url(path):
        if os.path.isdir(path):
            # Only while no other run holds it: its files are its own.
            from txmr.plan import ConfigError, lock_paths, release_locks

            try:
                locks = lock_paths([path], "a txmr spark run clearing a failed chain's output")
            except ConfigError as e:
                print(f"txmr: the output was left as it is: {e}", file=sys.stderr)
                return
            try:
                remove_job_files(path)
            finally:
                release_locks(locks)
        return
    try:
        where, fs = hadoop_path(sc, path)
        if fs.exists(where):
            _delete_job_output(fs, where)
    except Exception:
        pass


def remove_tree(sc, path):
    """
    Remove a directory made for a run (its steps' output), local or a URL.
    """
    if not is_url(path):
        import shutil

        shutil.rmtree(path, ignore_errors=True)
        return
    try:
        where, fs = hadoop_path(sc, path)
        fs.delete(where, True)
    except Exception:
        pass
