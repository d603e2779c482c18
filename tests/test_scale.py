"""Scale: processes, shard planning, the Parquet write path, compact bookkeeping (RawTree, zip index, splits)."""

from __future__ import annotations

import hashlib
import json
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from cytohub import registry, writer
from cytohub.build import build, write_report
from cytohub.encode import storage_schema
from cytohub.filetable import RecordList
from cytohub.raw import RawTree
from cytohub.schema import arrow_schema, features
from cytohub.zipindex import ZipReader, iter_central_directory, record_of


def _digest(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_num_proc_gives_byte_identical_output(tmp_path, synth_raw):
    raw = synth_raw("cccid")
    one = build(registry.get("cccid"), raw, tmp_path / "one", split="train=0.6,validation=0.2,test=0.2",
                num_proc=1, max_shard_bytes=2_000_000)
    two = build(registry.get("cccid"), raw, tmp_path / "two", split="train=0.6,validation=0.2,test=0.2",
                num_proc=2, max_shard_bytes=2_000_000)
    assert _digest(tmp_path / "one") == _digest(tmp_path / "two")
    assert sorted(p.name for p in (tmp_path / "one").iterdir()) == ["README.md", "assets", "build-report.json",
                                                                     "croissant.json", "data"]  # no spool left
    assert len(one.report["splits"]["train"]["shards"]) > 1
    assert two.report["num_rows"] == 51


def test_num_proc_identical_for_a_folder_of_loose_files(tmp_path, synth_raw):
    from helpers import extract_all

    folder = extract_all(synth_raw("bone-marrow"), tmp_path / "raw")
    for n in (1, 3):
        build(registry.get("bone-marrow"), folder, tmp_path / f"out{n}", num_proc=n, num_shards=3)
    assert _digest(tmp_path / "out1") == _digest(tmp_path / "out3")
    rep = json.loads((tmp_path / "out1" / "build-report.json").read_text())
    loose = [i for i in rep["inputs"] if i["path"].endswith(".jpg")]
    assert len(loose) == rep["num_rows"] and all(len(i["sha256"]) == 64 for i in loose)
    assert rep["splits"]["train"]["shards"] == [f"train-0000{i}-of-00003.parquet" for i in range(3)]


def test_storage_schema_is_the_datasets_schema():
    names = ["NILM", "HSIL", "a/b"]
    assert storage_schema(names).equals(arrow_schema(features(names)), check_metadata=True)


@pytest.mark.parametrize("corpus", ["cccid", "bone-marrow", "ccagt"])
def test_card_dataset_info_is_what_datasets_writes(corpus):
    from datasets import DatasetInfo, SplitDict, SplitInfo

    from cytohub.card import dataset_info_yaml

    b = registry.get(corpus)
    for parquet in ((30, 12), (30, None)):  # download_size: the Parquet bytes, left out when one is unknown
        report = {"splits": {"train": {"num_bytes": 1234, "num_examples": 7, "parquet_bytes": parquet[0]},
                             "test": {"num_bytes": 56, "num_examples": 2, "parquet_bytes": parquet[1]}}}
        split_dict = SplitDict()
        for name, s in report["splits"].items():
            split_dict.add(SplitInfo(name=name, num_bytes=s["num_bytes"], num_examples=s["num_examples"]))
        expected = DatasetInfo(features=features(b.class_names()), splits=split_dict,
                               download_size=None if None in parquet else sum(parquet),
                               dataset_size=1290)._to_yaml_dict()
        ours = dataset_info_yaml(b, report)
        assert json.dumps(ours) == json.dumps(expected)  # same keys in the same order, same values
        names = ours["features"][4]["dtype"]["class_label"]["names"]
        assert names == {str(i): n for i, n in enumerate(b.class_names())}


def test_card_text_does_not_depend_on_the_installed_datasets(monkeypatch):
    import datasets

    from cytohub.card import _loading_in_parallel

    with_reshard = _loading_in_parallel("cccid", "train", 1)
    monkeypatch.delattr(datasets.IterableDataset, "reshard")
    assert _loading_in_parallel("cccid", "train", 1) == with_reshard
    assert "ds = ds.reshard()" in with_reshard and "`datasets` >= 5.0" in with_reshard
    assert "reshard" not in _loading_in_parallel("cccid", "train", 64)


def test_shard_count_rule():
    mib = 2**20
    assert writer.shard_count(5 * mib, 1000, 500 * 10**6) == 1
    assert writer.shard_count(40 * mib, 1000, 500 * 10**6) == 2  # >= 16 MiB each
    assert writer.shard_count(2000 * mib, 200_000, 500 * 10**6) == 64  # 8 workers x 8 nodes
    assert writer.shard_count(40_000 * mib, 10**6, 500 * 10**6) == 128  # capped at 500 MB: multiples of 64
    assert writer.shard_count(40 * mib, 3, 500 * 10**6) == 2
    assert writer.shard_count(40 * mib, 1000, 500 * 10**6, num_shards=5) == 5
    assert writer.shard_count(40 * mib, 1000, 10 * mib, num_shards=3) == 6  # the size cap still holds


def test_plan_shards_balances_bytes_and_respects_the_cap():
    sizes = np.array([10] * 50 + [100] * 5 + [10] * 45, dtype=np.int64)
    counts = writer.plan_shards(sizes, max_shard_bytes=10**9, num_shards=4)
    assert sum(counts) == 100 and len(counts) == 4
    per = np.add.reduceat(sizes, np.cumsum([0, *counts[:-1]]))
    assert per.max() - per.min() <= 100
    counts = writer.plan_shards(sizes, max_shard_bytes=300)
    per = np.add.reduceat(sizes, np.cumsum([0, *counts[:-1]]))
    assert per.max() <= 300 and sum(counts) == 100
    assert writer.plan_shards(np.zeros(0, dtype=np.int64), 10) == [0]


def test_parquet_write_path(tmp_path, synth_raw):
    res = build(registry.get("cccid"), synth_raw("cccid"), tmp_path / "out", num_shards=2)
    shard = tmp_path / "out" / "data" / res.report["splits"]["train"]["shards"][0]
    pf = pq.ParquetFile(shard)
    md = pf.metadata
    rg = md.row_group(0)
    cols = {rg.column(i).path_in_schema: rg.column(i) for i in range(md.num_columns)}
    assert cols["image.bytes"].compression == "UNCOMPRESSED"  # JPEG: zstd does not pay
    assert cols["focal_stack.list.element.bytes"].compression == "UNCOMPRESSED"
    assert cols["id"].compression == "ZSTD" and cols["objects.list.element.polygon.list.element"].compression == "ZSTD"
    assert cols["image.bytes"].statistics is None and cols["id"].statistics is not None
    assert cols["id"].has_column_index and cols["image.bytes"].has_offset_index
    assert all(md.row_group(i).num_rows <= writer.ROW_GROUP_ROWS for i in range(md.num_row_groups))
    assert len(res.report["splits"]["train"]["shards"]) == 2


def test_compression_pays_for_raw_images_only():
    import io

    from PIL import Image

    img = Image.new("RGB", (64, 64), (200, 100, 50))
    bmp, jpg = io.BytesIO(), io.BytesIO()
    img.save(bmp, "BMP")
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(jpg, "JPEG", quality=90)
    assert writer.compression_pays([bmp.getvalue()])
    assert not writer.compression_pays([jpg.getvalue()])


def _zip(path: Path, names: list[str], method=zipfile.ZIP_DEFLATED) -> None:
    with zipfile.ZipFile(path, "w", method) as zf:
        for i, name in enumerate(names):
            zf.writestr(name, f"content {i} ".encode() * (i + 1))


def test_zip_index_reads_what_zipfile_reads(tmp_path):
    names = ["b/2.txt", "a/1.txt", "./c/3.txt", "d/\u00e9t\u00e9.txt"]
    _zip(tmp_path / "x.zip", names)
    with open(tmp_path / "x.zip", "rb") as fh:
        infos = list(iter_central_directory(fh))
    reader = ZipReader(tmp_path / "x.zip")
    with zipfile.ZipFile(tmp_path / "x.zip") as zf:
        assert [i.filename for i in infos] == [i.filename for i in zf.infolist()]
        for info in infos:
            assert reader.read(record_of(info)) == zf.read(info.filename)
    reader.close()
    (tmp_path / "bad.zip").write_bytes(b"PK\x03\x04" + b"\x00" * 100)
    with open(tmp_path / "bad.zip", "rb") as fh, pytest.raises(zipfile.BadZipFile):
        list(iter_central_directory(fh))


def test_raw_tree_is_compact_and_detached_copies_read(tmp_path):
    names = [f"img/{i:04d}.jpg" for i in range(300)] + ["__MACOSX/img/._0001.jpg", "./notes/readme.txt"]
    _zip(tmp_path / "d.zip", names, zipfile.ZIP_STORED)
    with RawTree(tmp_path / "d.zip") as tree:
        files = tree.files(suffix=".JPG")
        assert len(files) == 300 and files[0].path == "d.zip/img/0000.jpg" and files[-1].name == "0299.jpg"
        assert [f.path for f in tree.files(pattern=r"readme")] == ["d.zip/notes/readme.txt"]
        assert tree.get("d.zip/img/0007.jpg").size == len(b"content 7 " * 8)
        copy = pickle.loads(pickle.dumps(files[5]))  # what a worker process gets
        assert copy.read_bytes() == files[5].read_bytes() == b"content 5 " * 6
        tree.mark_used(files[5])
        tree.skip(files[6], "not needed")
        assert "d.zip/img/0005.jpg" in tree.used and tree.skipped["d.zip/img/0006.jpg"] == "not needed"
        acc = tree.accounting("unused")
        assert isinstance(acc, RecordList) and len(acc) == 302
        by_path = {e["path"]: e for e in acc}
        assert by_path["d.zip/img/0005.jpg"]["status"] == "used"
        assert by_path["d.zip/__MACOSX/img/._0001.jpg"]["reason"] == "operating-system metadata file"
        assert tree.skip_reasons("unused") == {"unused": 299, "not needed": 1,
                                               "operating-system metadata file": 1}


def test_file_table_sorts_by_full_path_without_full_paths():
    """Folder ids + names, ordered depth first with sub-folders keyed `name/`: the order of sorting full
    paths, for names around '/' in byte order ('-', '.', ' ', '!' sort before it, letters and '~' after),
    files and folders of one name, non-ASCII names and implicit folders."""
    import random

    from cytohub.filetable import FILE, FileTable

    rng = random.Random(1)
    alphabet = ["a", "b", "a-b", "a.b", "ab", "B", "\u00e9", "a b", "0", "10", "9", "~", "a!"]
    for _ in range(200):
        paths = list({"/".join(rng.choice(alphabet) for _ in range(rng.randint(1, 4)))
                      for _ in range(rng.randint(1, 60))})
        rng.shuffle(paths)
        table = FileTable()
        for p in paths:
            table.add(p, len(p), FILE, 0)
        table.seal()
        expected = sorted(paths, key=lambda p: p.encode())
        assert [table.path(i) for i in range(len(table))] == expected
        assert [p for _, p in table.paths_of(table.files)] == expected
        assert all(table.find(p) == expected.index(p) for p in paths)
        assert table.find("zz/none") is None and table.first_duplicate() is None
    table = FileTable()
    for p in ("x/b", "x/a", "x/b"):
        table.add(p, 1, FILE, 0)
    table.seal()
    assert table.first_duplicate() == 1 and table.path(1) == table.path(2) == "x/b"


def test_write_report_streams_lists_like_json(tmp_path):
    items = [{"path": "a", "size": 1, "status": "used"}, {"path": "b\u00e9", "size": None, "reason": "x"}]
    report = {"a": 1, "files": {"used": 1, "list": RecordList(2, lambda j: items[j])}, "empty": RecordList(0, None),
              "inputs": RecordList(1, lambda j: {"path": "z", "sha256": "0" * 64})}
    write_report(tmp_path / "r.json", report)
    expected = {**report, "files": {"used": 1, "list": items}, "empty": [],
                "inputs": [{"path": "z", "sha256": "0" * 64}]}
    assert (tmp_path / "r.json").read_text(encoding="utf-8") == json.dumps(expected, indent=1,
                                                                           ensure_ascii=False) + "\n"


def test_splits_assign_codes_on_arrow():
    from cytohub import splits

    groups = [f"patient:{i // 3}" for i in range(300)]
    labels = [i // 3 % 4 for i in range(300)]
    ratios = {"train": 0.8, "validation": 0.1, "test": 0.1}
    codes = splits.assign_codes(pa.chunked_array([pa.array(groups[:100]), pa.array(groups[100:])]),
                                np.array(labels), ratios, 1)
    assert [list(ratios)[c] for c in codes] == splits.assign(groups, labels, ratios, 1)
