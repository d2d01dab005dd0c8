"""
Output on a store, which has no atomic rename: committed as Hadoop's
committer does it.  An attempt's file is written locally
(L{staging_path}), then uploaded whole to an object of its own under the
output's hidden C{_temporary} prefix (L{upload}); the driver promotes the
winner's to C{out-R} (L{promote}: a copy, server-side on S3, then a
delete), removes the losers' (L{discard}), and writes C{_SUCCESS} last,
listing the job's files (L{mark_success}).  A reader that waits for
C{_SUCCESS} so never sees a loser's or a half-written file: a name that
starts with C{_} or C{.} is no one's output.

L{txmr.data.layout} calls these for an output URL (L{txmr.data.storage});
a local output directory keeps its renames.
"""

import os
import tempfile
import uuid
import zlib

from txmr.data.storage import StorageError, filesystem
from txmr.data.success import SUCCESS, is_job_output, output_names, success_listing

# Under an output URL: each attempt's objects, before the driver promotes
# the winner (a name starting with "_", which every listing skips).
TEMPORARY = "_temporary"


def _join(url, *names):
    return "/".join([url.rstrip("/"), *names])


def make_output(url):
    """
    Check that the job can write under C{url}, before any task runs: a
    missing bucket or a refused credential fails the job at once, named.
    A local filesystem's directory is created; a store makes no bucket.

    @raise StorageError: it cannot.
    """
    try:
        fs, path = filesystem(url)
        probe = _join(path, TEMPORARY, f"probe-{uuid.uuid4().hex}")
        make_parent(fs, probe)
        fs.pipe_file(probe, b"")
        fs.rm_file(probe)
    except StorageError:
        raise
    except Exception as e:
        raise StorageError(f"cannot write output {url!r}: {type(e).__name__}: {e}") from e


def make_parent(fs, path):
    """
    Make the directory that will hold C{path} on a local filesystem
    (C{file://}), which has real directories; a store has none to make, and
    making one there could create a bucket.
    """
    protocol = fs.protocol
    if "file" in ((protocol,) if isinstance(protocol, str) else tuple(protocol)):
        fs.makedirs(path.rpartition("/")[0], exist_ok=True)


def attempt_url(final, attempt):
    """
    Where attempt C{attempt} uploads the output file C{final} (a URL):
    C{<output>/_temporary/attempt-N/out-R}.
    """
    head, _, tail = final.rpartition("/")
    return _join(head, TEMPORARY, f"attempt-{attempt}", tail)


def staging_path(intermediate, final, attempt):
    """
    The local file where an attempt writes the output file C{final} (a
    URL) before it uploads it whole: in the intermediate directory when
    this host has it, else in the system's temporary directory (named for
    this process too: other jobs' workers may share it).  The name ends as
    an attempt's temporary file does, so an earlier run's is cleared.
    """
    tail = final.rpartition("/")[2]
    tag = f"{zlib.crc32(final.encode('utf-8')):08x}"
    if intermediate and os.path.isdir(intermediate):
        return os.path.join(intermediate, f".{tag}-{tail}.attempt-{attempt}.tmp")
    return os.path.join(tempfile.gettempdir(),
                        f".txmr-{os.getpid()}-{tag}-{tail}.attempt-{attempt}.tmp")


def upload(local, final, attempt):
    """
    Upload an attempt's finished file to its own object (L{attempt_url}),
    whole (a store shows an object only once it is complete), then remove
    the local file.
    """
    fs, target = filesystem(attempt_url(final, attempt))
    make_parent(fs, target)
    fs.put_file(local, target)
    os.unlink(local)


def promote(final, attempt):
    """
    Make the winning attempt's object the output file C{final}: a copy (on
    a store, server-side; the new object appears whole), then the delete
    of the attempt's.

    @raise OSError: the attempt's object is missing, or cannot be copied.
    """
    fs, source = filesystem(attempt_url(final, attempt))
    target = filesystem(final)[1]
    try:
        fs.mv(source, target)
    except Exception as e:
        if isinstance(e, OSError):
            raise
        raise OSError(f"cannot promote {attempt_url(final, attempt)} to {final}: "
                      f"{type(e).__name__}: {e}") from e


def discard(final, attempt):
    """
    Remove an attempt's object, if it uploaded one.  Never raises: this runs
    while a failed attempt's error is being reported, and a leftover under
    C{_temporary} is no one's output (L{mark_success} removes it).
    """
    try:
        fs, path = filesystem(attempt_url(final, attempt))
        fs.rm_file(path)
    except Exception:
        pass


def _output_names(fs, path):
    try:
        names = [entry.rstrip("/").rpartition("/")[2] for entry in fs.ls(path, detail=False)]
    except FileNotFoundError:
        return []
    return names


def _remove_tree(fs, path):
    try:
        fs.rm(path, recursive=True)
    except FileNotFoundError:
        pass


def remove_job_files(url):
    """
    Remove what a job writes under an output URL: C{out-R}, C{_SUCCESS}
    and the attempts' objects (C{_temporary}).

    @return: the names removed.
    """
    fs, path = filesystem(url)
    fs.invalidate_cache(path)
    removed = []
    for name in sorted(_output_names(fs, path)):
        if is_job_output(name):
            fs.rm_file(_join(path, name))
            removed.append(name)
        elif name == TEMPORARY:
            _remove_tree(fs, _join(path, name))
            removed.append(name)
    return removed


def remove_attempt_files(url):
    """
    Remove the attempts' objects only (an earlier run's, when a driver
    resumes it).
    """
    fs, path = filesystem(url)
    _remove_tree(fs, _join(path, TEMPORARY))


def mark_success(url):
    """
    The job is complete: remove the attempts' leftovers, then write
    C{_SUCCESS}, listing the job's output files one per line, last.  It is
    written under a hidden name and then moved into place, so it too
    appears whole.
    """
    fs, path = filesystem(url)
    _remove_tree(fs, _join(path, TEMPORARY))
    fs.invalidate_cache(path)
    names = output_names(_output_names(fs, path))
    hidden = _join(path, f".{SUCCESS}.{uuid.uuid4().hex}.tmp")
    fs.pipe_file(hidden, success_listing(names).encode("utf-8"))
    fs.mv(hidden, _join(path, SUCCESS))
