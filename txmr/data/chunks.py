"""
The chunk file format, of map output and of a reduce task's spilled runs.

A chunk file is a magic line, then length-prefixed C{marshal} chunks, each
a column of keys and a column of values (no tuple per pair to write or to
load), of a bounded number of pairs: a reader holds one chunk at a time,
whatever the file's size.
"""

import marshal
import struct

from txmr.data.knobs import DEFAULT_KNOBS

_LENGTH = struct.Struct("<Q")
MAGIC = b"TXMR-CHUNKS-2\n"


def open_chunks(path):
    """
    A new chunked marshal file: a magic line, then length-prefixed chunks.
    """
    f = open(path, "wb")
    f.write(MAGIC)
    return f


def write_chunk(f, obj):
    """
    Write one chunk; return the size of its marshal data.
    """
    data = marshal.dumps(obj)
    f.write(_LENGTH.pack(len(data)))
    f.write(data)
    return len(data)


def write_columns(f, keys, values, per_chunk):
    """
    Write pairs given as two columns, as chunks of at most C{per_chunk}
    (L{txmr.data.knobs.Knobs.chunk_records}) pairs, each chunk a
    C{(keys, values)} tuple of two lists.
    """
    if len(keys) <= per_chunk:
        return write_chunk(f, (keys, values))
    return sum(write_chunk(f, (keys[start:start + per_chunk], values[start:start + per_chunk]))
               for start in range(0, len(keys), per_chunk))


def _is_seed(head):
    """
    Whether a file that starts with C{head} was written by one of the
    seed's workers (C{word count} lines, bucketed by the seed's own rule),
    not by txmr.
    """
    return not head.startswith(MAGIC[:12])


def read_chunks(path, seed_records=DEFAULT_KNOBS.chunk_records):
    """
    Yield C{(size, (keys, values))} for each chunk of a chunked marshal file.

    A file without the magic line is map output written by one of the seed
    system's HTTP workers (C{word count} lines); it is read as such, in
    chunks of C{seed_records} lines.
    """
    with open(path, "rb") as f:
        yield from _chunks(f, path, f.read(len(MAGIC)), seed_records)


def read_txmr_chunks(path, seed_records=DEFAULT_KNOBS.chunk_records):
    """
    L{read_chunks} for a file that txmr wrote: its first item is whether it
    was, and if so its chunks follow.  A reduce reads each map's output
    this way, opening it once, and reads a seed worker's otherwise.
    """
    with open(path, "rb") as f:
        head = f.read(len(MAGIC))
        seed = _is_seed(head)
        yield not seed
        if not seed:
            yield from _chunks(f, path, head, seed_records)


def _chunks(f, path, head, seed_records):
    if head != MAGIC:
        if not _is_seed(head):
            raise ValueError(f"{path}: written by another version of txmr ({head.strip()!r})")
        f.seek(0)
        yield from _seed_chunks(f, seed_records)
        return
    while True:
        head = f.read(_LENGTH.size)
        if not head:
            return
        if len(head) != _LENGTH.size:
            raise ValueError(f"{path}: truncated chunk header")
        (size,) = _LENGTH.unpack(head)
        data = f.read(size)
        if len(data) != size:
            raise ValueError(f"{path}: truncated chunk")
        yield size, marshal.loads(data)


def _seed_chunks(f, lines_per_chunk):
    keys, values = [], []
    size = 0
    for line in f:
        key, _, value = line.decode("utf-8", "surrogateescape").rstrip("\r\n").rpartition(" ")
        try:
            values.append(int(value))
        except ValueError:
            raise ValueError(f"{f.name}: not txmr map output, nor seed lines: {line[:80]!r}")
        keys.append(key)
        size += len(line)
        if len(keys) >= lines_per_chunk:
            yield size, (keys, values)
            keys, values, size = [], [], 0
    if keys:
        yield size, (keys, values)
