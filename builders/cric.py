"""CRIC Cervix Cell Classification (CRIC Searchable Image Database; Rezende et al., Sci Data 2021).

400 conventional Pap smear images (PNG, 1376 x 1020) with 11,534 cells, each marked by a nucleus point and a
Bethesda class. The download page of database.cric.com.br builds one flat zip (JSZip, no folders):
`<hash>.png` images, `classifications.csv` / `.json`, `README.classifications.md` and, when asked for,
segmentation exports. One row per image; the cells are point objects whose category is their Bethesda class.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from cytohub import images, layout, synth
from cytohub.builder import Builder, Label, Published, Source
from cytohub.errors import RawLayoutError
from cytohub.formats import cric as cricfmt
from cytohub.raw import RawTree

# source spelling -> (category, harmonized Bethesda node); category = the source spelling
CLASSES = (
    ("Negative for intraepithelial lesion", "NILM"),
    ("ASC-US", "ASC-US"),
    ("LSIL", "LSIL"),
    ("ASC-H", "ASC-H"),
    ("HSIL", "HSIL"),
    ("SCC", "SCC"),
)
LABEL_MAP = {name: name for name, _ in CLASSES}
IMAGE_SIZE = (1376, 1020)
SEGMENTATION_FILES = ("segmentations.csv", "segmentations.json", "nucleus-segmentations.csv",
                      "nucleus-segmentations.json", "cytoplasm-segmentations.csv", "cytoplasm-segmentations.json")
# cells per class in the published CSV (third-party count; sums to the published 11,534)
FULL_CELLS = {"Negative for intraepithelial lesion": 6779, "HSIL": 1703, "LSIL": 1360, "ASC-H": 925,
              "ASC-US": 606, "SCC": 161}


class CRIC(Builder):
    name = "cric"
    pretty_name = "CRIC Cervix Cell Classification"
    summary = "Conventional Pap smear images with nucleus points of 11,534 cells labelled by Bethesda class"
    homepage = "https://database.cric.com.br/"
    license = "cc-by-4.0"
    redistribution = "allowed"
    attribution = ("Rezende M.T. et al., CRIC Cervix Cell Classification (figshare collection "
                   "doi:10.6084/m9.figshare.c.4960286.v2; CRIC Searchable Image Database, UFOP); CC BY 4.0.")
    citation = """@article{rezende2021cric,
  title   = {Cric searchable image database as a public platform for conventional pap smear cytology data},
  author  = {Rezende, Mariana T. and Silva, Raniere and Bernardo, Fagner de O. and Tobias, Alessandra H. G. and
             Oliveira, Paulo H. C. and Machado, Tales M. and Costa, Caio S. and Medeiros, Fatima N. S. and
             Ushizima, Daniela M. and Carneiro, Claudia M. and Bianchi, Andrea G. C.},
  journal = {Scientific Data},
  volume  = {8},
  number  = {1},
  pages   = {151},
  year    = {2021},
  doi     = {10.1038/s41597-021-00933-8}
}
@misc{rezende2020cricfigshare,
  author    = {Rezende, Mariana Trevisan and Tobias, Alessandra Herm{\\'o}genes Gomes and Silva, Raniere and
               Oliveira, Paulo and Sombra de Medeiros, Fatima and Ushizima, Daniela and others},
  title     = {CRIC Cervix Cell Classification},
  publisher = {figshare},
  year      = {2020},
  doi       = {10.6084/m9.figshare.c.4960286.v2}
}"""
    sources = (
        Source("classifications.csv", url="https://database.cric.com.br/downloads", name_published=False,
               description="one line per cell: image, cell id, Bethesda class, nucleus x/y (1-based); inside the "
                           "zip the site builds (its name is not published)"),
        Source("classifications.json", url="https://database.cric.com.br/downloads", name_published=False,
               description="the same annotations as JSON, in the same zip"),
        Source("<hash>.png", url="https://doi.org/10.6084/m9.figshare.c.4960286.v2", name_published=False,
               description="400 images, 1376 x 1020 PNG, named by a 32-hex hash, in the same zip"),
    )
    manual_download = """On https://database.cric.com.br/downloads choose the "Cervix Cell Classification"
collection with images and classifications ticked, and save the zip the site builds (flat: <hash>.png files,
classifications.csv, classifications.json, README.classifications.md). Pass the zip, or the folder you
extracted it to, with --raw (or put it at $CYTOHUB_HOME/raw/cric). Images and metadata may sit in separate
subfolders (e.g. images/ and metadata/): files are found by name anywhere below --raw."""
    task_categories = ("object-detection", "image-classification")
    tags = ("cytology", "cervical-cancer", "pap-smear", "papanicolaou", "bethesda", "cell-classification",
            "nucleus-detection", "points", "microscopy", "medical")
    organ = "uterine cervix"
    stain = "Papanicolaou"
    preparation = "conventional Pap smear"
    num_images = 400
    published = Published(rows=400, unit="images", source="Rezende et al., Sci Data 2021 (400 images)")
    layout = "verified"
    expected_layout = """
    <download>.zip (flat, no folders)
      <32-hex hash>.png                  400 images
      classifications.csv and/or classifications.json
"""
    assumptions = (
        "Nucleus coordinates are 1-based (CRIC README: x in 1..1376, y in 1..1020) and become 0-based points "
        "[x - 1, y - 1]; a coordinate outside 1..width x 1..height is an error.",
        "classifications.csv is read when present; classifications.json is then the same export in another "
        "format and is recorded as skipped (it is read only when the CSV is absent).",
        "The optional segmentation exports are not converted: their `description_id` vocabulary is not "
        "published; they are listed as skipped in the build report.",
        "There is no image-level label (label = -1); patient and slide provenance is not in the export, so "
        "ratio splits are per image.",
        "The name of the zip the site builds is not documented; the builder does not depend on it.",
    )
    labels = ()
    object_labels = tuple(Label(name, (name,), node) for name, node in CLASSES)

    # ------------------------------------------------------------------ raw -> rows
    def examples(self, raw: RawTree) -> Iterator[dict]:
        csvs, jsons = raw.named("classifications.csv"), raw.named("classifications.json")
        if len(csvs) > 1 or len(jsons) > 1:
            extra = [f.path for f in (csvs if len(csvs) > 1 else jsons)]
            raise RawLayoutError(f"{raw.root}: several classification exports ({', '.join(extra)}); "
                                 "expected one CRIC download per build")
        if csvs:
            anns = cricfmt.parse_csv(csvs[0], LABEL_MAP)
            for j in jsons:
                raw.skip(j, f"same annotations as {csvs[0].path} (the CSV is read)")
        elif jsons:
            anns = cricfmt.parse_json(jsons[0], LABEL_MAP)
        else:
            raise RawLayoutError(f"{raw.root}: no classifications.csv or classifications.json found; expected "
                                 "the CRIC Cervix Cell Classification download (images + classifications)"
                                 + layout.found(raw))
        for f in raw.files(suffix=".md"):
            if f.name.lower().startswith("readme"):
                raw.skip(f, "documentation of the export")
        for name in SEGMENTATION_FILES:
            for f in raw.named(name):
                raw.skip(f, "optional segmentation export: its description_id vocabulary is not published, "
                            "so it is not converted")
        pngs: dict[str, object] = {}
        for f in raw.files(suffix=".png"):
            key = f.name.lower()
            if key in pngs:
                raise RawLayoutError(f"two images named {f.name}: {pngs[key].path} and {f.path}")
            pngs[key] = f
        if not pngs:
            raise RawLayoutError(f"{raw.root}: no PNG images found; download the collection with images ticked"
                                 + layout.found(raw))
        missing = sorted(n for n in anns if n.lower() not in pngs)
        if missing:
            raise RawLayoutError(f"{anns[missing[0]].source}: {len(missing)} annotated image(s) missing from the "
                                 f"download, e.g. {missing[0]}")

        def order(name: str) -> tuple:
            ann = anns.get(name)
            iid = ann.image_id if ann else ""
            return (0, int(iid), name) if iid.isdigit() else (1, 0, name)

        names = {n.lower(): n for n in anns}
        for key in sorted(pngs, key=lambda k: order(names.get(k, k))):
            f = pngs[key]
            ann = anns.get(names.get(key, ""))
            data = f.read_bytes()
            image, size = {"bytes": data, "path": f.name}, images.size(data, f.path)
            cells = sorted(ann.cells, key=lambda c: c.cell_id) if ann else []
            yield {
                "id": f.stem,
                "image": image,
                "label": None,
                "objects": cricfmt.point_objects(cells, size, f.path),
                "source_path": f.path + (f";{ann.source}" if ann else ""),
                "extra": {
                    "image_id": ann.image_id if ann else None,
                    "image_doi": ann.image_doi if ann else None,
                    "cell_ids": [c.cell_id for c in cells],
                    "annotated": ann is not None,
                },
            }

    # ------------------------------------------------------------------ synthetic raw layout
    def synthesize(self, root: Path, scale: str = "small", seed: int = 0) -> None:
        if scale == "full":
            n_images, size = 400, IMAGE_SIZE
            per_class = FULL_CELLS
        else:
            n_images, size = 6, (172, 128)
            per_class = {name: 2 + i % 2 for i, (name, _) in enumerate(CLASSES)}
        labels = [name for name, _ in CLASSES for _ in range(per_class[name])]
        labels = [labels[i] for i in synth.rng_for("cric", seed, "order").permutation(len(labels))]
        share = [labels[i::n_images] for i in range(n_images)]  # cells per image, round robin
        entries, records, cell_id = [], [], 0
        pool = synth.ImagePool(scale)  # full scale: 32 drawn fields per cell count, reused with their cells

        def draw(j: int, n_cells: int) -> tuple[bytes, list[synth.Cell]]:
            rng = synth.rng_for("cric", seed, j)
            rng.bytes(16)  # the file name's draw comes first
            field, cells = synth.cell_field(rng, size, n_cells=n_cells, nucleus_scale=0.3, tint=j)
            return synth.encode(field, "PNG"), cells

        for i in range(n_images):
            rng = synth.rng_for("cric", seed, i)
            name = f"{rng.bytes(16).hex()}.png"
            n_cells = max(1, len(share[i]))
            png, cells = pool(n_cells, i, lambda j, n=n_cells: draw(j, n))
            entries.append((name, png))
            image_id = 400 - i
            for k, label in enumerate(share[i]):
                c = cells[k % len(cells)]
                x = min(max(int(round(c.cx)) + 1 + k // len(cells), 1), size[0])  # 1-based
                y = min(max(int(round(c.cy)) + 1, 1), size[1])
                cell_id += 1
                records.append((image_id, name, f"10.6084/m9.figshare.{12230906 + i}", cell_id, label, x, y))
        readme = ("# CRIC Cervix Cell Classifications\n\n400 images from microscope slides of the uterine cervix "
                  "using the conventional smear (Pap smear) and the epithelial cell abnormalities classified "
                  "according to Bethesda system.\n")
        entries += [("README.classifications.md", readme.encode()),
                    ("classifications.csv", cricfmt.csv_text(records).encode()),
                    ("classifications.json", cricfmt.json_text(records).encode())]
        synth.write_zip(root / "cric-cervix-classification.zip", entries)
        synth.write_marker(root, self.name, scale, seed)
