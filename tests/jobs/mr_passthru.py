"""
Word lengths, with passthru options that change the result: words shorter
than --min-length are left out, and --upper upper-cases them; a step
after the first (mapper and reducer) puts the words in buckets by length.
"""

from mrjob.job import MRJob
from mrjob.step import MRStep


class MRLongWords(MRJob):

    JOBCONF = {"mapreduce.job.reduces": "3", "mapreduce.task.timeout": "600000"}

    def configure_args(self):
        super().configure_args()
        self.add_passthru_arg("--min-length", type=int, default=1)
        self.add_passthru_arg("--upper", action="store_true")

    def steps(self):
        return [MRStep(mapper=self.words, reducer=self.count),
                MRStep(mapper=self.by_length, reducer=self.bucket)]

    def words(self, _, line):
        for word in line.split():
            if len(word) >= self.options.min_length:
                yield (word.upper() if self.options.upper else word), 1

    def count(self, word, ones):
        yield word, sum(ones)

    def by_length(self, word, count):
        self.increment_counter("lengths", str(len(word)))
        yield len(word), [word, count]

    def bucket(self, length, words):
        yield length, sorted(words)


if __name__ == "__main__":
    MRLongWords.run()
