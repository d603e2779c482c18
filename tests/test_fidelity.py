"""Fidelity to the real downloads: fixes found on real published files, and the CLI printing builder text as is."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from cytohub import registry
from cytohub.cli import app
from cytohub.validate import validate

runner = CliRunner()


def flat(text: str) -> str:
    """Console output with its line wrapping undone (rich wraps at the console width)."""
    return " ".join(text.split())


# ------------------------------------------------------------------------------------------- cytohub info
def test_info_prints_builder_text_without_reading_it_as_markup():
    cervix93 = registry.get("cervix93")
    bracketed = next(a for a in cervix93.assumptions if "[col - 1, row - 1]" in a)
    result = runner.invoke(app, ["info", "cervix93"], terminal_width=400)
    assert result.exit_code == 0, result.output
    assert flat(bracketed) in flat(result.output)  # brackets kept, not swallowed as console markup
    assert "[bold]" not in result.output and "[/]" not in result.output
    assert "Citation:" in result.output and "Assumptions:" in result.output
    assert cervix93.citation.strip().splitlines()[0] in result.output


def test_info_keeps_brackets_in_every_field(monkeypatch):
    cls = registry.builders()["cccid"]
    monkeypatch.setattr(cls, "summary", "a summary with [red]brackets[/]")
    monkeypatch.setattr(cls, "manual_download", "download [bold]this[/] file")
    result = runner.invoke(app, ["info", "cccid"], terminal_width=400)
    assert result.exit_code == 0
    assert "a summary with [red]brackets[/]" in flat(result.output)
    assert "download [bold]this[/] file" in flat(result.output)


def test_error_messages_keep_their_brackets(tmp_path):
    missing = tmp_path / "raw [copy]" / "[bold]x"
    result = runner.invoke(app, ["build", "cccid", "--raw", str(missing), "--out", str(tmp_path / "o"), "--quiet"])
    assert result.exit_code == 2
    squeezed = "".join(result.output.split())  # rich wraps long lines at spaces
    assert "".join(f"raw path {missing} does not exist".split()) in squeezed


# ------------------------------------------------------------------------------------------- bone-marrow
def _bm_tree(root, files: list[str]):
    """A tiny bone-marrow download: abbreviations.csv and the given image paths under bone_marrow_cell_dataset/."""
    from cytohub import synth
    from cytohub.builders import bone_marrow as bm

    jpg = synth.encode(synth.cell_field(synth.rng_for("bm-test"), (24, 24), 1)[0], "JPEG")
    (root / "bone_marrow_cell_dataset").mkdir(parents=True)
    (root / "abbreviations.csv").write_text("Abbreviation;Meaning\n" + "".join(f"{c};{n}\n" for c, n, *_ in
                                                                                 bm.CLASSES))
    for rel in files:
        synth.write_bytes(root / "bone_marrow_cell_dataset" / rel, jpg)
    return root


def test_bone_marrow_five_digit_range_folders(tmp_path):
    """Classes over 10,000 images (ART, BLA, EBO, LYT, NGS, PMO) have range folders such as 10001-11000."""
    from cytohub.build import build
    from helpers import read_rows

    raw = _bm_tree(tmp_path / "raw", ["BLA/0001-1000/BLA_00001.jpg", "BLA/9001-10000/BLA_10000.jpg",
                                      "BLA/10001-11000/BLA_10001.jpg", "BLA/11001-11973/BLA_11973.jpg",
                                      "ABE/ABE_00001.jpg"])
    build(registry.get("bone-marrow"), raw, tmp_path / "out", allow_partial=True)
    rows = {r["id"]: r for r in read_rows(tmp_path / "out", columns=["id", "source_path"])}
    assert sorted(rows) == ["ABE_00001", "BLA_00001", "BLA_10000", "BLA_10001", "BLA_11973"]
    assert rows["BLA_10001"]["source_path"] == "bone_marrow_cell_dataset/BLA/10001-11000/BLA_10001.jpg"


def test_bone_marrow_five_digit_range_folder_checks_numbers(tmp_path):
    from helpers import build_fails

    raw = _bm_tree(tmp_path / "raw", ["BLA/10001-11000/BLA_09999.jpg"])
    build_fails("bone-marrow", raw, tmp_path / "out", "BLA/10001-11000/BLA_09999.jpg",
                "image number 9999 is outside its range folder 10001-11000")
    raw = _bm_tree(tmp_path / "raw2", ["BLA/11000-10001/BLA_10500.jpg"])
    build_fails("bone-marrow", raw, tmp_path / "out2", "11000-10001", "ends before it starts")


def test_bone_marrow_full_scale_range_folders():
    from cytohub.builders import bone_marrow as bm

    assert bm.range_folder(10001, 11973) == "10001-11000" and bm.range_folder(11973, 11973) == "11001-11973"
    assert bm.range_folder(10000, 11973) == "9001-10000"
    assert all(bm.RANGE_RE.match(bm.range_folder(i, 29424)) for i in (1, 999, 10001, 29424))


# ------------------------------------------------------------------------------------------- partial downloads
def _only(synth_raw, tmp_path, name: str, keep: tuple[str, ...]):
    import shutil

    raw = tmp_path / "raw"
    raw.mkdir()
    for f in keep:
        shutil.copy(synth_raw(name) / f, raw / f)
    return raw


def test_dsb2018_stage1_test_and_solution_only(tmp_path, synth_raw):
    """The stage-1 test images with the solution CSV are an incomplete download; with allow_partial they build
    the test rows, and the card names the absent archive once, with its effect."""
    from cytohub.build import build
    from cytohub.errors import IncompleteDownloadError
    from helpers import read_rows, report

    raw = _only(synth_raw, tmp_path, "dsb2018", ("stage1_test.zip", "stage1_solution.csv.zip"))
    with pytest.raises(IncompleteDownloadError, match=r"1 of the 2 files of the download: stage1_train.zip "
                                                      r"\(no train rows\)"):
        build(registry.get("dsb2018"), raw, tmp_path / "out")
    build(registry.get("dsb2018"), raw, tmp_path / "out", allow_partial=True)
    rep = report(tmp_path / "out")
    assert rep["splits"]["test"]["num_examples"] == 2 and "train" not in rep["splits"]  # empty split left out
    assert rep["absent_parts"] == [{"part": "stage1_train.zip", "effect": "no train rows"}]
    c = rep["completeness"]
    assert c["partial"] == "1 of 2 files" and c["missing"] == [
        "1 of the 2 files of the download: stage1_train.zip (no train rows)"]
    assert c["absent_optional"] == ["stage1_train_labels.csv.zip", "stage2_test_final.zip"]
    assert all(r["objects"] for r in read_rows(tmp_path / "out", "test", columns=["objects"]))
    card = (tmp_path / "out" / "README.md").read_text()
    assert "# [SYNTHETIC] 2018 Data Science Bowl: nucleus segmentation (BBBC038) (partial: 1 of 2 files)\n" in card
    assert card.count("stage1_train.zip (no train rows)") == 1  # named once, in the Completeness section
    assert "- 1 of the 2 files of the download: stage1_train.zip (no train rows)" in card
    assert "Left out because they have no rows in this download: train." in card
    assert validate(tmp_path / "out", load=False).ok


def test_dsb2018_test_images_without_solution_and_train_without_labels(tmp_path, synth_raw):
    """Both archives without the optional CSVs: complete, and the card says what the absent CSVs would give."""
    from cytohub.build import build
    from helpers import report

    raw = _only(synth_raw, tmp_path, "dsb2018", ("stage1_train.zip", "stage1_test.zip"))
    build(registry.get("dsb2018"), raw, tmp_path / "out")
    rep = report(tmp_path / "out")
    assert rep["absent_parts"] == [
        {"part": "stage1_train_labels.csv.zip", "effect": "the training masks are not cross-checked against its "
                                                          "run lengths"},
        {"part": "stage1_solution.csv.zip", "effect": "stage-1 test rows have no objects and no mask"}]
    c = rep["completeness"]
    assert c["complete"] and c["partial"] is None and c["files"] == {"published": 2, "present": 2}
    assert c["absent_optional"] == [
        "stage1_train_labels.csv.zip (the training masks are not cross-checked against its run lengths)",
        "stage1_solution.csv.zip (stage-1 test rows have no objects and no mask)", "stage2_test_final.zip"]
    card = (tmp_path / "out" / "README.md").read_text()
    assert "(partial" not in card and card.count("stage1_solution.csv.zip (stage-1 test rows") == 1


def test_complete_download_has_no_absent_parts(built):
    from helpers import report

    assert report(built("dsb2018"))["absent_parts"] == []
    assert report(built("cellpose"))["absent_parts"] == []
    card = (built("cellpose") / "README.md").read_text()
    assert "(partial" not in card and "Optional parts absent from this download: train_cyto2.zip.\n" in card


def test_cellpose_test_zip_only(tmp_path, synth_raw):
    from cytohub.build import build
    from helpers import report

    raw = _only(synth_raw, tmp_path, "cellpose", ("test.zip",))
    build(registry.get("cellpose"), raw, tmp_path / "out", allow_partial=True)
    rep = report(tmp_path / "out")
    assert rep["splits"]["test"]["num_examples"] == 2 and rep["num_rows"] == 2
    assert rep["absent_parts"] == [{"part": "train.zip", "effect": "no train rows"}]
    assert rep["completeness"]["missing"] == ["1 of the 2 files of the download: train.zip (no train rows)"]
    assert "- 1 of the 2 files of the download: train.zip (no train rows)" in \
        (tmp_path / "out" / "README.md").read_text()


def test_an_unpacked_download_missing_a_part_is_partial_too(tmp_path, synth_raw):
    """Given as folders, the file names cannot be compared: the part the builder finds absent still makes the
    download incomplete (the same verdict as for the archives)."""
    import zipfile

    from cytohub.build import build
    from cytohub.errors import IncompleteDownloadError
    from helpers import report

    raw = tmp_path / "raw"
    with zipfile.ZipFile(synth_raw("cellpose") / "test.zip") as zf:
        zf.extractall(raw)
    assert (raw / "test").is_dir() and not list(raw.glob("*.zip"))
    with pytest.raises(IncompleteDownloadError, match=r"train.zip \(no train rows\)"):
        build(registry.get("cellpose"), raw, tmp_path / "out")
    build(registry.get("cellpose"), raw, tmp_path / "out", allow_partial=True)
    c = report(tmp_path / "out")["completeness"]
    assert not c["files_compared"] and c["partial"] == "1 of 2 files"


# ------------------------------------------------------------------------------------------- conversions
@pytest.mark.parametrize("name", list(registry.builders()))
def test_image_bytes_are_raw_bytes_unless_a_conversion_is_declared(name, built, synth_raw):
    """The card says image/mask bytes pass through as published unless the builder declares its conversions:
    check that claim against the bytes actually written."""
    import hashlib

    from cytohub.raw import RawTree
    from helpers import read_rows

    with RawTree(synth_raw(name)) as tree:
        raw = {hashlib.sha256(f.read_bytes()).hexdigest() for f in tree.files()}
    converted = set()
    for r in read_rows(built(name), columns=["image", "mask", "focal_stack"]):
        for field, img in (("image", r["image"]), ("mask", r["mask"]), *(("focal_stack", p) for p in
                                                                         r["focal_stack"])):
            if img is not None and hashlib.sha256(img["bytes"]).hexdigest() not in raw:
                converted.add(field)
    cls = registry.builders()[name]
    if not cls.conversions:
        assert not converted, f"{name} re-encodes {sorted(converted)} but declares no conversions"
    card = (built(name) / "README.md").read_text()
    assert ("passed through exactly as published" in card) == (not cls.conversions)
    for c in cls.conversions:
        assert c in card


# ------------------------------------------------------------------------------------------- layout doctor
def test_layout_helpers():
    from cytohub import layout

    paths = ["a/x.jpg", "a/y.jpg", "b/c/z.jpg", "top.csv", "images/0001-1000/1.jpg", "images/1001-2000/2.jpg"]
    assert layout.entries_at(paths) == ["a/", "b/", "images/", "top.csv"]
    assert layout.entries_at(paths, "images") == ["0001-1000/", "1001-2000/"]
    assert layout.entries_at(paths, "images/") == ["0001-1000/", "1001-2000/"]
    assert layout.entries_at(paths, "nowhere") == []
    assert layout.found_text([]) == "nothing"
    assert layout.found_text([f"f{i}" for i in range(11)], limit=3) == "f0, f1, f2, ... (8 more)"
    assert layout.mismatch("class folders NIL, LSIL, ...", layout.entries_at(paths, "images"), under="images") == \
        "expected class folders NIL, LSIL, ... under images/; found 0001-1000/, 1001-2000/"
    assert layout.mismatch("a file", "nothing") == "expected a file; found nothing"


@pytest.mark.parametrize("name", list(registry.builders()))
def test_every_builder_declares_an_expected_layout_shown_by_info(name):
    cls = registry.builders()[name]
    sketch = cls.metadata()["expected_layout"]
    assert sketch and sketch == sketch.strip("\n") and not sketch.startswith(" ")
    assert 1 <= len(sketch.splitlines()) <= 8 and all(len(line) <= 118 for line in sketch.splitlines())
    result = runner.invoke(app, ["info", name])
    assert result.exit_code == 0
    out = flat(result.output)
    assert "Expected raw layout:" in out and flat(sketch.splitlines()[0]) in out


def test_bmt_wrong_class_folders_say_what_was_expected_and_found(tmp_path, synth_raw):
    """The issue's example: range folders where BMT's class folders should be."""
    import shutil

    from helpers import build_fails

    raw = tmp_path / "raw"
    shutil.copytree(synth_raw("bmt"), raw)
    images = raw / "Brown Multicellular ThinPrep Database - images"
    shutil.rmtree(images / "Annotated Images")
    for k, d in enumerate(sorted(p for p in images.iterdir() if p.is_dir())):
        for f in d.iterdir():
            f.rename(f.with_name(f"{k}{f.name[f.name.index('_'):]}"))
        d.rename(images / f"{k * 1000 + 1:04d}-{k * 1000 + 1000}")
    build_fails("bmt", raw, tmp_path / "out", "0001-1000/0_001.JPG: neither in a class folder",
                "expected class folders NIL (or NILM), LSIL, HSIL under Brown Multicellular ThinPrep Database - "
                "images/; found 0001-1000/, 1001-2000/, 2001-3000/")


def test_bone_marrow_unknown_class_folder_lists_the_folders_found(tmp_path):
    from helpers import build_fails

    raw = _bm_tree(tmp_path / "raw", ["ABE/ABE_00001.jpg", "XYZ/ABE_00002.jpg"])
    build_fails("bone-marrow", raw, tmp_path / "out", "unknown class folder 'XYZ'",
                "expected class folders ABE, ART, BAS", "under bone_marrow_cell_dataset/; found ABE/, XYZ/")


def test_bmcd_unknown_class_folder_lists_the_folders_found(tmp_path, synth_raw):
    from helpers import build_fails, extract_all

    raw = extract_all(synth_raw("bmcd-fgcd"), tmp_path / "raw")
    (raw / "BMCD-FGCD" / "test" / "27").rename(raw / "BMCD-FGCD" / "test" / "Mystery cells")
    build_fails("bmcd-fgcd", raw, tmp_path / "out", "unknown class folder 'Mystery cells'",
                "expected class folders 0-18, 23-35", "under BMCD-FGCD/test/; found 0/, 1/, 10/")


def test_nothing_found_says_what_is_there(tmp_path):
    from helpers import build_fails

    raw = tmp_path / "raw"
    (raw / "photos").mkdir(parents=True)
    (raw / "photos" / "a.txt").write_text("x")
    (raw / "notes.txt").write_text("x")
    build_fails("cellpose", raw, tmp_path / "o1", "no Cellpose images found; expected train.zip",
                "; found photos/, notes.txt")
    build_fails("herlev", raw, tmp_path / "o2", "no Herlev cells found", "; found photos/, notes.txt")


def test_engine_no_rows_error_carries_the_sketch(tmp_path):
    from cytohub.build import build
    from cytohub.errors import RawLayoutError

    cls = registry.builders()["cric"]

    class Empty(cls):
        def examples(self, raw):
            return iter(())

    (tmp_path / "raw" / "elsewhere").mkdir(parents=True)
    (tmp_path / "raw" / "elsewhere" / "x.png").write_bytes(b"x")
    with pytest.raises(RawLayoutError) as err:
        build(Empty(), tmp_path / "raw", tmp_path / "out")
    msg = str(err.value)
    assert "the cric builder found no rows" in msg
    assert "Expected raw layout:\n  <download>.zip (flat, no folders)\n    <32-hex hash>.png" in msg
    assert msg.endswith("Found at the top of the raw data: elsewhere/")


# ------------------------------------------------------------------------------------------- full scale
def test_image_pool_reuses_drawings_only_at_full_scale():
    from cytohub import synth

    calls = []

    def make(k):
        calls.append(k)
        return f"img{k}".encode()

    small = synth.ImagePool("small", size=2)
    assert [small("a", i, make) for i in range(4)] == [b"img0", b"img1", b"img2", b"img3"]
    assert calls == [0, 1, 2, 3]
    calls.clear()
    full = synth.ImagePool("full", size=2)
    got = [full(key, i, make) for key in ("a", "b") for i in range(5)]
    assert got == [b"img0", b"img1", b"img0", b"img1", b"img0"] * 2
    assert calls == [0, 1, 0, 1]  # drawn once per key and pool slot
    assert got[0] is got[2]  # the same bytes object: written many times, held once
    with pytest.raises(ValueError):
        synth.ImagePool("full", size=0)


def test_chunks_are_cut_by_the_bytes_of_every_image_form(tmp_path, monkeypatch):
    """A chunk of rows sent to a worker is cut at about CHUNK_BYTES of image bytes whatever form the builder yields
    images in: {'bytes', 'path'} dicts (re-encoded or composed images, e.g. ccedd, isbi2014) used to count as 0
    bytes, so chunks reached 256 rows of 1.6 MB images (a 2.1 GB peak at full scale for ccedd)."""
    from cytohub import spool
    from cytohub.encode import storage_schema
    from cytohub.raw import RawTree
    from cytohub.rows import RowMaker

    (tmp_path / "raw").mkdir()
    (tmp_path / "raw" / "a.png").write_bytes(b"p" * 7)
    with RawTree(tmp_path / "raw") as tree:
        f = tree.one("a.png")
        row = {"image": {"bytes": b"x" * 10, "path": "x.png"}, "mask": f,
               "focal_stack": [b"z" * 3, {"bytes": bytearray(4), "path": None}, f]}
        assert spool._row_size(row) == 10 + 7 + 3 + 4 + 7
        assert spool._row_size({"image": {"bytes": b"x" * 10}, "mask": None}) == 10

    sent = []
    monkeypatch.setattr(spool, "CHUNK_BYTES", 25)
    monkeypatch.setattr(spool, "encode_chunk", lambda chunk, path: sent.append(len(chunk)) or len(chunk))
    b = registry.get("cccid")
    with spool.RowPipeline(RowMaker(b), storage_schema(b.class_names()), (), 1, tmp_path / "spool") as pipe:
        pipe.run(({"id": str(i), "image": {"bytes": b"x" * 10, "path": None}} for i in range(7)), lambda f: None,
                 lambda res: None)
    assert sent == [3, 3, 1]  # 30 bytes >= 25: three rows a chunk, not all seven


def test_full_scale_rows_match_the_synthetic_counts():
    """The benchmark's reference counts (full_scale_rows) agree with what each module's counts functions write."""
    import importlib

    from cytohub.builders import bmcd_fgcd, bone_marrow, ufsc_ocpap

    assert bone_marrow.full_scale_rows() == sum(bone_marrow.synthetic_counts("full").values()) == 171374
    assert bmcd_fgcd.full_scale_rows() == {"train": 73877, "test": 18458}
    assert sum(ufsc_ocpap.full_scale_rows().values()) == 65521
    declared = {name: importlib.import_module(cls.__module__).__dict__.get("full_scale_rows")
                for name, cls in registry.builders().items()}
    for name, cls in registry.builders().items():
        # a corpus without a published count must declare the plausible number its full-scale data use
        assert cls.num_images is not None or declared[name] is not None, name
        if declared[name] is not None and isinstance(declared[name](), dict) and cls.splits:
            assert set(declared[name]()) == set(cls.splits), name


def test_a_missing_named_file_says_what_is_there(tmp_path):
    from helpers import build_fails

    raw = tmp_path / "raw"
    (raw / "CISD" / "center_slice").mkdir(parents=True)
    (raw / "CISD" / "readme.txt").write_text("x")
    build_fails("cell-instance", raw, tmp_path / "o1", "no file named 'CISD.json' found", "; found CISD/")
    build_fails("comparison-detector", raw, tmp_path / "o2", "expected exactly one train.json",
                "; found CISD/ at the top")
    build_fails("aml-cytomorphology-lmu", raw, tmp_path / "o3", "annotations.dat not found", "; found CISD/")


def test_class_folder_corpora_say_which_folders_were_found(tmp_path, synth_raw):
    from helpers import build_fails, extract_all

    raw = extract_all(synth_raw("fnac2019"), tmp_path / "raw")
    (raw / "FNAC-2019" / "base_data" / "M").rename(raw / "FNAC-2019" / "base_data" / "Malignant cases")
    build_fails("fnac2019", raw, tmp_path / "out", "which is not a fnac2019 class folder",
                "; found B/, Malignant cases/ under FNAC-2019/base_data/")
