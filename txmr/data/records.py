"""
A map task's input records, by the job's C{INPUT} mode: the lines of a
split (C{lines}; C{jsonl}, each line's JSON value), or whole files (C{file},
C{bytes}; C{csv}, each row; C{path}, the file's path alone).  Each record
goes through the job's map, its pairs into the task's output; the map's error on a record is a
L{RecordError} naming it, which C{--skip-bad-records} can skip.
"""

import csv
import io
import json
import os

from txmr.data.attempt import RecordError, check_cancelled
from txmr.data.inputs import decode, input_size, open_input, read_blocks


class Tally:
    """
    What a map attempt read: records, bytes, records skipped.
    """

    def __init__(self):
        self.records = self.size = self.skipped = 0


def json_lines(function):
    """
    C{map(filename, line)} for C{INPUT = "jsonl"}: each line's JSON value;
    blank lines are skipped, and a line that is not JSON fails its record.
    """
    loads = json.loads

    def map_json(name, line):
        if not line or line.isspace():
            return None
        return function(name, loads(line))
    return map_json


def read_file(job, function, name, path, out, skip, tally, cancel):
    """
    One whole file: one map call (file, bytes), or one per CSV row.
    """
    check_cancelled(cancel)
    if job.input_mode != "csv" and (name,) in skip:
        tally.skipped += 1
        return
    if job.input_mode == "path":
        # The file's path, unread: the job reads it (mrjob's mapper_raw).
        tally.records += 1
        tally.size += input_size(path)
        try:
            # A URL is given as it is.
            out.extend(function(name, path if "://" in path else os.path.abspath(path)))
        except Exception as e:
            raise RecordError([name], e) from e
        return
    with open_input(path) as f:
        data = f.read()
    tally.size += len(data)
    if job.input_mode == "csv":
        read_csv(job, function, name, data, out, skip, tally)
        return
    tally.records += 1
    try:
        out.extend(function(name, data if job.input_mode == "bytes" else decode(data)))
    except Exception as e:
        raise RecordError([name], e) from e


def read_csv(job, function, name, data, out, skip, tally):
    """
    A CSV file's rows, row C{i} (counted after the header) being the
    record C{[name, 0, i]}.  Line ends inside quoted fields are kept as
    they are.
    """
    # strict: an unterminated quote is an error, not the rest of the file
    # swallowed into one field.
    rows = csv.reader(io.StringIO(data.decode("utf-8", "surrogateescape"), newline=""),
                      strict=True)
    header = None
    i = -1
    try:
        if job.csv_header:
            header = next(rows, None)
        for i, row in enumerate(rows):
            if (name, 0, i) in skip:
                tally.skipped += 1
                continue
            tally.records += 1
            if header is not None:
                if len(row) != len(header):
                    raise ValueError(f"row of {len(row)} fields under a header of "
                                     f"{len(header)}")
                row = dict(zip(header, row))
            out.extend(function(name, row))
    except Exception as e:
        raise RecordError([name, 0, i + 1 if isinstance(e, csv.Error) else i], e) from e


def read_lines(function, name, path, start, end, out, skip, tally, knobs, cancel):
    """
    The lines of a split, each a map call.
    """
    for offset, data in read_blocks(path, start, end, knobs.block_bytes):
        check_cancelled(cancel)
        tally.size += len(data)
        lines = decode(data).split("\n")
        if lines[-1] == "":
            lines.pop()
        tally.records += len(lines)
        if skip:
            keep = [(i, line) for i, line in enumerate(lines)
                    if (name, offset, i) not in skip]
            tally.skipped += len(lines) - len(keep)
        else:
            keep = enumerate(lines)
        i = -1
        try:
            for i, line in keep:
                pairs = function(name, line)
                if pairs is not None:
                    out.extend(pairs)
        except Exception as e:
            raise RecordError([name, offset, i], e) from e
