"""Compact storage of a raw tree's file list and its accounting: a million raw files in tens of MB.

`cytohub.raw.RawTree` records every file it finds (path, size, where its bytes are: a folder on disk or a
zip member) and, as a build goes, which files were used, skipped (with a reason) or set aside (operating
system litter), and the sha256 of the user's loose input files. Kept as Python objects this costs about
2 KB per file; here it is Arrow columns built in blocks of `BLOCK` entries, sorted by path once scanning
ends (`seal`), plus NumPy arrays for the per-file flags. Each folder's path is held once; an entry costs
its file name and about 70 bytes.

Paths are stored as UTF-8 bytes (file names that are not valid UTF-8 keep their bytes through
`surrogateescape`), so they sort by code point exactly as Python sorts `str` for every valid name.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from collections.abc import Set as AbstractSet
from typing import Any

import numpy as np

BLOCK = 1 << 14  # entries per block: of pending Python values while scanning, of paths decoded at once
FILE, LITTER = 0, 1  # entry kinds: a file of the tree, or a file set aside (never a row's source)
_COLUMNS = ("dir", "name", "size", "kind", "slot", "hoff", "csize", "ctype", "flags", "crc", "orig", "top")


def _types() -> tuple:
    import pyarrow as pa  # imported when a tree is first scanned: the CLI starts without it

    # folder id, file name, size, kind, slot, zip: local header offset, compressed size, method, flag bits (16
    # bits), CRC-32 (32 bits), stored name, loose input flag
    return (pa.int32(), pa.large_binary(), pa.int64(), pa.int8(), pa.int32(), pa.int64(), pa.int64(), pa.int16(),
            pa.uint16(), pa.uint32(), pa.large_string(), pa.bool_())


def _encode(path: str) -> bytes:
    return path.encode("utf-8", "surrogateescape")


def _decode(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogateescape")


class FileTable:
    """Append entries while scanning, `seal()` once, then query by index (sorted by path).

    A path is stored as its folder (an id into `dirs`, each folder's text held once) and its file name, so a
    million files in a few hundred folders cost their names, not their full paths. Sorting by path needs no
    full paths either: the order of full paths is the order of their folder tree walked depth first with the
    entries of each folder in byte order, a file `n` compared as `n` and a sub-folder `c` as `c/` (the first
    byte where two paths differ decides, and it lies in the first component where they differ); `seal`
    sorts names within each folder and interleaves the sub-folders at their place."""

    def __init__(self) -> None:
        self._pending: list[list[Any]] = [[] for _ in _COLUMNS]
        self._blocks: list = []  # pyarrow RecordBatches of BLOCK entries
        self.table = None  # a pyarrow Table once sealed
        self.dirs: list[str] = []  # folder id -> folder path ("" for the root)
        self._dir_ids: dict[str, int] = {}
        self.reasons: list[str] = []  # reason id k -> self.reasons[k - 1]
        self._reason_ids: dict[str, int] = {}

    # ----------------------------------------------------------------- building
    def add(self, path: str, size: int, kind: int = FILE, slot: int = -1, member: tuple | None = None,
            top: bool = False) -> None:
        """One entry; `member` is a zip member's (orig_filename, header_offset, compress_size, file_size,
        compress_type, flag_bits, crc) when `slot` is a zip, None for a file on disk; `top` marks a loose
        file given by the user (an input of the build, hashed for the report)."""
        folder, _, name = path.rpartition("/")
        did = self._dir_ids.get(folder)
        if did is None:
            did = self._dir_ids[folder] = len(self.dirs)
            self.dirs.append(folder)
        p = self._pending
        p[0].append(did)
        p[1].append(_encode(name))
        p[2].append(size)
        p[3].append(kind)
        p[4].append(slot)
        if member is None:
            for col in (5, 6, 7, 8, 9):
                p[col].append(0)
            p[10].append(None)
        else:
            orig, hoff, csize, _fsize, ctype, flags, crc = member
            p[5].append(hoff)
            p[6].append(csize)
            p[7].append(ctype)
            p[8].append(flags)
            p[9].append(crc)
            p[10].append(None if path.endswith("/" + orig) else orig)
        p[11].append(top)
        if len(p[0]) >= BLOCK:
            self._flush()

    def _flush(self) -> None:
        import pyarrow as pa

        if self._pending[0]:
            arrays = [pa.array(col, type=t) for col, t in zip(self._pending, _types(), strict=True)]
            self._blocks.append(pa.RecordBatch.from_arrays(arrays, names=list(_COLUMNS)))
            self._pending = [[] for _ in _COLUMNS]

    def seal(self) -> None:
        """Sort every entry by path; from now on entries are addressed by their index in that order. Columns
        are put in order one at a time, so the peak is about the table plus its largest column."""
        import pyarrow as pa

        self._flush()
        schema = pa.schema(list(zip(_COLUMNS, _types(), strict=True)))
        blocks, self._blocks = self._blocks, []
        table = pa.Table.from_batches(blocks, schema=schema)
        del blocks
        n = table.num_rows
        order = self._path_order(table) if n > 1 else None
        columns = []
        for name in _COLUMNS:  # one column at a time: put in order, joined into one chunk
            col = table.column(name)
            table = table.drop_columns([name])
            col = col.take(order) if order is not None else col
            columns.append(col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col)
            del col
        del order, table
        self.table = pa.Table.from_arrays(columns, schema=schema)
        del columns
        pa.default_memory_pool().release_unused()  # give the sort's and the blocks' memory back at once
        self._dir_bytes = [_encode(d) for d in self.dirs]
        self._names = self.table.column("name").chunk(0) if n else pa.array([], pa.large_binary())
        self.dir = self._numpy("dir")
        self.kind = self._numpy("kind")
        self.size = self._numpy("size")
        self.slot = self._numpy("slot")
        self.used = np.zeros(n, dtype=bool)
        self.reason = np.zeros(n, dtype=np.int32)
        self.is_input = self._numpy("top").astype(bool) if n else np.zeros(0, dtype=bool)
        self.sha: np.ndarray | None = None  # (n, 32) uint8 once the first loose input is hashed
        self.files = np.flatnonzero(self.kind == FILE).astype(np.int32 if n < 2**31 else np.int64)
        self._zip = {c: self._numpy(c) for c in ("hoff", "csize", "ctype", "flags", "crc")}
        orig = self.table.column("orig")
        self._orig = orig.chunk(0) if n else None
        self._has_orig = orig.is_valid().to_numpy(zero_copy_only=False) if n else np.zeros(0, dtype=bool)

    def _path_order(self, table):
        """The permutation that sorts `table`'s entries by full path (see the class doc), as a NumPy array, or
        None when they already are in that order."""
        import pyarrow as pa
        import pyarrow.compute as pc

        by_dir = np.asarray(pc.sort_indices(table.select(["dir", "name"]),
                                            sort_keys=[("dir", "ascending"), ("name", "ascending")]))
        counts = np.bincount(table.column("dir").to_numpy(), minlength=len(self.dirs))
        first = np.concatenate([[0], np.cumsum(counts)])  # folder d's entries: by_dir[first[d]:first[d + 1]]
        names = table.column("name")
        children: dict[str, list[str]] = {}  # folder -> sub-folders (every ancestor of a folder is a folder)
        known = set(self.dirs)
        for d in self.dirs:
            while d:
                parent = d.rpartition("/")[0]
                children.setdefault(parent, []).append(d)
                if parent in known:
                    break
                known.add(parent)
                d = parent
        ranges: list[tuple[int, int]] = []
        ordered: dict[str, list[tuple[bytes, str]]] = {}  # folder -> (sort key, sub-folder), sorted once

        def name_at(j: int) -> bytes:
            return names[int(by_dir[j])].as_py()

        def subfolders(folder: str) -> list[tuple[bytes, str]]:
            if folder not in ordered:
                ordered[folder] = sorted((_encode(c.rpartition("/")[2] + "/"), c) for c in children.get(folder, ()))
            return ordered[folder]

        stack = [("", 0)]  # (folder, how many of its sub-folders are done)
        cursor: dict[str, int] = {}  # folder -> next position among its entries in by_dir
        while stack:
            folder, done = stack.pop()
            did = self._dir_ids.get(folder)
            lo, hi = (int(first[did]), int(first[did + 1])) if did is not None else (0, 0)
            pos = cursor.get(folder, lo)
            subs = subfolders(folder)
            if done < len(subs):
                key, sub = subs[done]
                a, b = pos, hi  # the entries of this folder whose names sort before the sub-folder
                while a < b:
                    mid = (a + b) // 2
                    if name_at(mid) < key:
                        a = mid + 1
                    else:
                        b = mid
                ranges.append((pos, a))
                cursor[folder] = a
                stack.append((folder, done + 1))
                stack.append((sub, 0))
            else:
                ranges.append((pos, hi))
        order = np.concatenate([by_dir[a:b] for a, b in ranges if b > a])
        if len(order) != table.num_rows:
            raise AssertionError("file table: the path order lost entries")
        if bool((order[1:] > order[:-1]).all()):
            return None
        return pa.array(order)

    def drop_locations(self) -> None:
        """Forget the zip member fields (offset, sizes, method, flags, CRC: 24 bytes per entry) once nothing will
        be read any more; paths, sizes, slots (a loose input is still found on disk) and accounting stay."""
        if self.table is None or "hoff" not in self.table.column_names:
            return
        import pyarrow as pa

        self._zip = {}
        self.table = self.table.drop_columns(["hoff", "csize", "ctype", "flags", "crc"])
        pa.default_memory_pool().release_unused()

    def _numpy(self, name: str) -> np.ndarray:
        """A column as a NumPy array (a view of the Arrow buffer where the type allows)."""
        col = self.table.column(name)
        if not len(col):
            return np.zeros(0, dtype=col.type.to_pandas_dtype())
        return col.chunk(0).to_numpy(zero_copy_only=False)

    # ----------------------------------------------------------------- queries
    def __len__(self) -> int:
        return 0 if self.table is None else self.table.num_rows

    def _key(self, i: int) -> bytes:
        """The full path of entry i as UTF-8 bytes."""
        folder = self._dir_bytes[self.dir[i]]
        name = self._names[int(i)].as_py()
        return folder + b"/" + name if folder else name

    def path(self, i: int) -> str:
        folder = self.dirs[self.dir[i]]
        name = _decode(self._names[int(i)].as_py())
        return f"{folder}/{name}" if folder else name

    def name(self, i: int) -> str:
        return _decode(self._names[int(i)].as_py())

    def orig(self, i: int) -> str | None:
        """A zip member's name as stored in the zip, when it differs from the end of its path."""
        return self._orig[int(i)].as_py() if self._has_orig[i] else None

    def zip_fields(self, i: int) -> tuple[int, int, int, int, int]:
        z = self._zip
        if not z:
            raise RuntimeError("the zip member index was released when the raw tree was closed; nothing can be "
                               "read from a closed tree")
        return (int(z["hoff"][i]), int(z["csize"][i]), int(z["ctype"][i]), int(z["flags"][i]), int(z["crc"][i]))

    def find(self, path: str) -> int | None:
        """The index of the first entry with exactly this path (binary search), or None."""
        if path.rpartition("/")[0] not in self._dir_ids:
            return None
        key = _encode(path)
        lo, hi = 0, len(self)
        while lo < hi:
            mid = (lo + hi) // 2
            if self._key(mid) < key:
                lo = mid + 1
            else:
                hi = mid
        return lo if lo < len(self) and self._key(lo) == key else None

    def first_duplicate(self) -> int | None:
        """The first index i whose entry has the same path as entry i + 1 (a name stored twice), or None."""
        import pyarrow.compute as pc

        n = len(self)
        if n < 2:
            return None
        same = (self.dir[1:] == self.dir[:-1]) & np.asarray(
            pc.equal(self._names.slice(0, n - 1), self._names.slice(1)).to_numpy(zero_copy_only=False), dtype=bool)
        hits = np.flatnonzero(same)
        return int(hits[0]) if len(hits) else None

    def select(self, suffixes: tuple[str, ...] | None = None, name: str | None = None) -> np.ndarray:
        """Indices (in path order) of the files whose name ends with one of `suffixes` / equals `name`
        (both case-insensitive)."""
        import pyarrow as pa
        import pyarrow.compute as pc

        idx = self.files
        if not len(idx) or (suffixes is None and name is None):
            return idx
        if suffixes is not None and any("/" in s for s in suffixes):  # a suffix that reaches into the folders
            ends = tuple(s.lower() for s in suffixes)
            return np.fromiter((i for i, p in self.paths_of(idx) if p.lower().endswith(ends)), dtype=np.int64)
        keep = np.zeros(len(idx), dtype=bool)
        for start in range(0, len(idx), BLOCK):  # block by block: lowered names are never all in memory
            names = pc.cast(self._names.take(pa.array(idx[start:start + BLOCK])), pa.large_string(), safe=False)
            low = pc.utf8_lower(names)
            if name is not None:
                mask = pc.equal(low, name.lower())
            else:
                mask = None
                for s in suffixes:
                    m = pc.ends_with(low, s.lower())
                    mask = m if mask is None else pc.or_(mask, m)
            keep[start:start + BLOCK] = np.asarray(mask.to_numpy(zero_copy_only=False), dtype=bool)
        return idx[keep]

    def paths_of(self, idx: np.ndarray) -> Iterator[tuple[int, str]]:
        """(index, path) for the given indices, decoded block by block."""
        import pyarrow as pa

        dirs = self.dirs
        for start in range(0, len(idx), BLOCK):
            part = idx[start:start + BLOCK]
            names = self._names.take(pa.array(part)).to_pylist()
            for i, d, raw in zip(part.tolist(), self.dir[part].tolist(), names, strict=True):
                folder = dirs[d]
                yield i, (f"{folder}/{_decode(raw)}" if folder else _decode(raw))

    # ----------------------------------------------------------------- accounting
    def reason_id(self, reason: str) -> int:
        rid = self._reason_ids.get(reason)
        if rid is None:
            self.reasons.append(reason)
            rid = self._reason_ids[reason] = len(self.reasons)
        return rid

    def set_sha(self, i: int, digest: bytes) -> None:
        if self.sha is None:
            self.sha = np.zeros((len(self), 32), dtype=np.uint8)
            self._has_sha = np.zeros(len(self), dtype=bool)
        self.sha[i] = np.frombuffer(digest, dtype=np.uint8)
        self._has_sha[i] = True

    def get_sha(self, i: int) -> str | None:
        if self.sha is None or not self._has_sha[i]:
            return None
        return self.sha[i].tobytes().hex()


class FileList(Sequence):
    """A read-only sequence of RawFile objects over table indices (created when accessed)."""

    def __init__(self, make, idx: np.ndarray, paths) -> None:
        self._make, self._idx, self._paths = make, idx, paths

    def __len__(self) -> int:
        return len(self._idx)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self._make(int(j)) for j in self._idx[i]]
        return self._make(int(self._idx[i]))

    def __iter__(self):
        for i, path in self._paths(self._idx):
            yield self._make(i, path)

    def __repr__(self) -> str:
        return f"<{len(self)} raw files>"


class UsedView(AbstractSet):
    """The paths of the files a builder read (`path in tree.used`)."""

    def __init__(self, table: FileTable) -> None:
        self._t = table

    def __contains__(self, path) -> bool:
        i = self._t.find(path) if isinstance(path, str) else None
        return i is not None and bool(self._t.used[i])

    def __iter__(self):
        for _, p in self._t.paths_of(np.flatnonzero(self._t.used)):
            yield p

    def __len__(self) -> int:
        return int(self._t.used.sum())


class SkippedView(Mapping):
    """path -> reason of the files deliberately left out (`tree.skipped[path]`)."""

    def __init__(self, table: FileTable, other: dict[str, str]) -> None:
        self._t, self._other = table, other

    def __getitem__(self, path: str) -> str:
        i = self._t.find(path)
        if i is not None and self._t.reason[i] and self._t.kind[i] == FILE:
            return self._t.reasons[self._t.reason[i] - 1]
        return self._other[path]

    def __iter__(self):
        for _, p in self._t.paths_of(np.flatnonzero((self._t.reason > 0) & (self._t.kind == FILE))):
            yield p
        yield from self._other

    def __len__(self) -> int:
        return int(((self._t.reason > 0) & (self._t.kind == FILE)).sum()) + len(self._other)


class RecordList(Sequence):
    """A read-only sequence of dicts made on access from a function of a position (for build reports of
    any size: JSON-written one entry at a time, never held as a list)."""

    def __init__(self, n: int, item, iterate=None) -> None:
        self._n, self._item, self._iterate = n, item, iterate

    def __len__(self) -> int:
        return self._n

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self._item(j) for j in range(*i.indices(self._n))]
        if i < 0:
            i += self._n
        if not 0 <= i < self._n:
            raise IndexError(i)
        return self._item(i)

    def __iter__(self):
        if self._iterate is not None:
            yield from self._iterate()
            return
        for j in range(self._n):
            yield self._item(j)
