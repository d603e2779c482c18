"""`cytohub validate DIR`: is a build folder a correct, complete, loadable cytohub dataset?

Checks the card (YAML fields, body sections, synthetic marking), the features (exactly the current schema version), the
shards (names, row counts against the card, row-group sizes), every row (unique ids, focal stacks and z
order, every image decodes, masks match their image, objects inside the image, labels in range) and that no
group (patient, slide, FOV) crosses splits. Reads one row group at a time: memory stays bounded.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow.parquet as pq
from datasets import Features
from huggingface_hub import DatasetCard

from cytohub import images
from cytohub.build import REPORT
from cytohub.errors import CytohubError
from cytohub.schema import SCHEMA_VERSION, class_names_of, same_schema

SHARD_RE = re.compile(r"^(?P<split>[A-Za-z][A-Za-z0-9_]*)-(?P<i>\d{5})-of-(?P<n>\d{5})\.parquet$")
MAX_ROW_GROUP_BYTES = 200 * 2**20  # the Hub viewer struggles past this
GEOMETRY_TOLERANCE = 0.5  # pixels
MAX_LISTED = 20  # problems of one kind listed before the rest are counted
REQUIRED_YAML = ("pretty_name", "license", "task_categories", "configs", "dataset_info", "size_categories")
REQUIRED_SECTIONS = ("## Citation", "## License and attribution", "## Provenance", "## Schema",
                     "## Not for clinical use")


@dataclass
class Validation:
    folder: Path
    problems: list[str] = field(default_factory=list)
    rows: dict[str, int] = field(default_factory=dict)
    images_decoded: int = 0
    objects_checked: int = 0
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


def validate(folder: str | Path, progress: Callable[[int], None] | None = None) -> Validation:
    folder = Path(folder)
    v = Validation(folder)
    if not folder.is_dir():
        raise CytohubError(f"{folder} is not a folder; expected a cytohub build folder")
    card_path, report_path = folder / "README.md", folder / REPORT
    if not card_path.is_file():
        v.problem("card", f"{card_path}: missing dataset card")
        return v
    try:
        card = DatasetCard.load(card_path)
    except Exception as exc:
        v.problem("card", f"{card_path}: the YAML header does not load ({exc})")
        return v
    meta = card.data.to_dict()
    for key in REQUIRED_YAML:
        if not meta.get(key):
            v.problem("card", f"{card_path}: YAML field {key!r} is missing or empty")
    if meta.get("license") == "other" and not (meta.get("license_name") and meta.get("license_link")):
        v.problem("card", f"{card_path}: license 'other' needs license_name and license_link")
    for section in REQUIRED_SECTIONS:
        if section not in card.text:
            v.problem("card", f"{card_path}: the body has no {section!r} section")
    report = {}
    if not report_path.is_file():
        v.problem("report", f"{report_path}: missing build report")
    else:
        try:
            report = json.loads(report_path.read_text(encoding="utf-8"))
        except ValueError as exc:
            v.problem("report", f"{report_path}: not valid JSON ({exc})")
    marked = str(meta.get("pretty_name", "")).startswith("[SYNTHETIC]") and "SYNTHETIC DATA" in card.text
    if report.get("synthetic") and not marked:
        v.problem("card", f"{card_path}: a synthetic build must say so in its title and body")

    info = meta.get("dataset_info") or {}
    try:
        feats = Features._from_yaml_list(info["features"])
        class_names = class_names_of(feats)
    except Exception as exc:
        v.problem("schema", f"{card_path}: dataset_info.features is not readable ({exc})")
        return v
    if not same_schema(feats, class_names):
        v.problem("schema", f"{card_path}: dataset_info.features is not cytohub schema v{SCHEMA_VERSION}")
    expected = {s["name"]: s["num_examples"] for s in info.get("splits", []) if "name" in s}
    if not expected:
        v.problem("card", f"{card_path}: dataset_info.splits lists no splits")

    shards = _shards(v, folder / "data")
    if set(shards) != set(expected):
        v.problem("splits", f"{folder / 'data'}: shards for splits {sorted(shards)} but the card lists "
                            f"{sorted(expected)}")
    ids: set[str] = set()
    group_split: dict[str, str] = {}
    done = 0
    for split, paths in sorted(shards.items()):
        count = 0
        for path in paths:
            count += _check_shard(v, path, split, feats, len(class_names), ids, group_split)
            done += 1
            if progress:
                progress(done)
        v.rows[split] = count
        if split in expected and expected[split] != count:
            v.problem("counts", f"split {split!r}: {count} rows in the shards but the card says {expected[split]}")
    return v


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
        out.setdefault(m["split"], []).append((int(m["i"]), int(m["n"]), p))
    result = {}
    for split, items in out.items():
        n = items[0][1]
        if sorted(i for i, _, _ in items) != list(range(n)) or any(k != n for _, k, _ in items):
            v.problem("shards", f"{data}: the shards of split {split!r} are incomplete or misnumbered")
        result[split] = [p for _, _, p in sorted(items)]
    return result


def _check_shard(v: Validation, path: Path, split: str, feats: Features, n_classes: int, ids: set[str],
                 group_split: dict[str, str]) -> int:
    try:
        pf = pq.ParquetFile(path)
    except Exception as exc:
        v.problem("shards", f"{path}: not a readable Parquet file ({exc})")
        return 0
    hf = (pf.schema_arrow.metadata or {}).get(b"huggingface")
    try:
        file_feats = Features.from_dict(json.loads(hf)["info"]["features"]) if hf else None
    except (ValueError, KeyError):
        file_feats = None
    if file_feats != feats:
        v.problem("schema", f"{path}: its features (schema metadata) differ from the card's dataset_info")
    count = 0
    for rg in range(pf.num_row_groups):
        meta = pf.metadata.row_group(rg)
        if meta.total_byte_size > MAX_ROW_GROUP_BYTES:
            v.problem("rowgroups", f"{path}: row group {rg} is {meta.total_byte_size / 2**20:.0f} MiB, over "
                                   f"{MAX_ROW_GROUP_BYTES / 2**20:.0f} MiB (too large for the Hub viewer)")
        for row in pf.read_row_group(rg).to_pylist():
            count += 1
            _check_row(v, path, split, row, n_classes, ids, group_split)
    return count


def _check_row(v: Validation, path: Path, split: str, row: dict, n_classes: int, ids: set[str],
               group_split: dict[str, str]) -> None:
    rid = row["id"]
    where = f"{path.name}: row {rid!r}"
    if not rid:
        v.problem("ids", f"{path.name}: a row has an empty id")
    elif rid in ids:
        v.problem("ids", f"{where}: duplicate id")
    ids.add(rid)
    if not -1 <= row["label"] < n_classes:
        v.problem("labels", f"{where}: label {row['label']} outside -1..{n_classes - 1}")
    size = None
    if row["image"] is not None:
        size = _decode(v, row["image"], f"{where}: image")
    stack, z = row["focal_stack"] or [], row["z_um"]
    if z is None and not stack:
        v.problem("stacks", f"{where}: z_um is null without a focal stack; expected []")
    z = z or []
    if row["z_um"] is not None and len(stack) != len(z):
        v.problem("stacks", f"{where}: {len(stack)} focal planes but {len(z)} z values")
    if any(b <= a for a, b in zip(z, z[1:], strict=False)):
        v.problem("stacks", f"{where}: z_um not strictly increasing: {z}")
    for i, plane in enumerate(stack):
        psize = _decode(v, plane, f"{where}: focal plane {i}")
        if size and psize and psize != size:
            v.problem("stacks", f"{where}: focal plane {i} is {psize}, the image is {size}")
    if row["mask"] is not None:
        msize = _decode(v, row["mask"], f"{where}: mask")
        if size and msize and msize != size:
            v.problem("masks", f"{where}: mask is {msize[0]}x{msize[1]}, the image is {size[0]}x{size[1]}")
    for obj in row["objects"] or []:
        v.objects_checked += 1
        _check_object(v, where, obj, size)
    g = row["group"] or {}
    key = next((f"{k}:{g[k]}" for k in ("patient_id", "slide_id", "fov_id") if g.get(k)), None)
    if key:
        other = group_split.setdefault(key, split)
        if other != split:
            v.problem("leakage", f"{where}: group {key} is in both {other!r} and {split!r}")


def _decode(v: Validation, img: dict | None, where: str) -> tuple[int, int] | None:
    if not img or not img.get("bytes"):
        v.problem("images", f"{where}: no image bytes")
        return None
    try:
        head = images.header(img["bytes"], where)  # the pixel limit is checked before decoding
        images.decode(img["bytes"], where)
    except CytohubError as exc:
        v.problem("images", str(exc))
        return None
    v.images_decoded += 1
    if head.orientation != 1:
        (dw, dh) = head.decoded_size
        v.problem("images", f"{where}: EXIF orientation {head.orientation}: datasets shows it as {dw}x{dh}, "
                            f"rotated or mirrored from its stored {head.width}x{head.height} pixels that masks and "
                            "geometry refer to; rebuild it with this cytohub")
    return head.decoded_size  # the size datasets gives users


def _check_object(v: Validation, where: str, obj: dict, size: tuple[int, int] | None) -> None:
    cat = obj.get("category")
    if not cat:
        v.problem("objects", f"{where}: an object has no category")
    t = GEOMETRY_TOLERANCE
    w, h = size if size else (float("inf"), float("inf"))
    if obj.get("bbox") is not None:
        bx, by, bw, bh = obj["bbox"] if len(obj["bbox"]) == 4 else (0, 0, -1, -1)
        if bw < 0 or bh < 0 or bx < -t or by < -t or bx + bw > w + t or by + bh > h + t:
            v.problem("objects", f"{where}: {cat} bbox {obj['bbox']} is not inside the {w}x{h} image")
    if obj.get("polygon") is not None:
        poly = obj["polygon"]
        if len(poly) < 6 or len(poly) % 2:
            v.problem("objects", f"{where}: {cat} polygon has {len(poly)} values, expected >= 3 (x, y) points")
        elif any(not (-t <= x <= w + t and -t <= y <= h + t) for x, y in zip(poly[::2], poly[1::2], strict=True)):
            v.problem("objects", f"{where}: {cat} polygon leaves the {w}x{h} image")
    if obj.get("point") is not None:
        pt = obj["point"]
        if len(pt) != 2 or not (-t <= pt[0] <= w + t and -t <= pt[1] <= h + t):
            v.problem("objects", f"{where}: {cat} point {pt} is not inside the {w}x{h} image")
    if not any(obj.get(k) is not None for k in ("bbox", "polygon", "point")):
        v.problem("objects", f"{where}: {cat} object has no geometry")
