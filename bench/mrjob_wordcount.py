#!/usr/bin/env python3
"""
An mrjob word count: mrjob's local runner (2 cores) against txmr (a
driver and 2 workers, txmr run), in the same run, on the same job file
(bench/mr_wordcount_job.py) and the 64 MiB first quarter of the 256 MiB
corpus; both against the one-process reference word count.

    python bench/mrjob_wordcount.py                  # 16 files of 4 MiB
    python bench/mrjob_wordcount.py --corpus DIR     # a small corpus, to try it

The corpus is made by ../shared/bench/gen_corpus.py when missing, as
bench/wordcount.py makes it; the reference is ../shared/bench/ref_wordcount.py.
Both engines' output (JSON "word"<TAB>count lines, as mrjob writes them)
must equal the reference's counts, or the run fails.  Prints wall time,
each against the reference, txmr against mrjob, and peak RSS (wait4's).
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
JOB = os.path.join(HERE, "mr_wordcount_job.py")
TXMR = [sys.executable, "-m", "txmr.cli"]


def timed(args, log):
    """
    Run a command; return its wall time and peak RSS in MiB (of it and its
    waited-for children, as wait4 reports them).
    """
    started = time.perf_counter()
    with open(log, "wb") as out:
        process = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, cwd=ROOT)
        _, status, usage = os.wait4(process.pid, 0)
    secs = time.perf_counter() - started
    code = os.waitstatus_to_exitcode(status)
    if code:
        with open(log, errors="replace") as f:
            tail = f.read()[-3000:]
        raise SystemExit(f"{args[:4]} failed ({code}):\n{tail}")
    return secs, usage.ru_maxrss / 1024


def quarter(corpus, work):
    """
    The first quarter of the corpus's files (sorted by name), as links.
    """
    names = sorted(n for n in os.listdir(corpus) if not n.startswith((".", "_")))
    part = os.path.join(work, "corpus")
    os.makedirs(part)
    for name in names[:max(1, len(names) // 4)]:
        os.symlink(os.path.join(os.path.abspath(corpus), name), os.path.join(part, name))
    return part


def counts_of(out_dir, prefix):
    counts = {}
    for name in sorted(os.listdir(out_dir)):
        if name.startswith(prefix):
            with open(os.path.join(out_dir, name), "rb") as f:
                for line in f:
                    key, value = line.split(b"\t", 1)
                    counts[json.loads(key)] = int(value)
    return counts


def reference_counts(path):
    with open(path, encoding="utf-8") as f:
        return {w: int(c) for w, c in (line.rstrip("\n").split("\t") for line in f)}


def row(name, secs, base, rss):
    print(f"| {name} | {secs:.2f} | {base / secs:.2f}x | {rss:.0f} MiB |", flush=True)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    p.add_argument("--shared", default=os.path.join(os.path.dirname(ROOT), "shared"))
    p.add_argument("--data", default=os.path.join(HERE, "data"))
    p.add_argument("--workers", type=int, default=2, help="txmr workers and mrjob cores")
    p.add_argument("--corpus", help="an existing input directory instead of the 256 MiB "
                                    "corpus (its first quarter is used too)")
    a = p.parse_args()
    corpus = a.corpus or os.path.join(a.data, "corpus-256")
    if a.corpus is None and not (os.path.isdir(corpus) and len(os.listdir(corpus)) == 64):
        subprocess.run([sys.executable, os.path.join(a.shared, "bench", "gen_corpus.py"),
                        corpus, "--files", "64", "--mib", "4"], check=True)
    work = tempfile.mkdtemp(prefix="txmr-mrjob-bench-")
    try:
        part = quarter(corpus, work)
        size = sum(os.path.getsize(os.path.join(part, n)) for n in os.listdir(part))
        print(f"{len(os.listdir(part))} files, {size / (1 << 20):.1f} MiB\n")
        print("| run | wall s | vs one process | peak RSS |\n|---|---|---|---|")
        ref_out = os.path.join(work, "ref.txt")
        ref_secs, ref_rss = timed([sys.executable, os.path.join(a.shared, "bench",
                                                                "ref_wordcount.py"),
                                   part, "--out", ref_out], os.path.join(work, "ref.log"))
        row("one process (reference)", ref_secs, ref_secs, ref_rss)
        expected = reference_counts(ref_out)
        mr_out = os.path.join(work, "mrjob-out")
        mr_secs, mr_rss = timed([sys.executable, JOB, "-r", "local", "--no-conf",
                                 "--num-cores", str(a.workers), "--output-dir", mr_out,
                                 "--no-cat-output", part], os.path.join(work, "mrjob.log"))
        row(f"mrjob local runner, {a.workers} cores", mr_secs, ref_secs, mr_rss)
        if counts_of(mr_out, "part-") != expected:
            raise SystemExit("mrjob's output differs from the reference")
        tx_out = os.path.join(work, "txmr-out")
        tx_secs, tx_rss = timed(TXMR + ["run", JOB, "-i", part, "-o", tx_out, "-w",
                                        str(a.workers), "-m", "8", "-r", "2"],
                                os.path.join(work, "txmr.log"))
        row(f"txmr run, {a.workers} workers, -m 8 -r 2", tx_secs, ref_secs, tx_rss)
        if counts_of(tx_out, "out-") != expected:
            raise SystemExit("txmr's output differs from the reference")
        print(f"\ntxmr against mrjob's local runner: {mr_secs / tx_secs:.2f}x "
              f"({mr_secs:.2f}s / {tx_secs:.2f}s)", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
