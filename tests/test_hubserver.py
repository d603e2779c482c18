"""End-to-end tests of tests/hubserver.py with the real huggingface_hub and datasets clients.

conftest.py points HF_ENDPOINT at this process's HubServer before these imports run.
"""

from __future__ import annotations

import hashlib
import io
import os
import random
from pathlib import Path

import datasets
import httpx2
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from huggingface_hub import (
    CommitOperationAdd,
    HfApi,
    HfFileSystem,
    get_hf_file_metadata,
    hf_hub_download,
    hf_hub_url,
)
from huggingface_hub.errors import (
    EntryNotFoundError,
    HfHubHTTPError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from huggingface_hub.utils import get_session
from PIL import Image

# The dataset-viewer host (datasets-server.127.0.0.1) does not exist: don't even try it.
datasets.config.USE_PARQUET_EXPORT = False

IMAGE_STRUCT = pa.struct([("bytes", pa.binary()), ("path", pa.string())])


@pytest.fixture
def api() -> HfApi:
    return HfApi()


@pytest.fixture(autouse=True)
def no_server_bug(hub_server):
    """Fail any test during which the server hit an internal error (a 500 it did not mean to send)."""
    n_errors = len(hub_server.errors)
    yield
    assert hub_server.errors[n_errors:] == []


# ------------------------------------------------------------------------------------------- helpers
def make_rows(n: int, seed: int) -> list[dict]:
    """Rows with a real PNG image (random colour and size), a label and a text."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        colour = tuple(rng.randrange(256) for _ in range(3))
        img = Image.new("RGB", (rng.randint(4, 12), rng.randint(4, 12)), colour)
        buf = io.BytesIO()
        img.save(buf, format="PNG")
        rows.append({"image": buf.getvalue(), "label": rng.randrange(5), "text": f"cell {seed}-{i}"})
    return rows


def write_shard(path: Path, rows: list[dict]) -> int:
    """Write rows as a parquet shard in the datasets Image layout; return the Arrow size in bytes."""
    table = pa.table(
        {
            "image": pa.array([{"bytes": r["image"], "path": None} for r in rows], type=IMAGE_STRUCT),
            "label": pa.array([r["label"] for r in rows], type=pa.int64()),
            "text": pa.array([r["text"] for r in rows], type=pa.string()),
        }
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)
    return table.nbytes


def make_dataset_folder(folder: Path, shards: list[list[dict]]) -> Path:
    """README.md with a YAML header (configs + dataset_info) and data/train-XXXXX-of-YYYYY.parquet shards."""
    num_bytes = 0
    for i, rows in enumerate(shards):
        num_bytes += write_shard(folder / "data" / f"train-{i:05d}-of-{len(shards):05d}.parquet", rows)
    download_size = sum(p.stat().st_size for p in (folder / "data").glob("*.parquet"))
    num_examples = sum(len(rows) for rows in shards)
    (folder / "README.md").write_text(
        "---\n"
        "configs:\n- config_name: default\n  data_files:\n  - split: train\n    path: data/train-*\n"
        "dataset_info:\n  features:\n  - name: image\n    dtype: image\n  - name: label\n    dtype: int64\n"
        "  - name: text\n    dtype: string\n"
        f"  splits:\n  - name: train\n    num_bytes: {num_bytes}\n    num_examples: {num_examples}\n"
        f"  download_size: {download_size}\n  dataset_size: {num_bytes}\n"
        "---\n\n# Test cytology dataset\n"
    )
    return folder


def normalize(row: dict) -> tuple:
    """Comparable form of a row, whether `image` is PNG bytes or a decoded PIL image."""
    img = row["image"] if isinstance(row["image"], Image.Image) else Image.open(io.BytesIO(row["image"]))
    return img.size, img.convert("RGB").tobytes(), row["label"], row["text"]


def local_files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def commit_requests(server, repo_id: str) -> int:
    prefix = f"/api/datasets/{repo_id}/commit/"
    return sum(1 for method, path in server.requests if method == "POST" and path.startswith(prefix))


@pytest.fixture
def published(api, hub_server, hub_repo_id, tmp_path) -> tuple[str, list[dict], Path]:
    """A dataset repo with one uploaded folder: (repo_id, rows, folder)."""
    rows = make_rows(3, seed=1)
    folder = make_dataset_folder(tmp_path / "ds", [rows])
    api.create_repo(hub_repo_id, repo_type="dataset")
    api.upload_folder(folder_path=folder, repo_id=hub_repo_id, repo_type="dataset", commit_message="Add data")
    return hub_repo_id, rows, folder


# ------------------------------------------------------------------------------------------- repos
def test_create_repo_conflict_and_exist_ok(api, hub_server, hub_repo_id):
    url = api.create_repo(hub_repo_id, repo_type="dataset")
    assert url.repo_id == hub_repo_id and url.repo_type == "dataset"
    assert url == f"{hub_server.url}/datasets/{hub_repo_id}"
    [initial] = hub_server.commits(hub_repo_id)
    assert initial["title"] == "initial commit"
    assert api.dataset_info(hub_repo_id).sha == hub_server.head(hub_repo_id) == initial["id"]

    with pytest.raises(HfHubHTTPError) as err:
        api.create_repo(hub_repo_id, repo_type="dataset")
    assert err.value.response.status_code == 409
    assert api.create_repo(hub_repo_id, repo_type="dataset", exist_ok=True).repo_id == hub_repo_id
    assert len(hub_server.commits(hub_repo_id)) == 1

    assert api.repo_exists(hub_repo_id, repo_type="dataset")
    assert not api.repo_exists(hub_repo_id + "-missing", repo_type="dataset")
    assert not api.repo_exists(hub_repo_id, repo_type="model")  # same id, other repo type
    api.create_repo(hub_repo_id + "-private", repo_type="dataset", private=True)
    assert api.dataset_info(hub_repo_id + "-private").private is True
    assert api.dataset_info(hub_repo_id).private is False
    api.update_repo_settings(hub_repo_id, repo_type="dataset", private=True)
    assert api.dataset_info(hub_repo_id).private is True

    api.delete_repo(hub_repo_id, repo_type="dataset")
    assert not api.repo_exists(hub_repo_id, repo_type="dataset")
    with pytest.raises(RepositoryNotFoundError):
        api.delete_repo(hub_repo_id, repo_type="dataset")
    api.delete_repo(hub_repo_id, repo_type="dataset", missing_ok=True)


def test_repo_settings_visibility_and_gate(hub_server, hub_repo_id):
    """update_repo_settings (gated, private/visibility) round-trips through repo info, with the real client."""
    api = HfApi()
    api.create_repo(hub_repo_id, repo_type="dataset")
    info = api.dataset_info(hub_repo_id)
    assert (info.private, info.gated) == (False, False)
    api.update_repo_settings(hub_repo_id, repo_type="dataset", gated="auto")
    assert api.dataset_info(hub_repo_id).gated == "auto"
    api.update_repo_settings(hub_repo_id, repo_type="dataset", gated="manual", private=True)
    info = api.dataset_info(hub_repo_id)
    assert (info.private, info.gated) == (True, "manual")
    api.update_repo_settings(hub_repo_id, repo_type="dataset", gated=False, visibility="public")
    assert hub_server.settings(hub_repo_id) == {"private": False, "gated": False}
    hub_server.set_settings(hub_repo_id, gated="auto")
    assert api.dataset_info(hub_repo_id).gated == "auto"
    with pytest.raises(HfHubHTTPError) as err:  # the server checks the value like the Hub does
        api.update_repo_settings(hub_repo_id, repo_type="dataset", visibility="secret")
    assert err.value.response.status_code == 400


def test_token_is_sent_to_the_server(hub_server, hub_repo_id):
    HfApi(token="hf_fake_token_for_tests").create_repo(hub_repo_id, repo_type="dataset")
    assert "Bearer hf_fake_token_for_tests" in hub_server.auth_headers


def test_model_repo_roundtrip(api, hub_server, hub_repo_id):
    api.create_repo(hub_repo_id)
    api.upload_file(path_or_fileobj=b"weights", path_in_repo="w.txt", repo_id=hub_repo_id)
    assert Path(hf_hub_download(hub_repo_id, "w.txt")).read_bytes() == b"weights"
    assert hub_server.files(hub_repo_id, repo_type="model")["w.txt"] == b"weights"


# ------------------------------------------------------------------------------------------- upload
def test_upload_folder_then_identical_reupload_makes_no_commit(api, hub_server, published):
    repo_id, _, folder = published
    head = hub_server.head(repo_id)
    commits = hub_server.commits(repo_id)
    assert [c["title"] for c in commits] == ["Add data", "initial commit"]
    assert commits[0]["id"] == head
    stored = hub_server.files(repo_id)
    assert stored.pop(".gitattributes").startswith(b"*.parquet filter=lfs")
    assert stored == local_files(folder)

    tree = {e.path: e for e in api.list_repo_tree(repo_id, repo_type="dataset", recursive=True)}
    parquet = tree["data/train-00000-of-00001.parquet"]
    assert parquet.lfs is not None and parquet.lfs.sha256 == hashlib.sha256(stored[parquet.path]).hexdigest()
    assert tree["README.md"].lfs is None and tree["README.md"].size == len(stored["README.md"])
    assert type(tree["data"]).__name__ == "RepoFolder"

    n_commit_posts = commit_requests(hub_server, repo_id)
    info = api.upload_folder(folder_path=folder, repo_id=repo_id, repo_type="dataset", commit_message="again")
    assert info.oid == head
    assert hub_server.head(repo_id) == head
    assert len(hub_server.commits(repo_id)) == 2
    assert commit_requests(hub_server, repo_id) == n_commit_posts


def test_upload_with_delete_patterns_replaces_stale_shard_in_one_commit(api, hub_server, published, tmp_path):
    repo_id, _, _ = published
    old_head = hub_server.head(repo_id)
    new_rows = [make_rows(2, seed=2), make_rows(2, seed=3)]
    folder = make_dataset_folder(tmp_path / "v2", new_rows)
    api.upload_folder(
        folder_path=folder, repo_id=repo_id, repo_type="dataset", delete_patterns=["data/*.parquet"]
    )

    commits = hub_server.commits(repo_id)
    assert len(commits) == 3 and commits[1]["id"] == old_head
    assert sorted(hub_server.files(repo_id)) == [
        ".gitattributes",
        "README.md",
        "data/train-00000-of-00002.parquet",
        "data/train-00001-of-00002.parquet",
    ]
    assert "data/train-00000-of-00001.parquet" in hub_server.files(repo_id, revision=old_head)

    HfFileSystem.clear_instance_cache()
    streamed = datasets.load_dataset(repo_id, split="train", streaming=True)
    assert sorted(map(normalize, streamed)) == sorted(map(normalize, new_rows[0] + new_rows[1]))


def test_stale_parent_commit_is_rejected_with_412(api, hub_server, published):
    repo_id, _, _ = published
    old_parent = hub_server.commits(repo_id)[1]["id"]
    head = hub_server.head(repo_id)
    with pytest.raises(HfHubHTTPError) as err:
        api.create_commit(
            repo_id, repo_type="dataset", commit_message="late", parent_commit=old_parent,
            operations=[CommitOperationAdd(path_in_repo="late.txt", path_or_fileobj=b"late")],
        )
    assert err.value.response.status_code == 412
    assert hub_server.head(repo_id) == head
    api.create_commit(
        repo_id, repo_type="dataset", commit_message="on time", parent_commit=head,
        operations=[CommitOperationAdd(path_in_repo="late.txt", path_or_fileobj=b"late")],
    )
    assert hub_server.commits(repo_id)[0]["title"] == "on time"
    assert hub_server.files(repo_id)["late.txt"] == b"late"


# ------------------------------------------------------------------------------------------- load
def test_load_dataset_streaming_and_not(hub_server, published):
    repo_id, rows, _ = published
    streamed = datasets.load_dataset(repo_id, split="train", streaming=True)
    assert [normalize(r) for r in streamed] == [normalize(r) for r in rows]
    # without downloading anything, features and split sizes can only come from the card's YAML
    assert isinstance(streamed.features["image"], datasets.Image)
    assert streamed.info.splits["train"].num_examples == 3

    ds = datasets.load_dataset(repo_id, split="train")
    assert [normalize(r) for r in ds] == [normalize(r) for r in rows]
    assert isinstance(ds.features["image"], datasets.Image)
    assert hub_server.head(repo_id) in ds.cache_files[0]["filename"]  # cached under the resolved sha


def test_branch_upload_and_load(api, hub_server, published, tmp_path):
    repo_id, main_rows, _ = published
    main_head = hub_server.head(repo_id)
    api.create_branch(repo_id, branch="dev", repo_type="dataset")
    with pytest.raises(HfHubHTTPError) as err:
        api.create_branch(repo_id, branch="dev", repo_type="dataset")
    assert err.value.response.status_code == 409
    api.create_branch(repo_id, branch="dev", repo_type="dataset", exist_ok=True)

    dev_rows = make_rows(4, seed=7)
    folder = make_dataset_folder(tmp_path / "dev", [dev_rows])
    info = api.upload_folder(folder_path=folder, repo_id=repo_id, repo_type="dataset", revision="dev")
    assert hub_server.head(repo_id, "dev") == info.oid != main_head
    assert hub_server.head(repo_id) == main_head
    dev_history = [c["id"] for c in hub_server.commits(repo_id, "dev")]
    assert dev_history[1:] == [c["id"] for c in hub_server.commits(repo_id)]
    refs = api.list_repo_refs(repo_id, repo_type="dataset")
    assert {b.name: b.target_commit for b in refs.branches} == {"main": main_head, "dev": info.oid}
    listed = api.list_repo_commits(repo_id, repo_type="dataset", revision="dev")
    assert [c.commit_id for c in listed] == dev_history

    dev = datasets.load_dataset(repo_id, split="train", revision="dev")
    assert [normalize(r) for r in dev] == [normalize(r) for r in dev_rows]
    main = datasets.load_dataset(repo_id, split="train", streaming=True)
    assert [normalize(r) for r in main] == [normalize(r) for r in main_rows]

    with pytest.raises(RevisionNotFoundError):
        api.upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id=repo_id, repo_type="dataset",
                        revision="no-such-branch")


def test_dataset_push_to_hub_and_reshard(hub_server, hub_repo_id):
    rows = make_rows(6, seed=11)
    ds = datasets.Dataset.from_dict(
        {"image": [{"bytes": r["image"], "path": None} for r in rows],
         "label": [r["label"] for r in rows], "text": [r["text"] for r in rows]},
        features=datasets.Features(
            {"image": datasets.Image(), "label": datasets.Value("int64"), "text": datasets.Value("string")}
        ),
    )
    ds.push_to_hub(hub_repo_id)
    files = hub_server.files(hub_repo_id)
    assert sorted(files) == [".gitattributes", "README.md", "data/train-00000-of-00001.parquet"]
    assert b"num_examples: 6" in files["README.md"]

    HfFileSystem.clear_instance_cache()
    ds.push_to_hub(hub_repo_id, num_shards=2)  # the stale single shard must be deleted
    assert sorted(p for p in hub_server.files(hub_repo_id) if p.startswith("data/")) == [
        "data/train-00000-of-00002.parquet", "data/train-00001-of-00002.parquet",
    ]
    loaded = datasets.load_dataset(hub_repo_id, split="train")
    assert [normalize(r) for r in loaded] == [normalize(r) for r in rows]


# ------------------------------------------------------------------------------------------- download
def test_hf_hub_download_is_byte_identical_and_errors_are_typed(api, hub_server, published):
    repo_id, _, folder = published
    head = hub_server.head(repo_id)
    for name in ("README.md", "data/train-00000-of-00001.parquet"):
        path = hf_hub_download(repo_id, name, repo_type="dataset")
        assert Path(path).read_bytes() == (folder / name).read_bytes()
        assert head in path  # snapshots/<sha>/...
    by_sha = hf_hub_download(repo_id, "README.md", repo_type="dataset", revision=head)
    assert Path(by_sha).read_bytes() == (folder / "README.md").read_bytes()

    parquet = (folder / "data/train-00000-of-00001.parquet").read_bytes()
    meta = get_hf_file_metadata(hf_hub_url(repo_id, "data/train-00000-of-00001.parquet", repo_type="dataset"))
    assert meta.commit_hash == head
    assert (meta.etag, meta.size) == (hashlib.sha256(parquet).hexdigest(), len(parquet))

    with pytest.raises(EntryNotFoundError):
        hf_hub_download(repo_id, "missing.txt", repo_type="dataset")
    with pytest.raises(RevisionNotFoundError):
        hf_hub_download(repo_id, "README.md", repo_type="dataset", revision="nope")
    with pytest.raises(RepositoryNotFoundError):
        hf_hub_download("org/does-not-exist", "README.md", repo_type="dataset")
    assert not api.file_exists(repo_id, "missing.txt", repo_type="dataset")


def test_ranged_reads(api, hub_server, hub_repo_id):
    data = random.Random(5).randbytes(3_000_000)
    api.create_repo(hub_repo_id, repo_type="dataset")
    api.upload_file(
        path_or_fileobj=data, path_in_repo="shards/blob.bin", repo_id=hub_repo_id, repo_type="dataset"
    )
    assert hub_server.files(hub_repo_id)["shards/blob.bin"] == data

    HfFileSystem.clear_instance_cache()
    fs = HfFileSystem()
    path = f"datasets/{hub_repo_id}/shards/blob.bin"
    assert fs.ls(f"datasets/{hub_repo_id}/shards", detail=False) == [path]
    assert fs.info(path)["size"] == len(data)
    assert fs.glob(f"datasets/{hub_repo_id}/**/*.bin") == [path]
    with fs.open(path, block_size=64 * 1024) as f:
        f.seek(1_234_567)
        assert f.read(10_000) == data[1_234_567:1_244_567]
        f.seek(-100, os.SEEK_END)
        assert f.read() == data[-100:]
    with fs.open(path, block_size=0) as f:  # streaming
        assert f.read(1000) == data[:1000]
        assert f.read() == data[1000:]

    url = hf_hub_url(hub_repo_id, "shards/blob.bin", repo_type="dataset")
    r = get_session().get(url, headers={"Range": "bytes=10-19"})
    assert (r.status_code, r.content) == (206, data[10:20])
    assert r.headers["Content-Range"] == f"bytes 10-19/{len(data)}"
    r = get_session().get(url, headers={"Range": "bytes=-5"})
    assert (r.status_code, r.content) == (206, data[-5:])
    r = get_session().get(url, headers={"Range": f"bytes={len(data)}-"})
    assert r.status_code == 416 and r.headers["Content-Range"] == f"bytes */{len(data)}"
    r = get_session().get(url)
    assert r.status_code == 200 and r.content == data
    assert r.headers["X-Repo-Commit"] == hub_server.head(hub_repo_id)


# ------------------------------------------------------------------------------------------- failures
def _add(path: str, data: bytes) -> list[CommitOperationAdd]:
    return [CommitOperationAdd(path_in_repo=path, path_or_fileobj=data)]


def test_injected_503_on_commit_leaves_head_unchanged(api, hub_server, published):
    repo_id, _, _ = published
    head, n_commits = hub_server.head(repo_id), len(hub_server.commits(repo_id))
    hub_server.inject("POST", rf"^/api/datasets/{repo_id}/commit/", 503)
    with pytest.raises(HfHubHTTPError) as err:
        api.create_commit(repo_id, repo_type="dataset", operations=_add("a.txt", b"a"), commit_message="x")
    assert err.value.response.status_code == 503
    assert hub_server.head(repo_id) == head and len(hub_server.commits(repo_id)) == n_commits

    # the fault was used up: the same commit now goes through
    info = api.create_commit(repo_id, repo_type="dataset", operations=_add("a.txt", b"a"), commit_message="x")
    assert hub_server.head(repo_id) == info.oid != head


def test_injected_drop_is_a_connection_error(api, hub_server, published):
    repo_id, _, _ = published
    head = hub_server.head(repo_id)
    n_commit_posts = commit_requests(hub_server, repo_id)
    hub_server.inject("POST", r"/commit/main$", "drop")
    with pytest.raises(httpx2.RemoteProtocolError, match="disconnected without sending a response"):
        api.create_commit(repo_id, repo_type="dataset", operations=_add("b.txt", b"b"), commit_message="y")
    assert hub_server.head(repo_id) == head
    assert commit_requests(hub_server, repo_id) == n_commit_posts + 1  # sent once, not retried


def test_injected_fault_times_and_clear(api, hub_server, published):
    repo_id, _, _ = published
    hub_server.inject("GET", rf"^/api/datasets/{repo_id}$", 500, times=2)
    for _ in range(2):
        with pytest.raises(HfHubHTTPError) as err:
            api.dataset_info(repo_id)
        assert err.value.response.status_code == 500
    assert api.dataset_info(repo_id).sha == hub_server.head(repo_id)

    hub_server.inject("*", rf"^/api/datasets/{repo_id}$", 500, times=5)
    hub_server.clear_faults()
    assert api.dataset_info(repo_id).id == repo_id
    with pytest.raises(ValueError):
        hub_server.inject("GET", ".*", "explode")
