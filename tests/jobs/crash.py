"""
The MIT 6.824 crash test's job: every map and reduce call exits the
process with probability 1/3, and otherwise sleeps a random 0 to 10 s
(unless $TXMR_NO_CRASH is set, to compute the answer in one process).
"""

import os
import random
import time

INPUT = "file"


def maybe_crash():
    if os.environ.get("TXMR_NO_CRASH"):  # the one-process answer
        return
    if random.random() < 1 / 3:
        os._exit(1)
    time.sleep(random.uniform(0, float(os.environ.get("TXMR_CRASH_SLEEP", "10"))))


def map(filename, contents):
    maybe_crash()
    yield "files", filename
    yield "bytes", len(contents)
    yield "lines", contents.count("\n")


def reduce(key, values):
    maybe_crash()
    yield key, sorted(values, key=str)
