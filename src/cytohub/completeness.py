"""Completeness: does a build hold everything the publisher says the download holds?

Each builder declares the facts its publisher states (`Builder.published`, a `Published`): the files of the
download, the rows a complete download gives (in total, per official split, per class), with a range where
sources disagree. After the rows are read, and before any shard is written, `check` compares the build with
them. Anything missing (a file of the download, rows, a split, a class) stops the build with one message that
lists it, unless the user allows a partial build (`--allow-partial`): the report, and the card's title and body,
then say "partial: N of M". More rows than published is recorded, not refused (nothing is missing).

A builder that finds a part of the download absent while reading (`RawTree.note_absent`: an unpacked download
without its train/ folder, an archive holding none of its images) records what the build lacks because of it;
those parts count as absent files here whatever form the download was given in, and the card names each one
once, with its effect.

The comparison is made for real downloads and for synthetic data that claims full scale; synthetic data at
small scale (see `cytohub.synth`) is not compared (the report and the card say so).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cytohub.errors import IncompleteDownloadError

Count = int | tuple[int, int]  # an exact published count, or (low, high) where sources disagree


def bounds(count: Count) -> tuple[int, int]:
    """(low, high) of a published count."""
    if isinstance(count, int):
        return count, count
    lo, hi = count
    return int(lo), int(hi)


def show(count: Count) -> str:
    """'639' or '9,338-9,339'."""
    lo, hi = bounds(count)
    return f"{lo:,}" if lo == hi else f"{lo:,}-{hi:,}"


@dataclass(frozen=True)
class Published:
    """What the publisher states about a complete download. Declare only published facts, and only those a
    build can count the same way (one row per published unit); leave the rest empty.

    files: names of the files of the download (archives or loose files), matched case-insensitively against
        the files the user gave and the archives inside them. When none of them is present (the download was
        given unpacked), files are not compared and the row counts decide.
    optional_files: files a download may lack without being incomplete (e.g. a solution file published
        later); absent ones are listed in the report and the card.
    rows: the rows a complete download gives (one per `unit`).
    rows_per_split: rows per official split. Splits in `optional_splits` may be absent (their part of the
        download is optional): they are then listed as absent, not missing, and not counted in `rows`.
    per_class: rows per image-level class (the class names of `Builder.labels`).
    unit: what one row is, in the publisher's words ("images", "fields of view", "cells").
    source: where the numbers are stated. note: how sources disagree, when a count is a range."""

    files: tuple[str, ...] = ()
    optional_files: tuple[str, ...] = ()
    rows: Count | None = None
    rows_per_split: Mapping[str, Count] = field(default_factory=dict)
    optional_splits: tuple[str, ...] = ()
    per_class: Mapping[str, Count] = field(default_factory=dict)
    unit: str = "images"
    source: str = ""
    note: str = ""

    @property
    def declared(self) -> bool:
        return bool(self.files or self.rows is not None or self.rows_per_split or self.per_class)

    def as_dict(self) -> dict[str, Any]:
        """Plain data for the report and `cytohub info --json` (counts as [low, high])."""
        def pair(c: Count | None):
            return None if c is None else list(bounds(c))
        return {
            "files": list(self.files), "optional_files": list(self.optional_files), "rows": pair(self.rows),
            "rows_per_split": {k: pair(v) for k, v in self.rows_per_split.items()},
            "optional_splits": list(self.optional_splits),
            "per_class": {k: pair(v) for k, v in self.per_class.items()},
            "unit": self.unit, "source": self.source, "note": self.note,
        }

    def problems(self, class_names: Sequence[str], splits: Sequence[str]) -> list[str]:
        """Inconsistencies of the declaration itself (unknown classes or splits, bad ranges, sums)."""
        out = []
        counts = [self.rows, *self.rows_per_split.values(), *self.per_class.values()]
        for c in counts:
            if c is not None and not (0 <= bounds(c)[0] <= bounds(c)[1]):
                out.append(f"published count {c!r} is not a count or a (low, high) range")
        unknown = sorted(set(self.per_class) - set(class_names))
        if unknown:
            out.append(f"published per_class names unknown classes {unknown}")
        if self.rows_per_split and splits and set(self.rows_per_split) - set(splits):
            out.append(f"published rows_per_split names splits {sorted(set(self.rows_per_split) - set(splits))} "
                       f"that are not official splits {list(splits)}")
        if set(self.optional_splits) - set(self.rows_per_split):
            out.append("every optional split needs its published count in rows_per_split")
        if self.rows is not None and self.rows_per_split and not self.optional_splits \
                and set(self.rows_per_split) == set(splits):
            lo = sum(bounds(c)[0] for c in self.rows_per_split.values())
            hi = sum(bounds(c)[1] for c in self.rows_per_split.values())
            if not (lo <= bounds(self.rows)[1] and bounds(self.rows)[0] <= hi):
                out.append(f"published rows {show(self.rows)} disagree with the sum of rows_per_split")
        return out


def compared(marker: dict | None) -> tuple[bool, str]:
    """Whether a build is compared with the published facts: always for real data; for synthetic data only when
    it claims full scale (every mark says `full`)."""
    if marker is None:
        return True, "real download"
    scales = set(marker.get("scales") or [marker.get("scale")])
    if scales == {"full"}:
        return True, "synthetic data at full scale"
    return False, "synthetic data at small scale (only full-scale data is compared with the published counts)"


def check(published: Published, *, pretty: str, class_names: Sequence[str], inputs: Iterable[str],
          containers: Iterable[str], split_counts: Mapping[str, int], class_counts: Mapping[str, int],
          marker: dict | None, allow_partial: bool,
          absent_parts: Sequence[Mapping[str, str]] = ()) -> dict[str, Any]:
    """Compare a build with the published facts; the report's `completeness` section.

    inputs: paths (relative to the raw root) of the files the user gave; containers: virtual paths of the
    archives expanded inside them; split_counts: rows per split of this build; class_counts: rows per class
    name; absent_parts: the parts of the download the builder found absent (`RawTree.note_absent`: dicts with
    `part`, a file name of the download, and `effect`, what the build lacks). A noted part that is one of
    `published.files` (or not declared at all) is missing even when the download was given unpacked; one of
    `optional_files` is absent. Each is listed once, with its effect. Raises IncompleteDownloadError listing
    what is missing, unless `allow_partial`."""
    checked, why = compared(marker)
    rows = sum(split_counts.values())
    result: dict[str, Any] = {
        "declared": published.declared, "checked": checked and published.declared, "basis": why,
        "allow_partial": allow_partial, "published": published.as_dict(), "rows": rows, "missing": [],
        "absent_optional": [], "more_than_published": [], "files_compared": False, "complete": True,
        "partial": None,
    }
    if not published.declared and not absent_parts:
        return result
    files_only = not result["checked"]  # small synthetic data: the file names are still the publisher's
    missing, extra, absent = result["missing"], result["more_than_published"], result["absent_optional"]

    paths = [p.lower() for p in [*inputs, *containers]]
    names = {p.rsplit("/", 1)[-1] for p in paths}
    effects = {a["part"].lower(): a for a in absent_parts}  # noted by the builder while reading
    lost = []
    if published.files:
        present = [f for f in published.files if f.lower() in names]
        if present:
            result["files_compared"] = True
            lost = [f for f in published.files if f.lower() not in names]
    lost += [f for f in published.files if f.lower() in effects and f not in lost]
    if lost or result["files_compared"]:
        result["files"] = {"published": len(published.files), "present": len(published.files) - len(lost)}
    if lost:
        missing.append(f"{len(lost)} of the {len(published.files)} files of the download: "
                       + ", ".join(_with_effect(f, effects) for f in lost))
    declared = {f.lower() for f in (*published.files, *published.optional_files)}
    missing += [_with_effect(a["part"], effects) for a in absent_parts if a["part"].lower() not in declared]
    # an optional file is also present as its unpacked copy (stage1_solution.csv.zip as stage1_solution.csv,
    # stage2_test_final.zip as a folder stage2_test_final/); it only decides what the card lists as absent
    unpacked = names | {part for p in paths for part in p.split("/")[:-1]}
    absent += [_with_effect(f, effects) for f in published.optional_files if f.lower() in effects
               or (f.lower() not in names and _unpacked_name(f.lower()) not in unpacked)]
    if files_only:
        return _conclude(result, published, rows, None, allow_partial, pretty)

    absent_splits = [s for s in published.optional_splits if not split_counts.get(s)]
    absent += [f"split {s!r}" for s in absent_splits]
    for split, count in published.rows_per_split.items():
        if split in absent_splits:
            continue
        _compare(f"split {split!r}", split_counts.get(split, 0), count, published.unit, missing, extra)
    expected = published.rows
    if expected is not None and absent_splits:
        lo, hi = bounds(expected)
        for s in absent_splits:
            slo, shi = bounds(published.rows_per_split[s])
            lo, hi = lo - shi, hi - slo
        expected = (max(lo, 0), max(hi, 0))
    if expected is not None:
        _compare("rows", rows, expected, published.unit, missing, extra)
    for name, count in published.per_class.items():
        _compare(f"class {name!r}", class_counts.get(name, 0), count, published.unit, missing, extra)
    return _conclude(result, published, rows, expected, allow_partial, pretty)


def _conclude(result: dict[str, Any], published: Published, rows: int, expected: Count | None,
              allow_partial: bool, pretty: str) -> dict[str, Any]:
    """Mark the result partial when something is missing; raise unless `allow_partial`."""
    missing = result["missing"]
    if missing:
        result["complete"] = False
        result["partial"] = _partial_phrase(published, rows, expected, result.get("files"))
        if not allow_partial:
            listed = "\n".join(f"  - {m}" for m in missing)
            raise IncompleteDownloadError(
                f"{pretty}: the download is incomplete ({result['partial']}); missing against what the "
                f"publisher states{' (' + published.source + ')' if published.source else ''}:\n{listed}\n"
                "Add the missing files to the raw folder, or pass --allow-partial to build what is there (the "
                "card and the report then say it is partial).")
    return result


def _unpacked_name(name: str) -> str:
    """The name an archive's unpacked copy usually has: 'a.csv.zip' -> 'a.csv', 'b.tar.gz' -> 'b'."""
    for suffix in (".tar.gz", ".tgz", ".tar", ".zip", ".7z", ".rar"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def _with_effect(part: str, effects: Mapping[str, Mapping[str, str]]) -> str:
    """'stage1_train.zip' or, when the builder noted what the build lacks without it, 'stage1_train.zip (no
    train rows)'."""
    noted = effects.get(part.lower())
    return f"{part} ({noted['effect']})" if noted else part


def _compare(what: str, found: int, count: Count, unit: str, missing: list[str], extra: list[str]) -> None:
    lo, hi = bounds(count)
    if found < lo:
        missing.append(f"{what}: {found:,} of {show(count)} {unit}")
    elif found > hi:
        extra.append(f"{what}: {found:,} {unit}, more than the published {show(count)}")


def _partial_phrase(published: Published, rows: int, expected: Count | None, files: dict | None) -> str:
    if expected is not None:
        return f"{rows:,} of {show(expected)} {published.unit}"
    if published.rows_per_split:
        total = (sum(bounds(c)[0] for c in published.rows_per_split.values()),
                 sum(bounds(c)[1] for c in published.rows_per_split.values()))
        return f"{rows:,} of {show(total)} {published.unit}"
    if files:
        return f"{files['present']} of {files['published']} files"
    if published.per_class:
        return "some published classes missing"
    return "parts of the download absent"


def class_counts(names: Sequence[str], labels: Iterable[int]) -> Counter[str]:
    """Rows per class name from label indices (-1 = no label, not counted)."""
    out: Counter[str] = Counter()
    for lab in labels:
        if lab >= 0:
            out[names[lab]] += 1
    return out


def card_section(report: dict[str, Any]) -> str:
    """The card's 'Completeness' section, from the report's `completeness`."""
    c = report.get("completeness")
    if not c:
        return ""
    pub = c["published"]
    where = f" ({pub['source']})" if pub.get("source") else ""
    lines = []
    if c.get("partial"):
        lines.append(f"**Partial build: {c['partial']}.** Missing against what the publisher states{where}:")
        lines += [f"- {m}" for m in c["missing"]]
    elif not c["declared"]:
        lines.append("The publisher states no counts or file list that cytohub can check this build against.")
    elif not c["checked"]:
        lines.append(f"Not compared with the published counts: {c['basis']}."
                     + (f" Every one of the {len(pub['files'])} files of the download is present."
                        if c["files_compared"] else ""))
    elif c["complete"]:
        stated = []
        if pub["rows"]:
            stated.append(f"{show(tuple(pub['rows']))} {pub['unit']}")
        if pub["rows_per_split"]:
            stated.append("per split " + ", ".join(f"{k} {show(tuple(v))}" for k, v in pub["rows_per_split"].items()))
        if pub["per_class"]:
            stated.append(f"per class for {len(pub['per_class'])} classes")
        if c["files_compared"]:
            stated.append(f"{len(pub['files'])} files of the download")
        lines.append(f"Complete: this build has everything the publisher states{where}: " + "; ".join(stated) + ".")
    if c["absent_optional"]:
        lines.append("Optional parts absent from this download: " + ", ".join(c["absent_optional"]) + ".")
    if c["more_than_published"]:
        lines.append("More than published: " + "; ".join(c["more_than_published"]) + ".")
    if pub.get("note"):
        lines.append(f"Note on the published counts: {pub['note']}")
    return "## Completeness\n\n" + "\n\n".join(lines)


def title_suffix(report: dict[str, Any]) -> str:
    """' (partial: N of M)' for a partial build, else ''."""
    c = report.get("completeness") or {}
    return f" (partial: {c['partial']})" if c.get("partial") else ""
