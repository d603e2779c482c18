"""Cervix93 Cytology Dataset (Phoulady & Mouton, arXiv:1811.09651, 2018).

93 frames of ThinPrep Pap-stained cervical cytology at 40x, each an image stack (10-20 focal planes) plus the
stack's Extended Depth of Field (EDF) image, graded Negative / LSIL / HSIL, with 2,705 hand-marked nucleus points.
GitHub repository parham-ap/cytology_dataset:

    dataset/labels.csv                  frame,label,set   (H/L/N; set 0 = training, 1 = test)
    dataset/EDF/frameNNN.png            the EDF image;  dataset/EDF/frameNNN.csv  one `row,col` per nucleus
    dataset/frameNNN_stack/fovNNN.png   the focal planes (count varies per frame)
Point CSVs are (row, col), 1-based MATLAB indices (EvaluateDetection.m indexes foreground(gt(m,1), gt(m,2))).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from cytohub import images, synth
from cytohub.builder import Builder, Label, Published, Source
from cytohub.errors import RawLayoutError
from cytohub.formats import csvfile, geometry
from cytohub.raw import RawFile, RawTree

GRADES = {"N": "Negative", "L": "LSIL", "H": "HSIL"}
HARMONIZED = {"Negative": "NILM", "LSIL": "LSIL", "HSIL": "HSIL"}
SETS = {"0": "train", "1": "test"}
_FRAME = re.compile(r"^frame(\d+)$", re.IGNORECASE)
_STACK = re.compile(r"^(frame\d+)_stack$", re.IGNORECASE)
_PLANE = re.compile(r"^fov(\d+)\.png$", re.IGNORECASE)
# full scale: frames 000-030 HSIL, 031-076 LSIL, 077-092 Negative; training frames per grade (README)
FRAME_RANGES = {"H": range(0, 31), "L": range(31, 77), "N": range(77, 93)}
TRAIN_FRAMES = {"H": 23, "L": 34, "N": 12}
POINTS = {"H": 931, "L": 1536, "N": 238}


def read_points(f: RawFile, size: tuple[int, int]) -> list[dict]:
    """`row,col` (1-based) per line -> nucleus points [col - 1, row - 1]."""
    out = []
    for n, line in enumerate(f.lines(), start=1):
        if not line.strip():
            continue
        where = f"{f.path}:{n}"
        values = line.replace(";", ",").split(",")
        if len(values) != 2:
            raise RawLayoutError(f"{where}: expected two integers 'row,col' (1-based), got {line!r}")
        out.append({"category": "nucleus",
                    "point": geometry.one_based_row_col(values[0], values[1], size, "nucleus", where)})
    return out


class Cervix93(Builder):
    name = "cervix93"
    pretty_name = "Cervix93 Cytology Dataset"
    summary = "93 cervical cytology image stacks with EDF images, frame grades and 2,705 nucleus points"
    homepage = "https://github.com/parham-ap/cytology_dataset"
    license = "unknown"
    redistribution = "forbidden"
    attribution = ("Phoulady H. A. and Mouton P. R., Cervix93 Cytology Dataset, "
                   "https://github.com/parham-ap/cytology_dataset (no license stated; cite arXiv:1811.09651).")
    citation = """@article{phoulady2018cervix93,
  title   = {A New Cervical Cytology Dataset for Nucleus Detection and Image Classification (Cervix93) and
             Methods for Cervical Nucleus Detection},
  author  = {Phoulady, Hady Ahmady and Mouton, Peter R.},
  journal = {arXiv preprint arXiv:1811.09651},
  year    = {2018}
}"""
    sources = (Source("cytology_dataset-master.zip",
                      url="https://github.com/parham-ap/cytology_dataset/archive/refs/heads/master.zip",
                      direct=True,
                      description="GitHub snapshot of the repository (about 800 MB); `git clone` works too"),)
    manual_download = """Clone https://github.com/parham-ap/cytology_dataset (git clone, about 800 MB) or
download the GitHub zip (cytology_dataset-master.zip). Pass the zip, the repository folder or its dataset/
folder with --raw (or put it at $CYTOHUB_HOME/raw/cervix93). The repository states no license: check with the
authors before redistributing a build."""
    task_categories = ("image-classification", "object-detection")
    tags = ("cytology", "cervical-cancer", "liquid-based-cytology", "thinprep", "papanicolaou", "z-stack",
            "extended-depth-of-field", "nucleus-detection", "points", "microscopy", "medical")
    organ = "uterine cervix"
    stain = "Papanicolaou"
    preparation = "liquid-based cytology (ThinPrep)"
    magnification = "40x"
    num_images = 93
    published = Published(
        files=("cytology_dataset-master.zip",), rows=93, rows_per_split={"train": 69, "test": 24},
        per_class={"Negative": 16, "LSIL": 46, "HSIL": 31}, unit="frames",
        source="README of parham-ap/cytology_dataset (93 frames: 16 / 46 / 31; set 0: 69, set 1: 24)")
    layout = "verified"
    expected_layout = """
    cytology_dataset-master.zip (or its folder)/dataset/
      labels.csv                         frame,label,set
      EDF/frameNNN.png, EDF/frameNNN.csv
      frameNNN_stack/fovNNN.png          focal planes
"""
    assumptions = (
        "The focal-plane spacing of the stacks is not published: `z_um` is null (no distances are invented); "
        "`extra.z_index` holds the plane index (0, 1, 2, ... in fovNNN order), an ordinal z, not micrometres "
        "and not an offset from best focus.",
        "Planes are ordered by the number in fovNNN.png, taken to be focal order (not stated in the source).",
        "`image` is the source's own EDF image; the nucleus points refer to it. The stack planes have the "
        "same size as the EDF image; a different size fails validation.",
        "Point CSVs are (row, col) 1-based (EvaluateDetection.m), stored as points [col - 1, row - 1]; a point "
        "outside the EDF image is an error.",
        "Nuclei carry no class of their own: their category is `nucleus` (no harmonized node); the frame's "
        "grade is the image-level label.",
        "No license file: license is 'unknown' and redistribution is treated as forbidden.",
        "Pixel size is not published (mpp is null).",
    )
    labels = tuple(Label(name, (name,), HARMONIZED[name], description=f"labels.csv code {code}")
                   for code, name in (("N", "Negative"), ("L", "LSIL"), ("H", "HSIL")))
    object_labels = (Label("nucleus", ("nucleus",), None, description="manually marked point inside a nucleus"),)
    splits = ("train", "test")

    # ------------------------------------------------------------------ raw -> rows
    def examples(self, raw: RawTree) -> Iterator[dict]:
        labels_file = raw.one("labels.csv", "Cervix93 frame grades: dataset/labels.csv")
        frames = self._labels(labels_file)
        edf_png: dict[str, RawFile] = {}
        edf_csv: dict[str, RawFile] = {}
        stacks: dict[str, dict[int, RawFile]] = {}
        for f in raw.files():
            parent = f.parts[-2] if len(f.parts) > 1 else ""
            m = _FRAME.match(f.stem)
            if parent.upper() == "EDF" and m and f.suffix in (".png", ".csv"):
                (edf_png if f.suffix == ".png" else edf_csv)[f.stem.lower()] = f
            elif _STACK.match(parent):
                p = _PLANE.match(f.name)
                if not p:
                    raise RawLayoutError(f"{f.path}: unexpected file in a stack folder; expected fovNNN.png")
                stack = stacks.setdefault(_STACK.match(parent)[1].lower(), {})
                if int(p[1]) in stack:
                    raise RawLayoutError(f"duplicated focal plane {int(p[1])}: {stack[int(p[1])].path} and {f.path}")
                stack[int(p[1])] = f
            elif f.suffix == ".m" or f.name.lower().startswith(("readme", "license")):
                raw.skip(f, "code or documentation of the repository")
        for name, f in sorted({**edf_png, **edf_csv, **{k: None for k in stacks}}.items()):
            if name not in frames:
                where = f.path if f is not None else f"{name}_stack"
                raise RawLayoutError(f"{where}: frame {name} is not listed in {labels_file.path}")
        for name in frames:
            for what, table in (("EDF image EDF/" + name + ".png", edf_png), ("point file EDF/" + name + ".csv",
                                                                              edf_csv), ("stack folder", stacks)):
                if name not in table:
                    raise RawLayoutError(f"{labels_file.path}: frame {name} has no {what}")
            planes = stacks[name]
            if sorted(planes) != list(range(len(planes))):
                raise RawLayoutError(f"{planes[min(planes)].parent}: planes {sorted(planes)} are not fov000.."
                                     f"fov{len(planes) - 1:03d} without gaps")
        for name in sorted(frames):
            grade, split = frames[name]
            f = edf_png[name]
            data = f.read_bytes()
            _, w, h = images.sniff(data, f.path)
            stack = [stacks[name][i] for i in range(len(stacks[name]))]
            yield {
                "id": name,
                "image": {"bytes": data, "path": f.name},
                "focal_stack": stack,
                "z_um": None,  # spacing not published: the stack is ordered, its distances are unknown
                "label": grade,
                "objects": read_points(edf_csv[name], (w, h)),
                "group": {"fov_id": name},
                "split": split,
                "source_path": f"{f.path};{edf_csv[name].path};{stack[0].parent}/fov{{000..{len(stack) - 1:03d}}}.png",
                "extra": {"labels_csv": {"label": [k for k, v in GRADES.items() if v == grade][0],
                                         "set": [k for k, v in SETS.items() if v == split][0]},
                          "z_index": list(range(len(stack))),
                          "z_um_is": "null: focal plane spacing not published; z_index is the plane order"},
            }

    @staticmethod
    def _labels(f: RawFile) -> dict[str, tuple[str, str]]:
        rows = list(csvfile.records(f))
        if not rows or [c.strip().lower() for c in rows[0][1]] != ["frame", "label", "set"]:
            raise RawLayoutError(f"{f.path}: expected the header 'frame,label,set'")
        out = {}
        for n, row in rows[1:]:
            if not any(c.strip() for c in row):
                continue
            if len(row) != 3:
                raise RawLayoutError(f"{f.path}:{n}: expected 'frame,label,set', got {','.join(row)!r}")
            frame, code, s = (c.strip() for c in row)
            if not _FRAME.match(frame):
                raise RawLayoutError(f"{f.path}:{n}: frame {frame!r} is not frameNNN")
            if code.upper() not in GRADES:
                raise RawLayoutError(f"{f.path}:{n}: label {code!r}; expected H, L or N")
            if s not in SETS:
                raise RawLayoutError(f"{f.path}:{n}: set {s!r}; expected 0 (training) or 1 (test)")
            if frame.lower() in out:
                raise RawLayoutError(f"{f.path}:{n}: frame {frame} listed twice")
            out[frame.lower()] = (GRADES[code.upper()], SETS[s])
        return out

    # ------------------------------------------------------------------ synthetic raw layout
    def synthesize(self, root: Path, scale: str = "small", seed: int = 0) -> None:
        if scale == "full":
            # the published 93 frames and their planes (about 1,400 PNGs), drawn at 640 x 480 so that full-scale
            # synthetic data stay near 1 GB and a few minutes to write; the builder reads any size
            size = (640, 480)
            plan = []
            for code, frames in FRAME_RANGES.items():
                for k, num in enumerate(frames):
                    n_pts = POINTS[code] // len(frames) + (k < POINTS[code] % len(frames))
                    plan.append((num, code, "0" if k < TRAIN_FRAMES[code] else "1", 10 + num % 11, n_pts))
        else:
            size = (128, 96)
            plan = [(num, code, "1" if k == 2 else "0", (10, 12, 15)[k], 3 + k)
                    for code, frames in FRAME_RANGES.items() for k, num in enumerate(list(frames)[:3])]
        plan.sort()
        synth.write_zip(root / "cytology_dataset-master.zip",
                        ((f"cytology_dataset-master/{n}", d) for n, d in self._entries(plan, size, scale, seed)),
                        compress=False)
        synth.write_marker(root, self.name, scale, seed)

    @staticmethod
    def _entries(plan: list, size: tuple[int, int], scale: str, seed: int) -> Iterator[tuple[str, bytes]]:
        """The repository's files, one at a time (full scale does not fit comfortably in memory)."""
        yield from [("README.md", b"# Cervix93 Cytology Dataset\n\nThe dataset has 93 image stacks and their "
                                 b"corresponding Extended Depth of Field (EDF) image.\n"),
                   ("codes/EvaluateDetection.m", b"function [p, r] = EvaluateDetection(gt, foreground)\n% ...\n"),
                   ("codes/NucleusSegmentation.m", b"function s = NucleusSegmentation(I)\n% ...\n"),
                   ("codes/Test.m", b"% test script\n")]
        labels = ["frame,label,set"]
        for num, code, s, n_planes, n_pts in plan:
            name = f"frame{num:03d}"
            labels.append(f"{name},{code},{s}")
            rng = synth.rng_for("cervix93", seed, num)
            n_cells = max(1, min(n_pts, 6 if scale == "small" else 40))
            field, cells = synth.cell_field(rng, size, n_cells=n_cells, nucleus_scale={"N": 0.2, "L": 0.3,
                                                                                        "H": 0.45}[code])
            yield f"dataset/EDF/{name}.png", synth.encode(field, "PNG")
            pts = []
            for k in range(n_pts):
                c = cells[k % len(cells)]
                r = int(min(max(round(c.cy) + 1 + 2 * (k // len(cells)), 1), size[1]))
                col = int(min(max(round(c.cx) + 1, 1), size[0]))
                pts.append((r, col))
            yield f"dataset/EDF/{name}.csv", "".join(f"{r},{c}\n" for r, c in sorted(pts)).encode()
            best = int(rng.integers(n_planes // 3, 2 * n_planes // 3))
            for z in range(n_planes):
                plane = synth.defocus(field, (z - best) * 0.6)
                yield f"dataset/{name}_stack/fov{z:03d}.png", synth.encode(plane, "PNG")
        yield "dataset/labels.csv", ("\n".join(labels) + "\n").encode()
