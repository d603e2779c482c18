"""`cytohub audit DIR...`: duplicate images and leakage within and across build folders.

For every row of every split of every build folder given, the `image` (the best-focus plane for z-stacks) is
hashed twice:

* **exact**: sha256 of the stored image bytes (the same file published twice);
* **near**: the 64-bit perceptual hash (pHash: DCT of a 32x32 greyscale thumbnail, bits = low frequencies
  above their median; Zauner 2010, as implemented by the `imagehash` library). Two images are near
  duplicates when their pHashes differ in at most `threshold` of 64 bits (default 4: re-encoded, rescaled or
  slightly re-cropped copies of one picture; distinct cytology fields of one slide are typically > 10 apart).

A pair is classified by where its two rows lie: the same split of one build (`within split`), two different
splits (`across splits`, of one build or of two builds whose split names differ: training on one and testing
on the other leaks), or the same split name of two builds (`across builds`). Groups (patient, slide, field of
view) found in more than one split of a build are reported too. Leakage = any pair across splits or any group
in two splits; the CLI exits non-zero on leakage.

Memory: one row group of images at a time; per row only a few dozen bytes (ids, split, hashes) are kept, so
auditing 100k+ rows needs tens of MB. Near pairs are found by multi-index hashing (the 64 bits are cut into
`threshold + 1` blocks: two hashes within the threshold agree exactly on at least one block, so only rows
sharing a block value are compared), not by comparing every pair.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cytohub.errors import CytohubError

DEFAULT_THRESHOLD = 4  # bits of 64 (pHash Hamming distance) for a near duplicate
SHARD_RE = re.compile(r"^(?P<split>[A-Za-z][A-Za-z0-9_]*)-(?P<i>\d{5})-of-(?P<n>\d{5})\.parquet$")
KINDS = ("within split", "across splits", "across builds")
MAX_EXAMPLES = 20  # pairs listed per kind in the text report


@dataclass(frozen=True)
class RowRef:
    """Where a row lives: build folder name, corpus, split and id."""

    build: str
    corpus: str
    split: str
    id: str

    def __str__(self) -> str:
        return f"{self.build}/{self.split}/{self.id}"


@dataclass
class Pair:
    a: RowRef
    b: RowRef
    distance: int  # 0 for exact duplicates (same bytes)
    exact: bool

    @property
    def kind(self) -> str:
        if self.a.split != self.b.split:
            return "across splits"
        return "within split" if self.a.build == self.b.build else "across builds"


@dataclass
class AuditReport:
    folders: list[str]
    threshold: int
    rows: int = 0
    rows_per_build: dict[str, int] = field(default_factory=dict)
    pairs: list[Pair] = field(default_factory=list)
    groups_across_splits: list[dict[str, Any]] = field(default_factory=list)
    undecodable: list[str] = field(default_factory=list)

    def count(self, kind: str, exact: bool | None = None) -> int:
        return sum(1 for p in self.pairs if p.kind == kind and (exact is None or p.exact == exact))

    @property
    def leakage(self) -> bool:
        """True when a duplicate pair lies in two different splits or a group is in two splits."""
        return self.count("across splits") > 0 or bool(self.groups_across_splits)

    def to_dict(self) -> dict[str, Any]:
        return {
            "folders": self.folders,
            "method": {"exact": "sha256 of the stored image bytes",
                       "near": "64-bit pHash (imagehash.phash), Hamming distance <= threshold",
                       "threshold": self.threshold},
            "rows": self.rows,
            "rows_per_build": self.rows_per_build,
            "summary": {kind: {"exact": self.count(kind, True), "near": self.count(kind, False)} for kind in KINDS},
            "groups_across_splits": self.groups_across_splits,
            "undecodable": self.undecodable,
            "leakage": self.leakage,
            "pairs": [{"kind": p.kind, "exact": p.exact, "distance": p.distance, "a": str(p.a), "b": str(p.b)}
                      for p in self.pairs],
        }

    def text(self) -> str:
        lines = [f"audited {self.rows:,} rows in {len(self.folders)} build(s): "
                 + ", ".join(f"{k} {v:,}" for k, v in self.rows_per_build.items()),
                 f"near duplicate = pHash distance <= {self.threshold} of 64 bits; exact = identical image bytes"]
        for kind in KINDS:
            lines.append(f"  {kind:14} {self.count(kind, True):6,} exact pairs, {self.count(kind, False):6,} near")
        lines.append(f"  groups in more than one split: {len(self.groups_across_splits):,}")
        for kind in KINDS:
            shown = [p for p in self.pairs if p.kind == kind][:MAX_EXAMPLES]
            if shown:
                lines.append(f"{kind}:")
                lines += [f"  {'exact' if p.exact else f'd={p.distance}':6} {p.a}  <->  {p.b}" for p in shown]
                more = self.count(kind) - len(shown)
                if more:
                    lines.append(f"  ... and {more:,} more (--json lists every pair)")
        for g in self.groups_across_splits[:MAX_EXAMPLES]:
            lines.append(f"  group {g['group']} of {g['build']} is in splits {', '.join(g['splits'])}")
        if self.undecodable:
            lines.append(f"{len(self.undecodable)} image(s) could not be decoded (exact hash only): "
                         + ", ".join(self.undecodable[:5]))
        lines.append("LEAKAGE: duplicates or groups across splits" if self.leakage else "no leakage across splits")
        return "\n".join(lines)


def perceptual_hash(data: bytes, where: str) -> int:
    """The 64-bit pHash of an encoded image (any mode: 16-bit and float images are scaled by their own range to
    8-bit grey first, so that the hash sees their structure rather than saturated white). Raises
    CytohubError naming `where` if the bytes do not decode."""
    import imagehash

    from cytohub import images

    im = images.decode(data, where, reduce_jpeg=False)  # full size: a JPEG drafted to 1/8 hashes differently
    if im.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(im, dtype=np.float64)
        lo, hi = float(arr.min()), float(arr.max())
        scaled = (arr - lo) * (255.0 / (hi - lo)) if hi > lo else np.zeros_like(arr)
        from PIL import Image

        im = Image.fromarray(scaled.astype(np.uint8), "L")
    return int(str(imagehash.phash(im)), 16)


def build_shards(folder: Path) -> list[Path]:
    """The Parquet shards of a build (or mix) folder, as its build report's manifest lists them under `data/`
    (a build's in `data/`, a mix's in `data/<source>/`), each checked against the manifest (size, then sha256).
    Raises CytohubError naming the folder when it has no report or manifest, when a shard is missing, changed
    or not listed (an audit of files that are not the build would vouch for something else)."""
    from cytohub import manifest

    report = manifest.read_report(folder)  # CytohubError naming the file when it is not a build report
    try:
        listed = [e for e in manifest.entries(report) if e["path"].startswith("data/")
                  and e["path"].endswith(".parquet")]
    except CytohubError as exc:
        raise CytohubError(f"{folder}: {exc}") from None
    data = folder / "data"
    found = {p.relative_to(folder).as_posix() for p in data.rglob("*.parquet")} if data.is_dir() else set()
    unlisted = sorted(found - {e["path"] for e in listed})
    if unlisted:
        raise CytohubError(f"{folder / unlisted[0]}: not in the manifest of {folder / manifest.REPORT}"
                           f"{f' (and {len(unlisted) - 1} more)' if len(unlisted) > 1 else ''}; the folder is "
                           "not the build: rebuild it or remove the file")
    shards = [e for e in listed if SHARD_RE.match(e["path"].rsplit("/", 1)[-1])]
    if not shards:
        raise CytohubError(f"{folder}: no Parquet shards under data/; expected a build folder made by "
                           "`cytohub build` (or `cytohub mix`)")
    check = manifest.verify(folder, shards, ignore_extra=True)
    bad = sorted(check.missing + check.changed + [p for p in check.symlinks if p.startswith("data/")])
    if bad:
        more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
        raise CytohubError(f"{folder / bad[0]}: missing or changed since the build (size or sha256 differs from "
                           f"the manifest of {folder / manifest.REPORT}){more}; rebuild it or restore the files")
    return sorted(folder / e["path"] for e in shards)


def _rows(folder: Path, verify: bool = True) -> Iterator[tuple[str, str, bytes | None, str | None]]:
    """(split, id, image bytes, group key) for every row of a build folder, one row group in memory at a time.
    With `verify`, only the shards of the build's manifest, checked against it (`build_shards`); without (a
    mix being written, before its manifest exists), every shard under `data/`."""
    import pyarrow.parquet as pq

    data = folder / "data"
    if verify:
        shards = build_shards(folder)
    else:  # a build's shards lie in data/, a mix's in data/<source>/
        shards = sorted(p for p in data.rglob("*.parquet") if SHARD_RE.match(p.name)) if data.is_dir() else []
    if not shards:
        raise CytohubError(f"{folder}: no Parquet shards under data/; expected a build folder made by "
                           "`cytohub build` (or `cytohub mix`)")
    for shard in shards:
        split = SHARD_RE.match(shard.name)["split"]
        pf = pq.ParquetFile(shard)
        for rg in range(pf.num_row_groups):
            table = pf.read_row_group(rg, columns=["id", "image", "group"])
            for rid, image, group in zip(table.column("id").to_pylist(), table.column("image").to_pylist(),
                                         table.column("group").to_pylist(), strict=True):
                g = group or {}
                key = next((f"{k}:{g[k]}" for k in ("patient_id", "slide_id", "fov_id") if g.get(k)), None)
                yield split, rid, (image or {}).get("bytes"), key


def _corpus(folder: Path) -> str:
    try:
        return json.loads((folder / "build-report.json").read_text(encoding="utf-8"))["builder"]["name"]
    except (OSError, ValueError, KeyError, TypeError):
        return folder.name


PAIR_BYTES = 200  # memory per listed pair, measured order of magnitude (Pair, its set entry, its JSON record)


def max_pairs() -> int:
    """Most duplicate pairs an audit lists (`CYTOHUB_AUDIT_MAX_PAIRS`, default 2,000,000: about 400 MB). k copies
    of one image are k(k-1)/2 pairs, so a corpus of repeated blank tiles could otherwise exhaust memory."""
    text = os.environ.get("CYTOHUB_AUDIT_MAX_PAIRS", "").strip().replace("_", "")
    if not text:
        return 2_000_000
    if not text.isascii() or not text.isdigit():
        raise CytohubError(f"CYTOHUB_AUDIT_MAX_PAIRS={text!r}: expected a whole number of pairs")
    return int(text)


class _PairLimit(Exception):
    def __init__(self, pairs: int, largest: int, example: int) -> None:
        self.pairs, self.largest, self.example = pairs, largest, example


def _too_many_pairs(paths: list[Path], pairs: int, limit: int, largest: int, example: RowRef,
                    kind: str) -> CytohubError:
    return CytohubError(
        f"{', '.join(map(str, paths))}: {pairs:,} {kind} duplicate image pairs, over the {limit:,} an audit lists "
        f"(the largest set is {largest:,} copies of one image, e.g. {example}); each pair takes about "
        f"{PAIR_BYTES} bytes of memory: set CYTOHUB_AUDIT_MAX_PAIRS to raise the limit")


def near_pairs(hashes: np.ndarray, threshold: int, limit: int | None = None) -> set[tuple[int, int]]:
    """Index pairs (i < j) of 64-bit hashes (uint64 array) within `threshold` differing bits. With `limit`,
    raises before expanding more than `limit` pairs (an internal signal that `audit` turns into its error).

    Multi-index hashing: the 64 bits are cut into threshold + 1 blocks; by the pigeonhole principle two hashes
    within the threshold agree exactly on at least one block, so only rows sharing a block value are compared.
    Identical hashes are collapsed first, so a thousand copies of one image cost one comparison per block."""
    if threshold < 0 or threshold > 63:
        raise CytohubError(f"threshold {threshold}: expected 0..63 bits")
    uniq, inverse = np.unique(hashes, return_inverse=True)
    members: dict[int, list[int]] = defaultdict(list)
    for i, u in enumerate(inverse.tolist()):
        members[u].append(i)
    candidate: set[tuple[int, int]] = set()
    nblocks = threshold + 1
    bounds = [round(64 * k / nblocks) for k in range(nblocks + 1)]
    for lo, hi in zip(bounds, bounds[1:], strict=False):
        mask = np.uint64((1 << (hi - lo)) - 1)
        block = (uniq >> np.uint64(lo)) & mask
        order = np.argsort(block, kind="stable")
        sorted_blocks = block[order]
        starts = np.flatnonzero(np.r_[True, sorted_blocks[1:] != sorted_blocks[:-1]])
        ends = np.r_[starts[1:], len(order)]
        for s, e in zip(starts.tolist(), ends.tolist(), strict=True):
            if e - s < 2:
                continue
            idx = order[s:e]
            sub = uniq[idx]
            for a in range(len(idx) - 1):
                dist = np.bitwise_count(np.bitwise_xor(sub[a + 1:], sub[a]))
                for b in np.flatnonzero(dist <= threshold).tolist():
                    u, v = int(idx[a]), int(idx[a + 1 + b])
                    candidate.add((min(u, v), max(u, v)))
            if limit is not None and len(candidate) > limit:  # many distinct but near hashes
                raise _PairLimit(len(candidate), e - s, members[int(idx[0])][0])
    if limit is not None:
        total = sum(len(members[u]) * len(members[v]) for u, v in candidate) \
            + sum(len(m) * (len(m) - 1) // 2 for m in members.values())
        if total > limit:
            big = max(members.values(), key=len)
            raise _PairLimit(total, len(big), big[0])
    pairs: set[tuple[int, int]] = set()
    for u, v in candidate:  # expand unique hashes back to rows
        for i in members[u]:
            for j in members[v]:
                pairs.add((min(i, j), max(i, j)))
    for rows in members.values():  # rows with an identical hash are within any threshold
        for a in range(len(rows)):
            for b in range(a + 1, len(rows)):
                pairs.add((rows[a], rows[b]))
    return pairs


def audit(folders: list[str | Path], threshold: int = DEFAULT_THRESHOLD,
          progress: Callable[[int], None] | None = None, verify: bool = True) -> AuditReport:
    """Audit build folders for exact and near-duplicate images and for groups across splits.

    Each folder is read as its build: the shards its report's manifest lists, checked against it
    (`build_shards`); `verify=False` reads every shard under `data/` (a mix auditing itself before its
    manifest is written). Raises CytohubError when a folder is not a build folder (or not its build), a folder
    is given twice, or `threshold` is outside 0..63."""
    paths = [Path(f) for f in folders]
    if not paths:
        raise CytohubError("no build folder given; expected one or more folders made by `cytohub build`")
    if not 0 <= threshold <= 63:
        raise CytohubError(f"--threshold {threshold}: expected 0..63 bits of the 64-bit pHash")
    seen: dict[Path, Path] = {}
    for p in paths:
        real = p.resolve()
        if real in seen:
            raise CytohubError(f"{seen[real]} and {p} are the same folder; give each build once (every image "
                               "would be its own exact duplicate across builds)")
        seen[real] = p
    names = _unique_names(paths)
    report = AuditReport([str(p) for p in paths], threshold)
    refs: list[RowRef] = []
    shas: list[bytes] = []
    phashes: list[int] = []
    hashed: list[int] = []  # indexes of rows with a pHash
    for path, name in zip(paths, names, strict=True):
        if not path.is_dir():
            raise CytohubError(f"{path} is not a folder; expected a build folder made by `cytohub build`")
        corpus = _corpus(path)
        group_splits: dict[str, set[str]] = defaultdict(set)
        n = 0
        for split, rid, data, group in _rows(path, verify):
            ref = RowRef(name, corpus, split, rid)
            if group:
                group_splits[group].add(split)
            n += 1
            report.rows += 1
            if progress:
                progress(report.rows)
            if not data:
                continue
            refs.append(ref)
            shas.append(hashlib.sha256(data).digest())
            try:
                phashes.append(perceptual_hash(data, f"{path}: {split} row {rid!r}"))
                hashed.append(len(refs) - 1)
            except CytohubError:
                report.undecodable.append(str(ref))
        report.rows_per_build[name] = n
        for group, splits in sorted(group_splits.items()):
            if len(splits) > 1:
                report.groups_across_splits.append({"build": name, "group": group, "splits": sorted(splits)})

    by_sha: dict[bytes, list[int]] = defaultdict(list)
    for i, sha in enumerate(shas):
        by_sha[sha].append(i)
    pair_limit = max_pairs()
    biggest = max(by_sha.values(), key=len, default=[])
    n_exact = sum(len(rows) * (len(rows) - 1) // 2 for rows in by_sha.values())
    if n_exact > pair_limit:
        raise _too_many_pairs(paths, n_exact, pair_limit, len(biggest), refs[biggest[0]], "exact")
    exact: set[tuple[int, int]] = set()
    for rows in by_sha.values():
        for a in range(len(rows)):
            for b in range(a + 1, len(rows)):
                exact.add((rows[a], rows[b]))
                report.pairs.append(Pair(refs[rows[a]], refs[rows[b]], 0, True))
    if hashed:
        arr = np.array(phashes, dtype=np.uint64)
        try:
            near = near_pairs(arr, threshold, pair_limit)
        except _PairLimit as exc:
            raise _too_many_pairs(paths, exc.pairs, pair_limit, exc.largest, refs[hashed[exc.example]],
                                  "near") from None
        for a, b in sorted(near):
            i, j = hashed[a], hashed[b]
            if (i, j) in exact:
                continue
            dist = bin(phashes[a] ^ phashes[b]).count("1")
            report.pairs.append(Pair(refs[i], refs[j], dist, False))
    report.pairs.sort(key=lambda p: (KINDS.index(p.kind), not p.exact, p.distance, str(p.a), str(p.b)))
    return report


def _unique_names(paths: list[Path]) -> list[str]:
    names: list[str] = []
    for p in paths:
        base = p.resolve().name or str(p)
        name, k = base, 2
        while name in names:
            name, k = f"{base}~{k}", k + 1
        names.append(name)
    return names
