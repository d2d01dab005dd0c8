"""
A job whose one map task takes ten minutes: it keeps a driver running with
nothing to hand out, for bench/scheduler.py's idle-worker measure.
"""

import time


def map(filename, line):
    time.sleep(600)
    return ()


def reduce(key, values):
    return ()
