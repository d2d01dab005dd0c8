#!/usr/bin/env python3
"""
Word count: txmr (a driver and 2 workers through twistd) against the
one-process reference, in the same run, on the same data, same output.

    python bench/wordcount.py                   # 256 MiB: 64 files of 4 MiB
    python bench/wordcount.py --runs 5          # 5 pairs of runs, alternating; the median
    python bench/wordcount.py --scale           # also 1 GiB in one file, and forced spills
    python bench/wordcount.py --engines txmr,spark   # also txmr run --engine spark, local[2]
    python bench/wordcount.py --shared-nothing  # txmr's workers share no directory

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
from txmr.data.success import output_names

HERE = os.path.dirname(os.path.abspath(__file__))
# --shared-nothing: the driver has no --intermediate; each worker keeps its
# map output in a work directory of its own and serves it over HTTP.
SHARED_NOTHING = False
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
    intermediate = [] if SHARED_NOTHING else ["--intermediate", f"{work}/mid"]
    args = twistd() + ["--pidfile=", "-n", "txmr-driver", "--input", corpus,
                       *intermediate, "--output", f"{work}/out",
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
            own = ["--work-dir", f"{work}/worker-{i}"] if SHARED_NOTHING else []
            procs.append(spawn(twistd() + ["--pidfile=", "-n", "txmr-worker", "--driver", address,
                                           *own], log))
    code, driver_rss = reap(driver)
    elapsed = time.perf_counter() - started
    worker_rss = [reap(p)[1] for p in procs]
    if code:
        with open(f"{work}/driver.log") as f:
            raise SystemExit(f"txmr failed ({code}):\n{f.read()[-3000:]}")
    return elapsed, driver_rss, worker_rss


def txmr_command():
    path = os.path.join(os.path.dirname(sys.executable), "txmr")
    return [path] if os.path.exists(path) else [sys.executable, "-m", "txmr.cli"]


def run_spark(corpus, work, maps, reduces, workers, memory=None):
    """
    C{txmr run --engine spark} on a local[WORKERS] master, as a user runs
    it: the time includes Spark's start-up (a JVM and its Python workers).
    The peak RSS is the command's Python process (the driver side); the
    JVM and Spark's Python workers are its children.
    """
    os.makedirs(work)
    args = txmr_command() + ["run", "--engine", "spark", "--master", f"local[{workers}]",
                             "-i", corpus, "-o", f"{work}/out", "-m", str(maps),
                             "-r", str(reduces)]
    if memory:
        args += ["--memory", str(memory)]
    started = time.perf_counter()
    with open(f"{work}/spark.log", "wb") as log:
        code, rss = reap(spawn(args, log))
    elapsed = time.perf_counter() - started
    if code:
        with open(f"{work}/spark.log") as f:
            raise SystemExit(f"txmr --engine spark failed ({code}):\n{f.read()[-3000:]}")
    return elapsed, rss


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
    # The job's files, not _SUCCESS (which lists them).
    names = output_names(os.listdir(out_dir))
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


def bench(shared, corpus, work, label, maps, reduces, workers, memory=None, reference=None,
          engines=("txmr",)):
    """
    The reference (unless given), then each engine, on the same corpus;
    return the reference and C{{engine: speed-up}}.
    """
    if reference is None:
        ref_out = os.path.join(work, f"ref-{label}.txt")
        ref_secs, ref_rss = run_reference(shared, corpus, ref_out)
        row(f"{label}: one process (reference)", ref_secs, ref_secs, f"{ref_rss:.0f} MiB")
        reference = (ref_out, ref_secs)
    ref_out, ref_secs = reference
    speedups = {}
    for engine in engines:
        run = bench_spark if engine == "spark" else bench_txmr
        speedups[engine] = run(corpus, work, label, maps, reduces, workers, memory, reference)
    return reference, speedups


def bench_spark(corpus, work, label, maps, reduces, workers, memory, reference):
    ref_out, ref_secs = reference
    where = os.path.join(work, label + " spark")
    secs, rss = run_spark(corpus, where, maps, reduces, workers, memory)
    ok = same_output(ref_out, os.path.join(where, "out"))
    row(f"{label}: txmr --engine spark, local[{workers}], -m {maps} -r {reduces}"
        + (f" --memory {memory}" if memory else ""), secs, ref_secs,
        f"txmr run (driver side) {rss:.0f} MiB")
    if not ok:
        raise SystemExit(f"{label}: Spark's output differs from the reference")
    shutil.rmtree(where)
    return ref_secs / secs


def bench_txmr(corpus, work, label, maps, reduces, workers, memory, reference):
    ref_out, ref_secs = reference
    secs, driver_rss, worker_rss = run_txmr(corpus, os.path.join(work, label), maps, reduces,
                                            workers, memory)
    # Shared-nothing: no map output is left in one place to run a reduce on.
    reduce_rss = (None if SHARED_NOTHING
                  else reduce_alone(os.path.join(work, label), maps, memory))
    ok = same_output(ref_out, os.path.join(work, label, "out"))
    row(f"{label}: txmr, {workers} workers" + (" sharing no directory" if SHARED_NOTHING else "")
        + f", -m {maps} -r {reduces}"
        + (f" --memory {memory}" if memory else ""), secs, ref_secs,
        f"driver {driver_rss:.0f} MiB, workers {', '.join(f'{r:.0f}' for r in worker_rss)} MiB"
        + (f"; a reduce task alone {reduce_rss:.0f} MiB" if reduce_rss is not None else ""))
    if not ok:
        raise SystemExit(f"{label}: txmr's output differs from the reference")
    return ref_secs / secs


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    p.add_argument("--shared", default=os.path.join(os.path.dirname(ROOT), "shared"))
    p.add_argument("--data", default=os.path.join(HERE, "data"))
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--scale", action="store_true", help="also 1 GiB in one file, and spills")
    p.add_argument("--runs", type=int, default=1,
                   help="pairs of runs (reference, then txmr) on 256 MiB; prints the median")
    p.add_argument("--engines", default="txmr",
                   help="comma-separated: txmr (a driver and workers), spark (txmr run "
                        "--engine spark on local[WORKERS]); each runs on the same corpus, "
                        "after the reference")
    p.add_argument("--corpus", help="an existing input directory instead of the 256 MiB "
                                    "corpus (to try the benchmark on a small one)")
    p.add_argument("--shared-nothing", action="store_true",
                   help="txmr's driver without --intermediate: each worker keeps its map "
                        "output in a work directory of its own and reducers fetch it over HTTP")
    a = p.parse_args()
    global SHARED_NOTHING
    SHARED_NOTHING = a.shared_nothing
    engines = [e.strip() for e in a.engines.split(",") if e.strip()]
    for engine in engines:
        if engine not in ("txmr", "spark"):
            p.error(f"--engines: unknown engine {engine!r} (txmr, spark)")
    work = tempfile.mkdtemp(prefix="txmr-bench-")
    try:
        corpus = a.corpus or os.path.join(a.data, "corpus-256")
        label = "256 MiB" if a.corpus is None else os.path.basename(a.corpus.rstrip("/"))
        if a.corpus is None:
            ensure_corpus(a.shared, corpus, 64, 4)
        print("| run | wall s | vs one process | peak RSS |\n|---|---|---|---|")
        speedups = {engine: [] for engine in engines}
        for run in range(a.runs):
            reference, speedup = bench(a.shared, corpus, work, label, 8, 2, a.workers,
                                       engines=engines)
            for engine, value in speedup.items():
                speedups[engine].append(value)
            if os.path.exists(os.path.join(work, label)):
                shutil.rmtree(os.path.join(work, label))
        for engine, values in speedups.items():
            if a.runs > 1:
                target = "; target 1.6x" if engine == "txmr" else ""
                print(f"\n{engine}: median speed-up over {a.runs} runs against the reference: "
                      f"{statistics.median(values):.2f}x (from {min(values):.2f}x "
                      f"to {max(values):.2f}x{target})", flush=True)
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
