"""organ_cls group: body-cavity-fluid, fnac2019, breast-cyto, tf-cytology, urine-cyto (class-folder image corpora
of non-gynecologic cytology) and their taxonomy trees (effusion, breast-yokohama, urine-paris)."""

from __future__ import annotations

import io
import json
import shutil
import zipfile
from pathlib import Path

import pytest
from PIL import Image

from cytohub import registry
from cytohub.taxonomy import load_taxonomy
from helpers import build_fails, extract_all, read_rows, report

GROUP = ("body-cavity-fluid", "fnac2019", "breast-cyto", "tf-cytology", "urine-cyto")
TAXONOMY_DIR = Path(__file__).resolve().parents[1] / "src" / "cytohub" / "data" / "taxonomy"




def _names(name: str) -> list[str]:
    return registry.get(name).class_names()


def _labelled(rows: list[dict], name: str) -> dict[str, list[dict]]:
    names = _names(name)
    out: dict[str, list[dict]] = {}
    for r in rows:
        out.setdefault(names[r["label"]], []).append(r)
    return out


# ------------------------------------------------------------------------------------------- taxonomy
@pytest.mark.parametrize("name", GROUP)
def test_every_class_maps_to_an_existing_node_or_explicitly_none(name):
    nodes = load_taxonomy().nodes
    cls = registry.builders()[name]
    assert cls.labels
    for lab in cls.labels:
        assert lab.harmonized is None or lab.harmonized in nodes, (name, lab.name, lab.harmonized)


@pytest.mark.parametrize("fname,prefix,roots", [
    ("effusion.json", "serous/", {"serous/ND", "serous/NFM", "serous/AUS", "serous/SFM", "serous/MAL"}),
    ("breast-yokohama.json", "breast/",
     {"breast/insufficient", "breast/benign", "breast/atypical", "breast/suspicious", "breast/malignant"}),
    ("urine-paris.json", "urine/",
     {"urine/ND", "urine/NHGUC", "urine/AUC", "urine/SHGUC", "urine/neoplasm", "urine/other-malignancy"}),
])
def test_taxonomy_files(fname, prefix, roots):
    tree = json.loads((TAXONOMY_DIR / fname).read_text(encoding="utf-8"))
    assert set(tree) >= {"id", "title", "scope", "nodes"}
    ids = [n["id"] for n in tree["nodes"]]
    assert len(ids) == len(set(ids)) and all(i.startswith(prefix) for i in ids)
    assert {n["id"] for n in tree["nodes"] if n["parent"] is None} == roots
    tax = load_taxonomy()
    for i in ids:
        assert tax.nodes[i].tree == tree["id"]


def test_taxonomy_hierarchy():
    tax = load_taxonomy()
    assert tax.ancestors("serous/MAL/secondary/adenocarcinoma") == [
        "serous/MAL", "serous/MAL/secondary", "serous/MAL/secondary/adenocarcinoma"]
    assert tax.ancestors("urine/HGUC") == ["urine/neoplasm", "urine/HGUC"]
    assert tax.ancestors("urine/NHGUC/polyomavirus") == ["urine/NHGUC", "urine/NHGUC/polyomavirus"]


# ------------------------------------------------------------------------------------------- body-cavity-fluid
def test_bcfc_synthetic_layout(synth_raw):
    raw = synth_raw("body-cavity-fluid")
    assert sorted(p.name for p in raw.iterdir() if not p.name.startswith(".")) == [
        "body-cavity-fluid-cytology-images.zip"]
    zf = zipfile.ZipFile(raw / "body-cavity-fluid-cytology-images.zip")
    names = zf.namelist()
    assert sorted({n.split("/")[0] for n in names}) == ["Malignant", "benign"]  # mixed case, on purpose
    assert {n.rsplit(".", 1)[1] for n in names} == {"png", "jpg"}
    assert len(names) == 8
    im = Image.open(io.BytesIO(zf.read("Malignant/001.png")))
    assert im.size == (256, 192) and im.format == "PNG"


def test_bcfc_rows(built):
    rows = read_rows(built("body-cavity-fluid"))
    by = _labelled(rows, "body-cavity-fluid")
    assert {k: len(v) for k, v in by.items()} == {"benign": 4, "malignant": 4}
    r = next(r for r in by["malignant"] if r["id"] == "malignant/002.jpg")
    assert r["label_path"] == ["malignant"] and r["harmonized"] == "serous/MAL"
    assert json.loads(r["extra"]) == {"class_folder": "Malignant"}
    assert r["source_path"].endswith("body-cavity-fluid-cytology-images.zip/Malignant/002.jpg")
    assert r["image"]["path"] == "002.jpg"
    assert all(b["harmonized"] == "serous/NFM" and b["label_path"] == ["benign"] for b in by["benign"])
    assert all(r["mpp"] is None and r["objects"] == [] and r["group"]["patient_id"] is None for r in rows)


def test_bcfc_folder_case_does_not_matter(tmp_path, synth_raw, built):
    from cytohub.build import build

    ext = extract_all(synth_raw("body-cavity-fluid"), tmp_path / "x" / "Body Cavity Fluid")
    (ext / "benign").rename(ext / "BENIGN")
    (ext / "Malignant").rename(ext / "malignant ")
    (ext / "README.txt").write_text("Leishman-stained smears")
    res = build(registry.get("body-cavity-fluid"), tmp_path / "x", tmp_path / "out",
                split="train=0.6,validation=0.2,test=0.2")
    a = read_rows(tmp_path / "out", columns=["id", "label", "image"])
    b = read_rows(built("body-cavity-fluid"), columns=["id", "label", "image"])
    assert a == b
    skipped = {f["path"]: f["reason"] for f in res.report["files"]["list"] if f["status"] == "skipped"}
    assert skipped["Body Cavity Fluid/README.txt"] == "not an image (documentation or metadata file)"


def test_bcfc_unknown_class_folder(tmp_path, synth_raw):
    ext = extract_all(synth_raw("body-cavity-fluid"), tmp_path / "raw")
    (ext / "suspicious").mkdir()
    shutil.copy(ext / "benign" / "001.png", ext / "suspicious" / "007.png")
    build_fails("body-cavity-fluid", ext, tmp_path / "out", "suspicious/007.png", "not a body-cavity-fluid class",
                 "benign/, malignant/")


def test_bcfc_image_outside_any_folder(tmp_path, synth_raw):
    ext = extract_all(synth_raw("body-cavity-fluid"), tmp_path / "raw")
    shutil.copy(ext / "benign" / "001.png", ext / "cover.png")
    build_fails("body-cavity-fluid", ext, tmp_path / "out", "cover.png", "the top level (no class folder)")


def test_bcfc_zip_and_extracted_copy_together(tmp_path, synth_raw):
    raw = tmp_path / "raw"
    shutil.copytree(synth_raw("body-cavity-fluid"), raw)
    extract_all(raw, raw / "unzipped")
    build_fails("body-cavity-fluid", raw, tmp_path / "out", "Malignant/001.png", "same image name in the same class")


# ------------------------------------------------------------------------------------------- fnac2019
def test_fnac_synthetic_layout(synth_raw):
    raw = synth_raw("fnac2019")
    names = zipfile.ZipFile(raw / "FNAC-2019.zip").namelist()
    assert names[0] == "FNAC-2019/base_data/B/1.jpg"
    assert sorted({n.rsplit("/", 1)[0] for n in names}) == ["FNAC-2019/base_data/B", "FNAC-2019/base_data/M"]
    assert len(names) == 8


def test_fnac_full_scale_counts_are_the_published_ones():
    from cytohub.builders import fnac2019

    assert fnac2019.image_counts("full") == {"benign": 99, "malignant": 113}
    assert sum(fnac2019.image_counts("full").values()) == registry.get("fnac2019").num_images == 212


def test_fnac_rows(built):
    rows = read_rows(built("fnac2019"))
    by = _labelled(rows, "fnac2019")
    assert {k: len(v) for k, v in by.items()} == {"benign": 4, "malignant": 4}
    ids = sorted(r["id"] for r in rows)
    assert ids == [f"benign/{n}.jpg" for n in range(1, 5)] + [f"malignant/{n}.jpg" for n in range(1, 5)]
    m = next(r for r in rows if r["id"] == "malignant/3.jpg")
    assert m["harmonized"] == "breast/malignant" and m["label_path"] == ["malignant"]
    assert json.loads(m["extra"]) == {"class_folder": "M"}
    assert m["source_path"] == "FNAC-2019.zip/FNAC-2019/base_data/M/3.jpg"
    assert all(r["harmonized"] == "breast/benign" for r in by["benign"])


def test_fnac_natural_order_and_derived_crops_skipped(tmp_path, synth_raw):
    from cytohub.build import build

    ext = extract_all(synth_raw("fnac2019"), tmp_path / "raw")
    shutil.copy(ext / "FNAC-2019/base_data/M/1.jpg", ext / "FNAC-2019/base_data/M/10.jpg")
    crops = ext / "FNAC-2019" / "split_data" / "M_1"
    crops.mkdir(parents=True)
    shutil.copy(ext / "FNAC-2019/base_data/M/1.jpg", crops / "0_0.jpg")
    res = build(registry.get("fnac2019"), ext, tmp_path / "out")
    rows = read_rows(tmp_path / "out", columns=["id"])
    assert [r["id"] for r in rows][4:] == ["malignant/1.jpg", "malignant/2.jpg", "malignant/3.jpg",
                                           "malignant/4.jpg", "malignant/10.jpg"]
    skipped = {f["path"]: f["reason"] for f in res.report["files"]["list"] if f["status"] == "skipped"}
    assert "TCT-InfoNCE" in skipped["FNAC-2019/split_data/M_1/0_0.jpg"]


def test_fnac_unknown_folder(tmp_path, synth_raw):
    ext = extract_all(synth_raw("fnac2019"), tmp_path / "raw")
    (ext / "FNAC-2019/base_data/M").rename(ext / "FNAC-2019/base_data/Malign")
    build_fails("fnac2019", ext, tmp_path / "out", "base_data/Malign/1.jpg", "not a fnac2019 class folder",
                 "B/ (benign), M/ (malignant)")


# ------------------------------------------------------------------------------------------- breast-cyto
def test_breast_cyto_synthetic_layout(synth_raw):
    names = zipfile.ZipFile(synth_raw("breast-cyto") / "breast_cancer_images.zip").namelist()
    assert sorted({n.rsplit("/", 1)[0] for n in names}) == [
        "Cytological images/G1", "Cytological images/G2", "Cytological images/G3",
        "Histological images/G1", "Histological images/G2", "Histological images/G3"]
    assert len(names) == 12
    im = Image.open(io.BytesIO(zipfile.ZipFile(synth_raw("breast-cyto") / "breast_cancer_images.zip")
                                .read("Histological images/G3/2.jpg")))
    assert im.size == (136, 102)  # 3264 x 2448 scaled down, same 4:3 aspect


def test_breast_cyto_rows(built):
    rows = read_rows(built("breast-cyto"))
    by = _labelled(rows, "breast-cyto")
    assert {k: len(v) for k, v in by.items()} == {"G1": 4, "G2": 4, "G3": 4}
    cyto = next(r for r in rows if r["id"] == "cytology/g2/1.jpg")
    assert cyto["label_path"] == ["cytology", "G2"] and cyto["harmonized"] == "breast/malignant"
    assert json.loads(cyto["extra"]) == {"modality": "cytology", "class_folder": "G2"}
    hist = next(r for r in rows if r["id"] == "histology/g2/1.jpg")
    assert hist["label_path"] == ["histology", "G2"] and hist["harmonized"] is None
    assert hist["source_path"] == "breast_cancer_images.zip/Histological images/G2/1.jpg"


@pytest.mark.parametrize("parts,expected", [
    (("Cytological images", "G1", "1.jpg"), "cytology"), (("x", "HISTOLOGY", "g1", "1.jpg"), "histology"),
    (("Cytological and histological images of breast cancer", "G1", "1.jpg"), None),
    (("Cytological and histological images", "Histo", "Grade 1", "1.jpg"), "histology"), (("G1", "1.jpg"), None),
])
def test_breast_cyto_modality(parts, expected):
    from cytohub.builders import breast_cyto

    class F:  # the only attribute modality_of reads
        def __init__(self, p):
            self.parts = p

    assert breast_cyto.modality_of(F(parts)) == expected


def test_breast_cyto_without_modality_folder_and_grade_spelling(tmp_path, synth_raw):
    from cytohub.build import build

    ext = extract_all(synth_raw("breast-cyto"), tmp_path / "raw")
    shutil.rmtree(ext / "Histological images")
    (ext / "Cytological images" / "G1").rename(ext / "Cytological images" / "Grade 1")
    shutil.move(ext / "Cytological images" / "G3", ext / "g3")
    build(registry.get("breast-cyto"), ext, tmp_path / "out")
    rows = {r["id"]: r for r in read_rows(tmp_path / "out")}
    assert sorted(rows) == ["cytology/g1/1.jpg", "cytology/g1/2.jpg", "cytology/g2/1.jpg", "cytology/g2/2.jpg",
                            "unknown/g3/1.jpg", "unknown/g3/2.jpg"]
    assert rows["unknown/g3/1.jpg"]["harmonized"] is None and rows["unknown/g3/1.jpg"]["label_path"] == ["G3"]
    assert json.loads(rows["cytology/g1/1.jpg"]["extra"])["class_folder"] == "Grade 1"


def test_breast_cyto_benign_folder_is_an_error(tmp_path, synth_raw):
    ext = extract_all(synth_raw("breast-cyto"), tmp_path / "raw")
    (ext / "Cytological images" / "G2").rename(ext / "Cytological images" / "Fibroadenoma")
    build_fails("breast-cyto", ext, tmp_path / "out", "Cytological images/Fibroadenoma/1.jpg",
                 "not a breast-cyto class folder", "G1/, G2/, G3/")


# ------------------------------------------------------------------------------------------- tf-cytology
def test_tf_cytology_is_declared_unverified_with_its_guesses():
    b = registry.get("tf-cytology")
    assert b.layout == "unverified" and b.redistribution == "forbidden" and b.license == "unknown"
    assert any("guess" in a for a in b.assumptions)
    assert all(lab.harmonized is None for lab in b.labels)
    assert b.class_names() == ["Grade 0", "Grade 1", "Grade 2", "Grade 3"]


def test_tf_cytology_rows(built, synth_raw):
    assert zipfile.ZipFile(synth_raw("tf-cytology") / "TF_Cytology.zip").namelist()[:3] == [
        "Grade 0/001.png", "Grade 0/002.png", "Grade 1/001.png"]
    rows = read_rows(built("tf-cytology"))
    by = _labelled(rows, "tf-cytology")
    assert {k: len(v) for k, v in by.items()} == {f"Grade {g}": 2 for g in range(4)}
    r = next(r for r in rows if r["id"] == "grade-3/002.png")
    assert r["label_path"] == ["Nelson grade", "Grade 3"] and r["harmonized"] is None


@pytest.mark.parametrize("folder,label", [("0", "Grade 0"), ("G2", "Grade 2"), ("nelson_grade_3", "Grade 3"),
                                          ("GRADE 1", "Grade 1"), ("grade_1", "Grade 1")])
def test_tf_cytology_grade_spellings(folder, label):
    from cytohub.builders import tf_cytology
    from cytohub.formats.naming import alias_table, key

    assert alias_table(tf_cytology.ALIASES)[key(folder)] == label


def test_tf_cytology_other_layout_stops_with_a_pointer(tmp_path, synth_raw):
    ext = extract_all(synth_raw("tf-cytology"), tmp_path / "raw")
    (ext / "Grade 2").rename(ext / "dry eye")
    build_fails("tf-cytology", ext, tmp_path / "out", "dry eye/001.png", "not a tf-cytology class folder",
                 "layout unverified")


# ------------------------------------------------------------------------------------------- urine-cyto
def test_urine_synthetic_layout(synth_raw):
    names = zipfile.ZipFile(synth_raw("urine-cyto") / "dataverse_files.zip").namelist()
    assert names[0] == "MANIFEST.TXT" and "Urine cytology data.tab" in names
    assert "Polyomavirus (BKV)/001.jpg" in names and len(names) == 2 + 9 * 2


def test_urine_rows_and_harmonization(built):
    folder = built("urine-cyto")
    rows = read_rows(folder)
    by = _labelled(rows, "urine-cyto")
    assert {k: len(v) for k, v in by.items()} == {name: 2 for name in _names("urine-cyto")}
    expect = {"Negative": "urine/NHGUC", "Candidiasis": "urine/NHGUC/organism",
              "Schistosomiasis": "urine/NHGUC/organism", "Polyomavirus (BKV)": "urine/NHGUC/polyomavirus",
              "Reactive urothelial cells": "urine/NHGUC/reactive", "Urothelial carcinoma": "urine/neoplasm",
              "Low grade urothelial cells": "urine/LGUN", "HPV": None, "Cryptococcosis": "urine/NHGUC/organism"}
    assert {k: v[0]["harmonized"] for k, v in by.items()} == expect
    r = next(r for r in rows if r["id"] == "polyomavirus-bkv/002.jpg")
    assert r["label_path"] == ["Polyomavirus (BKV)"]
    skipped = {f["path"]: f["reason"] for f in report(folder)["files"]["list"] if f["status"] == "skipped"}
    assert skipped["dataverse_files.zip/MANIFEST.TXT"].startswith("Dataverse download manifest")
    assert skipped["dataverse_files.zip/Urine cytology data.tab"] == "tabular file (no image); not used"


def test_urine_folder_spellings(tmp_path, synth_raw):
    from cytohub.build import build

    ext = extract_all(synth_raw("urine-cyto"), tmp_path / "raw")
    for old, new in (("Polyomavirus (BKV)", "BK virus"), ("Candidiasis", "candida"), ("Schistosomiasis", "SCHISTOSOMA"),
                     ("Negative", "normal")):
        (ext / old).rename(ext / new)
    build(registry.get("urine-cyto"), ext, tmp_path / "out")
    rows = read_rows(tmp_path / "out")
    by = _labelled(rows, "urine-cyto")
    assert len(by["Polyomavirus (BKV)"]) == len(by["Candidiasis"]) == len(by["Schistosomiasis"]) == 2
    assert json.loads(by["Negative"][0]["extra"]) == {"class_folder": "normal"}


def test_urine_tabular_only_record_is_a_clear_error(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "MANIFEST.TXT").write_text("Files in this archive:\n\nUrine cytology data.tab\n")
    (raw / "Urine cytology data.tab").write_text("sample_id\tdiagnosis\n1\tCandidiasis\n")
    build_fails("urine-cyto", raw, tmp_path / "out", "no urine-cyto images", "tabular study data")


def test_urine_unknown_diagnosis_folder(tmp_path, synth_raw):
    ext = extract_all(synth_raw("urine-cyto"), tmp_path / "raw")
    (ext / "HPV").rename(ext / "Trichomonas")
    build_fails("urine-cyto", ext, tmp_path / "out", "Trichomonas/001.jpg", "not a urine-cyto class folder",
                 "Candidiasis/")
