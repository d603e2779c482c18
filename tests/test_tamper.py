"""Tamper-evident builds and a validate as strict as the readers: the manifest in the build report, every kind
of change to a build folder, and checks that hold even when a faulty build wrote the bad content itself (the
manifest is then re-computed, `_reseal`, so only the content checks can find it)."""

from __future__ import annotations

import io
import json
import os
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image
from typer.testing import CliRunner

from cytohub import manifest, synth
from cytohub.cli import app
from cytohub.validate import validate
from helpers import read_rows, report

runner = CliRunner()


@pytest.fixture
def folder(built, tmp_path) -> Path:
    dest = tmp_path / "cccid"
    shutil.copytree(built("cccid"), dest)
    return dest


def _shard(folder: Path, split: str) -> Path:
    return sorted((folder / "data").glob(f"{split}-*.parquet"))[0]


def _rewrite(path: Path, change, schema: pa.Schema | None = None) -> None:
    """Rewrite a shard after `change(rows)` edited its rows in place (same schema and metadata by default)."""
    table = pq.read_table(path)
    rows = table.to_pylist()
    change(rows)
    pq.write_table(pa.Table.from_pylist(rows, schema=schema or table.schema), path)


def _reseal(folder: Path) -> None:
    """Record the folder's current files in its report, as a faulty build that wrote them itself would."""
    rep = report(folder)
    rep["manifest"] = manifest.compute(folder)
    (folder / "build-report.json").write_text(json.dumps(rep))


def _problems(folder: Path, **kw) -> str:
    return "\n".join(validate(folder, **kw).problems)


# ------------------------------------------------------------------------------------------- the manifest
def test_the_report_lists_every_file_the_build_wrote(built):
    folder = built("cccid")
    rep = report(folder)
    files = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}
    assert {e["path"] for e in rep["manifest"]} == files - {"build-report.json"}
    card = next(e for e in rep["manifest"] if e["path"] == "README.md")
    assert card["sha256"] == manifest.sha256_file(folder / "README.md")
    assert card["size"] == (folder / "README.md").stat().st_size
    v = validate(folder)
    assert v.ok, v.problems
    assert set(v.hashes) == files - {"build-report.json"}


def test_a_changed_label_is_caught(folder):
    _rewrite(_shard(folder, "test"), lambda rows: rows[0].update(label=(rows[0]["label"] + 1) % 17))
    text = _problems(folder, load=False)
    assert "changed since the build" in text and "data/test-00000-of-00001.parquet" in text


def test_rows_swapped_across_splits_are_caught(folder):
    moved = []
    _rewrite(_shard(folder, "train"), lambda rows: moved.append(rows.pop(0)))
    _rewrite(_shard(folder, "test"), lambda rows: rows.append(moved[0]))
    text = _problems(folder, load=False)
    assert "2 file(s) changed since the build" in text
    assert "split 'train': 30 rows in the shards but the card says 31" in text


def test_an_image_swapped_for_another_is_caught(folder):
    def swap(rows):
        rows[0]["image"], rows[1]["image"] = rows[1]["image"], rows[0]["image"]

    _rewrite(_shard(folder, "validation"), swap)
    text = _problems(folder, load=False)
    assert "changed since the build" in text and "validation-00000-of-00001.parquet" in text


def test_missing_extra_and_linked_files_are_caught(folder, tmp_path):
    (folder / "assets" / "samples.png").unlink()
    (folder / ".env").write_text("HF_TOKEN=hf_secret\n")
    (folder / "notes").mkdir()
    (folder / "notes" / "todo.txt").write_text("x")
    secret = tmp_path / "secret.txt"
    secret.write_text("s")
    os.symlink(secret, folder / "assets" / "link.png")
    text = _problems(folder, load=False)
    assert "listed in the manifest but missing: assets/samples.png" in text
    assert "not written by the build (not in the manifest): .env, notes/todo.txt" in text
    assert "symbolic links or special files (never part of a build): assets/link.png" in text


def test_a_report_without_manifest_is_not_trusted(folder):
    rep = report(folder)
    del rep["manifest"]
    (folder / "build-report.json").write_text(json.dumps(rep))
    assert "has no manifest" in _problems(folder, load=False)


# ------------------------------------------------------------------------------------------- synthetic marking
def test_a_removed_synthetic_marking_is_caught(folder):
    card = (folder / "README.md").read_text()
    (folder / "README.md").write_text(card.replace("[SYNTHETIC] ", "").replace("SYNTHETIC DATA", "DATA")
                                      .replace("- synthetic\n", ""))
    text = _problems(folder, load=False)
    assert "a synthetic build must say so" in text and "README.md" in text  # and the card changed


def test_a_report_edited_to_real_and_a_regenerated_card_are_caught(folder):
    """Even with the card regenerated (`cytohub card` records it in the manifest), the shards and their
    images still say synthetic."""
    rep = report(folder)
    rep["synthetic"], rep["synthetic_marker"] = False, None
    (folder / "build-report.json").write_text(json.dumps(rep))
    assert runner.invoke(app, ["card", str(folder), "--quiet"]).exit_code == 0
    assert "[SYNTHETIC]" not in (folder / "README.md").read_text()
    text = _problems(folder, load=False)
    assert "cytohub metadata {'builder': 'cccid', 'synthetic': True} disagrees with the build report" in text
    assert "carries the cytohub synthetic mark but the build report says the data is real" in text
    assert "changed since the build" not in text  # the manifest itself is consistent here


def test_a_card_marked_synthetic_for_real_data_is_caught(folder):
    rep = report(folder)
    rep["synthetic"], rep["synthetic_marker"] = False, None
    (folder / "build-report.json").write_text(json.dumps(rep))
    assert "the card says the data is synthetic but the build report says it is not" in _problems(folder, load=False)


def test_card_command_keeps_the_folder_valid(folder):
    assert runner.invoke(app, ["card", str(folder), "--quiet"]).exit_code == 0
    assert validate(folder, load=False).ok


# ------------------------------------------------------------------------------------------- strict content
def test_an_extra_column_is_caught_in_the_parquet_file_itself(folder):
    shard = _shard(folder, "test")
    table = pq.read_table(shard)
    pq.write_table(table.append_column("note", pa.array(["x"] * table.num_rows)), shard)
    _reseal(folder)
    text = _problems(folder)
    from cytohub.schema import SCHEMA_VERSION

    assert f"the Parquet schema is not the unified schema v{SCHEMA_VERSION} (extra columns ['note'])" in text
    assert "holds no rows" not in text  # the unreadable shard is reported once, not counted as empty


def test_a_missing_column_is_caught(folder):
    shard = _shard(folder, "test")
    pq.write_table(pq.read_table(shard).drop_columns(["extra"]), shard)
    _reseal(folder)
    assert "missing columns ['extra']" in _problems(folder)


def test_non_finite_numbers_are_caught(folder):
    def poison(rows):
        rows[0]["z_um"][3] = float("nan")
        rows[1]["objects"] = [{"category": "x", "bbox": [1.0, float("inf"), 2.0, 2.0], "polygon": None,
                               "point": None}]
        rows[2]["mpp"] = float("nan")
        rows[3]["fov_center_um"] = [1.0, float("-inf")]

    _rewrite(_shard(folder, "train"), poison)
    _reseal(folder)
    text = _problems(folder, load=False)
    assert "z_um has a non-finite value" in text
    assert "bbox has a non-finite value: [1.0, inf, 2.0, 2.0]" in text
    assert "mpp nan is not a positive finite number" in text
    assert "fov_center_um [1.0, -inf] is not two finite numbers" in text


def test_labels_out_of_range_and_ids_repeated_across_splits_are_caught(folder):
    test_ids = [r["id"] for r in read_rows(folder, "test", ["id"])]

    def change(rows):
        rows[0]["label"] = 17  # 17 classes: 0..16
        rows[1]["id"] = test_ids[0]

    _rewrite(_shard(folder, "train"), change)
    _reseal(folder)
    text = _problems(folder, load=False)
    assert "label 17 outside -1..16" in text
    assert f"row {test_ids[0]!r}: duplicate id (ids must be unique across all splits)" in text


def test_an_empty_split_is_caught(folder):
    shard = _shard(folder, "test")
    pq.write_table(pq.read_table(shard).slice(0, 0), shard)
    _reseal(folder)
    text = _problems(folder, load=False)
    assert "split 'test': its shards hold no rows" in text


def test_images_are_decoded_with_the_readers_pixel_limit(folder, tmp_path):
    big = io.BytesIO()
    Image.new("1", (14000, 13000)).save(big, "PNG")  # 182 Mpx: over twice Pillow's default limit
    _rewrite(_shard(folder, "test"), lambda rows: rows[0].update(image={"bytes": big.getvalue(), "path": None}))
    _reseal(folder)
    text = _problems(folder, load=False)
    assert "image: the PNG header declares 14000x13000 pixels (182,000,000), over the limit" in text
    assert "refused before decoding" in text


def test_an_exif_rotation_that_misaligns_objects_is_caught(folder):
    buf = io.BytesIO()
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees on display: readers apply it
    Image.new("RGB", (384, 200), (200, 180, 190)).save(buf, "JPEG", exif=exif)

    def change(rows):
        rows[0]["image"] = {"bytes": buf.getvalue(), "path": None}
        rows[0]["focal_stack"], rows[0]["z_um"] = [], []
        rows[0]["objects"] = [{"category": "cell", "bbox": [300.0, 10.0, 50.0, 50.0], "polygon": None,
                               "point": None}]

    _rewrite(_shard(folder, "test"), change)
    _reseal(folder)
    text = _problems(folder, load=False)
    assert ("image: EXIF orientation 6: datasets shows it as 200x384, rotated or mirrored from its stored "
            "384x200") in text
    assert "bbox [300.0, 10.0, 50.0, 50.0] is not inside the 200x384 image" in text  # the size readers see


def test_load_dataset_is_run_on_the_folder(folder):
    card = (folder / "README.md").read_text()
    (folder / "README.md").write_text(card.replace("path: data/test-*.parquet", "path: data/tset-*.parquet"))
    _reseal(folder)
    text = _problems(folder)
    assert "datasets.load_dataset(streaming=True) fails" in text


def test_default_validate_samples_and_full_decodes_everything(folder):
    """A corrupt image in a row the sample does not draw is found by --full (the manifest would find the
    change; here the faulty build wrote it)."""
    def corrupt(rows):
        rows[15]["image"] = {"bytes": rows[15]["image"]["bytes"][:300], "path": None}

    _rewrite(_shard(folder, "train"), corrupt)
    _reseal(folder)
    quick = validate(folder, sample_rows=2, load=False)
    assert quick.ok and quick.rows_decoded == 2 + 2 + 2  # first and last of each split
    full = validate(folder, full=True)
    assert not full.ok and full.rows_decoded == 51
    assert "image: the JPEG data is truncated" in "\n".join(full.problems)
    result = runner.invoke(app, ["validate", str(folder), "--full"])
    assert result.exit_code == 1 and "the JPEG data is truncated" in result.output


def test_the_sample_always_holds_the_first_and_last_row(folder):
    v = validate(folder, sample_rows=1, load=False)
    assert v.ok and v.rows_decoded == 2 * 3  # first and last of each of the three splits
    assert synth.find_mark(read_rows(folder, "test", ["image"])[0]["image"]["bytes"]) is not None


def test_full_validate_of_a_clean_build(built):
    v = validate(built("bmt"), full=True)  # every image decoded, load_dataset streaming and not
    assert v.ok, v.problems
    assert v.rows_decoded == sum(v.rows.values()) and v.images_decoded >= v.rows_decoded


@pytest.mark.parametrize("name", ["run [2]", "a*b?{c}"])
def test_a_folder_whose_path_looks_like_a_glob_validates(name, built, tmp_path):
    """`datasets` reads a folder's path as a glob pattern: 'run [2]/cccid' used to fail validation with
    'No (supported) data files found' although the build was good (the Hub repo has no such name)."""
    dest = tmp_path / name / "cccid"
    shutil.copytree(built("cccid"), dest)
    assert validate(dest).ok, _problems(dest)
    assert validate(dest, full=True).ok, _problems(dest, full=True)
