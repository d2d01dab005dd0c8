"""
Word count whose map tasks take a while: each writes a marker file
`running-map-PID` in $TXMR_TEST_DIR when it starts, then sleeps
$TXMR_SLOW_SECONDS (default 3) before it finishes.
"""

import os
import time
from collections import Counter

counts = Counter()


def map_init():
    global counts
    counts = Counter()
    with open(os.path.join(os.environ["TXMR_TEST_DIR"], f"running-map-{os.getpid()}"), "w"):
        pass


def map(filename, line):
    counts.update(line.lower().split())


def map_final():
    time.sleep(float(os.environ.get("TXMR_SLOW_SECONDS", "3")))
    return counts.items()


def reduce(word, partial_counts):
    yield word, sum(partial_counts)
