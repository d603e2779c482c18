"""`cytohub validate DIR`: is a build folder complete, correct, untouched and loadable?

Checks, in order:
1. the manifest (`cytohub.manifest`): every file the build wrote is there, byte for byte (sha256), and nothing
   else is (no extra file, no symbolic link);
2. the card and the report: YAML fields, body sections, the synthetic and the partial marking agree with the
   report in both directions, class names agree with the builder;
3. the shards: names, the exact unified schema in every Parquet file (no extra or missing column, the features
   metadata equal to the card's), row counts against the card and the report, no empty split, row-group sizes;
4. every row, from its small columns: ids non-empty and unique across splits, labels in range, every number
   finite (z_um, mpp, fov_center_um, bbox, polygon, point), focal stacks as long as z_um and in z order,
   objects with a category and a geometry of the right shape, no group (patient, slide, FOV) in two splits;
5. images, as readers get them: the header checked against the pixel limit before any decode
   (`cytohub.images`, Pillow's decompression-bomb guard on), then decoded by `datasets` itself (EXIF
   orientation applied); by default a seeded sample of rows per split (always the first and the last), with
   `full` every row. For each: every image decodes, no image has an EXIF orientation other than 1 (the build
   normalises it, so pixels, masks and geometry share the stored frame), focal planes and the mask have the
   image's size, objects lie inside the image as `datasets` shows it, no image carries the synthetic mark of a
   build that says it is real;
6. `datasets.load_dataset` on the folder in streaming mode reads the first and the last id of every split
   from the split's first and last shard, each read to its end (`id` column only; whole rows with `full`, so
   the cost is bounded by two shards); with `full`, a non-streaming `load_dataset` (into a throwaway cache)
   reads them too.
A mix (`cytohub.mix`, report `kind: "mix"`) is checked the same way, with its own layout (`ValidateHook`):
the schema plus `source`, shards under `data/<source>/`, each row's source and id prefix, its default
configuration read by step 6, and each configuration: the card's against the report's, its `data_files`
against the shards its rule says it holds, its row counts, and `load_dataset(folder, "holdout-<source>",
streaming=True)` reading the first row of each split.
Memory stays bounded: one row group of the small columns, or of a sampled row group, at a time.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import math
import os
import random
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
from datasets import Features
from huggingface_hub import DatasetCard

from cytohub import images, manifest, synth
from cytohub.errors import CytohubError
from cytohub.manifest import REPORT
from cytohub.schema import GEOMETRY_TOLERANCE, SCHEMA_VERSION, class_names_of, features, same_schema

SHARD_RE = re.compile(r"^(?P<split>[A-Za-z][A-Za-z0-9_]*)-(?P<i>\d{5})-of-(?P<n>\d{5})\.parquet$")
MAX_ROW_GROUP_BYTES = 200 * 2**20  # the Hub viewer struggles past this
MAX_LISTED = 20  # problems of one kind listed before the rest are counted
SAMPLE_ROWS = 32  # rows decoded per split by default (always including the first and the last)
SAMPLE_ROW_GROUPS = 8  # row groups the sample is drawn from, per split (bounds the bytes read)
REQUIRED_YAML = ("pretty_name", "license", "task_categories", "configs", "dataset_info", "size_categories")
REQUIRED_SECTIONS = ("## Citation", "## License and attribution", "## Provenance", "## Schema",
                     "## Not for clinical use")
SMALL_COLUMNS = ["id", "label", "z_um", "focal_stack.list.element.path", "mask.path", "mpp", "fov_center_um",
                 "objects", "group"]


@dataclass
class Validation:
    folder: Path
    full: bool = False
    problems: list[str] = field(default_factory=list)
    rows: dict[str, int] = field(default_factory=dict)
    images_decoded: int = 0
    rows_decoded: int = 0
    objects_checked: int = 0
    hashes: dict[str, str] = field(default_factory=dict)  # sha256 of every manifest file checked
    report: dict[str, Any] = field(default_factory=dict)
    _kinds: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems

    def problem(self, kind: str, message: str) -> None:
        n = self._kinds.get(kind, 0) + 1
        self._kinds[kind] = n
        if n <= MAX_LISTED:
            self.problems.append(message)
        elif n == MAX_LISTED + 1:
            self.problems.append(f"(more {kind} problems not listed)")


@dataclass
class _Shard:
    path: Path
    row_groups: list[int]  # rows per row group


def validate(folder: str | Path, progress: Callable[[int], None] | None = None, *, full: bool = False,
             sample_rows: int = SAMPLE_ROWS, seed: int = 0, load: bool = True,
             ignore_extra: bool = False) -> Validation:
    """Validate a build folder (see the module docstring). `full` decodes every image and also loads the
    folder without streaming; otherwise `sample_rows` rows per split are decoded, chosen with `seed`.
    `load=False` skips the `datasets.load_dataset` checks; `ignore_extra` tolerates files the manifest does
    not list (push leaves them out). `progress(n)` is called after each shard. Raises CytohubError only when
    `folder` is not a folder; every other finding is a problem in the result."""
    v, readers = validate_in_stages(folder, progress, full=full, sample_rows=sample_rows, seed=seed, load=load,
                                    ignore_extra=ignore_extra)
    return readers()


def validate_in_stages(folder: str | Path, progress: Callable[[int], None] | None = None, *, full: bool = False,
                       sample_rows: int = SAMPLE_ROWS, seed: int = 0, load: bool = True, ignore_extra: bool = False,
                       manifest_check: Future | None = None) -> tuple[Validation, Callable[[], Validation]]:
    """`validate` in two stages. The first (done when this returns) checks that the folder is the build and is
    well formed: the manifest (sha256 of every file: `Validation.hashes`), card, report, schema, counts and
    every row's small columns. The second (the returned callable, which adds its problems to the same
    Validation and returns it) checks what readers do with it: images decoded as `datasets` decodes them and
    `load_dataset` (already started on a thread). `push` uploads between the two and commits only after both.
    `manifest_check`: a Future of `manifest.verify` of this folder against its report's manifest, started by the
    caller (push hashes while this module's imports load); computed here when None."""
    folder = Path(folder)
    v = Validation(folder, full=full)
    if not folder.is_dir():
        raise CytohubError(f"{folder} is not a folder; expected a cytohub build folder")

    # 1. report and manifest (hashed on background threads while the other checks run)
    try:
        v.report = manifest.read_report(folder)
    except CytohubError as exc:
        v.problem("report", str(exc))
    hashing = manifest_check
    if v.report and hashing is None:
        try:
            entries = manifest.entries(v.report)
            hashing = _background(lambda: manifest.verify(folder, entries, ignore_extra=ignore_extra))
        except CytohubError as exc:
            v.problem("manifest", f"{folder / REPORT}: {exc}")
    deferred: list[Callable[[], None]] = []
    try:
        _check_content(v, folder, progress, full, sample_rows, seed, load, deferred)
    finally:
        if hashing is not None:
            check = hashing.result()
            v.hashes = check.hashes
            v.problems[:0] = [p for p in check.problems(folder)]  # listed first: they explain the rest

    def readers() -> Validation:
        while deferred:
            deferred.pop(0)()
        return v

    return v, readers


def _background(fn):
    from concurrent.futures import ThreadPoolExecutor

    pool = ThreadPoolExecutor(1, thread_name_prefix="cytohub-validate")
    future = pool.submit(fn)
    pool.shutdown(wait=False)
    return future


def _check_content(v: Validation, folder: Path, progress, full: bool, sample_rows: int, seed: int,
                   load: bool, deferred: list[Callable[[], None]]) -> None:
    """Stage 1 of the checks after the manifest; appends the second stage's work to `deferred`."""

    # 2. card
    card_path = folder / "README.md"
    if not card_path.is_file():
        v.problem("card", f"{card_path}: missing dataset card")
        return
    try:
        card = DatasetCard.load(card_path)
    except Exception as exc:
        v.problem("card", f"{card_path}: the YAML header does not load ({exc})")
        return
    meta = card.data.to_dict()
    for key in REQUIRED_YAML:
        if not meta.get(key):
            v.problem("card", f"{card_path}: YAML field {key!r} is missing or empty")
    if meta.get("license") == "other" and not (meta.get("license_name") and meta.get("license_link")):
        v.problem("card", f"{card_path}: license 'other' needs license_name and license_link")
    for section in REQUIRED_SECTIONS:
        if section not in card.text:
            v.problem("card", f"{card_path}: the body has no {section!r} section")
    _check_markings(v, card_path, meta, card.text)

    mix = _mix_hook(v.report)
    info = (mix.dataset_info(meta) if mix else meta.get("dataset_info")) or {}
    try:
        feats = Features._from_yaml_list(info["features"])
        class_names = class_names_of(feats)
    except Exception as exc:
        v.problem("schema", f"{card_path}: dataset_info.features is not readable ({exc})")
        return
    if not (mix.same_schema(feats, class_names) if mix else same_schema(feats, class_names)):
        v.problem("schema", f"{card_path}: dataset_info.features is not cytohub schema v{SCHEMA_VERSION}"
                            + (" plus `source` (a mix)" if mix else ""))
    if not mix:  # a mix's classes are a taxonomy cut, not a builder's
        _check_builder_classes(v, card_path, class_names)
    expected = {s["name"]: s["num_examples"] for s in info.get("splits", []) if "name" in s}
    if not expected:
        v.problem("card", f"{card_path}: dataset_info.splits lists no splits")
    for split, n in expected.items():
        if not n:
            v.problem("splits", f"{card_path}: split {split!r} has no rows; `datasets` cannot load an empty split "
                                "(the build leaves such a split out)")
    reported = {s: d.get("num_examples") for s, d in (v.report.get("splits") or {}).items()}
    if v.report and reported != expected:
        v.problem("counts", f"{card_path}: the card's splits {expected} differ from the report's {reported}")

    # 3-5. shards, rows, images
    shards = mix.shards(v.problem, folder / "data") if mix else _shards(v, folder / "data")
    if set(shards) != set(expected):
        v.problem("splits", f"{folder / 'data'}: shards for splits {sorted(shards)} but the card lists "
                            f"{sorted(expected)}")
    state = _RowState(class_count=len(class_names), synthetic=bool(v.report.get("synthetic")), mix=mix)
    wanted = mix.features(class_names) if mix else features(class_names)
    opened_by_split = {split: [s for s in (_open_shard(v, p, feats, v.report, wanted) for p in paths)
                               if s is not None]
                       for split, paths in sorted(shards.items())}
    # 6. the readers: `datasets` is imported on a thread while the rows are checked; load_dataset itself runs
    # in stage 2 on the calling thread (run on a thread beside the row checks, pyarrow aborted the interpreter
    # at exit in about 1 run in 30: "terminate called without an active exception")
    loader = None
    ends = {split: _ends(opened) for split, opened in opened_by_split.items()}
    firsts = _mix_configs(v, mix, folder, card_path, meta, opened_by_split) if mix else {}
    if load and ends and all(e[0] is not None for e in ends.values()) \
            and not any(k in v._kinds for k in ("schema", "splits", "shards", "configs")):
        loader = _background(lambda: importlib.import_module("datasets"))
    done = 0
    decode: list[tuple[_Shard, int, list[int]]] = []  # (shard, row group, rows) to decode in stage 2
    for split, opened in opened_by_split.items():
        chosen = _sample(opened, sample_rows, seed, split) if not full else None
        count = 0
        for shard in opened:
            count += _check_shard_rows(v, shard, split, state, chosen, full, decode)
            done += 1
            if progress:
                progress(done)
        v.rows[split] = count
        if len(opened) < len(shards[split]):
            continue  # a shard that cannot be read is reported as such: its rows are not counted as missing
        if count == 0:
            v.problem("splits", f"split {split!r}: its shards hold no rows; `datasets` cannot load an empty split")
        if split in expected and expected[split] != count:
            v.problem("counts", f"split {split!r}: {count} rows in the shards but the card says {expected[split]}")
    deferred.append(lambda: _decode_rows(v, decode, state))
    if loader is not None:
        deferred.append(lambda: loader.result() and [
            v.problem("load", message)
            for message in _reader_problems(folder, ends, full, mix, firsts)])


def _reader_problems(folder: Path, ends: dict, full: bool, mix, firsts: dict) -> list[str]:
    with reader_path(folder) as path:
        return _load_problems(folder, ends, full, path) + _mix_load_problems(mix, folder, firsts, path)


GLOB_CHARS = frozenset("*?[]{}")


@contextlib.contextmanager
def reader_path(folder: Path) -> Iterator[Path]:
    """A path `datasets.load_dataset` can read `folder` from. `datasets` treats the folder's path as a glob
    pattern, so a folder whose absolute path has `*?[]{}` in it ("run [2]/cric") is found empty; such a folder
    is read through a temporary tree of symbolic links to its files (the folder itself is not changed; the
    files are the same bytes). Yields `folder` itself otherwise."""
    folder = Path(folder).absolute()
    if not GLOB_CHARS & set(str(folder)):
        yield folder
        return
    view = Path(tempfile.mkdtemp(prefix="cytohub-read-"))
    try:
        for path in sorted(folder.rglob("*")):
            if path.is_file() and not path.is_symlink():
                link = view / path.relative_to(folder)
                link.parent.mkdir(parents=True, exist_ok=True)
                link.symlink_to(path)
        yield view
    finally:
        shutil.rmtree(view, ignore_errors=True)


def _mix_hook(report: dict):
    """The checks that differ for a `cytohub mix` folder (report `kind: "mix"`; `cytohub.mix.ValidateHook`): its
    default configuration's dataset_info, the schema plus `source`, shards under data/<source>/ and each row's
    source; None for a corpus build."""
    if report.get("kind") != "mix":
        return None
    from cytohub.mix import validate_hook

    return validate_hook(report)


def _mix_configs(v: Validation, mix, folder: Path, card_path: Path, meta: dict,
                 opened_by_split: dict[str, list[_Shard]]) -> dict[str, dict[str, str]]:
    """A mix's configurations checked (`cytohub.mix.ValidateHook.check_configs`); returns, for each holdout
    configuration, the id each split must start with when `datasets` loads it."""
    opened = {s.path.relative_to(folder).as_posix(): s for shards in opened_by_split.values() for s in shards}
    resolved = mix.check_configs(v.problem, card_path, meta, {p: sum(s.row_groups) for p, s in opened.items()})
    firsts: dict[str, dict[str, str]] = {}
    for config, splits in resolved.items():
        if config == "default":
            continue  # read by `_load_problems`
        for split, paths in splits.items():
            first = next((opened[p] for p in paths if sum(opened[p].row_groups)), None)
            if first is not None:
                firsts.setdefault(config, {})[split] = _ends([first])[0]
    return firsts


def _mix_load_problems(mix, folder: Path, firsts: dict[str, dict[str, str]], path: Path) -> list[str]:
    if not mix or not firsts:
        return []
    with _quiet_datasets():
        return mix.load_problems(folder, firsts, path)


def _ends(opened: list[_Shard]) -> tuple[str | None, str | None]:
    """(first id, last id) of a split, read from its first and last row groups."""
    full = [s for s in opened if sum(s.row_groups)]
    if not full:
        return None, None
    first, last = full[0], full[-1]
    head = pq.ParquetFile(first.path).read_row_group(0, columns=["id"]).column("id")
    tail = pq.ParquetFile(last.path).read_row_group(len(last.row_groups) - 1, columns=["id"]).column("id")
    return head[0].as_py(), tail[len(tail) - 1].as_py()


# ------------------------------------------------------------------------------------------- card & report
def _check_markings(v: Validation, card_path: Path, meta: dict, text: str) -> None:
    """Synthetic and partial markings: the card says what the report says, in both directions."""
    title = str(meta.get("pretty_name", ""))
    says_synthetic = title.startswith("[SYNTHETIC]") or "SYNTHETIC DATA" in text \
        or "synthetic" in (meta.get("tags") or [])
    fully_marked = title.startswith("[SYNTHETIC]") and "SYNTHETIC DATA" in text
    report = v.report
    if not report:
        return
    synthetic = report.get("synthetic")
    if synthetic is True and not fully_marked:
        v.problem("card", f"{card_path}: a synthetic build must say so in its title and body")
    if synthetic is not True and says_synthetic:
        v.problem("card", f"{card_path}: the card says the data is synthetic but the build report says it is not")
    if synthetic not in (True, False) or (synthetic is True) != (report.get("synthetic_marker") is not None):
        v.problem("report", f"{v.folder / REPORT}: 'synthetic' and 'synthetic_marker' disagree")
    partial = (report.get("completeness") or {}).get("partial")
    if partial:
        if f"(partial: {partial})" not in title or "Partial build" not in text:
            v.problem("card", f"{card_path}: a partial build ({partial}) must say so in its title and body")
    elif "(partial:" in title or "**Partial build" in text:
        v.problem("card", f"{card_path}: the card says the build is partial but the build report does not")


def _check_builder_classes(v: Validation, card_path: Path, class_names: list[str]) -> None:
    from cytohub import registry

    name = (v.report.get("builder") or {}).get("name")
    if not name:
        return
    try:
        b = registry.get(name)
    except CytohubError:
        return  # a third-party builder that is not installed here: nothing to compare with
    if list(b.class_names()) != list(class_names):
        v.problem("schema", f"{card_path}: the label classes differ from those of builder {name!r}")


# ------------------------------------------------------------------------------------------- shards
def _shards(v: Validation, data: Path) -> dict[str, list[Path]]:
    out: dict[str, list[tuple[int, int, Path]]] = {}
    if not data.is_dir():
        v.problem("shards", f"{data}: missing data folder")
        return {}
    for p in sorted(data.iterdir()):
        m = SHARD_RE.match(p.name)
        if not m:
            v.problem("shards", f"{p}: not a shard name of the form <split>-NNNNN-of-NNNNN.parquet")
            continue
        if p.is_symlink() or not p.is_file():
            v.problem("shards", f"{p}: not a regular file")
            continue
        out.setdefault(m["split"], []).append((int(m["i"]), int(m["n"]), p))
    result = {}
    for split, items in out.items():
        n = items[0][1]
        if sorted(i for i, _, _ in items) != list(range(n)) or any(k != n for _, k, _ in items):
            v.problem("shards", f"{data}: the shards of split {split!r} are incomplete or misnumbered")
        result[split] = [p for _, _, p in sorted(items)]
    return result


def _open_shard(v: Validation, path: Path, feats: Features, report: dict, expected: Features) -> _Shard | None:
    """Open a shard and check its exact Arrow schema against `expected` (the unified schema with the card's
    classes; for a mix, plus `source`), its features metadata against the card's and its cytohub metadata."""
    try:
        pf = pq.ParquetFile(path)
    except Exception as exc:
        v.problem("shards", f"{path}: not a readable Parquet file ({exc})")
        return None
    actual = pf.schema_arrow.remove_metadata()
    wanted = expected.arrow_schema.remove_metadata()
    if not actual.equals(wanted):
        names, want = actual.names, wanted.names
        extra = [n for n in names if n not in want]
        missing = [n for n in want if n not in names]
        differ = [n for n in names if n in want and not actual.field(n).equals(wanted.field(n))]
        what = "; ".join(x for x in (f"extra columns {extra}" if extra else "",
                                     f"missing columns {missing}" if missing else "",
                                     f"columns of another type {differ}" if differ else "",
                                     "columns in another order" if not (extra or missing or differ) else "") if x)
        v.problem("schema", f"{path}: the Parquet schema is not the unified schema v{SCHEMA_VERSION} ({what})")
        return None
    md = pf.schema_arrow.metadata or {}
    try:
        file_feats = Features.from_dict(json.loads(md[b"huggingface"])["info"]["features"])
    except (KeyError, ValueError, TypeError):
        file_feats = None
    if file_feats != feats:
        v.problem("schema", f"{path}: its features (schema metadata) differ from the card's dataset_info")
    try:
        own = json.loads(md[b"cytohub"])
    except (KeyError, ValueError):
        own = None
    if report and own != {"builder": (report.get("builder") or {}).get("name"),
                          "synthetic": bool(report.get("synthetic"))}:
        v.problem("report", f"{path}: the shard's cytohub metadata {own} disagrees with the build report "
                            "(builder, synthetic)")
    meta = pf.metadata
    for rg in range(meta.num_row_groups):
        size = meta.row_group(rg).total_byte_size
        if size > MAX_ROW_GROUP_BYTES:
            v.problem("rowgroups", f"{path}: row group {rg} is {size / 2**20:.0f} MiB, over "
                                   f"{MAX_ROW_GROUP_BYTES / 2**20:.0f} MiB (too large for the Hub viewer)")
    return _Shard(path, [meta.row_group(rg).num_rows for rg in range(meta.num_row_groups)])


def _sample(shards: list[_Shard], k: int, seed: int, split: str) -> dict[tuple[Path, int], set[int]]:
    """(shard, row group) -> row indices to decode: the first and the last row of the split and random others,
    drawn from at most SAMPLE_ROW_GROUPS row groups (always the first and the last)."""
    groups = [(s.path, g, n) for s in shards for g, n in enumerate(s.row_groups) if n]
    if not groups or k <= 0:
        return {}
    rng = random.Random(f"{seed}:{split}")
    middle = groups[1:-1]
    picked = [groups[0], *rng.sample(middle, min(len(middle), SAMPLE_ROW_GROUPS - 2)),
              *([groups[-1]] if len(groups) > 1 else [])]
    out: dict[tuple[Path, int], set[int]] = {(p, g): set() for p, g, _ in picked}
    out[(groups[0][0], groups[0][1])].add(0)
    out[(groups[-1][0], groups[-1][1])].add(groups[-1][2] - 1)
    pool = [(p, g, i) for p, g, n in picked for i in range(n) if i not in out[(p, g)]]
    for p, g, i in rng.sample(pool, max(0, min(len(pool), k - sum(len(s) for s in out.values())))):
        out[(p, g)].add(i)
    return out


# ------------------------------------------------------------------------------------------- rows
@dataclass
class _RowState:
    class_count: int
    synthetic: bool
    mix: Any = None  # `cytohub.mix.ValidateHook` for a mix
    ids: set[str] = field(default_factory=set)
    group_split: dict[str, str] = field(default_factory=dict)


def _check_shard_rows(v: Validation, shard: _Shard, split: str, state: _RowState,
                      chosen: dict[tuple[Path, int], set[int]] | None, full: bool,
                      decode: list[tuple[_Shard, int, list[int]]]) -> int:
    """Check every row's small columns; note the rows whose images stage 2 decodes. Returns the row count."""
    pf = pq.ParquetFile(shard.path)
    count = 0
    for rg in range(len(shard.row_groups)):
        small = pf.read_row_group(rg, columns=SMALL_COLUMNS + (state.mix.columns if state.mix else [])).to_pylist()
        for row in small:
            _check_row(v, shard.path, split, row, state)
            if state.mix:
                state.mix.check_row(v.problem, f"{shard.path.name}: row {row['id']!r}", shard.path, row)
        count += len(small)
        rows = set(range(len(small))) if full else (chosen or {}).get((shard.path, rg), set())
        if rows:
            decode.append((shard, rg, sorted(rows)))
    return count


def _streamed_ids(ds) -> list[str]:
    """The `id` of every row of a streamed dataset, read to its end (see `_load_problems`)."""
    return [row["id"] for row in ds]


def _decode_rows(v: Validation, decode: list[tuple[_Shard, int, list[int]]], state: _RowState) -> None:
    """Stage 2: decode the chosen rows' images as `datasets` does (one row group read at a time)."""
    for shard, rg, indices in decode:
        table = pq.ParquetFile(shard.path).read_row_group(rg, columns=["id", "image", "focal_stack", "mask",
                                                                       "objects"])
        rows = [table.slice(i, 1).to_pylist()[0] for i in indices]
        blobs = [img["bytes"] for row in rows for img in (row["image"], row["mask"], *(row["focal_stack"] or []))
                 if img and img.get("bytes")]
        # Pillow's decoders release the GIL: decode on a few threads
        decoded = dict(zip(map(id, blobs), _decoder_pool().map(_decode_bytes, blobs), strict=True))
        for row in rows:
            _check_images(v, shard.path, row, state, decoded)
            v.rows_decoded += 1


_POOL = None


def _decoder_pool():
    global _POOL
    if _POOL is None:
        from concurrent.futures import ThreadPoolExecutor

        _POOL = ThreadPoolExecutor(max(1, min(4, os.cpu_count() or 1)), thread_name_prefix="cytohub-decode")
    return _POOL


def _finite(values: Any) -> bool:
    return all(isinstance(x, int | float) and math.isfinite(x) for x in values)


def _check_row(v: Validation, path: Path, split: str, row: dict, state: _RowState) -> None:
    rid = row["id"]
    where = f"{path.name}: row {rid!r}"
    if not rid:
        v.problem("ids", f"{path.name}: a row has an empty id")
    elif rid in state.ids:
        v.problem("ids", f"{where}: duplicate id (ids must be unique across all splits)")
    state.ids.add(rid)
    label = row["label"]
    if label is None or not -1 <= label < state.class_count:
        v.problem("labels", f"{where}: label {label} outside -1..{state.class_count - 1}")
    stack = row["focal_stack"]
    z = row["z_um"]
    if stack is None:
        v.problem("stacks", f"{where}: focal_stack is null; expected [] for a 2-D image")
        stack = []
    if z is None and not stack:
        v.problem("stacks", f"{where}: z_um is null without a focal stack; expected []")
    if z is not None:
        if not _finite(z):
            v.problem("numbers", f"{where}: z_um has a non-finite value: {z}")
        elif any(b <= a for a, b in zip(z, z[1:], strict=False)):
            v.problem("stacks", f"{where}: z_um not strictly increasing: {z}")
        if len(stack) != len(z):
            v.problem("stacks", f"{where}: {len(stack)} focal planes but {len(z)} z values")
    if row["mpp"] is not None and not (_finite([row["mpp"]]) and row["mpp"] > 0):
        v.problem("numbers", f"{where}: mpp {row['mpp']} is not a positive finite number")
    centre = row["fov_center_um"]
    if centre is not None and (len(centre) != 2 or not _finite(centre)):
        v.problem("numbers", f"{where}: fov_center_um {centre} is not two finite numbers [x, y]")
    for obj in row["objects"] or []:
        v.objects_checked += 1
        _check_object(v, where, obj, None)
    g = row["group"] or {}
    key = next((f"{k}:{g[k]}" for k in ("patient_id", "slide_id", "fov_id") if g.get(k)), None)
    if key:
        other = state.group_split.setdefault(key, split)
        if other != split:
            v.problem("leakage", f"{where}: group {key} is in both {other!r} and {split!r}")


def _check_object(v: Validation, where: str, obj: dict, size: tuple[int, int] | None) -> None:
    """Shape and finiteness (size None), or the bounds inside a decoded `size` = (width, height)."""
    cat = obj.get("category")
    t = GEOMETRY_TOLERANCE
    if size is None:
        if not cat:
            v.problem("objects", f"{where}: an object has no category")
        for key, n in (("bbox", 4), ("polygon", None), ("point", 2)):
            val = obj.get(key)
            if val is None:
                continue
            if not _finite(val):
                v.problem("numbers", f"{where}: {cat} {key} has a non-finite value: {val}")
            elif n is not None and len(val) != n:
                v.problem("objects", f"{where}: {cat} {key} has {len(val)} values, expected {n}")
            elif key == "polygon" and (len(val) < 6 or len(val) % 2):
                v.problem("objects", f"{where}: {cat} polygon has {len(val)} values, expected >= 3 (x, y) points")
            elif key == "bbox" and (val[2] < 0 or val[3] < 0):
                v.problem("objects", f"{where}: {cat} bbox {val} has a negative size")
        if not any(obj.get(k) is not None for k in ("bbox", "polygon", "point")):
            v.problem("objects", f"{where}: {cat} object has no geometry")
        return
    w, h = size
    bbox, poly, pt = obj.get("bbox"), obj.get("polygon"), obj.get("point")
    if bbox is not None and len(bbox) == 4 and _finite(bbox):
        bx, by, bw, bh = bbox
        if bx < -t or by < -t or bx + bw > w + t or by + bh > h + t:
            v.problem("objects", f"{where}: {cat} bbox {bbox} is not inside the {w}x{h} image")
    if poly is not None and len(poly) >= 6 and not len(poly) % 2 and _finite(poly) and any(
            not (-t <= x <= w + t and -t <= y <= h + t) for x, y in zip(poly[::2], poly[1::2], strict=True)):
        v.problem("objects", f"{where}: {cat} polygon leaves the {w}x{h} image")
    if pt is not None and len(pt) == 2 and _finite(pt) and not (-t <= pt[0] <= w + t and -t <= pt[1] <= h + t):
        v.problem("objects", f"{where}: {cat} point {pt} is not inside the {w}x{h} image")


# ------------------------------------------------------------------------------------------- images
def _decode_bytes(data: bytes) -> tuple[str, Any]:
    """("ok", (decoded (width, height), stored (width, height), EXIF orientation)) of image bytes checked and
    decoded as readers get them: the header first (`cytohub.images.header`: nothing over the pixel limit is
    decoded; the orientation `datasets` applies), then `datasets`' own decoding (EXIF orientation applied,
    Pillow's decompression-bomb guard on). Or ("error", message)."""
    from datasets import Image as ImageFeature

    try:
        head = images.header(data, "image")
        decoded = ImageFeature().decode_example({"bytes": data, "path": None})
        return "ok", (decoded.size, (head.width, head.height), head.orientation)
    except CytohubError as exc:
        return "error", str(exc).removeprefix("image: ")
    except Exception as exc:  # Pillow raises many types for corrupt data
        return "error", f"does not decode as datasets decodes it ({type(exc).__name__}: {exc})"


def _decode(v: Validation, img: dict | None, where: str, state: _RowState,
            decoded: dict[int, tuple[str, Any]]) -> tuple[int, int] | None:
    """The size `datasets` shows for an image (`decoded`: results of `_decode_bytes` by id of the bytes), or
    None with the problem recorded."""
    if not img or not img.get("bytes"):
        v.problem("images", f"{where}: no image bytes")
        return None
    data = img["bytes"]
    kind, value = decoded.get(id(data)) or _decode_bytes(data)
    if kind == "error":
        v.problem("images", f"{where}: {value}")
        return None
    v.images_decoded += 1
    size, (sw, sh), orientation = value
    if orientation != 1:  # the build sets it to 1, so that pixels, masks and geometry share the stored frame
        v.problem("images", f"{where}: EXIF orientation {orientation}: datasets shows it as {size[0]}x{size[1]}, "
                            f"rotated or mirrored from its stored {sw}x{sh} pixels that masks and geometry refer "
                            "to; rebuild it with this cytohub")
    if not state.synthetic and synth.find_mark(data) is not None:
        v.problem("synthetic", f"{where}: the image carries the cytohub synthetic mark but the build report says "
                               "the data is real")
    return size


def _check_images(v: Validation, path: Path, row: dict, state: _RowState,
                  decoded: dict[int, tuple[str, Any]]) -> None:
    where = f"{path.name}: row {row['id']!r}"
    size = _decode(v, row["image"], f"{where}: image", state, decoded) if row["image"] is not None else None
    for i, plane in enumerate(row["focal_stack"] or []):
        psize = _decode(v, plane, f"{where}: focal plane {i}", state, decoded)
        if size and psize and psize != size:
            v.problem("stacks", f"{where}: focal plane {i} is {psize[0]}x{psize[1]}, the image is {size[0]}x{size[1]}")
    msize = _decode(v, row["mask"], f"{where}: mask", state, decoded) if row["mask"] is not None else None
    if size and msize and msize != size:
        v.problem("masks", f"{where}: mask is {msize[0]}x{msize[1]}, the image is {size[0]}x{size[1]}")
    if size:
        for obj in row["objects"] or []:
            _check_object(v, where, obj, size)


# ------------------------------------------------------------------------------------------- readers
@contextlib.contextmanager
def _quiet_datasets() -> Iterator[None]:
    from datasets.utils import logging as dlog

    verbosity, bars = dlog.get_verbosity(), dlog.is_progress_bar_enabled()
    dlog.set_verbosity_error()
    dlog.disable_progress_bar()
    try:
        yield
    finally:
        dlog.set_verbosity(verbosity)
        if bars:
            dlog.enable_progress_bar()


def _load_problems(folder: Path, ends: dict[str, tuple], full: bool, path: Path | None = None) -> list[str]:
    """Problems found by `datasets.load_dataset` on the folder reading the first and the last row of every
    split (`ends`: split -> (first id, last id)), streaming and, with `full`, not streaming.
    `path`: where to read the folder from (`reader_path`); messages name `folder`."""
    source = str(path or folder)
    from datasets import load_dataset

    problems: list[str] = []

    class _Collect:
        @staticmethod
        def problem(kind: str, message: str) -> None:
            problems.append(message)

    v = _Collect()

    def describe(exc: BaseException) -> str:
        return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"

    with _quiet_datasets():
        # Every streamed file is read to its end: a Parquet scan abandoned part-way (`next(iter(ds))`) leaves
        # pyarrow reading on a background thread, and the interpreter then aborts at exit ("terminate called
        # without an active exception") in about 1 run in 10. So the fast check streams only the `id` column of
        # each split's first and last file; `full` streams whole rows of those files.
        try:
            streamed = load_dataset(source, streaming=True, **({} if full else {"columns": ["id"]}))
        except Exception as exc:
            v.problem("load", f"{folder}: datasets.load_dataset(streaming=True) fails: {describe(exc)}")
            return problems
        for split, (first, last) in ends.items():
            try:  # rows are read whole with `full`; images are not decoded here (the row checks decode them)
                ds = streamed[split].decode(False)
                head = _streamed_ids(ds.shard(num_shards=ds.num_shards, index=0))
                tail = head if ds.num_shards == 1 else \
                    _streamed_ids(ds.shard(num_shards=ds.num_shards, index=ds.num_shards - 1))
                if head[:1] != [first]:
                    v.problem("load", f"{folder}: streaming split {split!r} starts with "
                                      f"{head[0] if head else None!r}, not {first!r}")
                if tail[-1:] != [last]:
                    v.problem("load", f"{folder}: streaming split {split!r} ends with "
                                      f"{tail[-1] if tail else None!r}, not {last!r}")
            except Exception as exc:
                v.problem("load", f"{folder}: datasets.load_dataset(streaming=True) cannot read split {split!r}: "
                                  f"{describe(exc)}")
        if not full:
            return problems
        cache = Path(tempfile.mkdtemp(prefix="cytohub-validate-"))
        try:
            loaded = load_dataset(source, cache_dir=str(cache))
            for split, (first, last) in ends.items():
                ds = loaded[split]
                if (ds[0]["id"], ds[len(ds) - 1]["id"]) != (first, last):
                    v.problem("load", f"{folder}: datasets.load_dataset split {split!r} reads "
                                      f"{ds[0]['id']!r}..{ds[len(ds) - 1]['id']!r}, not {first!r}..{last!r}")
        except Exception as exc:
            v.problem("load", f"{folder}: datasets.load_dataset (not streaming) fails: {describe(exc)}")
        finally:
            shutil.rmtree(cache, ignore_errors=True)
    return problems
