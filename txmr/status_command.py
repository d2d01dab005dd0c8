"""
C{txmr status ADDRESS}: a running job's progress, read from its driver's
C{/api/job}, with the secret the URL C{txmr run} printed carries
(C{?token=}) or a C{--secret-file}.
"""

import json
import sys
import urllib.parse
import urllib.request


def status(a):
    address = a.address
    if "://" not in address:
        address = "http://" + (address if ":" in address else f"127.0.0.1:{address}")
    # The URL `txmr run` prints carries the secret as ?token=.
    url = urllib.parse.urlsplit(address)
    token = (urllib.parse.parse_qs(url.query).get("token") or [None])[0]
    if a.secret_file:
        from txmr.daemon import read_secret
        from twisted.python.usage import UsageError

        try:
            token = read_secret(a.secret_file)
        except UsageError as e:
            print(f"txmr: {e}", file=sys.stderr)
            return 2
    base = urllib.parse.urlunsplit((url.scheme, url.netloc, url.path.rstrip("/"), "", ""))
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        request = urllib.request.Request(base + "/api/job", headers=headers)
        with urllib.request.urlopen(request, timeout=5) as response:
            job = json.load(response)
    except (OSError, ValueError) as e:
        hint = ""
        if getattr(e, "code", None) == 401 and a.secret_file:
            hint = f"; the driver refused the secret in {a.secret_file}"
        elif getattr(e, "code", None) == 401:
            hint = ("; the driver has a secret: give the URL txmr run printed (with its ?token=),"
                    " or --secret-file")
        print(f"txmr: cannot read the job at {base}: {e}{hint}", file=sys.stderr)
        return 1
    print(f"job {job['job']} ({job['uuid']}): {job['state']}, {job['elapsed']:.1f}s")
    for kind, c in job["counts"].items():
        print(f"  {kind:6} {c['finished']}/{sum(c.values())} finished, {c['running']} running, "
              f"{c['ready']} ready, {c['blocked']} blocked")
    live = [w for w in job["workers"] if not w["lost"]]
    print(f"  workers: {len(live)} live, {len(job['workers']) - len(live)} lost")
    if job.get("failure"):
        print(f"  failure: {job['failure']}")
    return 0
