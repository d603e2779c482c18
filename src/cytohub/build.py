"""The build engine: raw path -> rows -> deterministic Parquet shards + card + figures + build report.

One straight line (see DESIGN.md):
1. open the raw path as a RawTree (folders and archives as one view);
2. pass 1: every row the builder yields is completed (rows.RowMaker), encoded to Arrow and appended to a
   spool file in the staging folder, while a small RowInfo per row is kept for splits and statistics;
3. ids are checked unique and splits are assigned (official, `train`, or grouped ratios);
4. pass 2: the spool is read back batch by batch and each row goes to its split's shard writer;
5. figures, build-report.json and README.md are written, and the staging folder is renamed to `out`.
Memory is bounded by one spool batch plus one row group per split; an interrupted build leaves nothing
at `out` (only a hidden staging folder next to it, removed by the next build).
"""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from cytohub import __version__, figures, splits
from cytohub.builder import Builder
from cytohub.card import render_card
from cytohub.download import RECORD_FILES, verify_raw
from cytohub.errors import CytohubError, RawLayoutError
from cytohub.raw import RawTree
from cytohub.rows import RowInfo, RowMaker, check_official_split
from cytohub.schema import SCHEMA_VERSION, features
from cytohub.synth import MARKER
from cytohub.writer import SplitWriter

SPOOL_BATCH_ROWS = 64
SPOOL_BATCH_BYTES = 64 * 2**20
DEFAULT_MAX_SHARD_BYTES = 500 * 10**6
REPORT = "build-report.json"


@dataclass
class BuildResult:
    out: Path
    report: dict[str, Any]
    seconds: float


def parse_size(text: str) -> int:
    """'500MB' / '1.5GB' / '200MiB' / '1000000' -> bytes."""
    units = {"": 1, "B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "KIB": 2**10, "MIB": 2**20, "GIB": 2**30}
    t = text.strip().upper().replace(" ", "")
    num = t.rstrip("KMGIB")
    unit = t[len(num):]
    try:
        value = float(num) * units[unit]
    except (ValueError, KeyError):
        raise CytohubError(f"size {text!r}: expected a number with an optional unit (KB, MB, GB, MiB, GiB)") from None
    if value < 1e5:
        raise CytohubError(f"size {text!r} is too small; use at least 100KB")
    return int(value)


def _synthetic_marker(raw: Path) -> dict | None:
    for folder in (raw, raw.parent) if raw.is_file() else (raw,):
        marker = folder / MARKER
        if marker.is_file():
            try:
                return json.loads(marker.read_text())
            except (OSError, ValueError):
                return {"corpus": None}
    return None


def _staging_for(out: Path) -> Path:
    return out.parent / f".{out.name}.cytohub-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def _remove_stale_staging(out: Path) -> None:
    """Staging folders of builds that were killed (their process is gone) are removed."""
    for p in out.parent.glob(f".{out.name}.cytohub-*"):
        try:
            pid = int(p.name.rsplit("-", 2)[-2])
            os.kill(pid, 0)
        except ProcessLookupError:
            shutil.rmtree(p, ignore_errors=True)
        except (ValueError, PermissionError, IndexError):
            continue


def build(builder: Builder, raw: str | os.PathLike, out: str | os.PathLike, *, split: str | None = None,
          seed: int = 0, max_shard_bytes: int = DEFAULT_MAX_SHARD_BYTES, overwrite: bool = False,
          tmp_dir: str | os.PathLike | None = None,
          progress: Callable[[str, int | None], None] | None = None) -> BuildResult:
    """Build `builder`'s corpus from `raw` into the folder `out` (the Hub repo layout).

    `progress(message, rows_done)` is called as work advances (rows_done None for phase messages)."""
    t0 = time.monotonic()
    raw, out = Path(raw).expanduser(), Path(out).expanduser()
    note = progress or (lambda msg, n=None: None)
    if out.exists() and not overwrite:
        raise CytohubError(f"{out} already exists; pass --overwrite to replace it")
    if out.exists() and not (out / REPORT).is_file() and any(out.iterdir()):
        raise CytohubError(f"{out} exists and is not a cytohub build folder (no {REPORT}); refusing to replace it")
    if builder.splits and split:
        raise CytohubError(f"{builder.name} has official splits ({', '.join(builder.splits)}); --split is not "
                           "allowed for it")
    ratios = splits.parse_spec(split) if split else None
    out.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_staging(out)
    staging = _staging_for(out)
    staging.mkdir()
    try:
        report = _build_into(builder, raw, staging, ratios, seed, max_shard_bytes, tmp_dir, note)
        if out.exists():
            trash = out.parent / f".{out.name}.cytohub-old-{uuid.uuid4().hex[:8]}"
            os.replace(out, trash)
            os.replace(staging, out)
            shutil.rmtree(trash, ignore_errors=True)
        else:
            os.replace(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return BuildResult(out, report, time.monotonic() - t0)


def _build_into(builder: Builder, raw_path: Path, staging: Path, ratios: dict[str, float] | None, seed: int,
                max_shard_bytes: int, tmp_dir, note) -> dict[str, Any]:
    feats = features(builder.class_names())
    schema = feats.arrow_schema
    maker = RowMaker(builder)
    marker = _synthetic_marker(raw_path)
    infos: list[RowInfo] = []
    samples = figures.SampleCollector(builder)
    spool_path = staging / ".spool.arrow"

    provenance = verify_raw(builder, raw_path, note=lambda m: note(m, None))  # downloads.json, .part files
    note("opening raw data", None)
    with RawTree(raw_path, tmp_dir=tmp_dir, known_sha256=builder.known_sha256(),
                 progress=lambda m: note(m, None)) as tree:
        if marker is not None:
            tree.skip(MARKER, "cytohub synthetic-data marker")
        for name in RECORD_FILES:
            tree.skip(name, "cytohub download record")
        with pa.OSFile(str(spool_path), "wb") as sink, pa.ipc.new_stream(sink, schema) as spool:
            pending: list[dict] = []
            pending_bytes = 0
            for raw_row in builder.examples(tree):
                row, info = maker.make(raw_row)
                if builder.splits:
                    check_official_split(info, builder.splits, row["source_path"])
                infos.append(info)
                samples.offer(row)
                pending.append(feats.encode_example(row))
                pending_bytes += _approx_bytes(row)
                if len(pending) >= SPOOL_BATCH_ROWS or pending_bytes >= SPOOL_BATCH_BYTES:
                    spool.write_batch(pa.RecordBatch.from_pylist(pending, schema=schema))
                    pending, pending_bytes = [], 0
                    note("rows", len(infos))
            if pending:
                spool.write_batch(pa.RecordBatch.from_pylist(pending, schema=schema))
            note("rows", len(infos))
        if not infos:
            raise RawLayoutError(f"{raw_path}: the {builder.name} builder found no rows; is this the right folder?")
        accounting = tree.accounting(f"not part of the {builder.name} layout")
        inputs = [{**i, "url": None, **provenance.get(i["path"], {})} for i in tree.input_hashes()
                  if i["path"] not in (MARKER, *RECORD_FILES)]

    seen: dict[str, int] = {}
    for i, info in enumerate(infos):
        if info.id in seen:
            raise RawLayoutError(f"{builder.name}: duplicate id {info.id!r} (rows {seen[info.id]} and {i})")
        seen[info.id] = i
    del seen

    if builder.splits:
        split_of = [info.split for info in infos]
        split_names = list(builder.splits)
        split_mode = "official"
    elif ratios:
        split_of = splits.assign([i.group for i in infos], [i.label for i in infos], ratios, seed)
        split_names = list(ratios)
        split_mode = "ratios"
    else:
        split_of = ["train"] * len(infos)
        split_names = ["train"]
        split_mode = "single"

    note("writing shards", None)
    data_dir = staging / "data"
    data_dir.mkdir()
    writers = {name: SplitWriter(data_dir, name, schema, max_shard_bytes) for name in split_names}
    with pa.OSFile(str(spool_path)) as source:  # plain reads: a memory map would count the spool in RSS
        reader = pa.ipc.open_stream(source)
        start = 0
        for batch in reader:
            targets = split_of[start:start + batch.num_rows]
            for name in dict.fromkeys(targets):
                idx = [j for j, t in enumerate(targets) if t == name]
                writers[name].write(batch if len(idx) == batch.num_rows else batch.take(pa.array(idx)))
            start += batch.num_rows
    shards = {name: w.close() for name, w in writers.items()}
    spool_path.unlink()

    stats = _statistics(builder, infos, split_of, split_names, writers, shards)
    note("drawing figures", None)
    assets = samples.write(staging / "assets", stats["splits"])
    report = {
        "cytohub_version": __version__,
        "schema_version": SCHEMA_VERSION,
        "builder": {"name": builder.name, "version": builder.version, "layout": builder.layout},
        "synthetic": marker is not None,
        "synthetic_marker": marker,
        "parameters": {"split": split_mode, "ratios": ratios, "seed": seed if ratios else None,
                       "max_shard_bytes": max_shard_bytes},
        "inputs": inputs,
        **stats,
        "assets": assets,
        "files": {
            "used": sum(1 for r in accounting if r["status"] == "used"),
            "skipped": sum(1 for r in accounting if r["status"] == "skipped"),
            "list": accounting,
        },
    }
    (staging / REPORT).write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    (staging / "README.md").write_text(render_card(builder, report), encoding="utf-8")
    return report


def _approx_bytes(row: dict) -> int:
    n = sum(len(p["bytes"]) for p in row["focal_stack"])
    for key in ("image", "mask"):
        if row[key] is not None:
            n += len(row[key]["bytes"])
    return n + 512


def _statistics(builder: Builder, infos: list[RowInfo], split_of: list[str], split_names: list[str],
                writers: dict[str, SplitWriter], shards: dict[str, list[str]]) -> dict[str, Any]:
    names = builder.class_names()
    per_split: dict[str, dict[str, Any]] = {}
    for name in split_names:
        labels: Counter[str] = Counter()
        objects: Counter[str] = Counter()
        planes: Counter[int] = Counter()
        groups = set()
        masks = 0
        for info, s in zip(infos, split_of, strict=True):
            if s != name:
                continue
            labels[names[info.label] if info.label >= 0 else "(none)"] += 1
            objects.update(info.objects)
            planes[info.planes] += 1
            groups.add(info.group)
            masks += info.has_mask
        per_split[name] = {
            "num_examples": writers[name].num_examples,
            "num_bytes": writers[name].num_bytes,
            "shards": shards[name],
            "groups": len(groups),
            "labels": dict(sorted(labels.items())),
            "objects": dict(sorted(objects.items())),
            "focal_planes": {str(k): v for k, v in sorted(planes.items())},
            "masks": masks,
        }
    return {"num_rows": len(infos), "splits": per_split}
