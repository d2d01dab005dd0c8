"""
Map output across Spark's shuffle, as the files txmr's reduce reads.

A map task hands its map output files, one per reduce task, to the shuffle
as C{(R, (M, piece, bytes))} records, R being the reduce task that txmr's
CRC-32 partitioning gave them (L{map_pieces}); a reduce task puts the pieces
back into the same files (L{reassemble}).  Records are keyed by their
partition's number (L{by_partition}).  No Spark here: only its records.
"""

import os

from txmr.core.states import Kind
from txmr.data.layout import Layout

# Map output crosses the shuffle in pieces of this size (a record must stay
# well under what Spark's serializers take in one piece).
PIECE = 8 << 20


def by_partition(key):
    """
    Spark's partition function for records whose key is their partition.
    """
    return key


def map_pieces(spec):
    """
    The map output files of the map attempt C{spec}, as shuffle records.
    """
    files = Layout.of(spec).files(Kind.MAP, spec.index, spec.attempt)
    for r, (temporary, _) in enumerate(files):
        with open(temporary, "rb") as f:
            piece = 0
            while True:
                data = f.read(PIECE)
                if data or piece == 0:
                    yield r, (spec.index, piece, data)
                if len(data) < PIECE:
                    break
                piece += 1


def reassemble(layout, index, records):
    """
    Write the pieces of map output shuffled to reduce task C{index} back
    into its map output files under C{layout}.

    @raise RuntimeError: no piece came from some map task.
    """
    present = set()
    for _, (m, piece, data) in records:
        fd = os.open(layout.map_output(m, index), os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            os.pwrite(fd, data, piece * PIECE)
        finally:
            os.close(fd)
        present.add(m)
    missing = sorted(set(range(layout.n_map)) - present)
    if missing:
        raise RuntimeError(f"no output of map tasks {missing} reached reduce task {index}")
