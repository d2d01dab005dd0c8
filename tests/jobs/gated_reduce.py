"""
Word count whose reduce tasks wait at their start: each map writes
`mapped-PID-N` in $TXMR_TEST_DIR when it finishes; each reduce writes
`reducing-PID-N` once it has its input, then waits (up to a minute) for
the file `go` there before it reduces.  A test can so act between the
map phase and the reduce phase.
"""

import itertools
import os
import time
from collections import Counter

counts = Counter()
_n = itertools.count()


def _mark(kind):
    name = f"{kind}-{os.getpid()}-{next(_n)}"
    with open(os.path.join(os.environ["TXMR_TEST_DIR"], name), "w"):
        pass


def map_init():
    global counts
    counts = Counter()


def map(filename, line):
    counts.update(line.lower().split())


def map_final():
    _mark("mapped")
    return counts.items()


def reduce_init():
    _mark("reducing")
    go = os.path.join(os.environ["TXMR_TEST_DIR"], "go")
    deadline = time.monotonic() + 60
    while not os.path.exists(go) and time.monotonic() < deadline:
        time.sleep(0.05)
    return ()


def reduce(word, partial_counts):
    yield word, sum(partial_counts)
