"""
INPUT = "jsonl" and OUTPUT = "jsonl": each line's JSON object has a "key"
and a "value"; values are gathered per key, any JSON key kept exactly.
"""

INPUT = "jsonl"
OUTPUT = "jsonl"


def map(filename, record):
    yield record["key"], record["value"]


def reduce(key, values):
    yield key, sorted(values, key=repr)
