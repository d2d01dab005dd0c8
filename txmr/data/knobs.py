"""
The sizes the data path works in, as one value.

They used to be module constants; a task now takes them as a parameter, so
a test or a benchmark can run with small ones without patching modules.
The defaults are the measured ones.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class Knobs:
    """
    @ivar block_bytes: input is read and decoded a block at a time: 1 MiB
        measured 3% faster than 4 MiB (a block's lines are still in the
        cache when the map reads them).
    @ivar buffer_records: a map task's buffer is written out at this many
        records, or sooner when records are large (see C{buffer_bytes}).
    @ivar buffer_bytes: the limit of a map task's buffer is set again after
        each write so that the next one holds about this many bytes of
        marshal data.
    @ivar first_flush: the records after which a map task first writes its
        buffer, before their size is known.
    @ivar chunk_records: pairs per chunk of map output: what a reader holds
        at once, whatever the input's size.
    @ivar run_chunk: items per chunk of a reduce task's spilled run.
    @ivar merge_fan_in: runs merged at once: a merge holds at most this many
        chunks in memory.
    @ivar gc_threshold: allocations between runs of the cyclic collector
        while a task runs (the default is 700).
    @ivar object_overhead: the memory estimate of a reduce task: marshal
        bytes to bytes of Python objects, roughly.  The estimate is checked
        after each chunk.
    @ivar new_key_bytes: what a new key costs a reduce task beyond its pair
        (a list and a hash table entry).
    """

    block_bytes: int = 1 << 20
    buffer_records: int = 200_000
    buffer_bytes: int = 16 << 20
    first_flush: int = 1_000
    chunk_records: int = 16_384
    run_chunk: int = 2_000
    merge_fan_in: int = 16
    gc_threshold: int = 50_000
    object_overhead: int = 4
    new_key_bytes: int = 160


DEFAULT_KNOBS = Knobs()
