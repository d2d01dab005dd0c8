"""
txmr run --engine spark: the same job on PySpark (a local[2] master), whose
output directory must be byte for byte that of txmr's engine, with the same
counters.

Spark takes seconds to start, so the comparisons share one Spark session
(started as C{txmr run --engine spark} starts its own), and only the cases
about the command line itself start C{txmr run --engine spark} processes.
Each case runs txmr's engine (C{txmr run}, a driver and two workers) on the
same input, in the same test.
"""

import gzip
import io
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from functools import partial

from twisted.trial import unittest

from tests.cluster import EXAMPLES, JOBS, write_corpus

TXMR = [os.path.join(os.path.dirname(sys.executable), "txmr")]
if not os.path.exists(TXMR[0]):
    TXMR = [sys.executable, "-m", "txmr.cli"]
HERE = os.path.dirname(os.path.abspath(__file__))


def _why_skip():
    try:
        import pyspark  # noqa: F401
    except ImportError:
        return "PySpark is not installed (pip install 'txmr[spark]')"
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        return "no Java runtime (java on PATH or JAVA_HOME) for Spark"
    return None


SKIP = _why_skip()


def directory_bytes(path):
    """
    Every file of a directory (names starting with . are txmr's lock and
    temporary files, none left after a run) with its bytes.
    """
    return {name: open(os.path.join(path, name), "rb").read()
            for name in sorted(os.listdir(path)) if not name.startswith(".")}


def printed_counters(stdout):
    """
    The C{group.name = value} lines txmr run printed.
    """
    return re.findall(r"^  (\S+ = \S+)$", stdout, re.M)


def corpus(directory):
    """
    Small files, and one large enough that txmr's plan cuts it between
    lines across map tasks.
    """
    write_corpus(directory, files=3, lines=300)
    with open(os.path.join(directory, "big.txt"), "w") as f:
        for n in range(4000):
            f.write(f"line {n % 97} of the big file, word{n % 13} Again\r\n" if n % 5 == 0
                    else f"line {n % 89} of the big file, word{n % 11}\n")
        f.write("a last line without its newline")


_shared = []
_finished = set()


def shared_session():
    """
    One local[2] Spark session for every test of this module that can
    share it (trial has no setUpClass), started as C{txmr run --engine
    spark} starts its own, and stopped when the tests' process exits.

    @return: the session, and the directory where jobs/marked.py marks
        the tasks it runs.
    """
    if not _shared:
        import atexit
        import tempfile

        from txmr.job import load_job
        from txmr.spark.session import start_session
        from txmr.spark.options import SparkRun

        marks = tempfile.mkdtemp(prefix="txmr-spark-marks-")
        saved = dict(os.environ)
        # Spark's Python workers inherit the environment the JVM starts with.
        os.environ.update(TXMR_TEST_DIR=marks, TXMR_SLOW_SECONDS="0")
        try:
            job = load_job("txmr.examples.wordcount")
            spark = start_session(SparkRun(job.name, "", "", "local[2]"), job)
        finally:
            os.environ.clear()
            os.environ.update(saved)
        atexit.register(shutil.rmtree, marks, True)
        atexit.register(lambda: _shared and _shared[0].stop())
        _shared.extend([spark, marks])
    return _shared


class SparkTestCase(unittest.TestCase):
    """
    Runs C{txmr run} (txmr's engine) as a user does, for the comparisons.
    """

    def setUp(self):
        self.base = os.path.abspath(self.mktemp())
        os.makedirs(self.base)

    def txmr(self, *args, timeout=300, env=None):
        return subprocess.run(TXMR + list(args), capture_output=True, text=True,
                              env=dict(os.environ, **(env or {})), timeout=timeout,
                              stdin=subprocess.DEVNULL)

    def run_txmr_engine(self, job, source, out, maps, reduces, *flags, env=None):
        result = self.txmr("run", job, "-i", source, "-o", out, "-w", "2", "-m", str(maps),
                           "-r", str(reduces), *flags, env=env)
        self.assertEqual(result.returncode, 0, result.stderr + result.stdout)
        return result


class SessionTests(SparkTestCase):
    """
    The engine run in one Spark session shared by the class, against txmr's
    engine run as a command.
    """

    timeout = 600
    if SKIP:
        skip = SKIP

    def setUp(self):
        super().setUp()
        self.spark, self.marks = shared_session()
        self.addCleanup(self.done)

    def done(self):
        """
        After the class's last test, stop the session: the tests of other
        modules that run after these need not share the machine with an
        idle JVM.  (A run of some of these tests stops it at exit.)
        """
        _finished.add(self.id())
        if _shared and _finished >= {f"{SessionTests.__module__}.SessionTests.{name}"
                                     for name in dir(SessionTests) if name.startswith("test_")}:
            _shared[0].stop()
            _shared.clear()

    def run_spark(self, job, source, out, maps, reduces, last_reduces=None, listener=None,
                  **kwargs):
        """
        Run C{job} in the shared session; return its result and its counters
        as C{txmr run} prints them (for a job of steps, each step's, then
        their sums).

        @param last_reduces: the reduce tasks of its last step (0: map-only),
            if not C{reduces}.
        @param listener: what hears of the steps (it feeds their bars).
        """
        from txmr.core.counters import lines
        from txmr.spark.engine import run_spark
        from txmr.spark.options import SparkRun

        self.seen = seen = []
        result = run_spark(SparkRun(job, source, out, "local[2]", maps, reduces, **kwargs),
                           progress=seen.append, session=self.spark, listener=listener)
        self.assertTrue(result.ok, f"{result.failure}\n{result.traceback}")
        if listener is None:
            # The bar ends full.
            self.assertEqual(seen[-1]["map"]["finished"], maps)
            self.assertEqual(seen[-1]["reduce"]["finished"],
                             reduces if last_reduces is None else last_reduces)
        printed = lines(result.counters)
        if len(result.steps) > 1:
            printed = [line for step in result.steps for line in lines(step.counters)] + printed
        return result, printed

    def compare(self, job, source, maps=4, reduces=3, flags=(), outputs=None,
                last_reduces=None, listener=None, **kwargs):
        """
        Run C{job} on both engines: the same files, byte for byte, and the
        same counters.

        @param outputs: how many C{out-N} files the job writes, if not
            C{reduces} (a map-only job writes one per map task).
        """
        job = job if "." in job and "/" not in job else os.path.join(HERE, job)
        txmr_out = os.path.join(self.base, "txmr-out")
        spark_out = os.path.join(self.base, "spark-out")
        expected = self.run_txmr_engine(job, source, txmr_out, maps, reduces, *flags,
                                        env={"TXMR_TEST_DIR": self.marks,
                                             "TXMR_SLOW_SECONDS": "0"})
        result, counters = self.run_spark(job, source, spark_out, maps, reduces,
                                          last_reduces=last_reduces, listener=listener,
                                          **kwargs)
        outputs = reduces if outputs is None else outputs
        got = directory_bytes(spark_out)
        self.assertEqual(got["_SUCCESS"], b"".join(b"out-%d\n" % r for r in range(outputs)))
        self.assertEqual(sorted(got), sorted(["_SUCCESS"] + [f"out-{r}" for r in range(outputs)]))
        self.assertEqual(got, directory_bytes(txmr_out), "the same files, _SUCCESS too")
        self.assertEqual(counters, printed_counters(expected.stdout))
        return result, expected

    def test_wordcount(self):
        source = os.path.join(self.base, "in")
        corpus(source)
        # Bytes that are not UTF-8 come out as they went in.
        with open(os.path.join(source, "latin-1.txt"), "wb") as f:
            f.write("caf\xe9 na\xefve caf\xe9\r\n".encode("latin-1") * 20)
        self.compare("txmr.examples.wordcount", source)

    def test_values_in_map_order(self):
        """
        A reduce sees its values in the order txmr's reduce does: by map
        task, then as each map emitted them.
        """
        job = os.path.join(self.base, "ordered.py")
        with open(job, "w") as f:
            f.write("def map(name, line):\n"
                    "    for i, word in enumerate(line.split()):\n"
                    "        yield word.lower(), [name, len(line), i]\n"
                    "def reduce(word, places):\n    yield word, places\n")
        source = os.path.join(self.base, "in")
        corpus(source)
        self.compare(job, source, maps=5, reduces=2)

    def test_wordcount_examples(self):
        self.compare("txmr.examples.wordcount", EXAMPLES, maps=8, reduces=2)

    def test_combiner_counter_list_keys(self):
        source = os.path.join(self.base, "in")
        corpus(source)
        _, expected = self.compare("jobs/combined.py", source)
        self.assertIn("words.lines = ", expected.stdout)
        self.assertIn("txmr.combine_output_records = ", expected.stdout)

    def test_hooks_once_per_task(self):
        source = os.path.join(self.base, "in")
        corpus(source)
        for name in os.listdir(self.marks):
            os.unlink(os.path.join(self.marks, name))
        job = os.path.join(JOBS, "marked.py")
        out = os.path.join(self.base, "spark-only")
        self.run_spark(job, source, out, 4, 3)
        marks = os.listdir(self.marks)
        self.assertEqual(sum(m.startswith("map-run-") for m in marks), 4)
        self.assertEqual(sum(m.startswith("reduce-run-") for m in marks), 3)
        self.compare("jobs/marked.py", source)

    def test_whole_files(self):
        source = os.path.join(self.base, "in")
        corpus(source)
        self.compare("jobs/files.py", source, maps=3, reduces=2)

    def test_bytes(self):
        source = os.path.join(self.base, "in")
        corpus(source)
        with open(os.path.join(source, "binary.bin"), "wb") as f:
            f.write(bytes(range(256)) * 40 + b"\r\n\xff\xfe")
        self.compare("jobs/bytes.py", source, maps=3, reduces=2)

    def test_pairs_without_hooks(self):
        source = os.path.join(self.base, "in")
        corpus(source)
        self.compare("jobs/pairs.py", source, maps=5, reduces=4)

    def test_skip_bad_records(self):
        source = os.path.join(self.base, "in")
        write_corpus(source, files=3)
        with open(os.path.join(source, "in-1.txt"), "a") as f:
            f.write("this line is POISON for the map\nlast clean line\n")
        result, expected = self.compare("jobs/poison.py", source, maps=2, reduces=2,
                                        flags=("--skip-bad-records",), skip_bad_records=True)
        self.assertIn("txmr.skipped_records = 1", expected.stdout)
        [(kind, _, record)] = result.skipped_records
        self.assertEqual((kind, record[0]), ("map", "in-1.txt"))
        # The same record of the same task, as txmr run prints it.
        self.assertEqual([f"skipped bad record: {r}" for r in result.skipped_records],
                         re.findall(r"^skipped bad record: .*$", expected.stdout, re.M))

    def test_bad_record_fails_without_skipping(self):
        from txmr.spark.engine import run_spark
        from txmr.spark.options import SparkRun

        source = os.path.join(self.base, "in")
        write_corpus(source, files=2)
        with open(os.path.join(source, "in-1.txt"), "a") as f:
            f.write("POISON\n")
        out = os.path.join(self.base, "out")
        result = run_spark(SparkRun(os.path.join(JOBS, "poison.py"), source, out, "local[2]",
                                    2, 2), session=self.spark)
        self.assertFalse(result.ok)
        self.assertIn("ValueError: poisoned record", result.failure)
        self.assertIn('poison.py", line', result.traceback)
        self.assertNotIn("\tat org.apache", result.traceback)
        self.assertEqual(directory_bytes(out), {}, "a failed job leaves no output")

    def test_progress_from_status_tracker(self):
        """
        The bar follows Spark's stages as they run, not only at the end.
        """
        job = os.path.join(self.base, "sleepy.py")
        with open(job, "w") as f:
            f.write("import time\n"
                    "def map(name, line):\n    yield name, 1\n"
                    "def map_final():\n    time.sleep(1.5)\n    return ()\n"
                    "def reduce(k, vs):\n    yield k, sum(vs)\n")
        source = os.path.join(self.base, "in")
        write_corpus(source, files=4, lines=10)
        _, _ = self.run_spark(job, source, os.path.join(self.base, "out"), 4, 2)
        seen = self.seen
        running = [c["map"] for c in seen if c["map"]["running"]]
        self.assertTrue(running, seen)
        self.assertTrue(any(c["finished"] < 4 for c in running), running)
        for c in seen:
            self.assertEqual(sum(c["map"].values()), 4)
            self.assertEqual(sum(c["reduce"].values()), 2)

    def test_worker_that_dies(self):
        """
        A Python worker killed by the job (no traceback to show) fails the
        job with Spark's reason, not its JVM stack.
        """
        from txmr.spark.engine import run_spark
        from txmr.spark.options import SparkRun

        out = os.path.join(self.base, "out")
        result = run_spark(SparkRun(os.path.join(JOBS, "always_dies.py"), EXAMPLES, out,
                                    "local[2]", 2, 2), session=self.spark)
        self.assertFalse(result.ok)
        self.assertIn("Python worker exited unexpectedly", result.failure)
        self.assertNotIn("\tat ", result.failure)
        self.assertEqual(directory_bytes(out), {})

    def test_urls_through_hadoop(self):
        """
        Input and output given as URLs are listed, read and written through
        Spark's Hadoop file systems (here file:/, as hdfs:// or s3a://
        would be): the same bytes again.
        """
        source = os.path.join(self.base, "in")
        corpus(source)
        # A name Spark would take for a glob pattern, with a space and a %.
        with open(os.path.join(source, "odd [1] {name} 100%.txt"), "w") as f:
            f.write("an odd name\nfor a file\n")
        txmr_out = os.path.join(self.base, "txmr-out")
        expected = self.run_txmr_engine("txmr.examples.wordcount", source, txmr_out, 4, 3)
        out = os.path.join(self.base, "url-out")
        _, counters = self.run_spark("txmr.examples.wordcount", "file://" + source,
                                          "file://" + out, 4, 3)
        got = directory_bytes(out)
        self.assertEqual(got["_SUCCESS"], b"out-0\nout-1\nout-2\n")
        self.assertEqual(got, directory_bytes(txmr_out))
        self.assertEqual(sorted(os.listdir(out)), ["_SUCCESS", "out-0", "out-1", "out-2"])
        self.assertEqual(counters, printed_counters(expected.stdout))
        # Bytes that are not UTF-8 reach the map as they are.
        with open(os.path.join(source, "binary.bin"), "wb") as f:
            f.write(bytes(range(256)) * 40 + b"\r\n\xff\xfe")
        self.run_txmr_engine(os.path.join(JOBS, "bytes.py"), source, txmr_out, 3, 2)
        out = os.path.join(self.base, "bytes-out")
        self.run_spark(os.path.join(JOBS, "bytes.py"), "file://" + source, out, 3, 2)
        got = directory_bytes(out)
        self.assertEqual(got, directory_bytes(txmr_out))

    def test_compressed_input(self):
        """
        Gzipped input, in a local directory or at a URL, each file whole and
        decompressed, as txmr's engine reads it: the same output directory
        and counters as txmr's engine on the same files, and the answer of
        the plain files.
        """
        source = os.path.join(self.base, "in")
        corpus(source)
        packed = os.path.join(self.base, "packed")
        os.makedirs(packed)
        for name in os.listdir(source):
            with open(os.path.join(source, name), "rb") as f, \
                    gzip.open(os.path.join(packed, name + ".gz"), "wb") as g:
                g.write(f.read())
        txmr_out = os.path.join(self.base, "txmr-out")
        expected = self.run_txmr_engine("txmr.examples.wordcount", packed, txmr_out, 4, 3)
        plain_out = os.path.join(self.base, "plain-out")
        self.run_txmr_engine("txmr.examples.wordcount", source, plain_out, 4, 3)
        out = os.path.join(self.base, "gz-out")
        _, counters = self.run_spark("txmr.examples.wordcount", packed, out, 4, 3)
        got = directory_bytes(out)
        self.assertEqual(got, directory_bytes(txmr_out))
        self.assertEqual(got, directory_bytes(plain_out))
        same = [c for c in counters if c.startswith(("txmr.map_input", "txmr.reduce_output"))]
        self.assertEqual(same, [c for c in printed_counters(expected.stdout)
                                if c.startswith(("txmr.map_input", "txmr.reduce_output"))])
        # At a URL: Spark hands each file as it is, decompressed by txmr's
        # reader, by its name.
        out = os.path.join(self.base, "gz-url-out")
        _, counters = self.run_spark("txmr.examples.wordcount", "file://" + packed, out, 4, 3)
        self.assertEqual(directory_bytes(out), directory_bytes(txmr_out))
        self.assertEqual(counters, printed_counters(expected.stdout))

    def test_job_options(self):
        """
        The job's own options reach every task, as on txmr's engine: the
        same files and counters.
        """
        self.compare("jobs/options_count.py", EXAMPLES, 3, 2,
                     flags=("--", "--min-count", "3", "--upper"),
                     args=["--min-count", "3", "--upper"])
        with open(os.path.join(self.base, "spark-out", "out-0")) as f:
            lines = f.read().splitlines()
        self.assertTrue(lines and all(line.split("\t")[0].isupper() for line in lines))

    def test_steps(self):
        """
        A job of three steps (the second map-only, the third without a
        map): each step's output, in --intermediate's step-K-out/, and the
        last step's out-R are txmr's engine's, byte for byte, and so are
        each step's counters and their sums.
        """
        from txmr.cli import Progress, print_summary
        from txmr.spark.command import CommandSteps

        source = os.path.join(self.base, "in")
        corpus(source)
        txmr_mid = os.path.join(self.base, "txmr-mid")
        spark_mid = os.path.join(self.base, "spark-mid")
        shown = io.StringIO()
        steps = CommandSteps(lambda: Progress(shown), partial(print_summary, stream=shown),
                             shown)
        result, expected = self.compare(
            "jobs/steps_native.py", source, 3, 2,
            flags=("--intermediate", txmr_mid, "--", "--min-count", "2"),
            intermediate=spark_mid, args=["--min-count", "2"], listener=steps)
        steps.finished(result)
        # What txmr run --engine spark shows: each step named, with its bar
        # and counters, then their sums, as txmr run shows them.
        shown = shown.getvalue()
        job = os.path.join(JOBS, "steps_native.py")
        for k in (1, 2, 3):
            self.assertIn(f"step {k}/3: {job}#step={k}\n", shown)
            self.assertIn(f"step {k}/3: {job}#step={k}\n", expected.stdout)
        self.assertIn("map 3/3 done, 0 running  reduce 0/0 done", shown, "step 2: map-only")
        self.assertIn("all 3 steps:\n", shown)
        self.assertEqual(printed_counters(shown), printed_counters(expected.stdout))
        self.assertEqual(sorted(os.listdir(spark_mid)), ["step-1-out", "step-2-out"])
        for k, outputs in ((1, 2), (2, 3)):
            got = directory_bytes(os.path.join(spark_mid, f"step-{k}-out"))
            self.assertEqual(sorted(got), ["_SUCCESS"] + [f"out-{n}" for n in range(outputs)])
            self.assertEqual(got, directory_bytes(os.path.join(txmr_mid, f"step-{k}-out")),
                             f"step {k}'s output")
        # Every directory a URL: each step's output written by Spark's
        # committer, and read by Spark as the next step's input.
        url_mid, url_out = (os.path.join(self.base, name) for name in ("url-mid", "url-out"))
        self.run_spark(os.path.join(JOBS, "steps_native.py"), "file://" + source,
                       "file://" + url_out, 3, 2, intermediate="file://" + url_mid,
                       args=["--min-count", "2"])
        self.assertEqual(directory_bytes(url_out),
                         directory_bytes(os.path.join(self.base, "txmr-out")))
        for k in (1, 2):
            self.assertEqual(directory_bytes(os.path.join(url_mid, f"step-{k}-out")),
                             directory_bytes(os.path.join(txmr_mid, f"step-{k}-out")))

    def test_failing_step_ends_the_job(self):
        """
        A step that fails ends the job with its task's error, the steps
        after it not run, and no answer in the output, not even an earlier
        run's, as txmr's chain leaves it.
        """
        from txmr.spark.engine import run_spark
        from txmr.spark.options import SparkRun

        job = os.path.join(self.base, "fails_first.py")
        with open(job, "w") as f:
            f.write("from txmr import Step\n"
                    "def words(name, line):\n"
                    "    if 'POISON' in line:\n"
                    "        raise ValueError('no poison in step 1')\n"
                    "    yield line, 1\n"
                    "def total(k, vs):\n    yield k, sum(vs)\n"
                    "def steps():\n"
                    "    return [Step(map=words, reduce=total), Step(reduce=total)]\n")
        source = os.path.join(self.base, "in")
        write_corpus(source, files=2)
        with open(os.path.join(source, "in-1.txt"), "a") as f:
            f.write("POISON\n")
        out = os.path.join(self.base, "out")
        os.makedirs(out)
        for name in ("out-0", "_SUCCESS"):
            with open(os.path.join(out, name), "w") as f:
                f.write("an earlier run's answer\n")
        result = run_spark(SparkRun(job, source, out, "local[2]", 2, 2), session=self.spark)
        self.assertFalse(result.ok)
        self.assertIn("ValueError: no poison in step 1", result.failure)
        self.assertEqual(len(result.steps), 1, "step 2 did not run")
        self.assertEqual(directory_bytes(out), {})

    def test_map_only(self):
        """
        A map-only job (REDUCE = None), and any job with -r 0: map task M
        writes out-M, its pairs in input order, as on txmr's engine, from
        the same splits (here a file cut between lines).  (A map-only step
        is in test_steps, a map-only mrjob job in test_mrjob_files.)
        """
        source = os.path.join(self.base, "in")
        corpus(source)
        self.compare("jobs/maponly.py", source, 4, 3, outputs=4, last_reduces=0)
        out = os.path.join(self.base, "url-out")
        self.run_spark(os.path.join(JOBS, "maponly.py"), source, "file://" + out, 4, 3,
                       last_reduces=0)
        self.assertEqual(directory_bytes(out),
                         directory_bytes(os.path.join(self.base, "txmr-out")))
        self.compare("txmr.examples.wordcount", source, 3, 0, outputs=3)

    def test_total_order(self):
        """
        TOTAL_ORDER: the bounds are sampled by txmr's driver's code from
        the same splits, so each out-R holds the same range of keys, from a
        local input directory or at a URL.
        """
        source = os.path.join(self.base, "in")
        corpus(source)
        self.compare("jobs/sorted_words.py", source, 4, 3)
        spark_out = directory_bytes(os.path.join(self.base, "spark-out"))
        keys = [line.split(b"\t")[0] for r in range(3)
                for line in spark_out[f"out-{r}"].splitlines()]
        self.assertTrue(all(spark_out.values()), "three ranges, none empty")
        self.assertEqual(len(keys), len(set(keys)))
        # Input at a URL: what the sample reads is copied from it first.
        out = os.path.join(self.base, "url-out")
        self.run_spark(os.path.join(JOBS, "sorted_words.py"), "file://" + source, out, 4, 3)
        self.assertEqual(directory_bytes(out), directory_bytes(os.path.join(self.base,
                                                                            "txmr-out")))

    def test_total_order_sample_of_a_url(self):
        """
        The sample of input at a URL reads a copy of only the bytes it
        reads (here, a tenth of each split), and gives txmr's bounds: a
        byte it did not copy would have been read as a key of NULs, sorted
        first.
        """
        from txmr.data.inputs import plan_splits
        from txmr.data.knobs import DEFAULT_KNOBS
        from txmr.data.sampling import sample_bounds
        from txmr.job import load_job
        from txmr.spark import sampling
        from txmr.spark.storage import list_input

        source = os.path.join(self.base, "in")
        os.makedirs(source)
        with open(os.path.join(source, "words.txt"), "w") as f:
            # Lines long enough that a split's sampled lines take more
            # than the copy's first read.
            f.writelines(f"w{n * 7919 % 100000:06d} {'x' * 32}\n" for n in range(100000))
        sc = self.spark.sparkContext
        files = list_input(sc, "file://" + source)
        splits = plan_splits([(f.name, f.size) for f in files], 2)
        job = load_job(os.path.join(JOBS, "sorted_words.py"))
        parsed = job.parse_args([])
        expected = sample_bounds(job, parsed, source, splits, 4, DEFAULT_KNOBS)
        self.assertEqual(len(expected), 3)
        self.assertEqual(sampling.bounds(sc, job, parsed, "file://" + source, files, splits, 4),
                         expected)
        copy = os.path.join(self.base, "copy")
        os.makedirs(copy)
        sampling.copy_sampled(sc, job, files, splits, copy)
        st = os.stat(os.path.join(copy, "words.txt"))
        self.assertEqual(st.st_size, files[0].size)
        self.assertLess(st.st_blocks * 512, files[0].size // 2)

    def test_mrjob_files(self):
        """
        mrjob job files, through txmr's adapter as on txmr's engine: two
        steps (a combiner, a reducer-only step, counters), a map-only job
        written with its output protocol, and the settings each task finds
        in its environment.
        """
        source = os.path.join(self.base, "in")
        corpus(source)
        self.compare("jobs/mr_most_used_word.py", source, 3, 2)
        self.compare("jobs/mr_map_only.py", source, 3, 2, outputs=3, last_reduces=0)
        # Hadoop settings in each task's environment (JOBCONF, -D, --cmdenv,
        # the file a map task reads), as txmr's engine sets them.
        settings = ["-D", "my.command.line=cli", "--cmdenv", "MY_CMDENV=yes"]
        self.compare("jobs/mrjob_jobconf.py", source, 3, 2, flags=["--"] + settings,
                     args=settings)

    def test_refuses_what_would_differ(self):
        """
        What Spark would not run as txmr's engine does is refused before
        anything is written, naming it: mapper_raw given a local copy in
        place of a URL, --intermediate for a job of one step, a job of steps
        on a cluster master with nowhere its hosts share for their output.
        """
        from txmr.spark.engine import run_spark
        from txmr.spark.options import SparkConfigError, SparkRun

        out = os.path.join(self.base, "o")
        for job, source, kwargs, expected in (
                ("mr_raw.py", "file://" + EXAMPLES, {}, "mapper_raw"),
                ("pairs.py", EXAMPLES, {"intermediate": self.base}, "spark.local.dir"),
                ("steps_native.py", EXAMPLES, {"master": "spark://nowhere:7077"},
                 "give --intermediate")):
            run = SparkRun(os.path.join(JOBS, job), source, out, "local[2]")
            for name, value in kwargs.items():
                setattr(run, name, value)
            with self.assertRaises(SparkConfigError) as caught:
                run_spark(run, session=self.spark)
            self.assertIn(expected, str(caught.exception))
            self.assertNotIn("\n", str(caught.exception))
            self.assertFalse(os.path.exists(out), "nothing written")

    def test_output_url_locked_while_the_run_lasts(self):
        """
        A run on an output URL holds it by txmr's store lock (an object
        C{_txmr.lock} there) from before its first step to its end, and
        lets it go however the run ends: done, failed, or on an exception;
        the next run on the URL then starts.
        """
        from txmr.spark.engine import StepListener, run_spark
        from txmr.spark.options import SparkRun

        source, poisoned = (os.path.join(self.base, name) for name in ("in", "poisoned"))
        write_corpus(source, files=2)
        write_corpus(poisoned, files=2)
        with open(os.path.join(poisoned, "in-1.txt"), "a") as f:
            f.write("POISON\n")
        out = os.path.join(self.base, "out")
        url, lock = "file://" + out, os.path.join(out, "_txmr.lock")
        held = []

        class Watch(StepListener):
            def started(self, step):
                holder = None
                if os.path.exists(lock):
                    with open(lock) as f:
                        holder = json.load(f)["who"]
                held.append(holder)

        def run(job, source, listener=None):
            held.clear()
            try:
                return run_spark(SparkRun(os.path.join(JOBS, job), source, url, "local[2]", 2,
                                          2), session=self.spark, listener=listener or Watch())
            finally:
                self.held_then_released(held, lock)

        result = run("poison.py", poisoned)
        self.assertFalse(result.ok)
        self.assertEqual([n for n in os.listdir(out) if not n.startswith(".")], [])
        result = run("pairs.py", source)
        self.assertTrue(result.ok, result.failure)
        self.assertEqual(sorted(os.listdir(out)), ["_SUCCESS", "out-0", "out-1"])

        class Raises(Watch):
            def started(self, step):
                super().started(step)
                raise RuntimeError("the listener fails")

        with self.assertRaises(RuntimeError):
            run("pairs.py", source, Raises())
        result = run("pairs.py", source)
        self.assertTrue(result.ok, result.failure)
        self.assertEqual(sorted(os.listdir(out)), ["_SUCCESS", "out-0", "out-1"])

    def held_then_released(self, held, lock):
        """
        The run's one step found the output held by the run, and the run
        let it go at its end.
        """
        self.assertEqual(len(held), 1, held)
        self.assertTrue(held[0] and held[0].startswith("a txmr spark run of "),
                        f"the output is held while the step runs: {held}")
        self.assertFalse(os.path.exists(lock), "released at the end")

    def test_refuses_features_it_was_not_written_for(self):
        """
        A feature the job loader grew after this engine (a field of the
        loaded job that it does not know, set) is refused, not ignored.
        """
        from txmr.job import load_job
        from txmr.spark.options import SparkConfigError, check_supported

        job = load_job(os.path.join(JOBS, "pairs.py"))
        check_supported(job)
        job.some_new_feature = True
        with self.assertRaises(SparkConfigError) as caught:
            check_supported(job)
        self.assertIn("some_new_feature", str(caught.exception))


class CommandTests(SparkTestCase):
    """
    C{txmr run --engine spark} as a user runs it: few cases, each starts
    Spark.
    """

    timeout = 600

    def test_wordcount_command(self):
        if SKIP:
            raise unittest.SkipTest(SKIP)
        out = os.path.join(self.base, "spark")
        result = self.txmr("run", "--engine", "spark", "-w", "2", "-i", EXAMPLES, "-o", out,
                           "-m", "3", "-r", "2")
        self.assertEqual(result.returncode, 0, result.stderr + result.stdout)
        self.assertIn("map 3/3 done", result.stdout, "txmr's progress lines")
        self.assertIn("reduce 2/2 done", result.stdout)
        self.assertRegex(result.stdout, r"finished in \d+\.\d+s")
        self.assertNotRegex(result.stderr, r"(?m)^\S+ \S+ (INFO|WARN|ERROR) |log4j",
                            "Spark's log stays quiet")
        expected = self.run_txmr_engine("txmr.examples.wordcount", EXAMPLES,
                                        os.path.join(self.base, "txmr"), 3, 2)
        got = directory_bytes(out)
        self.assertEqual(got, directory_bytes(os.path.join(self.base, "txmr")))
        self.assertEqual(printed_counters(result.stdout), printed_counters(expected.stdout))

    def test_failing_job_shows_python_traceback(self):
        if SKIP:
            raise unittest.SkipTest(SKIP)
        out = os.path.join(self.base, "out")
        result = self.txmr("run", "--engine", "spark", "--master", "local[2]",
                           os.path.join(JOBS, "reduce_raises.py"), "-i", EXAMPLES, "-o", out,
                           "--spark-conf", "spark.sql.shuffle.partitions=2")
        self.assertEqual(result.returncode, 1, result.stderr + result.stdout)
        self.assertIn("txmr: reduce task ", result.stderr)
        self.assertIn("ValueError: cannot reduce", result.stderr)
        self.assertIn("Traceback (most recent call last):", result.stderr)
        self.assertIn('reduce_raises.py", line', result.stderr)
        self.assertNotIn("\tat org.apache", result.stderr, "no JVM stack")
        self.assertRegex(result.stdout, r"failed in \d+\.\d+s")
        self.assertFalse(os.path.exists(os.path.join(out, "_SUCCESS")))
        self.assertEqual([n for n in os.listdir(out) if not n.startswith(".")], [])
        # A map's record error: the job's own error, as a worker tells it,
        # not txmr's RecordError around it.
        result = self.txmr("run", "--engine", "spark", "--master", "local[2]",
                           os.path.join(JOBS, "raises.py"), "-i", EXAMPLES, "-o", out)
        self.assertEqual(result.returncode, 1, result.stderr + result.stdout)
        self.assertIn("txmr: map task ", result.stderr)
        self.assertIn("ValueError: cannot map", result.stderr)
        self.assertIn('raises.py", line', result.stderr)
        self.assertNotIn("RecordError", result.stderr)

    def test_cluster_master(self):
        """
        A master that is not local[N] (here local-cluster: a Spark master
        and executors in JVMs of their own) gets txmr and the job file
        shipped to its executors, whose Python is theirs, not ours.
        """
        if SKIP:
            raise unittest.SkipTest(SKIP)
        out = os.path.join(self.base, "spark")
        job = os.path.join(JOBS, "combined.py")
        result = self.txmr("run", "--engine", "spark", "--master", "local-cluster[1,1,1024]",
                           job, "-i", EXAMPLES, "-o", out, "-m", "3", "-r", "2")
        self.assertEqual(result.returncode, 0, result.stderr + result.stdout)
        expected = self.run_txmr_engine(job, EXAMPLES, os.path.join(self.base, "txmr"), 3, 2)
        got = directory_bytes(out)
        self.assertEqual(got, directory_bytes(os.path.join(self.base, "txmr")))
        self.assertEqual(printed_counters(result.stdout), printed_counters(expected.stdout))

    def test_output_url_held_by_a_txmr_run_is_refused(self):
        """
        An output URL that a txmr run holds (its C{_txmr.lock}) is refused
        to a Spark run, in one line naming the lock, exit code 2, before
        anything in it is removed or written: the txmr run then ends with
        its own output alone.
        """
        if SKIP:
            raise unittest.SkipTest(SKIP)
        source, marks = (os.path.join(self.base, name) for name in ("in", "marks"))
        write_corpus(source, files=2)
        os.makedirs(marks)
        out = os.path.join(self.base, "out")
        url = "file://" + out
        # Its reduces wait for a file "go": it surely holds the URL meanwhile.
        holder = subprocess.Popen(
            TXMR + ["run", os.path.join(JOBS, "gated_reduce.py"), "-i", source, "-o", url,
                    "-w", "1", "-m", "2", "-r", "2"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            text=True, env=dict(os.environ, TXMR_TEST_DIR=marks))
        self.addCleanup(lambda: holder.poll() is None and holder.kill())
        deadline = time.monotonic() + 120
        while not any(n.startswith("reducing-") for n in os.listdir(marks)):
            if holder.poll() is not None:
                self.fail(f"the txmr run ended: {holder.stdout.read()}")
            self.assertLess(time.monotonic(), deadline, "the txmr run reached its reduces")
            time.sleep(0.1)

        def files():
            return {os.path.relpath(os.path.join(d, n), out): open(os.path.join(d, n), "rb").read()
                    for d, _, names in os.walk(out) for n in names}

        before = files()
        self.assertIn("_txmr.lock", before)
        result = self.txmr("run", "--engine", "spark", "-i", EXAMPLES, "-o", url, "-m", "2",
                           "-r", "2")
        self.assertEqual(result.returncode, 2, result.stderr + result.stdout)
        self.assertEqual(result.stderr.strip().splitlines(), [result.stderr.strip()])
        self.assertIn(f"txmr: file://{out} is in use by a txmr run of ", result.stderr)
        self.assertIn(f"if that run is gone, remove file://{out}/_txmr.lock", result.stderr)
        self.assertEqual(files(), before, "nothing removed or written")
        open(os.path.join(marks, "go"), "w").close()
        output, _ = holder.communicate(timeout=120)
        self.assertEqual(holder.returncode, 0, output)
        self.assertEqual(sorted(os.listdir(out)), ["_SUCCESS", "out-0", "out-1"])
        expected = os.path.join(self.base, "expected")
        self.run_txmr_engine("txmr.examples.wordcount", source, expected, 2, 2)
        self.assertEqual(directory_bytes(out), directory_bytes(expected))

    def test_output_on_s3_held_by_another_run_is_refused(self):
        """
        An object store's URL held by another run (its C{_txmr.lock}, as a
        txmr run on this host writes it) is refused to a Spark run, in one
        line naming the lock, exit code 2, with no object removed or
        written: an earlier run's answer stays as it was.
        """
        if SKIP:
            raise unittest.SkipTest(SKIP)
        from tests.s3_server import S3Server

        s3 = S3Server(self, self.base)
        fs = s3.filesystem()
        fs.mkdir("txmr")
        fs.pipe("txmr/out/out-0", b"an earlier run's answer\n")
        fs.pipe("txmr/out/_SUCCESS", b"out-0\n")
        here = {"id": "1", "who": f"a txmr run of wordcount (pid {os.getpid()} on "
                                  f"{socket.gethostname()})",
                "host": socket.gethostname(), "pid": os.getpid(), "intermediate": None,
                "since": time.time()}
        fs.pipe("txmr/out/_txmr.lock", json.dumps(here).encode())

        def objects():
            return {path: fs.cat(path) for path in fs.find("txmr/out")}

        before = objects()
        result = self.txmr("run", "--engine", "spark", "-i", EXAMPLES, "-o", "s3://txmr/out",
                           "-m", "2", "-r", "2", env=s3.env())
        self.assertEqual(result.returncode, 2, result.stderr + result.stdout)
        self.assertEqual(result.stderr.strip().splitlines(),
                         [f"txmr: s3://txmr/out is in use by {here['who']}; if that run is "
                          f"gone, remove s3://txmr/out/_txmr.lock"])
        self.assertEqual(objects(), before, "nothing removed or written")
        # Its holder gone, the run takes the URL, and lets it go at its end,
        # even when Spark cannot write there (no s3:// file system in the
        # JVM, as here): no lock of its own is left behind.
        fs.rm_file("txmr/out/_txmr.lock")
        result = self.txmr("run", "--engine", "spark", "-i", EXAMPLES, "-o", "s3://txmr/out",
                           "-m", "2", "-r", "2", env=s3.env())
        self.assertFalse(fs.exists("txmr/out/_txmr.lock"), result.stderr)
        self.assertNotIn("Traceback", result.stderr, "refused in one line, or done")

    def test_without_pyspark(self):
        """
        Without PySpark the command says how to install it, in one line
        (PySpark hidden here behind a module that cannot be imported).
        """
        hidden = os.path.join(self.base, "hide")
        os.makedirs(os.path.join(hidden, "pyspark"))
        with open(os.path.join(hidden, "pyspark", "__init__.py"), "w") as f:
            f.write("raise ImportError('no pyspark here')\n")
        result = self.txmr("run", "--engine", "spark", "-i", EXAMPLES,
                           "-o", os.path.join(self.base, "out"), env={"PYTHONPATH": hidden})
        self.assertEqual(result.returncode, 2)
        self.assertEqual(result.stderr.strip().splitlines(),
                         ["txmr: --engine spark needs PySpark and Java: pip install "
                          "'txmr[spark]' (and a Java runtime, 17 or later)"])

    def test_refuses_what_spark_cannot_honour(self):
        """
        Flags that mean nothing on Spark fail at once, saying what to do,
        before Spark starts.
        """
        try:
            import pyspark  # noqa: F401
        except ImportError:
            raise unittest.SkipTest("PySpark is not installed")
        out = os.path.join(self.base, "out")
        for extra, expected in (
                (["--intermediate", self.base], "spark.local.dir"),
                (["--task-timeout", "5"], "--task-timeout"),
                (["-r", "-1"], "--reducers must be at least 0"),
                (["--spark-conf", "nonsense"], "expected KEY=VALUE"),
                (["--", "--min-count", "3"], "--min-count")):
            result = self.txmr("run", "--engine", "spark", "-i", EXAMPLES, "-o", out, *extra,
                               timeout=60)
            self.assertEqual(result.returncode, 2, extra)
            self.assertIn(expected, result.stderr)
            self.assertEqual(len(result.stderr.strip().splitlines()), 1, result.stderr)
        self.assertFalse(os.path.exists(out))

    def test_spark_flags_need_spark_engine(self):
        result = self.txmr("run", "--master", "local[2]", "-i", EXAMPLES,
                           "-o", os.path.join(self.base, "out"))
        self.assertEqual(result.returncode, 2)
        self.assertIn("--master and --spark-conf are for --engine spark", result.stderr)
