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
def fast_backoff(monkeypatch):
    monkeypatch.setattr(hub, "BACKOFF", 0.0)


@pytest.fixture
def folder(built, tmp_path):
    dest = tmp_path / "cccid"
    shutil.copytree(built("cccid"), dest)
    return dest


def _push(*args: str):
    result = runner.invoke(app, ["push", *args])
    return result.exit_code, result.output


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


def test_push_to_a_branch(folder, hub_server, hub_repo_id):
    assert _push(str(folder), "--repo", hub_repo_id, "--allow-synthetic")[0] == 0
    main_head = hub_server.head(hub_repo_id)
    (folder / "README.md").write_text((folder / "README.md").read_text() + "\nBranch note.\n")
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


def test_refuses_an_invalid_folder(folder, hub_repo_id):
    (folder / "data" / "test-00000-of-00001.parquet").unlink()
    code, out = _push(str(folder), "--repo", hub_repo_id, "--allow-synthetic")
    assert code == 2 and "does not validate" in out and "shards for splits" in out


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


def test_persistent_failure_leaves_the_repo_unchanged_and_resumes(folder, hub_server, hub_repo_id):
    assert _push(str(folder), "--repo", hub_repo_id, "--allow-synthetic")[0] == 0
    head = hub_server.head(hub_repo_id)
    (folder / "README.md").write_text((folder / "README.md").read_text() + "\nchanged\n")
    hub_server.inject("POST", COMMIT, 500, times=hub.RETRIES)
    code, out = _push(str(folder), "--repo", hub_repo_id, "--allow-synthetic")
    assert code == 2
    assert f"failed after {hub.RETRIES} attempts" in out and head[:12] in out and "run the same command" in out
    assert hub_server.head(hub_repo_id) == head
    hub_server.clear_faults()
    code, out = _push(str(folder), "--repo", hub_repo_id, "--allow-synthetic")
    assert code == 0 and "1 uploaded" in out
    assert hub_server.head(hub_repo_id) != head


def test_token_is_used_but_never_shown(folder, hub_server, hub_repo_id):
    secret = "hf_cytohubTESTtoken0123456789abcdef"
    n = len(hub_server.auth_headers)
    code, out = _push(str(folder), "--repo", hub_repo_id, "--allow-synthetic", "--token", secret)
    assert code == 0, out
    assert f"Bearer {secret}" in hub_server.auth_headers[n:]
    hub_server.inject("POST", COMMIT, 403, times=1)
    (folder / "README.md").write_text((folder / "README.md").read_text() + "\nx\n")
    code, out2 = _push(str(folder), "--repo", hub_repo_id, "--allow-synthetic", "--token", secret)
    assert code == 2 and "HTTP 403" in out2
    stored = b"".join(hub_server.files(hub_repo_id).values())
    for text in (out, out2):
        assert secret not in text
    assert secret.encode() not in stored


def test_bad_repo_id(folder):
    code, out = _push(str(folder), "--repo", "no-slash")
    assert code == 2 and "expected ORG/NAME" in out
