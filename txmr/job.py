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
    decoded as UTF-8 text with CRLF turned into LF), or C{INPUT = "bytes"}
    (C{map(filename, data)} per file, its exact bytes: for binary formats).

Jobs are named, never shipped: the driver and each worker import the job
themselves from a dotted module (C{txmr.examples.wordcount}, found as
C{python -m} would, the current directory included), a C{module:attribute},
a path to a C{.py} file, or C{path/to/job.py:attribute}.
"""

import importlib
import importlib.util
import inspect
import os
import sys
import threading

from txmr.core.counters import add

DEFAULT_JOB = "txmr.examples.wordcount"
INPUT_MODES = ("lines", "file", "bytes")
# The modes in which map is called once per whole file.
WHOLE_FILE_MODES = ("file", "bytes")


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


class counting:
    """
    Collect the counters of the task run in this thread into C{counters}.
    """

    def __init__(self, counters):
        self.counters = counters

    def __enter__(self):
        self.previous = getattr(_local, "counters", None)
        _local.counters = self.counters
        return self.counters

    def __exit__(self, *exc):
        _local.counters = self.previous


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
        for method in ("map", "reduce"):
            if not callable(getattr(probe, method, None)):
                raise JobError(f"job {name!r} has no {method}() function")
        self.input_mode = getattr(probe, "INPUT", "lines")
        if self.input_mode not in INPUT_MODES:
            raise JobError(
                f"job {name!r}: INPUT must be one of {', '.join(INPUT_MODES)},"
                f" not {self.input_mode!r}"
            )
        self.has_combiner = callable(getattr(probe, "combine", None))

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

    def instance(self):
        """
        What a task calls: a new instance for a class job, else the module.
        """
        return self._class() if self._class is not None else self._target

    @staticmethod
    def hooks(instance, step):
        """
        The C{(init, function, final)} of one step (map, combine or reduce)
        of a job instance; absent hooks do nothing.
        """
        init = getattr(instance, step + "_init", None) or _no_pairs
        final = getattr(instance, step + "_final", None) or _no_pairs
        return init, getattr(instance, step), final


def load_job(name):
    """
    Import the job called C{name}.

    @raise JobError: with a one-line reason, if it cannot be imported or is
        not a job.
    """
    name = (name or DEFAULT_JOB).strip()
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
    return Job(name, target)


def _import(module_name):
    """
    Import a module as C{python -m} would find it: from the current
    directory too.
    """
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        here = os.getcwd()
        if e.name != module_name.split(".")[0] or here in sys.path:
            raise
        sys.path.insert(0, here)
        return importlib.import_module(module_name)


def _load_file(path):
    if not os.path.isfile(path):
        raise JobError(f"job file {path!r} does not exist")
    module_name = "txmr_job_" + os.path.splitext(os.path.basename(path))[0]
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[module_name]
        raise
    return module
