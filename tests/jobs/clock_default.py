"""
An option whose default is read from the clock: each process parses
another value, so its tasks must fail rather than disagree.
"""

import time


def configure(parser):
    parser.add_argument("--stamp", type=float, default=time.time())


def map(filename, line):
    yield "lines", 1


def reduce(key, values):
    yield key, sum(values)
