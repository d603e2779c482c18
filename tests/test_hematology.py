"""Hematology builders (AML-Cytomorphology_LMU, bone-marrow, BMCD-FGCD) and BMT: layouts, labels, the
hematopoiesis taxonomy, real annotation files, and bad input."""

from __future__ import annotations

import io
import json
import shutil
import zipfile
from collections import Counter
from pathlib import Path

import pytest
from PIL import Image

from cytohub import registry
from cytohub.build import build
from cytohub.builders import aml_cytomorphology_lmu as aml
from cytohub.taxonomy import load_taxonomy
from helpers import build_fails, read_rows, report, shared_real

SPLIT = "train=0.6,validation=0.2,test=0.2"




def _copy(src: Path, dest: Path) -> Path:
    shutil.copytree(src, dest)
    return dest


# ============================================================================ hematopoiesis taxonomy
def test_taxonomy_tree_is_well_formed():
    tax = load_taxonomy()
    heme = {k: n for k, n in tax.nodes.items() if n.tree == "hematopoiesis"}
    assert len(heme) == 65
    assert all(k == "heme" or k.startswith(("heme/", "heme-artefact")) for k in heme)
    assert tax.ancestors("heme/granulocytic/neutrophilic/band") == [
        "heme", "heme/granulocytic", "heme/granulocytic/neutrophilic", "heme/granulocytic/neutrophilic/band"]
    assert tax.ancestors("heme/lymphoid/plasma/mature")[:2] == ["heme", "heme/lymphoid"]
    assert tax.nodes["heme-artefact"].parent is None  # an artefact is not a cell of any lineage
    for stage in ("myelocyte", "metamyelocyte", "band", "segmented"):
        for series in ("neutrophilic", "eosinophilic", "basophilic"):
            assert f"heme/granulocytic/{series}/{stage}" in heme


HEME_BUILDERS = ["aml-cytomorphology-lmu", "bone-marrow", "bmcd-fgcd", "bmt"]


@pytest.mark.parametrize("name", HEME_BUILDERS)
def test_every_class_is_mapped_or_explicitly_unmapped(name):
    cls = registry.builders()[name]
    module = __import__(cls.__module__, fromlist=["HARMONIZED"])
    mapping = module.HARMONIZED  # native class -> node id, or None where no honest node exists
    assert set(mapping) == set(cls.class_names())
    nodes = load_taxonomy().nodes
    for lab in cls.labels:
        assert lab.harmonized == mapping[lab.name]
        assert lab.harmonized is None or lab.harmonized in nodes, lab
        if lab.harmonized is not None and name != "bmt":
            assert nodes[lab.harmonized].tree == "hematopoiesis"


# ============================================================================ AML-Cytomorphology_LMU
def test_aml_synthetic_layout(synth_raw):
    raw = synth_raw("aml-cytomorphology-lmu")
    assert sorted(p.name for p in raw.iterdir() if not p.name.startswith(".")) == [
        "AML-Cytomorphology_LMU", "abbreviations.txt", "annotations.dat"]
    assert sorted(p.name for p in (raw / "AML-Cytomorphology_LMU").iterdir()) == sorted(aml.CODES)
    assert sorted(p.name for p in (raw / "AML-Cytomorphology_LMU" / "PMB").iterdir()) == [
        "PMB_0001.tiff", "PMB_0002.tiff", "PMB_0003.tiff"]
    data = (raw / "annotations.dat").read_bytes()
    assert data.startswith(b"BAS/BAS_0001.tiff BAS nan nan\nBAS/BAS_0002.tiff BAS BAS BAS\n")
    assert b"\r" not in data and data.endswith(b"\n") and data.count(b"\n") == 45
    assert b"BAS/BAS_0003.tiff BAS UNC UNC\n" in data
    assert b"EBO/EBO_0002.tiff EBO KSC EBO\n" in data  # first re-annotator disagrees
    im = Image.open(raw / "AML-Cytomorphology_LMU" / "BAS" / "BAS_0002.tiff")
    assert im.format == "TIFF" and im.mode == "RGBA" and im.size == (72, 72)
    assert Image.open(raw / "AML-Cytomorphology_LMU" / "NGS" / "NGS_0003.tiff").mode == "RGB"
    real = shared_real("aml_cytomorphology_lmu")
    if real:  # the synthetic abbreviations.txt is byte-identical to the published one
        assert (raw / "abbreviations.txt").read_bytes() == (real / "abbreviations.txt").read_bytes()


def test_aml_full_scale_counts_are_the_published_ones():
    lines = aml.synthetic_lines("full", 0)
    assert len(lines) == 18365 == aml.AMLCytomorphologyLMU.num_images
    counts = Counter(line.split()[1] for line in lines)
    assert counts["NGS"] == 8484 and counts["LYA"] == 11 and counts["PMB"] == 18 and counts["MYO"] == 3268


def test_aml_rows(built):
    rows = read_rows(built("aml-cytomorphology-lmu"))
    names = aml.AMLCytomorphologyLMU.class_names()
    assert names[:3] == ["BAS", "EBO", "EOS"] and len(names) == 15
    assert len(rows) == 45
    by_id = {r["id"]: r for r in rows}
    r = by_id["PMB_0001"]
    assert names[r["label"]] == "PMB" and r["label_path"] == ["Promyelocyte (bilobled)"]
    assert r["harmonized"] == "heme/granulocytic/promyelocyte/bilobed"
    assert r["source_path"] == "AML-Cytomorphology_LMU/PMB/PMB_0001.tiff"
    extras = {i: (json.loads(x["extra"]) if isinstance(x["extra"], str) else x["extra"]) for i, x in by_id.items()}
    assert extras["PMB_0001"] == {"reannotation_1": None, "reannotation_2": None}  # nan nan
    assert extras["PMB_0002"] == {"reannotation_1": "BAS", "reannotation_2": "PMB"}
    assert extras["PMO_0002"] == {"reannotation_1": "PMO", "reannotation_2": "PMO"}
    assert extras["EBO_0002"] == {"reannotation_1": "KSC", "reannotation_2": "EBO"}
    assert extras["PMB_0003"] == {"reannotation_1": "UNC", "reannotation_2": "UNC"}
    assert by_id["LYA_0002"]["harmonized"] == "heme/lymphoid/lymphocyte/atypical"
    assert by_id["MYB_0001"]["harmonized"] == "heme/granulocytic/neutrophilic/myelocyte"
    assert by_id["KSC_0001"]["harmonized"] == "heme/smudge-cell"
    assert all(x["mpp"] is None and x["objects"] == [] and x["group"]["patient_id"] is None for x in rows)
    assert by_id["BAS_0002"]["image"]["bytes"][:4] in (b"II*\x00", b"MM\x00*")  # TIFF passed through


def test_aml_every_raw_file_is_accounted_for(built):
    rep = report(built("aml-cytomorphology-lmu"))
    assert rep["files"]["used"] == 45 + 2  # 45 TIFFs, annotations.dat, abbreviations.txt


def _write_real_tree(root: Path, ann: Path, only: set[str] | None = None) -> list[str]:
    buf = io.BytesIO()
    Image.new("RGB", (4, 4), (200, 120, 160)).save(buf, "TIFF")
    lines = ann.read_text(encoding="ascii").splitlines()
    for line in lines:
        rel = line.split(" ")[0]
        if only is None or rel.split("/")[0] in only:
            p = root / "AML-Cytomorphology_LMU" / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(buf.getvalue())
    return lines


def test_aml_real_annotations_build_18365_rows(tmp_path):
    real = shared_real("aml_cytomorphology_lmu")
    if real is None:
        pytest.skip("../shared/real/aml_cytomorphology_lmu is absent")
    ann = real / "annotations.dat"
    # expected values from a plain reader, independent of the builder
    expected: Counter = Counter()
    reannotated = 0
    with open(ann, encoding="ascii") as fh:
        for line in fh:
            path, label, r1, r2 = line.rstrip("\n").split(" ")
            expected[label] += 1
            reannotated += (r1, r2) != ("nan", "nan")
    assert sum(expected.values()) == 18365 and reannotated == 1905
    # hard-coded values checked by hand against datasets-other.md §3
    assert expected["NGS"] == 8484 and expected["LYT"] == 3937 and expected["MYO"] == 3268
    assert expected["LYA"] == 11 and expected["KSC"] == 15 and expected["PMB"] == 18 and expected["BAS"] == 79

    raw = tmp_path / "raw"
    _write_real_tree(raw, ann)
    shutil.copy(ann, raw / "annotations.dat")
    shutil.copy(real / "abbreviations.txt", raw / "abbreviations.txt")
    out = tmp_path / "out"
    build(registry.get("aml-cytomorphology-lmu"), raw, out, split=SPLIT)
    rows = read_rows(out, columns=["id", "label", "harmonized", "extra"])
    assert len(rows) == 18365 == report(out)["num_rows"]
    names = aml.AMLCytomorphologyLMU.class_names()
    got = Counter(names[r["label"]] for r in rows)
    assert got == expected
    assert all(r["harmonized"] for r in rows)
    extra = {r["id"]: (json.loads(r["extra"]) if isinstance(r["extra"], str) else r["extra"]) for r in rows}
    assert extra["BAS_0021"] == {"reannotation_1": "UNC", "reannotation_2": "UNC"}
    assert extra["BAS_0040"] == {"reannotation_1": "EOS", "reannotation_2": "EOS"}
    assert extra["EBO_0014"] == {"reannotation_1": "LYT", "reannotation_2": "EBO"}
    assert extra["NGS_8484"] == {"reannotation_1": "NGS", "reannotation_2": "NGS"}
    assert extra["BAS_0001"] == {"reannotation_1": None, "reannotation_2": None}
    assert sum(e["reannotation_1"] is not None for e in extra.values()) == 1905


def test_aml_parse_real_abbreviations():
    real = shared_real("aml_cytomorphology_lmu")
    if real is None:
        pytest.skip("../shared/real/aml_cytomorphology_lmu is absent")
    found = aml.check_abbreviations((real / "abbreviations.txt").read_text(), "abbreviations.txt")
    assert found["PMB"] == "Promyelocyte (bilobled)" and found["UNC"].startswith("Image that could not")
    assert {k: v for k, v in found.items() if k in aml.CODES} == {c: lab.path[0] for c, lab in
                                                                  aml.AMLCytomorphologyLMU.label_index().items()}


def test_aml_zipped_annotations_and_extra_tiffs(tmp_path, synth_raw):
    raw = _copy(synth_raw("aml-cytomorphology-lmu"), tmp_path / "raw")
    data = (raw / "annotations.dat").read_bytes()
    (raw / "annotations.dat").unlink()
    with zipfile.ZipFile(raw / "AML-CYTOMORPHOLOGY_LMU-annotations-dat.zip", "w") as z:
        z.writestr("annotations.dat", data)
    stray = raw / "AML-Cytomorphology_LMU" / "NGS" / "NGS_0099.tiff"
    shutil.copy(raw / "AML-Cytomorphology_LMU" / "NGS" / "NGS_0001.tiff", stray)
    build(registry.get("aml-cytomorphology-lmu"), raw, tmp_path / "out", split=SPLIT)
    assert report(tmp_path / "out")["num_rows"] == 45
    skipped = {f["path"]: f.get("reason") for f in report(tmp_path / "out")["files"]["list"]}
    assert skipped["AML-Cytomorphology_LMU/NGS/NGS_0099.tiff"] == "TIFF not listed in annotations.dat"


def test_aml_missing_annotations(tmp_path, synth_raw):
    raw = _copy(synth_raw("aml-cytomorphology-lmu"), tmp_path / "raw")
    (raw / "annotations.dat").unlink()
    build_fails("aml-cytomorphology-lmu", raw, tmp_path / "out", "annotations.dat not found")


def test_aml_missing_image(tmp_path, synth_raw):
    raw = _copy(synth_raw("aml-cytomorphology-lmu"), tmp_path / "raw")
    (raw / "AML-Cytomorphology_LMU" / "MOB" / "MOB_0002.tiff").unlink()
    build_fails("aml-cytomorphology-lmu", raw, tmp_path / "out", "annotations.dat lists 1 images not found",
                 "MOB/MOB_0002.tiff")


@pytest.mark.parametrize("line,needle", [
    ("BAS/BAS_0001.tiff BAS nan", "has 3 fields; expected 4"),
    ("BAS/BAS_0001.tiff XYZ nan nan", "unknown class 'XYZ'"),
    ("BAS/BAS_0001.tiff EOS nan nan", "is in folder BAS but labelled EOS"),
    ("BAS/BAS_0001.tiff BAS EOS maybe", "unknown re-annotation 'maybe'"),
    ("BAS/basophil_1.tiff BAS nan nan", "is not <CLASS>/<CLASS>_<NNNN>.tiff"),
])
def test_aml_bad_annotation_line(tmp_path, synth_raw, line, needle):
    raw = _copy(synth_raw("aml-cytomorphology-lmu"), tmp_path / "raw")
    lines = (raw / "annotations.dat").read_text().splitlines()
    lines[0] = line
    (raw / "annotations.dat").write_text("\n".join(lines) + "\n")
    build_fails("aml-cytomorphology-lmu", raw, tmp_path / "out", "annotations.dat, line 1", needle)


def test_aml_unknown_code_in_abbreviations(tmp_path, synth_raw):
    raw = _copy(synth_raw("aml-cytomorphology-lmu"), tmp_path / "raw")
    with open(raw / "abbreviations.txt", "a") as fh:
        fh.write("HCL Hairy cell\n")
    build_fails("aml-cytomorphology-lmu", raw, tmp_path / "out", "abbreviations.txt", "['HCL']")


# ============================================================================ bone-marrow (Matek 2021)
BM_ZIP = "bone-marrow-cell-classification.zip"


def test_bone_marrow_synthetic_layout(synth_raw):
    raw = synth_raw("bone-marrow")
    assert sorted(p.name for p in raw.iterdir() if not p.name.startswith(".")) == [BM_ZIP]
    names = zipfile.ZipFile(raw / BM_ZIP).namelist()
    assert names[0] == "abbreviations.csv"
    abbr = zipfile.ZipFile(raw / BM_ZIP).read("abbreviations.csv").decode()
    assert abbr.splitlines()[:2] == ["Abbreviation;Meaning", "ABE;Abnormal eosinophil"]
    assert "bone_marrow_cell_dataset/ABE/ABE_00001.jpg" in names  # small class: flat
    assert "bone_marrow_cell_dataset/ART/0001-1000/ART_00001.jpg" in names
    assert "bone_marrow_cell_dataset/ART/0001-1000/ART_01000.jpg" in names
    assert "bone_marrow_cell_dataset/ART/1001-1002/ART_01001.jpg" in names
    assert "bone_marrow_cell_dataset/ART/1001-1002/ART_01002.jpg" in names
    assert len(names) == 1 + 1002 + 20 * 3


def test_bone_marrow_range_folders_at_full_scale():
    from cytohub.builders import bone_marrow as bm

    counts = bm.synthetic_counts("full")
    assert sum(counts.values()) == 171374 and counts["NGS"] == 29424 and counts["ABE"] == 8
    assert bm.range_folder(1, 19630) == "0001-1000" and bm.range_folder(1000, 19630) == "0001-1000"
    assert bm.range_folder(1001, 19630) == "1001-2000"
    assert bm.range_folder(19630, 19630) == "19001-19630"
    assert bm.range_folder(11994, 11994) == "11001-11994"


def test_bone_marrow_rows(built):
    from cytohub.builders import bone_marrow as bm

    rows = read_rows(built("bone-marrow"), columns=["id", "label", "label_path", "harmonized", "source_path"])
    names = bm.BoneMarrow.class_names()
    assert len(rows) == 1062 and len(names) == 21
    by_id = {r["id"]: r for r in rows}
    art = by_id["ART_01002"]
    assert names[art["label"]] == "ART" and art["harmonized"] == "heme-artefact"
    assert art["source_path"].endswith("bone_marrow_cell_dataset/ART/1001-1002/ART_01002.jpg")
    fgc = by_id["FGC_00002"]
    assert fgc["label_path"] == ["Faggott cell"] and fgc["harmonized"] == "heme/granulocytic/promyelocyte/faggot-cell"
    assert by_id["BLA_00001"]["harmonized"] == "heme/immature/blast"
    assert by_id["OTH_00003"]["harmonized"] == "heme"
    assert by_id["HAC_00001"]["harmonized"] == "heme/lymphoid/hairy-cell"
    assert by_id["PEB_00001"]["label_path"] == ["Proerythroblast"]
    assert Counter(names[r["label"]] for r in rows)["ART"] == 1002


def test_bone_marrow_tcia_folder_and_flat_big_class(tmp_path, synth_raw, built):
    """The TCIA copy (BM_cytomorphology_data/, no abbreviations.csv) and a flat big class build the same rows."""
    from helpers import extract_all

    ext = extract_all(synth_raw("bone-marrow"), tmp_path / "x")
    tcia = tmp_path / "BM_cytomorphology_data"
    shutil.move(ext / "bone_marrow_cell_dataset", tcia)
    for p in (tcia / "ART" / "1001-1002").iterdir():  # flatten one range folder: still accepted
        p.rename(tcia / "ART" / p.name)
    (tcia / "ART" / "1001-1002").rmdir()
    build(registry.get("bone-marrow"), tcia, tmp_path / "out", split=SPLIT)
    a = read_rows(tmp_path / "out", columns=["id", "label", "image"])
    b = read_rows(built("bone-marrow"), columns=["id", "label", "image"])
    assert a == b


def _bm_extracted(tmp_path, synth_raw) -> Path:
    from helpers import extract_all

    return extract_all(synth_raw("bone-marrow"), tmp_path / "raw")


def test_bone_marrow_unknown_class_folder(tmp_path, synth_raw):
    raw = _bm_extracted(tmp_path, synth_raw)
    (raw / "bone_marrow_cell_dataset" / "KSC").rename(raw / "bone_marrow_cell_dataset" / "XYZ")
    build_fails("bone-marrow", raw, tmp_path / "out", "XYZ/KSC_00001.jpg", "unknown class folder 'XYZ'",
                 "ABE, ART")


def test_bone_marrow_file_in_the_wrong_range_folder(tmp_path, synth_raw):
    raw = _bm_extracted(tmp_path, synth_raw)
    art = raw / "bone_marrow_cell_dataset" / "ART"
    shutil.move(art / "0001-1000" / "ART_00005.jpg", art / "1001-1002" / "ART_00005.jpg")
    build_fails("bone-marrow", raw, tmp_path / "out", "1001-1002/ART_00005.jpg", "outside its range folder")


def test_bone_marrow_bad_file_name_and_duplicate(tmp_path, synth_raw):
    raw = _bm_extracted(tmp_path, synth_raw)
    mon = raw / "bone_marrow_cell_dataset" / "MON"
    (mon / "MON_00002.jpg").rename(mon / "monocyte 2.jpg")
    build_fails("bone-marrow", raw, tmp_path / "out", "MON/monocyte 2.jpg", "MON_<5 digits>.jpg")
    (mon / "monocyte 2.jpg").rename(mon / "MON_00002.jpg")
    (mon / "extra").mkdir()
    shutil.copy(mon / "MON_00001.jpg", mon / "extra" / "MON_00001.jpg")
    build_fails("bone-marrow", raw, tmp_path / "out", "MON/extra/MON_00001.jpg", "found sub-folders 'extra'")


def test_bone_marrow_bad_abbreviations(tmp_path, synth_raw):
    raw = _bm_extracted(tmp_path, synth_raw)
    with open(raw / "abbreviations.csv", "a") as fh:
        fh.write("XYZ;Mystery cell\n")
    build_fails("bone-marrow", raw, tmp_path / "out", "abbreviations.csv, line 23", "'XYZ'")


def test_bone_marrow_duplicate_image(tmp_path, synth_raw):
    raw = _bm_extracted(tmp_path, synth_raw)
    art = raw / "bone_marrow_cell_dataset" / "ART"
    shutil.copy(art / "0001-1000" / "ART_00005.jpg", art / "ART_00005.jpg")
    build_fails("bone-marrow", raw, tmp_path / "out", "ART_00005 appears twice")


# ============================================================================ BMCD-FGCD
def test_bmcd_synthetic_layout(synth_raw):
    raw = synth_raw("bmcd-fgcd")
    assert sorted(p.name for p in raw.iterdir() if not p.name.startswith(".")) == ["BMCD-FGCD.zip"]
    names = zipfile.ZipFile(raw / "BMCD-FGCD.zip").namelist()
    assert len(names) == 32 * 4
    folders = {n.rsplit("/", 1)[0] for n in names}
    assert len(folders) == 64
    # the download's bare-integer folders: 0-18 and 23-35 (29-35 renumbered)
    assert {f.rsplit("/", 1)[1] for f in folders} == {str(n) for n in (*range(19), *range(23, 36))}
    assert "BMCD-FGCD/train/0/00003.png" in names and "BMCD-FGCD/test/0/00001.png" in names
    with zipfile.ZipFile(raw / "BMCD-FGCD.zip") as zf:
        sizes = {Image.open(io.BytesIO(zf.read(n))).size for n in names}
        modes = {Image.open(io.BytesIO(zf.read(n))).mode for n in names[:20]}
    assert modes == {"RGB"} and len(sizes) > 20
    assert all(170 <= w <= 264 and 170 <= h <= 264 for w, h in sizes)


def test_bmcd_full_scale_counts_are_the_published_ones():
    from cytohub.builders import bmcd_fgcd as b

    counts = b.synthetic_counts("full")
    train = sum(n for (s, _), n in counts.items() if s == "train")
    test = sum(n for (s, _), n in counts.items() if s == "test")
    assert (train, test, train + test) == (73877, 18458, 92335)
    assert len({cid for _, cid in counts}) == 32
    assert counts[("train", 24)] == 11773 and counts[("test", 4)] == 2811


def test_bmcd_rows_and_official_split(built):
    from cytohub.builders import bmcd_fgcd as b

    folder = built("bmcd-fgcd")
    rep = report(folder)
    assert list(rep["splits"]) == ["train", "test"]
    assert rep["splits"]["train"]["num_examples"] == 96 and rep["splits"]["test"]["num_examples"] == 32
    rows = read_rows(folder, "train")
    names = b.BMCDFGCD.class_names()
    assert len(names) == 40 and names[7] == "Acidophilus in young" and names[39] == "Unidentified cell"
    by_id = {r["id"]: r for r in rows}
    r = by_id["train-07-00002.png"]
    assert r["label"] == 7  # label index == published ID
    assert r["label_path"] == ["Granulocytic system", "Acidophilus in young"]
    assert r["harmonized"] == "heme/granulocytic/eosinophilic/myelocyte"
    extra = json.loads(r["extra"]) if isinstance(r["extra"], str) else r["extra"]
    assert extra == {"class_id": 7, "class_folder": "7"}
    assert by_id["train-00-00001.png"]["label_path"] == ["Haemocytoblast"]
    assert by_id["train-18-00001.png"]["harmonized"] == "heme/erythroid/erythroblast/orthochromatic"
    bis = by_id["train-37-00001.png"]  # the download's folder 32
    assert bis["harmonized"] == "heme/macrophage" and names[bis["label"]] == "Bistiocyte"
    assert json.loads(bis["extra"])["class_folder"] == "32"
    assert names[by_id["train-34-00001.png"]["label"]] == "Plasmablast"  # folder 29
    assert names[by_id["train-31-00001.png"]["label"]] == "Granulocyte megakaryocyte"  # folder 34
    assert names[by_id["train-33-00001.png"]["label"]] == "Naked megakaryocyte"  # folder 35
    assert {r["label"] for r in rows} == {c[0] for c in b.CLASSES if c[3]}


@pytest.mark.parametrize("folder,expected", [
    ("Acidophil in young", 7), ("Acidophilus in young", 7), ("07", 7), ("7", 7), ("07_Acidophil in young", 7),
    ("7. Acidophilus in young", 7), ("Basophllic lobule nucleus", 14), ("basophilic_lobule_nucleus", 14),
    ("Matrue plasmocyte", 36), ("MATURE PLASMOCYTE", 36), ("Hetertypic lymphocyte", 25), ("Bistiocyte", 37),
    ("Neutrophilic granulocyte segmented form", 6), ("Neutrophilic granulocyte segmnted form", 6),
    ("0", 0), ("40", None), ("12_Mature monocyte", None), ("Lymphocyte", None), ("misc", None),
    # the download's numbered folders: 0-18 and 23-28 are the published IDs, 29-35 are renumbered
    ("18", 18), ("23", 23), ("28", 28), ("29", 34), ("30", 35), ("31", 36), ("32", 37), ("33", 38), ("34", 31),
    ("35", 33), ("19", None), ("22", None), ("36", None), ("39", None),
    ("29 Plasmablast", 34), ("34_Plasmablast", 34), ("29_Megakaryoblast", 29), ("31 Naked megakaryocyte", None),
])
def test_bmcd_class_folder_matching(folder, expected):
    from cytohub.builders import bmcd_fgcd as b

    assert b.class_id(folder) == expected


def _bmcd_extracted(tmp_path, synth_raw) -> Path:
    from helpers import extract_all

    return extract_all(synth_raw("bmcd-fgcd"), tmp_path / "raw")


def test_bmcd_named_folders_build_the_same_labels(tmp_path, synth_raw, built):
    raw = _bmcd_extracted(tmp_path, synth_raw)
    from cytohub.builders import bmcd_fgcd as b

    fork = {c[0]: c[6] or c[1] for c in b.CLASSES}
    for split in ("train", "test"):
        for d in (raw / "BMCD-FGCD" / split).iterdir():
            d.rename(d.with_name(fork[b.class_id(d.name)]))
    build(registry.get("bmcd-fgcd"), raw, tmp_path / "out")
    a = read_rows(tmp_path / "out", columns=["id", "label", "image"])
    assert a == read_rows(built("bmcd-fgcd"), columns=["id", "label", "image"])


def test_bmcd_unknown_numbered_folder(tmp_path, synth_raw):
    raw = _bmcd_extracted(tmp_path, synth_raw)
    (raw / "BMCD-FGCD" / "train" / "27").rename(raw / "BMCD-FGCD" / "train" / "36")
    build_fails("bmcd-fgcd", raw, tmp_path / "out", "train/36", "unknown numbered class folder '36'",
                "0-18 and 23-35")


def test_bmcd_unknown_class_folder(tmp_path, synth_raw):
    raw = _bmcd_extracted(tmp_path, synth_raw)
    (raw / "BMCD-FGCD" / "test" / "27").rename(raw / "BMCD-FGCD" / "test" / "Mystery cells")
    build_fails("bmcd-fgcd", raw, tmp_path / "out", "test/Mystery cells", "unknown class folder",
                 "27 Promonocyte")


def test_bmcd_image_outside_the_split_folders(tmp_path, synth_raw):
    raw = _bmcd_extracted(tmp_path, synth_raw)
    shutil.move(raw / "BMCD-FGCD" / "test" / "27", raw / "BMCD-FGCD" / "Promonocyte")
    build_fails("bmcd-fgcd", raw, tmp_path / "out", "BMCD-FGCD/Promonocyte/00001.png", "not inside a train/ or test/")


def test_bmcd_nested_too_deep(tmp_path, synth_raw):
    raw = _bmcd_extracted(tmp_path, synth_raw)
    d = raw / "BMCD-FGCD" / "train" / "27"
    (d / "more").mkdir()
    shutil.move(d / "00001.png", d / "more" / "00001.png")
    build_fails("bmcd-fgcd", raw, tmp_path / "out", "27/more/00001.png", "one class folder directly below")


def test_bmcd_two_folders_of_one_class(tmp_path, synth_raw):
    raw = _bmcd_extracted(tmp_path, synth_raw)
    t = raw / "BMCD-FGCD" / "train"
    shutil.copytree(t / "16", t / "Prorubricyte")
    build_fails("bmcd-fgcd", raw, tmp_path / "out", "train-16-00001.png", "two folders of the same class")


# ============================================================================ BMT (cervical ThinPrep; Bethesda)
BMT_IMAGES = "Brown Multicellular ThinPrep Database - images"


def test_bmt_synthetic_layout(synth_raw):
    raw = synth_raw("bmt")
    assert sorted(p.name for p in raw.iterdir() if not p.name.startswith(".")) == [
        BMT_IMAGES, "SYNAPSE_METADATA_MANIFEST.tsv"]
    base = raw / BMT_IMAGES
    assert sorted(p.name for p in base.iterdir()) == ["Annotated Images", "HSIL", "LSIL", "NIL"]
    assert sorted(p.name for p in (base / "NIL").iterdir()) == ["NILM_001.JPG", "NILM_002.JPG", "NILM_003.JPG"]
    im = Image.open(base / "HSIL" / "HSIL_002.JPG")
    assert im.format == "JPEG" and im.size == (192, 108)  # 1920 x 1080 / 10 at small scale


def test_bmt_rows(built):
    from cytohub.builders import bmt

    folder = built("bmt")
    rows = read_rows(folder, columns=["id", "label", "label_path", "harmonized", "source_path"])
    names = bmt.BMT.class_names()
    assert names == ["NILM", "LSIL", "HSIL"] and len(rows) == 9
    by_id = {r["id"]: r for r in rows}
    r = by_id["NILM/NILM_002.JPG"]
    assert names[r["label"]] == "NILM" and r["label_path"] == ["NILM"] and r["harmonized"] == "NILM"
    assert r["source_path"] == f"{BMT_IMAGES}/NIL/NILM_002.JPG"
    assert by_id["HSIL/HSIL_001.JPG"]["harmonized"] == "HSIL"
    skipped = {f["path"]: f.get("reason", "") for f in report(folder)["files"]["list"] if f["status"] == "skipped"}
    assert "annotated copy" in skipped[f"{BMT_IMAGES}/Annotated Images/LSIL_001_annotated.JPG"]
    assert "manifest" in skipped["SYNAPSE_METADATA_MANIFEST.tsv"]


def test_bmt_flat_download_labels_from_file_names(tmp_path, synth_raw, built):
    """syncFromSynapse may leave the images flat: the class prefix of the file name gives the label."""
    raw = _copy(synth_raw("bmt"), tmp_path / "raw")
    base = raw / BMT_IMAGES
    for d in ("NIL", "LSIL", "HSIL"):
        for p in (base / d).iterdir():
            p.rename(base / p.name)
        (base / d).rmdir()
    build(registry.get("bmt"), raw, tmp_path / "out", split=SPLIT)
    a = read_rows(tmp_path / "out", columns=["id", "label", "image"])
    assert a == read_rows(built("bmt"), columns=["id", "label", "image"])


def test_bmt_folder_and_file_name_disagree(tmp_path, synth_raw):
    raw = _copy(synth_raw("bmt"), tmp_path / "raw")
    shutil.move(raw / BMT_IMAGES / "HSIL" / "HSIL_003.JPG", raw / BMT_IMAGES / "LSIL" / "HSIL_003.JPG")
    build_fails("bmt", raw, tmp_path / "out", "LSIL/HSIL_003.JPG", "the file name says HSIL but the folder says LSIL")


def test_bmt_image_without_a_class(tmp_path, synth_raw):
    raw = _copy(synth_raw("bmt"), tmp_path / "raw")
    (raw / BMT_IMAGES / "other").mkdir()
    shutil.copy(raw / BMT_IMAGES / "LSIL" / "LSIL_001.JPG", raw / BMT_IMAGES / "other" / "IMG_0001.JPG")
    build_fails("bmt", raw, tmp_path / "out", "other/IMG_0001.JPG", "cannot tell its class")


def test_bmt_nothing_found(tmp_path):
    (tmp_path / "raw").mkdir()
    (tmp_path / "raw" / "readme.md").write_text("empty")
    build_fails("bmt", tmp_path / "raw", tmp_path / "out", "no BMT images found")
