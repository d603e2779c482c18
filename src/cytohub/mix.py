"""`cytohub mix`: one benchmark dataset from several build folders, labelled on cytohub's harmonized taxonomy.

    cytohub mix NAME --from BUILD_DIR... --taxonomy TREE [--depth N] --out DIR
    cytohub mix --recipe cervical-bethesda --from BUILD_DIR... --out DIR

The output is a build folder in the Hub layout:

* `data/<source>/<split>-NNNNN-of-NNNNN.parquet`: one folder per source corpus, each keeping that corpus's own
  splits (official, or as the source was built); split names `val`, `valid` and `dev` become `validation`;
* the unified schema (`cytohub.schema`) whose `label` ClassLabel names are the classes of the taxonomy tree
  TREE cut at depth N (`Taxonomy.classes_at_depth`: the nodes at that depth and the leaves above it, in the
  tree's order), plus one column `source` naming the corpus of each row. A row's `label` is its `harmonized`
  node cut at depth N (`Taxonomy.at_depth`); the source's own hierarchy stays in `label_path` and its finest
  node in `harmonized`. `id` and the `group` fields are prefixed with `<source>/` so that they stay unique
  across corpora (two corpora may both have a patient "P1"); image bytes, focal stacks, masks, objects,
  coordinates and `extra` are copied as they are, never decoded or re-encoded;
* rows with no honest place in the cut are left out and counted, by source and reason (`REASONS`): no
  harmonized node, a node of another tree, a node above the depth that has finer classes below it (a row
  labelled only `ASC` cannot be called ASC-US at depth 2). Rows without an image label (detection corpora
  such as CRIC, `label` -1) are kept when every one of their objects maps: each object's category becomes
  its category's harmonized node (the builder's `object_labels`) cut at depth N, and `label` stays -1; the
  corpus's own categories stay in `extra.source_object_categories` (one per object, in order). Objects
  of labelled rows (e.g. SIPaKMeD's nucleus and cytoplasm outlines) keep their own categories;
* configurations in the card (`configs` with `data_files`): `default` (every source, every split) and, for
  each source S, `holdout-S`: train and validation from the other sources' `train` and `validation` splits,
  test = every row of S (the other sources' test splits are not used). `load_dataset(repo, "holdout-S")`;
* README.md (the card: mapping table per source, rows per source, class and split, every source's citation,
  license and attribution, each source's completeness, the configurations, the audit, provenance),
  croissant.json (`cytohub.mixcard.mix_croissant`), LICENSE.md when the sources' licenses differ, `assets/`
  figures and build-report.json (`kind: "mix"`, with each source build's key facts and, as for every build,
  the `manifest` of every file written: `cytohub.manifest`), so that `validate`, `card` and `push` treat the
  folder as any build.

Sources are trusted as builds only: each must have a report with a manifest listing its shards (sizes checked
first); their sha256 are computed on a thread while the rows are read and the mix fails, leaving nothing at
`out`, if a shard is not the build's. A source built with `--allow-partial` makes the mix partial (report
`completeness.partial`, the card's title and body). Sources are all synthetic (the mix is then marked
synthetic) or all real: a mix of both is refused.

Speed: source shards are read one row group at a time with pyarrow; the new `label` is computed with Arrow
and NumPy from a per-source table (harmonized node -> class index or reason), rows are filtered, `source`
appended, and the rows are written with the engine's shard writer (`cytohub.writer`). Objects are remapped
with Arrow compute on their flattened categories. Nothing is held in memory beyond one row group per source.

Leakage: the mix is audited with `cytohub.audit.audit` (exact and pHash near duplicates, groups in two
splits). A duplicate pair whose rows fall in two different splits of any configuration (for `holdout-S`,
an image of S that also appears in another source's train or validation split), or a group in two splits,
makes the mix fail with one line and nothing at `--out`, unless `allow_leakage`; the card and report then
state the counts.

Recipes (`RECIPES`), named benchmarks with a fixed tree, depth and set of corpora:

* `cervical-bethesda`: Bethesda 2014 (`bethesda-2014`) at depth 1, i.e. the classes NILM, ASC, LSIL, HSIL,
  SCC, AGC and Adenocarcinoma, from HiCervix, SIPaKMeD, Herlev, CRIC, Mendeley LBC and CCCID;
* `haematology-lineage`: haematopoietic lineages (`hematopoiesis`) at depth 2 (progenitor, immature,
  granulocytic, monocytic, macrophage, erythroid, lymphoid, megakaryocytic, mast cell, smudge cell,
  unidentifiable, plus the leaf `heme-artefact`), from bone marrow (Matek 2021), AML-Cytomorphology_LMU and
  BMCD-FGCD.
A recipe refuses build folders of other corpora and, unless `allow_missing`, a missing corpus.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from cytohub import __version__, manifest, registry
from cytohub.audit import DEFAULT_THRESHOLD, SHARD_RE
from cytohub.build import (
    DEFAULT_MAX_SHARD_BYTES,
    move_into_place,
    staging_for_destination,
    write_report,
)
from cytohub.builder import REDISTRIBUTION, Builder
from cytohub.encode import storage_schema
from cytohub.errors import CytohubError, OutputError, disk_cause, os_reason
from cytohub.manifest import REPORT
from cytohub.output import check_destination
from cytohub.schema import SCHEMA_VERSION
from cytohub.taxonomy import VERSION as TAXONOMY_VERSION
from cytohub.taxonomy import load_taxonomy
from cytohub.writer import ShardPlan, SplitWriter, parquet_options, plan_shards

MIX_VERSION = "1.0.0"  # bump when the rows a mix produces from the same sources change
KIND = "mix"
SOURCE_COLUMN = "source"
SPLIT_ALIASES = {"val": "validation", "valid": "validation", "dev": "validation"}
HOLDOUT_PREFIX = "holdout-"
TRAINING_SPLITS = ("train", "validation")  # what a holdout configuration takes from the other sources
LICENSE_FILE = "LICENSE.md"
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")
MAX_PAIRS_KEPT = 20  # example leaking pairs kept per configuration in the report


@dataclass(frozen=True)
class Recipe:
    """A named benchmark: taxonomy tree, depth and the corpora it is made of."""

    name: str
    title: str
    tree: str
    depth: int
    corpora: tuple[str, ...]
    description: str


RECIPES: dict[str, Recipe] = {
    "cervical-bethesda": Recipe(
        "cervical-bethesda", "Cervical cytology on the Bethesda categories", "bethesda-2014", 1,
        ("hicervix", "sipakmed", "herlev", "cric", "mendeley-lbc", "cccid"),
        "Cervical cytology images and cells from six public corpora, labelled with the top level of the Bethesda "
        "System 2014 (NILM, ASC, LSIL, HSIL, SCC, AGC, Adenocarcinoma). Liquid-based and conventional smears, "
        "single cells and fields of view: a test of how a classifier trained on some corpora carries to "
        "another (the holdout configurations)."),
    "haematology-lineage": Recipe(
        "haematology-lineage", "Blood and bone-marrow cells by haematopoietic lineage", "hematopoiesis", 2,
        ("bone-marrow", "aml-cytomorphology-lmu", "bmcd-fgcd"),
        "Single-cell images of bone-marrow aspirates and peripheral blood from three public corpora, labelled "
        "with their haematopoietic lineage (granulocytic, erythroid, lymphoid, monocytic, megakaryocytic, ...), "
        "cytohub's `hematopoiesis` tree cut at depth 2."),
}

# Why a row (or an object of a row without an image label) is left out. Codes are negative class indexes.
REASONS: dict[str, str] = {
    "no-harmonized": "the source class has no harmonized node (no honest mapping)",
    "unknown-node": "the harmonized node is not in this cytohub's taxonomy",
    "other-tree": "the harmonized node belongs to another taxonomy tree",
    "above-depth": "the harmonized node lies above the chosen depth and has finer classes below it",
    "unlabelled": "no image label and no objects",
    "object-undeclared": "an object's category is not declared by the corpus's builder",
    "object-no-harmonized": "an object's category has no harmonized node",
    "object-unknown-node": "an object's harmonized node is not in this cytohub's taxonomy",
    "object-other-tree": "an object's harmonized node belongs to another taxonomy tree",
    "object-above-depth": "an object's harmonized node lies above the chosen depth and has finer classes below",
}
_REASON_KEYS = list(REASONS)
CODE = {key: -(i + 1) for i, key in enumerate(_REASON_KEYS)}


def reason_of(code: int) -> str:
    return _REASON_KEYS[-code - 1]


@dataclass
class MixResult:
    out: Path
    report: dict[str, Any]
    seconds: float


# ============================================================================================ the cut
class Cut:
    """Taxonomy tree `tree` cut at `depth`: its classes and the vectorised node -> class lookup."""

    def __init__(self, tree: str, depth: int) -> None:
        tax = load_taxonomy()
        if tree not in tax.trees:
            import difflib

            close = difflib.get_close_matches(tree, list(tax.trees), n=1, cutoff=0.5)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise CytohubError(f"--taxonomy {tree!r} is not a taxonomy tree; {hint}expected one of "
                               f"{', '.join(tax.trees)}")
        deepest = tax.max_depth(tree)
        if not 1 <= depth <= deepest:
            raise CytohubError(f"--depth {depth}: the tree {tree} has depths 1 to {deepest} (1 = its top level)")
        self.tree, self.depth = tree, depth
        self.classes = tax.classes_at_depth(tree, depth)
        self.class_names = pa.array(self.classes, pa.string())
        self.titles = {c: tax.nodes[c].name for c in self.classes}
        index = {c: i for i, c in enumerate(self.classes)}
        self.nodes = list(tax.nodes)
        self.node_values = pa.array(self.nodes, pa.string())
        codes = []
        for n in self.nodes:
            if tax.nodes[n].tree != tree:
                codes.append(CODE["other-tree"])
            else:
                c = tax.at_depth(n, depth)
                codes.append(CODE["above-depth"] if c is None else index[c])
        self._node_code = np.array(codes, dtype=np.int64)

    def node_code(self, node: str | None) -> int:
        """Class index of one harmonized node, or a negative reason code."""
        if node is None:
            return CODE["no-harmonized"]
        try:
            return int(self._node_code[self.nodes.index(node)])
        except ValueError:
            return CODE["unknown-node"]

    def codes(self, harmonized: pa.Array) -> np.ndarray:
        """Class index (>= 0) or reason code (< 0) of each value of a string array of harmonized nodes."""
        idx = pc.index_in(harmonized, value_set=self.node_values)
        pos = idx.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
        out = np.where(pos >= 0, self._node_code[np.maximum(pos, 0)], CODE["unknown-node"])
        null = harmonized.is_null().to_numpy(zero_copy_only=False)
        return np.where(null, CODE["no-harmonized"], out)


class ObjectMap:
    """A source's object categories -> class index (>= 0) or object reason code (< 0), from its builder's
    declared `object_labels` (each with its harmonized node)."""

    def __init__(self, builder: Builder, cut: Cut) -> None:
        self.categories = [lab.name for lab in builder.object_labels]
        self.harmonized = {lab.name: lab.harmonized for lab in builder.object_labels}
        self.values = pa.array(self.categories, pa.string())
        codes = []
        for lab in builder.object_labels:
            c = cut.node_code(lab.harmonized)
            codes.append(c if c >= 0 else CODE["object-" + reason_of(c)])
        self._code = np.array(codes + [CODE["object-undeclared"]], dtype=np.int64)

    def codes(self, categories: pa.Array) -> np.ndarray:
        idx = pc.index_in(categories, value_set=self.values)
        pos = idx.fill_null(len(self.categories)).to_numpy(zero_copy_only=False).astype(np.int64)
        return self._code[pos]


# ============================================================================================ sources
@dataclass
class Source:
    """One input build folder."""

    folder: Path
    report: dict[str, Any]
    builder: Builder
    corpus: str
    native: list[str]  # the source's ClassLabel names
    shards: dict[str, list[Path]]  # source split -> shard paths, in order
    report_sha256: str
    listed: dict[str, dict[str, Any]]  # the source build's manifest entries of its shards, by path under data/

    @property
    def splits(self) -> dict[str, str]:
        """Source split -> mix split."""
        return {s: SPLIT_ALIASES.get(s, s) for s in self.shards}


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _native_names(schema: pa.Schema, where: Path) -> list[str]:
    try:
        feats = json.loads(schema.metadata[b"huggingface"])["info"]["features"]
        return list(feats["label"]["names"])
    except (TypeError, KeyError, ValueError):
        raise CytohubError(f"{where}: no cytohub features in the Parquet metadata; expected a shard written by "
                           "`cytohub build`") from None


def open_source(folder: Path) -> Source:
    """Read and check one build folder: its report and manifest (`cytohub.manifest`), its corpus (known to this
    cytohub), its schema version and shards. Every shard must be listed in the build's manifest with its size
    (the sha256 are checked by `verify_sources` while the rows are read). Raises CytohubError naming the folder
    and what was expected."""
    path = folder / REPORT
    if not folder.is_dir():
        raise CytohubError(f"{folder} is not a folder; expected a build folder made by `cytohub build`")
    report = manifest.read_report(folder)  # CytohubError naming the file when it is not a build report
    corpus = report["builder"].get("name")
    if report.get("kind") == KIND:
        raise CytohubError(f"{folder} is itself a mix; mix the build folders of its sources instead")
    if not isinstance(corpus, str):
        raise CytohubError(f"{path}: not a cytohub build report (no builder name)")
    if str(report.get("schema_version")) != SCHEMA_VERSION:
        raise CytohubError(f"{folder} was built with cytohub schema v{report.get('schema_version')}; this cytohub "
                           f"writes v{SCHEMA_VERSION}: rebuild it with `cytohub build {corpus}`")
    try:
        entries = {e["path"]: e for e in manifest.entries(report)}
    except CytohubError as exc:
        raise CytohubError(f"{folder}: {exc}") from None
    builder = registry.get(corpus)
    shards: dict[str, list[Path]] = {}
    listed: dict[str, dict[str, Any]] = {}
    native: list[str] | None = None
    for split, info in (report.get("splits") or {}).items():
        paths = []
        for name in info.get("shards", []):
            p = folder / "data" / name
            m = SHARD_RE.match(name)
            if not m or m["split"] != split or p.is_symlink() or not p.is_file():
                raise CytohubError(f"{p}: shard listed in {path} is missing or misnamed; expected "
                                   f"{split}-NNNNN-of-NNNNN.parquet under data/")
            entry = entries.get(f"data/{name}")
            if entry is None:
                raise CytohubError(f"{p}: not in the manifest of {path}; the folder is not the build: rebuild it")
            if p.stat().st_size != entry["size"]:
                raise CytohubError(f"{p} changed since its build (size differs from the manifest of {path}); "
                                   f"rebuild {corpus} or restore the file")
            listed[name] = entry
            schema = pq.read_schema(p)
            names = _native_names(schema, p)
            if native is None:
                native = names
            elif names != native:
                raise CytohubError(f"{p}: its label classes differ from the other shards of {folder}")
            if not schema.equals(storage_schema(names), check_metadata=False):
                raise CytohubError(f"{p}: its columns are not cytohub schema v{SCHEMA_VERSION}; rebuild {corpus}")
            paths.append(p)
        shards[split] = paths
    if native is None:
        raise CytohubError(f"{folder}: its build report lists no shards")
    return Source(folder, report, builder, builder.name, native, shards, _sha256(path), listed)


def verify_sources(srcs: Sequence[Source]) -> list[str]:
    """sha256 of every source shard against its build's manifest: one line per shard that changed since its
    build (empty when every shard is the build's). Run on a thread while the rows are read (hashing releases
    the GIL)."""
    problems = []
    for s in srcs:
        names = sorted(s.listed)
        try:
            digests = manifest.hash_files(s.folder / "data", names)
        except OSError as exc:
            problems.append(f"{s.folder / 'data'}: a shard cannot be read ({os_reason(exc)})")
            continue
        problems += [f"{s.folder / 'data' / n} changed since its build (sha256 differs from the manifest of "
                     f"{s.folder / REPORT})" for n in names if digests[n] != s.listed[n]["sha256"]]
    return problems


# ============================================================================================ one row group
@dataclass
class Outcome:
    """What happens to each row of a table: kept or why not, its new label, and its objects' classes."""

    keep: np.ndarray  # bool per row
    reason: np.ndarray  # 0 when kept, else a negative reason code
    label: np.ndarray  # new label per row (-1 for rows kept through their objects)
    detection: np.ndarray  # bool per row: no image label, kept or judged through its objects
    obj_parent: np.ndarray  # row of each object
    obj_code: np.ndarray  # class index or object reason code of each object


def outcome(table: pa.Table, cut: Cut, objects: ObjectMap) -> Outcome:
    """Decide every row of `table` (columns `label`, `harmonized`, `objects`) with Arrow and NumPy."""
    label = table.column("label").combine_chunks().fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
    harm = table.column("harmonized").combine_chunks()
    code = cut.codes(harm)
    no_harm = harm.is_null().to_numpy(zero_copy_only=False)
    detection = (label < 0) & no_harm
    objs = table.column("objects").combine_chunks()
    nobj = pc.list_value_length(objs).fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)
    if len(pc.list_flatten(objs)):
        parent = pc.list_parent_indices(objs).to_numpy(zero_copy_only=False).astype(np.int64)
        obj_code = objects.codes(pc.list_flatten(objs).field("category"))
    else:
        parent = np.zeros(0, dtype=np.int64)
        obj_code = np.zeros(0, dtype=np.int64)
    reason = np.where(detection, 0, np.where(code >= 0, 0, code)).astype(np.int64)
    reason[detection & (nobj == 0)] = CODE["unlabelled"]
    bad = (obj_code < 0) & detection[parent] if len(parent) else np.zeros(0, dtype=bool)
    if bad.any():
        rows, first = np.unique(parent[bad], return_index=True)
        reason[rows] = obj_code[bad][first]
    keep = reason == 0
    new_label = np.where(~detection & (code >= 0), code, -1)
    return Outcome(keep, reason, new_label, detection, parent, obj_code)


def _array(col: pa.ChunkedArray) -> pa.Array:
    """The column as one array (a row group's columns are one chunk: no copy then)."""
    return col.chunk(0) if col.num_chunks == 1 else col.combine_chunks()


def _prefixed(prefix: str, values: pa.Array) -> pa.Array:
    return pc.binary_join_element_wise(pa.scalar(prefix), values, "/")


def transform(table: pa.Table, res: Outcome, source: str, cut: Cut, schema: pa.Schema) -> pa.Table:
    """The kept rows of `table` in the mix's schema: new `label`, objects of label-less rows recategorised,
    `id` and `group` prefixed with `source/`, and the `source` column."""
    cols = {name: _array(table.column(name)) for name in table.column_names}
    cols["label"] = pa.array(res.label, pa.int64())
    cols["id"] = _prefixed(source, cols["id"])
    group = cols["group"]
    if group.null_count < len(group):
        children = group.flatten()
        cols["group"] = pa.StructArray.from_arrays([_prefixed(source, c) for c in children],
                                                   fields=list(group.type), mask=group.is_null())
    if len(res.obj_parent) and res.detection[res.obj_parent].any():
        objs = cols["objects"]
        flat = pc.list_flatten(objs)
        children = flat.flatten()
        renamed = res.detection[res.obj_parent] & (res.obj_code >= 0)
        new_cat = pc.if_else(pa.array(renamed), cut.class_names.take(pa.array(np.maximum(res.obj_code, 0))),
                             children[0])
        struct = pa.StructArray.from_arrays([new_cat, *children[1:]], fields=list(flat.type))
        offsets = pc.subtract(objs.offsets, objs.offsets[0])
        cols["objects"] = pa.ListArray.from_arrays(offsets, struct, type=objs.type,
                                                   mask=objs.is_null() if objs.null_count else None)
        if renamed.any():
            cols["extra"] = _keep_source_categories(cols["extra"], children[0], offsets.to_numpy(),
                                                    np.unique(res.obj_parent[renamed]))
    cols[SOURCE_COLUMN] = pa.array([source] * table.num_rows, pa.string())
    out = pa.Table.from_arrays([cols[f.name] for f in schema], schema=schema)
    return out if res.keep.all() else out.filter(pa.array(res.keep))


def _keep_source_categories(extra: pa.Array, categories: pa.Array, offsets: np.ndarray,
                            rows: np.ndarray) -> pa.Array:
    """`extra` with `source_object_categories` (the corpus's own category of each object, in `objects` order)
    added to each of `rows`, whose objects' categories the mix replaced by its classes: the original stays in
    the row, as `label_path` keeps a row's own label. A row's `extra` that is not a JSON object is kept under
    `extra`."""
    values = extra.to_pylist()
    names = categories.to_pylist()
    for r in rows.tolist():
        old = json.loads(values[r]) if values[r] else {}
        new = dict(old) if isinstance(old, dict) else {"extra": old}
        new["source_object_categories"] = names[offsets[r]:offsets[r + 1]]
        values[r] = json.dumps(new, sort_keys=True, ensure_ascii=False, allow_nan=False)
    return pa.array(values, extra.type)


def row_nbytes(table: pa.Table) -> np.ndarray:
    """Estimated Arrow size of each row (the same terms as `cytohub.encode.row_nbytes`), vectorised."""
    n = table.num_rows
    size = np.full(n, 256, dtype=np.int64)

    def lengths(arr: pa.Array) -> np.ndarray:
        if pa.types.is_struct(arr.type):  # an image: its bytes
            arr = arr.field("bytes")
        if isinstance(arr, pa.ExtensionArray):  # `extra` (JSON text)
            arr = arr.storage
        return pc.binary_length(arr).fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)

    for name in ("id", "source_path", "extra", "image", "mask"):
        arr = table.column(name).combine_chunks()
        size += lengths(arr)
        if name in ("image", "mask"):
            size += 16 * arr.is_valid().to_numpy(zero_copy_only=False)
    for name in ("focal_stack", "objects"):
        arr = table.column(name).combine_chunks()
        flat = pc.list_flatten(arr)
        if not len(flat):
            continue
        parent = pc.list_parent_indices(arr).to_numpy(zero_copy_only=False)
        if name == "focal_stack":
            each = lengths(flat) + 16
        else:
            each = 32 + lengths(flat.field("category"))
            for k in ("bbox", "polygon", "point"):
                each += 4 * pc.list_value_length(flat.field(k)).fill_null(0).to_numpy(zero_copy_only=False)
        size += np.bincount(parent, weights=each, minlength=n).astype(np.int64)
    return size


# ============================================================================================ schema
def mix_schema(classes: Sequence[str], name: str | None = None, synthetic: bool = False) -> pa.Schema:
    """The Arrow schema of a mix's shards: `cytohub.encode.storage_schema(classes)` plus `source` (string),
    with the `huggingface` features metadata to match and, as a build's shards, the `cytohub` metadata
    {"builder": the mix's name, "synthetic": whether any source is synthetic} that `validate` compares with
    the report."""
    base = storage_schema(classes)
    meta = json.loads(base.metadata[b"huggingface"])
    meta["info"]["features"][SOURCE_COLUMN] = {"dtype": "string", "_type": "Value"}
    own = json.dumps({"builder": name, "synthetic": synthetic}, sort_keys=True)
    return base.append(pa.field(SOURCE_COLUMN, pa.string())).with_metadata({"huggingface": json.dumps(meta),
                                                                             "cytohub": own})


def mix_features(classes: Sequence[str]):
    """The `datasets.Features` of a mix: the unified schema with these classes, plus `source`."""
    from datasets import Features, Value

    from cytohub.schema import features

    return Features({**features(classes), SOURCE_COLUMN: Value("string")})


# ============================================================================================ the mix
@dataclass
class _Part:
    """The rows of one source that go to one split of the mix."""

    source: Source
    split: str
    from_splits: list[str]
    sizes: list[np.ndarray] = field(default_factory=list)  # estimated bytes of kept rows, per row group
    rows_read: int = 0
    kept: int = 0
    labels: np.ndarray | None = None  # kept labelled rows per class
    objects: np.ndarray | None = None  # objects of kept label-less rows per class
    num_bytes: int = 0  # Arrow bytes, as `datasets` counts them
    parquet_bytes: int = 0  # bytes of the shard files
    files: list[str] = field(default_factory=list)  # relative to data/


def _row_groups(paths: list[Path], columns: list[str] | None = None) -> Iterator[tuple[pq.ParquetFile, int, pa.Table]]:
    for p in paths:
        pf = pq.ParquetFile(p)
        for rg in range(pf.num_row_groups):
            yield pf, rg, pf.read_row_group(rg, columns=columns)


def resolve(name: str | None, recipe: str | None, taxonomy: str | None, depth: int | None,
            corpora: list[str], allow_missing: bool) -> tuple[str, Recipe | None, str, int]:
    """(name, recipe, tree, depth) from the arguments; raises CytohubError on a conflict."""
    rec = None
    if recipe is not None:
        rec = RECIPES.get(recipe)
        if rec is None:
            raise CytohubError(f"--recipe {recipe!r}: expected one of {', '.join(RECIPES)}")
        if taxonomy is not None and taxonomy != rec.tree or depth is not None and depth != rec.depth:
            raise CytohubError(f"recipe {rec.name} fixes --taxonomy {rec.tree} --depth {rec.depth}; leave them out")
        foreign = [c for c in corpora if c not in rec.corpora]
        if foreign:
            raise CytohubError(f"recipe {rec.name} is made of {', '.join(rec.corpora)}; "
                               f"{', '.join(foreign)} is not one of them")
        missing = [c for c in rec.corpora if c not in corpora]
        if missing and not allow_missing:
            raise CytohubError(f"recipe {rec.name} needs build folders of {', '.join(missing)} too (pass "
                               "--allow-missing to mix without them; the card then says so)")
        name, taxonomy, depth = name or rec.name, rec.tree, rec.depth
    if not name:
        raise CytohubError("a mix needs a NAME (or --recipe)")
    if not NAME_RE.match(name):
        raise CytohubError(f"mix name {name!r}: expected letters, digits, '.', '_' or '-' (a Hub repo name)")
    if taxonomy is None:
        raise CytohubError("--taxonomy TREE is required without --recipe (e.g. bethesda-2014, hematopoiesis)")
    return name, rec, taxonomy, 1 if depth is None else depth


def mix(name: str | None, sources: Sequence[str | os.PathLike], out: str | os.PathLike, *,
        taxonomy: str | None = None, depth: int | None = None, recipe: str | None = None,
        allow_leakage: bool = False, allow_missing: bool = False, audit_threshold: int = DEFAULT_THRESHOLD,
        overwrite: bool = False, max_shard_bytes: int = DEFAULT_MAX_SHARD_BYTES, audit: bool = True,
        progress: Callable[[str, int | None], None] | None = None) -> MixResult:
    """Mix the build folders `sources` into the build folder `out` (see the module doc).

    `audit=False` skips the duplicate audit (for timing the copy; the report then says `audited: false`).
    Raises CytohubError for bad arguments, unusable sources and, without `allow_leakage`, leakage; nothing is
    left at `out` on failure (the mix is written to a staging folder and renamed into place)."""
    t0 = time.monotonic()
    note = progress or (lambda msg, n=None: None)
    out = Path(out).expanduser()
    if not sources:
        raise CytohubError("no build folder given; pass --from BUILD_DIR for each source corpus")
    srcs = [open_source(Path(s).expanduser()) for s in sources]
    seen: dict[str, Path] = {}
    for s in srcs:
        if s.corpus in seen:
            raise CytohubError(f"{seen[s.corpus]} and {s.folder} are both builds of {s.corpus}; give each corpus once")
        seen[s.corpus] = s.folder
        check_destination(out, s.folder, what="the source build")  # not the source, not inside it, not around it
    check_destination(out)
    fake = [s.corpus for s in srcs if s.report.get("synthetic")]
    if fake and len(fake) < len(srcs):
        real = [s.corpus for s in srcs if not s.report.get("synthetic")]
        raise CytohubError(f"{', '.join(fake)} built from synthetic raw data and {', '.join(real)} from real data: "
                           "a mix is either synthetic or real (its card, title and push rules say which); mix "
                           "builds of one kind")
    name, rec, tree, depth = resolve(name, recipe, taxonomy, depth, [s.corpus for s in srcs], allow_missing)
    if not 0 <= audit_threshold <= 63:
        raise CytohubError(f"--audit-threshold {audit_threshold}: expected 0..63 bits of the 64-bit pHash")
    cut = Cut(tree, depth)
    manifest.check_replace(out, overwrite)  # fail fast, after the arguments; checked again under the lock
    srcs.sort(key=lambda s: s.corpus)
    with staging_for_destination(out, overwrite) as staging:  # under out's lock, as builds are
        report = _mix_staged(staging, out, name, rec, cut, srcs, max_shard_bytes, allow_leakage, allow_missing,
                             audit, audit_threshold, note)
    return MixResult(out, report, time.monotonic() - t0)


def _mix_staged(staging: Path, out: Path, name: str, rec: Recipe | None, cut: Cut, srcs: list[Source],
                max_shard_bytes: int, allow_leakage: bool, allow_missing: bool, audit: bool, audit_threshold: int,
                note) -> dict[str, Any]:
    """Write the mix into `staging`, then rename it to `out`; on any failure remove `staging`. The sources'
    shards are hashed against their builds' manifests while the rows are read; a changed shard fails the mix."""
    hashing = _background(lambda: verify_sources(srcs))

    def sources_unchanged() -> None:
        changed = hashing.result()
        if changed:
            raise CytohubError("\n".join(changed[:20]) + f"\nA source is no longer its build; nothing was written at "
                               f"{out}. Rebuild it (or restore its files) and mix again.")

    try:
        try:
            report = _mix_into(staging, name, rec, cut, srcs, max_shard_bytes, note)
        except Exception:
            sources_unchanged()  # a changed source explains a failure to read it
            raise
        sources_unchanged()
        report["parameters"].update(audit_threshold=audit_threshold, allow_leakage=allow_leakage,
                                    allow_missing=allow_missing)
        if audit:
            note("auditing duplicates", None)
            report["audit"] = audit_mix(staging, report, audit_threshold, note)
            leaks = {c: v for c, v in report["audit"]["configs"].items() if v["pairs"] or v["groups"]}
            if leaks and not allow_leakage:
                raise CytohubError(_leak_message(name, out, report["audit"], leaks))
        else:
            report["audit"] = {"audited": False}
        note("drawing figures", None)
        report["assets"] = _figures(staging, report, cut, srcs)
        for file_name, text in card_files(report).items():
            (staging / file_name).write_text(text, encoding="utf-8")
        report["manifest"] = manifest.compute(staging, exclude=(REPORT,))  # every file written, the card included
        write_report(staging / REPORT, report)
        move_into_place(staging, out)
    except BaseException as exc:
        hashing.cancel()
        shutil.rmtree(staging, ignore_errors=True)
        disk = disk_cause(exc)
        if disk is not None and not isinstance(exc, CytohubError):
            raise OutputError(f"{out}: the mix could not be written ({os_reason(disk)}); nothing was written "
                              "there") from None
        raise
    return report


def _mix_into(staging: Path, name: str, rec: Recipe | None, cut: Cut, srcs: list[Source], max_shard_bytes: int,
              note) -> dict[str, Any]:
    k = len(cut.classes)
    schema = mix_schema(cut.classes, name, any(bool(s.report.get("synthetic")) for s in srcs))
    parts: list[_Part] = []
    tallies: dict[str, _SourceTally] = {}
    samples = _SampleDraw()
    done = 0
    # pass 1: decide every row from its small columns; estimate the kept rows' sizes for the shard plan
    for s in srcs:
        objmap = ObjectMap(s.builder, cut)
        info = _SourceTally(s, cut, objmap)
        by_split: dict[str, _Part] = {}
        for src_split, to in s.splits.items():
            part = by_split.get(to)
            if part is None:
                part = by_split[to] = _Part(s, to, [], labels=np.zeros(k, np.int64), objects=np.zeros(k, np.int64))
            part.from_splits.append(src_split)
            for pf, rg, t in _row_groups(s.shards[src_split], ["id", "label", "harmonized", "objects"]):
                res = outcome(t, cut, objmap)
                info.add(t, res, src_split)
                meta = pf.metadata.row_group(rg)
                per_row = meta.total_byte_size / max(1, meta.num_rows)
                kept = int(res.keep.sum())
                part.rows_read += t.num_rows
                part.kept += kept
                part.sizes.append(np.full(kept, int(per_row), dtype=np.int64))
                lab = res.keep & ~res.detection
                part.labels += np.bincount(res.label[lab], minlength=k)
                ok_obj = res.keep[res.obj_parent] & res.detection[res.obj_parent] if len(res.obj_parent) else \
                    np.zeros(0, dtype=bool)
                part.objects += np.bincount(res.obj_code[ok_obj], minlength=k)
                samples.offer(s, src_split, t, res)
                done += t.num_rows
                note("rows", done)
        parts += [p for p in by_split.values()]
        tallies[s.corpus] = info
    if not any(p.kept for p in parts):
        raise CytohubError(f"no row of {', '.join(s.corpus for s in srcs)} maps to a class of {cut.tree} at depth "
                           f"{cut.depth}; nothing to mix")
    for s in srcs:  # a corpus without a row would be named, cited and licensed by a mix that holds none of it
        if not any(p.kept for p in parts if p.source is s):
            left = tallies[s.corpus].left_out
            why = ", ".join(f"{n:,} {reason}" for reason, n in sorted(left.items(), key=lambda kv: -kv[1]))
            raise CytohubError(f"{s.folder}: no row of {s.corpus} maps to a class of {cut.tree} at depth {cut.depth} "
                               f"({why}); leave it out of --from")
    # pass 2: read every kept row once more, whole, and write it into its source's shards
    note("writing shards", None)
    written = 0
    for part in parts:
        if not part.kept:
            continue
        s = part.source
        folder = staging / "data" / s.corpus
        folder.mkdir(parents=True, exist_ok=True)
        plan = ShardPlan(part.split, plan_shards(np.concatenate(part.sizes), max_shard_bytes))
        writer = SplitWriter(folder, plan, schema, parquet_options(schema, compress_images=_compressed_images(s)))
        objmap = ObjectMap(s.builder, cut)
        for src_split in part.from_splits:
            for _pf, _rg, t in _row_groups(s.shards[src_split]):
                res = outcome(t, cut, objmap)
                if not res.keep.any():
                    continue
                kept = transform(t, res, s.corpus, cut, schema)
                sizes = row_nbytes(kept)
                for batch in kept.to_batches():
                    writer.write(batch, sizes[:batch.num_rows])
                    sizes = sizes[batch.num_rows:]
                written += kept.num_rows
                note("rows written", written)
        part.files = [f"{s.corpus}/{f}" for f in writer.close()]
        part.num_bytes = writer.num_bytes
        part.parquet_bytes = sum((staging / "data" / f).stat().st_size for f in part.files)
    return _report(name, rec, cut, srcs, parts, tallies, samples, max_shard_bytes)


def _compressed_images(s: Source) -> bool:
    """Whether the source build compressed its image bytes (it decided so where zstd saves >= 10%): the mix
    keeps that choice for the source's rows."""
    for paths in s.shards.values():
        for p in paths:
            md = pq.ParquetFile(p).metadata
            if md.num_row_groups:
                for j in range(md.num_columns):
                    col = md.row_group(0).column(j)
                    if col.path_in_schema == "image.bytes":
                        return col.compression.upper() != "UNCOMPRESSED"
    return False


class _SourceTally:
    """Per source: rows read and kept per split, left-out rows per reason, and the mapping table's counts."""

    def __init__(self, s: Source, cut: Cut, objmap: ObjectMap) -> None:
        self.s, self.cut, self.objmap = s, cut, objmap
        self.read: dict[str, int] = {}
        self.kept: dict[str, int] = {}
        self.left_out: dict[str, int] = {}
        self.classes: dict[tuple[int, str | None], dict[str, Any]] = {}  # (native label, harmonized) -> counts
        self.object_counts: dict[tuple[str, bool], int] = {}  # (category, in a label-less row) -> objects

    def add(self, t: pa.Table, res: Outcome, split: str) -> None:
        self.read[split] = self.read.get(split, 0) + t.num_rows
        self.kept[split] = self.kept.get(split, 0) + int(res.keep.sum())
        codes, counts = np.unique(res.reason[~res.keep], return_counts=True)
        for c, n in zip(codes.tolist(), counts.tolist(), strict=True):
            key = reason_of(c)
            self.left_out[key] = self.left_out.get(key, 0) + n
        labelled = ~res.detection
        if labelled.any():
            lab = t.column("label").combine_chunks().fill_null(-1).to_numpy(zero_copy_only=False)[labelled]
            harm = t.column("harmonized").combine_chunks().filter(pa.array(labelled))
            pairs = pa.table({"l": pa.array(lab, pa.int64()), "h": harm}).group_by(["l", "h"]).aggregate(
                [("l", "count")])
            for li, h, n in zip(pairs.column("l").to_pylist(), pairs.column("h").to_pylist(),
                                pairs.column("l_count").to_pylist(), strict=True):
                entry = self.classes.setdefault((li, h), {"rows": 0})
                entry["rows"] += n
        if len(res.obj_parent):
            cats = pc.list_flatten(t.column("objects").combine_chunks()).field("category")
            det = res.detection[res.obj_parent]
            for flag in (True, False):
                sel = det if flag else ~det
                if sel.any():
                    vc = pc.value_counts(cats.filter(pa.array(sel)))
                    for v in vc.to_pylist():
                        key = (v["values"], flag)
                        self.object_counts[key] = self.object_counts.get(key, 0) + v["counts"]

    def to_dict(self) -> dict[str, Any]:
        cut = self.cut
        rows = []
        counts = dict(self.classes)
        for i, lab in enumerate(self.s.builder.labels):  # declared classes without rows are listed too
            if i < len(self.s.native) and self.s.native[i] == lab.name and not any(k[0] == i for k in counts):
                counts[(i, lab.harmonized)] = {"rows": 0}
        for (li, h), e in sorted(counts.items(), key=lambda kv: (kv[0][0], kv[0][1] or "")):
            code = cut.node_code(h)
            rows.append({"native": self.s.native[li] if 0 <= li < len(self.s.native) else None,
                         "harmonized": h, "class": cut.classes[code] if code >= 0 else None,
                         "left_out": None if code >= 0 else reason_of(code), "rows": e["rows"]})
        objects = []
        for (cat, labelless), n in sorted(self.object_counts.items()):
            if labelless:
                code = int(self.objmap.codes(pa.array([cat], pa.string()))[0])
                objects.append({"category": cat, "harmonized": self.objmap.harmonized.get(cat),
                                "class": cut.classes[code] if code >= 0 else None,
                                "left_out": None if code >= 0 else reason_of(code), "objects": n,
                                "in": "rows without an image label"})
            else:
                objects.append({"category": cat, "harmonized": self.objmap.harmonized.get(cat), "class": None,
                                "left_out": None, "objects": n, "in": "labelled rows (category kept as is)"})
        return {"read": self.read, "kept": self.kept, "left_out": dict(sorted(self.left_out.items())),
                "classes": rows, "objects": objects}


def _report(name: str, rec: Recipe | None, cut: Cut, srcs: list[Source], parts: list[_Part],
            tallies: dict[str, _SourceTally], samples: _SampleDraw, max_shard_bytes: int) -> dict[str, Any]:
    tax = load_taxonomy()
    classes = cut.classes
    splits: dict[str, dict[str, Any]] = {}
    for p in parts:
        if not p.kept:
            continue
        sp = splits.setdefault(p.split, {"num_examples": 0, "num_bytes": 0, "parquet_bytes": 0, "shards": [],
                                         "sources": {}, "labels": {}, "objects": {}})
        sp["num_examples"] += p.kept
        sp["num_bytes"] += p.num_bytes
        sp["parquet_bytes"] += p.parquet_bytes
        sp["shards"] += p.files
        sp["sources"][p.source.corpus] = p.kept
        for key, arr in (("labels", p.labels), ("objects", p.objects)):
            for i, n in enumerate(arr.tolist()):
                if n:
                    sp[key][classes[i]] = sp[key].get(classes[i], 0) + n
    split_order = _split_order(splits)
    splits = {s: splits[s] for s in split_order}
    per_source: dict[str, dict[str, Any]] = {}
    for p in parts:
        if p.kept:
            per_source.setdefault(p.source.corpus, {})[p.split] = {
                "rows": p.kept,
                "labels": {classes[i]: n for i, n in enumerate(p.labels.tolist()) if n},
                "objects": {classes[i]: n for i, n in enumerate(p.objects.tolist()) if n}}
    per_source_split = {(p.source.corpus, p.split): p for p in parts if p.kept}
    configs = _configs(srcs, per_source_split, split_order)
    sources = []
    for s in srcs:
        b, r = s.builder, s.report
        sources.append({
            "corpus": s.corpus, "pretty_name": b.pretty_name, "folder": s.folder.name,
            "builder": r["builder"], "builder_version_installed": b.version,
            "cytohub_version": r.get("cytohub_version"), "schema_version": r.get("schema_version"),
            "synthetic": bool(r.get("synthetic")), "license": b.license, "license_name": b.license_name,
            "license_id": b.license_id, "license_link": b.license_link, "redistribution": b.redistribution,
            "attribution": b.attribution,
            "completeness": source_completeness(r), "partial": (r.get("completeness") or {}).get("partial"),
            "homepage": b.homepage, "citation": b.citation.strip(), "report_sha256": s.report_sha256,
            "source_splits": {sp: to for sp, to in s.splits.items()},
            "inputs": [{"path": i["path"], "size": i["size"], "sha256": i["sha256"]} for i in r.get("inputs", [])],
            "rows": {to: sum(p.kept for p in parts if p.source is s and p.split == to) for to in split_order
                     if (s.corpus, to) in per_source_split},
            "object_categories": {lab.name: lab.harmonized for lab in b.object_labels},
            **tallies[s.corpus].to_dict(),
        })
    return {
        "kind": KIND,
        "cytohub_version": __version__,
        "schema_version": SCHEMA_VERSION,
        "builder": {"name": name, "version": MIX_VERSION, "layout": KIND},
        "mix": {"name": name, "recipe": rec.name if rec else None, "title": rec.title if rec else None,
                "description": rec.description if rec else None,
                "recipe_corpora": list(rec.corpora) if rec else None,
                "taxonomy": cut.tree, "taxonomy_title": tax.trees[cut.tree]["title"],
                "taxonomy_version": TAXONOMY_VERSION, "depth": cut.depth, "classes": classes,
                "class_titles": cut.titles, "source_column": SOURCE_COLUMN, "split_aliases": SPLIT_ALIASES},
        "synthetic": any(x["synthetic"] for x in sources),
        "synthetic_marker": {"sources": {s.corpus: s.report.get("synthetic_marker") for s in srcs
                                         if s.report.get("synthetic")}} if any(x["synthetic"] for x in sources)
        else None,
        "completeness": {"partial": "; ".join(f"{x['corpus']} {x['partial']}" for x in sources if x["partial"])
                         or None,
                         "sources": {x["corpus"]: x["completeness"] for x in sources}},
        "redistribution": max((x["redistribution"] for x in sources), key=REDISTRIBUTION.index),
        "parameters": {"max_shard_bytes": max_shard_bytes},
        "num_rows": sum(s["num_examples"] for s in splits.values()),
        "splits": splits,
        "configs": configs,
        "per_source": {c: {sp: per_source[c][sp] for sp in split_order if sp in per_source[c]}
                       for c in sorted(per_source)},
        "sources": sources,
        "samples": samples.chosen(),
    }


def source_completeness(report: dict[str, Any]) -> str:
    """One line on how complete a source build is against what its publisher states (its report's
    `completeness`, see `cytohub.completeness`)."""
    c = report.get("completeness")
    if not c:
        return "not recorded by its build"
    if c.get("partial"):
        return f"partial: {c['partial']}"
    if not c.get("declared"):
        return "the publisher states no counts to compare with"
    if not c.get("checked"):
        return f"not compared with the published counts ({c.get('basis')})"
    return "complete against what the publisher states"


def _split_order(splits: dict[str, Any]) -> list[str]:
    known = ["train", "validation", "test"]
    return [s for s in known if s in splits] + sorted(s for s in splits if s not in known)


def _sizes(parts: list[_Part]) -> dict[str, int]:
    return {"num_examples": sum(p.kept for p in parts), "num_bytes": sum(p.num_bytes for p in parts),
            "parquet_bytes": sum(p.parquet_bytes for p in parts)}


def _configs(srcs: list[Source], parts: dict[tuple[str, str], _Part], split_order: list[str]) -> dict[str, Any]:
    """The configurations: {name: {split: {"num_examples", "num_bytes", "data_files": [glob, ...]}}}."""
    configs: dict[str, dict[str, Any]] = {"default": {}}
    for split in split_order:
        members = [p for (c, sp), p in parts.items() if sp == split]
        configs["default"][split] = {**_sizes(members), "data_files": [f"data/*/{split}-*.parquet"]}
    present = sorted({c for c, _ in parts})
    if len(present) < 2:
        return configs
    for held in present:
        cfg: dict[str, Any] = {}
        for split in TRAINING_SPLITS:
            members = [p for (c, sp), p in sorted(parts.items()) if sp == split and c != held]
            if members:
                cfg[split] = {**_sizes(members),
                              "data_files": [f"data/{p.source.corpus}/{split}-*.parquet" for p in members]}
        test = [p for (c, _), p in sorted(parts.items()) if c == held]
        if "train" not in cfg:
            continue  # nothing to train on without the held-out corpus
        cfg["test"] = {**_sizes(test), "data_files": [f"data/{held}/*.parquet"]}
        configs[HOLDOUT_PREFIX + held] = cfg
    return configs


# ============================================================================================ audit
def audit_mix(folder: Path, report: dict[str, Any], threshold: int, note) -> dict[str, Any]:
    """Run `cytohub.audit.audit` on the mix and judge each pair and group per configuration."""
    from cytohub.audit import audit

    result = audit([folder], threshold, progress=lambda n: note("rows hashed", n), verify=False)
    configs = report["configs"]

    def where(ref_id: str, split: str) -> tuple[str, str]:
        return ref_id.split("/", 1)[0], split

    def config_split(config: str, source: str, split: str) -> str | None:
        if config == "default":
            return split
        if source == config[len(HOLDOUT_PREFIX):]:
            return "test"
        return split if split in TRAINING_SPLITS else None

    per: dict[str, dict[str, Any]] = {c: {"pairs": 0, "exact": 0, "near": 0, "groups": 0, "examples": []}
                                      for c in configs}
    for p in result.pairs:
        sa, spa = where(p.a.id, p.a.split)
        sb, spb = where(p.b.id, p.b.split)
        for c, v in per.items():
            ca, cb = config_split(c, sa, spa), config_split(c, sb, spb)
            if ca is not None and cb is not None and ca != cb:
                v["pairs"] += 1
                v["exact" if p.exact else "near"] += 1
                if len(v["examples"]) < MAX_PAIRS_KEPT:
                    v["examples"].append({"a": f"{p.a.id} ({ca})", "b": f"{p.b.id} ({cb})", "exact": p.exact,
                                          "distance": p.distance})
    for g in result.groups_across_splits:
        source = g["group"].split(":", 1)[1].split("/", 1)[0]
        for c, v in per.items():
            mapped = {config_split(c, source, s) for s in g["splits"]} - {None}
            if len(mapped) > 1:
                v["groups"] += 1
    summary = result.to_dict()
    return {"audited": True, "threshold": threshold, "method": summary["method"], "rows": result.rows,
            "summary": summary["summary"], "groups_across_splits": len(result.groups_across_splits),
            "undecodable": len(result.undecodable), "configs": per}


def _leak_message(name: str, out: Path, audit: dict[str, Any], leaks: dict[str, dict[str, Any]]) -> str:
    parts = []
    for c, v in leaks.items():
        what = []
        if v["pairs"]:
            what.append(f"{v['exact']} exact and {v['near']} near-duplicate image pairs")
        if v["groups"]:
            what.append(f"{v['groups']} groups")
        parts.append(f"{c}: {' and '.join(what)}")
    first = next((v["examples"][0] for v in leaks.values() if v["examples"]), None)
    example = f" (e.g. {first['a']} and {first['b']}, " \
              f"{'exact' if first['exact'] else 'pHash distance ' + str(first['distance'])})" if first else ""
    return (f"mix {name} leaks across splits (near duplicate = pHash distance <= {audit['threshold']} of 64 bits): "
            f"{'; '.join(parts)}{example}; nothing was written at {out}. Pass --allow-leakage to write it with "
            "the counts stated in its card, or --audit-threshold to change the near-duplicate distance")


# ============================================================================================ figures
class _SampleDraw:
    """Per class (and for label-less rows), the rows of smallest `figures.sample_priority` of their new id:
    where they lie, so that the sample figure reads just those rows back."""

    def __init__(self) -> None:
        from cytohub import figures

        self.figures = figures
        self.best: dict[int, list[tuple[int, str, str, str]]] = {}

    def offer(self, s: Source, split: str, t: pa.Table, res: Outcome) -> None:
        ids = t.column("id").to_pylist()
        for i in np.flatnonzero(res.keep).tolist():
            key = int(res.label[i])
            prio = self.figures.sample_priority(f"{s.corpus}/{ids[i]}")
            bucket = self.best.setdefault(key, [])
            limit = self.figures.PER_CLASS
            if len(bucket) < limit or prio < bucket[-1][0]:
                bucket.append((prio, s.corpus, split, ids[i]))
                bucket.sort()
                del bucket[limit:]

    def chosen(self) -> list[dict[str, Any]]:
        return [{"corpus": c, "split": sp, "id": rid} for bucket in self.best.values()
                for _, c, sp, rid in bucket]


def _figures(staging: Path, report: dict[str, Any], cut: Cut, srcs: list[Source]) -> list[str]:
    """A sample grid (up to 4 rows per class, read back from the mix) and a bar chart of rows per class."""
    from cytohub import figures
    from cytohub.builder import Label

    class _Classes:  # what figures.SampleCollector reads from a builder
        labels = tuple(Label(c, (cut.titles[c],)) for c in cut.classes)
        object_labels = tuple(Label(c, (c,)) for c in cut.classes)

        @staticmethod
        def class_names() -> list[str]:
            return list(cut.classes)

    collector = figures.SampleCollector(_Classes())  # type: ignore[arg-type]
    wanted = {f"{x['corpus']}/{x['id']}" for x in report.pop("samples")}
    for shard in sorted((staging / "data").rglob("*.parquet")):
        pf = pq.ParquetFile(shard)
        for rg in range(pf.num_row_groups):  # only the row groups that hold a sample are read whole
            ids = pf.read_row_group(rg, columns=["id"]).column("id").to_pylist()
            rows = [i for i, row_id in enumerate(ids) if row_id in wanted]
            if rows:
                t = pf.read_row_group(rg)
                for i in rows:
                    collector.offer(t.slice(i, 1).to_pylist()[0])
    stats = {s: {"labels": v["labels"], "objects": v["objects"]} for s, v in report["splits"].items()}
    return collector.write(staging / "assets", stats)


# ============================================================================================ card
def card_files(report: dict[str, Any]) -> dict[str, str]:
    """The text files of a mix written from its report (`cytohub card DIR` writes them again with
    `manifest.rewrite`): README.md (the card), croissant.json and, when the sources' licenses differ,
    LICENSE.md (file name -> text)."""
    from cytohub.croissant import CROISSANT
    from cytohub.mixcard import license_file, mix_croissant_json, render_card

    out = {"README.md": render_card(report), CROISSANT: mix_croissant_json(report)}
    text = license_file(report)
    if text is not None:
        out[LICENSE_FILE] = text
    return out


def _background(fn):
    from concurrent.futures import ThreadPoolExecutor

    pool = ThreadPoolExecutor(1, thread_name_prefix="cytohub-mix-verify")
    future = pool.submit(fn)
    pool.shutdown(wait=False)
    return future


# ============================================================================================ validate hook
class ValidateHook:
    """What `cytohub validate` checks differently for a mix (`kind: "mix"`): the default configuration's
    `dataset_info`, the schema plus `source`, shards nested by source (`data/<source>/<split>-...`), each row's
    `source` and id prefix, the configurations (`check_configs`: card against report, each configuration's
    `data_files` against the shards it must hold, and its row counts), and `load_dataset` of each holdout
    configuration (`load_problems`)."""

    columns = [SOURCE_COLUMN]  # read with the small columns of every row, for `check_row`

    def __init__(self, report: dict[str, Any]) -> None:
        self.sources = [s["corpus"] for s in report.get("sources", []) if isinstance(s, dict)]
        self.configs = report.get("configs") or {}

    @staticmethod
    def dataset_info(meta: dict[str, Any]) -> dict[str, Any]:
        info = meta.get("dataset_info") or {}
        if isinstance(info, list):
            return next((i for i in info if i.get("config_name") == "default"), {})
        return info

    @staticmethod
    def same_schema(feats, class_names: Sequence[str]) -> bool:
        return feats == mix_features(class_names)

    @staticmethod
    def features(class_names: Sequence[str]):
        return mix_features(class_names)

    def shards(self, problem: Callable[[str, str], None], data: Path) -> dict[str, list[Path]]:
        """Split -> shard paths (every source's, in source order), reporting misplaced or misnumbered files."""
        out: dict[str, list[Path]] = {}
        if not data.is_dir():
            problem("shards", f"{data}: missing data folder")
            return out
        for entry in sorted(data.iterdir()):
            if entry.is_symlink() or not entry.is_dir() or entry.name not in self.sources:
                problem("shards", f"{entry}: expected only data/<source>/ folders of the sources in the report "
                                  f"({', '.join(self.sources)})")
                continue
            found: dict[str, list[tuple[int, int, Path]]] = {}
            for p in sorted(entry.iterdir()):
                m = SHARD_RE.match(p.name)
                if not m or p.is_symlink() or not p.is_file():
                    problem("shards", f"{p}: not a shard (a regular file named <split>-NNNNN-of-NNNNN.parquet)")
                    continue
                found.setdefault(m["split"], []).append((int(m["i"]), int(m["n"]), p))
            for split, items in found.items():
                n = items[0][1]
                if sorted(i for i, _, _ in items) != list(range(n)) or any(k != n for _, k, _ in items):
                    problem("shards", f"{entry}: the shards of split {split!r} are incomplete or misnumbered")
                out.setdefault(split, []).extend(p for _, _, p in sorted(items))
        return out

    @staticmethod
    def check_row(problem: Callable[[str, str], None], where: str, path: Path, row: dict[str, Any]) -> None:
        source = path.parent.name
        if row.get(SOURCE_COLUMN) != source:
            problem("source", f"{where}: source {row.get(SOURCE_COLUMN)!r} in the folder of {source!r}")
        if not str(row.get("id", "")).startswith(f"{source}/"):
            problem("source", f"{where}: id does not start with {source + '/'!r}")

    def members(self, config: str, split: str, shards: Sequence[str]) -> list[str]:
        """The shards (paths relative to the folder, `data/<source>/<split>-...`) a configuration's split must
        hold, from the folder's layout and the rule of the configuration (see the module doc)."""
        def parts(p: str) -> tuple[str, str]:
            source, name = p.split("/")[1:3]
            return source, name.split("-", 1)[0]

        if config == "default":
            return [p for p in shards if parts(p)[1] == split]
        held = config[len(HOLDOUT_PREFIX):]
        if split == "test":
            return [p for p in shards if parts(p)[0] == held]
        return [p for p in shards if parts(p)[0] != held and parts(p)[1] == split]

    def check_configs(self, problem: Callable[[str, str], None], card_path: Path, meta: dict[str, Any],
                      rows_of: dict[str, int]) -> dict[str, dict[str, list[str]]]:
        """The card's `configs` and per-configuration `dataset_info` against the report; each configuration's
        `data_files` patterns (as `datasets` resolves them: `*` within one path segment) against the shards
        the configuration must hold (`members`), and its row counts against those shards' rows (`rows_of`:
        shard path relative to the folder -> rows). Returns config -> split -> resolved shard paths, in the
        order `datasets` reads them (patterns in order, files sorted within each)."""
        card = {c.get("config_name"): c for c in meta.get("configs") or [] if isinstance(c, dict)}
        infos = {i.get("config_name"): i for i in (meta.get("dataset_info") or []) if isinstance(i, dict)} \
            if isinstance(meta.get("dataset_info"), list) else {}
        if set(card) != set(self.configs):
            problem("configs", f"{card_path}: configs {sorted(card, key=str)} but the report lists "
                               f"{sorted(self.configs)}")
        expected_holdouts = {HOLDOUT_PREFIX + s for s in self.sources}
        for name in self.configs:
            if name != "default" and name not in expected_holdouts:
                problem("configs", f"{card_path}: config {name!r} is neither default nor holdout-<source>")
        shards = sorted(rows_of)
        resolved: dict[str, dict[str, list[str]]] = {}
        for name, cfg in self.configs.items():
            files = {f.get("split"): f.get("path") for f in (card.get(name) or {}).get("data_files") or []
                     if isinstance(f, dict)}
            sizes = {s.get("name"): s.get("num_examples") for s in (infos.get(name) or {}).get("splits") or []}
            if set(files) != set(cfg):
                problem("configs", f"{card_path}: config {name!r} has splits {sorted(files, key=str)} in the card "
                                   f"but {sorted(cfg)} in the report")
            for split, v in cfg.items():
                patterns = files.get(split)
                patterns = [patterns] if isinstance(patterns, str) else list(patterns or [])
                if patterns != v.get("data_files"):
                    problem("configs", f"{card_path}: config {name!r} split {split!r}: data_files {patterns} in "
                                       f"the card, {v.get('data_files')} in the report")
                got = []
                for pattern in patterns:
                    got += [p for p in shards if _glob_match(pattern, p) and p not in got]
                resolved.setdefault(name, {})[split] = got
                want = self.members(name, split, shards) if name == "default" or name in expected_holdouts else got
                if sorted(got) != sorted(want):
                    problem("configs", f"config {name!r} split {split!r}: its data_files select "
                                       f"{_listing(sorted(got))} but it must hold {_listing(sorted(want))}")
                rows = sum(rows_of[p] for p in got)
                if not rows:
                    problem("configs", f"config {name!r} split {split!r} has no rows; `datasets` cannot load an "
                                       "empty split")
                if rows != v.get("num_examples") or rows != sizes.get(split):
                    problem("configs", f"config {name!r} split {split!r}: {rows} rows in its shards, the report "
                                       f"says {v.get('num_examples')}, the card {sizes.get(split)}")
        return resolved

    @staticmethod
    def load_problems(folder: Path, firsts: dict[str, dict[str, str]], path: Path | None = None) -> list[str]:
        """`datasets.load_dataset(folder, config, streaming=True)` of each holdout configuration reads the first
        id of each of its splits (`firsts`: config -> split -> expected first id). The default configuration
        is read by validate's own load check."""
        from datasets import load_dataset

        problems = []
        for config, splits in firsts.items():
            try:
                # the `id` column of each split's first file, read to its end (a scan abandoned part-way can make
                # pyarrow abort the interpreter at exit; see cytohub.validate)
                dd = load_dataset(str(path or folder), config, streaming=True, columns=["id"])
                for split, first in splits.items():
                    ds = dd[split]
                    ids = [row["id"] for row in ds.shard(num_shards=ds.num_shards, index=0)]
                    got = ids[0] if ids else None
                    if got != first:
                        problems.append(f"{folder}: config {config!r} split {split!r} starts with {got!r}, not "
                                        f"{first!r}")
            except Exception as exc:
                text = str(exc).splitlines()[0] if str(exc) else ""
                problems.append(f"{folder}: datasets.load_dataset({config!r}, streaming=True) fails: "
                                f"{type(exc).__name__}: {text}")
        return problems


def _glob_match(pattern: str, path: str) -> bool:
    """Whether a `data_files` pattern matches a relative path, `*` staying within one path segment."""
    import fnmatch

    a, b = pattern.split("/"), path.split("/")
    return len(a) == len(b) and all(fnmatch.fnmatchcase(y, x) for x, y in zip(a, b, strict=True))


def _listing(paths: list[str]) -> str:
    return ", ".join(paths[:5]) + (f" and {len(paths) - 5} more" if len(paths) > 5 else "") if paths else "nothing"


def validate_hook(report: dict[str, Any]) -> ValidateHook | None:
    """The mix hook for `cytohub.validate` (None for a corpus build)."""
    return ValidateHook(report) if report.get("kind") == KIND else None
