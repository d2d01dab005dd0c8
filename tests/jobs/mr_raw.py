"""
mapper_raw: each input file's path, read by the job itself; then the
lines per file and the longest line's length.
"""

import os

from mrjob.job import MRJob
from mrjob.step import MRStep


class MRRawFiles(MRJob):

    def steps(self):
        return [MRStep(mapper_raw=self.read_file, reducer=self.total)]

    def read_file(self, input_path, input_uri):
        with open(input_path, "rb") as f:
            lines = f.read().splitlines()
        name = os.path.basename(input_uri)
        self.increment_counter("raw", "files")
        yield name, len(lines)
        yield "longest", max((len(line) for line in lines), default=0)

    def total(self, key, values):
        yield key, (max(values) if key == "longest" else sum(values))


if __name__ == "__main__":
    MRRawFiles.run()
