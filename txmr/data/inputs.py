"""
A job's input: its files, their cutting into splits, and their reading.

The driver cuts the input into byte-range I{splits} on line boundaries
(L{plan_splits}); a map task reads its splits in large blocks
(L{read_blocks}), whole lines each, and decodes a block at once.

The input root may be a URL (L{txmr.data.storage}); its files, and
compressed files anywhere (C{.gz}, C{.bz2}, C{.xz}, C{.zst}), are read
through L{txmr.data.storage.open_input}.  A local file that is not
compressed is read with C{open}, as it always was.  A compressed file is
one split: a byte offset in it means nothing to its decompressed lines.
"""

import os

from txmr.data import storage

# The input modes read line by line, whose files may be cut anywhere
# between lines; the others read whole files.
LINE_MODES = ("lines", "jsonl")


class InputChanged(Exception):
    """
    An input file is not what it was when the job was planned: the job's
    output would answer neither the old input nor the new.
    """


def stamp(path):
    """
    What tells that a file changed: C{[size, modification time in ns,
    inode, change time in ns]}.  The last two catch a rewrite that kept the
    size and set the modification time back (C{cp -p}, C{rsync -t}).  For a
    URL: C{[size, version]} (its ETag, checksum or modification time).
    """
    if storage.is_url(path):
        return storage.stamp(path)
    st = os.stat(path)
    return [st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns]


def check_unchanged(name, path, expected):
    """
    @raise InputChanged: the file at C{path} no longer has the stamp
        C{expected} (L{None}: nothing to check).
    """
    if expected is None:
        return
    try:
        now = stamp(path)
    except OSError as e:
        raise InputChanged(f"input file {name!r} is gone since the job was planned: "
                           f"{e.strerror}") from e
    if now != list(expected):
        raise InputChanged(
            f"input file {name!r} changed since the job was planned (size {expected[0]} -> "
            f"{now[0]} bytes{', modified again' if now[1:] != list(expected[1:]) else ''})")


def list_inputs(input_dir):
    """
    The input files under C{input_dir}, as sorted C{(relative path, size)};
    names starting with C{.} or C{_} are skipped, as Hadoop does.  Links
    are followed, to files and to directories, but a directory is walked
    once however many links lead to it (links that lead to each other, or
    above, would otherwise count its files again and again).  A directory
    that cannot be read fails the listing rather than be left out.
    C{input_dir} may be a URL.
    """
    if storage.is_url(input_dir):
        return storage.list_files(input_dir)

    def unreadable(error):
        raise error

    found = []
    walked = set()
    for root, dirs, files in os.walk(input_dir, followlinks=True, onerror=unreadable):
        st = os.stat(root)
        if (st.st_dev, st.st_ino) in walked:
            dirs[:] = []
            continue
        walked.add((st.st_dev, st.st_ino))
        dirs[:] = sorted(d for d in dirs if not d.startswith((".", "_")))
        for name in files:
            if name.startswith((".", "_")):
                continue
            path = os.path.join(root, name)
            if os.path.isfile(path):
                found.append((os.path.relpath(path, input_dir), os.path.getsize(path)))
    return sorted(found)


def plan_splits(files, n_map, mode="lines"):
    """
    Deal the input to C{n_map} map tasks, balanced by bytes.

    Whole files are dealt, the largest first, each to the lightest task, in
    the whole-file modes (C{file}, C{bytes}, C{csv}), and in the
    L{LINE_MODES} when no file is larger than a task's
    share of the bytes (as the seed dealt a directory of files: its workers
    read whole files, so such tasks are theirs to run too).  Otherwise, in
    a line mode, files are cut into byte ranges C{[name, start, end]} (a
    reader owns the lines that start in its range), so one large file
    feeds every task and small files are packed together; a compressed
    file is never cut (L{whole}): it goes, whole, to the task its middle
    byte falls in.
    """
    tasks = [[] for _ in range(n_map)]
    total = sum(size for _, size in files)
    if mode not in LINE_MODES or all(size * n_map <= total or whole(name)
                                     for name, size in files):
        loads = [0] * n_map
        for name, size in sorted(files, key=lambda f: (-f[1], f[0])):
            i = loads.index(min(loads))
            tasks[i].append([name, 0, size])
            loads[i] += size
        for splits in tasks:
            splits.sort()
        return tasks
    # Task i gets the bytes [i * total / n_map, (i + 1) * total / n_map).
    bounds = [total * i // n_map for i in range(n_map + 1)]
    offset = 0
    for name, size in files:
        start, end = offset, offset + size
        if whole(name):
            middle = (start + end) // 2
            i = max(i for i in range(n_map) if bounds[i] <= middle)
            tasks[i].append([name, 0, size])
            offset = end
            continue
        for i in range(n_map):
            lo, hi = max(start, bounds[i]), min(end, bounds[i + 1])
            if lo < hi:
                tasks[i].append([name, lo - offset, hi - offset])
        offset = end
    return tasks


def whole(name):
    """
    Whether a file must be read whole, by one map task: it is compressed.
    """
    return storage.codec(name) is not None


def open_input(path):
    """
    An input file, in binary: a local file that is not compressed by
    C{open}, as always; a URL or a compressed file through
    L{txmr.data.storage.open_input}, decompressed.
    """
    if whole(path) or storage.is_url(path):
        return storage.open_input(path)
    return open(path, "rb")


def input_size(path):
    """
    The size of an input file (compressed, if it is), local or a URL.
    """
    return stamp(path)[0] if storage.is_url(path) else os.path.getsize(path)


def read_blocks(path, start, end, block_bytes):
    """
    Yield C{(offset, data)}: whole lines, in blocks of about C{block_bytes}
    (L{txmr.data.knobs.Knobs.block_bytes}), of the lines of C{path} that
    start in C{[start, end)}.  The last line of a file may lack its newline.
    A compressed file is one split (its C{end} the compressed size): all
    its lines are read, offsets counting its decompressed bytes.
    """
    if whole(path):
        if start != 0:
            raise ValueError(f"a compressed file is one split, not cut at byte {start}: "
                             f"{path}")
        end = float("inf")
    with open_input(path) as f:
        if start > 0:
            f.seek(start - 1)
            position = start - 1 + len(f.readline())
        else:
            position = 0
        rest = b""
        while position < end:
            data = f.read(block_bytes)
            if not data:
                if rest:
                    yield position, rest
                return
            data = rest + data
            cut = data.rfind(b"\n") + 1
            if cut == 0:
                rest = data
                continue
            block, rest = data[:cut], data[cut:]
            if position + len(block) >= end:
                # Keep the lines that start before `end`: up to the newline
                # that ends the line holding byte end - 1.
                last = block.index(b"\n", end - position - 1) + 1
                yield position, block[:last]
                return
            yield position, block
            position += len(block)


def decode(data):
    """
    A block's text: undecodable bytes kept as surrogates, CRLF as LF.
    """
    text = data.decode("utf-8", "surrogateescape")
    if "\r" in text:
        text = text.replace("\r\n", "\n")
    return text
