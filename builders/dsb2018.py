"""2018 Data Science Bowl (BBBC038): nucleus instance segmentation across many kinds of microscopy images
(Caicedo et al., Nature Methods 2019).

Kaggle download: `stage1_train.zip` holds `<ImageId>/images/<ImageId>.png` and one binary PNG per nucleus in
`<ImageId>/masks/<MaskId>.png`; `stage1_train_labels.csv(.zip)` repeats every mask as a run-length encoding
(`ImageId,EncodedPixels`: 'start length' pairs, starts 1-based, pixels numbered top to bottom, then left to right);
`stage1_test.zip` holds the stage-1 test images, whose masks were published later as run lengths in
`stage1_solution.csv(.zip)`. One row per image; each nucleus becomes an object (bbox of its pixels + polygon of its
outer boundary), and `mask` is a 16-bit instance label map composed from the nucleus masks (value k = k-th object).
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from cytohub import layout, synth
from cytohub.builder import Builder, Label, Published, Source
from cytohub.errors import RawFileError, RawLayoutError
from cytohub.formats import csvfile, geometry
from cytohub.formats.masks import binary_object, png16
from cytohub.formats.masks import decode as read_array
from cytohub.formats.rle import kaggle_decode as kaggle_rle_decode
from cytohub.formats.rle import kaggle_encode as kaggle_rle_encode
from cytohub.raw import RawFile, RawTree

URL = "https://www.kaggle.com/competitions/data-science-bowl-2018/data"
LABELS_CSV = "stage1_train_labels.csv"
SOLUTION_CSV = "stage1_solution.csv"


def _split_of(f: RawFile) -> str:
    low = f.path.lower()
    if "stage2" in low:
        return "stage2"
    return "test" if "stage1_test" in low else "train"


def full_scale_rows() -> dict[str, int]:
    """Rows per split of a full-scale synthetic build: the commonly quoted 670 train / 65 stage-1 test."""
    return image_counts("full")


def image_counts(scale: str) -> dict[str, int]:
    """Images per split in synthetic data: full = the commonly quoted 670 train / 65 stage-1 test (unverified)."""
    return {"train": 670, "test": 65} if scale == "full" else {"train": 4, "test": 2}


def _read_csv(f: RawFile, columns: tuple[str, ...]) -> dict[str, list[dict]]:
    """Rows of a Kaggle CSV grouped by ImageId (checked header, clear errors)."""
    rows: dict[str, list[dict]] = defaultdict(list)
    for line, row in csvfile.table(f, columns):
        if not row["ImageId"]:
            raise RawLayoutError(f"{f.path}: line {line} has no ImageId")
        row["_where"] = f"{f.path}:{line}"
        rows[row["ImageId"]].append(row)
    return rows


class DSB2018(Builder):
    name = "dsb2018"
    pretty_name = "2018 Data Science Bowl: nucleus segmentation (BBBC038)"
    summary = "Nuclei in fluorescence, brightfield and H&E images, one binary mask per nucleus"
    homepage = URL
    license = "cc0-1.0"
    redistribution = "allowed"
    attribution = ("Caicedo J.C. et al., Nucleus segmentation across imaging experiments: the 2018 Data Science "
                   "Bowl, Nature Methods 16, 1247-1253 (2019); image set BBBC038 of the Broad Bioimage Benchmark "
                   "Collection.")
    citation = """@article{caicedo2019nucleus,
  title   = {Nucleus segmentation across imaging experiments: the 2018 Data Science Bowl},
  author  = {Caicedo, Juan C. and Goodman, Allen and Karhohs, Kyle W. and Cimini, Beth A. and Ackerman, Jeanelle
             and Haghighi, Marzieh and Heng, CherKeng and Becker, Tim and Doan, Minh and McQuin, Claire and
             Rohban, Mohammad and Singh, Shantanu and Carpenter, Anne E.},
  journal = {Nature Methods},
  volume  = {16},
  pages   = {1247--1253},
  year    = {2019},
  doi     = {10.1038/s41592-019-0612-7}
}"""
    sources = (
        Source("stage1_train.zip", url=URL, aliases=("stage1_train/", "data-science-bowl-2018.zip"),
               description="<ImageId>/images/<ImageId>.png + <ImageId>/masks/*.png"),
        Source("stage1_train_labels.csv.zip", url=URL, required=False, aliases=("stage1_train_labels.csv",),
               description="ImageId,EncodedPixels run lengths of every mask"),
        Source("stage1_test.zip", url=URL, required=False, aliases=("stage1_test/",),
               description="stage-1 test images <ImageId>/images/<ImageId>.png"),
        Source("stage1_solution.csv.zip", url=URL, required=False, aliases=("stage1_solution.csv",),
               description="stage-1 test masks as run lengths"),
    )
    manual_download = """Accept the competition rules at https://www.kaggle.com/competitions/data-science-bowl-2018
and download the data (`kaggle competitions download -c data-science-bowl-2018`, or the files stage1_train.zip,
stage1_train_labels.csv.zip, stage1_test.zip and stage1_solution.csv.zip) into one folder; pass it with --raw
(or put it at $CYTOHUB_HOME/raw/dsb2018). The same images are also distributed as BBBC038 by the Broad Institute.
Stage-2 files are listed in the build report but not built (no public masks)."""
    task_categories = ("image-segmentation", "object-detection")
    tags = ("nucleus-segmentation", "instance-segmentation", "microscopy", "fluorescence", "kaggle", "bbbc038")
    preparation = "various (cultured cells and tissues; fluorescence, brightfield and H&E)"
    num_images = None
    published = Published(
        files=("stage1_train.zip", "stage1_test.zip"),
        optional_files=("stage1_train_labels.csv.zip", "stage1_solution.csv.zip", "stage2_test_final.zip"),
        source="the Kaggle data page of the 2018 Data Science Bowl (image counts are only quoted by third "
               "parties, so they are not compared)")
    layout = "unverified"
    expected_layout = """
    stage1_train.zip           -> <ImageId>/images/<ImageId>.png, <ImageId>/masks/<MaskId>.png
    stage1_train_labels.csv.zip
    stage1_test.zip            -> <ImageId>/images/<ImageId>.png
    stage1_solution.csv.zip
"""
    conversions = (
        "`mask` is composed by cytohub, because a row holds one mask: the per-nucleus binary PNGs (or, for "
        "stage-1 test images, the run lengths of stage1_solution.csv) are combined into one 16-bit PNG instance "
        "label map, value k = the k-th object, the later nucleus winning where two overlap. Images are passed "
        "through as published.",
    )
    assumptions = (
        "Run lengths are 'start length' pairs with 1-based starts over pixels numbered top to bottom, then left "
        "to right (column-major), as in the Kaggle rules; they are decoded into pixel masks before any geometry.",
        "stage1_train_labels.csv must list the same masks as the PNG files (compared run length by run length); "
        "a difference is an error.",
        "stage1_solution.csv (ImageId,EncodedPixels,Height,Width,Usage) supplies the stage-1 test masks "
        "(per-nucleus PNGs under a test image's masks/ folder, if present, take precedence); without either, "
        "test rows have no objects. Its exact columns and the zipped CSV file names are assumed.",
        "`mask` is composed by cytohub (the source has one PNG per nucleus): a 16-bit label map where value k is "
        "the k-th object; where nuclei overlap, the later one wins (pixel count in extra.overlap_pixels).",
        "Polygons trace the outer boundary of the largest connected part of each mask; bboxes cover all its "
        "pixels. Images are passed through as published: the stage-1 PNGs are a mix of RGBA and RGB (as seen in "
        "the real files), and each keeps its own mode.",
        "Without stage1_train_labels.csv or stage1_solution.csv the build goes ahead and the card lists them as "
        "absent optional parts, with what the build lacks; without stage1_train.zip or stage1_test.zip the "
        "download is incomplete, and --allow-partial builds the split present (e.g. stage1_test.zip and the "
        "solution CSV alone give test rows only), the card naming the absent archive (report: `absent_parts`).",
        "Image counts (about 670 train / 65 stage-1 test) are quoted by third parties; licence CC0 as stated "
        "for BBBC038 by third parties; pixel size not published.",
    )
    labels = ()
    object_labels = (Label("nucleus", ("nucleus",), None, "one nucleus mask"),)
    splits = ("train", "test")

    # ------------------------------------------------------------------ raw -> rows
    def examples(self, raw: RawTree) -> Iterator[dict]:
        images: dict[tuple[str, str], RawFile] = {}
        masks: dict[tuple[str, str], list[RawFile]] = defaultdict(list)
        for f in raw.files(suffix=".png"):
            parts = f.parts
            if len(parts) < 3 or parts[-2].lower() not in ("images", "masks"):
                continue
            image_id, kind, split = parts[-3], parts[-2].lower(), _split_of(f)
            if split == "stage2":
                raw.skip(f, "stage-2 test image: no public masks, not built")
            elif kind == "images":
                if f.stem != image_id:
                    raise RawLayoutError(f"{f.path}: expected {image_id}/images/{image_id}.png")
                if (split, image_id) in images:
                    raise RawLayoutError(f"image {image_id} appears twice: {images[split, image_id].path} and {f.path}")
                images[split, image_id] = f
            else:
                masks["/".join(parts[:-3]), image_id].append(f)
        if not images:
            raise RawLayoutError(f"{raw.root}: no 2018 Data Science Bowl images found; expected stage1_train.zip "
                                 "with <ImageId>/images/<ImageId>.png and <ImageId>/masks/*.png" + layout.found(raw))
        for f in raw.files(pattern=r"(^|/)stage[12]_sample_submission[^/]*\.csv$"):
            raw.skip(f, "sample submission: no annotations")
        labels = self._csv(raw, LABELS_CSV, ("ImageId", "EncodedPixels"))
        solution = self._csv(raw, SOLUTION_CSV, ("ImageId", "EncodedPixels", "Height", "Width"))
        splits_present = {split for split, _ in images}
        if "train" not in splits_present:
            raw.note_absent("stage1_train.zip", "no train rows")
        elif labels is None:
            raw.note_absent(f"{LABELS_CSV}.zip", "the training masks are not cross-checked against its run lengths")
        if "test" not in splits_present:
            raw.note_absent("stage1_test.zip", "no test rows")
        elif solution is None and any(split == "test" and ("/".join(f.parts[:-3]), image_id) not in masks
                                      for (split, image_id), f in images.items()):
            raw.note_absent(f"{SOLUTION_CSV}.zip", "stage-1 test rows have no objects and no mask")
        owner = {("/".join(f.parts[:-3]), image_id): (split, image_id) for (split, image_id), f in images.items()}
        for key, files in masks.items():
            if key not in owner:
                raise RawLayoutError(f"{files[0].path}: mask without an image {key[1]}/images/{key[1]}.png")
        by_image = {owner[k]: sorted(v, key=lambda f: f.name) for k, v in masks.items()}

        for (split, image_id), f in sorted(images.items(), key=lambda kv: (self.splits.index(kv[0][0]), kv[0][1])):
            data = f.read_bytes()
            arr = read_array(data, f.path)
            height, width = arr.shape[:2]
            extra: dict = {}
            if split == "train" or (split, image_id) in by_image:  # per-nucleus PNG masks
                bin_masks = [self._mask_png(m, (height, width)) for m in by_image.get((split, image_id), [])]
                names = [m.stem for m in by_image.get((split, image_id), [])]
                if labels is not None and split == "train":
                    self._check_labels(labels, image_id, bin_masks, f)
                extra["mask_ids"] = names
            elif solution is not None and image_id in solution:
                bin_masks, usage = [], set()
                for r in solution[image_id]:
                    if not r["EncodedPixels"].strip():
                        continue
                    h = geometry.integer(r["Height"], "Height", r["_where"])
                    w = geometry.integer(r["Width"], "Width", r["_where"])
                    if (h, w) != (height, width):
                        raise RawLayoutError(f"{SOLUTION_CSV}: {image_id} is {w}x{h} there but {f.path} is "
                                             f"{width}x{height}")
                    try:
                        bin_masks.append(kaggle_rle_decode(r["EncodedPixels"], h, w))
                    except ValueError as exc:
                        raise RawLayoutError(f"{r['_where']}: bad run lengths for {image_id} ({exc})") from None
                    usage.add(r.get("Usage"))
                extra["usage"] = sorted(u for u in usage if u)
            else:
                bin_masks = None
                extra["annotations"] = f"none ({SOLUTION_CSV} not provided or does not list this image)"
            row = {"id": image_id, "image": {"bytes": data, "path": f.name}, "label": None, "split": split,
                   "source_path": f.path, "extra": extra}
            if bin_masks is not None:
                objects, label_map, overlap = [], np.zeros((height, width), np.uint16), 0
                for m in bin_masks:
                    obj = binary_object(m, "nucleus")
                    if obj is None:
                        continue
                    objects.append(obj)
                    overlap += int(np.count_nonzero(label_map[m]))
                    label_map[m] = len(objects)
                row["objects"] = objects
                row["mask"] = {"bytes": png16(label_map), "path": f"{image_id}_instances.png"}
                extra["overlap_pixels"] = overlap
            yield row

    # ------------------------------------------------------------------ helpers
    @staticmethod
    def _csv(raw: RawTree, name: str, columns: tuple[str, ...]) -> dict[str, list[dict]] | None:
        hits = raw.named(name)
        if len(hits) > 1:
            raise RawLayoutError(f"{raw.root}: {len(hits)} files named {name}: {', '.join(h.path for h in hits)}")
        return _read_csv(hits[0], columns) if hits else None

    @staticmethod
    def _mask_png(f: RawFile, shape: tuple[int, int]) -> np.ndarray:
        try:
            arr = read_array(f.read_bytes(), f.path)
        except Exception as exc:
            raise RawFileError(f"{f.path}: not a readable PNG mask ({exc})") from None
        if arr.ndim == 3:
            arr = arr[..., 0]
        if arr.shape != shape:
            raise RawLayoutError(f"{f.path}: mask is {arr.shape[1]}x{arr.shape[0]}, its image is {shape[1]}x{shape[0]}")
        return arr > 0

    @staticmethod
    def _check_labels(labels: dict[str, list[dict]], image_id: str, bin_masks: list[np.ndarray], f: RawFile) -> None:
        listed = sorted(" ".join(r["EncodedPixels"].split()) for r in labels.get(image_id, [])
                        if r["EncodedPixels"].strip())
        drawn = sorted(kaggle_rle_encode(m) for m in bin_masks)
        if listed != drawn:
            raise RawLayoutError(f"{LABELS_CSV}: the run lengths of {image_id} ({len(listed)} masks) differ from "
                                 f"the PNG masks in {f.parent.rsplit('/', 1)[0]}/masks/ ({len(drawn)} masks)")

    # ------------------------------------------------------------------ synthetic raw layout
    def synthesize(self, root: Path, scale: str = "small", seed: int = 0) -> None:
        counts = image_counts(scale)
        train, test, labels, solution = [], [], [["ImageId", "EncodedPixels"]], []
        solution.append(["ImageId", "EncodedPixels", "Height", "Width", "Usage"])
        sample = [["ImageId", "EncodedPixels"]]
        for split, n in (*counts.items(), ("stage2", 1)):
            for i in range(n):
                rng = synth.rng_for(self.name, seed, split, i)
                image_id = hashlib.sha256(f"{seed}-{split}-{i}".encode()).hexdigest()
                size = (256, 256) if scale == "full" else (int(rng.integers(56, 80)), int(rng.integers(48, 64)))
                img, cells = synth.cell_field(rng, size, n_cells=int(rng.integers(2, 5)), nucleus_scale=0.5,
                                              margin=0.05)
                mode = "RGBA" if i % 3 else "RGB"  # the real stage-1 PNGs mix RGBA and RGB
                entry = (f"{image_id}/images/{image_id}.png", synth.encode(img.convert(mode), "PNG"))
                nuclei = [np.asarray(synth.label_mask(size, [(c.nucleus_polygon(), 255)])) for c in cells]
                if split == "train":
                    train.append(entry)
                    for k, m in enumerate(nuclei):
                        mask_id = hashlib.sha256(f"{image_id}-{k}".encode()).hexdigest()
                        train.append((f"{image_id}/masks/{mask_id}.png", _png_l(m)))
                        labels.append([image_id, kaggle_rle_encode(m > 0)])
                elif split == "test":
                    test.append(entry)
                    sample.append([image_id, "1 1"])
                    for m in nuclei:
                        solution.append([image_id, kaggle_rle_encode(m > 0), str(size[1]), str(size[0]),
                                         "Public" if i % 2 == 0 else "Private"])
                else:
                    synth.write_zip(root / "stage2_test_final.zip", [entry])
        synth.write_zip(root / "stage1_train.zip", train)
        synth.write_zip(root / "stage1_test.zip", test)
        for name, rows in ((LABELS_CSV, labels), (SOLUTION_CSV, solution), ("stage1_sample_submission.csv", sample)):
            synth.write_zip(root / f"{name}.zip", [(name, _csv_bytes(rows))])
        synth.write_marker(root, self.name, scale, seed)


def _png_l(arr: np.ndarray) -> bytes:
    from PIL import Image

    return synth.encode(Image.fromarray(arr.astype(np.uint8), "L"), "PNG")


def _csv_bytes(rows: list[list[str]]) -> bytes:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    return buf.getvalue().encode()
