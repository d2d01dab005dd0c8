"""
Input at a URL, from Spark's reader to the map tasks.

The driver has Spark read the files whole, as they are (compressed ones
too: Spark's C{binaryFile} source decompresses nothing, txmr's reader does,
by the file's name), and deals each file to the map tasks whose splits hold
it, each getting only the bytes its splits read (L{fetched_input}, with
L{route} run by Spark).  Each map task writes its bytes back as sparse files
at their own offsets (L{materialize}), so txmr's map reads them as it would
read the original.  No PySpark import here: the driver's session is passed
in.
"""

import os
import re
from functools import partial

from txmr.data.inputs import InputChanged
from txmr.spark.shuffle import by_partition
from txmr.spark.storage import normalize

GLOB = re.compile(r"([{}\[\]*?\\])")


def fetched_input(spark, files, splits):
    """
    The files Spark reads (URLs), read whole and dealt to the map tasks
    whose splits hold them: an RDD of one partition per map task, of
    C{(M, (name, offset, size, bytes))}.
    """
    by_name = {f.name: f for f in files if f.location is not None}
    wanted = {}
    for m, task in enumerate(splits):
        for name, start, end in task:
            f = by_name.get(name)
            if f is not None:
                entry = wanted.setdefault(normalize(f.location), (f.name, f.size, []))
                entry[2].append((m, start, end))
    # Spark takes a path holding any of {}[]*?\\ for a glob: escape them.
    # (An empty file cut into byte ranges is in no split: not read.)
    dealt = {name for name, _, _ in wanted.values()}
    paths = [GLOB.sub(r"\\\1", f.location) for f in by_name.values() if f.name in dealt]
    if not paths:
        return spark.sparkContext.parallelize([], len(splits))
    rows = spark.read.format("binaryFile").load(paths).select("path", "content")
    return (rows.rdd.map(tuple).flatMap(partial(route, wanted))
            .partitionBy(len(splits), by_partition))


def route(wanted, row):
    """
    Deal one file Spark read, C{(location, bytes)}, to the map tasks whose
    splits hold it: C{(M, (name, offset, size, bytes))}, each task getting
    only the bytes its splits read (from the byte before its start to the
    end of the line holding its last byte; a compressed file is one split,
    whole).

    @param wanted: C{{normalized location: (name, size, [(M, start, end)])}}.
    """
    location, data = row
    data = bytes(data or b"")
    entry = wanted.get(normalize(location))
    if entry is None:
        raise InputChanged(f"Spark read {location!r}, which is not an input file of the job")
    name, size, splits = entry
    if len(data) != size:
        raise InputChanged(f"input file {name!r} changed since the job was planned (size "
                           f"{size} -> {len(data)} bytes)")
    for m, start, end in splits:
        low = max(0, start - 1)
        newline = data.find(b"\n", max(low, end - 1)) if end > 0 else -1
        high = newline + 1 if newline >= 0 else len(data)
        yield m, (name, low, size, data[low:high])


def materialize(plan, index, records, work):
    """
    The input root, splits and stamps map task C{index} reads.  Files that
    Spark read for it are written under a scratch root, each at its own
    offsets (a sparse file of its full size), so the map reads them as it
    would read the original: the same lines, named by the same offsets; a
    compressed file, which Spark hands as it is, whole, is decompressed by
    txmr's own reader, by its name, as on txmr's engine.  The task's local
    files are linked beside them.
    """
    splits = plan.splits[index]
    fetched = {name for name, _, _ in splits if name in plan.fetched}
    if not fetched:
        return plan.input, splits, {name: list(plan.stamps[name]) for name, _, _ in splits}
    root = os.path.join(work, "input")
    sizes = {}
    handles = {}
    try:
        for _, (name, offset, size, data) in records:
            if name not in handles:
                path = os.path.join(root, name)
                os.makedirs(os.path.dirname(path), exist_ok=True)
                handles[name] = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                os.ftruncate(handles[name], size)
                sizes[name] = size
            os.pwrite(handles[name], data, offset)
    finally:
        for fd in handles.values():
            os.close(fd)
    out = []
    for name, start, end in splits:
        path = os.path.join(root, name)
        if name in fetched:
            if name not in sizes:  # Spark gives no row for an empty file
                os.makedirs(os.path.dirname(path), exist_ok=True)
                open(path, "wb").close()
                sizes[name] = 0
        elif not os.path.lexists(path):
            os.makedirs(os.path.dirname(path), exist_ok=True)
            os.symlink(os.path.join(plan.input, name), path)
        out.append([name, start, end])
    stamps = {name: list(plan.stamps[name]) for name, _, _ in splits if name in plan.stamps}
    return root, out, stamps
