"""
C{mrjob.compat.jobconf_from_env}, as a job's task calls it: a jobconf
value from the environment the runner gave the task (L{txmr.compat.hadoop}
puts there each jobconf value, as mrjob's runners do), under its own name
or the name another version of Hadoop gives it.
"""

import os

TXMR_COMPAT = True

# Names of the same setting in Hadoop 1 and Hadoop 2 (a few of
# mrjob.compat._JOBCONF_MAP's, those a job is likely to read).
_SAME = (
    ("mapred.reduce.tasks", "mapreduce.job.reduces"),
    ("mapred.map.tasks", "mapreduce.job.maps"),
    ("map.input.file", "mapreduce.map.input.file"),
    ("map.input.start", "mapreduce.map.input.start"),
    ("map.input.length", "mapreduce.map.input.length"),
    ("mapred.task.is.map", "mapreduce.task.ismap"),
    ("mapred.task.partition", "mapreduce.task.partition"),
    ("mapred.task.id", "mapreduce.task.attempt.id"),
    ("mapred.tip.id", "mapreduce.task.id"),
    ("mapred.job.id", "mapreduce.job.id"),
    ("mapred.output.dir", "mapreduce.output.fileoutputformat.outputdir"),
    ("mapred.work.output.dir", "mapreduce.task.output.dir"),
    ("mapred.text.key.partitioner.options", "mapreduce.partition.keypartitioner.options"),
    ("mapred.text.key.comparator.options", "mapreduce.partition.keycomparator.options"),
    ("user.name", "mapreduce.job.user.name"),
)
_OTHER = {**{a: b for a, b in _SAME}, **{b: a for a, b in _SAME}}


def jobconf_from_env(variable, default=None):
    """
    The value of the jobconf setting C{variable} in this task, or
    C{default}.
    """
    for name in (variable, _OTHER.get(variable)):
        if name is not None and name.replace(".", "_") in os.environ:
            return os.environ[name.replace(".", "_")]
    return default


def jobconf_from_dict(jobconf, name, default=None):
    """
    The value of C{name} in the dict C{jobconf}, under either of its names.
    """
    for key in (name, _OTHER.get(name)):
        if key is not None and key in jobconf:
            return jobconf[key]
    return default
