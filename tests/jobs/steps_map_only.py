"""
Two steps, the last map-only: word count, then each count's line as
"word=count" in input order within each map task.
"""

from txmr import Step


class Counted:

    OUTPUT = "jsonl"

    def words(self, filename, line):
        for word in line.split():
            yield word, 1

    def count(self, word, ones):
        yield word, sum(ones)

    def show(self, word, count):
        yield f"{word}={count}", len(word)

    def steps(self):
        return [Step(map=self.words, reduce=self.count), Step(map=self.show)]
