"""
Word count as an mrjob job, for bench/mrjob_wordcount.py: the words of
the reference word count (str.split(), lower-cased), with a combiner.
mrjob's local runner and txmr run this same file, unchanged.
"""

from mrjob.job import MRJob


class MRWordCount(MRJob):

    def mapper(self, _, line):
        for word in line.lower().split():
            yield word, 1

    def combiner(self, word, counts):
        yield word, sum(counts)

    def reducer(self, word, counts):
        yield word, sum(counts)


if __name__ == "__main__":
    MRWordCount.run()
