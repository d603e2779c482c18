"""The generic conformance suite, run over every registered builder:
declaration -> synthesize (small) -> build -> validate -> load with `datasets` -> schema, counts, labels,
ids, groups, card, and the accounting of every raw file."""

from __future__ import annotations

import logging

import pytest

import hub_card_rules
from cytohub import registry
from cytohub.schema import features
from cytohub.taxonomy import load_taxonomy
from helpers import read_rows, report
from hub_card_rules import check_card

NAMES = list(registry.builders())


@pytest.mark.parametrize("name", NAMES)
def test_declaration(name):
    cls = registry.builders()[name]
    assert cls.check_declaration() == []
    assert cls.labels or cls.object_labels, "a corpus has image classes or object categories"
    from cytohub.card import prose

    assert len(prose(name)) > 300, f"cards/{name}.md is missing or too short"
    assert "@" in cls.citation and "{" in cls.citation, "citation must be BibTeX"
    assert set(cls.task_categories) <= set(hub_card_rules.TASK_CATEGORIES)
    assert cls.license in hub_card_rules.LICENSES


@pytest.mark.parametrize("name", NAMES)
def test_build_validate_load(name, built):
    from datasets import load_dataset

    from cytohub.validate import validate

    cls = registry.builders()[name]
    folder = built(name)
    rep = report(folder)
    v = validate(folder)
    assert v.ok, v.problems
    assert v.images_decoded > 0

    # counts: report == card == shards == datasets
    rows = read_rows(folder, columns=["id", "label", "group", "harmonized", "label_path", "objects"])
    assert rep["num_rows"] == len(rows) == sum(s["num_examples"] for s in rep["splits"].values()) > 0
    ids = [r["id"] for r in rows]
    assert len(set(ids)) == len(ids)
    if cls.splits:
        assert list(rep["splits"]) == list(cls.splits)

    # labels: in range, label_path and harmonized consistent with the declaration
    labels = cls.label_index()
    names = cls.class_names()
    nodes = load_taxonomy().nodes
    for r in rows:
        assert -1 <= r["label"] < len(names)
        if r["label"] >= 0:
            lab = labels[names[r["label"]]]
            assert r["label_path"] and r["label_path"][-1] in (lab.path[-1], lab.name)
        assert r["harmonized"] is None or r["harmonized"] in nodes
        for obj in r["objects"]:
            if cls.object_labels:
                assert obj["category"] in cls.object_index()

    # groups never cross splits
    seen: dict[str, str] = {}
    for split in rep["splits"]:
        for r in read_rows(folder, split, columns=["group", "id"]):
            g = r["group"]
            key = next((f"{k}:{g[k]}" for k in ("patient_id", "slide_id", "fov_id") if g[k]), None)
            if key:
                assert seen.setdefault(key, split) == split, f"{key} crosses splits"

    # every raw file accounted for, with a reason when skipped
    assert rep["files"]["used"] > 0
    for f in rep["files"]["list"]:
        assert f["status"] in ("used", "skipped") and (f["status"] == "used" or f["reason"])

    # the card: loads, carries license/citation, and datasets reads its dataset_info without warnings
    from huggingface_hub import DatasetCard

    card = DatasetCard.load(folder / "README.md")
    assert str(card) == (folder / "README.md").read_text(encoding="utf-8")  # what huggingface_hub writes back
    assert card.data.license == cls.license
    assert check_card((folder / "README.md").read_text(encoding="utf-8")) == []  # the Hub's metadata rules
    assert cls.citation.strip().splitlines()[0] in card.text
    assert card.data.pretty_name.startswith("[SYNTHETIC]") and "SYNTHETIC DATA" in card.text

    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append
    logging.getLogger("datasets").addHandler(handler)
    try:
        ds = load_dataset(str(folder), streaming=True)
        assert ds[next(iter(rep["splits"]))].features == features(names)
        streamed = [row["id"] for split in rep["splits"] for row in ds[split]]
    finally:
        logging.getLogger("datasets").removeHandler(handler)
    assert sorted(streamed) == sorted(ids)
    assert not [r.getMessage() for r in records if r.levelno >= logging.WARNING]
