"""
Each task's counters and skipped records, carried to the driver by one
Spark accumulator, and the step's L{SparkResult} made of them.

The accumulator is keyed by task: a task Spark runs again replaces its
earlier report instead of adding to it, so counters are summed over one
successful attempt per task, as txmr's driver sums them.

PySpark is imported here, with this module (L{AccumulatorParam}): it is
imported by L{txmr.spark.tasks} in Spark's Python workers, and by
L{txmr.spark.stage} only as a step runs.
"""

from dataclasses import dataclass, field

from pyspark.accumulators import AccumulatorParam

from txmr.core.counters import summed
from txmr.spark.result import SparkResult


@dataclass(frozen=True)
class TaskReport:
    """
    What one task reports: its counters, and the records it skipped.
    """

    counters: dict
    skipped: list = field(default_factory=list)


class TaskReports(AccumulatorParam):
    """
    C{{(kind, index): TaskReport}}: one report per task, the last
    successful attempt's.
    """

    def zero(self, value):
        return {}

    def addInPlace(self, a, b):
        a.update(b)
        return a


def report(reports, kind, index, counters, skipped=()):
    """
    Add task C{index}'s report to the accumulator C{reports}.
    """
    reports.add({(kind, index): TaskReport(counters, list(skipped))})


def result_of(reports):
    """
    The L{SparkResult} of the tasks' reports: their counters summed, their
    skipped records in task order.
    """
    counters = summed(report.counters for report in reports.values())
    skipped = [[kind, index, record]
               for (kind, index), report in sorted(reports.items())
               for record in report.skipped]
    return SparkResult(counters=counters, skipped_records=skipped)
