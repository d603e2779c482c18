"""AGMC-TU Pap smear cytological image dataset (Bhowmik et al., ICPRAI 2018): nucleus region segmentation.

LAYOUT UNVERIFIED. Only the dataset's name, its request page (https://mkbhowmik.in/AGMC-tuDb.aspx) and the
paper title are known. The builder assumes the usual form of a nucleus-segmentation set: an image folder and a
ground-truth folder of binary nucleus masks with matching file names. One row per image, with the mask and one
`nucleus` object per connected component of the mask.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image

from cytohub import layout, synth
from cytohub.builder import Builder, Label, Source
from cytohub.errors import RawFileError, RawLayoutError
from cytohub.formats.masks import component_boxes
from cytohub.formats.naming import letters_key
from cytohub.images import size as image_size
from cytohub.raw import RawFile, RawTree

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")
_IMAGE_DIRS = {"image", "images", "img", "imgs", "original", "originals", "originalimages", "papsmearimages"}
_MASK_DIRS = {"groundtruth", "groundtruths", "gt", "gts", "mask", "masks", "label", "labels", "annotation",
              "annotations", "nucleusmask", "nucleusmasks", "segmentation"}
_MASK_SUFFIX = re.compile(r"[_\-\s]*(gt|ground[_\-\s]*truth|mask|nucleus|nuclei|label|seg)$", re.IGNORECASE)
FULL_IMAGES = 100  # not published; the synthetic full scale is arbitrary


def folder_role(folder: str) -> str | None:
    """'image' | 'mask' | None from a folder name ('Ground Truth', 'GT', 'masks', 'Images', 'Original'...)."""
    k = letters_key(folder)
    return "image" if k in _IMAGE_DIRS else "mask" if k in _MASK_DIRS else None


def mask_stem(stem: str) -> str:
    """The image stem a mask belongs to ('img01_gt' -> 'img01', 'img01-mask' -> 'img01')."""
    return _MASK_SUFFIX.sub("", stem)


def nucleus_boxes(mask: np.ndarray) -> list[list[float]]:
    """[x, y, w, h] (0-based, pixels) of each 8-connected foreground component, in raster order of the labels.
    Foreground: value >= 128 in an 8-bit mask whose maximum exceeds 1, else value >= 1 (0/1 masks)."""
    return component_boxes(mask >= 128 if mask.max() > 1 else mask >= 1)


def _read_mask(data: bytes, where: str) -> np.ndarray:
    try:
        with Image.open(io.BytesIO(data)) as im:
            return np.asarray(im.convert("L"))
    except OSError as exc:
        raise RawFileError(f"{where}: not a readable mask image ({exc})") from None


def full_scale_rows() -> int:
    """Rows of a full-scale synthetic build: 100 images (a plausible number; none is published)."""
    return FULL_IMAGES


class AGMCTU(Builder):
    name = "agmc-tu"
    pretty_name = "AGMC-TU Pap Smear Cytological Image Dataset (nucleus segmentation)"
    summary = "Pap smear images with nucleus ground truth from AGMC and Tripura University, India (layout unverified)"
    homepage = "https://mkbhowmik.in/AGMC-tuDb.aspx"
    license = "unknown"
    redistribution = "forbidden"
    attribution = ("Bhowmik M. K. et al., AGMC-TU Pap-smear dataset (https://mkbhowmik.in/AGMC-tuDb.aspx). License "
                   "and terms of use not stated in the sources consulted.")
    citation = """@inproceedings{bhowmik2018agmctu,
  title     = {Nucleus region segmentation towards cervical cancer screening using {AGMC-TU} Pap-smear dataset},
  author    = {Bhowmik, Mrinal Kanti and others},
  booktitle = {Proceedings of the International Conference on Pattern Recognition and Artificial Intelligence},
  year      = {2018}
}"""
    sources = (Source("AGMC-TU", url="https://mkbhowmik.in/AGMC-tuDb.aspx",
                      name_published=False,
                      description="dataset page (request form); file names and archive type unknown"),)
    manual_download = """Request the AGMC-TU Pap smear dataset from https://mkbhowmik.in/AGMC-tuDb.aspx. Pass the
archive or folder you receive with --raw (or put it at $CYTOHUB_HOME/raw/agmc-tu). The builder expects an image
folder (Images/, Original/ ...) and a ground-truth folder (GroundTruth/, GT/, Masks/ ...) side by side, with one
binary nucleus mask per image under the same file name (a _gt or _mask suffix is accepted)."""
    task_categories = ("image-segmentation", "object-detection")
    tags = ("cytology", "cervical-cancer", "pap-smear", "nucleus-segmentation", "microscopy", "medical")
    organ = "uterine cervix"
    stain = "Papanicolaou"
    preparation = "conventional Pap smear"
    scanner = None
    magnification = None
    mpp = None
    num_images = None
    layout = "unverified"
    expected_layout = """
    <root>/ (the download, any wrapper folders)
      Images/ (or Original/)          <name>.jpg|png|bmp|tif
      GroundTruth/ (or Masks/, GT/)   <name>.png|bmp|...  binary nucleus mask, same name
"""
    assumptions = (
        "Nothing about the files is published: the builder assumes an image folder and a sibling ground-truth "
        "folder (names matched tolerantly) pairing each image with a nucleus mask of the same stem "
        "(optional _gt / _mask / _nucleus suffix).",
        "Masks are binary nucleus masks (foreground >= 128 in 8-bit masks, >= 1 in 0/1 masks); each 8-connected "
        "component becomes one 'nucleus' object with its bounding box. Touching nuclei would merge into one box.",
        "Images are assumed to be JPEG/PNG/BMP/TIFF of any size; the mask must have the image's size.",
        "The dataset is assumed to be conventional Pap smears with Papanicolaou stain (from 'Pap-smear dataset' in "
        "the paper title); no image-level classes are assumed.",
        "The number of images is not published (num_images is null); the synthetic full scale writes 100.",
    )
    labels = ()
    object_labels = (Label("nucleus", ("nucleus",), None),)

    # ------------------------------------------------------------------ raw -> rows
    def examples(self, raw: RawTree) -> Iterator[dict]:
        images: dict[tuple[str, str], RawFile] = {}
        masks: dict[tuple[str, str], RawFile] = {}
        for f in raw.files(suffix=IMAGE_SUFFIXES):
            folders = f.parts[:-1]
            roles = [(i, folder_role(p)) for i, p in enumerate(folders) if folder_role(p)]
            if not roles:
                under = "/".join(folders[:-1])
                raise RawLayoutError(f"{f.path}: not inside an image folder (Images/, Original/) or a ground-truth "
                                     "folder (GroundTruth/, GT/, Masks/)" + layout.found(raw, under))
            i, role = roles[-1]
            base = "/".join(folders[:i])
            sub = "/".join(folders[i + 1:])
            stem = f"{sub}/{f.stem}" if sub else f.stem
            table = images if role == "image" else masks
            key = (base, stem if role == "image" else mask_stem(stem))
            if key in table:
                raise RawLayoutError(f"two {role}s for one image: {table[key].path} and {f.path}")
            table[key] = f
        if not images:
            raise RawLayoutError(f"{raw.root}: no AGMC-TU images found; expected an Images/ folder and a "
                                 "GroundTruth/ folder of nucleus masks with matching names" + layout.found(raw))
        for key, m in sorted(masks.items()):
            if key not in images:
                raise RawLayoutError(f"{m.path}: ground-truth mask without a matching image {key[1]}.* in the "
                                     f"image folder{' under ' + key[0] if key[0] else ''}")
        missing = [images[k].path for k in sorted(images) if k not in masks]
        if missing:
            raise RawLayoutError(f"{missing[0]}: no ground-truth mask with the same name "
                                 f"({len(missing)} image(s) without a mask)")
        multi = len({b for b, _ in images}) > 1
        for key in sorted(images):
            img, m = images[key], masks[key]
            img_bytes, mask_bytes = img.read_bytes(), m.read_bytes()  # each file is read once
            arr = _read_mask(mask_bytes, m.path)
            w, h = image_size(img_bytes, img.path)
            if (arr.shape[1], arr.shape[0]) != (w, h):
                raise RawLayoutError(f"{m.path}: mask is {arr.shape[1]}x{arr.shape[0]} px but image {img.path} is "
                                     f"{w}x{h} px")
            base, stem = key
            yield {
                "id": f"{base}/{stem}" if multi and base else stem,
                "image": {"bytes": img_bytes, "path": img.name},
                "mask": {"bytes": mask_bytes, "path": m.name},
                "source_path": f"{img.path};{m.path}",
                "objects": [{"category": "nucleus", "bbox": box} for box in nucleus_boxes(arr)],
                "extra": {"mask_values": sorted(int(v) for v in np.unique(arr))[:16]},
            }

    # ------------------------------------------------------------------ synthetic raw layout
    def synthesize(self, root: Path, scale: str = "small", seed: int = 0) -> None:
        n, size = (6, (256, 192)) if scale == "small" else (FULL_IMAGES, (1024, 768))
        for k in range(1, n + 1):
            rng = synth.rng_for("agmc-tu", seed, k)
            img, cells = synth.cell_field(rng, size, n_cells=int(rng.integers(2, 5)), nucleus_scale=0.3, tint=k)
            mask = synth.label_mask(size, [(c.nucleus_polygon(), 255) for c in cells])
            synth.write_bytes(root / "AGMC-TU" / "Images" / f"AGMC_{k:03d}.jpg", synth.encode(img, "JPEG"))
            synth.write_bytes(root / "AGMC-TU" / "GroundTruth" / f"AGMC_{k:03d}.png", synth.encode(mask, "PNG"))
        synth.write_marker(root, self.name, scale, seed)
