"""
The driver's account of map output kept on the workers (shared-nothing:
no intermediate directory shared by the hosts): where each worker serves
it, and for each committed map, its attempt, its holder's URL, and each
partition's checksum and size, which the reduce attempts' specs carry.
"""

import dataclasses


@dataclasses.dataclass(frozen=True)
class MapOutput:
    """
    A committed shared-nothing map attempt's output: where it is (its
    worker's URL), and each partition's checksum and size.
    """

    attempt: int
    url: str
    sums: list
    sizes: list

    @classmethod
    def of(cls, attempt, url, output, partitions):
        """
        @raise ValueError: C{output} is not C{{"sums": [...], "sizes": [...]}}
            for C{partitions} partitions.
        """
        if not isinstance(output, dict):
            raise ValueError("no checksums")
        sums, sizes = output.get("sums"), output.get("sizes")
        if (not isinstance(sums, list) or not isinstance(sizes, list)
                or len(sums) != partitions or len(sizes) != partitions
                or not all(isinstance(x, str) and len(x) < 100 for x in sums)
                or not all(type(x) is int and x >= 0 for x in sizes)):
            raise ValueError(f"not {partitions} checksums and sizes")
        return cls(attempt, url, list(sums), list(sizes))


class MapOutputs:
    """
    The map output of one shared-nothing job, as the driver knows it.

    @ivar job: the job's uuid, which workers' servers and requests name.
    """

    def __init__(self, job, partitions):
        self.job = job
        self.partitions = partitions
        self.urls = {}
        self.committed = {}

    def joined(self, worker, url):
        if url is not None:
            self.urls[worker] = url

    def keep(self, attempt, output):
        """
        Commit a map attempt: its files stay on its worker; keep where they
        are and what they must be.

        @return: L{None}, or why the attempt cannot be committed.
        """
        url = self.urls.get(attempt.worker)
        if url is None:
            return "its worker serves no map output (it is too old, or could not listen)"
        try:
            mine = MapOutput.of(attempt.id, url, output, self.partitions)
        except ValueError as e:
            return f"its report of its output is wrong: {e}"
        self.committed[attempt.task.index] = mine
        return None

    def lost(self, attempt):
        if getattr(self.committed.get(attempt.task.index), "attempt", None) == attempt.id:
            del self.committed[attempt.task.index]

    def shuffle(self, attempt, maps):
        """
        What a spec carries: the job's uuid, and for a reduce attempt, for
        each of the C{maps}, its committed attempt, holder's URL, and this
        reduce's partition's checksum and size.
        """
        shuffle = {"job": self.job}
        if attempt.task.kind == "reduce":
            r = attempt.task.index
            shuffle["maps"] = [[o.attempt, o.url, o.sums[r], o.sizes[r]]
                               for o in (self.committed[m.index] for m in maps)]
        return shuffle
