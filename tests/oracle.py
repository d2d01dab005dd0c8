"""
The answer computed in one process, with none of txmr's code paths: the
oracle the distributed runs are compared with.
"""

import json
import os

from txmr.job import load_job


def _field(value):
    if isinstance(value, str):
        return value
    if isinstance(value, tuple):
        value = list(value)
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, sort_keys=True)


def reference(job_name, input_dir):
    """
    Run a job naively: every map, group in a dict, every reduce.

    @return: C{{key text: value text}} as txmr's output files show them.
    """
    job = load_job(job_name)
    instance = job.instance()
    groups = {}

    def emit(pairs):
        for key, value in pairs or ():
            groups.setdefault(key if not isinstance(key, list) else tuple(key), []).append(value)

    getattr(instance, "map_init", lambda: None)()
    for root, _, files in os.walk(input_dir):
        for name in sorted(files):
            if name.startswith((".", "_")):
                continue
            path = os.path.join(root, name)
            rel = os.path.relpath(path, input_dir)
            with open(path, encoding="utf-8", newline="") as f:
                text = f.read().replace("\r\n", "\n")
            if job.input_mode == "file":
                emit(instance.map(rel, text))
            else:
                lines = text.split("\n")
                if lines and lines[-1] == "":
                    lines.pop()
                for line in lines:
                    emit(instance.map(rel, line))
    emit(getattr(instance, "map_final", lambda: None)())
    out = {}
    for key, values in groups.items():
        for k, v in instance.reduce(key, values) or ():
            out[_field(k)] = _field(v)
    return out


def read_output(output_dir, reduces):
    """
    C{{key: value}} from out-0 ... out-{reduces - 1}; fails on a missing file
    or a key written twice.
    """
    out = {}
    for r in range(reduces):
        with open(os.path.join(output_dir, f"out-{r}"), encoding="utf-8",
                  errors="surrogateescape") as f:
            for line in f:
                key, _, value = line.rstrip("\n").partition("\t")
                if key in out:
                    raise AssertionError(f"key {key!r} written twice")
                out[key] = value
    return out
