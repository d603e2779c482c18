"""Deterministic Parquet shards, planned before they are written.

By the time shards are written every row's split and size is known (rows are spooled first, see
`cytohub.spool`), so each split's shards are planned at once (`plan_shards`):
* how many: enough for parallel readers. A `DataLoader` with N workers and `split_dataset_by_node` over N
  nodes each read whole shards (`datasets` gives a worker or a node shards, not rows, and falls back to every
  node reading and skipping the whole split when the shard count is not a multiple of the node count), so a
  big split gets `TARGET_SHARDS` (64 = 8 nodes x 8 workers) shards, a smaller one the largest power of two
  that keeps shards >= `MIN_SHARD_BYTES`; then more, in multiples of 64, if a shard would pass
  `max_shard_bytes`. `num_shards` asks for that many (at least; the size cap still holds).
* where they are cut: at rows, so that shards hold about the same number of bytes.
Row groups hold at most `ROW_GROUP_ROWS` rows and about `ROW_GROUP_BYTES` bytes: the Hub's dataset viewer
reads image datasets in pages of 100 rows and only serves Parquet files whose row groups are under 100 MB
uncompressed (dataset-viewer `PARQUET_AND_INFO_MAX_ROW_GROUP_BYTE_SIZE_FOR_COPY` = 100_000_000, and
`writer_batch_size` 100 for image datasets, in `config/parquet_and_info.py`).

Columns: encoded image bytes (JPEG, PNG, ...) are stored without Parquet compression unless zstd saves at
least `COMPRESS_MIN_SAVING` of them (raw formats such as BMP or uncompressed TIFF): zstd over JPEG saves a
few percent and costs time on every read; every other column is zstd-compressed. Image bytes are never
dictionary-encoded (every image is distinct; trying costs time). Statistics and the page
index (column and offset indexes, used by the viewer and by `datasets` to seek) are written for every column
except the image bytes, whose min/max would be meaningless. Shards are named
`<split>-NNNNN-of-NNNNN.parquet`. The same rows in the same order give byte-identical files.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from cytohub.output import GuardedFile

ROW_GROUP_ROWS = 100
ROW_GROUP_BYTES = 64 * 2**20
TARGET_SHARDS = 64
MIN_SHARD_BYTES = 16 * 2**20
COMPRESS_MIN_SAVING = 0.10
IMAGE_BYTE_COLUMNS = ("image.bytes", "focal_stack.list.element.bytes", "mask.bytes")
_ZSTD_LEVEL = 3


def _cdc_supported() -> bool:
    try:
        pq.ParquetWriter(pa.BufferOutputStream(), pa.schema([("a", pa.int8())]), use_content_defined_chunking=True)
        return True
    except TypeError:
        return False


_CDC = _cdc_supported()  # content-defined pages: re-uploads of a changed dataset deduplicate on the Hub (Xet)


def leaf_columns(schema: pa.Schema) -> list[str]:
    """Parquet leaf column paths of an Arrow schema (lists as `list.element`, as pyarrow writes them)."""
    out: list[str] = []

    def walk(prefix: str, typ: pa.DataType) -> None:
        if pa.types.is_struct(typ):
            for i in range(typ.num_fields):
                walk(f"{prefix}.{typ.field(i).name}", typ.field(i).type)
        elif pa.types.is_list(typ) or pa.types.is_large_list(typ):
            walk(f"{prefix}.list.element", typ.value_type)
        else:
            out.append(prefix)

    for field in schema:
        walk(field.name, field.type.storage_type if isinstance(field.type, pa.ExtensionType) else field.type)
    return out


def compression_pays(samples: Sequence[bytes]) -> bool:
    """Whether zstd saves at least COMPRESS_MIN_SAVING of these encoded images' bytes."""
    total = sum(len(s) for s in samples)
    if not total:
        return False
    codec = pa.Codec("zstd", compression_level=_ZSTD_LEVEL)
    packed = sum(codec.compress(s, asbytes=True).__len__() for s in samples)
    return packed <= (1 - COMPRESS_MIN_SAVING) * total


def parquet_options(schema: pa.Schema, compress_images: bool) -> dict:
    """ParquetWriter keyword arguments: per-column compression, statistics and page index as documented."""
    leaves = leaf_columns(schema)
    images = [c for c in leaves if c in IMAGE_BYTE_COLUMNS]
    opts: dict = {
        "compression": {c: ("zstd" if compress_images or c not in images else "none") for c in leaves},
        "compression_level": {c: _ZSTD_LEVEL for c in leaves if compress_images or c not in images},
        "write_statistics": [c for c in leaves if c not in images],
        "use_dictionary": [c for c in leaves if c not in images],
        "write_page_index": True,
    }
    if _CDC:
        opts["use_content_defined_chunking"] = True
    return opts


def _more(n: int, num_shards: int | None) -> int:
    if num_shards:
        return n + num_shards
    return n * 2 if n < TARGET_SHARDS else n + TARGET_SHARDS


def shard_count(total_bytes: int, rows: int, max_shard_bytes: int, num_shards: int | None = None) -> int:
    """The number of shards of a split of `rows` rows and about `total_bytes` bytes (see the module doc)."""
    if rows == 0:
        return 1
    n = num_shards or 1
    if not num_shards:
        while n * 2 <= TARGET_SHARDS and total_bytes / (n * 2) >= MIN_SHARD_BYTES:
            n *= 2
    while total_bytes / n > max_shard_bytes and n < rows:
        n = _more(n, num_shards)
    return max(1, min(n, rows))


def plan_shards(row_bytes: np.ndarray, max_shard_bytes: int, num_shards: int | None = None) -> list[int]:
    """Rows per shard for a split whose rows (in order) have these sizes: shards of about equal bytes, none
    over `max_shard_bytes` unless a single row is (then that row is a shard of its own)."""
    rows = len(row_bytes)
    if rows == 0:
        return [0]
    total = int(row_bytes.sum())
    n = shard_count(total, rows, max_shard_bytes, num_shards)
    before = np.cumsum(row_bytes) - row_bytes  # bytes before each row
    while True:
        targets = np.array([total * k / n for k in range(1, n)])
        cuts = np.searchsorted(before, targets, side="left")  # first row starting at or after the target
        prev = np.maximum(cuts - 1, 0)  # or the row boundary just before it, whichever is nearer
        nearer = np.abs(before[prev] - targets) < np.abs(before[np.minimum(cuts, rows - 1)] - targets)
        cuts = np.where(nearer & (cuts < rows), prev, cuts)
        bounds = [0, *sorted({int(c) for c in cuts if 0 < c < rows}), rows]
        counts = [b - a for a, b in zip(bounds, bounds[1:], strict=False)]
        sizes = [int(row_bytes[a:b].sum()) for a, b in zip(bounds, bounds[1:], strict=False)]
        if n >= rows or all(s <= max_shard_bytes or c == 1 for s, c in zip(sizes, counts, strict=True)):
            return counts
        n = min(rows, _more(n, num_shards))


@dataclass
class ShardPlan:
    """Rows per shard of one split, in order."""

    split: str
    rows_per_shard: list[int]

    @property
    def num_shards(self) -> int:
        return len(self.rows_per_shard)

    def names(self) -> list[str]:
        n = self.num_shards
        return [f"{self.split}-{i:05d}-of-{n:05d}.parquet" for i in range(n)]


class SplitWriter:
    """Writes one split's rows, arriving in order as record batches, into its planned shards."""

    def __init__(self, folder: Path, plan: ShardPlan, schema: pa.Schema, options: dict) -> None:
        self.folder, self.plan, self.schema, self.options = folder, plan, schema, options
        self._names = plan.names()
        self._shard = 0
        self._left_in_shard = plan.rows_per_shard[0]
        self._writer: pq.ParquetWriter | None = None
        self._sink: GuardedFile | None = None  # a failed write raises here instead of aborting in pyarrow
        self._pending: list[pa.RecordBatch] = []
        self._pending_rows = self._pending_bytes = 0
        self.num_examples = 0
        self.num_bytes = 0  # Arrow (in-memory) bytes of the rows, as `datasets` reports them

    def write(self, batch: pa.RecordBatch, row_bytes: np.ndarray) -> None:
        """Append the rows of `batch` (their estimated sizes in `row_bytes`); rows are cut into row groups
        and shards at whole rows, never one by one."""
        start, n = 0, batch.num_rows
        while start < n:
            if self._left_in_shard == 0:
                self._flush()
                self._next_shard()
            # how many of the next rows fit in the current row group and shard
            room_rows = min(ROW_GROUP_ROWS - self._pending_rows, self._left_in_shard, n - start)
            sizes = row_bytes[start:start + room_rows]
            cum = self._pending_bytes + np.cumsum(sizes)
            fit = int(np.searchsorted(cum, ROW_GROUP_BYTES, side="right"))
            take = max(fit, 1 if self._pending_rows == 0 else 0)
            take = min(take, room_rows)
            if take:
                self._pending.append(batch.slice(start, take))
                self._pending_rows += take
                self._pending_bytes += int(sizes[:take].sum())
                self._left_in_shard -= take
                self.num_examples += take
                start += take
            if take < room_rows or self._pending_rows >= ROW_GROUP_ROWS or take == 0:
                self._flush()

    def _flush(self) -> None:
        if not self._pending:
            return
        table = pa.Table.from_batches(self._pending, schema=self.schema).combine_chunks()
        if self._writer is None:
            self._open_shard()
        self._writer.write_table(table, row_group_size=table.num_rows)
        self._sink.check()
        self.num_bytes += table.nbytes
        self._pending.clear()
        self._pending_rows = self._pending_bytes = 0

    def _tmp_path(self, i: int) -> Path:
        return self.folder / f".{self._names[i]}.part"

    def _open_shard(self) -> None:
        self._sink = GuardedFile(self._tmp_path(self._shard))
        self._writer = pq.ParquetWriter(self._sink, self.schema, **self.options)

    def _close_shard(self) -> None:
        if self._writer is None:  # a shard (or an empty split) without rows still gets its schema
            self._open_shard()
        self._writer.close()
        self._writer = None
        self._sink.close()
        self._sink.check()
        os.replace(self._tmp_path(self._shard), self.folder / self._names[self._shard])

    def _next_shard(self) -> None:
        self._close_shard()
        self._shard += 1
        self._left_in_shard = self.plan.rows_per_shard[self._shard]

    def close(self) -> list[str]:
        """Finish the last shard; returns the shard file names."""
        self._flush()
        self._close_shard()
        if self._shard != self.plan.num_shards - 1 or self._left_in_shard:
            raise RuntimeError(f"split {self.plan.split}: {self.num_examples} rows written, the shard plan "
                               f"expected {sum(self.plan.rows_per_shard)}")
        return self._names
