"""
A job's plan: its configuration checked, its code loaded, its directories
made and cleared, and its input dealt to map tasks.

Both runners start here: the driver daemon (L{txmr.driver}) and the inline
runner (L{txmr.inline}).  What a plan holds is all that the core and the
data path need; nothing here knows of the network.
"""

import os
import socket
import sys
import time
from dataclasses import dataclass, field
from functools import cached_property

from txmr.compat import is_mrjob
from txmr.core.scheduler import Scheduler
from txmr.core.spec import DEFAULT_MEMORY, TaskSpec
from txmr.core.states import Kind
from txmr.data import storage, store_output
from txmr.data.inputs import list_inputs, plan_splits, stamp, whole
from txmr.data.knobs import DEFAULT_KNOBS
from txmr.data.layout import DirectoryInUse, Layout, lock_directory, remove_job_files
from txmr.data.store_lock import StoreInUse, StoreLock
from txmr.data.sampling import sample_bounds
from txmr.job import DEFAULT_JOB, JobError, load_job
from txmr.job_options import plain_values


class ConfigError(Exception):
    """
    The job cannot start: the message is the one line the user sees.
    """


@dataclass
class JobConfig:
    """
    What a job is, whichever runner runs it.
    """

    input: str
    intermediate: str
    output: str
    mappers: int = 1
    reducers: int = 1
    job: str = DEFAULT_JOB
    max_attempts: int = 4
    task_timeout: float | None = None
    speculation: bool = True
    speculate_after: float = 10.0
    skip_bad_records: bool = False
    memory: int = DEFAULT_MEMORY
    job_args: list = field(default_factory=list)
    # fsspec options for an input or output URL (--storage-options).
    storage_options: dict = field(default_factory=dict)


@dataclass
class Plan:
    """
    A job ready to run: its code, its scheduler, where its files go.
    """

    config: JobConfig
    job: object
    scheduler: Scheduler
    layout: Layout
    stamps: dict
    locks: list
    options: dict = field(default_factory=dict)
    bounds: list = field(default_factory=list)

    def release(self):
        """
        Let another run use the directories, and leave no lock file behind
        (a process that dies releases its locks too, but leaves the file).
        """
        release_locks(self.locks)
        self.locks = []

    def spec(self, attempt):
        """
        What a worker needs to run an attempt.
        """
        task, config = attempt.task, self.config
        if task.kind is Kind.MAP:
            stamps = {name: self.stamps[name] for name, _, _ in task.inputs}
            return TaskSpec(kind=task.kind, index=task.index, attempt=attempt.id,
                            input=config.input, splits=task.inputs, skip=list(task.skip),
                            stamps=stamps, bounds=self.bounds, **self._map_fields)
        return TaskSpec(kind=task.kind, index=task.index, attempt=attempt.id,
                        output=config.output, memory=config.memory,
                        seed_buckets=self.scheduler.maps_in_seed_format(), **self._job_fields)

    @cached_property
    def _job_fields(self):
        """
        What every task's spec says of the job: the same for all of them,
        and a spec is built at every hand-out.
        """
        config = self.config
        return dict(job=self.job.name, intermediate=config.intermediate,
                    n_map=len(self.scheduler.maps), n_reduce=len(self.scheduler.reduces),
                    args=list(config.job_args), options=self.options,
                    storage=dict(config.storage_options) or None)

    @cached_property
    def _map_fields(self):
        # A map task writes the job's output only in a map-only job.
        return dict(self._job_fields,
                    output=None if self.scheduler.reduces else self.config.output)


def release_locks(locks):
    """
    Close the locks of a run's directories, and remove their files.
    """
    for lock in locks:
        if isinstance(lock, StoreLock):
            lock.release()
            continue
        try:
            os.unlink(lock.name)
        except OSError:
            pass
        lock.close()


def input_error(path):
    """
    Why C{path} cannot be a job's input directory, in one line.
    """
    if os.path.exists(path):
        return f"input {path!r} is a file, not a directory: give the directory that holds it"
    return f"input directory {path!r} does not exist"


def plan_job(config, clear=True, job=None):
    """
    Check the configuration, load the job (unless given: a L{txmr.job.Job}
    already loaded), parse its options, create and lock the directories,
    clear files of an earlier run (unless not C{clear}: the driver decides
    from its journal), and deal the input to the map tasks.

    @raise ConfigError: with the one line to show the user.
    """
    if config.mappers < 1 or config.reducers < 0:
        raise ConfigError("--mappers must be at least 1, and --reducers at least 0 "
                          "(0: a map-only job)")
    if config.max_attempts < 1:
        raise ConfigError("--max-attempts must be at least 1")
    if config.task_timeout is not None and not config.task_timeout > 0:
        raise ConfigError("--task-timeout must be more than 0 seconds")
    if config.memory < 1:
        raise ConfigError("--memory must be at least 1 (MB)")
    if not config.input:
        raise ConfigError("--input DIR is required")
    storage.configure(config.storage_options)
    if storage.is_url(config.input):
        if storage.input_error(config.input):
            raise ConfigError(storage.input_error(config.input))
    elif not os.path.isdir(config.input):
        raise ConfigError(input_error(config.input))
    if storage.is_url(config.intermediate):
        raise ConfigError("--intermediate must be a local directory: only --input and "
                          "--output may be URLs")
    try:
        job = job or load_job(config.job)
        # Parsed once here, before any task runs: a wrong option fails the
        # job now, named; every task parses the same list to these values.
        parsed = job.parse_args(config.job_args)
    except JobError as e:
        raise ConfigError(str(e)) from e
    if job.planning_error():
        raise ConfigError(job.planning_error())
    if config.reducers == 0 and not job.map_only and is_mrjob(job):
        # Its map emits pairs encoded for its reducer: as output, they would
        # be encoded twice.
        raise ConfigError(f"{job.name} has a reducer: it cannot run with no reduce task "
                          f"(-r 0) under txmr")
    config.job_args = list(config.job_args)
    if job.map_only:
        config.reducers = 0
    for name in ("intermediate", "output"):
        path = getattr(config, name)
        if not path:
            raise ConfigError(f"--{name} is required")
        if storage.is_url(path):
            try:
                store_output.make_output(path)
            except storage.StorageError as e:
                raise ConfigError(str(e)) from e
            continue
        try:
            os.makedirs(path, exist_ok=True)
        except OSError as e:
            raise ConfigError(f"cannot create {name} directory {path!r}: {e.strerror}") from e
    config.input, config.intermediate, config.output = (
        p if storage.is_url(p) else os.path.abspath(p)
        for p in (config.input, config.intermediate, config.output))
    locks = lock_directories(config)
    try:
        return _plan_locked(config, job, parsed, locks, clear)
    except BaseException as e:
        # A run that cannot start lets go of what it took, and says why in
        # one line.
        release_locks(locks)
        if isinstance(e, (OSError, storage.StorageError)):
            raise ConfigError(f"cannot plan the job: {type(e).__name__}: {e}") from e
        raise


def _plan_locked(config, job, parsed, locks, clear):
    """
    The rest of L{plan_job}, once the run holds its directories.
    """
    if clear:
        for directory in sorted({config.intermediate, config.output}):
            removed = remove_job_files(directory)
            if removed:
                # On standard error: the inline runner shows no log.
                print(f"txmr: {removed_line(removed, directory)}", file=sys.stderr, flush=True)
    # Each input's size and modification time now: a map that finds its
    # file changed fails the job, naming it.
    stamps = {name: stamp(os.path.join(config.input, name))
              for name, _ in list_inputs(config.input)}
    files = [(name, st[0]) for name, st in stamps.items()]
    splits = plan_splits(files, config.mappers, job.input_mode)
    bounds = []
    if job.total_order and config.reducers > 1:
        try:
            bounds = sample_bounds(job, parsed, config.input, splits, config.reducers,
                                   DEFAULT_KNOBS)
        except Exception as e:
            raise ConfigError(f"cannot sample the keys for TOTAL_ORDER: "
                              f"{type(e).__name__}: {e}") from e
    scheduler = Scheduler(
        splits, config.reducers, max_attempts=config.max_attempts,
        task_timeout=config.task_timeout, speculation=config.speculation,
        speculate_after=config.speculate_after, skip_bad_records=config.skip_bad_records,
        seed_workers=job.name == DEFAULT_JOB and config.reducers > 0 and not (
            # The seed's workers read and write local files, as they are.
            storage.is_url(config.input) or storage.is_url(config.output)
            or any(whole(name) for name in stamps)))
    layout = Layout(config.intermediate, config.output, len(splits), config.reducers)
    return Plan(config, job, scheduler, layout, stamps, locks, plain_values(parsed), bounds)


def removed_line(removed, directory):
    """
    What a run says of the files of an earlier run it removed: never
    silently.
    """
    names = ", ".join(removed[:10]) + (" ..." if len(removed) > 10 else "")
    files = "file" if len(removed) == 1 else "files"
    return f"removed {len(removed)} {files} of an earlier run from {directory}: {names}"


def lock_directories(config):
    """
    Take the output and intermediate directories for this run, before
    anything in them is removed.

    @raise ConfigError: another run holds one of them, or it is not writable.
    """
    intermediate = None if storage.is_url(config.intermediate) else config.intermediate
    return lock_paths({config.intermediate, config.output}, f"a txmr run of {config.job}",
                      intermediate)


def lock_paths(paths, what, intermediate=None):
    """
    Take directories (local, by C{flock}) and URLs (by a lock object) for
    this process; the locks say C{what} holds them.

    @param intermediate: the run's local intermediate directory, once held:
        a run that resumes from it may take over a store lock its dead
        predecessor left.
    @raise ConfigError: another run holds one of them, or it is not writable.
    """
    who = f"{what} (pid {os.getpid()} on {socket.gethostname()}, " \
          f"since {time.strftime('%Y-%m-%d %H:%M:%S')})"
    locks = []
    directories = sorted(paths)
    local = [d for d in directories if not storage.is_url(d)]
    try:
        for directory in local:
            locks.append(lock_directory(directory, who))
        # A store has no flock: a lock object, taken once the local
        # directories are.
        for url in directories:
            if url not in local:
                locks.append(StoreLock(url, who, intermediate))
    except (DirectoryInUse, StoreInUse, OSError, storage.StorageError) as e:
        release_locks(locks)
        if isinstance(e, (DirectoryInUse, StoreInUse, storage.StorageError)):
            raise ConfigError(str(e)) from e
        raise ConfigError(f"cannot write in {e.filename and os.path.dirname(e.filename)!r}: "
                          f"{e.strerror}") from e
    return locks
