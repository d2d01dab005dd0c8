"""
Two steps whose first fails when $TXMR_FAIL_FIRST_STEP is set.
"""

import os

from txmr import Step


def words(filename, line):
    if os.environ.get("TXMR_FAIL_FIRST_STEP"):
        raise ValueError("step 1 told to fail")
    for word in line.split():
        yield word, 1


def total(word, counts):
    yield word, sum(counts)


def steps():
    return [Step(map=words, reduce=total), Step(reduce=total)]
