"""Synthetic stays synthetic: every file `synthesize` writes for every corpus carries the mark inside it, and a
build from copied, extracted or re-zipped synthetic files is still marked synthetic."""

from __future__ import annotations

import io
import shutil
import zipfile
from pathlib import Path

import py7zr
import pytest
from PIL import Image

from cytohub import registry, synth
from cytohub.build import build
from helpers import extract_all

NAMES = list(registry.builders())
IMAGE_MAGIC = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"BM", b"II*\x00", b"MM\x00*")


def _kind(name: str, data: bytes) -> str:
    if data[:4] == b"PK\x03\x04" or data[:4] == b"PK\x05\x06":
        return "zip"
    if data[:6] == b"7z\xbc\xaf\x27\x1c":
        return "7z"
    if data.startswith(IMAGE_MAGIC):
        return "image"
    if data.startswith(b"MATLAB") or data[512:520] == b"\x89HDF\r\n\x1a\n":
        return "mat"
    return "other"


def _unmarked(name: str, data: bytes, tmp: Path, counts: dict[str, int]) -> list[str]:
    """Paths (below `name`) of files that hold pixels, or are archives or MAT-files, and carry no mark."""
    kind = _kind(name, data)
    counts[kind] = counts.get(kind, 0) + 1
    bad = []
    if kind == "zip":
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            if synth.parse_mark(zf.comment) is None:
                bad.append(f"{name} (zip comment)")
            for info in zf.infolist():
                if not info.is_dir():
                    bad += _unmarked(f"{name}/{info.filename}", zf.read(info), tmp, counts)
    elif kind == "7z":
        dest = tmp / f"7z-{counts['7z']}"
        with py7zr.SevenZipFile(io.BytesIO(data)) as z:
            if synth.MARKER not in z.getnames():
                bad.append(f"{name} (7z marker member)")
            z.extractall(dest)
        for p in sorted(dest.rglob("*")):
            if p.is_file():
                bad += _unmarked(f"{name}/{p.relative_to(dest).as_posix()}", p.read_bytes(), tmp, counts)
    elif kind in ("image", "mat") and synth.find_mark(data) is None:
        bad.append(name)
    return bad


@pytest.mark.parametrize("name", NAMES)
def test_every_synthetic_file_carries_the_mark(name, synth_raw, tmp_path):
    raw = synth_raw(name)
    counts: dict[str, int] = {}
    bad = []
    for p in sorted(raw.rglob("*")):
        if p.is_file() and p.name != synth.MARKER:
            bad += _unmarked(p.relative_to(raw).as_posix(), p.read_bytes(), tmp_path, counts)
    assert bad == [], f"{name}: files without the synthetic mark: {bad[:10]}"
    assert counts.get("image", 0) + counts.get("mat", 0) > 0, counts


def test_the_mark_in_each_format():
    img = Image.new("RGB", (20, 10), (200, 180, 190))
    for fmt in ("JPEG", "PNG", "BMP", "TIFF"):
        assert synth.find_mark(synth.encode(img, fmt)) is None  # outside `marking`: plain images
        with synth.marking("cccid", "full", 7):
            data = synth.encode(img, fmt)
        assert synth.find_mark(data) == {"corpus": "cccid", "scale": "full", "seed": 7}, fmt
        with Image.open(io.BytesIO(data)) as im:  # still a normal image of the same pixels
            im.load()
            assert im.size == (20, 10)


@pytest.mark.parametrize(("name", "found_in"), [("cccid", "CCCID_HSIL.zip.7z/.cytohub-synthetic.json"),
                                                ("herlev", "smear2005.zip"),
                                                ("bmt", "Brown Multicellular ThinPrep Database - images/")])
def test_copied_files_without_the_hidden_marker_stay_synthetic(name, found_in, synth_raw, tmp_path):
    raw = tmp_path / "copy"
    shutil.copytree(synth_raw(name), raw, ignore=shutil.ignore_patterns(synth.MARKER))
    b = registry.get(name)
    res = build(b, raw, tmp_path / "out", split=None if b.splits else "train=0.6,validation=0.2,test=0.2")
    assert res.report["synthetic"] is True
    assert res.report["synthetic_marker"]["found_in"].startswith(found_in)
    assert res.report["synthetic_marker"]["scale"] == "small"
    assert "[SYNTHETIC]" in (tmp_path / "out" / "README.md").read_text()


def test_extracted_and_rezipped_images_stay_synthetic(synth_raw, tmp_path):
    """Herlev's BMPs copied out of the archive, then zipped again by a user (no zip comment): the images
    themselves still carry the mark."""
    tree = extract_all(synth_raw("herlev"), tmp_path / "tree")
    (tree / synth.MARKER).unlink()
    loose = build(registry.get("herlev"), tree, tmp_path / "out1")
    assert loose.report["synthetic"] and loose.report["synthetic_marker"]["found_in"].lower().endswith(".bmp")
    with zipfile.ZipFile(tmp_path / "mine.zip", "w") as zf:
        for p in sorted(tree.rglob("*")):
            if p.is_file():
                zf.write(p, p.relative_to(tree).as_posix())
    rezipped = build(registry.get("herlev"), tmp_path / "mine.zip", tmp_path / "out2")
    assert rezipped.report["synthetic"] and rezipped.report["synthetic_marker"]["scale"] == "small"


def test_real_files_are_not_marked(tmp_path):
    raw = tmp_path / "raw"
    img = Image.new("RGB", (32, 24), (200, 180, 190))
    for folder, n in (("benign", 3), ("Malignant", 3)):
        for i in range(n):
            synth.write_bytes(raw / folder / f"{i}.png", synth.encode(img, "PNG"))  # outside `marking`
    res = build(registry.get("body-cavity-fluid"), raw, tmp_path / "out")
    assert res.report["synthetic"] is False and res.report["synthetic_marker"] is None
    assert res.report["completeness"]["checked"] is False  # nothing is published to compare with
    assert "[SYNTHETIC]" not in (tmp_path / "out" / "README.md").read_text()


@pytest.mark.parametrize("content", [b"[" * 200_000, b"0," * 100_000, b"\xff\xfe not json", b"[1, 2]"],
                         ids=["deep", "large", "not-json", "not-object"])
def test_a_hostile_marker_file_still_marks_the_download(content, tmp_path):
    """The marker file is raw input like any other: deeply nested, oversized or malformed content is not parsed
    past its size check and never fails the build; the download is still marked, with unknown fields."""
    from cytohub.raw import RawTree

    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / synth.MARKER).write_bytes(content)
    with RawTree(raw) as tree:
        mark = synth.detect(tree)
    assert mark is not None and mark["found_in"] == synth.MARKER
    assert (mark["corpus"], mark["scale"], mark["seed"]) == (None, None, None)
