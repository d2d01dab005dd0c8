"""
Records when each map and reduce task runs, and in which process, in
$TXMR_TEST_DIR/{map,reduce}-PID-START-END: the tests look for overlaps.
"""

import os
import time

INPUT = "file"


def _record(kind):
    start = time.time()
    time.sleep(2)
    with open(os.path.join(os.environ["TXMR_TEST_DIR"],
                           f"{kind}-{os.getpid()}-{start:.3f}-{time.time():.3f}"), "w"):
        pass


def map_init():
    _record("map")


def map(filename, contents):
    yield filename, len(contents)


def reduce_init():
    _record("reduce")


def reduce(key, values):
    yield key, sum(values)
