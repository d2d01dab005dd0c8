"""
Word count with one map task held back: each map writes `mapped-PID-N` in
$TXMR_TEST_DIR when it finishes; the map that reads `gate.txt` first writes
`gated-PID` and waits (up to a minute) for the file `go` there.  A test can
so act while every other map is committed and no reduce has started.
"""

import itertools
import os
import time
from collections import Counter

counts = Counter()
names = set()
_n = itertools.count()


def _mark(name):
    with open(os.path.join(os.environ["TXMR_TEST_DIR"], name), "w"):
        pass


def map_init():
    global counts, names
    counts = Counter()
    names = set()


def map(filename, line):
    names.add(filename)
    counts.update(line.lower().split())


def map_final():
    # Not a quick task: a worker holds no second map behind the gated one.
    time.sleep(0.1)
    _mark(f"mapped-{os.getpid()}-{next(_n)}")
    if "gate.txt" in names:
        _mark(f"gated-{os.getpid()}")
        go = os.path.join(os.environ["TXMR_TEST_DIR"], "go")
        deadline = time.monotonic() + 60
        while not os.path.exists(go) and time.monotonic() < deadline:
            time.sleep(0.05)
    return counts.items()


def reduce(word, partial_counts):
    yield word, sum(partial_counts)
