"""
The first map call on each file kills its process (as a segfault or the
OOM killer would); the next attempt succeeds.
"""

import os

INPUT = "file"


def map(filename, contents):
    marker = os.path.join(os.environ["TXMR_TEST_DIR"], "died-" + filename)
    if not os.path.exists(marker):
        open(marker, "w").close()
        os._exit(1)
    yield filename, len(contents)


def reduce(filename, sizes):
    yield filename, sum(sizes)
