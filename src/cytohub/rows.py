"""Turn a builder's row (with conveniences: RawFile images, class names, defaults) into a complete row of
the unified schema, checking what can be checked cheaply and naming the raw file when something is wrong."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from cytohub import images
from cytohub.builder import Builder
from cytohub.encode import encode_extra
from cytohub.errors import RawLayoutError
from cytohub.raw import RawFile
from cytohub.schema import FIELDS, GEOMETRY_TOLERANCE

ROW_KEYS = set(FIELDS) | {"split"}
OBJECT_KEYS = {"category", "bbox", "polygon", "point"}


@dataclass
class RowInfo:
    """What the engine keeps of each row in memory (small): for splits, statistics and the card."""

    id: str
    split: str | None
    group: str
    label: int
    objects: dict[str, int] = field(default_factory=dict)
    planes: int = 0
    has_mask: bool = False


class RowMaker:
    def __init__(self, builder: Builder) -> None:
        self.builder = builder
        self.labels = builder.label_index()
        self.class_index = {name: i for i, name in enumerate(builder.class_names())}
        self.objects = builder.object_index()
        self.image_stats = images.ImageStats()  # formats, modes and sizes of the stored images

    def make(self, row: dict[str, Any]) -> tuple[dict[str, Any], RowInfo]:
        unknown = set(row) - ROW_KEYS
        if unknown:
            raise TypeError(f"{self.builder.name}: row has unknown keys {sorted(unknown)}")
        sources: list[str] = []
        rid = row.get("id")
        if not isinstance(rid, str) or not rid:
            raise TypeError(f"{self.builder.name}: every row needs a non-empty string id, got {rid!r}")
        where = row.get("source_path") or rid

        sizes: list[tuple[int, int]] = []
        image = self._image(row.get("image"), where, sources, sizes=sizes)
        plane_sizes: list[tuple[int, int]] = []
        stack = [self._image(p, where, sources, "focal_stack", plane_sizes) for p in row.get("focal_stack") or []]
        if stack and "z_um" in row and row["z_um"] is None:
            z_um = None  # plane spacing not stated by the source: the order is known, the distances are not
        else:
            z_um = [float(z) for z in row.get("z_um") or []]
            if len(stack) != len(z_um):
                raise RawLayoutError(f"{where}: {len(stack)} focal planes but {len(z_um)} z values")
        if z_um and any(b <= a for a, b in zip(z_um, z_um[1:], strict=False)):
            raise RawLayoutError(f"{where}: focal planes are not in strictly increasing z order: {z_um}")
        mask_sizes: list[tuple[int, int]] = []
        mask = self._image(row.get("mask"), where, sources, "mask", mask_sizes)
        _check_same_frame(sizes, plane_sizes, mask_sizes, row.get("source_path") or ";".join(sources) or rid)

        label_name = row.get("label")
        if label_name is None or label_name == -1:
            label, lab = -1, None
        elif label_name in self.class_index:
            label, lab = self.class_index[label_name], self.labels[label_name]
        else:
            raise RawLayoutError(f"{where}: unknown class {label_name!r}; expected one of {list(self.class_index)}")
        label_path = row.get("label_path")
        if label_path is None:
            label_path = list(lab.path) if lab else []
        harmonized = row.get("harmonized", lab.harmonized if lab else None)

        objects, counts = [], {}
        size = sizes[0] if sizes else None  # the stored frame, which `datasets` shows (orientation normalised)
        obj_where = row.get("source_path") or ";".join(dict.fromkeys(sources)) or rid
        for obj in row.get("objects") or []:
            objects.append(self._object(obj, obj_where, size))
            counts[obj["category"]] = counts.get(obj["category"], 0) + 1

        group = {"patient_id": None, "slide_id": None, "fov_id": None}
        for k, v in (row.get("group") or {}).items():
            if k not in group:
                raise TypeError(f"{self.builder.name}: unknown group key {k!r}")
            group[k] = None if v is None else str(v)
        group_key = next((f"{k}:{group[k]}" for k in ("patient_id", "slide_id", "fov_id") if group[k]), f"id:{rid}")

        mpp = row.get("mpp", self.builder.mpp)
        centre = row.get("fov_center_um")
        out = {
            "id": rid,
            "image": image,
            "focal_stack": stack,
            "z_um": z_um,
            "label": label,
            "label_path": [str(p) for p in label_path],
            "harmonized": harmonized,
            "objects": objects,
            "mask": mask,
            "mpp": None if mpp is None else float(mpp),
            "fov_center_um": None if centre is None else [float(c) for c in centre],
            "group": group,
            "source_path": row.get("source_path") or ";".join(dict.fromkeys(sources)),
            "extra": self._extra(row.get("extra"), where),
        }
        info = RowInfo(rid, row.get("split"), group_key, label, counts, len(stack), mask is not None)
        return out, info

    def _image(self, value: Any, where: str, sources: list[str], role: str = "image",
               sizes: list[tuple[int, int]] | None = None) -> dict | None:
        if value is None:
            return None
        if isinstance(value, RawFile):
            data, path = value.read_bytes(), value.name
            where = value.path
            sources.append(value.path)
        elif isinstance(value, bytes | bytearray):
            data, path = bytes(value), None
        elif isinstance(value, dict) and "bytes" in value:
            data, path = value["bytes"], value.get("path")
        else:
            raise TypeError(f"{self.builder.name}: an image must be a RawFile, bytes or {{'bytes', 'path'}}, "
                            f"got {type(value).__name__}")
        prepared = images.prepare(data, where)  # checked; EXIF orientation normalised to the stored frame
        self.image_stats.add(role, prepared, where)
        if sizes is not None:
            sizes.append((prepared.header.width, prepared.header.height))
        return {"bytes": prepared.data, "path": path}

    def _extra(self, value: Any, where: str) -> str | None:
        try:
            return encode_extra(value)
        except ValueError as exc:  # NaN / infinity: JSON has no such numbers, and none is invented
            raise RawLayoutError(f"{where}: a native value kept in `extra` is not representable in JSON ({exc})") \
                from None
        except TypeError as exc:
            raise TypeError(f"{self.builder.name}: `extra` must hold JSON data: {exc}") from None

    def _object(self, obj: dict, where: str, size: tuple[int, int] | None = None) -> dict:
        """A checked object: finite numbers, the right counts, and (when the row has an image of `size` =
        (width, height)) inside that image within GEOMETRY_TOLERANCE pixels, as `validate` requires. Geometry
        far outside its image (a coordinate of 1e308 in an outline file) is an error naming `where`, never
        clipped or dropped."""
        if set(obj) - OBJECT_KEYS or "category" not in obj:
            raise TypeError(f"{self.builder.name}: an object needs 'category' and only {sorted(OBJECT_KEYS)}")
        cat = obj["category"]
        if self.objects and cat not in self.objects:
            raise RawLayoutError(f"{where}: unknown object category {cat!r}; expected one of {list(self.objects)}")
        out = {"category": str(cat)}
        for key, n in (("bbox", 4), ("polygon", None), ("point", 2)):
            val = obj.get(key)
            if val is None:
                out[key] = None
                continue
            try:
                vals = [float(v) for v in val]
            except (TypeError, ValueError):
                raise RawLayoutError(f"{where}: {key} of a {cat!r} object is {val!r}; expected numbers") from None
            if any(not math.isfinite(v) for v in vals):
                raise RawLayoutError(f"{where}: {key} of a {cat!r} object has a non-finite value: {vals}")
            if n is not None and len(vals) != n:
                raise RawLayoutError(f"{where}: {key} of a {cat!r} object has {len(vals)} values, expected {n}")
            if key == "polygon" and (len(vals) % 2 or len(vals) < 6):
                raise RawLayoutError(f"{where}: polygon of a {cat!r} object has {len(vals)} values, "
                                     "expected an even number >= 6 (>= 3 points)")
            if key == "bbox" and (vals[2] < 0 or vals[3] < 0):
                raise RawLayoutError(f"{where}: bbox of a {cat!r} object has a negative size: {vals}")
            if size is not None:
                _check_inside(key, vals, size, cat, where)
            out[key] = vals
        return out


def _check_inside(key: str, vals: list[float], size: tuple[int, int], cat: object, where: str) -> None:
    """Refuse geometry that leaves its (width, height) image by more than GEOMETRY_TOLERANCE pixels (the check
    `validate` makes), naming the first coordinate outside."""
    w, h = size
    t = GEOMETRY_TOLERANCE
    if key == "bbox":
        x, y, bw, bh = vals
        pts = [(x, y), (x + bw, y + bh)]
    else:
        pts = list(zip(vals[::2], vals[1::2], strict=True))
    for x, y in pts:
        if not (-t <= x <= w + t and -t <= y <= h + t):
            raise RawLayoutError(f"{where}: {key} of a {cat!r} object reaches ({x:.6g}, {y:.6g}), outside the "
                                 f"{w}x{h} image; expected pixel coordinates inside it (origin top-left, 0-based)")


def check_official_split(info: RowInfo, splits: Sequence[str], where: str) -> None:
    if info.split not in splits:
        raise RawLayoutError(f"{where}: row {info.id!r} has split {info.split!r}, expected one of {list(splits)}")


def _check_same_frame(image: list[tuple[int, int]], planes: list[tuple[int, int]], mask: list[tuple[int, int]],
                      where: str) -> None:
    """A row's focal planes and mask must have its image's size (width, height in stored pixels), as `validate`
    requires: a mask or plane of another size does not line up with the image (it is never resized)."""
    if not image:
        return
    w, h = image[0]
    for i, (pw, ph) in enumerate(planes):
        if (pw, ph) != (w, h):
            raise RawLayoutError(f"{where}: focal plane {i} is {pw}x{ph}, the image is {w}x{h}; expected the "
                                 "same size")
    for mw, mh in mask:
        if (mw, mh) != (w, h):
            raise RawLayoutError(f"{where}: the mask is {mw}x{mh}, the image is {w}x{h}; expected the same size")
