"""
Records every map invocation in $TXMR_TEST_DIR/invocations, then sleeps
2 to 5 s: a map task run to completion twice shows up twice.
"""

import os
import random
import time

INPUT = "file"


def map(filename, contents):
    fd = os.open(os.path.join(os.environ["TXMR_TEST_DIR"], "invocations"),
                 os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    os.write(fd, f"{filename} {os.getpid()}\n".encode())
    os.close(fd)
    time.sleep(random.uniform(2, 5))
    yield filename, len(contents)


def reduce(key, values):
    yield key, sum(values)
