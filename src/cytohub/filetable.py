"""Compact storage of a raw tree's file list and its accounting: a million raw files in tens of MB.

`cytohub.raw.RawTree` records every file it finds (path, size, where its bytes are: a folder on disk or a
zip member) and, as a build goes, which files were used, skipped (with a reason) or set aside (operating
system litter), and the sha256 of the user's loose input files. Kept as Python objects this costs about
2 KB per file; here it is Arrow columns built in blocks of `BLOCK` entries, sorted by path once scanning
ends (`seal`), plus NumPy arrays for the per-file flags. About 100 bytes per file, paths included.

Paths are stored as UTF-8 bytes (file names that are not valid UTF-8 keep their bytes through
`surrogateescape`), so they sort by code point exactly as Python sorts `str` for every valid name.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from collections.abc import Set as AbstractSet
from typing import Any

import numpy as np

BLOCK = 1 << 16
FILE, LITTER = 0, 1  # entry kinds: a file of the tree, or a file set aside (never a row's source)
_COLUMNS = ("path", "size", "kind", "slot", "hoff", "csize", "ctype", "flags", "crc", "orig", "top")


def _types() -> tuple:
    import pyarrow as pa  # imported when a tree is first scanned: the CLI starts without it

    return (pa.large_binary(), pa.int64(), pa.int8(), pa.int32(), pa.int64(), pa.int64(), pa.int16(), pa.int32(),
            pa.int64(), pa.large_string(), pa.bool_())


def _encode(path: str) -> bytes:
    return path.encode("utf-8", "surrogateescape")


def _decode(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogateescape")


class FileTable:
    """Append entries while scanning, `seal()` once, then query by index (sorted by path)."""

    def __init__(self) -> None:
        self._pending: list[list[Any]] = [[] for _ in _COLUMNS]
        self._blocks: list = []  # pyarrow RecordBatches of BLOCK entries
        self.table = None  # a pyarrow Table once sealed
        self.reasons: list[str] = []  # reason id k -> self.reasons[k - 1]
        self._reason_ids: dict[str, int] = {}

    # ----------------------------------------------------------------- building
    def add(self, path: str, size: int, kind: int = FILE, slot: int = -1, member: tuple | None = None,
            top: bool = False) -> None:
        """One entry; `member` is a zip member's (orig_filename, header_offset, compress_size, file_size,
        compress_type, flag_bits, crc) when `slot` is a zip, None for a file on disk; `top` marks a loose
        file given by the user (an input of the build, hashed for the report)."""
        p = self._pending
        p[0].append(_encode(path))
        p[1].append(size)
        p[2].append(kind)
        p[3].append(slot)
        if member is None:
            for col in (4, 5, 6, 7, 8):
                p[col].append(0)
            p[9].append(None)
        else:
            orig, hoff, csize, _fsize, ctype, flags, crc = member
            p[4].append(hoff)
            p[5].append(csize)
            p[6].append(ctype)
            p[7].append(flags)
            p[8].append(crc)
            p[9].append(None if path.endswith("/" + orig) else orig)
        p[10].append(top)
        if len(p[0]) >= BLOCK:
            self._flush()

    def _flush(self) -> None:
        import pyarrow as pa

        if self._pending[0]:
            arrays = [pa.array(col, type=t) for col, t in zip(self._pending, _types(), strict=True)]
            self._blocks.append(pa.RecordBatch.from_arrays(arrays, names=list(_COLUMNS)))
            self._pending = [[] for _ in _COLUMNS]

    def seal(self) -> None:
        """Sort every entry by path; from now on entries are addressed by their index in that order."""
        import pyarrow as pa
        import pyarrow.compute as pc

        self._flush()
        schema = pa.schema(list(zip(_COLUMNS, _types(), strict=True)))
        table = pa.Table.from_batches(self._blocks, schema=schema)
        self._blocks = []
        if table.num_rows:
            table = table.take(pc.sort_indices(table, sort_keys=[("path", "ascending")]))
        self.table = table.combine_chunks()
        n = self.table.num_rows
        self._paths = self.table.column("path").chunk(0) if n else pa.array([], pa.large_binary())
        self.kind = self.table.column("kind").to_numpy()
        self.size = self.table.column("size").to_numpy()
        self.slot = self.table.column("slot").to_numpy()
        self.used = np.zeros(n, dtype=bool)
        self.reason = np.zeros(n, dtype=np.int32)
        self.is_input = self.table.column("top").to_numpy(zero_copy_only=False).astype(bool) if n else \
            np.zeros(0, dtype=bool)
        self.sha: np.ndarray | None = None  # (n, 32) uint8 once the first loose input is hashed
        self.files = np.flatnonzero(self.kind == FILE)
        self._zip = {c: self.table.column(c).to_numpy() for c in ("hoff", "csize", "ctype", "flags", "crc")}
        orig = self.table.column("orig")
        self._orig = orig.chunk(0) if n else None
        self._has_orig = orig.is_valid().to_numpy(zero_copy_only=False) if n else np.zeros(0, dtype=bool)
        self._file_set: np.ndarray | None = None

    # ----------------------------------------------------------------- queries
    def __len__(self) -> int:
        return 0 if self.table is None else self.table.num_rows

    def path(self, i: int) -> str:
        return _decode(self._paths[int(i)].as_py())

    def orig(self, i: int) -> str | None:
        """A zip member's name as stored in the zip, when it differs from the end of its path."""
        return self._orig[int(i)].as_py() if self._has_orig[i] else None

    def zip_fields(self, i: int) -> tuple[int, int, int, int, int]:
        z = self._zip
        return (int(z["hoff"][i]), int(z["csize"][i]), int(z["ctype"][i]), int(z["flags"][i]), int(z["crc"][i]))

    def find(self, path: str) -> int | None:
        """The index of the first entry with exactly this path (binary search), or None."""
        key = _encode(path)
        paths = self._paths
        lo, hi = 0, len(paths)
        while lo < hi:
            mid = (lo + hi) // 2
            if paths[mid].as_py() < key:
                lo = mid + 1
            else:
                hi = mid
        return lo if lo < len(paths) and paths[lo].as_py() == key else None

    def select(self, suffixes: tuple[str, ...] | None = None, name: str | None = None) -> np.ndarray:
        """Indices (in path order) of the files whose name ends with one of `suffixes` / equals `name`
        (both case-insensitive)."""
        import pyarrow as pa
        import pyarrow.compute as pc

        idx = self.files
        if not len(idx) or (suffixes is None and name is None):
            return idx
        paths = pc.cast(self._paths.take(pa.array(idx)), pa.large_string(), safe=False)
        low = pc.utf8_lower(paths)
        if name is not None:
            base = pc.replace_substring_regex(low, pattern=r"^.*/", replacement="")
            mask = pc.equal(base, name.lower())
        else:
            mask = None
            for s in suffixes:
                m = pc.ends_with(low, s.lower())
                mask = m if mask is None else pc.or_(mask, m)
        return idx[np.asarray(mask.to_numpy(zero_copy_only=False), dtype=bool)]

    def paths_of(self, idx: np.ndarray) -> Iterator[tuple[int, str]]:
        """(index, path) for the given indices, decoded block by block."""
        import pyarrow as pa

        for start in range(0, len(idx), BLOCK):
            part = idx[start:start + BLOCK]
            for i, raw in zip(part, self._paths.take(pa.array(part)).to_pylist(), strict=True):
                yield int(i), _decode(raw)

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
