"""
Two steps whose second fails on the word "lazy".
"""

from txmr import Step


def words(filename, line):
    for word in line.split():
        yield word, 1


def total(word, counts):
    yield word, sum(counts)


def boom(word, counts):
    if word == "lazy":
        raise ValueError("nothing lazy in step 2")
    yield word, sum(counts)


def steps():
    return [Step(map=words, reduce=total), Step(reduce=boom)]
