"""
How a Spark run ended: each step's L{SparkResult}, and the run's, made of
its steps' as txmr's chain makes it.  Plain values, no Spark: the command
line reads them.
"""

from dataclasses import dataclass, field

from txmr.steps import sum_counters


@dataclass
class SparkResult:
    """
    How a Spark run ended.

    @ivar skipped_records: C{[kind, index, record]}, as txmr's driver
        reports them.
    @ivar failure: the one-line reason the job failed, or L{None}.
    @ivar traceback: the failing task's Python traceback.
    """

    counters: dict = field(default_factory=dict)
    skipped_records: list = field(default_factory=list)
    failure: str | None = None
    traceback: str = ""
    # Each step's own result, in order (the run's alone for one step).
    steps: list = field(default_factory=list)

    @property
    def ok(self):
        return self.failure is None


def chain_result(results):
    """
    The result of a run from its steps' results: their counters summed, as
    txmr's chain sums them (for one step, its own).
    """
    if len(results) == 1:
        result = results[0]
        result.steps = [result]
        return result
    failed = next((r for r in results if not r.ok), None)
    return SparkResult(
        counters=sum_counters(r.counters for r in results),
        skipped_records=[record for r in results for record in r.skipped_records],
        failure=failed.failure if failed else None,
        traceback=failed.traceback if failed else "", steps=list(results))
