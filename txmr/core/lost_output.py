"""
Map output lost, where it is kept by the worker that wrote it (a job
without a shared intermediate directory): the scheduler's rules for it, as
the MapReduce paper has them.  Part of the core: no I/O, time passed in.

A map whose committed output can no longer be read (its worker is lost,
or a reducer cannot fetch it) is READY again while any reduce still needs
it; the reduces that are not finished wait (BLOCKED) for it, their running
attempts cancelled without counting as failures, since they would read
output that is gone.  So a reducer only ever reads the committed attempt of
each map.
"""

from txmr.core.errors import StaleReport
from txmr.core.instructions import Cancel, GivenBack, OutputLost
from txmr.core.states import AttemptState, Kind, TaskState


class LostOutput:
    """
    The part of L{txmr.core.scheduler.Scheduler} that handles lost map
    output (a mixin: it reads and changes the scheduler's state).
    """

    def map_output_lost(self, map_index, attempt_id, now, reporter=None, why="lost"):
        """
        Map task C{map_index}'s committed attempt C{attempt_id} can no
        longer be read: its host is gone or its file is missing.  The map is
        READY again (it counts as a failure of the map task, so that output
        that keeps getting lost fails the job rather than looping), the
        reduces that are not finished wait for it (their running attempts
        are cancelled, without counting as failures: they would read the
        lost output), and the reduce attempt that reported it, C{reporter}
        (C{(worker_id, reduce_index, attempt_id)}), is given back.

        @raise SchedulingError: the reporter's attempt is not running, or
            C{attempt_id} is not the map's committed attempt, or the job
            keeps its map output in a shared directory: nothing changed (a
            reduce handed out since the loss reads the new attempt).
        """
        task = self.task(Kind.MAP, map_index)
        reporting = None
        if reporter is not None:
            worker_id, reduce_index, reduce_attempt = reporter
            reporting = self.running_attempt(worker_id, Kind.REDUCE, reduce_index,
                                             reduce_attempt)
        if not self.shared_nothing or not self.reduces:
            raise StaleReport(f"{task}'s output is in the shared directory: it cannot be "
                              f"lost with a worker")
        if self.over:
            return []
        if task.winner is None or task.winner.id != attempt_id:
            raise StaleReport(f"{task} has no committed attempt {attempt_id!r}")
        out = []
        if reporting is not None:
            self._end_attempt(reporting, AttemptState.LOST, now)
            out.append(GivenBack(reporting))
        out += self._output_lost(task, now, why, counts=True)
        return out

    def _outputs_lost_with(self, worker_id, now):
        """
        A worker is lost: in a shared-nothing job, its committed map output
        went with it, and runs again if a reduce still needs it.
        """
        out = []
        if self.shared_nothing and not self.over and self._unfinished[Kind.REDUCE]:
            for task in self.maps:
                if task.winner is not None and task.winner.worker == worker_id:
                    out += self._output_lost(task, now, "its worker was lost")
        return out

    def _output_lost(self, task, now, why, counts=False):
        """
        A finished map's output is gone: the map is READY again, and every
        unfinished reduce waits (BLOCKED) for it.
        """
        winner = task.winner
        winner.state = AttemptState.LOST
        winner.error = f"its output was lost: {why}"
        task.winner = None
        task.counters = {}
        self._unfinished[Kind.MAP] += 1
        self.placement.ready(task, retry=True)
        out = [OutputLost(winner)]
        for reduce in self.reduces:
            if reduce.state is TaskState.FINISHED:
                continue
            for attempt in reduce.running_attempts():
                self._end_attempt(attempt, AttemptState.KILLED, now)
                out.append(Cancel(attempt))
            reduce.state = TaskState.BLOCKED
        if counts:
            out += self._count_failure(winner, None, now)
        return out

