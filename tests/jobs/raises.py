"""
A job whose map raises on every record.
"""


def map(filename, line):
    raise ValueError(f"cannot map {filename}")


def reduce(key, values):
    yield key, len(values)
