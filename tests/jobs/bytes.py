"""
INPUT = "bytes": one map call per file, with its exact bytes.
"""

import hashlib

INPUT = "bytes"


def map(filename, data):
    yield filename, {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def reduce(filename, stats):
    (only,) = stats
    yield filename, only
