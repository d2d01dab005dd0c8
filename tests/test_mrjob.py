"""
mrjob jobs, unchanged: the job files under tests/jobs/mr_*.py and
mrjob_*.py run by txmr (worker processes, and inline) give the lines
mrjob's own inline runner gives on the same input (as a multiset), and the
same counters, step by step; with mrjob hidden, txmr's compatible surface
runs the same files to the same lines.  What txmr cannot run as mrjob and
Hadoop mean it is refused, named, before any task runs.
"""

import collections
import importlib.util
import json
import logging
import os
import subprocess
import sys
import textwrap

from twisted.trial import unittest

import txmr

from tests.cluster import EXAMPLES, JOBS, Cluster
from tests.test_job_api import Base, write_files

try:
    import mrjob.job  # noqa: F401

    REAL = not getattr(sys.modules["mrjob.job"], "TXMR_COMPAT", False)
except ImportError:
    REAL = False
# mrjob's runner says it has no config file, once per run.
logging.getLogger("mrjob").setLevel(logging.ERROR)
NO_MRJOB = "mrjob does not import here (pip install '.[test]' installs it)"

TEXT = {
    "a.txt": "The cat and the hat\nthe dog, the cat's toy\n\nA tale of two cities\n",
    "b.txt": "it was the best of times it was the worst of times\nno dog here\n",
    "c.txt": "".join(f"line {i} of the third file {'dog ' * (i % 4)}\n" for i in range(300)),
    # Line ends as Windows writes them, and a stray CR: mrjob strips them all.
    "d.txt": "crlf line one\r\nand two é\r\r\nlast\r",
}
EVENTS = {"e1.csv": "bob,10,x\nbob,9,y\nann,3,z\nbob,2,w\n",
          "e2.csv": "ann,12,b\nzed,1,q\nann,100,c\n"}

# (job file, input, the job's own arguments)
CASES = {
    "word_freq": ("mr_word_freq.py", TEXT, []),
    "most_used_word": ("mr_most_used_word.py", TEXT, []),
    "passthru": ("mr_passthru.py", TEXT, ["--min-length", "4", "--upper"]),
    "passthru_default": ("mr_passthru.py", TEXT, []),
    "map_only": ("mr_map_only.py", TEXT, []),
    "raw": ("mr_raw.py", TEXT, []),
    "sort_values": ("mr_sort_values.py", EVENTS, []),
    # Tasks read their jobconf from the environment: run as processes only
    # (CompareWithMRJob.test_jobconf_reaches_each_task_as_in_mrjob), since a
    # task run inline leaves its variables in the process that ran it.
    "jobconf": ("mrjob_jobconf.py", TEXT,
                ["-D", "my.command.line=cli", "-D", "my.overridden=cli",
                 "--cmdenv", "MY_CMDENV=yes"]),
}


def job_class(path):
    """
    The MRJob class of a job file, imported as mrjob's runner needs it (a
    module in sys.modules, for its source file).
    """
    from mrjob.job import MRJob

    name = "mrjob_case_" + os.path.basename(path)[:-3]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return next(v for v in vars(module).values()
                if isinstance(v, type) and issubclass(v, MRJob) and v is not MRJob
                and v.__module__ == name)


def mrjob_inline(path, input_dir, args):
    """
    The output lines and the per-step counters of mrjob's inline runner.
    """
    inputs = sorted(os.path.join(input_dir, n) for n in os.listdir(input_dir))
    job = job_class(path)(args=["-r", "inline", "--no-conf"] + list(args) + inputs)
    with job.make_runner() as runner:
        runner.run()
        lines = b"".join(runner.cat_output()).decode("utf-8").splitlines()
        return lines, runner.counters()


def output_lines(directory):
    lines = []
    for name in sorted(os.listdir(directory)):
        if name.startswith("out-"):
            with open(os.path.join(directory, name), encoding="utf-8") as f:
                lines += f.read().splitlines()
    return lines


def user_counters(counters):
    return {group: names for group, names in counters.items() if group != "txmr"}


class CompareWithMRJob(Base):
    """
    Each case as mrjob's inline runner runs it, and as txmr does.
    """

    if not REAL:
        skip = NO_MRJOB

    def check(self, case, workers):
        job, files, args = CASES[case]
        path = os.path.join(JOBS, job)
        corpus = write_files(self.path("in"), files)
        expected, expected_counters = mrjob_inline(path, corpus, args)
        self.assertTrue(expected, "mrjob wrote something")
        out = self.path(f"out-{workers}")
        result = txmr.run(path, corpus, out, workers=workers, mappers=3, args=args)
        self.assertEqual(collections.Counter(output_lines(out)), collections.Counter(expected))
        self.assertEqual([user_counters(c) for c in result.steps],
                         [c for c in expected_counters])

    def test_word_freq(self):
        self.check("word_freq", 2)
        self.check("word_freq", 0)

    def test_most_used_word_in_two_steps(self):
        self.check("most_used_word", 2)
        self.check("most_used_word", 0)

    def test_passthru_options_change_the_result(self):
        self.check("passthru", 2)
        self.check("passthru", 0)
        self.check("passthru_default", 0)

    def test_map_only(self):
        self.check("map_only", 2)
        self.check("map_only", 0)

    def test_mapper_raw(self):
        self.check("raw", 0)
        self.check("raw", 2)

    def test_sort_values(self):
        self.check("sort_values", 0)
        self.check("sort_values", 2)

    def test_txmr_run_command_with_passthru_options(self):
        """
        txmr run FILE -i IN -o OUT -w 2 -- --passthru X: the file as it
        is, and mrjob's lines; the ignored JOBCONF key is named once.
        """
        job, files, args = CASES["passthru"]
        path = os.path.join(JOBS, job)
        corpus = write_files(self.path("in"), files)
        expected, _ = mrjob_inline(path, corpus, args)
        out = self.path("out")
        result = self.txmr("run", path, "-i", corpus, "-o", out, "-w", "2", "--", *args)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(collections.Counter(output_lines(out)), collections.Counter(expected))
        self.assertEqual(result.stderr.count("mapreduce.task.timeout"), 1, result.stderr)
        self.assertIn("step 2/2", result.stdout)
        # JOBCONF mapreduce.job.reduces = 3: the last step wrote 3 files.
        self.assertEqual(sorted(n for n in os.listdir(out) if n.startswith("out-")),
                         ["out-0", "out-1", "out-2"])
        inline = self.txmr("run", "--inline", path, "-i", corpus, "-o", self.path("o2"),
                           "--", *args)
        self.assertEqual(inline.returncode, 0, inline.stderr)
        self.assertEqual(collections.Counter(output_lines(self.path("o2"))),
                         collections.Counter(expected))

    def test_jobconf_reaches_each_task_as_in_mrjob(self):
        """
        JOBCONF, -D, MRStep(jobconf=), --cmdenv, SORT_VALUES's settings,
        mapreduce.task.ismap and the map task's input file are in each
        task's environment as mrjob's inline runner puts them there
        (jobconf_from_env reads them), in worker processes and inline;
        PARTITIONER and LIBJARS, which mrjob's local runners ignore, are
        ignored and named.
        """
        job, files, args = CASES["jobconf"]
        path = os.path.join(JOBS, job)
        corpus = write_files(self.path("in"), files)
        expected, _ = mrjob_inline(path, corpus, args)
        self.assertIn(f'["file", "file://{corpus}/a.txt"]', "".join(expected))
        self.assertIn('["map", "my.command.line"]\t["[\'cli\']"]', expected)
        for inline in ([], ["--inline"]):
            out = self.path(f"out{len(inline)}")
            result = self.txmr("run", path, *inline, "-i", corpus, "-o", out, "-w", "2",
                               "--", *args)
            self.assertEqual(result.returncode, 0, result.stderr)
            self.assertEqual(collections.Counter(output_lines(out)),
                             collections.Counter(expected), inline)
            for ignored in ("mapreduce.job.partitioner.class", "tmpjars"):
                self.assertEqual(result.stderr.count(ignored), 1, result.stderr)
        self.assertNotIn("my_command_line", os.environ, "tasks ran in other processes")

    def test_a_driver_runs_a_one_step_file_as_it_is(self):
        job, files, args = CASES["word_freq"]
        cluster = Cluster(self, job="jobs/" + job, maps=3, reduces=2)
        write_files(cluster.input, files)
        expected, _ = mrjob_inline(os.path.join(JOBS, job), cluster.input, args)
        cluster.start_driver()
        cluster.start_worker()
        cluster.start_worker()
        self.assertEqual(cluster.wait(), 0, cluster.log())
        self.assertEqual(collections.Counter(output_lines(cluster.output)),
                         collections.Counter(expected))
        self.assertEqual(cluster.summary()["counters"]["words"]["distinct"],
                         len(expected))

    def test_a_wrong_passthru_option_fails_before_any_task(self):
        corpus = write_files(self.path("in"), TEXT)
        result = self.txmr("run", os.path.join(JOBS, "mr_passthru.py"), "-i", corpus, "-o",
                           self.path("out"), "-w", "1", "--", "--min-length", "many")
        self.assertEqual(result.returncode, 2, result.stderr)
        self.assertIn("--min-length: invalid int value: 'many'", result.stderr)


BLOCKER = textwrap.dedent("""
    import json, sys

    class HideMRJob:
        # Hides the installed mrjob, as on a Python where it does not import.
        def find_spec(self, name, path=None, target=None):
            if name == "mrjob" or name.startswith("mrjob."):
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
            return None

    sys.meta_path.insert(0, HideMRJob())
    import txmr

    cases = json.loads(sys.argv[1])
    done = {}
    for name, (path, corpus, out, args) in cases.items():
        result = txmr.run(path, corpus, out, workers=0, mappers=3, args=args)
        done[name] = {"steps": [{g: c for g, c in s.items() if g != "txmr"}
                                for s in result.steps]}
    import mrjob.job
    done["compat"] = bool(getattr(mrjob.job, "TXMR_COMPAT", False))
    print(json.dumps(done))
""")


class WithoutMRJob(Base):
    """
    The same files with the real package hidden: txmr's compatible surface
    takes mrjob's names, and the lines are the same.
    """

    def test_the_compatible_surface_gives_the_same_lines(self):
        cases, expected = {}, {}
        for name, (job, files, args) in CASES.items():
            corpus = write_files(self.path(f"in-{name}"), files)
            path = os.path.join(JOBS, job)
            cases[name] = (path, corpus, self.path(f"compat-{name}"), args)
            if REAL:
                expected[name] = mrjob_inline(path, corpus, args)
            else:
                # No mrjob to compare with: txmr's own engine, inline.
                result = txmr.run(path, corpus, self.path(f"own-{name}"), workers=0,
                                  mappers=3, args=args)
                expected[name] = (output_lines(self.path(f"own-{name}")),
                                  [user_counters(c) for c in result.steps])
        result = subprocess.run([sys.executable, "-c", BLOCKER, json.dumps(cases)],
                                capture_output=True, text=True, env=self.env, timeout=300,
                                cwd=self.base)
        self.assertEqual(result.returncode, 0, result.stderr)
        done = json.loads(result.stdout.splitlines()[-1])
        self.assertTrue(done.pop("compat"), "the job files got txmr's surface")
        for name in CASES:
            lines, counters = expected[name]
            self.assertEqual(collections.Counter(output_lines(cases[name][2])),
                             collections.Counter(lines), name)
            self.assertEqual(done[name]["steps"], list(counters), name)
        counted = collections.Counter()
        for text in TEXT.values():
            counted.update(w.lower() for w in __import__("re").findall(r"[\w']+", text))
        self.assertEqual(collections.Counter(output_lines(cases["word_freq"][2])),
                         collections.Counter(f'{json.dumps(w)}\t{n}' for w, n in counted.items()))

    def test_python_job_py_without_mrjob_says_how_to_run_it(self):
        result = subprocess.run(
            [sys.executable, "-c", BLOCKER.split("import txmr")[0] + textwrap.dedent("""
                import runpy
                from txmr.compat import ensure_mrjob
                ensure_mrjob()
                runpy.run_path(sys.argv[1], run_name="__main__")
            """), os.path.join(JOBS, "mr_word_freq.py")],
            capture_output=True, text=True, env=self.env, timeout=60)
        self.assertEqual(result.returncode, 1)
        self.assertIn("run this job with txmr: txmr run", result.stderr)


class Loading(Base):
    def test_a_file_with_two_mrjob_classes_is_refused_naming_them(self):
        path = write_files(self.path("jobs"), {"two.py": textwrap.dedent("""
            from mrjob.job import MRJob

            class A(MRJob):
                def mapper(self, _, line):
                    yield line, 1

            class B(A):
                pass
        """)})
        result = self.txmr("run", "--inline", os.path.join(path, "two.py"), "-i", path,
                           "-o", self.path("out"))
        self.assertEqual(result.returncode, 2, result.stderr)
        self.assertIn("defines several MRJob classes (A, B): name one, as", result.stderr)
        good = self.txmr("run", "--inline", os.path.join(path, "two.py") + ":B", "-i", path,
                         "-o", self.path("out"), "-r", "1")
        self.assertEqual(good.returncode, 0, good.stderr)

    def test_help_job_shows_passthru_options(self):
        result = self.txmr("run", os.path.join(JOBS, "mr_passthru.py"), "--help-job")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("--min-length", result.stdout)



class RefusedTests(unittest.TestCase):
    def test_a_step_with_a_reducer_is_refused_with_no_reduce_task(self):
        """
        An mrjob step's map emits pairs encoded for its reducer: with no
        reduce task they would reach the output encoded twice.  Refused
        before anything runs, by txmr.run and by a driver.
        """
        from txmr.plan import ConfigError

        job = os.path.join(JOBS, "mr_word_freq.py")
        out = self.mktemp()
        e = self.assertRaises(ConfigError, txmr.run, job, EXAMPLES, out, reducers=0,
                              workers=0, quiet=True)
        self.assertIn("has a reducer: it cannot run with no reduce task", str(e))
        self.assertFalse(os.path.exists(os.path.join(out, "out-0")))


REFUSED_JOB = os.path.join(JOBS, "mrjob_refused.py")

# The job's arguments that make it use one Hadoop feature, and what txmr
# says of it.
REFUSED = {
    "input format": (["--refuse", "input-format"],
                     "HADOOP_INPUT_FORMAT (or hadoop_input_format()) "
                     "'org.apache.hadoop.mapred.lib.NLineInputFormat' is a Java class"),
    "output format": (["--refuse", "output-format"], "HADOOP_OUTPUT_FORMAT (or "),
    "key comparator": (["--refuse", "comparator"],
                       "jobconf mapreduce.job.output.key.comparator.class="
                       "org.apache.hadoop.mapred.lib.KeyFieldBasedComparator sorts keys by a "
                       "Java comparator, which txmr cannot do; SORT_VALUES = True sorts values"),
    "key comparator by -D": (["-D", "mapred.output.key.comparator.class=X"],
                             "jobconf mapred.output.key.comparator.class=X sorts keys"),
    "compressed output": (["--refuse", "compress"],
                          "jobconf mapreduce.output.fileoutputformat.compress=true compresses "
                          "the output files"),
    "key fields of a step": (["--refuse", "key-fields"],
                             "jobconf stream.num.map.output.key.fields=2 changes how Hadoop "
                             "streaming splits lines"),
    "FILES": (["--refuse", "files"],
              "FILES (or --files) 'stop_words.txt': txmr does not copy files to a working "
              "directory of each task"),
    "combiner alone": (["--refuse", "combiner-only"],
                       "step 1 has a combiner and no reducer, which txmr does not run"),
    "-D not KEY=VALUE": (["-D", "novalue"], "-D argument 'novalue' is not of the form "
                                             "KEY=VALUE"),
    "mrjob.conf": (["-c", "mrjob.conf"], "-c/--conf-path 'mrjob.conf': txmr reads no "
                                         "mrjob.conf"),
}


class HadoopFeatures(Base):
    """
    A Hadoop feature of an mrjob job that txmr cannot run as Hadoop means
    it (mrjob's local runners ignore most, so give other lines than Hadoop)
    fails the job in one line that names it, before any task runs.
    """

    def test_each_feature_is_refused_naming_it_before_any_task(self):
        corpus = write_files(self.path("in"), TEXT)
        for name, (args, message) in REFUSED.items():
            for inline in ([], ["--inline"]):
                out = self.path("out")
                result = self.txmr("run", REFUSED_JOB, *inline, "-i", corpus, "-o", out,
                                   "-w", "1", "--", *args)
                self.assertEqual(result.returncode, 2, (name, result.stderr))
                self.assertIn(message, result.stderr, name)
                self.assertEqual(len(result.stderr.strip().splitlines()), 1, result.stderr)
                self.assertNotIn("status page", result.stderr, "no worker was started")
                self.assertFalse(os.path.exists(out) and
                                 [n for n in os.listdir(out) if n.startswith("out-")], name)

    def test_without_the_feature_the_job_runs_as_in_mrjob(self):
        corpus = write_files(self.path("in"), TEXT)
        out = self.path("out")
        result = self.txmr("run", REFUSED_JOB, "-i", corpus, "-o", out, "-w", "1")
        self.assertEqual(result.returncode, 0, result.stderr)
        counted = collections.Counter()
        for text in TEXT.values():
            counted.update(w.lower() for w in text.split())
        lines = collections.Counter(output_lines(out))
        self.assertEqual(lines, collections.Counter(f"{json.dumps(w)}\t{n}"
                                                    for w, n in counted.items()))
        if REAL:
            expected, _ = mrjob_inline(REFUSED_JOB, corpus, [])
            self.assertEqual(lines, collections.Counter(expected))

    def test_txmr_run_refuses_a_combiner_alone(self):
        from txmr.plan import ConfigError

        corpus = write_files(self.path("in"), TEXT)
        e = self.assertRaises(ConfigError, txmr.run, REFUSED_JOB, corpus, self.path("out"),
                              workers=0, quiet=True, args=["--refuse", "combiner-only"])
        self.assertIn("step 1 has a combiner and no reducer", str(e))


class TaskEnvironmentTests(unittest.TestCase):
    """
    Each task's variables replace the previous task's, in one process.
    """

    def test_a_task_sets_its_variables_and_undoes_the_previous_tasks(self):
        from txmr.compat.hadoop import TaskEnvironment

        environ = {"HOME": "/home/u", "my_setting": "mine"}
        tasks = TaskEnvironment(environ)
        tasks.enter({"my_setting": "step 1", "only_1": "x"})
        self.assertEqual(environ, {"HOME": "/home/u", "my_setting": "step 1", "only_1": "x"})
        tasks.enter({"other": "y"})
        self.assertEqual(environ, {"HOME": "/home/u", "my_setting": "mine", "other": "y"})
        tasks.restore()
        self.assertEqual(environ, {"HOME": "/home/u", "my_setting": "mine"})

    def test_a_path_variable_goes_before_the_one_inherited_as_mrjob_does(self):
        from txmr.compat.hadoop import TaskEnvironment

        environ = {"PATH": "/usr/bin"}
        tasks = TaskEnvironment(environ)
        for _ in range(2):
            tasks.enter({"PATH": "/opt/bin"})
            self.assertEqual(environ["PATH"], "/opt/bin" + os.pathsep + "/usr/bin")
        tasks.restore()
        self.assertEqual(environ, {"PATH": "/usr/bin"})
