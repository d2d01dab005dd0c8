"""
Word count whose reduce takes $TXMR_REDUCE_SLEEP seconds (default 0) per
key: a test watching the output sees its files appear one by one.
"""

import os
import time


def map(filename, line):
    for word in line.lower().split():
        yield word, 1


def reduce(word, counts):
    time.sleep(float(os.environ.get("TXMR_REDUCE_SLEEP", "0")))
    yield word, sum(counts)
