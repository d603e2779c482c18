"""Mendeley BTTFA: data for "Binary Tree-like Network with Two-path Fusion Attention Feature for Cervical Cell
Nucleus Segmentation" (Zhang et al., 2019).

104 BMP images of cervical cells, each with a manual nucleus ground truth (BMP, same base name). Mendeley
zip `jks43dkjj7-1.zip` -> `dataset_forsubmit/{imgbmp, GroundTruth, groundtruth_mask}/`. One row per image,
the ground truth as `mask`, passed through as published.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image

from cytohub import layout, synth
from cytohub.builder import Builder, Label, Published, Source
from cytohub.errors import RawFileError, RawLayoutError
from cytohub.formats.naming import natural_key
from cytohub.images import size as image_size
from cytohub.raw import RawFile, RawTree

ROOT = "jks43dkjj7-1"
IMAGES, TRUTH, OTHER = "imgbmp", "groundtruth", "groundtruth_mask"  # folder names, compared lower-case


def nucleus_polarity(mask_bytes: bytes, where: str) -> tuple[str, float]:
    """Which grey level marks nuclei in a ground-truth image: 'dark' or 'light' (the minority side of a
    threshold at 128), and the fraction of pixels that are nucleus. 'none' when the image is uniform."""
    try:
        grey = np.asarray(Image.open(io.BytesIO(mask_bytes)).convert("L"))
    except Exception as exc:
        raise RawFileError(f"{where}: ground truth does not decode ({type(exc).__name__}: {exc})") from None
    light = float((grey >= 128).mean())
    if light in (0.0, 1.0):
        return "none", 0.0
    return ("light", light) if light < 0.5 else ("dark", 1.0 - light)


def image_count(scale: str) -> int:
    return 104 if scale == "full" else 6


class BTTFA(Builder):
    name = "bttfa"
    pretty_name = "BTTFA: Cervical Cell Nucleus Segmentation Data (Zhang et al. 2019)"
    version = "1.0.0"
    summary = "104 cervical cytology images with manual nucleus segmentation ground truth"
    homepage = "https://data.mendeley.com/datasets/jks43dkjj7/1"
    license = "cc-by-4.0"
    redistribution = "allowed"
    attribution = ("Zhang, Jianwei: Data for: Binary Tree-like Network with Two-path Fusion Attention Feature for "
                   "Cervical Cell Nucleus Segmentation, Mendeley Data V1, doi:10.17632/jks43dkjj7.1; "
                   "licensed CC BY 4.0.")
    citation = """@misc{zhang2019bttfa_data,
  author    = {Zhang, Jianwei},
  title     = {Data for: Binary Tree-like Network with Two-path Fusion Attention Feature for Cervical Cell
               Nucleus Segmentation},
  publisher = {Mendeley Data},
  version   = {V1},
  year      = {2019},
  doi       = {10.17632/jks43dkjj7.1}
}
@article{zhang2019bttfa,
  title   = {Binary tree-like network with two-path Fusion Attention Feature for cervical cell nucleus segmentation},
  author  = {Zhang, Jianwei and Liu, Zhenmei and Du, Bin and others},
  journal = {Computers in Biology and Medicine},
  volume  = {108},
  pages   = {223--233},
  year    = {2019},
  doi     = {10.1016/j.compbiomed.2019.03.011}
}"""
    sources = (
        Source("jks43dkjj7-1.zip", direct=True,
               url="https://prod-dcd-datasets-cache-zipfiles.s3.eu-west-1.amazonaws.com/jks43dkjj7-1.zip",
               description="Mendeley Data 'Download All' zip (name and link from the Mendeley convention "
                           "<id>-<version>.zip); dataset_forsubmit/imgbmp, GroundTruth, groundtruth_mask"),
    )
    manual_download = """Download the dataset from https://data.mendeley.com/datasets/jks43dkjj7/1 ("Download All",
a zip named jks43dkjj7-1.zip) and pass the zip with --raw (or put it at $CYTOHUB_HOME/raw/bttfa). The
extracted folder works too: the builder looks for dataset_forsubmit/imgbmp/*.bmp and the matching
dataset_forsubmit/GroundTruth/*.bmp anywhere below the path given."""
    task_categories = ("image-segmentation",)
    tags = ("cytology", "cervical-cancer", "nucleus-segmentation", "semantic-segmentation", "microscopy", "medical")
    organ = "uterine cervix"
    stain = None
    preparation = "liquid-based cytology (as described by third parties; not confirmed by the data page)"
    mpp = None
    num_images = 104
    published = Published(files=("jks43dkjj7-1.zip",), rows=104, unit="images",
                          source="Mendeley Data jks43dkjj7 (104 images with ground truth)")
    layout = "unverified"
    expected_layout = """
    jks43dkjj7-1.zip / jks43dkjj7-1/dataset_forsubmit/
      imgbmp/<n>.bmp                 images
      GroundTruth/<n>.bmp            nucleus ground truth (mask)
      groundtruth_mask/<n>.bmp       the same, inverted (skipped)
"""
    assumptions = (
        "Folder names dataset_forsubmit/imgbmp, GroundTruth and groundtruth_mask come from the dataset README as "
        "quoted by a third-party script; whether the Mendeley zip wraps them in jks43dkjj7-1/ (as other Mendeley "
        "downloads do) is assumed. The builder finds the folders at any depth.",
        "An image and its ground truth share a base name (a third-party script pairs them so); stems are "
        "assumed numeric (1.bmp ... 104.bmp) in the synthetic data only: any stem is accepted.",
        "Ground-truth polarity is not documented: a third-party script inverts it, suggesting dark nuclei on a "
        "light background. The builder passes the ground truth through untouched and records the polarity it "
        "measures in `extra.nucleus_pixels` ('dark' or 'light', the minority side of a threshold at 128).",
        "What groundtruth_mask/ holds is not documented: its files are not used (listed in the build report); "
        "the synthetic data puts binary (white-nucleus) masks there.",
        "Image size, stain and pixel size are not published (mpp is null).",
    )
    labels = ()
    object_labels = (Label("nucleus", ("nucleus",), None,
                           "the foreground of the ground-truth mask (no per-nucleus objects are published)"),)

    # ------------------------------------------------------------------ raw -> rows
    def examples(self, raw: RawTree) -> Iterator[dict]:
        images: dict[str, RawFile] = {}
        truths: dict[str, RawFile] = {}
        for f in raw.files(suffix=".bmp"):
            folder = f.parts[-2].lower() if len(f.parts) > 1 else ""
            if folder == OTHER:
                raw.skip(f, "groundtruth_mask/: content undocumented; the GroundTruth/ image is the row's mask")
                continue
            bucket = {IMAGES: images, TRUTH: truths}.get(folder)
            if bucket is None:
                continue  # reported as not part of the layout
            if f.stem.lower() in bucket:
                raise RawLayoutError(f"two files for {f.stem!r}: {bucket[f.stem.lower()].path} and {f.path}")
            bucket[f.stem.lower()] = f
        if not images:
            raise RawLayoutError(f"{raw.root}: no BTTFA images found; expected dataset_forsubmit/imgbmp/<name>.bmp "
                                 "with dataset_forsubmit/GroundTruth/<name>.bmp" + layout.found(raw))
        orphans = sorted(set(truths) - set(images), key=natural_key)
        if orphans:
            gt = truths[orphans[0]]
            raise RawLayoutError(f"{gt.path}: ground truth without an image (no imgbmp/{gt.name}); "
                                 f"{len(orphans)} such file(s)")
        for stem in sorted(images, key=natural_key):
            img = images[stem]
            gt = truths.get(stem)
            if gt is None:
                raise RawLayoutError(f"{img.path}: no ground truth; expected GroundTruth/{img.name} next to imgbmp/")
            img_bytes, gt_bytes = img.read_bytes(), gt.read_bytes()
            size, gt_size = image_size(img_bytes, img.path), image_size(gt_bytes, gt.path)
            if size != gt_size:
                raise RawLayoutError(f"{gt.path}: ground truth is {gt_size}, its image {img.path} is {size} "
                                     "(width, height)")
            polarity, fraction = nucleus_polarity(gt_bytes, gt.path)
            yield {
                "id": img.stem,
                "image": {"bytes": img_bytes, "path": img.name},
                "mask": {"bytes": gt_bytes, "path": gt.name},
                "source_path": f"{img.path};{gt.path}",
                "extra": {"nucleus_pixels": polarity, "nucleus_fraction": round(fraction, 4)},
            }

    # ------------------------------------------------------------------ synthetic raw layout
    def synthesize(self, root: Path, scale: str = "small", seed: int = 0) -> None:
        size = (512, 384) if scale == "full" else (128, 96)
        base = f"{ROOT}/dataset_forsubmit"
        entries = []
        for i in range(1, image_count(scale) + 1):
            rng = synth.rng_for("bttfa", seed, i)
            img, cells = synth.cell_field(rng, size, n_cells=int(rng.integers(2, 5)), nucleus_scale=0.35)
            nuclei = [(c.nucleus_polygon(), 255) for c in cells]
            white = synth.label_mask(size, nuclei)  # white nuclei on black
            dark = Image.fromarray(255 - np.asarray(white))  # the published ground truth: dark nuclei
            entries += [(f"{base}/imgbmp/{i}.bmp", synth.encode(img, "BMP")),
                        (f"{base}/GroundTruth/{i}.bmp", synth.encode(dark, "BMP")),
                        (f"{base}/groundtruth_mask/{i}.bmp", synth.encode(white, "BMP"))]
        entries.sort(key=lambda e: e[0])
        synth.write_zip(root / f"{ROOT}.zip", entries)
        synth.write_marker(root, self.name, scale, seed)
