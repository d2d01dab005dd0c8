"""
Word count, counting words as the seed system did: C{line.split()}, each
word lower-cased, punctuation kept.

Each map task counts in memory and emits every word once, at the end
(C{map_final}); a Python call per word would cost several times the
counting itself.
"""

from collections import Counter

counts = Counter()


def map_init():
    global counts
    counts = Counter()


def map(filename, line):
    counts.update(line.lower().split())


def map_final():
    # Hand the counts over and drop them: they are freed once written,
    # not held while this worker runs its next tasks.
    global counts
    done, counts = counts, Counter()
    return done.items()


def reduce(word, partial_counts):
    yield word, sum(partial_counts)
