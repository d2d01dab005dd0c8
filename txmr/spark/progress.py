"""
The map and reduce bars of a Spark run, fed by Spark's status tracker.

A run is one Spark job in its own job group.  Its stages are numbered
parents first, so the last one is the reduce (the result stage) and the one
before it the map; a stage before those is Spark reading URL input for the
maps.  A map-only job's last stage is its map.  The counts take the shape of txmr's scheduler's
(L{txmr.core.scheduler.Scheduler.counts}), so C{txmr run} shows them with
the same progress bar.
"""


def counts(n_tasks, active=0, completed=0):
    """
    One phase's tasks by state, as txmr's scheduler counts them.
    """
    completed = min(completed, n_tasks)
    active = min(active, n_tasks - completed)
    return {"blocked": 0, "ready": n_tasks - completed - active, "running": active,
            "finished": completed}


class StageFeed:
    """
    Reads the stages of one job group from the status tracker.
    """

    def __init__(self, sc, group, n_map, n_reduce):
        self.tracker = sc.statusTracker()
        self.group = group
        self.n_map = n_map
        self.n_reduce = n_reduce

    def counts(self):
        """
        Tasks of the map and the reduce phase by state (everything ready
        until Spark reports the stages).
        """
        stage_ids = set()
        for job_id in self.tracker.getJobIdsForGroup(self.group):
            info = self.tracker.getJobInfo(job_id)
            if info is not None:
                stage_ids.update(info.stageIds)
        kinds = ("map", "reduce") if self.n_reduce else ("map",)
        stages = sorted(stage_ids)[-len(kinds):]
        phases = {"map": counts(self.n_map), "reduce": counts(self.n_reduce)}
        for kind, stage_id in zip(kinds[len(kinds) - len(stages):], stages):
            stage = self.tracker.getStageInfo(stage_id)
            if stage is not None:
                total = self.n_map if kind == "map" else self.n_reduce
                phases[kind] = counts(total, stage.numActiveTasks, stage.numCompletedTasks)
        return phases

    def finished(self):
        return {"map": counts(self.n_map, 0, self.n_map),
                "reduce": counts(self.n_reduce, 0, self.n_reduce)}
