"""
txmr: MapReduce on Twisted.

A driver (C{twistd txmr-driver}) hands map tasks, then reduce tasks, to
workers (C{twistd txmr-worker}) over AMP, and survives workers that crash,
hang or come back late.  A job is a module or class with C{map} and
C{reduce}, or a list of L{Step}s; see L{txmr.job}.  L{run} runs one from
Python.
"""

from txmr.job import counter, options
from txmr.steps import Step

__version__ = "0.1.0"
__all__ = ["Step", "counter", "options", "run", "__version__"]


def run(job, input, output, **kwargs):
    """
    Run a job from a script or a notebook; see L{txmr.api.run}.  (Imported
    when called: a worker that imports C{txmr} for its counters needs none
    of it.)
    """
    from txmr.api import run as run_job

    return run_job(job, input, output, **kwargs)
