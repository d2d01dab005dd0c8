"""
One step of an mrjob job as txmr's data path calls it (L{StepFunctions}):
its mapper, combiner and reducer and their hooks, reading and writing the
protocols that L{txmr.compat.adapter.MRJobSource.plans} chose.
"""

from txmr.compat.hadoop import TASK_ENVIRONMENT, input_file, task_kind
from txmr.compat.protocols import Decoder, Encoder, as_data, class_named, protocol_of
from txmr.data.inputs import decode, read_blocks


class StepFunctions:
    """
    One step of an mrjob job as txmr's data path calls it: C{map},
    C{combine}, C{reduce} and their hooks, reading and writing the
    protocols of L{MRJobSource.plans}.
    """

    def __init__(self, job, plan):
        self.job = job
        step = plan.step
        self.options = job.options
        out = (Encoder(job.internal_protocol()) if plan.map_writes == "shuffle"
               else _as_list)
        if plan.raw:
            raw = step["mapper_raw"]
            self.map = lambda name, path: out(raw(path, path))
        elif plan.has_mapper:
            self.map = _mapper(step["mapper"], protocol_of(job, plan.map_reads), out)
            if plan.by_file:
                self.map = _by_file(self.map)
        else:
            # No mapper substep (a reducer-only step after the first): the
            # lines go to the shuffle as they are, as Hadoop's identity map.
            self.map = _passthrough
        self.map_init = _kind_of_task(True, _hook(step["mapper_init"], out))
        self.map_final = _hook(step["mapper_final"], out)
        if plan.has_reducer:
            decode = Decoder(job.internal_protocol())
            reducer = step["reducer"]
            self.reduce = lambda key, rests: _as_list(reducer(*decode(key, rests)))
            self.reduce_init = _kind_of_task(False, _hook(step["reducer_init"], _as_list))
            self.reduce_final = _hook(step["reducer_final"], _as_list)
        if plan.has_combiner:
            encode = Encoder(job.internal_protocol())
            decode = Decoder(job.internal_protocol())
            combiner = step["combiner"]
            self.combine = lambda key, rests: encode(combiner(*decode(key, rests)))
            self.combine_init = _hook(step["combiner_init"], encode)
            self.combine_final = _hook(step["combiner_final"], encode)


def _as_list(pairs):
    return () if pairs is None else pairs


def _kind_of_task(is_map, hook):
    """
    The first hook of a map or reduce task, which also says in the
    environment which kind of task it is, as mrjob's runners do
    (C{mapreduce.task.ismap}).
    """
    variables = task_kind(is_map)

    def init():
        TASK_ENVIRONMENT.add(variables)
        return hook() if hook is not None else ()
    return init


def _hook(function, out):
    if function is None:
        return None
    return lambda: out(function())


def _by_file(map_line):
    """
    C{map(name, path)} of a whole file, each of its lines through
    C{map_line} as txmr's map tasks read lines, with the file in the
    environment (C{mapreduce.map.input.file}).
    """
    def map_file(name, path):
        TASK_ENVIRONMENT.add(input_file(path))
        for _, data in read_blocks(path, 0, float("inf"), FILE_BLOCK):
            lines = decode(data).split("\n")
            if lines[-1] == "":
                lines.pop()
            for line in lines:
                pairs = map_line(name, line)
                if pairs:
                    yield from pairs
    return map_file


# How much of a file L{_by_file} reads at once.
FILE_BLOCK = 1 << 20


def _passthrough(name, line):
    key, tab, rest = line.partition("\t")
    return ((key, tab + rest),)


def _mapper(mapper, protocol, out):
    """
    C{map(name, line)}: the line (its bytes, without the line end, which
    mrjob takes to be any run of CR and LF) through the read protocol, then
    the job's mapper.  The default input protocol
    (text values) takes txmr's decoded line as it is when it was UTF-8.
    """
    if class_named(protocol, "TextValueProtocol"):
        read = protocol.read

        def map_text(name, line):
            if line.endswith("\r"):
                line = line.rstrip("\r")
            try:
                line.encode("utf-8")
            except UnicodeEncodeError:
                return out(mapper(*read(as_data(line))))
            return out(mapper(None, line))
        return map_text
    read = protocol.read

    def map_line(name, line):
        return out(mapper(*read(as_data(line.rstrip("\r")))))
    return map_line
