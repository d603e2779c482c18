"""The format layer (cytohub.formats), module by module, against values computed by hand: every reader's
conventions (1-based to 0-based, column-major runs, box layouts) and every kind of bad value it must refuse
with one line naming the annotation file and the record."""

from __future__ import annotations

import base64
import csv
import json
import re
import zlib
from pathlib import Path

import numpy as np
import pytest

from cytohub.errors import CytohubError, RawFileError, RawLayoutError
from cytohub.formats import (
    coco,
    cric,
    csvfile,
    geometry,
    jsonfile,
    labelme,
    masks,
    matlab,
    naming,
    rle,
    voc,
    wkt,
    yolo,
)
from cytohub.formats.geometry import AnnotationError
from cytohub.raw import RawFile, RawTree


def raw_file(tmp_path: Path, name: str, data: bytes | str) -> RawFile:
    """A RawFile of a one-file raw tree holding `data`."""
    folder = tmp_path / f"raw-{name.replace('/', '_')}"
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    f = RawTree(folder).get(name)
    assert f is not None
    return f


def fill_polygon(poly: list[float], h: int, w: int) -> np.ndarray:
    """Pixels whose centre lies inside `poly` (even-odd rule): the inverse of an edge-traced outline."""
    xs, ys = np.array(poly[::2]), np.array(poly[1::2])
    yy, xx = np.mgrid[0:h, 0:w] + 0.5
    inside = np.zeros((h, w), bool)
    for i in range(len(xs)):
        x1, y1, x2, y2 = xs[i], ys[i], xs[(i + 1) % len(xs)], ys[(i + 1) % len(xs)]
        if y1 != y2:
            inside ^= (yy > min(y1, y2)) & (yy < max(y1, y2)) & (xx < x1 + (yy - y1) * (x2 - x1) / (y2 - y1))
    return inside


# ================================================================================================= naming
def test_natural_order():
    assert sorted(["10", "9", "100", "a2", "a10"], key=naming.natural_key) == ["9", "10", "100", "a2", "a10"]
    assert sorted(["img10.png", "IMG2.png", "img1.png"], key=naming.natural_key) == ["img1.png", "IMG2.png",
                                                                                     "img10.png"]
    assert sorted(["a1", "a"], key=naming.natural_key) == ["a", "a1"]  # a prefix first
    assert sorted(["a2", "a02"], key=naming.natural_key) == ["a02", "a2"]  # equal numbers: the text decides


def test_name_keys():
    assert naming.key(" Malignant-cells_2 ") == "malignantcells2"
    assert naming.letters_key("Cx22-Multi-Test") == "cxmultitest"
    assert naming.words_key("Band_neutrophil  (BNE)") == "band neutrophil bne"
    assert naming.slug("High squamous / HSIL") == "high-squamous-hsil"
    assert naming.folder_name("train.zip") == "train" and naming.folder_name("a.tar.gz") == "a"
    assert naming.folder_name("train") == "train"
    table = naming.alias_table({"benign": ["B", "Benign cases"], "malignant": ["M"]})
    assert table == {"benign": "benign", "b": "benign", "benigncases": "benign", "malignant": "malignant",
                     "m": "malignant"}
    with pytest.raises(ValueError, match="claimed by"):
        naming.alias_table({"a": ["x"], "b": ["X"]})


# =============================================================================================== geometry
@pytest.mark.parametrize("value,message", [
    (float("nan"), "has NaN"), (float("inf"), "has +infinity"), (-float("inf"), "has -infinity"),
    (None, "is null"), (True, "is True"), ("abc", "is 'abc'"), ("nan", "has NaN"), ([1], "is [1]"),
])
def test_number_refuses_what_is_not_a_finite_number(value, message):
    with pytest.raises(AnnotationError, match=re.escape(f"a.json: record 3: x {message}")):
        geometry.number(value, "x", "a.json: record 3")


@pytest.mark.parametrize("text,message", [
    ("1_0", "is '1_0'; expected a number"),  # Python reads 10
    ("\u0661\u0660\u0665", "is '\u0661\u0660\u0665'; expected a number"),  # Arabic-Indic digits: Python reads 105
    ("\u00b2", "is '\u00b2'; expected a number"),  # str.isdigit() is true, int() raises ValueError
    ("0x10", "is '0x10'; expected a number"),
    ("9" * 5000, "is a 5,000-character value; expected a number of at most 400 characters"),  # int() raises
])
def test_numbers_written_as_text_are_ascii_decimals(text, message):
    """Text that Python's float()/int() would read as another value (or fail on with a ValueError) is refused
    naming the record; ordinary numeric text keeps its value."""
    for read in (geometry.number, geometry.integer):
        with pytest.raises(AnnotationError, match=re.escape(f"t.csv:2: x {message}")):
            read(text, "x", "t.csv:2")
    assert geometry.number(" 1e3 ", "x", "w") == 1000.0 and geometry.number("-.5", "x", "w") == -0.5
    assert geometry.integer("+17", "x", "w") == 17 and geometry.integer("5.", "x", "w") == 5
    with pytest.raises(AnnotationError, match=re.escape("w: x has +infinity")):
        geometry.number("9" * 400, "x", "w")


def test_numbers_integers_and_sizes():
    assert geometry.number("12.5", "x", "w") == 12.5 and geometry.number(3, "x", "w") == 3.0
    assert geometry.integer(2.0, "n", "w") == 2 and geometry.integer("17", "n", "w") == 17
    for bad in (2.5, "2.5", True, "two"):
        with pytest.raises(AnnotationError):
            geometry.integer(bad, "n", "w")
    with pytest.raises(AnnotationError, match="bbox has NaN"):
        geometry.bbox([1, 2, float("nan"), 4], "bbox", "w")
    with pytest.raises(AnnotationError, match="bbox has 3 values; expected 4"):
        geometry.bbox([1, 2, 3], "bbox", "w")
    with pytest.raises(AnnotationError, match="negative width or height"):
        geometry.bbox([1, 2, -3, 4], "bbox", "w")
    assert geometry.image_size(512, "384", "w") == (512, 384)
    with pytest.raises(AnnotationError, match="width is 512.5; expected a whole number"):
        geometry.image_size(512.5, 384, "w")
    with pytest.raises(AnnotationError, match="expected positive width and height"):
        geometry.image_size(0, 384, "w")


def test_polygons_points_and_boxes():
    assert geometry.polygon([0, 0, 4, 0, 4, 3, 0, 0], "p", "w") == [0, 0, 4, 0, 4, 3]  # closing vertex dropped
    with pytest.raises(AnnotationError, match="odd number of values"):
        geometry.polygon([0, 0, 4, 0, 4], "p", "w")
    with pytest.raises(AnnotationError, match="2 vertices; a polygon needs at least 3"):
        geometry.polygon([0, 0, 4, 0], "p", "w")
    assert geometry.points([[1, 2], [3.5, 4]], "points", "w") == [1, 2, 3.5, 4]
    with pytest.raises(AnnotationError, match="points point 2 has 3 values"):
        geometry.points([[1, 2], [3, 4, 5]], "points", "w")
    # polygon -> box (extent of the vertices)
    assert geometry.polygon_bbox([10, 10, 20, 10, 20, 30, 10, 30]) == [10, 10, 10, 20]
    assert geometry.corners_to_bbox(2, 3, 10, 7, "b", "w") == [2, 3, 8, 4]


def test_one_based_to_zero_based():
    # 1-based (x, y) (1, 1) is the top-left pixel, 0-based [0, 0]; (W, H) is the last one
    assert geometry.one_based_xy(1, 1, (10, 8), "p", "w") == [0.0, 0.0]
    assert geometry.one_based_xy("10", 8, (10, 8), "p", "w") == [9.0, 7.0]
    # MATLAB (row, col) = (3, 5) is x = col - 1 = 4, y = row - 1 = 2
    assert geometry.one_based_row_col(3, 5, (10, 8), "p", "w") == [4.0, 2.0]
    with pytest.raises(AnnotationError, match=r"p \(0, 1\) is outside the 10x8 image"):
        geometry.one_based_xy(0, 1, (10, 8), "p", "w")
    with pytest.raises(AnnotationError, match="p y has NaN"):
        geometry.one_based_xy(1, float("nan"), (10, 8), "p", "w")


def test_clipping_never_makes_an_invalid_value_valid():
    assert geometry.clip_polygon([-1.5, 2, 10, 2, 10, 20], 16, 16) == ([0.0, 2.0, 10.0, 2.0, 10.0, 16.0], 2)
    assert geometry.clip_bbox([-2, 5, 10, 10], 8, 12) == [0.0, 5.0, 8.0, 7.0]
    assert geometry.clip_bbox([20, 5, 10, 10], 8, 12) is None  # wholly outside: nothing left
    with pytest.raises(ValueError, match="non-finite"):
        geometry.clip_bbox([float("nan")] * 4, 8, 12)  # would have become the full image [0, 0, 8, 12]
    with pytest.raises(ValueError, match="non-finite"):
        geometry.clip_polygon([0, 0, float("inf"), 0, 1, 1], 8, 12)


# ================================================================================================= jsonfile
def test_json_nesting_is_bounded_before_parsing(tmp_path):
    f = raw_file(tmp_path, "deep.json", "[" * 100_000 + "]" * 100_000)  # RecursionError in Python's parser
    with pytest.raises(RawFileError, match=r"deep.json: JSON nested 100000 levels deep; the limit is 64"):
        jsonfile.load(f)
    assert jsonfile.nesting_depth('{"a": [1, [2]], "b": "[[[[", "c": "\\\\", "d": "\\"[["}') == 3
    assert jsonfile.loads(json.dumps({"a": "[" * 68}), "x") == {"a": "[" * 68}  # brackets in strings do not count


def test_json_size_duplicates_and_syntax(tmp_path, monkeypatch):
    with pytest.raises(RawFileError, match="dup.json: not valid JSON: an object repeats the key 'bbox'"):
        jsonfile.load(raw_file(tmp_path, "dup.json", '{"bbox": [1, 2, 3, 4], "bbox": [0, 0, 1, 1]}'))
    with pytest.raises(RawFileError, match=r"bad.json: not valid JSON \(Expecting"):
        jsonfile.load(raw_file(tmp_path, "bad.json", '{"a": '))
    f = raw_file(tmp_path, "big.json", '{"a": 1}')
    monkeypatch.setattr(jsonfile, "MAX_JSON_BYTES", 4)
    with pytest.raises(RawFileError, match="big.json: JSON file of 8 bytes is over the limit of 4 bytes"):
        jsonfile.load(f)


# ================================================================================================== csvfile
def test_csv_fields_over_128_kib_and_line_numbers(tmp_path, monkeypatch):
    big = "x" * 200_000  # over csv's default field limit of 131,072
    f = raw_file(tmp_path, "t.csv", f'id,value\n1,"two\nlines"\n2,{big}\n\n3,c\n')
    limit = csv.field_size_limit()
    assert list(csvfile.records(f)) == [(1, ["id", "value"]), (2, ["1", "two\nlines"]), (4, ["2", big]), (5, []),
                                        (6, ["3", "c"])]
    assert csv.field_size_limit() == limit  # the module-wide limit is left as it was
    assert [(n, r["value"][:3]) for n, r in csvfile.table(f, ["id", "value"])] == [(2, "two"), (4, "xxx"),
                                                                                  (6, "c")]
    monkeypatch.setattr(csvfile, "MAX_CSV_FIELD_BYTES", 1000)
    with pytest.raises(RawFileError, match="t.csv:4: a field is over the limit of 1,000 bytes"):
        list(csvfile.records(f))


def test_csv_table_checks_header_and_field_counts(tmp_path):
    with pytest.raises(RawLayoutError, match="t.csv: header 'a,b' lacks c"):
        list(csvfile.table(raw_file(tmp_path, "t.csv", "a,b\n1,2\n"), ["a", "c"]))
    with pytest.raises(RawLayoutError, match="u.csv:3: 3 fields, expected 2"):
        list(csvfile.table(raw_file(tmp_path, "u.csv", "a,b\n1,2\n1,2,3\n"), ["a", "b"]))


# ====================================================================================================== rle
def test_coco_rle_by_hand():
    # 2 x 3 mask, column-major runs [1 zero, 2 ones, 3 zeros]: flat order (0,0) (1,0) (0,1) (1,1) (0,2) (1,2)
    m = rle.coco_decode({"size": [2, 3], "counts": [1, 2, 3]})
    assert m.tolist() == [[False, True, False], [True, False, False]]
    assert rle.coco_encode(m) == {"size": [2, 3], "counts": [1, 2, 3]}
    assert rle.coco_encode(np.ones((1, 2), bool))["counts"] == [0, 2]  # a leading empty run of 0
    with pytest.raises(ValueError, match="sum to 5, expected height x width = 6"):
        rle.coco_decode({"size": [2, 3], "counts": [1, 2, 2]})


def test_coco_compressed_rle_by_hand():
    # each count in 5-bit groups + 48; counts after the second stored as the difference to two places before
    assert rle.coco_counts_to_string([2, 3, 1]) == "231"
    assert rle.coco_counts_to_string([2, 3, 1, 5]) == "2312"  # 5 - 3 = 2
    # 4 - 10 = -6: low 5 bits 26 (sign bit 16 set, the rest is -1: no continuation) -> chr(26 + 48) = 'J'
    assert rle.coco_counts_to_string([0, 10, 5, 4]) == "0:5J"
    assert rle.coco_counts_to_string([40]) == "X1"  # 40 = 8 + 32 * 1: 'X' = 8 | 0x20 continuation, then '1'
    for text, counts in (("231", [2, 3, 1]), ("0:5J", [0, 10, 5, 4]), ("X1", [40])):
        assert rle.coco_string_to_counts(text) == counts
    assert rle.coco_counts_to_string([0, 10, 5, 5]) == "0:5K"  # 5 - 10 = -5: low 5 bits 27 -> 'K'
    m = rle.coco_decode({"size": [5, 4], "counts": "0:5K"})  # columns of 5: two of 1, one of 0, one of 1
    assert m[:, [0, 1, 3]].all() and not m[:, 2].any()
    with pytest.raises(ValueError, match="ends inside a count"):
        rle.coco_string_to_counts("X")
    rng = np.random.default_rng(3)
    for _ in range(20):
        r = rng.random((9, 7)) > 0.6
        assert np.array_equal(rle.coco_decode(rle.coco_compress(rle.coco_encode(r))), r)


def test_cisd_rle_by_hand():
    # 3 x 4 mask, row-major:  0 1 1 0 / 0 0 0 1 / 1 1 0 0  -> runs 0:1, 1:2, 0:4, 1:3, 0:2
    m = np.array([[0, 1, 1, 0], [0, 0, 0, 1], [1, 1, 0, 0]], bool)
    assert np.array_equal(rle.cisd_decode([1, 2, 4, 3, 2], [3, 4]), m)
    assert rle.cisd_encode(m) == {"counts": [1, 2, 4, 3, 2], "size": [3, 4]}
    first_on = np.array([[1, 0], [0, 1]], bool)  # starts with a 1: a leading zero-length run of 0
    assert rle.cisd_encode(first_on)["counts"] == [0, 1, 2, 1]
    assert np.array_equal(rle.cisd_decode([0, 1, 2, 1], (2, 2)), first_on)
    with pytest.raises(ValueError, match="sum to 9"):
        rle.cisd_decode([1, 2, 4, 2], [3, 4])
    with pytest.raises(ValueError, match="negative run length"):
        rle.cisd_decode([13, -1], [3, 4])
    with pytest.raises(ValueError, match="whole numbers"):
        rle.cisd_decode([1.5, 10.5], [3, 4])


def test_kaggle_rle_is_one_based_and_column_major():
    # 3 rows x 2 columns; column-major numbering: (r0,c0)=1 (r1,c0)=2 (r2,c0)=3 (r0,c1)=4 (r1,c1)=5 (r2,c1)=6
    m = rle.kaggle_decode("2 3 6 1", 3, 2)
    expected = np.zeros((3, 2), bool)
    expected[1, 0] = expected[2, 0] = expected[0, 1] = expected[2, 1] = True
    assert np.array_equal(m, expected)
    assert rle.kaggle_encode(expected) == "2 3 6 1"
    assert np.array_equal(rle.kaggle_decode("6 1 2 3", 3, 2), expected)  # any order
    rng = np.random.default_rng(0)
    for _ in range(20):
        r = rng.random((7, 5)) > 0.5
        assert np.array_equal(rle.kaggle_decode(rle.kaggle_encode(r), 7, 5), r)
    with pytest.raises(ValueError, match="outside"):
        rle.kaggle_decode("5 3", 3, 2)
    with pytest.raises(ValueError, match="overlaps"):
        rle.kaggle_decode("1 3 2 1", 3, 2)
    for text in ("1_0 1", "\u0661 1", "2.0 1", "-1 1", "9" * 30 + " 1"):  # int() reads the first three as numbers
        with pytest.raises(ValueError, match="whole numbers of ASCII digits"):
            rle.kaggle_decode(text, 3, 2)


def test_rle_sizes_are_bounded_before_allocating(monkeypatch):
    monkeypatch.setattr(rle, "MAX_MASK_PIXELS", 100)
    with pytest.raises(ValueError, match="size 20 x 20 is over the limit of 100 pixels"):
        rle.coco_decode({"size": [20, 20], "counts": [400]})
    with pytest.raises(ValueError, match="not two whole numbers"):
        rle.cisd_decode([4], [2.5, 2])


# ==================================================================================================== masks
def test_mask_bbox_and_outline_of_known_shapes():
    m = np.zeros((6, 8), bool)
    m[1:4, 2:5] = True  # rows 1..3, cols 2..4
    m[3, 5] = True  # a bump at row 3, col 5
    assert masks.mask_bbox(m) == [2.0, 1.0, 4.0, 3.0]
    assert masks.outer_polygon(m) == [2.0, 1.0, 5.0, 1.0, 5.0, 3.0, 6.0, 3.0, 6.0, 4.0, 2.0, 4.0]
    single = np.zeros((5, 5), bool)
    single[3, 2] = True  # pixel x=2, y=3 covers [2, 3] x [3, 4]
    assert masks.mask_bbox(single) == [2.0, 3.0, 1.0, 1.0]
    assert masks.outer_polygon(single) == [2.0, 3.0, 3.0, 3.0, 3.0, 4.0, 2.0, 4.0]
    assert masks.mask_bbox(np.zeros((3, 3), bool)) is None and masks.outer_polygon(np.zeros((3, 3), bool)) is None


def test_outline_of_the_largest_region_and_of_pixels_touching_at_a_corner():
    m = np.zeros((5, 5), bool)
    m[1:4, 1] = True
    m[3, 1:4] = True  # an L: vertical bar in column 1, foot in row 3
    m[0, 4] = True  # a stray pixel: smaller region, not in the outline, in the box
    assert masks.outer_polygon(m) == [1.0, 1.0, 2.0, 1.0, 2.0, 3.0, 4.0, 3.0, 4.0, 4.0, 1.0, 4.0]
    assert masks.mask_bbox(m) == [1.0, 0.0, 4.0, 4.0]
    diagonal = np.eye(2, dtype=bool)  # (0, 0) and (1, 1) touch at the corner (1, 1): one 8-connected region
    assert masks.outer_polygon(diagonal) == [0.0, 0.0, 1.0, 0.0, 1.0, 1.0, 2.0, 1.0, 2.0, 2.0, 1.0, 2.0, 1.0, 1.0,
                                             0.0, 1.0]
    assert np.array_equal(fill_polygon(masks.outer_polygon(diagonal), 2, 2), diagonal)
    ring = np.ones((5, 5), bool)
    ring[2, 2] = False  # a hole: the outline is the outer square only
    assert masks.outer_polygon(ring) == [0.0, 0.0, 5.0, 0.0, 5.0, 5.0, 0.0, 5.0]


def test_outline_fills_back_to_the_region_with_holes_filled():
    from scipy import ndimage

    rng = np.random.default_rng(1)
    for k in range(60):
        m = rng.random((14, 17)) > (0.35 if k % 2 else 0.6)
        labels, n = ndimage.label(m, structure=np.ones((3, 3), bool))
        if n == 0:
            continue
        largest = labels == int(np.argmax(np.bincount(labels.ravel())[1:])) + 1
        assert np.array_equal(fill_polygon(masks.outer_polygon(m), 14, 17), ndimage.binary_fill_holes(largest))


def test_instance_label_maps():
    lab = np.zeros((10, 12), np.uint16)
    lab[2:5, 3:7] = 1
    lab[6:9, 8:11] = 3  # value 2 absent: skipped
    objs, values = masks.instance_objects(lab, "cell")
    assert values == [1, 3]
    assert objs[0]["bbox"] == [3.0, 2.0, 4.0, 3.0] and objs[0]["polygon"] == [3, 2, 7, 2, 7, 5, 3, 5]
    assert objs[1]["bbox"] == [8.0, 6.0, 3.0, 3.0] and objs[1]["polygon"] == [8, 6, 11, 6, 11, 9, 8, 9]
    sparse = np.zeros((4, 5), np.uint32)  # 32-bit values far apart cost no more than 1 and 2
    sparse[0, 0] = 4_000_000_000
    sparse[2:4, 3:5] = 7
    objs, values = masks.instance_objects(sparse, "cell")
    assert values == [7, 4_000_000_000] and [o["bbox"] for o in objs] == [[3.0, 2.0, 2.0, 2.0], [0.0, 0.0, 1.0, 1.0]]
    with pytest.raises(RawLayoutError, match="negative value -2"):
        masks.instance_objects(np.array([[0, -2]], np.int32), "cell")
    with pytest.raises(RawLayoutError, match="single-channel integer label map"):
        masks.instance_objects(np.zeros((2, 2, 3), np.uint8), "cell")
    m = np.zeros((6, 6), bool)
    m[0, 0] = m[1, 1] = True  # one region (8-connected)
    m[4:6, 3:6] = True
    assert masks.component_boxes(m) == [[0.0, 0.0, 2.0, 2.0], [3.0, 4.0, 3.0, 2.0]]
    assert [o["bbox"] for o in masks.component_objects(m, "nucleus")] == [[0.0, 0.0, 2.0, 2.0], [3.0, 4.0, 3.0, 2.0]]


def test_mask_decoding_and_16_bit_maps(monkeypatch):
    lab = np.array([[0, 1], [300, 65535]], np.uint16)
    assert np.array_equal(masks.decode(masks.png16(lab), "m.png"), lab)
    with pytest.raises(ValueError, match="0..65535"):
        masks.png16(np.array([[70000]]))
    with pytest.raises(RawFileError, match="m.png: not a readable image"):
        masks.decode(b"not a png", "m.png")
    monkeypatch.setattr(rle, "MAX_MASK_PIXELS", 3)
    with pytest.raises(RawFileError, match=r"m.png: 2 x 2 pixels is over the limit of 3"):
        masks.decode(masks.png16(lab), "m.png")


# ===================================================================================================== coco
def _coco(annotations: list[dict], images: list[dict] | None = None) -> dict:
    return {"images": images or [{"id": 3, "file_name": "a.png", "width": 100, "height": 80}],
            "categories": [{"id": 1, "name": "cell"}], "annotations": annotations}


def test_coco_polygons_boxes_and_crowd_regions():
    doc = coco.parse(_coco([
        {"id": 1, "image_id": 3, "category_id": 1, "bbox": [10, 10, 10, 20], "iscrowd": 0,
         "segmentation": [[10, 10, 20, 10, 20, 30, 10, 30, 10, 10]]},  # closed ring: the repeat is dropped
        {"id": 2, "image_id": 3, "category_id": 1, "bbox": [0, 0, 70, 70], "iscrowd": 0,
         "segmentation": [[50, 50, 60, 50, 55, 58], [1, 1, 5, 1, 5, 5], [7, 7, 8, 8]]},  # 3 parts, 1 too small
        {"id": 3, "image_id": 3, "category_id": 1, "bbox": [0, 1, 3, 2], "iscrowd": 1,
         "segmentation": {"size": [80, 100], "counts": [81, 2, 78, 2, 7837]}},
    ]), "annotations.json")
    objects, extra = coco.objects(doc.annotations_of(doc.images[0]))
    assert objects == [
        {"category": "cell", "bbox": [10.0, 10.0, 10.0, 20.0], "polygon": [10.0, 10.0, 20.0, 10.0, 20.0, 30.0, 10.0,
                                                                           30.0]},
        {"category": "cell", "bbox": [50.0, 50.0, 10.0, 8.0], "polygon": [50.0, 50.0, 60.0, 50.0, 55.0, 58.0]},
        {"category": "cell", "bbox": [1.0, 1.0, 4.0, 4.0], "polygon": [1.0, 1.0, 5.0, 1.0, 5.0, 5.0]},
        {"category": "cell", "bbox": [0.0, 1.0, 3.0, 2.0]},
    ]
    assert extra["crowd_objects"] == [3]
    assert extra["degenerate_polygons"] == 1
    crowd = extra["segmentation_rle"]["3"]
    assert crowd["size"] == [80, 100]
    region = rle.coco_decode(crowd)  # column-major: column 1 rows 1-2, column 2 rows 1-2
    assert np.argwhere(region).tolist() == [[1, 1], [1, 2], [2, 1], [2, 2]]
    assert coco.objects([])[1] == {"crowd_objects": []}


@pytest.mark.parametrize("annotation,images,message", [
    ({"bbox": [1, 2, float("nan"), 4]}, None, r"annotations.json: annotation id 17 \(image 3\): bbox has NaN"),
    ({"bbox": [1, 2, None, 4]}, None, r"annotation id 17 \(image 3\): bbox value 3 is null"),
    ({"bbox": [1, 2, "wide", 4]}, None, r"annotation id 17 \(image 3\): bbox value 3 is 'wide'"),
    ({"segmentation": [[1, 2, 3, 4, 5]]}, None, r"annotation id 17 \(image 3\): segmentation has an odd number"),
    ({"segmentation": [[1, 2, 3, float("inf"), 5, 6]]}, None, r"segmentation has \+infinity"),
    ({"iscrowd": 2}, None, r"annotation id 17 \(image 3\): iscrowd is 2; expected 0 or 1"),
    ({"image_id": 4}, None, r"annotation id 17 \(image 4\): image_id 4 is not in 'images'"),
    ({"category_id": 9}, None, r"annotation id 17 \(image 3\): category_id 9 is not in 'categories'"),
    ({"iscrowd": 1, "segmentation": {"size": [8, 10], "counts": [80]}}, None,
     r"segmentation RLE is 10 x 8 but the image is 100 x 80"),
    ({"iscrowd": 1, "segmentation": {"size": [80, 100], "counts": "0:5J"}}, None,
     r"segmentation RLE is not readable \(run lengths sum to 19, expected height x width = 8000\)"),
    ({}, [{"id": 3, "file_name": "a.png"}, {"id": 3, "file_name": "b.png"}],
     r"annotations.json: image id 3: the id is used by two images \('a.png' and 'b.png'\)"),
    ({}, [{"id": 3, "file_name": "a.png", "width": 100.5, "height": 80}],
     r"annotations.json: image id 3: width is 100.5; expected a whole number"),
    ({}, [{"id": 3, "file_name": "a.png"}, {"id": 4, "file_name": "a.png"}], r"file_name 'a.png' is also image id 3"),
])
def test_coco_bad_records_name_the_file_and_the_record(annotation, images, message):
    record = {"id": 17, "image_id": 3, "category_id": 1, "bbox": [1, 2, 3, 4]} | annotation
    with pytest.raises(CytohubError, match=message):
        coco.parse(_coco([record], images), "annotations.json")


def test_coco_file_level_checks(tmp_path):
    with pytest.raises(RawLayoutError, match="c.json: expected a COCO file"):
        coco.load(raw_file(tmp_path, "c.json", json.dumps({"images": []})))
    f = raw_file(tmp_path, "d.json", json.dumps(_coco([])).replace('"id": 1', '"id": 1, "id": 2', 1))
    with pytest.raises(RawFileError, match="repeats the key 'id'"):
        coco.load(f)
    doc = coco.load(raw_file(tmp_path, "e.json", json.dumps(_coco([]))), lambda name, where: name.upper())
    assert doc.categories == {1: "CELL"} and doc.images[0].width == 100 and doc.annotations == {}


# ================================================================================================== labelme
def test_labelme_shapes(tmp_path):
    png = masks.png16(np.zeros((3, 4), np.uint16))
    doc = labelme.load(raw_file(tmp_path, "l.json", json.dumps({
        "shapes": [{"label": "cell", "points": [[1, 2], [5, 2], [5, 6]], "shape_type": "polygon"},
                   {"label": "box", "points": [[8, 9], [2, 3]], "shape_type": "rectangle"},
                   {"label": "line", "points": [[0, 0], [1, 1]], "shape_type": "linestrip"},
                   {"label": "dot", "points": [[4, 4]], "shape_type": "point"}],
        "imageWidth": 4, "imageHeight": 3, "imageData": base64.b64encode(png).decode()})))
    assert doc.size == (4, 3) and labelme.image_data(doc) == png
    assert labelme.polygon(doc.shapes[0]) == [1, 2, 5, 2, 5, 6]
    assert labelme.polygon(doc.shapes[1]) == [2, 3, 8, 3, 8, 9, 2, 9]  # corners sorted, clockwise from top-left
    assert labelme.polygon(doc.shapes[2]) is None  # fewer than 3 points
    with pytest.raises(AnnotationError, match=r"l.json: shape 3 \(label 'dot'\): shape_type 'point' is not"):
        labelme.polygon(doc.shapes[3])
    with pytest.raises(AnnotationError, match=r"m.json: shape 0 \(label 'cell'\): points point 2 has NaN"):
        labelme.parse({"shapes": [{"label": "cell", "points": [[1, 2], [float("nan"), 2]]}]}, "m.json")
    with pytest.raises(AnnotationError, match="imageWidth x imageHeight: width is 4.5"):
        labelme.parse({"shapes": [], "imageWidth": 4.5, "imageHeight": 3}, "n.json")
    with pytest.raises(RawFileError, match="o.json: imageData is not valid base64"):
        labelme.image_data(labelme.parse({"shapes": [], "imageData": "***"}, "o.json"))


# ===================================================================================================== yolo
def test_yolo_boxes_by_hand(tmp_path):
    # centre (0.5, 0.5), size (0.2, 0.4) in a 100 x 50 image: x = 40, y = 15, w = 20, h = 20
    f = raw_file(tmp_path, "a.txt", "1 0.5 0.5 0.2 0.4\n\n0 0.0005 0.5 0.002 0.2\n")
    assert yolo.objects(f, ["a", "b"], (100, 50)) == [{"category": "b", "bbox": [40.0, 15.0, 20.0, 20.0]},
                                                       {"category": "a", "bbox": [0.0, 20.0, 0.15, 10.0]}]
    assert yolo.line(1, [40, 15, 20, 20], (100, 50)) == "1 0.500000 0.500000 0.200000 0.400000"
    for text, message in (("0 nan 0.5 0.1 0.1", "b.txt:1: x centre has NaN"),
                          ("2 0.5 0.5 0.1 0.1", r"b.txt:1: class id 2 outside 0..1"),
                          ("0 0.5 0.5 0.1", "b.txt:1: 4 fields"),
                          ("0.5 0.5 0.5 0.1 0.1", "b.txt:1: class id is '0.5'"),
                          ("0 0.95 0.5 0.2 0.1", "not inside the normalised image")):
        with pytest.raises(AnnotationError, match=message):
            yolo.read(raw_file(tmp_path, "b.txt", text), 2)


# ===================================================================================================== cric
def test_cric_export_points_are_one_based(tmp_path):
    header = ",".join(cric.CSV_HEADER)
    f = raw_file(tmp_path, "classifications.csv", f"{header}\n7,a.png,null,11,LSIL,1,1\n7,a.png,null,12,LSIL,10,8\n")
    anns = cric.parse_csv(f, {"LSIL": "LSIL"})
    objects = cric.point_objects(anns["a.png"].cells, (10, 8), "a.png")
    assert [o["point"] for o in objects] == [[0.0, 0.0], [9.0, 7.0]]
    bad = raw_file(tmp_path, "b.csv", f"{header}\n7,a.png,null,11,LSIL,nan,1\n")
    with pytest.raises(AnnotationError, match="b.csv:2: nucleus_x has NaN"):
        cric.parse_csv(bad, {"LSIL": "LSIL"})
    with pytest.raises(AnnotationError, match=r"classifications.csv:3 \(image a.png\): nucleus \(10, 8\) is outside"):
        cric.point_objects(anns["a.png"].cells, (9, 8), "a.png")
    j = raw_file(tmp_path, "c.json", json.dumps([{"image_id": 7, "image_name": "a.png", "classifications": [
        {"cell_id": 1, "bethesda_system": "LSIL", "nucleus_x": 2.5, "nucleus_y": 1}]}]))
    with pytest.raises(AnnotationError, match=r"c.json\[image 0\].classifications\[0\]: nucleus_x is 2.5"):
        cric.parse_json(j, {"LSIL": "LSIL"})
    dup = raw_file(tmp_path, "d.csv", f"{header}\n7,a.png,null,11,LSIL,1,1\n7,b.png,null,12,LSIL,1,1\n"
                                     "7,a.png,null,11,LSIL,1,1\n")
    with pytest.raises(RawLayoutError, match=r"d.csv:4: image a.png lists cell_id 11 again \(first at d.csv:2\)"):
        cric.parse_csv(dup, {"LSIL": "LSIL"})
    cell = {"cell_id": 1, "bethesda_system": "LSIL", "nucleus_x": 2, "nucleus_y": 1}
    j = raw_file(tmp_path, "e.json",
                 json.dumps([{"image_id": 7, "image_name": "a.png", "classifications": [cell, cell]}]))
    with pytest.raises(RawLayoutError, match=r"classifications\[1\]: image a.png lists cell_id 1 again"):
        cric.parse_json(j, {"LSIL": "LSIL"})


# ====================================================================================================== voc
def test_voc_boxes_by_hand(tmp_path):
    # VOC pixel 1 is our pixel 0; bounds are inclusive, so xmin = xmax is a 1-pixel-wide box
    assert voc.box(1, 1, 10, 20) == [0, 0, 10, 20]
    assert voc.box(5, 7, 5, 7) == [4, 6, 1, 1]
    xml = ("<annotation><size><width>{w}</width><height>40</height></size><object><name>hsil</name>"
           "<difficult>1</difficult><bndbox><xmin>{x}</xmin><ymin>2</ymin><xmax>10</xmax><ymax>20</ymax></bndbox>"
           "</object></annotation>")
    ann = voc.load(raw_file(tmp_path, "a.xml", xml.format(w=30, x=1)))
    assert ann.size == (30, 40) and ann.objects[0].bbox == [0.0, 1.0, 10.0, 19.0] and ann.objects[0].difficult
    with pytest.raises(AnnotationError, match=r"b.xml: object 1 \('hsil'\): <xmin> has NaN"):
        voc.load(raw_file(tmp_path, "b.xml", xml.format(w=30, x="nan")))
    with pytest.raises(AnnotationError, match="c.xml: <size>: width is '30.5'"):
        voc.load(raw_file(tmp_path, "c.xml", xml.format(w=30.5, x=1)))
    with pytest.raises(RawFileError, match="d.xml: not well-formed XML"):
        voc.load(raw_file(tmp_path, "d.xml", "<annotation>"))


# ====================================================================================================== wkt
def test_wkt_geometries():
    assert wkt.parse("POLYGON ((0 0, 4 0, 4 3, 0 0), (1 1, 2 1, 2 2, 1 1))", "w") == ("POLYGON", [[0, 0, 4, 0, 4, 3]])
    assert wkt.parse("MULTIPOLYGON (((0 0, 1 0, 1 1, 0 0)), ((5 5, 6 5, 6 6, 5 5)))", "w")[1] == [
        [0, 0, 1, 0, 1, 1], [5, 5, 6, 5, 6, 6]]
    assert wkt.parse("POINT (3.5 -2e1)", "w") == ("POINT", [[3.5, -20.0]])
    with pytest.raises(AnnotationError, match="t.parquet: row 4: WKT coordinate has NaN"):
        wkt.parse("POLYGON ((0 0, nan 0, 4 3, 0 0))", "t.parquet: row 4")
    with pytest.raises(AnnotationError, match="WKT vertex '4'; expected 'x y'"):
        wkt.parse("POLYGON ((0 0, 4, 4 3, 0 0))", "w")
    with pytest.raises(AnnotationError, match="LINESTRING"):
        wkt.parse("LINESTRING (0 0, 1 1)", "w")


# =================================================================================================== matlab
def _mat(tmp_path: Path, name: str, variables: dict, version: str = "7.3") -> matlab.MatFile:
    (matlab.write_v73 if version == "7.3" else matlab.write_v5)(tmp_path / "m" / name, variables)
    return matlab.MatFile(RawTree(tmp_path / "m").get(name))


@pytest.mark.parametrize("version", ["5", "7.3"])
def test_matlab_round_trip(tmp_path, version):
    m = np.zeros((5, 7), bool)
    m[1, 2] = m[4, 6] = True
    variables = {"masks": [[m], []], "xy": np.asarray([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])}
    if version == "7.3":
        variables["names"] = matlab.Strings(["00001", "00010"])
    with _mat(tmp_path, "x.mat", variables, version) as mf:
        assert mf.version == version and mf.variables() == sorted(variables)
        assert mf.array("xy").tolist() == [[1, 2], [3, 4], [5, 6]]  # MATLAB's (rows, cols)
        first, second = mf.cell("masks")
        assert len(first) == 1 and np.array_equal(np.asarray(first[0]).astype(bool), m) and len(second) == 0
        if version == "7.3":
            assert mf.strings("names", expected=2) == ["00001", "00010"]
        with pytest.raises(RawLayoutError, match="variable 'xy' is not a cell array"):
            mf.cell("xy")
        with pytest.raises(RawLayoutError, match="no variable 'nope'"):
            mf.value("nope")


def test_matlab_string_saveobj_decoding():
    # [version, ndims, dims..., lengths..., UTF-16 packed 4 chars per uint64], as MATLAB saves a 3 x 1 string
    chars = np.frombuffer("00477004780abc".encode("utf-16-le") + b"\x00" * 4, "<u8")
    v = np.concatenate([np.asarray([1, 2, 3, 1, 5, 5, 4], np.uint64), chars.astype(np.uint64)])
    assert matlab._string_saveobj(v) == ["00477", "00478", "0abc"]
    assert matlab._string_saveobj(v[:-1]) is None  # payload shorter than the lengths say


def _hdf5_mat(path: Path, build) -> Path:
    """A v7.3-style file whose content `build(h5)` makes (the 512-byte MATLAB header included)."""
    import h5py

    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w", userblock_size=512) as h5:
        build(h5)
    with open(path, "r+b") as fh:
        fh.write(matlab.V73_HEADER.ljust(116) + b"\x00" * 8 + b"\x00\x02IM")
    return path


def _cell_of(h5, ds):
    import h5py

    c = h5.create_dataset("images", data=np.array([[ds.ref]], dtype=h5py.ref_dtype))
    c.attrs["MATLAB_class"] = np.bytes_("cell")


def test_hdf5_external_storage_is_refused(tmp_path):
    import h5py

    secret = tmp_path / "secret.bin"
    secret.write_bytes(bytes(range(256)) * 16)

    def build(h5):
        ds = h5.create_group("#refs#").create_dataset("a", shape=(64, 64), dtype=np.uint8,
                                                     external=[(str(secret), 0, h5py.h5f.UNLIMITED)])
        _cell_of(h5, ds)

    _hdf5_mat(tmp_path / "m" / "x.mat", build)
    with matlab.MatFile(RawTree(tmp_path / "m").get("x.mat")) as mf, \
            pytest.raises(matlab.MatSafetyError, match=r"x.mat: images\{1\} stores its data in external file"):
        mf.cell("images")[0]


def test_hdf5_links_leaving_the_file_are_refused_on_open(tmp_path):
    import h5py

    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as h5:
        h5["data"] = np.arange(4)

    def external(h5):
        h5["images"] = h5py.ExternalLink(str(other), "/data")

    def dangling(h5):
        h5["images"] = h5py.SoftLink("/nowhere")

    for name, build, message in (("e.mat", external, "images is an HDF5 external link to"),
                                 ("s.mat", dangling, "images is an HDF5 soft link to /nowhere")):
        _hdf5_mat(tmp_path / "m" / name, build)
        with pytest.raises(matlab.MatSafetyError, match=f"{name}: {message}"):
            matlab.MatFile(RawTree(tmp_path / "m").get(name))


def test_hdf5_soft_link_loops_are_refused_on_open_and_chains_inside_the_file_are_read(tmp_path):
    import h5py

    def loop(h5):
        h5["images"] = h5py.SoftLink("/again")
        h5["again"] = h5py.SoftLink("/images")

    def chain(h5):
        h5["data"] = np.arange(6, dtype=np.uint8).reshape(2, 3)
        h5["data"].attrs["MATLAB_class"] = np.bytes_("uint8")
        h5["hop"] = h5py.SoftLink("/data")
        h5["xy"] = h5py.SoftLink("/hop")

    _hdf5_mat(tmp_path / "m" / "loop.mat", loop)
    with pytest.raises(matlab.MatSafetyError, match=r"loop.mat: \w+ is an HDF5 soft link to /\w+, which does not "
                                                    "resolve to an object of this file .*a loop of soft links"):
        matlab.MatFile(RawTree(tmp_path / "m").get("loop.mat"))
    _hdf5_mat(tmp_path / "m" / "chain.mat", chain)
    with matlab.MatFile(RawTree(tmp_path / "m").get("chain.mat")) as mf:
        assert mf.array("xy").tolist() == [[0, 3], [1, 4], [2, 5]]


def test_a_library_error_names_the_mat_file_being_read_not_the_last_opened(tmp_path):
    """Builders hold two .mat files open and read them lazily: reading the first after opening the second must
    name the first in a library error (errors.last_read)."""
    from cytohub import errors

    (tmp_path / "m").mkdir()
    matlab.write_v73(tmp_path / "m" / "a.mat", {"images": [np.zeros((2, 2), np.uint8)]})
    matlab.write_v73(tmp_path / "m" / "b.mat", {"masks": [np.zeros((2, 2), np.uint8)]})
    tree = RawTree(tmp_path / "m")
    with matlab.MatFile(tree.get("a.mat")) as a, matlab.MatFile(tree.get("b.mat")) as b:
        cell = a.cell("images")
        b.cell("masks")[0]
        assert errors.last_read() == "b.mat"
        cell[0]
        assert errors.last_read() == "a.mat"


def test_hdf5_virtual_datasets_are_refused(tmp_path):
    import h5py

    with h5py.File(tmp_path / "src.h5", "w") as h5:
        h5["data"] = np.arange(16, dtype=np.uint8).reshape(4, 4)

    def build(h5):
        layout = h5py.VirtualLayout(shape=(4, 4), dtype=np.uint8)
        layout[:] = h5py.VirtualSource(str(tmp_path / "src.h5"), "data", shape=(4, 4))
        ds = h5.create_group("#refs#").create_virtual_dataset("a", layout)
        _cell_of(h5, ds)

    _hdf5_mat(tmp_path / "m" / "v.mat", build)
    with matlab.MatFile(RawTree(tmp_path / "m").get("v.mat")) as mf, \
            pytest.raises(matlab.MatSafetyError, match="is an HDF5 virtual dataset"):
        mf.cell("images")[0]


def test_hdf5_declared_sizes_are_checked_before_reading(tmp_path):
    def build(h5):
        refs = h5.create_group("#refs#")
        huge = refs.create_dataset("a", shape=(100_000, 100_000), dtype=np.uint8, chunks=(100, 100))  # 10 GB
        _cell_of(h5, huge)
        empty = h5.create_dataset("empty", data=np.asarray([100_000, 100_000], np.uint64))
        empty.attrs["MATLAB_class"] = np.bytes_("double")
        empty.attrs["MATLAB_empty"] = np.uint8(1)
        odd = h5.create_dataset("odd", data=np.zeros(3))
        odd.attrs["MATLAB_class"] = np.zeros(1000, np.uint8)  # one value expected

    path = _hdf5_mat(tmp_path / "m" / "h.mat", build)
    assert path.stat().st_size < 100_000
    with matlab.MatFile(RawTree(tmp_path / "m").get("h.mat")) as mf:
        with pytest.raises(matlab.MatSafetyError, match=r"images\{1\} declares 100000 x 100000 values of 1 bytes "
                                                        r"\(10,000,000,000 bytes\), over the limit"):
            mf.cell("images")[0]
        with pytest.raises(RawLayoutError, match="empty is marked empty but has dimensions"):
            mf.value("empty")
        with pytest.raises(matlab.MatSafetyError, match="/odd has a MATLAB_class attribute of 1000 values"):
            mf.value("odd")


def _v5_file(elements: bytes) -> bytes:
    return b"MATLAB 5.0 MAT-file".ljust(116) + b"\x00" * 8 + b"\x00\x01IM" + elements


def _v5_element(mtype: int, body: bytes) -> bytes:
    import struct

    return struct.pack("<II", mtype, len(body)) + body + b"\x00" * (-len(body) % 8)


def _v5_matrix(cls: int, dims: tuple[int, ...], content: bytes = b"") -> bytes:
    import struct

    flags = _v5_element(6, struct.pack("<II", cls, 0))
    return _v5_element(14, flags + _v5_element(5, struct.pack(f"<{len(dims)}i", *dims)) + _v5_element(1, b"x")
                       + content)


def test_mat_v5_declared_sizes_are_checked_before_loading(tmp_path, monkeypatch):
    # a cell declaring 1,000,000 x 1,000,000 elements in a few bytes (scipy would allocate them first)
    cell = _v5_file(_v5_matrix(1, (1_000_000, 1_000_000)))
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "cell.mat").write_bytes(cell)
    with pytest.raises(matlab.MatSafetyError, match="cell.mat: a MATLAB cell array declares 1000000 x 1000000 "
                                                    "elements, more than its"):
        matlab.MatFile(RawTree(tmp_path / "m").get("cell.mat"))
    # a double array declaring 100,000 x 100,000 values, inside a compressed element
    array = _v5_file(_v5_element(15, zlib.compress(_v5_matrix(6, (100_000, 100_000)))))
    (tmp_path / "m" / "array.mat").write_bytes(array)
    with pytest.raises(matlab.MatSafetyError, match=r"array.mat: a MATLAB array declares 100000 x 100000 values "
                                                    r"\(80,000,000,000 bytes\)"):
        matlab.MatFile(RawTree(tmp_path / "m").get("array.mat"))
    # MATLAB v4 (no text header): a double matrix declaring 100,000 x 100,000 values
    import struct

    (tmp_path / "m" / "v4.mat").write_bytes(struct.pack("<5i", 0, 100_000, 100_000, 0, 2) + b"x\x00" + b"\x00" * 64)
    with pytest.raises(matlab.MatSafetyError, match=r"v4.mat: a MATLAB array declares 100000 x 100000 values"):
        matlab.MatFile(RawTree(tmp_path / "m").get("v4.mat"))
    # a compressed element that inflates past the limit (a zip bomb in a .mat)
    monkeypatch.setattr(matlab, "MAX_MAT_BYTES", 1 << 20)
    bomb = _v5_file(_v5_element(15, zlib.compress(_v5_matrix(9, (4 << 20, 1), b"\x00" * (4 << 20)))))
    (tmp_path / "m" / "bomb.mat").write_bytes(bomb)
    assert len(bomb) < 10_000
    with pytest.raises(matlab.MatSafetyError, match="bomb.mat: variables inflate to over 1,048,576 bytes"):
        matlab.MatFile(RawTree(tmp_path / "m").get("bomb.mat"))


def test_mat_v5_compressed_element_is_walked_to_its_end(tmp_path):
    import io
    import struct

    import scipy.io

    buf = io.BytesIO()
    scipy.io.savemat(buf, {"a": np.arange(4, dtype=np.uint8)}, do_compression=True)
    data = buf.getvalue()
    mtype, n = struct.unpack_from("<II", data, 128)
    assert mtype == 15  # miCOMPRESSED

    def padded(junk: bytes) -> bytes:  # bytes after the zlib stream, inside the element
        return data[:128] + struct.pack("<II", 15, n + len(junk)) + data[136:136 + n] + junk

    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "ok.mat").write_bytes(padded(b"\xff" * 8))  # scipy reads past a few such bytes
    with matlab.MatFile(RawTree(tmp_path / "m").get("ok.mat")) as mf:
        assert mf.array("a").tolist() == [[0, 1, 2, 3]]
    # the walk reads 1 MiB at a time: past the stream's end it must skip the rest of the element, not take the
    # next tag from these 0xFF bytes (which skips to the end of the file, the next variable unchecked)
    bomb = _v5_element(15, zlib.compress(_v5_matrix(6, (100_000, 100_000))))
    (tmp_path / "m" / "next.mat").write_bytes(padded(b"\xff" * (1 << 20)) + bomb)
    with pytest.raises(matlab.MatSafetyError, match=r"next.mat: a MATLAB array declares 100000 x 100000 values"):
        matlab.MatFile(RawTree(tmp_path / "m").get("next.mat"))
    # a compressed element that inflates to more than its tag declares (16 bytes of body, 64 inflated)
    (tmp_path / "m" / "over.mat").write_bytes(_v5_file(_v5_element(15, zlib.compress(struct.pack("<II", 14, 16)
                                                                                      + bytes(64)))))
    with pytest.raises(RawFileError, match="over.mat: a compressed variable inflates to more than the 24 bytes "
                                           "it declares"):
        matlab.MatFile(RawTree(tmp_path / "m").get("over.mat"))
