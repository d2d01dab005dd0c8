"""
Connections that have not yet shown who they are, kept within a bound.

Before a peer proves it is a worker (AMP's Hello) or says anything at all
(the first byte, which tells AMP from HTTP), it costs the driver a socket
and a little memory, and nothing stops a stranger from opening thousands.
A L{Strangers} keeps at most C{limit} of them.  Beyond that, a newcomer
takes the place of the oldest one if that one has waited longer than
C{grace} seconds (a real worker speaks within a round trip or two: one
that has not by then is idle), and is closed at once otherwise.  So idle
strangers cannot keep a real worker out, however many they are, and a
burst of new ones costs at most C{limit} sockets.
"""

from collections import OrderedDict

from twisted.logger import Logger

log = Logger()


class Strangers:
    """
    @ivar waiting: each stranger (anything with C{abort()}), oldest first,
        with when it connected.
    """

    def __init__(self, clock, limit, grace, waiting_for):
        """
        @param waiting_for: what they wait to do, for the log ("to say
            Hello").
        """
        self.clock = clock
        self.limit = limit
        self.grace = grace
        self.waiting_for = waiting_for
        self.waiting = OrderedDict()
        self._full = False

    def __len__(self):
        return len(self.waiting)

    def admit(self, stranger):
        """
        Whether a new connection may stay; it may evict the oldest idle
        stranger.
        """
        now = self.clock.seconds()
        if len(self.waiting) >= self.limit:
            oldest, since = next(iter(self.waiting.items()))
            if not self._full:
                self._full = True
                log.warn("{n} connections are waiting {what}: dropping the oldest idle ones, "
                         "or new ones while none is idle", n=len(self.waiting),
                         what=self.waiting_for)
            if now - since < self.grace:
                return False
            del self.waiting[oldest]
            oldest.abort()
        self.waiting[stranger] = now
        return True

    def known(self, stranger):
        """
        C{stranger} showed who it is, or is gone: it is no longer counted.
        """
        self.waiting.pop(stranger, None)
        if self._full and len(self.waiting) < self.limit // 2:
            self._full = False
