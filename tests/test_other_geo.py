"""other_geo corpora (cellpose, cell-instance, comparison-detector, dsb2018, ufsc-ocpap): synthetic layouts,
coordinate conversions checked on hand-made known points/boxes/masks, run-length codecs, and bad input."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cytohub import registry
from cytohub.errors import CytohubError, RawLayoutError
from cytohub.formats import masks
from cytohub.raw import RawTree
from helpers import extract_all, read_rows, report


def rows_of(name: str, raw: Path) -> list[dict]:
    with RawTree(raw) as tree:
        return list(registry.get(name).examples(tree))


def png(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "PNG")
    return buf.getvalue()


def write(path: Path, data: bytes | str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        path.write_text(data, encoding="utf-8")
    else:
        path.write_bytes(data)
    return path


# =========================================================================================== cellpose
def test_cellpose_synthetic_layout(synth_raw):
    raw = synth_raw("cellpose")
    assert sorted(p.name for p in raw.iterdir() if not p.name.startswith(".")) == ["test.zip", "train.zip"]
    names = zipfile.ZipFile(raw / "train.zip").namelist()
    assert names[:2] == ["train/000_img.png", "train/000_masks.png"] and len(names) == 8
    with zipfile.ZipFile(raw / "test.zip") as z:
        mask = Image.open(io.BytesIO(z.read("test/001_masks.png")))
        assert mask.mode in ("I;16", "I") and np.asarray(mask).max() >= 1


def test_cellpose_rows(built, synth_raw):
    folder = built("cellpose")
    rep = report(folder)
    assert {k: v["num_examples"] for k, v in rep["splits"].items()} == {"train": 4, "test": 2}
    rows = read_rows(folder)
    with zipfile.ZipFile(synth_raw("cellpose") / "train.zip") as z:
        raw_mask = z.read("train/002_masks.png")
    r = next(r for r in rows if r["id"] == "train-002")
    assert r["mask"]["bytes"] == raw_mask  # passed through untouched
    values = np.unique(np.asarray(Image.open(io.BytesIO(raw_mask))))
    assert len(r["objects"]) == len(values[values > 0]) == len(json.loads(r["extra"])["instance_values"])
    assert all(o["category"] == "cell" and len(o["polygon"]) >= 8 for o in r["objects"])
    assert r["label"] == -1 and r["harmonized"] is None


def test_cellpose_known_instance(tmp_path):
    lab = np.zeros((8, 10), np.uint16)
    lab[2:5, 3:7] = 7  # rows 2-4, columns 3-6
    write(tmp_path / "train" / "000_img.png", png(np.full((8, 10, 3), 200, np.uint8)))
    write(tmp_path / "train" / "000_masks.png", masks.png16(lab))
    [row] = rows_of("cellpose", tmp_path)
    assert row["id"] == "train-000" and row["split"] == "train"
    assert row["objects"] == [{"category": "cell", "bbox": [3.0, 2.0, 4.0, 3.0],
                               "polygon": [3.0, 2.0, 7.0, 2.0, 7.0, 5.0, 3.0, 5.0]}]
    assert row["extra"] == {"instance_values": [7]}


def test_cellpose_bad_input(tmp_path):
    write(tmp_path / "test" / "004_img.png", png(np.zeros((8, 10, 3), np.uint8)))
    with pytest.raises(RawLayoutError, match=r"test/004_img.png: no matching 004_masks.png"):
        rows_of("cellpose", tmp_path)
    write(tmp_path / "test" / "004_masks.png", masks.png16(np.zeros((9, 10), np.uint16)))
    with pytest.raises(RawLayoutError, match=r"004_masks.png: mask is 10x9 but 004_img.png is 10x8"):
        rows_of("cellpose", tmp_path)
    write(tmp_path / "elsewhere" / "001_img.png", png(np.zeros((8, 10, 3), np.uint8)))
    with pytest.raises(RawLayoutError, match="elsewhere/001_img.png: not inside a train/ or test/ folder"):
        rows_of("cellpose", tmp_path)


# =========================================================================================== cell-instance (CISD)
def test_cisd_synthetic_layout(synth_raw):
    names = zipfile.ZipFile(synth_raw("cell-instance") / "CISD.zip").namelist()
    assert names[0] == "CISD/CISD.json"
    stems = sorted({n.split("/")[2] for n in names if n.startswith("CISD/stack/")})
    assert len(stems) == 3
    for stem in stems:
        assert f"CISD/center_slice/{stem}.png" in names and f"CISD/edf/{stem}.png" in names
        assert [n.rsplit("/", 1)[1] for n in names if n.startswith(f"CISD/stack/{stem}/")] == \
            [f"slice_{z:02d}.png" for z in range(21)]
    doc = json.loads(zipfile.ZipFile(synth_raw("cell-instance") / "CISD.zip").read("CISD/CISD.json"))
    assert [a["set"] for a in doc["assets"]] == ["train", "train", "test"]
    obj = doc["assets"][0]["annotations"][0]["data"][0]
    assert set(obj) == {"category_name", "bbox", "mask"} and set(obj["mask"]) == {"counts", "size"}


def test_cisd_rows(built):
    folder = built("cell-instance")
    rep = report(folder)
    assert {k: v["num_examples"] for k, v in rep["splits"].items()} == {"train": 2, "test": 1}
    rows = read_rows(folder)
    for r in rows:
        assert len(r["focal_stack"]) == 21 and r["z_um"] is None  # spacing unpublished: no invented distances
        assert r["image"]["bytes"] == r["focal_stack"][10]["bytes"]  # centre slice == plane 10 (synthetic)
        extra = json.loads(r["extra"])
        assert "not micrometres" in extra["z_unit"] and extra["z_index"] == list(range(-10, 11))
        assert len(extra["categories"]) == len(r["objects"]) > 0
        for obj, native in zip(r["objects"], extra["categories"], strict=True):
            assert obj["category"] == (native if native in ("NEUTROPHIL", "RED_BLOOD_CELL") else "OTHER")
            x, y, w, h = obj["bbox"]
            xs, ys = obj["polygon"][::2], obj["polygon"][1::2]
            assert (min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)) == (x, y, w, h)
    first = json.loads(next(r for r in rows if r["extra"] and json.loads(r["extra"])["asset_id"] == 0)["extra"])
    assert first["other_annotations"][0]["annotator"] == "annotator2@example.org"
    skipped = {f["path"]: f["reason"] for f in rep["files"]["list"] if f["status"] == "skipped"}
    assert sum("/edf/" in p and "extended-depth-of-field" in why for p, why in skipped.items()) == 3


def cisd_raw(root: Path, counts: list[int], size=(4, 5), bbox=(1, 2, 2, 4), planes: int | None = 21,
             category: str = "UROTHELIAL_CELL") -> Path:
    name = "a_pap3_001.png"
    doc = {"info": {}, "categories": [category], "assets": [
        {"asset_id": 7, "file_name": name, "set": "test", "annotations": [
            {"annotation_id": 0, "annotator": "x", "time_stamp": "2021-01-01 00:00:00",
             "data": [{"category_name": category, "bbox": list(bbox), "mask": {"counts": counts, "size": [4, 5]}}]}]}]}
    write(root / "CISD" / "CISD.json", json.dumps(doc))
    img = png(np.zeros((*size, 3), np.uint8))
    write(root / "CISD" / "center_slice" / name, img)
    for z in range(planes or 0):
        write(root / "CISD" / "stack" / "a_pap3_001" / f"z{z:02d}.png", img)
    return root


def test_cisd_known_mask_and_box(tmp_path):
    # 4 x 5 image; the cell covers rows 1-2, columns 2-4:   row-major runs 0x7, 1x3, 0x2, 1x3, 0x5
    [row] = rows_of("cell-instance", cisd_raw(tmp_path, [7, 3, 2, 3, 5]))
    assert row["id"] == "a_pap3_001" and row["split"] == "test" and row["label"] is None
    # JSON bbox [row_min=1, col_min=2, row_max=2, col_max=4] (inclusive) -> [x=2, y=1, w=3, h=2]
    assert row["objects"] == [{"category": "OTHER", "bbox": [2, 1, 3, 2],
                               "polygon": [2.0, 1.0, 5.0, 1.0, 5.0, 3.0, 2.0, 3.0]}]
    assert row["extra"]["categories"] == ["UROTHELIAL_CELL"] and row["extra"]["asset_id"] == 7
    assert [p.name for p in row["focal_stack"]] == [f"z{z:02d}.png" for z in range(21)]


def test_cisd_multipage_tiff_stack(tmp_path):
    raw = cisd_raw(tmp_path, [7, 3, 2, 3, 5], planes=None, category="NEUTROPHIL")
    pages = [Image.fromarray(np.full((4, 5), 10 * z, np.uint8)) for z in range(21)]
    buf = io.BytesIO()
    pages[0].save(buf, "TIFF", save_all=True, append_images=pages[1:])
    write(raw / "CISD" / "stack" / "a_pap3_001.tif", buf.getvalue())
    [row] = rows_of("cell-instance", raw)
    assert row["objects"][0]["category"] == "NEUTROPHIL" and len(row["focal_stack"]) == 21
    assert np.asarray(Image.open(io.BytesIO(row["focal_stack"][20]["bytes"]))).max() == 200


def test_cisd_bad_input(tmp_path):
    with pytest.raises(RawLayoutError, match=r"CISD.json: asset 'a_pap3_001.png', object #0: bad mask run "
                                             r"lengths \(run lengths sum to 19"):
        rows_of("cell-instance", cisd_raw(tmp_path / "a", [7, 3, 2, 3, 4]))
    with pytest.raises(RawLayoutError, match=r"mask size \[4, 5\] differs from the image's \[h, w\] = \[5, 5\]"):
        rows_of("cell-instance", cisd_raw(tmp_path / "b", [7, 3, 2, 3, 5], size=(5, 5)))
    with pytest.raises(RawLayoutError, match=r"CISD/stack/a_pap3_001/: 20 focal planes, expected 21"):
        rows_of("cell-instance", cisd_raw(tmp_path / "c", [7, 3, 2, 3, 5], planes=20))
    (tmp_path / "d").mkdir()
    with pytest.raises(CytohubError, match="no file named 'CISD.json'"):
        rows_of("cell-instance", tmp_path / "d")


# =========================================================================================== comparison-detector
def test_comparison_detector_synthetic_layout(synth_raw):
    names = zipfile.ZipFile(synth_raw("comparison-detector") / "ComparisonDetectorDataset.zip").namelist()
    assert "ComparisonDetectorDataset/train.json" in names and "ComparisonDetectorDataset/test.json" in names
    assert "ComparisonDetectorDataset/train/00001.bmp" in names and "ComparisonDetectorDataset/test/00005.bmp" in names
    doc = json.loads(zipfile.ZipFile(synth_raw("comparison-detector") / "ComparisonDetectorDataset.zip")
                     .read("ComparisonDetectorDataset/train.json"))
    assert [c["name"] for c in doc["categories"]] == ["ascus", "asch", "lsil", "hsil", "scc", "agc", "trichomonas",
                                                       "candida", "flora", "herps", "actinomyces"]


def test_comparison_detector_rows(built):
    folder = built("comparison-detector")
    assert {k: v["num_examples"] for k, v in report(folder)["splits"].items()} == {"train": 4, "test": 2}
    rows = {r["id"]: r for r in read_rows(folder)}
    first = json.loads(rows["train-00001"]["extra"])
    assert [b["bbox"][2] for b in first["degenerate_boxes"]] == [1.0]  # the 1-pixel-wide box is not an object
    assert rows["train-00004"]["objects"] == [] and rows["test-00006"]["objects"] == []
    assert all(r["label"] == -1 for r in rows.values())
    cls = registry.builders()["comparison-detector"]
    assert {lab.name: lab.harmonized for lab in cls.object_labels}["flora"] == "NILM/organism/bacterial-vaginosis"
    assert {lab.name: lab.harmonized for lab in cls.object_labels}["asch"] == "ASC-H"


def coco(images, annotations, names=("ascus", "hsil")) -> str:
    return json.dumps({"images": images, "annotations": annotations,
                       "categories": [{"id": k + 1, "name": n} for k, n in enumerate(names)]})


def test_comparison_detector_known_boxes(tmp_path):
    img = png(np.zeros((20, 30, 3), np.uint8))  # 30 wide, 20 high
    write(tmp_path / "images" / "00404.png", img)
    write(tmp_path / "annotations" / "train.json", coco(
        [{"id": 9, "file_name": "00404.png", "width": 30, "height": 20}],
        [{"id": 1, "image_id": 9, "bbox": [10, 5, 12, 8], "category_id": 2},
         {"id": 2, "image_id": 9, "bbox": [-3, 2, 10, 5], "category_id": 1},
         {"id": 3, "image_id": 9, "bbox": [4, 4, 6, 1], "category_id": 1}]))
    write(tmp_path / "annotations" / "test.json", coco([], []))
    [row] = rows_of("comparison-detector", tmp_path)
    assert row["id"] == "train-00404" and row["split"] == "train"
    assert row["objects"] == [{"category": "hsil", "bbox": [10.0, 5.0, 12.0, 8.0]},
                              {"category": "ascus", "bbox": [0.0, 2.0, 7.0, 5.0]}]  # clipped at x = 0
    assert row["extra"]["clipped_boxes"] == 1
    assert row["extra"]["degenerate_boxes"] == [{"category": "ascus", "bbox": [4.0, 4.0, 6.0, 1.0], "id": 3}]


def test_comparison_detector_bad_input(tmp_path):
    write(tmp_path / "train" / "1.bmp", png(np.zeros((20, 30, 3), np.uint8)))
    write(tmp_path / "test.json", coco([], []))
    write(tmp_path / "train.json", coco([{"id": 1, "file_name": "1.bmp", "width": 30, "height": 20}],
                                        [{"id": 1, "image_id": 1, "bbox": [1, 1, 5, 5], "category_id": 1}],
                                        names=("ascus_typo",)))
    with pytest.raises(RawLayoutError, match=r"train.json: categories\[0\]: unknown category 'ascus_typo'"):
        rows_of("comparison-detector", tmp_path)
    write(tmp_path / "train.json", coco([{"id": 1, "file_name": "1.bmp", "width": 31, "height": 20}], []))
    with pytest.raises(RawLayoutError, match="train/1.bmp: image is 30x20 but train.json says 31x20"):
        rows_of("comparison-detector", tmp_path)
    write(tmp_path / "train.json", coco([{"id": 1, "file_name": "2.bmp", "width": 30, "height": 20}], []))
    with pytest.raises(RawLayoutError, match="train.json: image '2.bmp' not found"):
        rows_of("comparison-detector", tmp_path)
    (tmp_path / "test.json").unlink()
    with pytest.raises(RawLayoutError, match="expected exactly one test.json"):
        rows_of("comparison-detector", tmp_path)


def test_comparison_detector_bad_annotations_name_the_annotation_file(tmp_path):
    """A NaN box became a full-image box through clipping, and a repeated image id gave one image the other's
    boxes; both now stop the build at the annotation record."""
    write(tmp_path / "train" / "1.bmp", png(np.zeros((20, 30, 3), np.uint8)))
    write(tmp_path / "train" / "2.bmp", png(np.zeros((20, 30, 3), np.uint8)))
    write(tmp_path / "test.json", coco([], []))
    images = [{"id": 1, "file_name": "1.bmp", "width": 30, "height": 20}]
    write(tmp_path / "train.json", coco(images, [{"id": 17, "image_id": 1, "bbox": [1, 1, float("nan"), 5],
                                                  "category_id": 1}]))
    with pytest.raises(RawLayoutError, match=r"^train.json: annotation id 17 \(image 1\): bbox has NaN"):
        rows_of("comparison-detector", tmp_path)
    write(tmp_path / "train.json", coco(images + [{"id": 1, "file_name": "2.bmp", "width": 30, "height": 20}],
                                        [{"id": 5, "image_id": 1, "bbox": [1, 1, 5, 5], "category_id": 1}]))
    with pytest.raises(RawLayoutError, match=r"train.json: image id 1: the id is used by two images"):
        rows_of("comparison-detector", tmp_path)
    write(tmp_path / "train.json", coco(images, [{"id": 5, "image_id": 1, "bbox": [1, 1, 5, 5], "category_id": 1},
                                                 {"id": 6, "image_id": 1, "bbox": [2, 2, 9, 9], "category_id": 2,
                                                  "iscrowd": 1}]))
    (row,) = rows_of("comparison-detector", tmp_path)
    assert row["objects"][1] == {"category": "hsil", "bbox": [2.0, 2.0, 9.0, 9.0]}
    assert row["extra"]["crowd_objects"] == [1]  # the crowd region stays distinguishable


# =========================================================================================== dsb2018
def test_dsb_synthetic_layout(synth_raw):
    raw = synth_raw("dsb2018")
    assert sorted(p.name for p in raw.iterdir() if not p.name.startswith(".")) == [
        "stage1_sample_submission.csv.zip", "stage1_solution.csv.zip", "stage1_test.zip", "stage1_train.zip",
        "stage1_train_labels.csv.zip", "stage2_test_final.zip"]
    names = zipfile.ZipFile(raw / "stage1_train.zip").namelist()
    image_id = names[0].split("/")[0]
    assert names[0] == f"{image_id}/images/{image_id}.png" and names[1].startswith(f"{image_id}/masks/")
    with zipfile.ZipFile(raw / "stage1_train.zip") as zf:  # the real stage-1 PNGs mix RGBA and RGB
        modes = [Image.open(io.BytesIO(zf.read(n))).mode for n in names if "/images/" in n]
    assert modes == ["RGB", "RGBA", "RGBA", "RGB"]
    text = zipfile.ZipFile(raw / "stage1_train_labels.csv.zip").read("stage1_train_labels.csv").decode()
    assert text.startswith("ImageId,EncodedPixels\n")


def test_dsb_rows(built):
    folder = built("dsb2018")
    assert {k: v["num_examples"] for k, v in report(folder)["splits"].items()} == {"train": 4, "test": 2}
    for r in read_rows(folder):
        extra = json.loads(r["extra"])
        label_map = np.asarray(Image.open(io.BytesIO(r["mask"]["bytes"])))
        image = Image.open(io.BytesIO(r["image"]["bytes"]))
        assert label_map.shape == (image.height, image.width) and label_map.max() == len(r["objects"]) > 0
        for k, obj in enumerate(r["objects"], start=1):  # bbox of value k in the composed map (no overlap here)
            if extra["overlap_pixels"] == 0:
                assert obj["bbox"] == masks.mask_bbox(label_map == k)
        if "mask_ids" in extra:  # train rows
            assert len(extra["mask_ids"]) == len(r["objects"])
        else:
            assert extra["usage"] in (["Public"], ["Private"])
    test_rows = read_rows(folder, "test")
    assert len(test_rows) == 2 and all("usage" in json.loads(r["extra"]) for r in test_rows)


def dsb_raw(root: Path, rle: str = "5 2", solution: bool = False) -> Path:
    image_id = "abc123"
    write(root / "stage1_train" / image_id / "images" / f"{image_id}.png", png(np.zeros((3, 2, 4), np.uint8)))
    m = np.zeros((3, 2), np.uint8)
    m[1:3, 1] = 255  # rows 1-2 of column 1 -> column-major 1-based pixels 5 and 6
    write(root / "stage1_train" / image_id / "masks" / "m1.png", png(m))
    write(root / "stage1_train_labels.csv", f"ImageId,EncodedPixels\n{image_id},{rle}\n")
    write(root / "stage1_test" / "t1" / "images" / "t1.png", png(np.zeros((3, 2, 4), np.uint8)))
    if solution:
        write(root / "stage1_solution.csv", "ImageId,EncodedPixels,Height,Width,Usage\nt1,1 3,3,2,Private\n")
    return root


def test_dsb_known_mask_and_run_lengths(tmp_path):
    train, test = rows_of("dsb2018", dsb_raw(tmp_path))
    assert train["id"] == "abc123" and train["split"] == "train"
    assert train["objects"] == [{"category": "nucleus", "bbox": [1.0, 1.0, 1.0, 2.0],
                                 "polygon": [1.0, 1.0, 2.0, 1.0, 2.0, 3.0, 1.0, 3.0]}]
    assert np.asarray(Image.open(io.BytesIO(train["mask"]["bytes"]))).tolist() == [[0, 0], [0, 1], [0, 1]]
    assert test["id"] == "t1" and "objects" not in test and "mask" not in test  # no solution file: no annotations
    _, test = rows_of("dsb2018", dsb_raw(tmp_path / "s", solution=True))
    assert test["objects"] == [{"category": "nucleus", "bbox": [0.0, 0.0, 1.0, 3.0],  # '1 3' = the first column
                                "polygon": [0.0, 0.0, 1.0, 0.0, 1.0, 3.0, 0.0, 3.0]}]
    assert test["extra"]["usage"] == ["Private"]


def test_dsb_bad_input(tmp_path):
    with pytest.raises(RawLayoutError, match=r"stage1_train_labels.csv: the run lengths of abc123 \(1 masks\) differ "
                                             r"from the PNG masks in stage1_train/abc123/masks/"):
        rows_of("dsb2018", dsb_raw(tmp_path / "a", rle="4 2"))
    raw = dsb_raw(tmp_path / "b")
    write(raw / "stage1_train" / "abc123" / "masks" / "m2.png", png(np.zeros((4, 2), np.uint8)))
    with pytest.raises(RawLayoutError, match=r"masks/m2.png: mask is 2x4, its image is 2x3"):
        rows_of("dsb2018", raw)
    raw = dsb_raw(tmp_path / "c")
    write(raw / "stage1_train_labels.csv", "ImageId,Pixels\nabc123,5 2\n")
    with pytest.raises(RawLayoutError, match=r"stage1_train_labels.csv: header 'ImageId,Pixels' lacks EncodedPixels"):
        rows_of("dsb2018", raw)


# =========================================================================================== ufsc-ocpap
def test_ocpap_synthetic_layout(synth_raw):
    names = zipfile.ZipFile(synth_raw("ufsc-ocpap") / "dr7ydy9xbk-2.zip").namelist()
    assert len(names) == 3 * 5 * 2
    assert "dr7ydy9xbk-2/nuclei_images/val/out_of_focus/00002.png" in names
    assert {n.split("/")[2] for n in names} == {"train", "val", "test"}


def test_ocpap_full_counts_are_the_documented_ones():
    from cytohub.builders import ufsc_ocpap

    totals = {s: sum(c.values()) for s, c in ufsc_ocpap.crop_counts("full").items()}
    assert totals == {"train": 46359, "val": 9116, "test": 10046}


def test_ocpap_rows(built):
    folder = built("ufsc-ocpap")
    rep = report(folder)
    assert {k: v["num_examples"] for k, v in rep["splits"].items()} == {"train": 10, "validation": 10, "test": 10}
    names = registry.get("ufsc-ocpap").class_names()
    rows = read_rows(folder, "validation")
    r = next(r for r in rows if r["id"] == "validation-reactive-00001")
    assert names[r["label"]] == "reactive" and r["label_path"] == ["reactive"] and r["harmonized"] is None
    assert json.loads(r["extra"]) == {"split_folder": "val", "class_folder": "reactive"}
    assert r["objects"] == [] and r["mask"] is None


def test_ocpap_case_and_unknown_class_folders(tmp_path):
    crop = png(np.full((40, 42, 3), 180, np.uint8))
    write(tmp_path / "nuclei_images" / "Train" / "Abnormal" / "a.png", crop)
    write(tmp_path / "nuclei_images" / "test" / "binucleated" / "b.png", crop)
    with RawTree(tmp_path) as tree:
        rows = list(registry.get("ufsc-ocpap").examples(tree))
        assert [(r["id"], r["label"], r["split"]) for r in rows] == [("train-abnormal-a", "abnormal", "train")]
        assert "binucleated" in tree.skipped["nuclei_images/test/binucleated/b.png"]
    (tmp_path / "nuclei_images" / "Train" / "Abnormal" / "a.png").unlink()
    with pytest.raises(RawLayoutError, match="no UFSC OCPap nucleus crops found"):
        rows_of("ufsc-ocpap", tmp_path)


# ============================================================================= archive, folder, inner folder
@pytest.mark.parametrize("name,archive,inner", [
    ("cell-instance", "CISD.zip", "CISD"),
    ("comparison-detector", "ComparisonDetectorDataset.zip", "ComparisonDetectorDataset"),
    ("ufsc-ocpap", "dr7ydy9xbk-2.zip", "dr7ydy9xbk-2/nuclei_images"),
])
def test_zip_extracted_and_inner_folder_give_the_same_rows(name, archive, inner, synth_raw, tmp_path):
    def ids(path: Path) -> list[tuple[str, str | None]]:
        return [(r["id"], r.get("split")) for r in rows_of(name, path)]

    from_zip = ids(synth_raw(name) / archive)
    extracted = extract_all(synth_raw(name), tmp_path / "x")
    assert from_zip == ids(synth_raw(name)) == ids(extracted) == ids(extracted / inner)
    assert len(from_zip) > 0


def test_dsb_test_images_with_png_masks(tmp_path):
    raw = dsb_raw(tmp_path)
    m = np.zeros((3, 2), np.uint8)
    m[0, :] = 1
    write(raw / "stage1_test" / "t1" / "masks" / "q.png", png(m))
    _, test = rows_of("dsb2018", raw)
    assert test["objects"][0]["bbox"] == [0.0, 0.0, 2.0, 1.0] and test["extra"]["mask_ids"] == ["q"]
