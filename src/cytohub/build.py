"""The build engine: raw path -> rows -> deterministic Parquet shards + card + figures + build report.

One straight line (see DESIGN.md):
1. open the raw path as a RawTree (folders and archives as one view; its file list is compact);
2. pass 1 (`cytohub.spool`): the builder's rows are completed, checked and encoded to Arrow by `num_proc`
   worker processes and written as spool segments in the staging folder, while a compact ledger keeps what
   splits, statistics and figures need (a few dozen bytes per row);
3. ids are checked unique and splits are assigned (official, `train`, or grouped ratios);
4. each split's shards are planned (count and cut points, `cytohub.writer.plan_shards`), then pass 2 reads
   the segments in order, routes each row to its split's shard writer and deletes each segment as soon as
   its rows are written: temporary disk stays about one output's size;
5. statistics -> figures -> README.md -> croissant.json -> build-report.json (with the manifest of every file
   written, see `cytohub.manifest`), and the staging folder is renamed to `out`.
Before any shard is written the rows are compared with what the publisher states (`cytohub.completeness`);
a split without rows is left out (the card says so).
Memory does not grow with the number of rows (bookkeeping is compact columns); it is bounded by the
chunks in flight plus one row group per split. An interrupted build leaves nothing at `out` (only a hidden
staging folder next to it, removed by the next build).
"""

from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cytohub import __version__, completeness, errors, figures, images, layout, manifest, splits, synth
from cytohub.builder import Builder
from cytohub.download import RECORD_FILES, verify_raw
from cytohub.encode import storage_schema
from cytohub.errors import CytohubError, OutputError, RawLayoutError, ResourceError
from cytohub.filetable import RecordList
from cytohub.manifest import REPORT
from cytohub.output import DestinationLock, check_destination, check_tmp_dir, free_bytes
from cytohub.raw import RawTree
from cytohub.rows import RowMaker
from cytohub.schema import SCHEMA_VERSION
from cytohub.spool import ChunkResult, Ledger, RowPipeline, default_num_proc, preload, read_segment
from cytohub.synth import MARKER
from cytohub.writer import ShardPlan, SplitWriter, compression_pays, parquet_options, plan_shards

DEFAULT_MAX_SHARD_BYTES = 500 * 10**6


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
    if not math.isfinite(value) or value <= 0:
        raise CytohubError(f"size {text!r}: expected a positive, finite size such as 500MB")
    if value < 1e5:
        raise CytohubError(f"size {text!r} is too small; use at least 100KB")
    return int(value)


def _staging_for(out: Path) -> Path:
    return out.parent / f".{out.name}.cytohub-{os.getpid()}-{uuid.uuid4().hex[:8]}"


@contextlib.contextmanager
def staging_for_destination(out: Path, overwrite: bool) -> Iterator[Path]:
    """A new, empty staging folder beside `out`, held under `out`'s lock (one build or mix per destination at a
    time) for the body of the `with`: `out`'s parent is created, `out` is checked to be replaceable
    (`manifest.check_replace`: only a cytohub build folder holding nothing but its own files, and only with
    `overwrite`), and staging folders left by killed runs are removed. The caller fills the staging folder and
    puts it in place (`move_into_place`) or removes it. Raises OutputError when a folder cannot be created or
    another process holds the lock."""
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"{out.parent}: cannot create the folder for --out ({errors.os_reason(exc)})") from None
    with DestinationLock(out):
        manifest.check_replace(out, overwrite)
        _remove_stale_staging(out)
        staging = _staging_for(out)
        try:
            staging.mkdir()
        except OSError as exc:
            raise OutputError(f"{out.parent}: cannot write there ({errors.os_reason(exc)})") from None
        yield staging


def move_into_place(staging: Path, out: Path) -> None:
    """Put a finished staging folder at `out` (same file system): renamed into place, an existing `out` (already
    checked to be a build folder that may be replaced) renamed aside first and removed after, so `out` is at
    every moment either the old build or the new one."""
    if out.exists():
        trash = out.parent / f".{out.name}.cytohub-old-{uuid.uuid4().hex[:8]}"
        os.replace(out, trash)
        os.replace(staging, out)
        shutil.rmtree(trash, ignore_errors=True)
    else:
        os.replace(staging, out)


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
          progress: Callable[[str, int | None], None] | None = None, num_proc: int | None = None,
          num_shards: int | None = None, allow_partial: bool = False) -> BuildResult:
    """Build `builder`'s corpus from `raw` into the folder `out` (the Hub repo layout).

    `progress(message, rows_done)` is called as work advances (rows_done None for phase messages).
    `num_proc` processes read, check and encode rows (default: the cores available); the output is
    byte-identical for any value. `num_shards` asks for that many shards per split (default: see
    `cytohub.writer`); a shard still never passes `max_shard_bytes`. `allow_partial` builds a download that
    lacks published files or rows (see `cytohub.completeness`); the card and report then say "partial".

    Every failure a user can cause is a CytohubError with one line naming the file: bad raw input
    (RawFileError, RawLayoutError; a library error raised while a builder reads a raw file names that file),
    a bad destination or a full, read-only or quota-limited disk (OutputError), memory (ResourceError),
    another build writing the same `out` (OutputError, from a lock). Any other exception is a bug and is
    re-raised with a note naming the raw file being read. On any failure, Ctrl-C and SIGTERM included, the
    staging folder is removed and nothing is written at `out`."""
    t0 = time.monotonic()
    raw, out = Path(raw).expanduser(), Path(out).expanduser()
    note = progress or (lambda msg, n=None: None)
    check_destination(out, raw)
    manifest.check_replace(out, overwrite)  # fail fast; checked again under the destination's lock
    if tmp_dir is not None:
        check_tmp_dir(Path(tmp_dir))
    if not isinstance(max_shard_bytes, int) or max_shard_bytes < 1:
        raise CytohubError(f"max_shard_bytes {max_shard_bytes!r}: expected a positive number of bytes")
    if builder.splits and split:
        raise CytohubError(f"{builder.name} has official splits ({', '.join(builder.splits)}); --split is not "
                           "allowed for it")
    ratios = splits.parse_spec(split, official=builder.splits) if split else None
    if num_proc is not None and num_proc < 1:
        raise CytohubError(f"--num-proc {num_proc}: expected a number of processes >= 1")
    if num_proc is not None and num_proc > max_num_proc():
        raise CytohubError(f"--num-proc {num_proc}: more than {max_num_proc()} processes ({PROCS_PER_CORE} per core "
                           f"available, {default_num_proc()} cores) only costs memory (each process holds its own "
                           f"rows in flight); expected 1..{max_num_proc()}")
    if num_shards is not None and num_shards < 1:
        raise CytohubError(f"--num-shards {num_shards}: expected a number of shards >= 1")
    with staging_for_destination(out, overwrite) as staging:
        errors.reading(None)
        try:
            report = _build_into(builder, raw, staging, ratios, seed, max_shard_bytes, tmp_dir, note,
                                 num_proc or default_num_proc(), num_shards, allow_partial)
            move_into_place(staging, out)
        except BaseException as exc:
            errors.release_memory(exc)  # out of memory: free what the failed frames hold before anything else
            failure = _failure(exc, builder, out, staging, tmp_dir)  # before removing staging (free space)
            shutil.rmtree(staging, ignore_errors=True)
            if failure is None or failure is exc:
                raise
            raise failure from exc
    return BuildResult(out, report, time.monotonic() - t0)


PROCS_PER_CORE = 4  # --num-proc beyond this many processes per available core is refused (memory, not speed)


def max_num_proc() -> int:
    """The largest --num-proc accepted: PROCS_PER_CORE per core available, at least 8."""
    return max(8, PROCS_PER_CORE * default_num_proc())


def _failure(exc: BaseException, builder: Builder, out: Path, staging: Path, tmp_dir) -> BaseException | None:
    """The one-line error a build failure becomes (see `errors.explain`), or None to re-raise `exc` as it is
    (interrupts, and bugs, which get a note naming the raw file being read)."""
    if isinstance(exc, KeyboardInterrupt | SystemExit | GeneratorExit):
        return None
    where = errors.last_read()
    disk = errors.disk_cause(exc)
    if disk is not None:
        tmp = Path(tmp_dir) if tmp_dir else Path(tempfile.gettempdir())
        places = {"--out": out.parent, "--tmp-dir": tmp}
        name = str(disk.filename or "")
        hit = next((opt for opt, p in places.items() if name.startswith(str(p.resolve()) + os.sep)
                    or name.startswith(str(p) + os.sep)), None)
        if hit is None:  # no file name (pyarrow, copies): the file system with the least free space
            hit = min(places, key=lambda opt: free_bytes(places[opt]) or 0)
        remedy = {errno.EROFS: f"pass a writable {hit}",
                  errno.EFBIG: "raise the file size limit (`ulimit -f`) or use a file system that allows larger "
                               "files"}.get(disk.errno, f"free space there or pass another {hit}")
        return OutputError(f"{places[hit]}: {errors.os_reason(disk)} while building {builder.name}; {remedy} (the "
                           f"partial build was removed; nothing was written at {out})")
    if type(exc).__name__ == "BrokenProcessPool":  # a worker was killed (out of memory, a signal) or crashed
        return ResourceError(f"a worker process of the {builder.name} build stopped abruptly (killed by the system, "
                             "e.g. for lack of memory, or crashed in a library while decoding a file); nothing was "
                             f"written at {out}. Run the build again with --num-proc 1 to see which file")
    mapped = errors.explain(exc, where)
    if mapped is None and where and not isinstance(exc, CytohubError):
        exc.add_note(f"(while the {builder.name} builder was reading the raw file {where})")
    return mapped


def _build_into(builder: Builder, raw_path: Path, staging: Path, ratios: dict[str, float] | None, seed: int,
                max_shard_bytes: int, tmp_dir, note, num_proc: int = 1, num_shards: int | None = None,
                allow_partial: bool = False) -> dict[str, Any]:
    preload()  # pyarrow's pandas support and the card's imports load while the raw data are opened and unpacked
    schema = storage_schema(builder.class_names())
    ledger = Ledger()
    image_stats = images.ImageStats()

    provenance = verify_raw(builder, raw_path, note=lambda m: note(m, None))  # downloads.json, .part files
    note("opening raw data", None)
    with RawTree(raw_path, tmp_dir=tmp_dir, known_sha256=builder.known_sha256(),
                 progress=lambda m: note(m, None)) as tree, \
            RowPipeline(RowMaker(builder), schema, builder.splits, num_proc, staging / ".spool") as pipeline:
        marker = synth.detect(tree)
        for f in tree.named(MARKER):
            tree.skip(f, "cytohub synthetic-data marker")
        for name in RECORD_FILES:
            tree.skip(name, "cytohub download record")

        def collect(res: ChunkResult) -> None:
            ledger.add(res)
            image_stats.merge(res.image_stats)
            tree.record_sha256(res.sha256)
            note("rows", ledger.rows)

        pipeline.run(builder.examples(tree), tree.mark_used, collect)
        if not ledger.rows:
            raise RawLayoutError(layout.no_rows_message(str(raw_path), builder.name, builder.expected_layout, tree))
        note("rows", ledger.rows)
        accounting = tree.accounting(f"not part of the {builder.name} layout")
        inputs = _user_inputs(tree.input_hashes(), provenance)
        counts = tree.accounting_counts()
        containers = list(tree.containers)
        absent_parts = list(tree.absent_parts)
    errors.reading(None)  # from here on, an error names the row it concerns, not the last raw file read
    ledger.finish()
    ledger.check_unique_ids(builder.name)

    split_of, split_names, split_mode = _assign_splits(builder, ledger, ratios, seed)
    split_of, split_names, empty_splits = _drop_empty_splits(split_of, split_names)
    sample_rows, image_mark = _sample_rows(builder, ledger)  # read before pass 2 deletes the spool
    if marker is None and image_mark is not None:  # marked images inside archives that carry no mark
        marker = {**image_mark, "found_in": "images", "scales": [image_mark["scale"]]}
    names = builder.class_names()
    labels, label_counts = np.unique(ledger.label, return_counts=True)
    complete = completeness.check(
        builder.published, pretty=builder.name, class_names=names, inputs=[e["path"] for e in inputs],
        containers=containers, split_counts=dict(zip(split_names, np.bincount(split_of, minlength=len(
            split_names)).tolist(), strict=True)),
        class_counts={names[v]: int(c) for v, c in zip(labels.tolist(), label_counts.tolist(), strict=True)
                      if v >= 0},
        marker=marker, allow_partial=allow_partial, absent_parts=absent_parts)
    schema = schema.with_metadata({**(schema.metadata or {}), b"cytohub": json.dumps(
        {"builder": builder.name, "synthetic": marker is not None}, sort_keys=True).encode()})
    note("writing shards", None)
    drawing = _Background(_offer_samples, builder, sample_rows)  # thumbnails decode beside pass 2
    try:
        shards, writers = _write_shards(staging, ledger, split_of, split_names, schema, max_shard_bytes, num_shards)
    except BaseException:
        drawing.join()
        raise

    stats = _statistics(builder, ledger, split_of, split_names, writers, shards)
    for st in stats["splits"].values():  # the card's download_size, as push_to_hub reports it
        st["parquet_bytes"] = sum((staging / "data" / f).stat().st_size for f in st["shards"])
    note("drawing figures", None)
    samples = drawing.result()
    assets = samples.write(staging / "assets", stats["splits"])
    report = {
        "cytohub_version": __version__,
        "schema_version": SCHEMA_VERSION,
        "builder": {"name": builder.name, "version": builder.version, "layout": builder.layout},
        "synthetic": marker is not None,
        "synthetic_marker": marker,
        "parameters": {"split": split_mode, "ratios": ratios, "seed": seed if ratios else None,
                       "max_shard_bytes": max_shard_bytes, "num_shards": num_shards, "allow_partial": allow_partial},
        "inputs": inputs,
        "absent_parts": absent_parts,
        **stats,
        "images": image_stats.summary(),
        "empty_splits": empty_splits,
        "completeness": complete,
        "assets": assets,
        "files": {"used": counts[0], "skipped": counts[1], "list": accounting},
    }
    from cytohub.card import render_card  # huggingface_hub's card data only: not `datasets`
    from cytohub.croissant import CROISSANT, croissant_json

    (staging / "README.md").write_text(render_card(builder, report), encoding="utf-8")
    (staging / CROISSANT).write_text(croissant_json(builder, report), encoding="utf-8")
    report["manifest"] = manifest.compute(staging, exclude=(REPORT,))  # every file written, the card included
    write_report(staging / REPORT, report)
    return report


def _user_inputs(inputs: RecordList, provenance: dict[str, dict]) -> RecordList:
    """The user's input files for the report (a view, like the list itself): without the synthetic-data
    marker and the download records, each with its source `url` (null when unknown) and the download's
    provenance (`cytohub.download.verify_raw`) where there is one."""
    excluded = {MARKER, *RECORD_FILES}
    skip = np.array([j for j, e in enumerate(inputs) if e["path"] in excluded
                     or e["path"].rsplit("/", 1)[-1] == MARKER], dtype=np.int64)

    def item(j: int) -> dict:
        e = inputs[_shift(skip, j)]
        return {**e, "url": None, **provenance.get(e["path"], {})}

    return RecordList(len(inputs) - len(skip), item,
                      lambda: ({**e, "url": None, **provenance.get(e["path"], {})} for e in inputs
                               if e["path"] not in excluded and e["path"].rsplit("/", 1)[-1] != MARKER))


def _shift(skip: np.ndarray, j: int) -> int:
    """The position in the full list of the j-th entry that is not skipped (`skip` sorted)."""
    for s in skip.tolist():
        if s <= j:
            j += 1
    return j


def _assign_splits(builder: Builder, ledger: Ledger, ratios: dict[str, float] | None,
                   seed: int) -> tuple[np.ndarray, list[str], str]:
    """(split index of every row, split names, mode)."""
    if builder.splits:
        names = list(builder.splits)
        codes = pc_index_in(ledger.split_names, names)
        return codes, names, "official"
    if ratios:
        codes = splits.assign_codes(None, ledger.label, ratios, seed, codes=ledger.group_codes())
        return codes, list(ratios), "ratios"
    return np.zeros(ledger.rows, dtype=np.int8), ["train"], "single"


def _drop_empty_splits(split_of: np.ndarray, names: list[str]) -> tuple[np.ndarray, list[str], list[str]]:
    """Leave out the splits no row belongs to (`datasets` cannot load an empty split): (codes renumbered,
    names kept, names left out)."""
    counts = np.bincount(split_of, minlength=len(names)) if len(split_of) else np.zeros(len(names), np.int64)
    keep = [k for k in range(len(names)) if counts[k]]
    if len(keep) == len(names):
        return split_of, names, []
    remap = np.full(len(names), -1, dtype=np.int8)
    remap[keep] = np.arange(len(keep), dtype=np.int8)
    return remap[split_of], [names[k] for k in keep], [names[k] for k in range(len(names)) if not counts[k]]


def pc_index_in(values, names: list[str]) -> np.ndarray:
    import pyarrow as pa
    import pyarrow.compute as pc

    idx = pc.index_in(values, value_set=pa.array(names, pa.string()))
    return np.asarray(idx.to_numpy(zero_copy_only=False), dtype=np.int8)


class _Background:
    """`fn(*args)` run on a thread (pass 2 and the sample thumbnails overlap: pyarrow and Pillow release the GIL while
    they encode and decode). `result()` waits for it; an exception it raised is raised again there, with the raw
    file it was reading recorded (`errors.reading`) so that the build's error names it as before."""

    def __init__(self, fn: Callable[..., Any], *args: Any) -> None:
        self._value: Any = None
        self._exc: BaseException | None = None
        self._where: str | None = None
        self._thread = threading.Thread(target=self._run, args=(fn, *args), name="cytohub-figures")
        self._thread.start()

    def _run(self, fn: Callable[..., Any], *args: Any) -> None:
        try:
            self._value = fn(*args)
        except BaseException as exc:  # noqa: BLE001 (raised again by result())
            self._exc, self._where = exc, errors.last_read()

    def join(self) -> None:
        """Wait for the thread (a failing build leaves no thread decoding while it unwinds)."""
        self._thread.join()

    def result(self) -> Any:
        self._thread.join()
        if self._exc is not None:
            errors.reading(self._where)
            exc, self._exc = self._exc, None
            raise exc
        return self._value


def _offer_samples(builder: Builder, rows: list[dict]) -> figures.SampleCollector:
    """A sample collector offered `rows` (from `_sample_rows`), in their order."""
    samples = figures.SampleCollector(builder)
    for row in rows:
        errors.reading(row["source_path"] or row["id"])  # a library error while drawing names this row's files
        samples.offer(row)
    errors.reading(None)
    return samples


def _sample_rows(builder: Builder, ledger: Ledger) -> tuple[list[dict], dict | None]:
    """The sample figures' rows, read back from the spool, in row order. The collector keeps, per class, the
    rows with the smallest `figures.sample_priority(id)` and, per object category, crops from the rows with the
    smallest `figures.crop_priority(id)`; offering just those rows (and the first focal stack) gives the
    collector exactly what offering every row would, without reading the whole spool again. Also returns the
    synthetic mark (`cytohub.synth`) the first of these rows' images carries, if any."""
    labels = ledger.label
    per_class = figures.PER_CLASS if builder.labels else figures.UNLABELLED_SAMPLES
    wanted: set[int] = set()
    has_objects = np.zeros(ledger.rows, dtype=bool)
    has_objects[ledger.obj_rows] = True
    prio = np.zeros(ledger.rows, dtype=np.uint64)  # sample priority of rows with an image
    crop_prio = np.zeros(ledger.rows if len(ledger.obj_rows) else 0, dtype=np.uint64)  # of rows with objects
    start = 0
    for chunk in ledger.ids.iterchunks():  # ids as Python strings one chunk at a time, never all at once
        end = start + len(chunk)
        ids = chunk.to_pylist()
        prio[start:end] = [figures.sample_priority(rid) if im else 0
                           for rid, im in zip(ids, ledger.image[start:end].tolist(), strict=True)]
        for k in np.flatnonzero(has_objects[start:end]).tolist():
            crop_prio[start + k] = figures.crop_priority(ids[k])
        start = end
    with_image = np.flatnonzero(ledger.image)
    for lab in np.unique(labels[with_image]).tolist():
        rows = with_image[labels[with_image] == lab]
        order = np.argsort(prio[rows], kind="stable")[:per_class]
        wanted.update(rows[order].tolist())
    for cat in np.unique(ledger.obj_cats).tolist():
        rows = np.unique(ledger.obj_rows[ledger.obj_cats == cat])
        rows = rows[np.lexsort((rows, crop_prio[rows]))][:figures.CROPS_PER_CATEGORY]
        wanted.update(r for r in rows.tolist() if ledger.image[r])
    stacks = np.flatnonzero(ledger.planes > 1)
    if len(stacks):
        wanted.add(int(stacks[0]))
    rows = ledger.fetch_rows(sorted(wanted))
    mark = None
    for row in rows:
        for img in (row["image"], row["mask"], *row["focal_stack"]):
            if mark is None and img is not None and img.get("bytes"):
                mark = synth.find_mark(img["bytes"])
    return rows, mark


def _write_shards(staging: Path, ledger: Ledger, split_of: np.ndarray, split_names: list[str], schema,
                  max_shard_bytes: int, num_shards: int | None) -> tuple[dict[str, list[str]], dict]:
    """Pass 2: plan every split's shards, route the spooled rows to them, delete each segment once read."""
    data_dir = staging / "data"
    data_dir.mkdir()
    first = read_segment(ledger.segments[0][0]) if ledger.segments else None
    samples = []
    if first is not None:
        for col in ("image", "mask"):
            samples += [v for v in first.column(col).field("bytes").to_pylist()[:16] if v]
    options = parquet_options(schema, compress_images=compression_pays(samples))
    writers = {}
    for k, name in enumerate(split_names):
        rows = np.flatnonzero(split_of == k)
        plan = ShardPlan(name, plan_shards(ledger.nbytes[rows], max_shard_bytes, num_shards))
        writers[name] = SplitWriter(data_dir, plan, schema, options)
    start = 0
    for path, n in ledger.segments:
        batch = read_segment(path)
        targets = split_of[start:start + n]
        sizes = ledger.nbytes[start:start + n]
        for k in np.unique(targets).tolist():
            idx = np.flatnonzero(targets == k)
            part = batch if len(idx) == n else batch.take(idx)
            writers[split_names[k]].write(part, sizes[idx])
        os.unlink(path)
        start += n
    shards = {name: w.close() for name, w in writers.items()}
    shutil.rmtree(staging / ".spool", ignore_errors=True)  # every segment is read: nothing of pass 1 is left
    return shards, writers


def write_report(path: Path, report: dict[str, Any]) -> None:
    """Write the build report as indented JSON; lists given as `RecordList` views (every raw file, every
    input) are written one entry at a time, so a report of a million files needs no memory."""
    views: dict[str, RecordList] = {}

    def default(o):
        if isinstance(o, RecordList):
            token = f"@@cytohub-list-{len(views)}@@"
            views[token] = o
            return token
        raise TypeError(f"{type(o).__name__} is not JSON serializable")

    text = json.dumps(report, indent=1, ensure_ascii=False, default=default)
    with open(path, "w", encoding="utf-8") as fh:
        pos = 0
        for token, view in views.items():
            at = text.index(f'"{token}"', pos)
            line_start = text.rfind("\n", 0, at) + 1
            indent = len(text[line_start:]) - len(text[line_start:].lstrip(" "))
            fh.write(text[pos:at])
            _write_list(fh, view, indent)
            pos = at + len(token) + 2
        fh.write(text[pos:] + "\n")


def _write_list(fh, items, indent: int) -> None:
    """`items` as `json.dumps(..., indent=1)` writes a list whose line starts `indent` spaces in, a block of
    entries per call to the JSON encoder (not two calls per field)."""
    if not len(items):
        fh.write("[]")
        return
    pad = " " * indent
    fh.write("[")
    block: list = []
    first = True

    def flush() -> None:
        nonlocal first
        text = json.dumps(block, indent=1, ensure_ascii=False)[2:-2]  # without the list's own "[\n" and "\n]"
        fh.write(("\n" if first else ",\n") + (pad + text.replace("\n", "\n" + pad) if pad else text))
        first = False
        block.clear()

    for item in items:
        block.append(item)
        if len(block) >= 1024:
            flush()
    if block:
        flush()
    fh.write(f"\n{pad}]")


def _statistics(builder: Builder, ledger: Ledger, split_of: np.ndarray, split_names: list[str],
                writers: dict[str, SplitWriter], shards: dict[str, list[str]]) -> dict[str, Any]:
    """Per-split counts (labels, objects per category, focal planes, groups, masks) from the ledger's
    columns, with NumPy group-bys: no per-row Python objects."""
    names = builder.class_names()
    cats = {v: k for k, v in ledger.categories.items()}
    group_codes, n_groups = ledger.group_codes()
    obj_split = split_of[ledger.obj_rows] if len(ledger.obj_rows) else np.zeros(0, dtype=np.int8)
    per_split: dict[str, dict[str, Any]] = {}
    for k, name in enumerate(split_names):
        mine = split_of == k
        lab_counts = np.bincount(ledger.label[mine] + 1, minlength=len(names) + 1)  # label -1 counted at 0
        labels = {(names[v - 1] if v else "(none)"): int(c) for v, c in enumerate(lab_counts.tolist()) if c}
        om = obj_split == k
        objects: dict[str, int] = {}
        if om.any():
            per_cat = np.bincount(ledger.obj_cats[om], weights=ledger.obj_counts[om], minlength=len(cats))
            objects = {cats[c]: int(n) for c, n in enumerate(per_cat) if n}
        pl_counts = np.bincount(ledger.planes[mine])
        seen = np.zeros(n_groups, dtype=bool)
        seen[group_codes[mine]] = True
        per_split[name] = {
            "num_examples": writers[name].num_examples,
            "num_bytes": writers[name].num_bytes,
            "shards": shards[name],
            "groups": int(seen.sum()),
            "labels": dict(sorted(labels.items())),
            "objects": dict(sorted(objects.items())),
            "focal_planes": {str(v): int(c) for v, c in enumerate(pl_counts.tolist()) if c},
            "masks": int(ledger.mask[mine].sum()),
        }
    return {"num_rows": ledger.rows, "splits": per_split}
