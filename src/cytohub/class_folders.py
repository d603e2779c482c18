"""Image corpora whose class is the name of the folder an image is in (fnac2019, urine-cyto, breast-cyto,
tf-cytology, body-cavity-fluid).

`class_images` finds every image of a raw tree, reads its class from its parent folder (names compared
case-, space- and punctuation-insensitively, through per-class aliases), refuses images outside a known
class folder, skips (with a reason) every non-image file, and returns the images in a deterministic order
with stable ids.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from cytohub.errors import RawLayoutError
from cytohub.formats.naming import alias_table, key, natural_key, slug
from cytohub.layout import found
from cytohub.raw import RawFile, RawTree

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")
TABLE_SUFFIXES = (".csv", ".tsv", ".tab", ".xlsx", ".xls", ".sav", ".dta", ".rdata", ".por")


@dataclass(frozen=True)
class Item:
    """One image with its class (a declared class name) and a stable id."""

    label: str
    file: RawFile
    id: str
    folder: str  # the class folder's name as it is on disk

    def row(self) -> dict:
        """The unified-schema row of this image (the class folder's on-disk name kept in `extra`)."""
        return {"id": self.id, "image": self.file, "label": self.label, "source_path": self.file.path,
                "extra": {"class_folder": self.folder}}


def skip_reason(f: RawFile) -> str:
    if f.suffix in TABLE_SUFFIXES:
        return "tabular file (no image); not used"
    return "not an image (documentation or metadata file)"


def class_images(raw: RawTree, aliases: Mapping[str, Iterable[str]], *, corpus: str, layout: str,
                 order: Iterable[str] | None = None, depth: int = 1,
                 exclude: Callable[[RawFile], str | None] | None = None,
                 id_of: Callable[[RawFile, str], str] | None = None,
                 shown: Mapping[str, str] | None = None) -> list[Item]:
    """Every image of `raw` with its class read from the folder `depth` levels above it (1 = parent).

    `aliases` maps each class name to the folder spellings accepted for it; `layout` describes the expected
    layout in error messages. Raises RawLayoutError for an image outside a known class folder, for two
    images that would get the same id, and when no image is found at all. `exclude(file)` may return a
    reason to skip a file deliberately (e.g. derived copies made by third-party scripts); `id_of(file, label)`
    replaces the default id `<class slug>/<path below the class folder>`; `shown` gives the folder name to
    show for a class in error messages when it is not the class name (e.g. {"benign": "B"})."""
    table = alias_table(aliases)
    expected = ", ".join(f"{shown[n]}/ ({n})" if shown and n in shown else f"{n}/" for n in aliases)
    items: list[Item] = []
    seen: dict[str, RawFile] = {}
    for f in raw.files():
        reason = exclude(f) if exclude else None
        if reason:
            raw.skip(f, reason)
            continue
        if f.suffix not in IMAGE_SUFFIXES:
            raw.skip(f, skip_reason(f))
            continue
        parts = f.parts
        folder = parts[-1 - depth] if len(parts) > depth else ""
        label = table.get(key(folder)) if folder else None
        if label is None:
            where = f"folder {folder!r}" if folder else "the top level (no class folder)"
            under = "/".join(parts[:-1 - depth]) if folder else "/".join(parts[:-1])
            raise RawLayoutError(f"{f.path}: image in {where}, which is not a {corpus} class folder; "
                                 f"expected {layout} with class folders {expected} (case-insensitive)"
                                 + found(raw, under))
        row_id = id_of(f, label) if id_of else f"{slug(label)}/{'/'.join(parts[len(parts) - depth:])}"
        if row_id in seen:
            raise RawLayoutError(f"{corpus}: {seen[row_id].path} and {f.path} are the same image name in the same "
                                 "class; pass one copy of the download (either the archive or the extracted folder)")
        seen[row_id] = f
        items.append(Item(label, f, row_id, folder))
    if not items:
        raise RawLayoutError(f"{raw.root}: no {corpus} images ({', '.join(IMAGE_SUFFIXES)}) found; expected {layout}"
                             + found(raw))
    rank = {name: i for i, name in enumerate(order or aliases)}
    items.sort(key=lambda it: (rank[it.label], natural_key(it.id)))
    return items
