"""
What the twistd plugins wire together: command-line options, and the way
a daemon ends with the right exit code.

twistd itself has no notion of an exit code: the process exits 0 whenever
the reactor stops.  A driver whose job failed must exit non-zero, so
L{exit_process} records the code and an C{atexit} hook ends the process with
it, after twistd has cleaned up.
"""

import atexit
import os
import sys

from twisted.internet import endpoints
from twisted.python import usage

from txmr import tasks
from txmr.job import DEFAULT_JOB

_exit_code = 0


def _exit_with_code():
    if _exit_code:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(_exit_code)


atexit.register(_exit_with_code)


def exit_process(reactor, code, message, now=False):
    """
    Stop the reactor so that the process exits with C{code}; print the
    message on standard error when it is an error.  With C{now}, exit at
    once, without waiting for threads that may compute for a long time.
    """
    global _exit_code
    _exit_code = code
    if code:
        print(f"txmr: {message}", file=sys.stderr, flush=True)
    if now:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    if reactor.running:
        reactor.callLater(0, reactor.stop)


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


def _positive_float(text):
    value = float(text)
    if value <= 0:
        raise ValueError("must be positive")
    return value


class DriverOptions(usage.Options):
    """
    twistd txmr-driver: run one MapReduce job for the workers that connect.
    """

    synopsis = "[options] --input DIR --intermediate DIR --output DIR"
    longdesc = ("Run one MapReduce job: hand its map tasks, then its reduce tasks, to the "
                "workers that connect, and exit when the output is complete.")

    optParameters = [
        ["input", "i", None, "Input directory (alias --i_path, -ip)."],
        ["intermediate", None, None, "Directory for map output (alias --m_path, -mp)."],
        ["output", "o", None, "Output directory (alias --o_path, -op)."],
        ["mappers", "m", 4, "Number of map tasks.", int],
        ["reducers", "r", 2, "Number of reduce tasks.", int],
        ["port", "p", 5000, "Listen on this TCP port of 127.0.0.1.", int],
        ["listen", None, None, "Listen on this Twisted server endpoint instead "
                               "(e.g. tcp:5000, ssl:..., unix:/path)."],
        ["job", "j", DEFAULT_JOB, "The job: a module, module:attribute, or a .py file."],
        ["heartbeat", None, 1.0, "Seconds between pings of each worker.", _positive_float],
        ["heartbeat-timeout", None, 5.0, "Seconds of silence after which a worker is lost.",
         _positive_float],
        ["max-attempts", None, 4, "Failures of one task that fail the job.", int],
        ["task-timeout", None, None, "Abandon an attempt running longer than this (seconds).",
         _positive_float],
        ["speculate-after", None, 10.0, "Least running time before a straggler gets a "
                                        "backup attempt (seconds).", float],
        ["memory", None, tasks.DEFAULT_MEMORY >> 20, "Memory budget of a reduce task in MB; "
                                                    "past it, it spills to disk.", int],
        ["port-file", None, None, "Write the address the driver listens on to this file."],
        ["summary-file", None, None, "At the end, write the job's final state here as JSON."],
        ["secret-file", None, None, "Require the secret in this file from every worker and "
                                    "HTTP client (for a driver others can reach)."],
        ["http", None, None, "Serve HTTP (status page, API, metrics) on this endpoint too; "
                             "the main port serves it anyway."],
        ["http-lease", None, 60.0, "Seconds an HTTP worker's task stays leased without a "
                                   "request bearing its worker-pid.", _positive_float],
    ]
    optFlags = [
        ["no-speculation", None, "Never start backup attempts of stragglers."],
        ["skip-bad-records", None, "Skip input records on which map attempts keep failing."],
    ]

    def parseOptions(self, options=None):
        if options is None:
            options = sys.argv[1:]
        return super().parseOptions(_seed_aliases(options))

    def config(self):
        from txmr import driver

        listen = self["listen"] or f"tcp:{self['port']}:interface=127.0.0.1"
        return driver.DriverConfig(
            input=self["input"],
            intermediate=self["intermediate"],
            output=self["output"],
            mappers=self["mappers"],
            reducers=self["reducers"],
            listen=listen,
            job=self["job"],
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
        )


def read_secret(path):
    """
    The secret in a file (its first line), or L{None} without a file.
    """
    if not path:
        return None
    try:
        with open(path, encoding="utf-8") as f:
            secret = f.readline().strip()
    except OSError as e:
        raise usage.UsageError(f"cannot read the secret file {path!r}: {e.strerror}")
    if not secret:
        raise usage.UsageError(f"the secret file {path!r} is empty")
    return secret


class WorkerOptions(usage.Options):
    """
    twistd txmr-worker: run tasks for a driver until its job is over.
    """

    synopsis = "[options] --driver ADDRESS"
    optParameters = [
        ["driver", "d", "127.0.0.1:5000",
         "The driver: http://HOST:PORT, HOST:PORT, or a Twisted client endpoint string."],
        ["give-up", None, 60.0, "Exit if the driver stays out of reach this long (seconds; "
                                "0: never).", float],
        ["secret-file", None, None, "Give the driver the secret in this file."],
    ]

    def postOptions(self):
        self["secret"] = read_secret(self["secret-file"])


# Each daemon imports only its own side: a worker starts sooner without the
# driver's web and metrics modules.

def make_driver_service(options):
    from twisted.internet import reactor

    from txmr import driver

    try:
        return driver.makeService(
            options.config(), reactor,
            on_exit=lambda code, message: exit_process(reactor, code, message),
        )
    except driver.ConfigError as e:
        print(f"txmr-driver: error: {e}", file=sys.stderr)
        raise SystemExit(2)


def make_worker_service(options):
    from twisted.internet import reactor

    from txmr import worker

    def on_exit(code, message):
        # A task thread that is still computing would hold up the reactor's
        # shutdown; the driver no longer wants its result.
        exit_process(reactor, code, message, now=service.busy)

    address = worker.client_endpoint_string(options["driver"])
    try:
        endpoints.clientFromString(reactor, address)
    except (ValueError, TypeError, KeyError) as e:
        print(f"txmr-worker: error: --driver {options['driver']!r} is not a driver address: {e}",
              file=sys.stderr)
        raise SystemExit(2)
    service = worker.makeService(options["driver"], reactor, options["give-up"], on_exit,
                                 secret=options["secret"])

    def abandon_task():
        # Stopped by a signal mid-task: the driver will give the task to
        # another worker; do not wait for the thread to finish it.
        if service.busy:
            exit_process(reactor, 1, "stopped in the middle of a task", now=True)

    reactor.addSystemEventTrigger("before", "shutdown", abandon_task)
    return service
