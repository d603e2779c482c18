"""The build engine: determinism, sharding, splits, atomic output, validate, card, CLI, packaging."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from cytohub import registry, splits
from cytohub.build import build, parse_size
from cytohub.cli import app
from cytohub.errors import CytohubError
from cytohub.validate import validate
from helpers import read_rows, report

runner = CliRunner()
REPO = Path(__file__).resolve().parents[1]
SPLIT = "train=0.6,validation=0.2,test=0.2"


def _digest(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


# ------------------------------------------------------------------------------------------- determinism, shards
def test_rebuild_is_byte_identical(tmp_path, synth_raw, built):
    build(registry.get("cccid"), synth_raw("cccid"), tmp_path / "again", split=SPLIT)
    assert _digest(tmp_path / "again") == _digest(built("cccid"))


def test_max_shard_size_and_row_groups(tmp_path, synth_raw):
    res = build(registry.get("cccid"), synth_raw("cccid"), tmp_path / "out", max_shard_bytes=parse_size("1MB"))
    shards = res.report["splits"]["train"]["shards"]
    assert len(shards) > 3
    assert shards == [f"train-{i:05d}-of-{len(shards):05d}.parquet" for i in range(len(shards))]
    for s in shards:
        pf = pq.ParquetFile(tmp_path / "out" / "data" / s)
        assert pf.metadata.num_row_groups >= 1
        assert all(pf.metadata.row_group(i).num_rows <= 100 for i in range(pf.metadata.num_row_groups))
    rows = read_rows(tmp_path / "out", columns=["id"])
    assert len(rows) == 51 and validate(tmp_path / "out").ok
    # the order of rows does not depend on sharding
    assert [r["id"] for r in rows] == [r["id"] for r in read_rows(tmp_path / "out", columns=["id"])]


def test_parse_size():
    assert parse_size("500MB") == 500_000_000
    assert parse_size("1.5GiB") == int(1.5 * 2**30)
    with pytest.raises(CytohubError, match="expected a number"):
        parse_size("lots")


# ------------------------------------------------------------------------------------------- splits
def test_grouped_split_keeps_groups_together_and_is_deterministic():
    groups = [f"patient:{i // 3}" for i in range(300)]  # 100 patients, 3 rows each
    labels = [i // 3 % 4 for i in range(300)]
    a = splits.assign(groups, labels, {"train": 0.8, "validation": 0.1, "test": 0.1}, seed=1)
    assert a == splits.assign(groups, labels, {"train": 0.8, "validation": 0.1, "test": 0.1}, seed=1)
    assert a != splits.assign(groups, labels, {"train": 0.8, "validation": 0.1, "test": 0.1}, seed=2)
    by_group: dict[str, set[str]] = {}
    for g, s in zip(groups, a, strict=True):
        by_group.setdefault(g, set()).add(s)
    assert all(len(v) == 1 for v in by_group.values())
    assert [a.count(s) for s in ("train", "validation", "test")] == [240, 30, 30]
    for lab in range(4):  # stratified: each label is split 80/10/10 too (25 patients -> 20/2-3/2-3)
        got = [s for s, lab2 in zip(a, labels, strict=True) if lab2 == lab]
        assert 54 <= got.count("train") <= 63


@pytest.mark.parametrize("spec,msg", [("train=0.8,test=0.1", "sum to 0.9"), ("train", "expected NAME=RATIO"),
                                      ("train=x,test=1", "not a number"), ("train=0.5,train=0.5", "used once")])
def test_bad_split_specs(spec, msg):
    with pytest.raises(CytohubError, match=msg):
        splits.parse_spec(spec)


def test_split_build_keeps_fovs_apart(built):
    rep = report(built("cccid"))
    assert {s: v["num_examples"] for s, v in rep["splits"].items()} == {"train": 31, "validation": 10, "test": 10}
    ids = {s: {r["id"] for r in read_rows(built("cccid"), s, ["id"])} for s in rep["splits"]}
    assert not (ids["train"] & ids["test"]) and not (ids["train"] & ids["validation"])


# ------------------------------------------------------------------------------------------- validate
def _copy(built, tmp_path) -> Path:
    dest = tmp_path / "copy"
    shutil.copytree(built("cccid"), dest)
    return dest


def test_validate_clean(built):
    v = validate(built("cccid"))
    assert v.ok, v.problems
    assert v.rows == {"test": 10, "train": 31, "validation": 10}
    assert v.images_decoded == 51 * 12


def test_validate_catches_a_missing_shard(built, tmp_path):
    folder = _copy(built, tmp_path)
    (folder / "data" / "test-00000-of-00001.parquet").unlink()
    v = validate(folder)
    assert any("shards for splits" in p for p in v.problems)


def test_validate_catches_count_mismatch_and_bad_rows(built, tmp_path):
    import pyarrow as pa

    folder = _copy(built, tmp_path)
    shard = folder / "data" / "validation-00000-of-00001.parquet"
    table = pq.read_table(shard)
    rows = table.to_pylist()
    rows[1]["id"] = rows[0]["id"]  # duplicate id
    rows[2]["focal_stack"][3]["bytes"] = rows[2]["focal_stack"][3]["bytes"][:500]  # corrupt plane
    rows[3]["z_um"] = list(reversed(rows[3]["z_um"]))  # wrong z order
    rows = rows[:-1]  # one row fewer than the card says
    pq.write_table(pa.Table.from_pylist(rows, schema=table.schema), shard)
    problems = "\n".join(validate(folder).problems)
    assert "duplicate id" in problems
    assert "focal plane 3" in problems and "truncated" in problems.lower()
    assert "not strictly increasing" in problems
    assert "9 rows in the shards but the card says 10" in problems
    result = runner.invoke(app, ["validate", str(folder)])
    assert result.exit_code == 1 and "invalid" in result.output


def test_validate_catches_group_leakage_and_geometry(built, tmp_path):
    import pyarrow as pa

    folder = _copy(built, tmp_path)
    train = sorted((folder / "data").glob("train-*"))[0]
    test = sorted((folder / "data").glob("test-*"))[0]
    t_rows = pq.read_table(test).to_pylist()
    table = pq.read_table(train)
    rows = table.to_pylist()
    rows[0]["group"]["fov_id"] = t_rows[0]["group"]["fov_id"]
    rows[1]["objects"] = [{"category": "nucleus", "bbox": [370.0, 10.0, 30.0, 5.0], "polygon": None, "point": None},
                          {"category": "nucleus", "bbox": None, "polygon": [1.0, 1.0, 2.0, 2.0], "point": None},
                          {"category": "nucleus", "bbox": None, "polygon": None, "point": [-4.0, 3.0]}]
    pq.write_table(pa.Table.from_pylist(rows, schema=table.schema), train)
    problems = "\n".join(validate(folder).problems)
    assert "is in both 'test' and 'train'" in problems or "is in both 'train' and 'test'" in problems
    assert "bbox [370.0, 10.0, 30.0, 5.0] is not inside the 384x384 image" in problems
    assert "polygon has 4 values" in problems
    assert "point [-4.0, 3.0] is not inside" in problems


def test_validate_catches_an_unmarked_synthetic_card(built, tmp_path):
    folder = _copy(built, tmp_path)
    card = (folder / "README.md").read_text()
    (folder / "README.md").write_text(card.replace("[SYNTHETIC] ", "").replace("SYNTHETIC DATA", "Data"))
    assert any("synthetic build must say so" in p for p in validate(folder).problems)


# ------------------------------------------------------------------------------------------- card
def test_card_regenerates_identically(built, tmp_path):
    folder = _copy(built, tmp_path)
    before = (folder / "README.md").read_text()
    (folder / "README.md").unlink()
    result = runner.invoke(app, ["card", str(folder), "--quiet"])
    assert result.exit_code == 0, result.output
    assert (folder / "README.md").read_text() == before


def test_card_contents(built):
    from huggingface_hub import DatasetCard

    card = DatasetCard.load(built("cccid") / "README.md")
    d = card.data.to_dict()
    assert d["license"] == "cc-by-4.0"
    assert d["configs"][0]["data_files"][0] == {"split": "train", "path": "data/train-*.parquet"}
    assert {s["name"]: s["num_examples"] for s in d["dataset_info"]["splits"]} == {
        "train": 31, "validation": 10, "test": 10}
    text = card.text
    counts = [sum(r["label"] == 16 for r in read_rows(built("cccid"), s, ["label"]))
              for s in ("train", "validation", "test")]
    assert sum(counts) == 3
    row = f"| 16: Adenocarcinoma | SCC_etc > Adenocarcinoma | Adenocarcinoma | {' | '.join(map(str, counts))} | 3 |"
    for needle in (row,
                   "![samples](assets/samples.png)", "![focal stack](assets/focal-stack.png)",
                   "@article{onishi2026cccid", "CCCID_SCC_etc.zip.7z", "Not for clinical use", "Z index 5"):
        assert needle in text
    assert (built("cccid") / "assets" / "samples.png").stat().st_size > 10_000


# ------------------------------------------------------------------------------------------- CLI
def test_list_and_info():
    result = runner.invoke(app, ["list", "--json"])
    assert result.exit_code == 0
    rows = {r["name"]: r for r in json.loads(result.output)}
    assert rows["cccid"]["classes"] == 17 and rows["cccid"]["images"] == 639
    assert rows["cccid"]["license"] == "cc-by-4.0" and rows["cccid"]["layout"] == "verified"
    result = runner.invoke(app, ["info", "cccid"])
    assert result.exit_code == 0 and "CCCID_NILM_part1.zip.7z" in result.output
    assert "NILM > Repair Cells -> NILM" in result.output
    result = runner.invoke(app, ["info", "no-such-corpus"])
    assert result.exit_code == 2 and "unknown corpus 'no-such-corpus'" in result.output


def test_build_without_raw_prints_download_instructions(tmp_path, monkeypatch):
    monkeypatch.setenv("CYTOHUB_HOME", str(tmp_path / "home"))
    result = runner.invoke(app, ["build", "cccid", "--out", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert "no raw data for cccid" in result.output and "zenodo.18904734" in result.output
    assert "Traceback" not in result.output


def test_build_from_the_raw_cache(tmp_path, monkeypatch, synth_raw):
    monkeypatch.setenv("CYTOHUB_HOME", str(tmp_path / "home"))
    shutil.copytree(synth_raw("cccid"), tmp_path / "home" / "raw" / "cccid")
    result = runner.invoke(app, ["build", "cccid", "--out", str(tmp_path / "out"), "--quiet"])
    assert result.exit_code == 0, result.output
    assert report(tmp_path / "out")["num_rows"] == 51


def test_official_splits_refuse_split_option(tmp_path, synth_raw):
    class WithSplits(type(registry.get("cccid"))):
        splits = ("train", "test")

    with pytest.raises(CytohubError, match="official splits"):
        build(WithSplits(), synth_raw("cccid"), tmp_path / "o", split=SPLIT)


def _cli(*args: str, **kw) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).with_name("cytohub")
    return subprocess.run([str(exe), *args], capture_output=True, text=True, timeout=300, **kw)


def test_cli_errors_have_no_traceback(tmp_path):
    proc = _cli("build", "cccid", "--raw", str(tmp_path / "missing"), "--out", str(tmp_path / "o"))
    assert proc.returncode == 2
    assert "does not exist" in proc.stderr and "Traceback" not in proc.stderr + proc.stdout


def test_killed_build_leaves_nothing_at_out(tmp_path, synth_raw):
    raw = synth_raw("cccid")
    out = tmp_path / "out"
    exe = Path(sys.executable).with_name("cytohub")
    proc = subprocess.Popen([str(exe), "build", "cccid", "--raw", str(raw), "--out", str(out), "--quiet"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while not list(tmp_path.glob(".out.cytohub-*")) and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not out.exists()
    # the next build removes the dead build's staging folder and succeeds
    build(registry.get("cccid"), raw, out)
    assert out.is_dir() and not list(tmp_path.glob(".out.cytohub-*"))


def test_demo_runs_end_to_end(tmp_path):
    result = runner.invoke(app, ["demo", "cccid", "--out", str(tmp_path / "demo")])
    assert result.exit_code == 0, result.output
    assert "ids match" in result.output and "51" in result.output
    assert validate(tmp_path / "demo" / "cccid").ok


# ------------------------------------------------------------------------------------------- packaging
def test_wheel_ships_builders_cards_taxonomy_and_entry_point(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                           "-w", str(tmp_path), str(REPO)], capture_output=True, text=True, timeout=300)
    if proc.returncode != 0 and "No module named" in proc.stderr:
        pytest.skip(f"cannot build a wheel here: {proc.stderr.strip()[-200:]}")
    assert proc.returncode == 0, proc.stderr
    wheel = next(tmp_path.glob("cytohub-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "cytohub/builders/cccid.py" in names
    assert "cytohub/cards/cccid.md" in names
    assert "cytohub/data/taxonomy/bethesda-2014.json" in names
    ep = next(n for n in names if n.endswith("entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(ep).decode()
    assert "[cytohub.builders]" in text and "builtin = cytohub.builders" in text
    assert "cytohub = cytohub.__main__:main" in text


def test_readme_corpus_table_is_current():
    from cytohub.cli import markdown_table

    result = runner.invoke(app, ["list", "--json"])
    readme = (REPO / "README.md").read_text()
    table = readme.split("<!-- corpora:start")[1].split("-->", 1)[1].split("<!-- corpora:end -->")[0].strip()
    assert table == markdown_table(json.loads(result.output)), "run `cytohub list --markdown` into the README"


@pytest.mark.parametrize("bbox,message", [
    ([1, 2, "wide", 4], r"a.png: bbox of a 'ASC-H' object is \[1, 2, 'wide', 4\]; expected numbers"),
    ([1, 2, None, 4], r"a.png: bbox of a 'ASC-H' object is \[1, 2, None, 4\]; expected numbers"),
    ([1, 2, float("nan"), 4], r"a.png: bbox of a 'ASC-H' object has a non-finite value"),
])
def test_rows_refuse_geometry_that_is_not_numbers(bbox, message):
    """The engine's last guard behind the format layer: a builder's object with a value that is not a finite
    number is one line naming the row's source, never a ValueError or a NaN written to the shards."""
    from cytohub.rows import RowMaker

    maker = RowMaker(registry.get("cric"))
    with pytest.raises(CytohubError, match=message):
        maker.make({"id": "a", "source_path": "a.png", "objects": [{"category": "ASC-H", "bbox": bbox}]})


@pytest.mark.parametrize("role", ["mask", "focal_stack"])
def test_rows_refuse_a_mask_or_focal_plane_of_another_size_than_the_image(role):
    """A mask or focal plane that does not have its image's size cannot line up with it: the build refuses the
    row naming its files (validate would reject the build otherwise); the same size passes."""
    import io

    from PIL import Image

    from cytohub.rows import RowMaker

    def png(w, h):
        b = io.BytesIO()
        Image.new("L", (w, h)).save(b, "PNG")
        return {"bytes": b.getvalue(), "path": None}

    maker = RowMaker(registry.get("cric"))
    extra = {"z_um": [0.0]} if role == "focal_stack" else {}
    same = png(40, 30) if role == "mask" else [png(40, 30)]
    out, _ = maker.make({"id": "a", "source_path": "a.png", "image": png(40, 30), role: same, **extra})
    assert out[role] is not None and out[role] != []
    other = png(47, 30) if role == "mask" else [png(47, 30)]
    what = "the mask" if role == "mask" else "focal plane 0"
    with pytest.raises(CytohubError, match=rf"^a.png: {what} is 47x30, the image is 40x30; expected the same size"):
        maker.make({"id": "a", "source_path": "a.png", "image": png(40, 30), role: other, **extra})
