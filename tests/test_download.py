"""`cytohub download`: resumable, atomic, retried, verified transfers; instructions and checks for corpora
fetched by hand; mirrors; and the record (downloads.json) that later builds verify.

Every transfer goes to a local HTTP server (tests/fileserver.py, 127.0.0.1 only) that can drop the
connection, send wrong bytes, and answer 404, 429 with Retry-After and 503. Backoff sleeps are recorded
instead of slept.
"""

from __future__ import annotations

import hashlib
import json
import random
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cytohub import registry
from cytohub.builder import Builder, Source
from cytohub.cli import app
from cytohub.download import (
    DOWNLOADS,
    ChecksumMismatchError,
    DownloadError,
    Record,
    RetryPolicy,
    download,
    instructions,
    verify_raw,
)
from cytohub.errors import CytohubError
from fileserver import FileServer, etag_of
from helpers import report

runner = CliRunner()
SIZE = 300_000


def payload(seed: int, size: int = SIZE) -> bytes:
    return random.Random(seed).randbytes(size)


def tiny(*sources: Source, name: str = "tiny") -> type[Builder]:
    """A builder that only declares sources (download needs nothing else)."""
    return type("Tiny", (Builder,), {"name": name, "pretty_name": "Tiny", "homepage": "https://example.org/tiny",
                                     "manual_download": "Ask the authors of Tiny.", "sources": sources})


class Sleeps(list):
    """Records the backoff delays instead of sleeping."""

    def policy(self, **kw) -> RetryPolicy:
        return RetryPolicy(sleep=self.append, **kw)


@pytest.fixture
def served(tmp_path, monkeypatch):
    """A FileServer over tmp_path/served, with tiny/a.bin (300 kB of seeded random bytes) in it."""
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    root = tmp_path / "served"
    (root / "tiny").mkdir(parents=True)
    (root / "tiny" / "a.bin").write_bytes(payload(1))
    with FileServer(root) as server:
        yield server


def a_bin(server: FileServer, **kw) -> Source:
    return Source("a.bin", url=f"{server.url}/tiny/a.bin", direct=True, **kw)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# ------------------------------------------------------------------------------------------- resume
def test_a_dropped_connection_is_resumed_with_a_range_request(served, tmp_path):
    served.fail("/tiny/a.bin", {"drop_after": 100_000})
    sleeps = Sleeps()
    result = download(tiny(a_bin(served)), tmp_path / "dl", retry=sleeps.policy())
    first, second = served.requests_for("/tiny/a.bin")
    assert "Range" not in first.headers
    offset = int(second.headers["Range"].removeprefix("bytes=").rstrip("-"))
    assert 0 < offset <= 100_000
    assert second.headers["If-Range"] == etag_of(payload(1))  # a changed file would be sent whole
    assert served.sent["/tiny/a.bin"] == 100_000 + SIZE - offset < 2 * SIZE
    assert (tmp_path / "dl" / "a.bin").read_bytes() == payload(1)
    assert not (tmp_path / "dl" / "a.bin.part").exists()
    assert len(sleeps) == 1 and 0.5 <= sleeps[0] <= 1.0  # first backoff: 1 s times a factor in [0.5, 1]
    assert result.files[0].status == "downloaded" and result.files[0].sha256 == sha(payload(1))
    rec = json.loads((tmp_path / "dl" / DOWNLOADS).read_text())
    assert rec["files"]["a.bin"]["sha256"] == sha(payload(1)) and rec["files"]["a.bin"]["size"] == SIZE
    assert rec["files"]["a.bin"]["url"] == f"{served.url}/tiny/a.bin" and "partial" not in rec


def test_an_interrupted_run_leaves_only_the_part_file_and_the_next_run_resumes(served, tmp_path):
    served.fail("/tiny/a.bin", {"drop_after": 120_000})
    with pytest.raises(DownloadError, match=r"a\.bin: the connection dropped mid-file .* 0 retries failed"):
        download(tiny(a_bin(served)), tmp_path / "dl", retry=Sleeps().policy(attempts=0))
    assert not (tmp_path / "dl" / "a.bin").exists()  # never a partial file under the final name
    assert (tmp_path / "dl" / "a.bin.part").stat().st_size == 120_000
    result = download(tiny(a_bin(served)), tmp_path / "dl", retry=Sleeps().policy())
    assert served.requests_for("/tiny/a.bin")[-1].headers["Range"] == "bytes=120000-"
    assert result.files[0].status == "resumed" and result.bytes_fetched == SIZE
    assert served.sent["/tiny/a.bin"] == SIZE  # not a byte sent twice
    assert (tmp_path / "dl" / "a.bin").read_bytes() == payload(1)


def test_a_file_changed_upstream_is_restarted_not_spliced(served, tmp_path):
    served.fail("/tiny/a.bin", {"drop_after": 150_000})
    with pytest.raises(DownloadError):
        download(tiny(a_bin(served)), tmp_path / "dl", retry=Sleeps().policy(attempts=0))
    served.fail("/tiny/a.bin", {"replace": payload(2)})  # a new version before the resume
    download(tiny(a_bin(served)), tmp_path / "dl", retry=Sleeps().policy())
    last = served.requests_for("/tiny/a.bin")[-1]
    assert last.headers["If-Range"] == etag_of(payload(1))
    assert (tmp_path / "dl" / "a.bin").read_bytes() == payload(2)


def test_a_server_that_ignores_range_restarts_the_file(served, tmp_path):
    served.fail("/tiny/a.bin", {"drop_after": 50_000}, {"ignore_range": True})
    download(tiny(a_bin(served)), tmp_path / "dl", retry=Sleeps().policy())
    assert served.requests_for("/tiny/a.bin")[1].headers["Range"] == "bytes=50000-"
    assert (tmp_path / "dl" / "a.bin").read_bytes() == payload(1)
    assert served.sent["/tiny/a.bin"] == 50_000 + SIZE


def test_a_complete_part_file_is_finished_without_a_body(served, tmp_path):
    """A run killed after the last byte but before the rename: the resume gets 416 and sends nothing."""
    (tmp_path / "dl").mkdir()
    (tmp_path / "dl" / "a.bin.part").write_bytes(payload(1))
    Record(tmp_path / "dl", "tiny").set_partial("a.bin", {"url": f"{served.url}/tiny/a.bin",
                                                          "validator": etag_of(payload(1))})
    result = download(tiny(a_bin(served)), tmp_path / "dl", retry=Sleeps().policy())
    assert served.requests_for("/tiny/a.bin")[0].headers["Range"] == f"bytes={SIZE}-"
    assert served.sent.get("/tiny/a.bin", 0) == 0 and result.files[0].status == "resumed"
    assert (tmp_path / "dl" / "a.bin").read_bytes() == payload(1)
    assert Record(tmp_path / "dl", "tiny").files["a.bin"]["sha256"] == sha(payload(1))


def test_a_part_file_of_unknown_origin_is_never_spliced(served, tmp_path):
    (tmp_path / "dl").mkdir()
    (tmp_path / "dl" / "a.bin.part").write_bytes(payload(9, 1000))  # no record of where it came from
    download(tiny(a_bin(served)), tmp_path / "dl", retry=Sleeps().policy())
    assert "Range" not in served.requests_for("/tiny/a.bin")[0].headers
    assert (tmp_path / "dl" / "a.bin").read_bytes() == payload(1)


# ------------------------------------------------------------------------------------------- retries
def test_503_429_and_500_are_retried_with_backoff_and_retry_after(served, tmp_path):
    served.fail("/tiny/a.bin", {"status": 503}, {"status": 429, "retry_after": "7"}, {"status": 500})
    sleeps = Sleeps()
    result = download(tiny(a_bin(served)), tmp_path / "dl", retry=sleeps.policy())
    assert len(served.requests_for("/tiny/a.bin")) == 4
    assert 0.5 <= sleeps[0] <= 1.0 and sleeps[1] == 7.0 and 1.5 <= sleeps[2] <= 4.0  # 1 s, Retry-After, 4 s
    assert result.files[0].status == "downloaded"
    assert (tmp_path / "dl" / "a.bin").read_bytes() == payload(1)


def test_retries_end_with_one_clear_error(served, tmp_path):
    served.fail("/tiny/a.bin", *[{"status": 503}] * 4)
    sleeps = Sleeps()
    with pytest.raises(DownloadError, match=r"^a\.bin: HTTP 503 from http://127\.0\.0\.1:\d+/tiny/a\.bin, "
                                            r"3 retries failed"):
        download(tiny(a_bin(served)), tmp_path / "dl", retry=sleeps.policy(attempts=3))
    assert len(sleeps) == 3 and not (tmp_path / "dl" / "a.bin").exists()


def test_a_retry_after_beyond_the_limit_is_an_error_not_a_hang(served, tmp_path):
    served.fail("/tiny/a.bin", {"status": 429, "retry_after": "86400"})
    with pytest.raises(DownloadError, match="asks to wait 86400 s"):
        download(tiny(a_bin(served)), tmp_path / "dl", retry=Sleeps().policy(max_retry_after=600))


def test_404_moves_on_to_the_next_official_link_then_fails_clearly(served, tmp_path):
    source = Source("a.bin", url=f"{served.url}/gone/a.bin", alt_urls=(f"{served.url}/tiny/a.bin",), direct=True)
    result = download(tiny(source), tmp_path / "dl", retry=Sleeps().policy())
    assert result.files[0].url == f"{served.url}/tiny/a.bin"
    assert Record(tmp_path / "dl", "tiny").files["a.bin"]["url"] == f"{served.url}/tiny/a.bin"
    gone = Source("b.bin", url=f"{served.url}/gone/b.bin", direct=True)
    with pytest.raises(DownloadError, match=r"b\.bin: HTTP 404 from .*/gone/b\.bin: the file is not there"):
        download(tiny(gone), tmp_path / "dl2", retry=Sleeps().policy())
    assert not (tmp_path / "dl2" / "b.bin").exists() and not (tmp_path / "dl2" / "b.bin.part").exists()


# ------------------------------------------------------------------------------------------- checksums
def test_wrong_bytes_are_refused_against_a_declared_sha256(served, tmp_path):
    served.fail("/tiny/a.bin", {"corrupt": True})
    with pytest.raises(ChecksumMismatchError) as err:
        download(tiny(a_bin(served, sha256=sha(payload(1)))), tmp_path / "dl", retry=Sleeps().policy())
    message = str(err.value)
    actual = sha(bytes(255 - b for b in payload(1)))
    assert message.startswith(f"{tmp_path / 'dl' / 'a.bin'}: sha256 {actual} does not match the published "
                              f"{sha(payload(1))}")
    assert "\n" not in message
    assert sorted(p.name for p in (tmp_path / "dl").iterdir()) == [DOWNLOADS]  # no final file, no .part


def test_wrong_bytes_are_refused_against_a_declared_md5_and_size(served, tmp_path):
    md5 = hashlib.md5(payload(1)).hexdigest()
    served.fail("/tiny/a.bin", {"corrupt": True})
    with pytest.raises(ChecksumMismatchError, match=f"md5 [0-9a-f]{{32}} does not match the published {md5}"):
        download(tiny(a_bin(served, md5=md5)), tmp_path / "dl", retry=Sleeps().policy())
    with pytest.raises(ChecksumMismatchError, match=f"the server has {SIZE} bytes, but the published size is 1000"):
        download(tiny(a_bin(served, size=1000)), tmp_path / "dl", retry=Sleeps().policy())
    result = download(tiny(a_bin(served, md5=md5, size=SIZE)), tmp_path / "dl", retry=Sleeps().policy())
    entry = Record(tmp_path / "dl", "tiny").files["a.bin"]
    assert entry["md5"] == md5 and entry["declared"] == "published size, md5 verified"
    assert result.unverified == []


def test_no_verify_skips_declared_checksums_but_records_and_enforces_sha256(served, tmp_path):
    served.fail("/tiny/a.bin", {"corrupt": True})
    wrong = bytes(255 - b for b in payload(1))
    builder = tiny(a_bin(served, sha256=sha(payload(1))))
    result = download(builder, tmp_path / "dl", verify=False, retry=Sleeps().policy())
    assert result.unverified == ["a.bin"]
    entry = Record(tmp_path / "dl", "tiny").files["a.bin"]
    assert entry["sha256"] == sha(wrong) and entry["declared"] == "not checked (--no-verify): published sha256"
    assert download(builder, tmp_path / "dl", verify=False).files[0].status == "present"
    (tmp_path / "dl" / "a.bin").write_bytes(payload(3))  # the file changes on disk afterwards
    with pytest.raises(ChecksumMismatchError, match=f"sha256 {sha(payload(3))}, but {sha(wrong)} was recorded"):
        download(builder, tmp_path / "dl", verify=False)
    with pytest.raises(ChecksumMismatchError, match="was recorded in downloads.json"):
        verify_raw(builder, tmp_path / "dl")


def test_a_redownload_must_match_the_recorded_sha256(served, tmp_path):
    download(tiny(a_bin(served)), tmp_path / "dl", retry=Sleeps().policy())
    (tmp_path / "dl" / "a.bin").unlink()
    (served.root / "tiny" / "a.bin").write_bytes(payload(4))  # upstream now serves other bytes, same size
    with pytest.raises(ChecksumMismatchError, match=f"sha256 {sha(payload(4))} does not match the recorded in "
                                                    f"downloads.json {sha(payload(1))}"):
        download(tiny(a_bin(served)), tmp_path / "dl", retry=Sleeps().policy())
    assert not (tmp_path / "dl" / "a.bin").exists() and not (tmp_path / "dl" / "a.bin.part").exists()


def test_verify_raw_checks_the_record_and_unfinished_downloads(served, tmp_path):
    builder = tiny(a_bin(served))
    download(builder, tmp_path / "dl", retry=Sleeps().policy())
    prov = verify_raw(builder, tmp_path / "dl")
    assert prov == {"a.bin": {"url": f"{served.url}/tiny/a.bin", "origin": "downloaded",
                              "declared": "none published; sha256 recorded on first download"}}
    assert verify_raw(builder, tmp_path / "dl" / "a.bin") == {"a.bin": prov["a.bin"]}  # --raw a single file
    (tmp_path / "dl" / "a.bin").rename(tmp_path / "dl" / "a.bin.part")
    with pytest.raises(CytohubError, match=r"a\.bin\.part: an unfinished download; run `cytohub download tiny`"):
        verify_raw(builder, tmp_path / "dl")
    (tmp_path / "dl" / "a.bin.part").unlink()
    with pytest.raises(CytohubError, match=r"a\.bin: listed in downloads.json \(downloaded from http.*\) but missing"):
        verify_raw(builder, tmp_path / "dl")


def test_bad_options_are_refused_before_any_transfer(tmp_path):
    with pytest.raises(CytohubError, match="--mirror 'localhost:8000': expected an http"):
        download(registry.get("cccid"), tmp_path / "dl", mirror="localhost:8000")
    with pytest.raises(CytohubError, match="--jobs 0: expected at least 1"):
        download(registry.get("cccid"), tmp_path / "dl", jobs=0)
    (tmp_path / "file").write_bytes(b"")
    with pytest.raises(CytohubError, match="is a file; expected a folder"):
        download(registry.get("cccid"), tmp_path / "file")


def test_a_broken_or_foreign_record_is_refused(tmp_path):
    (tmp_path / DOWNLOADS).write_text("{not json")
    with pytest.raises(CytohubError, match="not a readable download record"):
        Record(tmp_path, "tiny")
    (tmp_path / DOWNLOADS).write_text(json.dumps({"corpus": "cccid", "files": {}}))
    with pytest.raises(CytohubError, match="the record of corpus 'cccid', not 'tiny'"):
        Record(tmp_path, "tiny")


# ------------------------------------------------------------------------------------------- parallel files
@pytest.mark.parametrize("jobs", [1, 2])
def test_jobs_bounds_the_files_transferred_at_once(tmp_path, monkeypatch, jobs):
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    root = tmp_path / "served"
    (root / "tiny").mkdir(parents=True)
    for i in range(5):
        (root / "tiny" / f"f{i}.bin").write_bytes(payload(10 + i, 20_000))
    with FileServer(root, delay=0.1) as srv:
        sources = [Source(f"f{i}.bin", url=f"{srv.url}/tiny/f{i}.bin", direct=True) for i in range(5)]
        result = download(tiny(*sources), tmp_path / "dl", jobs=jobs, retry=Sleeps().policy())
        assert srv.max_concurrent == jobs
    assert [f.status for f in result.files] == ["downloaded"] * 5
    assert all((tmp_path / "dl" / f"f{i}.bin").read_bytes() == payload(10 + i, 20_000) for i in range(5))


def test_one_failing_file_stops_the_run_and_keeps_the_others(served, tmp_path):
    (served.root / "tiny" / "b.bin").write_bytes(payload(5))
    bad = Source("zz.bin", url=f"{served.url}/tiny/zz.bin", direct=True)
    with pytest.raises(DownloadError, match="zz.bin: HTTP 404"):
        download(tiny(a_bin(served), Source("b.bin", url=f"{served.url}/tiny/b.bin", direct=True), bad),
                 tmp_path / "dl", jobs=1, retry=Sleeps().policy())
    rec = Record(tmp_path / "dl", "tiny")
    assert set(rec.files) == {"a.bin", "b.bin"}  # what finished is recorded; the next run will skip it
    assert not (tmp_path / "dl" / ".downloads.lock").exists()


# ------------------------------------------------------------------------------------------- by hand
def test_a_manual_corpus_prints_numbered_instructions_then_checks_the_files(tmp_path, monkeypatch):
    monkeypatch.setenv("CYTOHUB_HOME", str(tmp_path / "home"))
    folder = (tmp_path / "home" / "raw" / "cellpose").absolute()
    result = runner.invoke(app, ["download", "cellpose"])
    assert result.exit_code == 1, result.output
    out = result.output
    assert "1. Go to https://www.cellpose.org/dataset" in out
    assert "2. Get these files:\n     - train.zip or train/: " in out and "     - test.zip or test/: " in out
    assert f"3. Put them in this folder: {folder}" in out
    assert "4. Run `cytohub download cellpose` again to check them, then `cytohub build cellpose`." in out
    assert "accept the terms of use" in out  # the publisher's own steps follow

    (folder / "train.zip").write_bytes(b"train archive")
    result = runner.invoke(app, ["download", "cellpose"])
    assert result.exit_code == 1 and "- test.zip or test/" in result.output and "- train.zip" not in result.output

    (folder / "test").mkdir()
    (folder / "test" / "000_img.png").write_bytes(b"png")
    result = runner.invoke(app, ["download", "cellpose"])
    assert result.exit_code == 0, result.output
    assert "found       test.zip (as test/)  folder: 1 file(s), 3 bytes" in result.output
    entry = Record(folder, "cellpose").files["train.zip"]
    assert entry == {"size": 13, "sha256": sha(b"train archive"), "url": None, "origin": "placed by hand",
                     "declared": "none published; sha256 recorded on first download"}

    (folder / "train.zip").write_bytes(b"train archivE")
    result = runner.invoke(app, ["download", "cellpose"])
    assert result.exit_code == 2
    assert f"sha256 {sha(b'train archivE')}, but {sha(b'train archive')} was recorded" in result.output
    assert "Traceback" not in result.output


def test_instructions_with_alternatives_unnamed_files_and_another_folder(tmp_path):
    text = instructions(registry.get("bone-marrow"), tmp_path / "bm")
    assert ("     - at least one of:\n"
            "         - bone-marrow-cell-classification.zip or archive.zip or bone_marrow_cell_dataset/: ") in text
    assert "         - BM_cytomorphology_data/: TCIA original" in text
    assert f"4. Run `cytohub download bone-marrow --to {tmp_path / 'bm'}` again to check them, then " \
           f"`cytohub build bone-marrow --raw {tmp_path / 'bm'}`" in text
    text = instructions(registry.get("agmc-tu"), tmp_path / "a")
    assert "1. Go to https://mkbhowmik.in/AGMC-tuDb.aspx" in text
    assert "- AGMC-TU: dataset page (request form); file names and archive type unknown (download name not " \
           "published)" in text


def test_an_unnamed_manual_download_is_ready_once_something_is_there(tmp_path):
    agmc = registry.get("agmc-tu")
    result = download(agmc, tmp_path / "agmc")
    assert not result.complete and "Put them in this folder" in result.instructions
    (tmp_path / "agmc" / "AGMC-TU.rar").write_bytes(b"x")
    assert download(agmc, tmp_path / "agmc").complete


def test_a_mirror_serves_manual_files_too(served, tmp_path):
    (served.root / "cellpose").mkdir()
    (served.root / "cellpose" / "train.zip").write_bytes(b"t")
    (served.root / "cellpose" / "test.zip").write_bytes(b"s")
    result = download(registry.get("cellpose"), tmp_path / "cp", mirror=served.url + "/")
    assert result.complete and [f.status for f in result.files] == ["downloaded", "downloaded"]
    assert {r.path for r in served.requests} == {"/cellpose/train.zip", "/cellpose/test.zip",
                                                 "/cellpose/.cytohub-synthetic.json"}
    (served.root / "cellpose" / "test.zip").unlink()  # absent from the mirror: checked on disk instead
    result = download(registry.get("cellpose"), tmp_path / "cp2", mirror=served.url)
    assert not result.complete and [f.status for f in result.files] == ["downloaded", "missing"]


# ------------------------------------------------------------------------------------------- declarations
def test_source_declarations_are_checked():
    bad = tiny(Source("a.zip", url="ftp://x/a.zip", direct=True), Source("sub/b.zip", url="https://x/b", direct=True),
               Source("c.zip", md5="ABC"), Source("d.zip", alt_urls=("https://x/d",)),
               Source("e.zip", url="https://x/e", direct=True, name_published=False))
    problems = bad.check_declaration()
    assert "Tiny source 'a.zip': direct link 'ftp://x/a.zip' is not an http(s) URL" in problems
    assert "Tiny source 'sub/b.zip': a direct source's filename must be a plain file name" in problems
    assert "Tiny source 'c.zip': md5 must be 32 lower-case hex digits" in problems
    assert "Tiny source 'd.zip': alt_urls are only for direct sources" in problems
    assert "Tiny source 'e.zip': a direct source needs its published file name" in problems


def test_direct_sources_use_only_stated_links():
    """The corpora cytohub fetches by itself, and the hosts their links point to."""
    direct = {n: [s.url for s in b.direct_sources()] for n, b in registry.builders().items() if b.direct_sources()}
    assert sorted(direct) == ["apcdata", "bttfa", "ccagt", "cccid", "cervix93", "isbi2014", "mendeley-lbc",
                              "ufsc-ocpap"]
    assert direct["cccid"][0] == "https://zenodo.org/records/18904734/files/CCCID_NILM_part1.zip.7z?download=1"
    for name, urls in direct.items():
        for url in urls:
            assert url.startswith(("https://zenodo.org/records/", "https://cs.adelaide.edu.au/",
                                   "https://github.com/parham-ap/",
                                   "https://prod-dcd-datasets-cache-zipfiles.s3.eu-west-1.amazonaws.com/")), name


# ------------------------------------------------------------------------------------------- end to end
def test_download_build_validate_through_a_mirror(tmp_path, monkeypatch, synth_raw):
    """Synthetic CCCID served by the local server: download (mirror) -> build -> validate, with the report
    carrying each input's URL and sha256; then a changed archive and an unfinished download are refused."""
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.setenv("CYTOHUB_HOME", str(tmp_path / "home"))
    shutil.copytree(synth_raw("cccid"), tmp_path / "served" / "cccid")  # synthetic small CCCID
    served = {p.name: p.read_bytes() for p in (tmp_path / "served" / "cccid").iterdir()}
    raw = tmp_path / "home" / "raw" / "cccid"
    with FileServer(tmp_path / "served") as srv:
        base = srv.url
        monkeypatch.setenv("CYTOHUB_MIRROR", base)
        srv.fail("/cccid/CCCID_LSIL.zip.7z", {"drop_after": 30_000})
        result = runner.invoke(app, ["download", "cccid", "--jobs", "2"])
        assert result.exit_code == 0, result.output
        assert srv.requests_for("/cccid/CCCID_LSIL.zip.7z")[1].headers["Range"].startswith("bytes=")
        assert "ready: size and sha256 of 5 file(s) recorded" in result.output
    record = json.loads((raw / DOWNLOADS).read_text())
    assert {n: e["sha256"] for n, e in record["files"].items()} == {n: sha(b) for n, b in served.items()}

    out = tmp_path / "out"
    assert runner.invoke(app, ["build", "cccid", "--out", str(out), "--quiet"]).exit_code == 0
    assert runner.invoke(app, ["validate", str(out), "--quiet"]).exit_code == 0
    rep = report(out)
    assert rep["synthetic"] is True  # the mirror's synthetic marker came along
    assert {i["path"]: (i["url"], i["sha256"]) for i in rep["inputs"]} == {
        n: (f"{base}/cccid/{n}", sha(b)) for n, b in served.items() if n.endswith(".7z")}
    assert {f["path"]: f["reason"] for f in rep["files"]["list"] if f["path"] == DOWNLOADS} == {
        DOWNLOADS: "cytohub download record"}

    data = bytearray((raw / "CCCID_HSIL.zip.7z").read_bytes())
    data[-1] ^= 0xFF
    (raw / "CCCID_HSIL.zip.7z").write_bytes(bytes(data))
    result = runner.invoke(app, ["build", "cccid", "--out", str(tmp_path / "o2")])
    assert result.exit_code == 2 and "CCCID_HSIL.zip.7z: sha256 " in result.output
    assert f"but {sha(served['CCCID_HSIL.zip.7z'])} was recorded in downloads.json" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "o2").exists()


def test_build_download_fetches_first(tmp_path, monkeypatch, synth_raw):
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.setenv("CYTOHUB_HOME", str(tmp_path / "home"))
    shutil.copytree(synth_raw("cccid"), tmp_path / "served" / "cccid")
    with FileServer(tmp_path / "served") as srv:
        monkeypatch.setenv("CYTOHUB_MIRROR", srv.url)
        result = runner.invoke(app, ["build", "cccid", "--download", "--out", str(tmp_path / "out"), "--quiet"])
        assert result.exit_code == 0, result.output
        assert len(srv.requests) == 6  # five archives and the synthetic marker
        result = runner.invoke(app, ["build", "cellpose", "--download", "--out", str(tmp_path / "cp")])
        assert result.exit_code == 2 and "1. Go to https://www.cellpose.org/dataset" in result.output
    assert report(tmp_path / "out")["num_rows"] == 51


def test_info_and_build_point_to_download(tmp_path, monkeypatch):
    monkeypatch.setenv("CYTOHUB_HOME", str(tmp_path / "home"))
    result = runner.invoke(app, ["info", "cccid"])
    assert "`cytohub download cccid` fetches CCCID_NILM_part1.zip.7z, CCCID_NILM_part2.zip.7z" in result.output
    result = runner.invoke(app, ["build", "cccid", "--out", str(tmp_path / "o")])
    assert "run `cytohub download cccid` (or `cytohub build cccid --download`)" in result.output
    assert Path(tmp_path / "home").exists() is False  # nothing created by a failed build
