"""The unified schema, v2: one `datasets.Features` for every corpus.

Only the `label` ClassLabel names differ between corpora (each corpus's finest classes). Unused fields are
empty (`[]`) or null. Pixel coordinates: origin top-left, x right, y down, 0-based, in pixels of `image`.

Every feature type is one that `datasets` 3.x, 4.x and 5.x all read, from the card's YAML `dataset_info`
and from the Parquet `huggingface` metadata alike:
* `extra` is JSON text in a plain `Value("string")` (schema v1 used `datasets.Json`, which only `datasets`
  >= 4.7 knows: older versions failed with "TypeError: 'module' object is not callable");
* lists are `List` in memory; in the Parquet metadata they are written as a one-element JSON list
  (`[feature]`, see `portable_dict`), the form every version reads (`datasets` < 4 has no `List` type; 4.x
  and 5.x turn `[feature]` back into `List(feature)`). The card's YAML uses `list:`, which all read too.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pyarrow as pa
    from datasets import Features

SCHEMA_VERSION = "2"
# How far (pixels) a bbox, polygon vertex or point may lie outside its image: coordinates are continuous (a
# pixel's corners run 0..width), and sources round outlines to the nearest half pixel. The build refuses
# geometry beyond it (`cytohub.rows`) and `validate` flags it, with the same value.
GEOMETRY_TOLERANCE = 0.5

# name -> (type as shown to users, meaning). The order is the column order of every shard.
FIELDS: dict[str, tuple[str, str]] = {
    "id": ("string", "unique within the corpus, stable across rebuilds"),
    "image": ("Image", "the 2-D view; for Z-stacks the best-focus plane (or the source's own EDF)"),
    "focal_stack": ("List(Image)", "all focal planes ordered by z; `[]` for 2-D corpora"),
    "z_um": ("List(float32) (nullable)", "plane offsets from best focus in micrometres, same length, increasing; "
             "null when the source does not state the plane spacing (the stack is still ordered by z)"),
    "label": ("ClassLabel", "image-level label among the corpus's finest classes; -1 where none"),
    "label_path": ("List(string)", "the corpus's own label hierarchy, root -> leaf; `[]` where no label"),
    "harmonized": ("string", "the label in cytohub's cross-corpus taxonomy; null where no honest mapping"),
    "objects": (
        "List({category, bbox, polygon, point})",
        "cells/nuclei: bbox [x, y, w, h], polygon [x1, y1, x2, y2, ...], point [x, y], all in pixels; "
        "absent geometry is null; `[]` for classification-only corpora. COCO crowd regions (`iscrowd: 1`) are "
        "objects too, listed in `extra.crowd_objects`",
    ),
    "mask": ("Image (nullable)", "semantic/instance label map as provided by the source"),
    "mpp": ("float32 (nullable)", "micrometres per pixel; null when the source does not state it"),
    "fov_center_um": ("List(float32) (nullable)", "field-of-view centre [x, y] in specimen coordinates, um"),
    "group": (
        "{patient_id, slide_id, fov_id} (strings, nullable)",
        "provenance units for leakage-safe splits",
    ),
    "source_path": ("string", "raw file(s) the row came from, `;`-separated, relative to the raw root"),
    "extra": ("string (JSON)", "anything native that has no unified home (e.g. re-annotation labels), as JSON text "
              "with sorted keys (`json.loads(row[\"extra\"])`); null where none. Corpora read from "
              "COCO files: `crowd_objects` = positions in `objects` (0-based) of crowd regions, `[]` when none; "
              "`segmentation_rle` = {position: COCO RLE with compressed counts} for objects whose segmentation "
              "is a mask"),
}


def features(class_names: Sequence[str]) -> Features:
    """The Features of a corpus whose finest image-level classes are `class_names`. (`datasets` is imported
    here, not with this module: a build never needs it, see `cytohub.encode.storage_schema`.)"""
    from datasets import ClassLabel, Features, Image, List, Value

    OBJECT_FEATURE = {  # noqa: N806
        "category": Value("string"),
        "bbox": List(Value("float32")),
        "polygon": List(Value("float32")),
        "point": List(Value("float32")),
    }
    GROUP_FEATURE = {  # noqa: N806
        "patient_id": Value("string"),
        "slide_id": Value("string"),
        "fov_id": Value("string"),
    }
    types = {
        "id": Value("string"),
        "image": Image(),
        "focal_stack": List(Image()),
        "z_um": List(Value("float32")),
        "label": ClassLabel(names=list(class_names)),
        "label_path": List(Value("string")),
        "harmonized": Value("string"),
        "objects": List(OBJECT_FEATURE),
        "mask": Image(),
        "mpp": Value("float32"),
        "fov_center_um": List(Value("float32")),
        "group": GROUP_FEATURE,
        "source_path": Value("string"),
        "extra": Value("string"),
    }
    assert list(types) == list(FIELDS)
    return Features(types)


def class_names_of(feats: Features) -> list[str]:
    from datasets import ClassLabel

    label = feats["label"]
    if not isinstance(label, ClassLabel):
        raise TypeError("the `label` feature is not a ClassLabel")
    return list(label.names)


def same_schema(feats: Features, class_names: Sequence[str]) -> bool:
    """True when `feats` is exactly this schema version with these class names."""
    return feats == features(class_names)


def decode_extra(text: str | None) -> Any:
    """A row's `extra` as Python data (None where the row has none): `json.loads` of the column's text."""
    return None if text is None else json.loads(text)


def portable_dict(feats: Features) -> dict[str, Any]:
    """`feats.to_dict()` with every `List` written as a one-element JSON list `[feature]`: the form of the
    Parquet `huggingface` metadata that `datasets` 3.x, 4.x and 5.x all read back to the same features."""

    def convert(obj: Any) -> Any:
        if isinstance(obj, dict):
            if obj.get("_type") == "List" and set(obj) <= {"_type", "feature", "length"} \
                    and obj.get("length", -1) == -1:
                return [convert(obj["feature"])]
            return {k: convert(v) for k, v in obj.items()}
        if isinstance(obj, list):
            return [convert(v) for v in obj]
        return obj

    return convert(feats.to_dict())


def arrow_schema(feats: Features) -> pa.Schema:
    """The Arrow schema of the shards: `feats.arrow_schema` with its `huggingface` metadata in the portable
    form (see `portable_dict`). `cytohub.encode.storage_schema` spells out the same without `datasets`."""
    meta = {b"huggingface": json.dumps({"info": {"features": portable_dict(feats)}}).encode()}
    return feats.arrow_schema.with_metadata(meta)
