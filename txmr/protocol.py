"""
The wire contract between a txmr driver and its workers: AMP commands.

Two blocks, by direction.  A worker connects, asks for a L{Challenge} (when
it has a secret), says L{Hello}, then asks L{GetTask} until it is told the
job is done; it reports each attempt with
L{TaskDone} or L{TaskFailed}, whose answer can carry its next task, so that
a busy worker needs one round trip per task.  The driver sends L{Ping} as a
heartbeat, L{Cancel} for an attempt that no longer counts, and L{JobOver}
when the job ends.  A task and an answer are read and written by
L{txmr.core.spec}, the only code that knows their fields.

No bulk data crosses this protocol: task specifications and reports are
small JSON documents, and files move through the shared file system, or,
for a driver without an intermediate directory (shared-nothing), map
output moves from worker to worker over HTTP (L{txmr.worker.serve},
L{txmr.data.fetch}): a worker tells the driver its URL in L{Hello}, a map's
L{TaskDone} carries its files' checksums, and a reducer that cannot fetch
one says so with L{MapOutputLost}.  A value
that may outgrow AMP's 64 KiB limit (a task's list of splits, a traceback) is
a L{BigJSON} or L{BigUnicode}, which spreads over several AMP keys.

The secret never crosses the wire.  Each side proves it knows it by an
HMAC-SHA256 over fresh nonces from both sides (L{worker_proof},
L{driver_proof}), so a peer that answers on the driver's address without
the secret learns nothing from a worker, and a worker runs nothing for it.
Without a secret on either side the door is open, as documented.
"""

import hashlib
import hmac
import json
import os

from twisted.protocols import amp

from txmr.core.errors import StaleReport, UnknownTask, UnknownWorker

# 2: GetTask's answer lost its C{retry}, and a spec carries both task counts.
# 3: a map's spec carries its inputs' stamps, a reduce's how to read seed
# workers' map output.
# 4: the secret no longer crosses the wire: L{Challenge}, then proofs both
# ways in L{Hello}.
# 5: shared-nothing map output: a worker's C{url} in L{Hello} and the job's
# C{uuid} in its answer, a map's C{output} in L{TaskDone}, and
# L{MapOutputLost}.
PROTOCOL_VERSION = 5

# Attempts an AMP worker may hold at once: one running, and one to run next
# (asked for while the first runs, when tasks are quick).
WORKER_SLOTS = 2

# Under AMP's limit of 65,535 bytes per value.
_CHUNK = 60_000

# Bytes of a nonce; a worker's own is taken in this range of lengths.
NONCE_BYTES = 32
_NONCE_LENGTHS = range(16, 65)


def new_nonce():
    """
    A fresh random nonce, never used again: a proof made over it cannot be
    replayed on another connection.
    """
    return os.urandom(NONCE_BYTES)


def valid_nonce(nonce):
    """
    Whether a peer's nonce is one this protocol accepts (bytes, 16 to 64).
    """
    return isinstance(nonce, bytes) and len(nonce) in _NONCE_LENGTHS


def _proof(secret, label, first, second):
    # The label tells a worker's proof from a driver's, so that neither can
    # be reflected back as the other; the length prefix makes the message
    # unambiguous whatever the nonces' lengths.
    message = label + bytes([len(first)]) + first + second
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).digest()


def worker_proof(secret, driver_nonce, worker_nonce):
    """
    What a worker sends in L{Hello} to prove it knows C{secret}.
    """
    return _proof(secret, b"txmr-worker-proof\x00", driver_nonce, worker_nonce)


def driver_proof(secret, driver_nonce, worker_nonce):
    """
    What a driver answers to L{Hello} to prove it knows C{secret}: over the
    nonces in the reverse order, and under another label.
    """
    return _proof(secret, b"txmr-driver-proof\x00", worker_nonce, driver_nonce)


def proof_matches(expected, given):
    """
    Whether C{given} (bytes or L{None}) is the proof C{expected}, compared
    in the same time whatever the bytes.
    """
    return isinstance(given, bytes) and hmac.compare_digest(expected, given)


def no_delay(transport):
    """
    Commands and answers are small boxes that a peer waits for: send them
    at once (TCP_NODELAY), where the transport is TCP.
    """
    set_no_delay = getattr(transport, "setTcpNoDelay", None)
    if set_no_delay is not None:
        try:
            set_no_delay(True)
        except OSError:
            pass


class BigUnicode(amp.Argument):
    """
    Text of any size, sent as the keys C{name}, C{name.1}, C{name.2}...
    """

    def toBox(self, name, strings, objects, proto):
        value = objects.pop(amp._wireNameToPythonIdentifier(name), None)
        if value is None and self.optional:
            return
        data = self.encode(value)
        chunks = [data[i:i + _CHUNK] for i in range(0, len(data), _CHUNK)] or [b""]
        strings[name] = chunks[0]
        for i, chunk in enumerate(chunks[1:], 1):
            strings[name + b".%d" % i] = chunk

    def fromBox(self, name, strings, objects, proto):
        if name not in strings and self.optional:
            objects[amp._wireNameToPythonIdentifier(name)] = None
            return
        chunks = [strings.pop(name)]
        i = 1
        while name + b".%d" % i in strings:
            chunks.append(strings.pop(name + b".%d" % i))
            i += 1
        objects[amp._wireNameToPythonIdentifier(name)] = self.decode(b"".join(chunks))

    def encode(self, value):
        return value.encode("utf-8", "surrogatepass")

    def decode(self, data):
        return data.decode("utf-8", "surrogatepass")


class BigJSON(BigUnicode):
    """
    Any JSON value, of any size.
    """

    def encode(self, value):
        return json.dumps(value, separators=(",", ":")).encode("utf-8", "surrogatepass")

    def decode(self, data):
        return json.loads(data.decode("utf-8", "surrogatepass"))


class Unauthorized(Exception):
    """
    The driver has a secret, and the worker did not prove it knows it (or
    the worker did not ask for a L{Challenge} first).  A worker also
    answers so a command of a driver that has not proved itself.
    """


class VersionMismatch(Exception):
    """
    The worker speaks another version of this protocol.
    """


# The scheduler's refusals travel as AMP errors, by these codes.  A worker
# refused by them learns of it by the same exception classes.
_REFUSALS = {
    UnknownWorker: b"NOT_REGISTERED",
    UnknownTask: b"UNKNOWN_TASK",
    StaleReport: b"STALE_REPORT",
}


# -- worker to driver ----------------------------------------------------------


class Challenge(amp.Command):
    """
    Worker to driver, first, from a worker that has a secret: the driver
    answers a fresh C{nonce} of its own (L{NONCE_BYTES}), kept for this
    connection's next L{Hello}.  A second Challenge replaces the first.
    A driver of protocol version 3 or older does not know this command.
    """

    arguments = []
    response = [(b"nonce", amp.String())]


class Hello(amp.Command):
    """
    Worker to driver: join the job.  The answer names the job to import,
    and the heartbeat period, so the worker can tell a silent driver.

    With a secret, the worker sends its own C{nonce} and C{proof},
    L{worker_proof} over the driver's L{Challenge} nonce and its own; a
    driver started with a secret refuses (L{Unauthorized}, then closes the
    connection) a worker whose proof is missing or wrong, and answers one
    whose proof is right with its own C{proof}, L{driver_proof} over the
    same nonces.  The worker checks it before it runs anything: neither
    side sends the secret, and each knows the other knows it.  A driver
    without a secret answers no C{proof}; a worker with a secret does not
    trust it.  The version is checked first (L{VersionMismatch}).

    C{url}, optional, is where the worker serves the map output it keeps
    (C{http://HOST:PORT} or C{https://...}), for a driver without a shared
    intermediate directory; the answer's C{uuid} names the job, as the
    worker's server and the reducers' requests name it.
    """

    arguments = [
        (b"version", amp.Integer()),
        (b"host", amp.Unicode()),
        (b"pid", amp.Integer()),
        (b"nonce", amp.String(optional=True)),
        (b"proof", amp.String(optional=True)),
        (b"url", amp.Unicode(optional=True)),
    ]
    response = [
        (b"worker", amp.Unicode()),
        (b"job", amp.Unicode()),
        (b"heartbeat", amp.Float()),
        (b"proof", amp.String(optional=True)),
        (b"uuid", amp.Unicode(optional=True)),
    ]
    errors = {VersionMismatch: b"VERSION_MISMATCH", Unauthorized: b"UNAUTHORIZED"}


class GetTask(amp.Command):
    """
    Worker to driver: ask for work.  The driver answers when it has some
    (a long poll, never a busy loop), with C{action}:
      - C{run}: run the attempt described by C{task};
      - C{wait}: nothing yet, ask again;
      - C{done}: the job is over; C{task} is then C{{"ok": bool}}.
    With C{wait} false, the driver answers at once (C{wait} if nothing is
    ready): a worker asks so for its next task while it runs one.
    """

    arguments = [(b"wait", amp.Boolean(optional=True))]
    response = [
        (b"action", amp.Unicode()),
        (b"task", BigJSON()),
    ]
    errors = {UnknownWorker: b"NOT_REGISTERED"}


# A report with C{ask} true is also a question: its answer carries what
# L{GetTask} with C{wait} false would answer, so that a worker learns its
# next task in the same round trip (as a Hadoop heartbeat does).  Without
# C{ask}, the answer is empty.
_ASK = (b"ask", amp.Boolean(optional=True))
_NEXT = [
    (b"action", amp.Unicode(optional=True)),
    (b"task", BigJSON(optional=True)),
]


class TaskDone(amp.Command):
    """
    Worker to driver: an attempt succeeded, and its files are written under
    their attempt names.  If the attempt still counts, the driver commits
    the files by renaming them, and the task is finished; otherwise the
    report is refused with L{StaleReport}.  A refusal changes nothing.
    With C{ask}, the answer is also the worker's next action, as for
    L{GetTask} with C{wait} false.

    A map of a shared-nothing job keeps its files on the worker: its
    C{output} is C{{"sums": [...], "sizes": [...]}}, the checksum
    (L{txmr.data.fetch.checksum}) and size of each partition, which the
    reducers check.  Its report is answered (without error) only when the
    attempt was committed: from then on, and only then, the worker serves
    its files.  One that cannot be committed (no valid C{output}, or a
    worker that told no URL in its Hello) fails, as a commit that fails
    does, and the report is answered with L{StaleReport}.
    """

    arguments = [
        (b"kind", amp.Unicode()),
        (b"index", amp.Integer()),
        (b"attempt", amp.Integer()),
        (b"counters", BigJSON()),
        _ASK,
        (b"output", BigJSON(optional=True)),
    ]
    response = _NEXT
    errors = _REFUSALS


class TaskFailed(amp.Command):
    """
    Worker to driver: an attempt's code raised.  C{record}, when not null,
    names the input record the map code failed on (for skipping mode).
    C{ask} as for L{TaskDone}.
    """

    arguments = [
        (b"kind", amp.Unicode()),
        (b"index", amp.Integer()),
        (b"attempt", amp.Integer()),
        (b"error", amp.Unicode()),
        (b"traceback", BigUnicode()),
        (b"record", BigJSON()),
        _ASK,
    ]
    response = _NEXT
    errors = _REFUSALS


class MapOutputLost(amp.Command):
    """
    Worker to driver, in a shared-nothing job: reduce attempt C{attempt} of
    task C{index} could not fetch its partition of map task C{map_index}'s
    committed attempt C{map_attempt} (its host is gone, the file is
    missing, or it arrived with the wrong checksum; C{error} says which).
    The driver marks that map's output lost and runs the map again; the
    reduce attempt is given back without counting as a failure, and the
    reduce runs again once the map is committed.  A report about an attempt
    that is not running, or a map attempt that is not the committed one, is
    refused (L{StaleReport}) and changes nothing.  C{ask} as for
    L{TaskDone}.
    """

    arguments = [
        (b"kind", amp.Unicode()),
        (b"index", amp.Integer()),
        (b"attempt", amp.Integer()),
        (b"map_index", amp.Integer()),
        (b"map_attempt", amp.Integer()),
        (b"error", amp.Unicode()),
        _ASK,
    ]
    response = _NEXT
    errors = _REFUSALS


# -- driver to worker ----------------------------------------------------------


class Ping(amp.Command):
    """
    Driver to worker: the heartbeat.  A worker answers at once, however
    busy its task is, because tasks run outside the reactor thread.
    """

    arguments = []
    response = []
    requiresAnswer = True


class Cancel(amp.Command):
    """
    Driver to worker: stop the attempt; its result would be refused.  A
    worker refuses it (L{Unauthorized}) before the driver proved itself.
    """

    arguments = [(b"attempt", amp.Integer())]
    response = []
    errors = {Unauthorized: b"UNAUTHORIZED"}


class JobOver(amp.Command):
    """
    Driver to worker: the job is over (C{ok} tells how); the worker exits.
    A worker refuses it (L{Unauthorized}) before the driver proved itself:
    a stranger on the driver's address cannot end a worker's wait.
    """

    arguments = [(b"ok", amp.Boolean()), (b"message", amp.Unicode())]
    response = []
    errors = {Unauthorized: b"UNAUTHORIZED"}
