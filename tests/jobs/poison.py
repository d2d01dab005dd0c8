"""
Word count whose map raises on any line that holds the word POISON.
"""


def map(filename, line):
    if "POISON" in line:
        raise ValueError("poisoned record")
    for word in line.split():
        yield word, 1


def reduce(word, ones):
    yield word, sum(ones)
