"""The dataset card (README.md of a build folder): YAML metadata for the Hub and `datasets`, then the body.

Everything comes from the builder's declarations, the hand-written prose in `cards/<name>.md` and the
build report, so `cytohub card DIR` can regenerate a card without rebuilding.
"""

from __future__ import annotations

import json
import re
from importlib.resources import files
from typing import Any

from huggingface_hub.repocard_data import DatasetCardData  # not `huggingface_hub.DatasetCard` (its Hub client)

from cytohub.builder import Builder
from cytohub.completeness import card_section, title_suffix
from cytohub.encode import storage_schema
from cytohub.schema import FIELDS

SYNTHETIC_TAG = "synthetic"
DISCLAIMER = ("**Not for clinical use.** This dataset is for research on computational methods. It must not be "
              "used to diagnose, treat or screen patients, or to make any clinical decision.")


def prose(name: str) -> str:
    """The hand-written description of a corpus (cards/<name>.md), or an empty string."""
    root = files("cytohub.cards")
    for candidate in (f"{name}.md", f"{name.replace('-', '_')}.md"):
        res = root.joinpath(candidate)
        if res.is_file():
            return res.read_text(encoding="utf-8").strip()
    return ""


def repo_placeholder(name: str) -> str:
    """The quoted repo id in a built card's loading snippets (`"ORG/<name>"`): the repo is known only at push."""
    return f'"ORG/{name}"'


def card_for_repo(text: str, name: str, repo_id: str) -> str:
    """The card as pushed to `repo_id`: `text` with every `"ORG/<name>"` (see `repo_placeholder`) replaced by
    `"<repo_id>"`, and nothing else changed."""
    return text.replace(repo_placeholder(name), f'"{repo_id}"')


def size_category(n: int) -> str:
    for limit, label in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"),
                         (1_000_000, "100K<n<1M"), (10_000_000, "1M<n<10M")):
        if n < limit:
            return label
    return "10M<n<100M"


def dataset_info_yaml(builder: Builder, report: dict[str, Any]) -> dict[str, Any]:
    """The card's `dataset_info`: features, splits (name, num_bytes, num_examples), download and dataset sizes,
    as `datasets.DatasetInfo._to_yaml_dict()` gives them, without importing `datasets` (about 130 MB and a
    second of CPU): the features come from the shards' own Arrow schema metadata (`cytohub.encode`), and the
    test suite checks that both give the same dict."""
    meta = json.loads(storage_schema(builder.class_names()).metadata[b"huggingface"])
    splits = [{"name": name, "num_bytes": s["num_bytes"], "num_examples": s["num_examples"]}
              for name, s in report["splits"].items()]
    # as `push_to_hub` reports them: download_size = the Parquet files, dataset_size = the Arrow table bytes
    parquet = [s.get("parquet_bytes") for s in report["splits"].values()]
    info = {"features": features_yaml(meta["info"]["features"]), "splits": splits,
            "download_size": sum(parquet) if None not in parquet else None,
            "dataset_size": sum(s["num_bytes"] for s in report["splits"].values())}
    return {k: v for k, v in info.items() if v is not None}  # `datasets` leaves unknown sizes out


def features_yaml(features: dict[str, Any]) -> list[dict[str, Any]]:
    """`datasets` Features in their JSON form (`Features.to_dict()`, as stored in a Parquet file's `huggingface`
    metadata) -> the YAML list of a dataset card (`Features._to_yaml_list()` of `datasets` 5.x: `dtype` for
    values and other types, `list` for lists, `struct` for dicts, class names keyed by their index as text)."""

    def simplify(feature: dict) -> dict:
        for kind in ("large_list", "list", "sequence"):
            inner = feature.get(kind)
            if isinstance(inner, dict) and list(inner) in (["dtype"], ["struct"]):
                feature[kind] = next(iter(inner.values()))
        label = feature.get("class_label")
        if isinstance(label, dict) and isinstance(label.get("names"), list):
            label["names"] = {str(i): n for i, n in enumerate(label["names"])}
        return feature

    def inner(obj: Any) -> dict:
        if isinstance(obj, list | tuple):
            return simplify({"list": simplify(inner(obj[0]))})
        obj = dict(obj)
        kind = obj.pop("_type", None)
        if kind in ("List", "LargeList"):
            feature = obj.pop("feature")
            return simplify({"list" if kind == "List" else "large_list": inner(feature), **obj})
        if kind == "Value":
            return obj
        if kind:
            name = re.sub(r"(?<!^)(?=[A-Z])", "_", kind).lower()  # ClassLabel -> class_label
            return {"dtype": simplify({name: obj})} if obj else {"dtype": name}
        return {"struct": [{"name": k, **inner(v)} for k, v in obj.items()]}

    return inner(features)["struct"]


def card_data(builder: Builder, report: dict[str, Any]) -> DatasetCardData:
    synthetic = report["synthetic"]
    tags = list(builder.tags) + ["cytohub"] + ([SYNTHETIC_TAG] if synthetic else [])
    extra: dict[str, Any] = {}
    if builder.license == "other":
        extra.update(license_name=builder.license_id, license_link=builder.license_link)
    if builder.redistribution == "gated":  # the Hub's access form (the gate itself is a repo setting)
        extra.update(
            extra_gated_prompt=(f"{builder.pretty_name} is distributed under {_license_text(builder)}. "
                                "Access is granted to users who agree to its terms."),
            extra_gated_fields={"Name": "text", "Affiliation": "text",
                                f"I agree to use this dataset only under its license ({_license_text(builder)}) "
                                "and not for clinical use": "checkbox"},
        )
    return DatasetCardData(
        pretty_name=("[SYNTHETIC] " if synthetic else "") + builder.pretty_name + title_suffix(report),
        license=builder.license,
        task_categories=list(builder.task_categories),
        tags=tags,
        size_categories=[size_category(report["num_rows"])],
        source_datasets=[f"extended|{builder.homepage}"] if builder.homepage else None,
        configs=[{"config_name": "default",
                  "data_files": [{"split": s, "path": f"data/{s}-*.parquet"} for s in report["splits"]]}],
        dataset_info=dataset_info_yaml(builder, report),
        **extra,
    )


def render_card(builder: Builder, report: dict[str, Any]) -> str:
    data = card_data(builder, report)
    body = "\n\n".join(part for part in _body(builder, report) if part)
    # the text `huggingface_hub.DatasetCard` would write back (a test checks it for every corpus)
    return f"---\n{data.to_yaml()}\n---\n\n{body}\n"


def _table(header: list[str], rows: list[list[Any]]) -> str:
    def cell(v: Any) -> str:
        return "" if v is None else str(v).replace("|", "\\|").replace("\n", " ")
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in r) + " |" for r in rows]
    return "\n".join(lines)


def _body(b: Builder, r: dict[str, Any]):
    synthetic = r["synthetic"]
    splits = list(r["splits"])
    title = ("[SYNTHETIC] " if synthetic else "") + b.pretty_name + title_suffix(r)
    yield f"# {title}"
    if synthetic:
        yield ("> **SYNTHETIC DATA.** This build was made by `cytohub` from *synthetic* raw data that reproduces "
               f"the published layout of {b.pretty_name} with drawn, cell-like pixels. It contains **no real "
               "images** and no real labels: use it to test pipelines, not to train or evaluate models.")
    if b.layout == "unverified":
        yield ("> **Layout: unverified.** The raw layout this builder reads was reconstructed from indirect "
               "sources; see *Assumptions* below.")
    yield b.summary + "." if b.summary and not b.summary.endswith(".") else b.summary
    yield prose(b.name)

    facts = [["Organ", b.organ], ["Stain", b.stain], ["Preparation", b.preparation], ["Scanner / optics", b.scanner],
             ["Magnification", b.magnification],
             ["Pixel size (um/px)", b.mpp if b.mpp is not None else "not stated by the source (`mpp` is null)"],
             ["Images / units as published", b.num_images], ["Rows in this build", r["num_rows"]],
             *_image_facts(r.get("images") or {}),
             ["Tasks", ", ".join(b.task_categories)], ["License", _license_text(b)],
             ["Redistribution", b.redistribution], ["Raw layout", b.layout], ["Homepage", b.homepage]]
    yield "## Quick facts\n\n" + _table(["", ""], [f for f in facts if f[1] not in (None, "")])

    yield ("## How to load\n\n```python\nfrom datasets import load_dataset\n\n"
           f'ds = load_dataset({repo_placeholder(b.name)}, split="{splits[0]}", streaming=True)  '
           "# or a local build folder\n"
           "row = next(iter(ds))\n"
           'row["image"]        # PIL image' + ("\nrow[\"focal_stack\"]  # list of PIL images, ordered by z\n"
                                               "row[\"z_um\"]         # plane offsets from best focus, micrometres"
                                               if any(k != "0" for s in r["splits"].values()
                                                      for k in s["focal_planes"]) else "")
           + '\nds.features["label"].int2str(row["label"])\n```')
    yield _loading_in_parallel(b.name, splits[0], len(r["splits"][splits[0]]["shards"]))

    rows = [[s, v["num_examples"], v["groups"], ", ".join(v["shards"]), f"{v['num_bytes'] / 1e6:.1f} MB"]
            for s, v in r["splits"].items()]
    mode = {"official": "the corpus's official splits",
            "single": "one `train` split (the corpus has no official splits; make your own grouped split, "
                      "or rebuild with `--split`)",
            "ratios": f"grouped, label-stratified random split {r['parameters']['ratios']} with seed "
                      f"{r['parameters']['seed']}; no group crosses splits"}[r["parameters"]["split"]]
    empty = r.get("empty_splits") or []
    left_out = (f"\n\nLeft out because they have no rows in this download: {', '.join(empty)}." if empty else "")
    yield (f"## Splits\n\nSplits: {mode}.{left_out}\n\n"
           + _table(["split", "rows", "groups", "shards", "Arrow size"], rows))
    yield card_section(r)

    yield ("## Schema\n\nEvery cytohub dataset has the same columns (schema v" + r["schema_version"] + "); "
           "unused fields are `[]` or null.\n\n" + _table(["field", "type", "meaning"],
                                                          [[f"`{k}`", t, m] for k, (t, m) in FIELDS.items()]))

    if b.labels:
        header = ["class (`label`)", "hierarchy (`label_path`)", "harmonized", *splits, "total"]
        table = []
        for i, lab in enumerate(b.labels):
            counts = [r["splits"][s]["labels"].get(lab.name, 0) for s in splits]
            table.append([f"{i}: {lab.name}", " > ".join(lab.path), lab.harmonized or "(unmapped)", *counts,
                          sum(counts)])
        none = [r["splits"][s]["labels"].get("(none)", 0) for s in splits]
        if sum(none):
            table.append(["-1: (no label)", "", "", *none, sum(none)])
        yield "## Label hierarchy and counts\n\n" + _table(header, table)
    objects = sorted({c for s in r["splits"].values() for c in s["objects"]})
    if objects:
        table = [[c, *[r["splits"][s]["objects"].get(c, 0) for s in splits]] for c in objects]
        yield "## Objects per category\n\n" + _table(["category", *splits], table)

    yield from _figures(r.get("assets", []), bool(objects))

    yield f"## Citation\n\nIf you use this dataset, cite the original work:\n\n```bibtex\n{b.citation.strip()}\n```"
    terms = {"gated": "Access on the Hub is gated: users must accept the license terms before downloading.\n\n",
             "forbidden": "The license does not allow redistribution: keep this build private, for your own "
                          "use under the license.\n\n"}.get(b.redistribution, "")
    yield ("## License and attribution\n\n" + f"License: {_license_text(b)}.\n\n" + terms
           + (f"Attribution: {b.attribution}\n\n" if b.attribution else "")
           + "This is a format conversion of the original release by cytohub; the original authors own the "
             "data and its license applies. cytohub adds no rights. "
           + _conversions_text(b, r.get("images") or {}))

    inputs = _table(["raw file", "bytes", "sha256"], [[i["path"], i["size"], f"`{i['sha256']}`"]
                                                      for i in r["inputs"][:50]])
    more = f"\n\n({len(r['inputs']) - 50} more in `build-report.json`)" if len(r["inputs"]) > 50 else ""
    skipped_reasons: dict[str, int] = {}
    for f in r["files"]["list"]:
        if f["status"] == "skipped":
            skipped_reasons[f["reason"]] = skipped_reasons.get(f["reason"], 0) + 1
    skipped = "".join(f"\n- {n} skipped: {reason}" for reason, n in sorted(skipped_reasons.items()))
    yield ("## Provenance\n\n"
           f"Built by cytohub {r['cytohub_version']} with builder `{b.name}` {r['builder']['version']} "
           f"(schema v{r['schema_version']}) from the raw files below. Every raw file is accounted for in "
           f"`build-report.json`: {r['files']['used']} used, {r['files']['skipped']} skipped.{skipped}\n\n"
           + inputs + more + "\n\nManual download instructions:\n\n```text\n" + b.manual_download.strip() + "\n```")

    if b.assumptions:
        yield "## Assumptions\n\n" + "\n".join(f"- {a}" for a in b.assumptions)
    yield "## Not for clinical use\n\n" + DISCLAIMER


FIGURE_CAPTIONS = {
    "class-counts.png": "Rows per class and split (objects per category for detection-only corpora):",
    "object-crops.png": "Objects per category: a random draw of up to 6 per category, cropped around their "
                        "geometry:",
    "focal-stack.png": "One field of view through its focal stack:",
}


def _figures(assets: list[str], annotated: bool):
    """The card's figure section: every asset the build drew, with a caption."""
    figs = []
    pages = [a for a in assets if a.startswith("assets/samples")]
    for i, a in enumerate(pages):
        what = ("Samples per class: a reproducible random draw of up to 4 rows of every class"
                + (" (annotations drawn, colours in the legend)" if annotated else ""))
        page = f" (page {i + 1} of {len(pages)})" if len(pages) > 1 else ""
        figs.append(f"{what}{page}:\n\n![samples{page}]({a})")
    for a in assets:
        name = a.rsplit("/", 1)[-1]
        if name in FIGURE_CAPTIONS:
            figs.append(f"{FIGURE_CAPTIONS[name]}\n\n![{name[:-4].replace('-', ' ')}]({a})")
    if figs:
        yield "## Sample figures\n\n" + "\n\n".join(figs)


def _loading_in_parallel(name: str, split: str, shards: int) -> str:
    """Card text: streaming with DataLoader workers (each worker and each node reads whole shards)."""
    text = (f"Streaming with several readers: `datasets` hands each DataLoader worker, and each node of "
            f"`split_dataset_by_node`, whole shards. The `{split}` split has {shards} shard"
            + ("s" if shards != 1 else "") + ".")
    code = ("```python\nfrom torch.utils.data import DataLoader\n\n"
            f'ds = load_dataset({repo_placeholder(name)}, split="{split}", streaming=True)\n')
    if shards < 8:
        text += (" With fewer shards than workers, `reshard()` (`datasets` >= 5.0) splits them into one shard "
                 "per Parquet row group (at most 100 rows each), so every worker gets work.")
        code += "ds = ds.reshard()  # one shard per row group\n"
    code += ("# on several nodes: ds = split_dataset_by_node(ds, rank=rank, world_size=world_size)\n"
             "# (from datasets.distributed; a shard count that is a multiple of world_size splits by shards)\n"
             "loader = DataLoader(ds, batch_size=None, num_workers=4)  # rows one by one; add transforms\n```")
    return text + "\n\n" + code


def _image_facts(images: dict[str, Any]) -> list[list[Any]]:
    """Quick-facts rows: format, mode and size range of the stored images, focal planes and masks."""
    rows = []
    titles = {"image": "Images", "focal_stack": "Focal planes", "mask": "Masks"}
    for role, title in titles.items():
        s = images.get(role)
        if not s:
            continue
        kinds = ", ".join(f"{k} {n:,}" for k, n in s["formats"].items())
        modes = ", ".join(f"{k} {n:,}" for k, n in s["modes"].items())
        (w0, w1), (h0, h1) = s["width"], s["height"]
        size = f"{w0}x{h0} px" if (w0, h0) == (w1, h1) else f"{w0}-{w1} x {h0}-{h1} px"
        rows.append([f"{title} (format, mode, size)", f"{kinds}; mode {modes}; {size}"])
    return rows


def _orientation_note(images: dict[str, Any]) -> str:
    n = (images.get("exif_orientation_normalised") or {}).get("count", 0)
    if not n:
        return ""
    return (f"; {n:,} image(s) carried an EXIF orientation tag other than 1, which was set to 1 (metadata only) so "
            "that pixels, masks and geometry share the stored frame when `datasets` decodes them")


def _conversions_text(b: Builder, images: dict[str, Any]) -> str:
    """What the card says about the image bytes: passed through, or exactly what was converted and why (and any
    EXIF orientation tag that was normalised)."""
    orientation = _orientation_note(images)
    if not b.conversions:
        return ("Image, focal-plane and mask bytes are passed through " + ("as published" if orientation else
                "exactly as published") + " (no re-encoding, no change to pixels" + orientation + ").")
    return ("Image, focal-plane and mask bytes are passed through as published except for these conversions "
            "made by cytohub" + (f" (and{orientation[1:]})" if orientation else "") + ":\n\n"
            + "\n".join(f"- {c}" for c in b.conversions))


def _license_text(b: Builder) -> str:
    if b.license == "other":
        return f"{b.license_name} ({b.license_link})"
    return b.license
