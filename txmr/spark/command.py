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
from txmr.spark.options import SparkConfigError, SparkRun, job_file, parse_conf
from txmr.steps import sum_counters

REFUSED = {
    "inline": "--inline runs txmr's engine in one process; drop --engine spark",
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
        where, rest = job_file(job)
        job = os.path.abspath(where) + rest
    return SparkRun(job=job, input=a.input, output=a.output, master=master,
                    mappers=a.mappers, reducers=a.reducers, conf=parse_conf(a.spark_conf),
                    memory=a.memory << 20, max_attempts=a.max_attempts,
                    skip_bad_records=a.skip_bad_records, args=list(a.job_args or []),
                    intermediate=a.intermediate)


class CommandSteps:
    """
    What C{txmr run --engine spark} shows of each step, as C{txmr run}
    shows a chain's on txmr's engine (L{txmr.chain.run_chain}): for a job of
    several steps, each step's name, bar and counters, then their sums.
    """

    def __init__(self, make_progress, print_summary, stream=sys.stdout):
        self.make_progress = make_progress
        self.print_summary = print_summary
        self.stream = stream
        self.progress = None
        self.count = 1
        self.started_at = self.step_started = time.monotonic()

    def planned(self, chain):
        self.count = len(chain.steps)
        if chain.warning():
            print(chain.warning(), file=sys.stderr)

    def started(self, step):
        self.close()
        if step.count > 1:
            print(f"{step.label}: {step.job}", file=self.stream, flush=True)
        self.step_started = time.monotonic()
        self.progress = self.make_progress()
        return self.progress.update

    def ended(self, step, result):
        self.close()
        if step.count == 1:
            return  # the run's summary is the step's
        self.show(result, self.step_started)
        if not result.ok:
            print(f"txmr: {step.label} failed; the steps after it did not run",
                  file=sys.stderr)

    def show(self, result, since):
        if not result.ok:
            print(f"txmr: {result.failure}", file=sys.stderr)
            if result.traceback:
                print(result.traceback, file=sys.stderr)
        self.print_summary({"counters": result.counters,
                            "skipped_records": result.skipped_records,
                            "state": "finished" if result.ok else "failed"},
                           time.monotonic() - since)

    def finished(self, result):
        """
        The run's summary: the job's own for one step; for several, their
        counters summed, as txmr's chain prints them, once all ran.
        """
        if self.count == 1:
            self.show(result, self.started_at)
        elif result.ok:
            print(f"all {self.count} steps:", file=self.stream)
            self.print_summary({"counters": sum_counters(r.counters for r in result.steps),
                                "state": "finished"}, time.monotonic() - self.started_at)

    def close(self):
        if self.progress is not None:
            self.progress.close()
            self.progress = None


def run_command(a, make_progress, print_summary):
    """
    Run C{txmr run --engine spark}; return the exit code: 0 done, 1 the
    job failed, 2 it could not start.

    @param make_progress: makes txmr run's progress bar (L{txmr.cli.Progress}),
        one per step.
    @param print_summary: txmr run's summary printer.
    """
    missing = pyspark_missing()
    if missing:
        print(missing, file=sys.stderr)
        return 2
    from txmr.spark.engine import run_spark

    steps = CommandSteps(make_progress, print_summary)
    try:
        result = run_spark(spark_run(a), listener=steps)
    except SparkConfigError as e:
        print(f"txmr: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ntxmr: interrupted; the Spark job was cancelled", file=sys.stderr)
        return 130
    finally:
        steps.close()
    steps.finished(result)
    return 0 if result.ok else 1
