"""Cervical segmentation corpora (ccagt, bttfa, ccedd, cx22): synthetic layouts, coordinate conversions with
known points and boxes, rows, and bad input."""

from __future__ import annotations

import io
import json
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cytohub import registry
from cytohub.builders import bttfa, ccagt, ccedd, cx22
from cytohub.errors import IncompleteDownloadError
from cytohub.formats import labelme, matlab, rle
from cytohub.formats.masks import mask_bbox, outer_polygon
from cytohub.raw import RawTree
from helpers import build_fails, extract_all, read_rows, report, shared_real


def _build(name: str, raw: Path, out: Path, allow_partial: bool = False) -> Path:
    from cytohub.build import build

    b = registry.get(name)
    build(b, raw, out, split=None if b.splits else "train=0.6,validation=0.2,test=0.2", allow_partial=allow_partial)
    return out


def _extra(row: dict) -> dict:
    return json.loads(row["extra"]) if isinstance(row["extra"], str) else row["extra"]


def _png(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)))


# ============================================================================================ CCAgT
def test_ccagt_synthetic_layout(synth_raw, tmp_path):
    raw = synth_raw("ccagt")
    assert sorted(p.name for p in raw.iterdir() if not p.name.startswith(".")) == ["wg4bpm33hj-2.zip"]
    outer = zipfile.ZipFile(raw / "wg4bpm33hj-2.zip")
    names = outer.namelist()
    assert "wg4bpm33hj-2/CCAgT_COCO_OD.json" in names and "wg4bpm33hj-2/CCAgT.parquet.gzip" in names
    assert [n for n in names if n.startswith("wg4bpm33hj-2/images/")] == \
        [f"wg4bpm33hj-2/images/{s}.zip" for s in "ABCDEFGHIJKLMNO"]
    inner = zipfile.ZipFile(io.BytesIO(outer.read("wg4bpm33hj-2/masks/C.zip"))).namelist()
    assert len(inner) == 2 and all(n.startswith("C/C_") and n.endswith(".png") for n in inner)
    coco = json.loads(outer.read("wg4bpm33hj-2/CCAgT_COCO_OD.json"))
    assert {im["file_name"] for im in coco["images"]} >= {n[2:-4] for n in inner}
    assert all("." not in im["file_name"] for im in coco["images"])  # no extension, as published
    assert [c["name"] for c in coco["categories"]][5] == "non-viable_nucleus"


def test_ccagt_full_scale_counts_are_the_published_ones():
    # the per-slide image counts of the dataset card add up to 9,338, one less than its stated total of 9,339
    assert sum(ccagt.image_counts("full").values()) == 9338 and ccagt.CCAgT.num_images == 9339
    assert sum(n for _, _, n in ccagt.SLIDES.values()) == 63190
    assert ccagt.SLIDES["C"] == ("AC", 385, 11420)


def test_ccagt_wkt_conversion():
    (obj,) = ccagt.wkt_objects("POLYGON ((10 20, 40 20, 40 60, 10 20))", "Nucleus", "t")
    assert obj["polygon"] == [10, 20, 40, 20, 40, 60] and obj["bbox"] == [10, 20, 30, 40]
    (holed,) = ccagt.wkt_objects("POLYGON((0 0,10 0,10 10,0 10,0 0),(2 2,3 2,3 3,2 2))", "Nucleus", "t")
    assert holed["polygon"] == [0, 0, 10, 0, 10, 10, 0, 10]
    multi = ccagt.wkt_objects("MULTIPOLYGON (((0 0, 4 0, 4 4, 0 0)), ((10 10, 12.5 10, 12 13, 10 10)))", "Cluster", "t")
    assert [o["bbox"] for o in multi] == [[0, 0, 4, 4], [10, 10, 2.5, 3]]
    assert ccagt.wkt_objects("POINT (1.5 -0)", "Satellite", "t") == [{"category": "Satellite", "point": [1.5, 0.0]}]
    with pytest.raises(Exception, match="LINESTRING"):
        ccagt.wkt_objects("LINESTRING (0 0, 1 1)", "Nucleus", "t")


@pytest.mark.parametrize("spelling", ["non-viable_nucleus", "NON_VIABLE_NUCLEUS", "non-viable nucleus"])
def test_ccagt_category_spellings(spelling):
    assert ccagt.category_of(spelling, "x") == "non-viable_nucleus"


def test_ccagt_rows(built, synth_raw):
    rows = read_rows(built("ccagt"))
    assert len(rows) == 30
    coco = json.loads(zipfile.ZipFile(synth_raw("ccagt") / "wg4bpm33hj-2.zip").read(
        "wg4bpm33hj-2/CCAgT_COCO_OD.json"))
    per_image = {im["file_name"]: sum(a["image_id"] == im["id"] for a in coco["annotations"]) for im in coco["images"]}
    for r in rows:
        assert r["label"] == -1 and r["label_path"] == [] and r["harmonized"] is None
        assert r["mpp"] == pytest.approx(0.111)
        slide = r["id"].split("_")[0]
        assert r["group"] == {"patient_id": None, "slide_id": slide, "fov_id": None}
        assert _extra(r)["slide_diagnosis"] == ccagt.SLIDES[slide][0]
        assert len(r["objects"]) == per_image[r["id"]]
        assert r["source_path"].endswith(f"masks/{slide}.zip/{slide}/{r['id']}.png")
        mask = _png(r["mask"]["bytes"])
        assert mask.shape == (120, 160) and set(np.unique(mask)) <= set(range(8))
    # the first annotation of the first image, against the COCO file
    first = next(r for r in rows if r["id"] == coco["images"][0]["file_name"])
    ann = next(a for a in coco["annotations"] if a["image_id"] == coco["images"][0]["id"])
    assert first["objects"][0]["bbox"] == pytest.approx(ann["bbox"])
    assert first["objects"][0]["polygon"] == pytest.approx(ann["segmentation"][0][:-2])
    # the mask value under a Leukocyte_Nucleus polygon's centroid is 7 (the category id)
    r, nuc = next((r, o) for r in rows for o in r["objects"] if o["category"] == "Leukocyte_Nucleus")
    cx, cy = np.mean(nuc["polygon"][0::2]), np.mean(nuc["polygon"][1::2])
    assert _png(r["mask"]["bytes"])[int(cy), int(cx)] in (7, 2, 3)


def test_ccagt_parquet_fallback_gives_the_same_objects(tmp_path, built, synth_raw):
    extracted = extract_all(synth_raw("ccagt"), tmp_path / "x")
    (extracted / "wg4bpm33hj-2" / "CCAgT_COCO_OD.json").unlink()
    out = _build("ccagt", extracted, tmp_path / "out")
    a = {r["id"]: r["objects"] for r in read_rows(out, columns=["id", "objects"])}
    b = {r["id"]: r["objects"] for r in read_rows(built("ccagt"), columns=["id", "objects"])}
    assert a.keys() == b.keys()
    for k in a:
        assert [o["category"] for o in a[k]] == [o["category"] for o in b[k]]
        for oa, ob in zip(a[k], b[k], strict=True):
            assert oa["polygon"] == pytest.approx(ob["polygon"])
            assert oa["bbox"] == pytest.approx(ob["bbox"], abs=0.051)


@pytest.fixture
def ccagt_tree(tmp_path, synth_raw) -> Path:
    return extract_all(synth_raw("ccagt"), tmp_path / "raw")


def test_ccagt_report_accounts_for_the_parquet(built):
    skipped = {f["path"]: f["reason"] for f in report(built("ccagt"))["files"]["list"] if f["status"] == "skipped"}
    assert skipped["wg4bpm33hj-2.zip/wg4bpm33hj-2/CCAgT.parquet.gzip"].startswith("the same annotations as")


def test_ccagt_image_missing(tmp_path, ccagt_tree):
    victim = sorted((ccagt_tree / "B").glob("*.jpg"))[0]
    victim.unlink()
    build_fails("ccagt", ccagt_tree, tmp_path / "out", f"lists image {victim.stem!r}", f"B/{victim.name}")


def test_ccagt_unlisted_image_is_skipped_with_a_reason(tmp_path, ccagt_tree):
    extra = ccagt_tree / "B" / "B_99_-1_1.jpg"
    shutil.copy(sorted((ccagt_tree / "B").glob("*.jpg"))[0], extra)
    out = _build("ccagt", ccagt_tree, tmp_path / "out")
    skipped = {f["path"]: f["reason"] for f in report(out)["files"]["list"] if f["status"] == "skipped"}
    assert skipped["B/B_99_-1_1.jpg"] == "image not listed in CCAgT_COCO_OD.json (no annotations)"
    assert len(read_rows(out, columns=["id"])) == 30


def test_ccagt_unknown_category(tmp_path, ccagt_tree):
    path = ccagt_tree / "wg4bpm33hj-2" / "CCAgT_COCO_OD.json"
    coco = json.loads(path.read_text())
    coco["categories"][1]["name"] = "Mitosis"
    path.write_text(json.dumps(coco))
    build_fails("ccagt", ccagt_tree, tmp_path / "out", "CCAgT_COCO_OD.json", "unknown category 'Mitosis'")


def test_ccagt_crowd_regions_stay_distinguishable(tmp_path, ccagt_tree):
    path = ccagt_tree / "wg4bpm33hj-2" / "CCAgT_COCO_OD.json"
    coco = json.loads(path.read_text())
    image = coco["images"][0]
    crowd = {"id": 99_999, "image_id": image["id"], "category_id": 1, "bbox": [1, 1, 2, 2], "area": 4.0,
             "iscrowd": 1, "segmentation": {"size": [image["height"], image["width"]],
                                            "counts": [image["height"] + 1, 2, image["height"] - 2, 2,
                                                       image["height"] * (image["width"] - 2) - 3]}}
    coco["annotations"].append(crowd)
    path.write_text(json.dumps(coco))
    out = _build("ccagt", ccagt_tree, tmp_path / "out")
    row = next(r for r in read_rows(out) if r["id"] == image["file_name"])
    extra = _extra(row)
    k = len(row["objects"]) - 1
    assert extra["crowd_objects"] == [k]
    assert row["objects"][k] == {"category": "Nucleus", "bbox": [1.0, 1.0, 2.0, 2.0], "polygon": None, "point": None}
    region = np.argwhere(rle.coco_decode(extra["segmentation_rle"][str(k)]))  # rows 1-2 of columns 1-2
    assert region.tolist() == [[1, 1], [1, 2], [2, 1], [2, 2]]
    assert all(_extra(r)["crowd_objects"] == [] for r in read_rows(out) if r["id"] != image["file_name"])


def test_ccagt_bad_annotation_names_the_coco_record(tmp_path, ccagt_tree):
    path = ccagt_tree / "wg4bpm33hj-2" / "CCAgT_COCO_OD.json"
    coco = json.loads(path.read_text())
    coco["annotations"][4]["segmentation"][0].append(7.0)  # an odd number of values
    path.write_text(json.dumps(coco))
    a = coco["annotations"][4]
    build_fails("ccagt", ccagt_tree, tmp_path / "out", f"CCAgT_COCO_OD.json: annotation id {a['id']} (image "
                f"{a['image_id']}): segmentation has an odd number of values")


def test_ccagt_mask_of_the_wrong_size(tmp_path, ccagt_tree):
    victim = sorted((ccagt_tree / "D").glob("*.png"))[1]
    Image.new("L", (80, 60)).save(victim)
    build_fails("ccagt", ccagt_tree, tmp_path / "out", victim.name, "mask is (80, 60)", "(160, 120)")


def test_ccagt_no_annotation_file(tmp_path, ccagt_tree):
    (ccagt_tree / "wg4bpm33hj-2" / "CCAgT_COCO_OD.json").unlink()
    (ccagt_tree / "wg4bpm33hj-2" / "CCAgT.parquet.gzip").unlink()
    build_fails("ccagt", ccagt_tree, tmp_path / "out", "neither CCAgT_COCO_OD.json nor CCAgT.parquet.gzip")


# ============================================================================================ BTTFA
def test_bttfa_synthetic_layout(synth_raw):
    names = zipfile.ZipFile(synth_raw("bttfa") / "jks43dkjj7-1.zip").namelist()
    assert len(names) == 18
    assert "jks43dkjj7-1/dataset_forsubmit/imgbmp/1.bmp" in names
    assert "jks43dkjj7-1/dataset_forsubmit/GroundTruth/6.bmp" in names
    assert "jks43dkjj7-1/dataset_forsubmit/groundtruth_mask/3.bmp" in names


def test_bttfa_rows_pass_the_ground_truth_through(built, synth_raw):
    rows = read_rows(built("bttfa"))
    assert sorted(r["id"] for r in rows) == ["1", "2", "3", "4", "5", "6"]
    z = zipfile.ZipFile(synth_raw("bttfa") / "jks43dkjj7-1.zip")
    for r in rows:
        gt = z.read(f"jks43dkjj7-1/dataset_forsubmit/GroundTruth/{r['id']}.bmp")
        assert r["mask"]["bytes"] == gt and r["image"]["bytes"][:2] == b"BM"
        assert r["label"] == -1 and r["objects"] == [] and r["mpp"] is None
        assert _extra(r)["nucleus_pixels"] == "dark" and 0 < _extra(r)["nucleus_fraction"] < 0.5
    skipped = [f for f in report(built("bttfa"))["files"]["list"] if "groundtruth_mask/" in f["path"]]
    assert len(skipped) == 6 and all(f["status"] == "skipped" for f in skipped)


def test_bttfa_polarity_of_a_known_mask():
    m = np.full((10, 10), 255, np.uint8)
    m[2:4, 2:7] = 0  # 10 dark pixels of 100
    buf = io.BytesIO()
    Image.fromarray(m).save(buf, "BMP")
    assert bttfa.nucleus_polarity(buf.getvalue(), "x") == ("dark", pytest.approx(0.1))
    buf = io.BytesIO()
    Image.fromarray(255 - m).save(buf, "BMP")
    assert bttfa.nucleus_polarity(buf.getvalue(), "x") == ("light", pytest.approx(0.1))


@pytest.fixture
def bttfa_tree(tmp_path, synth_raw) -> Path:
    return extract_all(synth_raw("bttfa"), tmp_path / "raw") / "jks43dkjj7-1" / "dataset_forsubmit"


def test_bttfa_missing_ground_truth(tmp_path, bttfa_tree):
    (bttfa_tree / "GroundTruth" / "4.bmp").unlink()
    build_fails("bttfa", bttfa_tree, tmp_path / "out", "imgbmp/4.bmp", "no ground truth", "GroundTruth/4.bmp")


def test_bttfa_ground_truth_of_another_size(tmp_path, bttfa_tree):
    Image.new("L", (50, 40), 255).save(bttfa_tree / "GroundTruth" / "2.bmp")
    build_fails("bttfa", bttfa_tree, tmp_path / "out", "GroundTruth/2.bmp", "(50, 40)", "(128, 96)")


def test_bttfa_inner_folder_builds(tmp_path, bttfa_tree, built):
    out = _build("bttfa", bttfa_tree, tmp_path / "out")
    assert read_rows(out, columns=["id", "mask"]) == read_rows(built("bttfa"), columns=["id", "mask"])


# ============================================================================================ CCEDD
def test_ccedd_synthetic_layout(synth_raw):
    raw = synth_raw("ccedd")
    assert sorted(p.name for p in (raw / "CCEDD").iterdir()) == ["edge_correct.zip", "edge_no_correct.zip",
                                                                  "json.zip", "png.zip"]
    assert zipfile.ZipFile(raw / "CCEDD" / "png.zip").namelist()[:2] == ["png/00000.png", "png/00001.png"]
    assert zipfile.ZipFile(raw / "CCEDD" / "edge_correct.zip").namelist()[0] == "edge/00000_edge.png"
    doc = json.loads(zipfile.ZipFile(raw / "CCEDD" / "json.zip").read("json/00000.json"))
    assert {s["label"] for s in doc["shapes"]} == {"cell", "kernel"}
    assert (doc["imageWidth"], doc["imageHeight"]) == (128, 96) and doc["imageData"]


def test_ccedd_labelme_points_are_pixels_clamped_to_the_image():
    doc = {"shapes": [{"label": "cell", "points": [[-1.5, 2], [10, 2], [10, 20]]},
                      {"label": " Kernel", "points": [[3, 3], [5, 3], [4, 4.5]]},
                      {"label": "kernel", "points": [[1, 1], [2, 2]]}]}
    objects, counts = ccedd.labelme_objects(labelme.parse(doc, "a.json"), (16, 16))
    assert objects == [
        {"category": "cell", "bbox": [0.0, 2.0, 10.0, 14.0], "polygon": [0.0, 2.0, 10.0, 2.0, 10.0, 16.0]},
        {"category": "nucleus", "bbox": [3.0, 3.0, 2.0, 1.5], "polygon": [3.0, 3.0, 5.0, 3.0, 4.0, 4.5]}]
    assert counts == {"clipped_vertices": 2, "degenerate_shapes": 1}
    with pytest.raises(Exception, match="a.json: shape 0 \\(label 'cytoplasm'\\): label 'cytoplasm'; expected"):
        ccedd.labelme_objects(labelme.parse({"shapes": [{"label": "cytoplasm", "points": []}]}, "a.json"), (9, 9))


@pytest.mark.parametrize("path,variant", [
    ("CCEDD/edge_correct.zip/edge/00001_edge.png", "label_correct"),
    ("CCEDD/edge_no_correct.zip/edge/00001_edge.png", "label_no_correct"),
    ("LLPC/CCEDD/label_no_correct/edge/00001_edge.png", "label_no_correct"),
    ("CCEDD/edge/00001_edge.png", ccedd.UNNAMED),
])
def test_ccedd_edge_variant(path, variant):
    assert ccedd.edge_variant(path) == variant


def test_ccedd_rows(built, synth_raw):
    rows = read_rows(built("ccedd"))
    assert sorted(r["id"] for r in rows) == ["00000", "00001", "00002", "00003", "00004"]
    raw = synth_raw("ccedd") / "CCEDD"
    for r in rows:
        doc = json.loads(zipfile.ZipFile(raw / "json.zip").read(f"json/{r['id']}.json"))
        assert len(r["objects"]) == len(doc["shapes"])
        first = doc["shapes"][0]
        assert r["objects"][0]["category"] == "cell"
        assert r["objects"][0]["polygon"] == pytest.approx([v for pt in first["points"] for v in pt], abs=1e-4)
        assert r["mask"]["bytes"] == zipfile.ZipFile(raw / "edge_correct.zip").read(f"edge/{r['id']}_edge.png")
        assert _extra(r) == {"edge_label": "label_correct", "outlines": True, "clipped_vertices": 0,
                             "degenerate_shapes": 0}
        assert r["image"]["bytes"] == zipfile.ZipFile(raw / "png.zip").read(f"png/{r['id']}.png")


@pytest.fixture
def ccedd_tree(tmp_path, synth_raw) -> Path:
    """The layout the LLPC README asks for: png and json unzipped into both label folders, edges per folder."""
    root = tmp_path / "raw" / "CCEDD"
    for archive in ("png", "json", "edge_correct", "edge_no_correct"):
        with zipfile.ZipFile(synth_raw("ccedd") / "CCEDD" / f"{archive}.zip") as z:
            targets = {"edge_correct": ["label_correct"], "edge_no_correct": ["label_no_correct"]}.get(
                archive, ["label_correct", "label_no_correct"])
            for t in targets:
                z.extractall(root / t)
    return root


def test_ccedd_llpc_layout_builds_the_same_rows(tmp_path, ccedd_tree, built):
    out = _build("ccedd", ccedd_tree, tmp_path / "out")
    cols = ["id", "image", "mask", "objects"]
    assert read_rows(out, columns=cols) == read_rows(built("ccedd"), columns=cols)
    skipped = {f["path"]: f["reason"] for f in report(out)["files"]["list"] if f["status"] == "skipped"}
    assert skipped["label_no_correct/png/00003.png"] == "identical copy of label_correct/png/00003.png"
    assert skipped["label_no_correct/edge/00003_edge.png"].startswith("label_no_correct edge map")


def test_ccedd_image_from_the_embedded_image_data(tmp_path, ccedd_tree, built):
    for folder in ("label_correct", "label_no_correct"):
        shutil.rmtree(ccedd_tree / folder / "png")
    out = _build("ccedd", ccedd_tree, tmp_path / "out")
    assert read_rows(out, columns=["id", "image"]) == read_rows(built("ccedd"), columns=["id", "image"])


def test_ccedd_missing_outline_file(tmp_path, ccedd_tree):
    for folder in ("label_correct", "label_no_correct"):
        (ccedd_tree / folder / "json" / "00002.json").unlink()
    build_fails("ccedd", ccedd_tree, tmp_path / "out", "label_correct/png/00002.png", "json/00002.json")


@pytest.mark.parametrize("change,needle", [
    (lambda d: d["shapes"][1]["points"][0].__setitem__(0, float("nan")), "shape 1 (label 'kernel'): points point 1 "
                                                                          "has NaN"),
    (lambda d: d["shapes"][0]["points"][2].__setitem__(1, None), "shape 0 (label 'cell'): points point 3 value 2 "
                                                                 "is null"),
    (lambda d: d.__setitem__("imageWidth", 128.5), "imageWidth x imageHeight: width is 128.5"),
])
def test_ccedd_bad_labelme_values_name_the_file_and_shape(tmp_path, ccedd_tree, change, needle):
    for folder in ("label_correct", "label_no_correct"):
        path = ccedd_tree / folder / "json" / "00001.json"
        doc = json.loads(path.read_text())
        change(doc)
        path.write_text(json.dumps(doc))
    build_fails("ccedd", ccedd_tree, tmp_path / "out", f"label_correct/json/00001.json: {needle}")


def test_ccedd_declared_size_differs(tmp_path, ccedd_tree):
    for folder in ("label_correct", "label_no_correct"):
        path = ccedd_tree / folder / "json" / "00001.json"
        doc = json.loads(path.read_text())
        doc["imageWidth"] = 2048
        path.write_text(json.dumps(doc))
    build_fails("ccedd", ccedd_tree, tmp_path / "out", "label_correct/json/00001.json", "(2048, 96)", "(128, 96)")


def test_ccedd_copies_that_differ(tmp_path, ccedd_tree):
    path = ccedd_tree / "label_no_correct" / "json" / "00004.json"
    path.write_text(path.read_text().replace('"kernel"', '"cell"', 1))
    build_fails("ccedd", ccedd_tree, tmp_path / "out", "label_no_correct/json/00004.json", "differ")


# ============================================================================================ Cx22
CX22_MEMBERS = ["CellNum.mat", "OverlapRatio.mat", "cyto/cyto_clumps.mat", "cyto/cyto_ins.mat",
                "cyto/cyto_ins_bbox.mat", "generator/ImageDataGenerator.m", "generator/ImageDataNames.mat",
                "generator/ROIs_W_H.mat", "generator/ROIs_x_y.mat", "nuc/nuc_clumps.mat", "nuc/nuc_ins.mat",
                "nuc/nuc_ins_bbox.mat"]


def test_cx22_box_conversion_with_a_known_mask():
    m = np.zeros((12, 16), bool)
    m[3:7, 2:10] = True  # rows 3..6, columns 2..9
    box = [3, 2, 7, 10]  # as stored in *_ins_bbox.mat: [y1, x1, y2, x2], 0-based, half-open
    assert cx22.box_to_xywh(box) == [2.0, 3.0, 8.0, 4.0] == mask_bbox(m)
    assert outer_polygon(m) == [2.0, 3.0, 10.0, 3.0, 10.0, 7.0, 2.0, 7.0]


def _matfile(zpath: Path, member: str) -> matlab.MatFile:
    """A MatFile over one member of a zip (the tree is kept open by the MatFile's RawFile)."""
    return matlab.MatFile(RawTree(zpath).get(f"{zpath.name}/{member}"))


def test_cx22_synthetic_layout(synth_raw):
    import h5py

    raw = synth_raw("cx22")
    assert sorted(p.name for p in raw.iterdir() if not p.name.startswith(".")) == [
        "CCEDD", "Cx22-Multi-Test.zip", "Cx22-Multi-Train.zip", "Cx22-Pair.zip"]
    z = zipfile.ZipFile(raw / "Cx22-Pair.zip")
    assert z.namelist() == [f"Cx22-Pair/{m}" for m in CX22_MEMBERS]
    data = z.read("Cx22-Pair/generator/ImageDataNames.mat")
    assert data.startswith(b"MATLAB 7.3 MAT-file") and data[512:520] == b"\x89HDF\r\n\x1a\n"
    with h5py.File(io.BytesIO(data), "r") as h5:
        assert h5["ImageDataNames"].attrs["MATLAB_class"] == b"string"
    with _matfile(raw / "Cx22-Pair.zip", "Cx22-Pair/generator/ImageDataNames.mat") as mf:
        assert mf.strings("ImageDataNames", expected=3) == ["00000", "00000", "00001"]
    with h5py.File(io.BytesIO(z.read("Cx22-Pair/cyto/cyto_ins.mat")), "r") as h5:
        first = h5[h5["cyto_ins"][0, 0]]
        # stored (1, n) as in the real archives: MATLAB cell{3,1}, each cell{2,1}
        assert h5["cyto_ins"].shape == (1, 3) and first.shape == (1, 2)
        assert h5[first[0, 0]].shape == (512, 512) and h5[first[0, 0]].dtype == np.uint8
    assert zipfile.ZipFile(raw / "CCEDD" / "png.zip").namelist() == [f"png/{i:05d}.png" for i in range(4)]


def test_cx22_rows(built, synth_raw):
    folder, raw = built("cx22"), synth_raw("cx22")
    rep = report(folder)
    assert {s: v["num_examples"] for s, v in rep["splits"].items()} == {"pair": 3, "multi_train": 2, "multi_test": 2}
    rows = read_rows(folder, "pair")
    assert [r["id"] for r in rows] == ["pair-0001", "pair-0002", "pair-0003"]
    r = rows[1]
    ex = _extra(r)
    assert ex["ccedd_image"] == "00000" and ex["index"] == 2 and ex["cell_num"] == 2 and len(ex["overlap_ratio"]) == 2
    # boxes: [y1, x1, y2, x2] in the .mat -> [x, y, w, h]
    with _matfile(raw / "Cx22-Pair.zip", "Cx22-Pair/cyto/cyto_ins_bbox.mat") as mf:
        boxes = np.asarray(mf.cell("cyto_ins_bbox")[1])
    cyto = [o for o in r["objects"] if o["category"] == "cytoplasm"]
    assert [o["bbox"] for o in cyto] == [[b[1], b[0], b[3] - b[1], b[2] - b[0]] for b in boxes.tolist()]
    assert {o["category"] for o in r["objects"]} == {"cytoplasm", "nucleus", "cytoplasm_clump", "nucleus_clump"}
    # the image is the ROI of CCEDD 00000.png pasted at the top left of a white 512 x 512 canvas
    x, y, w, h = ex["roi_xywh"]
    src = np.asarray(Image.open(io.BytesIO(zipfile.ZipFile(raw / "CCEDD" / "png.zip").read("png/00000.png"))))
    img = np.asarray(Image.open(io.BytesIO(r["image"]["bytes"])))
    assert img.shape == (512, 512, 3)
    assert (img[:h, :w] == src[y:y + h, x:x + w]).all()
    assert (img[h:, :] == 255).all() and (img[:, w:] == 255).all()
    # the semantic mask: nucleus 2, cytoplasm 1, nothing outside the ROI
    sem = _png(r["mask"]["bytes"])
    nuc = next(o for o in r["objects"] if o["category"] == "nucleus")
    nx, ny, nw, nh = (int(v) for v in nuc["bbox"])
    assert sem[ny + nh // 2, nx + nw // 2] == 2 and set(np.unique(sem)) == {0, 1, 2}
    assert not sem[h:, :].any() and not sem[:, w:].any()


@pytest.fixture
def cx22_tree(tmp_path, synth_raw) -> Path:
    raw = tmp_path / "raw"
    shutil.copytree(synth_raw("cx22"), raw)
    return raw


def test_cx22_without_ccedd_images(tmp_path, cx22_tree):
    (cx22_tree / "CCEDD" / "png.zip").unlink()
    build_fails("cx22", cx22_tree, tmp_path / "out", "4 CCEDD image(s) needed by Cx22 are missing",
                 "00000.png, 00001.png", "png.zip", "https://github.com/nachifur/LLPC")


def test_cx22_images_from_ccedd_labelme_files(tmp_path, cx22_tree, built):
    import base64

    png = cx22_tree / "CCEDD" / "png.zip"
    with zipfile.ZipFile(png) as z:
        docs = [(f"json/{n[4:-4]}.json", json.dumps({"shapes": [], "imageData": base64.b64encode(z.read(n)).decode()})
                 .encode()) for n in z.namelist()]
    png.unlink()
    with zipfile.ZipFile(cx22_tree / "CCEDD" / "json.zip", "w") as z:
        for name, data in docs:
            z.writestr(name, data)
    out = _build("cx22", cx22_tree, tmp_path / "out")
    assert read_rows(out, columns=["id", "image"]) == read_rows(built("cx22"), columns=["id", "image"])


def test_cx22_missing_subset_leaves_its_split_out(tmp_path, cx22_tree):
    (cx22_tree / "Cx22-Multi-Train.zip").unlink()
    with pytest.raises(IncompleteDownloadError, match="Cx22-Multi-Train.zip"):  # a published file is missing
        _build("cx22", cx22_tree, tmp_path / "out")
    out = _build("cx22", cx22_tree, tmp_path / "out", allow_partial=True)
    rep = report(out)  # an official split without rows is left out (datasets cannot load an empty split)
    assert {s: v["num_examples"] for s, v in rep["splits"].items()} == {"pair": 3, "multi_test": 2}
    assert rep["empty_splits"] == ["multi_train"]
    assert "Left out because they have no rows in this download: multi_train." in (out / "README.md").read_text()


def test_cx22_box_that_does_not_match_its_mask(tmp_path, synth_raw):
    import h5py

    tree = extract_all(synth_raw("cx22"), tmp_path / "raw")
    path = tree / "Cx22-Multi-Test" / "nuc" / "nuc_ins_bbox.mat"
    with h5py.File(path, "r+") as h5:
        ds = h5[h5["nuc_ins_bbox"][0, 1]]
        data = ds[()]
        data[2, 0] += 1  # x1 of the first nucleus (stored transposed: row 1 is x1)
        ds[...] = data
    build_fails("cx22", tree, tmp_path / "out", "Cx22-Multi-Test/nuc/nuc_ins.mat (image 2)", "nucleus 1",
                 "does not match its mask")


def _content(img: Image.Image) -> tuple[int, int]:
    """(rows, cols) of the non-white part of a re-created Cx22 image (pasted at the top left)."""
    a = np.asarray(img)
    return tuple(int(v) + 1 for v in np.argwhere((a != 255).any(axis=2)).max(axis=0))


@pytest.mark.parametrize("roi,content", [
    ((1331, 707, 718, 645), (460, 512)),  # W larger, clipped at the right edge: 717 x 645 crop -> 512 x 460
    ((100, 1000, 600, 700), (512, 439)),  # H larger, clipped at the bottom: 600 x 536 crop -> 439 x 512
    ((0, 0, 1024, 645), (323, 512)),  # 0.5 x 645 = 322.5 rounds up, as MATLAB's round does
    ((10, 10, 300, 200), (200, 300)),  # fits the canvas: pasted as it is
])
def test_cx22_crop_and_scale_follow_the_generator(roi, content):
    source = Image.new("RGB", (2048, 1536), (20, 40, 60))
    out = cx22.regenerate(source, *roi, (512, 512))
    assert out.size == (512, 512) and _content(out) == content


def test_cx22_real_roi_past_the_source_edge(tmp_path):
    real = shared_real("cx22")
    if real is None:
        pytest.skip("../shared/real/cx22 is absent")
    out = _build("cx22", real, tmp_path / "out", allow_partial=True)  # one real image of the 1,320
    assert report(out)["completeness"]["partial"] == "1 of 1,320 images"
    (row,) = read_rows(out)
    image = Image.open(io.BytesIO(row["image"]["bytes"]))
    mask = _png(row["mask"]["bytes"])
    assert _extra(row)["roi_xywh"] == [1331, 707, 718, 645]
    assert _content(image) == (460, 512)  # the authors' generator: 460 x 512 (was 460 x 511)
    blank = ~(np.asarray(image) != 255).any(axis=2)
    assert (mask[:, 511] > 0).sum() == 21 and not (mask.astype(bool) & blank).any()  # no mask pixel on blank canvas
    assert row["group"]["fov_id"] == "00492"


def test_cx22_crops_of_one_source_share_a_group(built):
    rows = read_rows(built("cx22"), "pair", columns=["id", "group", "extra"])
    assert [(r["id"], r["group"]["fov_id"]) for r in rows] == [("pair-0001", "00000"), ("pair-0002", "00000"),
                                                                 ("pair-0003", "00001")]
    assert all(r["group"]["fov_id"] == _extra(r)["ccedd_image"] for r in rows)


def test_cx22_unknown_subset_folder(tmp_path, synth_raw):
    tree = extract_all(synth_raw("cx22"), tmp_path / "raw")
    (tree / "Cx22-Pair").rename(tree / "Cx22-Triple")
    build_fails("cx22", tree, tmp_path / "out", "Cx22-Triple", "is not a Cx22 subset")


@pytest.mark.parametrize("name", ["ccagt", "bttfa", "ccedd", "cx22"])
def test_synthesize_is_deterministic(name, tmp_path, synth_raw):
    registry.get(name).synthesize(tmp_path / "again", "small", seed=0)
    first = synth_raw(name)
    files = sorted(p.relative_to(first) for p in first.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(tmp_path / "again") for p in (tmp_path / "again").rglob("*") if p.is_file())
    for rel in files:
        assert (tmp_path / "again" / rel).read_bytes() == (first / rel).read_bytes(), rel
