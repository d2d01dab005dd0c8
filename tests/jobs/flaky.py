"""
Every map fails on a worker started with TXMR_BAD_WORKER=1 (a broken
machine, say), and succeeds elsewhere after a third of a second.
"""

import os
import time

INPUT = "file"


def map(filename, contents):
    if os.environ.get("TXMR_BAD_WORKER") == "1":
        raise OSError("this machine's disk is broken")
    time.sleep(0.3)
    yield filename, len(contents)


def reduce(filename, sizes):
    yield filename, sum(sizes)
