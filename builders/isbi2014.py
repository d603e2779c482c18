"""ISBI 2014 Overlapping Cervical Cytology Image Segmentation Challenge (Lu, Carneiro, Bradley et al.).

945 synthetic 512 x 512 grayscale images made from 16 real EDF images: 45 for training, 900 for testing (the
first 90 = the challenge's "Test90", the other 810 = its final test set). Each image has one mask per cell
cytoplasm (cells overlap) and one mask of all nuclei. Two downloads:

    Train45Test90.zip   isbi_train.mat (ISBI_Train), isbi_train_GT.mat (train_Cytoplasm, train_Nuclei),
                        isbi_test90.mat (ISBI_Test90), isbi_test90_GT.mat (test_Cytoplasm, test_Nuclei)
    Dataset.zip         Dataset/Synthetic/trainset.mat (v7.3, trainset), trainset_GT.mat (v5),
                        testset.mat (v7.3, testset: 900), testset_GT.mat (v7.3); Dataset/EDF/ (real EDF images)
One row per synthetic image: `image` (PNG), `mask` = the nuclei mask, objects = cytoplasm and nucleus outlines.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image

from cytohub import layout, synth
from cytohub.builder import Builder, Label, Published, Source
from cytohub.errors import RawLayoutError
from cytohub.formats import masks, matlab, rle
from cytohub.raw import RawFile, RawTree

TEST90 = 90
# (split, image file, image variable, ground-truth file, prefix of the GT variables), preferred source first
SETS = {
    "train": (("trainset.mat", "trainset", "trainset_GT.mat", "train"),
              ("isbi_train.mat", "ISBI_Train", "isbi_train_GT.mat", "train")),
    "test": (("testset.mat", "testset", "testset_GT.mat", "test"),
             ("isbi_test90.mat", "ISBI_Test90", "isbi_test90_GT.mat", "test")),
}


def to_uint8(arr: np.ndarray, where: str) -> np.ndarray:
    """A MATLAB image as uint8 (H, W) or (H, W, 3)."""
    a = np.asarray(arr)
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] not in (3, 4)):
        raise RawLayoutError(f"{where}: image of shape {a.shape}; expected H x W (grayscale) or H x W x 3")
    if a.dtype == np.uint8:
        return a
    if a.dtype == bool:
        return a.astype(np.uint8) * 255
    if np.issubdtype(a.dtype, np.floating) and a.size and not np.isfinite(a).all():
        raise RawLayoutError(f"{where}: image has NaN or infinite pixel values; expected numbers in 0..1 or 0..255")
    if np.issubdtype(a.dtype, np.floating) and a.size and float(np.nanmax(a)) <= 1.0:
        return np.clip(np.rint(a * 255), 0, 255).astype(np.uint8)
    if np.issubdtype(a.dtype, np.number) and a.size and float(a.min()) >= 0 and float(a.max()) <= 255:
        return a.astype(np.uint8)
    raise RawLayoutError(f"{where}: image values of type {a.dtype} outside 0..255; expected uint8")


def png(arr: np.ndarray) -> bytes:
    """uint8 (H, W) -> 8-bit grey PNG; bool -> 1-bit PNG; (H, W, 3) -> RGB PNG."""
    return synth.encode(Image.fromarray(arr), "PNG")


def mask_objects(cytoplasm, nuclei: np.ndarray, shape: tuple[int, int], where: str) -> tuple[list, list]:
    """Objects (cytoplasm per cell in source order, then nuclei as connected components in raster order) and the
    cytoplasm masks' RLEs."""
    objects, rles = [], []
    for j in range(len(cytoplasm)):
        m = np.asarray(cytoplasm[j]) > 0
        if m.shape != shape:
            raise RawLayoutError(f"{where}: cytoplasm mask {j + 1} is {m.shape}, the image is {shape}")
        rles.append(rle.coco_encode(m))
        obj = masks.binary_object(m, "cytoplasm")
        if obj is not None:
            objects.append(obj)
    return objects + masks.component_objects(nuclei, "nucleus"), rles


class ISBI2014(Builder):
    name = "isbi2014"
    pretty_name = "ISBI 2014 Overlapping Cervical Cytology Image Segmentation Challenge"
    summary = "945 synthetic overlapping-cell cervical images (45 train, 900 test) with cytoplasm and nucleus masks"
    homepage = "https://cs.adelaide.edu.au/~carneiro/isbi14_challenge/"
    license = "unknown"
    redistribution = "gated"
    attribution = ("Lu Z., Carneiro G., Bradley A. P. et al., ISBI 2014 Overlapping Cervical Cytology Image "
                   "Segmentation Challenge, University of Adelaide (no license stated; cite the papers).")
    citation = """@article{lu2015improved,
  title   = {An Improved Joint Optimization of Multiple Level Set Functions for the Segmentation of Overlapping
             Cervical Cells},
  author  = {Lu, Zhi and Carneiro, Gustavo and Bradley, Andrew P.},
  journal = {IEEE Transactions on Image Processing},
  volume  = {24}, number = {4}, pages = {1261--1272}, year = {2015}
}
@article{lu2017evaluation,
  title   = {Evaluation of Three Algorithms for the Segmentation of Overlapping Cervical Cells},
  author  = {Lu, Zhi and Carneiro, Gustavo and Bradley, Andrew P. and Ushizima, Daniela and Nosrati, Masoud S. and
             Bianchi, Andrea G. C. and Carneiro, Cl{\\'a}udia M. and Hamarneh, Ghassan},
  journal = {IEEE Journal of Biomedical and Health Informatics},
  volume  = {21}, number = {2}, pages = {441--450}, year = {2017}
}"""
    sources = (
        Source("Dataset.zip", url="https://cs.adelaide.edu.au/~carneiro/isbi14_challenge/Dataset.zip", direct=True,
               alt_urls=("https://cs.adelaide.edu.au/~zhi/project/TIP_CellSegJointLS_2014/Dataset.zip",),
               description="Dataset/Synthetic (45 train + 900 test images with ground truth) and Dataset/EDF"),
        Source("Train45Test90.zip", url="https://cs.adelaide.edu.au/~carneiro/isbi14_challenge/Train45Test90.zip",
               direct=True, required=False,
               description="the first challenge release: 45 training and 90 test images with ground truth "
                           "(optional: the same images are in Dataset.zip)"),
    )
    manual_download = """Download Dataset.zip (and, optionally, Train45Test90.zip) from the challenge page
https://cs.adelaide.edu.au/~carneiro/isbi14_challenge/dataset.html (a mirror of Dataset.zip is at
https://cs.adelaide.edu.au/~zhi/project/TIP_CellSegJointLS_2014/Dataset.zip). Put the zip(s) in one folder and
pass it with --raw (or put it at $CYTOHUB_HOME/raw/isbi2014). Extracted folders work too."""
    task_categories = ("image-segmentation", "object-detection")
    tags = ("cytology", "cervical-cancer", "pap-smear", "overlapping-cells", "instance-segmentation",
            "nucleus-segmentation", "synthetic-images", "extended-depth-of-field", "microscopy", "medical")
    organ = "uterine cervix"
    stain = "Papanicolaou"
    preparation = "Pap smear; synthetic images composed from cells of 16 real EDF images"
    magnification = "40x"
    num_images = 945
    published = Published(
        files=("Dataset.zip",), optional_files=("Train45Test90.zip",), rows=945,
        rows_per_split={"train": 45, "test": 900}, unit="images",
        source="the challenge page and Lu et al. (945 images: 45 training, 900 test)")
    layout = "verified"
    expected_layout = """
    Dataset.zip -> Dataset/Synthetic/trainset.mat, trainset_GT.mat, testset.mat, testset_GT.mat
                   Dataset/EDF/ (skipped)
    Train45Test90.zip -> isbi_train.mat, isbi_train_GT.mat, isbi_test90.mat, isbi_test90_GT.mat  (optional)
"""
    conversions = (
        "The images and nuclei masks are MATLAB arrays in .mat files, not image files, and a row holds encoded "
        "images: each image is encoded as a lossless 8-bit grayscale PNG (uint8 values kept, logical arrays "
        "become 0/255, floating-point values in 0..1 are scaled to 0..255 and rounded) and each nuclei mask as "
        "a 1-bit PNG. The cytoplasm masks are not images in the rows: they are kept exactly as run lengths in "
        "extra.cytoplasm_rle.",
    )
    assumptions = (
        "When both downloads are given, Dataset/Synthetic is read (it holds all 945 images) and the "
        "Train45Test90 files are recorded as skipped: isbi_train.mat is taken to hold the same 45 images as "
        "trainset.mat, and isbi_test90.mat the first 90 of testset.mat.",
        "Ids follow the position in the source cell array (train000.., test000..); `extra.subset` is train45, "
        "test90 (test index < 90) or test810.",
        "The real EDF images (Dataset/EDF/) are not built: their ground-truth file naming and their split are "
        "not documented. They are listed as skipped in the build report.",
        "Cytoplasm masks overlap, so they are not merged into one label map: each becomes an object (bbox + "
        "outer polygon on pixel corners) and `extra.cytoplasm_rle` keeps every mask exactly (COCO-style "
        "column-major RLE, one per source mask, in source order). `mask` is the nuclei mask (1-bit PNG) and "
        "each connected nucleus region (8-connected) is a `nucleus` object.",
        "A polygon is the outer boundary of the largest region of a mask: holes and detached fragments are "
        "only in the RLE.",
        "No license is stated: redistribution is treated as gated (ask the organisers). Pixel size is not "
        "stated (mpp is null).",
    )
    labels = ()
    object_labels = (Label("cytoplasm", ("cytoplasm",), None, "one overlapping cell's cytoplasm (whole cell)"),
                     Label("nucleus", ("nucleus",), None, "a connected region of the nuclei mask"))
    splits = ("train", "test")

    # ------------------------------------------------------------------ raw -> rows
    def examples(self, raw: RawTree) -> Iterator[dict]:
        for f in raw.files():
            if len(f.parts) > 1 and f.parts[-2].upper() == "EDF":
                raw.skip(f, "real EDF image: its ground-truth naming and split are not documented, not built")
            elif f.name.lower().startswith("readme") or f.suffix in (".m", ".txt", ".pdf"):
                raw.skip(f, "documentation or code")
        plan = []
        for split, options in SETS.items():
            found = None
            for image_name, var, gt_name, prefix in options:
                img, gt = self._find(raw, image_name), self._find(raw, gt_name)
                if img is None and gt is None:
                    continue
                if img is None or gt is None:
                    have, lack = (img, gt_name) if gt is None else (gt, image_name)
                    raise RawLayoutError(f"{have.path}: its partner {lack} is missing; expected both the images "
                                         "and the ground truth")
                if found is None:
                    found = (img, var, gt, prefix)
                else:
                    for f in (img, gt):
                        raw.skip(f, f"same images as {found[0].name} (read instead)")
            if found:
                plan.append((split, *found))
        if not plan:
            raise RawLayoutError(f"{raw.root}: no ISBI 2014 .mat files found; expected Dataset/Synthetic/"
                                 "trainset.mat, testset.mat (+ _GT.mat) or isbi_train.mat, isbi_test90.mat (+ _GT.mat)"
                                 + layout.found(raw))
        for split, img_file, var, gt_file, prefix in plan:
            yield from self._rows(split, img_file, var, gt_file, prefix)

    @staticmethod
    def _find(raw: RawTree, name: str) -> RawFile | None:
        hits = raw.named(name)
        if len(hits) > 1:
            raise RawLayoutError(f"{raw.root}: {len(hits)} files named {name}: {', '.join(h.path for h in hits)}; "
                                 "expected one")
        return hits[0] if hits else None

    def _rows(self, split: str, img_file: RawFile, var: str, gt_file: RawFile, prefix: str) -> Iterator[dict]:
        with matlab.MatFile(img_file) as imf, matlab.MatFile(gt_file) as gtf:
            images = imf.cell(var)
            cyto, nuclei = gtf.cell(f"{prefix}_Cytoplasm"), gtf.cell(f"{prefix}_Nuclei")
            if not len(images) == len(cyto) == len(nuclei):
                raise RawLayoutError(f"{gt_file.path}: {len(cyto)} cytoplasm and {len(nuclei)} nuclei entries for "
                                     f"{len(images)} images in {img_file.path}")
            for i in range(len(images)):
                where = f"{img_file.path}: {var}{{{i + 1}}}"
                image = to_uint8(images[i], where)
                shape = image.shape[:2]
                nuc = np.asarray(nuclei[i]) > 0
                if nuc.shape != shape:
                    raise RawLayoutError(f"{gt_file.path}: {prefix}_Nuclei{{{i + 1}}} is {nuc.shape}, the image is "
                                         f"{shape}")
                cell = cyto[i]
                if not isinstance(cell, matlab.Cell):
                    raise RawLayoutError(f"{gt_file.path}: {prefix}_Cytoplasm{{{i + 1}}} is not a cell of masks")
                objects, rles = mask_objects(cell, nuc, shape, f"{gt_file.path}: {prefix}_Cytoplasm{{{i + 1}}}")
                subset = "train45" if split == "train" else ("test90" if i < TEST90 else "test810")
                rid = f"{split}{i:03d}"
                yield {
                    "id": rid,
                    "image": {"bytes": png(image), "path": f"{rid}.png"},
                    "mask": {"bytes": png(nuc), "path": f"{rid}_nuclei.png"},  # bool -> 1-bit PNG
                    "label": None,
                    "objects": objects,
                    "split": split,
                    "source_path": f"{img_file.path}:{var}{{{i + 1}}};{gt_file.path}",
                    "extra": {"subset": subset, "index": i, "mat_version": imf.version,
                              "cytoplasm_rle": rles},
                }

    # ------------------------------------------------------------------ synthetic raw layout
    def synthesize(self, root: Path, scale: str = "small", seed: int = 0) -> None:
        full = scale == "full"
        size, n_train, n_test = ((512, 512), 45, 900) if full else ((64, 64), 3, 4)
        n_edf = 16 if full else 2

        def sample(kind: str, i: int):
            rng = synth.rng_for("isbi2014", seed, kind, i)
            field, cells = synth.cell_field(rng, size, n_cells=int(rng.integers(2, 5)), nucleus_scale=0.3,
                                            tint=i, margin=0.05)
            gray = np.asarray(field.convert("L"))
            cyto = [np.asarray(synth.label_mask(size, [(c.cytoplasm_polygon(), 1)])) > 0 for c in cells]
            nuc = np.asarray(synth.label_mask(size, [(c.nucleus_polygon(), 1) for c in cells])) > 0
            return gray, cyto, nuc

        train = [sample("train", i) for i in range(n_train)]
        test = [sample("test", i) for i in range(n_test)]
        t90 = test[:TEST90]
        work = root / ".cytohub-staging"
        matlab.write_v5(work / "isbi_train.mat", {"ISBI_Train": [s[0] for s in train]})
        matlab.write_v5(work / "isbi_train_GT.mat", {"train_Cytoplasm": [s[1] for s in train],
                                                  "train_Nuclei": [s[2] for s in train]})
        matlab.write_v5(work / "isbi_test90.mat", {"ISBI_Test90": [s[0] for s in t90]})
        matlab.write_v5(work / "isbi_test90_GT.mat", {"test_Cytoplasm": [s[1] for s in t90],
                                                   "test_Nuclei": [s[2] for s in t90]})
        synth.write_zip(root / "Train45Test90.zip",
                        [(n, (work / n).read_bytes()) for n in ("isbi_train.mat", "isbi_train_GT.mat",
                                                                 "isbi_test90.mat", "isbi_test90_GT.mat")])
        matlab.write_v73(work / "trainset.mat", {"trainset": [s[0] for s in train]})
        matlab.write_v5(work / "trainset_GT.mat", {"train_Nuclei": [s[2] for s in train],
                                                "train_Cytoplasm": [s[1] for s in train]})
        matlab.write_v73(work / "testset.mat", {"testset": [s[0] for s in test]})
        matlab.write_v73(work / "testset_GT.mat", {"test_Nuclei": [s[2] for s in test],
                                                "test_Cytoplasm": [s[1] for s in test]})
        entries = [(f"Dataset/Synthetic/{n}", (work / n).read_bytes())
                   for n in ("testset.mat", "testset_GT.mat", "trainset.mat", "trainset_GT.mat")]
        for k in range(n_edf):
            rng = synth.rng_for("isbi2014", seed, "edf", k)
            field, _ = synth.cell_field(rng, (size[0] * 2, size[1] * 2), n_cells=8, nucleus_scale=0.3, tint=k)
            entries.append((f"Dataset/EDF/EDF{k:03d}.png", synth.encode(field.convert("L"), "PNG")))
        synth.write_zip(root / "Dataset.zip", entries)
        for p in work.iterdir():
            p.unlink()
        work.rmdir()
        synth.write_marker(root, self.name, scale, seed)
