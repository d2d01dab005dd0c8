"""
The job API, and how a job named on the command line is found.

A job is a module, or a class (instantiated once per task), that provides
C{map(key, value)} and C{reduce(key, values)}, each returning an iterable of
C{(key, value)} pairs, and optionally:

  - C{combine(key, values)}: the shape of reduce, applied to map output
    before it is written;
  - C{map_init()}, C{map_final()}, and the same for combine and reduce: called
    before and after the task's records, the C{_final} one returning pairs
    like the method it closes, so a task can aggregate in memory and emit
    once (mrjob's task hooks);
  - C{INPUT = "lines"} (the default: C{map(filename, line)} per line, without
    its newline), C{INPUT = "file"} (C{map(filename, contents)} per file,
    decoded as UTF-8 text with CRLF turned into LF), C{INPUT = "bytes"}
    (C{map(filename, data)} per file, its exact bytes: for binary formats),
    C{INPUT = "jsonl"} (C{map(filename, value)} per line holding one JSON
    value; blank lines are skipped), or C{INPUT = "csv"} (C{map(filename,
    row)} per CSV row, a list of strings, each file read whole so quoted
    newlines work; with C{CSV_HEADER = True} the first row of each file
    names the columns and each row is a dict);
  - C{OUTPUT = "tsv"} (the default: C{key<TAB>value} lines, see
    L{txmr.data.output}) or C{OUTPUT = "jsonl"} (one JSON C{[key, value]}
    per line, exact for any key and value);
  - C{configure(parser)}: declares the job's options on an
    C{argparse.ArgumentParser}; a task reads their values as
    C{txmr.options()}, a class job also as C{self.options};
  - C{partition(key, n)}: the reduce task (C{0 <= i < n}) of a key, in
    place of CRC-32 of its bytes;
  - C{SORT_VALUES = True}: each reduce call gets its values sorted (in
    the order of keys, see L{txmr.data.keys.sort_key});
  - C{TOTAL_ORDER = True}: keys partitioned by ranges sampled from the map
    output, so that C{out-0}, C{out-1}... concatenated are sorted (see
    L{txmr.data.sampling});
  - C{REDUCE = None}: a map-only job; each map task writes its pairs, in
    input order, to C{out-M} (as does C{--reducers 0} for any job).

Jobs are named, never shipped: the driver and each worker import the job
themselves from a dotted module (C{txmr.examples.wordcount}, found as
C{python -m} would, the current directory included), a C{module:attribute},
a path to a C{.py} file, or C{path/to/job.py:attribute}.
"""

import argparse
import importlib
import importlib.util
import inspect
import os
import sys
import threading

from txmr.core.counters import add
from txmr.job_options import JobOptionsError, make_parser, parse

DEFAULT_JOB = "txmr.examples.wordcount"
INPUT_MODES = ("lines", "file", "bytes", "jsonl", "csv", "path")
# The modes in which a map task reads whole files (their splits are never
# cut inside a file); "path" hands map the file's path, unread (mrjob's
# mapper_raw).
WHOLE_FILE_MODES = ("file", "bytes", "csv", "path")
OUTPUT_FORMATS = ("tsv", "jsonl")


class JobError(Exception):
    """
    The job cannot be loaded, or does not have the shape of a job.
    """


_local = threading.local()


def counter(group, name, amount=1):
    """
    Add C{amount} to a user counter of the running task.  The driver sums
    counters over the successful attempts and reports them at the end.
    Outside a task this does nothing.
    """
    counters = getattr(_local, "counters", None)
    if counters is not None:
        add(counters, str(name), amount, str(group))


def options():
    """
    The parsed values of the job's options (an C{argparse.Namespace}) in
    the running task: the same in every task of the job.  Outside a task,
    L{None}.
    """
    return getattr(_local, "options", None)


class counting:
    """
    Collect the counters of the task run in this thread into C{counters};
    L{options} answers C{task_options} meanwhile.
    """

    def __init__(self, counters, task_options=None):
        self.counters = counters
        self.options = task_options

    def __enter__(self):
        self.previous = (getattr(_local, "counters", None), getattr(_local, "options", None))
        _local.counters = self.counters
        if self.options is not None:
            _local.options = self.options
        return self.counters

    def __exit__(self, *exc):
        _local.counters, _local.options = self.previous


def _no_pairs():
    return ()


class Job:
    """
    A loaded job: the user's object, seen through one interface.

    @ivar name: how the job was named; workers load it by this name.
    """

    def __init__(self, name, target):
        self.name = name
        self._target = target
        self._class = target if inspect.isclass(target) else None
        probe = self._class or target
        # REDUCE = None says the job is map-only; a missing reduce() is
        # more likely a mistake than a wish.
        self.map_only = getattr(probe, "REDUCE", False) is None
        for method in ("map",) if self.map_only else ("map", "reduce"):
            if not callable(getattr(probe, method, None)):
                hint = " (REDUCE = None makes a map-only job)" if method == "reduce" else ""
                raise JobError(f"job {name!r} has no {method}() function{hint}")
        self.input_mode = _choice(name, probe, "INPUT", "lines", INPUT_MODES)
        self.output_format = _choice(name, probe, "OUTPUT", "tsv", OUTPUT_FORMATS)
        self.csv_header = bool(getattr(probe, "CSV_HEADER", False))
        self.sort_values = bool(getattr(probe, "SORT_VALUES", False))
        self.total_order = bool(getattr(probe, "TOTAL_ORDER", False))
        self.has_combiner = callable(getattr(probe, "combine", None))
        if self.map_only and self.has_combiner:
            raise JobError(f"job {name!r}: combine() with REDUCE = None: a map-only job runs "
                           f"no combine (it runs between a map and its reduce)")
        self.has_partition = callable(getattr(probe, "partition", None))
        if self.total_order and self.has_partition:
            raise JobError(f"job {name!r}: TOTAL_ORDER partitions by sampled key ranges; "
                           f"it cannot have its own partition() too")
        self._configure = getattr(probe, "configure", None)
        if self._configure is not None and not callable(self._configure):
            raise JobError(f"job {name!r}: configure must be a function of a parser")
        self._parsed = {}

    def parser(self):
        """
        The job's option parser (an C{argparse.ArgumentParser}), on which
        its C{configure(parser)} declared them.
        """
        configure = self._configure
        try:
            if configure is not None and self._class is not None:
                # A method, a classmethod or a staticmethod alike.
                configure = getattr(self._class(), "configure")
            return make_parser(self.name, inspect.getdoc(self._target), configure)
        except Exception as e:
            raise JobError(f"job {self.name!r}: its configure(parser) raised "
                           f"{type(e).__name__}: {e}") from e

    def help_text(self):
        """
        What C{txmr run JOB --help-job} prints.
        """
        return self.parser().format_help()

    def parse_args(self, args):
        """
        The job's options parsed from the argument list C{args}.

        @raise JobError: an option is wrong or unknown; the message names it.
        """
        args = tuple(args)
        parsed = self._parsed.get(args)
        if parsed is None:
            try:
                parsed = parse(self.parser(), args)
            except JobOptionsError as e:
                raise JobError(f"job {self.name!r}: {e}") from None
            self._parsed[args] = parsed
        # A task may change its own copy, not the next task's.
        return argparse.Namespace(**vars(parsed))

    def source_digest(self):
        """
        A digest of the job's source file, or "" when it has none: a driver
        resumes a run only for the same code.
        """
        import hashlib

        module = inspect.getmodule(self._target)
        try:
            path = inspect.getsourcefile(module)
            with open(path, "rb") as f:
                return hashlib.sha256(f.read()).hexdigest()
        except (TypeError, OSError):
            return ""

    def instance(self, options=None):
        """
        What a task calls: a new instance for a class job (whose C{options}
        attribute is then C{options}, if given), else the module.
        """
        if self._class is None:
            return self._target
        instance = self._class()
        if options is not None:
            instance.options = options
        return instance

    def planning_error(self):
        """
        Why a driver cannot run this job as it is (a job of several steps
        runs a step at a time), or L{None}.
        """
        return None

    @staticmethod
    def hooks(instance, step):
        """
        The C{(init, function, final)} of one step (map, combine or reduce)
        of a job instance; absent hooks do nothing.
        """
        init = getattr(instance, step + "_init", None) or _no_pairs
        final = getattr(instance, step + "_final", None) or _no_pairs
        return init, getattr(instance, step), final


def _choice(name, probe, attribute, default, allowed):
    value = getattr(probe, attribute, default)
    if value not in allowed:
        raise JobError(f"job {name!r}: {attribute} must be one of {', '.join(allowed)},"
                       f" not {value!r}")
    return value


def load_job(name):
    """
    Import the job called C{name}.

    @raise JobError: with a one-line reason, if it cannot be imported or is
        not a job.
    """
    from txmr.steps import split_step

    name, step = split_step((name or DEFAULT_JOB).strip())
    where, _, attribute = name.rpartition(":") if ":" in name else (name, "", "")
    try:
        if where.endswith(".py") or os.sep in where:
            where = os.path.abspath(where)
            # Workers load the job by this name, from any directory.
            name = f"{where}:{attribute}" if attribute else where
            module = _load_file(where)
        else:
            module = _import(where)
        target = getattr(module, attribute) if attribute else module
    except JobError:
        raise
    except (Exception, SystemExit) as e:
        raise JobError(f"cannot load job {name!r}: {type(e).__name__}: {e}") from e
    job = job_of(name, target)
    if step is None:
        return job
    if not isinstance(job, _stepped()):
        raise JobError(f"job {name!r} has no steps(): it has no step {step + 1}")
    return job.step(step)


def _stepped():
    from txmr.steps import StepJob

    return StepJob


def job_of(name, target):
    """
    The L{Job} of a loaded module or class: a job of steps when it has
    C{steps()}, an mrjob job when it is (or a module defines exactly one)
    subclass of C{MRJob}, else a job of one map and one reduce.

    @raise JobError: it is none of these.
    """
    from txmr.compat import is_mrjob_class, mrjob_classes

    if inspect.ismodule(target) and not callable(getattr(target, "map", None)) \
            and not callable(getattr(target, "steps", None)):
        found = mrjob_classes(target)
        if len(found) > 1:
            names = ", ".join(sorted(c.__name__ for c in found))
            raise JobError(f"job {name!r} defines several MRJob classes ({names}): "
                           f"name one, as {name}:{found[0].__name__}")
        if found:
            target = found[0]
    if is_mrjob_class(target):
        from txmr.compat.adapter import MRJobSource

        return MRJobSource(name, target).job()
    if callable(getattr(target, "steps", None)):
        from txmr.steps import NativeSource

        return NativeSource(name, target).job()
    return Job(name, target)


def _import(module_name):
    """
    Import a module as C{python -m} would find it: from the current
    directory too.
    """
    try:
        return _import_with_mrjob(module_name)
    except ModuleNotFoundError as e:
        here = os.getcwd()
        if e.name != module_name.split(".")[0] or here in sys.path:
            raise
        sys.path.insert(0, here)
        return _import_with_mrjob(module_name)


def _import_with_mrjob(module_name):
    """
    Import a job module; one that imports mrjob where it is missing gets
    txmr's compatible surface (L{txmr.compat}).
    """
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        from txmr.compat import ensure_mrjob

        if (e.name or "").split(".")[0] != "mrjob" or ensure_mrjob():
            raise
        return importlib.import_module(module_name)


def _load_file(path):
    if not os.path.isfile(path):
        raise JobError(f"job file {path!r} does not exist")
    module_name = "txmr_job_" + os.path.splitext(os.path.basename(path))[0]
    _mrjob_if_used(path)
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[module_name]
        raise
    return module


def _mrjob_if_used(path):
    """
    A job file that imports mrjob gets the real package, or txmr's
    compatible surface where it does not import (L{txmr.compat}).
    """
    try:
        with open(path, "rb") as f:
            used = b"mrjob" in f.read()
    except OSError:
        return
    if used:
        from txmr.compat import ensure_mrjob

        ensure_mrjob()
