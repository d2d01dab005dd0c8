"""
C{txmr}, the command line: run a job on this machine with a progress bar,
or look at a running driver.

    txmr run [JOB] -i IN -o OUT [-w WORKERS] [-m M] [-r R]   # a driver and local workers
    txmr run JOB -i IN -o OUT -- --min-count 3                # the job's own options
    txmr run JOB --help-job                                   # which options it has
    txmr run --inline [JOB] -i IN -o OUT                      # one process, no network
    txmr run --engine spark [--master URL] [JOB] -i IN -o OUT # the same job on PySpark
    txmr status ADDRESS                                       # a running job's progress

C{txmr run} starts C{twistd txmr-driver} and WORKERS C{twistd txmr-worker}
processes (L{txmr.local}), follows the driver's C{/api/job}, and stops them
all on Ctrl-C.  A job of several steps (L{txmr.chain}) runs a step at a
time, each on a driver and workers of its own (or inline).
"""

import argparse
import json
import os
import shutil
import signal
import sys
import tempfile
import time

from txmr.core.counters import lines
from txmr.job import DEFAULT_JOB
from txmr.local import CannotStart, LocalCluster
from txmr.status_command import status

class Progress:
    """
    Progress of the map and the reduce phase: rich bars on a terminal,
    plain lines otherwise (only when something changed).
    """

    def __init__(self, stream=sys.stdout):
        self.stream = stream
        self.bars = None
        self.last = None
        if stream.isatty():
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress as Bars
            from rich.progress import TextColumn, TimeElapsedColumn

            self.bars = Bars(TextColumn("{task.description:>6}"), BarColumn(),
                             MofNCompleteColumn(), TextColumn("{task.fields[running]} running"),
                             TimeElapsedColumn(), console=Console(file=stream))
            self.ids = {}
            self.bars.start()

    def update(self, counts):
        for kind in ("map", "reduce"):
            c = counts.get(kind)
            if not c:
                continue
            total = sum(c.values())
            if self.bars is not None:
                if kind not in self.ids:
                    self.ids[kind] = self.bars.add_task(kind, total=total, running=0)
                self.bars.update(self.ids[kind], completed=c["finished"], running=c["running"])
        if self.bars is None:
            line = "  ".join(f"{kind} {c['finished']}/{sum(c.values())} done, {c['running']} "
                             f"running" for kind, c in counts.items())
            if line != self.last:
                print(time.strftime("%H:%M:%S"), line, file=self.stream, flush=True)
                self.last = line

    def close(self):
        if self.bars is not None:
            self.bars.stop()


def print_summary(summary, elapsed, stream=sys.stdout):
    counters = summary.get("counters") or {}
    if counters:
        print("counters:", file=stream)
        for line in lines(counters):
            print("  " + line, file=stream)
    for record in summary.get("skipped_records") or ():
        print(f"skipped bad record: {record}", file=stream)
    print(f"{summary.get('state', 'unknown')} in {elapsed:.2f}s", file=stream)


def run(a):
    if a.help_job or {"-h", "--help"} & set(a.job_args):
        return job_help(a.job)
    missing = [flag for flag, value in (("-i/--input", a.input), ("-o/--output", a.output))
               if not value]
    if missing:
        print(f"txmr run: error: the following arguments are required: {', '.join(missing)}",
              file=sys.stderr)
        return 2
    if getattr(a, "storage_options", None):
        storage_options(a)  # Not a JSON object: exit 2 now, saying so.
        if a.engine == "spark":
            print("txmr: --storage-options is for --engine txmr: Spark opens URLs through "
                  "Hadoop (--spark-conf spark.hadoop.fs.s3a.endpoint=...)", file=sys.stderr)
            return 2
    if a.engine == "spark":
        from txmr.spark.command import run_command

        return run_command(a, Progress, print_summary)
    if a.master or a.spark_conf:
        print("txmr: --master and --spark-conf are for --engine spark", file=sys.stderr)
        return 2
    a.workers = a.workers or os.cpu_count() or 2
    # The daemons run in a directory of their own: make paths absolute.
    for name in ("input", "output", "intermediate"):
        if getattr(a, name) and "://" not in getattr(a, name):
            setattr(a, name, os.path.abspath(getattr(a, name)))
    if a.job.endswith(".py") or os.sep in a.job:
        a.job = os.path.abspath(a.job)
    # A URL (s3://...) is checked by the driver, through fsspec.
    if not a.inline and "://" not in a.input and not os.path.isdir(a.input):
        from txmr.plan import input_error

        print(f"txmr: {input_error(a.input)}", file=sys.stderr)
        return 2
    from txmr.chain import job_chain, run_chain

    one = run_inline if a.inline else run_cluster
    chain, temporary = job_chain(a)
    if chain is None:
        return one(a)
    try:
        return run_chain(a, chain, one, print_summary)
    finally:
        if temporary:
            shutil.rmtree(temporary, ignore_errors=True)


def run_cluster(a, counters=None):
    """
    One job on a driver and local workers; its counters are appended to
    C{counters} when it finishes.
    """
    work = tempfile.mkdtemp(prefix="txmr-run-")
    cluster = LocalCluster(a, work)
    progress = None
    started = time.monotonic()
    keep = False
    try:
        try:
            cluster.start()
        except CannotStart as e:
            print(e, file=sys.stderr)
            return 2
        progress = Progress()
        while cluster.driver.poll() is None or cluster.restart_dead_driver():
            cluster.replace_dead_workers()
            if cluster.all_workers_dead():
                progress.close()
                progress = None
                keep = True
                print(f"txmr: every worker died, {cluster.restarts} restarted; giving up "
                      f"(logs in {work})", file=sys.stderr)
                return 1
            state = cluster.state()
            if state is not None:
                progress.update(state["counts"])
            time.sleep(0.2)
        code = cluster.driver.returncode
        summary = {}
        if os.path.exists(cluster.summary_file):
            with open(cluster.summary_file) as f:
                summary = json.load(f)
            progress.update(summary["counts"])
        progress.close()
        progress = None
        if code:
            keep = True
            print(f"txmr: {summary.get('failure') or 'the driver failed'}", file=sys.stderr)
            if summary.get("traceback"):
                print(summary["traceback"], file=sys.stderr)
            print(f"txmr: logs in {work}", file=sys.stderr)
        elif counters is not None:
            counters.append(summary.get("counters") or {})
        print_summary(summary, time.monotonic() - started)
        return code
    except KeyboardInterrupt:
        print("\ntxmr: interrupted; stopping the driver and workers", file=sys.stderr)
        return 130
    finally:
        if progress is not None:
            progress.close()
        cluster.stop()
        if not keep:
            shutil.rmtree(work, ignore_errors=True)


def storage_options(a):
    """
    The fsspec options of C{--storage-options}, or exit 2 naming the error.
    """
    from txmr.data.storage import parse_options

    try:
        return parse_options(getattr(a, "storage_options", None))
    except ValueError as e:
        print(f"txmr: {e}", file=sys.stderr)
        raise SystemExit(2)


def job_help(name):
    """
    Print the options a job declares (C{txmr run JOB --help-job}).
    """
    from txmr.job import JobError, load_job

    try:
        text = load_job(name).help_text()
    except JobError as e:
        print(f"txmr: {e}", file=sys.stderr)
        return 2
    print(text, end="")
    return 0


def run_inline(a, counters_out=None):
    from txmr.inline import OutputNotMarked, run_inline as inline
    from txmr.plan import ConfigError, JobConfig

    work = None
    intermediate = a.intermediate
    if intermediate is None:
        work = intermediate = tempfile.mkdtemp(prefix="txmr-inline-")
    config = JobConfig(input=a.input, intermediate=intermediate, output=a.output,
                       mappers=a.mappers, reducers=a.reducers, job=a.job,
                       memory=a.memory << 20, job_args=a.job_args,
                       max_attempts=a.max_attempts, skip_bad_records=a.skip_bad_records,
                       storage_options=storage_options(a))
    progress = Progress()
    started = time.monotonic()
    skipped = []
    try:
        counters = inline(config, progress=lambda s: progress.update(s.counts()),
                          skipped=skipped)
    except ConfigError as e:
        print(f"txmr: {e}", file=sys.stderr)
        return 2
    except OutputNotMarked as e:
        print(f"txmr: job failed: {e}", file=sys.stderr)
        return 1
    except (Exception, SystemExit) as e:
        failure = getattr(e, "txmr_failure", None)
        if failure is None:
            raise
        # As the driver's run prints a failed task: its line, then the
        # job's traceback.
        progress.close()
        print(f"txmr: {failure}", file=sys.stderr)
        print(e.txmr_traceback, end="", file=sys.stderr)
        return 1
    finally:
        progress.close()
        if work:
            shutil.rmtree(work, ignore_errors=True)
    if counters_out is not None:
        counters_out.append(counters)
    print_summary({"counters": counters, "state": "finished", "skipped_records": skipped},
                  time.monotonic() - started)
    return 0


def _at_least_one(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def _more_than_zero(text):
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be more than 0, not {text}")
    return value


# argparse names a type by its function's name: "invalid number value: 'abc'".
_at_least_one.__name__ = "whole number"
_more_than_zero.__name__ = "number"


def parser():
    p = argparse.ArgumentParser(prog="txmr", description="MapReduce on Twisted.")
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="run a job on this machine")
    r.add_argument("job", nargs="?", default=DEFAULT_JOB,
                   help="module, module:attribute or .py file (default: word count)")
    # Required, but checked in run(): --help-job needs neither.
    r.add_argument("-i", "--input", help="input directory (required)")
    r.add_argument("-o", "--output", help="output directory (required)")
    r.add_argument("--help-job", action="store_true",
                   help="show the job's own options (given after --: txmr run JOB -i IN -o OUT "
                        "-- --min-count 3) and exit")
    r.add_argument("-w", "--workers", type=_at_least_one, default=0,
                   help="default: one per core")
    r.add_argument("-m", "--mappers", type=int, default=8)
    r.add_argument("-r", "--reducers", type=int, default=2)
    r.add_argument("--intermediate", help="default: a temporary directory")
    r.add_argument("--inline", action="store_true", help="one process, no network")
    r.add_argument("--memory", type=_at_least_one, default=128, help="reduce memory budget, MB")
    r.add_argument("--max-attempts", type=int, default=4)
    r.add_argument("--task-timeout", type=_more_than_zero, help="seconds")
    r.add_argument("--no-speculation", action="store_true")
    r.add_argument("--skip-bad-records", action="store_true")
    r.add_argument("--storage-options", metavar="JSON",
                   help="fsspec options of an -i/-o URL (s3://...), a JSON object; they reach "
                        "every worker: give credentials through the environment")
    r.add_argument("--fresh", action="store_true",
                   help="with --intermediate: start over instead of resuming an earlier run")
    r.add_argument("--engine", choices=("txmr", "spark"), default="txmr",
                   help="txmr (a driver and local workers) or spark (PySpark, same output)")
    r.add_argument("--master", help="with --engine spark: the Spark master URL "
                                    "(default local[WORKERS])")
    r.add_argument("--spark-conf", action="append", metavar="KEY=VALUE",
                   help="with --engine spark: a Spark setting (repeatable)")
    r.set_defaults(func=run)
    s = sub.add_parser("status", help="print a running job's progress")
    s.add_argument("address", help="the driver: http://HOST:PORT (as txmr run prints it, "
                                   "with its ?token=), HOST:PORT or PORT")
    s.add_argument("--secret-file", help="the driver's secret (as the daemons take it)")
    s.set_defaults(func=status)
    return p


def _interrupt(signum, frame):
    raise KeyboardInterrupt()


def split_job_args(argv):
    """
    C{txmr}'s own arguments, and the job's: those after the first C{--}.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--" not in argv:
        return argv, []
    cut = argv.index("--")
    return argv[:cut], argv[cut + 1:]


def main(argv=None):
    argv, job_args = split_job_args(argv)
    a = parser().parse_args(argv)
    a.job_args = job_args
    # Ctrl-C and SIGTERM stop the driver and the workers, even where the
    # shell started us with SIGINT ignored (a background job).
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    sys.exit(a.func(a))


if __name__ == "__main__":
    main()
