"""CCAgT v2: Images of Cervical Cells with AgNOR Stain Technique (Atkinson Amorim et al., Mendeley Data 2022).

9,339 JPEG fields (1600 x 1200, 0.111 um/px) from 15 slides A..O, with a PNG label mask per image (values
0..7) and every annotation as COCO (`CCAgT_COCO_OD.json`) and as a WKT table (`CCAgT.parquet.gzip`).
Layout of the Mendeley zip: `wg4bpm33hj-2/images/<slide>.zip` -> `<slide>/<name>.jpg`,
`wg4bpm33hj-2/masks/<slide>.zip` -> `<slide>/<name>.png`, plus the two annotation files. One row per image.
"""

from __future__ import annotations

import gzip
import io
import json
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

from PIL import ImageDraw

from cytohub import layout, synth
from cytohub.builder import Builder, Label, Published, Source
from cytohub.errors import RawFileError, RawLayoutError
from cytohub.formats import coco, wkt
from cytohub.formats.geometry import polygon_bbox
from cytohub.formats.naming import letters_key, natural_key
from cytohub.images import size as image_size
from cytohub.raw import RawFile, RawTree

ROOT = "wg4bpm33hj-2"
COCO_NAME = "CCAgT_COCO_OD.json"
PARQUET_NAME = "CCAgT.parquet.gzip"
# mask value / COCO category id -> COCO category name (the names of the COCO file)
CATEGORIES = {1: "Nucleus", 2: "Cluster", 3: "Satellite", 4: "Nucleus_out_of_focus", 5: "Overlapped_Nuclei",
              6: "non-viable_nucleus", 7: "Leukocyte_Nucleus"}
# slide -> (diagnosis, images, annotations), from the dataset card (its per-slide image counts add up to 9,338,
# one less than the 9,339 it states as the total; the annotations add up to its 63,190)
SLIDES = {
    "A": ("CIN3", 1311, 3164), "B": ("SCC", 561, 911), "C": ("AC", 385, 11420), "D": ("CIN3", 2125, 1258),
    "E": ("CIN3", 506, 11131), "F": ("CIN1", 318, 3365), "G": ("CIN2", 249, 2759), "H": ("CIN2", 650, 5216),
    "I": ("no lesion", 309, 474), "J": ("CIN1", 261, 1786), "K": ("no lesion", 1503, 13102),
    "L": ("CIN2", 396, 3289), "M": ("CIN2", 254, 1500), "N": ("CIN3", 248, 911), "O": ("AC", 262, 2904),
}


_BY_KEY = {letters_key(n): n for n in CATEGORIES.values()}


def category_of(name: str, where: str) -> str:
    """A category name in any of its three published spellings ('non-viable_nucleus', 'NON_VIABLE_NUCLEUS',
    'non-viable nucleus') -> the COCO spelling."""
    cat = _BY_KEY.get(letters_key(name))
    if cat is None:
        raise RawLayoutError(f"{where}: unknown category {name!r}; expected one of {', '.join(CATEGORIES.values())}")
    return cat


def wkt_objects(text: str, category: str, where: str) -> list[dict]:
    """Objects of one WKT geometry (pixels): a POINT, or one polygon object (exterior ring, with its box) per
    polygon of a POLYGON / MULTIPOLYGON."""
    kind, parts = wkt.parse(text, where)
    if kind == "POINT":
        return [{"category": category, "point": parts[0]}]
    return [{"category": category, "bbox": polygon_bbox(p), "polygon": p} for p in parts]


def full_scale_rows() -> int:
    """Rows of a full-scale synthetic build: the published per-slide counts (they sum to 9,338, one less than
    the stated 9,339 total)."""
    return sum(image_counts("full").values())


def image_counts(scale: str) -> dict[str, int]:
    """Images per slide in synthetic data: the published counts (full) or 2 per slide (small)."""
    return {s: (n if scale == "full" else 2) for s, (_, n, _) in SLIDES.items()}


class CCAgT(Builder):
    name = "ccagt"
    pretty_name = "CCAgT: Images of Cervical Cells with AgNOR Stain Technique (v2)"
    version = "1.0.0"
    summary = ("Cervical cytology fields stained with AgNOR, with nuclei, NOR clusters and satellites as "
               "polygons, boxes and label masks (15 slides, 7 categories)")
    homepage = "https://data.mendeley.com/datasets/wg4bpm33hj/2"
    license = "cc-by-nc-3.0"
    redistribution = "gated"
    attribution = ("Atkinson Amorim J. G., Matias A. V., Bottamedi T., Sanches V., Costa A. F., Onofre F. B. M., "
                   "Onofre A. S. C., von Wangenheim A.: CCAgT: Images of Cervical Cells with AgNOR Stain Technique, "
                   "Mendeley Data V2, doi:10.17632/wg4bpm33hj.2; licensed CC BY-NC 3.0 (non-commercial use only).")
    citation = """@misc{CCAgTDataset,
  doi = {10.17632/WG4BPM33HJ.2},
  url = {https://data.mendeley.com/datasets/wg4bpm33hj/2},
  author = {Jo{\\~{a}}o Gustavo Atkinson Amorim and Andr{\\'{e}} Vict{\\'{o}}ria Matias and Tainee Bottamedi and
            Vin{\\'{i}}cius Sanches and Ane Francyne Costa and Fabiana Botelho De Miranda Onofre and
            Alexandre Sherlley Casimiro Onofre and Aldo von Wangenheim},
  title = {CCAgT: Images of Cervical Cells with AgNOR Stain Technique},
  publisher = {Mendeley},
  year = {2022},
  copyright = {Attribution-NonCommercial 3.0 Unported}
}
@article{AtkinsonAmorim2022,
  doi = {10.2139/ssrn.4126881},
  year = {2022},
  author = {Jo{\\~{a}}o Gustavo Atkinson Amorim and Andr{\\'{e}} Vict{\\'{o}}ria Matias and Allan Cerentini and
            Fabiana Botelho de Miranda Onofre and Alexandre Sherlley Casimiro Onofre and Aldo von Wangenheim},
  title = {Semantic Segmentation for the Detection of Very Small Objects on Cervical Cell Samples Stained
           with the {AgNOR} Technique},
  journal = {{SSRN} Electronic Journal}
}"""
    sources = (
        Source("wg4bpm33hj-2.zip",
               url="https://prod-dcd-datasets-cache-zipfiles.s3.eu-west-1.amazonaws.com/wg4bpm33hj-2.zip",
               direct=True, alt_urls=("https://data.mendeley.com/public-api/zip/wg4bpm33hj/download/2",),
               description="Mendeley Data bulk download: images/<slide>.zip, masks/<slide>.zip, "
                           "CCAgT_COCO_OD.json, CCAgT.parquet.gzip"),
    )
    manual_download = """Download the whole dataset from https://data.mendeley.com/datasets/wg4bpm33hj/2
("Download All", a zip named wg4bpm33hj-2.zip; direct link
https://prod-dcd-datasets-cache-zipfiles.s3.eu-west-1.amazonaws.com/wg4bpm33hj-2.zip) and pass the zip
with --raw (or put it at $CYTOHUB_HOME/raw/ccagt). The extracted wg4bpm33hj-2/ folder works too, with
the per-slide images/<slide>.zip and masks/<slide>.zip either kept as zips or extracted.
License: CC BY-NC 3.0, non-commercial use only."""
    task_categories = ("image-segmentation", "object-detection")
    tags = ("cytology", "cervical-cancer", "agnor", "nucleolar-organizer-regions", "instance-segmentation",
            "semantic-segmentation", "microscopy", "medical")
    organ = "uterine cervix"
    stain = "AgNOR (silver staining of nucleolar organizer regions)"
    preparation = "cervical cytology samples (AgNOR technique)"
    scanner = "ZEISS Axio Scan.Z1, Hitachi HV-F202SCL camera (third-party description)"
    magnification = None
    mpp = 0.111
    num_images = 9339
    published = Published(
        files=("wg4bpm33hj-2.zip",), rows=(9338, 9339), unit="images",
        source="the lapix/CCAgT dataset card (9,339 images; per-slide table)",
        note="The card states 9,339 images in total while its per-slide counts sum to 9,338.")
    layout = "verified"
    expected_layout = """
    wg4bpm33hj-2.zip / wg4bpm33hj-2/
      images/<slide>.zip   -> <slide>/<name>.jpg        slide: A..O
      masks/<slide>.zip    -> <slide>/<name>.png
      CCAgT_COCO_OD.json and/or CCAgT.parquet.gzip
"""
    assumptions = (
        "The Mendeley CCAgT_COCO_OD.json is taken to use the category names of the CCAgT-utils sample output "
        "(Nucleus, Cluster, Satellite, ...); the other published spellings (NON_VIABLE_NUCLEUS, "
        "'non-viable nucleus') are accepted too.",
        "Objects are read from CCAgT_COCO_OD.json; CCAgT.parquet.gzip (the same annotations as WKT) is used only "
        "when the COCO file is absent.",
        "The dataset card's per-slide image counts add up to 9,338 while it states 9,339 images in all; "
        "num_images keeps the stated total and full-scale synthetic data uses the per-slide counts.",
        "The slide diagnosis (from the dataset card) describes the slide, not each image: it is kept in "
        "`extra.slide_diagnosis`, and `label` is empty.",
    )
    labels = ()
    object_labels = (
        Label("Nucleus", ("Nucleus",), None, "nucleus of an epithelial cell (mask value 1)"),
        Label("Cluster", ("Cluster",), None, "cluster of nucleolar organizer regions (mask value 2)"),
        Label("Satellite", ("Satellite",), None, "satellite NOR, annotated as a point and stored as a small "
                                                  "polygon (mask value 3)"),
        Label("Nucleus_out_of_focus", ("Nucleus_out_of_focus",), None, "mask value 4"),
        Label("Overlapped_Nuclei", ("Overlapped_Nuclei",), None, "mask value 5"),
        Label("non-viable_nucleus", ("non-viable_nucleus",), None, "mask value 6"),
        Label("Leukocyte_Nucleus", ("Leukocyte_Nucleus",), "NILM/non-epithelial", "mask value 7"),
    )

    # ------------------------------------------------------------------ raw -> rows
    def examples(self, raw: RawTree) -> Iterator[dict]:
        coco = raw.named(COCO_NAME)
        table = raw.named(PARQUET_NAME)
        if len(coco) > 1 or len(table) > 1:
            dup = coco if len(coco) > 1 else table
            raise RawLayoutError(f"{raw.root}: {len(dup)} copies of {dup[0].name}: "
                                 f"{', '.join(f.path for f in dup)}; expected one CCAgT download")
        if coco:
            entries, ann_file = self._read_coco(coco[0]), coco[0]
            for f in table:
                raw.skip(f, f"the same annotations as {COCO_NAME} (WKT); the COCO file is used")
        elif table:
            entries, ann_file = self._read_parquet(table[0]), table[0]
        else:
            raise RawLayoutError(f"{raw.root}: neither {COCO_NAME} nor {PARQUET_NAME} found; expected the "
                                 f"Mendeley download {ROOT}.zip (images/, masks/ and the annotation files)")

        jpgs: dict[str, RawFile] = {}
        pngs: dict[str, RawFile] = {}
        for f in raw.files(suffix=(".jpg", ".jpeg", ".png")):
            bucket = pngs if f.suffix == ".png" else jpgs
            if f.stem in bucket:
                raise RawLayoutError(f"{f.stem}: two files: {bucket[f.stem].path} and {f.path}; expected one per image")
            bucket[f.stem] = f
        if not jpgs:
            raise RawLayoutError(f"{raw.root}: no CCAgT images found; expected images/<slide>.zip with "
                                 "<slide>/<name>.jpg inside" + layout.found(raw))
        for stem in sorted(set(jpgs) - set(entries)):
            raw.skip(jpgs[stem], f"image not listed in {ann_file.name} (no annotations)")
            if stem in pngs:
                raw.skip(pngs[stem], f"mask of an image not listed in {ann_file.name}")
        for stem in sorted(set(pngs) - set(jpgs)):
            raw.skip(pngs[stem], "mask without an image of the same name")

        for stem in sorted(entries, key=lambda s: (s.split("_", 1)[0], natural_key(s))):
            entry = entries[stem]
            img, mask = jpgs.get(stem), pngs.get(stem)
            slide = stem.split("_", 1)[0]
            if img is None:
                raise RawLayoutError(f"{ann_file.path} lists image {stem!r}, but no {slide}/{stem}.jpg was found "
                                     f"(expected in images/{slide}.zip)")
            if mask is None:
                raise RawLayoutError(f"{img.path}: no mask {slide}/{stem}.png (expected in masks/{slide}.zip)")
            img_bytes, mask_bytes = img.read_bytes(), mask.read_bytes()
            size = image_size(img_bytes, img.path)
            if image_size(mask_bytes, mask.path) != size:
                raise RawLayoutError(f"{mask.path}: mask is {image_size(mask_bytes, mask.path)}, its image "
                                     f"{img.path} is {size} (width, height)")
            if entry.get("size") and tuple(entry["size"]) != size:
                raise RawLayoutError(f"{img.path}: image is {size} but {ann_file.name} says {tuple(entry['size'])}")
            diagnosis = SLIDES.get(slide, (None,))[0]
            yield {
                "id": stem,
                "image": {"bytes": img_bytes, "path": img.name},
                "mask": {"bytes": mask_bytes, "path": mask.name},
                "objects": entry["objects"],
                "group": {"slide_id": slide},
                "source_path": f"{img.path};{mask.path}",
                "extra": {"slide_diagnosis": diagnosis, "image_id": entry.get("image_id"), **entry.get("coco", {})},
            }

    def _read_coco(self, f: RawFile) -> dict[str, dict]:
        doc = coco.load(f, category_of)
        entries: dict[str, dict] = {}
        for im in doc.images:
            stem = im.file_name.replace("\\", "/").rsplit("/", 1)[-1]
            stem = stem.rsplit(".", 1)[0] if stem.lower().endswith((".jpg", ".jpeg", ".png")) else stem
            if stem in entries:
                raise RawLayoutError(f"{im.where}: image {stem!r} is listed twice")
            objects, extra = coco.objects(doc.annotations_of(im))
            size = (im.width, im.height) if im.width is not None else None
            entries[stem] = {"image_id": im.id, "size": size, "objects": objects, "coco": extra}
        return entries

    def _read_parquet(self, f: RawFile) -> dict[str, dict]:
        import pyarrow as pa
        import pyarrow.parquet as pq

        data = f.read_bytes()
        if data[:2] == b"\x1f\x8b":  # a gzip-wrapped parquet rather than a gzip-compressed one
            data = gzip.decompress(data)
        try:
            table = pq.read_table(pa.BufferReader(data), columns=["image_name", "geometry", "category_id"])
        except Exception as exc:
            raise RawFileError(f"{f.path}: not a readable Parquet table with columns image_name, geometry, "
                               f"category_id ({type(exc).__name__}: {exc})") from None
        entries: dict[str, dict] = defaultdict(lambda: {"image_id": None, "size": None, "objects": []})
        for row in table.to_pylist():
            cat = CATEGORIES.get(row["category_id"])
            if cat is None:
                raise RawLayoutError(f"{f.path}: category_id {row['category_id']!r} of {row['image_name']!r}; "
                                     "expected 1..7")
            where = f"{f.path}: {row['image_name']!r} ({cat})"
            entries[str(row["image_name"])]["objects"] += wkt_objects(str(row["geometry"]), cat, where)
        return dict(entries)

    # ------------------------------------------------------------------ synthetic raw layout
    def synthesize(self, root: Path, scale: str = "small", seed: int = 0) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        size = (1600, 1200) if scale == "full" else (160, 120)
        counts = image_counts(scale)
        work = root / ".cytohub-staging"
        images: list[dict] = []
        annotations: list[dict] = []
        table: dict[str, list] = {k: [] for k in ("image_name", "geometry", "category_id", "geo_type", "area",
                                                  "image_id", "slide_id")}
        outer: list[tuple[str, bytes]] = []
        pool = synth.ImagePool(scale, size=16)  # full scale: 16 drawn fields per slide, reused with their shapes

        def field(slide: str, per_image: int, k: int) -> tuple[bytes, bytes, list]:
            """(JPEG, PNG mask, shapes) of field k of a slide; shapes are (polygon, category id) in drawing order."""
            rng = synth.rng_for("ccagt", seed, slide, k)
            rng.integers(1, 300), rng.integers(1, 200)  # the file name's draws come first
            img, cells = synth.cell_field(rng, size, n_cells=per_image, nucleus_scale=0.45, margin=0.05)
            shapes = []
            for i, cell in enumerate(cells):
                cat = (1, 4, 5, 6, 7)[(i + k + ord(slide)) % 5] if i else 1
                shapes.append((cell.nucleus_polygon(12), cat))
                if cat == 1:  # NORs: a cluster and a satellite inside the nucleus, drawn as black dots
                    r = min(cell.nuc) * 0.3
                    for dx, nor in ((-r, 2), (r, 3)):
                        dot = synth.Cell(cell.cx + dx, cell.cy, (r * 0.8, r * 0.6), (0.0, 0.0), 0.0)
                        shapes.append((dot.cytoplasm_polygon(8), nor))
            draw = ImageDraw.Draw(img)
            for poly, cat in shapes:
                if cat in (2, 3):
                    draw.polygon(poly, fill=(20, 15, 10))
            return (synth.encode(img, "JPEG", quality=90), synth.encode(synth.label_mask(size, shapes), "PNG"),
                    shapes)

        for slide, (_, n_img, n_ann) in SLIDES.items():
            jpgs, pngs = [], []
            per_image = max(1, min(12, round(n_ann / n_img))) if scale == "full" else 3
            for k in range(counts[slide]):
                rng = synth.rng_for("ccagt", seed, slide, k)
                stem = f"{slide}_{1000 + 37 * k}_{-int(rng.integers(1, 300)) * 1440}_{int(rng.integers(1, 200)) * 1080}"
                jpg, png, shapes = pool(slide, k, lambda j, slide=slide, n=per_image: field(slide, n, j))
                image_id = len(images) + 1
                images.append({"file_name": stem, "height": size[1], "width": size[0], "id": image_id})
                for poly, cat in shapes:
                    poly = [round(min(max(v, 0.0), float(lim)), 1)
                            for v, lim in zip(poly, size * (len(poly) // 2), strict=True)]
                    bbox = [round(v, 1) for v in polygon_bbox(poly)]
                    area = round(bbox[2] * bbox[3] * 0.78, 1)
                    annotations.append({"id": len(annotations) + 1, "image_id": image_id, "category_id": cat,
                                        "bbox": bbox, "segmentation": [poly + poly[:2]], "area": area,
                                        "iscrowd": 0})
                    ring = ", ".join(f"{x:g} {y:g}" for x, y in zip(poly[0::2] + poly[:1], poly[1::2] + poly[1:2],
                                                                     strict=True))
                    for key, val in (("image_name", stem), ("geometry", f"POLYGON (({ring}))"), ("category_id", cat),
                                     ("geo_type", "Polygon"), ("area", area), ("image_id", image_id),
                                     ("slide_id", slide)):
                        table[key].append(val)
                jpgs.append((f"{slide}/{stem}.jpg", jpg))
                pngs.append((f"{slide}/{stem}.png", png))
            for folder, entries in (("images", jpgs), ("masks", pngs)):
                synth.write_zip(work / folder / f"{slide}.zip", entries)
                outer.append((f"{ROOT}/{folder}/{slide}.zip", work / folder / f"{slide}.zip"))
        coco = {"info": {"description": "CCAgT (synthetic)", "version": "2"},
                "categories": [{"id": i, "name": n, "supercategory": ""} for i, n in CATEGORIES.items()],
                "images": images, "annotations": annotations}
        outer.append((f"{ROOT}/{COCO_NAME}", json.dumps(coco).encode()))
        buf = io.BytesIO()
        pq.write_table(pa.table(table), buf, compression="gzip")
        outer.append((f"{ROOT}/{PARQUET_NAME}", buf.getvalue()))
        outer.sort(key=lambda e: e[0])
        synth.write_zip(root / f"{ROOT}.zip", outer, compress=False)
        for p in sorted(work.rglob("*"), reverse=True):
            p.unlink() if p.is_file() else p.rmdir()
        work.rmdir()
        synth.write_marker(root, self.name, scale, seed)
