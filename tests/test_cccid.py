"""CCCID: the synthetic raw layout, the rows it builds, and every kind of bad input."""

from __future__ import annotations

import io
import re
import shutil
import zipfile
from pathlib import Path

import numpy as np
import py7zr
import pytest
from PIL import Image
from typer.testing import CliRunner

from cytohub import registry
from cytohub.builders import cccid
from cytohub.cli import app
from helpers import build_fails, extract_all, read_rows, report

ARCHIVES = ["CCCID_HSIL.zip.7z", "CCCID_LSIL.zip.7z", "CCCID_NILM_part1.zip.7z", "CCCID_NILM_part2.zip.7z",
            "CCCID_SCC_etc.zip.7z"]
runner = CliRunner()


# ------------------------------------------------------------------------------------------- synthetic layout
def test_synthetic_layout_matches_the_data_paper(synth_raw, tmp_path):
    raw = synth_raw("cccid")
    assert sorted(p.name for p in raw.iterdir() if not p.name.startswith(".")) == ARCHIVES
    with py7zr.SevenZipFile(raw / "CCCID_NILM_part1.zip.7z") as z:
        # a zip wrapped in 7z (and the synthetic marker, first: 7z archives have no comment to carry it)
        assert z.getnames() == [".cytohub-synthetic.json", "CCCID_NILM_part1.zip"]
        z.extractall(tmp_path)
    names = zipfile.ZipFile(tmp_path / "CCCID_NILM_part1.zip").namelist()
    folders = sorted({n.rsplit("/", 1)[0] for n in names})
    assert folders == ["NILM/1. Superficial-Intermediate Cells", "NILM/2. Parabasal-Basal Cells",
                       "NILM/3. Glandular Cells (Isolated)", "NILM/4. Glandular Cells (Cluster)"]
    assert all(re.fullmatch(r"NILM/[^/]+/\d{3}_\(\d+,\d+,(10|\d)\)\.jpg", n) for n in names)
    assert len(names) == 4 * 3 * 11  # 3 FOVs per subfolder at small scale, 11 planes each
    assert "NILM/1. Superficial-Intermediate Cells/001_(" in names[0]


def test_full_scale_counts_are_the_published_ones():
    counts = cccid.fov_counts("full")
    assert sum(counts.values()) == 639 and len(counts) == 17
    assert sum(counts.values()) * cccid.N_PLANES == 7029


def test_synthetic_images_have_a_focus_ramp(built):
    row = read_rows(built("cccid"), columns=["focal_stack"])[0]
    sharp = []
    for plane in row["focal_stack"]:
        im = Image.open(io.BytesIO(plane["bytes"])).convert("L")
        assert im.size == (384, 384)
        px = np.asarray(im, dtype=np.float32)
        sharp.append(float(np.abs(np.diff(px, axis=1)).mean()))  # mean gradient: high when in focus
    assert max(range(11), key=sharp.__getitem__) == cccid.BEST_Z
    assert sharp[0] < sharp[3] < sharp[5] > sharp[7] > sharp[10]


def test_synthesize_is_deterministic(tmp_path, synth_raw):
    registry.get("cccid").synthesize(tmp_path / "again", "small", seed=0)
    for name in ARCHIVES:
        assert (tmp_path / "again" / name).read_bytes() == (synth_raw("cccid") / name).read_bytes()


# ------------------------------------------------------------------------------------------- rows
def test_rows(built, synth_raw):
    folder = built("cccid")
    rows = read_rows(folder)
    assert len(rows) == 17 * 3
    names = registry.get("cccid").class_names()
    by_id = {r["id"]: r for r in rows}
    assert len(by_id) == len(rows)
    r = by_id[next(i for i in by_id if i.startswith("SCC_etc-17-001-"))]
    assert names[r["label"]] == "Adenocarcinoma"
    assert r["label_path"] == ["SCC_etc", "Adenocarcinoma"]
    assert r["harmonized"] == "Adenocarcinoma"  # kept distinct from SCC
    scc = next(x for x in rows if names[x["label"]] == "Squamous Cell Carcinoma")
    assert scc["harmonized"] == "SCC"
    koil = next(x for x in rows if names[x["label"]] == "Intermediate-type Koilocyte")
    assert koil["label_path"] == ["LSIL", "Intermediate-type Koilocyte"] and koil["harmonized"] == "LSIL"
    for row in rows:
        assert len(row["focal_stack"]) == 11
        assert row["z_um"] == [float(z) for z in range(-5, 6)]
        assert row["image"]["bytes"] == row["focal_stack"][5]["bytes"]
        assert row["mpp"] is None and row["objects"] == [] and row["mask"] is None
        assert row["group"] == {"patient_id": None, "slide_id": None, "fov_id": row["id"]}
        cx, cy = row["fov_center_um"]
        assert row["id"].endswith(f"-{cx:g}-{cy:g}")
        assert row["focal_stack"][0]["path"].endswith(f"_({cx:g},{cy:g},0).jpg")


def test_jpeg_bytes_pass_through_untouched(built, synth_raw):
    from cytohub.raw import RawTree

    rows = read_rows(built("cccid"), columns=["focal_stack", "source_path"])
    with RawTree(synth_raw("cccid")) as tree:
        raw_bytes = {f.name: f.read_bytes() for f in tree.files(suffix=".jpg")}
    checked = 0
    for row in rows:
        for plane in row["focal_stack"]:
            assert plane["bytes"] == raw_bytes[plane["path"]]
            checked += 1
    assert checked == len(raw_bytes) == 17 * 3 * 11


def test_every_raw_file_is_accounted_for(built):
    rep = report(built("cccid"))
    assert rep["files"]["used"] == 17 * 3 * 11
    skipped = [f for f in rep["files"]["list"] if f["status"] == "skipped"]
    assert [(f["path"], f["reason"]) for f in skipped] == [
        (path, "cytohub synthetic-data marker")
        for path in [".cytohub-synthetic.json", *(f"{a}/.cytohub-synthetic.json" for a in sorted(ARCHIVES))]]
    assert sorted(i["path"] for i in rep["inputs"]) == ARCHIVES
    assert all(len(i["sha256"]) == 64 for i in rep["inputs"])


def test_extracted_tree_builds_the_same_rows(tmp_path, synth_raw, built):
    from cytohub.build import build

    extracted = extract_all(synth_raw("cccid"), tmp_path / "extracted")
    assert (extracted / "SCC_etc" / "17. Adenocarcinoma").is_dir()
    build(registry.get("cccid"), extracted, tmp_path / "out", split="train=0.6,validation=0.2,test=0.2")
    a = read_rows(tmp_path / "out", columns=["id", "label", "z_um", "image"])
    b = read_rows(built("cccid"), columns=["id", "label", "z_um", "image"])
    assert a == b


@pytest.mark.parametrize("folder,expected", [
    ("1. Superficial-Intermediate Cells", 1), ("01_superficial intermediate cell", 1),
    ("Superficial-Intermediate", None), ("6", 6), ("Repair cell", 6), ("repair_cells", 6),
    ("3. Glandular Cells (isolated)", 3), ("Glandular cells cluster", 4), ("15. Carcinoma in situ Cells", 15),
    ("17 Adenocarcinoma", 17), ("Koilocytes", None), ("99", None),
])
def test_tolerant_subfolder_matching(folder, expected):
    assert cccid._cell_type_of(folder) == expected


# ------------------------------------------------------------------------------------------- bad input
@pytest.fixture
def extracted(tmp_path, synth_raw) -> Path:
    return extract_all(synth_raw("cccid"), tmp_path / "raw")


def _build_fails(raw: Path, out: Path, *needles: str) -> str:
    return build_fails("cccid", raw, out, *needles)


def test_missing_raw_path(tmp_path):
    _build_fails(tmp_path / "nowhere", tmp_path / "out", "nowhere", "does not exist")


def test_not_an_archive(tmp_path):
    (tmp_path / "CCCID_LSIL.zip.7z").write_text("<html>download quota exceeded</html>")
    _build_fails(tmp_path / "CCCID_LSIL.zip.7z", tmp_path / "out", "CCCID_LSIL.zip.7z", "not a zip, 7z or tar")


def test_truncated_7z(tmp_path, synth_raw):
    raw = tmp_path / "raw"
    shutil.copytree(synth_raw("cccid"), raw)
    p = raw / "CCCID_HSIL.zip.7z"
    p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])
    _build_fails(raw, tmp_path / "out", "CCCID_HSIL.zip.7z", "truncated")


def test_unknown_subfolder(tmp_path, extracted):
    (extracted / "HSIL" / "14. Deep-layer Dysplastic Cells").rename(extracted / "HSIL" / "14. Spindle Cells")
    _build_fails(extracted, tmp_path / "out", "HSIL/14. Spindle Cells", "unknown cell-type subfolder",
                 "Deep-layer Dysplastic Cells")


def test_subfolder_under_the_wrong_category(tmp_path, extracted):
    shutil.move(extracted / "NILM" / "8. Macrophages", extracted / "LSIL" / "8. Macrophages")
    _build_fails(extracted, tmp_path / "out", "LSIL/8. Macrophages", "belongs under NILM")


def test_fov_with_10_planes(tmp_path, extracted):
    victim = sorted((extracted / "LSIL" / "12. Superficial-type Koilocyte").glob("002_*,7).jpg"))[0]
    victim.unlink()
    _build_fails(extracted, tmp_path / "out", "12. Superficial-type Koilocyte", "FOV 002", "10 focal planes",
                 "missing Z = [7]")


def test_duplicated_plane(tmp_path, extracted):
    plane = sorted((extracted / "NILM" / "6. Repair Cells").glob("001_*,3).jpg"))[0]
    shutil.copy(plane, plane.with_name(plane.name.replace(",3).jpg", ",03).jpg")))
    _build_fails(extracted, tmp_path / "out", "duplicated focal plane Z=3", plane.name)


def test_unparseable_file_name(tmp_path, extracted):
    plane = sorted((extracted / "NILM" / "9. Neutrophils").glob("*.jpg"))[0]
    plane.rename(plane.with_name("neutrophil_scan_final.jpg"))
    _build_fails(extracted, tmp_path / "out", "neutrophil_scan_final.jpg", "[Serial]_(CenterX,CenterY,Z).jpg")


def test_corrupt_jpeg(tmp_path, extracted):
    plane = sorted((extracted / "HSIL" / "15. Carcinoma in situ Cells").glob("*.jpg"))[4]
    plane.write_bytes(plane.read_bytes()[:3000])
    _build_fails(extracted, tmp_path / "out", plane.name, "truncated")


def test_garbage_jpeg(tmp_path, extracted):
    plane = sorted((extracted / "HSIL" / "15. Carcinoma in situ Cells").glob("*.jpg"))[2]
    plane.write_bytes(b"\x00" * 500)
    _build_fails(extracted, tmp_path / "out", plane.name, "not a readable image")


def test_out_exists_without_overwrite(tmp_path, synth_raw):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    result = runner.invoke(app, ["build", "cccid", "--raw", str(synth_raw("cccid")), "--out", str(out)])
    assert result.exit_code != 0 and "already exists" in result.output and "--overwrite" in result.output
    assert (out / "keep.txt").read_text() == "mine"
    # and --overwrite refuses to delete a folder that is not a build folder
    result = runner.invoke(app, ["build", "cccid", "--raw", str(synth_raw("cccid")), "--out", str(out),
                                 "--overwrite"])
    assert result.exit_code != 0 and "not a cytohub build folder" in result.output
    assert (out / "keep.txt").read_text() == "mine"
