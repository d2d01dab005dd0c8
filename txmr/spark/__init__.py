"""
The Spark engine: the same job file, run on PySpark (C{txmr run --engine
spark}).

Spark is only the transport and the scheduler here: every map and every
reduce is txmr's own attempt (L{txmr.data.run.run_task}) run inside a Spark
task, so partitioning, sort order, output lines, hooks, combiners, counters
and skipped records are decided by the one code path both engines call.

  - L{options}: what a Spark run is (L{options.SparkRun}), and the job
    features it refuses;
  - L{storage}: input and output where Spark reads and writes them (local
    paths, C{hdfs://}, C{s3a://}, compressed input);
  - L{tasks}: what runs in Spark's Python workers;
  - L{engine}: the pipeline, from listing the input to committing C{out-R},
    once per step of a job of steps (planned by L{txmr.chain});
  - L{progress}: the map and reduce bars fed by Spark's status tracker.

PySpark is an optional extra, imported only when a Spark run starts.
"""

INSTALL_HINT = ("txmr: --engine spark needs PySpark and Java: pip install 'txmr[spark]' "
                "(and a Java runtime, 17 or later)")


def pyspark_missing():
    """
    The one line to show when PySpark cannot be imported, else L{None}.
    """
    try:
        import pyspark  # noqa: F401
    except ImportError:
        return INSTALL_HINT
    return None
