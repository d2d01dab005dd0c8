"""
What crosses from the driver to a worker: the description of one attempt
(L{TaskSpec}), and the driver's answer to "what next?" (L{Run}, L{Wait},
L{Done}).

Both travel as small JSON documents; these classes are their only readers
and writers, so no other code reads a spec with C{dict.get}.
"""

from dataclasses import dataclass, field

from txmr.core.states import Kind

# A reduce task's memory budget before it spills, in bytes.
DEFAULT_MEMORY = 128 << 20


@dataclass(frozen=True)
class TaskSpec:
    """
    One attempt of a task, as a worker runs it.

    @ivar intermediate: the directory of map output (written by maps, read
        by reduces, and where reduces spill).
    @ivar input: the input root; a map task's split names are relative to it.
    @ivar splits: a map task's C{[name, start, end]} byte ranges.
    @ivar skip: input records a map attempt must skip (skipping mode).
    @ivar stamps: for each input file of a map task, C{[size, mtime_ns]}
        when the job was planned: a map fails if its file changed since.
    @ivar output: where a reduce task writes C{out-R}.
    @ivar memory: a reduce task's memory budget in bytes.
    @ivar seed_buckets: every map's output was written by a seed worker: a
        reduce reads C{mr-M-R} as the seed bucketed it (first letter), not
        by CRC-32.
    @ivar args: the job's own arguments, as given to the driver: every
        task parses them (L{txmr.job_options}); they are bounded in size.
    @ivar options: the driver's parsed values of the job's plain options,
        which every task's parse must match.
    @ivar bounds: a map task of a C{TOTAL_ORDER} job: the sampled keys that
        bound each reduce task's range (L{txmr.data.sampling}).

    A map task of a map-only job (C{n_reduce} 0) writes C{out-M} in
    C{output}.
    """

    kind: Kind
    index: int
    attempt: int
    job: str
    intermediate: str
    n_map: int
    n_reduce: int
    input: str | None = None
    splits: list = field(default_factory=list)
    skip: list = field(default_factory=list)
    stamps: dict = field(default_factory=dict)
    output: str | None = None
    memory: int = DEFAULT_MEMORY
    seed_buckets: bool = False
    args: list = field(default_factory=list)
    options: dict = field(default_factory=dict)
    bounds: list = field(default_factory=list)
    # Shared-nothing (no intermediate directory shared by the workers):
    # C{{"job": uuid}}, and for a reduce also C{"maps"}, for each map
    # C{[committed attempt, holder's URL, checksum, size]} of this reduce's
    # partition (L{txmr.worker.shuffle}); L{None} otherwise.
    shuffle: dict | None = None
    # The fsspec options of the input and output URLs (--storage-options,
    # which the user gives; never credentials from the environment, which
    # each process reads from its own); L{None}: none given.
    storage: dict | None = None

    def to_json(self):
        common = {"kind": str(self.kind), "index": self.index, "attempt": self.attempt,
                  "job": self.job, "intermediate": self.intermediate,
                  "n_map": self.n_map, "n_reduce": self.n_reduce, "args": self.args,
                  "options": self.options}
        if self.shuffle is not None:
            common["shuffle"] = self.shuffle
        if self.storage is not None:
            common["storage"] = self.storage
        if self.kind is Kind.MAP:
            return dict(common, input=self.input, splits=self.splits, skip=self.skip,
                        stamps=self.stamps, output=self.output, bounds=self.bounds)
        return dict(common, output=self.output, memory=self.memory,
                    seed_buckets=self.seed_buckets)

    @classmethod
    def from_json(cls, data):
        """
        @raise ValueError: the document is not a task spec.
        """
        try:
            kind = Kind(data["kind"])
            common = dict(kind=kind, index=int(data["index"]), attempt=int(data["attempt"]),
                          job=str(data["job"]), intermediate=str(data["intermediate"]),
                          n_map=int(data["n_map"]), n_reduce=int(data["n_reduce"]),
                          args=[str(a) for a in data["args"]], options=dict(data["options"]))
            if data.get("shuffle") is not None:
                common["shuffle"] = _shuffle(data["shuffle"])
            if data.get("storage") is not None:
                common["storage"] = dict(data["storage"])
            if kind is Kind.MAP:
                output = data["output"]
                return cls(input=str(data["input"]), splits=list(data["splits"]),
                           skip=list(data["skip"]), stamps=dict(data["stamps"]),
                           output=None if output is None else str(output),
                           bounds=list(data["bounds"]), **common)
            return cls(output=str(data["output"]), memory=int(data["memory"]),
                       seed_buckets=bool(data["seed_buckets"]), **common)
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"not a task spec: {e!r}") from e


def _shuffle(data):
    """
    A spec's C{shuffle}, checked: its job a string, each map's source
    C{[int, str, str, int]}.
    """
    job = data["job"]
    if not isinstance(job, str):
        raise TypeError("shuffle job")
    out = {"job": job}
    if "maps" in data:
        out["maps"] = [[int(a), str(url), str(total), int(size)]
                       for a, url, total, size in data["maps"]]
    return out


@dataclass(frozen=True)
class Run:
    """
    Run this attempt.
    """

    spec: TaskSpec


@dataclass(frozen=True)
class Wait:
    """
    Nothing to run yet: ask again.
    """


@dataclass(frozen=True)
class Done:
    """
    The job is over; C{ok} tells how.
    """

    ok: bool


Answer = Run | Wait | Done


def answer_to_json(answer):
    """
    An answer as the C{action} and C{task} of L{txmr.protocol.GetTask}.
    """
    if isinstance(answer, Run):
        return {"action": "run", "task": answer.spec.to_json()}
    if isinstance(answer, Done):
        return {"action": "done", "task": {"ok": answer.ok}}
    return {"action": "wait", "task": None}


def answer_from_json(message):
    """
    The answer in a L{txmr.protocol.GetTask} response, or L{None} for a
    report's empty answer.

    @raise ValueError: an action this worker does not know.
    """
    action = message.get("action")
    if action is None:
        return None
    if action == "run":
        return Run(TaskSpec.from_json(message["task"]))
    if action == "done":
        return Done(bool((message.get("task") or {}).get("ok")))
    if action == "wait":
        return Wait()
    raise ValueError(f"unknown action {action!r}")
