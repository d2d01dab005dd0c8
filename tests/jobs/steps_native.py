"""
A native job of three steps: word count (with a combiner), then a
map-only step that turns each count into [count, word] under the word's
first letter, then the most frequent word of each letter (--min-count
leaves out rarer words).
"""

import txmr
from txmr import Step


def configure(parser):
    parser.add_argument("--min-count", type=int, default=1)


def words(filename, line):
    for word in line.lower().split():
        yield word, 1


def total(word, counts):
    yield word, sum(counts)


def keyed(word, count):
    if count >= txmr.options().min_count:
        txmr.counter("keyed", "words")
        yield word[0], [count, word]


def top(letter, pairs):
    txmr.counter("top", "letters")
    yield letter, max(pairs)


def steps():
    return [Step(map=words, combine=total, reduce=total), Step(map=keyed), Step(reduce=top)]
