"""
mrjob's word frequency example, with a combiner and counters.
"""

import re

from mrjob.job import MRJob

WORD_RE = re.compile(r"[\w']+")


class MRWordFreqCount(MRJob):

    def mapper(self, _, line):
        self.increment_counter("lines", "read")
        if not line.strip():
            self.increment_counter("lines", "blank")
        for word in WORD_RE.findall(line):
            yield word.lower(), 1

    def combiner(self, word, counts):
        yield word, sum(counts)

    def reducer(self, word, counts):
        self.increment_counter("words", "distinct")
        yield word, sum(counts)


if __name__ == "__main__":
    MRWordFreqCount.run()
