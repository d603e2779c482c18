"""FNAC-2019: breast fine needle aspiration cytology images, benign vs malignant (Saikia et al. 2019).

212 images (99 benign, 113 malignant). The copy distributed through the TCT-InfoNCE repository (Baidu Pan) is
read by its scripts as `FNAC-2019/base_data/B/<n>.<ext>` and `FNAC-2019/base_data/M/<n>.<ext>`. One row per
image; B = benign, M = malignant.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from cytohub import synth
from cytohub.builder import Builder, Label, Published, Source
from cytohub.class_folders import class_images
from cytohub.raw import RawFile, RawTree
from cytohub.synthetic_pictures import cytology_picture

CLASSES = ("benign", "malignant")
ALIASES = {"benign": ("B",), "malignant": ("M",)}
FOLDERS = {"benign": "B", "malignant": "M"}
PUBLISHED = {"benign": 99, "malignant": 113}
ARCHIVE = "FNAC-2019.zip"
DERIVED = ("split_data", "fnac-crop")  # folders written by the TCT-InfoNCE cropping scripts, not the download


def image_counts(scale: str) -> dict[str, int]:
    """Images per class in synthetic data: the published 99 / 113 at full scale, 4 each at small scale."""
    return dict(PUBLISHED) if scale == "full" else {"benign": 4, "malignant": 4}


def _derived(f: RawFile) -> str | None:
    if any(p.lower() in DERIVED for p in f.parts[:-1]):
        return "derived crop written by the TCT-InfoNCE preprocessing scripts, not part of the FNAC-2019 download"
    return None


class FNAC2019(Builder):
    name = "fnac2019"
    pretty_name = "FNAC-2019: Breast Fine Needle Aspiration Cytology Images (benign vs malignant)"
    version = "1.0.0"
    summary = "212 breast FNAC microscopy images, 99 benign and 113 malignant"
    homepage = "https://github.com/CVIU-CSU/TCT-InfoNCE"
    license = "unknown"
    redistribution = "forbidden"
    attribution = ("FNAC-2019 breast FNAC image set of Saikia A.R., Bora K., Mahanta L.B. and Das A.K. (Institute of "
                   "Advanced Study in Science and Technology, Guwahati, and Arya Wellness Center, Guwahati), as "
                   "redistributed by the TCT-InfoNCE project (CVIU-CSU). License not stated.")
    citation = """@article{saikia2019fnac,
  title   = {Comparative assessment of {CNN} architectures for classification of breast {FNAC} images},
  author  = {Saikia, Amartya Ranjan and Bora, Kangkana and Mahanta, Lipi B. and Das, Anup Kumar},
  journal = {Tissue and Cell},
  volume  = {57},
  pages   = {8--14},
  year    = {2019},
  note    = {PMID 30947968}
}
@article{huang2024tctinfonce,
  title   = {An efficient framework based on large foundation model for cervical cytopathology whole slide image
             screening},
  author  = {Huang, Jialong and others},
  journal = {arXiv preprint arXiv:2407.11486},
  year    = {2024}
}"""
    sources = (
        Source(ARCHIVE, url="https://github.com/CVIU-CSU/TCT-InfoNCE", name_published=False,
               description="FNAC-2019 folder from the Baidu Pan link in the TCT-InfoNCE README (archive name and "
                           "size not published)"),
    )
    manual_download = """Follow the "Train FNAC-2019" section of https://github.com/CVIU-CSU/TCT-InfoNCE: download
FNAC-2019 from the Baidu Pan link given there. Pass the downloaded archive or the FNAC-2019 folder (which holds
base_data/B/ and base_data/M/) with --raw, or put it at $CYTOHUB_HOME/raw/fnac2019. Folders made by the
TCT-InfoNCE scripts (split_data/, FNAC-CROP/) are skipped. The license is not stated: ask the authors
(Saikia et al., Tissue and Cell 2019) before any reuse."""
    task_categories = ("image-classification",)
    tags = ("cytology", "breast-cancer", "fnac", "fine-needle-aspiration", "microscopy", "medical",
            "binary-classification")
    organ = "breast"
    stain = None  # not stated in the sources available to cytohub
    preparation = "fine needle aspiration cytology (FNAC) smears"
    scanner = None
    magnification = None
    mpp = None
    num_images = 212
    published = Published(rows=212, per_class={"benign": 99, "malignant": 113}, unit="images",
                          source="labels/label.csv of the TCT-InfoNCE repository (99 B + 113 M)")
    layout = "unverified"
    expected_layout = """
    FNAC-2019.zip (or its folder) / FNAC-2019/base_data/
      B/<n>.<ext>     benign
      M/<n>.<ext>     malignant
"""
    assumptions = (
        "The folder layout FNAC-2019/base_data/{B,M}/ is taken from the TCT-InfoNCE preprocessing scripts "
        "(verified in their code), not from documentation of the download itself; the class is read from the "
        "B or M folder wherever it is, so the outer folders do not matter.",
        "Archive type and name of the Baidu Pan download are not published; folders, zip, 7z and tar all work. "
        "The synthetic data use FNAC-2019.zip.",
        "Image format is not published: PNG, JPEG, TIFF and BMP are accepted; the synthetic data use JPEG named "
        "1.jpg, 2.jpg, ... (the numbering 1..99 and 1..113 is inferred).",
        "Image size is not published; synthetic full-scale images are 1024 x 768 px (a guess).",
        "Labels are image-level benign/malignant as given by the authors; Yokohama categories 'Benign' and "
        "'Malignant' are used as harmonized nodes although the source predates that system.",
        "No patient identifiers are published: images of one patient may land in different splits.",
    )
    labels = (
        Label("benign", ("benign",), "breast/benign", "folder B"),
        Label("malignant", ("malignant",), "breast/malignant", "folder M"),
    )

    def examples(self, raw: RawTree) -> Iterator[dict]:
        items = class_images(raw, ALIASES, corpus=self.name, layout="FNAC-2019/base_data/B/ and .../M/ image folders",
                             exclude=_derived, shown=FOLDERS)
        for it in items:
            yield it.row()

    def synthesize(self, root: Path, scale: str = "small", seed: int = 0) -> None:
        size = (1024, 768) if scale == "full" else (128, 96)
        pool = synth.ImagePool(scale)  # full scale: 32 drawn images per class, reused
        entries = []
        for ci, cls in enumerate(CLASSES):
            for n in range(1, image_counts(scale)[cls] + 1):
                entries.append((f"FNAC-2019/base_data/{FOLDERS[cls]}/{n}.jpg",
                                pool(ci, n, lambda k, ci=ci: cytology_picture(self.name, seed, ci, k, size, "JPEG",
                                                                  malignant=float(ci)))))
        synth.write_zip(root / ARCHIVE, entries)
        synth.write_marker(root, self.name, scale, seed)
