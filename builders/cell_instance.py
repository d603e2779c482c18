"""Cell Instance Segmentation Dataset (CISD): urine cytology fields with 21-plane focal stacks and cell masks
(Bouyssoux, Fezzani & Olivo-Marin, ISBI 2022; Zenodo 5938893).

Layout (from the authors' code, github erfannnnnnn/zstacks_cell_instance_segmentation):
`CISD/CISD.json`, `CISD/center_slice/<file_name>` (centre focal plane), `CISD/edf/<file_name>` (extended depth of
field), `CISD/stack/<file_name without extension>/` (the 21 planes, read in sorted name order; a multi-page TIFF
`stack/<name>.tif` is read too). CISD.json lists `assets` with `file_name`, `set` (train/test) and `annotations`
(one entry per annotator; the authors' code uses the first) whose `data` objects carry `category_name`,
`bbox` = [row_min, col_min, row_max, col_max] (inclusive) and `mask` = {"counts", "size": [h, w]}: alternating
runs of 0 and 1, starting with 0, over the row-major flattened mask (not COCO RLE).
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image, ImageSequence

from cytohub import synth
from cytohub.builder import Builder, Label, Source
from cytohub.errors import RawFileError, RawLayoutError
from cytohub.formats import geometry, jsonfile, rle
from cytohub.formats.masks import outer_polygon
from cytohub.images import size as image_size
from cytohub.raw import RawFile, RawTree

N_PLANES, BEST_Z = 21, 10
SLICE_EXT = (".jpg", ".jpeg", ".png", ".tif", ".tiff")  # what the authors' volume reader accepts
KNOWN_CATEGORIES = ("NEUTROPHIL", "RED_BLOOD_CELL")  # named in the authors' code; the full list is unpublished
OTHER = "OTHER"
Z_NOTE = ("z_um is null: the physical step between CISD planes is not published; extra.z_index gives each "
          "plane's offset from the centre plane in plane steps (-10..10), not micrometres")


def rel_parts(f: RawFile, base: str) -> tuple[str, ...]:
    return tuple(f.path[len(base) + 1:].split("/")) if base else f.parts


def full_scale_rows() -> dict[str, int]:
    """Rows per split of a full-scale synthetic build: 978 test assets (counted in the authors' code) and a
    train set three times as large (a plausible number; the real one is not published)."""
    return asset_counts("full")


def asset_counts(scale: str) -> dict[str, int]:
    """Assets per set in synthetic data. full: the 978 test images counted in the authors' code, and a train
    set three times as large (the real train count is not published); small: 2 train + 1 test."""
    return {"train": 3 * 978, "test": 978} if scale == "full" else {"train": 2, "test": 1}


class CellInstance(Builder):
    name = "cell-instance"
    pretty_name = "CISD: Cell Instance Segmentation Dataset (urine cytology z-stacks)"
    summary = "Urine cytology fields of view with 21-plane focal stacks, EDF images and cell instance masks"
    homepage = "https://doi.org/10.5281/zenodo.5938893"
    license = "unknown"
    redistribution = "forbidden"
    attribution = ("Bouyssoux A., Fezzani R., Olivo-Marin J.-C., Cell Instance Segmentation Dataset (CISD), "
                   "Zenodo, doi:10.5281/zenodo.5938893 (VitaDX International / Institut Pasteur).")
    citation = """@inproceedings{bouyssoux2022cisd,
  author    = {Bouyssoux, Alexandre and Fezzani, Riadh and Olivo-Marin, Jean-Christophe},
  title     = {Cell Instance Segmentation Using Z-Stacks in Digital Cytopathology},
  booktitle = {2022 IEEE 19th International Symposium on Biomedical Imaging (ISBI)},
  year      = {2022}
}
@misc{bouyssoux2022cisd_data,
  author    = {Bouyssoux, Alexandre and Fezzani, Riadh and Olivo-Marin, Jean-Christophe},
  title     = {Cell Instance Segmentation Dataset},
  version   = {1.0.0},
  publisher = {Zenodo},
  year      = {2022},
  doi       = {10.5281/zenodo.5938893}
}"""
    sources = (Source("CISD.zip", url="https://doi.org/10.5281/zenodo.5938893", name_published=False,
                      description="CISD/ folder: CISD.json, center_slice/, edf/, stack/ (archive name assumed)"),)
    manual_download = """Download the files of the Zenodo record https://doi.org/10.5281/zenodo.5938893 into one
folder and pass it with --raw (or put it at $CYTOHUB_HOME/raw/cell-instance). The archive or the extracted
CISD/ folder (CISD.json, center_slice/, edf/, stack/) both work. Check the record's licence before use."""
    task_categories = ("image-segmentation", "object-detection")
    tags = ("cytology", "urine-cytology", "instance-segmentation", "z-stack", "multi-focus", "papanicolaou",
            "microscopy", "medical")
    organ = "urinary tract (voided urine)"
    stain = "Papanicolaou (nine variations, Agilent Dako CoverStainer)"
    preparation = "liquid-based cytology (Hologic ThinPrep 5000)"
    scanner = "Hamamatsu NanoZoomer S360, 21 focal planes centred on the autofocus plane"
    magnification = "40x"
    mpp = None
    num_images = None
    layout = "unverified"
    expected_layout = """
    CISD.zip (or its folder) / CISD/
      CISD.json                          assets, sets, annotations
      center_slice/<file_name>           the image
      edf/<file_name>                    skipped
      stack/<name>/<slice files>         21 planes (or stack/<name>.tif)
"""
    conversions = (
        "A focal stack shipped as one multi-page TIFF (stack/<name>.tif) is split into its pages, each encoded "
        "losslessly as PNG, because a focal_stack entry holds one 2-D image; pixel values are unchanged. Slice "
        "files in stack/<name>/ and the centre-plane images are passed through as published.",
    )
    assumptions = (
        "Folder and JSON layout follow the authors' loader code; the Zenodo archive name (CISD.zip) and the "
        "names of the slice files inside stack/<name>/ are not published (slices are taken in sorted name order, "
        "as the authors' reader does).",
        Z_NOTE + "; `image` is center_slice/<file_name> (the scanner's best-focus plane) and the stack's "
        "plane 10 is taken as that centre.",
        "The JSON bbox [row_min, col_min, row_max, col_max] is inclusive (the authors' writer takes min/max of "
        "the mask's pixel indices), so it becomes [col_min, row_min, col_max - col_min + 1, row_max - row_min + 1].",
        "Objects come from the first annotator entry (as in the authors' code); other annotators' entries are "
        "summarised in extra.other_annotations (boxes and categories, no masks).",
        "The full category list is unpublished: NEUTROPHIL and RED_BLOOD_CELL keep their names, any other "
        "category becomes OTHER with the native name kept in extra.categories.",
        "Images under edf/ are not built (a row holds one 2-D image; the centre plane is used).",
        "Licence of the Zenodo record unknown; pixel size not published.",
    )
    labels = ()
    object_labels = (
        Label("NEUTROPHIL", ("cell", "NEUTROPHIL")),
        Label("RED_BLOOD_CELL", ("cell", "RED_BLOOD_CELL")),
        Label(OTHER, ("cell", OTHER), None, "any other CISD cell category (native name in extra.categories)"),
    )
    splits = ("train", "test")

    # ------------------------------------------------------------------ raw -> rows
    def examples(self, raw: RawTree) -> Iterator[dict]:
        meta_file = raw.one("CISD.json", "the CISD annotation file, next to center_slice/, edf/ and stack/")
        base = meta_file.parent
        data = self._load(meta_file)
        sections: dict[str, dict[str, RawFile]] = {"center_slice": {}, "edf": {}}
        stacks: dict[str, list[RawFile]] = {}
        tiffs: dict[str, RawFile] = {}
        for f in raw.files():
            if base and not f.path.startswith(base + "/"):
                continue
            parts = rel_parts(f, base)
            top = parts[0].lower() if len(parts) > 1 else None
            if top in sections and len(parts) == 2:
                sections[top][parts[1]] = f
            elif top == "stack" and len(parts) == 3 and f.suffix in SLICE_EXT:
                stacks.setdefault(parts[1], []).append(f)
            elif top == "stack" and len(parts) == 2 and f.suffix in (".tif", ".tiff"):
                tiffs[Path(parts[1]).stem] = f
        have_stacks = bool(stacks or tiffs)
        assets = data["assets"]
        seen: set[str] = set()
        for asset in sorted(assets, key=lambda a: (self.splits.index(a["set"]), a["file_name"])):
            name = asset["file_name"]
            if name in seen:
                raise RawLayoutError(f"{meta_file.path}: file_name {name!r} is listed twice")
            seen.add(name)
            image = sections["center_slice"].get(name)
            if image is None:
                raise RawLayoutError(f"{meta_file.path}: asset {name!r} has no image {base}/center_slice/{name}")
            if name in sections["edf"]:
                raw.skip(sections["edf"][name], "extended-depth-of-field image: the row keeps the centre plane "
                                                "as image and all 21 planes as focal_stack")
            img_bytes = image.read_bytes()
            width, height = image_size(img_bytes, image.path)
            planes: list = []
            if have_stacks:
                planes = self._planes(stacks.get(Path(name).stem), tiffs.get(Path(name).stem), base, name)
            objects, extra = self._objects(asset, (height, width), meta_file.path)
            row = {
                "id": Path(name).stem,
                "image": {"bytes": img_bytes, "path": image.name},
                "label": None,
                "objects": objects,
                "split": asset["set"],
                "source_path": image.path,
                "extra": {"asset_id": asset.get("asset_id"), "set": asset["set"], **extra},
            }
            if planes:
                row["focal_stack"] = planes
                row["z_um"] = None  # the plane spacing is not published: no distances are invented
                row["extra"]["z_index"] = [z - BEST_Z for z in range(N_PLANES)]
                row["extra"]["z_unit"] = Z_NOTE
                first = planes[0]
                row["source_path"] += ";" + (first.parent + "/*" if isinstance(first, RawFile)
                                             else tiffs[Path(name).stem].path)
            yield row

    # ------------------------------------------------------------------ helpers
    def _load(self, f: RawFile) -> dict:
        data = jsonfile.load(f, "CISD JSON")
        if not isinstance(data, dict) or not isinstance(data.get("assets"), list):
            raise RawLayoutError(f"{f.path}: expected a JSON object with an 'assets' list")
        for i, a in enumerate(data["assets"]):
            if not isinstance(a, dict) or "file_name" not in a or a.get("set") not in self.splits:
                raise RawLayoutError(f"{f.path}: asset #{i} needs 'file_name' and 'set' in {list(self.splits)}, "
                                     f"got {json.dumps(a)[:200]}")
        return data

    def _planes(self, files: list[RawFile] | None, tiff: RawFile | None, base: str, name: str) -> list:
        stem = Path(name).stem
        where = f"{base}/stack/{stem}/" if base else f"stack/{stem}/"
        if files and tiff:
            raise RawLayoutError(f"{where}: asset {name!r} has both a slice folder and {tiff.path}; expected one")
        if tiff is not None:
            planes, where = _tiff_pages(tiff), tiff.path
        elif files:
            planes = sorted(files, key=lambda f: f.name)
        else:
            raise RawLayoutError(f"{where}: missing focal stack of asset {name!r} (expected {N_PLANES} slice "
                                 f"images, or a multi-page {stem}.tif)")
        if len(planes) != N_PLANES:
            raise RawLayoutError(f"{where}: {len(planes)} focal planes, expected {N_PLANES}")
        return planes

    def _objects(self, asset: dict, size: tuple[int, int], where: str) -> tuple[list[dict], dict]:
        annotations = asset.get("annotations") or []
        if not annotations:
            return [], {"annotator": None, "categories": [], "other_annotations": []}
        objects, categories = [], []
        first = annotations[0] if isinstance(annotations, list) else None
        if not isinstance(first, dict) or not isinstance(first.get("data") or [], list):
            raise RawLayoutError(f"{where}: asset {asset['file_name']!r}: annotations must be a list of objects "
                                 "whose data lists objects")
        for k, obj in enumerate(first.get("data") or []):
            what = f"{where}: asset {asset['file_name']!r}, object #{k}"
            try:
                box, counts, msize = obj["bbox"], obj["mask"]["counts"], obj["mask"]["size"]
                native = str(obj["category_name"])
            except (KeyError, TypeError):
                raise RawLayoutError(f"{what}: expected category_name, bbox [r0, c0, r1, c1] and mask "
                                     "{counts, size}") from None
            msize = [int(v) if v.is_integer() else v for v in geometry.numbers(msize, "mask size", what, 2)]
            if tuple(msize) != size:
                raise RawLayoutError(f"{what}: mask size {msize} differs from the image's [h, w] = {list(size)}")
            try:
                mask = rle.cisd_decode(counts, size)
            except ValueError as exc:
                raise RawLayoutError(f"{what}: bad mask run lengths ({exc})") from None
            objects.append({
                "category": native if native in KNOWN_CATEGORIES else OTHER,
                "bbox": _xywh(box, what),
                "polygon": outer_polygon(mask),
            })
            categories.append(native)
        others = []
        for n, a in enumerate(annotations[1:], start=1):
            if not isinstance(a, dict) or not all(isinstance(o, dict) for o in a.get("data") or []):
                raise RawLayoutError(f"{where}: asset {asset['file_name']!r}, annotation #{n}: expected an object "
                                     "whose data lists objects")
            others.append({"annotator": a.get("annotator"), "annotation_id": a.get("annotation_id"),
                           "time_stamp": a.get("time_stamp"),
                           "objects": [{"category": o.get("category_name"),
                                        "bbox": _xywh(o.get("bbox"), f"{where}: asset {asset['file_name']!r}, "
                                                                     f"annotation #{n}, object #{k}")}
                                       for k, o in enumerate(a.get("data") or [])]})
        return objects, {"annotator": first.get("annotator"), "annotation_id": first.get("annotation_id"),
                         "time_stamp": first.get("time_stamp"), "categories": categories,
                         "other_annotations": others}

    # ------------------------------------------------------------------ synthetic raw layout
    def synthesize(self, root: Path, scale: str = "small", seed: int = 0) -> None:
        # full scale: 3,912 assets x 23 PNGs (centre, EDF, 21 planes) = 90k files, so fields are drawn at
        # 128 x 128 (the real size is not published) and 32 drawn fields are reused with their masks
        size = (128, 128) if scale == "full" else (96, 96)
        entries, assets = [], []
        cats = ("CELL", "NEUTROPHIL", "RED_BLOOD_CELL")
        pool = synth.ImagePool(scale)

        def field(split: str, i: int) -> tuple[bytes, bytes, list[bytes], list[dict]]:
            """(centre plane, EDF, 21 planes, annotation data) of field i of a split."""
            rng = synth.rng_for(self.name, seed, split, i)
            rng.integers(1, 31)  # the file name's draw comes first
            img, cells = synth.cell_field(rng, size, n_cells=int(rng.integers(2, 5)), margin=0.05)
            planes = [synth.encode(synth.defocus(img, (z - BEST_Z) * 0.4), "PNG") for z in range(N_PLANES)]
            data = []
            for k, cell in enumerate(cells):
                m = np.asarray(synth.label_mask(size, [(cell.cytoplasm_polygon(), 1)])) > 0
                rows, cols = np.nonzero(m)
                data.append({"category_name": cats[k % len(cats)],
                             "bbox": [int(rows.min()), int(cols.min()), int(rows.max()), int(cols.max())],
                             "mask": rle.cisd_encode(m)})
            return synth.encode(img, "PNG"), synth.encode(synth.defocus(img, 0.6), "PNG"), planes, data

        asset_id = 0
        for split, n in asset_counts(scale).items():
            for i in range(n):
                rng = synth.rng_for(self.name, seed, split, i)
                name = f"slide{int(rng.integers(1, 31)):02d}_pap{1 + asset_id % 9}_{asset_id:04d}.png"
                centre, edf, planes, data = pool(split, i, lambda j, split=split: field(split, j))
                entries.append((f"CISD/center_slice/{name}", centre))
                entries.append((f"CISD/edf/{name}", edf))
                for z, plane in enumerate(planes):
                    entries.append((f"CISD/stack/{Path(name).stem}/slice_{z:02d}.png", plane))
                annotations = [{"annotation_id": 0, "annotator": "annotator1@example.org",
                                "time_stamp": "2021-06-01 10:00:00", "data": data}]
                if asset_id == 0:  # a second annotator on the first asset
                    annotations.append({"annotation_id": 1, "annotator": "annotator2@example.org",
                                        "time_stamp": "2021-06-02 10:00:00", "data": data[:1]})
                assets.append({"asset_id": asset_id, "file_name": name, "set": split, "annotations": annotations})
                asset_id += 1
        doc = {"info": {"dataset_name": "CISD", "dataset_type": "INSTANCE_SEGMENTATION", "version": "1.0.0",
                        "time_stamp": "2022-01-31 00:00:00.000000", "description": "Cell Instance Segmentation "
                        "Dataset", "img_folder": "center_slice"},
               "assets": assets, "categories": sorted(set(cats))}
        entries.insert(0, ("CISD/CISD.json", json.dumps(doc).encode()))
        synth.write_zip(root / "CISD.zip", entries)
        synth.write_marker(root, self.name, scale, seed)



def _xywh(box: object, where: str) -> list[int]:
    """A CISD box [row_min, col_min, row_max, col_max] (whole pixels, inclusive) -> [x, y, w, h]."""
    b = geometry.numbers(box, "bbox", where, 4)
    if any(not v.is_integer() for v in b) or b[2] < b[0] or b[3] < b[1]:
        raise RawLayoutError(f"{where}: bbox {box!r}; expected whole-number [row_min, col_min, row_max, col_max] "
                             "with max >= min")
    r0, c0, r1, c1 = (int(v) for v in b)
    return [c0, r0, c1 - c0 + 1, r1 - r0 + 1]


def _tiff_pages(f: RawFile) -> list[dict]:
    """The pages of a multi-page TIFF stack, each losslessly re-encoded as PNG."""
    try:
        with Image.open(io.BytesIO(f.read_bytes())) as im:
            pages = []
            for k, page in enumerate(ImageSequence.Iterator(im)):
                buf = io.BytesIO()
                page.save(buf, "PNG")
                pages.append({"bytes": buf.getvalue(), "path": f"{f.name}#page{k}"})
            return pages
    except Exception as exc:
        raise RawFileError(f"{f.path}: not a readable multi-page TIFF ({exc})") from None
