"""Pass 1 of a build: a builder's rows -> checked, encoded rows in spool segments, on every core.

The builder's `examples()` runs in the main process and yields rows whose images are still `RawFile`
references. Rows are cut into chunks (`CHUNK_ROWS` rows or about `CHUNK_BYTES` of raw image bytes, whichever
comes first: the cut does not depend on the number of processes) and each chunk goes to a worker process,
which reads the image bytes (zip members and files, by path), checks them and completes the row
(`cytohub.rows.RowMaker`), encodes the chunk to Arrow (`cytohub.encode`) and writes it as one spool
segment, an Arrow IPC file in the staging folder. Results come back in order, so the output is the same
for any `num_proc` (with `num_proc=1` the same function runs in the main process).

What the engine keeps of each row (`Ledger`) is compact: Arrow and NumPy columns of ids, group keys,
labels, plane counts, mask flags, estimated bytes and object counts, 18 bytes per row plus the id and
group text, never a Python object per row. Segments are read back, in order, by pass 2 (which deletes
each one once its rows are in their shards).
"""

from __future__ import annotations

import os
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from cytohub import errors, images, limits
from cytohub import raw as raw_module
from cytohub.encode import encode_extra, encode_rows, row_nbytes
from cytohub.errors import RawLayoutError
from cytohub.raw import RawFile
from cytohub.rows import RowMaker, check_official_split
from cytohub.writer import compression_pays

CHUNK_ROWS = 256
CHUNK_BYTES = 8 * 2**20  # image bytes plus 32 bytes per coordinate
_SAMPLE_BYTES = 1 << 18  # image bytes a segment samples to decide whether compressing its spool pays

# per-row ledger columns: ChunkResult field -> NumPy type (Ledger attribute names in _LEDGER_NAMES)
_LEDGER_TYPES = {"labels": np.int32, "planes": np.int32, "masks": np.bool_, "images": np.bool_, "nbytes": np.int64}
_LEDGER_NAMES = {"labels": "label", "planes": "planes", "masks": "mask", "images": "image", "nbytes": "nbytes"}

_STATE: dict[str, Any] = {}  # set in the parent before workers fork: maker, schema, splits


_preloading: threading.Thread | None = None


def preload() -> None:
    """Start loading, on a background thread, what a build imports late and what takes long to import: pyarrow's
    pandas support (pyarrow imports pandas the first time it converts a Python list, about 0.2 s of CPU, which a
    build otherwise pays after a download's archives are unpacked, one core idle) and the card's modules. Called
    when a build starts, so that this overlaps with opening and unpacking the raw data. `RowPipeline` waits for
    it before it forks its workers (a fork while another thread imports could leave a held import lock in the
    child); the workers inherit what it loaded. A failure here is ignored: the same import fails again where it
    is needed, with its real error."""
    global _preloading
    if _preloading is None:
        _preloading = threading.Thread(target=_preload, name="cytohub-preload")  # not a daemon: never cut mid-import
        _preloading.start()


def _preload() -> None:
    try:
        pa.array([0])  # pyarrow's check for pandas (imports it when it is installed)
        import cytohub.card  # noqa: F401  (huggingface_hub's card data)
    except Exception:  # noqa: S110 (see preload)
        pass


def wait_preload() -> None:
    """Wait until `preload`'s thread (if any) has finished."""
    if _preloading is not None:
        _preloading.join()


def default_num_proc() -> int:
    """The cores this process may run on (`os.sched_getaffinity`, else `os.cpu_count`)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


@dataclass
class ChunkResult:
    path: str
    rows: int
    ids: list[str]
    splits: list[str | None]
    groups: list[str | None]  # None: the row is a group of its own (`cytohub.rows` keys it "id:<id>")
    labels: list[int]
    planes: list[int]
    masks: list[bool]
    images: list[bool]
    nbytes: list[int]
    objects: list[tuple[int, str, int]]  # (row in chunk, category, count)
    sha256: dict[int, bytes] = field(default_factory=dict)
    image_stats: images.ImageStats | None = None  # formats, modes and sizes of the chunk's images


def _image_samples(rows: list[dict]) -> list[bytes]:
    out, total = [], 0
    for row in rows:
        for img in (row["image"], row["mask"], *row["focal_stack"]):
            if img is not None and total < _SAMPLE_BYTES:
                out.append(img["bytes"])
                total += len(img["bytes"])
    return out


def encode_chunk(rows: list[dict], path: str) -> ChunkResult:
    """Complete, check and encode one chunk of builder rows; write it as the spool segment `path`."""
    maker: RowMaker = _STATE["maker"]
    official = _STATE["splits"]
    raw_module.DETACHED_SHA256.clear()
    maker.image_stats = images.ImageStats()  # this chunk's, returned with its result
    done, res = [], ChunkResult(path, len(rows), [], [], [], [], [], [], [], [], [])
    for k, raw_row in enumerate(rows):
        try:
            row, info = maker.make(raw_row)
        except Exception as exc:  # a library error names the raw file being read (here, in this process)
            where = errors.last_read()
            told = errors.explain(exc, where)
            if told is None and where:
                exc.add_note(f"(while reading the raw file {where})")
            if told is None or told is exc:
                raise
            raise told from None
        if official:
            check_official_split(info, official, row["source_path"])
        row["extra"] = encode_extra(row["extra"])
        done.append(row)
        res.ids.append(info.id)
        res.splits.append(info.split)
        res.groups.append(None if info.group == f"id:{info.id}" else info.group)
        res.labels.append(info.label)
        res.planes.append(info.planes)
        res.masks.append(info.has_mask)
        res.images.append(row["image"] is not None)
        res.nbytes.append(row_nbytes(row))
        res.objects.extend((k, cat, n) for cat, n in info.objects.items())
    batch = encode_rows(done, _STATE["schema"])
    compress = compression_pays(_image_samples(done))
    options = pa.ipc.IpcWriteOptions(compression="zstd" if compress else None)
    with pa.OSFile(path, "wb") as sink, pa.ipc.new_file(sink, batch.schema, options=options) as w:
        w.write_batch(batch)
    res.sha256 = dict(raw_module.DETACHED_SHA256)
    res.image_stats = maker.image_stats
    return res


def read_segment(path: str | Path) -> pa.RecordBatch:
    """A spool segment's rows (plain reads: a memory map would count the spool in RSS)."""
    with pa.OSFile(str(path)) as source:
        reader = pa.ipc.open_file(source)
        batches = [reader.get_batch(i) for i in range(reader.num_record_batches)]
    return batches[0] if len(batches) == 1 else pa.Table.from_batches(batches).combine_chunks().to_batches()[0]


def _raw_files(row: dict) -> Iterator[RawFile]:
    for key in ("image", "mask"):
        if isinstance(row.get(key), RawFile):
            yield row[key]
    for plane in row.get("focal_stack") or ():
        if isinstance(plane, RawFile):
            yield plane


def _image_size(v: Any) -> int:
    """The bytes of one image value as a builder yields it (`cytohub.rows`): a RawFile, bytes, or a
    {'bytes', 'path'} dict (the form of images a builder re-encodes or composes: isbi2014, ccedd, ...)."""
    if isinstance(v, dict):
        v = v.get("bytes")
    return v.size if isinstance(v, RawFile) else len(v) if isinstance(v, bytes | bytearray) else 0


_BYTES_PER_VALUE = 32  # a coordinate as a Python float in a list (the row's size in memory while it is in flight)


def geometry_values(row: dict) -> int:
    """How many coordinates (bbox, polygon and point values) a builder's row holds."""
    n = 0
    for obj in row.get("objects") or ():
        if isinstance(obj, dict):
            for key in ("bbox", "polygon", "point"):
                v = obj.get(key)
                n += len(v) if hasattr(v, "__len__") else 0
    return n


def _row_size(row: dict, lim: limits.Limits | None = None) -> int:
    """The bytes a row weighs in flight: its image bytes (image, mask and focal planes, `_image_size`) and its
    coordinates. With `lim`, a row over the `geometry_values` limit is refused here, before it is sent to a
    worker (RawLayoutError naming its files)."""
    n = (_image_size(row.get("image")) + _image_size(row.get("mask"))
         + sum(_image_size(v) for v in row.get("focal_stack") or ()))
    values = geometry_values(row)
    if lim is not None and values > lim.geometry_values:
        where = row.get("source_path") or ";".join(f.path for f in _raw_files(row)) or row.get("id")
        raise lim.error("geometry_values", values, str(where), f"row {row.get('id')!r} has {values:,} coordinates "
                        f"in {len(row.get('objects') or ())} objects")
    return n + _BYTES_PER_VALUE * values


def _blocks_array(blocks: list) -> pa.ChunkedArray:
    """A string column from blocks that are arrays or, for blocks of nulls only, their length."""
    return pa.chunked_array([pa.nulls(b, pa.string()) if isinstance(b, int) else b for b in blocks], pa.string())


class Ledger:
    """Compact per-row facts of pass 1, in row order (see the module doc)."""

    def __init__(self) -> None:
        self.segments: list[tuple[str, int]] = []  # (path, rows)
        self._ids: list[pa.Array] = []
        self._groups: list[pa.Array | int] = []
        self._splits: list[pa.Array | int] = []
        self._cols: dict[str, list[np.ndarray]] = {name: [] for name in _LEDGER_TYPES}
        self._obj_rows: list[np.ndarray] = []
        self._obj_cats: list[np.ndarray] = []
        self._obj_counts: list[np.ndarray] = []
        self.categories: dict[str, int] = {}
        self.rows = 0
        self._group_codes: tuple[np.ndarray, int] | None = None
        self._id_codes: tuple[np.ndarray, int] | None = None

    def add(self, res: ChunkResult) -> None:
        self.segments.append((res.path, res.rows))
        self._ids.append(pa.array(res.ids, pa.string()))
        # a chunk where no row has a group (or a split) of its own keeps just its row count
        self._groups.append(res.rows if all(g is None for g in res.groups) else pa.array(res.groups, pa.string()))
        self._splits.append(pa.array(res.splits, pa.string()) if any(res.splits) else res.rows)
        for name, dtype in _LEDGER_TYPES.items():
            self._cols[name].append(np.array(getattr(res, name), dtype=dtype))
        if res.objects:
            rows, cats, counts = zip(*res.objects, strict=True)
            self._obj_rows.append(np.asarray(rows, dtype=np.int64) + self.rows)
            self._obj_cats.append(np.array([self.categories.setdefault(c, len(self.categories)) for c in cats]))
            self._obj_counts.append(np.asarray(counts, dtype=np.int64))
        self.rows += res.rows

    def finish(self) -> None:
        """Join the blocks into columns (call once, after the last chunk)."""
        for name, dtype in _LEDGER_TYPES.items():
            blocks = self._cols[name]
            setattr(self, _LEDGER_NAMES[name], np.concatenate(blocks) if blocks else np.zeros(0, dtype=dtype))
        self.ids = pa.chunked_array(self._ids, pa.string())
        self._group_blocks, self._split_blocks = self._groups, self._splits
        self.obj_rows = np.concatenate(self._obj_rows) if self._obj_rows else np.zeros(0, dtype=np.int64)
        self.obj_cats = np.concatenate(self._obj_cats) if self._obj_cats else np.zeros(0, dtype=np.int64)
        self.obj_counts = np.concatenate(self._obj_counts) if self._obj_counts else np.zeros(0, dtype=np.int64)
        self._ids = self._groups = self._splits = []
        self._cols = {}
        self._obj_rows = self._obj_cats = self._obj_counts = []

    @property
    def groups(self) -> pa.ChunkedArray:
        """Every row's own group key (patient, slide or FOV), null where the row is a group of its own."""
        return _blocks_array(self._group_blocks)

    @property
    def split_names(self) -> pa.ChunkedArray:
        """Every row's official split as the builder gave it (null where none)."""
        return _blocks_array(self._split_blocks)

    def id_codes(self) -> tuple[np.ndarray, int]:
        """(every row's id as a number, numbered in id order; number of distinct ids)."""
        if self._id_codes is None:
            from cytohub.splits import value_codes

            self._id_codes = value_codes(self.ids)
        return self._id_codes

    def check_unique_ids(self, corpus: str) -> None:
        """Raise RawLayoutError naming the first id that two rows share (the id whose first row comes first,
        and its first two rows). Sorts the ids (a few bytes per row), no hash table of every id."""
        codes, n = self.id_codes()
        if n == self.rows:
            return
        counts = np.bincount(codes, minlength=n)
        rows = np.flatnonzero(counts[codes] > 1)  # rows whose id is shared, in row order
        first = rows[0]
        second = rows[1:][codes[rows[1:]] == codes[first]][0]
        raise RawLayoutError(f"{corpus}: duplicate id {self.ids[int(first)].as_py()!r} (rows {first} and {second})")

    def group_keys(self) -> pa.ChunkedArray:
        """Every row's group key as `cytohub.rows` makes it (patient, slide or FOV, else "id:<id>")."""
        groups = self.groups
        if not groups.null_count:
            return groups
        return pa.chunked_array([pc.if_else(g.is_null(), pc.binary_join_element_wise("id:", i, ""), g)
                                 for g, i in zip(groups.iterchunks(), self.ids.iterchunks(), strict=True)],
                                pa.string())

    def group_codes(self) -> tuple[np.ndarray, int]:
        """(the group of every row as a number, numbered in the order of the group keys; number of groups).
        When no row has a group of its own the groups are the ids: their numbers are reused."""
        if self._group_codes is None:
            from cytohub.splits import value_codes

            if all(isinstance(b, int) for b in self._group_blocks):  # "id:<id>" sorts as <id>: the same numbers
                self._group_codes = self.id_codes()
            else:
                self._group_codes = value_codes(self.group_keys())
        return self._group_codes

    def segment_of(self) -> np.ndarray:
        """The row offset at which each segment starts (and the total, last)."""
        return np.concatenate([[0], np.cumsum([n for _, n in self.segments])]).astype(np.int64)

    def fetch_rows(self, indices: Iterable[int]) -> list[dict]:
        """Rows (as Python dicts) by their positions, read from the spool segments, in the given order."""
        starts = self.segment_of()
        indices = list(indices)
        seg_of = {i: int(np.searchsorted(starts, i, side="right") - 1) for i in indices}
        rows: dict[int, dict] = {}
        for s in sorted(set(seg_of.values())):  # each segment read once
            batch = read_segment(self.segments[s][0])
            for i in (i for i in indices if seg_of[i] == s):
                rows[i] = batch.slice(i - int(starts[s]), 1).to_pylist()[0]
        return [rows[i] for i in indices]


class RowPipeline:
    """Runs `encode_chunk` over a builder's rows with `num_proc` processes (inline for 1)."""

    def __init__(self, maker: RowMaker, schema: pa.Schema, official_splits: tuple[str, ...], num_proc: int,
                 spool_dir: Path) -> None:
        _STATE.update(maker=maker, schema=schema, splits=tuple(official_splits))
        self.spool_dir = spool_dir
        spool_dir.mkdir(parents=True, exist_ok=True)
        self.num_proc = num_proc
        self._pool: ProcessPoolExecutor | None = None
        if num_proc > 1:
            import multiprocessing

            wait_preload()  # no fork while another thread imports
            ctx = multiprocessing.get_context("fork")  # workers inherit the builder and schema as they are
            self._pool = ProcessPoolExecutor(num_proc, mp_context=ctx, initializer=errors.worker_signals)

    def run(self, rows: Iterable[dict], mark_used: Callable[[RawFile], None],
            on_result: Callable[[ChunkResult], None]) -> None:
        """Feed every row; `on_result` gets each chunk's result in row order."""
        inflight: deque[Future | ChunkResult] = deque()
        chunk: list[dict] = []
        size = 0
        n_chunks = 0

        def submit() -> None:
            nonlocal chunk, size, n_chunks
            path = str(self.spool_dir / f"{n_chunks:08d}.arrow")
            n_chunks += 1
            if self._pool is None:
                on_result(encode_chunk(chunk, path))
            else:
                inflight.append(self._pool.submit(encode_chunk, chunk, path))
                while len(inflight) > 2 * self.num_proc:
                    on_result(inflight.popleft().result())
            chunk, size = [], 0

        lim = limits.current()
        for row in rows:
            for f in _raw_files(row):
                mark_used(f)
            size += _row_size(row, lim)  # geometry counted too: a row of huge outlines is a chunk on its own
            chunk.append(row)
            if len(chunk) >= CHUNK_ROWS or size >= CHUNK_BYTES:
                submit()
        if chunk:
            submit()
        while inflight:
            on_result(inflight.popleft().result())

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        _STATE.clear()

    def __enter__(self) -> RowPipeline:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
