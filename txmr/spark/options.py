"""
What a Spark run is, and what it refuses.

The Spark engine runs txmr's own map and reduce attempts, so whatever those
do it does too.  What it cannot know of (a feature of the job loader or of
the driver that it does not pass on) it refuses before Spark starts, with a
one-line reason: the promise is the same output as txmr's engine, or a
clear failure, never a quietly different answer.
"""

import os
import re
from dataclasses import dataclass, field

from txmr.core.spec import DEFAULT_MEMORY


class SparkConfigError(Exception):
    """
    The run cannot start on Spark: the message is the line the user sees.
    """


@dataclass
class SparkRun:
    """
    A job to run on Spark, as C{txmr run --engine spark} describes it.

    @ivar master: a Spark master URL (C{local[N]}, C{spark://...}, C{yarn},
        C{k8s://...}), as spark-submit takes it.
    @ivar conf: C{(key, value)} Spark settings, in order.
    @ivar input: a local directory or a URL Spark reads (C{hdfs://},
        C{s3a://}, C{file://}).
    @ivar output: a local directory or a URL Spark writes.
    @ivar intermediate: for a job of several steps, where each step's
        output (C{step-K-out/}) goes, a local directory or a URL; L{None}:
        a temporary directory (on a cluster master, under an output URL).
    """

    job: str
    input: str
    output: str
    master: str
    mappers: int = 8
    reducers: int = 2
    conf: list = field(default_factory=list)
    memory: int = DEFAULT_MEMORY
    max_attempts: int = 4
    skip_bad_records: bool = False
    # The job's own options (what follows -- on txmr run's command line).
    args: list = field(default_factory=list)
    intermediate: str | None = None


# What L{txmr.job.Job} holds that this engine knows: the features whose
# semantics live in the map and reduce attempts (which it runs as they are),
# and those it takes from txmr's own driver code (the steps, planned by
# L{txmr.chain.plan_chain}; TOTAL_ORDER's bounds, sampled by
# L{txmr.data.sampling.sample_bounds}, see L{txmr.spark.sampling}).  A Job that holds anything more,
# set (true), is using a feature this engine was not written for, and is
# refused; one left at its default (false, None, empty) is not in use.
KNOWN_JOB_FIELDS = {"name", "_target", "_class", "input_mode", "has_combiner", "output_format",
                    "csv_header", "sort_values", "has_partition", "map_only", "_configure",
                    "_parsed", "total_order",
                    # txmr.steps.StepJob: one step of a job of steps.
                    "source", "index", "whole", "n_steps"}


def check_supported(job):
    """
    @raise SparkConfigError: the job uses something this engine would not
        run as txmr's engine does.
    """
    unknown = sorted(name for name, value in vars(job).items()
                     if name not in KNOWN_JOB_FIELDS and value)
    if unknown:
        raise SparkConfigError(
            f"--engine spark does not know this job's {', '.join(unknown)} yet; "
            f"run it with --engine txmr")


def check_step(job, step):
    """
    What one step (a L{txmr.chain.StepRun}, its L{txmr.job.Job} C{job}
    with its options parsed) needs that Spark cannot give it as txmr's
    engine does.

    @raise SparkConfigError: before anything runs.
    """
    check_supported(job)
    if job.planning_error():
        # What txmr's driver would refuse (txmr.plan.plan_job).
        raise SparkConfigError(job.planning_error())
    where = f"{step.label} of " if step.count > 1 else ""
    if is_url(step.input) and job.input_mode == "path":
        # Such a map is given each input file's URL by txmr's engine, where
        # Spark's task would have a local copy's path.
        raise SparkConfigError(
            f"{where}job {job.name!r} is given each input file's path (mapper_raw, or "
            f"mrjob's input file): --engine spark runs it on a local input directory only, "
            f"not {step.input!r}; use --engine txmr")


def check_run(run):
    """
    @raise SparkConfigError: the numbers or the paths of C{run} are wrong.
    """
    if run.mappers < 1:
        raise SparkConfigError("--mappers must be at least 1")
    if run.reducers < 0:
        raise SparkConfigError("--reducers must be at least 0 (0: a map-only job)")
    if run.max_attempts < 1:
        raise SparkConfigError("--max-attempts must be at least 1")
    for key, _ in run.conf:
        if not key.startswith("spark."):
            raise SparkConfigError(f"--spark-conf {key!r}: Spark settings start with 'spark.'")
    if is_url(run.input) and is_url(run.output):
        return
    if not is_url(run.input) and not os.path.isdir(run.input):
        from txmr.plan import input_error

        raise SparkConfigError(input_error(run.input))


def is_url(path):
    """
    Whether C{path} names a location through Hadoop's file systems
    (C{scheme://...} or C{file:/...}) rather than a local path.  A scheme
    may hold digits (C{s3://}, C{s3a://}): taken for a local path, such an
    output was written in a directory C{s3:} under the current one, with
    no lock on the URL.  (One letter is a Windows drive.)
    """
    return re.match(r"[A-Za-z][A-Za-z0-9+.\-]+:/", path) is not None


def job_file(name):
    """
    A job's name cut into its file (or module) and the rest: C{("dir/job.py",
    ":Class")} for C{dir/job.py:Class}, C{("pkg.mod", "")} for C{pkg.mod}.
    """
    where, colon, attribute = name.rpartition(":") if ":" in name else (name, "", "")
    return where, colon + attribute


def parse_conf(items):
    """
    C{KEY=VALUE} strings as C{(key, value)} pairs.

    @raise SparkConfigError: an item has no C{=}.
    """
    pairs = []
    for item in items or ():
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise SparkConfigError(f"--spark-conf {item!r}: expected KEY=VALUE")
        pairs.append((key.strip(), value))
    return pairs
