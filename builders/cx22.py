"""Cx22: a dataset for segmentation of cervical cytology images (Liu et al., Comput. Biol. Med. 2022).

Three label archives from the GitHub repository, `Cx22-Pair.zip`, `Cx22-Multi-Train.zip` and
`Cx22-Multi-Test.zip`, each `Cx22-<Subset>/` with MATLAB v7.3 files: per image, one 512 x 512 logical mask
per cytoplasm and per nucleus (`cyto/cyto_ins.mat`, `nuc/nuc_ins.mat`), their boxes (`*_ins_bbox.mat`,
[y1, x1, y2, x2], 0-based, half-open), clump masks, and `generator/` (the CCEDD image name and the ROI of
every image). The images are not shipped: the builder re-creates them like `ImageDataGenerator.m`, cutting
each ROI out of its CCEDD image and pasting it at the top left of a white canvas (scaled first when the ROI is
512 px or more in a side). So the raw folder must hold both downloads: the Cx22 zips and CCEDD's `png.zip` (or
`png/` folder, or `json.zip`). Crops of one CCEDD image share `group.fov_id` (the CCEDD image name).
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image

from cytohub import layout, synth
from cytohub.builder import Builder, Label, Published, Source
from cytohub.errors import RawFileError, RawLayoutError
from cytohub.formats import geometry, labelme, matlab
from cytohub.formats.masks import mask_bbox, outer_polygon
from cytohub.formats.naming import letters_key, natural_key
from cytohub.raw import RawFile, RawTree

SUBSETS = {"pair": "Cx22-Pair", "multi_train": "Cx22-Multi-Train", "multi_test": "Cx22-Multi-Test"}
REQUIRED = ("CellNum.mat", "OverlapRatio.mat", "cyto/cyto_ins.mat", "cyto/cyto_ins_bbox.mat",
            "cyto/cyto_clumps.mat", "nuc/nuc_ins.mat", "nuc/nuc_ins_bbox.mat", "nuc/nuc_clumps.mat",
            "generator/ImageDataNames.mat", "generator/ROIs_W_H.mat", "generator/ROIs_x_y.mat")
MASK_VALUES = {0: "background", 1: "cytoplasm", 2: "nucleus"}
CCEDD_HELP = ("Cx22 ships no images: they are cut from CCEDD images. Download CCEDD (png.zip; see "
              "https://github.com/nachifur/LLPC, OneDrive folder 'CCEDD' or the USTC mirror "
              "https://rec.ustc.edu.cn/share/16db9c80-15d5-11ef-9ca4-7b154f4fe8b0, password e2ww) and put "
              "png.zip (or CCEDD.zip, or the unzipped png/ folder) in the same folder as the Cx22 zips, then "
              "pass that folder with --raw")


def subset_of(folder: str) -> str | None:
    """'Cx22-Multi-Test', 'cx22_multi_test', ... -> 'multi_test' (letters compared, case ignored)."""
    key = letters_key(folder)
    return next((subset for subset, name in SUBSETS.items() if letters_key(name) == key), None)


def box_to_xywh(box) -> list[float]:
    """A Cx22 box [y1, x1, y2, x2] (0-based, half-open: rows y1..y2-1, columns x1..x2-1) -> [x, y, w, h]."""
    y1, x1, y2, x2 = (float(v) for v in box)
    return [x1, y1, x2 - x1, y2 - y1]


def regenerate(source: Image.Image, x: int, y: int, w: int, h: int, canvas: tuple[int, int]) -> Image.Image:
    """`ImageDataGenerator.m` (Cx22 archives, generator/) in Python: crop the ROI (x, y 0-based, w x h) out of
    the source, clipped to the source's edges; when the ROI (as declared, before clipping) is as large as the
    canvas in either side, scale the crop so that the ROI's larger declared side fills the canvas: that side of
    the crop becomes exactly the canvas size and the other round(canvas / larger side * crop side), as the
    generator does; paste at the top left of a white canvas of (width, height).

    The generator sets the larger side to the canvas size even when clipping shortened the crop (ROI
    1331,707,718,645 of a 2048 x 1536 image: 717 x 645 crop -> 512 x 460, not 511 x 460), so the masks line up
    only when this is reproduced. Resampling is bicubic with antialiasing, like MATLAB's imresize default, but
    not bit-identical to it."""
    crop = source.convert("RGB").crop((x, y, min(x + w, source.width), min(y + h, source.height)))
    cw, ch = canvas
    if h >= ch or w >= cw:
        if h >= w:  # 'H_larger'
            rows, cols = ch, _round_half_up(ch / h * crop.width)
        else:  # 'W_larger'
            rows, cols = _round_half_up(cw / w * crop.height), cw
        crop = crop.resize((max(1, cols), max(1, rows)), Image.Resampling.BICUBIC)
    out = Image.new("RGB", canvas, (255, 255, 255))
    out.paste(crop, (0, 0))
    return out


def _round_half_up(v: float) -> int:
    """MATLAB's round for positive values (0.5 goes up; Python's round would go to the even neighbour)."""
    return math.floor(v + 0.5)


def counts(scale: str) -> dict[str, tuple[int, int]]:
    """(images, cells per image) per subset in synthetic data; full: the published 820 / 400 / 100."""
    if scale == "full":
        return {"pair": (820, 2), "multi_train": (400, 12), "multi_test": (100, 12)}
    return {"pair": (3, 2), "multi_train": (2, 3), "multi_test": (2, 3)}


def full_scale_rows() -> dict[str, int]:
    """Rows per split of a full-scale synthetic build: the published 820 / 400 / 100 images."""
    return {subset: n for subset, (n, _) in counts("full").items()}


class Cx22(Builder):
    name = "cx22"
    pretty_name = "Cx22: Cervical Cytology Instance Segmentation Dataset"
    version = "1.0.0"
    summary = ("Overlapping cervical cells with an instance mask per cytoplasm and per nucleus, images cut "
               "from CCEDD (Pair, Multi-Train and Multi-Test subsets)")
    homepage = "https://github.com/LGQ330/Cx22"
    license = "other"
    license_id = "cx22-terms"
    license_name = "Cx22 terms (non-commercial research and educational use only); images under the CCEDD terms"
    license_link = "https://github.com/LGQ330/Cx22"
    redistribution = "forbidden"
    attribution = ("Liu G., Ding Q., Luo H., Sha M., Li X., Ju M.: Cx22 (https://github.com/LGQ330/Cx22), "
                   "Computers in Biology and Medicine 150 (2022) 106194; images from CCEDD (Liu J. et al., "
                   "https://github.com/nachifur/LLPC).")
    citation = """@article{LIU2022106194,
  title   = {Cx22: A new publicly available dataset for deep learning-based segmentation of cervical cytology
             images},
  journal = {Computers in Biology and Medicine},
  volume  = {150},
  pages   = {106194},
  year    = {2022},
  issn    = {0010-4825},
  doi     = {https://doi.org/10.1016/j.compbiomed.2022.106194},
  url     = {https://www.sciencedirect.com/science/article/pii/S0010482522009027},
  author  = {Guangqi Liu and Qinghai Ding and Haibo Luo and Min Sha and Xiang Li and Moran Ju}
}"""
    sources = (
        Source("Cx22-Pair.zip", url="https://github.com/LGQ330/Cx22", one_of="Cx22 subsets",
               description="820 images of 2 cells (labels)"),
        Source("Cx22-Multi-Train.zip", url="https://github.com/LGQ330/Cx22", one_of="Cx22 subsets",
               description="training images of the Multi subset (labels; stored with Git LFS)"),
        Source("Cx22-Multi-Test.zip", url="https://github.com/LGQ330/Cx22", one_of="Cx22 subsets",
               description="100 test images of the Multi subset (labels)"),
        Source("png.zip", url="https://github.com/nachifur/LLPC", aliases=("CCEDD.zip", "png/", "json.zip"),
               description="CCEDD images (png/<name>.png), from which the Cx22 images are cut"),
    )
    manual_download = """Cx22 needs two downloads in ONE folder, passed with --raw (or put at $CYTOHUB_HOME/raw/cx22):
1. From https://github.com/LGQ330/Cx22: Cx22-Pair.zip, Cx22-Multi-Train.zip (a Git LFS file: use
   "git lfs pull" or the GitHub download button) and Cx22-Multi-Test.zip.
2. The CCEDD images: png.zip from the CCEDD folder linked in https://github.com/nachifur/LLPC
   (OneDrive, or the USTC mirror https://rec.ustc.edu.cn/share/16db9c80-15d5-11ef-9ca4-7b154f4fe8b0,
   password e2ww). CCEDD.zip (the whole folder), an unzipped png/ folder, or json.zip (LabelMe files with
   embedded images) work too.
Example: raw/Cx22-Pair.zip, raw/Cx22-Multi-Train.zip, raw/Cx22-Multi-Test.zip, raw/CCEDD/png.zip.
A subset whose zip is absent gives an empty split. Terms: non-commercial research and education only;
CCEDD images must not be redistributed."""
    task_categories = ("image-segmentation", "object-detection")
    tags = ("cytology", "cervical-cancer", "instance-segmentation", "overlapping-cells", "microscopy", "medical")
    organ = "uterine cervix"
    preparation = "liquid-based cytology (CCEDD images)"
    mpp = None
    num_images = 1320
    published = Published(
        files=("Cx22-Pair.zip", "Cx22-Multi-Train.zip", "Cx22-Multi-Test.zip"), rows=1320,
        rows_per_split={"pair": 820, "multi_test": 100}, unit="images",
        source="Liu et al., Comput. Biol. Med. 2022 (1,320 images) and the Pair / Multi-Test label files",
        note="Only the total and the Pair and Multi-Test counts are stated; Multi-Train follows as 400.")
    layout = "verified"
    expected_layout = """
    <root>/
      Cx22-Pair.zip, Cx22-Multi-Train.zip, Cx22-Multi-Test.zip
        -> Cx22-<Subset>/ CellNum.mat, cyto/*.mat, nuc/*.mat, generator/*.mat
      CCEDD/png.zip -> png/<name>.png    (the source images; or a png/ folder, or json.zip)
"""
    conversions = (
        "Cx22 ships no images: each `image` is re-created as the authors' ImageDataGenerator.m does, by cropping "
        "its ROI out of the CCEDD source image, scaling the crop down (bicubic) when it does not fit the canvas, "
        "pasting it at the top left of a white canvas and encoding the result as a lossless PNG. Scaled crops "
        "have resampled pixels.",
        "`mask` is composed by cytohub from the per-instance .mat masks, because Cx22 stores only per-instance "
        "logical arrays: an 8-bit PNG semantic map (0 background, 1 cytoplasm, 2 nucleus).",
    )
    assumptions = (
        "The Multi-Train archive could not be inspected (Git LFS); it is assumed to have the layout of the "
        "Pair and Multi-Test archives, which were.",
        "The three archives are taken as the official partition and become the splits pair, multi_train and "
        "multi_test.",
        "Images are re-created like ImageDataGenerator.m (ROI x, y 0-based, clipped to the CCEDD image, pasted "
        "at the top left of a white canvas the size of the masks). An ROI of 512 px or more in a side is scaled "
        "so that its larger declared side fills the canvas, with the generator's sizes; this is the case for 98 of "
        "the 100 Multi-Test ROIs (none of the 820 Pair ROIs). The scaling is bicubic with antialiasing, like "
        "MATLAB's imresize, but its pixel values differ slightly from MATLAB's.",
        "Crops of one CCEDD image share group.fov_id (the CCEDD image name). The published Pair and Multi-Test "
        "archives cut 55 CCEDD images for both subsets, so the official splits are not independent.",
        "Cytoplasm and nucleus instances are not assumed to be paired by index; each is its own object.",
        "The meaning of the two OverlapRatio values per image is not documented; they are kept in `extra`.",
    )
    labels = ()
    object_labels = (
        Label("cytoplasm", ("cytoplasm",), None, "one cell's cytoplasm instance (cyto_ins)"),
        Label("nucleus", ("nucleus",), None, "one nucleus instance (nuc_ins)"),
        Label("cytoplasm_clump", ("clump", "cytoplasm_clump"), None, "a clump of cytoplasm (cyto_clumps)"),
        Label("nucleus_clump", ("clump", "nucleus_clump"), None, "a clump of nuclei (nuc_clumps)"),
    )
    splits = tuple(SUBSETS)

    # ------------------------------------------------------------------ raw -> rows
    def examples(self, raw: RawTree) -> Iterator[dict]:
        roots: dict[str, str] = {}
        for f in raw.named("CellNum.mat"):
            root = f.parent
            subset = subset_of(root.rsplit("/", 1)[-1].removesuffix(".zip"))
            if subset is None:
                under = root.rsplit("/", 1)[0] if "/" in root else ""
                raise RawLayoutError(f"{f.path}: folder {root!r} is not a Cx22 subset; " + layout.mismatch(
                    f"one of {', '.join(v + '/' for v in SUBSETS.values())}", layout.listing(raw, under),
                    under=under))
            if subset in roots:
                raise RawLayoutError(f"two copies of {SUBSETS[subset]}: {roots[subset]} and {root}")
            roots[subset] = root
        if not roots:
            raise RawLayoutError(f"{raw.root}: no Cx22 subset found; expected Cx22-Pair.zip, Cx22-Multi-Train.zip "
                                 "and/or Cx22-Multi-Test.zip (each Cx22-<Subset>/CellNum.mat, cyto/, nuc/, "
                                 "generator/)" + layout.found(raw))
        subsets = {s: self._read_subset(raw, root, s) for s, root in roots.items()}
        sources = self._ccedd_sources(raw, {n for sub in subsets.values() for n in sub["names"]})
        for subset in SUBSETS:
            if subset in subsets:
                yield from self._rows(raw, subset, subsets[subset], sources)

    def _file(self, raw: RawTree, root: str, rel: str) -> RawFile:
        f = raw.get(f"{root}/{rel}")
        if f is None:
            raise RawLayoutError(f"{root}: missing {rel}; expected the Cx22 archive layout ({', '.join(REQUIRED)})")
        return f

    def _read_subset(self, raw: RawTree, root: str, subset: str) -> dict:
        out: dict = {"root": root}
        for rel in REQUIRED:
            self._file(raw, root, rel)
        for rel, var in (("CellNum.mat", "CellNum"), ("OverlapRatio.mat", "OverlapRatio"),
                         ("generator/ROIs_W_H.mat", "ROIs_W_H"), ("generator/ROIs_x_y.mat", "ROIs_x_y")):
            with self._open(raw, root, rel) as mf:
                out[var] = mf.array(var)
        n = out["ROIs_x_y"].shape[0]
        cell_num = out["CellNum"].ravel()
        if out["ROIs_W_H"].shape != (n, 2) or out["ROIs_x_y"].shape != (n, 2) or cell_num.size != n:
            raise RawLayoutError(f"{root}: ROIs_x_y is {out['ROIs_x_y'].shape}, ROIs_W_H {out['ROIs_W_H'].shape} "
                                 f"and CellNum has {cell_num.size} values; expected N x 2, N x 2 and N")
        with self._open(raw, root, "generator/ImageDataNames.mat") as mf:
            out["names"] = [s.strip() for s in mf.strings("ImageDataNames", expected=n)]
        gen = raw.get(f"{root}/generator/ImageDataGenerator.m")
        if gen is not None:
            raw.skip(gen, "MATLAB image generator; the builder re-creates the images the same way")
        return out

    def _open(self, raw: RawTree, root: str, rel: str) -> matlab.MatFile:
        f = self._file(raw, root, rel)
        mf = matlab.MatFile(f)
        if not mf.v73:
            mf.close()
            raise RawFileError(f"{f.path}: not a MATLAB v7.3 (HDF5) MAT-file; the Cx22 archives hold v7.3 files")
        return mf

    def _ccedd_sources(self, raw: RawTree, needed: set[str]) -> dict[str, RawFile]:
        found: dict[str, RawFile] = {}
        for f in raw.files(suffix=(".png", ".json")):
            folder = f.parts[-2].lower() if len(f.parts) > 1 else ""
            if (folder, f.suffix) not in (("png", ".png"), ("json", ".json")):
                continue
            if f.stem not in needed:
                raw.skip(f, "CCEDD file not used by any Cx22 image")
            elif f.stem in found and (found[f.stem].suffix == ".png" or f.suffix == ".json"):
                raw.skip(f, f"another copy of CCEDD image {f.stem}; {found[f.stem].path} is used")
            else:
                if f.stem in found:
                    raw.skip(found[f.stem], f"CCEDD LabelMe file; the image {f.path} is used instead")
                found[f.stem] = f
        missing = sorted(needed - set(found), key=natural_key)
        if missing:
            shown = ", ".join(f"{m}.png" for m in missing[:8]) + (", ..." if len(missing) > 8 else "")
            raise RawLayoutError(f"{raw.root}: {len(missing)} CCEDD image(s) needed by Cx22 are missing "
                                 f"({shown}; expected png/<name>.png from CCEDD png.zip). {CCEDD_HELP}.")
        return found

    def _source_image(self, f: RawFile) -> Image.Image:
        if f.suffix == ".json":
            data = labelme.image_data(labelme.load(f))
            if data is None:
                raise RawFileError(f"{f.path}: no imageData; expected the CCEDD png/ image instead")
        else:
            data = f.read_bytes()
        try:
            im = Image.open(io.BytesIO(data))
            im.load()
            return im
        except Exception as exc:
            raise RawFileError(f"{f.path}: CCEDD image does not decode ({type(exc).__name__}: {exc})") from None

    def _rows(self, raw: RawTree, subset: str, sub: dict, sources: dict[str, RawFile]) -> Iterator[dict]:
        root = sub["root"]
        rels = [rel for rel in REQUIRED if rel.startswith(("cyto/", "nuc/"))]
        handles: dict[str, matlab.MatFile] = {}
        try:
            tops = {}
            for rel in rels:
                handles[rel] = self._open(raw, root, rel)
                tops[rel] = handles[rel].cell(rel.split("/")[1][:-4])
                if len(tops[rel]) != len(sub["names"]):
                    raise RawLayoutError(f"{handles[rel].where}: {len(tops[rel])} images, but generator/ lists "
                                         f"{len(sub['names'])}")
            cached: tuple[str, Image.Image] | None = None
            for i, name in enumerate(sub["names"]):
                objects, semantic, n_cells = [], None, {}
                for part, category in (("cyto", "cytoplasm"), ("nuc", "nucleus")):
                    rel = f"{part}/{part}_ins.mat"
                    where = f"{handles[rel].where} (image {i + 1})"
                    masks = [np.asarray(m).astype(bool) for m in self._cell(tops[rel][i], where)]
                    boxes = np.asarray(tops[f"{part}/{part}_ins_bbox.mat"][i]).reshape(-1, 4)
                    if len(boxes) != len(masks):
                        raise RawLayoutError(f"{where}: {len(masks)} {category} masks but {len(boxes)} boxes in "
                                             f"{part}_ins_bbox.mat")
                    n_cells[category] = len(masks)
                    for j, (m, box) in enumerate(zip(masks, boxes, strict=True)):
                        if semantic is None:
                            semantic = np.zeros(m.shape, np.uint8)
                        if m.shape != semantic.shape:
                            raise RawLayoutError(f"{where}: {category} mask {j + 1} is {m.shape}, expected "
                                                 f"{semantic.shape}")
                        bbox = box_to_xywh(box)
                        if bbox != mask_bbox(m):
                            raise RawLayoutError(f"{where}: {category} {j + 1}: box {box.tolist()} [y1, x1, y2, x2] "
                                                 f"does not match its mask (extent {mask_bbox(m)} as [x, y, w, h])")
                        semantic[m] = 2 if part == "nuc" else np.maximum(semantic[m], 1)
                        objects.append({"category": category, "bbox": bbox, "polygon": outer_polygon(m)})
                for part, category in (("cyto", "cytoplasm_clump"), ("nuc", "nucleus_clump")):
                    rel = f"{part}/{part}_clumps.mat"
                    for m in self._cell(tops[rel][i], f"{handles[rel].where} (image {i + 1})"):
                        m = np.asarray(m).astype(bool)
                        if m.any():
                            objects.append({"category": category, "bbox": mask_bbox(m), "polygon": outer_polygon(m)})
                if semantic is None:
                    raise RawLayoutError(f"{handles['cyto/cyto_ins.mat'].where} (image {i + 1}): no instance masks")
                expected = geometry.integer(sub["CellNum"].ravel()[i], "CellNum", f"{root}/CellNum.mat (image {i + 1})")
                if n_cells["cytoplasm"] != expected:
                    raise RawLayoutError(f"{root}: image {i + 1} has {n_cells['cytoplasm']} cytoplasm masks but "
                                         f"CellNum.mat says {expected}")
                src = sources[name]
                if cached is None or cached[0] != name:
                    cached = (name, self._source_image(src))
                x, y = (geometry.integer(v, k, f"{root}/generator/ROIs_x_y.mat (ROI {i + 1})")
                        for v, k in zip(sub["ROIs_x_y"][i], ("x", "y"), strict=True))
                w, h = (geometry.integer(v, k, f"{root}/generator/ROIs_W_H.mat (ROI {i + 1})")
                        for v, k in zip(sub["ROIs_W_H"][i], ("width", "height"), strict=True))
                if w <= 0 or h <= 0:
                    raise RawLayoutError(f"{root}/generator/ROIs_W_H.mat: ROI {i + 1} is {w} x {h}; expected a "
                                         "positive width and height")
                if not (0 <= x < cached[1].width and 0 <= y < cached[1].height):
                    raise RawLayoutError(f"{root}/generator/ROIs_x_y.mat: ROI {i + 1} starts at ({x}, {y}), outside "
                                         f"{src.path} ({cached[1].width} x {cached[1].height})")
                canvas = (semantic.shape[1], semantic.shape[0])
                image = regenerate(cached[1], x, y, w, h, canvas)
                mask = Image.fromarray(semantic, "L")
                yield {
                    "id": f"{subset}-{i + 1:04d}",
                    "image": {"bytes": synth.encode(image, "PNG"), "path": f"{subset}-{i + 1:04d}.png"},
                    "mask": {"bytes": synth.encode(mask, "PNG"), "path": f"{subset}-{i + 1:04d}-mask.png"},
                    "objects": objects,
                    "group": {"fov_id": name},
                    "split": subset,
                    "source_path": f"{root} (image {i + 1});{src.path}",
                    "extra": {"subset": SUBSETS[subset], "index": i + 1, "ccedd_image": name,
                              "roi_xywh": [x, y, w, h], "cell_num": expected,
                              "overlap_ratio": [float(v) for v in np.asarray(sub["OverlapRatio"])[:, i]]
                              if np.asarray(sub["OverlapRatio"]).shape[-1] == len(sub["names"]) else None,
                              "mask_values": MASK_VALUES},
                }
        finally:
            for mf in handles.values():
                mf.close()

    @staticmethod
    def _cell(value, where: str) -> matlab.Cell:
        if not isinstance(value, matlab.Cell):
            raise RawLayoutError(f"{where}: expected a cell array of masks, found an array")
        return value

    # ------------------------------------------------------------------ synthetic raw layout
    def synthesize(self, root: Path, scale: str = "small", seed: int = 0) -> None:
        # sources smaller than the canvas (the real CCEDD images are 2048 x 1536): drawn cells scale with the
        # image, and a crop of 12 of them must fit the 512-px canvas unscaled, as the masks are not scaled
        src_size, canvas = ((500, 375), 512) if scale == "full" else ((256, 192), 512)
        work = root / ".cytohub-staging"
        ccedd: dict[str, bytes] = {}
        first_source = 0
        # full scale: a pool of 16 drawn sources per subset and crop parity, reused with their ROIs and masks
        # (held by reference, so memory stays at the pool's size)
        pool = synth.ImagePool(scale, size=16)

        def crop(first: int, j: int, parity: int, per_img: int) -> tuple[bytes, tuple, tuple, tuple]:
            """(CCEDD PNG, ROI x/y, ROI w/h, (cytoplasm masks, nucleus masks)) of crop `parity` of source j."""
            rng = synth.rng_for("cx22-ccedd", seed, f"{first + j:05d}")
            img, cells = synth.cell_field(rng, src_size, n_cells=max(per_img, 3) + 1, nucleus_scale=0.35,
                                          margin=0.1)
            pick = cells[parity:parity + per_img] if len(cells) >= per_img + 1 else cells[:per_img]
            bx = [c.bbox() for c in pick]
            x0 = max(0, int(min(b[0] for b in bx)) - 3)
            y0 = max(0, int(min(b[1] for b in bx)) - 3)
            x1 = min(src_size[0], int(max(b[0] + b[2] for b in bx)) + 3)
            y1 = min(src_size[1], int(max(b[1] + b[3] for b in bx)) + 3)
            roi = np.zeros((canvas, canvas), bool)
            roi[:y1 - y0, :x1 - x0] = True
            cyto = [_raster(c.cytoplasm_polygon(), x0, y0, canvas) & roi for c in pick]
            nuc = [_raster(c.nucleus_polygon(), x0, y0, canvas) & roi for c in pick]
            return synth.encode(img, "PNG"), (x0, y0), (x1 - x0, y1 - y0), (cyto, nuc)

        for subset, (n_img, per_img) in counts(scale).items():
            folder = work / SUBSETS[subset]
            names, xy, wh, inst = [], [], [], []
            for i in range(n_img):
                stem = f"{first_source + i // 2:05d}"  # two Cx22 images per CCEDD image, as in Cx22-Pair
                png, roi_xy, roi_wh, masks = pool(
                    (subset, i % 2), i // 2,
                    lambda j, first=first_source, p=i % 2, n=per_img: crop(first, j, p, n))
                ccedd[stem] = png
                names.append(stem)
                xy.append(roi_xy)
                wh.append(roi_wh)
                inst.append(masks)
            first_source += (n_img + 1) // 2
            self._write_subset(folder, names, xy, wh, inst)
            files = sorted(p for p in folder.rglob("*") if p.is_file())
            synth.write_zip(root / f"{SUBSETS[subset]}.zip", [(p.relative_to(work).as_posix(), p) for p in files])
        synth.write_zip(root / "CCEDD" / "png.zip", [(f"png/{k}.png", v) for k, v in sorted(ccedd.items())])
        for p in sorted(work.rglob("*"), reverse=True):
            p.unlink() if p.is_file() else p.rmdir()
        work.rmdir()
        synth.write_marker(root, self.name, scale, seed)

    @staticmethod
    def _write_subset(folder: Path, names, xy, wh, inst) -> None:
        from scipy import ndimage

        n = len(names)
        ratios = [[float((sum(m.astype(int) for m in ms) > 1).sum() / max(1, np.logical_or.reduce(ms).sum()))
                   for ms in pair] for pair in inst]
        matlab.write_v73(folder / "CellNum.mat", {"CellNum": np.asarray([[len(c) for c, _ in inst]], float)})
        matlab.write_v73(folder / "OverlapRatio.mat", {"OverlapRatio": np.asarray(ratios, float).T})
        for k, part in enumerate(("cyto", "nuc")):
            matlab.write_v73(folder / part / f"{part}_ins.mat", {f"{part}_ins": [list(pair[k]) for pair in inst]})
            boxes = []
            for pair in inst:
                rows = []
                for m in pair[k]:
                    x, y, bw, bh = (int(v) for v in mask_bbox(m))
                    rows.append([y, x, y + bh, x + bw])
                boxes.append(np.asarray(rows, np.int64))
            matlab.write_v73(folder / part / f"{part}_ins_bbox.mat", {f"{part}_ins_bbox": boxes})
            clumps = []
            for pair in inst:
                lab, nc = ndimage.label(np.logical_or.reduce(pair[k]))
                clumps.append([lab == c for c in range(1, nc + 1)])
            matlab.write_v73(folder / part / f"{part}_clumps.mat", {f"{part}_clumps": clumps})
        gen = folder / "generator"
        matlab.write_v73(gen / "ImageDataNames.mat", {"ImageDataNames": matlab.Strings(names)})
        matlab.write_v73(gen / "ROIs_W_H.mat", {"ROIs_W_H": np.asarray(wh, float).reshape(n, 2)})
        matlab.write_v73(gen / "ROIs_x_y.mat", {"ROIs_x_y": np.asarray(xy, float).reshape(n, 2)})
        (gen / "ImageDataGenerator.m").write_bytes(
            b"% Synthetic stand-in for the Cx22 generator script (crops CCEDD ROIs onto a 512x512 canvas)\r\n"
            b"clear; clc;\r\nload('ImageDataNames.mat'); load('ROIs_x_y.mat'); load('ROIs_W_H.mat');\r\n")


def _raster(poly: list[float], dx: int, dy: int, canvas: int) -> np.ndarray:
    """A polygon drawn in CCEDD image coordinates, moved by (-dx, -dy) onto the canvas, as a boolean mask."""
    moved = [v - (dx if k % 2 == 0 else dy) for k, v in enumerate(poly)]
    return np.asarray(synth.label_mask((canvas, canvas), [(moved, 1)])) > 0
