"""Urine Cyto: "Replication Data for: Urine cytology in our daily practice" (Siddig 2019, Harvard Dataverse).

The Dataverse record (doi:10.7910/DVN/JHZCCM) backs Siddig et al., F1000Research 2019: 1,238 Papanicolaou-
stained voided urine samples from Omdurman Teaching Hospital, Sudan, with diagnoses such as candidiasis,
reactive urothelial cells, cryptococcosis, urothelial carcinoma, HPV, polyomavirus (BKV), schistosomiasis and
low-grade urothelial cells. Its file list was not readable here; the record carries a UNF, so it holds at least
one tabular (per-sample) file, which has no images. This builder reads images in one folder per diagnosis, as
Dataverse's "download all" zip (`dataverse_files.zip`, with `MANIFEST.TXT`) would deliver them; tabular files
are skipped with a reason. If the record holds no images, the build stops and says so.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from cytohub import synth
from cytohub.builder import Builder, Label, Source
from cytohub.class_folders import class_images
from cytohub.raw import RawFile, RawTree
from cytohub.synthetic_pictures import cytology_picture

# class -> (harmonized Paris System 2.0 node, accepted folder spellings, samples with that diagnosis in the paper)
CLASSES: dict[str, tuple[str | None, tuple[str, ...], int | None]] = {
    "Negative": ("urine/NHGUC", ("normal", "negative for malignancy", "no abnormality"), None),
    "Candidiasis": ("urine/NHGUC/organism", ("candida", "candida albicans"), 43),
    "Reactive urothelial cells": ("urine/NHGUC/reactive", ("reactive", "reactive urothelial cell"), 36),
    "Cryptococcosis": ("urine/NHGUC/organism", ("cryptococcus", "cryptococcus neoformans"), 11),
    "Urothelial carcinoma": ("urine/neoplasm", ("UC", "urothelial carcinomas"), 9),
    "HPV": (None, ("human papilloma virus", "human papillomavirus", "koilocytes"), 9),
    "Polyomavirus (BKV)": ("urine/NHGUC/polyomavirus", ("polyomavirus", "polyoma virus", "BKV", "BK virus",
                                                        "decoy cells"), 8),
    "Schistosomiasis": ("urine/NHGUC/organism", ("schistosoma", "schistosoma haematobium", "bilharzia"), 6),
    "Low grade urothelial cells": ("urine/LGUN", ("low grade", "low grade urothelial cell", "LGUN"), 3),
}
ALIASES = {name: spellings for name, (_, spellings, _) in CLASSES.items()}
ARCHIVE = "dataverse_files.zip"
TABLE = "Urine cytology data.tab"


def full_scale_rows() -> int:
    """Rows of a full-scale synthetic build: one image per sample of each diagnosis in the paper, and 40
    negatives (a placeholder); no image counts are published."""
    return sum(image_counts("full").values())


def image_counts(scale: str) -> dict[str, int]:
    """Images per class in synthetic data. No image counts are published: full = one image per sample with
    that diagnosis in the paper (and 40 negatives, a placeholder); small = 2 per class."""
    if scale == "full":
        return {name: n if n is not None else 40 for name, (_, _, n) in CLASSES.items()}
    return dict.fromkeys(CLASSES, 2)


def _dataverse_extras(f: RawFile) -> str | None:
    if f.name.upper() == "MANIFEST.TXT":
        return "Dataverse download manifest (list of files), no image"
    return None


class UrineCyto(Builder):
    name = "urine-cyto"
    pretty_name = "Urine Cyto: Urine Cytology in Daily Practice (Siddig 2019, Harvard Dataverse)"
    version = "1.0.0"
    summary = ("Papanicolaou-stained voided urine cytology from Sudan, by diagnosis (infections, reactive "
               "changes, urothelial neoplasia); image content of the record unverified")
    homepage = "https://doi.org/10.7910/DVN/JHZCCM"
    license = "unknown"
    redistribution = "forbidden"
    attribution = ("Siddig E.E. (2019), Replication Data for: Urine cytology in our daily practice, Harvard Dataverse, "
                   "V1, doi:10.7910/DVN/JHZCCM; study: Siddig E.E. et al., F1000Research 8:1878 (2019). "
                   "License: see the terms of the Dataverse record.")
    citation = """@misc{siddig2019urinedata,
  title     = {Replication Data for: Urine cytology in our daily practice},
  author    = {Siddig, Emmanuel Edwar},
  year      = {2019},
  publisher = {Harvard Dataverse},
  version   = {V1},
  doi       = {10.7910/DVN/JHZCCM},
  url       = {https://doi.org/10.7910/DVN/JHZCCM}
}
@article{siddig2019urine,
  title   = {Urine cytological examination: an appropriate method that can be used to detect a wide range of
             urinary abnormalities},
  author  = {Siddig, Emmanuel Edwar and Mohamed, Nouh S. and Ali, Eman Taha and Mohamed, Mona A. and
             Muneer, Mohamed S. and Munir, Abdulla and Edris, Ali Mahmoud Mohammed and Ahmed, Eiman S. and
             Elnour, Lubna S. and Hassan, Rowa},
  journal = {F1000Research},
  volume  = {8},
  pages   = {1878},
  year    = {2019},
  doi     = {10.12688/f1000research.20276.1}
}"""
    sources = (
        Source(ARCHIVE, url="https://doi.org/10.7910/DVN/JHZCCM", name_published=False,
               description="Dataverse 'Access Dataset > Download ZIP' of the whole record (contents not known to "
                           "cytohub)"),
    )
    manual_download = """Open https://doi.org/10.7910/DVN/JHZCCM, accept the terms of use if asked, and use
"Access Dataset" > "Download ZIP" (dataverse_files.zip). Pass the zip or its extracted folder with --raw, or
put it at $CYTOHUB_HOME/raw/urine-cyto. The builder expects urine cytology images in one folder per diagnosis
(e.g. Candidiasis/, Schistosomiasis/); tabular files and MANIFEST.TXT are skipped. If the record holds only
the study's tabular data, there is no image to build and the build says so."""
    task_categories = ("image-classification",)
    tags = ("cytology", "urine-cytology", "urothelial-carcinoma", "infection", "papanicolaou", "microscopy",
            "medical")
    organ = "urinary tract (voided urine)"
    stain = "Papanicolaou"
    preparation = "voided urine cytology"
    scanner = None
    magnification = None
    mpp = None
    num_images = None
    layout = "unverified"
    expected_layout = """
    dataverse_files.zip (or its folder)/
      <diagnosis>/<image>             one folder per diagnosis
      MANIFEST.TXT, *.tab             skipped
"""
    assumptions = (
        "The Dataverse record's file list was not readable here. Its citation carries a UNF, i.e. at least one "
        "ingested tabular file (per-sample study variables); that it also holds images is an assumption taken "
        "from a curated list of image datasets. A record without images cannot be built (clear error).",
        "Images are assumed to sit in one folder per diagnosis, with the diagnoses of the paper as class names "
        "(plus 'Negative'); folder spellings are matched tolerantly (e.g. Candida, BKV, Schistosoma).",
        "Image format unknown: PNG, JPEG, TIFF and BMP accepted; synthetic data use JPEG.",
        "The Dataverse 'Download ZIP' adds MANIFEST.TXT (skipped); ingested tabular files (.tab) are skipped.",
        "Harmonized to the Paris System 2.0: infections and reactive changes under 'Negative for HGUC' (the paper "
        "gives one diagnosis per sample, none of them carcinoma); 'Urothelial carcinoma' (grade not stated) to "
        "the cytohub grouping 'urine/neoplasm'; 'Low grade urothelial cells' to LGUN; HPV unmapped, because "
        "koilocytes in urine do not on their own place a sample in a Paris category.",
        "No patient identifiers are assumed, so splits are by image.",
    )
    labels = tuple(Label(name, (name,), node) for name, (node, _, _) in CLASSES.items())

    def examples(self, raw: RawTree) -> Iterator[dict]:
        items = class_images(raw, ALIASES, corpus=self.name, exclude=_dataverse_extras,
                             layout="one folder of images per diagnosis (the record may hold only tabular study "
                                    "data, which has no images)")
        for it in items:
            yield it.row()

    def synthesize(self, root: Path, scale: str = "small", seed: int = 0) -> None:
        size = (1024, 768) if scale == "full" else (112, 84)
        counts = image_counts(scale)
        pool = synth.ImagePool(scale)  # full scale: 32 drawn images per class, reused
        entries = []
        files = []
        for ci, name in enumerate(CLASSES):
            malignant = 1.0 if name == "Urothelial carcinoma" else 0.6 if name.startswith("Low grade") else 0.0
            for n in range(1, counts[name] + 1):
                path = f"{name}/{n:03d}.jpg"
                entries.append((path, pool(ci, n, lambda k, ci=ci, m=malignant: cytology_picture(
                    self.name, seed, ci, k, size, "JPEG", malignant=m))))
                files.append(path)
        rows = ["sample_id\tsex\tage\tdiagnosis"]
        for i, name in enumerate(n for n in CLASSES for _ in range(counts[n])):
            rows.append(f"{i + 1}\t{1 + i % 2}\t{30 + i % 40}\t\"{name}\"")
        entries.append((TABLE, ("\n".join(rows) + "\n").encode()))
        files.append(TABLE)
        manifest = "\n".join(f"{f} (image/jpeg)" if f.endswith(".jpg") else f"{f} (text/tab-separated-values)"
                             for f in files)
        entries.insert(0, ("MANIFEST.TXT", f"Files in this archive:\n\n{manifest}\n".encode()))
        synth.write_zip(root / ARCHIVE, entries)
        synth.write_marker(root, self.name, scale, seed)
