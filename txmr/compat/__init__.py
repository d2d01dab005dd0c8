"""
Jobs written for mrjob, run by txmr unchanged.

A file that defines an C{MRJob} subclass is a txmr job
(L{txmr.compat.adapter}).  Where the real mrjob package imports, its
classes are used as they are; where it does not (not installed, or a
Python it does not support), L{ensure_mrjob} makes C{import mrjob.job},
C{mrjob.step}, C{mrjob.protocol} and C{mrjob.compat} give txmr's compatible surface
(L{txmr.compat.mrjob}), so that those files import all the same.  The real
package, when importable, always wins.
"""

import importlib
import inspect
import sys

def is_mrjob(job):
    """
    Whether the loaded job C{job} is an mrjob file's: its map emits pairs
    encoded for its reducer, so a step of it that has a reducer cannot run
    without one.
    """
    from txmr.compat.adapter import MRJobSource

    return isinstance(getattr(job, "source", None), MRJobSource)


# The modules of the compatible surface, by the name a job imports.
SURFACE = ("mrjob", "mrjob.job", "mrjob.step", "mrjob.protocol", "mrjob.compat")


def ensure_mrjob():
    """
    Make C{import mrjob.job} work: the real package if it imports, else
    txmr's surface under its names.

    @return: whether the real package is the one in use.
    """
    module = sys.modules.get("mrjob.job")
    if module is not None:
        return not getattr(module, "TXMR_COMPAT", False)
    try:
        importlib.import_module("mrjob.job")
        importlib.import_module("mrjob.step")
        importlib.import_module("mrjob.protocol")
        return True
    except Exception:
        # Not installed, or does not import on this Python: whatever is
        # left of a partial import goes, and the surface takes its names.
        for name in list(sys.modules):
            if name == "mrjob" or name.startswith("mrjob."):
                del sys.modules[name]
    for name in SURFACE:
        sys.modules[name] = importlib.import_module("txmr.compat." + name)
    return False


def mrjob_base():
    """
    The C{MRJob} class in use (real or compatible), or L{None} when no job
    imported mrjob.
    """
    module = sys.modules.get("mrjob.job")
    return getattr(module, "MRJob", None)


def is_mrjob_class(value):
    """
    Whether C{value} is a subclass of mrjob's C{MRJob} (not C{MRJob}).
    """
    base = mrjob_base()
    return (base is not None and inspect.isclass(value) and issubclass(value, base)
            and value is not base)


def mrjob_classes(module):
    """
    The C{MRJob} subclasses a module defines (not those it imports).
    """
    return [value for value in vars(module).values()
            if is_mrjob_class(value) and value.__module__ == module.__name__]
