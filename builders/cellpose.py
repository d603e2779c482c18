"""Cellpose: the generalist cell segmentation dataset of Stringer et al. (2021).

Downloaded from https://www.cellpose.org/dataset after accepting its terms: `train.zip` and `test.zip`, each a
folder (`train/`, `test/`) of `NNN_img.png` images with `NNN_masks.png` instance label maps (16-bit, 0 =
background, k = cell k). One row per image; the label map is passed through as `mask`, and each instance becomes
an object with its bbox and outer polygon computed from the map.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from cytohub import layout, synth
from cytohub.builder import Builder, Label, Published, Source
from cytohub.errors import RawLayoutError
from cytohub.formats.masks import decode as read_array
from cytohub.formats.masks import instance_objects, png16
from cytohub.raw import RawFile, RawTree

FILE_RE = re.compile(r"^(?P<num>\d+)_(?P<kind>img|masks)\.png$", re.IGNORECASE)
SPLITS = ("train", "test")
SUPPLEMENT = "train_cyto2"  # an extra archive of user-contributed images [R]; its layout is not documented


def _split_of(f: RawFile) -> str | None:
    """The split named by the nearest enclosing folder or archive: train(.zip) / test(.zip); 'cyto2' for the
    supplement; None when no folder says."""
    for part in reversed(f.parts[:-1]):
        low = part.lower()
        low = low[:-4] if low.endswith(".zip") else low
        if low == SUPPLEMENT:
            return "cyto2"
        if low in SPLITS:
            return low
    return None


def full_scale_rows() -> dict[str, int]:
    """Rows per split of a full-scale synthetic build: the 540 / 68 quoted by third parties (unverified)."""
    return image_counts("full")


def image_counts(scale: str) -> dict[str, int]:
    """Images per split in synthetic data: full = the counts quoted by third parties (540 / 68, unverified)."""
    return {"train": 540, "test": 68} if scale == "full" else {"train": 4, "test": 2}


class Cellpose(Builder):
    name = "cellpose"
    pretty_name = "Cellpose: generalist cellular segmentation dataset"
    summary = "Microscopy images of cells (mostly fluorescence) with instance masks, from the Cellpose paper"
    homepage = "https://www.cellpose.org/dataset"
    license = "other"
    license_id = "cellpose-terms"
    license_name = "Cellpose dataset terms of use (accepted on the download page)"
    license_link = "https://www.cellpose.org/dataset"
    redistribution = "gated"
    attribution = ("Stringer C., Wang T., Michaelos M., Pachitariu M., Cellpose: a generalist algorithm for "
                   "cellular segmentation, Nature Methods 18, 100-106 (2021); dataset from www.cellpose.org.")
    citation = """@article{stringer2021cellpose,
  title   = {Cellpose: a generalist algorithm for cellular segmentation},
  author  = {Stringer, Carsen and Wang, Tim and Michaelos, Michalis and Pachitariu, Marius},
  journal = {Nature Methods},
  volume  = {18},
  number  = {1},
  pages   = {100--106},
  year    = {2021},
  doi     = {10.1038/s41592-020-01018-x}
}
@article{pachitariu2022cellpose2,
  title   = {Cellpose 2.0: how to train your own model},
  author  = {Pachitariu, Marius and Stringer, Carsen},
  journal = {Nature Methods},
  volume  = {19},
  pages   = {1634--1641},
  year    = {2022},
  doi     = {10.1038/s41592-022-01663-4}
}"""
    sources = (
        Source("train.zip", url="https://www.cellpose.org/dataset", aliases=("train/",),
               description="train/NNN_img.png + NNN_masks.png"),
        Source("test.zip", url="https://www.cellpose.org/dataset", aliases=("test/",),
               description="test/NNN_img.png + NNN_masks.png"),
    )
    manual_download = """Open https://www.cellpose.org/dataset, accept the terms of use and download train.zip and
test.zip into one folder; pass that folder with --raw (or put it at $CYTOHUB_HOME/raw/cellpose). Extracted
train/ and test/ folders work too. train_cyto2.zip, if present, is listed in the build report but not built."""
    task_categories = ("image-segmentation", "object-detection")
    tags = ("cell-segmentation", "instance-segmentation", "microscopy", "fluorescence", "cellpose")
    organ = None
    stain = None
    preparation = "various (mostly fluorescence microscopy; also brightfield and non-microscopy images)"
    num_images = None
    published = Published(files=("train.zip", "test.zip"), optional_files=("train_cyto2.zip",),
                          source="the cellpose.org dataset page (no image counts are stated)")
    layout = "unverified"
    expected_layout = """
    train.zip -> train/NNN_img.png, NNN_masks.png
    test.zip  -> test/NNN_img.png, NNN_masks.png
    (train_cyto2.zip: skipped)
"""
    assumptions = (
        "Archive and file names (train.zip / test.zip holding train/ and test/ folders of NNN_img.png and "
        "NNN_masks.png) come from third-party loaders, not from the download page itself.",
        "NNN_masks.png is an instance label map (0 = background, k = instance k); objects are computed from it "
        "(bbox of all pixels of k, polygon of the outer boundary of its largest 8-connected part).",
        "Every instance is categorised 'cell': the dataset does not say which images show nuclei rather than "
        "whole cells.",
        "train_cyto2.zip (user-contributed images) has an undocumented layout and is not built.",
        "A download with only train.zip or only test.zip (or only one of the folders) is incomplete; "
        "--allow-partial builds the split present and the card names the absent archive (report: "
        "`absent_parts`).",
        "Published image counts are not stated on the download page (third parties quote about 540 train / "
        "68 test); num_images is left empty and mpp is unknown.",
    )
    labels = ()
    object_labels = (Label("cell", ("cell",), None, "one instance of the label map (a cell, or a nucleus in "
                                                     "nuclear images)"),)
    splits = SPLITS

    # ------------------------------------------------------------------ raw -> rows
    def examples(self, raw: RawTree) -> Iterator[dict]:
        pairs: dict[tuple[str, str], dict[str, RawFile]] = {}
        for f in raw.files(suffix=".png"):
            m = FILE_RE.match(f.name)
            if not m:
                continue  # reported as not part of the layout
            split = _split_of(f)
            if split == "cyto2":
                raw.skip(f, "train_cyto2 supplement: undocumented layout, not built")
                continue
            if split is None:
                raise RawLayoutError(f"{f.path}: not inside a train/ or test/ folder (or train.zip / test.zip); "
                                     "expected train/NNN_img.png and test/NNN_img.png" + layout.found(raw))
            kind = m["kind"].lower()
            entry = pairs.setdefault((split, m["num"]), {})
            if kind in entry:
                raise RawLayoutError(f"{split} image {m['num']} appears twice: {entry[kind].path} and {f.path}")
            entry[kind] = f
        if not pairs:
            raise RawLayoutError(f"{raw.root}: no Cellpose images found; expected train.zip / test.zip with "
                                 "train/NNN_img.png + NNN_masks.png" + layout.found(raw))
        for split in SPLITS:
            if not any(s == split for s, _ in pairs):
                raw.note_absent(f"{split}.zip", f"no {split} rows")
        for (_, num), entry in sorted(pairs.items()):
            if "img" not in entry or "masks" not in entry:
                have, missing = ("img", "masks") if "img" in entry else ("masks", "img")
                raise RawLayoutError(f"{entry[have].path}: no matching {num}_{missing}.png in the same split; "
                                     "every image needs its mask")
        for (split, num), entry in sorted(pairs.items(), key=lambda kv: (SPLITS.index(kv[0][0]), kv[0][1])):
            img, msk = entry["img"], entry["masks"]
            img_bytes, mask_bytes = img.read_bytes(), msk.read_bytes()
            labels = read_array(mask_bytes, msk.path)
            if labels.ndim != 2 or not np.issubdtype(labels.dtype, np.integer):
                raise RawLayoutError(f"{msk.path}: expected a single-channel integer label map, got an array of "
                                     f"shape {labels.shape} and type {labels.dtype}")
            width, height = read_array(img_bytes, img.path).shape[1::-1]
            if labels.shape != (height, width):
                raise RawLayoutError(f"{msk.path}: mask is {labels.shape[1]}x{labels.shape[0]} but {img.name} is "
                                     f"{width}x{height}")
            objects, values = instance_objects(labels, "cell")
            yield {
                "id": f"{split}-{num}",
                "image": {"bytes": img_bytes, "path": img.name},
                "mask": {"bytes": mask_bytes, "path": msk.name},
                "label": None,
                "objects": objects,
                "split": split,
                "source_path": f"{img.path};{msk.path}",
                "extra": {"instance_values": values},
            }

    # ------------------------------------------------------------------ synthetic raw layout
    def synthesize(self, root: Path, scale: str = "small", seed: int = 0) -> None:
        size = (512, 512) if scale == "full" else (96, 80)
        pool = synth.ImagePool(scale)  # full scale: 32 drawn images per split, reused with their label maps

        def draw(split: str, i: int) -> tuple[bytes, bytes]:
            rng = synth.rng_for(self.name, seed, split, i)
            img, cells = synth.cell_field(rng, size, n_cells=int(rng.integers(2, 6)), margin=0.05)
            labels = np.asarray(synth.label_mask(size, [(c.cytoplasm_polygon(), k + 1)
                                                        for k, c in enumerate(cells)], mode="I"))
            return synth.encode(img, "PNG"), png16(labels)

        for split, n in image_counts(scale).items():
            entries = []
            for i in range(n):
                img, labels = pool(split, i, lambda j, split=split: draw(split, j))
                entries.append((f"{split}/{i:03d}_img.png", img))
                entries.append((f"{split}/{i:03d}_masks.png", labels))
            synth.write_zip(root / f"{split}.zip", entries)
        synth.write_marker(root, self.name, scale, seed)
