"""
Input and output on any file system: a URL (C{s3://bucket/prefix},
C{gs://}, C{hdfs://}, C{file://}, C{memory://}) is read and written through
U{fsspec<https://filesystem-spec.readthedocs.io>}; a local path keeps
txmr's own code (plain C{open}, C{os.replace}), which nothing here touches.
Compressed input (C{.gz}, C{.bz2}, C{.xz}, C{.zst}) is decompressed as it
is read, wherever it is (L{open_input}); such a file is one split.

A filesystem's options come from each process's own environment (for S3:
C{AWS_ENDPOINT_URL}, C{AWS_ACCESS_KEY_ID}, ...), plus the options the user
gives (C{--storage-options} JSON), which L{configure} sets in the driver
and, from each task's spec, in the workers.

Output on a store is committed by L{txmr.data.store_output}.
"""

import io
import os
import re

_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]+://")

# Compressed input, by file extension: the codec that reads it.
CODECS = {".gz": "gzip", ".bz2": "bz2", ".xz": "xz", ".zst": "zstd"}

_options = {}


class StorageError(Exception):
    """
    A URL cannot be used: the message is one line for the user.
    """


def is_url(path):
    """
    Whether C{path} is a URL (C{scheme://...}) rather than a local path.
    """
    return isinstance(path, str) and _URL.match(path) is not None


def codec(name):
    """
    The codec of a compressed file, by its extension, or L{None}.
    """
    return CODECS.get(os.path.splitext(name)[1].lower())


def configure(options):
    """
    The options every URL's filesystem is opened with in this process
    (C{--storage-options}); credentials are best left to the environment.
    """
    global _options
    _options = dict(options or {})


def filesystem(url):
    """
    The fsspec filesystem of C{url}, and the path in it.

    @raise StorageError: fsspec, or the filesystem's package, is missing.
    """
    try:
        import fsspec.core
    except ImportError:
        raise StorageError(f"{url!r} is a URL, which txmr reads and writes through fsspec: "
                           f"pip install 'txmr[s3]' (S3) or 'txmr[fsspec]'") from None
    try:
        fs, path = fsspec.core.url_to_fs(url, **_options)
    except (ImportError, ValueError) as e:
        raise StorageError(f"cannot use {url!r}: {e}") from e
    return fs, path.rstrip("/") or path


# -- input -------------------------------------------------------------------


def input_error(url):
    """
    Why C{url} cannot be a job's input, in one line, or L{None}.
    """
    try:
        fs, path = filesystem(url)
        if fs.isdir(path):
            return None
        if fs.exists(path):
            return f"input {url!r} is a file, not a directory: give the directory that holds it"
    except StorageError as e:
        return str(e)
    except Exception as e:
        return f"cannot list input {url!r}: {type(e).__name__}: {e}"
    return f"input {url!r} does not exist"


def list_files(url):
    """
    The files under C{url}, as sorted C{(relative path, size)}; a name of
    which any part starts with C{.} or C{_} is skipped, as for a local
    directory.
    """
    fs, root = filesystem(url)
    found = []
    for path, info in fs.find(root, detail=True).items():
        path = path.rstrip("/")
        if not path.startswith(root + "/") or info.get("type", "file") != "file":
            continue
        name = path[len(root) + 1:]
        if any(part.startswith((".", "_")) for part in name.split("/")):
            continue
        found.append((name, int(info["size"])))
    return sorted(found)


def _version(info):
    """
    What changes when an object is written again: its ETag or checksum,
    else its modification time.
    """
    for key in ("ETag", "etag", "md5Hash", "crc32c", "generation", "mtime", "LastModified",
                "last_modified", "updated", "modified", "created"):
        if info.get(key) is not None:
            return str(info[key])
    return ""


def stamp(url):
    """
    What tells that the file at C{url} changed: C{[size, version]}, fresh
    from the store (not from a listing cached earlier).

    @raise OSError: it is missing, or cannot be read.
    """
    fs, path = filesystem(url)
    fs.invalidate_cache(path)
    info = fs.info(path)
    return [int(info["size"]), _version(info)]


def open_input(path):
    """
    An input file for reading, in binary, decompressed if its extension
    names a codec (L{CODECS}).  A local file that is not compressed is
    opened by C{open} itself, as before.
    """
    name = codec(path)
    if is_url(path):
        fs, inside = filesystem(path)
        raw = fs.open(inside, "rb")
    elif name is None:
        return open(path, "rb")
    else:
        raw = open(path, "rb")
    if name is None:
        return raw
    try:
        return _Decompressed(_decompressor(raw, name), raw)
    except BaseException:
        raw.close()
        raise


def _decompressor(raw, name):
    if name == "gzip":
        import gzip

        return gzip.GzipFile(fileobj=raw, mode="rb")
    if name == "bz2":
        import bz2

        return bz2.BZ2File(raw, "rb")
    if name == "xz":
        import lzma

        return lzma.LZMAFile(raw, "rb")
    try:
        import zstandard
    except ImportError:
        raise StorageError("reading .zst input needs zstandard: pip install 'txmr[zstd]'") \
            from None
    reader = zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True)
    return io.BufferedReader(reader)


class _Decompressed:
    """
    A decompressing reader that closes the file under it too.
    """

    def __init__(self, reader, raw):
        self.reader = reader
        self.raw = raw
        self.read = reader.read
        self.readline = reader.readline

    def close(self):
        try:
            self.reader.close()
        finally:
            self.raw.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def parse_options(text):
    """
    C{--storage-options}: a JSON object of fsspec options (L{None} or
    empty: none).

    @raise ValueError: it is not a JSON object.
    """
    if not text:
        return {}
    import json

    try:
        options = json.loads(text)
    except ValueError as e:
        raise ValueError(f"--storage-options is not JSON: {e}") from None
    if not isinstance(options, dict):
        raise ValueError("--storage-options must be a JSON object, such as "
                         "'{\"endpoint_url\": \"http://127.0.0.1:9000\"}'")
    return options
