"""
Input and output on any filesystem (L{txmr.data.storage}): compressed
input read whole and decompressed, URLs through fsspec, and the commit of
output on a store without rename, through real processes against a local
S3 server (L{tests.s3_server}).
"""

import bz2
import gzip
import json
import lzma
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid

from twisted.trial import unittest

from tests.cluster import JOBS, Cluster, write_corpus
from tests.oracle import reference
from txmr.data.inputs import list_inputs, plan_splits, read_blocks

TXMR = [os.path.join(os.path.dirname(sys.executable), "txmr")]
if not os.path.exists(TXMR[0]):
    TXMR = [sys.executable, "-m", "txmr.cli"]

WORDCOUNT = "txmr.examples.wordcount"


def _zstd(data):
    import zstandard

    return zstandard.ZstdCompressor().compress(data)


COMPRESSORS = {".gz": gzip.compress, ".bz2": bz2.compress, ".xz": lzma.compress,
               ".zst": _zstd}


def compressed_corpus(plain, extensions, files=6, lines=400):
    """
    Write a word-count corpus in C{plain}; return C{{name: bytes}} of the
    same files, the first ones compressed with C{extensions} in turn (the
    reference is computed on C{plain}).
    """
    write_corpus(plain, files=files, lines=lines)
    out = {}
    for i, name in enumerate(sorted(os.listdir(plain))):
        with open(os.path.join(plain, name), "rb") as f:
            data = f.read()
        if i < len(extensions):
            out[name + extensions[i]] = COMPRESSORS[extensions[i]](data)
        else:
            out[name] = data
    return out


def output_pairs(read, reduces):
    """
    C{{key: value}} of out-0 ... out-{reduces - 1}, each read by C{read(name)}
    as bytes.
    """
    out = {}
    for r in range(reduces):
        for line in read(f"out-{r}").decode("utf-8").splitlines():
            key, _, value = line.partition("\t")
            assert key not in out, f"key {key!r} written twice"
            out[key] = value
    return out


def need_fsspec():
    try:
        import fsspec  # noqa: F401
    except ImportError:
        raise unittest.SkipTest("URLs need fsspec (pip install -e '.[test]')")


class SplitTests(unittest.TestCase):
    def test_a_compressed_file_is_one_split(self):
        """
        A line-mode job whose files are cut still deals each compressed
        file whole, to one task; the others are cut as before.
        """
        files = [("a.txt", 10), ("big.gz", 5000), ("c.txt", 5000), ("d.bz2", 40)]
        tasks = plan_splits(files, 4)
        splits = [split for task in tasks for split in task]
        self.assertIn(["big.gz", 0, 5000], splits)
        self.assertIn(["d.bz2", 0, 40], splits)
        self.assertEqual([s for s in splits if s[0] in ("big.gz", "d.bz2")],
                         [["big.gz", 0, 5000], ["d.bz2", 0, 40]])
        cut = [s for s in splits if s[0] == "c.txt"]
        self.assertGreater(len(cut), 1, "a plain file larger than a share is still cut")
        self.assertEqual(sum(end - start for _, start, end in cut), 5000)

    def test_without_compressed_files_nothing_changes(self):
        files = [("a", 10), ("b", 5000), ("c", 70)]
        self.assertEqual(plan_splits(files, 3),
                         [[["a", 0, 10], ["b", 0, 1683]], [["b", 1683, 3376]],
                          [["b", 3376, 5000], ["c", 0, 70]]])

    def test_read_blocks_reads_a_compressed_file_whole(self):
        path = os.path.abspath(self.mktemp()) + ".gz"
        text = b"".join(b"line %d\n" % i for i in range(10000))
        with open(path, "wb") as f:
            f.write(gzip.compress(text))
        blocks = list(read_blocks(path, 0, os.path.getsize(path), 4096))
        self.assertEqual(b"".join(data for _, data in blocks), text)
        self.assertEqual(blocks[1][0], len(blocks[0][1]), "offsets count decompressed bytes")


class CompressedInputTests(unittest.TestCase):
    """
    Local compressed input, read transparently by its extension.
    """

    def test_every_codec_gives_the_same_output(self):
        from txmr.inline import run_inline
        from txmr.plan import JobConfig

        base = os.path.abspath(self.mktemp())
        plain = os.path.join(base, "plain")
        inputs = os.path.join(base, "in")
        os.makedirs(inputs)
        for name, data in compressed_corpus(plain, [".gz", ".bz2", ".xz", ".zst"]).items():
            with open(os.path.join(inputs, name), "wb") as f:
                f.write(data)
        output = os.path.join(base, "out")
        counters = run_inline(JobConfig(input=inputs, intermediate=os.path.join(base, "mid"),
                                        output=output, mappers=3, reducers=2))
        self.assertEqual(output_pairs(lambda n: open(os.path.join(output, n), "rb").read(), 2),
                         reference(WORDCOUNT, plain))
        self.assertEqual(counters["txmr"]["map_input_records"], 6 * 400)


class MemoryURLTests(unittest.TestCase):
    """
    URLs through fsspec, on its in-memory filesystem (one process).
    """

    def setUp(self):
        need_fsspec()
        import fsspec

        self.fs = fsspec.filesystem("memory")
        self.root = f"/txmr-test-{uuid.uuid4().hex}"
        self.addCleanup(lambda: self.fs.rm(self.root, recursive=True)
                        if self.fs.exists(self.root) else None)

    def test_job_between_urls(self):
        from txmr.inline import run_inline
        from txmr.plan import JobConfig

        base = os.path.abspath(self.mktemp())
        plain = os.path.join(base, "plain")
        files = compressed_corpus(plain, [".gz", ".bz2"])
        for name, data in files.items():
            self.fs.pipe(f"{self.root}/in/sub/{name}", data)
        # Skipped as in a local directory: names starting with _ or .
        self.fs.pipe(f"{self.root}/in/_SUCCESS", b"not input\n")
        self.fs.pipe(f"{self.root}/in/.hidden", b"not input\n")
        self.fs.pipe(f"{self.root}/in/_logs/x.txt", b"not input\n")
        # An earlier run's output, removed when the job starts.
        self.fs.pipe(f"{self.root}/out/out-7", b"stale\t1\n")
        self.fs.pipe(f"{self.root}/out/_SUCCESS", b"out-7\n")
        self.assertEqual(list_inputs(f"memory://{self.root}/in"),
                         sorted((f"sub/{n}", len(data)) for n, data in files.items()))
        run_inline(JobConfig(input=f"memory://{self.root}/in",
                             intermediate=os.path.join(base, "mid"),
                             output=f"memory://{self.root}/out", mappers=4, reducers=3))
        out = f"{self.root}/out"
        self.assertEqual(sorted(self.fs.ls(out, detail=False)),
                         [f"{out}/{n}" for n in ("_SUCCESS", "out-0", "out-1", "out-2")])
        self.assertEqual(self.fs.cat(f"{out}/_SUCCESS"), b"out-0\nout-1\nout-2\n")
        self.assertEqual(output_pairs(lambda n: self.fs.cat(f"{out}/{n}"), 3),
                         reference(WORDCOUNT, plain))

    def test_the_driver_promotes_only_the_winner(self):
        """
        Two attempts of one reduce each upload their own object; the
        driver promotes one, discards the other, and C{_SUCCESS} comes last,
        with nothing of the loser left.
        """
        from txmr.core.states import Kind
        from txmr.data import layout as layout_module
        from txmr.data.layout import Layout
        from txmr.data.run import upload_output
        from txmr.core.spec import TaskSpec

        mid = os.path.abspath(self.mktemp())
        os.makedirs(mid)
        url = f"memory://{self.root}/out"
        layout = Layout(mid, url, 1, 1)
        for attempt, text in ((4, b"loser\t1\n"), (5, b"winner\t2\n")):
            ((temporary, final),) = layout.files(Kind.REDUCE, 0, attempt)
            self.assertEqual(final, f"{url}/out-0")
            self.assertTrue(temporary.startswith(mid + os.sep), "written locally first")
            with open(temporary, "wb") as f:
                f.write(text)
            upload_output(TaskSpec(kind=Kind.REDUCE, index=0, attempt=attempt, job="j",
                                   intermediate=mid, n_map=1, n_reduce=1, output=url))
            self.assertFalse(os.path.exists(temporary))
        self.assertEqual(sorted(self.fs.find(f"{self.root}/out")),
                         [f"{self.root}/out/_temporary/attempt-4/out-0",
                          f"{self.root}/out/_temporary/attempt-5/out-0"])
        layout.commit(Kind.REDUCE, 0, 5)
        layout.discard(Kind.REDUCE, 0, 4)
        self.assertFalse(self.fs.exists(f"{self.root}/out/_SUCCESS"))
        layout_module.mark_success(url)
        self.assertEqual(sorted(self.fs.find(f"{self.root}/out")),
                         [f"{self.root}/out/_SUCCESS", f"{self.root}/out/out-0"])
        self.assertEqual(self.fs.cat(f"{self.root}/out/out-0"), b"winner\t2\n")
        self.assertEqual(self.fs.cat(f"{self.root}/out/_SUCCESS"), b"out-0\n")

    def test_a_failed_job_leaves_no_output(self):
        from txmr.inline import run_inline
        from txmr.plan import JobConfig

        base = os.path.abspath(self.mktemp())
        write_corpus(os.path.join(base, "in"), files=2, lines=20)
        self.assertRaises(ValueError, run_inline, JobConfig(
            input=os.path.join(base, "in"), intermediate=os.path.join(base, "mid"),
            output=f"memory://{self.root}/out", job=os.path.join(JOBS, "reduce_raises.py"),
            mappers=2, reducers=2))
        self.assertEqual(self.fs.find(f"{self.root}/out"), [])

    def test_the_intermediate_directory_is_local(self):
        from txmr.plan import ConfigError, JobConfig, plan_job

        base = os.path.abspath(self.mktemp())
        write_corpus(os.path.join(base, "in"), files=1, lines=5)
        error = self.assertRaises(ConfigError, plan_job, JobConfig(
            input=os.path.join(base, "in"), intermediate=f"memory://{self.root}/mid",
            output=os.path.join(base, "out")))
        self.assertIn("--intermediate must be a local directory", str(error))

    def test_a_missing_input_url_is_named(self):
        from txmr.plan import ConfigError, JobConfig, plan_job

        base = os.path.abspath(self.mktemp())
        error = self.assertRaises(ConfigError, plan_job, JobConfig(
            input=f"memory://{self.root}/nothing", intermediate=os.path.join(base, "mid"),
            output=os.path.join(base, "out")))
        self.assertEqual(str(error), f"input 'memory://{self.root}/nothing' does not exist")


class FileURLTests(unittest.TestCase):
    """
    file:// URLs through fsspec, with real processes: the store's commit
    (upload, promotion, _SUCCESS listing the files) without an S3 server.
    """

    def test_job_between_file_urls(self):
        need_fsspec()
        cluster = Cluster(self, maps=3, reduces=2)
        plain = os.path.join(cluster.base, "plain")
        os.makedirs(cluster.input)
        for name, data in compressed_corpus(plain, [".xz", ".zst", ".gz"]).items():
            with open(os.path.join(cluster.input, name), "wb") as f:
                f.write(data)
        output = cluster.output
        cluster.input, cluster.output = "file://" + cluster.input, "file://" + output
        cluster.start_driver()
        cluster.start_worker("worker-0")
        cluster.start_worker("worker-1")
        self.assertEqual(cluster.wait(), 0, cluster.log())
        self.assertEqual(sorted(os.listdir(output)), ["_SUCCESS", "out-0", "out-1"])
        with open(os.path.join(output, "_SUCCESS")) as f:
            self.assertEqual(f.read(), "out-0\nout-1\n")
        self.assertEqual(
            output_pairs(lambda n: open(os.path.join(output, n), "rb").read(), 2),
            reference(WORDCOUNT, plain))


class OutputWatcher(threading.Thread):
    """
    A reader of an output prefix while a job runs, as a user's script that
    waits for C{_SUCCESS} would be: it lists the prefix over and over, and
    reads every visible file and C{_SUCCESS}'s list.
    """

    def __init__(self, fs, prefix):
        super().__init__(daemon=True)
        self.fs = fs
        self.prefix = prefix
        self.stop = threading.Event()
        # (visible names, {name: bytes}, _SUCCESS's text or None)
        self.seen = []
        self.errors = []

    def run(self):
        while not self.stop.is_set():
            try:
                names = [p.rpartition("/")[2] for p in self.fs.ls(self.prefix, detail=False)]
            except FileNotFoundError:
                names = []
            except Exception as e:
                self.errors.append(repr(e))
                names = []
            success = None
            contents = {}
            for name in names:
                if name.startswith(("_", ".")):
                    continue
                try:
                    contents[name] = self.fs.cat(f"{self.prefix}/{name}")
                except FileNotFoundError:
                    pass
            if "_SUCCESS" in names:
                success = self.fs.cat(f"{self.prefix}/_SUCCESS").decode()
            self.seen.append((sorted(n for n in names if not n.startswith(("_", "."))),
                              contents, success))
            time.sleep(0.05)


class S3Tests(unittest.TestCase):
    """
    Input and output on S3, through a local S3 server and real processes.
    """

    def setUp(self):
        need_fsspec()
        from tests.s3_server import S3Server

        self.base = os.path.abspath(self.mktemp())
        os.makedirs(self.base)
        self.s3 = S3Server(self, self.base)
        self.fs = self.s3.filesystem()
        self.fs.mkdir("txmr")

    def upload_corpus(self, extensions):
        plain = os.path.join(self.base, "plain")
        for name, data in compressed_corpus(plain, extensions).items():
            self.fs.pipe(f"txmr/in/{name}", data)
        self.fs.pipe("txmr/in/_SUCCESS", b"not input\n")
        self.fs.pipe("txmr/in/.hidden", b"not input either\n")
        return plain

    def assert_watched_output_was_whole(self, watcher, final, reduces):
        """
        Whatever the reader saw while the job ran was the job's final files:
        no loser's and no half-written one, and C{_SUCCESS} only once every
        file of the job was in place, listing them.
        """
        names = [f"out-{r}" for r in range(reduces)]
        self.assertEqual(watcher.errors, [])
        self.assertTrue(watcher.seen, "the reader listed the output")
        self.assertEqual(watcher.seen[0][2], None, "no _SUCCESS when the driver starts")
        for visible, contents, success in watcher.seen:
            for name in visible:
                self.assertIn(name, names, "only this job's output is visible")
            for name, data in contents.items():
                self.assertEqual(data, final[name], f"{name} seen whole and final")
            if success is not None:
                self.assertEqual(success, "".join(n + "\n" for n in names))
                self.assertEqual(visible, names)

    def test_job_on_s3_with_compressed_input(self):
        plain = self.upload_corpus([".gz", ".bz2"])
        # An earlier run's output: removed when the job starts.
        self.fs.pipe("txmr/out/out-7", b"stale\t1\n")
        self.fs.pipe("txmr/out/_SUCCESS", b"out-7\n")
        self.fs.pipe("txmr/out/_temporary/attempt-3/out-0", b"stale\t1\n")
        job = os.path.join(JOBS, "slow_reduce.py")
        cluster = Cluster(self, job=job, maps=4, reduces=3)
        cluster.input, cluster.output = "s3://txmr/in", "s3://txmr/out"
        # Credentials and endpoint from the environment, as for real S3.
        cluster.env.update(self.s3.env())
        # Reduces of about half a second each, on two workers: the third one
        # ends well after the others.
        cluster.env["TXMR_REDUCE_SLEEP"] = "0.15"
        cluster.start_driver()
        watcher = OutputWatcher(self.s3.filesystem(), "txmr/out")
        watcher.start()
        self.addCleanup(watcher.stop.set)
        for i in range(2):
            cluster.start_worker(f"worker-{i}")
        self.assertEqual(cluster.wait(), 0, cluster.log())
        watcher.stop.set()
        watcher.join()
        self.assertEqual(sorted(self.fs.ls("txmr/out", detail=False)),
                         ["txmr/out/_SUCCESS", "txmr/out/out-0", "txmr/out/out-1",
                          "txmr/out/out-2"])
        self.assertEqual(self.fs.cat("txmr/out/_SUCCESS"), b"out-0\nout-1\nout-2\n")
        final = {f"out-{r}": self.fs.cat(f"txmr/out/out-{r}") for r in range(3)}
        self.assertEqual(output_pairs(final.__getitem__, 3), reference(job, plain))
        self.assert_watched_output_was_whole(watcher, final, 3)
        self.assertTrue([seen for seen in watcher.seen if 0 < len(seen[0]) < 3],
                        "the reader saw the output while it was incomplete")
        self.assertEqual(cluster.summary()["counters"]["txmr"]["map_input_records"], 6 * 400)

    def test_a_second_run_on_the_same_output_url_refuses(self):
        """
        A store has no flock: the run's lock object keeps a second run off
        its output URL (it would remove the first one's files and mix its
        own with them); a lock left by a dead run on this host is taken
        over, one from another host is named with the object to remove.
        """
        plain = self.upload_corpus([".gz"])
        # Its reduces wait for a file "go": the first run surely holds the
        # URL while the second tries.
        job = os.path.join(JOBS, "gated_reduce.py")
        cluster = Cluster(self, job=job, maps=2, reduces=3)
        cluster.input, cluster.output = "s3://txmr/in", "s3://txmr/out"
        cluster.env.update(self.s3.env())
        cluster.start_driver()
        cluster.start_worker("w")
        env = dict(os.environ, TMPDIR=self.base, **self.s3.env())

        def run():
            return subprocess.run(TXMR + ["run", "--inline", "-i", "s3://txmr/in", "-o",
                                          "s3://txmr/out", "-r", "3"],
                                  capture_output=True, text=True, env=env, timeout=120,
                                  stdin=subprocess.DEVNULL)

        second = run()
        self.assertEqual(second.returncode, 2, second.stderr)
        self.assertIn("txmr: s3://txmr/out is in use by a txmr run of", second.stderr)
        self.assertIn("if that run is gone, remove s3://txmr/out/_txmr.lock", second.stderr)
        open(os.path.join(cluster.scratch, "go"), "w").close()
        self.assertEqual(cluster.wait(), 0, cluster.log())
        self.assertEqual(output_pairs(lambda n: self.fs.cat(f"txmr/out/{n}"), 3),
                         reference(WORDCOUNT, plain))
        self.assertFalse(self.fs.exists("txmr/out/_txmr.lock"), "released at the end")

        elsewhere = {"who": "a txmr run of x (pid 7 on elsewhere)", "host": "elsewhere",
                     "pid": 7, "intermediate": "/tmp/x", "id": "1"}
        self.fs.pipe("txmr/out/_txmr.lock", json.dumps(elsewhere).encode())
        refused = run()
        self.assertEqual(refused.returncode, 2, refused.stderr)
        self.assertIn("is in use by a txmr run of x (pid 7 on elsewhere)", refused.stderr)
        dead = subprocess.Popen(["true"])
        dead.wait()
        here = dict(elsewhere, host=socket.gethostname(), pid=dead.pid)
        self.fs.pipe("txmr/out/_txmr.lock", json.dumps(here).encode())
        again = run()
        self.assertEqual(again.returncode, 0, again.stderr)
        self.assertEqual(output_pairs(lambda n: self.fs.cat(f"txmr/out/{n}"), 3),
                         reference(WORDCOUNT, plain))
        self.assertFalse(self.fs.exists("txmr/out/_txmr.lock"))

    def test_txmr_run_with_storage_options(self):
        """
        C{txmr run} with the endpoint given by C{--storage-options} alone:
        the options reach the driver and every worker (no process has the
        endpoint in its environment; credentials still come from there).
        """
        plain = self.upload_corpus([".bz2", ".gz", ".gz"])
        env = dict(os.environ, TMPDIR=self.base, **self.s3.env(endpoint=False))
        env.pop("AWS_ENDPOINT_URL", None)
        options = '{"endpoint_url": "%s"}' % self.s3.endpoint
        result = subprocess.run(
            TXMR + ["run", "-i", "s3://txmr/in", "-o", "s3://txmr/out", "-w", "2", "-m", "3",
                    "-r", "2", "--storage-options", options],
            capture_output=True, text=True, env=env, timeout=180, stdin=subprocess.DEVNULL)
        self.assertEqual(result.returncode, 0, result.stderr + result.stdout)
        self.assertEqual(self.fs.cat("txmr/out/_SUCCESS"), b"out-0\nout-1\n")
        self.assertEqual(output_pairs(lambda n: self.fs.cat(f"txmr/out/{n}"), 2),
                         reference(WORDCOUNT, plain))
        self.assertFalse(self.fs.exists("txmr/out/_temporary"))

    def test_a_failed_job_leaves_nothing_on_s3(self):
        self.upload_corpus([".gz"])
        cluster = Cluster(self, job="jobs/reduce_raises.py", maps=2, reduces=2)
        cluster.input, cluster.output = "s3://txmr/in", "s3://txmr/out"
        cluster.env.update(self.s3.env())
        cluster.start_driver("--max-attempts", "2")
        cluster.start_worker("worker-0")
        self.assertEqual(cluster.wait(), 1, cluster.log())
        self.assertIn("cannot reduce", cluster.log())
        self.assertEqual(self.fs.find("txmr/out"), [])

    def test_driver_killed_inside_a_commit_resumes_on_s3(self):
        """
        The driver dies inside its third commit (two maps, then a reduce
        promoted), once before and once after journaling it: started again,
        it resumes from its journal, keeping the promoted file the journal
        holds, and the output is exact either way.
        """
        plain = self.upload_corpus([".gz"])
        job = os.path.join(JOBS, "slow_reduce.py")
        for n, point in enumerate(("after-rename:3", "after-journal:3")):
            cluster = Cluster(self, job=job, maps=2, reduces=3)
            cluster.input, cluster.output = "s3://txmr/in", f"s3://txmr/out-{n}"
            cluster.env.update(self.s3.env(), TXMR_CRASH_AT=point)
            cluster.start_driver()
            port = cluster.address.rsplit("port=", 1)[1]
            cluster.start_worker("w")
            self.assertEqual(cluster.wait("driver", 60), -signal.SIGKILL, point)
            self.assertFalse(self.fs.exists(f"txmr/out-{n}/_SUCCESS"))
            del cluster.env["TXMR_CRASH_AT"]
            cluster.start_driver("--listen", f"tcp:{port}:interface=127.0.0.1", name="again")
            self.assertEqual(cluster.wait("again", 60), 0, cluster.log("again"))
            self.assertEqual(cluster.wait("w", 60), 0, point)
            log = cluster.log("again")
            words = log.split("resuming the earlier run (epoch 2): ")[1].split()
            # Commits are journaled in groups (files.FLUSH_EVERY): a map
            # committed just before the crash may run again.
            self.assertIn(words[0], ("1", "2"), "the journaled maps stay done")
            self.assertEqual(words[1], "map")
            if point.startswith("after-rename"):
                self.assertEqual(words[3], "0", "the reduce was not journaled: it runs again")
            else:
                self.assertEqual(words[3], "1", "the journaled reduce, whose promoted file is "
                                                "still the one journaled, stays done")
            self.assertEqual(self.fs.cat(f"txmr/out-{n}/_SUCCESS"), b"out-0\nout-1\nout-2\n")
            self.assertEqual(output_pairs(lambda name: self.fs.cat(f"txmr/out-{n}/{name}"), 3),
                             reference(job, plain), point)
            self.assertFalse(self.fs.exists(f"txmr/out-{n}/_temporary"))

    def test_shared_nothing_and_map_only_jobs_on_s3(self):
        """
        Without --intermediate (map output kept on the workers), reduces
        upload from their own directories; a map-only job's maps write
        C{out-M} through the same commit.
        """
        plain = self.upload_corpus([".gz", ".bz2"])
        cluster = SharedNothingCluster(self, maps=3, reduces=2)
        cluster.input, cluster.output = "s3://txmr/in", "s3://txmr/shared-nothing"
        cluster.env.update(self.s3.env())
        cluster.start_driver()
        cluster.start_worker("worker-0")
        cluster.start_worker("worker-1")
        self.assertEqual(cluster.wait(), 0, cluster.log())
        self.assertEqual(self.fs.cat("txmr/shared-nothing/_SUCCESS"), b"out-0\nout-1\n")
        self.assertEqual(output_pairs(lambda n: self.fs.cat(f"txmr/shared-nothing/{n}"), 2),
                         reference(WORDCOUNT, plain))

        cluster = SharedNothingCluster(self, job="jobs/maponly.py", maps=3, reduces=0)
        cluster.input, cluster.output = "s3://txmr/in", "s3://txmr/map-only"
        cluster.env.update(self.s3.env())
        cluster.start_driver()
        cluster.start_worker("worker-0")
        self.assertEqual(cluster.wait(), 0, cluster.log())
        self.assertEqual(self.fs.cat("txmr/map-only/_SUCCESS"), b"out-0\nout-1\nout-2\n")
        written = b"".join(self.fs.cat(f"txmr/map-only/out-{m}") for m in range(3))
        expected = []
        for name in sorted(os.listdir(plain)):
            with open(os.path.join(plain, name)) as f:
                expected += [f"{line}\t{len(line)}" for line in f.read().splitlines()]
        self.assertEqual(sorted(written.decode().splitlines()), sorted(expected))
        self.assertEqual(sorted(self.fs.ls("txmr/map-only", detail=False)),
                         ["txmr/map-only/_SUCCESS"] + [f"txmr/map-only/out-{m}"
                                                       for m in range(3)])


class SharedNothingCluster(Cluster):
    """
    A L{Cluster} whose driver has no intermediate directory: map output
    stays on the workers.
    """

    def driver_args(self, *extra, listen=True):
        args = super().driver_args(*extra, listen=listen)
        i = args.index("--intermediate")
        return args[:i] + args[i + 2:]
