"""Cervical corpora with geometry: CRIC, APCData, Cervix93, ISBI 2014. Layouts, label spellings, coordinate
conversions (each with a known point), official splits and bad input naming the file."""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cytohub import registry, synth
from cytohub.errors import CytohubError
from helpers import build_fails, extract_all, read_rows, report

SPLIT = "train=0.6,validation=0.2,test=0.2"


def _build(name: str, raw: Path, out: Path) -> list[dict]:
    from cytohub.build import build

    b = registry.get(name)
    build(b, raw, out, split=None if b.splits else SPLIT)
    return read_rows(out)


def _fails(name: str, raw: Path, tmp_path: Path, *needles: str) -> str:
    from cytohub.build import build

    b = registry.get(name)
    with pytest.raises(CytohubError) as exc:
        build(b, raw, tmp_path / "out-fail", split=None if b.splits else SPLIT)
    text = str(exc.value)
    for needle in needles:
        assert needle in text, text
    assert not (tmp_path / "out-fail").exists()
    return text


def _extra(row: dict) -> dict:
    e = row["extra"]
    return json.loads(e) if isinstance(e, str) else e


def _size(img: dict) -> tuple[int, int]:
    return Image.open(io.BytesIO(img["bytes"])).size


# =========================================================================================== CRIC
@pytest.fixture
def cric_dir(tmp_path, synth_raw) -> Path:
    return extract_all(synth_raw("cric"), tmp_path / "cric")


def _cric_csv(folder: Path) -> list[list[str]]:
    return list(csv.reader(io.StringIO((folder / "classifications.csv").read_text())))


def test_cric_synthetic_layout_is_one_flat_zip(synth_raw):
    raw = synth_raw("cric")
    (zpath,) = [p for p in raw.iterdir() if p.suffix == ".zip"]
    names = zipfile.ZipFile(zpath).namelist()
    assert all("/" not in n for n in names)  # JSZip export: no folders
    pngs = [n for n in names if n.endswith(".png")]
    assert len(pngs) == 6 and all(re.fullmatch(r"[0-9a-f]{32}\.png", n) for n in pngs)
    assert {"classifications.csv", "classifications.json", "README.classifications.md"} <= set(names)
    text = zipfile.ZipFile(zpath).read("classifications.csv").decode()
    assert text.splitlines()[0] == "image_id,image_filename,image_doi,cell_id,bethesda_system,nucleus_x,nucleus_y"
    assert '"' not in text  # written without quoting
    records = json.loads(zipfile.ZipFile(zpath).read("classifications.json"))
    assert set(records[0]) == {"image_id", "image_doi", "image_name", "classifications"}


def test_cric_points_are_converted_from_1_based(built, cric_dir):
    rows = {r["id"]: r for r in read_rows(built("cric"))}
    line = _cric_csv(cric_dir)[1]  # image_id,image_filename,image_doi,cell_id,bethesda_system,nucleus_x,nucleus_y
    row = rows[line[1][:-4]]
    k = _extra(row)["cell_ids"].index(int(line[3]))
    obj = row["objects"][k]
    assert obj["category"] == line[4]
    assert obj["point"] == [float(line[5]) - 1, float(line[6]) - 1]
    assert obj["bbox"] is None and obj["polygon"] is None


def test_cric_known_point_by_hand(tmp_path, cric_dir):
    rows = _cric_csv(cric_dir)
    name = rows[1][1]
    rows[1][4:7] = ["SCC", "1", "1"]  # the top-left pixel, 1-based
    rows[2][1:3] = [name, rows[1][2]]
    rows[2][0] = rows[1][0]
    rows[2][4:7] = ["ASC-H", "20", "10"]
    (cric_dir / "classifications.csv").write_text("\n".join(",".join(r) for r in rows) + "\n")
    built_rows = {r["id"]: r for r in _build("cric", cric_dir, tmp_path / "out")}
    row = built_rows[name[:-4]]
    pts = dict(zip(_extra(row)["cell_ids"], row["objects"], strict=True))
    assert pts[int(rows[1][3])] == {"category": "SCC", "bbox": None, "polygon": None, "point": [0.0, 0.0]}
    assert pts[int(rows[2][3])]["point"] == [19.0, 9.0]
    assert pts[int(rows[2][3])]["category"] == "ASC-H"


def test_cric_labels_and_harmonized_nodes(built):
    b = registry.get("cric")
    nodes = {lab.name: lab.harmonized for lab in b.object_labels}
    assert nodes == {"Negative for intraepithelial lesion": "NILM", "ASC-US": "ASC-US", "LSIL": "LSIL",
                     "ASC-H": "ASC-H", "HSIL": "HSIL", "SCC": "SCC"}
    assert b.labels == ()
    rows = read_rows(built("cric"))
    assert len(rows) == 6
    assert {o["category"] for r in rows for o in r["objects"]} == set(nodes)
    for r in rows:
        assert r["label"] == -1 and r["label_path"] == [] and r["harmonized"] is None
        assert len(_extra(r)["cell_ids"]) == len(r["objects"]) >= 2
        assert _extra(r)["image_doi"].startswith("10.6084/m9.figshare.")
        assert _size(r["image"]) == (172, 128)
    # rows ordered by CRIC image id
    ids = [int(_extra(r)["image_id"]) for r in sorted(rows, key=lambda r: r["id"])]
    assert sorted(ids) == list(range(395, 401))


def test_cric_accounting(built):
    rep = report(built("cric"))
    skipped = {f["path"].split("/")[-1]: f["reason"] for f in rep["files"]["list"] if f["status"] == "skipped"}
    assert "the CSV is read" in skipped["classifications.json"]
    assert skipped["README.classifications.md"] == "documentation of the export"
    assert rep["files"]["used"] == 6 + 1


def test_cric_json_only_gives_the_same_rows(tmp_path, cric_dir, built):
    (cric_dir / "classifications.csv").unlink()
    rows = _build("cric", cric_dir, tmp_path / "out")
    ref = read_rows(built("cric"))
    key = lambda r: r["id"]  # noqa: E731
    assert [(r["id"], r["objects"]) for r in sorted(rows, key=key)] == \
        [(r["id"], r["objects"]) for r in sorted(ref, key=key)]


def test_cric_segmentation_export_is_skipped_with_reason(tmp_path, cric_dir):
    (cric_dir / "segmentations.csv").write_text("image_id,image_doi,image_filename,cell_id,description_id\n")
    _build("cric", cric_dir, tmp_path / "out")
    rep = report(tmp_path / "out")
    (seg,) = [f for f in rep["files"]["list"] if f["path"] == "segmentations.csv"]
    assert seg["status"] == "skipped" and "description_id" in seg["reason"]


@pytest.mark.parametrize("change,needles", [
    (lambda r: r[1].__setitem__(4, "Negative"), ["classifications.csv:2", "unknown bethesda_system 'Negative'"]),
    (lambda r: r[1].__setitem__(5, "0"), ["classifications.csv:2", "outside", "1-based"]),
    (lambda r: r[1].__setitem__(6, "12.5"), ["classifications.csv:2", "nucleus_y is '12.5'"]),
    (lambda r: r[1].__setitem__(5, "nan"), ["classifications.csv:2", "nucleus_x has NaN"]),
    (lambda r: r[1].__setitem__(5, "inf"), ["classifications.csv:2", "nucleus_x has +infinity"]),
    (lambda r: r[1].__setitem__(5, ""), ["classifications.csv:2", "nucleus_x is ''"]),
    (lambda r: r[1].pop(), ["classifications.csv:2", "6 fields, expected 7"]),
    (lambda r: r[0].__setitem__(5, "x"), ["classifications.csv", "header"]),
])
def test_cric_bad_csv(tmp_path, cric_dir, change, needles):
    rows = _cric_csv(cric_dir)
    change(rows)
    (cric_dir / "classifications.csv").write_text("\n".join(",".join(r) for r in rows) + "\n")
    _fails("cric", cric_dir, tmp_path, *needles)


def test_cric_csv_field_over_128_kib_is_read(tmp_path, cric_dir):
    rows = _cric_csv(cric_dir)
    doi = "10.6084/" + "x" * 200_000  # csv's default field limit is 131,072 characters
    for r in rows[1:]:
        if r[1] == rows[1][1]:
            r[2] = doi
    (cric_dir / "classifications.csv").write_text("\n".join(",".join(r) for r in rows) + "\n")
    built_rows = {r["id"]: r for r in _build("cric", cric_dir, tmp_path / "out")}
    assert _extra(built_rows[rows[1][1][:-4]])["image_doi"] == doi


def test_cric_json_nested_too_deep_is_one_line(tmp_path, cric_dir):
    (cric_dir / "classifications.csv").unlink()
    (cric_dir / "classifications.json").write_text("[" * 50_000 + "]" * 50_000)  # RecursionError in json.loads
    _fails("cric", cric_dir, tmp_path, "classifications.json: CRIC export JSON nested 50000 levels deep",
           "CYTOHUB_MAX_JSON_DEPTH")


def test_cric_missing_image(tmp_path, cric_dir):
    victim = sorted(cric_dir.glob("*.png"))[0]
    victim.unlink()
    _fails("cric", cric_dir, tmp_path, "classifications.csv", "missing from the download", victim.name)


def test_cric_without_annotations(tmp_path, cric_dir):
    (cric_dir / "classifications.csv").unlink()
    (cric_dir / "classifications.json").unlink()
    _fails("cric", cric_dir, tmp_path, "no classifications.csv or classifications.json")


# =========================================================================================== APCData
APC = "ytd568rh3p-1/APCData cervical cytology cells"


@pytest.fixture
def apc_dir(tmp_path, synth_raw) -> Path:
    return extract_all(synth_raw("apcdata"), tmp_path / "apc") / APC  # the inner folder works as --raw too


def test_apcdata_synthetic_layout(synth_raw):
    names = zipfile.ZipFile(synth_raw("apcdata") / "ytd568rh3p-1.zip").namelist()
    imgs = [n for n in names if "/APCData_points/images/" in n]
    assert len(imgs) == 8 and all(re.search(r"/images/\d{4} C\d+ .+\.jpg$", n) for n in imgs)
    assert len([n for n in names if "/labels/csv/" in n]) == 8
    assert len([n for n in names if "/labels/json/" in n]) == 7  # fewer JSONs than images
    yolo = [n for n in names if "/APCData_YOLO/labels/" in n]
    assert len(yolo) == 7 and all(re.search(r"_jpg\.rf\.[0-9a-f]{32}\.txt$", n) for n in yolo)
    assert f"{APC}/APCData_YOLO/classes.txt" in names
    text = zipfile.ZipFile(synth_raw("apcdata") / "ytd568rh3p-1.zip").read(f"{APC}/APCData_points/labels/csv/0001.csv")
    assert text.decode().startswith("image_id,image_filename,image_doi,cell_id,bethesda_system,nucleus_x,nucleus_y\n")


@pytest.mark.parametrize("stem,key", [
    ("0001_C1234_x_jpg.rf.0123abcd", "0001c1234x"), ("0007-C99-IMAGE_3_jpg.rf.ABCDEF12", "0007c99image3"),
    ("0002 C1 campo 1_JPG.rf.ff", "0002c1campo1"),
])
def test_apcdata_yolo_names_match_image_names(stem, key):
    from cytohub.builders import apcdata

    assert apcdata.yolo_key(stem) == key
    assert apcdata.image_key(key.upper()) == key


def test_apcdata_rows(built):
    rows = {r["id"]: r for r in read_rows(built("apcdata"))}
    assert sorted(rows) == [f"{i:04d}" for i in range(1, 9)]
    for rid, r in rows.items():
        e = _extra(r)
        pts = [o for o in r["objects"] if o["point"] is not None]
        boxes = [o for o in r["objects"] if o["bbox"] is not None]
        assert len(pts) == e["point_objects"] == len(e["cell_ids"]) >= 1
        assert len(boxes) == e["box_objects"] == (0 if rid == "0005" else len(pts))  # 0005 has no YOLO file
        assert r["group"]["slide_id"] == e["study"] == f"C{1000 + 7 * ((int(rid) - 1) // 2)}"
        assert r["label"] == -1
        # each box is the cell drawn around the matching point, same class
        for p, b in zip(pts, boxes, strict=False):
            x, y, w, h = b["bbox"]
            assert b["category"] == p["category"]
            assert x - 1 <= p["point"][0] <= x + w + 1 and y - 1 <= p["point"][1] <= y + h + 1
    harm = {lab.name: lab.harmonized for lab in registry.get("apcdata").object_labels}
    assert harm == {"NILM": "NILM", "ASCUS": "ASC-US", "ASCH": "ASC-H", "LSIL": "LSIL", "HSIL": "HSIL", "SCC": "SCC"}


def test_apcdata_known_point_and_box(tmp_path, apc_dir):
    pts = apc_dir / "APCData_points"
    (pts / "labels" / "csv" / "0003.csv").write_text(
        "image_id,image_filename,image_doi,cell_id,bethesda_system,nucleus_x,nucleus_y\n"
        "427,49a2215c2453312c.png,null,7,Negative,20,10\n"
        "427,49a2215c2453312c.png,null,8,ASC-H,128,96\n")
    (label,) = (apc_dir / "APCData_YOLO" / "labels").glob("0003_*.txt")
    label.write_text("4 0.5 0.25 0.25 0.5\n")  # class 4 = HSIL; image 128 x 96
    rows = {r["id"]: r for r in _build("apcdata", apc_dir, tmp_path / "out")}
    objs = rows["0003"]["objects"]
    assert objs[0] == {"category": "NILM", "bbox": None, "polygon": None, "point": [19.0, 9.0]}
    assert objs[1]["category"] == "ASCH" and objs[1]["point"] == [127.0, 95.0]
    assert objs[2] == {"category": "HSIL", "bbox": [48.0, 0.0, 32.0, 48.0], "polygon": None, "point": None}
    assert _extra(rows["0003"])["export_image_filename"] == "49a2215c2453312c.png"


def test_apcdata_json_used_when_csv_missing(tmp_path, apc_dir, built):
    (apc_dir / "APCData_points" / "labels" / "csv" / "0002.csv").unlink()
    rows = {r["id"]: r for r in _build("apcdata", apc_dir, tmp_path / "out")}
    ref = {r["id"]: r for r in read_rows(built("apcdata"))}
    assert rows["0002"]["objects"] == ref["0002"]["objects"]
    assert rows["0002"]["source_path"].endswith(("labels/json/0002.json", ".txt"))
    assert "labels/json/0002.json" in rows["0002"]["source_path"]
    skipped = {f["path"]: f["reason"] for f in report(tmp_path / "out")["files"]["list"] if f["status"] == "skipped"}
    assert "the CSV is read" in skipped["APCData_points/labels/json/0001.json"]
    assert "APCData_points/labels/json/0002.json" not in skipped


def test_apcdata_unmatched_yolo_label_is_skipped_with_reason(tmp_path, apc_dir):
    (apc_dir / "APCData_YOLO" / "labels" / "9999_C1_x_jpg.rf.00ff.txt").write_text("0 0.5 0.5 0.1 0.1\n")
    _build("apcdata", apc_dir, tmp_path / "out")
    skipped = {f["path"]: f["reason"] for f in report(tmp_path / "out")["files"]["list"] if f["status"] == "skipped"}
    assert "matches no image" in skipped["APCData_YOLO/labels/9999_C1_x_jpg.rf.00ff.txt"]


def test_apcdata_bad_label_spelling(tmp_path, apc_dir):
    p = apc_dir / "APCData_points" / "labels" / "csv" / "0004.csv"
    lines = p.read_text().splitlines()
    lines[1] = re.sub(r",(Negative|ASCUS|ASCH|LSIL|HSIL|SCC),", ",Koilocyte,", lines[1])
    p.write_text("\n".join(lines) + "\n")
    _fails("apcdata", apc_dir, tmp_path, "labels/csv/0004.csv:2", "unknown bethesda_system 'Koilocyte'")


def test_apcdata_bad_yolo_line(tmp_path, apc_dir):
    (label,) = (apc_dir / "APCData_YOLO" / "labels").glob("0006_*.txt")
    label.write_text("9 0.5 0.5 0.1 0.1\n")
    _fails("apcdata", apc_dir, tmp_path, label.name + ":1", "class id 9 outside 0..5")


def test_apcdata_csv_without_image(tmp_path, apc_dir):
    shutil.copy(apc_dir / "APCData_points/labels/csv/0001.csv", apc_dir / "APCData_points/labels/csv/0042.csv")
    _fails("apcdata", apc_dir, tmp_path, "labels/csv/0042.csv", "no image in APCData_points/images")


# =========================================================================================== Cervix93
@pytest.fixture
def c93_dir(tmp_path, synth_raw) -> Path:
    return extract_all(synth_raw("cervix93"), tmp_path / "c93") / "cytology_dataset-master"


def test_cervix93_synthetic_layout(synth_raw):
    names = zipfile.ZipFile(synth_raw("cervix93") / "cytology_dataset-master.zip").namelist()
    assert all(n.startswith("cytology_dataset-master/") for n in names)
    rel = {n.split("/", 1)[1] for n in names}
    assert {"README.md", "codes/EvaluateDetection.m", "dataset/labels.csv", "dataset/EDF/frame000.png",
            "dataset/EDF/frame000.csv", "dataset/frame000_stack/fov000.png", "dataset/frame092_stack/fov009.png"
            } - rel == {"dataset/frame092_stack/fov009.png"}  # small scale: 3 frames per grade
    assert sorted(n for n in rel if n.startswith("dataset/EDF/") and n.endswith(".png")) == \
        [f"dataset/EDF/frame{i:03d}.png" for i in (0, 1, 2, 31, 32, 33, 77, 78, 79)]
    labels = zipfile.ZipFile(synth_raw("cervix93") / "cytology_dataset-master.zip").read(
        "cytology_dataset-master/dataset/labels.csv").decode().splitlines()
    assert labels[:3] == ["frame,label,set", "frame000,H,0", "frame001,H,0"]


def test_cervix93_rows_and_official_splits(built):
    folder = built("cervix93")
    names = registry.get("cervix93").class_names()
    assert names == ["Negative", "LSIL", "HSIL"]
    train, test = read_rows(folder, "train"), read_rows(folder, "test")
    assert sorted(r["id"] for r in test) == ["frame002", "frame033", "frame079"]  # set 1 in labels.csv
    assert len(train) == 6
    by_id = {r["id"]: r for r in train + test}
    assert names[by_id["frame000"]["label"]] == "HSIL" and by_id["frame000"]["harmonized"] == "HSIL"
    assert names[by_id["frame077"]["label"]] == "Negative" and by_id["frame077"]["harmonized"] == "NILM"
    assert names[by_id["frame031"]["label"]] == "LSIL"
    for r in by_id.values():
        n = len(r["focal_stack"])
        assert n in (10, 12, 15)
        assert r["z_um"] is None  # spacing unknown: no invented distances
        assert _extra(r)["z_index"] == list(range(n)) and _extra(r)["z_um_is"].startswith("null")
        assert r["image"]["path"] == f"{r['id']}.png" and r["focal_stack"][0]["path"] == "fov000.png"
        assert _size(r["image"]) == _size(r["focal_stack"][-1]) == (128, 96)
        assert r["objects"] and {o["category"] for o in r["objects"]} == {"nucleus"}
        assert r["group"]["fov_id"] == r["id"] and r["mpp"] is None


def test_cervix93_points_are_row_col_1_based(built, c93_dir):
    r = next(x for x in read_rows(built("cervix93")) if x["id"] == "frame031")
    first = (c93_dir / "dataset" / "EDF" / "frame031.csv").read_text().splitlines()[0]
    row, col = (int(v) for v in first.split(","))
    assert r["objects"][0]["point"] == [col - 1.0, row - 1.0]


def test_cervix93_known_point(tmp_path, c93_dir):
    (c93_dir / "dataset" / "EDF" / "frame001.csv").write_text("10,20\n96,1\n")
    rows = {r["id"]: r for r in _build("cervix93", c93_dir, tmp_path / "out")}
    assert [o["point"] for o in rows["frame001"]["objects"]] == [[19.0, 9.0], [0.0, 95.0]]


def test_cervix93_dataset_folder_alone_builds(tmp_path, c93_dir, built):
    rows = _build("cervix93", c93_dir / "dataset", tmp_path / "out")
    assert sorted(r["id"] for r in rows) == sorted(r["id"] for r in read_rows(built("cervix93")))
    skipped = [f for f in report(built("cervix93"))["files"]["list"] if f["status"] == "skipped"]
    assert sum(f["path"].endswith(".m") for f in skipped) == 3


@pytest.mark.parametrize("edit,needles", [
    (lambda d: (d / "dataset/labels.csv").write_text("frame,label,set\nframe000,X,0\n"),
     ["labels.csv:2", "label 'X'", "H, L or N"]),
    (lambda d: (d / "dataset/EDF/frame032.csv").write_text("5,5\n97,3\n"),
     ["frame032.csv:2", "row 97", "outside the 128x96"]),
    (lambda d: (d / "dataset/EDF/frame078.csv").write_text("5;5;5\n"), ["frame078.csv:1", "'row,col'"]),
    (lambda d: (d / "dataset/frame033_stack/fov004.png").unlink(), ["frame033_stack", "without gaps"]),
    (lambda d: shutil.rmtree(d / "dataset/frame077_stack"), ["labels.csv", "frame077 has no stack folder"]),
    (lambda d: shutil.copy(d / "dataset/EDF/frame000.png", d / "dataset/EDF/frame050.png"),
     ["EDF/frame050.png", "not listed in"]),
])
def test_cervix93_bad_input(tmp_path, c93_dir, edit, needles):
    edit(c93_dir)
    _fails("cervix93", c93_dir, tmp_path, *needles)


# =========================================================================================== ISBI 2014
def _rle_decode(rle: dict) -> np.ndarray:
    h, w = rle["size"]
    flat = np.zeros(h * w, bool)
    pos, val = 0, False
    for n in rle["counts"]:
        flat[pos:pos + n] = val
        pos, val = pos + n, not val
    return flat.reshape((h, w), order="F")


def _png_array(img: dict) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(img["bytes"])))


def test_isbi2014_synthetic_layout_has_both_mat_versions(synth_raw, tmp_path):
    import h5py

    raw = synth_raw("isbi2014")
    t45 = zipfile.ZipFile(raw / "Train45Test90.zip")
    assert sorted(t45.namelist()) == ["isbi_test90.mat", "isbi_test90_GT.mat", "isbi_train.mat", "isbi_train_GT.mat"]
    ds = zipfile.ZipFile(raw / "Dataset.zip")
    names = ds.namelist()
    assert {"Dataset/Synthetic/trainset.mat", "Dataset/Synthetic/trainset_GT.mat", "Dataset/Synthetic/testset.mat",
            "Dataset/Synthetic/testset_GT.mat", "Dataset/EDF/EDF000.png"} <= set(names)
    versions = {}
    for n in names:
        if n.endswith(".mat"):
            p = tmp_path / n.rsplit("/", 1)[1]
            p.write_bytes(ds.read(n))
            versions[p.name] = ("7.3" if h5py.is_hdf5(p) else "5", p.read_bytes()[:10])
    assert versions == {"trainset.mat": ("7.3", b"MATLAB 7.3"), "testset.mat": ("7.3", b"MATLAB 7.3"),
                        "testset_GT.mat": ("7.3", b"MATLAB 7.3"), "trainset_GT.mat": ("5", b"MATLAB 5.0")}
    with h5py.File(tmp_path / "testset_GT.mat") as f:  # MATLAB 4 x 1 cell -> h5py (1, 4) of references
        assert f["test_Cytoplasm"].shape == (1, 4) and f["test_Cytoplasm"].attrs["MATLAB_class"] == b"cell"


def test_isbi2014_rows(built):
    folder = built("isbi2014")
    train, test = read_rows(folder, "train"), read_rows(folder, "test")
    assert [r["id"] for r in train] == ["train000", "train001", "train002"]
    assert [r["id"] for r in test] == ["test000", "test001", "test002", "test003"]
    for r in train + test:
        e = _extra(r)
        assert e["subset"] == ("train45" if r["id"].startswith("train") else "test90")
        assert e["mat_version"] == "7.3"
        img = Image.open(io.BytesIO(r["image"]["bytes"]))
        mask = Image.open(io.BytesIO(r["mask"]["bytes"]))
        assert img.mode == "L" and mask.mode == "1" and img.size == mask.size == (64, 64)
        cyto = [o for o in r["objects"] if o["category"] == "cytoplasm"]
        nuclei = [o for o in r["objects"] if o["category"] == "nucleus"]
        assert len(cyto) == len(e["cytoplasm_rle"]) >= 2 and nuclei
        for o, rle in zip(cyto, e["cytoplasm_rle"], strict=True):
            m = _rle_decode(rle)
            rows, cols = np.nonzero(m)
            assert o["bbox"] == [cols.min(), rows.min(), cols.max() - cols.min() + 1, rows.max() - rows.min() + 1]
            assert len(o["polygon"]) >= 8
        union = np.zeros((64, 64), bool)
        for o in nuclei:
            x, y, w, h = (int(v) for v in o["bbox"])
            union[y:y + h, x:x + w] = True
        assert (np.asarray(mask, bool) <= union).all()  # every nucleus pixel lies in a nucleus box
        assert r["label"] == -1 and r["harmonized"] is None


def test_isbi2014_v5_download_gives_the_same_rows(tmp_path, synth_raw, built):
    shutil.copy(synth_raw("isbi2014") / "Train45Test90.zip", tmp_path / "Train45Test90.zip")
    rows = _build("isbi2014", tmp_path / "Train45Test90.zip", tmp_path / "out")
    ref = {r["id"]: r for r in read_rows(built("isbi2014"))}
    assert len(rows) == 7
    for r in rows:
        assert _extra(r)["mat_version"] == "5"
        same = ref[r["id"]]
        assert r["image"]["bytes"] == same["image"]["bytes"]  # v7.3 transposition undone
        assert r["mask"]["bytes"] == same["mask"]["bytes"] and r["objects"] == same["objects"]


def test_isbi2014_skips_are_reported(built):
    skipped = {f["path"]: f["reason"] for f in report(built("isbi2014"))["files"]["list"] if f["status"] == "skipped"}
    assert "not documented" in skipped["Dataset.zip/Dataset/EDF/EDF000.png"]
    assert skipped["Train45Test90.zip/isbi_train.mat"] == "same images as trainset.mat (read instead)"
    assert skipped["Train45Test90.zip/isbi_test90_GT.mat"] == "same images as testset.mat (read instead)"


@pytest.mark.parametrize("version", ["5", "7.3"])
def test_isbi2014_known_pixels(tmp_path, version):
    from cytohub.formats import matlab as mat

    write = mat.write_v5 if version == "5" else mat.write_v73
    img = np.zeros((30, 40), np.uint8)
    img[10, 20] = 200  # (row 10, col 20) -> x = 20, y = 10
    cyto = np.zeros((30, 40), bool)
    cyto[10, 20] = True
    cyto2 = np.zeros((30, 40), bool)
    cyto2[2:5, 30:38] = True
    nuc = np.zeros((30, 40), bool)
    nuc[3, 5] = True
    raw = tmp_path / "raw" / "Dataset" / "Synthetic"
    with synth.marking("isbi2014", "small", 0):  # small synthetic data: not compared with the published 945
        write(raw / "trainset.mat", {"trainset": [img]})
        write(raw / "trainset_GT.mat", {"train_Cytoplasm": [[cyto, cyto2]], "train_Nuclei": [nuc]})
    (row,) = _build("isbi2014", tmp_path / "raw", tmp_path / "out")
    assert report(tmp_path / "out")["synthetic_marker"]["found_in"] == "Dataset/Synthetic/trainset.mat"
    arr = _png_array(row["image"])
    assert arr.shape == (30, 40) and arr[10, 20] == 200 and arr.sum() == 200
    assert _png_array(row["mask"])[3, 5] and _png_array(row["mask"]).sum() == 1
    assert row["objects"] == [
        {"category": "cytoplasm", "bbox": [20.0, 10.0, 1.0, 1.0], "polygon": [20.0, 10.0, 21.0, 10.0, 21.0, 11.0,
                                                                              20.0, 11.0], "point": None},
        {"category": "cytoplasm", "bbox": [30.0, 2.0, 8.0, 3.0], "polygon": [30.0, 2.0, 38.0, 2.0, 38.0, 5.0,
                                                                             30.0, 5.0], "point": None},
        {"category": "nucleus", "bbox": [5.0, 3.0, 1.0, 1.0], "polygon": [5.0, 3.0, 6.0, 3.0, 6.0, 4.0, 5.0, 4.0],
         "point": None},
    ]
    assert (_rle_decode(_extra(row)["cytoplasm_rle"][1]) == cyto2).all()


def test_isbi2014_polygon_of_an_l_shape():
    from cytohub.formats import masks

    m = np.zeros((8, 8), bool)
    m[1:6, 1:3] = True  # vertical bar
    m[4:6, 3:6] = True  # foot
    m[7, 7] = True  # a smaller detached piece is not in the polygon
    assert masks.outer_polygon(m) == [1.0, 1.0, 3.0, 1.0, 3.0, 4.0, 6.0, 4.0, 6.0, 6.0, 1.0, 6.0]
    assert masks.mask_bbox(m) == [1.0, 1.0, 7.0, 7.0]


def test_isbi2014_mat_with_external_storage_is_refused(tmp_path):
    """A v7.3 dataset stored in an external file made the build copy any readable local file into image pixels
    (and validate passed). Now the build stops with one line naming the .mat file."""
    import h5py

    from cytohub.formats import matlab

    secret = tmp_path / "secret.bin"
    secret.write_bytes(bytes(range(256)) * 16)
    raw = tmp_path / "raw" / "Dataset" / "Synthetic"
    matlab.write_v5(raw / "trainset_GT.mat", {"train_Nuclei": [np.zeros((64, 64), bool)],
                                              "train_Cytoplasm": [[np.zeros((64, 64), bool)]]})
    with h5py.File(raw / "trainset.mat", "w", userblock_size=512) as h5:
        ds = h5.create_group("#refs#").create_dataset("a", shape=(64, 64), dtype=np.uint8,
                                                     external=[(str(secret), 0, h5py.h5f.UNLIMITED)])
        ds.attrs["MATLAB_class"] = np.bytes_("uint8")
        cell = h5.create_dataset("trainset", data=np.array([[ds.ref]], dtype=h5py.ref_dtype))
        cell.attrs["MATLAB_class"] = np.bytes_("cell")
    with open(raw / "trainset.mat", "r+b") as fh:
        fh.write(matlab.V73_HEADER.ljust(116) + b"\x00" * 8 + b"\x00\x02IM")
    text = build_fails("isbi2014", tmp_path / "raw", tmp_path / "out", "Dataset/Synthetic/trainset.mat",
                       "trainset{1} stores its data in external file", str(secret))
    assert "refused" in text


def test_isbi2014_bad_input(tmp_path, synth_raw):
    from cytohub.formats import matlab as mat

    raw = tmp_path / "raw"
    raw.mkdir()
    with zipfile.ZipFile(synth_raw("isbi2014") / "Train45Test90.zip") as z:
        z.extract("isbi_train.mat", raw)
    _fails("isbi2014", raw, tmp_path, "isbi_train.mat", "isbi_train_GT.mat is missing")
    img = np.zeros((8, 8), np.uint8)
    mat.write_v5(raw / "isbi_train.mat", {"ISBI_Train": [img, img]})
    mat.write_v5(raw / "isbi_train_GT.mat", {"train_Cytoplasm": [[np.zeros((8, 8), bool)]],
                                             "train_Nuclei": [np.zeros((8, 8), bool)]})
    _fails("isbi2014", raw, tmp_path, "isbi_train_GT.mat", "1 cytoplasm and 1 nuclei entries for 2 images")
    mat.write_v5(raw / "isbi_train.mat", {"ISBI_Train": [img]})
    mat.write_v5(raw / "isbi_train_GT.mat", {"train_Cytoplasm": [[np.zeros((8, 9), bool)]],
                                             "train_Nuclei": [np.zeros((8, 8), bool)]})
    _fails("isbi2014", raw, tmp_path, "isbi_train_GT.mat", "cytoplasm mask 1 is (8, 9), the image is (8, 8)")
    mat.write_v5(raw / "isbi_train_GT.mat", {"train_Cells": [np.zeros((8, 8), bool)]})
    _fails("isbi2014", raw, tmp_path, "isbi_train_GT.mat", "no variable 'train_Cytoplasm'", "train_Cells")
    (raw / "isbi_train_GT.mat").write_bytes(b"MATLAB 5.0 MAT-file" + b"\x00" * 50)
    _fails("isbi2014", raw, tmp_path, "isbi_train_GT.mat", "not a readable MATLAB .mat file")


# =========================================================================================== all four
@pytest.mark.parametrize("name", ["cric", "apcdata", "cervix93", "isbi2014"])
def test_synthesize_is_deterministic(tmp_path, synth_raw, name):
    registry.get(name).synthesize(tmp_path / "again", "small", seed=0)
    ref = synth_raw(name)
    files = sorted(p.relative_to(ref) for p in ref.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(tmp_path / "again") for p in (tmp_path / "again").rglob("*") if p.is_file())
    for rel in files:
        assert (tmp_path / "again" / rel).read_bytes() == (ref / rel).read_bytes(), rel
