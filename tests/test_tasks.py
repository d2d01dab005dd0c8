"""
The data path: splits, partitioning, map output, reduce with and without
spills, run in this process.
"""

import collections
import os
import random
import zlib

from twisted.trial import unittest

from txmr.core.spec import TaskSpec
from txmr.core.states import Kind
from txmr.data.attempt import RecordError
from txmr.data.chunks import read_chunks
from txmr.data.inputs import list_inputs, plan_splits, read_blocks
from txmr.data.keys import format_field, partition, sorted_keys
from txmr.data.knobs import Knobs
from txmr.data.layout import Layout
from txmr.data.mapper import MapOutput
from txmr.data.reducer import Grouper
from txmr.data.run import run_task
from txmr.plan import JobConfig
from txmr.inline import run_inline
from txmr.job import load_job

from tests.oracle import read_output, reference

HERE = os.path.dirname(os.path.abspath(__file__))
JOBS = os.path.join(HERE, "jobs")


def random_text(rng, lines):
    words = ["alpha", "Beta", "gamma,", "δέλτα", "x", "", "  ", "7", "end."]
    return "".join(" ".join(rng.choice(words) for _ in range(rng.randint(0, 12))) + "\n"
                   for _ in range(lines))


def task_spec(**fields):
    """
    A L{TaskSpec}, with the fields a test does not care about filled in.
    """
    defaults = dict(attempt=1, job="test", n_map=1, n_reduce=1)
    return TaskSpec(**dict(defaults, **fields))


def run_here(job, input_dir, base, maps, reduces, memory, knobs):
    """
    Every task of a job, one after the other in this process, through
    L{run_task} with C{knobs}: the data path alone, no driver.

    @return: the counters summed over the tasks.
    """
    mid, out = os.path.join(base, "mid"), os.path.join(base, "out")
    os.makedirs(mid)
    os.makedirs(out)
    plan = plan_splits(list_inputs(input_dir), maps, job.input_mode)
    common = dict(job=job.name, intermediate=mid, n_map=maps, n_reduce=reduces)
    specs = [task_spec(kind=Kind.MAP, index=m, input=input_dir, splits=splits, **common)
             for m, splits in enumerate(plan)]
    specs += [task_spec(kind=Kind.REDUCE, index=r, output=out, memory=memory, **common)
              for r in range(reduces)]
    counters = {}
    for spec in specs:
        for group, names in run_task(job, spec, knobs=knobs).items():
            total = counters.setdefault(group, {})
            for name, n in names.items():
                total[name] = total.get(name, 0) + n
        Layout.of(spec).commit(spec.kind, spec.index, spec.attempt)
    return counters


class CorpusMixin:
    def corpus(self, lines=2000, files=3):
        d = self.mktemp()
        os.makedirs(d)
        rng = random.Random(11)
        for i in range(files):
            with open(os.path.join(d, f"part-{i}.txt"), "w", encoding="utf-8") as f:
                f.write(random_text(rng, lines))
        return d


class SplitTests(unittest.TestCase):
    def setUp(self):
        self.dir = self.mktemp()
        os.makedirs(self.dir)

    def write(self, name, data):
        with open(os.path.join(self.dir, name), "wb") as f:
            f.write(data)

    def read_all(self, plan, block_bytes):
        got = collections.Counter()
        for splits in plan:
            for name, start, end in splits:
                for _, data in read_blocks(os.path.join(self.dir, name), start, end,
                                                 block_bytes):
                    got[name] += 0
                    for line in data.split(b"\n"):
                        got[(name, line)] += 1
        return got

    def test_every_line_read_once(self):
        """
        However the files are cut and however small the blocks, each line is
        read by exactly one split.
        """
        rng = random.Random(3)
        self.write("a.txt", random_text(rng, 500).encode())
        self.write("b.txt", b"no newline at the end")
        self.write("c.txt", b"")
        self.write("d.txt", b"\n\n\nlast")
        self.write(".hidden", b"never read")
        files = list_inputs(self.dir)
        self.assertEqual([f[0] for f in files], ["a.txt", "b.txt", "c.txt", "d.txt"])
        expected = collections.Counter()
        for name, _ in files:
            with open(os.path.join(self.dir, name), "rb") as f:
                data = f.read()
            if data:
                for line in data.split(b"\n"):
                    expected[(name, line)] += 1
        for n_map in (1, 2, 3, 7, 64):
            for block in (1, 5, 100, 1 << 20):
                plan = plan_splits(files, n_map)
                self.assertEqual(len(plan), n_map)
                got = self.read_all(plan, block)
                got = collections.Counter({k: v for k, v in got.items() if isinstance(k, tuple)})
                # A block ends at a newline, so splitting it leaves one extra
                # empty piece per block; compare non-empty lines exactly.
                self.assertEqual(
                    {k: v for k, v in got.items() if k[1]},
                    {k: v for k, v in expected.items() if k[1]},
                    f"n_map={n_map} block={block}",
                )

    def test_balanced_bytes(self):
        files = [("big", 1000), ("s1", 10), ("s2", 10)]
        plan = plan_splits(files, 4)
        loads = [sum(end - start for _, start, end in splits) for splits in plan]
        self.assertEqual(sum(loads), 1020)
        self.assertLessEqual(max(loads) - min(loads), 1)

    def test_file_mode_keeps_files_whole(self):
        files = [("a", 100), ("b", 50), ("c", 40), ("d", 10)]
        plan = plan_splits(files, 2, "file")
        self.assertEqual(sorted(s for splits in plan for s in splits),
                         [["a", 0, 100], ["b", 0, 50], ["c", 0, 40], ["d", 0, 10]])
        loads = sorted(sum(e for _, _, e in splits) for splits in plan)
        self.assertEqual(loads, [100, 100])


class KeyTests(unittest.TestCase):
    def test_partition_is_stable(self):
        """
        CRC-32 of the UTF-8 bytes: the same in every process, every run.
        """
        self.assertEqual(partition("hello", 7), zlib.crc32(b"hello") % 7)
        self.assertEqual(partition("hello", 7), 907060870 % 7)
        self.assertEqual(partition([1, "a"], 5), partition((1, "a"), 5))

    def test_sort_order_mixed_keys(self):
        keys = ["b", 3, None, "a", 1.5, [1, 2], True]
        self.assertEqual(sorted_keys(keys), [None, True, 1.5, 3, "a", "b", [1, 2]])

    def test_format(self):
        self.assertEqual(format_field("a b"), "a b")
        self.assertEqual(format_field([1, "x"]), '[1,"x"]')
        self.assertEqual(format_field({"k": None}), '{"k":null}')


class ChunkTests(unittest.TestCase):
    """
    The shuffle's files: bounded chunks, and a reduce side whose merge holds
    only chunks of runs.
    """

    def test_chunks_are_bounded_and_keep_every_pair(self):
        base = self.mktemp()
        os.makedirs(base)
        paths = [os.path.join(base, f"p{i}") for i in range(2)]
        out = MapOutput(paths, None, False, {}, Knobs(chunk_records=100, buffer_records=350))
        pairs = [(f"k{i}", i) for i in range(1000)] + [(("a", i), [i]) for i in range(10)]
        out.extend(pairs)
        out.close()
        got = []
        for index, path in enumerate(paths):
            for _, (keys, values) in read_chunks(path):
                self.assertLessEqual(len(keys), 100)
                self.assertEqual(len(keys), len(values))
                for key in keys:
                    self.assertEqual(partition(key, 2), index)
                got.extend(zip(keys, values))
        self.assertEqual(sorted(got, key=repr), sorted(pairs, key=repr))

    def test_large_records_flush_sooner(self):
        """
        A map task's buffer is bounded in bytes as well as in records: with
        large values it is written after fewer records.
        """
        base = self.mktemp()
        os.makedirs(base)
        path = os.path.join(base, "p0")
        out = MapOutput([path], None, False, {}, Knobs(buffer_bytes=100_000, first_flush=5))
        for i in range(100):
            out.add(f"k{i}", "x" * 10_000)
        out.close()
        sizes = [len(keys) for _, (keys, _) in read_chunks(path)]
        self.assertEqual(sum(sizes), 100)
        self.assertEqual(sizes[0], 5)
        self.assertTrue(all(n <= 10 for n in sizes), sizes)

    def test_merge_holds_only_runs(self):
        """
        Once a reduce task has spilled, what is left in memory at the end is
        spilled too: the merge then reads runs a chunk at a time, and holds
        no table as large as the budget beside them.
        """
        rng = random.Random(5)
        counters = {}
        prefix = os.path.join(self.mktemp(), "r")
        os.makedirs(os.path.dirname(prefix))
        grouper = Grouper(prefix, 20_000, counters, Knobs())
        expected = collections.defaultdict(list)
        for _ in range(20):
            keys = [f"w{rng.randrange(500)}" for _ in range(200)]
            values = list(range(200))
            for k, v in zip(keys, values):
                expected[k].append(v)
            grouper.add_chunk(2000, keys, values)
        self.assertTrue(grouper.runs)
        groups = list(grouper.sorted_groups())
        self.assertEqual(grouper.groups, {})
        self.assertEqual([k for k, _ in groups], sorted(expected))
        self.assertEqual({k: sorted(v) for k, v in groups},
                         {k: sorted(v) for k, v in expected.items()})
        self.assertEqual(counters["txmr"]["spilled_records"], 20 * 200)
        grouper.remove_runs()
        self.assertEqual(os.listdir(os.path.dirname(prefix)), [])

    def test_output_of_another_version_is_named(self):
        path = self.mktemp()
        with open(path, "wb") as f:
            f.write(b"TXMR-CHUNKS-1\n\x00\x00")
        e = self.assertRaises(ValueError, list, read_chunks(path))
        self.assertIn("another version of txmr", str(e))


class TaskRunTests(CorpusMixin, unittest.TestCase):
    """
    Whole attempts run through L{run_task}, with small knobs.
    """

    def test_many_runs_merged_in_passes(self):
        """
        With more spilled runs than a merge takes at once, runs are merged
        into longer ones first: still the same output, and no run is left.
        """
        d = self.corpus(lines=3000)
        job = load_job(os.path.join(JOBS, "pairs.py"))
        base = self.mktemp()
        counters = run_here(job, d, base, maps=3, reduces=1, memory=5_000,
                            knobs=Knobs(merge_fan_in=2, run_chunk=7))
        self.assertGreater(counters["txmr"]["spilled_records"], 0)
        self.assertEqual(read_output(os.path.join(base, "out"), 1), reference(job.name, d))
        mid = os.path.join(base, "mid")
        self.assertEqual([n for n in os.listdir(mid) if "spill" in n], [])

    def test_map_error_names_record(self):
        d = self.corpus(lines=10, files=1)
        job = load_job(os.path.join(JOBS, "raises.py"))
        spec = task_spec(kind=Kind.MAP, index=0, job=job.name, intermediate=self.mktemp(),
                         input=d, splits=[["part-0.txt", 0, 10 ** 6]])
        os.makedirs(spec.intermediate)
        e = self.assertRaises(RecordError, run_task, job, spec)
        self.assertEqual(e.record, ["part-0.txt", 0, 0])
        self.assertIsInstance(e.error, ValueError)
        self.assertEqual(os.listdir(spec.intermediate), [], "partial output removed")


class JobRunTests(CorpusMixin, unittest.TestCase):
    """
    Whole jobs run inline, compared with an independent one-process oracle.
    """

    def run_job(self, job, input_dir, maps=3, reduces=2, **kwargs):
        base = self.mktemp()
        config = JobConfig(input=input_dir, intermediate=os.path.join(base, "mid"),
                              output=os.path.join(base, "out"), mappers=maps,
                              reducers=reduces, job=job, **kwargs)
        self.last_config = config
        counters = run_inline(config)
        return read_output(config.output, reduces), counters

    def test_wordcount_matches_counter(self):
        d = self.corpus()
        out, counters = self.run_job("txmr.examples.wordcount", d)
        expected = collections.Counter()
        for name in os.listdir(d):
            with open(os.path.join(d, name), encoding="utf-8") as f:
                for line in f:
                    expected.update(line.lower().split())
        self.assertEqual(out, {w: str(c) for w, c in expected.items()})
        self.assertEqual(counters["txmr"]["reduce_output_records"], len(expected))
        self.assertEqual(counters["txmr"]["map_input_records"], 6000)

    def test_output_sorted_and_partitioned(self):
        d = self.corpus()
        base = self.mktemp()
        config = JobConfig(input=d, intermediate=base + "/m", output=base + "/o",
                              mappers=2, reducers=3)
        run_inline(config)
        self.assertEqual(sorted(os.listdir(config.output)),
                         ["_SUCCESS", "out-0", "out-1", "out-2"])
        for r in range(3):
            with open(os.path.join(config.output, f"out-{r}"), encoding="utf-8") as f:
                keys = [line.split("\t")[0] for line in f]
            self.assertEqual(keys, sorted(keys))
            self.assertTrue(all(partition(k, 3) == r for k in keys))

    def test_spills_give_the_same_output(self):
        """
        A reduce task over its memory budget spills sorted runs and merges
        them: same output, and the spilled records are counted.
        """
        d = self.corpus(lines=3000)
        job = os.path.join(JOBS, "pairs.py")
        plain, counters = self.run_job(job, d)
        self.assertNotIn("spilled_records", counters["txmr"])
        spilled, counters = self.run_job(job, d, memory=20_000)
        self.assertGreater(counters["txmr"]["spilled_records"], 0)
        self.assertEqual(plain, spilled)
        self.assertEqual(plain, reference(job, d))

    def test_combiner_and_user_counters(self):
        d = self.corpus()
        job = os.path.join(JOBS, "combined.py")
        out, counters = self.run_job(job, d)
        self.assertEqual(out, reference(job, d))
        self.assertGreater(counters["txmr"]["combine_input_records"],
                           counters["txmr"]["combine_output_records"])
        self.assertEqual(counters["words"]["lines"], 6000)

    def test_bytes_mode_gives_each_file_exactly(self):
        """
        INPUT = "bytes": map sees each file's exact bytes: CRLF, a lone CR
        and bytes that are not UTF-8 survive.
        """
        import hashlib
        import json

        d = self.mktemp()
        os.makedirs(d)
        contents = {"a.bin": bytes(range(256)) * 40, "b.txt": b"one\r\ntwo\rthree\n\xff\xfe",
                    "c.png": b"\x89PNG\r\n\x1a\n" + os.urandom(5000)}
        for name, data in contents.items():
            with open(os.path.join(d, name), "wb") as f:
                f.write(data)
        out, _ = self.run_job(os.path.join(JOBS, "bytes.py"), d, maps=2)
        self.assertEqual({name: json.loads(v) for name, v in out.items()},
                         {name: {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
                          for name, data in contents.items()})

    def test_file_mode_and_json_values(self):
        d = self.corpus(lines=50, files=5)
        job = os.path.join(JOBS, "files.py")
        out, _ = self.run_job(job, d)
        self.assertEqual(out, reference(job, d))
        self.assertEqual(len(out), 5)


class KeyOrderEdgeTests(unittest.TestCase):
    def test_nan_keys_sort_before_the_numbers(self):
        from txmr.data.keys import sorted_keys

        nan = float("nan")
        got = sorted_keys([3, nan, 1, "a", 0, None, 2.5])
        self.assertEqual([None, 0, 1, 2.5, 3, "a"], [k for k in got if k == k])
        self.assertIs(got[1], nan)


class CSVEdgeTests(unittest.TestCase):
    def test_an_unterminated_quote_fails_the_task(self):
        """
        A missing closing quote is an error, not the rest of the file read
        as one field (and the rows after it lost).
        """
        import txmr
        from txmr.api import JobFailed

        base = self.mktemp()
        os.makedirs(os.path.join(base, "in"))
        with open(os.path.join(base, "in", "t.csv"), "w") as f:
            f.write('ann,1\nbob,"2\ncid,3\ndan,4\n')
        with open(os.path.join(base, "rows.py"), "w") as f:
            f.write('INPUT = "csv"\n\ndef map(name, row):\n    yield "rows", 1\n\n\n'
                    'def reduce(key, ones):\n    yield key, sum(ones)\n')
        e = self.assertRaises(JobFailed, txmr.run, os.path.join(base, "rows.py"),
                              os.path.join(base, "in"), os.path.join(base, "out"), workers=0,
                              quiet=True)
        self.assertIn("unexpected end of data", str(e))
