"""
The local cluster behind C{txmr run}: a driver and workers started through
twistd on this machine, each in its own session so that Ctrl-C on the
terminal reaches C{txmr run} alone and it stops them in order; it replaces
workers that die, starts the driver again if it dies before its job ends,
and gives them a fresh secret.
"""

import json
import os
import secrets
import shlex
import signal
import subprocess
import sys
import time
import urllib.request

BIN = os.path.dirname(sys.executable)
RESTARTS_PER_WORKER = 3
# Set in the daemons' environment: a script run as a job file that calls
# txmr.run unguarded fails there instead of starting clusters in a loop.
DAEMON_VARIABLE = "TXMR_LOCAL_DAEMON"


def twistd():
    """
    The command that runs twistd of this Python environment.
    """
    path = os.path.join(BIN, "twistd")
    return [path] if os.path.exists(path) else [sys.executable, "-m", "twisted.scripts.twistd"]


def driver_flags(a):
    flags = ["--mappers", str(a.mappers), "--reducers", str(a.reducers),
             "--max-attempts", str(a.max_attempts), "--memory", str(a.memory)]
    if a.task_timeout:
        flags += ["--task-timeout", str(a.task_timeout)]
    if a.no_speculation:
        flags.append("--no-speculation")
    if a.skip_bad_records:
        flags.append("--skip-bad-records")
    if getattr(a, "storage_options", None):
        flags.append("--storage-options=" + a.storage_options)
    if a.fresh:
        flags.append("--fresh")
    if getattr(a, "job_args", None):
        # One argument with "=": a job option that starts with "-" is never
        # taken for one of the driver's.
        flags.append("--job-args=" + shlex.join(a.job_args))
    return flags


class CannotStart(Exception):
    """
    The driver refused the job before running anything (exit 2, as the
    same error under --inline).
    """


class LocalCluster:
    """
    A driver and local workers, in their own sessions so that Ctrl-C on
    the terminal reaches us alone and we stop them in order.
    """

    def __init__(self, a, work, announce=True, path=()):
        self.a = a
        self.work = work
        # Whether to print the status page's URL.
        self.announce = announce
        # Directories the daemons import from, before the current one.
        self.path = list(path)
        self.processes = []

    def spawn(self, name, args):
        # The daemons run in the work directory: a job module in the user's
        # directory is found through PYTHONPATH, as `python -m` finds it.
        path = os.pathsep.join(p for p in (*self.path, os.getcwd(), os.environ.get("PYTHONPATH"))
                               if p)
        with open(os.path.join(self.work, name + ".log"), "wb") as log:
            process = subprocess.Popen(
                twistd() + ["--pidfile=", "-n"] + args, stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True, cwd=self.work,
                env=dict(os.environ, PYTHONPATH=path, **{DAEMON_VARIABLE: "1"}))
        self.processes.append(process)
        return process

    def start(self):
        a = self.a
        port_file = os.path.join(self.work, "address")
        self.summary_file = os.path.join(self.work, "summary.json")
        # A fresh secret for each run: every local user can reach the port,
        # but only this command's own driver and workers know the secret.
        self.secret = secrets.token_urlsafe(32)
        self.secret_file = os.path.join(self.work, "secret")
        fd = os.open(self.secret_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(self.secret + "\n")
        self.port_file = port_file
        self.driver_args = [
            "txmr-driver", "--job", a.job, "--input", a.input, "--output", a.output,
            "--intermediate", a.intermediate or os.path.join(self.work, "intermediate"),
            "--port-file", port_file, "--summary-file", self.summary_file,
            "--secret-file", self.secret_file,
            # This command knows its workers: no late one to wait for.
            "--linger", "0"] + driver_flags(a)
        self.start_driver("tcp:0:interface=127.0.0.1")
        port = self.address.rsplit("port=", 1)[1]
        # A driver started again listens where its workers look for it.
        self.listen = f"tcp:{port}:interface=127.0.0.1"
        self.driver_restarts = 0
        self.url = f"http://127.0.0.1:{port}"
        if self.announce:
            of = f" of {self.a.step_label}" if getattr(self.a, "step_label", None) else ""
            print(f"txmr: status page{of} at {self.url}/?token={self.secret}", file=sys.stderr,
                  flush=True)
        self.say_what_was_removed()
        self.workers = [self.start_worker(i) for i in range(a.workers)]
        self.restarts = 0

    def say_what_was_removed(self):
        """
        Echo the driver's word on files of an earlier run it removed from
        the output (or intermediate) directory: its log is this command's
        to delete, and no file goes silently.
        """
        with open(os.path.join(self.work, "driver.log"), errors="replace") as f:
            for line in f:
                if " of an earlier run from " in line:
                    print("txmr: " + line.split("] ", 1)[-1].rstrip(), file=sys.stderr,
                          flush=True)

    def start_driver(self, listen):
        if os.path.exists(self.port_file):
            os.unlink(self.port_file)
        self.driver = self.spawn("driver", self.driver_args + ["--listen", listen])
        deadline = time.monotonic() + 60
        while not os.path.exists(self.port_file):
            if self.driver.poll() is not None or time.monotonic() > deadline:
                raise CannotStart(self.failed_to_start())
            time.sleep(0.02)
        with open(self.port_file) as f:
            self.address = f.read().strip()

    def restart_dead_driver(self):
        """
        A driver killed before its job ended (it wrote no summary) is
        started again, at most RESTARTS_PER_WORKER times: it resumes the
        job from its journal, and the workers reconnect to it.

        @return: whether it was restarted.
        """
        code = self.driver.returncode
        if (code == 2 or os.path.exists(self.summary_file)
                or self.driver_restarts >= RESTARTS_PER_WORKER):
            return False
        self.driver_restarts += 1
        print(f"txmr: the driver died (exit {code}); starting it again, to resume the job",
              file=sys.stderr, flush=True)
        self.start_driver(self.listen)
        return True

    def start_worker(self, i):
        return self.spawn(f"worker-{i}", ["txmr-worker", "--driver", self.address,
                                          "--give-up", "30", "--secret-file", self.secret_file])

    @property
    def may_restart(self):
        return self.restarts < RESTARTS_PER_WORKER * len(self.workers)

    def all_workers_dead(self):
        """
        Every worker failed and none may be restarted.  (Workers that exit
        0 were told the job is over: the driver follows them.)
        """
        return not self.may_restart and all(w.poll() not in (None, 0) for w in self.workers)

    def replace_dead_workers(self):
        """
        Start a new worker in place of one that died while the job runs
        (the driver gives its task to another), up to RESTARTS_PER_WORKER
        times per worker slot, so a job whose code kills its process does
        not run forever.
        """
        for i, process in enumerate(self.workers):
            if (process.poll() not in (None, 0) and self.driver.poll() is None
                    and self.may_restart):
                self.restarts += 1
                print(f"txmr: worker {i} exited with {process.returncode}; starting another",
                      file=sys.stderr, flush=True)
                self.workers[i] = self.start_worker(i)

    def failed_to_start(self):
        """
        The driver's one-line reason, in the words and with the prefix the
        same error has under --inline.
        """
        with open(os.path.join(self.work, "driver.log"), errors="replace") as f:
            text = f.read().splitlines()
        lines = [line.replace("txmr-driver: error: ", "txmr: ", 1) for line in text
                 if line.startswith("txmr")]
        # twistd's own refusal of a flag's value.
        lines += ["txmr: " + line.partition(": Parameter type enforcement failed: ")[2]
                  for line in text if ": Parameter type enforcement failed: " in line]
        return "\n".join(lines) or "txmr: the driver did not start"

    def follow(self, on_state=None, interval=0.2):
        """
        Wait for the job's end, restarting a driver that dies and replacing
        dead workers; call C{on_state} with the driver's C{/api/job} data
        as it goes.

        @return: C{(exit code, summary)}; the summary is the driver's final
            state, or C{{}} when every worker died (exit code 1, C{"every
            worker died"} in C{failure}).
        """
        while self.driver.poll() is None or self.restart_dead_driver():
            self.replace_dead_workers()
            if self.all_workers_dead():
                return 1, {"failure": f"every worker died, {self.restarts} restarted; "
                                      f"giving up (logs in {self.work})"}
            state = self.state()
            if state is not None and on_state is not None:
                on_state(state)
            time.sleep(interval)
        summary = {}
        if os.path.exists(self.summary_file):
            with open(self.summary_file) as f:
                summary = json.load(f)
        return self.driver.returncode, summary

    def state(self):
        request = urllib.request.Request(self.url + "/api/job",
                                         headers={"Authorization": f"Bearer {self.secret}"})
        try:
            with urllib.request.urlopen(request, timeout=2) as response:
                return json.load(response)
        except (OSError, ValueError):
            return None

    def stop(self, grace=5.0):
        for p in self.processes:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace
        for p in self.processes:
            try:
                p.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
