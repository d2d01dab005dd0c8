"""
Jobs of several steps: step k's output is step k+1's input, and only the
last step writes the user's output.

A native job declares its steps with C{steps()} (a function of the module,
or a method of the class) returning a list of L{Step}; an mrjob job
declares them with C{MRStep} (L{txmr.compat.adapter}).  Either way the job
is seen through a L{StepSource}, and each step runs as a whole txmr job
whose L{StepJob} has the interface of L{txmr.job.Job}: the driver, the
workers and the data path run one step as they run any job, and know
nothing of the others.  Workers load step k by the job's name with
C{#step=K} after it (L{step_name}); L{txmr.chain} runs the steps in order.

Between native steps, pairs travel as JSON C{[key, value]} lines (the
C{jsonl} output format), which step k+1's map reads back exactly as
C{map(key, value)}.
"""

import inspect
import json
import re
from dataclasses import dataclass, fields
from types import SimpleNamespace

from txmr.job import INPUT_MODES, OUTPUT_FORMATS, Job, JobError, _choice

_STEP_SUFFIX = re.compile(r"#step=(\d+)$")

HOOKS = ("map", "map_init", "map_final", "combine", "combine_init", "combine_final",
         "reduce", "reduce_init", "reduce_final")


@dataclass(frozen=True)
class Step:
    """
    One step of a native job: any of map, combine and reduce, and their
    C{_init}/C{_final} hooks, with the signatures of a job's own.  A step
    without C{reduce} is map-only (it writes one output file per map task,
    its pairs in input order); a step without C{map} passes its input pairs
    on as they are.
    """

    map: object = None
    map_init: object = None
    map_final: object = None
    combine: object = None
    combine_init: object = None
    combine_final: object = None
    reduce: object = None
    reduce_init: object = None
    reduce_final: object = None

    def __post_init__(self):
        if not any(getattr(self, f.name) for f in fields(self)):
            raise ValueError("a Step needs at least one of map, combine and reduce")
        for f in fields(self):
            value = getattr(self, f.name)
            if value is not None and not callable(value):
                raise TypeError(f"Step({f.name}=...) must be a function, not {value!r}")


def step_name(name, index):
    """
    The name workers load step C{index} (from 0) of the job C{name} by.
    """
    return f"{name}#step={index + 1}"


def split_step(name):
    """
    C{(job name, step index)} of a name given by L{step_name}, or
    C{(name, None)} for a whole job.
    """
    match = _STEP_SUFFIX.search(name)
    if match is None:
        return name, None
    index = int(match.group(1)) - 1
    if index < 0:
        raise JobError(f"job {name!r}: steps count from 1")
    return name[:match.start()], index


@dataclass(frozen=True)
class StepShape:
    """
    What the driver and the data path must know of one step, before they
    run its code: the attributes of a L{txmr.job.Job}.
    """

    map_only: bool
    has_combiner: bool
    input_mode: str = "lines"
    output_format: object = "tsv"
    csv_header: bool = False
    sort_values: bool = False
    total_order: bool = False
    has_partition: bool = False
    # Hadoop settings of the step (mrjob's JOBCONF), for L{txmr.chain}.
    jobconf: tuple = ()


class StepSource:
    """
    A job of steps, as L{StepJob} sees it.  Subclasses say how the job's
    options are parsed, what each step is (L{shapes}) and what a task of a
    step calls (L{step_instance}).
    """

    def __init__(self, name, target):
        self.name = name
        self.target = target
        self.cls = target if inspect.isclass(target) else None

    def parser(self):
        raise NotImplementedError

    def parse_args(self, args):
        raise NotImplementedError

    def shapes(self, options):
        """
        Each step's L{StepShape}, for these parsed options.
        """
        raise NotImplementedError

    def step_instance(self, options, index):
        """
        What a task of step C{index} calls: an object whose C{map},
        C{combine}, C{reduce} and hooks are the step's.
        """
        raise NotImplementedError

    def source_digest(self):
        return Job.source_digest(self)

    @property
    def _target(self):
        return self.target

    def job(self, index=None):
        """
        Step C{index}'s L{StepJob}, or the whole job's (which runs as its
        first step when it has only one).
        """
        name = self.name if index is None else step_name(self.name, index)
        return StepJob(self, name, 0 if index is None else index, whole=index is None)


class StepJob(Job):
    """
    One step of a job of steps, with the interface of a L{Job}.  Its shape
    (map-only, combiner, formats...) is known once the job's options are
    parsed (L{parse_args}), which the driver and each task do before they
    look at it.
    """

    def __init__(self, source, name, index, whole=False):
        # Not Job.__init__: the source checked the job's shape.
        self.name = name
        self.source = source
        self.index = index
        self.whole = whole
        self._target = source.target
        self._class = source.cls
        self._configure = None
        self._parsed = {}
        self.n_steps = 0
        self._shape(StepShape(map_only=False, has_combiner=False))

    def _shape(self, shape):
        for f in fields(shape):
            if f.name != "jobconf":
                setattr(self, f.name, getattr(shape, f.name))

    def parser(self):
        return self.source.parser()

    def parse_args(self, args):
        args = tuple(args)
        options = self.source.parse_args(args)
        shapes = self._parsed.get(args)
        if shapes is None:
            shapes = self._parsed[args] = self.source.shapes(options)
        if self.index >= len(shapes):
            raise JobError(f"job {self.source.name!r} has {len(shapes)} step(s), "
                           f"not a step {self.index + 1}")
        self.n_steps = len(shapes)
        self._shape(shapes[self.index])
        return options

    def shapes(self, args):
        """
        Every step's L{StepShape}, for the argument list C{args}.
        """
        self.parse_args(args)
        return self._parsed[tuple(args)]

    def planning_error(self):
        if self.whole and self.n_steps > 1:
            return (f"job {self.name!r} has {self.n_steps} steps: txmr run (or txmr.run) runs "
                    f"them in order; a driver runs one step (--job '{step_name(self.name, 0)}',"
                    f" then the next on its output)")
        return None

    def step(self, index):
        return self.source.job(index)

    def source_digest(self):
        return self.source.source_digest()

    def instance(self, options=None):
        return self.source.step_instance(options, self.index)


def _pairs_map(function):
    """
    C{map(key, value)} of a step after the first: each line of the
    previous step's output is one JSON C{[key, value]}.
    """
    loads = json.loads

    def map_pair(name, line):
        if not line or line.isspace():
            return None
        key, value = loads(line)
        return function(key, value)
    return map_pair


def _identity_map(key, value):
    return ((key, value),)


def _identity_reduce(key, values):
    return ((key, value) for value in values)


class NativeSource(StepSource):
    """
    A txmr job (module or class) whose C{steps()} returns L{Step}s.
    """

    def __init__(self, name, target):
        super().__init__(name, target)
        probe = target
        self.input_mode = _choice(name, probe, "INPUT", "lines", INPUT_MODES)
        self.output_format = _choice(name, probe, "OUTPUT", "tsv", OUTPUT_FORMATS)
        self.csv_header = bool(getattr(probe, "CSV_HEADER", False))
        self.sort_values = bool(getattr(probe, "SORT_VALUES", False))
        self.total_order = bool(getattr(probe, "TOTAL_ORDER", False))
        self.has_partition = callable(getattr(probe, "partition", None))
        if self.total_order and self.has_partition:
            raise JobError(f"job {name!r}: TOTAL_ORDER partitions by sampled key ranges; "
                           f"it cannot have its own partition() too")
        # Options as a single-step job has them.
        self.options_job = Job(name, _WithOptions(target))

    def parser(self):
        return self.options_job.parser()

    def parse_args(self, args):
        return self.options_job.parse_args(args)

    def _instance(self, options):
        # A module's functions read their options as txmr.options().
        return self.target if self.cls is None else _instance_of(self.cls, options)

    def _steps(self, options):
        instance = self._instance(options)
        steps = instance.steps()
        if not isinstance(steps, (list, tuple)) or not steps:
            raise JobError(f"job {self.name!r}: steps() must return a list of txmr.Step")
        for step in steps:
            if not isinstance(step, Step):
                raise JobError(f"job {self.name!r}: steps() returned {step!r}, "
                               f"not a txmr.Step")
            if ((step.combine or step.combine_init or step.combine_final)
                    and not (step.reduce or step.reduce_init or step.reduce_final)):
                raise JobError(f"job {self.name!r}: a step has a combine and no reduce: a "
                               f"combine runs only between a map and its reduce")
        return instance, list(steps)

    def shapes(self, options):
        _, steps = self._steps(options)
        last = len(steps) - 1
        shapes = []
        for k, step in enumerate(steps):
            map_only = step.reduce is None and not (step.reduce_init or step.reduce_final)
            shapes.append(StepShape(
                map_only=map_only, has_combiner=not map_only and step.combine is not None,
                input_mode=self.input_mode if k == 0 else "lines",
                output_format=self.output_format if k == last else "jsonl",
                csv_header=self.csv_header and k == 0, sort_values=self.sort_values,
                total_order=self.total_order and k == last, has_partition=self.has_partition))
        return shapes

    def step_instance(self, options, index):
        instance, steps = self._steps(options)
        step = steps[index]
        hooks = {name: getattr(step, name) for name in HOOKS}
        hooks["map"] = hooks["map"] or _identity_map
        if hooks["reduce"] is None and (step.reduce_init or step.reduce_final):
            hooks["reduce"] = _identity_reduce
        if index > 0:
            hooks["map"] = _pairs_map(hooks["map"])
        if self.has_partition:
            hooks["partition"] = instance.partition
        return SimpleNamespace(options=options, **{k: v for k, v in hooks.items() if v})


class _WithOptions:
    """
    A job's C{configure} and docstring, seen as a job of its own, for
    its options alone.
    """

    def __init__(self, target):
        self.__doc__ = inspect.getdoc(target)
        self.REDUCE = None
        configure = getattr(target, "configure", None)
        if configure is not None:
            if inspect.isclass(target):
                configure = getattr(target(), "configure")
            self.configure = configure

    def map(self, key, value):
        return ()


def _instance_of(cls, options):
    instance = cls()
    if options is not None:
        instance.options = options
    return instance


def sum_counters(counters_list):
    """
    The counters of several steps, summed (C{{group: {name: total}}}).
    """
    total = {}
    for counters in counters_list:
        for group, names in counters.items():
            into = total.setdefault(group, {})
            for name, value in names.items():
                into[name] = into.get(name, 0) + value
    return total


