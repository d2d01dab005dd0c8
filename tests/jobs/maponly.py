"""
A map-only job (REDUCE = None): each line's length, keyed by the line
itself, written in input order by each map task.
"""

REDUCE = None


def map(filename, line):
    yield line, len(line)
