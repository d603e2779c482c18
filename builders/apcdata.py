"""APCData cervical cytology cells (Cuña Cabrera, Pachiarotti, Guerra; Mendeley Data 2024).

425 field images (2048 x 1532) from Laboratorio APC (Rivera, Uruguay) with 3,619 cells marked by a nucleus point
and a Bethesda class, exported from the CRIC platform (same CSV/JSON format as CRIC Cervix), plus YOLO boxes
exported through Roboflow. Reconstructed layout (third-party scripts; unverified):

    .../APCData cervical cytology cells/
        APCData_YOLO/classes.txt, labels/<stem>_jpg.rf.<hash>.txt      (no images)
        APCData_points/images/NNNN <study> ....jpg, labels/csv/NNNN.csv, labels/json/NNNN.json
One row per field image: CSV points and YOLO boxes as objects (a cell appears once per annotation kind).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from cytohub import images, layout, synth
from cytohub.builder import Builder, Label, Published, Source
from cytohub.errors import RawLayoutError
from cytohub.formats import cric as cricfmt
from cytohub.formats import yolo as yolofmt
from cytohub.formats.naming import key as image_key
from cytohub.raw import RawFile, RawTree

# category (classes.txt spelling) -> harmonized node
CLASSES = (("NILM", "NILM"), ("ASCUS", "ASC-US"), ("ASCH", "ASC-H"), ("LSIL", "LSIL"), ("HSIL", "HSIL"),
           ("SCC", "SCC"))
# every spelling met in the CSV/JSON or classes.txt (CSV spelling of ASC-US/ASC-H is not confirmed)
LABEL_MAP = {
    "Negative": "NILM", "NILM": "NILM", "Negative for intraepithelial lesion": "NILM",
    "ASCUS": "ASCUS", "ASC-US": "ASCUS", "ASCH": "ASCH", "ASC-H": "ASCH",
    "LSIL": "LSIL", "HSIL": "HSIL", "SCC": "SCC",
}
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
FULL_CELLS = {"NILM": 2114, "ASCUS": 333, "ASCH": 182, "LSIL": 444, "HSIL": 421, "SCC": 125}
IMAGE_SIZE = (2048, 1532)
_FIELD = re.compile(r"^(\d{4})(?:\s+(\S+))?")
_RF = re.compile(r"\.rf\.[0-9a-f]+$", re.IGNORECASE)


def yolo_key(stem: str) -> str:
    """Roboflow label stem `<original stem>_jpg.rf.<hash>` -> the key of its image."""
    stem = _RF.sub("", stem)
    stem = re.sub(r"[_.](jpe?g|png)$", "", stem, flags=re.IGNORECASE)
    return image_key(stem)


def _under(f: RawFile, *folders: str) -> bool:
    """True when the file's parent folders end with `folders` (case-insensitive)."""
    parts = [p.lower() for p in f.parts[:-1]]
    return parts[-len(folders):] == [x.lower() for x in folders]


class APCData(Builder):
    name = "apcdata"
    pretty_name = "APCData cervical cytology cells"
    summary = "Cervical LBC field images with Bethesda-labelled nucleus points (CRIC export) and YOLO cell boxes"
    homepage = "https://data.mendeley.com/datasets/ytd568rh3p/1"
    license = "cc-by-4.0"
    redistribution = "allowed"
    attribution = ("Cuña Cabrera P., Pachiarotti V. E., Guerra R., APCData cervical cytology cells, Mendeley Data "
                   "V1, doi:10.17632/ytd568rh3p.1 (Laboratorio APC, Rivera, Uruguay); CC BY 4.0.")
    citation = """@misc{apcdata2024,
  author    = {Cu{\\~n}a Cabrera, Pablo and Pachiarotti, Virginia Eva and Guerra, Rodrigo},
  title     = {APCData cervical cytology cells},
  publisher = {Mendeley Data},
  version   = {V1},
  year      = {2024},
  doi       = {10.17632/ytd568rh3p.1}
}"""
    sources = (Source("ytd568rh3p-1.zip", direct=True,
                      url="https://prod-dcd-datasets-cache-zipfiles.s3.eu-west-1.amazonaws.com/ytd568rh3p-1.zip",
                      description="Mendeley Data bulk download (APCData_YOLO and APCData_points); name and link "
                                  "from the Mendeley convention <id>-<version>.zip"),)
    manual_download = """Open https://data.mendeley.com/datasets/ytd568rh3p/1 and use "Download All" (a zip
named ytd568rh3p-1.zip). Pass the zip, or the folder you extracted it to, with --raw (or put it at
$CYTOHUB_HOME/raw/apcdata). The builder looks for the APCData_points and APCData_YOLO folders anywhere below."""
    task_categories = ("object-detection", "image-classification")
    tags = ("cytology", "cervical-cancer", "liquid-based-cytology", "papanicolaou", "bethesda",
            "cell-detection", "points", "yolo", "microscopy", "medical")
    organ = "uterine cervix"
    stain = "Papanicolaou"
    preparation = "liquid-based cytology (cytocentrifugation)"
    scanner = "Olympus CX40RF100 microscope, 40x objective, 10x eyepiece, Olympus LC30 camera"
    magnification = "40x"
    num_images = 425
    published = Published(files=("ytd568rh3p-1.zip",), rows=425, unit="images",
                          source="Mendeley Data ytd568rh3p (425 images)")
    layout = "unverified"
    expected_layout = """
    ytd568rh3p-1.zip / .../APCData cervical cytology cells/
      APCData_points/images/NNNN <study> ....jpg
      APCData_points/labels/csv/NNNN.csv, labels/json/NNNN.json     CRIC-style points
      APCData_YOLO/classes.txt, labels/<stem>_jpg.rf.<hash>.txt      boxes (no images)
"""
    assumptions = (
        "The folder layout (APCData_YOLO/{classes.txt,labels}, APCData_points/{images,labels/csv,labels/json}) "
        "is reconstructed from third-party scripts that disagree in details (JPG vs PNG images, 417 YOLO "
        "label files and 420 JSON files for 425 images); folders are found anywhere below --raw.",
        "A CSV belongs to the image whose file name starts with the same 4-digit field id (NNNN.csv); the "
        "CSV's own image_filename column is a CRIC-platform hash that is not the file on disk and is only "
        "kept in `extra`.",
        "Point coordinates follow the CRIC export convention, (x, y) 1-based, and become [x - 1, y - 1]; "
        "a point outside 1..width x 1..height is an error.",
        "CSV spellings of ASC-US and ASC-H are not confirmed: ASCUS/ASC-US and ASCH/ASC-H are all accepted; "
        "'Negative' is NILM. Object categories use the classes.txt spellings.",
        "A YOLO label file is matched to its image by the Roboflow name rule (strip `.rf.<hash>` and "
        "`_jpg`, compare lower-case letters and digits); normalised boxes are taken relative to the "
        "original image size. A label file that matches no image is skipped with that reason.",
        "Points (CSV) and boxes (YOLO) are kept as separate objects: which box belongs to which point is "
        "not published, so one cell usually appears twice, once with `point` and once with `bbox`.",
        "When a CSV exists for an image, its JSON is recorded as skipped (same export); the JSON is read "
        "only for images without a CSV.",
        "The second word of an image name is taken as the study code and used as slide_id for grouped "
        "splits (73 studies are reported).",
        "Image-level labels do not exist (label = -1). Pixel size is not published (mpp is null).",
    )
    labels = ()
    object_labels = tuple(Label(name, (name,), node) for name, node in CLASSES)

    # ------------------------------------------------------------------ raw -> rows
    def examples(self, raw: RawTree) -> Iterator[dict]:
        points = [f for f in raw.files() if any(p.lower() == "apcdata_points" for p in f.parts[:-1])]
        yolo = [f for f in raw.files() if any(p.lower() == "apcdata_yolo" for p in f.parts[:-1])]
        if not points:
            raise RawLayoutError(f"{raw.root}: no APCData_points folder found; expected the APCData download "
                                 "(APCData_points/images, APCData_points/labels/csv, APCData_YOLO/labels)"
                                 + layout.found(raw))
        imgs: dict[str, RawFile] = {}
        by_field: dict[str, RawFile] = {}
        csvs, jsons = {}, {}
        for f in points:
            if _under(f, "images") and f.suffix in IMAGE_SUFFIXES:
                key = image_key(f.stem)
                if key in imgs:
                    raise RawLayoutError(f"two images with the same name key: {imgs[key].path} and {f.path}")
                imgs[key] = f
                m = _FIELD.match(f.stem)
                if m:
                    if m[1] in by_field:
                        raise RawLayoutError(f"two images with field id {m[1]}: {by_field[m[1]].path} and {f.path}")
                    by_field[m[1]] = f
            elif _under(f, "labels", "csv") and f.suffix == ".csv":
                csvs[f.stem] = f
            elif _under(f, "labels", "json") and f.suffix == ".json":
                jsons[f.stem] = f
            elif f.name.lower().startswith("readme") or f.suffix in (".md", ".txt", ".pdf"):
                raw.skip(f, "documentation")
        if not imgs:
            raise RawLayoutError(f"{raw.root}: no images in APCData_points/images")
        anns: dict[str, cricfmt.ImageAnn] = {}  # field id -> annotations
        for stem, f in sorted(csvs.items()):
            if stem not in by_field:
                raise RawLayoutError(f"{f.path}: no image in APCData_points/images whose name starts with {stem!r}")
            anns[stem] = self._single(cricfmt.parse_csv(f, LABEL_MAP), f)
        for stem, f in sorted(jsons.items()):
            if stem in anns:
                raw.skip(f, f"same annotations as {csvs[stem].path} (the CSV is read)")
                continue
            if stem not in by_field:
                raise RawLayoutError(f"{f.path}: no image in APCData_points/images whose name starts with {stem!r}")
            anns[stem] = self._single(cricfmt.parse_json(f, LABEL_MAP), f)

        classes: list[str] = []
        labels: dict[str, RawFile] = {}
        if yolo:
            cls_files = [f for f in yolo if f.name.lower() == "classes.txt"]
            if len(cls_files) != 1:
                raise RawLayoutError(f"{raw.root}: APCData_YOLO needs exactly one classes.txt, found {len(cls_files)}")
            names = [ln.strip() for ln in cls_files[0].lines() if ln.strip()]
            classes = [cricfmt.map_label(LABEL_MAP, n, f"{cls_files[0].path}:{i + 1}") for i, n in enumerate(names)]
            for f in yolo:
                if f is cls_files[0]:
                    continue
                if not (_under(f, "labels") and f.suffix == ".txt"):
                    if f.name.lower().startswith("readme") or f.suffix in (".md", ".pdf", ".yaml", ".yml"):
                        raw.skip(f, "documentation / training configuration")
                    continue
                key = yolo_key(f.stem)
                if key not in imgs:
                    raw.skip(f, "YOLO label file that matches no image in APCData_points/images")
                    continue
                if key in labels:
                    raise RawLayoutError(f"{imgs[key].path}: two YOLO label files match it: {labels[key].path} "
                                         f"and {f.path}")
                labels[key] = f

        for key in sorted(imgs, key=lambda k: (imgs[k].stem, k)):
            f = imgs[key]
            m = _FIELD.match(f.stem)
            fid, study = (m[1], m[2]) if m else (None, None)
            ann = anns.get(fid) if fid else None
            data = f.read_bytes()
            image, size = {"bytes": data, "path": f.name}, images.size(data, f.path)
            cells = sorted(ann.cells, key=lambda c: c.cell_id) if ann else []
            objects = cricfmt.point_objects(cells, size, f.path)
            n_points = len(objects)
            lab = labels.get(key)
            if lab is not None:
                objects += yolofmt.objects(lab, classes, size)
            sources = [f.path] + ([ann.source] if ann else []) + ([lab.path] if lab else [])
            yield {
                "id": fid or key,
                "image": image,
                "label": None,
                "objects": objects,
                "group": {"slide_id": study, "fov_id": fid or key},
                "source_path": ";".join(sources),
                "extra": {
                    "field_id": fid, "study": study,
                    "export_image_id": ann.image_id if ann else None,
                    "export_image_filename": ann.image_name if ann else None,
                    "cell_ids": [c.cell_id for c in cells],
                    "point_objects": n_points, "box_objects": len(objects) - n_points,
                },
            }

    @staticmethod
    def _single(anns: dict[str, cricfmt.ImageAnn], f: RawFile) -> cricfmt.ImageAnn:
        if len(anns) > 1:
            raise RawLayoutError(f"{f.path}: annotations of {len(anns)} images ({', '.join(list(anns)[:3])}); "
                                 "expected one image per file")
        if not anns:
            return cricfmt.ImageAnn("", "", None, f.path)
        return next(iter(anns.values()))

    # ------------------------------------------------------------------ synthetic raw layout
    def synthesize(self, root: Path, scale: str = "small", seed: int = 0) -> None:
        spell = {"NILM": "Negative", "ASCUS": "ASCUS", "ASCH": "ASCH", "LSIL": "LSIL", "HSIL": "HSIL", "SCC": "SCC"}
        if scale == "full":
            n_images, size, per_class = 425, IMAGE_SIZE, FULL_CELLS
        else:
            n_images, size = 8, (128, 96)
            per_class = {name: 2 + (name == "NILM") for name, _ in CLASSES}
        labels = [name for name, _ in CLASSES for _ in range(per_class[name])]
        labels = [labels[i] for i in synth.rng_for("apcdata", seed, "order").permutation(len(labels))]
        share = [labels[i::n_images] for i in range(n_images)]
        base = "ytd568rh3p-1/APCData cervical cytology cells"
        entries = [(f"{base}/APCData_YOLO/classes.txt", ("\n".join(n for n, _ in CLASSES) + "\n").encode())]
        pts, cell_id = [], 11685
        pool = synth.ImagePool(scale)  # full scale: 32 drawn fields per cell count, reused with their cells

        def draw(rng, i: int, n_cells: int) -> tuple[bytes, list[synth.Cell]]:
            field, cells = synth.cell_field(rng, size, n_cells=n_cells, nucleus_scale=0.3, tint=i, margin=0.05)
            return synth.encode(field, "JPEG", quality=90), cells

        for i in range(n_images):
            rng = synth.rng_for("apcdata", seed, i)
            fid, study = f"{i + 1:04d}", f"C{1000 + 7 * (i // 2)}"
            stem = f"{fid} {study} IMAGE_{i + 1:03d}" if i % 2 else f"{fid} {study} campo {i % 5 + 1}"
            n_cells = max(1, len(share[i]))
            jpg, cells = pool(n_cells, i, lambda j, i=i, rng=rng, n=n_cells: draw(
                rng if j == i else synth.rng_for("apcdata", seed, j), j, n))
            pts.append((f"{base}/APCData_points/images/{stem}.jpg", jpg))
            records, boxes = [], []
            for k, cat in enumerate(share[i]):
                c = cells[k % len(cells)]
                x, y = int(round(c.cx)) + 1, int(round(c.cy)) + 1
                cell_id += 1
                records.append((425 + i, f"{rng.bytes(8).hex()}.png", None, cell_id, spell[cat], x, y))
                bx, by, bw, bh = c.bbox()
                x0, y0 = max(bx, 0), max(by, 0)
                x1, y1 = min(bx + bw, size[0]), min(by + bh, size[1])
                cls = [n for n, _ in CLASSES].index(cat)
                boxes.append(yolofmt.line(cls, [x0, y0, x1 - x0, y1 - y0], size))
            records = [(r[0], records[0][1], *r[2:]) for r in records]  # one export file name per image
            pts.append((f"{base}/APCData_points/labels/csv/{fid}.csv", cricfmt.csv_text(records).encode()))
            if i != 2:  # fewer JSON files than images (420 of 425 reported)
                pts.append((f"{base}/APCData_points/labels/json/{fid}.json", cricfmt.json_text(records).encode()))
            if i != 4:  # fewer YOLO label files than images (417 of 425 reported)
                rf = rng.bytes(16).hex()
                name = re.sub(r"[^A-Za-z0-9_-]", "_", stem) + f"_jpg.rf.{rf}.txt"
                entries.append((f"{base}/APCData_YOLO/labels/{name}", ("\n".join(boxes) + "\n").encode()))
        synth.write_zip(root / "ytd568rh3p-1.zip", entries + pts)
        synth.write_marker(root, self.name, scale, seed)
