"""
The job API: a job's own options, its partition and sorted values, its
input and output formats, map-only jobs, and txmr.run from Python; each
through real processes (txmr run, twistd txmr-driver) and inline.
"""

import collections
import json
import os
import random
import subprocess
import sys

from twisted.trial import unittest

import txmr
from txmr.api import JobFailed, Result
from txmr.core.scheduler import Scheduler
from txmr.core.spec import TaskSpec
from txmr.core.states import Kind
from txmr.data.inputs import list_inputs, plan_splits
from txmr.data.knobs import Knobs
from txmr.data.mapper import MapOutput
from txmr.data.keys import sort_key
from txmr.data.output import OutputError, OutputFile, read_pairs
from txmr.data.sampling import RangePartition
from txmr.job import JobError, load_job
from txmr.job_options import MAX_ARGS_BYTES
from txmr.plan import ConfigError

from tests.cluster import JOBS, Cluster, counted, write_corpus
from tests.oracle import read_output

TXMR = [os.path.join(os.path.dirname(sys.executable), "txmr")]
if not os.path.exists(TXMR[0]):
    TXMR = [sys.executable, "-m", "txmr.cli"]
OPTIONS_JOB = os.path.join(JOBS, "options_count.py")
ORDERED_JOB = os.path.join(JOBS, "ordered.py") + ":Ordered"

EVENTS = ["bob,10,x", "bob,9,y", "ann,3,z", "zed,1,q", "bob,10,a", "mia,200,k", "mia,30,k",
          "nat,7,m", "ann,12,b"]


def at_least(counts, n, upper=False):
    """
    The oracle of options_count.py: word count, words counted n times or more.
    """
    return {(w.upper() if upper else w): c for w, c in counts.items() if int(c) >= n}


def write_files(directory, files, mode="w"):
    os.makedirs(directory, exist_ok=True)
    for name, data in files.items():
        with open(os.path.join(directory, name), mode) as f:
            f.write(data)
    return directory


class Base(unittest.TestCase):
    def setUp(self):
        self.base = os.path.abspath(self.mktemp())
        os.makedirs(self.base)
        self.env = dict(os.environ, TMPDIR=self.base, TXMR_TEST_DIR=self.base)

    def txmr(self, *args, timeout=120):
        return subprocess.run(TXMR + list(args), capture_output=True, text=True, env=self.env,
                              timeout=timeout, stdin=subprocess.DEVNULL)

    def corpus(self, files=4):
        d = os.path.join(self.base, "in")
        write_corpus(d, files=files)
        return d

    def path(self, name):
        return os.path.join(self.base, name)


class OptionTests(Base):
    def test_options_change_the_output_in_processes_and_inline(self):
        corpus = self.corpus()
        expected = at_least(counted(corpus), 1000, upper=True)
        self.assertTrue(0 < len(expected) < len(counted(corpus)), "the option filters")
        for inline in ([], ["--inline"]):
            out = self.path(f"out{len(inline)}")
            result = self.txmr("run", OPTIONS_JOB, *inline, "-i", corpus, "-o", out, "-w", "2",
                               "-m", "3", "-r", "2", "--", "--min-count", "1000", "--upper")
            self.assertEqual(result.returncode, 0, result.stderr)
            self.assertEqual(read_output(out, 2), expected, inline)

    def test_driver_takes_job_args(self):
        cluster = Cluster(self, job=ORDERED_JOB.replace(os.path.dirname(JOBS) + "/", ""),
                          reduces=2)
        write_files(cluster.input, {"events.txt": "\n".join(EVENTS) + "\n"})
        cluster.start_driver("--job-args", "--sep ' + '")
        cluster.start_worker()
        self.assertEqual(cluster.wait(), 0, cluster.log())
        pairs = dict(read_pairs(os.path.join(cluster.output, "out-0"), "jsonl"))
        self.assertEqual(pairs["bob"], "9:y + 10:a + 10:x")

    def test_a_wrong_option_fails_before_any_task_naming_it(self):
        corpus = self.corpus(files=1)
        for inline in ([], ["--inline"]):
            out = self.path(f"out{len(inline)}")
            result = self.txmr("run", OPTIONS_JOB, *inline, "-i", corpus, "-o", out,
                               "--", "--min-cont", "3")
            self.assertEqual(result.returncode, 2, result.stderr)
            self.assertIn("unrecognized arguments: --min-cont 3", result.stderr)
            self.assertNotIn("status page", result.stderr, "no worker was started")
            self.assertFalse(os.path.exists(out) and
                             [n for n in os.listdir(out) if n.startswith("out-")])
            result = self.txmr("run", OPTIONS_JOB, *inline, "-i", corpus, "-o", out,
                               "--", "--min-count", "many")
            self.assertEqual(result.returncode, 2)
            self.assertIn("argument --min-count: invalid int value: 'many'", result.stderr)

    def test_help_job_lists_the_options(self):
        for args in (["--help-job"], ["--", "--help"]):
            result = self.txmr("run", OPTIONS_JOB, *args)
            self.assertEqual(result.returncode, 0, result.stderr)
            self.assertIn("--min-count MIN_COUNT", result.stdout)
            self.assertIn("leave out words counted fewer times", result.stdout)
            self.assertIn("Word count with options", result.stdout)

    def test_input_and_output_are_still_required(self):
        result = self.txmr("run", OPTIONS_JOB, "-i", self.base)
        self.assertEqual(result.returncode, 2)
        self.assertIn("required: -o/--output", result.stderr)

    def test_every_task_parses_the_drivers_values(self):
        """
        A default read from the clock parses to another value in each
        worker process: the task fails, naming the option, rather than
        compute with another value than the driver's.
        """
        corpus = self.corpus(files=1)
        job = os.path.join(JOBS, "clock_default.py")
        result = self.txmr("run", job, "-i", corpus, "-o", self.path("out"), "-w", "1",
                           "--max-attempts", "1")
        self.assertEqual(result.returncode, 1)
        self.assertIn("job option 'stamp' is", result.stderr)
        self.assertIn("on the driver: its value must not depend on where or when",
                      result.stderr)

    def test_other_args_refuse_to_resume(self):
        corpus = self.corpus(files=2)
        mid, out = self.path("mid"), self.path("out")
        first = self.txmr("run", OPTIONS_JOB, "-i", corpus, "-o", out, "--intermediate", mid,
                          "-w", "1", "--", "--min-count", "300")
        self.assertEqual(first.returncode, 0, first.stderr)
        again = self.txmr("run", OPTIONS_JOB, "-i", corpus, "-o", out, "--intermediate", mid,
                          "-w", "1", "--", "--min-count", "30")
        self.assertEqual(again.returncode, 2, again.stderr)
        self.assertIn("job_args was ['--min-count', '300'], now ['--min-count', '30']",
                      again.stderr)
        self.assertEqual(read_output(out, 2), at_least(counted(corpus), 300))

    def test_options_of_a_class_and_a_module(self):
        job = load_job(ORDERED_JOB)
        options = job.parse_args(["--sep", ";"])
        self.assertEqual(job.instance(options).options.sep, ";")
        self.assertEqual(job.parse_args([]).sep, " ")
        e = self.assertRaises(JobError, load_job(OPTIONS_JOB).parse_args, ["--min"])
        self.assertIn("unrecognized arguments: --min", str(e), "no abbreviations")
        self.assertIsNone(txmr.options(), "outside a task")

    def test_arguments_are_bounded_and_travel_in_the_spec(self):
        job = load_job(OPTIONS_JOB)
        e = self.assertRaises(JobError, job.parse_args, ["--min-count", "1" * MAX_ARGS_BYTES])
        self.assertIn("pass large data in a file", str(e))
        spec = TaskSpec(kind=Kind.MAP, index=0, attempt=1, job=job.name, intermediate="m",
                        n_map=1, n_reduce=0, input="i", output="o",
                        args=["--min-count", "3"], options={"min_count": 3})
        self.assertEqual(TaskSpec.from_json(json.loads(json.dumps(spec.to_json()))), spec)


class OrderTests(Base):
    def test_partition_and_sorted_values(self):
        """
        The job's partition puts users a-m in out-0, the others in out-1;
        each reduce call gets its values sorted, [9, "y"] before [10, "a"].
        """
        events = write_files(self.path("in"), {"a.txt": "\n".join(EVENTS[:5]) + "\n",
                                               "b.txt": "\n".join(EVENTS[5:]) + "\n"})
        expected = {}
        for line in EVENTS:
            user, time, event = line.split(",")
            expected.setdefault(user, []).append((int(time), event))
        expected = {user: "/".join(f"{t}:{e}" for t, e in sorted(v))
                    for user, v in expected.items()}
        for inline in ([], ["--inline"]):
            out = self.path(f"out{len(inline)}")
            result = self.txmr("run", ORDERED_JOB, *inline, "-i", events, "-o", out,
                               "-w", "2", "-m", "2", "-r", "2", "--", "--sep", "/")
            self.assertEqual(result.returncode, 0, result.stderr)
            files = [list(read_pairs(os.path.join(out, f"out-{r}"), "jsonl")) for r in (0, 1)]
            self.assertEqual([k for k, _ in files[0]], ["ann", "bob", "mia"])
            self.assertEqual([k for k, _ in files[1]], ["nat", "zed"])
            self.assertEqual(dict(files[0] + files[1]), expected)

    def test_total_order(self):
        """
        TOTAL_ORDER: out-0, out-1... concatenated are sorted by key, and
        the sampled ranges share the keys out about evenly.
        """
        corpus = self.path("in")
        rng = random.Random(3)
        for f in range(3):
            write_files(corpus, {f"f{f}.txt": "".join(
                " ".join("".join(rng.choice("abcdefghij") for _ in range(rng.randint(1, 5)))
                         for _ in range(8)) + "\n" for _ in range(1000))})
        expected = collections.Counter()
        for name in os.listdir(corpus):
            with open(os.path.join(corpus, name)) as f:
                expected.update(f.read().split())
        for inline in ([], ["--inline"]):
            out = self.path(f"out{len(inline)}")
            result = self.txmr("run", os.path.join(JOBS, "sorted_words.py"), *inline, "-i",
                               corpus, "-o", out, "-w", "2", "-m", "3", "-r", "4")
            self.assertEqual(result.returncode, 0, result.stderr)
            pairs = [pair for r in range(4)
                     for pair in read_pairs(os.path.join(out, f"out-{r}"))]
            self.assertEqual([k for k, _ in pairs], sorted(expected))
            self.assertEqual(dict(pairs), {w: str(n) for w, n in expected.items()})
            sizes = [len(list(read_pairs(os.path.join(out, f"out-{r}")))) for r in range(4)]
            self.assertLess(max(sizes), 2 * min(sizes), sizes)

    def test_ranges_of_mixed_keys(self):
        keys = [None, False, 3, 10, 2.5, "10", "9", "a", [1, "b"], [1, 10], [2]]
        partition = RangePartition([2.5, "9", [1, 10]])
        ranges = [partition(key, 4) for key in sorted(keys, key=sort_key)]
        self.assertEqual(ranges, sorted(ranges))
        self.assertEqual(ranges, [0, 0, 0, 1, 1, 1, 1, 2, 2, 3, 3])

    def test_a_partition_out_of_range_is_named(self):
        paths = [os.path.join(self.base, f"p{i}") for i in range(2)]
        out = MapOutput(paths, None, False, {}, Knobs(), partition=lambda key, n: n)
        e = self.assertRaises(ValueError, out.extend, [("k", 1)])
        self.assertIn("partition('k', 2) returned 2", str(e))


class FormatTests(Base):
    def test_json_lines_in_and_out_are_exact(self):
        records = [{"key": 7, "value": 1}, {"key": "7", "value": 2},
                   {"key": [1, "a\tb"], "value": {"z": None}}, {"key": 7, "value": "é\n"},
                   {"key": "\udcff raw", "value": True}]
        lines = [json.dumps(r) for r in records]
        write_files(self.path("in"), {"a.jsonl": "\n".join(lines[:3]) + "\n\n",
                                      "b.jsonl": "\n".join(lines[3:])})
        expected = {}
        for r in records:
            expected.setdefault(json.dumps(r["key"]), []).append(r["value"])
        for inline in ([], ["--inline"]):
            out = self.path(f"out{len(inline)}")
            result = self.txmr("run", os.path.join(JOBS, "records.py"), *inline, "-i",
                               self.path("in"), "-o", out, "-w", "1", "-r", "1")
            self.assertEqual(result.returncode, 0, result.stderr)
            with open(os.path.join(out, "out-0"), "rb") as f:
                f.read().decode("utf-8")  # valid UTF-8
            got = {json.dumps(k): v for k, v in read_pairs(os.path.join(out, "out-0"), "jsonl")}
            self.assertEqual(got, {k: sorted(v, key=repr) for k, v in expected.items()})

    def test_bytes_input_through_txmr_run(self):
        """
        INPUT = "bytes": a binary file (CRLF, a lone CR, bytes that are not
        UTF-8, a PNG's header) reaches map exactly, by processes, inline,
        and gzipped.
        """
        import gzip
        import hashlib

        data = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40 + b"a\r\nb\rc\xff\xfe\n"
        corpus = write_files(self.path("in"), {"image.png": data}, mode="wb")
        with open(os.path.join(corpus, "image2.png.gz"), "wb") as f:
            f.write(gzip.compress(data))
        expected = {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
        for inline in ([], ["--inline"]):
            out = self.path(f"out{len(inline)}")
            result = self.txmr("run", os.path.join(JOBS, "bytes.py"), *inline, "-i", corpus,
                               "-o", out, "-w", "2", "-r", "1")
            self.assertEqual(result.returncode, 0, result.stderr)
            with open(os.path.join(out, "out-0")) as f:
                lines = sorted(f.read().splitlines())
            self.assertEqual(lines, [f"image.png\t{json.dumps(expected, separators=(',', ':'))}",
                                     f"image2.png.gz\t"
                                     f"{json.dumps(expected, separators=(',', ':'))}"])

    def test_a_line_that_is_not_json_is_a_bad_record(self):
        write_files(self.path("in"), {"a.jsonl": '{"key": 1, "value": 2}\n{"key": \n'})
        job = os.path.join(JOBS, "records.py")
        result = self.txmr("run", job, "-i", self.path("in"), "-o", self.path("out"), "-w", "1",
                           "-m", "1", "--max-attempts", "1")
        self.assertEqual(result.returncode, 1)
        self.assertIn("JSONDecodeError: Expecting value", result.stderr)
        result = self.txmr("run", job, "-i", self.path("in"), "-o", self.path("out"), "-w", "1",
                           "-m", "1", "-r", "1", "--skip-bad-records")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("skipped bad record: ['map', 0, ['a.jsonl', 0, 1]]", result.stdout)
        self.assertEqual(list(read_pairs(self.path("out/out-0"), "jsonl")), [(1, [2])])

    def test_csv_rows_with_a_header(self):
        write_files(self.path("in"), {
            "a.csv": 'city,amount\r\nParis,1.5\r\n"New\r\nYork",2\r\nParis,3\r\n',
            "b.csv": "city,amount\nOslo,4\n", "c.csv": ""}, mode="w")
        for inline in ([], ["--inline"]):
            out = self.path(f"out{len(inline)}")
            result = self.txmr("run", os.path.join(JOBS, "table.py"), *inline, "-i",
                               self.path("in"), "-o", out, "-w", "1", "-m", "2", "-r", "1",
                               "--max-attempts", "1")
            # The quoted line break is kept in the key: TSV cannot hold it.
            self.assertEqual(result.returncode, 1, result.stderr)
            self.assertIn("the key 'New\\r\\nYork' holds a line break", result.stderr)
            self.assertIn('OUTPUT = "jsonl"', result.stderr)
        write_files(self.path("in"), {"a.csv": "city,amount\nParis,1.5\nParis,3\nRome\n"})
        result = self.txmr("run", "--inline", os.path.join(JOBS, "table.py"), "-i",
                           self.path("in"), "-o", self.path("out"))
        self.assertIn("row of 1 fields under a header of 2", result.stderr)
        os.unlink(os.path.join(self.path("in"), "a.csv"))
        write_files(self.path("in"), {"d.csv": "city,amount\nParis,1.5\nParis,3\n"})
        result = self.txmr("run", "--inline", os.path.join(JOBS, "table.py"), "-i",
                           self.path("in"), "-o", self.path("out"), "-r", "1")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(read_output(self.path("out"), 1), {"Paris": "4.5", "Oslo": "4.0"})

    def test_csv_rows_without_a_header_are_lists(self):
        write_files(self.path("in"), {"a.csv": 'x,"1,5"\r\ny,2\r\n"multi\nline",3\n'})
        result = txmr.run(Rows, self.path("in"), self.path("out"), workers=0, reducers=1)
        self.assertEqual(list(result.pairs()),
                         [("a.csv", [["x", "1,5"], ["y", "2"], ["multi\nline", "3"]])])

    def test_tsv_refuses_keys_with_tabs_naming_them(self):
        corpus = self.corpus(files=1)
        result = self.txmr("run", os.path.join(JOBS, "tabbed.py"), "-i", corpus, "-o",
                           self.path("out"), "-w", "1", "--max-attempts", "1")
        self.assertEqual(result.returncode, 1)
        self.assertIn("the key 'a\\tb' holds a tab, which the TSV output cannot hold: "
                      "OUTPUT = \"jsonl\" writes any key exactly", result.stderr)
        self.assertEqual([n for n in os.listdir(self.path("out")) if n.startswith("out-")], [])

    def test_tsv_lines(self):
        """
        A string prints as it is, anything else as JSON; a tab in a value
        is kept; line breaks are not.
        """
        path = self.path("out-0")
        with OutputFile(path) as out:
            out.write([(7, "x"), ("k", 7), (["a", 1], {"b": None}), ("k", "tab\there")])
        with open(path) as f:
            self.assertEqual(f.read(), '7\tx\nk\t7\n["a",1]\t{"b":null}\nk\ttab\there\n')
        for key, value, error in [("a\nb", 1, "the key 'a\\nb' holds a line break"),
                                  ("k", "two\nlines", "the value 'two\\nlines' of the key 'k' "
                                                      "holds a line break"),
                                  ("k\r", 1, "holds a carriage return")]:
            with OutputFile(path) as out:
                e = self.assertRaises(OutputError, out.write, [(key, value)])
            self.assertIn(error, str(e))


class KeyTests(Base):
    JOB = os.path.join(JOBS, "typed_keys.py")

    def corpus(self):
        return write_files(self.path("in"), {f"f{i}.txt": "a b c d e f g h i a\n"
                                             for i in range(4)})

    def test_keys_python_finds_equal_are_one_key_whatever_the_reducers(self):
        """
        1, 1.0 and True are one key (as in a dict), as are 0 and -0.0 and
        [1, 2.0] and [1.0, 2], printed as the first one read: the same
        lines for any number of reduce tasks, inline or by processes, since
        they are partitioned alike.
        (They were partitioned by their JSON text, so they were one key or
        not depending on the number of reduce tasks.)
        """
        corpus = self.corpus()
        expected = ["-0.0\t8", "1\t16", "[1,2.0]\t8"]
        for reducers in (1, 2, 3, 5):
            result = txmr.run(self.JOB, corpus, self.path(f"o{reducers}"), workers=0,
                              reducers=reducers)
            self.assertEqual(sorted(f"{k}\t{v}" for k, v in result.pairs()), expected, reducers)
        out = self.path("processes")
        result = self.txmr("run", self.JOB, "-i", corpus, "-o", out, "-w", "2", "-r", "5")
        self.assertEqual(result.returncode, 0, result.stderr)
        lines = sorted(line for n in range(5) for line in open(os.path.join(out, f"out-{n}")))
        self.assertEqual(lines, [line + "\n" for line in expected])

    def test_tsv_refuses_a_key_and_a_string_that_print_alike(self):
        corpus = self.corpus()
        for inline in ([], ["--inline"]):
            out = self.path(f"o{len(inline)}")
            result = self.txmr("run", self.JOB, *inline, "-i", corpus, "-o", out, "-w", "1",
                               "-r", "1", "--max-attempts", "1", "--", "--mixed")
            self.assertEqual(result.returncode, 1, result.stderr)
            self.assertIn("reduce task 0 failed 1 times; last, attempt ", result.stderr)
            self.assertIn("OutputError: the key 7 and the string key '7' are in one TSV file",
                          result.stderr)
            self.assertIn('OUTPUT = "jsonl" writes any key exactly', result.stderr)
            self.assertFalse(os.path.exists(os.path.join(out, "_SUCCESS")))

    def test_tsv_kinds_by_file_in_either_order(self):
        for pairs, culprits in [([(7, 1), ("x", 1), ("7", 1)], (7, "'7'")),
                                ([("[1]", 1), ("y", 2), (None, 1), (("a", 2), 1)],
                                 (("a", 2), "'[1]'")),
                                ([("true", 1), (1.5, 1)], (1.5, "'true'")),
                                ([("{}", 1), ({"a": 1}, 1)], ({"a": 1}, "'{}'")),
                                ([("NaN", 1), (float("nan"), 1)], (float("nan"), "'NaN'")),
                                ([(float("-inf"), 1), ("-Infinity", 1)],
                                 (float("-inf"), "'-Infinity'"))]:
            with OutputFile(self.path("out-0")) as out:
                e = self.assertRaises(OutputError, out.write, pairs)
            self.assertIn(f"the key {culprits[0]!r} and the string key {culprits[1]}", str(e))
        # Strings that do not read as JSON beside other keys; strings that
        # read as JSON of another kind than the other keys; strings that do
        # beside strings only; and a file at a time.
        for batches in ([[(7, 1), ("seven", 1), ("-x", 1), ("nully", 1), ("", 1),
                          ("2024-01-01T10:00:00", 1), ("10.0.0.1", 1), ("01", 1), ("1st", 1)]],
                        [[(["length", 3], 1), ("7", 1), ("{}", 1)]],
                        [[(None, 1)], [("[1]", 1)]],
                        [[("7", 1)], [("[1]", 1), ("true", 2)]]):
            with OutputFile(self.path("out-0")) as out:
                for batch in batches:
                    out.write(batch)
        with OutputFile(self.path("out-1")) as out:
            out.write([(7, 1)])
        with OutputFile(self.path("out-2")) as out:
            out.write([("7", 1)])

    def test_a_key_that_is_not_a_finite_number_is_refused_naming_it(self):
        """
        NaN equals nothing: each was a key of its own, printed alike.
        """
        corpus = write_files(self.path("in"), {"a.txt": "x\ny\n"})
        job = write_files(self.path("jobs"), {"nan.py": (
            "def map(name, line):\n"
            "    yield float('nan'), 1\n"
            "def reduce(key, values):\n"
            "    yield key, sum(values)\n")})
        e = self.assertRaises(JobFailed, txmr.run, os.path.join(job, "nan.py"), corpus,
                              self.path("o"), workers=0)
        self.assertIn("the key nan is not a finite number", str(e))

    def test_an_object_key_is_refused_naming_it(self):
        corpus = write_files(self.path("in"), {"a.txt": "x y\n"})
        job = write_files(self.path("jobs"), {"objects.py": (
            "def map(name, line):\n"
            "    for w in line.split():\n"
            "        yield {'w': w}, 1\n"
            "def reduce(key, values):\n"
            "    yield key, sum(values)\n")})
        e = self.assertRaises(JobFailed, txmr.run, os.path.join(job, "objects.py"), corpus,
                              self.path("o"), workers=0)
        self.assertIn("the key {'w': 'x'} holds an object (a dict), which cannot be grouped",
                      str(e))


class MapOnlyTests(Base):
    def test_each_map_task_writes_its_pairs_in_input_order(self):
        corpus = self.path("in")
        write_corpus(corpus, files=5, lines=50)
        splits = plan_splits(list_inputs(corpus), 3, "lines")

        def lines_of(task):
            for name, start, end in task:
                with open(os.path.join(corpus, name), "rb") as f:
                    data = f.read()
                yield from data[start:end].decode().splitlines()

        for inline in ([], ["--inline"]):
            out = self.path(f"out{len(inline)}")
            result = self.txmr("run", os.path.join(JOBS, "maponly.py"), *inline, "-i", corpus,
                               "-o", out, "-w", "2", "-m", "3")
            self.assertEqual(result.returncode, 0, result.stderr)
            self.assertEqual(sorted(os.listdir(out)), ["_SUCCESS", "out-0", "out-1", "out-2"])
            for m in range(3):
                expected = [(line, str(len(line))) for line in lines_of(splits[m])]
                self.assertEqual(list(read_pairs(os.path.join(out, f"out-{m}"))), expected)

    def test_reducers_zero_skips_any_jobs_reduce(self):
        corpus = self.corpus(files=2)
        out = self.path("out")
        result = self.txmr("run", os.path.join(JOBS, "pairs.py"), "-i", corpus, "-o", out,
                           "-w", "1", "-m", "2", "-r", "0")
        self.assertEqual(result.returncode, 0, result.stderr)
        words = []
        for m in range(2):
            words += [k for k, v in read_pairs(os.path.join(out, f"out-{m}")) if v == "1"]
        self.assertEqual(len(words), sum(int(c) for c in counted(corpus).values()))

    def test_the_job_is_over_when_its_maps_are(self):
        scheduler = Scheduler([[["a", 0, 1]], [["b", 0, 1]]], 0)
        scheduler.register("w", 0)
        first = scheduler.assign("w", 1)
        self.assertEqual(scheduler.committed(scheduler.report_done(
            "w", Kind.MAP, first.task.index, first.id), 2), [])
        self.assertFalse(scheduler.over)
        second = scheduler.assign("w", 3)
        instructions = scheduler.committed(scheduler.report_done(
            "w", Kind.MAP, second.task.index, second.id), 4)
        self.assertEqual([type(i).__name__ for i in instructions], ["JobOver"])
        self.assertTrue(scheduler.ok)
        resumed = Scheduler([[["a", 0, 1]], [["b", 0, 1]]], 0)
        resumed.restore(Kind.MAP, 0, 1, {}, [], 0)
        self.assertFalse(resumed.over)
        resumed.restore(Kind.MAP, 1, 2, {}, [], 0)
        self.assertTrue(resumed.ok, "a resumed map-only job whose maps are done is complete")

    def test_a_module_without_reduce_says_how_to_be_map_only(self):
        e = self.assertRaises(JobError, load_job, os.path.join(JOBS, "noreduce.py"))
        self.assertIn("no reduce() function (REDUCE = None makes a map-only job)", str(e))


class Rows:
    """
    CSV rows without a header, as lists, gathered per file in order.
    """

    INPUT = "csv"
    OUTPUT = "jsonl"

    def map(self, name, row):
        yield name, row

    def reduce(self, name, rows):
        yield name, rows


class Lengths:
    """
    A class defined here, not loadable by name in another process.
    """

    OUTPUT = "jsonl"

    def configure(self, parser):
        parser.add_argument("--longer-than", type=int, default=0)

    def map(self, name, line):
        if len(line) > self.options.longer_than:
            yield len(line), 1

    def reduce(self, length, ones):
        txmr.counter("lengths", "seen")
        yield length, sum(ones)


class CombineWithoutReduceTests(Base):
    def test_a_combine_with_no_reduce_is_refused_naming_it(self):
        """
        A map-only job, or a step with no reduce, runs no combine: its
        combine was dropped silently.
        """
        corpus = write_files(self.path("in"), {"a.txt": "x y\n"})
        jobs = write_files(self.path("jobs"), {
            "maponly_combine.py": ("REDUCE = None\n"
                                   "def map(name, line):\n"
                                   "    yield line, 1\n"
                                   "def combine(key, values):\n"
                                   "    yield key, sum(values)\n"),
            "step_combine.py": ("import txmr\n"
                                "class Job:\n"
                                "    def steps(self):\n"
                                "        return [txmr.Step(map=self.m, combine=self.c)]\n"
                                "    def m(self, name, line):\n"
                                "        yield line, 1\n"
                                "    def c(self, key, values):\n"
                                "        yield key, sum(values)\n")})
        for job, error in [("maponly_combine.py", "combine() with REDUCE = None"),
                           ("step_combine.py:Job", "a step has a combine and no reduce")]:
            result = self.txmr("run", os.path.join(jobs, job), "-i", corpus, "-o",
                               self.path("o"), "-w", "1")
            self.assertEqual(result.returncode, 2, result.stderr)
            self.assertIn(error, result.stderr)
            self.assertFalse(os.path.exists(self.path("o/_SUCCESS")))


class PythonAPITests(Base):
    def test_run_with_processes_and_read_the_pairs(self):
        corpus = self.corpus()
        result = txmr.run(OPTIONS_JOB, corpus, self.path("out"), workers=2, mappers=3,
                          args=["--min-count", "1000"])
        self.assertIsInstance(result, Result)
        self.assertEqual(dict(result.pairs()), at_least(counted(corpus), 1000))
        self.assertEqual(result.counters["txmr"]["reduce_output_records"],
                         len(at_least(counted(corpus), 1000)))

    def test_run_inline_a_class_defined_in_a_script(self):
        corpus = self.corpus(files=2)
        expected = {}
        for name in os.listdir(corpus):
            with open(os.path.join(corpus, name)) as f:
                for line in f.read().splitlines():
                    if len(line) > 20:
                        expected[len(line)] = expected.get(len(line), 0) + 1
        result = txmr.run(Lengths, corpus, self.path("out"), workers=0,
                          args=["--longer-than", "20"])
        self.assertEqual(dict(result.pairs()), expected)
        self.assertEqual(result.counters["lengths"]["seen"], len(expected))
        # The same class by its module, in worker processes.
        result = txmr.run(Lengths, corpus, self.path("out2"), workers=1,
                          args=["--longer-than", "20"])
        self.assertEqual(dict(result.pairs()), expected)

    def test_errors(self):
        corpus = self.corpus(files=1)
        for workers in (0, 1):
            e = self.assertRaises(ConfigError, txmr.run, OPTIONS_JOB, corpus, self.path("o"),
                                  workers=workers, args=["--nope"])
            self.assertIn("unrecognized arguments: --nope", str(e))
            e = self.assertRaises(JobFailed, txmr.run, os.path.join(JOBS, "tabbed.py"), corpus,
                                  self.path("o"), workers=workers, max_attempts=1)
            self.assertIn("the key 'a\\tb' holds a tab", str(e))
            self.assertEqual([n for n in os.listdir(self.path("o")) if n.startswith("out-")],
                             [], "no output left")
