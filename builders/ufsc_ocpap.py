"""UFSC OCPap: Papanicolaou-stained oral cytology (LAPiX, Federal University of Santa Catarina), nuclei-crop part.

Matias et al., "Segmentation, Detection, and Classification of Cell Nuclei on Oral Cytology Samples Stained with
Papanicolaou", SN Computer Science 2 (2021). Mendeley Data dr7ydy9xbk (version 2). The part whose layout is known
(from a third-party notebook that lists it) is a folder of nucleus crops, `nuclei_images/{train,val,test}/<class>/`,
with the classes abnormal, blood, normal, out_of_focus and reactive (the notebook keeps only these five, which
implies that more class folders exist). One row per crop, the class folder as label, the official split kept.
The full-field images (1,934 of 1200 x 1600 px) and their segmentation/detection annotations are not built: their
file layout and annotation format are not documented anywhere we could read.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from cytohub import layout, synth
from cytohub.builder import Builder, Label, Published, Source
from cytohub.errors import RawLayoutError
from cytohub.raw import RawTree

CLASSES = {
    "normal": "nucleus of a normal epithelial cell",
    "abnormal": "nucleus of an abnormal (atypical / malignant) epithelial cell",
    "reactive": "nucleus with reactive changes",
    "blood": "blood cell (leukocyte or erythrocyte)",
    "out_of_focus": "nucleus out of focus",
}
SPLIT_FOLDERS = {"train": "train", "val": "validation", "test": "test"}
IMAGE_EXT = (".png", ".jpg", ".jpeg", ".tif", ".tiff")
# crops per split and class in the five documented classes (third-party notebook output)
COUNTS = {
    "train": {"abnormal": 16387, "blood": 5794, "normal": 6000, "out_of_focus": 16852, "reactive": 1326},
    "val": {"abnormal": 3012, "blood": 1236, "normal": 1040, "out_of_focus": 3350, "reactive": 478},
    "test": {"abnormal": 3340, "blood": 1338, "normal": 1246, "out_of_focus": 3662, "reactive": 460},
}
WRAPPER = "dr7ydy9xbk-2"  # Mendeley's download wraps a dataset in <id>-<version>/


def full_scale_rows() -> dict[str, int]:
    """Rows per split of a full-scale synthetic build: the crop counts of the published folder listing."""
    return {SPLIT_FOLDERS[folder]: sum(per_class.values()) for folder, per_class in COUNTS.items()}


def crop_counts(scale: str) -> dict[str, dict[str, int]]:
    return COUNTS if scale == "full" else {s: dict.fromkeys(CLASSES, 2) for s in SPLIT_FOLDERS}


class UFSCOCPap(Builder):
    name = "ufsc-ocpap"
    pretty_name = "UFSC OCPap: Papanicolaou-stained oral cytology (nuclei crops)"
    summary = "Nucleus crops from Pap-stained oral brush cytology in five classes, with official splits"
    homepage = "https://data.mendeley.com/datasets/dr7ydy9xbk/2"
    license = "unknown"
    redistribution = "forbidden"
    attribution = ("Matias A.V., Cerentini A., Macarini L.A.B., Amorim J.G.A., Daltoé F.P., von Wangenheim A., "
                   "UFSC OCPap (LAPiX, Federal University of Santa Catarina), Mendeley Data dr7ydy9xbk.")
    citation = """@article{matias2021ocpap,
  title   = {Segmentation, Detection, and Classification of Cell Nuclei on Oral Cytology Samples Stained with
             Papanicolaou},
  author  = {Matias, Andr{\\'e} Vict{\\'o}ria and Cerentini, Allan and Macarini, Luiz Antonio Buschetto and
             Amorim, Jo{\\~a}o Gustavo Atkinson and Dalto{\\'e}, Felipe Perozzo and von Wangenheim, Aldo},
  journal = {SN Computer Science},
  volume  = {2},
  number  = {4},
  pages   = {285},
  year    = {2021},
  doi     = {10.1007/s42979-021-00676-8}
}"""
    sources = (
        Source(f"{WRAPPER}.zip", direct=True,
               url=f"https://prod-dcd-datasets-cache-zipfiles.s3.eu-west-1.amazonaws.com/{WRAPPER}.zip",
               description="Mendeley 'Download All' archive holding nuclei_images/ (name and link from the "
                           "Mendeley convention <id>-<version>.zip)"),
    )
    manual_download = """Download version 2 of https://data.mendeley.com/datasets/dr7ydy9xbk ("Download All"; the
same data are linked from https://arquivos.ufsc.br/d/5035aec3c24f421a95d0/) and pass the archive or the extracted
folder with --raw (or put it at $CYTOHUB_HOME/raw/ufsc-ocpap). The builder looks for
nuclei_images/{train,val,test}/<class>/ anywhere inside, including nested zips."""
    task_categories = ("image-classification",)
    tags = ("cytology", "oral-cytology", "oral-cancer", "papanicolaou", "nucleus", "microscopy", "medical")
    organ = "oral cavity (brush samples)"
    stain = "Papanicolaou"
    preparation = "oral brush cytology smears"
    scanner = "Zeiss Axio Scan.Z1 with a Hitachi HV-F202SCL camera"
    mpp = None
    num_images = None
    published = Published(
        rows_per_split={SPLIT_FOLDERS[s]: sum(c.values()) for s, c in COUNTS.items()},
        per_class={name: sum(COUNTS[s][name] for s in COUNTS) for name in CLASSES}, unit="nucleus crops",
        source="file counts of the five classes in a third-party notebook run on the download")
    layout = "unverified"
    expected_layout = """
    dr7ydy9xbk-2.zip / dr7ydy9xbk-2/nuclei_images/
      train/<class>/<crop>.png, val/<class>/..., test/<class>/...
        class: abnormal, blood, normal, out_of_focus, reactive
"""
    assumptions = (
        "Only the nuclei-crop part is built: nuclei_images/{train,val,test}/<class>/<crop> as listed by a "
        "third-party notebook; the download archive's name and wrapping folder are assumed.",
        "Five class folders are documented (abnormal, blood, normal, out_of_focus, reactive); other class "
        "folders, which the notebook implies exist, are listed in the build report as skipped, not built.",
        "The split folder 'val' becomes the split 'validation'.",
        "The full-field images (reported as 1,934 images of 1200 x 1600 px from two slides) and their "
        "segmentation/detection annotations are not built: their layout and format are unknown.",
        "Crops are passed through in their own format and size (about 40-60 px; some copies seen at 256 x 256).",
        "Licence unknown (Mendeley datasets are often CC BY 4.0, the sibling CCAgT is CC BY-NC 3.0); pixel size "
        "not published.",
    )
    labels = tuple(Label(name, (name,), None, desc) for name, desc in CLASSES.items())
    splits = ("train", "validation", "test")

    # ------------------------------------------------------------------ raw -> rows
    def examples(self, raw: RawTree) -> Iterator[dict]:
        found: list[tuple[int, str, str, str, object]] = []
        for f in raw.files(suffix=IMAGE_EXT):
            parts = f.parts
            if len(parts) < 3 or parts[-3].lower() not in SPLIT_FOLDERS:
                continue
            folder, label = parts[-2], parts[-2].lower()
            if label not in CLASSES:
                raw.skip(f, f"class folder {folder!r} is not one of the five documented classes "
                            f"({', '.join(CLASSES)})")
                continue
            split = SPLIT_FOLDERS[parts[-3].lower()]
            found.append((self.splits.index(split), label, f.stem, f.path, f))
        if not found:
            raise RawLayoutError(f"{raw.root}: no UFSC OCPap nucleus crops found; expected nuclei_images/"
                                 "{train,val,test}/{abnormal,blood,normal,out_of_focus,reactive}/<image>"
                                 + layout.found(raw))
        ids: dict[str, str] = {}
        for split_idx, label, stem, path, f in sorted(found, key=lambda t: t[:4]):
            split = self.splits[split_idx]
            row_id = f"{split}-{label}-{stem}"
            if row_id in ids:
                raise RawLayoutError(f"crop {stem!r} appears twice in {split}/{label}: {ids[row_id]} and {path}")
            ids[row_id] = path
            yield {"id": row_id, "image": f, "label": label, "split": split,
                   "extra": {"split_folder": f.parts[-3], "class_folder": f.parts[-2]}}

    # ------------------------------------------------------------------ synthetic raw layout
    def synthesize(self, root: Path, scale: str = "small", seed: int = 0) -> None:
        entries = []
        pool = synth.ImagePool(scale)  # full scale: 32 drawn crops per class and split, reused

        def draw(folder: str, k: int, label: str, i: int) -> bytes:
            rng = synth.rng_for(self.name, seed, folder, label, i)
            side = int(rng.integers(40, 60))
            img, _ = synth.cell_field(rng, (side, side + int(rng.integers(-4, 5))), n_cells=1,
                                      nucleus_scale=0.7 if label == "abnormal" else 0.5, tint=k)
            if label == "out_of_focus":
                img = synth.defocus(img, 3)
            return synth.encode(img, "PNG")

        for folder, per_class in crop_counts(scale).items():
            for k, (label, n) in enumerate(per_class.items()):
                for i in range(n):
                    data = pool((folder, label), i,
                                lambda j, folder=folder, k=k, label=label: draw(folder, k, label, j))
                    entries.append((f"{WRAPPER}/nuclei_images/{folder}/{label}/{i + 1:05d}.png", data))
        synth.write_zip(root / f"{WRAPPER}.zip", entries)
        synth.write_marker(root, self.name, scale, seed)
