"""cytohub.align_labels / cytohub.concat: combining corpora maps classes by name or harmonized node, never by
index; on Dataset and IterableDataset alike (cccid + herlev + sipakmed small synthetic builds)."""

from __future__ import annotations

import pytest

import cytohub
from cytohub.taxonomy import load_taxonomy

CORPORA = ("cccid", "herlev", "sipakmed")


def _load(folder, streaming):
    from datasets import concatenate_datasets, load_dataset

    dd = load_dataset(str(folder), streaming=streaming)
    return concatenate_datasets([dd[s] for s in sorted(dd)])  # every row of the build, in one dataset


def _classes(ds) -> list[tuple[str, str | None, str | None]]:
    """(id, class name or None, harmonized) of every row, reading only the small columns."""
    names = ds.features["label"].names
    return [(r["id"], names[r["label"]] if r["label"] >= 0 else None, r["harmonized"])
            for r in ds.select_columns(["id", "label", "harmonized"])]


@pytest.fixture(scope="module")
def corpora(built):
    return {name: built(name) for name in CORPORA}


@pytest.mark.parametrize("streaming", [False, True])
def test_concat_on_label_keeps_every_rows_class_name(corpora, streaming):
    parts = [_load(corpora[n], streaming) for n in CORPORA]
    before = [row for p in parts for row in _classes(p)]
    assert {c for _, c, _ in before if c} >= {"normal_superficiel", "Dyskeratotic", "Repair Cells"}

    mixed = cytohub.concat(parts)
    assert type(mixed) is type(parts[0])
    names = mixed.features["label"].names
    expected_names = list(dict.fromkeys(n for p in parts for n in p.features["label"].names))
    assert names == expected_names and len(names) == 17 + 7 + 5
    after = _classes(mixed)
    assert after == before  # same rows, same order, every class name unchanged
    # the features are a cytohub schema with the union of names: the result can be saved or mixed again
    from cytohub.schema import features

    assert mixed.features == features(names)


def test_the_cast_recipe_changes_classes_and_align_labels_does_not(corpora):
    """What the old README recipe did (cast keeps the numbers) against align_labels (keeps the names)."""
    from datasets import ClassLabel

    cccid, herlev = _load(corpora["cccid"], False), _load(corpora["herlev"], False)
    union = cccid.features["label"].names + herlev.features["label"].names
    casted = _classes(herlev.cast_column("label", ClassLabel(names=union)))
    aligned = _classes(cytohub.align_labels(herlev, union))
    original = _classes(herlev)
    assert sum(a[1] != o[1] for a, o in zip(casted, original, strict=True)) == len(original)  # all wrong
    assert aligned == original
    assert cytohub.align_labels(herlev, union).features["label"].names == union


@pytest.mark.parametrize("streaming", [False, True])
def test_concat_on_harmonized_at_depth(corpora, streaming):
    tax = load_taxonomy()
    parts = [_load(corpora[n], streaming) for n in CORPORA]
    before = [row for p in parts for row in _classes(p)]
    assert any(h is None and c == "Dyskeratotic" for _, c, h in before)  # SIPaKMeD: no honest node
    with pytest.raises(ValueError, match="Dyskeratotic.*no harmonized node"):
        _classes(cytohub.concat(parts, on="harmonized", depth=1, trees=["bethesda-2014"]))

    mixed = cytohub.concat(parts, on="harmonized", depth=1, trees=["bethesda-2014"], missing="drop")
    names = mixed.features["label"].names
    assert names == ["NILM", "ASC", "LSIL", "HSIL", "SCC", "AGC", "Adenocarcinoma"]
    kept = [row for row in before if row[2] is not None]
    after = _classes(mixed)
    assert [(i, h) for i, _, h in after] == [(i, h) for i, _, h in kept]  # harmonized column unchanged
    assert [c for _, c, _ in after] == [tax.cut(h, 1) for _, _, h in kept]
    assert {"NILM", "LSIL", "HSIL"} <= {c for _, c, _ in after}
    # herlev's NILM/squamous/superficial rows become NILM; their native class stays in label_path
    herlev_first = next(r for r in mixed if r["harmonized"] == "NILM/squamous/superficial")
    assert names[herlev_first["label"]] == "NILM" and herlev_first["label_path"][-1] == "normal_superficiel"

    deeper = cytohub.concat(parts, on="harmonized", depth=2, trees=["bethesda-2014"], missing="unlabel")
    got = _classes(deeper)
    assert len(got) == len(before)
    for (_, c_new, h), (_, c_old, _) in zip(got, before, strict=True):
        assert c_new == (tax.cut(h, 2) if h else None), (c_old, h)
    assert "NILM/squamous" in {c for _, c, _ in got}


def test_align_labels_rename_merges_by_name_and_refuses_a_missing_class(corpora):
    herlev = _load(corpora["herlev"], False)
    merged = cytohub.align_labels(herlev, rename={"moderate_dysplastic": "dysplastic",
                                                  "severe_dysplastic": "dysplastic",
                                                  "light_dysplastic": "dysplastic"})
    assert merged.features["label"].names == ["normal_superficiel", "normal_intermediate", "normal_columnar",
                                              "dysplastic", "carcinoma_in_situ"]
    for (_, new, _), (_, old, _) in zip(_classes(merged), _classes(herlev), strict=True):
        assert new == ("dysplastic" if old.endswith("_dysplastic") else old)
    with pytest.raises(ValueError, match="'carcinoma_in_situ'.*not among the target names"):
        cytohub.align_labels(herlev, ["normal_superficiel", "normal_intermediate", "normal_columnar",
                                      "light_dysplastic", "moderate_dysplastic", "severe_dysplastic"])
    only = cytohub.align_labels(herlev, ["carcinoma_in_situ", "normal_columnar"], missing="drop")
    assert {c for _, c, _ in _classes(only)} == {"carcinoma_in_situ", "normal_columnar"}
    assert len(only) == sum(c in ("carcinoma_in_situ", "normal_columnar") for _, c, _ in _classes(herlev))


def test_align_labels_on_a_dataset_dict_and_bad_input(corpora):
    from datasets import Dataset, load_dataset

    dd = load_dataset(str(corpora["sipakmed"]))
    out = cytohub.align_labels(dd, ["Superficial-Intermediate", "Parabasal", "Metaplastic", "Koilocytotic",
                                    "Dyskeratotic"])
    assert set(out) == set(dd)
    for split in dd:
        assert _classes(out[split]) == _classes(dd[split])
    with pytest.raises(ValueError, match="not a cytohub dataset"):
        cytohub.align_labels(Dataset.from_dict({"label": [0]}))
    with pytest.raises(ValueError, match="pick a split"):
        cytohub.concat([dd, dd])
    with pytest.raises(ValueError, match="distinct"):
        cytohub.align_labels(dd["train"], ["a", "a"])
