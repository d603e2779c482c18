"""The unified schema, v1: one `datasets.Features` for every corpus.

Only the `label` ClassLabel names differ between corpora (each corpus's finest classes). Unused fields are
empty (`[]`) or null. Pixel coordinates: origin top-left, x right, y down, 0-based, in pixels of `image`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from datasets import Features

SCHEMA_VERSION = "1"

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
    "extra": ("Json", "anything native that has no unified home (e.g. re-annotation labels). Corpora read from "
              "COCO files: `crowd_objects` = positions in `objects` (0-based) of crowd regions, `[]` when none; "
              "`segmentation_rle` = {position: COCO RLE with compressed counts} for objects whose segmentation "
              "is a mask"),
}


def features(class_names: Sequence[str]) -> Features:
    """The Features of a corpus whose finest image-level classes are `class_names`. (`datasets` is imported
    here, not with this module: a build never needs it, see `cytohub.encode.storage_schema`.)"""
    from datasets import ClassLabel, Features, Image, Json, List, Value

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
        "extra": Json(),
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
    """True when `feats` is exactly schema v1 with these class names."""
    return feats == features(class_names)
