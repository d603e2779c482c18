"""croissant.json: every build carries a Croissant 1.0 + RAI description that `mlcroissant` validates and
reads records from, matching the Parquet shards row by row."""

from __future__ import annotations

import io
import json
import logging

import pytest
from PIL import Image
from typer.testing import CliRunner

from cytohub import registry
from cytohub.croissant import CROISSANT, NOT_STATED, croissant_json
from helpers import read_rows, report

mlc = pytest.importorskip("mlcroissant")


def _text(v):
    return v.decode() if isinstance(v, bytes) else v


def _load(folder):
    """The mlcroissant Dataset of a build, failing on any validation error (warnings are logged only)."""
    ds = mlc.Dataset(jsonld=str(folder / CROISSANT))
    assert not ds.metadata.ctx.issues.errors, ds.metadata.ctx.issues.report()
    return ds


@pytest.mark.parametrize("name", ["cccid", "ccagt"])
def test_croissant_validates_and_reads_every_row(built, name):
    folder = built(name)
    rep = report(folder)
    ds = _load(folder)
    expected = {}
    for split in rep["splits"]:
        for r in read_rows(folder, split):
            expected[r["id"]] = (split, r)
    seen = 0
    for rec in ds.records(record_set="default"):
        rid = _text(rec["default/id"])
        split, r = expected[rid]
        assert _text(rec["default/split"]) == split
        assert rec["default/label"] == r["label"]
        assert _text(rec["default/harmonized"]) == r["harmonized"]
        assert [_text(p) for p in rec["default/label_path"]] == r["label_path"]
        assert rec["default/image"].size == Image.open(io.BytesIO(r["image"]["bytes"])).size
        assert len(rec["default/focal_stack"]) == len(r["focal_stack"])
        assert (rec["default/mask"] is None) == (r["mask"] is None)
        objects = rec["default/objects"]
        assert [_text(o["default/objects/category"]) for o in objects] == [o["category"] for o in r["objects"]]
        assert [o["default/objects/bbox"] for o in objects] == [o["bbox"] for o in r["objects"]]
        assert _text(rec["default/extra"]) == r["extra"]
        assert _text(rec["default/group"]["default/group/slide_id"]) == r["group"]["slide_id"]
        seen += 1
    assert seen == rep["num_rows"] == len(expected)


def test_croissant_class_names_rai_and_files(built):
    folder = built("cccid")
    b = registry.get("cccid")
    doc = json.loads((folder / CROISSANT).read_text())
    ds = _load(folder)
    names = [(r["label_names/index"], _text(r["label_names/name"])) for r in ds.records(record_set="label_names")]
    assert names == list(enumerate(b.class_names()))
    assert doc["conformsTo"] == ["http://mlcommons.org/croissant/1.0", "http://mlcommons.org/croissant/RAI/1.0"]
    assert [f["includes"] for f in doc["distribution"]] == ["data/*.parquet"]
    assert "train 31 rows in 1 shard(s), validation 10 rows in 1 shard(s)" in doc["distribution"][0]["description"]
    assert doc["license"] == "https://creativecommons.org/licenses/by/4.0/"
    assert doc["citeAs"] == b.citation.strip() and doc["url"] == b.homepage
    assert doc["description"].startswith("SYNTHETIC DATA") and "synthetic" in doc["keywords"]
    pii = doc["rai:personalSensitiveInformation"]
    assert f"Consent: {NOT_STATED}." in pii and f"De-identification: {NOT_STATED}." in pii  # CCCID states neither
    assert any("Not for clinical use" in u for u in doc["rai:dataUseCases"])
    assert "Not for clinical use" in doc["rai:dataSocialImpact"]
    assert any("Squamous Cell Carcinoma" in a for a in doc["rai:dataAnnotationProtocol"])
    assert all(a in doc["rai:dataLimitations"] for a in b.assumptions)


def test_croissant_takes_rai_facts_from_the_builder(built, tmp_path):
    """A corpus whose publisher states de-identification says so; license 'other' points at its terms."""
    rep = report(built("sipakmed"))
    marrow = json.loads(croissant_json(registry.get("bone-marrow"), {**rep, "builder": {
        "name": "bone-marrow", "version": registry.get("bone-marrow").version, "layout": "verified"}}))
    assert "De-identification: the images are de-identified, as the publisher states (The Cancer Imaging " \
           "Archive collection, doi:10.7937/TCIA.AXH3-T579)." in marrow["rai:personalSensitiveInformation"]
    sipakmed = json.loads((built("sipakmed") / CROISSANT).read_text())
    assert sipakmed["license"] == registry.get("sipakmed").license_link
    assert any(registry.get("sipakmed").license_name in x for x in sipakmed["rai:dataLimitations"])


def test_card_command_rewrites_the_same_croissant(built, tmp_path, caplog):
    import shutil

    from cytohub.cli import app

    folder = tmp_path / "ccagt"
    shutil.copytree(built("ccagt"), folder)
    before = (folder / CROISSANT).read_bytes()
    (folder / CROISSANT).unlink()
    result = CliRunner().invoke(app, ["card", str(folder), "--quiet"])
    assert result.exit_code == 0, result.output
    assert (folder / CROISSANT).read_bytes() == before  # deterministic, from the report alone
    with caplog.at_level(logging.WARNING):
        _load(folder)
    doc = json.loads(before)
    assert "label_names" not in {r["@id"] for r in doc["recordSet"]}  # CCAgT has object categories only
    cats = [r for r in doc["recordSet"] if r["@id"] == "object_categories"][0]["data"]
    assert [c["object_categories/name"] for c in cats] == [lab.name for lab in registry.get("ccagt").object_labels]
