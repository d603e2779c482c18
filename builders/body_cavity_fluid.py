"""Body Cavity Fluid Cytology Images (Kaggle `cmacus/body-cavity-fluid-cytology-images`, Sanyal et al. 2021).

Microphotographs of body cavity fluid (effusion) smears, benign vs malignant. The Kaggle download is a zip of
two class folders (`benign/`, `Malignant/`: the case differs between them in public loaders), one image per
file. One row per image; the class is the folder name, compared case-insensitively.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from cytohub import synth
from cytohub.builder import Builder, Label, Source
from cytohub.class_folders import class_images
from cytohub.raw import RawTree
from cytohub.synthetic_pictures import cytology_picture

CLASSES = ("benign", "malignant")
ALIASES = {"benign": (), "malignant": ()}
SIZE = (256, 192)  # width x height, as stated on the Kaggle page (via the curated list)
ZIP_NAME = "body-cavity-fluid-cytology-images.zip"
FOLDERS = {"benign": "benign", "malignant": "Malignant"}  # on-disk spelling reproduced by the synthetic data


def full_scale_rows() -> int:
    """Rows of a full-scale synthetic build: the 693 microphotographs of the related preprint (the Kaggle
    download's own count is not published)."""
    return sum(image_counts("full").values())


def image_counts(scale: str) -> dict[str, int]:
    """Images per class in synthetic data. full: the 693 microphotographs of the related preprint, split
    evenly (the Kaggle per-class counts are not published); small: 4 per class."""
    if scale == "full":
        return {"benign": 346, "malignant": 347}
    return {"benign": 4, "malignant": 4}


class BodyCavityFluid(Builder):
    name = "body-cavity-fluid"
    pretty_name = "Body Cavity Fluid Cytology Images (benign vs malignant effusion smears)"
    version = "1.0.0"
    summary = "Microphotographs of body cavity fluid (effusion) smears labelled benign or malignant"
    homepage = "https://www.kaggle.com/datasets/cmacus/body-cavity-fluid-cytology-images"
    license = "unknown"
    redistribution = "forbidden"
    attribution = ("Body cavity fluid cytology images, Kaggle dataset cmacus/body-cavity-fluid-cytology-images, "
                   "from Sanyal P. et al., 'A machine learning model for screening of body fluid cytology smears' "
                   "(bioRxiv 2021). License not stated in the sources available to cytohub.")
    citation = """@article{sanyal2021bodyfluid,
  title   = {A machine learning model for screening of body fluid cytology smears},
  author  = {Sanyal, Parikshit and Paul, Sayak and Rana, Vandana and Kulhari, Kanchan},
  journal = {bioRxiv},
  year    = {2021},
  note    = {Preprint, July 2021; images on Kaggle: cmacus/body-cavity-fluid-cytology-images}
}"""
    sources = (
        Source(ZIP_NAME, url=homepage, aliases=("archive.zip", "benign/"),
               description="Kaggle download (zip of the class folders benign/ and Malignant/); size not published"),
    )
    manual_download = """Sign in to Kaggle and download the dataset
https://www.kaggle.com/datasets/cmacus/body-cavity-fluid-cytology-images (button "Download", or
`kaggle datasets download cmacus/body-cavity-fluid-cytology-images`). Pass the zip (archive.zip or
body-cavity-fluid-cytology-images.zip) or the extracted folder with --raw, or put it at
$CYTOHUB_HOME/raw/body-cavity-fluid. Check the license shown on the Kaggle page before any reuse."""
    task_categories = ("image-classification",)
    tags = ("cytology", "effusion", "serous-fluid", "body-fluid", "pleural-effusion", "ascites", "microscopy",
            "medical", "binary-classification")
    organ = "serous body cavities (pleural and peritoneal effusions)"
    stain = "Leishman (Kaggle description; the related preprint says May-Grunwald-Giemsa)"
    preparation = "smears of body cavity fluid"
    scanner = "microscope camera (microphotographs)"
    magnification = "40x"
    mpp = None
    num_images = None  # the Kaggle count is not published; the related preprint reports 693 microphotographs
    layout = "unverified"
    expected_layout = """
    body-cavity-fluid-cytology-images.zip (or its folder)/
      benign/<image>        Malignant/<image>       (class folders, any case; png/jpg/tif/bmp)
"""
    assumptions = (
        "Layout reconstructed from third-party loaders (mdausort/Cytology_Benchmark): the download holds two "
        "class folders, benign and malignant; one loader spells them 'benign' and 'Malignant', so folder "
        "names are compared case-insensitively. Any other image folder is an error.",
        "Image format is not documented (one loader globbed PNG): PNG, JPEG, TIFF and BMP are all accepted.",
        "Image size 256 x 192 px comes from the Kaggle description quoted in a curated list, not checked.",
        "Whether the Kaggle upload equals the preprint's 693 microphotographs from 21 cases (14 malignant, "
        "7 benign) is unknown; no case or patient identifiers are published, so splits cannot be grouped by "
        "patient and images of one case may land in different splits.",
        "Stain: Leishman according to the Kaggle description; the related preprint abstract says MGG.",
        "Harmonized: 'benign' is read as ISRSFC 'Negative for malignancy' (only benign cellular elements) and "
        "'malignant' as ISRSFC 'Malignant'; the source does not use ISRSFC terms itself.",
    )
    labels = (
        Label("benign", ("benign",), "serous/NFM", "smear from a benign (non-malignant) effusion"),
        Label("malignant", ("malignant",), "serous/MAL", "smear from a malignant effusion"),
    )

    def examples(self, raw: RawTree) -> Iterator[dict]:
        items = class_images(raw, ALIASES, corpus=self.name, layout="benign/ and malignant/ folders of images")
        for it in items:
            yield it.row()

    def synthesize(self, root: Path, scale: str = "small", seed: int = 0) -> None:
        counts = image_counts(scale)
        pool = synth.ImagePool(scale)  # full scale: 32 drawn images per class and format, reused
        entries = []
        for ci, cls in enumerate(CLASSES):
            for n in range(1, counts[cls] + 1):
                fmt, ext = ("PNG", "png") if n % 2 else ("JPEG", "jpg")  # mixed formats, as loaders suggest
                data = pool((ci, fmt), n, lambda k, ci=ci, fmt=fmt: cytology_picture(
                    self.name, seed, ci, k, SIZE, fmt, malignant=float(ci)))
                entries.append((f"{FOLDERS[cls]}/{n:03d}.{ext}", data))
        synth.write_zip(root / ZIP_NAME, entries)
        synth.write_marker(root, self.name, scale, seed)
