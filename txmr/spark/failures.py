"""
A task's failure, from Spark's Python worker to the user's screen.

Spark reports a failed task as the JVM's stack, with the Python worker's
error text inside it.  A txmr task that fails raises L{TaskFailed}, whose
message carries the one-line reason and the task's Python traceback between
markers; the driver finds them there (L{failure_of}) and shows them instead
of the JVM's stack.  Both sides import this module: no PySpark here.
"""

import re
import sys

from txmr.data.attempt import describe

BEGIN, END = "<txmr-task-failure>", "</txmr-task-failure>"


class TaskFailed(Exception):
    """
    A task's code raised: the message carries its Python traceback between
    markers, for the driver to show instead of the JVM's stack.
    """


def task_failed(kind, index, reason):
    """
    The L{TaskFailed} of task C{index} of C{kind}: C{reason} is its line,
    then, after a newline, the traceback if there is one.
    """
    return TaskFailed(f"{BEGIN}{kind} task {index} failed: {reason}{END}")


def failure(kind, index):
    """
    The L{TaskFailed} for the exception being handled, told as a worker
    tells it (L{txmr.data.attempt.describe}): the job's own error and
    traceback, not txmr's L{txmr.data.attempt.RecordError} around it.
    """
    line, text, _ = describe(sys.exc_info()[1])
    return task_failed(kind, index, f"{line}\n{text}")


def failure_of(error):
    """
    The one-line reason and the Python traceback of a failed Spark job: the
    failing task's own, carried between markers by L{TaskFailed}, rather
    than the JVM's stack.
    """
    text = str(error)
    start = text.find(BEGIN)
    if start >= 0:
        end = text.find(END, start)
        body = text[start + len(BEGIN):end if end >= 0 else None]
        head, _, tb = body.partition("\n")
        return head, tb.rstrip("\n")
    # No task's code raised (a Python worker that died, a JVM error): the
    # reason Spark gives for the task it lost, without the JVM's stack.
    lost = re.search(r"Lost task (\S+) in stage (\S+) \([^)]*\) \([^)]*\): (.*)", text)
    if lost:
        reason = re.split(r"\b\w*(?:Exception|Error): ", lost.group(3))[-1]
        return (f"the Spark job failed: task {lost.group(1)} of stage {lost.group(2)}: "
                f"{reason.strip()}", "")
    lines = [line.strip(": ") for line in text.splitlines()
             if line.strip(": ") and not line.startswith(("\tat ", "\t... "))]
    return f"the Spark job failed: {lines[0] if lines else type(error).__name__}", ""
