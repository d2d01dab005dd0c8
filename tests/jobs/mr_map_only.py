"""
A map-only mrjob job: each line's length and its first word, with a
mapper_init and a mapper_final.
"""

from mrjob.job import MRJob
from mrjob.protocol import JSONValueProtocol


class MRLineLengths(MRJob):

    OUTPUT_PROTOCOL = JSONValueProtocol

    def mapper_init(self):
        self.seen = 0

    def mapper(self, _, line):
        self.seen += 1
        words = line.split()
        yield None, {"length": len(line), "first": words[0] if words else None}

    def mapper_final(self):
        self.increment_counter("maps", "lines", self.seen)


if __name__ == "__main__":
    MRLineLengths.run()
