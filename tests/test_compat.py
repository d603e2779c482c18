"""Builds load where users are: `datasets` 3.6, 4.0 and the newest 4.x and 5.x, streaming and not.

One small synthetic build per task type (classification with masks: Herlev; z-stack: CCCID; detection and
segmentation with objects and masks: CCAgT) is loaded in separate minimal virtual environments
(tests/compat_venvs.py) by tests/compat_load.py, all versions in parallel, and every decoded row is compared
with what the Parquet shards hold."""

from __future__ import annotations

import io
import json
import os
import subprocess
from pathlib import Path

import pytest
from PIL import Image

import compat_venvs
from helpers import read_rows

CORPORA = ("herlev", "cccid", "ccagt")  # classification + masks, z-stack, objects + masks


def _size(img: dict | None) -> list[int] | None:
    return None if img is None else list(Image.open(io.BytesIO(img["bytes"])).size)


def _expected(folder: Path) -> dict:
    from datasets import load_dataset_builder

    out = {}
    names = None
    for split in sorted(json.loads((folder / "build-report.json").read_text())["splits"]):
        if names is None:
            names = load_dataset_builder(str(folder)).info.features["label"].names
        rows = []
        for r in read_rows(folder, split):
            rows.append({
                "id": r["id"],
                "label": names[r["label"]] if r["label"] >= 0 else None,
                "label_path": r["label_path"],
                "harmonized": r["harmonized"],
                "image": _size(r["image"]),
                "focal_stack": [_size(p) for p in r["focal_stack"]],
                "z_um": None if r["z_um"] is None else [round(z, 4) for z in r["z_um"]],
                "objects": [[o["category"], o["bbox"], o["polygon"], o["point"]] for o in r["objects"]],
                "mask": _size(r["mask"]),
                "mpp": None if r["mpp"] is None else round(r["mpp"], 6),
                "group": r["group"],
                "extra": None if r["extra"] is None else json.loads(r["extra"]),
                "source_path": r["source_path"],
            })
        out[split] = {"class_names": names, "rows": rows}
    return out


@pytest.fixture(scope="module")
def loads(built, tmp_path_factory):
    """{version: loader output} for the three builds, all versions run in parallel."""
    pythons = compat_venvs.ensure()
    folders = [str(built(name)) for name in CORPORA]
    script = Path(__file__).with_name("compat_load.py")
    procs = {}
    for version, python in pythons.items():
        home = tmp_path_factory.mktemp(f"hf-home-{version}")
        env = {**os.environ, "HF_HOME": str(home), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
               "PYTHONPATH": ""}
        procs[version] = subprocess.Popen([str(python), str(script), *folders], stdout=subprocess.PIPE,
                                          stderr=subprocess.PIPE, env=env, text=True)
    out = {}
    for version, proc in procs.items():
        stdout, stderr = proc.communicate(timeout=600)
        out[version] = (proc.returncode, stdout, stderr)
    return folders, out


@pytest.mark.parametrize("version", compat_venvs.VERSIONS)
def test_builds_load_with_datasets(version, loads):
    folders, results = loads
    rc, stdout, stderr = results[version]
    assert rc == 0, f"datasets {version} could not load a build:\n{stderr[-3000:]}"
    got = json.loads(stdout)
    assert got["datasets"] == version
    for folder, name in zip(folders, CORPORA, strict=True):
        expected = _expected(Path(folder))
        for mode in ("arrow", "streaming"):
            assert got["builds"][folder][mode] == expected, f"{name} with datasets {version} ({mode}) differs"
    # the builds exercise every kind of value: labels and masks, focal stacks with z, objects with geometry
    herlev, cccid, ccagt = (_expected(Path(f)) for f in folders)
    rows = [r for s in herlev.values() for r in s["rows"]]
    assert all(r["mask"] == r["image"] for r in rows) and all(r["label"] for r in rows)
    assert any(r["extra"] for r in rows)
    rows = [r for s in cccid.values() for r in s["rows"]]
    assert all(len(r["focal_stack"]) > 1 and len(r["z_um"]) == len(r["focal_stack"]) for r in rows)
    rows = [r for s in ccagt.values() for r in s["rows"]]
    assert any(r["objects"] for r in rows) and all(r["mask"] for r in rows)
    assert any(o[1] is not None and o[2] is not None for r in rows for o in r["objects"])


def test_extra_is_deterministic_json_text():
    from cytohub.encode import encode_extra
    from cytohub.schema import decode_extra

    np = pytest.importorskip("numpy")
    assert encode_extra(None) is None
    text = encode_extra({"z": 1, "a": {"y": [1.5, None], "b": "滴虫"}, "n": np.int64(3)})
    assert text == '{"a": {"b": "滴虫", "y": [1.5, null]}, "n": 3, "z": 1}'
    assert decode_extra(text) == {"a": {"b": "滴虫", "y": [1.5, None]}, "n": 3, "z": 1}
    with pytest.raises(ValueError):
        encode_extra({"v": float("nan")})
    with pytest.raises(TypeError, match="bytes"):
        encode_extra({"v": b"\x00"})


def test_a_nan_in_extra_is_refused_naming_the_file():
    from cytohub import registry
    from cytohub.errors import RawLayoutError
    from cytohub.rows import RowMaker

    maker = RowMaker(registry.get("herlev"))
    with pytest.raises(RawLayoutError, match=r"carcinoma_in_situ/x\.BMP: .*not representable in JSON"):
        maker.make({"id": "x", "source_path": "carcinoma_in_situ/x.BMP", "extra": {"area": float("inf")}})


def test_schema_metadata_is_readable_without_the_list_type(built):
    """The Parquet `huggingface` metadata spells lists as [feature], which datasets 3.x (no `List`) reads;
    datasets of this environment reads it back as the very same features."""
    import pyarrow.parquet as pq
    from datasets import Features

    from cytohub import registry
    from cytohub.schema import features

    folder = built("ccagt")
    shard = next((folder / "data").glob("*.parquet"))
    meta = json.loads(pq.read_schema(shard).metadata[b"huggingface"])["info"]["features"]
    assert '"List"' not in json.dumps(meta) and '"Json"' not in json.dumps(meta)
    assert meta["objects"] == [{"category": {"dtype": "string", "_type": "Value"},
                                "bbox": [{"dtype": "float32", "_type": "Value"}],
                                "polygon": [{"dtype": "float32", "_type": "Value"}],
                                "point": [{"dtype": "float32", "_type": "Value"}]}]
    assert meta["extra"] == {"dtype": "string", "_type": "Value"}
    assert Features.from_dict(meta) == features(registry.get("ccagt").class_names())
