"""
Workers' long polls: a worker with nothing to do asks, and its question is
held until a task is ready for it or C{poll} seconds pass (never a busy
loop of questions).
"""

from twisted.internet import defer

from txmr.core.spec import Wait


class LongPolls:
    """
    At most one open question per worker.
    """

    def __init__(self, clock, timeout):
        self.clock = clock
        self.timeout = timeout
        self._open = {}

    def __iter__(self):
        return iter(list(self._open))

    def __len__(self):
        return len(self._open)

    def wait(self, worker):
        """
        A Deferred of the worker's answer; C{Wait} if nothing comes in
        time.  An earlier question of the same worker is answered C{Wait}.
        """
        self.answer(worker, Wait())
        d = defer.Deferred()
        call = self.clock.callLater(self.timeout, self.answer, worker, Wait())
        self._open[worker] = (d, call)
        return d

    def answer(self, worker, answer):
        entry = self._open.pop(worker, None)
        if entry is not None:
            d, call = entry
            if call.active():
                call.cancel()
            d.callback(answer)

    def drop(self, worker):
        """
        Forget the worker's question (its connection is gone).
        """
        entry = self._open.pop(worker, None)
        if entry is not None and entry[1].active():
            entry[1].cancel()

    def drop_all(self):
        for worker in list(self._open):
            self.drop(worker)
