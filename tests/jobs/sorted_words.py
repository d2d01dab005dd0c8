"""
TOTAL_ORDER = True: word count whose out-0, out-1... concatenated are
sorted by word; map_final emits the counts (the sample must call it too).
"""

from collections import Counter

TOTAL_ORDER = True
counts = Counter()


def map_init():
    global counts
    counts = Counter()


def map(filename, line):
    counts.update(line.split())


def map_final():
    return counts.items()


def reduce(word, ns):
    yield word, sum(ns)
