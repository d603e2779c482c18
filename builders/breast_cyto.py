"""Breast Cyto: cytological and histological images of breast cancer (Berezsky, Datsko, Melnyk 2023, Zenodo).

Light-microscopy images (3264 x 2448 px, 40x objective) of breast cancer from West Ukrainian National University
and Ternopil National Medical University. A paper of the same group describes the Zenodo set as three classes
G1, G2 and G3 (tumour grade). The on-disk layout is not documented: this builder reads grade folders (G1/, G2/,
G3/), optionally below a cytology or histology folder that says which kind of image they are. One row per image.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from cytohub import synth
from cytohub.builder import Builder, Label, Source
from cytohub.class_folders import class_images
from cytohub.formats.naming import key, slug
from cytohub.raw import RawFile, RawTree
from cytohub.synthetic_pictures import cytology_picture

GRADES = ("G1", "G2", "G3")
ALIASES = {g: (g, f"grade {g[1]}", f"grade_{g[1]}") for g in GRADES}
ARCHIVE = "breast_cancer_images.zip"
MODALITY_FOLDERS = {"cytology": "Cytological images", "histology": "Histological images"}
FULL_SIZE, SMALL_SIZE = (3264, 2448), (136, 102)


def modality_of(f: RawFile) -> str | None:
    """'cytology' or 'histology' from the nearest folder above the grade folder whose name says so (and not
    both, like a wrapper folder named after the whole record), else None."""
    for part in reversed(f.parts[:-2]):
        k = key(part)
        cyto, hist = "cyto" in k, "hist" in k
        if cyto != hist:
            return "cytology" if cyto else "histology"
    return None


def full_scale_rows() -> int:
    """Rows of a full-scale synthetic build: 100 images (a placeholder, no count is published) per grade and
    modality."""
    return image_counts("full") * len(GRADES) * len(MODALITY_FOLDERS)


def image_counts(scale: str) -> int:
    """Images per grade and modality in synthetic data. The real counts are not published: full = 100 (a
    placeholder of plausible size), small = 2."""
    return 100 if scale == "full" else 2


class BreastCyto(Builder):
    name = "breast-cyto"
    pretty_name = "Breast Cyto: Cytological and Histological Images of Breast Cancer (grades G1-G3)"
    version = "1.0.0"
    summary = "Light-microscopy cytological and histological images of breast cancer, graded G1, G2, G3"
    homepage = "https://doi.org/10.5281/zenodo.7890874"
    license = "unknown"
    redistribution = "forbidden"
    attribution = ("Berezsky O., Datsko T., Melnyk G. (2023), Cytological and histological images of breast cancer, "
                   "Zenodo, doi:10.5281/zenodo.7890874 (West Ukrainian National University; Ternopil National "
                   "Medical University). License: see the Zenodo record.")
    citation = """@misc{berezsky2023breastcyto,
  title     = {Cytological and histological images of breast cancer},
  author    = {Berezsky, Oleh and Datsko, Tamara and Melnyk, Grygoriy},
  year      = {2023},
  publisher = {Zenodo},
  doi       = {10.5281/zenodo.7890874},
  url       = {https://doi.org/10.5281/zenodo.7890874}
}"""
    sources = (
        Source(ARCHIVE, url="https://doi.org/10.5281/zenodo.7890874", name_published=False,
               description="files of the Zenodo record (names, sizes and checksums not known to cytohub)"),
    )
    manual_download = """Download every file of the Zenodo record https://doi.org/10.5281/zenodo.7890874 into one
folder (archives may stay packed) and pass it with --raw, or put it at $CYTOHUB_HOME/raw/breast-cyto. The
builder expects grade folders G1/, G2/, G3/ of images, ideally below a folder naming the kind of image
(e.g. "Cytological images/", "Histological images/"). Check the license shown on the Zenodo page before reuse.
If the record is laid out differently, the build stops and names the first file it cannot place."""
    task_categories = ("image-classification",)
    tags = ("cytology", "histology", "breast-cancer", "tumour-grade", "microscopy", "medical")
    organ = "breast"
    stain = None  # not documented in the sources available to cytohub
    preparation = "cytological preparations and histological sections (not further documented)"
    scanner = "light microscope with digital camera"
    magnification = "40x objective"
    mpp = None
    num_images = None
    layout = "unverified"
    expected_layout = """
    breast_cancer_images.zip (or its folder)/
      [Cytological images/ | Histological images/]
        G1/<image>   G2/<image>   G3/<image>
"""
    assumptions = (
        "The Zenodo record was not readable here; its layout, file names, counts and license are unknown.",
        "Classes G1, G2, G3 (tumour grade) come from a 2023 paper of the same group describing 'the dataset on "
        "Zenodo' as three classes of histological images; that the cytological images use the same grade "
        "folders is a guess. Accepted folder spellings: G1, Grade 1, grade_1 (any case); any other image folder "
        "is an error.",
        "Cytology vs histology is read from a folder above the grade folder whose name starts with 'cyto' or "
        "'hist' (e.g. 'Cytological images'); without one, extra.modality is null.",
        "Image size 3264 x 2448 px and the 40x objective come from a curated dataset list, not checked; image "
        "format is unknown (PNG, JPEG, TIFF, BMP accepted; synthetic data use JPEG).",
        "Harmonized: graded cancer seen in a cytological image is IAC Yokohama 'Malignant'; histological images "
        "and images of unknown kind get no harmonized node (Yokohama is a cytology system).",
        "No patient identifiers are known: images of one patient may land in different splits.",
    )
    labels = tuple(Label(g, (g,), None, f"breast carcinoma, grade {g[1]}") for g in GRADES)

    def examples(self, raw: RawTree) -> Iterator[dict]:
        def id_of(f: RawFile, label: str) -> str:
            return f"{modality_of(f) or 'unknown'}/{slug(label)}/{f.name}"

        items = class_images(raw, ALIASES, corpus=self.name, id_of=id_of,
                             layout="grade folders of images, optionally below cytology/histology folders")
        items.sort(key=lambda it: modality_of(it.file) or "~")  # stable sort: grade and name order kept inside
        for it in items:
            modality = modality_of(it.file)
            yield {
                "id": it.id,
                "image": it.file,
                "label": it.label,
                "label_path": [modality, it.label] if modality else [it.label],
                "harmonized": "breast/malignant" if modality == "cytology" else None,
                "source_path": it.file.path,
                "extra": {"modality": modality, "class_folder": it.folder},
            }

    def synthesize(self, root: Path, scale: str = "small", seed: int = 0) -> None:
        size = FULL_SIZE if scale == "full" else SMALL_SIZE
        pool = synth.ImagePool(scale, size=8)  # full scale: 8 drawn 8-megapixel images per folder, reused
        entries = []
        for mi, folder in enumerate(MODALITY_FOLDERS.values()):
            for gi, grade in enumerate(GRADES):
                for n in range(1, image_counts(scale) + 1):
                    data = pool((mi, gi), n, lambda k, mi=mi, gi=gi: cytology_picture(
                        self.name, seed, 10 * mi + gi, k, size, "JPEG", malignant=0.4 + 0.3 * gi))
                    entries.append((f"{folder}/{grade}/{n}.jpg", data))
        synth.write_zip(root / ARCHIVE, entries)
        synth.write_marker(root, self.name, scale, seed)
