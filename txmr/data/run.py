"""
One attempt, map or reduce, from start to end: what a worker thread (or
the inline runner) calls.

It parses the job's options from the spec, runs the attempt with the
cyclic collector held back, and on any exception, cancellation included,
removes the attempt's files before re-raising, so a failed attempt leaves
nothing behind.
"""

import contextlib
import gc

from txmr.core.states import Kind
from txmr.data import storage, store_output
from txmr.data.attempt import check_cancelled
from txmr.data.knobs import DEFAULT_KNOBS
from txmr.data.layout import Layout
from txmr.data.mapper import run_map
from txmr.data.reducer import run_reduce
from txmr.job import JobError
from txmr.job_options import JobOptionsError, check_same


@contextlib.contextmanager
def fewer_collections(threshold):
    """
    A task allocates millions of small objects that live until it ends, so
    the cyclic collector, run every 700 allocations by default, finds
    nothing to free and costs a quarter of the time.  Collect less often
    (every C{threshold} allocations) while the task runs; cyclic garbage is
    still collected, later.
    """
    previous = gc.get_threshold()
    gc.set_threshold(threshold, *previous[1:])
    try:
        yield
    finally:
        gc.set_threshold(*previous)


def task_options(job, spec):
    """
    The job's options for this attempt: parsed from the spec's argument
    list, as the driver parsed them.

    @raise JobError: they do not parse, or not to the driver's values.
    """
    options = job.parse_args(spec.args)
    try:
        check_same(options, spec.options)
    except JobOptionsError as e:
        raise JobError(f"job {job.name!r}: {e}") from None
    return options


def run_task(job, spec, cancel=None, knobs=DEFAULT_KNOBS):
    """
    Run the attempt C{spec} (a L{txmr.core.spec.TaskSpec}) describes, map or
    reduce; return its counters.

    @param cancel: an event the driver sets to cancel the attempt, or
        L{None}.
    @param knobs: the sizes the attempt works in.
    """
    runner = run_map if spec.kind == Kind.MAP else run_reduce
    try:
        # URLs are opened with the options the driver was given.
        storage.configure(spec.storage)
        options = task_options(job, spec)
        with fewer_collections(knobs.gc_threshold):
            counters = runner(job, spec, knobs, cancel, options)
        upload_output(spec, cancel)
        return counters
    except BaseException:
        Layout.of(spec).discard(spec.kind, spec.index, spec.attempt)
        raise


def upload_output(spec, cancel=None):
    """
    An attempt's files bound for an output URL, written locally, go up
    whole to the attempt's own objects (L{txmr.data.store_output.upload}), where
    the driver promotes the winner's.
    """
    layout = Layout.of(spec)
    if layout.all_local:
        return
    for temporary, final in layout.files(spec.kind, spec.index, spec.attempt):
        if storage.is_url(final):
            check_cancelled(cancel)
            store_output.upload(temporary, final, spec.attempt)
