"""`cytohub push` end to end against the local Hub-compatible server (tests/hubserver.py), with the real
huggingface_hub and datasets clients: publish, load back (streaming and not), idempotence, branches,
re-sharding, refusals, failure injection, and the token never showing."""

from __future__ import annotations

import shutil

import datasets
import pytest
from huggingface_hub import DatasetCard, HfApi
from typer.testing import CliRunner

from cytohub import hub, registry
from cytohub.build import build, parse_size
from cytohub.cli import app
from helpers import read_rows

datasets.config.USE_PARQUET_EXPORT = False  # the dataset-viewer host does not exist here
runner = CliRunner()
SPLIT = "train=0.6,validation=0.2,test=0.2"
COMMIT = r"/api/datasets/.*/commit/"


@pytest.fixture(autouse=True)
def fast_backoff(monkeypatch, hub_server):
    monkeypatch.setattr(hub, "BACKOFF", 0.0)
    yield
    hub_server.clear_faults()  # a failed test must not leave faults for the next one


@pytest.fixture
def folder(built, tmp_path):
    dest = tmp_path / "cccid"
    shutil.copytree(built("cccid"), dest)
    return dest


def _push(*args: str):
    result = runner.invoke(app, ["push", *args])
    return result.exit_code, result.output


def _recard(folder, monkeypatch, note: str) -> None:
    """A legitimate change of a build folder: the card regenerated (`cytohub card`) from changed prose."""
    from cytohub import card

    prose = card.prose
    monkeypatch.setattr(card, "prose", lambda name: prose(name) + f"\n\n{note}")
    assert runner.invoke(app, ["card", str(folder), "--quiet"]).exit_code == 0


def _remote_files(repo_id: str, revision: str = "main") -> set[str]:
    return set(HfApi().list_repo_files(repo_id, repo_type="dataset", revision=revision))


def test_push_then_load_streaming_and_not(folder, hub_server, hub_repo_id):
    code, out = _push(str(folder), "--repo", hub_repo_id, "--allow-synthetic")
    assert code == 0, out
    assert "pushed" in out and f'load_dataset("{hub_repo_id}", streaming=True)' in out
    assert _remote_files(hub_repo_id) == {".gitattributes", "README.md", "croissant.json", "build-report.json",
                                          *(f"assets/{p.name}" for p in (folder / "assets").iterdir()),
                                          *(f"data/{p.name}" for p in (folder / "data").iterdir())}
    assert {"samples.png", "focal-stack.png", "class-counts.png"} <= {p.name for p in (folder / "assets").iterdir()}
    local = {r["id"]: r for r in read_rows(folder, columns=["id", "label", "z_um", "image", "focal_stack"])}

    streamed = datasets.load_dataset(hub_repo_id, streaming=True)
    n = 0
    for split in ("train", "validation", "test"):
        ds = streamed[split].cast_column("image", datasets.Image(decode=False)) \
            .cast_column("focal_stack", datasets.List(datasets.Image(decode=False)))
        for row in ds:
            ref = local[row["id"]]
            assert row["label"] == ref["label"] and row["z_um"] == ref["z_um"]
            assert row["image"]["bytes"] == ref["image"]["bytes"]
            assert [p["bytes"] for p in row["focal_stack"]] == [p["bytes"] for p in ref["focal_stack"]]
            n += 1
    assert n == len(local) == 51

    full = datasets.load_dataset(hub_repo_id)
    assert {s: len(full[s]) for s in full} == {"train": 31, "validation": 10, "test": 10}
    assert full["train"].features["label"].names == registry.get("cccid").class_names()
    assert full["train"][0]["image"].size == (384, 384)


def test_repush_makes_no_commit_and_dry_run_changes_nothing(folder, hub_server, hub_repo_id):
    code, out = _push(str(folder), "--repo", hub_repo_id, "--dry-run", "--allow-synthetic")
    assert code == 0 and "repo would be created" in out and "+ data/train-00000-of-00001.parquet" in out
    assert not any(hub_repo_id in path for _, path in hub_server.requests if _ == "POST")
    assert _push(str(folder), "--repo", hub_repo_id, "--allow-synthetic")[0] == 0
    commits = len(hub_server.commits(hub_repo_id))
    code, out = _push(str(folder), "--repo", hub_repo_id, "--allow-synthetic")
    assert code == 0 and "already up to date" in out and "no commit" in out
    assert len(hub_server.commits(hub_repo_id)) == commits
    code, out = _push(str(folder), "--repo", hub_repo_id, "--dry-run", "--allow-synthetic")
    assert "0 to upload, 0 to delete" in out


def test_push_to_a_branch(folder, hub_server, hub_repo_id, monkeypatch):
    assert _push(str(folder), "--repo", hub_repo_id, "--allow-synthetic")[0] == 0
    main_head = hub_server.head(hub_repo_id)
    _recard(folder, monkeypatch, "Branch note.")
    code, out = _push(str(folder), "--repo", hub_repo_id, "--revision", "dev", "--allow-synthetic")
    assert code == 0, out
    assert hub_server.head(hub_repo_id) == main_head  # main untouched
    assert b"Branch note." in hub_server.files(hub_repo_id, "dev")["README.md"]
    ds = datasets.load_dataset(hub_repo_id, revision="dev", split="test", streaming=True)
    assert len(list(ds)) == 10


def test_push_after_rebuild_replaces_shards_in_one_commit(folder, synth_raw, hub_server, hub_repo_id):
    assert _push(str(folder), "--repo", hub_repo_id, "--allow-synthetic")[0] == 0
    before = len(hub_server.commits(hub_repo_id))
    build(registry.get("cccid"), synth_raw("cccid"), folder, split=SPLIT, overwrite=True,
          max_shard_bytes=parse_size("1MB"))
    new_shards = {f"data/{p.name}" for p in (folder / "data").iterdir()}
    assert len(new_shards) > 3
    code, out = _push(str(folder), "--repo", hub_repo_id, "--allow-synthetic")
    assert code == 0, out
    assert len(hub_server.commits(hub_repo_id)) == before + 1
    assert {p for p in _remote_files(hub_repo_id) if p.startswith("data/")} == new_shards
    ds = datasets.load_dataset(hub_repo_id, split="train", streaming=True)
    assert sorted(r["id"] for r in ds) == sorted(r["id"] for r in read_rows(folder, "train", ["id"]))


# ------------------------------------------------------------------------------------------- refusals
def test_refuses_synthetic_without_flag(folder, hub_server, hub_repo_id):
    n = len(hub_server.requests)
    code, out = _push(str(folder), "--repo", hub_repo_id)
    assert code == 2 and "synthetic" in out and "--allow-synthetic" in out
    assert hub_server.requests[n:] == []  # refused before anything was sent


def test_refuses_a_folder_that_is_no_longer_the_build(folder, hub_server, hub_repo_id):
    n = len(hub_server.requests)
    (folder / "data" / "test-00000-of-00001.parquet").unlink()
    code, out = _push(str(folder), "--repo", hub_repo_id, "--allow-synthetic")
    assert code == 2 and "missing" in out and "data/test-00000-of-00001.parquet" in out
    assert hub_server.requests[n:] == []  # refused before anything was sent


def test_refuses_an_invalid_folder(folder, hub_server, hub_repo_id):
    """A folder that matches its manifest but does not validate (as a faulty build would leave it)."""
    import json

    import pyarrow.parquet as pq

    from cytohub import manifest

    shard = folder / "data" / "test-00000-of-00001.parquet"
    table = pq.read_table(shard)
    pq.write_table(table.slice(0, 5), shard)  # 5 rows; the card says 10
    rep = json.loads((folder / "build-report.json").read_text())
    rep["manifest"] = manifest.compute(folder)
    (folder / "build-report.json").write_text(json.dumps(rep))
    code, out = _push(str(folder), "--repo", hub_repo_id, "--allow-synthetic")
    assert code == 2 and "does not validate" in out and "5 rows in the shards but the card says 10" in out
    assert not [p for m, p in hub_server.requests if m != "GET" and hub_repo_id in p]  # nothing written


def test_forbidden_redistribution_needs_private(folder, hub_server, hub_repo_id, monkeypatch):
    monkeypatch.setattr(registry.builders()["cccid"], "redistribution", "forbidden")
    code, out = _push(str(folder), "--repo", hub_repo_id, "--allow-synthetic")
    assert code == 2 and "does not allow redistribution" in out and "--private" in out
    code, out = _push(str(folder), "--repo", hub_repo_id, "--allow-synthetic", "--private")
    assert code == 0, out
    assert HfApi().repo_info(hub_repo_id, repo_type="dataset").private is True


def test_gated_corpus_card_has_gate_fields(folder, hub_server, hub_repo_id, monkeypatch):
    monkeypatch.setattr(registry.builders()["cccid"], "redistribution", "gated")
    assert runner.invoke(app, ["card", str(folder), "--quiet"]).exit_code == 0
    data = DatasetCard.load(folder / "README.md").data.to_dict()
    assert "extra_gated_prompt" in data and any(v == "checkbox" for v in data["extra_gated_fields"].values())
    code, out = _push(str(folder), "--repo", hub_repo_id, "--allow-synthetic")
    assert code == 0, out
    assert any(m == "PUT" and p.endswith(f"{hub_repo_id}/settings") for m, p in hub_server.requests)
    assert b"extra_gated_fields" in hub_server.files(hub_repo_id)["README.md"]


# ------------------------------------------------------------------------------------------- failures
def test_transient_failures_are_retried(folder, hub_server, hub_repo_id):
    hub_server.inject("POST", COMMIT, 503, times=2)
    code, out = _push(str(folder), "--repo", hub_repo_id, "--allow-synthetic")
    assert code == 0, out
    assert "attempt 1 failed" in out and "attempt 2 failed" in out
    assert len(hub_server.commits(hub_repo_id)) == 2  # the initial commit + ours, exactly once


def test_dropped_connection_is_retried(folder, hub_server, hub_repo_id):
    hub_server.inject("POST", COMMIT, "drop", times=1)
    code, out = _push(str(folder), "--repo", hub_repo_id, "--allow-synthetic")
    assert code == 0, out
    assert len(hub_server.commits(hub_repo_id)) == 2


def test_persistent_failure_leaves_the_repo_unchanged_and_resumes(folder, hub_server, hub_repo_id, monkeypatch):
    assert _push(str(folder), "--repo", hub_repo_id, "--allow-synthetic")[0] == 0
    head = hub_server.head(hub_repo_id)
    _recard(folder, monkeypatch, "changed")
    hub_server.inject("POST", COMMIT, 500, times=hub.RETRIES)
    code, out = _push(str(folder), "--repo", hub_repo_id, "--allow-synthetic")
    assert code == 2
    assert f"failed after {hub.RETRIES} attempts" in out and head[:12] in out and "run the same command" in out
    assert hub_server.head(hub_repo_id) == head
    hub_server.clear_faults()
    code, out = _push(str(folder), "--repo", hub_repo_id, "--allow-synthetic")
    assert code == 0 and "2 uploaded" in out  # the card and the report (its manifest records the new card)
    assert hub_server.head(hub_repo_id) != head


def test_token_is_used_but_never_shown(folder, hub_server, hub_repo_id, monkeypatch):
    secret = "hf_cytohubTESTtoken0123456789abcdef"
    n = len(hub_server.auth_headers)
    code, out = _push(str(folder), "--repo", hub_repo_id, "--allow-synthetic", "--token", secret)
    assert code == 0, out
    assert f"Bearer {secret}" in hub_server.auth_headers[n:]
    hub_server.inject("POST", COMMIT, 403, times=1)
    _recard(folder, monkeypatch, "x")
    code, out2 = _push(str(folder), "--repo", hub_repo_id, "--allow-synthetic", "--token", secret)
    assert code == 2 and "HTTP 403" in out2
    stored = b"".join(hub_server.files(hub_repo_id).values())
    for text in (out, out2):
        assert secret not in text
    assert secret.encode() not in stored


def test_bad_repo_id(folder):
    code, out = _push(str(folder), "--repo", "no-slash")
    assert code == 2 and "expected ORG/NAME" in out


# ------------------------------------------------------------------------------------------- exactly the build
def _manifest_paths(folder) -> set[str]:
    import json

    return {e["path"] for e in json.loads((folder / "build-report.json").read_text())["manifest"]}


def test_extra_files_are_refused_or_left_out(folder, hub_server, hub_repo_id):
    (folder / ".env").write_text("HF_TOKEN=hf_do_not_publish\n")
    (folder / ".git").mkdir()
    (folder / ".git" / "config").write_text("[core]\n")
    (folder / "notes.md").write_text("draft\n")
    n = len(hub_server.requests)
    code, out = _push(str(folder), "--repo", hub_repo_id, "--allow-synthetic")
    assert code == 2 and "3 file(s) the build did not write: .env, .git/config, notes.md" in out.replace("\n", " ")
    assert "--ignore-extra" in out and hub_server.requests[n:] == []
    code, out = _push(str(folder), "--repo", hub_repo_id, "--allow-synthetic", "--ignore-extra")
    assert code == 0, out
    assert "leaving out 3 file(s)" in out
    assert _remote_files(hub_repo_id) == _manifest_paths(folder) | {"build-report.json", ".gitattributes"}
    assert not any(b"hf_do_not_publish" in data for data in hub_server.files(hub_repo_id).values())


def test_symlinks_are_never_followed(folder, hub_server, hub_repo_id, tmp_path):
    secret = tmp_path / "id_rsa"
    secret.write_text("PRIVATE KEY")
    (folder / "assets" / "extra.png").symlink_to(secret)
    n = len(hub_server.requests)
    code, out = _push(str(folder), "--repo", hub_repo_id, "--allow-synthetic", "--ignore-extra")
    assert code == 2 and "symbolic links" in out and "assets/extra.png" in out
    assert hub_server.requests[n:] == []


def test_a_file_changed_since_the_build_is_refused(folder, hub_server, hub_repo_id):
    shard = folder / "data" / "train-00000-of-00001.parquet"
    data = bytearray(shard.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, other bytes
    shard.write_bytes(bytes(data))
    code, out = _push(str(folder), "--repo", hub_repo_id, "--allow-synthetic")
    assert code == 2 and "does not validate" in out and "changed since the build" in out
    assert not [p for m, p in hub_server.requests if m in ("POST", "PUT") and hub_repo_id in p]


@pytest.mark.parametrize("xet", [False, True])
def test_a_file_changed_after_validation_is_not_committed(folder, hub_server, hub_repo_id, monkeypatch, xet):
    """The bytes uploaded are the build's: with LFS the validated sha256 is the upload's oid (the server checks
    the bytes); with Xet the client's hash of what it sent is compared with the manifest before committing."""
    monkeypatch.setattr(hub, "IN_MEMORY_BYTES", 0)  # every file goes through the path (LFS / Xet) route
    monkeypatch.setattr(hub, "_xet_uploads", lambda: xet)
    shard = folder / "data" / "test-00000-of-00001.parquet"

    def validate_then_tamper(build):
        digests, finish = hub.validate_for_push(build)
        finish()
        data = bytearray(shard.read_bytes())
        data[100] ^= 0xFF
        shard.write_bytes(bytes(data))
        return digests, None

    build = hub.check_publishable(folder, private=False, allow_synthetic=True)
    blob = hub_server.root / "blobs" / build.files["data/test-00000-of-00001.parquet"]["sha256"]
    blob.unlink(missing_ok=True)  # stored by an earlier test: the server would not ask for the bytes again
    with pytest.raises(hub.CytohubError) as err:
        hub.Publisher().push(build, hub_repo_id, validation=validate_then_tamper)
    assert ("do not match the manifest" if xet else "HTTP 400") in str(err.value), str(err.value)
    assert len(hub_server.commits(hub_repo_id)) == 1  # only the repo's initial commit


def test_each_file_is_hashed_once(folder, hub_server, hub_repo_id, monkeypatch):
    """Validation hashes every manifest file once; the upload reuses those sha256 as LFS oids."""
    import huggingface_hub.lfs as lfs

    from cytohub import manifest

    monkeypatch.setattr(hub, "IN_MEMORY_BYTES", 0)
    monkeypatch.setattr(hub, "_xet_uploads", lambda: False)
    ours, theirs = [], []
    sha_file, sha_obj = manifest.sha256_file, lfs.sha_fileobj
    monkeypatch.setattr(manifest, "sha256_file", lambda p: ours.append(p) or sha_file(p))
    monkeypatch.setattr(lfs, "sha_fileobj", lambda f, *a, **k: theirs.append(f) or sha_obj(f, *a, **k))
    code, out = _push(str(folder), "--repo", hub_repo_id, "--allow-synthetic")
    assert code == 0, out
    assert sorted(p.relative_to(folder).as_posix() for p in ours) == sorted(_manifest_paths(folder))
    assert theirs == []


def test_an_unchanged_repush_is_not_validated_again(folder, hub_server, hub_repo_id, monkeypatch):
    assert _push(str(folder), "--repo", hub_repo_id, "--allow-synthetic")[0] == 0

    def refuse(build):
        raise AssertionError("validated although nothing is uploaded")

    monkeypatch.setattr(hub, "validate_for_push", refuse)
    n = len(hub_server.requests)
    code, out = _push(str(folder), "--repo", hub_repo_id, "--allow-synthetic")
    assert code == 0 and "already up to date" in out
    assert [m for m, _ in hub_server.requests[n:]] == ["GET"]  # repo info: its files and its settings


# ------------------------------------------------------------------------------------------- the repo it lands in
def test_forbidden_corpus_into_an_existing_public_repo(folder, hub_server, hub_repo_id, monkeypatch):
    monkeypatch.setattr(registry.builders()["cccid"], "redistribution", "forbidden")
    HfApi().create_repo(hub_repo_id, repo_type="dataset")  # public
    code, out = _push(str(folder), "--repo", hub_repo_id, "--allow-synthetic")
    assert code == 2 and "--private" in out
    n = len(hub_server.requests)
    code, out = _push(str(folder), "--repo", hub_repo_id, "--allow-synthetic", "--private")
    assert code == 0 and "made private" in out, out
    assert hub_server.settings(hub_repo_id)["private"] is True
    writes = [(m, p.rsplit("/", 2)[-2]) for m, p in hub_server.requests[n:] if m in ("PUT", "POST")
              and p.startswith("/api/")]
    assert writes.index(("PUT", hub_repo_id.split("/")[1])) < writes.index(("POST", "commit"))  # private first


def test_forbidden_corpus_is_not_uploaded_when_the_repo_cannot_be_made_private(folder, hub_server, hub_repo_id,
                                                                               monkeypatch):
    monkeypatch.setattr(registry.builders()["cccid"], "redistribution", "forbidden")
    HfApi().create_repo(hub_repo_id, repo_type="dataset")
    hub_server.inject("PUT", r"/settings$", 403)
    code, out = _push(str(folder), "--repo", hub_repo_id, "--allow-synthetic", "--private")
    assert code == 2 and "could not make the repo private" in out and "nothing was uploaded" in out
    assert len(hub_server.commits(hub_repo_id)) == 1 and hub_server.settings(hub_repo_id)["private"] is False


def test_gated_corpus_gate_is_checked_on_every_push(folder, hub_server, hub_repo_id, monkeypatch):
    monkeypatch.setattr(registry.builders()["cccid"], "redistribution", "gated")
    HfApi().create_repo(hub_repo_id, repo_type="dataset")  # existing, public, no gate
    code, out = _push(str(folder), "--repo", hub_repo_id, "--allow-synthetic")
    assert code == 0 and "access gate switched on" in out, out
    assert HfApi().dataset_info(hub_repo_id).gated == "auto"
    commits = len(hub_server.commits(hub_repo_id))
    hub_server.set_settings(hub_repo_id, gated=False)  # the owner switched it off on the website
    code, out = _push(str(folder), "--repo", hub_repo_id, "--allow-synthetic")
    assert code == 0 and "access gate switched on" in out and "already up to date" in out
    assert hub_server.settings(hub_repo_id)["gated"] == "auto" and len(hub_server.commits(hub_repo_id)) == commits


def test_gated_corpus_is_refused_when_the_gate_cannot_be_set(folder, hub_server, hub_repo_id, monkeypatch):
    monkeypatch.setattr(registry.builders()["cccid"], "redistribution", "gated")
    HfApi().create_repo(hub_repo_id, repo_type="dataset")
    hub_server.inject("PUT", r"/settings$", 403)
    code, out = _push(str(folder), "--repo", hub_repo_id, "--allow-synthetic")
    assert code == 2 and "could not switch on the access gate" in out and "nothing was uploaded" in out
    assert len(hub_server.commits(hub_repo_id)) == 1


def test_gated_corpus_in_a_private_repo_needs_no_gate(folder, hub_server, hub_repo_id, monkeypatch):
    monkeypatch.setattr(registry.builders()["cccid"], "redistribution", "gated")
    code, out = _push(str(folder), "--repo", hub_repo_id, "--allow-synthetic", "--private")
    assert code == 0, out
    assert hub_server.settings(hub_repo_id) == {"private": True, "gated": False}


def test_dry_run_shows_settings_it_would_change(folder, hub_server, hub_repo_id, monkeypatch):
    monkeypatch.setattr(registry.builders()["cccid"], "redistribution", "gated")
    HfApi().create_repo(hub_repo_id, repo_type="dataset")
    n = len(hub_server.requests)
    code, out = _push(str(folder), "--repo", hub_repo_id, "--allow-synthetic", "--dry-run")
    assert code == 0 and "repo setting: switch on the access gate" in out
    assert all(m == "GET" for m, _ in hub_server.requests[n:])


def test_a_build_failing_the_readers_check_is_uploaded_but_never_committed(folder, hub_server, hub_repo_id):
    """A faulty build (its manifest records a corrupt image): the first stage passes, the image decode fails
    while the files upload, and no commit is made."""
    import json

    import pyarrow as pa
    import pyarrow.parquet as pq

    from cytohub import manifest

    shard = folder / "data" / "test-00000-of-00001.parquet"
    table = pq.read_table(shard)
    rows = table.to_pylist()
    rows[0]["image"] = {"bytes": rows[0]["image"]["bytes"][:400], "path": None}
    pq.write_table(pa.Table.from_pylist(rows, schema=table.schema), shard)
    rep = json.loads((folder / "build-report.json").read_text())
    rep["manifest"] = manifest.compute(folder)
    (folder / "build-report.json").write_text(json.dumps(rep))
    code, out = _push(str(folder), "--repo", hub_repo_id, "--allow-synthetic")
    assert code == 2 and "does not validate" in out and "nothing was committed" in out
    assert "the JPEG data is truncated" in out
    assert len(hub_server.commits(hub_repo_id)) == 1  # the repo's initial commit only
