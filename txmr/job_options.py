"""
A job's own options: declared by the job with argparse, given on the
command line after C{--} (C{txmr run JOB ... -- --min-count 3}) or as
C{--job-args}, parsed once by the driver and again, identically, by every
task.

What travels to the workers is the raw argument list (so any C{type=}
works, as mrjob passes its passthrough options to each task), with the
driver's parsed values of the plain ones (numbers, strings, booleans,
null, lists of these): a task that parses them to anything else (a
default read from the clock or the environment) fails, naming the
option, instead of computing another answer than its neighbours.
"""

import argparse
import json

# The arguments travel in every task's spec: they are options, not data.
MAX_ARGS_BYTES = 64 << 10


class JobOptionsError(Exception):
    """
    The job's arguments are wrong: the message names the option.
    """


class _Parser(argparse.ArgumentParser):
    """
    An argument parser that raises instead of printing and exiting: the
    driver turns the error into its one-line refusal, before any task runs.
    """

    def error(self, message):
        raise JobOptionsError(f"job options: {message} (txmr run JOB --help-job lists them)")

    def exit(self, status=0, message=None):
        raise JobOptionsError(message or "job options: --help is txmr run JOB --help-job")


def make_parser(name, doc, configure):
    """
    The job's parser: C{configure(parser)} declares its options.
    """
    summary = (doc or "").strip().split("\n\n")[0] or None
    # No abbreviations: the argument list is part of the job's identity,
    # and an option added later must not change what an old one meant.
    parser = _Parser(prog=f"txmr run {name} --", description=summary, allow_abbrev=False,
                     formatter_class=argparse.RawDescriptionHelpFormatter)
    if configure is not None:
        configure(parser)
    return parser


def parse(parser, args):
    """
    @return: the parsed values, an C{argparse.Namespace}.
    @raise JobOptionsError: naming the option that is wrong.
    """
    args = [str(a) for a in args]
    size = len(json.dumps(args))
    if size > MAX_ARGS_BYTES:
        raise JobOptionsError(f"job options: {size} bytes of arguments, more than "
                              f"{MAX_ARGS_BYTES}: pass large data in a file, and its path")
    return parser.parse_args(args)


def _plain(value):
    if value is None or type(value) in (str, int, float, bool):
        return True
    return type(value) in (list, tuple) and all(_plain(v) for v in value)


def plain_values(namespace):
    """
    The values of C{namespace} that JSON carries as they are, as JSON
    values (a tuple as a list): what every task must parse alike.
    """
    return {name: json.loads(json.dumps(value)) for name, value in sorted(vars(namespace).items())
            if _plain(value)}


def check_same(namespace, expected):
    """
    @raise JobOptionsError: an option parsed in this task differs from the
        driver's value C{expected[name]}.
    """
    got = plain_values(namespace)
    for name, value in expected.items():
        # Compared as JSON text: NaN equals itself there, 1 and True differ.
        if name not in got or json.dumps(got[name]) != json.dumps(value):
            raise JobOptionsError(
                f"job option {name!r} is {got.get(name)!r} in this task but was {value!r} "
                f"on the driver: its value must not depend on where or when it is parsed")
