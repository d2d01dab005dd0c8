#!/usr/bin/env python3
"""
What scheduling costs the driver, measured on a real driver process.

    python bench/scheduler.py [--tasks 4000] [--runs 3] [--idle 100] [--seconds 20] [--tcp]

1. Throughput: a job of TASKS no-op map tasks (no input, so each writes one
   empty partition) and one reduce, run by 2 workers through twistd; tasks
   per second over the map phase, from the driver's own attempt times.
   The driver listens on a UNIX socket, or on loopback TCP with --tcp.
   RUNS jobs, one after the other; each is printed, then the median.
2. Idle cost: IDLE workers connected and answering heartbeats (one process
   hosts them all: each is a real txmr Worker service) while one task
   blocks; the driver's CPU (utime + stime from /proc) over SECONDS.
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

from txmr.local import twistd

HERE = os.path.dirname(os.path.abspath(__file__))
TWISTD = twistd()


LISTEN = "unix:{work}/driver.sock"


def start_driver(work, *args):
    os.makedirs(os.path.join(work, "in"), exist_ok=True)
    log = open(os.path.join(work, "driver.log"), "wb")
    driver = subprocess.Popen(TWISTD + [
        "--pidfile=", "-n", "txmr-driver", "--input", os.path.join(work, "in"),
        "--intermediate", os.path.join(work, "mid"), "--output", os.path.join(work, "out"),
        "--listen", LISTEN.format(work=work), "--port-file", os.path.join(work, "address"),
        "--summary-file", os.path.join(work, "summary.json"), "--linger", "0"] + list(args),
        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    while not os.path.exists(os.path.join(work, "address")):
        if driver.poll() is not None:
            raise SystemExit(f"the driver exited {driver.returncode}")
        time.sleep(0.02)
    with open(os.path.join(work, "address")) as f:
        return driver, f.read().strip()


def throughput(work, n_tasks):
    """
    Tasks per second over the map phase, and the driver's CPU time per
    task (from its start of listening to its exit, so without its start-up).
    """
    driver, address = start_driver(work, "--mappers", str(n_tasks), "--reducers", "1")
    before = cpu_seconds(driver.pid)
    workers = [subprocess.Popen(TWISTD + ["--pidfile=", "-n", "txmr-worker", "--driver", address],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
               for _ in range(2)]
    _, status, usage = os.wait4(driver.pid, 0)
    driver.returncode = code = os.waitstatus_to_exitcode(status)
    per_task = (usage.ru_utime + usage.ru_stime - before) / (n_tasks + 1)
    for w in workers:
        w.wait()
    if code:
        raise SystemExit(f"the no-op job failed ({code})")
    with open(os.path.join(work, "summary.json")) as f:
        summary = json.load(f)
    maps = [a for t in summary["tasks"] if t["kind"] == "map" for a in t["attempts"]
            if a["state"] == "succeeded"]
    phase = max(a["end"] for a in maps) - min(a["start"] for a in maps)
    return len(maps) / phase, phase, per_task


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def idle_cost(work, n_workers, seconds):
    os.makedirs(os.path.join(work, "in"))
    with open(os.path.join(work, "in", "one.txt"), "w") as f:
        f.write("one line\n")
    driver, address = start_driver(work, "--mappers", "1", "--reducers", "1", "--job",
                                   os.path.join(HERE, "blocking_job.py"))
    hosts = subprocess.Popen([sys.executable, os.path.join(HERE, "many_workers.py"), address,
                              str(n_workers)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        # Wait until every worker joined, then measure a quiet window.
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            with open(os.path.join(work, "driver.log"), errors="replace") as f:
                if f.read().count(" joined from ") >= n_workers:
                    break
            time.sleep(0.5)
        else:
            raise SystemExit("the workers did not all join")
        time.sleep(2)
        before, t0 = cpu_seconds(driver.pid), time.monotonic()
        time.sleep(seconds)
        used, elapsed = cpu_seconds(driver.pid) - before, time.monotonic() - t0
        return used / elapsed
    finally:
        hosts.kill()
        driver.kill()
        hosts.wait()
        driver.wait()


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    p.add_argument("--tasks", type=int, default=4000)
    p.add_argument("--idle", type=int, default=100)
    p.add_argument("--seconds", type=float, default=20)
    p.add_argument("--runs", type=int, default=3, help="throughput runs (the median is printed)")
    p.add_argument("--tcp", action="store_true", help="listen on loopback TCP")
    a = p.parse_args()
    global LISTEN
    if a.tcp:
        LISTEN = "tcp:0:interface=127.0.0.1"
    work = tempfile.mkdtemp(prefix="txmr-bench-sched-")
    try:
        rates, costs = [], []
        for run in range(a.runs):
            rate, phase, per_task = throughput(os.path.join(work, f"throughput-{run}"), a.tasks)
            rates.append(rate)
            costs.append(per_task)
            print(f"| no-op map tasks, 2 workers, {'TCP' if a.tcp else 'UNIX socket'} | "
                  f"{a.tasks} tasks in {phase:.2f}s | {rate:.0f} tasks/s | target >= 2000 |\n"
                  f"| the driver's CPU per task (hand-out, report, commit) | "
                  f"{1e6 * per_task:.0f} us | {1 / per_task:.0f} tasks/s on one core | |",
                  flush=True)
        if a.runs > 1:
            cost = statistics.median(costs)
            print(f"| median of {a.runs} runs | | {statistics.median(rates):.0f} tasks/s; "
                  f"driver {1e6 * cost:.0f} us per task | target >= 2000 |", flush=True)
        share = idle_cost(os.path.join(work, "idle"), a.idle, a.seconds)
        print(f"| {a.idle} idle workers, heartbeat 1s | {a.seconds:g}s window | "
              f"driver CPU {100 * share:.2f}% of a core | target < 5% |", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
