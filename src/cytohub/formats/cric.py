"""The CRIC platform's classification export (database.cric.com.br), used by CRIC Cervix and APCData (annotated
on the same platform).

CSV (header exact, written without quoting; class names contain spaces but no commas):
    image_id,image_filename,image_doi,cell_id,bethesda_system,nucleus_x,nucleus_y
JSON (minified list of image records; note `image_name`, not `image_filename`):
    [{"image_id", "image_doi", "image_name", "classifications": [{"cell_id", "bethesda_system",
      "nucleus_x", "nucleus_y"}]}]
Nucleus coordinates are integer pixels, 1-based (CRIC README: x in 1..1376, y in 1..1020); `point_objects` makes
them 0-based points. Each corpus passes its own label map (source spelling -> object category); an unknown
spelling, a non-integer or non-finite coordinate or id, is an error naming the file and the line or record.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from cytohub.errors import RawLayoutError
from cytohub.formats import csvfile, geometry, jsonfile
from cytohub.raw import RawFile

CSV_HEADER = ("image_id", "image_filename", "image_doi", "cell_id", "bethesda_system", "nucleus_x", "nucleus_y")


@dataclass
class Cell:
    cell_id: int
    category: str  # object category (after the corpus's label map)
    raw_label: str  # as spelled in the file
    x: int  # 1-based, as in the file
    y: int
    where: str  # "file:line" or "file[image k, cell j]"


@dataclass
class ImageAnn:
    image_id: str
    image_name: str
    image_doi: str | None
    source: str  # annotation file path
    cells: list[Cell] = field(default_factory=list)
    seen: dict[int, str] = field(default_factory=dict, repr=False)  # cell_id -> where it was first listed


def _add(ann: ImageAnn, cell: Cell) -> None:
    """Append `cell` to `ann`, refusing a cell_id the image already has: the CRIC platform's export writes each
    cell's database id (`id_celula`), so a repeated id is a repeated record, which would become a second object."""
    first = ann.seen.setdefault(cell.cell_id, cell.where)
    if first != cell.where:
        raise RawLayoutError(f"{cell.where}: image {ann.image_name} lists cell_id {cell.cell_id} again (first at "
                             f"{first}); each cell is expected once")
    ann.cells.append(cell)


def _key(text: str) -> str:
    return " ".join(text.split()).casefold()


def map_label(label_map: dict[str, str], raw: str, where: str) -> str:
    """Source spelling -> category (case and repeated spaces ignored), or an error naming the place."""
    table = {_key(k): v for k, v in label_map.items()}
    cat = table.get(_key(raw))
    if cat is None:
        raise RawLayoutError(f"{where}: unknown bethesda_system {raw!r}; expected one of "
                             f"{sorted(dict.fromkeys(label_map))}")
    return cat


def _null(value) -> str | None:
    text = "" if value is None else str(value).strip()
    return None if text in ("", "null", "None") else text


def parse_csv(f: RawFile, label_map: dict[str, str]) -> dict[str, ImageAnn]:
    """image_filename -> its annotations, in file order."""
    records = csvfile.records(f)
    header = None
    for _, row in records:
        if any(c.strip() for c in row):
            header = row
            break
    if header is None or tuple(c.strip().lower() for c in header) != CSV_HEADER:
        got = ",".join(header) if header else "(empty file)"
        raise RawLayoutError(f"{f.path}: header is {got!r}; expected {','.join(CSV_HEADER)!r}")
    out: dict[str, ImageAnn] = {}
    for n, row in records:
        where = f"{f.path}:{n}"
        if not any(c.strip() for c in row):
            continue
        if len(row) != len(CSV_HEADER):
            raise RawLayoutError(f"{where}: {len(row)} fields, expected {len(CSV_HEADER)} ({','.join(CSV_HEADER)})")
        image_id, name, doi, cell_id, label, x, y = (c.strip() for c in row)
        if not name:
            raise RawLayoutError(f"{where}: empty image_filename")
        ann = out.setdefault(name, ImageAnn(image_id, name, _null(doi), f.path))
        if ann.image_id != image_id:
            raise RawLayoutError(f"{where}: image {name} has image_id {image_id}, earlier rows say {ann.image_id}")
        _add(ann, Cell(geometry.integer(cell_id, "cell_id", where), map_label(label_map, label, where), label,
                       geometry.integer(x, "nucleus_x", where), geometry.integer(y, "nucleus_y", where), where))
    return out


def parse_json(f: RawFile, label_map: dict[str, str]) -> dict[str, ImageAnn]:
    """The same content from the JSON export."""
    data = jsonfile.load(f, "CRIC export JSON")
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list):
        raise RawLayoutError(f"{f.path}: expected a list of image records")
    out: dict[str, ImageAnn] = {}
    for i, rec in enumerate(data):
        where = f"{f.path}[image {i}]"
        if not isinstance(rec, dict) or "image_name" not in rec or "classifications" not in rec:
            raise RawLayoutError(f"{where}: expected an object with image_id, image_name, classifications")
        name = str(rec["image_name"]).strip()
        if name in out:
            raise RawLayoutError(f"{where}: image {name} listed twice")
        ann = out[name] = ImageAnn(str(rec.get("image_id", "")), name, _null(rec.get("image_doi")), f.path)
        cells = rec["classifications"] or []
        if not isinstance(cells, list):
            raise RawLayoutError(f"{where}: classifications is {type(cells).__name__}; expected a list")
        for j, c in enumerate(cells):
            cw = f"{where}.classifications[{j}]"
            if not isinstance(c, dict):
                raise RawLayoutError(f"{cw}: expected an object with cell_id, bethesda_system, nucleus_x, nucleus_y")
            missing = [k for k in ("cell_id", "bethesda_system", "nucleus_x", "nucleus_y") if k not in c]
            if missing:
                raise RawLayoutError(f"{cw}: no {', '.join(missing)}; expected cell_id, bethesda_system, nucleus_x, "
                                     "nucleus_y")
            label = str(c["bethesda_system"])
            _add(ann, Cell(geometry.integer(c["cell_id"], "cell_id", cw), map_label(label_map, label, cw), label,
                           geometry.integer(c["nucleus_x"], "nucleus_x", cw),
                           geometry.integer(c["nucleus_y"], "nucleus_y", cw), cw))
    return out


def point_objects(cells: list[Cell], size: tuple[int, int], image_path: str) -> list[dict]:
    """Objects with 0-based points: CRIC (x, y) 1-based -> [x - 1, y - 1]. A point outside 1..W x 1..H is an
    error naming the annotation record and the image (it would mean another convention or another image)."""
    return [{"category": c.category,
             "point": geometry.one_based_xy(c.x, c.y, size, "nucleus", f"{c.where} (image {image_path})")}
            for c in cells]


def csv_text(records: list[tuple]) -> str:
    """The export's CSV (no quoting, LF line ends), from (image_id, filename, doi, cell_id, label, x, y) tuples."""
    lines = [",".join(CSV_HEADER)] + [",".join("null" if v is None else str(v) for v in r) for r in records]
    return "\n".join(lines) + "\n"


def json_text(records: list[tuple]) -> str:
    """The export's minified JSON from the same tuples, grouped by image in order of first appearance."""
    images_: dict[str, dict] = {}
    for image_id, name, doi, cell_id, label, x, y in records:
        rec = images_.setdefault(name, {"image_id": image_id, "image_doi": doi, "image_name": name,
                                        "classifications": []})
        rec["classifications"].append({"cell_id": cell_id, "bethesda_system": label, "nucleus_x": x, "nucleus_y": y})
    return json.dumps(list(images_.values()), separators=(",", ":"))
