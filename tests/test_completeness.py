"""Completeness against what the publisher states, partial builds, empty splits, split names, and the
destinations a build may replace (safe --overwrite)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cytohub import completeness, registry, synth
from cytohub.build import build
from cytohub.cli import app
from cytohub.completeness import Published
from cytohub.errors import CytohubError, IncompleteDownloadError
from cytohub.validate import validate
from helpers import report

runner = CliRunner()
SIPAKMED_ZIPS = ["im_Dyskeratotic.zip", "im_Koilocytotic.zip", "im_Metaplastic.zip", "im_Parabasal.zip",
                 "im_Superficial-Intermediate.zip"]


# ------------------------------------------------------------------------------------------- the comparison
def _check(pub: Published, splits: dict[str, int], classes: dict[str, int] | None = None, inputs=(), marker=None,
           allow_partial: bool = False) -> dict:
    return completeness.check(pub, pretty="x", class_names=["a", "b"], inputs=list(inputs), containers=[],
                              split_counts=splits, class_counts=classes or {}, marker=marker,
                              allow_partial=allow_partial)


def test_counts_ranges_and_what_is_missing():
    pub = Published(rows=(962, 963), per_class={"a": 600, "b": 300}, unit="images", note="sources disagree")
    ok = _check(pub, {"train": 962}, {"a": 650, "b": 312})
    assert ok["checked"] and ok["complete"] and ok["partial"] is None
    assert ok["more_than_published"] == ["class 'a': 650 images, more than the published 600",
                                         "class 'b': 312 images, more than the published 300"]
    with pytest.raises(IncompleteDownloadError) as err:
        _check(pub, {"train": 900}, {"a": 600, "b": 250})
    text = str(err.value)
    assert "the download is incomplete (900 of 962-963 images)" in text
    assert "- rows: 900 of 962-963 images" in text and "- class 'b': 250 of 300 images" in text
    assert "--allow-partial" in text
    partial = _check(pub, {"train": 900}, {"a": 600, "b": 250}, allow_partial=True)
    assert not partial["complete"] and partial["partial"] == "900 of 962-963 images"


def test_files_are_compared_only_when_the_download_is_given_as_files():
    pub = Published(files=("p1.zip", "p2.zip", "p3.zip"), optional_files=("extra.csv",))
    with pytest.raises(IncompleteDownloadError, match="2 of the 3 files of the download: p2.zip, p3.zip"):
        _check(pub, {"train": 5}, inputs=["sub/P1.ZIP"])
    unpacked = _check(pub, {"train": 5}, inputs=["NILM/a.jpg"])  # an unpacked tree: the rows decide
    assert unpacked["complete"] and not unpacked["files_compared"]
    assert unpacked["absent_optional"] == ["extra.csv"]
    all_there = _check(pub, {"train": 5}, inputs=["p1.zip", "p2.zip", "p3.zip", "extra.csv"])
    assert all_there["files_compared"] and all_there["absent_optional"] == []


def test_an_optional_split_may_be_absent():
    pub = Published(rows=735, rows_per_split={"train": 670, "test": 65}, optional_splits=("test",))
    absent = _check(pub, {"train": 670})
    assert absent["complete"] and absent["absent_optional"] == ["split 'test'"]
    with pytest.raises(IncompleteDownloadError, match="split 'train': 600 of 670"):
        _check(pub, {"train": 600, "test": 65})


def test_only_real_and_full_scale_synthetic_data_are_compared():
    pub = Published(rows=100)
    assert _check(pub, {"train": 3}, marker={"scale": "small", "scales": ["small"]})["checked"] is False
    with pytest.raises(IncompleteDownloadError):
        _check(pub, {"train": 3}, marker={"scale": "full", "scales": ["full"]})
    with pytest.raises(IncompleteDownloadError):
        _check(pub, {"train": 3}, marker=None)  # real data: always compared


def test_declarations_are_consistent():
    bad = Published(rows=10, rows_per_split={"train": 4, "test": 4}, per_class={"zz": 3})
    problems = bad.problems(["a"], ["train", "test"]) + Published(optional_splits=("dev",)).problems(["a"], [])
    assert any("unknown classes ['zz']" in p for p in problems)
    assert any("disagree with the sum of rows_per_split" in p for p in problems)
    assert any("optional split needs its published count" in p for p in problems)
    for name, b in registry.builders().items():  # every builder's declaration names its own classes/splits
        assert b.published.problems(b.class_names(), b.splits) == [], name


# ------------------------------------------------------------------------------------------- end to end
@pytest.fixture(scope="module")
def full_claim_raw(tmp_path_factory) -> Path:
    """Small SIPaKMeD raw data whose marks claim full scale, so the build compares it with the publisher."""
    root = tmp_path_factory.mktemp("sipakmed-full-claim") / "raw"
    b = registry.get("sipakmed")
    with synth.marking("sipakmed", "full", 0):
        type(b).synthesize.__wrapped__(b, root, "small", 0)
    (root / synth.MARKER).unlink()  # the hidden file says "small"; the marks inside the archives say "full"
    return root


def test_missing_archives_fail_the_build_and_are_listed(full_claim_raw, tmp_path):
    raw = tmp_path / "two-of-five"
    raw.mkdir()
    for name in SIPAKMED_ZIPS[:2]:
        shutil.copy(full_claim_raw / name, raw / name)
    result = runner.invoke(app, ["build", "sipakmed", "--raw", str(raw), "--out", str(tmp_path / "out"), "-q"])
    text = result.output.replace("\n", " ")
    assert result.exit_code == 2 and "Traceback" not in text
    assert "3 of the 5 files of the download: im_Metaplastic.zip, im_Parabasal.zip," in text
    assert "of 4,049 cells" in text and "class 'Parabasal': 0 of 787 cells" in text
    assert not (tmp_path / "out").exists()


def test_allow_partial_builds_and_says_so_everywhere(full_claim_raw, tmp_path):
    raw = tmp_path / "two-of-five"
    raw.mkdir()
    for name in SIPAKMED_ZIPS[:2]:
        shutil.copy(full_claim_raw / name, raw / name)
    out = tmp_path / "out"
    result = runner.invoke(app, ["build", "sipakmed", "--raw", str(raw), "--out", str(out), "--allow-partial"])
    assert result.exit_code == 0, result.output
    rep = report(out)
    n = rep["num_rows"]
    phrase = f"{n} of 4,049 cells"
    assert rep["completeness"]["partial"] == phrase and not rep["completeness"]["complete"]
    assert rep["parameters"]["allow_partial"] is True
    card = (out / "README.md").read_text()
    from huggingface_hub import DatasetCard

    assert DatasetCard.load(out / "README.md").data.pretty_name.endswith(f"5 classes (partial: {phrase})")
    assert f"5 classes (partial: {phrase})\n" in card.split("---\n", 2)[2]  # the title of the body
    assert f"**Partial build: {phrase}.**" in card and "im_Parabasal.zip" in card
    assert f"(partial: {phrase})" in result.output
    assert validate(out, load=False).ok
    # the partial marking cannot be removed from the card alone
    (out / "README.md").write_text(card.replace(f"**Partial build: {phrase}.**", "Missing:"))
    assert any("must say so in its title and body" in p for p in validate(out, load=False).problems)


def test_a_complete_build_says_what_it_was_compared_with(full_claim_raw, tmp_path, monkeypatch):
    b = registry.builders()["sipakmed"]
    counts = {name: 6 for name in b.class_names()}  # the small scale: 6 cells per class
    monkeypatch.setattr(b, "published", Published(files=tuple(SIPAKMED_ZIPS), rows=(30, 31), per_class=counts,
                                                  unit="cells", source="a test", note="Two sources disagree."))
    res = build(b(), full_claim_raw, tmp_path / "out")
    c = res.report["completeness"]
    assert c["checked"] and c["complete"] and c["files_compared"] and c["basis"] == "synthetic data at full scale"
    assert c["more_than_published"] == []
    card = (tmp_path / "out" / "README.md").read_text()
    assert "## Completeness" in card and "Complete: this build has everything the publisher states (a test)" in card
    assert "30-31 cells" in card and "Note on the published counts: Two sources disagree." in card


def test_small_synthetic_data_is_not_compared(built):
    c = report(built("sipakmed"))["completeness"]
    assert c["declared"] and not c["checked"] and "small scale" in c["basis"]
    assert "Not compared with the published counts: synthetic data at small scale" in \
        (built("sipakmed") / "README.md").read_text()


# ------------------------------------------------------------------------------------------- split names
@pytest.mark.parametrize(("spec", "hint"), [("train=0.8,valdiation=0.2", "did you mean 'validation'?"),
                                            ("train=0.8,val=0.2", "did you mean 'validation'?"),
                                            ("trian=0.8,test=0.2", "did you mean 'train'?"),
                                            ("train=0.8,holdout=0.2", "allowed names: train, validation, test")])
def test_split_names_are_checked(spec, hint, synth_raw, tmp_path):
    out = tmp_path / "out"
    result = runner.invoke(app, ["build", "bmt", "--raw", str(synth_raw("bmt")), "--out", str(out), "--split", spec])
    assert result.exit_code == 2 and hint in result.output and "Traceback" not in result.output
    assert not out.exists()


def test_official_split_names_are_allowed():
    from cytohub.splits import parse_spec

    assert parse_spec("train=0.5,multi_test=0.5", official=("pair", "multi_test")) == {"train": 0.5,
                                                                                       "multi_test": 0.5}
    with pytest.raises(CytohubError, match="did you mean 'multi_test'"):
        parse_spec("train=0.5,multi_tset=0.5", official=("pair", "multi_test"))


def test_an_empty_ratio_split_is_left_out(synth_raw, tmp_path):
    """3 BMT groups per class cannot fill a 1% split: it is left out, not written as an empty shard."""
    res = build(registry.get("bmt"), synth_raw("bmt"), tmp_path / "out", split="train=0.99,test=0.01")
    assert list(res.report["splits"]) == ["train"] and res.report["empty_splits"] == ["test"]
    assert not list((tmp_path / "out" / "data").glob("test-*"))
    assert "Left out because they have no rows in this download: test." in (tmp_path / "out" / "README.md").read_text()
    assert validate(tmp_path / "out").ok


# ------------------------------------------------------------------------------------------- --out / --overwrite
def _build_cli(raw: Path, out: Path, *extra: str):
    result = runner.invoke(app, ["build", "bmt", "--raw", str(raw), "--out", str(out), "-q", *extra])
    return result.exit_code, result.output.replace("\n", " ")


def test_overwrite_refuses_a_folder_of_user_files(synth_raw, tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "thesis.tex").write_text("years of work")
    code, text = _build_cli(synth_raw("bmt"), out, "--overwrite")
    assert code == 2 and "is not a cytohub build folder" in text and (out / "thesis.tex").exists()


def test_overwrite_checks_the_report_is_real(synth_raw, tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "build-report.json").write_text('{"hello": 1}')
    (out / "data.csv").write_text("1,2")
    code, text = _build_cli(synth_raw("bmt"), out, "--overwrite")
    assert code == 2 and "not a cytohub build report" in text and (out / "data.csv").exists()


def test_overwrite_refuses_a_build_folder_holding_other_files(built, synth_raw, tmp_path):
    out = tmp_path / "bmt"
    shutil.copytree(built("bmt"), out)
    (out / "notes.txt").write_text("my notes")
    (out / ".git").mkdir()
    (out / ".git" / "HEAD").write_text("ref")
    code, text = _build_cli(synth_raw("bmt"), out, "--overwrite")
    assert code == 2 and "holds 2 file(s) the build did not write: .git/HEAD, notes.txt" in text
    assert (out / "notes.txt").exists()
    (out / "notes.txt").unlink()
    shutil.rmtree(out / ".git")
    code, text = _build_cli(synth_raw("bmt"), out, "--overwrite")
    assert code == 0, text
    assert validate(out, load=False).ok


def test_destinations_that_are_refused_outright(synth_raw, tmp_path, monkeypatch):
    raw = tmp_path / "raw"
    shutil.copytree(synth_raw("bmt"), raw)
    cases = {raw: "is inside the raw data", raw / "out": "is inside the raw data",
             tmp_path: "contains the raw data", Path("/"): "is the root of the file system"}
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    (tmp_path / "home").mkdir()
    cases[tmp_path / "home"] = "that is the home folder"
    for out, needle in cases.items():
        code, text = _build_cli(raw, out, "--overwrite")
        assert code == 2 and needle in text, (out, text)
    assert sorted(p.name for p in raw.iterdir()) == sorted(p.name for p in synth_raw("bmt").iterdir())


def test_small_synthetic_data_still_has_every_published_file(synth_raw, tmp_path):
    """Row counts are not compared at small scale, but the download's file names are: 2 of CCCID's 5 archives
    is an incomplete download whatever the scale."""
    raw = tmp_path / "raw"
    raw.mkdir()
    for name in ("CCCID_HSIL.zip.7z", "CCCID_LSIL.zip.7z"):
        (raw / name).write_bytes((synth_raw("cccid") / name).read_bytes())
    with pytest.raises(IncompleteDownloadError, match="3 of the 5 files of the download"):
        build(registry.get("cccid"), raw, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    build(registry.get("cccid"), raw, tmp_path / "out", allow_partial=True)
    c = report(tmp_path / "out")["completeness"]
    assert c["partial"] == "2 of 5 files" and not c["checked"] and c["files_compared"]
    card = (tmp_path / "out" / "README.md").read_text()
    assert "(partial: 2 of 5 files)" in card and "**Partial build: 2 of 5 files.**" in card
    assert validate(tmp_path / "out").ok
