"""
C{twistd txmr-driver}: its command line, and the service it makes.

The seed's flags (C{--i_path}, C{-ip}, ...) are accepted as aliases.
"""

import shlex
import sys

from twisted.python import usage

from txmr.core.spec import DEFAULT_MEMORY
from txmr.daemon import exit_process, read_secret, seconds
from txmr.driver.config import DriverConfig
from txmr.job import DEFAULT_JOB
from txmr.plan import ConfigError
from txmr.tls import TLSConfigError, check_server, scheme

_SEED_ALIASES = {
    "-ip": "--input", "--i_path": "--input", "--i-path": "--input",
    "-mp": "--intermediate", "--m_path": "--intermediate", "--m-path": "--intermediate",
    "-op": "--output", "--o_path": "--output", "--o-path": "--output",
}


def _seed_aliases(argv):
    """
    The seed's option names (C{--i_path DIR}, C{-ip DIR}) as ours; getopt
    knows no multi-letter short options.
    """
    out = []
    for arg in argv:
        name, eq, value = arg.partition("=")
        out.append(_SEED_ALIASES.get(name, name) + eq + value if name in _SEED_ALIASES else arg)
    return out


class DriverOptions(usage.Options):
    """
    twistd txmr-driver: run one MapReduce job for the workers that connect.
    """

    synopsis = "[options] --input DIR --intermediate DIR --output DIR"
    longdesc = ("Run one MapReduce job: hand its map tasks, then its reduce tasks, to the "
                "workers that connect, and exit when the output is complete.")

    optParameters = [
        ["input", "i", None, "Input directory (alias --i_path, -ip)."],
        ["intermediate", None, None, "Directory for map output (alias --m_path, -mp); "
                                     "without it, map output stays on the workers."],
        ["output", "o", None, "Output directory (alias --o_path, -op)."],
        ["mappers", "m", 4, "Number of map tasks.", int],
        ["reducers", "r", 2, "Number of reduce tasks.", int],
        ["port", "p", 5000, "Listen on this TCP port of 127.0.0.1.", int],
        ["listen", None, None, "Listen on this Twisted server endpoint instead "
                               "(e.g. tcp:5000, ssl:5000:privateKey=KEY:certKey=CERT for TLS, "
                               "unix:/path)."],
        ["job", "j", DEFAULT_JOB, "The job: a module, module:attribute, or a .py file."],
        ["job-args", None, "", "The job's own options, as one shell-quoted string "
                               "(e.g. '--min-count 3')."],
        ["heartbeat", None, 1.0, "Seconds between pings of each worker.", seconds("heartbeat")],
        ["heartbeat-timeout", None, 5.0, "Seconds of silence after which a worker is lost.",
         seconds("heartbeat-timeout")],
        ["max-attempts", None, 4, "Failures of one task that fail the job.", int],
        ["task-timeout", None, None, "Abandon an attempt running longer than this (seconds).",
         seconds("task-timeout")],
        ["speculate-after", None, 10.0, "Least running time before a straggler gets a "
                                        "backup attempt (seconds).",
         seconds("speculate-after", zero=True)],
        ["memory", None, DEFAULT_MEMORY >> 20, "Memory budget of a reduce task in MB; "
                                                    "past it, it spills to disk.", int],
        ["port-file", None, None, "Write the address the driver listens on to this file."],
        ["summary-file", None, None, "At the end, write the job's final state here as JSON."],
        ["secret-file", None, None, "Require the secret in this file from every worker and "
                                    "HTTP client (for a driver others can reach)."],
        ["http", None, None, "Serve HTTP (status page, API, metrics) on this endpoint too; "
                             "the main port serves it anyway."],
        ["journal", None, None, "Journal the job here, to resume it after a crash (default: "
                                ".txmr-journal.sqlite in the intermediate directory)."],
        ["linger", None, 5.0, "After the job, stay this many seconds telling workers that "
                              "arrive late that it is over (0: exit at once).",
         seconds("linger", zero=True)],
        ["storage-options", None, None, "fsspec options of an --input or --output URL, as a "
                                        "JSON object; they reach every worker, so give "
                                        "credentials through the environment instead."],
        ["http-lease", None, 60.0, "Seconds an HTTP worker's task stays leased without a "
                                   "request bearing its worker-pid.", seconds("http-lease")],
    ]
    optFlags = [
        ["no-speculation", None, "Never start backup attempts of stragglers."],
        ["skip-bad-records", None, "Skip input records on which map attempts keep failing."],
        ["fresh", None, "Start over, removing an earlier run's files, instead of resuming it."],
    ]

    def parseOptions(self, options=None):
        if options is None:
            options = sys.argv[1:]
        return super().parseOptions(_seed_aliases(options))

    def postOptions(self):
        # Unbalanced quotes are a usage error, shown as twistd shows one.
        job_args(self["job-args"])
        storage_options(self["storage-options"])

    def config(self):
        listen = self["listen"] or f"tcp:{self['port']}:interface=127.0.0.1"
        return DriverConfig(
            input=self["input"],
            intermediate=self["intermediate"],
            output=self["output"],
            mappers=self["mappers"],
            reducers=self["reducers"],
            listen=listen,
            job=self["job"],
            job_args=job_args(self["job-args"]),
            heartbeat=self["heartbeat"],
            heartbeat_timeout=self["heartbeat-timeout"],
            max_attempts=self["max-attempts"],
            task_timeout=self["task-timeout"],
            speculation=not self["no-speculation"],
            speculate_after=self["speculate-after"],
            skip_bad_records=bool(self["skip-bad-records"]),
            memory=self["memory"] << 20,
            port_file=self["port-file"],
            http=self["http"],
            summary_file=self["summary-file"],
            secret=read_secret(self["secret-file"]),
            http_lease=self["http-lease"],
            linger=self["linger"],
            journal=self["journal"],
            fresh=bool(self["fresh"]),
            storage_options=storage_options(self["storage-options"]),
        )


def job_args(text):
    """
    The job's argument list from C{--job-args}, split as a shell would.
    """
    try:
        return shlex.split(text or "")
    except ValueError as e:
        raise usage.UsageError(f"--job-args {text!r}: {e}") from None


def storage_options(text):
    """
    The fsspec options from C{--storage-options} (a JSON object).
    """
    from txmr.data.storage import parse_options

    try:
        return parse_options(text)
    except ValueError as e:
        raise usage.UsageError(str(e)) from None


def make_driver_service(options):
    from twisted.internet import reactor

    from txmr.driver.service import makeService

    config = options.config()
    for flag, description in (("--listen", config.listen), ("--http", config.http)):
        if description and scheme(description) == "ssl":
            try:
                check_server(reactor, description)
            except TLSConfigError as e:
                print(f"txmr-driver: error: {flag} {e}", file=sys.stderr)
                raise SystemExit(2)
    try:
        return makeService(
            config, reactor,
            on_exit=lambda code, message: exit_process(reactor, code, message),
        )
    except ConfigError as e:
        print(f"txmr-driver: error: {e}", file=sys.stderr)
        raise SystemExit(2)
