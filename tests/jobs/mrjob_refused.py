"""
A word count that, given --refuse FEATURE, uses one Hadoop feature that
txmr cannot run as Hadoop means it (mrjob's local runners ignore most of
them, or run them as Hadoop would not), so txmr refuses it, naming it.
"""

from mrjob.job import MRJob
from mrjob.step import MRStep

JAVA = "org.apache.hadoop.mapred.lib.KeyFieldBasedComparator"


class MRRefused(MRJob):

    def configure_args(self):
        super().configure_args()
        self.add_passthru_arg("--refuse", default=None)

    def hadoop_input_format(self):
        if self.options.refuse == "input-format":
            return "org.apache.hadoop.mapred.lib.NLineInputFormat"
        return None

    def hadoop_output_format(self):
        if self.options.refuse == "output-format":
            return "org.apache.hadoop.mapred.SequenceFileOutputFormat"
        return None

    def jobconf(self):
        conf = dict(super().jobconf())
        if self.options.refuse == "comparator":
            conf["mapreduce.job.output.key.comparator.class"] = JAVA
            conf["mapreduce.partition.keycomparator.options"] = "-k1,1nr"
        if self.options.refuse == "compress":
            conf["mapreduce.output.fileoutputformat.compress"] = True
        return conf

    def files(self):
        if self.options.refuse == "files":
            return ["stop_words.txt"]
        return super().files()

    def steps(self):
        if self.options.refuse == "combiner-only":
            return [MRStep(mapper=self.mapper, combiner=self.reducer)]
        if self.options.refuse == "key-fields":
            return [MRStep(mapper=self.mapper, reducer=self.reducer,
                           jobconf={"stream.num.map.output.key.fields": "2"})]
        return [MRStep(mapper=self.mapper, combiner=self.reducer, reducer=self.reducer)]

    def mapper(self, _, line):
        for word in line.split():
            yield word.lower(), 1

    def reducer(self, word, counts):
        yield word, sum(counts)


if __name__ == "__main__":
    MRRefused.run()
