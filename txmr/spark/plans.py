"""
What the driver gives every task of a step: a L{MapPlan} for its map
partitions, a L{ReducePlan} for its reduce partitions.  Built by
L{txmr.spark.stage}, pickled with the task functions of L{txmr.spark.tasks}
and read in Spark's Python workers; plain values, no Spark.
"""

from dataclasses import dataclass, field

from txmr.core.spec import DEFAULT_MEMORY


@dataclass(frozen=True)
class MapPlan:
    """
    What every map partition needs: the job, its splits, where to read.

    @ivar splits: per map task, its C{[name, start, end]} splits.
    @ivar input: the local input root, or L{None} (every file is fetched).
    @ivar stamps: C{{name: stamp}} of the local input files.
    @ivar fetched: the names of the files Spark reads (as they are, not
        decompressed) and hands to the map tasks.
    @ivar output: a map-only job's local output directory, where map
        attempts write their files for the driver to rename, or L{None}.
    @ivar bounds: C{TOTAL_ORDER}'s sampled bounds (L{txmr.data.sampling}).
    """

    job: str
    splits: list
    input: str | None
    stamps: dict
    fetched: frozenset
    n_reduce: int
    max_attempts: int
    skip_bad_records: bool
    # The job's options: its argument list, and the plain values the driver
    # parsed (as txmr's engine carries them in each task's spec).
    args: list = field(default_factory=list)
    options: dict = field(default_factory=dict)
    output: str | None = None
    bounds: list = field(default_factory=list)


@dataclass(frozen=True)
class ReducePlan:
    """
    What every reduce partition needs.

    @ivar output: the local output directory where reduce attempts write
        their files for the driver to rename, or L{None}: the output goes
        to Spark's writer as lines.
    """

    job: str
    n_map: int
    n_reduce: int
    output: str | None
    memory: int = DEFAULT_MEMORY
    args: list = field(default_factory=list)
    options: dict = field(default_factory=dict)
