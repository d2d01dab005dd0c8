"""
C{TOTAL_ORDER}'s bounds on Spark: sampled by txmr's driver's own code
(L{txmr.data.sampling.sample_bounds}), on the same splits, so the ranges
and thus the C{out-R} files are txmr's engine's.

That code reads files under a local directory.  Input at a URL (which
Hadoop's file systems read, in the JVM) is first copied to a scratch
directory as far as the sample reads it: each file as a sparse file of its
full size, holding the bytes the sample reads at their own offsets (the
first lines of each split, a whole compressed file, the whole files of the
whole-file modes), so the sampler reads the same records as from the
original.  Only those bytes cross from the JVM, not the input.
"""

import os
import shutil
import tempfile

from txmr.data.inputs import LINE_MODES, whole
from txmr.data.knobs import DEFAULT_KNOBS
from txmr.data.sampling import SAMPLE_RECORDS, sample_bounds
from txmr.spark.options import is_url
from txmr.spark.storage import hadoop_path

# The first read of a split's lines, doubled until it holds enough lines.
FIRST_READ = 64 << 10


def bounds(sc, job, parsed, root, files, splits, n_reduce):
    """
    The C{n_reduce - 1} bounds of a C{TOTAL_ORDER} job's key ranges, as
    txmr's driver samples them.

    @param root: the input directory or URL; C{files}, its
        L{txmr.spark.storage.InputFile}s.
    @raise Exception: whatever the job's map raised on a sampled record, or
        reading the input raised.
    """
    if not is_url(root):
        return sample_bounds(job, parsed, root, splits, n_reduce, DEFAULT_KNOBS)
    scratch = tempfile.mkdtemp(prefix="txmr-spark-sample-")
    try:
        copy_sampled(sc, job, files, splits, scratch)
        return sample_bounds(job, parsed, scratch, splits, n_reduce, DEFAULT_KNOBS)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def copy_sampled(sc, job, files, splits, directory):
    """
    Copy to C{directory} the bytes of the input that the sample of
    L{sample_bounds} reads: each map task's first records (more than its
    quota: the sampler stops at its quota, before any byte not copied).
    """
    quota = max(1, SAMPLE_RECORDS // max(1, len(splits)))
    by_name = {f.name: f for f in files}
    regions = {}  # name: [(offset, bytes)]
    with _Reader(sc) as reader:
        for task in splits:
            taken = 0
            for name, start, end in task:
                f = by_name[name]
                if job.input_mode in LINE_MODES and not whole(name):
                    regions.setdefault(name, []).append(
                        _lines(reader, f, start, end, quota + 2))
                elif (job.input_mode == "csv" or whole(name) or taken <= quota) and \
                        name not in regions:
                    # A whole file: one record (file, bytes), or its rows
                    # (csv); a compressed file is read whole in any mode.
                    regions[name] = [(0, reader.read(f.location, 0, f.size))]
                taken += 1
    for name, pieces in regions.items():
        path = os.path.join(directory, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.ftruncate(fd, by_name[name].size)
            for offset, data in pieces:
                os.pwrite(fd, data, offset)
        finally:
            os.close(fd)


def _lines(reader, f, start, end, count):
    """
    C{(offset, bytes)}: from the byte before C{start} (whose line the
    reader skips) to the end of the C{count}-th line that starts after it,
    or of the line holding byte C{end - 1}, or of the file, whichever comes
    first.
    """
    low = max(0, start - 1)
    size = FIRST_READ
    while True:
        high = min(f.size, low + size)
        data = reader.read(f.location, low, high - low)
        newlines, at = 0, -1
        while newlines < count + 1:
            at = data.find(b"\n", at + 1)
            if at < 0 or low + at >= end - 1:
                break
            newlines += 1
        if high == f.size or newlines >= count + 1 or (at >= 0 and low + at >= end - 1):
            return low, data
        size *= 2


class _Reader:
    """
    Byte ranges of files at URLs, read through Hadoop's file systems.
    """

    def __init__(self, sc):
        self.sc = sc
        self.jvm = sc._jvm
        self.streams = {}

    def read(self, location, offset, length):
        if length <= 0:
            return b""
        stream = self.streams.get(location)
        if stream is None:
            path, fs = hadoop_path(self.sc, location)
            stream = self.streams[location] = fs.open(path)
        stream.seek(offset)
        return bytes(self.jvm.org.apache.commons.io.IOUtils.toByteArray(stream, length))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        for stream in self.streams.values():
            try:
                stream.close()
            except Exception:
                pass
