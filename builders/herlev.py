"""Herlev (DTU/Herlev Pap-smear database, "smear2005"): 917 single-cell images in 7 classes (Jantzen et al. 2005).

`smear2005.zip` -> `smear2005/New database pictures/<class>/<stem>.BMP` with a segmentation mask `<stem>-d.bmp`
(palette BMP) beside each image. Class folders use the French spelling `normal_superficiel`. One row per cell.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from cytohub import layout, synth
from cytohub.builder import Builder, Label, Published, Source
from cytohub.errors import RawLayoutError
from cytohub.raw import RawFile, RawTree

# (class folder, group, Bethesda node, commonly cited count)
CLASSES = (
    ("normal_superficiel", "normal", "NILM/squamous/superficial", 74),
    ("normal_intermediate", "normal", "NILM/squamous/intermediate", 70),
    ("normal_columnar", "normal", "NILM/glandular", 98),
    ("light_dysplastic", "abnormal", "LSIL", 182),
    ("moderate_dysplastic", "abnormal", "HSIL", 146),
    ("severe_dysplastic", "abnormal", "HSIL", 197),
    ("carcinoma_in_situ", "abnormal", "HSIL", 150),
)
PICTURES = "New database pictures"
ALIASES = {"normal_superficial": "normal_superficiel"}  # English spelling some users rename to
STEM_RE = re.compile(r"^(?P<source>\d+-\d+)-(?P<cell>\d+)$")
_NAMES = {c for c, *_ in CLASSES}


def class_of(folder: str) -> str | None:
    key = re.sub(r"[^a-z]+", "_", folder.lower()).strip("_")
    key = ALIASES.get(key, key)
    return key if key in _NAMES else None


class Herlev(Builder):
    name = "herlev"
    pretty_name = "Herlev Pap-smear database (DTU/Herlev smear2005)"
    version = "1.0.0"
    summary = "917 single cervical cells from Pap smears in 7 classes, with nucleus/cytoplasm segmentation masks"
    homepage = "https://mde-lab.aegean.gr/index.php/downloads/"
    license = "unknown"
    redistribution = "forbidden"
    attribution = ("Jantzen J., Norup J., Dounias G., Bjerregaard B., Pap-smear (DTU/Herlev) database, Technical "
                   "University of Denmark and Herlev University Hospital; distributed by the MDE-Lab, University "
                   "of the Aegean.")
    citation = """@inproceedings{jantzen2005pap,
  title     = {Pap-smear Benchmark Data For Pattern Classification},
  author    = {Jantzen, Jan and Norup, Jonas and Dounias, George and Bjerregaard, Beth},
  booktitle = {Proc. NiSIS 2005: Nature inspired Smart Information Systems (NiSIS), EU co-ordination action},
  pages     = {1--9},
  year      = {2005}
}"""
    sources = (Source("smear2005.zip", url="https://mde-lab.aegean.gr/index.php/downloads/", aliases=("smear2005/",),
                      description="Part II: New Pap-smear Database (images), about 85 MB"),)
    manual_download = """Download "Part II: New Pap-smear Database (images)" (smear2005.zip) from
https://mde-lab.aegean.gr/index.php/downloads/ and pass the zip (or the extracted smear2005/ folder) with
--raw (or put it at $CYTOHUB_HOME/raw/herlev). The license is not stated: use it for research only and do
not republish it."""
    task_categories = ("image-classification", "image-segmentation")
    tags = ("cytology", "cervical-cancer", "pap-smear", "papanicolaou", "single-cell", "cell-segmentation",
            "microscopy", "medical")
    organ = "uterine cervix"
    stain = "Papanicolaou"
    preparation = "Pap smear"
    num_images = 917
    published = Published(files=("smear2005.zip",), rows=917, unit="cells",
                          source="the MDE-Lab download page (917 cells; per-class counts are only quoted)")
    layout = "verified"
    expected_layout = """
    smear2005.zip / smear2005/New database pictures/
      <class>/<stem>.BMP, <stem>-d.bmp      class: normal_superficiel, ..., carcinoma_in_situ (7)
"""
    assumptions = (
        "Per-class counts are the commonly cited ones (74/70/98/182/146/197/150), not checked against the archive; "
        "they are only used for full-scale synthetic data.",
        "The `-d.bmp` masks are passed through as published (palette BMPs; the exact codes of background, "
        "cytoplasm and nucleus are not documented).",
        "The first two numbers of a file stem (e.g. 149143370-149143378 in 149143370-149143378-001) identify "
        "the source image (third-party statement); they are used as group.fov_id so that cells of one image "
        "never cross splits.",
        "The license is not stated anywhere we found: redistribution is treated as not allowed.",
        "A class folder spelled normal_superficial (English) is accepted as normal_superficiel.",
    )
    labels = tuple(Label(name, (group, name), node) for name, group, node, _ in CLASSES)

    # ------------------------------------------------------------------ raw -> rows
    def examples(self, raw: RawTree) -> Iterator[dict]:
        cells: dict[tuple[str, str], RawFile] = {}
        masks: dict[tuple[str, str], RawFile] = {}
        class_parents: set[str] = set()  # folders holding class folders (New database pictures/, or renamed)
        unknown: dict[str, RawFile] = {}  # folder -> a BMP in an unknown sub-folder of it
        for f in raw.files():
            if f.suffix in (".xls", ".xlsx", ".csv", ".txt", ".doc", ".pdf"):
                raw.skip(f, "accompanying document or feature table (not read)")
                continue
            if f.suffix != ".bmp" or len(f.parts) < 2:
                continue
            cls = class_of(f.parts[-2])
            if cls is None:
                if len(f.parts) >= 3 and f.parts[-3].lower() == PICTURES.lower():
                    under = "/".join(f.parts[:-2])
                    raise RawLayoutError(f"{f.parent}: unknown class folder {f.parts[-2]!r} in {PICTURES!r}; "
                                         + layout.mismatch(f"class folders {', '.join(c for c, *_ in CLASSES)}",
                                                           layout.listing(raw, under), under=under))
                unknown.setdefault("/".join(f.parts[:-2]), f)
                continue
            class_parents.add("/".join(f.parts[:-2]))
            stem = f.stem
            target = masks if stem.lower().endswith("-d") else cells
            key = (cls, stem[:-2] if target is masks else stem)
            if key in target:
                raise RawLayoutError(f"{f.name} of {cls} appears twice: {target[key].path} and {f.path}")
            target[key] = f
        for under, f in sorted(unknown.items()):
            if under in class_parents:  # an unknown folder beside the class folders: a class would be lost
                raise RawLayoutError(f"{f.parent}: unknown class folder {f.parts[-2]!r}; " + layout.mismatch(
                    f"class folders {', '.join(c for c, *_ in CLASSES)}", layout.listing(raw, under), under=under))
        if not cells:
            raise RawLayoutError(f"{raw.root}: no Herlev cells found; expected smear2005/{PICTURES}/<class>/*.BMP "
                                 f"for the classes {', '.join(c for c, *_ in CLASSES)}" + layout.found(raw))
        for key, f in masks.items():
            if key not in cells:
                raw.skip(f, "mask without its cell image")
        order = [c for c, *_ in CLASSES]
        for key in sorted(cells, key=lambda k: (order.index(k[0]), k[1])):
            cls, stem = key
            m = STEM_RE.match(stem)
            yield {
                "id": f"{cls}-{stem}",
                "image": cells[key],
                "mask": masks.get(key),
                "label": cls,
                "group": {"fov_id": m["source"]} if m else None,
                "extra": {"class_folder": cells[key].parts[-2]},
            }

    # ------------------------------------------------------------------ synthetic raw layout
    def synthesize(self, root: Path, scale: str = "small", seed: int = 0) -> None:
        entries: list[tuple[str, bytes]] = []
        for ci, (cls, _, _, count) in enumerate(CLASSES):
            n = count if scale == "full" else 3
            for i in range(n):
                rng = synth.rng_for("herlev", seed, cls, i)
                source = i // 2  # two cells per source image: grouped splits must keep them together
                a = 149000000 + 97 * ci * 1000 + 31 * source
                stem = f"{a}-{a + 8}-{i % 2 + 1:03d}"
                side = int(rng.integers(120, 320))
                field, cells = synth.cell_field(rng, (side, side), n_cells=1, nucleus_scale=0.15 + 0.07 * ci,
                                                tint=ci, margin=0.05)
                x, y, cw, ch = cells[0].bbox()
                pad = 0.12 * cw
                box = (max(0, int(x - pad)), max(0, int(y - pad)), min(side, int(x + cw + pad)),
                       min(side, int(y + ch + pad)))
                img = field.crop(box)
                shift = [(cells[0].cytoplasm_polygon(), 1), (cells[0].nucleus_polygon(), 2)]
                shift = [([v - box[k % 2] for k, v in enumerate(poly)], code) for poly, code in shift]
                mask = synth.label_mask(img.size, shift, mode="P")
                mask.putpalette([0, 0, 0, 255, 0, 0, 0, 0, 255] + [0] * (256 - 3) * 3)
                folder = f"smear2005/{PICTURES}/{cls}"
                entries.append((f"{folder}/{stem}.BMP", synth.encode(img, "BMP")))
                entries.append((f"{folder}/{stem}-d.bmp", synth.encode(mask, "BMP")))
        entries.sort(key=lambda e: e[0])
        synth.write_zip(root / "smear2005.zip", entries)
        synth.write_marker(root, self.name, scale, seed)

