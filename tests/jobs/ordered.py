"""
A class job with its own partition and sorted values: each input line is
"user,time,event"; a user's events come to reduce sorted by [time, event]
(secondary sort without a composite key), and users are partitioned by
their first letter, a to m to the first reduce task, the rest after.
--sep joins the events (self.options, the class way).
"""


class Ordered:
    SORT_VALUES = True
    OUTPUT = "jsonl"

    def configure(self, parser):
        parser.add_argument("--sep", default=" ")

    def partition(self, user, n):
        return 0 if user[:1] <= "m" else n - 1

    def map(self, filename, line):
        user, time, event = line.split(",")
        yield user, [int(time), event]

    def reduce(self, user, events):
        yield user, self.options.sep.join(f"{t}:{e}" for t, e in events)
