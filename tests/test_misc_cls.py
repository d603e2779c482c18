"""Focused tests of the misc_cls group: AICCS, RepoMedUNM, AGMC-TU and CSD (all with unverified layouts)."""

from __future__ import annotations

import io
import json
import re
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from cytohub import registry
from cytohub.builders import agmc_tu, aiccs, csd, repomedunm
from cytohub.cli import app
from helpers import build_fails, extract_all, read_rows, report

runner = CliRunner()




def _builds(name: str, raw: Path, out: Path) -> list[dict]:
    from cytohub.build import build

    b = registry.get(name)
    build(b, raw, out, split=None if b.splits else "train=0.6,validation=0.2,test=0.2")
    return read_rows(out)


def _extra(row: dict) -> dict:
    return json.loads(row["extra"]) if isinstance(row["extra"], str) else row["extra"]


def test_all_four_are_declared_unverified():
    for name in ("aiccs", "repomedunm", "agmc-tu", "csd"):
        cls = registry.builders()[name]
        assert cls.layout == "unverified" and len(cls.assumptions) >= 3
        assert cls.redistribution == "forbidden" and cls.license == "unknown"


# ============================================================================================ AICCS
def test_aiccs_synthetic_layout_is_a_voc_devkit(synth_raw):
    raw = synth_raw("aiccs")
    assert sorted(p.name for p in raw.iterdir() if not p.name.startswith(".")) == ["AICCS_patch_data.zip"]
    names = zipfile.ZipFile(raw / "AICCS_patch_data.zip").namelist()
    assert {n.rsplit("/", 1)[0] for n in names} == {"CVS_VOC/Annotations", "CVS_VOC/JPEGImages",
                                                     "CVS_VOC/ImageSets/Main"}
    assert sum(n.endswith(".xml") for n in names) == sum(n.endswith(".png") for n in names) == 20
    assert sorted(n for n in names if n.endswith(".txt")) == [f"CVS_VOC/ImageSets/Main/{s}.txt"
                                                              for s in ("test", "train", "val")]


@pytest.mark.parametrize("name,expected", [("hsil", "hsil"), ("ASC-US", "asc_us"), ("asc_h", "asc_h"),
                                           ("ASC H", "asc_h"), ("Candida", "candida"), ("TRI", "tri"),
                                           ("koilocyte", None), ("nilm", None)])
def test_aiccs_class_spellings(name, expected):
    assert aiccs.class_of(name) == expected


def test_aiccs_taxonomy():
    idx = registry.get("aiccs").object_index()
    assert [lab.name for lab in registry.get("aiccs").object_labels][:4] == ["hsil", "asc_h", "lsil", "asc_us"]
    assert idx["asc_us"].harmonized == "ASC-US" and idx["asc_us"].path == ("ASC-US",)
    assert idx["cc"].harmonized == "NILM/organism/bacterial-vaginosis"
    assert idx["tri"].harmonized == "NILM/organism/trichomonas"
    assert registry.get("aiccs").labels == ()


def test_aiccs_rows_match_the_xml(built, synth_raw):
    rows = {r["id"]: r for r in read_rows(built("aiccs"))}
    assert len(rows) == 20
    zf = zipfile.ZipFile(synth_raw("aiccs") / "AICCS_patch_data.zip")
    xml = zf.read("CVS_VOC/Annotations/patch_00007.xml").decode()
    first = re.search(r"<name>(\w+)</name>.*?<xmin>(\d+)</xmin>\s*<ymin>(\d+)</ymin>\s*<xmax>(\d+)</xmax>\s*"
                      r"<ymax>(\d+)</ymax>", xml, re.S)
    row = rows["patch_00007"]
    assert row["label"] == -1 and row["harmonized"] is None
    obj = row["objects"][0]
    assert obj["category"] == first[1]
    x1, y1, x2, y2 = (int(first[i]) for i in range(2, 6))
    assert obj["bbox"] == [x1 - 1, y1 - 1, x2 - x1 + 1, y2 - y1 + 1]
    assert _extra(row) == {"image_sets": ["train"], "difficult": [], "voc_size": [256.0, 256.0]}
    assert row["image"]["bytes"] == zf.read("CVS_VOC/JPEGImages/patch_00007.png")
    assert _extra(rows["patch_00003"])["image_sets"] == ["val"]
    assert _extra(rows["patch_00004"])["image_sets"] == ["test"]
    all_cats = {o["category"] for r in rows.values() for o in r["objects"]}
    assert all_cats == {c for c, _, _ in aiccs.CLASSES}


@pytest.fixture
def aiccs_raw(tmp_path, synth_raw) -> Path:
    return extract_all(synth_raw("aiccs"), tmp_path / "raw")


def test_aiccs_extracted_folder_and_pickles(tmp_path, aiccs_raw, built):
    (aiccs_raw / "dataset" / "hsil").mkdir(parents=True)
    (aiccs_raw / "dataset" / "hsil" / "WSI001.pkl").write_bytes(b"\x80\x04N.")
    rows = _builds("aiccs", aiccs_raw, tmp_path / "out")
    assert sorted(r["id"] for r in rows) == sorted(r["id"] for r in read_rows(built("aiccs"), columns=["id"]))
    skipped = {f["path"]: f["reason"] for f in report(tmp_path / "out")["files"]["list"] if f["status"] == "skipped"}
    assert "WSI-level detector output" in skipped["dataset/hsil/WSI001.pkl"]


def test_aiccs_unknown_class(tmp_path, aiccs_raw):
    p = aiccs_raw / "CVS_VOC" / "Annotations" / "patch_00002.xml"
    p.write_text(re.sub(r"<name>\w+</name>", "<name>koilocyte</name>", p.read_text(), count=1))
    build_fails("aiccs", aiccs_raw, tmp_path / "out", "patch_00002.xml", "unknown class 'koilocyte'", "asc_us")


def test_aiccs_missing_image_and_missing_annotation(tmp_path, aiccs_raw):
    (aiccs_raw / "CVS_VOC" / "JPEGImages" / "patch_00011.png").unlink()
    build_fails("aiccs", aiccs_raw, tmp_path / "out", "Annotations/patch_00011.xml", "no image")
    (aiccs_raw / "CVS_VOC" / "Annotations" / "patch_00011.xml").unlink()
    build_fails("aiccs", aiccs_raw, tmp_path / "out2", "ImageSets/Main/train.txt", "patch_00011")
    shutil.copy(aiccs_raw / "CVS_VOC" / "JPEGImages" / "patch_00001.png",
                aiccs_raw / "CVS_VOC" / "JPEGImages" / "extra_patch.png")
    build_fails("aiccs", aiccs_raw, tmp_path / "out3", "JPEGImages/extra_patch.png", "no annotation")


def test_aiccs_broken_xml(tmp_path, aiccs_raw):
    p = aiccs_raw / "CVS_VOC" / "Annotations" / "patch_00005.xml"
    p.write_text(p.read_text()[:120])
    build_fails("aiccs", aiccs_raw, tmp_path / "out", "patch_00005.xml", "not well-formed XML")
    p.write_text("<annotation><size><width>256</width><height>256</height></size><object><name>lsil</name>"
                 "<bndbox><xmin>50</xmin><ymin>9</ymin><xmax>20</xmax><ymax>30</ymax></bndbox></object>"
                 "</annotation>")
    build_fails("aiccs", aiccs_raw, tmp_path / "out2", "patch_00005.xml", "xmax < xmin")


# ============================================================================================ RepoMedUNM
def test_repomedunm_synthetic_layout(synth_raw):
    raw = synth_raw("repomedunm")
    files = sorted(p.relative_to(raw).as_posix() for p in raw.rglob("*.jpg"))
    assert len(files) == 15
    assert sorted({f.rsplit("/", 1)[0] for f in files}) == [
        "RepoMedUNM/Non-ThinPrep/Koilocyt", "RepoMedUNM/Non-ThinPrep/Normal", "RepoMedUNM/ThinPrep/H-Sil",
        "RepoMedUNM/ThinPrep/L-Sil", "RepoMedUNM/ThinPrep/Normal"]
    assert files[0] == "RepoMedUNM/Non-ThinPrep/Koilocyt/0001.jpg"
    assert sum(repomedunm.FULL_COUNTS.values()) == repomedunm.RepoMedUNM.num_images == 7437
    assert sum(v for (p, _), v in repomedunm.FULL_COUNTS.items() if p == "ThinPrep") == 6168
    assert repomedunm.FULL_COUNTS[("Non-ThinPrep", "Koilocyt")] == 434


@pytest.mark.parametrize("folder,expected", [("L-Sil", "L-Sil"), ("LSIL", "L-Sil"), ("l_sil", "L-Sil"),
                                             ("H-SIL", "H-Sil"), ("Koilocytes", "Koilocyt"), ("normal", "Normal"),
                                             ("ASC-US", None), ("ThinPrep", None)])
def test_repomedunm_class_spellings(folder, expected):
    assert repomedunm.class_of(folder) == expected


@pytest.mark.parametrize("folder,expected", [("ThinPrep", "ThinPrep"), ("TP", "ThinPrep"), ("nTP", "non-ThinPrep"),
                                             ("Non-ThinPrep", "non-ThinPrep"), ("non thinprep", "non-ThinPrep"),
                                             ("Normal", None)])
def test_repomedunm_preparation_spellings(folder, expected):
    assert repomedunm.preparation_of(folder) == expected


def test_repomedunm_rows(built):
    rows = read_rows(built("repomedunm"))
    names = registry.get("repomedunm").class_names()
    assert names == ["Normal", "L-Sil", "H-Sil", "Koilocyt"]
    by_id = {r["id"]: r for r in rows}
    assert len(by_id) == 15
    koil = by_id["non-ThinPrep/Koilocyt/0002"]
    assert names[koil["label"]] == "Koilocyt" and koil["label_path"] == ["Koilocyt"]
    assert koil["harmonized"] == "LSIL"
    assert _extra(koil) == {"preparation": "non-ThinPrep", "class_folder": "Koilocyt"}
    hsil = by_id["ThinPrep/H-Sil/0001"]
    assert names[hsil["label"]] == "H-Sil" and hsil["harmonized"] == "HSIL"
    assert {names[r["label"]] for r in rows if r["id"].startswith("ThinPrep/")} == {"Normal", "L-Sil", "H-Sil"}
    assert by_id["ThinPrep/Normal/0003"]["harmonized"] == "NILM"
    assert all(r["mpp"] is None and r["objects"] == [] for r in rows)


def test_repomedunm_flat_class_folders_without_preparation(tmp_path, synth_raw):
    raw = tmp_path / "flat"
    for cls, src in (("LSIL", "ThinPrep/L-Sil"), ("koilocyt", "Non-ThinPrep/Koilocyt")):
        shutil.copytree(synth_raw("repomedunm") / "RepoMedUNM" / src, raw / "data" / cls)
    (raw / "data" / "readme.txt").write_text("RepoMedUNM")
    rows = _builds("repomedunm", raw, tmp_path / "out")
    assert sorted(r["id"] for r in rows) == [f"{c}/{k:04d}" for c in ("Koilocyt", "L-Sil") for k in (1, 2, 3)]
    assert all(_extra(r)["preparation"] is None for r in rows)
    listed = {f["path"]: f for f in report(tmp_path / "out")["files"]["list"]}
    assert listed["data/readme.txt"]["status"] == "skipped"


def test_repomedunm_unknown_folder(tmp_path, synth_raw):
    raw = tmp_path / "raw"
    shutil.copytree(synth_raw("repomedunm"), raw)
    (raw / "RepoMedUNM" / "ThinPrep" / "H-Sil").rename(raw / "RepoMedUNM" / "ThinPrep" / "ASC-US")
    build_fails("repomedunm", raw, tmp_path / "out", "ThinPrep/ASC-US/0001.jpg", "not inside a class folder",
                 "Koilocyt")


def test_repomedunm_image_in_a_subfolder_and_mixed_preparations(tmp_path, synth_raw):
    raw = tmp_path / "raw"
    shutil.copytree(synth_raw("repomedunm"), raw)
    sub = raw / "RepoMedUNM" / "ThinPrep" / "Normal" / "crops"
    sub.mkdir()
    shutil.copy(raw / "RepoMedUNM" / "ThinPrep" / "Normal" / "0001.jpg", sub / "0001.jpg")
    build_fails("repomedunm", raw, tmp_path / "out", "Normal/crops/0001.jpg", "found it in a subfolder")
    shutil.rmtree(sub)
    shutil.move(raw / "RepoMedUNM" / "ThinPrep", raw / "RepoMedUNM" / "Non-ThinPrep" / "ThinPrep")
    build_fails("repomedunm", raw, tmp_path / "out2", "both a ThinPrep and a non-ThinPrep folder")


def test_repomedunm_corrupt_jpeg(tmp_path, synth_raw):
    raw = tmp_path / "raw"
    shutil.copytree(synth_raw("repomedunm"), raw)
    p = raw / "RepoMedUNM" / "ThinPrep" / "L-Sil" / "0002.jpg"
    p.write_bytes(p.read_bytes()[:2000])
    build_fails("repomedunm", raw, tmp_path / "out", "L-Sil/0002.jpg", "truncated")


# ============================================================================================ AGMC-TU
def test_agmc_tu_synthetic_layout(synth_raw):
    raw = synth_raw("agmc-tu")
    files = sorted(p.relative_to(raw).as_posix() for p in raw.rglob("*") if p.is_file() and p.name[0] != ".")
    assert files == [f"AGMC-TU/GroundTruth/AGMC_{k:03d}.png" for k in range(1, 7)] + \
                    [f"AGMC-TU/Images/AGMC_{k:03d}.jpg" for k in range(1, 7)]
    m = np.asarray(Image.open(raw / "AGMC-TU/GroundTruth/AGMC_001.png"))
    assert m.shape == (192, 256) and set(np.unique(m)) == {0, 255}


def test_agmc_tu_nucleus_boxes_known_points():
    m = np.zeros((40, 60), np.uint8)
    m[10:20, 30:45] = 255  # rows 10..19, cols 30..44 -> x=30, y=10, w=15, h=10
    m[0, 0] = 255  # a single pixel at the origin
    m[30, 5] = m[31, 6] = 255  # diagonal neighbours: one 8-connected component
    assert agmc_tu.nucleus_boxes(m) == [[0, 0, 1, 1], [30, 10, 15, 10], [5, 30, 2, 2]]
    assert agmc_tu.nucleus_boxes((m > 0).astype(np.uint8)) == agmc_tu.nucleus_boxes(m)  # 0/1 masks
    assert agmc_tu.nucleus_boxes(np.zeros((4, 4), np.uint8)) == []


@pytest.mark.parametrize("folder,role", [("Images", "image"), ("Original", "image"), ("Ground Truth", "mask"),
                                         ("GT", "mask"), ("masks", "mask"), ("AGMC-TU", None), ("Normal", None)])
def test_agmc_tu_folder_roles(folder, role):
    assert agmc_tu.folder_role(folder) == role


def test_agmc_tu_mask_stems():
    assert [agmc_tu.mask_stem(s) for s in ("img01_gt", "img01-mask", "img01 GT", "img01_GroundTruth", "img01")] \
        == ["img01"] * 5


def test_agmc_tu_rows(built, synth_raw):
    rows = {r["id"]: r for r in read_rows(built("agmc-tu"))}
    assert sorted(rows) == [f"AGMC_{k:03d}" for k in range(1, 7)]
    raw = synth_raw("agmc-tu")
    for k in (1, 4):
        row = rows[f"AGMC_{k:03d}"]
        gt = (raw / f"AGMC-TU/GroundTruth/AGMC_{k:03d}.png").read_bytes()
        assert row["mask"]["bytes"] == gt
        assert row["image"]["bytes"] == (raw / f"AGMC-TU/Images/AGMC_{k:03d}.jpg").read_bytes()
        boxes = agmc_tu.nucleus_boxes(np.asarray(Image.open(io.BytesIO(gt))))
        assert [o["bbox"] for o in row["objects"]] == boxes and len(boxes) >= 1
        assert {o["category"] for o in row["objects"]} == {"nucleus"}
        assert row["label"] == -1 and row["harmonized"] is None
        assert _extra(row)["mask_values"] == [0, 255]


def test_agmc_tu_suffixed_masks_and_other_folder_names(tmp_path, synth_raw):
    src = synth_raw("agmc-tu") / "AGMC-TU"
    raw = tmp_path / "raw" / "AGMC-TU Dataset"
    for k in (1, 2):
        synth_img = src / "Images" / f"AGMC_{k:03d}.jpg"
        (raw / "Original").mkdir(parents=True, exist_ok=True)
        (raw / "GT").mkdir(exist_ok=True)
        shutil.copy(synth_img, raw / "Original" / synth_img.name)
        shutil.copy(src / "GroundTruth" / f"AGMC_{k:03d}.png", raw / "GT" / f"AGMC_{k:03d}_gt.png")
    rows = _builds("agmc-tu", tmp_path / "raw", tmp_path / "out")
    assert sorted(r["id"] for r in rows) == ["AGMC_001", "AGMC_002"]


@pytest.fixture
def agmc_raw(tmp_path, synth_raw) -> Path:
    raw = tmp_path / "raw"
    shutil.copytree(synth_raw("agmc-tu"), raw)
    return raw / "AGMC-TU"


def test_agmc_tu_missing_mask(tmp_path, agmc_raw):
    (agmc_raw / "GroundTruth" / "AGMC_003.png").unlink()
    build_fails("agmc-tu", agmc_raw, tmp_path / "out", "Images/AGMC_003.jpg", "no ground-truth mask")


def test_agmc_tu_orphan_mask_and_size_mismatch(tmp_path, agmc_raw):
    shutil.copy(agmc_raw / "GroundTruth" / "AGMC_001.png", agmc_raw / "GroundTruth" / "AGMC_099.png")
    build_fails("agmc-tu", agmc_raw, tmp_path / "out", "GroundTruth/AGMC_099.png", "without a matching image")
    (agmc_raw / "GroundTruth" / "AGMC_099.png").unlink()
    Image.new("L", (100, 100)).save(agmc_raw / "GroundTruth" / "AGMC_002.png")
    build_fails("agmc-tu", agmc_raw, tmp_path / "out2", "GroundTruth/AGMC_002.png", "100x100", "256x192")


def test_agmc_tu_image_outside_the_folders(tmp_path, agmc_raw):
    shutil.copy(agmc_raw / "Images" / "AGMC_001.jpg", agmc_raw / "cover.jpg")
    build_fails("agmc-tu", agmc_raw, tmp_path / "out", "cover.jpg", "not inside an image folder")


# ============================================================================================ CSD

LABELS = "TCT-InfoNCE/datatools/gc/labels"


def test_csd_synthetic_layout(synth_raw):
    raw = synth_raw("csd")
    assert sorted(p.name for p in (raw / LABELS).iterdir()) == ["test_c.csv", "test_h.csv", "test_label.csv",
                                                               "train_val.csv"]
    assert (raw / LABELS / "train_val.csv").read_text().splitlines() == [
        "xCR20018134-NILM,0", "x202000796,0", "xCR20018201-LSIL,1", "xCR20018202ASC-H,1"]
    assert (raw / LABELS / "test_h.csv").read_text() == "xCR20018210-HSIL+T,1\n"
    assert sorted(p.name for p in (raw / "gc-224" / "POS" / "xCR20018210-HSIL+T").iterdir()) == \
        ["0_0.jpg", "0_1.jpg", "1_0.jpg", "1_1.jpg"]
    assert Image.open(raw / "gc-224/NILM/xCR20018134-NILM/1_0.jpg").size == (224, 224)


@pytest.mark.parametrize("slide,cat", [("xCR20018134-NILM", "NILM"), ("xCR1-ASC-H", "ASC-H"), ("a-asc-us", "ASC-US"),
                                       ("xCR20018210-HSIL", "HSIL"), ("xCR20018210", None), ("x-NILMX", None),
                                       # real slide names of the CSD label files
                                       ("CX20164770-HSIL+T", "HSIL"), ("CX20166857-ASC-US+M", "ASC-US"),
                                       ("CX20147703ASC-US", "ASC-US"), ("201221142818-22-3ASC-US", "ASC-US"),
                                       ("202000796", None), ("CX2016-LSILX", None), ("CX2016-HSIL+", "HSIL")])
def test_csd_slide_category(slide, cat):
    assert csd.slide_category(slide) == cat


@pytest.mark.parametrize("slide,notes", [("CX20164770-HSIL+T", ["T"]), ("CX20166857-ASC-US+M", ["M"]),
                                         ("CX1-LSIL+T+M", ["T", "M"]), ("CX20147703ASC-US", []), ("202000796", [])])
def test_csd_slide_category_notes(slide, notes):
    assert csd.slide_category_notes(slide) == notes


def test_csd_rows_and_official_split(built):
    folder = built("csd")
    rep = report(folder)
    assert {s: v["num_examples"] for s, v in rep["splits"].items()} == {"train": 16, "test": 12}
    rows = {r["id"]: r for r in read_rows(folder)}
    names = registry.get("csd").class_names()
    assert names == ["NILM", "POS"]
    r = rows["xCR20018202ASC-H/1_0"]
    assert names[r["label"]] == "POS" and r["harmonized"] is None and r["label_path"] == ["POS"]
    assert r["group"] == {"patient_id": None, "slide_id": "xCR20018202ASC-H", "fov_id": None}
    assert _extra(r) == {"tile_col": 1, "tile_row": 0, "slide_category": "ASC-H", "slide_category_notes": [],
                         "test_subsets": []}
    assert _extra(rows["x202000796/0_0"])["slide_category"] is None
    plus = _extra(rows["xCR20018210-HSIL+T/0_0"])
    assert plus["slide_category"] == "HSIL" and plus["slide_category_notes"] == ["T"]
    assert _extra(rows["x201221142818-22-3ASC-US/0_0"])["slide_category"] == "ASC-US"
    n = rows["xCR20018140-NILM/0_1"]
    assert names[n["label"]] == "NILM" and n["harmonized"] == "NILM"
    assert _extra(rows["xCR20018210-HSIL+T/0_0"])["test_subsets"] == ["test_h"]
    assert _extra(rows["x201221142818-22-3ASC-US/1_1"])["test_subsets"] == ["test_c"]
    test_slides = {r["group"]["slide_id"] for r in read_rows(folder, "test", columns=["group"])}
    assert test_slides == {"xCR20018140-NILM", "xCR20018210-HSIL+T", "x201221142818-22-3ASC-US"}


@pytest.fixture
def csd_raw(tmp_path, synth_raw) -> Path:
    raw = tmp_path / "raw"
    shutil.copytree(synth_raw("csd"), raw)
    return raw


def test_csd_unlisted_slides_and_repo_images_are_reported(tmp_path, csd_raw):
    shutil.copytree(csd_raw / "gc-224/NILM/xCR20018134-NILM", csd_raw / "gc-224/NILM/xCR29999999-NILM")
    (csd_raw / "TCT-InfoNCE/imgs").mkdir()
    shutil.copy(csd_raw / "gc-224/NILM/xCR20018134-NILM/0_0.jpg", csd_raw / "TCT-InfoNCE/imgs/structure.jpg")
    (csd_raw / "TCT-InfoNCE/datatools/fnac/labels").mkdir(parents=True)
    (csd_raw / "TCT-InfoNCE/datatools/fnac/labels/train_val.csv").write_text("B_1,0\n")
    rows = _builds("csd", csd_raw, tmp_path / "out")
    assert len(rows) == 28
    reasons = {f["path"]: f.get("reason") for f in report(tmp_path / "out")["files"]["list"]}
    assert reasons["gc-224/NILM/xCR29999999-NILM/1_1.jpg"] == "slide not listed in train_val.csv or test_label.csv"
    assert "not a tile" in reasons["TCT-InfoNCE/imgs/structure.jpg"]
    assert "not one of the CSD (gc) split files" in reasons["TCT-InfoNCE/datatools/fnac/labels/train_val.csv"]
    assert reasons[f"{LABELS}/train_val.csv"] is None  # used


def test_csd_folder_contradicts_label(tmp_path, csd_raw):
    shutil.move(csd_raw / "gc-224/POS/xCR20018201-LSIL", csd_raw / "gc-224/NILM/xCR20018201-LSIL")
    build_fails("csd", csd_raw, tmp_path / "out", "NILM/xCR20018201-LSIL", "labels it 1 (positive)")


def test_csd_listed_slide_without_tiles(tmp_path, csd_raw):
    shutil.rmtree(csd_raw / "gc-224/POS/xCR20018210-HSIL+T")
    build_fails("csd", csd_raw, tmp_path / "out", "test_label.csv lists slide 'xCR20018210-HSIL+T'", "no NILM/")


def test_csd_renamed_class_folder_says_what_was_found(tmp_path, csd_raw):
    shutil.move(csd_raw / "gc-224/POS", csd_raw / "gc-224/positive")
    build_fails("csd", csd_raw, tmp_path / "out", "no NILM/", "expected slide folders of tiles in NILM/ and POS/; "
                "found tiles in gc-224/positive/")


def test_csd_slide_in_both_splits_and_bad_lines(tmp_path, csd_raw):
    p = csd_raw / LABELS / "test_label.csv"
    p.write_text(p.read_text() + "xCR20018134-NILM,0\n")
    build_fails("csd", csd_raw, tmp_path / "out", "test_label.csv", "'xCR20018134-NILM' is also listed in",
                 "train_val.csv")
    p.write_text("slide_id,label\n" + p.read_text())
    build_fails("csd", csd_raw, tmp_path / "out2", "test_label.csv, line 1", "'<slide name>,<0|1>'")


def test_csd_missing_label_file_and_bad_tile_name(tmp_path, csd_raw):
    (csd_raw / "gc-224/NILM/x202000796/1_1.jpg").rename(csd_raw / "gc-224/NILM/x202000796/tile.jpg")
    build_fails("csd", csd_raw, tmp_path / "out", "x202000796/tile.jpg", "<i>_<j>.jpg")
    (csd_raw / LABELS / "train_val.csv").unlink()
    build_fails("csd", csd_raw, tmp_path / "out2", "no train_val.csv found", "TCT-InfoNCE")


def test_csd_refuses_ratio_splits(tmp_path, synth_raw):
    result = runner.invoke(app, ["build", "csd", "--raw", str(synth_raw("csd")), "--out", str(tmp_path / "o"),
                                 "--split", "train=0.5,test=0.5", "--quiet"])
    assert result.exit_code != 0 and "official splits" in result.output
