"""`croissant.json` of a build folder: the MLCommons Croissant 1.0 description of the dataset (its files, record
set and fields) with the Responsible-AI (RAI 1.0) fields that matter for medical images.

Written as plain JSON-LD from the builder's declarations and the build report (so `cytohub card DIR` can
rewrite it without rebuilding); `mlcroissant` validates it and reads its records in the test suite. The files
are described as one FileSet (`data/*.parquet`, relative to the build folder, which is the Hub repo layout);
the record set `default` has one field per column of the unified schema plus `split`
(from the shard's file name). Class names and object categories are enumeration record sets (`label_names`,
which the `label` field references, and `object_categories`). RAI facts come only from what the builder
declares (consent and de-identification as the publisher states them, or "not stated"); nothing is invented.

Sources: Croissant 1.0 and the RAI vocabulary (mlcommons.org/croissant, as implemented by `mlcroissant`).
"""

from __future__ import annotations

import json
import re
from typing import Any

from cytohub.builder import Builder
from cytohub.card import DISCLAIMER
from cytohub.schema import FIELDS

CROISSANT = "croissant.json"
CONFORMS_TO = ["http://mlcommons.org/croissant/1.0", "http://mlcommons.org/croissant/RAI/1.0"]
NOT_STATED = "not stated by the publisher in the sources cytohub used; check the publisher's documentation"
CONTEXT: dict[str, Any] = {
    "@language": "en",
    "@vocab": "https://schema.org/",
    "citeAs": "cr:citeAs",
    "column": "cr:column",
    "conformsTo": "dct:conformsTo",
    "cr": "http://mlcommons.org/croissant/",
    "rai": "http://mlcommons.org/croissant/RAI/",
    "data": {"@id": "cr:data", "@type": "@json"},
    "dataType": {"@id": "cr:dataType", "@type": "@vocab"},
    "dct": "http://purl.org/dc/terms/",
    "equivalentProperty": "cr:equivalentProperty",
    "examples": {"@id": "cr:examples", "@type": "@json"},
    "extract": "cr:extract",
    "field": "cr:field",
    "fileProperty": "cr:fileProperty",
    "fileObject": "cr:fileObject",
    "fileSet": "cr:fileSet",
    "format": "cr:format",
    "includes": "cr:includes",
    "isLiveDataset": "cr:isLiveDataset",
    "jsonPath": "cr:jsonPath",
    "key": "cr:key",
    "md5": "cr:md5",
    "parentField": "cr:parentField",
    "path": "cr:path",
    "recordSet": "cr:recordSet",
    "references": "cr:references",
    "regex": "cr:regex",
    "repeated": "cr:repeated",
    "replace": "cr:replace",
    "samplingRate": "cr:samplingRate",
    "sc": "https://schema.org/",
    "separator": "cr:separator",
    "source": "cr:source",
    "subField": "cr:subField",
    "transform": "cr:transform",
}
SHARD_NAME = r"^([A-Za-z][A-Za-z0-9_]*)-\d{5}-of-\d{5}\.parquet$"


def croissant(builder: Builder, report: dict[str, Any]) -> dict[str, Any]:
    """The Croissant JSON-LD document of a build of `builder` described by its build `report`."""
    b = builder
    synthetic = report["synthetic"]
    splits = list(report["splits"])
    description = (("SYNTHETIC DATA (drawn pixels in the corpus's published layout, not the corpus). " if synthetic
                    else "") + (b.summary.rstrip(".") + ". " if b.summary else "")
                   + f"Converted by cytohub {report['cytohub_version']} (builder {b.name} "
                   f"{report['builder']['version']}, unified schema v{report['schema_version']}) from the "
                   "publisher's release; image bytes are "
                   "passed through unchanged. " + DISCLAIMER.replace("**", ""))
    doc: dict[str, Any] = {
        "@context": CONTEXT,
        "@type": "sc:Dataset",
        "name": re.sub(r"[^A-Za-z0-9_-]", "-", b.name),
        "alternateName": ("[SYNTHETIC] " if synthetic else "") + b.pretty_name,
        "description": description,
        "conformsTo": CONFORMS_TO,
        "citeAs": b.citation.strip(),
        "license": _license(b),
        "url": b.homepage,
        "version": report["builder"]["version"],
        "keywords": [*b.task_categories, *b.tags, "cytopathology", "medical imaging"]
                    + (["synthetic"] if synthetic else []),
        "isLiveDataset": False,
        "distribution": [parquet_files(
            "data/*.parquet", "data/<split>-NNNNN-of-NNNNN.parquet",
            ", ".join(f"{s} {report['splits'][s]['num_examples']} rows in {len(report['splits'][s]['shards'])} "
                      "shard(s)" for s in splits))],
        "recordSet": [],
        **_rai(b, report),
    }
    if b.labels:
        doc["recordSet"].append(_label_set("label_names", "image-level classes (`label` ClassLabel index -> name)",
                                           b.class_names()))
    if b.object_labels:
        doc["recordSet"].append(_label_set("object_categories", "categories of `objects`",
                                           [lab.name for lab in b.object_labels]))
    doc["recordSet"].append({
        "@type": "cr:RecordSet",
        "@id": "default",
        "name": "default",
        "description": "One row per image (or focal stack) in cytohub's unified schema; see the card's Schema table.",
        "field": [_field("split", "sc:Text", "the split this row belongs to (from its shard's file name)",
                         file_property="filename", regex=SHARD_NAME)]
                 + [_column(name, bool(b.labels), bool(b.object_labels)) for name in FIELDS],
    })
    return doc


def parquet_files(includes: str, layout: str, contents: str) -> dict[str, Any]:
    """The `cr:FileSet` of a build's Parquet shards: `includes` the glob relative to the build folder (= the Hub
    repo), `layout` the shard name pattern and `contents` what the shards hold, for the description."""
    return {
        "@type": "cr:FileSet",
        "@id": "parquet-files",
        "name": "parquet-files",
        "description": f"The Parquet shards, {layout} relative to the build folder (= the Hub repo): {contents}.",
        "encodingFormat": "application/x-parquet",
        "includes": includes,
    }


def croissant_json(builder: Builder, report: dict[str, Any]) -> str:
    """`croissant(builder, report)` as the text of `croissant.json` (deterministic: same report, same bytes)."""
    return json.dumps(croissant(builder, report), indent=1, ensure_ascii=False) + "\n"


# ---------------------------------------------------------------------------------------------- internals
def _source(column: str | None = None, json_path: str | None = None,
            file_property: str | None = None, regex: str | None = None) -> dict[str, Any]:
    extract = {"column": column} if column else {"fileProperty": file_property}
    source: dict[str, Any] = {"fileSet": {"@id": "parquet-files"}, "extract": extract}
    transform = {"jsonPath": json_path} if json_path else {"regex": regex} if regex else None
    if transform:
        source["transform"] = transform
    return source


def _field(name: str, data_type: str, description: str, *, column: str | None = None,
           json_path: str | None = None, file_property: str | None = None, regex: str | None = None,
           parent: str = "default", repeated: bool = False, references: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"@type": "cr:Field", "@id": f"{parent}/{name}", "name": name,
                           "description": description, "dataType": data_type}
    if repeated:
        out["repeated"] = True
    out["source"] = _source(column or (None if file_property else name), json_path, file_property, regex)
    if references:
        out["references"] = {"field": {"@id": references}}
    return out


def _column(name: str, has_labels: bool, has_objects: bool) -> dict[str, Any]:
    kind, meaning = FIELDS[name]
    desc = f"{meaning} [{kind}]"
    if name in ("image", "mask"):
        return _field(name, "sc:ImageObject", desc, json_path="bytes")
    if name == "focal_stack":
        return _field(name, "sc:ImageObject", desc, json_path="[*].bytes", repeated=True)
    if name == "label":
        return _field(name, "sc:Integer", desc, references="label_names/index" if has_labels else None)
    if name in ("z_um", "fov_center_um"):
        return _field(name, "sc:Float", desc, repeated=True)
    if name == "mpp":
        return _field(name, "sc:Float", desc)
    if name == "label_path":
        return _field(name, "sc:Text", desc, repeated=True)
    if name == "group":
        out = _field(name, "sc:Text", desc)
        del out["dataType"], out["source"]
        out["subField"] = [_field(k, "sc:Text", f"{k} (the publisher's code; null where not given)",
                                  column="group", json_path=k, parent="default/group")
                           for k in ("patient_id", "slide_id", "fov_id")]
        return out
    if name == "objects":
        out = _field(name, "sc:Text", desc, repeated=True)
        del out["dataType"], out["source"]
        out["subField"] = [
            _field("category", "sc:Text", "object category" + (" (see object_categories)" if has_objects else ""),
                   column="objects", json_path="[*].category", parent="default/objects", repeated=True),
            *[_field(k, "sc:Float", f"{k} in pixels, origin top-left ({what}); null when absent",
                     column="objects", json_path=f"[*].{k}", parent="default/objects", repeated=True)
              for k, what in (("bbox", "[x, y, w, h]"), ("polygon", "[x1, y1, x2, y2, ...]"), ("point", "[x, y]"))],
        ]
        return out
    return _field(name, "sc:Text", desc)


def _label_set(set_id: str, description: str, names: list[str]) -> dict[str, Any]:
    return {
        "@type": "cr:RecordSet",
        "@id": set_id,
        "name": set_id,
        "description": description,
        "dataType": "sc:Enumeration",
        "key": {"@id": f"{set_id}/index"},
        "field": [
            {"@type": "cr:Field", "@id": f"{set_id}/index", "name": "index", "dataType": "sc:Integer"},
            {"@type": "cr:Field", "@id": f"{set_id}/name", "name": "name", "dataType": "sc:Text"},
        ],
        "data": [{f"{set_id}/index": i, f"{set_id}/name": n} for i, n in enumerate(names)],
    }


def _license(b: Builder) -> str:
    m = re.fullmatch(r"cc-(by(?:-nc)?(?:-sa|-nd)?)-(\d\.\d)", b.license)
    if m:
        return f"https://creativecommons.org/licenses/{m[1]}/{m[2]}/"
    if b.license == "cc0-1.0":
        return "https://creativecommons.org/publicdomain/zero/1.0/"
    if b.license == "other":
        return b.license_link or b.license_name or "other"
    if b.license == "unknown":
        return "unknown: the publisher states no license; see the card before any use"
    return b.license


def _rai(b: Builder, report: dict[str, Any]) -> dict[str, Any]:
    facts = [f"{k}: {v}" for k, v in (("organ", b.organ), ("stain", b.stain), ("preparation", b.preparation),
                                       ("scanner / optics", b.scanner), ("magnification", b.magnification),
                                       ("pixel size (um/px)", b.mpp)) if v not in (None, "")]
    collection = (f"{b.pretty_name}, as released by its publisher ({b.homepage}). "
                  + (f"{b.num_images} images or units as published. " if b.num_images else "")
                  + ("; ".join(facts) + "." if facts else ""))
    limitations = [f"Raw layout {b.layout}" + (": reconstructed from indirect sources; see the assumptions."
                                               if b.layout == "unverified" else "."),
                   *b.assumptions,
                   f"License: {_license_text(b)}; redistribution: {b.redistribution}."]
    if report["synthetic"]:
        limitations.insert(0, "This build is SYNTHETIC: drawn pixels in the corpus's published file layout, for "
                              "testing only; it is not the corpus.")
    return {
        "rai:dataCollection": collection,
        "rai:dataCollectionType": ["Secondary use of a published corpus (format conversion by cytohub)"],
        "rai:dataPreprocessingProtocol": [
            "Image bytes are passed through as published (no re-encoding, resizing or colour change).",
            "Labels are the publisher's classes with their hierarchy; `harmonized` maps them to cytohub's "
            "cross-corpus taxonomy only where the mapping is honest (null otherwise).",
            "Coordinates are converted to pixels, origin top-left, 0-based; every raw file is accounted for in "
            "build-report.json.",
        ],
        "rai:dataAnnotationProtocol": [f"As published by the corpus authors (see the citation). Classes: "
                                       f"{', '.join(b.class_names()) or 'none (objects only)'}."
                                       + (f" Object categories: {', '.join(lab.name for lab in b.object_labels)}."
                                          if b.object_labels else "")],
        "rai:personalSensitiveInformation": [
            "Health data: microscopy images of human cytology specimens.",
            f"Consent: {b.consent or NOT_STATED}.",
            f"De-identification: {b.deidentification or NOT_STATED}.",
            "cytohub adds no personal data; patient, slide and field ids in `group` are the publisher's codes.",
        ],
        "rai:dataUseCases": [
            "Research on computational methods for cytopathology: "
            + ", ".join(b.task_categories) + ".",
            "Intended use: research and education under the license terms. " + DISCLAIMER.replace("**", ""),
        ],
        "rai:dataLimitations": limitations,
        "rai:dataBiases": ["Not assessed by cytohub. Class balance per split is in the card; acquisition (site, "
                           "stain, scanner) is that of a single published corpus and may not generalise."],
        "rai:dataSocialImpact": ("Intended to advance research on automated cytology screening; misuse for "
                                 "clinical decisions could harm patients. " + DISCLAIMER.replace("**", "")),
    }


def _license_text(b: Builder) -> str:
    return f"{b.license_name} ({b.license_link})" if b.license == "other" else b.license
