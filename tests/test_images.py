"""Images the build passes through: the decompression-bomb guard, end markers and truncation, EXIF
orientation, image modes, and how the figures show them. Every input is made here, in memory."""

from __future__ import annotations

import io
import os
import struct
import subprocess
import sys
import textwrap
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps, PngImagePlugin

from cytohub import images
from cytohub.build import build
from cytohub.errors import RawFileError
from cytohub.figures import to_display
from cytohub.validate import validate
from folder_corpus import FolderCorpus, encode, exif_with_orientation, png_chunk, png_declaring
from helpers import read_rows, report

TESTS = Path(__file__).resolve().parent
RNG = np.random.default_rng(7)
PIXELS = (RNG.random((20, 40, 3)) * 255).astype(np.uint8)  # 40 wide, 20 high
BASE = Image.fromarray(PIXELS)


# --------------------------------------------------------------------------------------------- bomb guard
def test_pillow_guard_is_on_at_the_cytohub_limit():
    import cytohub.cli  # noqa: F401 - every engine module, as the CLI loads them
    import cytohub.hub  # noqa: F401
    import cytohub.validate  # noqa: F401
    from cytohub import registry

    registry.builders()
    assert images.MAX_IMAGE_PIXELS == 2**26
    assert Image.MAX_IMAGE_PIXELS == images.MAX_IMAGE_PIXELS  # never None
    assert images.MAX_IMAGE_PIXELS >= 8 * 3264 * 2448  # the largest real image of any corpus, with room
    for folder in ("src", "builders"):
        for path in (TESTS.parent / folder).rglob("*.py"):
            assert "MAX_IMAGE_PIXELS = None" not in path.read_text(), path


def _tiff_declaring(w: int, h: int) -> bytes:
    entries = [(256, 4, 1, w), (257, 4, 1, h), (258, 3, 1, 8), (259, 3, 1, 1), (262, 3, 1, 1), (273, 4, 1, 8),
               (277, 3, 1, 1), (278, 4, 1, h), (279, 4, 1, 0)]
    ifd = struct.pack("<H", len(entries)) + b"".join(
        struct.pack("<HHI", t, typ, n) + (struct.pack("<HH", v, 0) if typ == 3 else struct.pack("<I", v))
        for t, typ, n, v in entries) + b"\0\0\0\0"
    return b"II*\x00" + struct.pack("<I", 8) + ifd


@pytest.mark.parametrize("fmt,data", [
    ("PNG", png_declaring(100_000, 100_000)),
    ("JPEG", None),  # a JPEG whose SOF says 60000 x 60000
    ("TIFF", _tiff_declaring(100_000, 100_000)),
    ("BMP", b"BM" + struct.pack("<IHHI", 60, 0, 0, 54) + struct.pack("<IiiHHIIiiII", 40, 50_000, 50_000, 1, 24,
                                                                       0, 0, 0, 0, 0, 0) + b"\0" * 6),
])
def test_a_declared_bomb_is_refused_from_its_header(fmt, data):
    if fmt == "JPEG":
        small = encode(Image.new("L", (8, 8)), "JPEG")
        sof = small.index(b"\xff\xc0")
        data = small[:sof + 5] + struct.pack(">HH", 60_000, 60_000) + small[sof + 9:]
    with pytest.raises(RawFileError) as err:
        images.header(data, f"raw/bomb.{fmt.lower()}")
    msg = str(err.value)
    assert msg.startswith(f"raw/bomb.{fmt.lower()}: the {fmt} header declares ")
    assert "over the limit of 67,108,864 pixels" in msg and "CYTOHUB_MAX_IMAGE_PIXELS" in msg
    side = "100000x100000" if fmt in ("PNG", "TIFF") else ("60000x60000" if fmt == "JPEG" else "50000x50000")
    assert side in msg


_BOMB_SCRIPT = textwrap.dedent("""
    import resource, shutil, sys
    from pathlib import Path
    sys.path.insert(0, {tests!r})
    from folder_corpus import FolderCorpus, png_declaring
    resource.setrlimit(resource.RLIMIT_AS, ({limit}, {limit}))
    import pyarrow as pa, pyarrow.parquet as pq
    from cytohub import images
    from cytohub.build import build
    from cytohub.errors import CytohubError
    from cytohub.figures import SampleCollector
    from cytohub.validate import validate
    tmp = Path({tmp!r})
    bomb = png_declaring(100_000, 100_000)
    try:  # the build: the header check refuses it before anything decodes it
        build(FolderCorpus(), tmp / "raw", tmp / "out")
        print("BUILD: built")
    except CytohubError as exc:
        print("BUILD:", exc)
    try:  # the figures
        c = SampleCollector(FolderCorpus())
        c.offer({{"label": 0, "image": {{"bytes": bomb}}, "objects": [], "id": "x", "source_path": "raw/bomb.png",
                  "focal_stack": []}})
        c.write(tmp / "assets")
        print("FIGURES: drawn")
    except CytohubError as exc:
        print("FIGURES:", exc)
    # validate: a build folder whose shard holds the bomb (as a folder made elsewhere could)
    shard = next((tmp / "good" / "data").glob("*.parquet"))
    table = pq.read_table(shard)
    rows = table.to_pylist()
    rows[0]["image"]["bytes"] = bomb
    pq.write_table(pa.Table.from_pylist(rows, schema=table.schema), shard)
    print("VALIDATE:", [p for p in validate(tmp / "good").problems if "limit" in p])
    try:  # datasets' own decode, as users and push would run it: Pillow's guard is on
        from datasets.features import Image as HFImage
        HFImage().decode_example({{"bytes": bomb, "path": None}})
        print("DATASETS: decoded")
    except Exception as exc:
        print("DATASETS:", type(exc).__name__)
    sys.stdout.flush()
    import os
    os._exit(0)  # skip the interpreter's teardown, as the cytohub command does (pyarrow thread pools can abort it)
""")


def test_a_png_bomb_is_refused_everywhere_under_a_memory_limit(tmp_path):
    """A 1 KB PNG declaring 100000 x 100000 pixels (10 GB decoded): the build, the figures, validate and
    datasets' decode refuse it, in a process limited to 3 GB of address space."""
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "bomb.png").write_bytes(png_declaring(100_000, 100_000))
    assert len((raw / "bomb.png").read_bytes()) < 2000
    good = tmp_path / "goodraw"
    good.mkdir()
    (good / "a.png").write_bytes(encode(BASE, "PNG"))
    build(FolderCorpus(), good, tmp_path / "good")
    script = _BOMB_SCRIPT.format(tests=str(TESTS), tmp=str(tmp_path), limit=3 * 2**30)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = dict(line.split(": ", 1) for line in proc.stdout.splitlines() if ": " in line)
    assert lines["BUILD"].startswith("bomb.png: the PNG header declares 100000x100000 pixels (10,000,000,000)")
    assert lines["FIGURES"].startswith("raw/bomb.png: the PNG header declares 100000x100000")
    assert "row 'a': image: the PNG header declares 100000x100000" in lines["VALIDATE"]
    assert lines["DATASETS"] == "DecompressionBombError"
    assert not (tmp_path / "out").exists()


def test_the_pixel_limit_is_set_by_the_environment(tmp_path):
    script = ("from cytohub import images\nfrom PIL import Image\nimport io\n"
              "def png(w, h):\n    b = io.BytesIO(); Image.new('L', (w, h)).save(b, 'PNG'); return b.getvalue()\n"
              "print(images.MAX_IMAGE_PIXELS, Image.MAX_IMAGE_PIXELS, images.size(png(30, 30), 'ok.png'))\n"
              "try:\n    images.size(png(40, 30), 'big.png')\nexcept Exception as e:\n    print(e)\n")
    env = {**os.environ, "CYTOHUB_MAX_IMAGE_PIXELS": "1000"}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=60)
    first, second = out.stdout.splitlines()
    assert first == "1000 1000 (30, 30)"
    assert second.startswith("big.png: the PNG header declares 40x30 pixels (1,200), over the limit of 1,000")


# --------------------------------------------------------------------------------------------- headers
def _png_raw(bit_depth: int, colour_type: int, w: int = 7, h: int = 5) -> bytes:
    """A PNG of any bit depth and colour type (PNG spec 11.2.2), made by hand: Pillow writes only some."""
    channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[colour_type]
    row = (w * channels * bit_depth + 7) // 8
    data = b"".join(b"\x00" + bytes((i * 37 + j) % 256 for j in range(row)) for i in range(h))
    chunks = png_chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, bit_depth, colour_type, 0, 0, 0))
    if colour_type == 3:
        chunks += png_chunk(b"PLTE", bytes(range(48)))
    return b"\x89PNG\r\n\x1a\n" + chunks + png_chunk(b"IDAT", zlib.compress(data)) + png_chunk(b"IEND", b"")


HEADER_CASES = {
    **{f"png-{d}-{c}": _png_raw(d, c) for d, c in ((1, 0), (2, 0), (4, 0), (8, 0), (16, 0), (8, 2), (16, 2),
                                                    (1, 3), (2, 3), (4, 3), (8, 3), (8, 4), (16, 4), (8, 6),
                                                    (16, 6))},
    "jpeg-L": encode(BASE.convert("L"), "JPEG"), "jpeg-RGB": encode(BASE, "JPEG"),
    "jpeg-CMYK": encode(BASE.convert("CMYK"), "JPEG"), "jpeg-progressive": encode(BASE, "JPEG", progressive=True),
    "jpeg-exif": encode(BASE, "JPEG", exif=exif_with_orientation(1)),
    "mpo": encode(BASE, "MPO", save_all=True, append_images=[BASE.convert("L").convert("RGB")]),
    "tiff": encode(BASE, "TIFF"), "bmp": encode(BASE, "BMP"), "gif": encode(BASE, "GIF"),
    "webp": encode(BASE, "WEBP"),
}


@pytest.mark.parametrize("case", sorted(HEADER_CASES))
def test_header_gives_format_mode_and_size_as_pillow_and_datasets_do(case):
    data = HEADER_CASES[case]
    h = images.header(data, case)
    with Image.open(io.BytesIO(data)) as im:
        assert (h.format, h.mode, (h.width, h.height)) == (im.format, im.mode, im.size)
    assert _decode_as_datasets(data).size == h.decoded_size


# --------------------------------------------------------------------------------------------- end markers
def _jpeg_with_thumbnail() -> bytes:
    """A JPEG whose EXIF block holds a thumbnail, itself a JPEG ending in FF D9."""
    thumb = encode(Image.new("RGB", (8, 8), (0, 200, 0)), "JPEG")
    exif = Image.Exif()
    exif[0x010F] = "test camera"
    blob = exif.tobytes()
    return encode(BASE, "JPEG", quality=90, exif=blob + thumb)


@pytest.mark.parametrize("kind", ["baseline", "progressive", "thumbnail"])
def test_jpeg_with_bytes_after_the_end_marker_is_kept_as_published(kind):
    data = {"baseline": encode(BASE, "JPEG"), "progressive": encode(BASE, "JPEG", progressive=True),
            "thumbnail": _jpeg_with_thumbnail()}[kind]
    for tail in (b"\x00" * 3, b"\r\n", b"JUNK\xff\xd9 more \xff\xd8 bytes" * 20):
        h = images.header(data + tail, "a.jpg")
        assert (h.format, h.width, h.height, h.trailing_bytes) == ("JPEG", 40, 20, len(tail))
        p = images.prepare(data + tail, "a.jpg")
        assert p.data == data + tail  # passed through untouched
        images.decode(data + tail, "a.jpg")


@pytest.mark.parametrize("kind", ["baseline", "progressive", "thumbnail"])
def test_a_truncated_jpeg_is_refused(kind):
    data = {"baseline": encode(BASE, "JPEG"), "progressive": encode(BASE, "JPEG", progressive=True),
            "thumbnail": _jpeg_with_thumbnail()}[kind]
    for cut in (len(data) - 2, len(data) * 3 // 4):
        for tail in (b"", b"\x00" * 16):  # padding after the cut is not an end marker either
            with pytest.raises(RawFileError, match=r"a.jpg: the JPEG data is truncated"):
                images.header(data[:cut] + tail, "a.jpg")


def test_png_with_bytes_after_iend_is_kept_and_a_truncated_png_is_refused():
    data = encode(BASE, "PNG")
    tail = b"IEND" + b"\x00" * 40 + b"\x89PNG trailing"
    h = images.header(data + tail, "a.png")
    assert (h.format, h.mode, h.width, h.height, h.trailing_bytes) == ("PNG", "RGB", 40, 20, len(tail))
    assert images.prepare(data + tail, "a.png").data == data + tail
    for cut in (len(data) - 1, len(data) - 12, len(data) // 2):
        with pytest.raises(RawFileError, match="a.png: the PNG data is truncated"):
            images.header(data[:cut], "a.png")


@pytest.mark.parametrize("compression", [None, "tiff_lzw", "tiff_adobe_deflate"])
def test_a_truncated_tiff_is_refused(compression):
    data = encode(Image.fromarray((RNG.random((64, 64)) * 255).astype(np.uint8)), "TIFF",
                  **({"compression": compression} if compression else {}))
    assert images.header(data, "a.tif").format == "TIFF"
    strips = Image.open(io.BytesIO(data)).tag_v2[273]
    cut = strips[0] + 10  # inside the pixel data (the image directory is before or after it)
    with pytest.raises(RawFileError, match=r"a.tif: the TIFF data is truncated \(its image (data runs to|directory)"):
        images.header(data[:cut], "a.tif")


def test_build_keeps_trailing_bytes_and_refuses_a_truncated_tiff(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    jpg = encode(BASE, "JPEG") + b"\x00" * 128
    (raw / "a.jpg").write_bytes(jpg)
    (raw / "b.png").write_bytes(encode(BASE, "PNG"))
    res = build(FolderCorpus(), raw, tmp_path / "out")
    rows = {r["id"]: r for r in read_rows(tmp_path / "out")}
    assert rows["a"]["image"]["bytes"] == jpg
    assert res.report["images"]["trailing_bytes_kept"] == {"count": 1, "examples": ["a.jpg"]}
    assert validate(tmp_path / "out").ok
    tif = encode(Image.fromarray(PIXELS), "TIFF")
    (raw / "c.tif").write_bytes(tif[: len(tif) // 2])
    with pytest.raises(RawFileError, match="c.tif: the TIFF data is truncated"):
        build(FolderCorpus(), raw, tmp_path / "out2")
    assert not (tmp_path / "out2").exists()


# --------------------------------------------------------------------------------------------- orientation
def _xmp(value: int) -> bytes:
    return (b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF><rdf:Description tiff:Orientation="'
            + str(value).encode() + b'"/></rdf:RDF></x:xmpmeta>')


def _oriented(carrier: str, value: int) -> bytes:
    if carrier == "jpeg-exif":
        return encode(BASE, "JPEG", quality=95, exif=exif_with_orientation(value))
    if carrier == "jpeg-xmp":
        j = encode(BASE, "JPEG", quality=95)
        body = b"http://ns.adobe.com/xap/1.0/\x00" + _xmp(value)
        return j[:2] + b"\xff\xe1" + struct.pack(">H", len(body) + 2) + body + j[2:]
    if carrier == "png-exif":
        return encode(BASE, "PNG", exif=exif_with_orientation(value))
    if carrier == "png-exif-after-pixels":
        p = encode(BASE, "PNG")
        return p[:-12] + png_chunk(b"eXIf", exif_with_orientation(value)[6:]) + p[-12:]
    if carrier == "png-raw-profile":
        raw = exif_with_orientation(value)
        info = PngImagePlugin.PngInfo()
        info.add_text("Raw profile type exif", f"\nexif\n{len(raw):8d}\n{raw.hex()}\n", zip=True)
        return encode(BASE, "PNG", pnginfo=info)
    if carrier == "png-xmp":
        info = PngImagePlugin.PngInfo()
        info.add_itxt("XML:com.adobe.xmp", _xmp(value).decode(), zip=True)
        return encode(BASE, "PNG", pnginfo=info)
    if carrier == "tiff":
        return encode(BASE, "TIFF", tiffinfo={0x0112: value}, compression="tiff_lzw")
    if carrier == "webp":
        return encode(BASE, "WEBP", lossless=True, exif=exif_with_orientation(value))
    raise AssertionError(carrier)


def _decode_as_datasets(data: bytes) -> Image.Image:
    from datasets.features import Image as HFImage

    return HFImage().decode_example({"bytes": data, "path": None})


def _pixel_data(data: bytes) -> bytes:
    """The compressed pixel data: a JPEG's scans, a PNG's IDAT chunks, a TIFF's strips, a WebP's VP8L chunk."""
    if data[:2] == b"\xff\xd8":
        return data[data.index(b"\xff\xda"):]
    if data[:4] == b"\x89PNG":
        out, pos = b"", 8
        while pos < len(data):
            n = struct.unpack(">I", data[pos:pos + 4])[0]
            if data[pos + 4:pos + 8] == b"IDAT":
                out += data[pos:pos + 12 + n]
            pos += 12 + n
        return out
    if data[:4] == b"RIFF":
        at = data.index(b"VP8L")
        return data[at:at + 8 + struct.unpack("<I", data[at + 4:at + 8])[0]]
    tags = Image.open(io.BytesIO(data)).tag_v2
    return b"".join(data[o:o + c] for o, c in zip(tags[273], tags[279], strict=True))


CARRIERS = ["jpeg-exif", "jpeg-xmp", "png-exif", "png-exif-after-pixels", "png-raw-profile", "png-xmp", "tiff",
            "webp"]


@pytest.mark.parametrize("carrier", CARRIERS)
@pytest.mark.parametrize("value", [6, 3])
def test_orientation_is_set_to_1_without_touching_the_pixel_data(carrier, value):
    data = _oriented(carrier, value)
    h = images.header(data, "a")
    assert h.orientation == value
    assert (h.width, h.height) == (40, 20)  # the stored pixels
    assert h.decoded_size == ((20, 40) if value == 6 else (40, 20))
    assert _decode_as_datasets(data).size == h.decoded_size  # what datasets does today with these bytes

    p = images.prepare(data, "a")
    assert p.original_orientation == value and p.header.orientation == 1
    assert _pixel_data(p.data) == _pixel_data(data)
    shown = _decode_as_datasets(p.data)
    assert shown.size == (40, 20)
    stored = np.asarray(Image.open(io.BytesIO(data)).convert("RGB")) if carrier.startswith("jpeg") else PIXELS
    assert np.array_equal(np.asarray(shown.convert("RGB")), stored)


def test_an_image_without_orientation_is_passed_through_as_it_is():
    for data in (encode(BASE, "JPEG"), encode(BASE, "PNG"), encode(BASE, "JPEG", exif=exif_with_orientation(1))):
        p = images.prepare(data, "a")
        assert p.data is data or p.data == data
        assert p.original_orientation == 1


@pytest.mark.parametrize("orientation", range(1, 9))
def test_displayed_to_stored_inverts_exif_transpose(orientation):
    w, h = 5, 3
    for sx, sy in ((0, 0), (4, 0), (1, 2), (3, 1)):
        stored = np.zeros((h, w), np.uint8)
        stored[sy, sx] = 255
        im = Image.fromarray(stored)
        exif = im.getexif()
        exif[0x0112] = orientation
        im.info["exif"] = exif.tobytes()
        im._exif = exif
        shown = np.asarray(ImageOps.exif_transpose(im))
        dy, dx = (int(v[0]) for v in np.nonzero(shown))
        assert images.displayed_to_stored([dx + 0.5, dy + 0.5], orientation, (w, h)) == [sx + 0.5, sy + 0.5]


def test_build_keeps_pixels_masks_and_geometry_in_one_frame(tmp_path):
    """A JPEG with Orientation=6, its mask and a box, all in the stored frame (40 x 20): after the build,
    datasets shows image and mask at 40 x 20 and the box lies inside; the report and card say what was done."""
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "a.jpg").write_bytes(_oriented("jpeg-exif", 6))
    mask = np.zeros((20, 40), np.uint8)
    mask[5:15, 30:38] = 1
    (raw / "a.mask.png").write_bytes(encode(Image.fromarray(mask), "PNG"))
    (raw / "a.box").write_text("30 5 8 10")
    res = build(FolderCorpus(), raw, tmp_path / "out")
    row = read_rows(tmp_path / "out")[0]
    shown, shown_mask = _decode_as_datasets(row["image"]["bytes"]), _decode_as_datasets(row["mask"]["bytes"])
    assert shown.size == shown_mask.size == (40, 20)
    x, y, w, h = row["objects"][0]["bbox"]
    assert np.asarray(shown_mask)[int(y + h / 2), int(x + w / 2)] == 1  # the box is on the mask's object
    assert res.report["images"]["exif_orientation_normalised"] == {"count": 1, "by_value": {"6": 1},
                                                                    "examples": ["a.jpg"]}
    card = (tmp_path / "out" / "README.md").read_text()
    assert "1 image(s) carried an EXIF orientation tag other than 1, which was set to 1" in card
    assert validate(tmp_path / "out").ok

    # a folder holding the un-normalised bytes (an older build) is flagged by validate
    import pyarrow as pa
    import pyarrow.parquet as pq

    shard = next((tmp_path / "out" / "data").glob("*.parquet"))
    table = pq.read_table(shard)
    rows = table.to_pylist()
    rows[0]["image"]["bytes"] = (raw / "a.jpg").read_bytes()
    pq.write_table(pa.Table.from_pylist(rows, schema=table.schema), shard)
    problems = validate(tmp_path / "out").problems
    assert any("EXIF orientation 6: datasets shows it as 20x40" in p for p in problems), problems
    assert any("bbox" in p and "20x40" in p for p in problems), problems  # geometry checked at the shown size


# --------------------------------------------------------------------------------------------- modes
def _mode_images() -> dict[str, bytes]:
    grad16 = np.tile(np.linspace(0, 4095, 40).astype(np.uint16), (20, 1))
    pal = Image.fromarray((PIXELS[..., 0] // 64).astype(np.uint8), "L").convert("P")
    pal.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0, 0, 0, 255] + [0] * 756)
    return {
        "g16.png": encode(Image.frombytes("I;16", (40, 20), grad16.tobytes()), "PNG"),
        "pal.png": encode(pal, "PNG"),
        "rgba.png": encode(BASE.convert("RGBA"), "PNG"),
        "la.png": encode(BASE.convert("LA"), "PNG"),
        "bw.png": encode(BASE.convert("1"), "PNG"),
        "cmyk.jpg": encode(BASE.convert("CMYK"), "JPEG"),
        "grey.jpg": encode(BASE.convert("L"), "JPEG"),
        "rgb.tif": encode(BASE, "TIFF"),
        "big.png": encode(Image.new("RGB", (64, 48), (9, 9, 9)), "PNG"),
    }


def test_modes_are_kept_as_published_and_counted(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    files = _mode_images()
    for name, data in files.items():
        (raw / name).write_bytes(data)
    res = build(FolderCorpus(), raw, tmp_path / "out")
    rows = {r["id"]: r for r in read_rows(tmp_path / "out")}
    for name, data in files.items():
        assert rows[name.split(".")[0]]["image"]["bytes"] == data, name
    stats = res.report["images"]["image"]
    assert stats == {"count": 9, "formats": {"JPEG": 2, "PNG": 6, "TIFF": 1},
                     "modes": {"1": 1, "CMYK": 1, "I;16": 1, "L": 1, "LA": 1, "P": 1, "RGB": 2, "RGBA": 1},
                     "width": [40, 64], "height": [20, 48]}
    assert report(tmp_path / "out")["images"]["image"] == stats
    card = (tmp_path / "out" / "README.md").read_text()
    assert "| Images (format, mode, size) | JPEG 2, PNG 6, TIFF 1; mode 1 1, CMYK 1, I;16 1, L 1, LA 1, P 1, RGB 2, " \
           "RGBA 1; 40-64 x 20-48 px |" in card
    assert validate(tmp_path / "out").ok


def test_figures_show_float_images_with_nan_and_infinity():
    f = np.tile(np.linspace(-1, 1, 40, dtype=np.float32), (20, 1))
    f[0, 0], f[1, 1], f[2, 2] = np.nan, np.inf, -np.inf
    shown = np.asarray(to_display(Image.fromarray(f, "F")).convert("L"))
    assert shown[10, 0] == 0 and shown[10, 39] == 255  # -1..1 over the finite values, not all black
    assert shown[0, 0] == 0 and shown[1, 1] == 255 and shown[2, 2] == 0


def test_a_corrupt_image_in_the_figures_names_its_file(tmp_path):
    from cytohub.figures import SampleCollector

    data = bytearray(encode(BASE, "PNG"))
    idat = data.index(b"IDAT")
    data[idat + 8:idat + 40] = b"\x00" * 32  # a valid structure, broken pixel data
    c = SampleCollector(FolderCorpus())
    with pytest.raises(RawFileError, match=r"raw/x.png: the image does not decode for the sample figures"):
        c.offer({"label": 0, "image": {"bytes": bytes(data)}, "objects": [], "id": "x", "source_path": "raw/x.png",
                 "focal_stack": []})
