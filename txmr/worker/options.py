"""
C{twistd txmr-worker}: its command line, and the service it makes.

A worker imports only its own side (not the driver, its web site or
prometheus): it starts sooner.
"""

import sys

from twisted.internet import endpoints
from twisted.python import usage

from txmr.daemon import exit_process, read_secret
from txmr.worker.address import client_endpoint_string


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


def make_worker_service(options):
    from twisted.internet import reactor

    from txmr.worker.service import makeService

    def on_exit(code, message):
        # A task thread that is still computing would hold up the reactor's
        # shutdown; the driver no longer wants its result.
        exit_process(reactor, code, message, now=service.busy)

    address = client_endpoint_string(options["driver"])
    try:
        endpoints.clientFromString(reactor, address)
    except (ValueError, TypeError, KeyError) as e:
        print(f"txmr-worker: error: --driver {options['driver']!r} is not a driver address: {e}",
              file=sys.stderr)
        raise SystemExit(2)
    service = makeService(options["driver"], reactor, options["give-up"], on_exit,
                          secret=options["secret"])

    def abandon_task():
        # Stopped by a signal mid-task: the driver will give the task to
        # another worker; do not wait for the thread to finish it.
        if service.busy:
            exit_process(reactor, 1, "stopped in the middle of a task", now=True)

    reactor.addSystemEventTrigger("before", "shutdown", abandon_task)
    return service
