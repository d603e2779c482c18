"""`cytohub mix`: the two recipes end to end on small synthetic builds (rows per source, split and class checked
against an independent reading of the source builds and of the taxonomy files), holdout configurations
loaded with `datasets`, leakage refusal, recipe arguments, the row decisions on hand-made tables, split
aliases, the strictest redistribution on push, card regeneration, determinism and validate's mix checks."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from importlib.resources import files
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from cytohub import hub, manifest, registry
from cytohub.cli import app
from cytohub.encode import storage_schema
from cytohub.errors import CytohubError
from cytohub.mix import CODE, Cut, ObjectMap, mix, mix_schema, outcome, transform
from cytohub.taxonomy import load_taxonomy
from helpers import read_rows, report

runner = CliRunner()
CERVICAL = ("hicervix", "sipakmed", "herlev", "cric", "mendeley-lbc", "cccid")
HAEMATOLOGY = ("bone-marrow", "aml-cytomorphology-lmu", "bmcd-fgcd")


# ------------------------------------------------------------------------------------------- independent oracle
def _tree_files() -> dict[str, dict]:
    """Every taxonomy node straight from the JSON files: id -> {"parent", "tree"}."""
    nodes = {}
    for res in files("cytohub").joinpath("data/taxonomy").iterdir():
        if res.name.endswith(".json"):
            tree = json.loads(res.read_text(encoding="utf-8"))
            for n in tree["nodes"]:
                nodes[n["id"]] = {"parent": n["parent"], "tree": tree["id"]}
    return nodes


def _expected_class(node: str | None, tree: str, depth: int, nodes: dict[str, dict]) -> tuple[str | None, str]:
    """(class, "") or (None, reason) for a harmonized node, by walking the JSON parents."""
    if node is None:
        return None, "no-harmonized"
    if nodes[node]["tree"] != tree:
        return None, "other-tree"
    path = [node]
    while nodes[path[0]]["parent"] is not None:
        path.insert(0, nodes[path[0]]["parent"])
    if len(path) >= depth:
        return path[depth - 1], ""
    has_child = any(v["parent"] == node for v in nodes.values())
    return (None, "above-depth") if has_child else (node, "")


def _expected(folders: dict[str, Path], tree: str, depth: int):
    """From the source builds: rows per (source, split, class) (class None for label-less rows kept through their
    objects), objects per (source, split, class) and left-out rows per (source, reason)."""
    nodes = _tree_files()
    rows, objects, left = Counter(), Counter(), Counter()
    for corpus, folder in folders.items():
        obj_nodes = {lab.name: lab.harmonized for lab in registry.get(corpus).object_labels}
        for split in report(folder)["splits"]:
            target = {"val": "validation", "dev": "validation", "valid": "validation"}.get(split, split)
            for r in read_rows(folder, split, columns=["label", "harmonized", "objects"]):
                if r["label"] < 0 and r["harmonized"] is None:
                    if not r["objects"]:
                        left[corpus, "unlabelled"] += 1
                        continue
                    mapped = [_expected_class(obj_nodes.get(o["category"]), tree, depth, nodes)
                              for o in r["objects"]]
                    bad = [reason for c, reason in mapped if c is None]
                    if bad:
                        left[corpus, "object-" + bad[0]] += 1
                        continue
                    rows[corpus, target, None] += 1
                    for c, _ in mapped:
                        objects[corpus, target, c] += 1
                    continue
                cls, reason = _expected_class(r["harmonized"], tree, depth, nodes)
                if cls is None:
                    left[corpus, reason] += 1
                else:
                    rows[corpus, target, cls] += 1
    return rows, objects, left


def _mix_rows(folder: Path) -> list[dict]:
    out = []
    for shard in sorted((folder / "data").glob("*/*.parquet")):
        split = shard.name.split("-")[0]
        for r in pq.read_table(shard, columns=["id", "label", "source", "objects", "label_path",
                                               "harmonized"]).to_pylist():
            out.append({**r, "split": split, "folder": shard.parent.name})
    return out


def _observed(folder: Path):
    classes = report(folder)["mix"]["classes"]
    rows, objects = Counter(), Counter()
    for r in _mix_rows(folder):
        assert r["folder"] == r["source"] and r["id"].startswith(r["source"] + "/")
        rows[r["source"], r["split"], classes[r["label"]] if r["label"] >= 0 else None] += 1
        if r["label"] < 0:
            for o in r["objects"]:
                objects[r["source"], r["split"], o["category"]] += 1
    left = Counter({(s["corpus"], k): n for s in report(folder)["sources"] for k, n in s["left_out"].items()})
    return rows, objects, left


def _run_mix(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["mix", *args, "--quiet"])
    return result.exit_code, result.output.replace("\n", "")


@pytest.fixture(scope="module")
def cervical(built, tmp_path_factory):
    out = tmp_path_factory.mktemp("mix") / "cervical"
    sources = [str(built(c)) for c in CERVICAL]
    # synthetic cells look alike: some images of one source are pHash near duplicates across its own splits, so
    # the recipe is written with --allow-leakage and the card states the counts (checked below)
    code, text = _run_mix("--recipe", "cervical-bethesda", "--from", *sources, "--out", str(out), "--allow-leakage")
    assert code == 0, text
    return out


@pytest.fixture(scope="module")
def haematology(built, tmp_path_factory):
    out = tmp_path_factory.mktemp("mix") / "haematology"
    args = [a for c in HAEMATOLOGY for a in ("--from", str(built(c)))]
    # no near duplicates across splits here: written without --allow-leakage (the audit must pass)
    code, text = _run_mix("--recipe", "haematology-lineage", *args, "--out", str(out))
    assert code == 0, text
    return out


# ------------------------------------------------------------------------------------------- recipes
def test_cervical_recipe_rows_per_source_split_and_class(cervical, built):
    r = report(cervical)
    assert r["kind"] == "mix" and r["mix"]["taxonomy"] == "bethesda-2014" and r["mix"]["depth"] == 1
    assert r["mix"]["classes"] == ["NILM", "ASC", "LSIL", "HSIL", "SCC", "AGC", "Adenocarcinoma"]
    assert [s["corpus"] for s in r["sources"]] == sorted(CERVICAL)
    rows, objects, left = _expected({c: built(c) for c in CERVICAL}, "bethesda-2014", 1)
    assert _observed(cervical) == (rows, objects, left)
    # SIPaKMeD's dyskeratotic cells have no Bethesda node: they are the rows left out, and nothing else is
    assert set(left) == {("sipakmed", "no-harmonized")}
    assert left["sipakmed", "no-harmonized"] == sum(
        1 for x in read_rows(built("sipakmed"), columns=["label_path"]) if x["label_path"][-1] == "Dyskeratotic")
    # CRIC's label-less fields are kept through their objects, whose categories become Bethesda classes
    assert rows["cric", "train", None] > 0 and {c for (s, _, c) in objects if s == "cric"} <= set(r["mix"]["classes"])
    assert r["num_rows"] == sum(rows.values())
    for split, v in r["splits"].items():
        assert v["num_examples"] == sum(n for (_, sp, _), n in rows.items() if sp == split)
    card = (cervical / "README.md").read_text()
    assert "[SYNTHETIC]" in card and "SYNTHETIC DATA" in card and "## Mapping per source" in card
    for c in CERVICAL:  # every source's citation and license
        b = registry.get(c)
        assert b.citation.strip() in card and f"`{c}`" in card
    assert "| `Dyskeratotic` | (none) | left out: no-harmonized |" in card


def test_haematology_recipe_rows_per_source_split_and_class(haematology, built):
    r = report(haematology)
    assert r["mix"]["taxonomy"] == "hematopoiesis" and r["mix"]["depth"] == 2
    assert r["mix"]["classes"] == [
        "heme/progenitor", "heme/immature", "heme/granulocytic", "heme/monocytic", "heme/macrophage",
        "heme/erythroid", "heme/lymphoid", "heme/megakaryocytic", "heme/mast-cell", "heme/smudge-cell",
        "heme/unidentifiable", "heme-artefact"]
    rows, objects, left = _expected({c: built(c) for c in HAEMATOLOGY}, "hematopoiesis", 2)
    assert _observed(haematology) == (rows, objects, left)
    # bone marrow's "other cell" (OTH) is only known to be a marrow cell: above depth 2, left out
    oth = sum(1 for x in read_rows(built("bone-marrow"), columns=["label_path"]) if x["label_path"] == ["Other cell"])
    assert oth > 0 and left == Counter({("bone-marrow", "above-depth"): oth})
    assert not objects
    # BMCD-FGCD keeps its official train/test splits; no source has another split name
    assert set(r["per_source"]["bmcd-fgcd"]) == {"train", "test"}
    assert r["audit"]["audited"] and not any(v["pairs"] or v["groups"] for v in r["audit"]["configs"].values())
    assert "No configuration has a duplicate or a group across its splits." in (haematology / "README.md").read_text()


def test_mixes_validate_and_keep_native_labels(cervical, haematology, built):
    from cytohub.validate import validate

    for folder in (cervical, haematology):
        v = validate(folder)
        assert v.ok, v.problems
    # label_path and harmonized are copied from the source row, id is prefixed
    src = {r["id"]: r for r in read_rows(built("herlev"), columns=["id", "label_path", "harmonized"])}
    mixed = [r for r in _mix_rows(cervical) if r["source"] == "herlev"]
    assert len(mixed) == len(src)
    for r in mixed:
        native = src[r["id"].removeprefix("herlev/")]
        assert (r["label_path"], r["harmonized"]) == (native["label_path"], native["harmonized"])


def test_image_bytes_copied_untouched(cervical, built):
    src = {r["id"]: r["image"]["bytes"] for r in read_rows(built("cccid"), columns=["id", "image"])}
    for shard in (cervical / "data" / "cccid").glob("*.parquet"):
        for r in pq.read_table(shard, columns=["id", "image"]).to_pylist():
            assert r["image"]["bytes"] == src[r["id"].removeprefix("cccid/")]


def test_holdout_configs_load_streaming_and_not(cervical):
    from datasets import load_dataset

    r = report(cervical)
    assert set(r["configs"]) == {"default", *(f"holdout-{c}" for c in CERVICAL)}
    rows = _mix_rows(cervical)
    for config, streaming in (("default", True), ("holdout-cccid", False), ("holdout-cccid", True),
                              ("holdout-hicervix", True)):
        held = config.removeprefix("holdout-")
        dd = load_dataset(str(cervical), config, streaming=streaming)
        assert dd["train"].features["label"].names == r["mix"]["classes"]
        for split in dd:
            got = sorted((x["id"], x["label"], x["source"]) for x in dd[split].select_columns(["id", "label",
                                                                                                 "source"]))
            if config == "default":
                want = [x for x in rows if x["split"] == split]
            elif split == "test":
                want = [x for x in rows if x["source"] == held]
            else:
                want = [x for x in rows if x["source"] != held and x["split"] == split]
            assert got == sorted((x["id"], x["label"], x["source"]) for x in want), (config, split)
            assert got


LOAD_CONFIG = """
import json, os, sys
from datasets import load_dataset
out = {}
for streaming in (False, True):
    dd = load_dataset(sys.argv[1], sys.argv[2], streaming=streaming)
    out[str(streaming)] = {s: sorted([r["id"], r["label"], r["source"]] for r in dd[s].select_columns(
        ["id", "label", "source"])) for s in dd}
print(json.dumps(out))
sys.stdout.flush()
os._exit(0)  # skip the interpreter's teardown: pyarrow's thread pools sometimes abort it (see compat_load.py)
"""


def test_holdout_config_loads_with_every_datasets_version(cervical, tmp_path):
    """`load_dataset(folder, "holdout-cric")` with datasets 3.6, 4.0 and the newest 4.x and 5.x (the minimal
    environments of tests/compat_venvs.py), streaming and not."""
    import os
    import subprocess

    import compat_venvs

    rows = _mix_rows(cervical)
    want = {"train": [x for x in rows if x["source"] != "cric" and x["split"] == "train"],
            "validation": [x for x in rows if x["source"] != "cric" and x["split"] == "validation"],
            "test": [x for x in rows if x["source"] == "cric"]}
    want = {s: sorted([x["id"], x["label"], x["source"]] for x in v) for s, v in want.items()}
    procs = {}
    for version, python in compat_venvs.ensure().items():
        env = {**os.environ, "HF_HOME": str(tmp_path / version), "HF_HUB_OFFLINE": "1",
               "HF_DATASETS_OFFLINE": "1", "PYTHONPATH": ""}
        procs[version] = subprocess.Popen([str(python), "-c", LOAD_CONFIG, str(cervical), "holdout-cric"],
                                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)
    for version, proc in procs.items():
        stdout, stderr = proc.communicate(timeout=600)
        assert proc.returncode == 0, f"datasets {version}:\n{stderr[-3000:]}"
        got = json.loads(stdout)
        assert got == {"False": want, "True": want}, version


def test_card_states_leakage_and_report_has_examples(cervical):
    a = report(cervical)["audit"]
    assert a["audited"] and a["threshold"] == 4
    leaking = {c: v for c, v in a["configs"].items() if v["pairs"] or v["groups"]}
    card = (cervical / "README.md").read_text()
    assert "## Duplicates and leakage" in card
    if leaking:
        assert "--allow-leakage" in card and all(v["examples"] for v in leaking.values() if v["pairs"])
        for c, v in a["configs"].items():
            assert f"| `{c}` | {v['exact']} | {v['near']} | {v['groups']} |" in card


# ------------------------------------------------------------------------------------------- refusals
def test_leakage_refused_and_nothing_written(built, tmp_path):
    out = tmp_path / "leaky"
    # at 63 bits every pair of images is a "near duplicate": pairs fall across splits in every configuration
    code, text = _run_mix("leaky", "--from", str(built("cccid")), str(built("mendeley-lbc")),
                          "--taxonomy", "bethesda-2014", "--out", str(out), "--audit-threshold", "63")
    assert code != 0 and "Traceback" not in text
    assert "leaks across splits" in text and "holdout-cccid" in text and "--allow-leakage" in text
    assert not out.exists() and not list(tmp_path.glob(".leaky.cytohub-*"))


@pytest.mark.parametrize(("args", "needle"), [
    (["--recipe", "cervical-bethesda", "--from", "{bone-marrow}"], "bone-marrow is not one of them"),
    (["--recipe", "cervical-bethesda", "--from", "{cccid}"], "needs build folders of hicervix"),
    (["--recipe", "cervical-bethesda", "--taxonomy", "hematopoiesis", "--from", "{cccid}", "--allow-missing"],
     "fixes --taxonomy bethesda-2014"),
    (["m", "--from", "{cccid}", "--taxonomy", "bethesda"], "did you mean 'bethesda-2014'"),
    (["m", "--from", "{cccid}", "--taxonomy", "bethesda-2014", "--depth", "4"], "depths 1 to 3"),
    (["m", "--from", "{cccid}", "{cccid}", "--taxonomy", "bethesda-2014"], "both builds of cccid"),
    (["m", "--from", "{nothing}", "--taxonomy", "bethesda-2014"], "is not a folder"),
    (["bad name", "--from", "{cccid}", "--taxonomy", "bethesda-2014"], "a Hub repo name"),
    (["m", "--from", "{cccid}"], "--taxonomy TREE is required"),
])
def test_bad_arguments_one_line(built, tmp_path, args, needle):
    paths = {"{cccid}": str(built("cccid")), "{bone-marrow}": str(built("bone-marrow")),
             "{nothing}": str(tmp_path / "nothing")}
    out = tmp_path / "out"
    code, text = _run_mix(*[paths.get(a, a) for a in args], "--out", str(out))
    assert code != 0 and "Traceback" not in text and needle in text, text
    assert not out.exists()


def test_incomplete_recipe_says_so(built, tmp_path):
    out = tmp_path / "partial"
    code, text = _run_mix("--recipe", "haematology-lineage", "--from", str(built("aml-cytomorphology-lmu")),
                          "--out", str(out), "--allow-missing", "--allow-leakage")
    assert code == 0, text
    card = (out / "README.md").read_text()
    assert "**Incomplete recipe.**" in card and "lacks bone-marrow, bmcd-fgcd" in card
    assert list(report(out)["configs"]) == ["default"]  # one source: no holdout


# ------------------------------------------------------------------------------------------- row decisions
def _table(rows: list[dict]) -> pa.Table:
    full = []
    for i, r in enumerate(rows):
        full.append({"id": f"r{i}", "image": None, "focal_stack": [], "z_um": [], "label": r.get("label", -1),
                     "label_path": [], "harmonized": r.get("harmonized"), "objects": r.get("objects", []),
                     "mask": None, "mpp": None, "fov_center_um": None,
                     "group": r.get("group"), "source_path": "x", "extra": None})
    return pa.Table.from_pylist(full, schema=storage_schema(["a", "b"]))


def _obj(cat: str) -> dict:
    return {"category": cat, "bbox": [0.0, 0.0, 2.0, 2.0], "polygon": None, "point": None}


def test_row_decisions_at_depth_two():
    cut = Cut("bethesda-2014", 2)
    cric = ObjectMap(registry.get("cric"), cut)
    t = _table([
        {"label": 0, "harmonized": "NILM/squamous/superficial"},  # -> NILM/squamous
        {"label": 0, "harmonized": "LSIL"},  # a leaf above depth 2: itself
        {"label": 1, "harmonized": "ASC"},  # above depth 2 with children: left out
        {"label": 1, "harmonized": None},  # no harmonized node
        {"label": 1, "harmonized": "heme/erythroid"},  # another tree
        {"objects": [_obj("ASC-US"), _obj("HSIL")], "group": {"patient_id": "P1", "slide_id": None, "fov_id": None}},
        {"objects": [_obj("ASC-US"), _obj("mystery")]},  # one object not declared by the builder
        {},  # no label, no objects
        {"label": 0, "harmonized": "NILM", "objects": [_obj("nucleus")]},  # NILM has children: above depth 2
    ])
    res = outcome(t, cut, cric)
    names = cut.classes
    assert res.keep.tolist() == [True, True, False, False, False, True, False, False, False]
    assert [names[x] if x >= 0 else None for x in res.label[res.keep]] == ["NILM/squamous", "LSIL", None]
    assert res.reason.tolist()[2:5] == [CODE["above-depth"], CODE["no-harmonized"], CODE["other-tree"]]
    assert res.reason.tolist()[6:] == [CODE["object-undeclared"], CODE["unlabelled"], CODE["above-depth"]]
    out = transform(t, res, "cric", cut, mix_schema(names))
    rows = out.to_pylist()
    assert [r["id"] for r in rows] == ["cric/r0", "cric/r1", "cric/r5"]
    assert {r["source"] for r in rows} == {"cric"}
    assert [o["category"] for o in rows[2]["objects"]] == ["ASC-US", "HSIL"]  # depth 2: ASC-US, HSIL (a leaf)
    assert rows[2]["objects"][0]["bbox"] == [0.0, 0.0, 2.0, 2.0]
    assert rows[2]["group"] == {"patient_id": "cric/P1", "slide_id": None, "fov_id": None}
    assert rows[0]["group"] is None


def test_objects_of_labelled_rows_keep_their_categories():
    cut = Cut("bethesda-2014", 1)
    t = _table([{"label": 0, "harmonized": "NILM/squamous", "objects": [_obj("nucleus"), _obj("cytoplasm")]},
                {"objects": [_obj("ASC-H")]}])
    res = outcome(t, cut, ObjectMap(registry.get("cric"), cut))
    rows = transform(t, res, "x", cut, mix_schema(cut.classes)).to_pylist()
    assert [o["category"] for o in rows[0]["objects"]] == ["nucleus", "cytoplasm"] and rows[0]["label"] == 0
    assert [o["category"] for o in rows[1]["objects"]] == ["ASC"] and rows[1]["label"] == -1
    # the corpus's own categories stay in the row (`extra`), one per object; labelled rows' extra is untouched
    assert json.loads(rows[1]["extra"]) == {"source_object_categories": ["ASC-H"]} and rows[0]["extra"] is None


def test_source_object_categories_join_an_existing_extra():
    cut = Cut("bethesda-2014", 1)
    t = _table([{"objects": [_obj("ASC-US"), _obj("HSIL")]}, {"objects": [_obj("LSIL")]}])
    t = t.set_column(t.schema.get_field_index("extra"), "extra",
                     pa.array(['{"crowd_objects": []}', None], t.schema.field("extra").type))
    res = outcome(t, cut, ObjectMap(registry.get("cric"), cut))
    rows = transform(t, res, "x", cut, mix_schema(cut.classes)).to_pylist()
    assert [o["category"] for o in rows[0]["objects"]] == ["ASC", "HSIL"]
    assert json.loads(rows[0]["extra"]) == {"crowd_objects": [], "source_object_categories": ["ASC-US", "HSIL"]}
    assert json.loads(rows[1]["extra"]) == {"source_object_categories": ["LSIL"]}


def test_taxonomy_cut():
    tax = load_taxonomy()
    assert tax.at_depth("NILM/squamous/superficial", 1) == "NILM"
    assert tax.at_depth("NILM/squamous/superficial", 2) == "NILM/squamous"
    assert tax.at_depth("LSIL", 3) == "LSIL" and tax.at_depth("ASC", 2) is None
    assert tax.classes_at_depth("bethesda-2014", 2)[:4] == ["NILM/squamous", "NILM/glandular", "NILM/reactive",
                                                            "NILM/atrophy"]
    assert "ASC" not in tax.classes_at_depth("bethesda-2014", 2) and "LSIL" in tax.classes_at_depth("bethesda-2014", 2)
    assert tax.max_depth("bethesda-2014") == 3 and tax.max_depth("breast-yokohama-2020") == 1
    with pytest.raises(ValueError):
        tax.at_depth("NILM", 0)


# ------------------------------------------------------------------------------------------- folders
def test_split_alias_and_card_regeneration_and_determinism(built, tmp_path):
    src = tmp_path / "mendeley"
    shutil.copytree(built("mendeley-lbc"), src)
    rep = report(src)
    # rename the build's validation split to `val`, as some releases name it
    rep["splits"]["val"] = rep["splits"].pop("validation")
    rep["splits"]["val"]["shards"] = []
    for p in sorted((src / "data").glob("validation-*.parquet")):
        new = p.name.replace("validation-", "val-")
        p.rename(p.with_name(new))
        rep["splits"]["val"]["shards"].append(new)
    rep["manifest"] = manifest.compute(src)  # the renamed build, recorded as its own
    (src / "build-report.json").write_text(json.dumps(rep))
    outs = []
    for k in (1, 2):
        out = tmp_path / f"m{k}"
        r = mix("lbc", [src], out, taxonomy="bethesda-2014", allow_leakage=True).report
        outs.append(out)
    assert r["sources"][0]["source_splits"] == {"train": "train", "test": "test", "val": "validation"}
    assert (outs[0] / "data" / "mendeley-lbc" / "validation-00000-of-00001.parquet").is_file()
    assert "`mendeley-lbc` split `val` -> `validation`" in (outs[0] / "README.md").read_text()
    for a in sorted((outs[0] / "data").rglob("*.parquet")):  # same sources -> byte-identical shards
        assert a.read_bytes() == (outs[1] / a.relative_to(outs[0])).read_bytes()
    card = (outs[0] / "README.md").read_text()
    (outs[0] / "README.md").write_text("stale")
    assert runner.invoke(app, ["card", str(outs[0]), "--quiet"]).exit_code == 0
    assert (outs[0] / "README.md").read_text() == card


def test_validate_catches_a_row_in_the_wrong_source_folder(cervical, tmp_path):
    from cytohub.validate import validate

    folder = tmp_path / "copy"
    shutil.copytree(cervical, folder)
    shard = sorted((folder / "data" / "cccid").glob("test-*.parquet"))[0]
    t = pq.read_table(shard)
    t = t.set_column(t.schema.get_field_index("source"), "source", pa.array(["herlev"] * t.num_rows))
    pq.write_table(t, shard)
    v = validate(folder)
    assert not v.ok and any("source 'herlev' in the folder of 'cccid'" in p for p in v.problems)


def test_mixing_a_mix_is_refused(cervical, tmp_path):
    with pytest.raises(CytohubError, match="is itself a mix"):
        mix("again", [cervical], tmp_path / "again", taxonomy="bethesda-2014")


# ------------------------------------------------------------------------------------------- redistribution
def test_strictest_redistribution(cervical, haematology):
    # hicervix and sipakmed are gated, herlev forbidden; bmcd-fgcd forbidden
    assert hub.redistribution(report(cervical)) == ("forbidden", ["herlev"])
    assert hub.redistribution(report(haematology)) == ("forbidden", ["bmcd-fgcd"])
    assert report(cervical)["redistribution"] == "forbidden"
    assert hub.redistribution({"builder": {"name": "cccid"}}) == ("allowed", ["cccid"])
    mixed = {"kind": "mix", "sources": [{"corpus": "cccid", "redistribution": "allowed"},
                                        {"corpus": "sipakmed", "redistribution": "gated"},
                                        {"corpus": "not-a-corpus", "redistribution": "gated"}]}
    assert hub.redistribution(mixed) == ("gated", ["not-a-corpus", "sipakmed"])


def test_push_of_a_mix_follows_its_strictest_source(cervical, hub_server, hub_repo_id):
    from huggingface_hub import HfApi

    code = runner.invoke(app, ["push", str(cervical), "--repo", hub_repo_id, "--allow-synthetic"])
    assert code.exit_code == 2 and "herlev" in code.output and "--private" in code.output
    result = runner.invoke(app, ["push", str(cervical), "--repo", hub_repo_id, "--allow-synthetic", "--private"])
    assert result.exit_code == 0, result.output
    assert HfApi().repo_info(hub_repo_id, repo_type="dataset").private is True
    remote = set(HfApi().list_repo_files(hub_repo_id, repo_type="dataset"))
    assert "LICENSE.md" in remote and "data/cccid/train-00000-of-00001.parquet" in remote
    # exactly the mix's manifest, its report, and the Hub's own .gitattributes
    assert remote == {e["path"] for e in report(cervical)["manifest"]} | {"build-report.json", ".gitattributes"}
    assert f'load_dataset("{hub_repo_id}", "holdout-' in hub_server.files(hub_repo_id)["README.md"].decode()


def test_gated_mix_is_pushed_behind_the_gate(built, tmp_path, hub_server, hub_repo_id):
    out = tmp_path / "gated"
    code, text = _run_mix("gated", "--from", str(built("sipakmed")), str(built("cccid")), "--taxonomy",
                          "bethesda-2014", "--out", str(out), "--allow-leakage")
    assert code == 0, text
    assert hub.redistribution(report(out)) == ("gated", ["sipakmed"])
    assert "extra_gated_prompt" in (out / "README.md").read_text()
    result = runner.invoke(app, ["push", str(out), "--repo", hub_repo_id, "--allow-synthetic"])
    assert result.exit_code == 0, result.output
    assert any(m == "PUT" and p.endswith(f"{hub_repo_id}/settings") for m, p in hub_server.requests)


# ------------------------------------------------------------------------------------------- a mix is a build
def _copy(folder: Path, tmp_path: Path, name: str = "copy") -> Path:
    out = tmp_path / name
    shutil.copytree(folder, out)
    return out


def test_manifest_lists_every_file_and_validate_full(haematology):
    from cytohub.validate import validate

    r = report(haematology)
    listed = {e["path"]: e for e in r["manifest"]}
    on_disk = {p.relative_to(haematology).as_posix() for p in haematology.rglob("*") if p.is_file()}
    assert set(listed) == on_disk - {"build-report.json"}
    assert {"README.md", "croissant.json", "LICENSE.md", "assets/samples.png"} <= set(listed)
    assert {p for p in listed if p.startswith("data/")} == {
        f"data/{s}" for v in r["splits"].values() for s in v["shards"]}
    assert all(listed[p]["sha256"] == manifest.sha256_file(haematology / p) for p in listed)
    v = validate(haematology, full=True)
    assert v.ok, v.problems
    assert v.rows_decoded == r["num_rows"] and set(v.hashes) == set(listed)
    # the shards carry the build's cytohub metadata: the mix's name, synthetic
    md = pq.read_schema(haematology / "data" / "bone-marrow" / "train-00000-of-00001.parquet").metadata
    assert json.loads(md[b"cytohub"]) == {"builder": "haematology-lineage", "synthetic": True}


def test_validate_and_push_refuse_a_changed_mix(haematology, tmp_path, hub_repo_id):
    from cytohub.validate import validate

    folder = _copy(haematology, tmp_path)
    shard = folder / "data" / "bmcd-fgcd" / "test-00000-of-00001.parquet"
    data = bytearray(shard.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, other bytes
    shard.write_bytes(bytes(data))
    (folder / "notes.txt").write_text("not part of the mix")
    v = validate(folder)
    assert any("changed since the build" in p and "data/bmcd-fgcd/test-00000-of-00001.parquet" in p
               for p in v.problems), v.problems
    assert any("not written by the build" in p and "notes.txt" in p for p in v.problems)
    result = runner.invoke(app, ["push", str(folder), "--repo", hub_repo_id, "--allow-synthetic", "--private"])
    assert result.exit_code != 0 and "notes.txt" in result.output and "Traceback" not in result.output


def test_croissant_of_a_mix_validates_and_reads_every_row(haematology):
    mlc = pytest.importorskip("mlcroissant")
    r = report(haematology)
    doc = json.loads((haematology / "croissant.json").read_text())
    ds = mlc.Dataset(jsonld=str(haematology / "croissant.json"))
    assert not ds.metadata.ctx.issues.errors, ds.metadata.ctx.issues.report()
    seen = Counter()
    ids = {x["id"]: (x["source"], x["split"], x["label"]) for x in _mix_rows(haematology)}
    for rec in ds.records(record_set="default"):
        rid, source, split = (rec[f"default/{k}"].decode() for k in ("id", "source", "split"))
        assert ids[rid] == (source, split, rec["default/label"])
        seen[source, split] += 1
    assert seen == Counter({(c, sp): n for sp, v in r["splits"].items() for c, n in v["sources"].items()})
    names = [(x["label_names/index"], x["label_names/name"]) for x in ds.records(record_set="label_names")]
    names = [(i, n.decode() if isinstance(n, bytes) else n) for i, n in names]
    assert names == list(enumerate(r["mix"]["classes"]))
    assert doc["distribution"][0]["includes"] == "data/*/*.parquet"
    assert all(registry.get(c).citation.strip() in doc["citeAs"] for c in HAEMATOLOGY)
    assert isinstance(doc["license"], list) and len(doc["license"]) == len({s["license"] for s in r["sources"]})
    assert "holdout-bmcd-fgcd" in doc["description"] and doc["description"].startswith("SYNTHETIC DATA")
    assert any(x.startswith("bmcd-fgcd: Consent:") for x in doc["rai:personalSensitiveInformation"])
    assert "depth 2 of `hematopoiesis`" in doc["rai:dataPreprocessingProtocol"][0]


def test_card_regeneration_records_the_files_in_the_manifest(haematology, tmp_path):
    from cytohub.validate import validate

    folder = _copy(haematology, tmp_path)
    before = {p: (folder / p).read_bytes() for p in ("README.md", "croissant.json", "LICENSE.md")}
    (folder / "README.md").write_text("stale")
    (folder / "croissant.json").unlink()
    assert runner.invoke(app, ["card", str(folder), "--quiet"]).exit_code == 0
    assert {p: (folder / p).read_bytes() for p in before} == before
    assert report(folder)["manifest"] == report(haematology)["manifest"]
    assert validate(folder).ok


def test_validate_checks_each_configuration_against_the_shards(haematology, tmp_path):
    from cytohub.mix import card_files
    from cytohub.validate import validate

    folder = _copy(haematology, tmp_path)
    r = report(folder)
    # holdout-bmcd-fgcd claims bmcd-fgcd's train split for training too: card and report agree, the rule does not
    r["configs"]["holdout-bmcd-fgcd"]["train"]["data_files"].append("data/bmcd-fgcd/train-*.parquet")
    manifest.rewrite(folder, r, card_files(r))
    v = validate(folder)
    assert any("config 'holdout-bmcd-fgcd' split 'train': its data_files select" in p
               and "data/bmcd-fgcd/train-00000-of-00001.parquet" in p for p in v.problems), v.problems
    assert any("config 'holdout-bmcd-fgcd' split 'train':" in p and "rows in its shards" in p for p in v.problems)


def test_validate_loads_each_holdout_configuration(haematology, tmp_path, monkeypatch):
    from cytohub import mix as mix_module
    from cytohub.validate import validate

    calls = []
    real = mix_module.ValidateHook.load_problems

    def spy(folder, firsts, path=None):
        calls.append(firsts)
        return real(folder, firsts, path)

    monkeypatch.setattr(mix_module.ValidateHook, "load_problems", staticmethod(spy))
    assert validate(haematology).ok
    firsts = calls[0]
    assert set(firsts) == {f"holdout-{c}" for c in HAEMATOLOGY}
    # the first row `datasets` reads of holdout-bone-marrow's test split is bone marrow's first test row
    first = pq.read_table(haematology / "data" / "bone-marrow" / "test-00000-of-00001.parquet", columns=["id"])
    assert firsts["holdout-bone-marrow"]["test"] == first.column("id")[0].as_py()
    # a wrong expectation is reported, so the load check can fail
    assert real(haematology, {"holdout-bmcd-fgcd": {"test": "bmcd-fgcd/nope"}}) == [
        f"{haematology}: config 'holdout-bmcd-fgcd' split 'test' starts with "
        f"{firsts['holdout-bmcd-fgcd']['test']!r}, not 'bmcd-fgcd/nope'"]


def test_a_source_that_is_not_its_build_is_refused(built, tmp_path):
    src = _copy(built("cccid"), tmp_path, "cccid")
    shard = sorted((src / "data").glob("*.parquet"))[0]
    data = bytearray(shard.read_bytes())
    data[len(data) // 2] ^= 0xFF
    shard.write_bytes(bytes(data))
    out = tmp_path / "m"
    code, text = _run_mix("m", "--from", str(src), "--taxonomy", "bethesda-2014", "--out", str(out))
    assert code != 0 and "Traceback" not in text
    assert f"{shard.name} changed since its build (sha256 differs from the manifest" in text
    assert not out.exists() and not list(tmp_path.glob(".m.cytohub-*"))
    # a build without a manifest (an older cytohub) is refused before anything is read
    old = _copy(built("herlev"), tmp_path, "herlev")
    r = report(old)
    del r["manifest"]
    (old / "build-report.json").write_text(json.dumps(r))
    code, text = _run_mix("m", "--from", str(old), "--taxonomy", "bethesda-2014", "--out", str(out))
    assert code != 0 and "has no manifest" in text and "rebuild" in text and not out.exists()


def test_a_partial_source_makes_a_partial_mix(built, tmp_path):
    from cytohub.validate import validate

    src = _copy(built("cccid"), tmp_path, "cccid")
    r = report(src)
    r["completeness"] = {**r["completeness"], "partial": "3 of 5 files", "complete": False}
    (src / "build-report.json").write_text(json.dumps(r))  # the report is not in its own manifest
    out = tmp_path / "m"
    result = mix("m", [src, built("mendeley-lbc")], out, taxonomy="bethesda-2014", allow_leakage=True)
    assert result.report["completeness"]["partial"] == "cccid 3 of 5 files"
    card = (out / "README.md").read_text()
    assert "(partial: cccid 3 of 5 files)" in card.split("\n# ", 1)[1].splitlines()[0]
    assert "**Partial build: cccid 3 of 5 files.**" in card and "| `cccid` | partial: 3 of 5 files |" in card
    v = validate(out)
    assert v.ok, v.problems


def test_synthetic_and_real_sources_are_not_mixed(built, tmp_path):
    src = _copy(built("herlev"), tmp_path, "herlev")
    r = report(src)
    r.update(synthetic=False, synthetic_marker=None)  # as a build of the real download would say
    (src / "build-report.json").write_text(json.dumps(r))
    code, text = _run_mix("m", "--from", str(src), str(built("cccid")), "--taxonomy", "bethesda-2014",
                          "--out", str(tmp_path / "m"))
    assert code != 0 and "cccid built from synthetic raw data and herlev from real data" in text
    assert not (tmp_path / "m").exists()


def test_overwrite_replaces_only_a_build_folder(built, tmp_path):
    out = tmp_path / "m"
    sources = [built("cccid"), built("mendeley-lbc")]
    mix("m", sources, out, taxonomy="bethesda-2014", allow_leakage=True)
    first = report(out)["manifest"]
    with pytest.raises(CytohubError, match="already exists; pass --overwrite"):
        mix("m", sources, out, taxonomy="bethesda-2014", allow_leakage=True)
    mix("m", sources, out, taxonomy="bethesda-2014", allow_leakage=True, overwrite=True)
    assert report(out)["manifest"] == first  # same sources, same bytes
    (out / "notes.txt").write_text("mine")
    with pytest.raises(CytohubError, match="notes.txt"):
        mix("m", sources, out, taxonomy="bethesda-2014", allow_leakage=True, overwrite=True)
    assert (out / "notes.txt").read_text() == "mine"


def test_card_dataset_info_is_what_datasets_writes(haematology):
    from datasets import DatasetInfo, SplitDict, SplitInfo
    from huggingface_hub import DatasetCard

    from cytohub.mix import mix_features
    from cytohub.mixcard import dataset_infos

    r = report(haematology)
    ours = dataset_infos(r)
    assert [i["config_name"] for i in ours] == list(r["configs"])
    for info, (name, cfg) in zip(ours, r["configs"].items(), strict=True):
        split_dict = SplitDict()
        for split, v in cfg.items():
            split_dict.add(SplitInfo(name=split, num_bytes=v["num_bytes"], num_examples=v["num_examples"]))
        expected = DatasetInfo(features=mix_features(r["mix"]["classes"]), splits=split_dict,
                               download_size=sum(v["parquet_bytes"] for v in cfg.values()),
                               dataset_size=sum(v["num_bytes"] for v in cfg.values()))._to_yaml_dict()
        assert json.dumps(info) == json.dumps({"config_name": name, **expected})  # same keys, order, values
    text = (haematology / "README.md").read_text()
    assert str(DatasetCard(text)) == text and "&id" not in text  # as the Hub client writes it; no YAML anchors


def test_a_source_without_a_mapped_row_is_refused(built, tmp_path):
    # bone-marrow's classes are nodes of the hematopoiesis tree: on Bethesda none of its rows has a class, and a
    # mix naming, citing and licensing it would hold none of it
    out = tmp_path / "m"
    code, text = _run_mix("m", "--from", str(built("cccid")), str(built("bone-marrow")), "--taxonomy",
                          "bethesda-2014", "--out", str(out), "--allow-leakage")
    n = sum(pq.ParquetFile(p).metadata.num_rows for p in (built("bone-marrow") / "data").glob("*.parquet"))
    assert code != 0 and "Traceback" not in text
    assert f"no row of bone-marrow maps to a class of bethesda-2014 at depth 1 ({n:,} other-tree)" in text, text
    assert "leave it out of --from" in text and not out.exists() and not list(tmp_path.glob(".m.cytohub-*"))


def test_arguments_are_checked_before_the_destination(built, tmp_path):
    out = tmp_path / "m"
    out.mkdir()
    (out / "mine.txt").write_text("mine")
    for args, needle in ((["--taxonomy", "bethesda-2014", "--depth", "0"], "depths 1 to 3"),
                         (["--taxonomy", "nope"], "is not a taxonomy tree"),
                         (["--taxonomy", "bethesda-2014", "--audit-threshold", "64"], "expected 0..63")):
        code, text = _run_mix("m", "--from", str(built("cccid")), *args, "--out", str(out))
        assert code != 0 and needle in text and "already exists" not in text, text
    assert (out / "mine.txt").read_text() == "mine"
    # --out inside a source, or around it, names the source build (not raw data)
    src = _copy(built("herlev"), tmp_path, "herlev")
    for dest, needle in ((src / "mixed", "is inside the source build"), (src, "is inside the source build"),
                         (tmp_path, "contains the source build")):
        code, text = _run_mix("m", "--from", str(src), "--taxonomy", "bethesda-2014", "--out", str(dest),
                              "--overwrite")
        assert code != 0 and needle in text and "raw data" not in text, text
    assert manifest.verify(src, report(src)["manifest"]).ok


def test_summary_line_prints_the_destination_as_given(built, tmp_path):
    out = tmp_path / "mix [x] é"  # brackets are console markup unless escaped
    result = runner.invoke(app, ["mix", "m", "--from", str(built("cccid")), "--taxonomy", "bethesda-2014",
                                 "--out", str(out), "--allow-leakage"])
    text = "".join(result.output.split())  # the console wraps lines at spaces
    assert result.exit_code == 0, result.output
    assert "".join(f"-> {out}".split()) in text and "1configuration," in text, result.output
    assert (out / "README.md").is_file()


def test_readme_recipe_table_names_the_classes_of_each_recipe():
    from cytohub.mix import RECIPES

    readme = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    for rec in RECIPES.values():
        row = next(line for line in readme.splitlines() if line.startswith(f"| `{rec.name}` |"))
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert cells[1] == f"`{rec.tree}`, {rec.depth}", row
        listed = [c.strip() for c in cells[2].split(" (")[0].split(",")]
        assert listed == Cut(rec.tree, rec.depth).classes, row
        assert [c.strip() for c in cells[3].split(",")] == list(rec.corpora), row
