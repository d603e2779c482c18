"""TF Cytology (Szczęsna-Iskander 2024, Zenodo record 10813218): content and layout unknown.

The record could not be read: what it contains is not documented anywhere cytohub could look. Its author works
on tear film and ocular surface research, so "TF" very probably means tear film. This builder reads the most
common kind of labelled ocular-surface cytology image set: conjunctival impression cytology graded by the
Nelson scale, one folder per grade (Grade 0/ .. Grade 3/). Every part of that is a guess (see `assumptions`);
a download laid out differently stops the build with an error naming the first file that does not fit.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from cytohub import synth
from cytohub.builder import Builder, Label, Source
from cytohub.class_folders import class_images
from cytohub.raw import RawTree
from cytohub.synthetic_pictures import cytology_picture

GRADES = ("Grade 0", "Grade 1", "Grade 2", "Grade 3")
NELSON = {  # Nelson 1988 grading of conjunctival impression cytology
    "Grade 0": "normal: small round epithelial cells, many goblet cells",
    "Grade 1": "slightly larger, more polygonal epithelial cells, fewer goblet cells",
    "Grade 2": "larger polygonal, sometimes multinucleated cells, few goblet cells",
    "Grade 3": "large polygonal cells, small pyknotic nuclei, goblet cells absent (squamous metaplasia)",
}
ALIASES = {g: (g, f"grade_{g[-1]}", f"nelson {g[-1]}", f"nelson grade {g[-1]}", f"G{g[-1]}", g[-1]) for g in GRADES}
ARCHIVE = "TF_Cytology.zip"


def full_scale_rows() -> int:
    """Rows of a full-scale synthetic build: 50 images per grade (a placeholder: nothing is published)."""
    return image_counts("full") * len(GRADES)


def image_counts(scale: str) -> int:
    """Images per grade in synthetic data. Nothing is published: full = 50 (placeholder), small = 2."""
    return 50 if scale == "full" else 2


class TFCytology(Builder):
    name = "tf-cytology"
    pretty_name = "TF Cytology (Szczęsna-Iskander 2024): ocular surface cytology images (layout unverified)"
    version = "1.0.0"
    summary = "Zenodo record 10813218; assumed conjunctival impression cytology graded on the Nelson scale"
    homepage = "https://doi.org/10.5281/zenodo.10813218"
    license = "unknown"
    redistribution = "forbidden"
    attribution = ("Szczęsna-Iskander D. (2024), TF Cytology [Data set], Zenodo, doi:10.5281/zenodo.10813218 "
                   "(Wroclaw University of Science and Technology). License: see the Zenodo record.")
    citation = """@misc{szczesnaiskander2024tfcytology,
  title     = {{TF} Cytology},
  author    = {Szcz{\\k{e}}sna-Iskander, Dorota},
  year      = {2024},
  publisher = {Zenodo},
  note      = {Data set},
  doi       = {10.5281/zenodo.10813218},
  url       = {https://doi.org/10.5281/zenodo.10813218}
}"""
    sources = (
        Source(ARCHIVE, url="https://doi.org/10.5281/zenodo.10813218", name_published=False,
               description="files of the Zenodo record (names, sizes and checksums unknown to cytohub)"),
    )
    manual_download = """Download every file of the Zenodo record https://doi.org/10.5281/zenodo.10813218 into one
folder (archives may stay packed) and pass it with --raw, or put it at $CYTOHUB_HOME/raw/tf-cytology.
The builder expects one folder of images per Nelson grade (Grade 0/, Grade 1/, Grade 2/, Grade 3/; also
accepted: 0..3, G0..G3, Nelson 0..3). The real layout of this record is unknown to cytohub: if the build
stops on the first file it cannot place, please report the record's actual file list so the builder can
be corrected. Check the license on the Zenodo page before reuse."""
    task_categories = ("image-classification",)
    tags = ("cytology", "ophthalmology", "ocular-surface", "tear-film", "impression-cytology", "microscopy",
            "medical")
    organ = "ocular surface (conjunctiva), assumed"
    stain = None
    preparation = None
    scanner = None
    magnification = None
    mpp = None
    num_images = None
    layout = "unverified"
    expected_layout = """
    TF_Cytology.zip (or its folder; guessed)/
      Grade 0/<image>  Grade 1/<image>  Grade 2/<image>  Grade 3/<image>
"""
    assumptions = (
        "Nothing about the record's content is documented in the sources available to cytohub: no description, "
        "file list, counts, classes or license.",
        "'TF' is read as tear film because the author works on tear film and ocular surface research.",
        "The images are assumed to be conjunctival impression cytology graded on the Nelson scale (0-3), the "
        "usual label of ocular-surface cytology; this is a guess, not a documented fact.",
        "Layout assumed: one folder per grade (Grade 0/ .. Grade 3/, or 0..3, G0..G3, Nelson 0..3, any case) "
        "holding PNG, JPEG, TIFF or BMP images, packed in one archive (synthetic: TF_Cytology.zip, PNG files).",
        "No subject or eye identifiers are assumed, so splits are by image.",
        "No harmonized node: cytohub has no ocular-surface taxonomy.",
    )
    labels = tuple(Label(g, ("Nelson grade", g), None, NELSON[g]) for g in GRADES)

    def examples(self, raw: RawTree) -> Iterator[dict]:
        items = class_images(raw, ALIASES, corpus=self.name,
                             layout="one folder of images per Nelson grade (layout unverified)")
        for it in items:
            yield it.row()

    def synthesize(self, root: Path, scale: str = "small", seed: int = 0) -> None:
        size = (1024, 768) if scale == "full" else (96, 96)
        pool = synth.ImagePool(scale)  # full scale: 32 drawn images per grade, reused
        entries = []
        for gi, grade in enumerate(GRADES):
            for n in range(1, image_counts(scale) + 1):
                entries.append((f"{grade}/{n:03d}.png", pool(gi, n, lambda k, gi=gi: cytology_picture(
                    self.name, seed, gi, k, size, "PNG", malignant=gi / 6))))
        synth.write_zip(root / ARCHIVE, entries)
        synth.write_marker(root, self.name, scale, seed)
