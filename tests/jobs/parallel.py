"""
Records when each map and reduce task runs, and in which process, in
$TXMR_TEST_DIR/{map,reduce}-PID-START-END: the tests look for overlaps.
A map task takes $TXMR_MAP_SECONDS (default 2), a reduce task 2 seconds.
"""

import os
import time

INPUT = "file"


def _record(kind, seconds=2.0):
    start = time.time()
    time.sleep(seconds)
    with open(os.path.join(os.environ["TXMR_TEST_DIR"],
                           f"{kind}-{os.getpid()}-{start:.3f}-{time.time():.3f}"), "w"):
        pass


def map_init():
    _record("map", float(os.environ.get("TXMR_MAP_SECONDS", "2")))


def map(filename, contents):
    yield filename, len(contents)


def reduce_init():
    _record("reduce")


def reduce(key, values):
    yield key, sum(values)
