"""cytohub.to_detection / cytohub.to_segmentation: the Hugging Face task layouts, checked value by value and
through `transformers`' image processors (COCO-format detection annotations, segmentation maps)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

import cytohub
from helpers import read_rows, report


def _png(w: int, h: int, mode: str = "RGB", value: int = 0) -> bytes:
    buf = io.BytesIO()
    Image.new(mode, (w, h), value).save(buf, format="PNG")
    return buf.getvalue()


def _row(rid: str, w: int, h: int, objects: list[dict], mask: bytes | None = None) -> dict:
    empty = {"bbox": None, "polygon": None, "point": None}
    return {"id": rid, "image": {"bytes": _png(w, h), "path": None}, "focal_stack": [], "z_um": [], "label": -1,
            "label_path": [], "harmonized": None, "objects": [{**empty, **o} for o in objects],
            "mask": None if mask is None else {"bytes": mask, "path": None}, "mpp": None, "fov_center_um": None,
            "group": {"patient_id": None, "slide_id": None, "fov_id": None}, "source_path": rid, "extra": None}


@pytest.fixture(scope="module")
def handmade():
    """A two-row cytohub Dataset whose every object kind is known: bbox only, polygon only, point only,
    bbox with a polygon; one row has a mask."""
    from datasets import Dataset

    from cytohub.schema import features

    rows = [
        _row("a", 40, 30, [
            {"category": "nucleus", "bbox": [1.0, 2.0, 10.0, 5.0]},
            {"category": "cell", "polygon": [4.0, 4.0, 12.0, 4.0, 12.0, 10.0]},  # right triangle, legs 8 x 6
            {"category": "cell", "point": [7.0, 7.0]},
            {"category": "nucleus", "bbox": [20.0, 10.0, 4.0, 4.0],
             "polygon": [20.0, 10.0, 24.0, 10.0, 24.0, 14.0, 20.0, 14.0]},
        ], mask=_png(40, 30, "L", 2)),
        _row("b", 16, 8, [{"category": "cell", "point": [1.0, 1.0]}]),
    ]
    return Dataset.from_list(rows, features=features(["x"]))


def test_to_detection_known_values(handmade):
    for ds in (handmade, handmade.to_iterable_dataset()):
        det = cytohub.to_detection(ds, ["cell", "nucleus"])
        assert type(det) is type(ds)
        a, b = list(det)
        assert (a["image_id"], a["width"], a["height"], a["id"], a["points_skipped"]) == (0, 40, 30, "a", 1)
        assert a["image"].size == (40, 30)
        assert a["objects"] == {
            "id": [0, 1, 3],  # image_id * 65536 + index in the row: the skipped point keeps its index
            "area": [50.0, 24.0, 16.0],  # box w*h; triangle 8*6/2 (shoelace); the polygon's area wins
            "bbox": [[1.0, 2.0, 10.0, 5.0], [4.0, 4.0, 8.0, 6.0], [20.0, 10.0, 4.0, 4.0]],
            "category": [1, 0, 1],
        }
        assert (b["image_id"], b["width"], b["height"], b["points_skipped"]) == (1, 16, 8, 1)
        assert b["objects"] == {"id": [], "area": [], "bbox": [], "category": []}
        assert det.features["objects"]["category"].feature.names == ["cell", "nucleus"]
        assert det.features == cytohub.tasks.detection_features(["cell", "nucleus"])


def test_to_detection_errors(handmade):
    with pytest.raises(ValueError, match="'cell' is not among the categories"):
        list(cytohub.to_detection(handmade, ["nucleus"]))
    with pytest.raises(ValueError, match="pass categories="):
        cytohub.to_detection(handmade.to_iterable_dataset())
    assert cytohub.to_detection(handmade).features["objects"]["category"].feature.names == ["cell", "nucleus"]
    with pytest.raises(ValueError, match="declares no object categories"):
        cytohub.to_detection(handmade, "herlev")


@pytest.mark.parametrize("name", ["ccagt", "apcdata"])
def test_to_detection_of_builds_matches_the_objects(built, name):
    """Every object with an extent becomes one box of its category; points are counted, never boxed;
    a Dataset and its streamed form give the same rows."""
    from datasets import load_dataset

    from cytohub import registry

    folder = built(name)
    categories = [lab.name for lab in registry.get(name).object_labels]
    points = rows = 0
    for split in report(folder)["splits"]:
        source = read_rows(folder, split, columns=["id", "objects"])
        arrow = list(cytohub.to_detection(load_dataset(str(folder), split=split), name))
        streamed = list(cytohub.to_detection(load_dataset(str(folder), split=split, streaming=True), name))
        assert len(arrow) == len(streamed) == len(source)
        for got, again, src in zip(arrow, streamed, source, strict=True):
            assert got["id"] == again["id"] == src["id"]
            assert got["objects"] == again["objects"] and got["points_skipped"] == again["points_skipped"]
            boxed = [o for o in src["objects"] if o["bbox"] is not None or o["polygon"] is not None]
            assert [categories[c] for c in got["objects"]["category"]] == [o["category"] for o in boxed]
            assert got["objects"]["bbox"] == [o["bbox"] for o in boxed]  # these corpora give every box
            assert got["points_skipped"] == len(src["objects"]) - len(boxed)
            assert (got["width"], got["height"]) == got["image"].size
            points += got["points_skipped"]
            rows += 1
    assert rows == report(folder)["num_rows"]
    assert points == (13 if name == "apcdata" else 0)


def test_detection_rows_go_through_the_transformers_image_processor(built):
    """The Hugging Face object-detection guide's recipe, unchanged: COCO-format annotations from `objects`
    into DetrImageProcessor; its normalised (cx, cy, w, h) boxes must be our boxes."""
    transformers = pytest.importorskip("transformers")
    from datasets import concatenate_datasets, load_dataset

    folder = built("ccagt")
    streams = load_dataset(str(folder), streaming=True)
    det = cytohub.to_detection(concatenate_datasets([streams[s] for s in sorted(streams)]), "ccagt")
    processor = transformers.DetrImageProcessor(do_resize=False, do_normalize=False, do_pad=False,
                                                do_convert_annotations=True)  # boxes -> relative (cx, cy, w, h)
    checked = 0
    for row in det:
        o = row["objects"]
        annotations = {"image_id": row["image_id"], "annotations": [
            {"image_id": row["image_id"], "category_id": c, "iscrowd": 0, "area": a, "bbox": list(b)}
            for c, a, b in zip(o["category"], o["area"], o["bbox"], strict=True)]}
        out = processor(images=row["image"].convert("RGB"), annotations=annotations, return_tensors=None)
        labels = out["labels"][0]
        w, h = row["width"], row["height"]
        assert labels["orig_size"].tolist() == [h, w] and labels["image_id"].tolist() == [row["image_id"]]
        assert labels["class_labels"].tolist() == o["category"]
        expected = [[(x + bw / 2) / w, (y + bh / 2) / h, bw / w, bh / h] for x, y, bw, bh in o["bbox"]]
        np.testing.assert_allclose(labels["boxes"], np.asarray(expected, np.float32).reshape(-1, 4), atol=1e-5)
        np.testing.assert_allclose(labels["area"], o["area"], rtol=1e-5)
        checked += len(o["category"])
    assert checked == sum(sum(s["objects"].values()) for s in report(folder)["splits"].values()) == 174


def test_to_segmentation_keeps_mask_bytes_and_leaves_out_rows_without(handmade, built):
    from datasets import load_dataset

    for ds in (handmade, handmade.to_iterable_dataset()):
        seg = list(cytohub.to_segmentation(ds))
        assert [(r["id"], r["image_id"], r["width"], r["height"]) for r in seg] == [("a", 0, 40, 30)]
        assert np.asarray(seg[0]["annotation"]).tolist() == [[2] * 40] * 30
    assert list(cytohub.to_segmentation(handmade).features) == ["image", "annotation", "image_id", "width",
                                                                "height", "id"]
    with pytest.raises(ValueError, match="no row of this dataset has a mask"):
        cytohub.to_segmentation(handmade.select([1]))

    folder = built("ccagt")
    source = {r["id"]: r["mask"]["bytes"] for r in read_rows(folder, columns=["id", "mask"])}
    from datasets import concatenate_datasets

    seg = cytohub.to_segmentation(concatenate_datasets(list(load_dataset(str(folder)).values())))
    assert len(seg) == len(source) == 30
    raw = seg.cast_column("annotation", seg.features["image"].__class__(decode=False))
    assert all(r["annotation"]["bytes"] == source[r["id"]] for r in raw.select_columns(["id", "annotation"]))


def test_segmentation_rows_go_through_the_transformers_image_processor(built):
    transformers = pytest.importorskip("transformers")
    from datasets import load_dataset

    seg = cytohub.to_segmentation(load_dataset(str(built("ccagt")), streaming=True))["train"]
    processor = transformers.SegformerImageProcessor(do_resize=False, do_normalize=False, do_rescale=False,
                                                     do_reduce_labels=False)
    values = set()
    for row in seg:
        out = processor(images=row["image"].convert("RGB"), segmentation_maps=row["annotation"],
                        return_tensors=None)
        mask = np.asarray(row["annotation"])
        assert out["labels"][0].shape == (row["height"], row["width"]) == mask.shape
        assert (out["labels"][0] == mask).all()
        values |= set(np.unique(mask).tolist())
    assert len(values) > 2  # background and several categories
