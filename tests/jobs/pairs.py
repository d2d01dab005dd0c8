"""
A job without hooks or combiner: one (word, 1) pair per word, reduced to
the count and the length of the word (a JSON list value).
"""


def map(filename, line):
    for word in line.split():
        yield word, 1


def reduce(word, ones):
    yield word, [sum(ones), len(word)]
