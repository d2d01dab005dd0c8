"""
Jobs of several steps (txmr.Step): step k's output feeds step k+1, only
the last writes out-*; through txmr run (processes and inline), txmr.run,
and a driver running one step by name.
"""

import collections
import json
import os
import subprocess

import txmr
from txmr.api import JobFailed
from txmr.data.inputs import list_inputs, plan_splits
from txmr.data.output import read_pairs
from txmr.job import load_job

from tests.cluster import JOBS, Cluster, wait_for, write_corpus
from tests.test_job_api import TXMR, Base

NATIVE = os.path.join(JOBS, "steps_native.py")
MAP_ONLY = os.path.join(JOBS, "steps_map_only.py") + ":Counted"


def words_of(corpus):
    counts = collections.Counter()
    for name in os.listdir(corpus):
        with open(os.path.join(corpus, name)) as f:
            counts.update(f.read().lower().split())
    return counts


def tops(corpus, min_count):
    """
    The oracle of steps_native.py: per first letter, the most frequent
    word [count, word] among those counted min_count times or more.
    """
    best = {}
    for word, count in words_of(corpus).items():
        if count >= min_count:
            best[word[0]] = max(best.get(word[0], [0, ""]), [count, word])
    return {letter: json.dumps(pair, separators=(",", ":")) for letter, pair in best.items()}


def out_files(directory):
    return sorted(n for n in os.listdir(directory) if n.startswith("out-"))


class StepsTests(Base):
    def test_three_steps_in_processes_inline_and_from_python(self):
        corpus = self.corpus(files=3)
        counts = sorted(words_of(corpus).values())
        least = str(counts[len(counts) // 2] + 1)
        expected = tops(corpus, int(least))
        self.assertTrue(0 < len(expected) < len(tops(corpus, 1)), "the option filters")
        for mode in (["-w", "2"], ["--inline"]):
            out = self.path(f"out{len(mode)}")
            result = self.txmr("run", NATIVE, *mode, "-i", corpus, "-o", out, "-m", "3",
                               "-r", "2", "--", "--min-count", least)
            self.assertEqual(result.returncode, 0, result.stderr)
            for k in (1, 2, 3):
                self.assertIn(f"step {k}/3: {NATIVE}#step={k}", result.stdout)
                if "-w" in mode:
                    self.assertIn(f"txmr: status page of step {k}/3 at http://", result.stderr)
            self.assertIn("all 3 steps:", result.stdout)
            self.assertEqual(out_files(out), ["out-0", "out-1"])
            pairs = [p for name in out_files(out) for p in read_pairs(os.path.join(out, name))]
            self.assertEqual(dict(pairs), expected)
        for workers in (0, 1):
            result = txmr.run(NATIVE, corpus, self.path(f"api{workers}"), workers=workers,
                              args=["--min-count", least])
            self.assertEqual(dict(result.pairs()), expected)
            self.assertEqual(len(result.steps), 3)
            self.assertEqual(result.steps[1]["keyed"]["words"],
                             sum(1 for c in counts if c >= int(least)))
            self.assertEqual(result.steps[2]["top"]["letters"], len(expected))
            self.assertEqual(result.counters["txmr"]["map_input_records"],
                             sum(s["txmr"]["map_input_records"] for s in result.steps))

    def test_a_map_only_last_step_writes_a_file_per_map_task_in_input_order(self):
        corpus = self.corpus(files=2)
        mid = self.path("mid")
        for workers in (0, 2):
            out = self.path(f"out{workers}")
            result = txmr.run(MAP_ONLY, corpus, out, workers=workers, mappers=3, reducers=2,
                              intermediate=mid)
            self.assertEqual(out_files(out), ["out-0", "out-1", "out-2"])
            step_one = os.path.join(mid, "step-1-out")
            self.assertEqual(out_files(step_one), ["out-0", "out-1"])
            splits = plan_splits(list_inputs(step_one), 3, "lines")
            for m, task in enumerate(splits):
                expected = []
                for name, start, end in task:
                    with open(os.path.join(step_one, name), "rb") as f:
                        data = f.read()
                    # The lines that start in [start, end), as a map reads.
                    offsets = [0] + [i + 1 for i, b in enumerate(data) if b == ord("\n")]
                    lines = [data[o:data.index(b"\n", o)].decode() for o in offsets
                             if start <= o < end and o < len(data)]
                    for line in lines:
                        word, count = json.loads(line)
                        expected.append([f"{word}={count}", len(word)])
                got = [list(p) for p in read_pairs(os.path.join(out, f"out-{m}"), "jsonl")]
                self.assertEqual(got, expected)
            words = {k.rsplit("=", 1)[0]: int(k.rsplit("=", 1)[1]) for k, _ in result.pairs()}
            self.assertEqual(words, dict(collections.Counter(
                w for name in os.listdir(corpus)
                for w in open(os.path.join(corpus, name)).read().split())))

    def test_a_failing_step_ends_the_job_without_output(self):
        corpus = self.corpus(files=2)
        job = os.path.join(JOBS, "steps_fail.py")
        out = self.path("out")
        result = self.txmr("run", job, "-i", corpus, "-o", out, "-w", "1",
                           "--max-attempts", "1")
        self.assertEqual(result.returncode, 1, result.stderr)
        self.assertIn("nothing lazy in step 2", result.stderr)
        self.assertIn("step 2/2 failed", result.stderr)
        self.assertEqual(out_files(out), [])
        e = self.assertRaises(JobFailed, txmr.run, job, corpus, self.path("o2"), workers=0)
        self.assertIn("nothing lazy in step 2", str(e))
        self.assertEqual(out_files(self.path("o2")), [])

    def test_a_failing_first_step_leaves_no_earlier_answer(self):
        """
        A run fails before its last step: the output of an earlier run,
        _SUCCESS and all, must not stay to be taken for this run's answer.
        """
        corpus = self.corpus(files=2)
        job = os.path.join(JOBS, "steps_fail_first.py")
        for runner, out in (("txmr run", self.path("out")), ("txmr.run", self.path("o2"))):
            if runner == "txmr run":
                self.assertEqual(self.txmr("run", job, "-i", corpus, "-o", out, "--inline")
                                 .returncode, 0)
            else:
                txmr.run(job, corpus, out, workers=0, quiet=True)
            self.assertIn("_SUCCESS", os.listdir(out))
            os.environ["TXMR_FAIL_FIRST_STEP"] = self.env["TXMR_FAIL_FIRST_STEP"] = "1"
            try:
                if runner == "txmr run":
                    result = self.txmr("run", job, "-i", corpus, "-o", out, "--inline",
                                       "--max-attempts", "1")
                    self.assertEqual(result.returncode, 1, result.stderr)
                else:
                    self.assertRaises(JobFailed, txmr.run, job, corpus, out, workers=0,
                                      quiet=True)
            finally:
                del os.environ["TXMR_FAIL_FIRST_STEP"], self.env["TXMR_FAIL_FIRST_STEP"]
            self.assertEqual([n for n in os.listdir(out) if not n.startswith(".")], [], runner)

    def test_a_failing_chain_leaves_another_runs_output_alone(self):
        """
        A chain that fails before its last step clears an earlier answer
        from its output, but never while another run holds that output:
        it removed a running job's committed files.
        """
        corpus = self.corpus(files=2)
        out = self.path("held")
        env = dict(self.env, TXMR_SLOW_SECONDS="4")
        holder = subprocess.Popen(TXMR + ["run", os.path.join(JOBS, "slow.py"), "--inline",
                                          "-i", corpus, "-o", out, "-m", "2", "-r", "1"],
                                  env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                  text=True, stdin=subprocess.DEVNULL)
        self.addCleanup(lambda: holder.poll() is None and holder.kill())
        wait_for(lambda: [n for n in os.listdir(self.base) if n.startswith("running-map")],
                 60, "the holder's first map")
        self.env["TXMR_FAIL_FIRST_STEP"] = "1"
        result = self.txmr("run", os.path.join(JOBS, "steps_fail_first.py"), "-i", corpus,
                           "-o", out, "--inline", "--max-attempts", "1")
        self.assertEqual(result.returncode, 1, result.stderr)
        self.assertIn("txmr: the output was left as it is: ", result.stderr)
        self.assertIn("is in use by a txmr run of", result.stderr)
        _, err = holder.communicate(timeout=120)
        self.assertEqual(holder.returncode, 0, err)
        self.assertEqual(sorted(os.listdir(out)), ["_SUCCESS", "out-0"])

    def test_the_same_command_again_resumes_each_step(self):
        corpus = self.corpus(files=2)
        args = ["run", NATIVE, "-i", corpus, "-o", self.path("out"), "-w", "1",
                "--intermediate", self.path("mid"), "--", "--min-count", "2"]
        first = self.txmr(*args)
        self.assertEqual(first.returncode, 0, first.stderr)
        again = self.txmr(*args)
        self.assertEqual(again.returncode, 0, again.stderr)
        pairs = [p for name in out_files(self.path("out"))
                 for p in read_pairs(os.path.join(self.path("out"), name))]
        self.assertEqual(dict(pairs), tops(corpus, 2))

    def test_a_driver_runs_one_step_and_refuses_the_whole_job(self):
        cluster = Cluster(self, job="jobs/steps_native.py", reduces=2)
        write_corpus(cluster.input, files=2)
        process = cluster._spawn("driver", cluster.driver_args())
        self.assertEqual(process.wait(60), 2)
        self.assertIn("has 3 steps: txmr run (or txmr.run) runs them in order; a driver "
                      "runs one step (--job '", cluster.log())
        step = Cluster(self, job="jobs/steps_native.py#step=1", reduces=2,
                       input_dir=cluster.input)
        step.start_driver()
        step.start_worker()
        self.assertEqual(step.wait(), 0, step.log())
        pairs = [p for r in (0, 1) for p in read_pairs(os.path.join(step.output, f"out-{r}"),
                                                          "jsonl")]
        self.assertEqual(dict(pairs), dict(words_of(cluster.input)))

    def test_step_names(self):
        job = load_job(NATIVE + "#step=2")
        self.assertEqual(job.name, NATIVE + "#step=2")
        job.parse_args(["--min-count", "3"])
        self.assertTrue(job.map_only)
        self.assertEqual(job.output_format, "jsonl")
        e = self.assertRaises(Exception, load_job(NATIVE + "#step=4").parse_args, [])
        self.assertIn("has 3 step(s), not a step 4", str(e))
        e = self.assertRaises(Exception, load_job, os.path.join(JOBS, "pairs.py") + "#step=1")
        self.assertIn("has no steps(): it has no step 1", str(e))

    def test_spark_takes_jobs_of_steps(self):
        """
        The Spark engine runs them (tests/test_spark.py compares the output
        with txmr's engine's): its check lets both kinds through.
        """
        from txmr.spark.options import check_supported

        for name in (NATIVE, os.path.join(JOBS, "mr_word_freq.py")):
            check_supported(load_job(name))
