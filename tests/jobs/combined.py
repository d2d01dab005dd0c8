"""
Word count with a combiner, a user counter and list keys too.
"""

import txmr


def map(filename, line):
    txmr.counter("words", "lines")
    for word in line.split():
        yield word.lower(), 1
    yield ["length", len(line)], 1


def combine(key, counts):
    yield key, sum(counts)


reduce = combine
