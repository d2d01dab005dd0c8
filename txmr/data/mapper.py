"""
A map attempt: its input records through the job's map, into partitioned
output.

Map output is partitioned by a stable hash of the key's bytes
(L{txmr.data.keys.partition}) or by the job's own C{partition}, passed
through the job's combiner in memory, and written per partition as chunks
(L{txmr.data.chunks}) of at most C{chunk_records} pairs.  Its input
records are read by L{txmr.data.records}.  At most C{buffer_records} records are held before
they are written.  The sizes are the attempt's L{txmr.data.knobs.Knobs}.
A map-only job's map task writes its pairs in order to its output file
instead (L{MapOnlyOutput}).
"""

import os
import zlib

from txmr.core.counters import add
from txmr.data.chunks import open_chunks, write_columns
from txmr.data.inputs import check_unchanged
from txmr.data.keys import hashable, job_partition, partition
from txmr.data.layout import Layout
from txmr.data.output import OutputFile, PairBuffer
from txmr.data.records import Tally, json_lines, read_file, read_lines
from txmr.data.sampling import RangePartition
from txmr.job import WHOLE_FILE_MODES, Job, counting


class MapOutput:
    """
    The partitioned output of one map attempt.

    Pairs are buffered, passed through the combiner if the job has one, and
    written as columnar chunks (L{write_columns}) to one temporary file per
    partition, at most C{knobs.buffer_records} records being held at any
    time.
    """

    def __init__(self, paths, instance, combiner, counters, knobs, partition=None):
        self.paths = paths
        # The job's own partition(key, n), or None for CRC-32.
        self.partition = partition
        self.files = [None] * len(paths)
        self.instance = instance
        self.combiner = combiner
        self.counters = counters
        self.buffer_records = knobs.buffer_records
        self.buffer_bytes = knobs.buffer_bytes
        self.chunk_records = knobs.chunk_records
        self.limit = min(knobs.buffer_records, knobs.first_flush)
        self.groups = {}
        # Each partition's pairs as two columns; flush() empties them in
        # place, so their bound append methods stay valid.
        self.keys = [[] for _ in paths]
        self.values = [[] for _ in paths]
        self.buffered = 0
        self.records = 0

    def _place(self, key, value):
        if self.partition is None:
            i = partition(key, len(self.paths))
        else:
            i = job_partition(self.partition, key, len(self.paths))
        self.keys[i].append(key)
        self.values[i].append(value)

    def add(self, key, value):
        if type(key) is not str and type(key) is not int:
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
        if self.combiner or self.partition is not None:
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
                if type(key) is not str and type(key) is not int:
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
                size += write_columns(self.files[i], keys, self.values[i], self.chunk_records)
                keys.clear()
                self.values[i].clear()
        if records:
            self.limit = max(1, min(self.buffer_records, self.buffer_bytes * records // size))
        self.buffered = 0

    def close(self):
        self.flush()
        for i, f in enumerate(self.files):
            if f is None:
                f = open_chunks(self.paths[i])
            f.close()
        add(self.counters, "map_output_records", self.records)


class MapOnlyOutput:
    """
    The output of a map task of a map-only job: its pairs, in the order
    its map produced them, into its own output file (no partitions, no
    combiner).
    """

    def __init__(self, path, format, counters):
        self.file = OutputFile(path, format)
        self.buffer = PairBuffer(self.file)
        self.counters = counters
        self.extend = self.buffer.extend

    def close(self):
        self.buffer.flush()
        self.file.close()
        add(self.counters, "map_output_records", self.file.written)


def run_map(job, spec, knobs, cancel=None, options=None):
    """
    Run one map attempt described by C{spec}, a L{txmr.core.spec.TaskSpec};
    return its counters.

    @param options: the job's parsed options.
    """
    counters = {}
    instance = job.instance(options)
    init, function, final = Job.hooks(instance, "map")
    files = Layout.of(spec).files(spec.kind, spec.index, spec.attempt)
    if spec.n_reduce == 0:
        ((path, _),) = files
        out = MapOnlyOutput(path, job.output_format, counters)
    else:
        partition = None
        if job.total_order:
            partition = RangePartition(spec.bounds)
        elif job.has_partition:
            partition = instance.partition
        out = MapOutput([temporary for temporary, _ in files], instance, job.has_combiner,
                        counters, knobs, partition=partition)
    if job.input_mode == "jsonl":
        function = json_lines(function)
    skip = {tuple(r) for r in spec.skip}
    tally = Tally()
    with counting(counters, options):
        out.extend(init())
        for name, start, end in spec.splits:
            path = os.path.join(spec.input, name)
            # Before and after reading: a file rewritten under a running job
            # fails the job, naming it, rather than give a mixed answer.
            check_unchanged(name, path, spec.stamps.get(name))
            if job.input_mode in WHOLE_FILE_MODES:
                read_file(job, function, name, path, out, skip, tally, cancel)
            else:
                read_lines(function, name, path, start, end, out, skip, tally, knobs, cancel)
            check_unchanged(name, path, spec.stamps.get(name))
        out.extend(final())
        out.close()
    add(counters, "map_input_records", tally.records)
    add(counters, "map_input_bytes", tally.size)
    if tally.skipped:
        add(counters, "skipped_records", tally.skipped)
    return counters
