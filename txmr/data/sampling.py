"""
Total order (C{TOTAL_ORDER = True}): range partitioning from a sample of
the map output's keys, so that C{out-0}, C{out-1}... concatenated are
sorted by key.

Before any task runs, the driver runs the job's map over the first records
of every map task's input (as Hadoop's C{SplitSampler} takes the first
records of each split), sorts the keys the map produced, and cuts them
into C{R} ranges of about equal counts (L{sample_bounds}).  The bounds
travel in every map task's spec; a key goes to the range it falls in
(L{RangePartition}).  The sample is read in the same order every time, so
the same job on the same input cuts the same ranges (what a resumed run
needs).  A skewed key (one key holding most pairs) still makes one large
range: sampling balances key counts, not bytes.
"""

import bisect
import os

from txmr.data.keys import sort_key
from txmr.data.records import Tally, json_lines, read_file, read_lines
from txmr.job import WHOLE_FILE_MODES, Job, counting

# Records read in all, spread over the map tasks.
SAMPLE_RECORDS = 10_000


class _Enough(BaseException):
    """
    The sample of one map task is complete.  (A BaseException: the record
    readers wrap the job's errors, not this.)
    """


class _Keys:
    """
    Where a sampled map's pairs go: their keys are kept.
    """

    def __init__(self):
        self.keys = []

    def extend(self, pairs):
        for key, _ in pairs or ():
            self.keys.append(key)


class RangePartition:
    """
    C{partition(key, n)} by the sampled bounds: range i holds the keys
    from C{bounds[i - 1]} (excluded) to C{bounds[i]} (included).
    """

    def __init__(self, bounds):
        self.cuts = [sort_key(bound) for bound in bounds]

    def __call__(self, key, n):
        return bisect.bisect_left(self.cuts, sort_key(key))


def sample_bounds(job, options, input_dir, tasks, n_reduce, knobs):
    """
    The C{n_reduce - 1} bounds of the key ranges of a total-order job.

    @param tasks: each map task's splits C{[name, start, end]}.
    @raise Exception: whatever the job's map raised on a sampled record.
    """
    if n_reduce < 2:
        return []
    keys = _Keys()
    per_task = max(1, SAMPLE_RECORDS // max(1, len(tasks)))
    instance = job.instance(options)
    init, function, final = Job.hooks(instance, "map")
    with counting({}, options):
        keys.extend(init())
        for splits in tasks:
            _sample_task(job, function, input_dir, splits, per_task, keys, knobs)
        keys.extend(final())
    ordered = sorted(keys.keys, key=sort_key)
    if not ordered:
        return []
    return [ordered[len(ordered) * i // n_reduce] for i in range(1, n_reduce)]


def _sample_task(job, function, input_dir, splits, quota, keys, knobs):
    """
    The keys of one map task's first C{quota} records.
    """
    seen = 0
    function = json_lines(function) if job.input_mode == "jsonl" else function

    def mapped(name, record):
        nonlocal seen
        if seen >= quota:
            raise _Enough()
        seen += 1
        try:
            return list(function(name, record) or ())
        except Exception:
            # A bad record is the map task's to report (or to skip), not
            # the sample's.
            return None
    tally = Tally()
    try:
        for name, start, end in splits:
            path = os.path.join(input_dir, name)
            if job.input_mode in WHOLE_FILE_MODES:
                read_file(job, mapped, name, path, keys, set(), tally, None)
            else:
                read_lines(mapped, name, path, start, end, keys, set(), tally, knobs, None)
    except _Enough:
        pass
