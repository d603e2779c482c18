"""The Builder contract: what a corpus module declares and the two methods it implements.

A builder is metadata plus `examples(raw)` (raw tree -> rows in the unified schema) and
`synthesize(root, scale)` (writes synthetic raw data in the corpus's exact published layout). Writing,
sharding, splits, cards, validation and publishing are the engine's job: a builder never writes Parquet.

Rows are plain dicts with any of the unified fields (see `cytohub.schema.FIELDS`) plus `split` for corpora
with official splits. Conveniences the engine resolves for the builder:
* `image`, `mask` and each `focal_stack` plane may be a `RawFile` (bytes are read and passed through
  untouched), raw `bytes`, or a `{"bytes", "path"}` dict;
* `label` is the class *name*; `label_path` and `harmonized` default to that class's declared path and
  harmonized node;
* `source_path` defaults to the raw files that the row's images came from;
* missing fields get their empty value (`[]` or null).

`published` declares what the publisher states about a complete download (see `cytohub.completeness`); the
build compares every real build with it. `synthesize` runs inside `cytohub.synth.marking`, whatever the
subclass does, so every file written with the `cytohub.synth` helpers carries the synthetic mark.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from cytohub.completeness import Published  # noqa: F401 (re-exported for builders)
from cytohub.layout import sketch_text
from cytohub.raw import RawTree

REDISTRIBUTION = ("allowed", "gated", "forbidden")
# the form the Hub documents for a card's `license_name` when `license: other` ("an id ... like my-license-1.0")
LICENSE_ID_RE = re.compile(r"[a-z0-9]+(?:[.-][a-z0-9]+)*")
LAYOUT_STATUS = ("verified", "unverified")
SCALES = ("small", "full")

# License identifiers accepted in the card's YAML (the Hub's list; `other` needs license_name + link).
HUB_LICENSES = {
    "apache-2.0", "mit", "gpl-3.0", "lgpl-3.0", "bsd-3-clause", "cc0-1.0", "cc-by-2.0", "cc-by-3.0",
    "cc-by-4.0", "cc-by-sa-3.0", "cc-by-sa-4.0", "cc-by-nc-2.0", "cc-by-nc-3.0", "cc-by-nc-4.0",
    "cc-by-nc-sa-3.0", "cc-by-nc-sa-4.0", "cc-by-nc-nd-3.0", "cc-by-nc-nd-4.0", "cc-by-nd-4.0",
    "odbl", "odc-by", "pddl", "cdla-permissive-2.0", "other", "unknown",
}


@dataclass(frozen=True)
class Source:
    """One file (or folder, when `filename` ends with "/") of the official download.

    * `url`: with `direct`, a public link to the file itself, which `cytohub download` fetches; otherwise the
      page where the file is obtained (after a login, an agreement or a request).
    * `alt_urls`: further official links to the same file (publisher mirrors), tried in order when `url`
      fails; only with `direct`.
    * `size` (bytes), `md5`, `sha256`: only as the publisher publishes them (e.g. the md5 Zenodo and figshare
      list per file); never computed by us and never guessed. Unknown values stay None: the first download
      then records the sha256 in the raw folder's `downloads.json`, and later runs verify against that.
    * `required`: the build needs it; False for optional extras.
    * `one_of`: a group label for alternatives (e.g. a Kaggle mirror or the original release): the build needs
      at least one source of each group; `required` does not apply to group members.
    * `aliases`: other names under which the same content arrives (a browser's `archive.zip`, the folder it
      unpacks to, ending with "/"); `cytohub download` accepts any of them when checking a manual download.
    * `name_published`: False when the publisher's file name is not known and `filename` is only a label;
      such a source cannot be checked by name.
    """

    filename: str
    url: str | None = None
    size: int | None = None  # bytes
    sha256: str | None = None
    description: str = ""
    md5: str | None = None
    direct: bool = False
    alt_urls: tuple[str, ...] = ()
    required: bool = True
    one_of: str = ""
    aliases: tuple[str, ...] = ()
    name_published: bool = True


@dataclass(frozen=True)
class Label:
    """A class: its name (the ClassLabel / object category), its path in the corpus's own hierarchy
    (root -> leaf, ending with the name or the corpus's display name for it) and its node in cytohub's
    harmonized taxonomy (None where no honest mapping exists)."""

    name: str
    path: tuple[str, ...]
    harmonized: str | None = None
    description: str = ""


class Builder:
    """Base class of every corpus builder. Subclasses set the class attributes and implement
    `examples` and `synthesize`."""

    # identity
    name: ClassVar[str]  # registry id, e.g. "cccid"
    pretty_name: ClassVar[str]
    version: ClassVar[str] = "1.0.0"  # bump when the rows a build produces change
    summary: ClassVar[str] = ""  # one line
    homepage: ClassVar[str] = ""
    # license and citation
    license: ClassVar[str] = "unknown"  # a HUB_LICENSES id
    license_name: ClassVar[str | None] = None  # with license == "other": the license's name, for people
    license_id: ClassVar[str | None] = None  # with license == "other": its id for the card's `license_name`
    # (lowercase letters, digits, "-" and ".", as the Hub asks, e.g. "ccedd-terms")
    license_link: ClassVar[str | None] = None
    redistribution: ClassVar[str] = "allowed"  # allowed | gated | forbidden
    attribution: ClassVar[str] = ""
    citation: ClassVar[str] = ""  # BibTeX
    # download
    sources: ClassVar[tuple[Source, ...]] = ()
    manual_download: ClassVar[str] = ""
    # content
    task_categories: ClassVar[tuple[str, ...]] = ("image-classification",)
    tags: ClassVar[tuple[str, ...]] = ()
    organ: ClassVar[str | None] = None
    stain: ClassVar[str | None] = None
    preparation: ClassVar[str | None] = None
    scanner: ClassVar[str | None] = None
    magnification: ClassVar[str | None] = None
    mpp: ClassVar[float | None] = None
    num_images: ClassVar[int | None] = None  # as published
    layout: ClassVar[str] = "verified"  # verified | unverified (the raw layout was reconstructed)
    # A short sketch of the raw tree the builder reads (a few indented lines; `<...>` for variable names),
    # shown by `cytohub info` and in layout errors (see cytohub.layout).
    expected_layout: ClassVar[str] = ""
    assumptions: ClassVar[tuple[str, ...]] = ()  # what the builder assumes where sources are silent
    # responsible-AI facts as the publisher states them, with the source (None: not stated in the sources used;
    # the Croissant file then says so): patients' consent / ethics approval, and de-identification
    consent: ClassVar[str | None] = None
    deidentification: ClassVar[str | None] = None
    # What cytohub changes in the `image`, `focal_stack` and `mask` bytes, and why, one sentence each; empty when
    # every one of them is a raw file's bytes exactly as published (the card then says so; a test checks it).
    conversions: ClassVar[tuple[str, ...]] = ()
    # labels
    labels: ClassVar[tuple[Label, ...]] = ()  # image-level classes (ClassLabel names, in this order)
    object_labels: ClassVar[tuple[Label, ...]] = ()  # categories of `objects`
    splits: ClassVar[tuple[str, ...]] = ()  # official split names; rows then carry "split"
    # what the publisher states about a complete download (files, rows, per split, per class)
    published: ClassVar[Published] = Published()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        own = cls.__dict__.get("synthesize")
        if own is not None and not getattr(own, "_marks_synthetic", False):
            cls.synthesize = _marking(own)

    # ------------------------------------------------------------------ to implement
    def examples(self, raw: RawTree) -> Iterator[dict[str, Any]]:
        """Yield rows in a deterministic order. Raise a CytohubError subclass naming the file on bad input;
        call `raw.skip(file, reason)` for files deliberately left out."""
        raise NotImplementedError

    def synthesize(self, root: Path, scale: str = "small", seed: int = 0) -> None:
        """Write synthetic raw data under `root` in the corpus's exact published layout."""
        raise NotImplementedError

    # ------------------------------------------------------------------ derived
    @classmethod
    def class_names(cls) -> list[str]:
        return [lab.name for lab in cls.labels]

    @classmethod
    def label_index(cls) -> dict[str, Label]:
        return {lab.name: lab for lab in cls.labels}

    @classmethod
    def object_index(cls) -> dict[str, Label]:
        return {lab.name: lab for lab in cls.object_labels}

    @classmethod
    def known_sha256(cls) -> dict[str, str]:
        return {s.filename: s.sha256 for s in cls.sources if s.sha256}

    @classmethod
    def direct_sources(cls) -> tuple[Source, ...]:
        """The sources `cytohub download` fetches by itself (public file links)."""
        return tuple(s for s in cls.sources if s.direct)

    @classmethod
    def metadata(cls) -> dict[str, Any]:
        """Everything declared, as plain data (for `cytohub info --json`, the card and the report)."""
        return {
            "name": cls.name,
            "pretty_name": cls.pretty_name,
            "version": cls.version,
            "summary": cls.summary,
            "homepage": cls.homepage,
            "license": cls.license,
            "license_name": cls.license_name,
            "license_id": cls.license_id,
            "license_link": cls.license_link,
            "redistribution": cls.redistribution,
            "attribution": cls.attribution,
            "citation": cls.citation.strip(),
            "sources": [s.__dict__ for s in cls.sources],
            "manual_download": cls.manual_download.strip(),
            "task_categories": list(cls.task_categories),
            "tags": list(cls.tags),
            "organ": cls.organ,
            "stain": cls.stain,
            "preparation": cls.preparation,
            "scanner": cls.scanner,
            "magnification": cls.magnification,
            "mpp": cls.mpp,
            "num_images": cls.num_images,
            "layout": cls.layout,
            "expected_layout": sketch_text(cls.expected_layout, indent=""),
            "assumptions": list(cls.assumptions),
            "consent": cls.consent,
            "deidentification": cls.deidentification,
            "conversions": list(cls.conversions),
            "labels": [{"name": lab.name, "path": list(lab.path), "harmonized": lab.harmonized}
                       for lab in cls.labels],
            "object_labels": [{"name": lab.name, "path": list(lab.path), "harmonized": lab.harmonized}
                              for lab in cls.object_labels],
            "splits": list(cls.splits),
            "published": cls.published.as_dict(),
        }

    @classmethod
    def check_declaration(cls) -> list[str]:
        """Problems with the declared metadata (empty when the builder is well formed)."""
        problems = []
        for attr in ("name", "pretty_name", "homepage", "citation", "manual_download", "expected_layout"):
            if not getattr(cls, attr, None):
                problems.append(f"{cls.__name__}.{attr} is empty")
        if cls.license not in HUB_LICENSES:
            problems.append(f"{cls.__name__}.license {cls.license!r} is not a Hub license id")
        if cls.license == "other" and not (cls.license_name and cls.license_link and cls.license_id):
            problems.append(f"{cls.__name__}: license 'other' needs license_name, license_id and license_link")
        if cls.license_id is not None and not LICENSE_ID_RE.fullmatch(cls.license_id):
            problems.append(f"{cls.__name__}.license_id {cls.license_id!r} is not an id (lowercase letters, "
                            "digits, '-' and '.', e.g. 'ccedd-terms')")
        if cls.redistribution not in REDISTRIBUTION:
            problems.append(f"{cls.__name__}.redistribution must be one of {REDISTRIBUTION}")
        if cls.layout not in LAYOUT_STATUS:
            problems.append(f"{cls.__name__}.layout must be one of {LAYOUT_STATUS}")
        if cls.layout == "unverified" and not cls.assumptions:
            problems.append(f"{cls.__name__}: an unverified layout must list its assumptions")
        problems += _check_sources(cls)
        names = cls.class_names()
        if len(set(names)) != len(names):
            problems.append(f"{cls.__name__}: duplicate class names")
        from cytohub.taxonomy import load_taxonomy

        problems += [f"{cls.__name__}: {p}" for p in cls.published.problems(names, cls.splits)]
        nodes = load_taxonomy().nodes
        for lab in (*cls.labels, *cls.object_labels):
            if not lab.path:
                problems.append(f"{cls.__name__}: label {lab.name!r} has an empty path")
            if lab.harmonized is not None and lab.harmonized not in nodes:
                problems.append(f"{cls.__name__}: label {lab.name!r} maps to unknown harmonized node "
                                f"{lab.harmonized!r}")
        return problems


_HEX = {"md5": 32, "sha256": 64}


def _check_sources(cls: type[Builder]) -> list[str]:
    """Problems with the declared sources: a direct source needs a plain published file name and http(s)
    links; checksums must be lower-case hex of the right length; sizes positive."""
    problems = []
    names = [s.filename for s in cls.sources]
    if len(set(names)) != len(names):
        problems.append(f"{cls.__name__}: two sources with the same filename")
    for s in cls.sources:
        where = f"{cls.__name__} source {s.filename!r}"
        for algo, length in _HEX.items():
            value = getattr(s, algo)
            if value is not None and not re.fullmatch(f"[0-9a-f]{{{length}}}", value):
                problems.append(f"{where}: {algo} must be {length} lower-case hex digits")
        if s.size is not None and s.size <= 0:
            problems.append(f"{where}: size must be a positive number of bytes")
        if s.direct:
            if not s.name_published:
                problems.append(f"{where}: a direct source needs its published file name")
            if "/" in s.filename or "\\" in s.filename or s.filename.startswith(".") or not s.filename:
                problems.append(f"{where}: a direct source's filename must be a plain file name")
            for url in (s.url, *s.alt_urls):
                if not (url or "").startswith(("https://", "http://")):
                    problems.append(f"{where}: direct link {url!r} is not an http(s) URL")
        elif s.alt_urls:
            problems.append(f"{where}: alt_urls are only for direct sources")
    return problems


def _marking(synthesize):
    """`synthesize` run inside `synth.marking(name, scale, seed)`: every file it writes with the synth helpers
    carries the synthetic mark."""

    @functools.wraps(synthesize)
    def wrapper(self: Builder, root: Path, scale: str = "small", seed: int = 0) -> None:
        from cytohub import synth  # numpy and Pillow: not imported by merely listing builders

        with synth.marking(self.name, scale, seed):
            return synthesize(self, root, scale, seed)

    wrapper._marks_synthetic = True  # type: ignore[attr-defined]
    return wrapper
