"""
The Spark engine: the same job file, run on PySpark (C{txmr run --engine
spark}).

Spark is only the transport and the scheduler here: every map and every
reduce is txmr's own attempt (L{txmr.data.run.run_task}) run inside a Spark
task, so partitioning, sort order, output lines, hooks, combiners, counters
and skipped records are decided by the one code path both engines call.

The modules, from the command line down (each imports only those below it):

  - L{command}: C{txmr run --engine spark}, its flags and what it shows;
  - L{engine}: a run, its steps planned by L{txmr.chain} and run one after
    another in one Spark session, each refused before Spark starts if it
    must be;
  - L{session}: the Spark session, started and configured;
  - L{stage}: one step as one Spark job: its map stage, the shuffle, its
    reduce stage, its output committed;
  - L{plans}: what the driver gives every map and reduce task of a step;
  - L{tasks}: the task functions Spark's Python workers run (txmr's map and
    reduce attempts), on L{executor} (what every task needs there),
    L{fetched} (input at a URL read by Spark, dealt to the map tasks) and
    L{shuffle} (map output as shuffle records, and back);
  - L{failures}: a task's failure, from its worker to the user's screen;
    L{reports}: the tasks' counters through one accumulator; L{result}: how
    a run ended;
  - L{sampling}: C{TOTAL_ORDER}'s sample of input at a URL; L{progress}: the
    map and reduce bars fed by Spark's status tracker; L{storage}: input
    and output where Spark reads and writes them (local paths, C{hdfs://},
    C{s3a://}, compressed input); L{options}: what a Spark run is
    (L{options.SparkRun}), and the job features it refuses.

PySpark is an optional extra, imported only when a Spark run starts:
L{session} imports it to start one, L{reports} (and so L{tasks}) when
imported, which L{stage} does only as a step runs, and L{executor} in
Spark's Python workers.  The other modules import without it.
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
