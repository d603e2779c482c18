"""Comparison Detector dataset: cervical cell / clump detection in images cropped from whole-slide images
(Liang et al., "Comparison-based convolutional neural networks for cervical cell/clumps detection in the limited
data scenario", arXiv:1810.05952).

7,410 images (6,666 train / 744 test), 48,587 boxes of 11 categories, COCO-style JSON. Layout as used by
third-party loaders: `train.json` and `test.json` (COCO: images[{id, file_name, width, height}],
annotations[{image_id, bbox [x, y, w, h], category_id}], categories[{id, name}]) next to `train/` and `test/`
image folders (`NNNNN.bmp`). The authors' own converter reads the JSON plus an `images/` folder: both work.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

from cytohub import layout, synth
from cytohub.builder import Builder, Label, Published, Source
from cytohub.errors import RawLayoutError
from cytohub.formats import coco
from cytohub.formats.geometry import clip_bbox
from cytohub.images import size as image_size
from cytohub.raw import RawFile, RawTree

# category name (libs/label_dict.py of the authors' repository, ids 1..11) -> Bethesda 2014 node
CATEGORIES = {
    "ascus": "ASC-US",
    "asch": "ASC-H",
    "lsil": "LSIL",
    "hsil": "HSIL",
    "scc": "SCC",
    "agc": "AGC",
    "trichomonas": "NILM/organism/trichomonas",
    "candida": "NILM/organism/candida",
    "flora": "NILM/organism/bacterial-vaginosis",
    "herps": "NILM/organism/herpes",
    "actinomyces": "NILM/organism/actinomyces",
}
DESCRIPTIONS = {
    "ascus": "atypical squamous cells of undetermined significance", "asch": "atypical squamous cells, cannot "
    "exclude HSIL", "lsil": "low-grade squamous intraepithelial lesion", "hsil": "high-grade squamous "
    "intraepithelial lesion", "scc": "squamous cell carcinoma", "agc": "atypical glandular cells",
    "trichomonas": "Trichomonas vaginalis", "candida": "fungal organisms consistent with Candida",
    "flora": "shift in flora suggestive of bacterial vaginosis", "herps": "cellular changes of herpes simplex "
    "virus (spelled 'herps' in the source)", "actinomyces": "bacteria consistent with Actinomyces",
}
SPLITS = ("train", "test")
IMAGE_EXT = (".bmp", ".jpg", ".jpeg", ".png", ".tif", ".tiff")
PUBLISHED = {"train": 6666, "test": 744}


def _category(name: str, where: str) -> str:
    """A COCO category name (case and surrounding spaces ignored) -> one of CATEGORIES, else an error."""
    cat = name.strip().lower()
    if cat not in CATEGORIES:
        raise RawLayoutError(f"{where}: unknown category {name!r}; expected one of {list(CATEGORIES)}")
    return cat


def full_scale_rows() -> dict[str, int]:
    """Rows per split of a full-scale synthetic build: the published 6,666 train / 744 test images."""
    return dict(PUBLISHED)


def image_counts(scale: str) -> dict[str, int]:
    return dict(PUBLISHED) if scale == "full" else {"train": 4, "test": 2}


class ComparisonDetector(Builder):
    name = "comparison-detector"
    pretty_name = "Comparison Detector: cervical cell and clump detection dataset"
    summary = "Cervical cytology images cropped from WSIs with 48,587 boxes of 11 abnormal-cell / organism classes"
    homepage = "https://github.com/CVIU-CSU/ComparisonDetector"
    license = "unknown"
    redistribution = "forbidden"
    attribution = ("Liang Y. et al., Comparison-based convolutional neural networks for cervical cell/clumps "
                   "detection in the limited data scenario (arXiv:1810.05952); dataset from "
                   "github.com/CVIU-CSU/ComparisonDetector.")
    citation = """@article{liang2018comparison,
  title   = {Comparison-Based Convolutional Neural Networks for Cervical Cell/Clumps Detection in the Limited Data
             Scenario},
  author  = {Liang, Yixiong and Tang, Zhihong and Yan, Meng and Chen, Jialin and Liu, Qing and Xiang, Yao},
  journal = {arXiv preprint arXiv:1810.05952},
  year    = {2018}
}"""
    sources = (
        Source("ComparisonDetectorDataset", url="https://pan.baidu.com/s/1ynvNKBmf-s9GaUkTEUvTwA?pwd=fphm",
               name_published=False,
               description="train.json, test.json, train/ and test/ image folders (Baidu Pan, code fphm); "
                           "also linked from Google Drive in the original README"),
    )
    manual_download = """Download the dataset linked from https://github.com/CVIU-CSU/ComparisonDetector (Baidu Pan
https://pan.baidu.com/s/1ynvNKBmf-s9GaUkTEUvTwA?pwd=fphm, or the Google Drive folder of the original repository
kuku-sichuan/ComparisonDetector) and pass the downloaded archive or folder with --raw (or put it at
$CYTOHUB_HOME/raw/comparison-detector). It must contain train.json and test.json (COCO format) and the images
they list (train/ and test/ folders, or an images/ folder)."""
    task_categories = ("object-detection",)
    tags = ("cytology", "cervical-cancer", "pap-smear", "object-detection", "bethesda", "microscopy", "medical")
    organ = "uterine cervix"
    stain = "Papanicolaou"
    preparation = None
    scanner = "3DHISTECH Pannoramic MIDI II"
    mpp = None
    num_images = 7410
    published = Published(rows=7410, rows_per_split={"train": 6666, "test": 744}, unit="images",
                          source="README of the ComparisonDetector repository (7,410 images: 6,666 / 744)")
    layout = "unverified"
    expected_layout = """
    <root>/ (e.g. ComparisonDetectorDataset/)
      train.json, test.json              COCO
      train/NNNNN.bmp, test/NNNNN.bmp    (or one images/ folder)
"""
    assumptions = (
        "File layout (train.json / test.json next to train/ and test/ folders of .bmp images) is taken from "
        "third-party code; the authors' converter reads one JSON plus an images/ folder. Images are found by "
        "the JSON file_name anywhere in the download, preferring a folder named after the split.",
        "COCO bbox [x, y, w, h] is used as is (already pixels, origin top-left, 0-based).",
        "Boxes with width or height <= 1 pixel are not objects (the authors' README says they contain no cell); "
        "they are kept in extra.degenerate_boxes. Boxes reaching past the image border are clipped to it "
        "(count in extra.clipped_boxes).",
        "'flora' is mapped to the Bethesda node for a shift in flora suggestive of bacterial vaginosis and "
        "'herps' to herpes simplex changes; the source gives no definitions.",
        "The 762-image small training subset is not identified in the download and is not marked.",
        "Licence unknown; preparation method and pixel size not stated.",
    )
    labels = ()
    object_labels = tuple(Label(name, (name,), node, DESCRIPTIONS[name]) for name, node in CATEGORIES.items())
    splits = SPLITS

    # ------------------------------------------------------------------ raw -> rows
    def examples(self, raw: RawTree) -> Iterator[dict]:
        jsons = {s: raw.named(f"{s}.json") for s in SPLITS}
        for s, hits in jsons.items():
            if len(hits) != 1:
                found = ", ".join(h.path for h in hits) if hits else layout.listing(raw) + " at the top"
                raise RawLayoutError(f"{raw.root}: expected exactly one {s}.json (COCO annotations of the {s} "
                                     f"split); found {found}")
        by_name: dict[str, list[RawFile]] = defaultdict(list)
        for f in raw.files(suffix=IMAGE_EXT):
            by_name[f.name.lower()].append(f)
        for split in SPLITS:
            meta = jsons[split][0]
            doc = coco.load(meta, _category)
            used: dict[str, RawFile] = {}
            for img in sorted(doc.images, key=lambda i: i.file_name):
                f = self._find(by_name, img.file_name, split, meta.path)
                if f.path in used:
                    raise RawLayoutError(f"{meta.path}: {f.path} is listed twice")
                used[f.path] = f
                data = f.read_bytes()
                width, height = image_size(data, f.path)
                if img.width is not None and (width, height) != (img.width, img.height):
                    raise RawLayoutError(f"{f.path}: image is {width}x{height} but {meta.name} says "
                                         f"{img.width}x{img.height}")
                kept, degenerate, clipped = [], [], 0
                for a in doc.annotations_of(img):
                    box = clip_bbox(a.bbox, width, height) if a.bbox[2] > 1 and a.bbox[3] > 1 else None
                    if box is None or box[2] <= 1 or box[3] <= 1:
                        degenerate.append({"category": a.category, "bbox": a.bbox, "id": a.id})
                        continue
                    clipped += box != a.bbox
                    a.bbox = box
                    kept.append(a)
                objects, extra = coco.objects(kept)
                yield {
                    "id": f"{split}-{Path(f.name).stem}",
                    "image": {"bytes": data, "path": f.name},
                    "label": None,
                    "objects": objects,
                    "split": split,
                    "source_path": f"{f.path};{meta.path}",
                    "extra": {"coco_image_id": img.id, "file_name": img.file_name,
                              "degenerate_boxes": degenerate, "clipped_boxes": clipped, **extra},
                }

    @staticmethod
    def _find(by_name: dict[str, list[RawFile]], file_name: str, split: str, where: str) -> RawFile:
        base = file_name.replace("\\", "/").rsplit("/", 1)[-1].lower()
        hits = [f for f in by_name.get(base, []) if f.path.lower().endswith(file_name.replace("\\", "/").lower())]
        if len(hits) > 1:
            hits = [f for f in hits if split in (p.lower() for p in f.parts[:-1])] or hits
        if not hits:
            raise RawLayoutError(f"{where}: image {file_name!r} not found (expected it in a {split}/ or images/ "
                                 "folder of the download)")
        if len(hits) > 1:
            raise RawLayoutError(f"{where}: image {file_name!r} is ambiguous: {', '.join(h.path for h in hits[:4])}")
        return hits[0]

    # ------------------------------------------------------------------ synthetic raw layout
    def synthesize(self, root: Path, scale: str = "small", seed: int = 0) -> None:
        # full scale: the published 6,666 / 744 images as 512 x 384 BMPs (3.3 GB; the real size is not stated),
        # reused from a pool of 32 drawn images per split with their cells and categories
        size = (512, 384) if scale == "full" else (128, 96)
        names = list(CATEGORIES)
        pool = synth.ImagePool(scale)

        def draw(split: str, i: int) -> tuple[bytes, list[synth.Cell], list[int]]:
            rng = synth.rng_for(self.name, seed, split, i)
            img, cells = synth.cell_field(rng, size, n_cells=int(rng.integers(2, 5)), nucleus_scale=0.45,
                                          margin=0.05)
            return synth.encode(img, "BMP"), cells, [int(rng.integers(1, 12)) for _ in cells]

        entries: list[tuple[str, bytes]] = []
        serial, ann_id = 0, 0
        for split, n in image_counts(scale).items():
            doc = {"images": [], "annotations": [],
                   "categories": [{"id": k + 1, "name": name, "supercategory": "cell"} for k, name in enumerate(names)]}
            for i in range(n):
                serial += 1
                bmp, cells, cats = pool(split, i, lambda j, split=split: draw(split, j))
                file_name = f"{serial:05d}.bmp"
                entries.append((f"ComparisonDetectorDataset/{split}/{file_name}", bmp))
                doc["images"].append({"id": serial, "file_name": file_name, "width": size[0], "height": size[1]})
                if i == n - 1:
                    continue  # one image per split without annotations
                for k, cell in enumerate(cells):
                    x, y, w, h = (round(v, 1) for v in cell.bbox())
                    if i == 0 and k == 0:
                        w = 1.0  # a degenerate box, as the README warns
                    ann_id += 1
                    doc["annotations"].append({"id": ann_id, "image_id": serial, "bbox": [x, y, w, h],
                                               "category_id": cats[k], "iscrowd": 0,
                                               "area": round(w * h, 1)})
            entries.append((f"ComparisonDetectorDataset/{split}.json", json.dumps(doc).encode()))
        synth.write_zip(root / "ComparisonDetectorDataset.zip", sorted(entries))
        synth.write_marker(root, self.name, scale, seed)

