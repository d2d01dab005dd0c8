"""
Running a job from Python: C{txmr.run(job, input=..., output=...)}, for a
script or a notebook.

It runs the job as C{txmr run} does, with a driver and local worker
processes (C{workers=N}), or in this process (C{workers=0}, as
C{txmr run --inline}), and returns a L{Result}: the counters, and the
output pairs to read.  A job that fails raises L{JobFailed}; one that
cannot start raises L{txmr.plan.ConfigError}; either way no output is
left behind.
"""

import inspect
import os
import shutil
import sys
import tempfile
from argparse import Namespace
from dataclasses import dataclass, field, replace

from txmr.chain import plan_chain, remove_stale_output, step_job
from txmr.data.output import read_pairs
from txmr.job import Job, JobError, job_of, load_job
from txmr.local import DAEMON_VARIABLE, CannotStart, LocalCluster
from txmr.plan import ConfigError, JobConfig, input_error
from txmr.steps import step_name, sum_counters


class JobFailed(Exception):
    """
    The job ran and failed: C{str()} names the task and the error;
    C{traceback} is the failing attempt's.
    """

    def __init__(self, message, traceback=""):
        super().__init__(message)
        self.traceback = traceback


@dataclass(frozen=True)
class Result:
    """
    A finished job.

    @ivar counters: C{{group: {name: total}}}, the built-in C{txmr} group
        and the job's own.
    @ivar files: the output files, C{out-0}, C{out-1}... in order.
    @ivar format: the output format, C{"tsv"} or C{"jsonl"} (or an mrjob
        job's output protocol, L{txmr.compat.protocols.ProtocolFormat}).
    @ivar steps: each step's counters, for a job of steps (one item for
        any other job); C{counters} are their sums.
    """

    counters: dict
    output: str
    files: list
    format: object
    steps: list = field(default_factory=list)

    def pairs(self):
        """
        The output's C{(key, value)} pairs, file after file: the exact
        JSON values with C{OUTPUT = "jsonl"}, the two text fields of each
        line with TSV (where the key C{7} and the key C{"7"} read alike).
        """
        for path in self.files:
            yield from read_pairs(path, self.format)


def job_name(job):
    """
    The name workers load a job by: a name as it is; a module or a class
    by its file (or its importable module).

    @raise ValueError: the job has no name another process could load (a
        class defined in a notebook): it runs only inline.
    """
    if isinstance(job, str):
        return job
    if isinstance(job, Job):
        return job.name
    module = job if inspect.ismodule(job) else inspect.getmodule(job)
    attribute = "" if inspect.ismodule(job) else getattr(job, "__qualname__", "")
    path = getattr(module, "__file__", None)
    if path is not None and not os.path.isfile(path):
        path = None
    # A script's own classes are loaded from its file (its call to
    # txmr.run guarded by `if __name__ == "__main__"`, as mrjob asks too).
    where = (module.__name__ if module is not None and module.__name__ != "__main__"
             and not module.__name__.startswith("txmr_job_") else path)
    if where is None or "<" in attribute:
        raise ValueError(f"{job!r} is not defined in a file that worker processes can load: "
                         f"run it with workers=0 (in this process), or move it to a .py file")
    return f"{where}:{attribute}" if attribute else where


def import_root(job):
    """
    The directory a job given as an object was imported from (C{/x} for
    the module C{a.b} of C{/x/a/b.py}), for the daemons to import it from
    too; L{None} for a job given by name.
    """
    if isinstance(job, (str, Job)):
        return None
    module = job if inspect.ismodule(job) else inspect.getmodule(job)
    path = getattr(module, "__file__", None)
    if module is None or path is None or module.__name__ == "__main__":
        return None
    root = os.path.dirname(os.path.abspath(path))
    if os.path.basename(path) == "__init__.py":
        root = os.path.dirname(root)
    for _ in range(module.__name__.count(".")):
        root = os.path.dirname(root)
    return root


def _loaded(job):
    """
    The L{Job} of C{job}, whatever way it is given.
    """
    if isinstance(job, Job):
        return job
    if isinstance(job, str):
        return load_job(job)
    name = getattr(job, "__qualname__", None) or getattr(job, "__name__", repr(job))
    return job_of(name, job)


def run(job, input, output, workers=None, args=(), mappers=None, reducers=2,
        intermediate=None, memory=128, max_attempts=4, quiet=True):
    """
    Run C{job} over the files of C{input}, into C{output}.

    @param job: a name as C{txmr run} takes it (C{"pkg.module"},
        C{"path/job.py:Class"}), a module, or a class.
    @param workers: worker processes on this machine (default: one per
        core); 0 runs the job in this process, where a class defined in a
        notebook works too.
    @param args: the job's own options, as a list of strings.
    @param mappers: map tasks (default 8, as C{txmr run}).
    @param reducers: reduce tasks; 0 makes any job map-only.
    @param intermediate: where map output goes (default: a temporary
        directory, removed afterwards).
    @param memory: a reduce task's memory budget, in MB.
    @param quiet: print nothing (else the progress and the counters, as
        C{txmr run} does).
    @raise ConfigError: the job cannot start (a wrong option, a missing
        input...), before any task runs.
    @raise JobFailed: a task failed for good.
    """
    if os.environ.get(DAEMON_VARIABLE):
        raise RuntimeError("txmr.run was called while a txmr daemon loaded the job: guard the "
                           "script's call with `if __name__ == \"__main__\":`")
    # URLs (s3://...) stay as they are; paths are made absolute, since
    # the daemons run in a directory of their own.
    input, output = (p if "://" in p else os.path.abspath(p) for p in (input, output))
    mappers = 8 if mappers is None else mappers
    if isinstance(job, str) and (job.endswith(".py") or ".py:" in job or os.sep in job):
        # The daemons run in a directory of their own.
        job = os.path.abspath(job)
    args = [str(a) for a in args]
    try:
        loaded = _loaded(job)
    except JobError as e:
        raise ConfigError(str(e)) from e
    work = tempfile.mkdtemp(prefix="txmr-api-")
    try:
        mid = os.path.abspath(intermediate) if intermediate else os.path.join(work, "mid")
        try:
            chain = plan_chain(loaded, input, mid, output, mappers, reducers, args)
        except JobError as e:
            raise ConfigError(str(e)) from e
        if chain.warning() and not quiet:
            print(chain.warning(), file=sys.stderr)
        config = JobConfig(input=input, intermediate=mid, output=output, mappers=mappers,
                           reducers=reducers, job=loaded.name, max_attempts=max_attempts,
                           memory=memory << 20, job_args=args)
        steps = []
        failed = None
        try:
            for step in chain.steps:
                failed = step
                step_config = replace(config, input=step.input, intermediate=step.intermediate,
                                      output=step.output, mappers=step.mappers,
                                      reducers=step.reducers, job=step.job, job_args=list(args))
                if workers == 0:
                    steps.append(_inline(step_config, step_job(loaded, step), quiet))
                else:
                    name = job_name(job)
                    if step.count > 1:
                        name = step_name(name, step.index)
                    # Each step's driver and workers keep their files apart.
                    step_work = os.path.join(work, f"step-{step.index + 1}")
                    os.makedirs(step_work)
                    steps.append(_local(step_config, name, workers or os.cpu_count() or 2,
                                        step_work, quiet, import_root(job)))
        except BaseException:
            # A failed step leaves no earlier run's answer behind.
            remove_stale_output(chain, failed)
            raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    last = chain.steps[-1]
    n = last.mappers if last.map_only else last.reducers
    return Result(sum_counters(steps), output,
                  [f"{output.rstrip('/')}/out-{i}" if "://" in output
                   else os.path.join(output, f"out-{i}") for i in range(n)], last.output_format,
                  steps)


def _inline(config, job, quiet):
    from txmr.inline import run_inline

    progress = None
    if not quiet:
        from txmr.cli import Progress

        bars = Progress()
        progress = lambda scheduler: bars.update(scheduler.counts())  # noqa: E731
    try:
        return run_inline(config, progress=progress, job=job)
    except ConfigError:
        raise
    except (Exception, SystemExit) as e:
        import traceback

        if hasattr(e, "txmr_failure"):
            # A task failed for good: what a driver's summary says of it.
            raise JobFailed(e.txmr_failure, e.txmr_traceback) from e
        raise JobFailed(f"{type(e).__name__}: {e}", traceback.format_exc()) from e
    finally:
        if not quiet:
            bars.close()


def _local(config, name, workers, work, quiet, root):
    """
    The job on a driver and C{workers} local worker processes.
    """
    if "://" not in config.input and not os.path.isdir(config.input):
        raise ConfigError(input_error(config.input))
    a = Namespace(job=name, input=config.input, output=config.output,
                  intermediate=config.intermediate, mappers=config.mappers,
                  reducers=config.reducers, max_attempts=config.max_attempts,
                  memory=config.memory >> 20, task_timeout=None, no_speculation=False,
                  skip_bad_records=False, fresh=False, workers=workers,
                  job_args=config.job_args)
    cluster = LocalCluster(a, work, announce=not quiet, path=[root] if root else [])
    try:
        try:
            cluster.start()
        except CannotStart as e:
            raise ConfigError(str(e).removeprefix("txmr: ")) from None
        code, summary = cluster.follow()
    finally:
        cluster.stop()
    if code:
        raise JobFailed(summary.get("failure") or f"the driver failed (exit {code})",
                        summary.get("traceback", ""))
    return summary.get("counters") or {}
