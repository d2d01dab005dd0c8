"""
Word count that marks every task it runs, to count invocations: each map
and reduce task writes a file `map-run-UUID` or `reduce-run-UUID` in
$TXMR_TEST_DIR when it starts; maps then take $TXMR_SLOW_SECONDS and
reduces $TXMR_SLOW_REDUCE (default 0) before they finish.
"""

import os
import time
import uuid
from collections import Counter

counts = Counter()


def _mark(kind):
    with open(os.path.join(os.environ["TXMR_TEST_DIR"], f"{kind}-run-{uuid.uuid4().hex}"), "w"):
        pass


def map_init():
    global counts
    counts = Counter()
    _mark("map")


def map(filename, line):
    counts.update(line.lower().split())


def map_final():
    time.sleep(float(os.environ.get("TXMR_SLOW_SECONDS", "0")))
    return counts.items()


def reduce_init():
    _mark("reduce")


def reduce(word, partial_counts):
    yield word, sum(partial_counts)


def reduce_final():
    time.sleep(float(os.environ.get("TXMR_SLOW_REDUCE", "0")))
    return ()
