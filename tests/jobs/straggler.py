"""
The first attempt of the map over in-0.txt is a straggler: it sleeps
$TXMR_STRAGGLE_SECONDS (default 60); every other call takes a second.  Reduce tasks first sleep
$TXMR_REDUCE_SECONDS (default 0).
"""

import os
import time

INPUT = "file"


def map(filename, contents):
    marker = os.path.join(os.environ["TXMR_TEST_DIR"], "straggler-started")
    if filename == "in-0.txt" and not os.path.exists(marker):
        open(marker, "w").close()
        time.sleep(float(os.environ.get("TXMR_STRAGGLE_SECONDS", "60")))
        open(marker + "-woke", "w").close()
    else:
        time.sleep(1)
    yield filename, len(contents)


def reduce_init():
    time.sleep(float(os.environ.get("TXMR_REDUCE_SECONDS", "0")))


def reduce(key, values):
    yield key, sum(values)
