"""
C{txmr run --engine spark}: the command line's side of a Spark run.

It takes the same flags as C{txmr run}, refuses the ones that mean nothing
on Spark (saying what to use instead), and shows the same progress bar,
counters and failure as txmr's engine.  The bar and the summary are the
command line's own, passed in, so this module points no import back up.
"""

import os
import sys
import time

from txmr.spark import pyspark_missing
from txmr.spark.options import SparkConfigError, SparkRun, parse_conf

REFUSED = {
    "inline": "--inline runs txmr's engine in one process; drop --engine spark",
    "intermediate": "--intermediate: Spark keeps map output in its shuffle; set "
                    "--spark-conf spark.local.dir=DIR instead",
    "task_timeout": "--task-timeout is txmr's engine's; Spark has no per-task timeout",
    "help_job": "--help-job shows the job's options, which --engine spark does not pass on "
                "yet; drop --engine spark",
}


def spark_run(a):
    """
    The L{SparkRun} the flags describe.

    @raise SparkConfigError: a flag Spark cannot honour.
    """
    for flag, why in REFUSED.items():
        if getattr(a, flag, None):
            raise SparkConfigError(why)
    missing = [flag for flag, value in (("-i/--input", a.input), ("-o/--output", a.output))
               if not value]
    if missing:
        raise SparkConfigError(f"the following arguments are required: {', '.join(missing)}")
    master = a.master or f"local[{a.workers or '*'}]"
    job = a.job
    if job.endswith(".py") or os.sep in job.split(":")[0]:
        where, colon, attribute = job.rpartition(":") if ":" in job else (job, "", "")
        job = os.path.abspath(where) + colon + attribute
    return SparkRun(job=job, input=a.input, output=a.output, master=master,
                    mappers=a.mappers, reducers=a.reducers, conf=parse_conf(a.spark_conf),
                    memory=a.memory << 20, max_attempts=a.max_attempts,
                    skip_bad_records=a.skip_bad_records, args=list(a.job_args or []))


def run_command(a, progress, print_summary):
    """
    Run C{txmr run --engine spark}; return the exit code: 0 done, 1 the
    job failed, 2 it could not start.

    @param progress: txmr run's progress bar (L{txmr.cli.Progress}).
    @param print_summary: txmr run's summary printer.
    """
    missing = pyspark_missing()
    if missing:
        progress.close()
        print(missing, file=sys.stderr)
        return 2
    from txmr.spark.engine import run_spark

    started = time.monotonic()
    try:
        result = run_spark(spark_run(a), progress=progress.update)
    except SparkConfigError as e:
        print(f"txmr: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ntxmr: interrupted; the Spark job was cancelled", file=sys.stderr)
        return 130
    finally:
        progress.close()
    if not result.ok:
        print(f"txmr: {result.failure}", file=sys.stderr)
        if result.traceback:
            print(result.traceback, file=sys.stderr)
    print_summary({"counters": result.counters, "skipped_records": result.skipped_records,
                   "state": "finished" if result.ok else "failed"},
                  time.monotonic() - started)
    return 0 if result.ok else 1
