"""
The output formats: how a task's pairs become the lines of C{out-N}, and
how they are read back.

  - C{tsv} (the default): C{key<TAB>value}, a string as it is and anything
    else as compact JSON.  It is text for people and for C{sort}, C{cut}
    and C{awk}, so a file's keys must read back one way: a file holding
    both a key that is not a string (C{7}) and a string key that reads as
    JSON of the same kind (C{"7"}, C{"true"}; a list, an object) could
    print two keys as one line, so the task fails, naming both
    (L{TsvLines}).  A key holding a tab, or a
    key or value holding a line break (LF or CR), would break the line
    format: the task fails, naming it.  A tab inside a value is kept (a
    reader splits at the first tab).
  - C{jsonl}: one JSON C{[key, value]} per line, valid UTF-8 (a string's
    undecodable bytes, kept as lone surrogates, are written as C{\\udcXX}
    escapes): every key and value reads back exactly.
  - a job's own format, an object in place of the name: mrjob's
    protocols (L{txmr.compat.protocols.ProtocolFormat}), whose C{lines(pairs)}
    gives the bytes to write.
"""

import json
import os
import re
from operator import itemgetter

from txmr.data.keys import format_field

_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode


class OutputError(ValueError):
    """
    A pair the output format cannot hold; the message names it.
    """


# Lines whose key may be a string that reads as JSON of each kind: a
# scalar (a number, a boolean, null, and NaN and the infinities as Python's
# json writes them), a list, an object.  A scalar's whole text is matched,
# so that keys that merely start like one (a date, an address) cost nothing.
_SCALAR = (r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?|true|false|null|NaN"
           r"|-?Infinity")
_SCALAR_KEY = re.compile(_SCALAR)
_JSON_LIKE = {"scalar": re.compile(rf"^(?:{_SCALAR})\t", re.MULTILINE),
              "list": re.compile(r"^\[", re.MULTILINE),
              "object": re.compile(r"^\{", re.MULTILINE)}
_first = itemgetter(0)


_KINDS = {list: "list", tuple: "list", dict: "object"}


def _kind(value):
    return _KINDS.get(type(value), "scalar")


class TsvLines:
    """
    The lines of one TSV file, batch by batch.  A key that is not a string
    prints as JSON, so it could print as a string key does (C{7} and
    C{"7"}, C{[1]} and C{"[1]"}): this remembers, for each kind of JSON
    (scalar, list, object), the file's first key of that kind and its
    first string key that reads as JSON of that kind, and refuses the file
    once a kind has both, naming them.  It goes by kind rather than by
    equal text so that its memory stays two keys a kind, not a set of
    every key: a file may so be refused that would have held no equal
    lines.
    """

    def __init__(self):
        self.typed = {}
        self.json_like = {}

    def __call__(self, pairs):
        fmt = format_field
        lines = [f"{fmt(k)}\t{fmt(v)}\n" for k, v in pairs]
        # One scan of the batch in the common case; pair by pair only to
        # name the culprit, or when values hold tabs.
        text = "".join(lines)
        n = len(lines)
        if text.count("\n") != n or text.count("\t") != n or "\r" in text:
            for key, value in pairs:
                _check_tsv(key, value)
        typed, json_like = self.typed, self.json_like
        # The batch's key types, once: a pass over its pairs only for a
        # kind not seen yet (a job of int keys walks its first batch, not
        # every batch).
        types = set(map(type, map(_first, pairs)))
        new = {_KINDS.get(t, "scalar") for t in types if t is not str} - typed.keys()
        if new:
            for key, _ in pairs:
                kind = _kind(key)
                if type(key) is not str and kind in new:
                    typed.setdefault(kind, key)
        if str in types:
            wanted = [kind for kind, line in _JSON_LIKE.items()
                      if kind not in json_like and line.search(text)]
            if wanted:
                self._find_json_like(pairs, wanted)
        for kind, key in typed.items():
            if kind in json_like:
                raise OutputError(
                    f"the key {key!r} and the string key {json_like[kind]!r} are in one TSV "
                    f"file, which cannot tell a string that reads as JSON from a key that is "
                    f"not a string (7 and \"7\" print alike): emit such keys as one kind, "
                    f"or OUTPUT = \"jsonl\" writes any key exactly")
        return text

    def _find_json_like(self, pairs, wanted):
        json_like = self.json_like
        scalar = "scalar" in wanted
        starts = ("[" if "list" in wanted else "") + ("{" if "object" in wanted else "")
        for key, _ in pairs:
            if type(key) is not str or not key:
                continue
            if scalar and _SCALAR_KEY.fullmatch(key):
                json_like.setdefault("scalar", key)
            elif key[0] in starts:
                try:
                    value = json.loads(key)
                except ValueError:
                    continue
                if type(value) is not str:
                    json_like.setdefault(_kind(value), key)


def _check_tsv(key, value):
    text = format_field(key)
    for bad, what in (("\t", "a tab"), ("\n", "a line break"), ("\r", "a carriage return")):
        if bad in text:
            raise OutputError(f"the key {key!r} holds {what}, which the TSV output cannot "
                              f"hold: OUTPUT = \"jsonl\" writes any key exactly")
        if bad != "\t" and bad in format_field(value):
            raise OutputError(f"the value {_short(value)} of the key {key!r} holds {what}, "
                              f"which the TSV output cannot hold: OUTPUT = \"jsonl\" writes "
                              f"any value exactly")


def _short(value):
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _jsonl_lines(pairs):
    dumps = _dumps
    return "".join([f"[{dumps(k)},{dumps(v)}]\n" for k, v in pairs])


_FORMATTERS = {"tsv": TsvLines, "jsonl": lambda: _jsonl_lines}


class OutputFile:
    """
    One output file, written in batches of C{(key, value)} pairs.

    @ivar written: the pairs written so far.
    """

    def __init__(self, path, format="tsv"):
        if not isinstance(format, str):
            # A job's own format (mrjob's output protocol): its lines as
            # bytes, from format.lines(pairs).
            self.lines = format.lines
            self.file = open(path, "wb")
            self.written = 0
            return
        self.lines = _FORMATTERS[format]()
        # surrogateescape gives back the input's undecodable bytes in TSV;
        # in JSON lines, backslashreplace writes them as \\udcXX escapes,
        # which JSON reads back as the same string.
        errors = "surrogateescape" if format == "tsv" else "backslashreplace"
        self.file = open(path, "w", encoding="utf-8", errors=errors)
        self.written = 0

    def write(self, pairs):
        if pairs:
            self.file.write(self.lines(pairs))
            self.written += len(pairs)

    def close(self):
        """
        Close the file, its data on disk: the driver renames it into place.
        """
        try:
            self.file.flush()
            os.fsync(self.file.fileno())
        finally:
            self.file.close()

    def __enter__(self):
        return self

    def __exit__(self, kind, *rest):
        if kind is None:
            self.close()
        else:
            self.file.close()


class PairBuffer:
    """
    Pairs bound for an L{OutputFile}, written a batch at a time.  A
    call's pairs are taken whole, at C speed (C{list.extend}), so a batch
    may exceed C{batch} by one call's output: what the old line buffer
    held too.
    """

    def __init__(self, out, batch=20_000):
        self.out = out
        self.batch = batch
        self.pairs = []

    def extend(self, pairs):
        if pairs is None:
            return
        buffered = self.pairs
        buffered.extend(pairs)
        if len(buffered) >= self.batch:
            self.flush()

    def flush(self):
        self.out.write(self.pairs)
        self.pairs = []


def read_pairs(path, format="tsv"):
    """
    Yield the C{(key, value)} pairs of an output file: exact values from
    JSON lines, the two text fields of each line from TSV, what a job's
    own format reads back (C{format.read_pairs(path)}).
    """
    if not isinstance(format, str):
        yield from format.read_pairs(path)
        return
    with open(path, encoding="utf-8", errors="surrogateescape") as f:
        for line in f:
            if format == "jsonl":
                key, value = json.loads(line)
                yield key, value
            else:
                key, _, value = line.rstrip("\n").partition("\t")
                yield key, value
