"""`cytohub audit`: exact and near duplicates within a split, across splits and across builds; groups in two
splits; the multi-index search against brute force."""

from __future__ import annotations

import io
import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image, ImageDraw
from typer.testing import CliRunner

from cytohub import manifest
from cytohub.audit import _PairLimit, audit, near_pairs, perceptual_hash
from cytohub.cli import app

runner = CliRunner()


def _picture(seed: int, size: int = 96) -> Image.Image:
    rng = np.random.default_rng(seed)
    im = Image.new("RGB", (size, size), (230, 220, 225))
    d = ImageDraw.Draw(im)
    for _ in range(6):
        x, y, r = rng.integers(8, size - 8), rng.integers(8, size - 8), rng.integers(4, 20)
        d.ellipse((x - r, y - r, x + r, y + r), fill=tuple(int(c) for c in rng.integers(40, 200, 3)))
    return im


def _png(im: Image.Image) -> bytes:
    buf = io.BytesIO()
    im.save(buf, "PNG")
    return buf.getvalue()


def _build(folder, splits: dict[str, list[tuple[str, bytes, str | None]]], corpus: str = "demo"):
    """A minimal build folder: shards with id, image and group, and a report naming the corpus with the
    manifest of the shards."""
    (folder / "data").mkdir(parents=True)
    for split, rows in splits.items():
        table = pa.table({
            "id": [r[0] for r in rows],
            "image": [{"bytes": r[1], "path": None} for r in rows],
            "group": [{"patient_id": r[2], "slide_id": None, "fov_id": None} for r in rows],
        })
        pq.write_table(table, folder / "data" / f"{split}-00000-of-00001.parquet")
    report = {"builder": {"name": corpus}, "cytohub_version": "test", "schema_version": "2",
              "manifest": manifest.compute(folder)}
    (folder / "build-report.json").write_text(json.dumps(report))
    return folder


def test_near_pairs_equals_brute_force():
    rng = np.random.default_rng(0)
    base = rng.integers(0, 2**63, 40, dtype=np.uint64)
    flips = [np.uint64(1 << int(b)) for b in rng.integers(0, 64, 200)]
    hashes = list(base)
    for i in range(120):  # neighbours of the base hashes at 1..6 flipped bits, and exact copies
        h = base[i % 40]
        for f in flips[i: i + i % 7]:
            h = h ^ f
        hashes.append(h)
    arr = np.array(hashes, dtype=np.uint64)
    for t in (0, 2, 4, 7):
        brute = {(i, j) for i in range(len(arr)) for j in range(i + 1, len(arr))
                 if bin(int(arr[i]) ^ int(arr[j])).count("1") <= t}
        assert near_pairs(arr, t) == brute, t
        assert brute  # the test data has pairs at every threshold tried


def test_perceptual_hash_is_stable_under_reencoding_and_separates_pictures():
    a, b = _picture(1), _picture(2)
    ha = perceptual_hash(_png(a), "a")
    buf = io.BytesIO()
    a.save(buf, "JPEG", quality=70)
    assert bin(ha ^ perceptual_hash(buf.getvalue(), "a.jpg")).count("1") <= 4
    assert bin(ha ^ perceptual_hash(_png(a.resize((64, 64))), "small")).count("1") <= 4
    assert bin(ha ^ perceptual_hash(_png(b), "b")).count("1") > 10
    wide = Image.fromarray(np.asarray(a.convert("L"), dtype=np.uint16) * 200)  # 16-bit, range 0..51000
    assert bin(ha ^ perceptual_hash(_png(wide), "16-bit")).count("1") <= 6


def test_audit_classifies_pairs_and_groups(tmp_path):
    p = [_png(_picture(i)) for i in range(6)]
    resized = _png(_picture(3).resize((80, 80)))
    one = _build(tmp_path / "one", {
        "train": [("t0", p[0], "P1"), ("t1", p[1], "P2"), ("t2", p[3], "P3"), ("t3", resized, "P3")],
        "test": [("s0", p[0], "P4"), ("s1", p[2], "P2")],
    })
    two = _build(tmp_path / "two", {"train": [("u0", p[1], None), ("u1", p[4], None)]}, corpus="other")
    r = audit([one, two])
    kinds = {(p.kind, p.exact, str(p.a), str(p.b)) for p in r.pairs}
    assert ("across splits", True, "one/train/t0", "one/test/s0") in kinds or \
        ("across splits", True, "one/test/s0", "one/train/t0") in kinds
    assert any(k[0] == "within split" and not k[1] and {k[2], k[3]} == {"one/train/t2", "one/train/t3"}
               for k in kinds)
    assert any(k[0] == "across builds" and k[1] and {k[2], k[3]} == {"one/train/t1", "two/train/u0"}
               for k in kinds)
    assert r.groups_across_splits == [{"build": "one", "group": "patient_id:P2", "splits": ["test", "train"]}]
    assert r.leakage and r.rows == 8 and r.rows_per_build == {"one": 6, "two": 2}
    assert r.count("across splits", exact=True) == 1 and r.count("across builds", exact=True) == 1


def test_cli_exit_status_follows_leakage(tmp_path):
    p = [_png(_picture(i)) for i in range(4)]
    clean = _build(tmp_path / "clean", {"train": [("a", p[0], "P1"), ("b", p[1], "P2")],
                                        "test": [("c", p[2], "P3")]})
    result = runner.invoke(app, ["audit", str(clean)])
    assert result.exit_code == 0, result.output
    assert "no leakage across splits" in result.output
    leaky = _build(tmp_path / "leaky", {"train": [("a", p[0], "P1")], "test": [("c", p[0], "P3")]})
    result = runner.invoke(app, ["audit", str(leaky), "--json"])
    assert result.exit_code == 1
    data = json.loads(result.output)
    assert data["leakage"] and data["summary"]["across splits"] == {"exact": 1, "near": 0}
    assert data["method"]["threshold"] == 4
    assert runner.invoke(app, ["audit", str(tmp_path / "nope")]).exit_code == 2
    assert runner.invoke(app, ["audit", str(clean), "--threshold", "80"]).exit_code == 2


def test_undecodable_images_are_listed_and_still_compared_exactly(tmp_path):
    junk = b"\x89PNG\r\n\x1a\n" + b"\x00" * 40
    folder = _build(tmp_path / "b", {"train": [("a", junk, None)], "test": [("b", junk, None)]})
    r = audit([folder])
    assert r.undecodable == ["b/train/a", "b/test/b"] or sorted(r.undecodable) == ["b/test/b", "b/train/a"]
    assert r.count("across splits", exact=True) == 1 and r.leakage


@pytest.mark.parametrize("corpus", ["cccid"])
def test_audit_of_a_real_build(built, corpus):
    r = audit([built(corpus)])
    assert r.rows == sum(r.rows_per_build.values()) > 0
    assert not r.groups_across_splits  # the engine's grouped splits keep groups together


def test_a_folder_given_twice_is_refused(tmp_path):
    folder = _build(tmp_path / "b", {"train": [("a", _png(_picture(1)), None)]})
    for args in ([str(folder), str(folder)], [str(folder), str(tmp_path / "b" / ".." / "b")]):
        result = runner.invoke(app, ["audit", *args])
        assert result.exit_code == 2 and "are the same folder" in result.output, result.output
        assert "Traceback" not in result.output


def test_audit_reads_a_build_as_its_manifest_lists_it(tmp_path):
    p = [_png(_picture(i)) for i in range(3)]
    rows = {"train": [("a", p[0], None), ("b", p[1], None)], "test": [("c", p[2], None)]}
    folder = _build(tmp_path / "b", rows)
    assert audit([folder]).rows == 3
    # a shard that is not the build's (rewritten with a train image in test: leakage the build never had)
    shard = folder / "data" / "test-00000-of-00001.parquet"
    pq.write_table(pa.table({"id": ["c"], "image": [{"bytes": p[0], "path": None}],
                             "group": [{"patient_id": None, "slide_id": None, "fov_id": None}]}), shard)
    result = runner.invoke(app, ["audit", str(folder)])
    assert result.exit_code == 2 and "test-00000-of-00001.parquet: missing or changed since the build" in \
        result.output, result.output
    # a shard the manifest does not list
    other = _build(tmp_path / "c", rows)
    pq.write_table(pq.read_table(other / "data" / "train-00000-of-00001.parquet"),
                   other / "data" / "extra-00000-of-00001.parquet")
    result = runner.invoke(app, ["audit", str(other)])
    assert result.exit_code == 2 and "extra-00000-of-00001.parquet: not in the manifest" in result.output
    # no report, or a report without a manifest
    (other / "build-report.json").write_text(json.dumps({"builder": {"name": "demo"}, "cytohub_version": "t",
                                                        "schema_version": "2"}))
    result = runner.invoke(app, ["audit", str(other)])
    assert result.exit_code == 2 and "no manifest" in result.output
    (other / "build-report.json").unlink()
    result = runner.invoke(app, ["audit", str(other)])
    assert result.exit_code == 2 and "no build-report.json" in result.output


def test_too_many_duplicate_pairs_is_one_line_not_an_exhausted_memory(tmp_path, monkeypatch):
    """k copies of one image are k(k-1)/2 pairs (10,000 blank tiles: 50 million): the count is known before any
    pair is made, and over CYTOHUB_AUDIT_MAX_PAIRS the audit stops with one line naming the largest set."""
    blank, other = _png(Image.new("RGB", (32, 32), (255, 255, 255))), _png(_picture(1))
    folder = _build(tmp_path / "tiles", {"train": [(f"t{i}", blank, None) for i in range(6)] + [("x", other, None)]})
    monkeypatch.setenv("CYTOHUB_AUDIT_MAX_PAIRS", "14")
    result = runner.invoke(app, ["audit", str(folder)])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "15 exact duplicate image pairs, over the 14 an audit lists (the largest set is 6 copies of one " \
           "image, e.g. tiles/train/t0)" in " ".join(result.output.split())
    monkeypatch.setenv("CYTOHUB_AUDIT_MAX_PAIRS", "15")
    assert audit([folder]).count("within split", exact=True) == 15
    # near pairs among distinct hashes are bounded too (the limit is checked before they are expanded)
    hashes = np.array([0, 1, 2, 3, 1 << 40, 3 << 40], dtype=np.uint64)  # six hashes, all within 4 bits
    assert len(near_pairs(hashes, 4)) == 15 == len(near_pairs(hashes, 4, limit=15))
    with pytest.raises(_PairLimit):
        near_pairs(hashes, 4, limit=10)
