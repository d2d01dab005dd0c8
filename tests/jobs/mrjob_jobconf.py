"""
Hadoop settings as a task sees them through mrjob.compat.jobconf_from_env:
JOBCONF, -D on the command line (over JOBCONF), MRStep(jobconf=) (over
both), --cmdenv, SORT_VALUES's own settings, whether the task is a map,
and the file a map task reads.  PARTITIONER and LIBJARS, which mrjob's
local runners ignore, are here to be ignored too.
"""

import os

from mrjob.compat import jobconf_from_env
from mrjob.job import MRJob
from mrjob.step import MRStep

NAMES = ("my.class.setting", "my.overridden", "my.command.line", "my.step.setting",
         "my.flag", "mapreduce.task.ismap", "mapreduce.partition.keypartitioner.options",
         "mapred.text.key.partitioner.options")


class MRJobconf(MRJob):

    JOBCONF = {"my.class.setting": "from JOBCONF", "my.overridden": "from JOBCONF",
               "my.flag": True, "my.removed": "set", "mapreduce.task.timeout": 60000}
    PARTITIONER = "org.apache.hadoop.mapred.lib.HashPartitioner"
    LIBJARS = ["no-such.jar"]
    SORT_VALUES = True

    def steps(self):
        return [MRStep(mapper=self.mapper, reducer=self.reducer,
                       jobconf={"my.step.setting": "step 1", "my.removed": None}),
                MRStep(reducer=self.last,
                       jobconf={"my.step.setting": "step 2",
                                # What SORT_VALUES sets: accepted with it.
                                "stream.num.map.output.key.fields": 2})]

    def seen(self, where):
        for name in NAMES + ("my.removed",):
            yield [where, name], jobconf_from_env(name, "unset")
        yield [where, "cmdenv"], os.environ.get("MY_CMDENV", "unset")

    def mapper(self, _, line):
        yield from self.seen("map")
        path = jobconf_from_env("mapreduce.map.input.file")
        yield ["file", path], line

    def reducer(self, key, values):
        yield from self.seen("reduce 1")
        yield key, sorted(set(values))

    def last(self, key, values):
        yield from self.seen("reduce 2")
        yield key, sorted(set(map(str, values)))


if __name__ == "__main__":
    MRJobconf.run()
