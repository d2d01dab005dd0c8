"""
txmr: MapReduce on Twisted.

A driver (C{twistd txmr-driver}) hands map tasks, then reduce tasks, to
workers (C{twistd txmr-worker}) over AMP, and survives workers that crash,
hang or come back late.  A job is a module or class with C{map} and
C{reduce}; see L{txmr.job}.
"""

from txmr.job import counter

__version__ = "0.1.0"
__all__ = ["counter", "__version__"]
