"""
SORT_VALUES: each user's events, in the order of their encoded values
(["2", ...] sorts before ["10", ...]: JSON text, not numbers).
"""

from mrjob.job import MRJob
from mrjob.protocol import RawValueProtocol


class MREventOrder(MRJob):

    SORT_VALUES = True
    OUTPUT_PROTOCOL = RawValueProtocol

    def mapper(self, _, line):
        user, time, event = line.split(",")
        yield user, [time, event]
        yield user, [int(time), event]

    def reducer(self, user, events):
        yield None, user + ": " + " ".join(f"{t}{e}" for t, e in events)


if __name__ == "__main__":
    MREventOrder.run()
