"""A cytohub dataset in the layouts of the Hugging Face task guides: object detection (`to_detection`) and
semantic segmentation (`to_segmentation`), so detection and segmentation code written for the Hub's
datasets (e.g. `transformers`' `DetrImageProcessor` with COCO-format annotations, `SegformerImageProcessor`)
runs on a cytohub corpus without an adapter.

Both work on `datasets.Dataset` and `datasets.IterableDataset` (and on each split of a `DatasetDict` /
`IterableDatasetDict`). Image bytes are passed through untouched (never decoded and re-encoded); width and
height are read from each image's header. For a `Dataset` the new columns are computed in one pass that reads
only image headers and `objects`, and the image column is reused without copying; an `IterableDataset` is
converted lazily, row by row.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from datasets import (
    ClassLabel,
    Dataset,
    DatasetDict,
    Features,
    IterableDataset,
    IterableDatasetDict,
    List,
    Value,
)
from datasets import Image as ImageFeature

from cytohub import images
from cytohub.schema import FIELDS

OBJECT_ID_STRIDE = 2**16  # objects.id = image_id * OBJECT_ID_STRIDE + index of the object in its image
BATCH = 64


def detection_features(categories: Sequence[str]) -> Features:
    """The Features of `to_detection`'s output (the layout of the Hub's detection datasets, e.g. cppe-5)."""
    return Features({
        "image": ImageFeature(),
        "image_id": Value("int64"),
        "width": Value("int32"),
        "height": Value("int32"),
        "objects": {
            "id": List(Value("int64")),
            "area": List(Value("float32")),
            "bbox": List(List(Value("float32"), length=4)),
            "category": List(ClassLabel(names=list(categories))),
        },
        "id": Value("string"),
        "points_skipped": Value("int32"),
    })


def segmentation_features() -> Features:
    """The Features of `to_segmentation`'s output (the layout of the Hub's semantic segmentation datasets,
    e.g. scene_parse_150: `image` and its `annotation` map)."""
    return Features({
        "image": ImageFeature(),
        "annotation": ImageFeature(),
        "image_id": Value("int64"),
        "width": Value("int32"),
        "height": Value("int32"),
        "id": Value("string"),
    })


def to_detection(ds, categories: Sequence[str] | str | None = None):
    """`ds` (a cytohub dataset) in the Hugging Face object-detection layout:

    `image` (the row's image, bytes untouched), `image_id` (int64: the row's position in `ds`; for an
    IterableDataset its position in iteration order), `width`, `height` (pixels, from the image header),
    `objects` = {`id`: [int64], `area`: [float32], `bbox`: [[x, y, w, h], ...], `category`: [ClassLabel
    ids]}, plus cytohub's string `id` and `points_skipped` (int32).

    * `bbox` is COCO's [x, y, w, h] in pixels, origin top-left (cytohub's own convention). An object with a
      `bbox` keeps it; an object with only a `polygon` gets the polygon's tight box (min/max of its
      vertices); an object with only a `point` has no extent, so it is left out (no box of an invented size
      is made) and counted in the row's `points_skipped`.
    * `area` is the polygon's area (shoelace formula) when the object has a polygon, else the box's w * h,
      in pixels² (COCO's meaning of `area`).
    * `objects.id` is `image_id * 65536 + index of the object in its row`: unique in the dataset,
      deterministic, the same for a Dataset and its streamed form. A row with more than 65536 objects raises
      ValueError.
    * `categories`: the ClassLabel names of `objects.category`: a list of names, or a corpus name (e.g.
      "ccagt") for that builder's declared object categories in their declared order. When None, a `Dataset`
      uses the categories its rows hold (sorted); an `IterableDataset` needs them given.

    Rows without objects are kept (images without annotations). Returns the same kind of object it is given.
    Raises ValueError for a dataset that is not a cytohub build, missing `categories` for an
    IterableDataset, an object whose category is not among `categories` (when met), or an unreadable image.
    """
    if isinstance(ds, DatasetDict | IterableDatasetDict):
        return type(ds)({split: to_detection(part, categories) for split, part in ds.items()})
    _check_cytohub(ds)
    names = _categories(ds, categories)
    index = {n: i for i, n in enumerate(names)}
    feats = detection_features(names)

    def convert(batch: dict[str, list], idx: list[int]) -> dict[str, list]:
        out: dict[str, list] = {k: [] for k in feats}
        for i, rid, img, objs in zip(idx, batch["id"], batch["image"], batch["objects"], strict=True):
            w, h = _size(img, rid)
            o = {"id": [], "area": [], "bbox": [], "category": []}
            skipped = 0
            for j, obj in enumerate(objs or []):
                box, area = _box(obj)
                if box is None:
                    skipped += 1
                    continue
                if obj["category"] not in index:
                    raise ValueError(f"row {rid!r}: object category {obj['category']!r} is not among the "
                                     f"categories {names}")
                if j >= OBJECT_ID_STRIDE:
                    raise ValueError(f"row {rid!r} has more than {OBJECT_ID_STRIDE} objects")
                o["id"].append(i * OBJECT_ID_STRIDE + j)
                o["area"].append(area)
                o["bbox"].append(box)
                o["category"].append(index[obj["category"]])
            for key, value in (("image", img), ("image_id", i), ("width", w), ("height", h), ("objects", o),
                               ("id", rid), ("points_skipped", skipped)):
                out[key].append(value)
        return out

    return _convert(ds, convert, ["id", "image", "objects"], feats)


def to_segmentation(ds):
    """`ds` (a cytohub dataset) in the Hugging Face semantic-segmentation layout: `image`, `annotation` (the
    row's `mask`, bytes untouched: the label map as the source provides it, semantic or instance values as
    the corpus card describes), `image_id` (int64, the row's position in `ds`), `width`, `height` (pixels, from
    the image header) and cytohub's string `id`.

    Rows without a mask are left out (in many corpora only some rows have one); the result of a `Dataset` has
    `len(ds) - len(result)` fewer rows. Returns the same kind of object it is given. Raises ValueError for a
    dataset that is not a cytohub build, or a `Dataset` none of whose rows has a mask.
    """
    if isinstance(ds, DatasetDict | IterableDatasetDict):
        return type(ds)({split: to_segmentation(part) for split, part in ds.items()})
    _check_cytohub(ds)
    feats = segmentation_features()

    def convert(batch: dict[str, list], idx: list[int]) -> dict[str, list]:
        out: dict[str, list] = {k: [] for k in feats}
        for i, rid, img, mask in zip(idx, batch["id"], batch["image"], batch["mask"], strict=True):
            w, h = _size(img, rid)
            for key, value in (("image", img), ("annotation", mask), ("image_id", i), ("width", w),
                               ("height", h), ("id", rid)):
                out[key].append(value)
        return out

    out = _convert(ds, convert, ["id", "image", "mask"], feats, keep="annotation")
    if isinstance(out, Dataset) and len(out) == 0:
        raise ValueError("no row of this dataset has a mask; to_segmentation needs a corpus with masks "
                         "(see the card's task categories)")
    return out


# ---------------------------------------------------------------------------------------------- internals
def _check_cytohub(ds) -> None:
    if not isinstance(ds, Dataset | IterableDataset):
        raise ValueError(f"expected a datasets.Dataset or IterableDataset, got {type(ds).__name__}")
    feats = ds.features
    lacking = [k for k in FIELDS if feats is None or k not in feats]
    if lacking:
        raise ValueError(f"not a cytohub dataset (no columns {lacking}); load a cytohub build")


def _categories(ds, categories: Sequence[str] | str | None) -> list[str]:
    if isinstance(categories, str):
        from cytohub import registry

        names = [lab.name for lab in registry.get(categories).object_labels]
        if not names:
            raise ValueError(f"corpus {categories!r} declares no object categories (it has no objects)")
        return names
    if categories is not None:
        names = list(categories)
        if not names or len(set(names)) != len(names):
            raise ValueError(f"categories must be distinct names, got {names}")
        return names
    if isinstance(ds, IterableDataset):
        raise ValueError("pass categories= (a corpus name such as 'ccagt', or a list of names) for a streamed "
                         "dataset: its object categories cannot be known before reading every row")
    table = ds.select_columns(["objects"]).with_format("arrow")[:]
    found = {o["category"] for objs in table.column("objects").to_pylist() for o in objs or []}
    if not found:
        raise ValueError("this dataset has no objects; to_detection needs a corpus with objects")
    return sorted(found)


def _size(img: dict | None, rid: str) -> tuple[int, int]:
    if not img or not img.get("bytes"):
        raise ValueError(f"row {rid!r}: no image bytes")
    try:
        return images.size(img["bytes"], f"row {rid!r}")
    except Exception as exc:
        raise ValueError(str(exc)) from None


def _box(obj: dict[str, Any]) -> tuple[list[float] | None, float]:
    """([x, y, w, h], area) of an object, or (None, 0) when it has only a point."""
    poly = obj.get("polygon")
    area = None
    if poly:
        xs, ys = poly[0::2], poly[1::2]
        n = len(xs)
        area = abs(sum(xs[k] * ys[(k + 1) % n] - xs[(k + 1) % n] * ys[k] for k in range(n))) / 2
    box = obj.get("bbox")
    if box is None and poly:
        box = [min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)]
    if box is None:
        return None, 0.0
    # float32 as the features store them, so a Dataset and its streamed form give the same numbers
    return [float(np.float32(v)) for v in box], float(np.float32(box[2] * box[3] if area is None else area))


def _convert(ds, convert, columns: list[str], feats: Features, keep: str | None = None):
    """Apply the batch function `convert(batch, indices)` to `columns` of `ds` (images as undecoded
    {"bytes", "path"}), giving a dataset with `feats`; rows whose output column `keep` is None are left out."""
    raw = ds.cast_column("image", ImageFeature(decode=False))
    if "mask" in columns:
        raw = raw.cast_column("mask", ImageFeature(decode=False))
    raw = raw.select_columns(columns)
    if isinstance(ds, IterableDataset):
        # no features= in map: with them `datasets` takes the output as final and would not decode images
        out = raw.map(convert, with_indices=True, batched=True, batch_size=BATCH, remove_columns=columns)
        out = out.cast(feats)
        if keep is not None:
            out = out.filter(lambda values: [v is not None for v in values], input_columns=keep, batched=True,
                             batch_size=BATCH)
        return out
    # Dataset: compute the small columns in one pass over image headers and objects; the image and mask
    # columns of `ds` are reused as they are (no copy)
    reused = {"image": "image", "annotation": "mask"}
    cols: dict[str, list] = {k: [] for k in feats if k not in reused}
    kept: list[bool] = []
    start = 0
    for batch in raw.iter(batch_size=BATCH):
        n = len(batch["id"])
        result = convert(batch, list(range(start, start + n)))
        for k in cols:
            cols[k].extend(result[k])
        if keep is not None:
            kept.extend(v is not None for v in result[keep])
        start += n
    out = ds.select_columns([src for dst, src in reused.items() if dst in feats])
    if "annotation" in feats:
        out = out.rename_column("mask", "annotation")
    for name, values in cols.items():
        out = out.add_column(name, values, feature=feats[name])
    out = out.select_columns(list(feats))
    if keep is not None and not all(kept):
        out = out.select([i for i, k in enumerate(kept) if k])
    return out
