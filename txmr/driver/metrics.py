"""
C{GET /metrics}: the driver's state in Prometheus' text format.

The numbers are read from the job's L{JobView<txmr.driver.status.JobView>}
at each scrape by a custom collector, so nothing is counted twice and no
global registry is touched; prometheus-client does the exposition format.
"""

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from twisted.web import resource


class DriverCollector:
    """
    Collects one driver's metrics when scraped.

    @param view: returns the job's current L{JobView<txmr.driver.status.JobView>}.
    """

    def __init__(self, view):
        self.view = view

    def collect(self):
        view = self.view()
        s = view.scheduler
        tasks = GaugeMetricFamily("txmr_tasks", "Tasks by kind and state.",
                                  labels=["kind", "state"])
        for kind, states in s.counts().items():
            for state, n in states.items():
                tasks.add_metric([kind, state], n)
        yield tasks

        attempts = CounterMetricFamily("txmr_attempts", "Task attempts by kind and outcome.",
                                       labels=["kind", "outcome"])
        outcomes = {}
        for attempt in s.attempts.values():
            key = (str(attempt.task.kind), str(attempt.state))
            outcomes[key] = outcomes.get(key, 0) + 1
        for (kind, outcome), n in sorted(outcomes.items()):
            attempts.add_metric([kind, outcome], n)
        yield attempts

        workers = GaugeMetricFamily("txmr_workers", "Worker sessions by state.",
                                    labels=["state"])
        live = [w for w in s.workers.values() if not w.lost]
        workers.add_metric(["live"], len(live))
        workers.add_metric(["busy"], sum(1 for w in live if w.attempts))
        workers.add_metric(["blacklisted"], sum(1 for w in live if w.blacklisted))
        workers.add_metric(["lost"], len(s.workers) - len(live))
        yield workers

        rtt = GaugeMetricFamily("txmr_heartbeat_rtt_seconds",
                                "Round-trip time of each live worker's last heartbeat.",
                                labels=["worker"])
        for worker in live:
            if worker.id in view.rtts:
                rtt.add_metric([worker.id], view.rtts[worker.id])
        yield rtt

        job = GaugeMetricFamily("txmr_job_state", "1 running, 2 finished, 3 failed.")
        job.add_metric([], int(s.state))
        yield job

        counters = CounterMetricFamily("txmr_job_counter",
                                       "Job counters, summed over successful attempts.",
                                       labels=["group", "name"])
        for group, names in sorted(s.summed_counters().items()):
            for name, value in sorted(names.items()):
                counters.add_metric([group, name], value)
        yield counters


class MetricsPage(resource.Resource):
    isLeaf = True

    def __init__(self, view):
        super().__init__()
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(DriverCollector(view))

    def render_GET(self, request):
        request.setHeader(b"content-type", CONTENT_TYPE_LATEST.encode())
        return generate_latest(self.registry)
