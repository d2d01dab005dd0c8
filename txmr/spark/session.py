"""
The Spark session of a run: started on the run's master with its settings,
Spark's own log and console bar off (txmr shows its own), and Python workers
that can import txmr and the job.

PySpark's C{SparkSession} is imported here, when a session starts.
"""

import os
import re
import shutil
import sys
import tempfile

from txmr.spark.options import SparkConfigError, job_file


def is_local_master(master):
    """
    Whether Spark's Python workers run on this host, in this Python.
    """
    return re.fullmatch(r"local(\[[^\]]*\])?", master.strip()) is not None


def start_session(run, job):
    """
    A Spark session on C{run.master} whose Python workers can import txmr
    and the job.

    @raise SparkConfigError: Spark cannot start (no Java, a bad master).
    """
    from pyspark.sql import SparkSession

    # On a local master, Spark's Python workers run this interpreter, where
    # txmr is installed, and find modules in the current directory, as
    # txmr's own workers do.  On a cluster they run the executors' Python
    # (spark.pyspark.python), and txmr and a job file are shipped to them.
    local = is_local_master(run.master)
    if local:
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        os.environ["PYTHONPATH"] = os.pathsep.join(
            p for p in (os.getcwd(), os.environ.get("PYTHONPATH")) if p)
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    builder = SparkSession.builder.master(run.master).appName(f"txmr {job.name}")
    if not any(key == "spark.driver.extraJavaOptions" for key, _ in run.conf):
        quiet = os.path.join(os.path.dirname(os.path.abspath(__file__)), "log4j2.properties")
        builder = builder.config("spark.driver.extraJavaOptions",
                                 f"-Dlog4j2.configurationFile=file:{quiet}")
    # The progress bar is txmr's; failures are shown as Python tracebacks.
    builder = builder.config("spark.ui.showConsoleProgress", "false")
    for key, value in run.conf:
        builder = builder.config(key, value)
    try:
        spark = builder.getOrCreate()
    except Exception as e:
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise SparkConfigError(f"cannot start Spark on {run.master!r}: {first} (--engine spark "
                               f"needs a Java runtime, 17 or later)") from e
    sc = spark.sparkContext
    where, _ = job_file(job.name)
    if where.endswith(".py"):
        sc.addPyFile(where)
    if not local:
        sc.addPyFile(_txmr_archive())
    return spark


def _txmr_archive():
    """
    The txmr package as a zip, for executors on other hosts.
    """
    import atexit

    import txmr

    package = os.path.dirname(os.path.abspath(txmr.__file__))
    work = tempfile.mkdtemp(prefix="txmr-spark-")
    atexit.register(shutil.rmtree, work, True)
    return shutil.make_archive(os.path.join(work, "txmr"), "zip", os.path.dirname(package),
                               "txmr")
