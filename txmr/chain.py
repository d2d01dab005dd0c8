"""
A job's steps run one after another: what C{txmr run}, C{txmr run
--inline} and C{txmr.run} do with a job of several steps (and, as one
step, with any job).

Each step is a whole txmr job (L{txmr.steps.StepJob}) with directories of
its own under the job's intermediate directory: step K's map output in
C{step-K/}, its output in C{step-K-out/}, which is step K+1's input; the
last step writes the user's output.  A step that fails ends the chain, so
the user's output is written only by a last step that ran.  Since each
step has its own journal, the same command again with the same
C{--intermediate} resumes: finished steps end at once, and the step that
was cut off resumes where it was.

L{job_chain} and L{run_chain} are C{txmr run}'s part; C{txmr.run} runs
L{plan_chain}'s steps itself (L{txmr.api}).

Hadoop's settings of a step (mrjob's C{JOBCONF} and C{MRStep(jobconf=)})
that mean something here set the step's number of tasks; the others are
ignored, with one warning.
"""

import argparse
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass

from txmr.compat import is_mrjob
from txmr.job import JobError
from txmr.steps import StepJob, step_name, sum_counters

REDUCE_KEYS = ("mapreduce.job.reduces", "mapred.reduce.tasks")
MAP_KEYS = ("mapreduce.job.maps", "mapred.map.tasks")


@dataclass(frozen=True)
class StepRun:
    """
    One step as a runner runs it: the name its driver and workers load,
    and its directories and task counts.
    """

    index: int
    count: int
    job: str
    input: str
    intermediate: str
    output: str
    mappers: int
    reducers: int
    map_only: bool = False
    output_format: object = "tsv"

    @property
    def label(self):
        return f"step {self.index + 1}/{self.count}"


@dataclass(frozen=True)
class Chain:
    """
    The steps of one run, and the JOBCONF keys they ignore.
    """

    steps: list
    ignored: list

    def warning(self):
        """
        The one warning about JOBCONF keys txmr does not use, or L{None}.
        """
        if not self.ignored:
            return None
        return (f"txmr: JOBCONF keys with no meaning to txmr's engine (set only in each "
                f"task's environment, for jobconf_from_env; the partitioner and extra jars "
                f"are ignored, as mrjob's local runners ignore them): "
                f"{', '.join(self.ignored)} (used: {', '.join(REDUCE_KEYS + MAP_KEYS)})")


def plan_chain(job, input, intermediate, output, mappers, reducers, args):
    """
    The steps of C{job} (a loaded L{txmr.job.Job}) for one run.  A job of
    one step keeps the directories it is given.

    @raise JobError: the job's options are wrong, or a JOBCONF count is
        not a number.
    """
    if not isinstance(job, StepJob):
        job.parse_args(args)
        return Chain([StepRun(0, 1, job.name, input, intermediate, output, mappers, reducers,
                              job.map_only or reducers == 0, job.output_format)], [])
    shapes = job.shapes(args)
    n = len(shapes)
    runs, ignored = [], set()
    source_in = input
    for k, shape in enumerate(shapes):
        conf = dict(shape.jobconf)
        step_maps = _count(job, conf, MAP_KEYS, mappers, at_least=1)
        step_reduces = _count(job, conf, REDUCE_KEYS, reducers, at_least=0)
        ignored |= set(conf) - set(REDUCE_KEYS + MAP_KEYS)
        map_only = shape.map_only or step_reduces == 0
        if step_reduces == 0 and not shape.map_only and is_mrjob(job):
            # An mrjob step's map emits pairs encoded for its reducer: written
            # as output they would be encoded twice.  Refused, not wrong.
            raise StepRefused(f"step {k + 1} of {job.name} has a reducer: it cannot run with "
                              f"no reduce task (-r 0, or a JOBCONF of 0 reduces) under txmr")
        if n == 1:
            runs.append(StepRun(0, 1, job.name, input, intermediate, output, step_maps,
                                step_reduces, map_only, shape.output_format))
            break
        last = k == n - 1
        out = output if last else os.path.join(intermediate, f"step-{k + 1}-out")
        runs.append(StepRun(k, n, step_name(job.source.name, k), source_in,
                            os.path.join(intermediate, f"step-{k + 1}"), out, step_maps,
                            step_reduces, map_only, shape.output_format))
        source_in = out
    return Chain(runs, sorted(ignored))


class StepRefused(JobError):
    """
    A step txmr will not run as it is asked to: said before anything runs.
    """


def _count(job, conf, keys, default, at_least):
    for key in keys:
        if key in conf:
            try:
                value = int(conf[key])
            except ValueError:
                value = -1
            if value < at_least:
                raise JobError(f"job {job.name!r}: JOBCONF {key} must be a whole number of "
                               f"at least {at_least}, not {conf[key]!r}")
            return value
    return default


def step_job(job, run):
    """
    The L{txmr.job.Job} that runs C{run}: the job itself for a job of one
    step, else its step.
    """
    if run.count == 1:
        return job
    return job.step(run.index)


def job_chain(a):
    """
    For C{txmr run} (its arguments C{a}): the steps of a job of steps, and the temporary
    directory made for their intermediate files (or L{None}); C{(None,
    None)} for a job of one map and one reduce, or one that does not load
    here (its driver says why, as for any job).
    """
    from txmr.job import load_job
    from txmr.local import DAEMON_VARIABLE

    # Loaded here as a daemon loads it: a script that calls txmr.run
    # unguarded fails to load rather than start a run of its own.
    was = os.environ.get(DAEMON_VARIABLE)
    os.environ[DAEMON_VARIABLE] = "1"
    try:
        job = load_job(a.job)
    except JobError:
        return None, None
    finally:
        if was is None:
            del os.environ[DAEMON_VARIABLE]
    if not isinstance(job, StepJob):
        return None, None
    temporary = None
    intermediate = a.intermediate
    if intermediate is None:
        temporary = intermediate = tempfile.mkdtemp(prefix="txmr-steps-")
    try:
        return plan_chain(job, a.input, intermediate, a.output, a.mappers, a.reducers,
                          a.job_args), temporary
    except StepRefused as e:
        if temporary:
            shutil.rmtree(temporary, ignore_errors=True)
        print(f"txmr: {e}", file=sys.stderr)
        raise SystemExit(2)
    except JobError:
        # A wrong option: the step's driver refuses it, naming it.
        if temporary:
            shutil.rmtree(temporary, ignore_errors=True)
        return None, None


def remove_stale_output(chain, failed):
    """
    A step before the last failed: an earlier run's output (and its
    C{_SUCCESS}) must not stay to be taken for this run's answer, as a
    one-step job that fails leaves no output either.
    """
    last = chain.steps[-1]
    if failed is not last and ("://" in last.output or os.path.exists(last.output)):
        from txmr.data.layout import remove_job_files
        from txmr.plan import ConfigError, lock_paths, release_locks

        # Only while no other run holds the output: its files are its own.
        try:
            locks = lock_paths([last.output], "a txmr run clearing a failed chain's output")
        except ConfigError as e:
            print(f"txmr: the output was left as it is: {e}", file=sys.stderr)
            return
        try:
            remove_job_files(last.output)
        except OSError:
            pass
        finally:
            release_locks(locks)


def run_chain(a, chain, run_one, print_summary):
    """
    Run the steps of C{chain} one after another, each by C{run_one} (on
    local processes or inline), stopping at the first that fails; print
    each step's counters, then their sums (by C{print_summary}, as
    C{txmr run} prints a job's).
    """
    if chain.warning():
        print(chain.warning(), file=sys.stderr)
    started = time.monotonic()
    counters = []
    for run in chain.steps:
        step = argparse.Namespace(**vars(a))
        step.job, step.input, step.output = run.job, run.input, run.output
        step.intermediate, step.mappers, step.reducers = (run.intermediate, run.mappers,
                                                          run.reducers)
        if run.count > 1:
            print(f"{run.label}: {run.job}", flush=True)
            step.step_label = run.label
        try:
            code = run_one(step, counters)
        except BaseException:
            remove_stale_output(chain, run)
            raise
        if code:
            if run.count > 1:
                print(f"txmr: {run.label} failed; the steps after it did not run",
                      file=sys.stderr)
            remove_stale_output(chain, run)
            return code
    if len(chain.steps) > 1:
        print(f"all {len(chain.steps)} steps:")
        print_summary({"counters": sum_counters(counters), "state": "finished"},
                      time.monotonic() - started)
    return 0


__all__ = ["Chain", "StepRun", "job_chain", "plan_chain", "run_chain", "step_job"]
