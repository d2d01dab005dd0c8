"""
mrjob's protocols: how a line becomes C{(key, value)} (C{read}) and back
(C{write}), byte for byte as mrjob writes them, so that output can be
compared with an mrjob run's.  C{JSONProtocol} is the standard library's
JSON (mrjob picks ujson or rapidjson first when they are installed).
"""

import ast
import json
import pickle

TXMR_COMPAT = True


class _KeyCachingProtocol:
    _last_key_encoded = None
    _last_key_decoded = None

    def _loads(self, value):
        raise NotImplementedError

    def _dumps(self, value):
        raise NotImplementedError

    def read(self, line):
        raw_key, raw_value = line.split(b"\t", 1)
        if raw_key != self._last_key_encoded:
            self._last_key_encoded = raw_key
            self._last_key_decoded = self._loads(raw_key)
        return self._last_key_decoded, self._loads(raw_value)

    def write(self, key, value):
        return self._dumps(key) + b"\t" + self._dumps(value)


class StandardJSONProtocol(_KeyCachingProtocol):
    def _loads(self, value):
        return json.loads(value.decode("utf_8"))

    def _dumps(self, value):
        return json.dumps(value).encode("utf_8")


class StandardJSONValueProtocol:
    def read(self, line):
        return None, json.loads(line.decode("utf_8"))

    def write(self, key, value):
        return json.dumps(value).encode("utf_8")


JSONProtocol = StandardJSONProtocol
JSONValueProtocol = StandardJSONValueProtocol


class PickleProtocol(_KeyCachingProtocol):
    def _loads(self, value):
        return pickle.loads(value.decode("unicode_escape").encode("latin_1"))

    def _dumps(self, value):
        return pickle.dumps(value).decode("latin_1").encode("unicode_escape")


class PickleValueProtocol:
    def read(self, line):
        return None, pickle.loads(line.decode("unicode_escape").encode("latin_1"))

    def write(self, key, value):
        return pickle.dumps(value).decode("latin_1").encode("unicode_escape")


class BytesProtocol:
    def read(self, line):
        parts = line.split(b"\t", 1)
        if len(parts) == 1:
            parts.append(None)
        return tuple(parts)

    def write(self, key, value):
        return b"\t".join(x for x in (key, value) if x is not None)


class BytesValueProtocol:
    def read(self, line):
        return None, line

    def write(self, key, value):
        return value


def _text(line):
    try:
        return line.decode("utf_8")
    except UnicodeDecodeError:
        return line.decode("latin_1")


class TextProtocol:
    def read(self, line):
        parts = _text(line).split("\t", 1)
        if len(parts) == 1:
            parts.append(None)
        return tuple(parts)

    def write(self, key, value):
        return b"\t".join(x.encode("utf_8") for x in (key, value) if x is not None)


class TextValueProtocol:
    def read(self, line):
        return None, _text(line)

    def write(self, key, value):
        return value.encode("utf_8")


RawProtocol = TextProtocol
RawValueProtocol = TextValueProtocol


def _literal(text):
    return ast.literal_eval(text.decode("utf_8") if isinstance(text, bytes) else text)


class ReprProtocol(_KeyCachingProtocol):
    def _loads(self, value):
        return _literal(value)

    def _dumps(self, value):
        return repr(value).encode("utf_8")


class ReprValueProtocol:
    def read(self, line):
        return None, _literal(line)

    def write(self, key, value):
        return repr(value).encode("utf_8")
