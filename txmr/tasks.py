"""
Running one map or one reduce task over files.

This is the data path, and all of it runs in a worker thread (or inline):
it reads, computes and writes, and knows nothing of the network.

  - The driver cuts the input into byte-range I{splits} on line boundaries
    (L{plan_splits}); a map task reads its splits in large blocks.
  - Map output is partitioned by a stable hash of the key's bytes
    (L{partition}), passed through the job's combiner in memory, and written
    per partition as length-prefixed C{marshal} chunks, each a column of
    keys and a column of values (no tuple per pair to write or to load), of
    at most C{CHUNK_RECORDS} pairs.  At most C{buffer_records} records are
    held before they are written.
  - A reduce task groups its partition in a hash table while its estimated
    size stays under C{memory} bytes; past that it spills sorted runs to disk
    and k-way merges them, so its memory never grows with the input.  Output
    is sorted by key.
  - Every file is written under a temporary name owned by the attempt.  The
    driver commits the winning attempt by renaming (L{commit_names}), so a
    losing attempt's output is never read and never seen.
"""

import contextlib
import gc
import heapq
import json
import marshal
import os
import struct
import zlib
from itertools import groupby, islice

from txmr.job import Job, counting

# Input is read and decoded a block at a time: 1 MiB measured 3% faster than
# 4 MiB (a block's lines are still in the cache when the map reads them).
BLOCK_BYTES = 1 << 20
# A map task's buffer is written out at BUFFER_RECORDS records, or sooner when
# records are large: the limit is set again after each write so that the
# next one holds about BUFFER_BYTES of marshal data (and the first write
# comes after FIRST_FLUSH records, before their size is known).
BUFFER_RECORDS = 200_000
BUFFER_BYTES = 16 << 20
FIRST_FLUSH = 1_000
DEFAULT_MEMORY = 128 << 20
# The memory estimate of a reduce task: marshal bytes to bytes of Python
# objects, roughly, and what a new key costs beyond its pair (a list and a
# hash table entry).  The estimate is checked after each chunk.
OBJECT_OVERHEAD = 4
NEW_KEY_BYTES = 160
_LENGTH = struct.Struct("<Q")
MAGIC = b"TXMR-CHUNKS-2\n"
# Pairs per chunk: what a reader holds at once, whatever the input's size.
CHUNK_RECORDS = 16_384
GC_THRESHOLD = 50_000
# Items per chunk of a spilled run, and runs merged at once: a merge holds
# at most MERGE_FAN_IN chunks in memory.
RUN_CHUNK = 2_000
MERGE_FAN_IN = 16


class TaskCancelled(Exception):
    """
    The driver cancelled the attempt (another one won, or it timed out).
    """


def is_record(record):
    """
    Whether C{record} names an input record: C{[file]} in file mode,
    C{[file, block offset, line]} in lines mode.
    """
    return (isinstance(record, list) and len(record) in (1, 3)
            and isinstance(record[0], str)
            and all(isinstance(n, int) and not isinstance(n, bool) for n in record[1:]))


class RecordError(Exception):
    """
    The job's map code raised on one input record.

    @ivar record: C{[filename, block offset, line]} that names the record.
    """

    def __init__(self, record, error):
        super().__init__(f"{type(error).__name__}: {error}")
        self.record = record
        self.error = error


# -- keys ---------------------------------------------------------------------


def _compact(value):
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, sort_keys=True)


def encode_key(key):
    """
    The bytes of a key: UTF-8 for a string, compact JSON for the rest.
    """
    if type(key) is str:
        return key.encode("utf-8", "surrogatepass")
    return _compact(key).encode("utf-8", "surrogatepass")


def partition(key, n):
    """
    The reduce task of a key: CRC-32 of its bytes, the same in every process
    (the built-in C{hash()} is salted per process).
    """
    return zlib.crc32(encode_key(key)) % n


def sort_key(key):
    """
    A total order over JSON keys: null, then numbers, then strings, then the
    rest by their JSON text.
    """
    if type(key) is str:
        return (2, key, "")
    if key is None:
        return (0, 0, "")
    if isinstance(key, (int, float)):
        return (1, key, "")
    return (3, 0, _compact(key))


def sorted_keys(keys):
    keys = list(keys)
    if set(map(type, keys)) <= {str}:
        keys.sort()
    else:
        keys.sort(key=sort_key)
    return keys


def sorted_items(groups):
    """
    The C{(key, values)} items of a dict, lazily, in key order.  (Sorting
    the items themselves would save a lookup per key, but hold a tuple per
    key beside the table: a fifth more memory for 4% less time.)
    """
    keys = sorted_keys(groups)
    return zip(keys, map(groups.__getitem__, keys))


def hashable(key):
    """
    Lists become tuples (a key must be hashable to be grouped).
    """
    if type(key) is list:
        return tuple(hashable(k) for k in key)
    return key


def format_field(value):
    """
    An output field: a string as it is, anything else as compact JSON.
    """
    kind = type(value)
    if kind is str:
        return value
    if kind is int:
        return str(value)
    return _compact(value)


# -- file names ---------------------------------------------------------------


def map_output_name(directory, map_index, reduce_index):
    return os.path.join(directory, f"mr-{map_index}-{reduce_index}")


def reduce_output_name(directory, reduce_index):
    return os.path.join(directory, f"out-{reduce_index}")


def attempt_name(final, attempt):
    """
    Where an attempt writes a file before the driver commits it.
    """
    head, tail = os.path.split(final)
    return os.path.join(head, f".{tail}.attempt-{attempt}.tmp")


def commit_names(spec):
    """
    The C{(temporary, final)} names of every file an attempt produces.
    """
    attempt = spec["attempt"]
    if spec["kind"] == "map":
        finals = [
            map_output_name(spec["intermediate"], spec["index"], r)
            for r in range(spec["n_reduce"])
        ]
    else:
        finals = [reduce_output_name(spec["output"], spec["index"])]
    return [(attempt_name(final, attempt), final) for final in finals]


def commit(spec, written_in_place=False):
    """
    Make an attempt's files visible under their final names, each whole.

    @param written_in_place: the seed's HTTP workers wrote their files under
        the final names; a missing temporary file is then no error.
    """
    for temporary, final in commit_names(spec):
        if not (written_in_place and not os.path.exists(temporary)):
            os.replace(temporary, final)


def discard(spec):
    """
    Remove whatever files an attempt left under temporary names.
    """
    for temporary, _ in commit_names(spec):
        try:
            os.unlink(temporary)
        except FileNotFoundError:
            pass


# -- input --------------------------------------------------------------------


def list_inputs(input_dir):
    """
    The input files under C{input_dir}, as sorted C{(relative path, size)};
    names starting with C{.} or C{_} are skipped, as Hadoop does.
    """
    found = []
    for root, dirs, files in os.walk(input_dir):
        dirs[:] = sorted(d for d in dirs if not d.startswith((".", "_")))
        for name in files:
            if name.startswith((".", "_")):
                continue
            path = os.path.join(root, name)
            if os.path.isfile(path):
                found.append((os.path.relpath(path, input_dir), os.path.getsize(path)))
    return sorted(found)


def plan_splits(files, n_map, mode="lines"):
    """
    Deal the input to C{n_map} map tasks, balanced by bytes.

    In C{lines} mode files are cut into byte ranges C{[name, start, end]}
    (a reader owns the lines that start in its range), so one large file
    feeds every task and small files are packed together.  In C{file} mode
    whole files are dealt, the largest first, each to the lightest task.
    """
    tasks = [[] for _ in range(n_map)]
    if mode == "file":
        loads = [0] * n_map
        for name, size in sorted(files, key=lambda f: (-f[1], f[0])):
            i = loads.index(min(loads))
            tasks[i].append([name, 0, size])
            loads[i] += size
        for splits in tasks:
            splits.sort()
        return tasks
    total = sum(size for _, size in files)
    # Task i gets the bytes [i * total / n_map, (i + 1) * total / n_map).
    bounds = [total * i // n_map for i in range(n_map + 1)]
    offset = 0
    for name, size in files:
        start, end = offset, offset + size
        for i in range(n_map):
            lo, hi = max(start, bounds[i]), min(end, bounds[i + 1])
            if lo < hi:
                tasks[i].append([name, lo - offset, hi - offset])
        offset = end
    return tasks


def read_blocks(path, start, end, block_bytes=BLOCK_BYTES):
    """
    Yield C{(offset, data)}: whole lines, in blocks of about C{block_bytes},
    of the lines of C{path} that start in C{[start, end)}.  The last line of
    a file may lack its newline.
    """
    with open(path, "rb") as f:
        if start > 0:
            f.seek(start - 1)
            position = start - 1 + len(f.readline())
        else:
            position = 0
        rest = b""
        while position < end:
            data = f.read(block_bytes)
            if not data:
                if rest:
                    yield position, rest
                return
            data = rest + data
            cut = data.rfind(b"\n") + 1
            if cut == 0:
                rest = data
                continue
            block, rest = data[:cut], data[cut:]
            if position + len(block) >= end:
                # Keep the lines that start before `end`: up to the newline
                # that ends the line holding byte end - 1.
                last = block.index(b"\n", end - position - 1) + 1
                yield position, block[:last]
                return
            yield position, block
            position += len(block)


def decode(data):
    text = data.decode("utf-8", "surrogateescape")
    if "\r" in text:
        text = text.replace("\r\n", "\n")
    return text


# -- chunked marshal files ----------------------------------------------------


def open_chunks(path):
    """
    A new chunked marshal file: a magic line, then length-prefixed chunks.
    """
    f = open(path, "wb")
    f.write(MAGIC)
    return f


def write_chunk(f, obj):
    data = marshal.dumps(obj)
    f.write(_LENGTH.pack(len(data)))
    f.write(data)
    return len(data)


def write_columns(f, keys, values):
    """
    Write pairs given as two columns, as chunks of at most L{CHUNK_RECORDS}
    pairs, each chunk a C{(keys, values)} tuple of two lists.
    """
    per_chunk = CHUNK_RECORDS
    if len(keys) <= per_chunk:
        return write_chunk(f, (keys, values))
    return sum(write_chunk(f, (keys[start:start + per_chunk], values[start:start + per_chunk]))
               for start in range(0, len(keys), per_chunk))


def read_chunks(path):
    """
    Yield C{(size, (keys, values))} for each chunk of a chunked marshal file.

    A file without the magic line is map output written by one of the seed
    system's HTTP workers (C{word count} lines); it is read as such.
    """
    with open(path, "rb") as f:
        head = f.read(len(MAGIC))
        if head != MAGIC:
            if head.startswith(MAGIC[:12]):
                raise ValueError(f"{path}: written by another version of txmr ({head.strip()!r})")
            f.seek(0)
            yield from _seed_chunks(f)
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


def _seed_chunks(f, lines_per_chunk=CHUNK_RECORDS):
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


# -- map ----------------------------------------------------------------------


class MapOutput:
    """
    The partitioned output of one map attempt.

    Pairs are buffered, passed through the combiner if the job has one, and
    written as columnar chunks (L{write_columns}) to one temporary file per
    partition, at most C{buffer_records} records being held at any time.
    """

    def __init__(self, paths, instance, combiner, counters, buffer_records=BUFFER_RECORDS):
        self.paths = paths
        self.files = [None] * len(paths)
        self.instance = instance
        self.combiner = combiner
        self.counters = counters
        self.buffer_records = buffer_records
        self.limit = min(buffer_records, FIRST_FLUSH)
        self.groups = {}
        # Each partition's pairs as two columns; flush() empties them in
        # place, so their bound append methods stay valid.
        self.keys = [[] for _ in paths]
        self.values = [[] for _ in paths]
        self.buffered = 0
        self.records = 0

    def _place(self, key, value):
        i = partition(key, len(self.paths))
        self.keys[i].append(key)
        self.values[i].append(value)

    def add(self, key, value):
        if type(key) is list:
            key = hashable(key)
        if self.combiner:
            values = self.groups.get(key)
            if values is None:
                self.groups[key] = [value]
            else:
                values.append(value)
        else:
            self._place(key, value)
        self._count(1)

    def extend(self, pairs):
        """
        Add every pair of an iterable; the common case (string keys, no
        combiner) is partitioned inline, without a call per pair.
        """
        if pairs is None:
            return
        add = self.add
        if self.combiner:
            for key, value in pairs:
                add(key, value)
            return
        add_key = [column.append for column in self.keys]
        add_value = [column.append for column in self.values]
        n = len(add_key)
        crc32 = zlib.crc32
        pending = 0
        for key, value in pairs:
            if type(key) is str:
                i = crc32(key.encode("utf-8", "surrogatepass")) % n
                add_key[i](key)
                add_value[i](value)
                pending += 1
                if pending == 4096:
                    self._count(pending)
                    pending = 0
            else:
                add(key, value)
        self._count(pending)

    def _count(self, n):
        self.records += n
        self.buffered += n
        if self.buffered >= self.limit:
            self.flush()

    def _combine(self):
        init, combine, final = Job.hooks(self.instance, "combine")
        produced = 0

        def place(pairs):
            nonlocal produced
            for key, value in pairs or ():
                if type(key) is list:
                    key = hashable(key)
                self._place(key, value)
                produced += 1

        place(init())
        consumed = 0
        for key, values in self.groups.items():
            consumed += len(values)
            place(combine(key, values))
        place(final())
        self.groups = {}
        add(self.counters, "combine_input_records", consumed)
        add(self.counters, "combine_output_records", produced)

    def flush(self):
        if self.combiner and self.groups:
            self._combine()
        records = size = 0
        for i, keys in enumerate(self.keys):
            if keys:
                if self.files[i] is None:
                    self.files[i] = open_chunks(self.paths[i])
                records += len(keys)
                size += write_columns(self.files[i], keys, self.values[i])
                keys.clear()
                self.values[i].clear()
        if records:
            self.limit = max(1, min(self.buffer_records, BUFFER_BYTES * records // size))
        self.buffered = 0

    def close(self):
        self.flush()
        for i, f in enumerate(self.files):
            if f is None:
                f = open_chunks(self.paths[i])
            f.close()
        add(self.counters, "map_output_records", self.records)


def add(counters, name, amount, group="txmr"):
    names = counters.setdefault(group, {})
    names[name] = names.get(name, 0) + amount


def _check(cancel):
    if cancel is not None and cancel.is_set():
        raise TaskCancelled("attempt cancelled by the driver")


def run_map(job, spec, cancel=None):
    """
    Run one map attempt described by C{spec}; return its counters.
    """
    counters = {}
    instance = job.instance()
    init, function, final = Job.hooks(instance, "map")
    paths = [temporary for temporary, _ in commit_names(spec)]
    out = MapOutput(paths, instance, job.has_combiner, counters,
                    spec.get("buffer_records", BUFFER_RECORDS))
    skip = {tuple(r) for r in spec.get("skip", ())}
    records = size = skipped = 0
    with counting(counters):
        out.extend(init())
        for name, start, end in spec["splits"]:
            path = os.path.join(spec["input"], name)
            if job.input_mode == "file":
                _check(cancel)
                if (name,) in skip:
                    skipped += 1
                    continue
                with open(path, "rb") as f:
                    data = f.read()
                records += 1
                size += len(data)
                try:
                    pairs = function(name, decode(data))
                    out.extend(pairs)
                except Exception as e:
                    raise RecordError([name], e) from e
                continue
            for offset, data in read_blocks(path, start, end, spec.get("block_bytes", BLOCK_BYTES)):
                _check(cancel)
                size += len(data)
                lines = decode(data).split("\n")
                if lines[-1] == "":
                    lines.pop()
                records += len(lines)
                if skip:
                    keep = [(i, line) for i, line in enumerate(lines)
                            if (name, offset, i) not in skip]
                    skipped += len(lines) - len(keep)
                else:
                    keep = enumerate(lines)
                i = -1
                try:
                    for i, line in keep:
                        pairs = function(name, line)
                        if pairs is not None:
                            out.extend(pairs)
                except Exception as e:
                    raise RecordError([name, offset, i], e) from e
        out.extend(final())
        out.close()
    add(counters, "map_input_records", records)
    add(counters, "map_input_bytes", size)
    if skipped:
        add(counters, "skipped_records", skipped)
    return counters


# -- reduce -------------------------------------------------------------------


class Grouper:
    """
    Groups C{(key, value)} pairs by key within a memory budget, spilling
    sorted runs of C{(key, values)} to disk past it.
    """

    fan_in = MERGE_FAN_IN

    def __init__(self, spill_prefix, memory, counters):
        self._spills = 0
        self.spill_prefix = spill_prefix
        self.memory = memory
        self.counters = counters
        self.groups = {}
        self.used = 0
        self.runs = []

    def add_chunk(self, size, keys, values):
        """
        Group a chunk of map output (at most L{CHUNK_RECORDS} pairs), then
        spill if the estimate passed the budget.  The estimate counts the
        pairs' objects, and a new list and table entry per new key: a chunk
        of mostly new keys costs more than one that extends known keys.
        """
        groups = self.groups
        before = len(groups)
        get = groups.get
        for key, value in zip(keys, values):
            group = get(key)
            if group is None:
                groups[key] = [value]
            else:
                group.append(value)
        self.used += size * OBJECT_OVERHEAD + (len(groups) - before) * NEW_KEY_BYTES
        if self.used > self.memory:
            self.spill()

    def spill(self):
        groups = self.groups
        self.runs.append(self._write_run(sorted_items(groups)))
        add(self.counters, "spilled_records", sum(map(len, groups.values())))
        self.groups = {}
        self.used = 0

    def _write_run(self, items):
        """
        Write sorted C{(key, values)} items as a run; return its path.
        """
        path = f"{self.spill_prefix}.spill-{self._spills}"
        self._spills += 1
        with open_chunks(path) as f:
            while True:
                batch = list(islice(items, RUN_CHUNK))
                if not batch:
                    break
                keys, groups = zip(*batch)
                write_chunk(f, (keys, groups))
        return path

    def _run(self, path):
        for _, (keys, groups) in read_chunks(path):
            yield from zip(keys, groups)

    def _merge(self, sources):
        merged = heapq.merge(*sources, key=lambda kv: sort_key(kv[0]))
        return self._concatenated(merged)

    def sorted_groups(self):
        """
        C{(key, values)} in key order, merging the spilled runs if any.

        A merge reads one chunk of each of its runs at a time, so it merges
        at most C{fan_in} runs at once: more runs are first merged, that
        many at a time, into longer ones.  What is still in memory once
        there are runs is spilled too, so the merge holds only its runs'
        chunks: memory then stays bounded however large the input.
        """
        if not self.runs:
            return sorted_items(self.groups)
        if self.groups:
            self.spill()
        while len(self.runs) >= self.fan_in:
            batch, self.runs = self.runs[:self.fan_in], self.runs[self.fan_in:]
            self.runs.append(self._write_run(self._merge([self._run(p) for p in batch])))
            self._remove(batch)
        return self._merge([self._run(p) for p in self.runs])

    @staticmethod
    def _concatenated(merged):
        for key, runs in groupby(merged, key=lambda kv: kv[0]):
            values = []
            for _, part in runs:
                values.extend(part)
            yield key, values

    def remove_runs(self):
        self._remove(self.runs)

    @staticmethod
    def _remove(paths):
        for path in paths:
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass


def run_reduce(job, spec, cancel=None):
    """
    Run one reduce attempt described by C{spec}; return its counters.
    """
    counters = {}
    ((temporary, _),) = commit_names(spec)
    index = spec["index"]
    spill_prefix = os.path.join(spec["intermediate"], os.path.basename(temporary))
    grouper = Grouper(spill_prefix, spec.get("memory") or DEFAULT_MEMORY, counters)
    records = groups = written = 0
    instance = job.instance()
    init, function, final = Job.hooks(instance, "reduce")
    try:
        for m in range(spec["n_map"]):
            for size, (keys, values) in read_chunks(map_output_name(spec["intermediate"], m, index)):
                _check(cancel)
                records += len(keys)
                grouper.add_chunk(size, keys, values)
        with counting(counters), open(temporary, "w", encoding="utf-8",
                                      errors="surrogateescape") as out:
            lines = []
            write = lines.append
            fmt = format_field

            def emit(pairs):
                for key, value in pairs or ():
                    write(f"{fmt(key)}\t{fmt(value)}\n")

            emit(init())
            sorted_groups = grouper.sorted_groups()
            while batch := list(islice(sorted_groups, 20_000)):
                _check(cancel)
                for key, values in batch:
                    emit(function(key, values))
                groups += len(batch)
                written += len(lines)
                out.writelines(lines)
                lines.clear()
            emit(final())
            written += len(lines)
            out.writelines(lines)
            out.flush()
            os.fsync(out.fileno())
    finally:
        grouper.remove_runs()
    add(counters, "reduce_input_records", records)
    add(counters, "reduce_input_groups", groups)
    add(counters, "reduce_output_records", written)
    return counters


@contextlib.contextmanager
def fewer_collections(threshold=GC_THRESHOLD):
    """
    A task allocates millions of small objects that live until it ends, so
    the cyclic collector, run every 700 allocations by default, finds
    nothing to free and costs a quarter of the time.  Collect less often
    while the task runs; cyclic garbage is still collected, later.
    """
    previous = gc.get_threshold()
    gc.set_threshold(threshold, *previous[1:])
    try:
        yield
    finally:
        gc.set_threshold(*previous)


def run_task(job, spec, cancel=None):
    """
    Run the attempt C{spec} describes, map or reduce; return its counters.
    """
    runner = run_map if spec["kind"] == "map" else run_reduce
    try:
        with fewer_collections():
            return runner(job, spec, cancel)
    except BaseException:
        discard(spec)
        raise
