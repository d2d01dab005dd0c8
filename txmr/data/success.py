"""
The C{_SUCCESS} marker: written last in a finished job's output, after
every C{out-R}, by whatever wrote them (the driver, the inline runner, the
store committer, the Spark engine), listing them one per line, so that a
reader that waits for it may check it has them all, and so that both
engines' output directories are byte for byte the same.
"""

import re

SUCCESS = "_SUCCESS"
_OUT = re.compile(r"^out-(\d+)$")


def success_listing(names):
    """
    What C{_SUCCESS} holds: C{names}, one per line.
    """
    return "".join(name + "\n" for name in names)


def is_job_output(name):
    """
    Whether C{name} is a job's own in its output: an C{out-R}, or the
    marker (what a new run removes there, and nothing else).
    """
    return name == SUCCESS or _OUT.match(name) is not None


def output_names(names):
    """
    The C{out-R} files among C{names}, in their order (C{out-2} before
    C{out-10}).
    """
    found = [(int(m.group(1)), name) for name in names for m in [_OUT.match(name)] if m]
    return [name for _, name in sorted(found)]
