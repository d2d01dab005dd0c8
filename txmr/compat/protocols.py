"""
mrjob's protocols at txmr's boundaries: which protocol a substep reads or
writes (L{protocol_of}), the shuffle's C{(key text, rest)} pairs encoded
and decoded through the internal protocol (L{Encoder}, L{Decoder}), and
the output format that writes the output protocol's lines
(L{ProtocolFormat}).
"""

import json


def protocol_of(job, which):
    return getattr(job, which + "_protocol")()


def class_named(protocol, *names):
    return type(protocol).__name__ in names and type(protocol).__module__ in (
        "mrjob.protocol", "txmr.compat.mrjob.protocol")


def is_json(protocol):
    return class_named(protocol, "StandardJSONProtocol")


def as_text(data):
    return data.decode("utf-8", "surrogateescape")


def as_data(text):
    return text.encode("utf-8", "surrogateescape")


class Encoder:
    """
    A substep's pairs into the shuffle: C{(key text, rest)} of the line
    the internal protocol writes, the key text being the line up to its
    first tab (the whole line when it has none) and the rest the tab and
    what follows.
    """

    def __init__(self, protocol):
        self.write = protocol.write
        self.json = is_json(protocol)
        # JSON texts of the strings and ints seen lately (keys repeat, and
        # values are often small counts): a word count's map output is
        # mostly the same few thousand keys, each with the value 1.
        self.texts = {}

    def __call__(self, pairs):
        if pairs is None:
            return ()
        if self.json:
            return self._json(pairs)
        out = []
        for k, v in pairs:
            line = as_text(self.write(k, v))
            key, tab, rest = line.partition("\t")
            out.append((key, tab + rest))
        return out


    def _json(self, pairs):
        dumps = json.dumps
        texts = self.texts
        if len(texts) > CACHED_TEXTS:
            texts.clear()
        get = texts.get
        out = []
        append = out.append
        for k, v in pairs:
            kind = type(k)
            if kind is str or kind is int:
                key = get((kind, k))
                if key is None:
                    key = texts[(kind, k)] = dumps(k)
            else:
                key = dumps(k)
            kind = type(v)
            if kind is int or kind is str:
                rest = get((kind, v, 1))
                if rest is None:
                    rest = texts[(kind, v, 1)] = "\t" + dumps(v)
            else:
                rest = "\t" + dumps(v)
            append((key, rest))
        return out


# How many encoded or decoded texts an encoder or decoder keeps.
CACHED_TEXTS = 1 << 16
_IMMUTABLE = (int, str, float, bool, type(None))


class Decoder:
    """
    A group of the shuffle back into C{(key, values)} through the internal
    protocol.
    """

    def __init__(self, protocol):
        self.read = protocol.read
        self.json = is_json(protocol)
        # Decoded values that cannot be changed by the job, by their text.
        self.values = {}

    def __call__(self, key_text, rests):
        if self.json:
            return json.loads(key_text), self._json_values(rests)
        read = self.read
        pairs = [read(as_data(key_text + rest)) for rest in rests]
        return pairs[0][0], (v for _, v in pairs)

    def _json_values(self, rests):
        loads = json.loads
        values = self.values
        if len(values) > CACHED_TEXTS:
            values.clear()
        get = values.get
        for rest in rests:
            value = get(rest)
            if value is None:
                value = loads(rest[1:])
                if type(value) in _IMMUTABLE and value is not None:
                    values[rest] = value
            yield value




class ProtocolFormat:
    """
    An output format that writes each pair as the line the job's protocol
    writes (L{txmr.data.output.OutputFile} takes it in place of a name).
    """

    binary = True

    def __init__(self, protocol):
        self.protocol = protocol
        self.name = f"{type(protocol).__module__}.{type(protocol).__name__}"

    def __eq__(self, other):
        return isinstance(other, ProtocolFormat) and other.name == self.name

    def __hash__(self):
        return hash(self.name)

    def __repr__(self):
        return f"ProtocolFormat({self.name})"

    def lines(self, pairs):
        write = self.protocol.write
        if is_json(self.protocol):
            dumps = json.dumps
            return "".join([f"{dumps(k)}\t{dumps(v)}\n" for k, v in pairs]).encode("utf-8")
        return b"".join([write(k, v) + b"\n" for k, v in pairs])

    def read_pairs(self, path):
        read = self.protocol.read
        with open(path, "rb") as f:
            for line in f:
                yield read(line.rstrip(b"\r\n"))
