"""Card figures: reproducible random draw independent of row order, every class named in full and paged,
legend, masks, class-count chart, object crops, and images of every mode rendered for the eye."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from cytohub import registry
from cytohub.builder import Builder, Label
from cytohub.figures import CLASSES_PER_PAGE, SampleCollector, to_display


def _png(im: Image.Image, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt)
    return buf.getvalue()


class _Toy(Builder):
    name = "toy"
    labels = tuple(Label(f"C{i}", (f"Group {i // 10}", f"Class number {i}")) for i in range(30))
    object_labels = (Label("nucleus", ("nucleus",)), Label("cell", ("cell",)))


def _row(i: int, label: int, objects=(), mask=None) -> dict:
    rng = np.random.default_rng(i)
    im = Image.fromarray(rng.integers(0, 255, (40, 60, 3), dtype=np.uint8))
    return {"id": f"r{i:03d}", "label": label, "image": {"bytes": _png(im), "path": None}, "focal_stack": [],
            "z_um": [], "objects": list(objects), "mask": mask}


def _collect(rows) -> SampleCollector:
    c = SampleCollector(_Toy())
    for r in rows:
        c.offer(r)
    return c


def test_draw_is_random_but_reproducible_and_independent_of_row_order(tmp_path):
    rows = [_row(i, i % 3) for i in range(60)]
    a, b = _collect(rows), _collect(reversed(rows))
    a.write(tmp_path / "a")
    b.write(tmp_path / "b")
    assert (tmp_path / "a/samples.png").read_bytes() == (tmp_path / "b/samples.png").read_bytes()
    kept = [rid for _, rid, _ in a.by_class["C0"]]
    assert len(kept) == 4 and kept != ["r000", "r003", "r006", "r009"]  # not simply the first rows


def test_every_class_is_shown_with_its_full_name_on_pages(tmp_path):
    rows = [_row(i, i % 30) for i in range(60)]
    c = _collect(rows)
    assets = c.write(tmp_path, {"train": {"labels": {f"C{i}": 2 for i in range(30)}, "objects": {}}})
    assert assets == ["assets/samples.png", "assets/samples-2.png", "assets/class-counts.png"]
    first = Image.open(tmp_path / "samples.png")
    second = Image.open(tmp_path / "samples-2.png")
    assert first.height > second.height  # 24 rows, then 6
    assert CLASSES_PER_PAGE == 24
    assert c.titles["C7"] == "C7: Class number 7"
    bone = registry.get("bone-marrow")
    assert SampleCollector(bone).titles["BLA"] == "BLA: Blast"


def test_objects_get_a_legend_crops_and_masks_an_overlay(tmp_path):
    objects = [{"category": "nucleus", "bbox": [10, 10, 12, 8], "polygon": None, "point": None},
               {"category": "cell", "bbox": None, "polygon": [5, 5, 30, 5, 30, 30], "point": None},
               {"category": "cell", "bbox": None, "polygon": None, "point": [40, 20]}]
    mask = Image.new("L", (60, 40), 0)
    mask.paste(3, (0, 0, 30, 40))
    rows = [_row(i, -1, objects, {"bytes": _png(mask), "path": None}) for i in range(5)]
    c = _collect(rows)
    assets = c.write(tmp_path, {"train": {"labels": {}, "objects": {"nucleus": 5, "cell": 10}}})
    assert "assets/object-crops.png" in assets and "assets/class-counts.png" in assets
    assert c.has_masks and set(c.crops) == {"nucleus", "cell"} and len(c.crops["cell"]) == 6
    plain = _collect([_row(i, -1) for i in range(5)])
    plain.write(tmp_path / "plain")
    # the legend (categories and the mask line) makes the annotated grid taller than the plain one
    assert Image.open(tmp_path / "samples.png").height > Image.open(tmp_path / "plain/samples.png").height
    thumb = c.by_class["(no label)"][0][2]
    left = np.asarray(thumb)[:, : thumb.width // 2 - 2].astype(int)
    stored = Image.open(io.BytesIO(rows[0]["image"]["bytes"])).resize(thumb.size)
    raw_left = np.asarray(stored)[:, : thumb.width // 2 - 2]
    assert np.abs(left - raw_left.astype(int)).mean() > 10  # the masked half is tinted


@pytest.mark.parametrize("mode", ["I;16", "F", "CMYK", "P", "RGBA", "LA", "1"])
def test_images_of_every_mode_render_visibly(mode):
    grad = np.tile(np.arange(64, dtype=np.float64), (32, 1))
    if mode == "I;16":
        im = Image.fromarray((grad * 40 + 1000).astype(np.uint16))  # 1000..3520: white if read as 8-bit
    elif mode == "F":
        im = Image.fromarray((grad / 1000).astype(np.float32))  # 0..0.063: black if read as 8-bit
    else:
        im = Image.fromarray((grad * 4).astype(np.uint8)).convert("RGB").convert(mode)
    shown = np.asarray(to_display(im).convert("L"), dtype=np.float64)
    assert shown.shape == (32, 64)
    assert shown[:, -4:].mean() - shown[:, :4].mean() > 100, mode  # the gradient survives


def test_sixteen_bit_png_row_is_not_white(tmp_path):
    grad = (np.tile(np.arange(60), (40, 1)) * 50 + 2000).astype(np.uint16)
    row = _row(0, 0)
    row["image"] = {"bytes": _png(Image.fromarray(grad)), "path": None}
    c = _collect([row])
    thumb = np.asarray(c.by_class["C0"][0][2].convert("L"), dtype=np.float64)
    assert thumb.std() > 40 and thumb.mean() < 200


def test_abbreviated_classes_are_titled_with_their_full_names():
    titles = SampleCollector(registry.get("hicervix")).titles
    assert titles["ECC"] == "ECC: Endocervical cell" and titles["Normal"] == "Normal"
    assert SampleCollector(registry.get("cervix93")).titles["LSIL"] == "LSIL"  # description is a file code
