"""
Host N txmr workers in one process, each a real Worker service with its
own connection: for measuring what many idle workers cost a driver.

    python bench/many_workers.py ADDRESS N
"""

import sys

from twisted.internet import reactor

from txmr.worker.service import makeService


def main(address, n):
    for _ in range(n):
        makeService(address, reactor, give_up=0).startService()
    reactor.run()


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
