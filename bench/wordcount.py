#!/usr/bin/env python3
"""
Word count: txmr (a driver and 2 workers through twistd) against the
one-process reference, in the same run, on the same data, same output.

    python bench/wordcount.py                   # 256 MiB: 64 files of 4 MiB
    python bench/wordcount.py --runs 5          # 5 pairs of runs, alternating; the median
    python bench/wordcount.py --scale           # also 1 GiB in one file, and forced spills

The corpus is made by ../shared/bench/gen_corpus.py when missing; the
reference is ../shared/bench/ref_wordcount.py (override with --shared).
Prints wall time, speed-up against the reference, and the peak RSS of every
process (from wait4's rusage, so nothing is sampled).
"""

import argparse
import heapq
import itertools
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

from txmr.local import twistd
from txmr.core.spec import DEFAULT_MEMORY

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def spawn(args, log, **kwargs):
    return subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, **kwargs)


def reap(process):
    """
    Wait for a child; return its exit code and peak RSS in MiB.
    """
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    return process.returncode, usage.ru_maxrss / 1024


def ensure_corpus(shared, path, files, mib):
    if os.path.isdir(path) and len(os.listdir(path)) == files:
        return
    print(f"generating {files} x {mib} MiB into {path} ...", flush=True)
    subprocess.run([sys.executable, os.path.join(shared, "bench", "gen_corpus.py"), path,
                    "--files", str(files), "--mib", str(mib)], check=True)


def run_reference(shared, corpus, out):
    started = time.perf_counter()
    process = spawn([sys.executable, os.path.join(shared, "bench", "ref_wordcount.py"), corpus,
                     "--out", out], subprocess.DEVNULL)
    code, rss = reap(process)
    if code:
        raise SystemExit(f"the reference failed ({code})")
    return time.perf_counter() - started, rss


def run_txmr(corpus, work, maps, reduces, workers, memory=None):
    """
    A driver and WORKERS workers, started together as a user would start
    them; the workers wait for the driver to listen.
    """
    os.makedirs(work)
    address = f"unix:path={work}/driver.sock"
    args = twistd() + ["--pidfile=", "-n", "txmr-driver", "--input", corpus,
                       "--intermediate", f"{work}/mid", "--output", f"{work}/out",
                       "--mappers", str(maps), "--reducers", str(reduces),
                       "--listen", f"unix:{work}/driver.sock",
                       # As txmr run: the driver exits as soon as its workers heard.
                       "--linger", "0"]
    if memory:
        args += ["--memory", str(memory)]
    started = time.perf_counter()
    with open(f"{work}/driver.log", "wb") as log:
        driver = spawn(args, log)
    procs = []
    for i in range(workers):
        with open(f"{work}/worker-{i}.log", "wb") as log:
            procs.append(spawn(twistd() + ["--pidfile=", "-n", "txmr-worker", "--driver", address],
                               log))
    code, driver_rss = reap(driver)
    elapsed = time.perf_counter() - started
    worker_rss = [reap(p)[1] for p in procs]
    if code:
        with open(f"{work}/driver.log") as f:
            raise SystemExit(f"txmr failed ({code}):\n{f.read()[-3000:]}")
    return elapsed, driver_rss, worker_rss


REDUCE_ALONE = """
import sys
from txmr.core.spec import TaskSpec
from txmr.core.states import Kind
from txmr.data.run import run_task
from txmr.job import load_job
intermediate, output, n_map, memory = sys.argv[1:]
job = load_job("txmr.examples.wordcount")
# n_reduce: a reduce task reads only its own partition, whatever their number.
run_task(job, TaskSpec(kind=Kind.REDUCE, index=0, attempt=0, job=job.name,
                       intermediate=intermediate, output=output, n_map=int(n_map), n_reduce=1,
                       memory=int(memory) << 20))
"""


def reduce_alone(work, maps, memory):
    """
    Run reduce task 0 of a finished job again, alone in a new process: its
    peak RSS is the reduce side's, apart from the map tasks a worker also ran.
    """
    out = os.path.join(work, "reduce-alone")
    os.makedirs(out)
    process = spawn([sys.executable, "-c", REDUCE_ALONE, os.path.join(work, "mid"), out,
                     str(maps), str(memory or DEFAULT_MEMORY >> 20)], subprocess.DEVNULL)
    code, rss = reap(process)
    if code:
        raise SystemExit("the reduce task run alone failed")
    return rss


def same_output(reference, out_dir):
    """
    Compare line by line, streaming: each file is sorted, so a merge of
    txmr's files must equal the reference.  (Reading them whole would grow
    this process, and every process it starts afterwards begins as a copy
    of it, which would show in their peak RSS.)
    """
    names = sorted(os.listdir(out_dir))
    files = [open(os.path.join(out_dir, n), "rb") for n in names]
    try:
        with open(reference, "rb") as ref:
            merged = heapq.merge(*files, key=lambda line: line.split(b"\t", 1)[0])
            for expected, got in itertools.zip_longest(ref, merged):
                if expected != got:
                    return False
        return True
    finally:
        for f in files:
            f.close()


def row(name, secs, base, rss):
    print(f"| {name} | {secs:.2f} | {base / secs:.2f}x | {rss} |", flush=True)


def bench(shared, corpus, work, label, maps, reduces, workers, memory=None, reference=None):
    if reference is None:
        ref_out = os.path.join(work, f"ref-{label}.txt")
        ref_secs, ref_rss = run_reference(shared, corpus, ref_out)
        row(f"{label}: one process (reference)", ref_secs, ref_secs, f"{ref_rss:.0f} MiB")
        reference = (ref_out, ref_secs)
    ref_out, ref_secs = reference
    secs, driver_rss, worker_rss = run_txmr(corpus, os.path.join(work, label), maps, reduces,
                                            workers, memory)
    reduce_rss = reduce_alone(os.path.join(work, label), maps, memory)
    ok = same_output(ref_out, os.path.join(work, label, "out"))
    row(f"{label}: txmr, {workers} workers, -m {maps} -r {reduces}"
        + (f" --memory {memory}" if memory else ""), secs, ref_secs,
        f"driver {driver_rss:.0f} MiB, workers {', '.join(f'{r:.0f}' for r in worker_rss)} MiB;"
        f" a reduce task alone {reduce_rss:.0f} MiB")
    if not ok:
        raise SystemExit(f"{label}: txmr's output differs from the reference")
    return reference, ref_secs / secs


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    p.add_argument("--shared", default=os.path.join(os.path.dirname(ROOT), "shared"))
    p.add_argument("--data", default=os.path.join(HERE, "data"))
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--scale", action="store_true", help="also 1 GiB in one file, and spills")
    p.add_argument("--runs", type=int, default=1,
                   help="pairs of runs (reference, then txmr) on 256 MiB; prints the median")
    a = p.parse_args()
    work = tempfile.mkdtemp(prefix="txmr-bench-")
    try:
        corpus = os.path.join(a.data, "corpus-256")
        ensure_corpus(a.shared, corpus, 64, 4)
        print("| run | wall s | vs one process | peak RSS |\n|---|---|---|---|")
        speedups = []
        for run in range(a.runs):
            reference, speedup = bench(a.shared, corpus, work, "256 MiB", 8, 2, a.workers)
            speedups.append(speedup)
            shutil.rmtree(os.path.join(work, "256 MiB"))
        if a.runs > 1:
            print(f"\nmedian speed-up over {a.runs} pairs of runs: "
                  f"{statistics.median(speedups):.2f}x (from {min(speedups):.2f}x "
                  f"to {max(speedups):.2f}x; target 1.6x)", flush=True)
        if a.scale:
            bench(a.shared, corpus, work, "256 MiB spilling", 8, 2, a.workers, memory=8,
                  reference=reference)
            big = os.path.join(a.data, "corpus-1g")
            ensure_corpus(a.shared, big, 1, 1024)
            reference, _ = bench(a.shared, big, work, "1 GiB one file", 8, 2, a.workers)
            bench(a.shared, big, work, "1 GiB spilling", 8, 2, a.workers, memory=8,
                  reference=reference)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
