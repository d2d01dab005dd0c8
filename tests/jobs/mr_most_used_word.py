"""
mrjob's most-used-word example: two steps, the second reducer-only, its
values a list each that the protocol turned from a tuple.
"""

import re

from mrjob.job import MRJob
from mrjob.step import MRStep

WORD_RE = re.compile(r"[\w']+")


class MRMostUsedWord(MRJob):

    def steps(self):
        return [
            MRStep(mapper=self.mapper_get_words, combiner=self.combiner_count_words,
                   reducer=self.reducer_count_words),
            MRStep(reducer=self.reducer_find_max_word),
        ]

    def mapper_get_words(self, _, line):
        for word in WORD_RE.findall(line):
            yield word.lower(), 1

    def combiner_count_words(self, word, counts):
        yield word, sum(counts)

    def reducer_count_words(self, word, counts):
        self.increment_counter("step1", "words")
        yield None, (sum(counts), word)

    def reducer_find_max_word(self, _, word_count_pairs):
        self.increment_counter("step2", "groups")
        yield max(word_count_pairs)


if __name__ == "__main__":
    MRMostUsedWord.run()
