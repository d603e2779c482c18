"""Cervical single-cell / image classification corpora: HiCervix, SIPaKMeD, Herlev, Mendeley LBC.
Quirks of each builder: label spellings, hierarchy, official splits, coordinates, bad input."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cytohub import registry, synth
from cytohub.builders import herlev, hicervix, mendeley_lbc, sipakmed
from cytohub.raw import RawTree
from helpers import build_fails, extract_all, read_rows, report, shared_real


def _copy(synth_raw, name: str, tmp_path: Path) -> Path:
    raw = tmp_path / "raw"
    shutil.copytree(synth_raw(name), raw)
    return raw


def _names(name: str) -> list[str]:
    return registry.get(name).class_names()


# =========================================================================================== HiCervix
def test_hicervix_synthetic_layout(synth_raw):
    raw = synth_raw("hicervix")
    assert sorted(p.name for p in raw.iterdir() if not p.name.startswith(".")) == [
        "hierarchy_names.csv", "test", "test.csv", "train", "train.csv", "val", "val.csv"]
    data = (raw / "train.csv").read_bytes()
    assert data.startswith(b"image_name,class_name,class_id,level_1,level_2,level_3\n")  # no BOM, LF
    assert b"\r" not in data
    lines = data.decode().splitlines()
    assert any(line.endswith(",AGC,13,AGC,,") for line in lines)  # stops at level 1
    assert any(line.endswith(",AGC-NOS,14,AGC,AGC-NOS,") for line in lines)  # stops at level 2
    assert any(line.endswith(",ADC-EMC,20,AGC,ADC,ADC-EMC") for line in lines)  # all three levels
    first = lines[1].split(",")[0]
    assert (raw / "train" / first).is_file() and len(first) == len("65dfc2fb-e87c-35bc-aa3e-ce5323fde30b.jpg")
    gloss = (raw / "hierarchy_names.csv").read_bytes()
    assert gloss.startswith(b"\xef\xbb\xbf") and b"\r\n" in gloss  # UTF-8 BOM, CRLF
    rows = list(csv.reader(io.StringIO(gloss.decode("utf-8-sig"))))
    assert rows[0] == ["中文名", "英文名", "abbr.", "class_id"]
    assert rows[1] == ["其他正常细胞", "Normal cell ", "Normal", ""]
    assert ["滴虫", "Trichomonas vaginalis ", "TRI", ""] in rows


def test_hicervix_full_scale_counts_are_published():
    totals = [sum(c[4][k] for c in hicervix.CLASSES) for k in range(3)]
    assert totals == [28160, 4018, 8051]
    assert [c[0] for c in hicervix.CLASSES] == list(range(26))
    assert _names("hicervix")[13] == "AGC" and _names("hicervix")[20] == "ADC-EMC"


def test_hicervix_rows(built):
    folder = built("hicervix")
    rep = report(folder)
    assert {s: v["num_examples"] for s, v in rep["splits"].items()} == {"train": 52, "validation": 26, "test": 26}
    names = _names("hicervix")
    rows = read_rows(folder, columns=["id", "label", "label_path", "harmonized", "extra", "source_path", "group"])
    by_name: dict[str, dict] = {}
    for r in rows:
        r["extra"] = json.loads(r["extra"])
        assert r["label"] == r["extra"]["class_id"]  # ClassLabel index == official class_id
        assert r["source_path"].split("/")[-1] == f"{r['id']}.jpg"
        assert r["group"] == {"patient_id": None, "slide_id": None, "fov_id": None}
        by_name.setdefault(names[r["label"]], r)
    assert by_name["AGC"]["label_path"] == ["AGC"] and by_name["AGC"]["harmonized"] == "AGC"
    assert by_name["AGC-NOS"]["label_path"] == ["AGC", "AGC-NOS"]
    assert by_name["AGC-ECC-NOS"]["label_path"] == ["AGC", "AGC-NOS", "AGC-ECC-NOS"]
    assert by_name["ADC-ECC"]["harmonized"] == "Adenocarcinoma"
    assert by_name["HSV"]["label_path"] == ["microbe", "HSV"] and by_name["HSV"]["harmonized"] == "NILM/organism/herpes"
    assert by_name["CC"]["harmonized"] == "NILM/organism/bacterial-vaginosis"
    assert by_name["ASC-H"]["harmonized"] == "ASC-H"
    assert by_name["TRI"]["extra"]["name_zh"] == "滴虫"
    assert by_name["TRI"]["extra"]["name_en"] == "Trichomonas vaginalis"  # trailing space stripped
    assert by_name["FUNGI"]["extra"]["name_en"].endswith("Candida spp.")  # not swapped with ACTINO
    val = read_rows(folder, "validation", columns=["source_path"])
    assert all("val/" in r["source_path"] for r in val)


def test_hicervix_zip_and_no_glossary(tmp_path, synth_raw, built):
    from cytohub.build import build

    raw = _copy(synth_raw, "hicervix", tmp_path)
    (raw / "hierarchy_names.csv").unlink()
    (raw / "train_hierswin.csv").write_text(",".join(hicervix.HEADER) + "\n")
    synth.zip_folder(raw, tmp_path / "HiCervix.zip")
    build(registry.get("hicervix"), tmp_path / "HiCervix.zip", tmp_path / "out")
    rows = read_rows(tmp_path / "out", columns=["id", "label", "extra"])
    assert [(r["id"], r["label"]) for r in rows] == [(r["id"], r["label"]) for r in
                                                     read_rows(built("hicervix"), columns=["id", "label"])]
    assert all(set(json.loads(r["extra"])) == {"class_id"} for r in rows)
    skipped = {f["path"]: f["reason"] for f in report(tmp_path / "out")["files"]["list"] if f["status"] == "skipped"}
    assert "HierSwin" in skipped["HiCervix.zip/raw/train_hierswin.csv"]


def test_hicervix_split_zips_without_inner_folder(tmp_path, synth_raw, built):
    """train.zip / val.zip / test.zip holding the images at their root count as the split folders."""
    from cytohub.build import build

    raw = _copy(synth_raw, "hicervix", tmp_path)
    for split in ("train", "val", "test"):
        synth.write_zip(raw / f"{split}.zip", [(p.name, p.read_bytes()) for p in sorted((raw / split).iterdir())])
        shutil.rmtree(raw / split)
    build(registry.get("hicervix"), raw, tmp_path / "out")
    cols = ["id", "label", "image"]
    assert read_rows(tmp_path / "out", columns=cols) == read_rows(built("hicervix"), columns=cols)


def test_hicervix_unlisted_image_is_skipped_with_reason(tmp_path, synth_raw):
    from cytohub.build import build

    raw = _copy(synth_raw, "hicervix", tmp_path)
    shutil.copy(next((raw / "test").iterdir()), raw / "test" / "extra-cell.jpg")
    build(registry.get("hicervix"), raw, tmp_path / "out")
    skipped = {f["path"]: f["reason"] for f in report(tmp_path / "out")["files"]["list"] if f["status"] == "skipped"}
    assert skipped["test/extra-cell.jpg"] == "in test/ but not listed in test.csv (no label)"


@pytest.mark.parametrize("old,new,needles", [
    (",HSV,24,microbe,HSV,", ",Herpes,24,microbe,HSV,", ["val.csv line", "unknown class_name 'Herpes'"]),
    (",HSV,24,microbe,HSV,", ",HSV,23,microbe,HSV,", ["val.csv line", "class_id '23' for HSV", "uses 24"]),
    (",AGC,13,AGC,,", ",AGC,13,AGC,AGC-NOS,", ["val.csv line", "levels", "expected ['AGC']"]),
])
def test_hicervix_inconsistent_csv_row(tmp_path, synth_raw, old, new, needles):
    raw = _copy(synth_raw, "hicervix", tmp_path)
    text = (raw / "val.csv").read_text()
    assert old in text
    (raw / "val.csv").write_text(text.replace(old, new, 1))
    build_fails("hicervix", raw, tmp_path / "out", *needles)


def test_hicervix_missing_image_and_missing_csv(tmp_path, synth_raw):
    raw = _copy(synth_raw, "hicervix", tmp_path)
    victim = sorted((raw / "test").iterdir())[3]
    victim.unlink()
    build_fails("hicervix", raw, tmp_path / "out", "test.csv", "not found", f"test/{victim.name}")
    shutil.rmtree(raw)
    raw = _copy(synth_raw, "hicervix", tmp_path)
    (raw / "val.csv").unlink()
    build_fails("hicervix", raw, tmp_path / "out", "no val.csv found")


def test_hicervix_bad_header(tmp_path, synth_raw):
    raw = _copy(synth_raw, "hicervix", tmp_path)
    text = (raw / "train.csv").read_text()
    (raw / "train.csv").write_text(text.replace("image_name,", "filename,", 1))
    build_fails("hicervix", raw, tmp_path / "out", "train.csv", "expected image_name,class_name")


def test_hicervix_real_csvs(tmp_path):
    """The official CSVs with a tiny synthetic image at every listed name (hard links of one JPEG):
    split sizes, per-class counts and the tree match the published ones."""
    real = shared_real("hicervix")
    if real is None:
        pytest.skip("../shared/real/hicervix is absent")
    raw = tmp_path / "raw"
    raw.mkdir()
    for name in ("train.csv", "val.csv", "test.csv", "hierarchy_names.csv"):
        shutil.copy(real / name, raw / name)
    tiny = tmp_path / "tiny.jpg"
    tiny.write_bytes(synth.encode(Image.new("RGB", (8, 8), (200, 180, 190)), "JPEG"))
    for split in ("train", "val", "test"):
        (raw / split).mkdir()
        with open(real / f"{split}.csv", newline="", encoding="utf-8") as fh:
            for rec in csv.DictReader(fh):
                try:
                    os.link(tiny, raw / split / rec["image_name"])
                except OSError:
                    shutil.copy(tiny, raw / split / rec["image_name"])
    b = registry.get("hicervix")
    names = b.class_names()
    labels = b.label_index()
    counts: Counter = Counter()
    paths: set[tuple[str, ...]] = set()
    with RawTree(raw) as tree:
        for row in b.examples(tree):
            counts[(row["split"], row["label"])] += 1
            assert names.index(row["label"]) == row["extra"]["class_id"]
            paths.add(labels[row["label"]].path)
            assert row["extra"]["name_en"] == labels[row["label"]].description
        assert not tree.skipped
    per_split = Counter()
    for (split, _), n in counts.items():
        per_split[split] += n
    assert per_split == {"train": 28160, "validation": 4018, "test": 8051}
    for _, name, _, _, (tr, va, te) in hicervix.CLASSES:
        assert (counts[("train", name)], counts[("validation", name)], counts[("test", name)]) == (tr, va, te)
    # the tree: 4 level-1 branches, 21 level-2 nodes, 4 level-3 leaves, 3 internal nodes used as labels
    assert {p[0] for p in paths} == {"negative", "ASC", "AGC", "microbe"}
    assert len({p[:2] for p in paths if len(p) >= 2}) == 21
    assert sorted(p[2] for p in paths if len(p) == 3) == ["ADC-ECC", "ADC-EMC", "AGC-ECC-NOS", "AGC-EMC-NOS"]
    assert sum(counts[(s, "AGC")] for s in ("train", "validation", "test")) == 2089


# =========================================================================================== SIPaKMeD
SIPAKMED_ZIPS = ["im_Dyskeratotic.zip", "im_Koilocytotic.zip", "im_Metaplastic.zip", "im_Parabasal.zip",
                 "im_Superficial-Intermediate.zip"]


def test_sipakmed_synthetic_layout(synth_raw):
    import zipfile

    raw = synth_raw("sipakmed")
    assert sorted(p.name for p in raw.iterdir() if not p.name.startswith(".")) == SIPAKMED_ZIPS
    names = zipfile.ZipFile(raw / "im_Koilocytotic.zip").namelist()
    assert "im_Koilocytotic/001.bmp" in names
    assert {"im_Koilocytotic/001_cyt01.dat", "im_Koilocytotic/001_nuc02.dat"} <= set(names)
    assert {"im_Koilocytotic/CROPPED/003_02.bmp", "im_Koilocytotic/CROPPED/003_02_cyt.dat",
            "im_Koilocytotic/CROPPED/003_02_nuc.dat"} <= set(names)
    assert len(names) == 3 * (1 + 2 * 2) + 6 * 3  # 3 cluster images with 2 cells each
    dat = zipfile.ZipFile(raw / "im_Koilocytotic.zip").read("im_Koilocytotic/CROPPED/001_01_nuc.dat").decode()
    assert all(len(line.split(",")) == 2 for line in dat.splitlines()) and len(dat.splitlines()) == 16
    im = Image.open(io.BytesIO(zipfile.ZipFile(raw / "im_Koilocytotic.zip").read("im_Koilocytotic/001.bmp")))
    assert im.format == "BMP" and im.mode == "RGB"


def test_sipakmed_rows_and_outlines(built, synth_raw):
    import zipfile

    folder = built("sipakmed")
    rows = read_rows(folder)
    assert len(rows) == 5 * 6
    names = _names("sipakmed")
    by_id = {r["id"]: r for r in rows}
    r = by_id["Koilocytotic-003_02"]
    assert names[r["label"]] == "Koilocytotic" and r["label_path"] == ["abnormal", "Koilocytotic"]
    assert r["harmonized"] == "LSIL" and r["group"]["fov_id"] == "Koilocytotic-003"
    assert json.loads(r["extra"]) == {"cluster_image": "003.bmp", "cell": "02"}
    assert r["source_path"].split(";")[1].endswith("CROPPED/003_02_cyt.dat")
    assert [o["category"] for o in r["objects"]] == ["cytoplasm", "nucleus"]
    # the known point: the first vertex of the .dat file is the first polygon vertex, as (x, y)
    z = zipfile.ZipFile(synth_raw("sipakmed") / "im_Koilocytotic.zip")
    x0, y0 = (float(v) for v in z.read("im_Koilocytotic/CROPPED/003_02_nuc.dat").decode().splitlines()[0].split(","))
    nuc = r["objects"][1]
    assert nuc["polygon"][:2] == pytest.approx([x0, y0], abs=1e-3)
    xs, ys = nuc["polygon"][0::2], nuc["polygon"][1::2]
    assert nuc["bbox"] == pytest.approx([min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)], abs=1e-3)
    # x is the column: the nucleus centre is dark in the crop, the cytoplasm outline encloses the nucleus
    im = Image.open(io.BytesIO(r["image"]["bytes"])).convert("L")
    assert im.getpixel((round(sum(xs) / len(xs)), round(sum(ys) / len(ys)))) < 120
    cx, cy, cw, ch = r["objects"][0]["bbox"]
    assert cx <= min(xs) and cy <= min(ys) and cx + cw >= max(xs) and cy + ch >= max(ys)
    assert im.size[0] >= cx + cw and im.size[1] >= cy + ch
    assert {names[x["label"]] for x in rows if x["harmonized"] is None} == {"Dyskeratotic"}
    assert {x["harmonized"] for x in rows if names[x["label"]] == "Superficial-Intermediate"} == {"NILM/squamous"}


def test_sipakmed_cluster_files_are_skipped_with_reasons(built):
    files = report(built("sipakmed"))["files"]
    reasons = Counter(f.get("reason") for f in files["list"] if f["status"] == "skipped")
    assert reasons["cluster image (rows are its cropped cells in CROPPED/)"] == 5 * 3
    assert reasons["outline in cluster-image coordinates (the crop's own outline is used)"] == 5 * 3 * 2 * 2
    assert files["used"] == 5 * 6 * 3


def test_sipakmed_kaggle_double_nesting(tmp_path, synth_raw, built):
    from cytohub.build import build

    flat = extract_all(synth_raw("sipakmed"), tmp_path / "flat")
    kaggle = tmp_path / "kaggle"
    for cls in flat.glob("im_*"):
        shutil.copytree(cls, kaggle / cls.name / cls.name)
    (kaggle / "im_Superficial-Intermediate").rename(kaggle / "im_Superficial_Intermediate")
    build(registry.get("sipakmed"), kaggle, tmp_path / "out", split="train=0.6,validation=0.2,test=0.2")
    cols = ["id", "label", "objects", "group"]
    assert read_rows(tmp_path / "out", columns=cols) == read_rows(built("sipakmed"), columns=cols)


@pytest.mark.parametrize("folder,expected", [
    ("im_Dyskeratotic", "Dyskeratotic"), ("im_Superficial-Intermediate", "Superficial-Intermediate"),
    ("Superficial_Intermediate", "Superficial-Intermediate"), ("im_parabasal", "Parabasal"),
    ("Metaplastic", "Metaplastic"), ("CROPPED", None), ("im_Koilocytes", None), ("im_Dyskeratotic.zip", "Dyskeratotic"),
])
def test_sipakmed_class_folder_matching(folder, expected):
    assert sipakmed.class_of(folder) == expected


def test_sipakmed_dat_number_formats(tmp_path):
    (tmp_path / "001_01_nuc.dat").write_text("  1.2345000e+02 ,  4.5000000e+01\n12.5,30.25\r\n\n7 8\n")
    with RawTree(tmp_path) as tree:
        assert sipakmed.read_dat(tree.one("001_01_nuc.dat")) == [123.45, 45.0, 12.5, 30.25, 7.0, 8.0]


def test_sipakmed_bad_outline_and_names(tmp_path, synth_raw):
    flat = extract_all(synth_raw("sipakmed"), tmp_path / "raw")
    dat = flat / "im_Parabasal" / "CROPPED" / "002_01_cyt.dat"
    dat.write_text(dat.read_text() + "12.0;abc\n")
    build_fails("sipakmed", flat, tmp_path / "out", "im_Parabasal/CROPPED/002_01_cyt.dat line 25",
                "vertex value 2 is 'abc'")
    dat.write_text("1,2\n3,4\n")
    build_fails("sipakmed", flat, tmp_path / "out", "002_01_cyt.dat", "2 vertices")
    dat.unlink()
    (flat / "im_Parabasal" / "CROPPED" / "002_01 copy.bmp").write_bytes(b"BM")
    build_fails("sipakmed", flat, tmp_path / "out", "002_01 copy.bmp", "expected NNN_MM.bmp")


def test_sipakmed_missing_and_orphan_outlines(tmp_path, synth_raw):
    from cytohub.build import build

    flat = extract_all(synth_raw("sipakmed"), tmp_path / "raw")
    (flat / "im_Metaplastic" / "CROPPED" / "001_02_nuc.dat").unlink()
    (flat / "im_Metaplastic" / "CROPPED" / "003_01.bmp").unlink()
    build(registry.get("sipakmed"), flat, tmp_path / "out")
    rows = {r["id"]: r for r in read_rows(tmp_path / "out", columns=["id", "objects"])}
    assert len(rows) == 29 and "Metaplastic-003_01" not in rows
    assert [o["category"] for o in rows["Metaplastic-001_02"]["objects"]] == ["cytoplasm"]
    skipped = {f["path"]: f["reason"] for f in report(tmp_path / "out")["files"]["list"] if f["status"] == "skipped"}
    assert skipped["im_Metaplastic/CROPPED/003_01_cyt.dat"] == "outline without its cropped image"


# =========================================================================================== Herlev
HERLEV_CLASSES = ["normal_superficiel", "normal_intermediate", "normal_columnar", "light_dysplastic",
                  "moderate_dysplastic", "severe_dysplastic", "carcinoma_in_situ"]


def test_herlev_synthetic_layout(synth_raw):
    import zipfile

    raw = synth_raw("herlev")
    assert sorted(p.name for p in raw.iterdir() if not p.name.startswith(".")) == ["smear2005.zip"]
    names = zipfile.ZipFile(raw / "smear2005.zip").namelist()
    assert sorted({n.split("/")[2] for n in names}) == sorted(HERLEV_CLASSES)
    assert all(n.startswith("smear2005/New database pictures/") for n in names)
    cis = sorted(n.split("/")[-1] for n in names if "/carcinoma_in_situ/" in n)
    assert len(cis) == 6 and sum(n.endswith(".BMP") for n in cis) == 3 and sum(n.endswith("-d.bmp") for n in cis) == 3
    assert all(re.fullmatch(r"\d{9}-\d{9}-\d{3}(\.BMP|-d\.bmp)", n) for n in cis)
    mask = Image.open(io.BytesIO(zipfile.ZipFile(raw / "smear2005.zip").read(
        next(n for n in names if n.endswith("-d.bmp")))))
    assert mask.format == "BMP" and mask.mode == "P" and set(np.unique(np.asarray(mask)).tolist()) == {0, 1, 2}


def test_herlev_rows(built):
    folder = built("herlev")
    assert _names("herlev") == HERLEV_CLASSES
    rows = read_rows(folder)
    assert len(rows) == 7 * 3
    names = _names("herlev")
    for r in rows:
        cls = names[r["label"]]
        stem = r["image"]["path"][:-len(".BMP")]
        assert r["id"] == f"{cls}-{stem}"
        assert r["mask"]["path"] == f"{stem}-d.bmp"
        assert r["group"]["fov_id"] == stem[:19]
        im = Image.open(io.BytesIO(r["image"]["bytes"]))
        mask = Image.open(io.BytesIO(r["mask"]["bytes"]))
        assert im.size == mask.size and im.format == "BMP"
        assert r["label_path"] == ["normal" if cls.startswith("normal") else "abnormal", cls]
    harm = {names[r["label"]]: r["harmonized"] for r in rows}
    assert harm == {"normal_superficiel": "NILM/squamous/superficial",
                    "normal_intermediate": "NILM/squamous/intermediate", "normal_columnar": "NILM/glandular",
                    "light_dysplastic": "LSIL", "moderate_dysplastic": "HSIL",
                    "severe_dysplastic": "HSIL", "carcinoma_in_situ": "HSIL"}
    # two cells of one source image: same group, hence the same split
    split_of = {}
    for split in report(folder)["splits"]:
        for r in read_rows(folder, split, columns=["group"]):
            assert split_of.setdefault(r["group"]["fov_id"], split) == split
    assert len(split_of) == 7 * 2


@pytest.mark.parametrize("folder,expected", [
    ("normal_superficiel", "normal_superficiel"), ("normal_superficial", "normal_superficiel"),
    ("Carcinoma_in_situ", "carcinoma_in_situ"), ("light dysplastic", "light_dysplastic"),
    ("mild_dysplastic", None), ("New database pictures", None),
])
def test_herlev_class_folder_matching(folder, expected):
    assert herlev.class_of(folder) == expected


def test_herlev_extracted_with_extras(tmp_path, synth_raw, built):
    from cytohub.build import build

    flat = extract_all(synth_raw("herlev"), tmp_path / "raw")
    pictures = flat / "smear2005" / "New database pictures"
    (pictures / "normal_superficiel").rename(pictures / "normal_superficial")
    (flat / "smear2005" / "features.xls").write_bytes(b"\xd0\xcf\x11\xe0")
    orphan = next((pictures / "light_dysplastic").glob("*-d.bmp"))
    shutil.copy(orphan, pictures / "light_dysplastic" / "999999999-999999999-001-d.bmp")
    build(registry.get("herlev"), flat, tmp_path / "out", split="train=0.6,validation=0.2,test=0.2")
    cols = ["id", "label", "mask", "group"]
    assert read_rows(tmp_path / "out", columns=cols) == read_rows(built("herlev"), columns=cols)
    skipped = {f["path"]: f["reason"] for f in report(tmp_path / "out")["files"]["list"] if f["status"] == "skipped"}
    assert skipped["smear2005/features.xls"] == "accompanying document or feature table (not read)"
    assert skipped["smear2005/New database pictures/light_dysplastic/999999999-999999999-001-d.bmp"] == \
        "mask without its cell image"


def test_herlev_bad_input(tmp_path, synth_raw):
    flat = extract_all(synth_raw("herlev"), tmp_path / "raw")
    pictures = flat / "smear2005" / "New database pictures"
    (pictures / "severe_dysplastic").rename(pictures / "koilocytes")
    build_fails("herlev", flat, tmp_path / "out", "New database pictures/koilocytes", "unknown class folder",
                 "normal_superficiel")
    (pictures / "koilocytes").rename(pictures / "severe_dysplastic")
    (pictures / "light_dysplastic").rename(pictures / "mild_dysplasia")  # and the parent folder renamed too
    pictures = pictures.rename(flat / "smear2005" / "pictures")
    build_fails("herlev", flat, tmp_path / "out", "smear2005/pictures/mild_dysplasia", "unknown class folder",
                "found carcinoma_in_situ/, mild_dysplasia/")
    (pictures / "mild_dysplasia").rename(pictures / "light_dysplastic")
    victim = sorted((pictures / "normal_columnar").glob("*.BMP"))[1]
    victim.write_bytes(victim.read_bytes()[:200])
    build_fails("herlev", flat, tmp_path / "out", victim.name, "truncated")


# =========================================================================================== Mendeley LBC
LBC_FOLDERS = ["High squamous intra-epithelial lesion", "Low squamous intra-epithelial lesion",
               "Negative for Intraepithelial malignancy", "Squamous cell carcinoma"]


def test_mendeley_lbc_synthetic_layout(synth_raw):
    import zipfile

    raw = synth_raw("mendeley-lbc")
    assert sorted(p.name for p in raw.iterdir() if not p.name.startswith(".")) == ["zddtpgzv63-4.zip"]
    names = zipfile.ZipFile(raw / "zddtpgzv63-4.zip").namelist()
    assert sorted({n.split("/")[1] for n in names}) == LBC_FOLDERS
    assert all(n.startswith("zddtpgzv63-4/") for n in names) and len(names) == 4 * 6
    assert "zddtpgzv63-4/Negative for Intraepithelial malignancy/NL_1_ (1).jpg" in names
    assert "zddtpgzv63-4/Squamous cell carcinoma/scc_3 (8).jpg" in names
    assert "zddtpgzv63-4/High squamous intra-epithelial lesion/HSIL_2 (4).jpg" in names


def test_mendeley_lbc_rows(built):
    folder = built("mendeley-lbc")
    assert _names("mendeley-lbc") == ["NILM", "LSIL", "HSIL", "SCC"]
    rows = read_rows(folder, columns=["id", "label", "label_path", "harmonized", "group", "extra", "image"])
    assert len(rows) == 24
    by_id = {r["id"]: r for r in rows}
    r = by_id["NILM-NL_1_ (2)"]
    assert r["label_path"] == ["Negative for Intraepithelial malignancy"] and r["harmonized"] == "NILM"
    assert r["group"]["slide_id"] == "NILM-NL_1" and json.loads(r["extra"])["field"] == 2
    assert r["image"]["path"] == "NL_1_ (2).jpg"
    scc = by_id["SCC-scc_3 (7)"]
    assert scc["group"]["slide_id"] == "SCC-SCC_3" and scc["harmonized"] == "SCC"
    assert json.loads(scc["extra"])["class_folder"] == "Squamous cell carcinoma"
    assert Counter(len(r["group"]["slide_id"]) > 0 for r in rows) == {True: 24}
    assert len({r["group"]["slide_id"] for r in rows}) == 12


@pytest.mark.parametrize("folder,expected", [
    ("Negative for Intraepithelial malignancy", "NILM"), ("negative for intraepithelial malignancy", "NILM"),
    ("High squamous intra-epithelial lesion", "HSIL"), ("High squamous intraepithelial lesion", "HSIL"),
    ("Low_squamous_intra-epithelial_lesion", "LSIL"), ("SCC", "SCC"), ("Squamous cell carcinoma ", "SCC"),
    ("Squamous cell carcinoma.zip", "SCC"), ("Adenocarcinoma", None), ("zddtpgzv63-4", None),
    ("zddtpgzv63-4.zip", None),
])
def test_mendeley_lbc_class_folder_matching(folder, expected):
    assert mendeley_lbc.class_of(folder) == expected


def test_mendeley_lbc_inner_zip_and_folder(tmp_path, synth_raw, built):
    """The nesting below zddtpgzv63-4/ is undocumented: an intermediate folder holding a zip also works."""
    from cytohub.build import build

    flat = extract_all(synth_raw("mendeley-lbc"), tmp_path / "flat")
    inner = tmp_path / "stage" / "LBC images"
    inner.mkdir(parents=True)
    for folder in (flat / "zddtpgzv63-4").iterdir():
        shutil.copytree(folder, inner / folder.name)
    outer = tmp_path / "outer" / "zddtpgzv63-4"
    outer.mkdir(parents=True)
    synth.zip_folder(inner, outer / "Liquid based cytology.zip")
    (outer / "README.txt").write_text("dataset description")
    build(registry.get("mendeley-lbc"), outer.parent, tmp_path / "out", split="train=0.6,validation=0.2,test=0.2")
    cols = ["id", "label", "group", "image"]
    assert read_rows(tmp_path / "out", columns=cols) == read_rows(built("mendeley-lbc"), columns=cols)
    skipped = {f["path"]: f["reason"] for f in report(tmp_path / "out")["files"]["list"] if f["status"] == "skipped"}
    assert skipped == {"zddtpgzv63-4/README.txt": "not part of the mendeley-lbc layout"}


def test_mendeley_lbc_bad_input(tmp_path, synth_raw):
    flat = extract_all(synth_raw("mendeley-lbc"), tmp_path / "raw")
    root = flat / "zddtpgzv63-4"
    (root / "Squamous cell carcinoma").rename(root / "Adenocarcinoma")
    build_fails("mendeley-lbc", flat, tmp_path / "out", "Adenocarcinoma/scc_1 (1).jpg",
                 "not inside a class folder", "Negative for Intraepithelial malignancy")
    (root / "Adenocarcinoma").rename(root / "Squamous cell carcinoma")
    victim = root / "Low squamous intra-epithelial lesion" / "LSIL_2 (4).jpg"
    victim.write_bytes(b"<html>quota exceeded</html>")
    build_fails("mendeley-lbc", flat, tmp_path / "out", "LSIL_2 (4).jpg", "not a readable image")
