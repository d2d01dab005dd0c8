"""
The Hadoop settings of an mrjob job, and what txmr does with each: what
mrjob's inline and local runners do, where that is one answer; else a
refusal that names the setting, before any task runs.

A job's settings are its C{jobconf()} (C{JOBCONF}) under the C{-D
KEY=VALUE} of its command line, under each C{MRStep(jobconf=...)}, as
mrjob's runners combine them (L{step_jobconf}); C{PARTITIONER},
C{HADOOP_INPUT_FORMAT}, C{HADOOP_OUTPUT_FORMAT}, C{LIBJARS}, C{FILES},
C{DIRS}, C{ARCHIVES} (or the methods that return them); and the runner
options C{--cmdenv}, C{--libjars}, C{--files}, C{--dirs}, C{--archives}
and C{--conf-path} (txmr reads no C{mrjob.conf}).

 - Honoured: each jobconf value is in every task's environment as mrjob's
   runners put it there (the name with C{_} for C{.}), so
   C{jobconf_from_env} reads it, with C{--cmdenv}'s variables,
   C{mapreduce.task.ismap} and, for a job whose source names it,
   C{mapreduce.map.input.file}; counts of tasks set a step's
   (L{txmr.chain}).
 - Ignored, as mrjob's local runners ignore them (they log "requires real
   Hadoop"), since they change no line: a partitioner (C{PARTITIONER}, or
   the jobconf keys that name one or give its options) only picks the
   reduce task of each key, and only the multiset of lines is promised;
   C{LIBJARS} only puts Java classes within reach.  They reach
   L{txmr.chain} as the jobconf keys Hadoop sets for them
   (L{ignored_settings}), so they are named in its one warning.
 - Refused (L{refusal}): what changes the lines a job reads or writes, or
   how its pairs are split, sorted and grouped.  mrjob's local runners
   ignore these too, and so knowingly give what Hadoop would not (their
   documentation sends such jobs to Hadoop): there is no one answer to
   match.  Likewise files shipped to each task's working directory, which
   txmr's tasks do not have.
"""

import os

# What SORT_VALUES adds to a step's jobconf (mrjob.runner._SORT_VALUES_JOBCONF,
# under every Hadoop's names as mrjob's inline runner adds it): in the
# environment as mrjob puts it there; refused as a user's key unless it says
# what SORT_VALUES says (txmr's SORT_VALUES does it).
SORT_VALUES_JOBCONF = {
    "mapred.text.key.partitioner.options": "-k1,1",
    "mapreduce.partition.keypartitioner.options": "-k1,1",
    "stream.num.map.output.key.fields": "2",
}

# Keys that change what a job computes, and what each does (Hadoop 2 names
# and Hadoop 1 names).
_REFUSED = {
    "sorts keys by a Java comparator": (
        "mapreduce.job.output.key.comparator.class", "mapred.output.key.comparator.class",
        "mapreduce.partition.keycomparator.options", "mapred.text.key.comparator.options"),
    "groups keys by a Java comparator": (
        "mapreduce.job.output.group.comparator.class", "mapred.output.value.groupfn.class"),
    "splits keys from values in other places than the first tab": (
        "mapreduce.map.output.key.field.separator", "map.output.key.field.separator",
        "mapreduce.fieldsel.data.field.separator", "mapred.data.field.separator"),
    "reads or writes the job's lines with a Java format": (
        "mapreduce.job.inputformat.class", "mapreduce.inputformat.class",
        "mapred.input.format.class", "mapreduce.job.outputformat.class",
        "mapreduce.outputformat.class", "mapred.output.format.class"),
    "runs a Java map, combine or reduce": (
        "mapreduce.job.map.class", "mapreduce.map.class", "mapred.mapper.class",
        "mapreduce.job.combine.class", "mapreduce.combine.class", "mapred.combiner.class",
        "mapreduce.job.reduce.class", "mapreduce.reduce.class", "mapred.reducer.class"),
    "compresses the output files": (
        "mapreduce.output.fileoutputformat.compress", "mapred.output.compress"),
}
REFUSED_KEYS = {key: what for what, keys in _REFUSED.items() for key in keys}
# Hadoop streaming's own settings of how a line becomes a key and a value
# between the job's script and Hadoop (separators, number of key fields,
# typed bytes): all change the pairs, so all are refused.
STREAMING_PREFIXES = ("stream.map.", "stream.reduce.", "stream.num.", "stream.io.",
                      "stream.combine.")


def java_string(value):
    """
    A jobconf value as mrjob passes it on (C{mrjob.conf._to_java_str}).
    """
    if isinstance(value, str):
        return value
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def combine_jobconfs(*confs):
    """
    Later settings win; a key set to L{None} is removed
    (C{mrjob.conf.combine_jobconfs}).
    """
    combined = {}
    for conf in confs:
        for key, value in (conf or {}).items():
            combined[str(key)] = value
    return {key: java_string(value) for key, value in combined.items() if value is not None}


def job_jobconf(job):
    """
    The job's jobconf as mrjob's job hands it to its runner: C{jobconf()}
    under the C{-D} values of its command line (C{MRJob._job_kwargs}).
    """
    merged = dict(job.jobconf() or {})
    merged.update(getattr(job.options, "jobconf", None) or {})
    return merged


def step_jobconf(job, step, sort_values):
    """
    The jobconf of one step, as mrjob's runners give it to the step's
    tasks (C{MRJobRunner._jobconf_for_step}): SORT_VALUES's settings, then
    the job's (with C{-D}), then the step's own.
    """
    return combine_jobconfs(SORT_VALUES_JOBCONF if sort_values else None, job_jobconf(job),
                            step._steps.get("jobconf"))


def user_jobconf(job, step):
    """
    The settings the job gave itself (not SORT_VALUES's), for L{refusal}
    and for txmr's counts of tasks.
    """
    return combine_jobconfs(job_jobconf(job), step._steps.get("jobconf"))


def _attribute(job, method):
    function = getattr(job, method, None)
    return function() if function is not None else None


def refusal(job, step_conf, sort_values):
    """
    Why txmr will not run the job, in a few words naming the setting, or
    L{None}.

    @param step_conf: one step's L{user_jobconf}.
    """
    for name, method in (("HADOOP_INPUT_FORMAT", "hadoop_input_format"),
                         ("HADOOP_OUTPUT_FORMAT", "hadoop_output_format")):
        value = _attribute(job, method)
        if value:
            return (f"{name} (or {method}()) {value!r} is a Java class of Hadoop's, which "
                    f"txmr cannot run (mrjob's local runners ignore it, and so read or "
                    f"write other lines than Hadoop would)")
    conf_paths = getattr(job.options, "conf_paths", None)
    if conf_paths:
        return (f"-c/--conf-path {conf_paths[0]!r}: txmr reads no mrjob.conf (its jobconf, "
                f"cmdenv...): give them as -D and --cmdenv")
    for name in ("files", "dirs", "archives"):
        given = list(_attribute(job, name) or ())
        given += list(getattr(job.options, "upload_" + name, None) or ())
        if given:
            return (f"{name.upper()} (or --{name}) {given[0]!r}: txmr does not copy files "
                    f"to a working directory of each task (give the task the path, with "
                    f"add_file_arg or a passthru option)")
    for key, value in sorted(step_conf.items()):
        if sort_values and SORT_VALUES_JOBCONF.get(key) == value:
            continue
        what = REFUSED_KEYS.get(key)
        if what is None and key.startswith(STREAMING_PREFIXES):
            what = "changes how Hadoop streaming splits lines into keys and values"
        if what is None:
            continue
        if key in _REFUSED["compresses the output files"] and value.lower() != "true":
            continue
        hint = ("; SORT_VALUES = True sorts values, as mrjob means it"
                if key in SORT_VALUES_JOBCONF or "comparator" in key else "")
        return f"jobconf {key}={value} {what}, which txmr cannot do{hint}"
    return None


def ignored_settings(job):
    """
    The settings txmr ignores as mrjob's local runners do, as the jobconf
    keys Hadoop sets for them: C{{key: value}}.
    """
    ignored = {}
    partitioner = _attribute(job, "partitioner")
    if partitioner:
        ignored["mapreduce.job.partitioner.class"] = str(partitioner)
    jars = list(_attribute(job, "libjars") or ()) + list(getattr(job.options, "libjars",
                                                                 None) or ())
    if jars:
        ignored["tmpjars"] = ",".join(map(str, jars))
    return ignored


def task_environment(job, conf):
    """
    The variables mrjob's inline and local runners give a task of a step
    whose jobconf is C{conf} (L{step_jobconf}): each key with C{_} for
    C{.}, then C{--cmdenv}'s (C{SimMRJobRunner._env_for_task}).
    """
    variables = {key.replace(".", "_"): value for key, value in conf.items()}
    variables.update(getattr(job.options, "cmdenv", None) or {})
    return variables


class TaskEnvironment:
    """
    The environment of the process as one task's, the variables of the
    task before it set back first: each task of a process sets its own
    (tasks of a process run one after the other, in a worker as inline).
    """

    def __init__(self, environ=os.environ):
        self.environ = environ
        # Each variable set, with its value before (None: it had none).
        self.saved = {}

    def enter(self, variables):
        """
        Begin a task with C{variables}.
        """
        self.restore()
        self.add(variables)

    def add(self, variables):
        """
        More variables for the task begun.  One whose name ends in C{PATH}
        goes before the value it had, as C{mrjob.conf.combine_local_envs}
        combines them.
        """
        for key, value in variables.items():
            before = self.environ.get(key)
            self.saved.setdefault(key, before)
            if key.endswith("PATH") and before:
                value = value + os.pathsep + before
            self.environ[key] = value

    def restore(self):
        """
        The variables as they were before the task.
        """
        for key, value in self.saved.items():
            if value is None:
                self.environ.pop(key, None)
            else:
                self.environ[key] = value
        self.saved = {}


TASK_ENVIRONMENT = TaskEnvironment()


def task_kind(is_map):
    """
    What mrjob's runners say of a task's kind, under both of Hadoop's names
    (C{SimMRJobRunner._simulate_jobconf_for_step}).
    """
    value = "true" if is_map else "false"
    return {"mapreduce_task_ismap": value, "mapred_task_is_map": value}


def input_file(path):
    """
    What mrjob's runners say of the file a map task reads, under both of
    Hadoop's names: its URI (C{file://} and its absolute path, for a local
    file).
    """
    uri = path if "://" in path else "file://" + os.path.abspath(path)
    return {"mapreduce_map_input_file": uri, "map_input_file": uri}


# How a job's source names the jobconf value of the file a map task reads
# (jobconf_from_env takes either Hadoop's name; os.environ the variable).
INPUT_FILE_NAMES = ("map.input.file", "map_input_file")


def reads_input_file(source):
    """
    The name of the setting of the map task's input file that the job's
    source text C{source} mentions, or L{None}.
    """
    return next((name for name in INPUT_FILE_NAMES if name in source), None)
