"""The dataset card of a mix (README.md), its croissant.json and, when its sources' licenses differ, its
LICENSE.md.

Everything comes from the mix's build report (`cytohub.mix`), so `cytohub card DIR` regenerates them without
mixing again. The card gives: the configurations and how to load them, rows per source, split and class, the
mapping table of every source (native class -> harmonized node -> class of the mix, or why the rows were left
out), each source's completeness, the duplicate audit, every source's citation, license and attribution, and
provenance. croissant.json describes the shards of every source as one Croissant 1.0 record set with `source`
and `split` fields (see `mix_croissant`).
"""

from __future__ import annotations

import json
import re
from types import SimpleNamespace
from typing import Any

from huggingface_hub.repocard_data import DatasetCardData  # not `huggingface_hub.DatasetCard` (its Hub client)

from cytohub.card import DISCLAIMER, SYNTHETIC_TAG, _figures, _table, features_yaml, repo_placeholder, size_category
from cytohub.mix import HOLDOUT_PREFIX, LICENSE_FILE, REASONS, SOURCE_COLUMN, TRAINING_SPLITS, mix_schema
from cytohub.schema import FIELDS

MULTIPLE_LICENSES = "multiple-licenses"  # the card's license_name when the sources' licenses differ
MEANING = {  # the schema table's meanings that differ in a mix (formatted with the report's "mix" entry)
    "id": "unique within the mix: `<source>/` followed by the row's id in its corpus",
    "label": "the row's `harmonized` node cut at depth {depth} of `{taxonomy}`; -1 for rows without an image "
             "label (kept through their objects)",
    "group": "the source's provenance units (patient, slide, field of view), each prefixed with `<source>/`",
}


def _license_text(s: dict[str, Any]) -> str:
    if s["license"] == "other":
        return f"{s['license_name']} ({s['license_link']})"
    return s["license"]


def _licenses(report: dict[str, Any]) -> list[str]:
    return sorted({_license_text(s) for s in report["sources"]})


def license_yaml(report: dict[str, Any]) -> dict[str, Any]:
    """`license` (and `license_name`, `license_link`) for the card's YAML: the sources' license when they
    share one; else `other`, named `multiple-licenses`, linking LICENSE.md (each source's terms)."""
    srcs = report["sources"]
    if len(_licenses(report)) == 1:
        s = srcs[0]
        if s["license"] == "other":
            return {"license": "other", "license_name": s["license_id"], "license_link": s["license_link"]}
        return {"license": s["license"]}
    return {"license": "other", "license_name": MULTIPLE_LICENSES, "license_link": LICENSE_FILE}


def license_file(report: dict[str, Any]) -> str | None:
    """LICENSE.md of a mix whose sources' licenses differ (None when they share one)."""
    if len(_licenses(report)) == 1:
        return None
    lines = [f"# Licenses of {report['mix']['name']}", "",
             "This dataset mixes rows of several corpora. Each row keeps the license of its corpus (the `source` "
             "column names it); nothing here adds rights. Redistribution follows the strictest source: "
             f"**{report['redistribution']}**.", ""]
    for s in report["sources"]:
        lines += [f"## {s['pretty_name']} (`{s['corpus']}`)", "", f"- License: {_license_text(s)}",
                  f"- Redistribution: {s['redistribution']}", f"- Homepage: {s['homepage']}"]
        if s.get("attribution"):
            lines.append(f"- Attribution: {s['attribution']}")
        lines.append("")
    lines += ["Not for clinical use.", ""]
    return "\n".join(lines)


def dataset_infos(report: dict[str, Any]) -> list[dict[str, Any]]:
    """The card's `dataset_info`, one entry per configuration (`config_name`, then features, splits, download
    and dataset sizes as `datasets.DatasetInfo._to_yaml_dict()` gives them), without importing `datasets`: the
    features come from the shards' own Arrow schema metadata (`mix_schema`, via `cytohub.card.features_yaml`);
    the test suite checks that both give the same dict."""
    features = json.loads(mix_schema(report["mix"]["classes"]).metadata[b"huggingface"])["info"]["features"]
    out = []
    for name, cfg in report["configs"].items():
        # as `push_to_hub` reports them: download_size = the Parquet files, dataset_size = the Arrow table bytes
        out.append({"config_name": name, "features": features_yaml(features),  # one copy each: no YAML anchors
                    "splits": [{"name": split, "num_bytes": v["num_bytes"], "num_examples": v["num_examples"]}
                               for split, v in cfg.items()],
                    "download_size": sum(v["parquet_bytes"] for v in cfg.values()),
                    "dataset_size": sum(v["num_bytes"] for v in cfg.values())})
    return out


def _config_yaml(report: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for name, cfg in report["configs"].items():
        files = [{"split": split, "path": v["data_files"] if len(v["data_files"]) > 1 else v["data_files"][0]}
                 for split, v in cfg.items()]
        out.append({"config_name": name, **({"default": True} if name == "default" else {}), "data_files": files})
    return out


def _title(report: dict[str, Any]) -> str:
    m = report["mix"]
    base = m["title"] or f"{m['name']}: {m['taxonomy_title']}, depth {m['depth']}"
    partial = (report.get("completeness") or {}).get("partial")
    return ("[SYNTHETIC] " if report["synthetic"] else "") + base + (f" (partial: {partial})" if partial else "")


def card_data(report: dict[str, Any]) -> DatasetCardData:
    m = report["mix"]
    tasks = ["image-classification"]
    if any(s["objects"] for s in report["splits"].values()):
        tasks.append("object-detection")
    extra: dict[str, Any] = {}
    if report["redistribution"] == "gated":
        terms = "; ".join(f"{s['pretty_name']}: {_license_text(s)}" for s in report["sources"])
        extra.update(
            extra_gated_prompt=f"This mix holds corpora distributed under their own terms ({terms}). Access is "
                               "granted to users who agree to every one of them.",
            extra_gated_fields={"Name": "text", "Affiliation": "text",
                                "I agree to use this dataset only under the license of each of its corpora and not "
                                "for clinical use": "checkbox"})
    return DatasetCardData(
        pretty_name=_title(report),
        **license_yaml(report),
        task_categories=tasks,
        tags=["cytohub", "cytohub-mix", "cytology", "medical", "benchmark", m["taxonomy"]]
        + ([SYNTHETIC_TAG] if report["synthetic"] else []),
        size_categories=[size_category(report["num_rows"])],
        source_datasets=[f"extended|{s['homepage']}" for s in report["sources"] if s["homepage"]] or None,
        configs=_config_yaml(report),
        dataset_info=dataset_infos(report),
        **extra,
    )


def render_card(report: dict[str, Any]) -> str:
    data = card_data(report)
    body = "\n\n".join(part for part in _body(report) if part)
    # the text `huggingface_hub.DatasetCard` would write back (a test checks it)
    return f"---\n{data.to_yaml()}\n---\n\n{body}\n"


def _body(r: dict[str, Any]):
    m = r["mix"]
    srcs = r["sources"]
    classes = m["classes"]
    splits = list(r["splits"])
    names = ", ".join(f"{s['pretty_name']} (`{s['corpus']}`)" for s in srcs)
    yield f"# {_title(r)}"
    if r["synthetic"]:
        synth = ", ".join(s["corpus"] for s in srcs if s["synthetic"])
        yield ("> **SYNTHETIC DATA.** This mix was made by `cytohub` from builds of *synthetic* raw data ("
               f"{synth}) that reproduce the published layouts with drawn, cell-like pixels. It contains **no real "
               "images** and no real labels: use it to test pipelines, not to train or evaluate models.")
    recipe = f" It follows the recipe `{m['recipe']}`." if m["recipe"] else ""
    yield (f"A cytohub mix of {len(srcs)} corpora ({names}), labelled on *{m['taxonomy_title']}* "
           f"(cytohub taxonomy tree `{m['taxonomy']}`, version {m['taxonomy_version']}) cut at depth {m['depth']}: "
           f"{len(classes)} classes.{recipe}")
    if m["description"]:
        yield m["description"]
    if m["recipe_corpora"]:
        missing = [c for c in m["recipe_corpora"] if c not in {s["corpus"] for s in srcs}]
        if missing:
            yield (f"> **Incomplete recipe.** The recipe `{m['recipe']}` is made of {', '.join(m['recipe_corpora'])}; "
                   f"this mix lacks {', '.join(missing)}. Results on it are not comparable with the full recipe.")
    left = sum(sum(s["left_out"].values()) for s in srcs)
    facts = [["Taxonomy", f"`{m['taxonomy']}` ({m['taxonomy_title']}), depth {m['depth']}"],
             ["Classes (`label`)", ", ".join(f"`{c}`" for c in classes)],
             ["Sources (`source`)", ", ".join(f"`{s['corpus']}`" for s in srcs)],
             ["Rows", f"{r['num_rows']:,}"], ["Rows left out (no honest class)", f"{left:,}"],
             ["Configurations", ", ".join(f"`{c}`" for c in r["configs"])],
             ["Licenses", "; ".join(sorted({_license_text(s) for s in srcs}))],
             ["Redistribution (strictest source)", r["redistribution"]]]
    yield "## Quick facts\n\n" + _table(["", ""], facts)

    holdout = next((c for c in r["configs"] if c.startswith(HOLDOUT_PREFIX)), None)
    code = ("```python\nfrom datasets import load_dataset\n\n"
            f'ds = load_dataset({repo_placeholder(m["name"])}, split="{splits[0]}", streaming=True)  '
            "# every source; or a local folder\nrow = next(iter(ds))\n"
            'ds.features["label"].int2str(row["label"]), row["source"], row["label_path"], row["harmonized"]\n')
    if holdout:
        code += (f'\n# leave one corpus out: train/validation from the others, test = all of '
                 f'{holdout[len(HOLDOUT_PREFIX):]}\n'
                 f'dd = load_dataset({repo_placeholder(m["name"])}, "{holdout}")\n')
    code += "```"
    yield "## How to load\n\n" + code

    rows = []
    for c, cfg in r["configs"].items():
        for split, v in cfg.items():
            rows.append([f"`{c}`", split, v["num_examples"], ", ".join(f"`{f}`" for f in v["data_files"])])
    yield ("## Configurations\n\n`default` holds every source with its own splits. Each `holdout-<source>` "
           f"leaves one corpus out: its `train` and `validation` come from the other sources' "
           f"{' and '.join(TRAINING_SPLITS)} splits, its `test` is every row of the held-out corpus, whatever its "
           "split (the other sources' test splits are not used). A holdout is made for each source when at least "
           "one other source has a train split.\n\n" + _table(["config", "split", "rows", "data files"], rows))

    aliases = [(s["corpus"], a, b) for s in srcs for a, b in s["source_splits"].items() if a != b]
    note = ("Renamed: " + "; ".join(f"`{c}` split `{a}` -> `{b}`" for c, a, b in aliases) + ". ") if aliases else ""
    rows = []
    for s in srcs:
        for a, b in s["source_splits"].items():
            rows.append([f"`{s['corpus']}`", a, b, s["read"].get(a, 0), s["kept"].get(a, 0)])
    yield ("## Splits\n\nEach source keeps its own splits (official, or as its build made them: see each source's "
           "card); split names `val`, `valid` and `dev` become `validation`. " + note + "\n\n"
           + _table(["source", "source split", "split here", "rows read", "rows kept"], rows))

    labelled = any(v["labels"] for v in r["splits"].values())
    if labelled:
        table = []
        for i, c in enumerate(classes):
            counts = [r["splits"][s]["labels"].get(c, 0) for s in splits]
            table.append([f"{i}: `{c}`", m["class_titles"][c], *counts, sum(counts)])
        none = [r["splits"][s]["num_examples"] - sum(r["splits"][s]["labels"].values()) for s in splits]
        if sum(none):
            table.append(["-1: (no label)", "rows kept through their objects", *none, sum(none)])
        yield ("## Classes\n\n`label` = the row's `harmonized` node cut at depth "
               f"{m['depth']} of `{m['taxonomy']}` (the nodes at that depth, and leaves above it). Rows per class "
               "and split:\n\n" + _table(["class (`label`)", "name", *splits, "total"], table))
    if any(v["objects"] for v in r["splits"].values()):
        table = [[f"`{c}`", *[r["splits"][s]["objects"].get(c, 0) for s in splits]] for c in classes
                 if any(r["splits"][s]["objects"].get(c) for s in splits)]
        yield ("## Objects of rows without an image label\n\nRows of detection corpora have no image label "
               "(`label` -1); they are kept when every object maps, and each object's `category` is then its "
               "category's harmonized node cut at the same depth (a class of this mix); the corpus's own "
               "categories stay in `extra` (`source_object_categories`, one per object). Objects per class:\n\n"
               + _table(["category", *splits], table))

    table = []
    for s in srcs:
        for split in splits:
            n = r["splits"][split]["sources"].get(s["corpus"])
            if not n:
                continue
            counts = [_per_source_class(r, s["corpus"], split, c) for c in classes]
            table.append([f"`{s['corpus']}`", split, *counts, n])
    yield ("## Rows per source, split and class\n\nRows with an image label, per class (rows kept through their "
           "objects count in the total only).\n\n" + _table(["source", "split", *[f"`{c}`" for c in classes],
                                                              "rows"], table))

    parts = ["## Mapping per source\n\nHow each source's classes reach the classes of this mix: native class "
             "(`label_path` keeps the source's hierarchy) -> harmonized node (`harmonized`) -> class here, or why "
             "its rows were left out. Counts are rows of this mix's sources as built."]
    for s in srcs:
        rows = [[f"`{x['native']}`" if x["native"] is not None else "(no label)",
                 f"`{x['harmonized']}`" if x["harmonized"] else "(none)",
                 f"`{x['class']}`" if x["class"] else f"left out: {x['left_out']}", x["rows"]] for x in s["classes"]]
        text = f"### {s['pretty_name']} (`{s['corpus']}`)\n\n"
        if rows:
            text += _table(["native class", "harmonized", "class here", "rows"], rows)
        objs = [[f"`{x['category']}`", f"`{x['harmonized']}`" if x["harmonized"] else "(none)",
                 f"`{x['class']}`" if x["class"] else (f"left out: {x['left_out']}" if x["left_out"]
                                                        else "kept as is"), x["in"], x["objects"]]
                for x in s["objects"]]
        if objs:
            text += ("\n\n" if rows else "") + "Objects:\n\n" + _table(
                ["object category", "harmonized", "category here", "in", "objects"], objs)
        parts.append(text)
    yield "\n\n".join(parts)

    reasons = sorted({k for s in srcs for k in s["left_out"]})
    if reasons:
        table = [[f"`{s['corpus']}`", f"`{k}`", REASONS[k], n] for s in srcs for k, n in s["left_out"].items()]
        yield ("## Rows left out\n\nRows without an honest class at this depth are left out, never forced into "
               "one:\n\n" + _table(["source", "reason", "meaning", "rows"], table))
    else:
        yield "## Rows left out\n\nNone: every row of every source has a class at this depth."

    yield _completeness_section(r)

    yield _audit_section(r)

    yield ("## Schema\n\nThe cytohub unified schema (v" + r["schema_version"] + ") plus `source`. `id` and the "
           "`group` fields are the source's, prefixed with `<source>/` so that they stay unique across corpora; "
           "image bytes, focal stacks, masks, coordinates and `extra` are copied from the source builds as they "
           "are (never decoded or re-encoded).\n\n"
           + _table(["field", "type", "meaning"],
                    [*([f"`{k}`", t, MEANING[k].format(**m) if k in MEANING else mm] for k, (t, mm) in FIELDS.items()),
                     [f"`{SOURCE_COLUMN}`", "string", "the corpus the row comes from (a cytohub corpus name)"]]))

    yield from _figures(r.get("assets", []), any(v["objects"] for v in r["splits"].values()))

    bib = "\n\n".join(s["citation"] for s in srcs if s["citation"])
    yield ("## Citation\n\nIf you use this mix, cite every corpus it holds:\n\n```bibtex\n" + bib + "\n```")

    rows = [[f"{s['pretty_name']} (`{s['corpus']}`)", _license_text(s), s["redistribution"],
             s["attribution"] or ""] for s in srcs]
    rule = {"gated": "Access on the Hub is gated: users must accept the license terms of every corpus before "
                     "downloading.",
            "forbidden": "At least one corpus does not allow redistribution: keep this mix private, for your own "
                         "use under the licenses.",
            "allowed": "Every corpus allows redistribution under its license."}[r["redistribution"]]
    yield ("## License and attribution\n\nEach row keeps the license of its corpus (the `source` column). "
           f"Redistribution follows the strictest source: **{r['redistribution']}**. {rule}"
           + (f" The terms of each corpus are also in `{LICENSE_FILE}`." if len(_licenses(r)) > 1 else "")
           + "\n\n" + _table(["corpus", "license", "redistribution", "attribution"], rows)
           + "\n\nThis is a format conversion and relabelling of the original releases by cytohub; the original "
             "authors own the data and their licenses apply. cytohub adds no rights and makes no changes to image "
             "pixels (image bytes are passed through as published).")

    rows = [[f"`{s['corpus']}`", f"{s['builder']['version']}", s["cytohub_version"], "yes" if s["synthetic"] else "no",
             f"`{s['report_sha256']}`"] for s in srcs]
    inputs = []
    for s in srcs:
        for i in s["inputs"][:20]:
            inputs.append([f"`{s['corpus']}`", i["path"], i["size"], f"`{i['sha256']}`"])
        if len(s["inputs"]) > 20:
            inputs.append([f"`{s['corpus']}`", f"({len(s['inputs']) - 20} more in `build-report.json`)", "", ""])
    yield ("## Provenance\n\n"
           f"Mixed by cytohub {r['cytohub_version']} (mix {r['builder']['version']}, schema v{r['schema_version']}) "
           "from the build folders below (the sha256 of each folder's `build-report.json`, which lists its raw "
           "inputs and shards). Rows were read from their Parquet shards and written again without decoding any "
           "image.\n\n" + _table(["source", "builder", "cytohub", "synthetic", "build report sha256"], rows)
           + "\n\nRaw inputs of the sources:\n\n" + _table(["source", "raw file", "bytes", "sha256"], inputs))
    yield "## Not for clinical use\n\n" + DISCLAIMER


def _per_source_class(r: dict[str, Any], corpus: str, split: str, cls: str) -> int:
    return r["per_source"].get(corpus, {}).get(split, {}).get("labels", {}).get(cls, 0)


def _completeness_section(r: dict[str, Any]) -> str:
    """Each source's completeness against what its publisher states, as its build recorded it."""
    partial = (r.get("completeness") or {}).get("partial")
    lines = []
    if partial:
        lines.append(f"**Partial build: {partial}.** Some sources were built from downloads that lack published "
                     "files or rows (`cytohub build --allow-partial`): their rows here are what those builds hold.")
    lines.append("Each source as its build found it against what its publisher states (see each source's card):")
    rows = [[f"`{s['corpus']}`", s.get("completeness") or "not recorded"] for s in r["sources"]]
    return "## Completeness\n\n" + "\n\n".join(lines) + "\n\n" + _table(["source", "completeness"], rows)


def _audit_section(r: dict[str, Any]) -> str:
    a = r.get("audit") or {}
    if not a.get("audited"):
        return ("## Duplicates and leakage\n\n**Not audited**: this mix was written without the duplicate audit. "
                "Run `cytohub audit` on it before any use.")
    s = a["summary"]
    lines = [f"`cytohub audit` hashed {a['rows']:,} images: exact duplicates = identical image bytes, near "
             f"duplicates = pHash (64-bit perceptual hash) distance <= {a['threshold']} of 64 bits.", "",
             _table(["pairs", "exact", "near"], [[k, v["exact"], v["near"]] for k, v in s.items()]), "",
             f"Groups (patient, slide, field of view) in more than one split: {a['groups_across_splits']}."]
    rows = [[f"`{c}`", v["exact"], v["near"], v["groups"]] for c, v in a["configs"].items()]
    lines += ["", "Leakage per configuration: duplicate pairs whose two rows fall in two different splits of the "
              "configuration, and groups in two of its splits:", "",
              _table(["config", "exact pairs", "near pairs", "groups"], rows)]
    leaking = [c for c, v in a["configs"].items() if v["pairs"] or v["groups"]]
    if leaking:
        lines += ["", f"> **Leakage.** {', '.join(f'`{c}`' for c in leaking)} hold images (or groups) in two of "
                  "their splits; the mix was written with `--allow-leakage`. Scores on those configurations may be "
                  "optimistic. `build-report.json` lists examples."]
    else:
        lines += ["", "No configuration has a duplicate or a group across its splits."]
    return "## Duplicates and leakage\n\n" + "\n".join(lines)


# ------------------------------------------------------------------------------------------- croissant.json
def mix_croissant(report: dict[str, Any]) -> dict[str, Any]:
    """The Croissant 1.0 + RAI document of a mix (`cytohub.croissant` describes a single corpus's build).

    One FileSet holds every source's shards (`data/*/*.parquet`); the record set `default` has the unified
    schema's fields plus `source` (the corpus) and `split` (from the shard's file name), so the card's
    leave-one-source-out configurations are selections on those two fields (Croissant has no notion of a
    configuration: the description states them). `label_names` enumerates the mix's classes. `license` lists
    every source's license; `citeAs` holds every source's citation; the RAI fields are each source's own (as
    `cytohub.croissant` states them for its build, prefixed with the corpus's name), plus what the mix changed.
    Object categories are not enumerated: objects of labelled rows keep their corpus's categories, those of rows
    without an image label take the mix's classes."""
    from cytohub import registry
    from cytohub.croissant import (
        CONFORMS_TO,
        CONTEXT,
        SHARD_NAME,
        _column,
        _field,
        _label_set,
        _license,
        _rai,
        parquet_files,
    )

    m = report["mix"]
    srcs = report["sources"]
    synthetic = report["synthetic"]
    names = ", ".join(f"{s['pretty_name']} (`{s['corpus']}`)" for s in srcs)
    holdouts = [c for c in report["configs"] if c.startswith(HOLDOUT_PREFIX)]
    description = (("SYNTHETIC DATA (made from builds of synthetic raw data; no real images). " if synthetic else "")
                   + f"A cytohub mix of {len(srcs)} corpora ({names}) labelled on {m['taxonomy_title']} (cytohub "
                   f"taxonomy `{m['taxonomy']}` {m['taxonomy_version']}) cut at depth {m['depth']}: "
                   f"{len(m['classes'])} classes. Made by cytohub {report['cytohub_version']} (mix "
                   f"{report['builder']['version']}, unified schema v{report['schema_version']}) from the corpora's "
                   "cytohub builds; image bytes are copied unchanged. Each row names its corpus in `source` and "
                   "keeps its corpus's split in `split`."
                   + (f" Leave-one-source-out configurations ({', '.join(holdouts)}): holdout-S takes train and "
                      "validation from the other sources' train and validation splits, and every row of S as test."
                      if holdouts else "")
                   + " " + DISCLAIMER.replace("**", ""))
    licenses = list(dict.fromkeys(_license(SimpleNamespace(license=s["license"], license_link=s["license_link"],
                                                           license_name=s["license_name"])) for s in srcs))
    splits = report["splits"]
    doc: dict[str, Any] = {
        "@context": CONTEXT,
        "@type": "sc:Dataset",
        "name": re.sub(r"[^A-Za-z0-9_-]", "-", m["name"]),
        "alternateName": _title(report),
        "description": description,
        "conformsTo": CONFORMS_TO,
        "citeAs": "\n\n".join(s["citation"] for s in srcs if s["citation"]),
        "license": licenses if len(licenses) > 1 else licenses[0],
        "version": report["builder"]["version"],
        "keywords": ["cytohub-mix", "benchmark", m["taxonomy"], "cytopathology", "medical imaging"]
                    + (["synthetic"] if synthetic else []),
        "isLiveDataset": False,
        "distribution": [parquet_files(
            "data/*/*.parquet", "data/<source>/<split>-NNNNN-of-NNNNN.parquet",
            "; ".join(f"{split} {v['num_examples']} rows (" + ", ".join(f"{c} {n}" for c, n in v["sources"].items())
                      + ")" for split, v in splits.items()))],
        "recordSet": [
            _label_set("label_names", "classes of the mix (`label` ClassLabel index -> taxonomy node)", m["classes"]),
            {"@type": "cr:RecordSet", "@id": "default", "name": "default",
             "description": "One row per image (or focal stack) in cytohub's unified schema plus `source`; see the "
                            "card's Schema table.",
             "field": [_field("split", "sc:Text", "the split this row belongs to in its corpus (from its shard's file "
                                                  "name)", file_property="filename", regex=SHARD_NAME),
                       _field(SOURCE_COLUMN, "sc:Text", "the corpus the row comes from (a cytohub corpus name)")]
                      + [_column(name, True, False) for name in FIELDS]},
        ],
        **_mix_rai(report, {s["corpus"]: _rai(registry.get(s["corpus"]), {"synthetic": s["synthetic"]})
                            for s in srcs}),
    }
    return doc


def mix_croissant_json(report: dict[str, Any]) -> str:
    """`mix_croissant(report)` as the text of croissant.json (deterministic: same report, same bytes)."""
    return json.dumps(mix_croissant(report), indent=1, ensure_ascii=False) + "\n"


def _mix_rai(report: dict[str, Any], per_source: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The sources' RAI fields, each statement prefixed with its corpus, plus what the mix itself did."""
    m = report["mix"]
    out: dict[str, Any] = {}
    for key in next(iter(per_source.values())):
        parts = []
        for corpus, rai in per_source.items():
            value = rai[key]
            parts += [f"{corpus}: {x}" for x in value] if isinstance(value, list) else [f"{corpus}: {value}"]
        out[key] = parts if isinstance(next(iter(per_source.values()))[key], list) else " ".join(parts)
    left = sum(sum(s["left_out"].values()) for s in report["sources"])
    out["rai:dataPreprocessingProtocol"] = [
        f"Mixed by cytohub: `label` is each row's harmonized node cut at depth {m['depth']} of `{m['taxonomy']}`; "
        f"{left} rows without an honest class at that depth were left out (counted per source and reason in the "
        "card); `id` and `group` are prefixed with `<source>/`; image bytes, geometry and `extra` are copied "
        "unchanged.", *out["rai:dataPreprocessingProtocol"]]
    out["rai:dataBiases"] = [
        "The corpora differ in site, preparation, stain and scanner, and in class balance: `source` is confounded "
        "with the class distribution (see the card's rows per source and class); the holdout configurations "
        "measure transfer across corpora.", *out["rai:dataBiases"]]
    return out
