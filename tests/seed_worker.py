"""
A worker of the seed system, as its code behaves on Python 3.11+: it asks
`PUT /task`, does the task the seed's way (whole files; a word to bucket
`ord(word[0]) % R`, `word 1` lines; a reducer sums `word count` lines) and
posts `{"status": 4}` to `/task/TaskType.mapper/ID/status` (a str-mixin
Enum formats as its qualified name since Python 3.11).

    python tests/seed_worker.py URL PID [maps-only] [stale]

With C{maps-only}, it leaves (exits 3) when handed a reduce, as a worker
that dies would; with C{stale}, its first map stalls past its lease
($SEED_STALL seconds), then writes garbage as its output.
"""

import json
import os
import sys
import time
import urllib.error
import urllib.request


def call(url, method, pid, body=None):
    request = urllib.request.Request(url, data=body, method=method, headers={"worker-pid": pid})
    # The seed's worker retries a driver it cannot reach (every 5 s; here
    # sooner), for ever: so it carries on with a driver started again.
    while True:
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.2)


def do_map(task):
    buckets = {}
    for path in task["i_path"]:
        with open(path, encoding="utf-8", errors="surrogateescape") as f:
            for line in f:
                for word in line.split():
                    word = word.lower()
                    buckets.setdefault(ord(word[0]) % task["n_buckets"], []).append(word)
    for bucket, words in buckets.items():
        with open(os.path.join(task["o_path"], f"mr-{task['id']}-{bucket}"), "w",
                  encoding="utf-8", errors="surrogateescape") as f:
            f.writelines(f"{w} 1\n" for w in words)


def do_reduce(task):
    counts = {}
    for m in range(task["n_mappers"]):
        path = os.path.join(task["i_path"], f"mr-{m}-{task['id']}")
        if os.path.exists(path):
            with open(path, encoding="utf-8", errors="surrogateescape") as f:
                for line in f:
                    word, n = line.rsplit(" ", 1)
                    counts[word] = counts.get(word, 0) + int(n)
    with open(os.path.join(task["o_path"], f"out-{task['id']}"), "w", encoding="utf-8",
              errors="surrogateescape") as f:
        f.writelines(f"{w} {n}\n" for w, n in counts.items())


def stale_map(task):
    """
    A map that stalls past its lease, then writes garbage in place of its
    output, as a late worker's half-written files would be.
    """
    time.sleep(float(os.environ.get("SEED_STALL", "4")))
    for bucket in range(task["n_buckets"]):
        with open(os.path.join(task["o_path"], f"mr-{task['id']}-{bucket}"), "w") as f:
            f.write("stale-garbage 1000000\n")


def main(url, pid, maps_only=False, stale=False):
    while True:
        code, body = call(url + "/task", "PUT", pid)
        answer = json.loads(body)
        if answer.get("job_status") != 1:
            return 0
        if "type" not in answer:
            time.sleep(0.05)
            continue
        if maps_only and answer["type"] == "reducer":
            return 3
        try:
            if stale and answer["type"] == "mapper":
                stale_map(answer)
                stale = False
            else:
                (do_map if answer["type"] == "mapper" else do_reduce)(answer)
        except OSError:
            # Its attempt's directory is gone: the attempt no longer counts
            # (its driver was restarted, or its lease ran out).
            continue
        call(f"{url}/task/TaskType.{answer['type']}/{answer['id']}/status", "POST", pid,
             b'{"status": 4}')


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2], "maps-only" in sys.argv[3:],
                  "stale" in sys.argv[3:]))
