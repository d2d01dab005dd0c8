"""
C{twistd txmr-worker}: its command line, and the service it makes.

A worker imports only its own side (not the driver, its web site or
prometheus): it starts sooner.
"""

import sys

from twisted.internet import endpoints
from twisted.python import usage

from txmr.daemon import exit_process, read_secret, seconds
from txmr.tls import TLSConfigError, Trust, check_server, scheme
from txmr.worker.address import client_endpoint


class WorkerOptions(usage.Options):
    """
    twistd txmr-worker: run tasks for a driver until its job is over.
    """

    synopsis = "[options] --driver ADDRESS"
    optParameters = [
        ["driver", "d", "127.0.0.1:5000",
         "The driver: http://HOST:PORT, HOST:PORT, https://HOST:PORT (TLS), or a Twisted "
         "client endpoint string (ssl:host=HOST:port=PORT for TLS)."],
        ["give-up", None, 60.0, "Exit if the driver stays out of reach this long (seconds; "
                                "0: never).", seconds("give-up", zero=True)],
        ["secret-file", None, None, "The job's secret is in this file: the worker and its "
                                    "driver prove to each other that they know it."],
        ["ca-file", None, None, "A TLS driver's certificate must be signed by a CA in this PEM "
                                "file (default: the system's trusted roots)."],
        ["work-dir", None, None, "Keep map output (of a driver without --intermediate) here "
                                 "(default: a fresh temporary directory, removed at exit)."],
        ["serve", None, None, "Serve that map output to other workers on this Twisted server "
                              "endpoint (default: an ephemeral port on the address used to "
                              "reach the driver; ssl:... for https)."],
        ["advertise", None, None, "The host name or address other workers reach this one by "
                                  "(default: the address it serves on)."],
    ]
    optFlags = [
        ["insecure-tls", None, "Do not check a TLS driver's certificate (anyone who can "
                               "relay between this worker and its driver may then read and "
                               "change what they say)."],
    ]

    def __init__(self):
        super().__init__()
        self["job-allow"] = []

    def opt_job_allow(self, pattern):
        self["job-allow"].append(pattern)

    # One line: twistd prints it as it is.
    opt_job_allow.__doc__ = (
        "Run only tasks of jobs that match this glob (repeatable; default: any job): a "
        "module's dotted name, or a .py file's real absolute path, where * stays within one "
        "directory. Others fail before their code is imported.")

    def postOptions(self):
        self["secret"] = read_secret(self["secret-file"])


def make_worker_service(options):
    from twisted.internet import reactor

    from txmr.worker.service import makeService

    def on_exit(code, message):
        # Its map output is no one's any more (the job is over, or this
        # worker out of it); a fast exit would not stop the service.
        service.close_shuffle()
        # A task thread that is still computing would hold up the reactor's
        # shutdown; the driver no longer wants its result.
        exit_process(reactor, code, message, now=service.busy)

    try:
        trust = Trust(options["ca-file"], bool(options["insecure-tls"]))
        client_endpoint(reactor, options["driver"], trust)
    except TLSConfigError as e:
        print(f"txmr-worker: error: {e}", file=sys.stderr)
        raise SystemExit(2)
    except (ValueError, TypeError, KeyError) as e:
        print(f"txmr-worker: error: --driver {options['driver']!r} is not a driver address: {e}",
              file=sys.stderr)
        raise SystemExit(2)
    from txmr.worker.shuffle import Shuffle

    if options["serve"]:
        try:
            if scheme(options["serve"]) == "ssl":
                check_server(reactor, options["serve"])
            endpoints.serverFromString(reactor, options["serve"])
        except TLSConfigError as e:
            print(f"txmr-worker: error: --serve {e}", file=sys.stderr)
            raise SystemExit(2)
        except (ValueError, TypeError, KeyError) as e:
            print(f"txmr-worker: error: --serve {options['serve']!r} is not a server endpoint: "
                  f"{e}", file=sys.stderr)
            raise SystemExit(2)
    shuffle = Shuffle(reactor, options["work-dir"], options["serve"], options["advertise"],
                      secret=options["secret"], ca_file=options["ca-file"],
                      insecure_tls=bool(options["insecure-tls"]))
    service = makeService(options["driver"], reactor, options["give-up"], on_exit,
                          secret=options["secret"], trust=trust, shuffle=shuffle)

    def abandon_task():
        # Stopped by a signal mid-task: the driver will give the task to
        # another worker; do not wait for the thread to finish it.
        service.close_shuffle()
        if service.busy:
            exit_process(reactor, 1, "stopped in the middle of a task", now=True)

    # What runs the tasks refuses any job the worker's owner does not allow.
    service.executor.job_allow = tuple(options["job-allow"])
    reactor.addSystemEventTrigger("before", "shutdown", abandon_task)
    return service
