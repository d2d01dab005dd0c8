"""
C{MRJob}, as mrjob's base class looks to a job file: its functions and
hooks, its steps, its options (C{configure_args}, C{add_passthru_arg}),
its protocols, counters and status.  Running it is txmr's part
(L{txmr.compat.adapter}): C{txmr run FILE -i IN -o OUT}.
"""

import argparse
import sys

from txmr.compat.mrjob.protocol import JSONProtocol, RawValueProtocol
from txmr.compat.mrjob.step import _JOB_STEP_FUNC_PARAMS, MRStep

TXMR_COMPAT = True


class UsageError(Exception):
    pass


class _KeyValue(argparse.Action):
    """
    C{KEY=VALUE} into a dict, as mrjob parses C{-D} and C{--cmdenv}.
    """

    def __call__(self, parser, namespace, value, option_string=None):
        key, equals, rest = value.partition("=")
        if not equals:
            parser.error(f"{option_string} argument {value!r} is not of the form KEY=VALUE")
        if getattr(namespace, self.dest, None) is None:
            setattr(namespace, self.dest, {})
        getattr(namespace, self.dest)[key] = rest


def _im_func(f):
    return getattr(f, "__func__", f)


class MRJob:
    """
    The base class of a job; see mrjob's documentation.
    """

    INPUT_PROTOCOL = RawValueProtocol
    INTERNAL_PROTOCOL = JSONProtocol
    OUTPUT_PROTOCOL = JSONProtocol
    SORT_VALUES = None
    JOBCONF = {}
    PARTITIONER = None
    HADOOP_INPUT_FORMAT = None
    HADOOP_OUTPUT_FORMAT = None
    FILES = ()
    DIRS = ()
    ARCHIVES = ()
    LIBJARS = ()

    def __init__(self, args=None):
        self._passthru_arg_dests = set()
        self._file_arg_dests = set()
        self.arg_parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
        self.configure_args()
        if args is None:
            self._cl_args = sys.argv[1:]
        else:
            self._cl_args = args

            def error(message):
                raise ValueError(message)
            self.arg_parser.error = error
        self.load_args(self._cl_args)

    # -- options --------------------------------------------------------

    def configure_args(self):
        p = self.arg_parser
        p.add_argument(dest="args", nargs="*", help="input paths (txmr takes them as -i)")
        p.add_argument("-h", "--help", action="store_true", help="show this message")
        p.add_argument("-r", "--runner", help="ignored: txmr runs the job")
        p.add_argument("-c", "--conf-path", dest="conf_paths", action="append")
        p.add_argument("--no-conf", dest="conf_paths", action="store_const", const=[])
        p.add_argument("-v", "--verbose", action="store_true")
        p.add_argument("-q", "--quiet", action="store_true")
        p.add_argument("-D", "--jobconf", dest="jobconf", action=_KeyValue,
                       help="KEY=VALUE: a jobconf value, in the environment of each task")
        p.add_argument("--cmdenv", dest="cmdenv", action=_KeyValue,
                       help="KEY=VALUE: a variable of the environment of each task")
        p.add_argument("--step-num", dest="step_num", type=int, default=0)
        for name in ("mapper", "combiner", "reducer", "spark"):
            p.add_argument(f"--{name}", dest=f"run_{name}", action="store_true")

    def load_args(self, args):
        parse = getattr(self.arg_parser, "parse_intermixed_args", self.arg_parser.parse_args)
        self.options = parse(args)

    def add_passthru_arg(self, *args, **kwargs):
        action = self.arg_parser.add_argument(*args, **kwargs)
        self._passthru_arg_dests.add(action.dest)

    def add_file_arg(self, *args, **kwargs):
        if kwargs.get("type") not in (None, str):
            raise argparse.ArgumentTypeError("file options must take strings")
        action = self.arg_parser.add_argument(*args, **kwargs)
        self._file_arg_dests.add(action.dest)

    def pass_arg_through(self, opt_str):
        for action in self.arg_parser._actions:
            if opt_str in action.option_strings or opt_str == action.dest:
                self._passthru_arg_dests.add(action.dest)
                return
        raise ValueError(f"unknown arg: {opt_str}")

    def is_task(self):
        return False

    # -- the job's functions ----------------------------------------------

    def mapper(self, key, value):
        raise NotImplementedError

    def reducer(self, key, values):
        raise NotImplementedError

    def combiner(self, key, values):
        raise NotImplementedError

    def mapper_init(self):
        pass

    def mapper_final(self):
        pass

    def mapper_cmd(self):
        raise NotImplementedError

    def mapper_pre_filter(self):
        raise NotImplementedError

    def mapper_raw(self, input_path, input_uri):
        raise NotImplementedError

    def reducer_init(self):
        pass

    def reducer_final(self):
        pass

    def reducer_cmd(self):
        raise NotImplementedError

    def reducer_pre_filter(self):
        raise NotImplementedError

    def combiner_init(self):
        pass

    def combiner_final(self):
        pass

    def combiner_cmd(self):
        raise NotImplementedError

    def combiner_pre_filter(self):
        raise NotImplementedError

    def spark(self, input_path, output_path):
        raise NotImplementedError

    def steps(self):
        """
        One step of the functions the job redefined, unless it redefines
        this.
        """
        kwargs = {name: getattr(self, name) for name in _JOB_STEP_FUNC_PARAMS + ("spark",)
                  if _im_func(getattr(self, name)) is not _im_func(getattr(MRJob, name))}
        if "spark" in kwargs:
            raise ValueError("spark() steps are not supported by txmr")
        for name, value in list(kwargs.items()):
            if name.endswith(("_cmd", "_pre_filter")):
                kwargs[name] = value()
        return [MRStep(**kwargs)] if kwargs else []

    # -- what a task reports ----------------------------------------------

    def increment_counter(self, group, counter, amount=1):
        if not isinstance(amount, int):
            raise TypeError(f"amount must be an integer, not {amount!r}")
        import txmr

        txmr.counter(str(group).replace(",", ";"), str(counter).replace(",", ";"), amount)

    def set_status(self, msg):
        sys.stderr.write(f"reporter:status:{msg}\n")

    # -- protocols, sorting, Hadoop settings ---------------------------------

    def input_protocol(self):
        return self.INPUT_PROTOCOL()

    def internal_protocol(self):
        return self.INTERNAL_PROTOCOL()

    def output_protocol(self):
        return self.OUTPUT_PROTOCOL()

    def pick_protocols(self, step_num, step_type):
        raise NotImplementedError("txmr picks the protocols of each step itself")

    def sort_values(self):
        return self.SORT_VALUES

    def jobconf(self):
        return dict(self.JOBCONF)

    def partitioner(self):
        return self.PARTITIONER

    def hadoop_input_format(self):
        return self.HADOOP_INPUT_FORMAT

    def hadoop_output_format(self):
        return self.HADOOP_OUTPUT_FORMAT

    def libjars(self):
        return list(self.LIBJARS or ())

    def files(self):
        return self._upload_attr("FILES")

    def dirs(self):
        return self._upload_attr("DIRS")

    def archives(self):
        return self._upload_attr("ARCHIVES")

    def _upload_attr(self, name):
        value = getattr(self, name)
        if isinstance(value, str):
            raise TypeError(f"{name} must be a list or other sequence.")
        return list(value)

    def parse_output(self, chunks):
        read = self.output_protocol().read
        for line in b"".join(chunks).splitlines():
            yield read(line)

    @classmethod
    def mr_job_script(cls):
        import inspect

        try:
            return inspect.getsourcefile(cls)
        except TypeError:
            return None

    @classmethod
    def run(cls):
        """
        C{python job.py}: this surface has no runner of its own.
        """
        script = cls.mr_job_script() or "JOB.py"
        sys.exit(f"mrjob is not importable here: run this job with txmr: "
                 f"txmr run {script} -i INPUT_DIR -o OUTPUT_DIR [-- job options]")
