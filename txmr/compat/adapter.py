"""
An mrjob job (a subclass of C{MRJob}, real or L{txmr.compat.mrjob}) seen
as a txmr job of steps (L{txmr.steps.StepSource}).

Each task builds the job as mrjob's own tasks do, C{MRJobClass(args=...)}
with the job's raw argument list, and runs one step's functions.  Data
crosses each boundary as mrjob has it cross, through the job's protocols:
the first script substep reads lines with the input protocol (or hands
the file's path to C{mapper_raw}), the last writes lines with the output
protocol, and the others write and read the internal protocol.  Between a
step's map and its reduce, txmr's shuffle carries each pair as its
encoded text, the key before the first tab and the rest: so keys are
grouped and sorted by their encoded text, and with C{SORT_VALUES} values
by theirs, as Hadoop and mrjob's runners do, and a reducer receives what
the protocol decodes (a tuple comes back a list with JSON).

The job's Hadoop settings (JOBCONF, C{-D}, PARTITIONER, formats...) are
L{txmr.compat.hadoop}'s: each task's environment, the warning of those
ignored, or a refusal before any task runs.  A step with a combiner and
no reducer is refused too (L{MRJobSource._steps}).

This module plans the steps; the protocols' side is
L{txmr.compat.protocols}, and the functions a task calls are
L{txmr.compat.functions}.
"""

import argparse
import inspect
from dataclasses import dataclass

from twisted.logger import Logger

from txmr.compat import ensure_mrjob
from txmr.compat.functions import StepFunctions
from txmr.compat.hadoop import (TASK_ENVIRONMENT, ignored_settings, reads_input_file, refusal,
                                step_jobconf, task_environment, user_jobconf)
from txmr.compat.protocols import ProtocolFormat, protocol_of
from txmr.job import JobError
from txmr.steps import StepShape, StepSource

log = Logger()

UNSUPPORTED = ("mapper_cmd", "combiner_cmd", "reducer_cmd", "mapper_pre_filter",
               "combiner_pre_filter", "reducer_pre_filter")


class Options(argparse.Namespace):
    """
    The parsed options of an mrjob job, which also keep the raw argument
    list (out of C{vars()}): each task builds its job from it, as mrjob's
    tasks are given it.
    """

    __slots__ = ("raw_args",)


class MRJobSource(StepSource):
    """
    The steps of an C{MRJob} subclass.
    """

    def __init__(self, name, cls):
        super().__init__(name, cls)
        self.real = ensure_mrjob()

    def _build(self, args):
        try:
            return self.cls(args=list(args))
        except (ValueError, SystemExit) as e:
            raise JobError(f"job {self.name!r}: job options: {e}") from None

    def parser(self):
        return self._build([]).arg_parser

    def parse_args(self, args):
        job = self._build(args)
        options = Options(**vars(job.options))
        options.raw_args = tuple(args)
        return options

    def instance_of(self, options):
        """
        The job as a task builds it, reporting counters to txmr.
        """
        job = self._build(options.raw_args if options is not None else ())
        job.increment_counter = _counter
        job.set_status = _status
        return job

    def _steps(self, job):
        try:
            steps = job.steps()
        except Exception as e:
            raise JobError(f"job {self.name!r}: its steps() raised "
                           f"{type(e).__name__}: {e}") from e
        if not steps:
            raise JobError(f"job {self.name!r} has no steps: define mapper, reducer... "
                           f"or steps()")
        for k, step in enumerate(steps):
            if not hasattr(step, "_steps") or not hasattr(step, "description"):
                raise JobError(f"job {self.name!r}: step {k + 1} is {type(step).__name__}; "
                               f"txmr runs MRStep steps only")
            given = [name for name in UNSUPPORTED if step._steps.get(name)]
            if given:
                raise JobError(f"job {self.name!r}: step {k + 1} uses {', '.join(given)}, "
                               f"which txmr does not run (only Python functions)")
            if step.has_explicit_combiner and not step.has_explicit_reducer:
                # mrjob's runners disagree: its local runners sort each map
                # task's output and combine it (so the lines depend on how
                # the input was split), Hadoop runs no combiner when a step
                # has no reduce.  No one answer to give: refused.
                raise JobError(f"job {self.name!r}: step {k + 1} has a combiner and no "
                               f"reducer, which txmr does not run (Hadoop would not run that "
                               f"combiner, mrjob's local runners run it on each map task's "
                               f"output): give the step a reducer, or make it map-only")
        return steps

    def plans(self, job):
        """
        Each step's L{_StepPlan}: which substeps it runs and which protocol
        each reads and writes, by mrjob's rules (the first script substep
        reads the input protocol, the last writes the output protocol).
        """
        steps = self._steps(job)
        descriptions = [step.description(k) for k, step in enumerate(steps)]
        substeps = [(k, kind) for k, d in enumerate(descriptions)
                    for kind in ("mapper", "reducer") if kind in d]
        first, last = substeps[0], substeps[-1]

        def reads(k, kind):
            return "input" if (k, kind) == first else "internal"

        def writes(k, kind):
            return "output" if (k, kind) == last else "internal"
        sort_values = bool(job.sort_values())
        ignored = ignored_settings(job)
        by_file = self._reads_input_file(job)
        plans = []
        for k, (step, d) in enumerate(zip(steps, descriptions)):
            has_mapper, has_reducer = "mapper" in d, "reducer" in d
            conf = user_jobconf(job, step)
            refused = refusal(job, conf, sort_values)
            if refused:
                raise JobError(f"job {self.name!r}: {refused}")
            raw = bool(step["mapper_raw"])
            plans.append(_StepPlan(
                step=step, has_mapper=has_mapper, has_reducer=has_reducer,
                has_combiner=has_reducer and "combiner" in d, raw=raw,
                by_file=k == 0 and has_mapper and by_file and not raw,
                map_reads=reads(k, "mapper") if has_mapper else "internal",
                map_writes=writes(k, "mapper") if not has_reducer else "shuffle",
                reduce_writes=writes(k, "reducer") if has_reducer else None,
                jobconf={**ignored, **conf},
                environment=task_environment(job, step_jobconf(job, step, sort_values))))
        return plans

    def _reads_input_file(self, job):
        """
        Whether the job's source names the jobconf value of a map task's
        input file (C{jobconf_from_env('mapreduce.map.input.file')}, as
        mrjob's documentation suggests): its first step's map tasks then
        read whole files, each with its name in the environment as mrjob's
        runners put it there (a task reading lines of a split is not told
        its file).
        """
        try:
            path = inspect.getsourcefile(type(job))
            with open(path, encoding="utf-8", errors="replace") as f:
                return reads_input_file(f.read()) is not None
        except (OSError, TypeError):
            return False

    def shapes(self, options):
        job = self.instance_of(options)
        sort_values = bool(job.sort_values())
        shapes = []
        for plan in self.plans(job):
            writes = plan.reduce_writes or plan.map_writes
            shapes.append(StepShape(
                map_only=not plan.has_reducer, has_combiner=plan.has_combiner,
                input_mode="path" if plan.raw or plan.by_file else "lines",
                output_format=ProtocolFormat(protocol_of(job, writes)),
                sort_values=sort_values, jobconf=tuple(sorted(plan.jobconf.items()))))
        return shapes

    def step_instance(self, options, index):
        job = self.instance_of(options)
        plan = self.plans(job)[index]
        # Each task builds its step here, before it runs: its jobconf and
        # --cmdenv are in the environment as mrjob's runners put them there
        # (jobconf_from_env reads them).
        TASK_ENVIRONMENT.enter(plan.environment)
        return StepFunctions(job, plan)


@dataclass(frozen=True)
class _StepPlan:
    """
    One step of an mrjob job as txmr runs it.
    """

    step: object
    has_mapper: bool
    has_reducer: bool
    has_combiner: bool
    # mapper_raw: the map is called with each file's path.
    raw: bool
    # The first step's map reads whole files, to tell the job each one's name.
    by_file: bool
    # Which protocol each substep reads and writes: "input", "internal",
    # "output", or "shuffle" (the internal protocol's text, split at its tab).
    map_reads: str
    map_writes: str
    reduce_writes: object
    # The step's jobconf, for txmr.chain (the counts of tasks, the warning).
    jobconf: dict
    # The variables of each task's environment (jobconf_from_env).
    environment: dict


def _counter(group, counter, amount=1):
    if not isinstance(amount, int):
        raise TypeError(f"amount must be an integer, not {amount!r}")
    import txmr

    txmr.counter(str(group).replace(",", ";"), str(counter).replace(",", ";"), amount)


def _status(msg):
    log.info("task status: {msg}", msg=msg)
