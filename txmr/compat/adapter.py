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
"""

import argparse
import inspect
import json
from dataclasses import dataclass

from twisted.logger import Logger

from txmr.compat import ensure_mrjob
from txmr.compat.hadoop import (TASK_ENVIRONMENT, ignored_settings, input_file,
                                reads_input_file, refusal, step_jobconf, task_environment,
                                task_kind, user_jobconf)
from txmr.data.inputs import decode, read_blocks
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
                output_format=ProtocolFormat(_protocol(job, writes)),
                sort_values=sort_values, jobconf=tuple(sorted(plan.jobconf.items()))))
        return shapes

    def step_instance(self, options, index):
        job = self.instance_of(options)
        plan = self.plans(job)[index]
        # Each task builds its step here, before it runs: its jobconf and
        # --cmdenv are in the environment as mrjob's runners put them there
        # (jobconf_from_env reads them).
        TASK_ENVIRONMENT.enter(plan.environment)
        return _StepFunctions(job, plan)


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


def _protocol(job, which):
    return getattr(job, which + "_protocol")()


def _counter(group, counter, amount=1):
    if not isinstance(amount, int):
        raise TypeError(f"amount must be an integer, not {amount!r}")
    import txmr

    txmr.counter(str(group).replace(",", ";"), str(counter).replace(",", ";"), amount)


def _status(msg):
    log.info("task status: {msg}", msg=msg)


def _class_named(protocol, *names):
    return type(protocol).__name__ in names and type(protocol).__module__ in (
        "mrjob.protocol", "txmr.compat.mrjob.protocol")


def _is_json(protocol):
    return _class_named(protocol, "StandardJSONProtocol")


def _text(data):
    return data.decode("utf-8", "surrogateescape")


def _data(text):
    return text.encode("utf-8", "surrogateescape")


class _Encoder:
    """
    A substep's pairs into the shuffle: C{(key text, rest)} of the line
    the internal protocol writes, the key text being the line up to its
    first tab (the whole line when it has none) and the rest the tab and
    what follows.
    """

    def __init__(self, protocol):
        self.write = protocol.write
        self.json = _is_json(protocol)
        # JSON texts of the strings and ints seen lately (keys repeat, and
        # values are often small counts): a word count's map output is
        # mostly the same few thousand keys, each with the value 1.
        self.texts = {}

    def __call__(self, pairs):
        if pairs is None:
            return ()
        if self.json:
            return self._json(pairs)
        out = []
        for k, v in pairs:
            line = _text(self.write(k, v))
            key, tab, rest = line.partition("\t")
            out.append((key, tab + rest))
        return out


    def _json(self, pairs):
        dumps = json.dumps
        texts = self.texts
        if len(texts) > CACHED_TEXTS:
            texts.clear()
        get = texts.get
        out = []
        append = out.append
        for k, v in pairs:
            kind = type(k)
            if kind is str or kind is int:
                key = get((kind, k))
                if key is None:
                    key = texts[(kind, k)] = dumps(k)
            else:
                key = dumps(k)
            kind = type(v)
            if kind is int or kind is str:
                rest = get((kind, v, 1))
                if rest is None:
                    rest = texts[(kind, v, 1)] = "\t" + dumps(v)
            else:
                rest = "\t" + dumps(v)
            append((key, rest))
        return out


# How many encoded or decoded texts an encoder or decoder keeps.
CACHED_TEXTS = 1 << 16
_IMMUTABLE = (int, str, float, bool, type(None))


class _Decoder:
    """
    A group of the shuffle back into C{(key, values)} through the internal
    protocol.
    """

    def __init__(self, protocol):
        self.read = protocol.read
        self.json = _is_json(protocol)
        # Decoded values that cannot be changed by the job, by their text.
        self.values = {}

    def __call__(self, key_text, rests):
        if self.json:
            return json.loads(key_text), self._json_values(rests)
        read = self.read
        pairs = [read(_data(key_text + rest)) for rest in rests]
        return pairs[0][0], (v for _, v in pairs)

    def _json_values(self, rests):
        loads = json.loads
        values = self.values
        if len(values) > CACHED_TEXTS:
            values.clear()
        get = values.get
        for rest in rests:
            value = get(rest)
            if value is None:
                value = loads(rest[1:])
                if type(value) in _IMMUTABLE and value is not None:
                    values[rest] = value
            yield value


class _StepFunctions:
    """
    One step of an mrjob job as txmr's data path calls it: C{map},
    C{combine}, C{reduce} and their hooks, reading and writing the
    protocols of L{MRJobSource.plans}.
    """

    def __init__(self, job, plan):
        self.job = job
        step = plan.step
        self.options = job.options
        out = (_Encoder(job.internal_protocol()) if plan.map_writes == "shuffle"
               else _as_list)
        if plan.raw:
            raw = step["mapper_raw"]
            self.map = lambda name, path: out(raw(path, path))
        elif plan.has_mapper:
            self.map = _mapper(step["mapper"], _protocol(job, plan.map_reads), out)
            if plan.by_file:
                self.map = _by_file(self.map)
        else:
            # No mapper substep (a reducer-only step after the first): the
            # lines go to the shuffle as they are, as Hadoop's identity map.
            self.map = _passthrough
        self.map_init = _kind_of_task(True, _hook(step["mapper_init"], out))
        self.map_final = _hook(step["mapper_final"], out)
        if plan.has_reducer:
            decode = _Decoder(job.internal_protocol())
            reducer = step["reducer"]
            self.reduce = lambda key, rests: _as_list(reducer(*decode(key, rests)))
            self.reduce_init = _kind_of_task(False, _hook(step["reducer_init"], _as_list))
            self.reduce_final = _hook(step["reducer_final"], _as_list)
        if plan.has_combiner:
            encode = _Encoder(job.internal_protocol())
            decode = _Decoder(job.internal_protocol())
            combiner = step["combiner"]
            self.combine = lambda key, rests: encode(combiner(*decode(key, rests)))
            self.combine_init = _hook(step["combiner_init"], encode)
            self.combine_final = _hook(step["combiner_final"], encode)


def _as_list(pairs):
    return () if pairs is None else pairs


def _kind_of_task(is_map, hook):
    """
    The first hook of a map or reduce task, which also says in the
    environment which kind of task it is, as mrjob's runners do
    (C{mapreduce.task.ismap}).
    """
    variables = task_kind(is_map)

    def init():
        TASK_ENVIRONMENT.add(variables)
        return hook() if hook is not None else ()
    return init


def _hook(function, out):
    if function is None:
        return None
    return lambda: out(function())


def _by_file(map_line):
    """
    C{map(name, path)} of a whole file, each of its lines through
    C{map_line} as txmr's map tasks read lines, with the file in the
    environment (C{mapreduce.map.input.file}).
    """
    def map_file(name, path):
        TASK_ENVIRONMENT.add(input_file(path))
        for _, data in read_blocks(path, 0, float("inf"), FILE_BLOCK):
            lines = decode(data).split("\n")
            if lines[-1] == "":
                lines.pop()
            for line in lines:
                pairs = map_line(name, line)
                if pairs:
                    yield from pairs
    return map_file


# How much of a file L{_by_file} reads at once.
FILE_BLOCK = 1 << 20


def _passthrough(name, line):
    key, tab, rest = line.partition("\t")
    return ((key, tab + rest),)


def _mapper(mapper, protocol, out):
    """
    C{map(name, line)}: the line (its bytes, without the line end, which
    mrjob takes to be any run of CR and LF) through the read protocol, then
    the job's mapper.  The default input protocol
    (text values) takes txmr's decoded line as it is when it was UTF-8.
    """
    if _class_named(protocol, "TextValueProtocol"):
        read = protocol.read

        def map_text(name, line):
            if line.endswith("\r"):
                line = line.rstrip("\r")
            try:
                line.encode("utf-8")
            except UnicodeEncodeError:
                return out(mapper(*read(_data(line))))
            return out(mapper(None, line))
        return map_text
    read = protocol.read

    def map_line(name, line):
        return out(mapper(*read(_data(line.rstrip("\r")))))
    return map_line


class ProtocolFormat:
    """
    An output format that writes each pair as the line the job's protocol
    writes (L{txmr.data.output.OutputFile} takes it in place of a name).
    """

    binary = True

    def __init__(self, protocol):
        self.protocol = protocol
        self.name = f"{type(protocol).__module__}.{type(protocol).__name__}"

    def __eq__(self, other):
        return isinstance(other, ProtocolFormat) and other.name == self.name

    def __hash__(self):
        return hash(self.name)

    def __repr__(self):
        return f"ProtocolFormat({self.name})"

    def lines(self, pairs):
        write = self.protocol.write
        if _is_json(self.protocol):
            dumps = json.dumps
            return "".join([f"{dumps(k)}\t{dumps(v)}\n" for k, v in pairs]).encode("utf-8")
        return b"".join([write(k, v) + b"\n" for k, v in pairs])

    def read_pairs(self, path):
        read = self.protocol.read
        with open(path, "rb") as f:
            for line in f:
                yield read(line.rstrip(b"\r\n"))
