"""
A reduce attempt: its partition of every map task's output, grouped by key,
through the job's reduce, into one output file sorted by key (in the job's
output format, L{txmr.data.output}).

A reduce task groups its partition in a hash table while its estimated
size stays under C{memory} bytes; past that it spills sorted runs to disk
and k-way merges them, so its memory never grows with the input.  Output
is sorted by key; with C{SORT_VALUES}, each key's values are sorted too
(L{txmr.data.keys.sort_values}).  The sizes are the attempt's
L{txmr.data.knobs.Knobs}.
"""

import heapq
import os
from itertools import groupby, islice

from txmr.core.spec import DEFAULT_MEMORY
from txmr.core.counters import add
from txmr.data.attempt import check_cancelled
from txmr.data.chunks import open_chunks, read_chunks, read_txmr_chunks, write_chunk
from txmr.data.keys import partition, sort_key, sort_values, sorted_items
from txmr.data.layout import Layout
from txmr.data.output import OutputFile, PairBuffer
from txmr.job import Job, counting


class Grouper:
    """
    Groups C{(key, value)} pairs by key within a memory budget, spilling
    sorted runs of C{(key, values)} to disk past it.
    """

    def __init__(self, spill_prefix, memory, counters, knobs):
        self._spills = 0
        self.spill_prefix = spill_prefix
        self.memory = memory
        self.counters = counters
        self.fan_in = knobs.merge_fan_in
        self.run_chunk = knobs.run_chunk
        self.object_overhead = knobs.object_overhead
        self.new_key_bytes = knobs.new_key_bytes
        self.groups = {}
        self.used = 0
        self.runs = []

    def add_chunk(self, size, keys, values):
        """
        Group a chunk of map output (at most C{chunk_records} pairs), then
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
        self.used += size * self.object_overhead + (len(groups) - before) * self.new_key_bytes
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
        run_chunk = self.run_chunk
        with open_chunks(path) as f:
            while True:
                batch = list(islice(items, run_chunk))
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


def map_output_of(layout, m, index, knobs):
    """
    Map task C{m}'s pairs for reduce task C{index}, as chunks, where the
    job's maps were run by txmr's workers and maybe some seed workers.  A
    seed worker buckets a word by its first letter, txmr by CRC-32 of its
    bytes: from a seed worker's map output, take the keys that are this
    task's from every one of its buckets.  (Where every map was a seed
    worker's, reduces follow the seed's buckets instead: see
    L{txmr.core.spec.TaskSpec.seed_buckets}.)
    """
    chunks = read_txmr_chunks(layout.map_output(m, index), knobs.chunk_records)
    if next(chunks):
        yield from chunks
        return
    chunks.close()
    n = layout.n_reduce
    for bucket in range(n):
        for size, (keys, values) in read_chunks(layout.map_output(m, bucket),
                                                knobs.chunk_records):
            mine = [i for i, key in enumerate(keys) if partition(key, n) == index]
            if len(mine) < len(keys):
                size = size * len(mine) // max(1, len(keys))
                keys, values = [keys[i] for i in mine], [values[i] for i in mine]
            if keys:
                yield size, (keys, values)


def run_reduce(job, spec, knobs, cancel=None, options=None):
    """
    Run one reduce attempt described by C{spec}, a
    L{txmr.core.spec.TaskSpec}; return its counters.

    @param options: the job's parsed options.
    """
    counters = {}
    layout = Layout.of(spec)
    ((temporary, _),) = layout.files(spec.kind, spec.index, spec.attempt)
    index = spec.index
    spill_prefix = os.path.join(spec.intermediate, os.path.basename(temporary))
    grouper = Grouper(spill_prefix, spec.memory or DEFAULT_MEMORY, counters, knobs)
    records = groups = 0
    instance = job.instance(options)
    init, function, final = Job.hooks(instance, "reduce")
    try:
        for m in range(spec.n_map):
            chunks = (read_chunks(layout.map_output(m, index), knobs.chunk_records)
                      if spec.seed_buckets else map_output_of(layout, m, index, knobs))
            for size, (keys, values) in chunks:
                check_cancelled(cancel)
                records += len(keys)
                grouper.add_chunk(size, keys, values)
        with counting(counters, options), OutputFile(temporary, job.output_format) as out:
            buffer = PairBuffer(out)
            emit = buffer.extend
            emit(init())
            sorted_groups = grouper.sorted_groups()
            while batch := list(islice(sorted_groups, 20_000)):
                check_cancelled(cancel)
                if job.sort_values:
                    for key, values in batch:
                        emit(function(key, sort_values(values)))
                else:
                    for key, values in batch:
                        emit(function(key, values))
                groups += len(batch)
            emit(final())
            buffer.flush()
    finally:
        grouper.remove_runs()
    add(counters, "reduce_input_records", records)
    add(counters, "reduce_input_groups", groups)
    add(counters, "reduce_output_records", out.written)
    return counters
