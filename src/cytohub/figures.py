"""Figures for the dataset card, drawn while a build streams its rows (deterministic PNGs under `assets/`):

* `samples.png` (and `samples-2.png`, ... when a corpus has more than `CLASSES_PER_PAGE` classes): a random
  draw of up to `PER_CLASS` rows of every class, each class named in full (code and name from its hierarchy),
  with boxes, polygons and points drawn in one colour per object category, masks overlaid, and a legend;
* `class-counts.png`: a bar chart of rows per class (objects per category for detection-only corpora), one
  colour per split;
* `object-crops.png`: for annotated corpora, a random draw of up to `CROPS_PER_CATEGORY` objects of every
  category, cropped around their geometry;
* `focal-stack.png`: for z-stacks, one field of view through its focal planes with their z offsets.

The draw is random but reproducible and independent of the order rows arrive in: every row (and object) gets a
priority from a hash of its id (a "bottom-k" sample), and the `k` smallest priorities of each class are kept.
Only thumbnails are kept in memory (never image bytes): at most PER_CLASS x classes thumbnails of 128 px.
Images of every mode are rendered for the eye (16-bit and float scaled by their own range, CMYK and palette
converted, transparency composited on white); the stored pixels are never changed. Every image is opened
through `images.open_header`: its declared size is checked against the pixel limit before it is decoded, and
an image that does not decode is an error naming its raw file.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from cytohub import images
from cytohub.builder import Builder
from cytohub.errors import RawFileError

PER_CLASS = 4
UNLABELLED_SAMPLES = 12  # corpora without image-level classes (detection, segmentation): three rows of four
CLASSES_PER_PAGE = 24
CROPS_PER_CATEGORY = 6
THUMB = 128
CROP = 72
_COLOURS = [(230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48), (145, 30, 180),
            (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212), (0, 128, 128), (170, 110, 40)]
_SPLIT_COLOURS = [(0, 114, 178), (230, 159, 0), (0, 158, 115), (204, 121, 167), (86, 180, 233), (213, 94, 0)]
NO_LABEL = "(no label)"


def _font(size: int = 12) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size)
    except TypeError:  # older Pillow
        return ImageFont.load_default()


def _priority(*keys: object) -> int:
    """A reproducible pseudo-random rank from the keys (the sample does not depend on row order)."""
    return int.from_bytes(hashlib.sha1("\x1f".join(map(str, keys)).encode()).digest()[:8], "big")


def sample_priority(row_id: str) -> int:
    """The rank of a row in its class's random draw (smallest first)."""
    return _priority("sample", row_id)


def crop_priority(row_id: str) -> int:
    """The rank of a row's objects in their category's random draw of crops (smallest first; the objects
    of one row follow in their order)."""
    return _priority("crop", row_id)


def to_display(im: Image.Image) -> Image.Image:
    """An 8-bit RGB rendering of an image of any mode, for figures only: 16-bit, 32-bit and float images are
    scaled from their own minimum..maximum to 0..255 (a 16-bit image shown as 8-bit would be white), CMYK and
    palette images converted, transparency composited on white."""
    if im.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        arr = np.array(im, dtype=np.float32)  # a copy, scaled in place: 4 bytes per pixel at most
        finite = np.isfinite(arr)
        if not finite.all():  # float images with NaN or infinity: the range of the finite values, NaN black
            lo, hi = (float(arr[finite].min()), float(arr[finite].max())) if finite.any() else (0.0, 0.0)
            np.copyto(arr, np.clip(np.nan_to_num(arr, nan=lo, posinf=hi, neginf=lo), lo, hi))
        else:
            lo, hi = float(arr.min()), float(arr.max())
        arr -= lo
        arr *= 255.0 / (hi - lo) if hi > lo else 0.0
        return Image.fromarray(arr.astype(np.uint8)).convert("RGB")
    if im.mode == "P":
        im = im.convert("RGBA")
    if im.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = im.convert("RGBA")
        canvas = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(canvas, rgba).convert("RGB")
    return im.convert("RGB")


def _open_scaled(data: bytes, longest: int, where: str) -> tuple[Image.Image, tuple[int, int]]:
    """(RGB rendering whose longest side is about `longest`, original size). Raises RawFileError naming
    `where` for an image over the pixel limit or one that does not decode."""
    im = images.open_header(data, where)  # the declared size is checked before anything decodes
    full = im.size  # before draft(), which may decode a JPEG at a reduced size
    try:
        if im.format == "JPEG":
            im.draft(im.mode, (longest * 2, longest * 2))
        return to_display(im), full
    except Exception as exc:  # the build checks headers only; corrupt pixel data fails here
        raise RawFileError(f"{where}: the image does not decode for the sample figures "
                           f"({type(exc).__name__}: {exc})") from None


def _fit(im: Image.Image, longest: int) -> Image.Image:
    scale = longest / max(im.size)
    return im.resize((max(1, round(im.size[0] * scale)), max(1, round(im.size[1] * scale))),
                     Image.Resampling.LANCZOS)


class SampleCollector:
    """Keeps a reproducible random draw of thumbnails per class (and object crops per category) while a build
    streams its rows; `write` draws the figures."""

    def __init__(self, builder: Builder) -> None:
        self.names = builder.class_names()
        self.titles = {lab.name: _class_title(lab.name, lab.path, lab.description) for lab in builder.labels}
        self.categories = [lab.name for lab in builder.object_labels]
        self.by_class: dict[str, list[tuple[int, str, Image.Image]]] = {}  # name -> [(priority, id, thumb)]
        self.crops: dict[str, list[tuple[tuple[int, int], str, Image.Image]]] = {}  # category -> [(rank, key, crop)]
        self.seen_categories: set[str] = set()
        self.stack: dict[str, Any] | None = None
        self.has_masks = False

    # ------------------------------------------------------------------ collecting
    def offer(self, row: dict[str, Any]) -> None:
        """Consider one complete row (unified schema, images as {"bytes", "path"})."""
        key = self.names[row["label"]] if row["label"] >= 0 else NO_LABEL
        rid = row["id"]
        objects = row.get("objects") or []
        self.seen_categories.update(o["category"] for o in objects)
        decoded: dict[str, Any] = {}  # the image, decoded once per row at most
        where = row.get("source_path") or rid

        def image() -> tuple[Image.Image, tuple[int, int]]:
            if "im" not in decoded:
                decoded["im"] = _open_scaled(row["image"]["bytes"], 4 * THUMB, where)
            return decoded["im"]

        if row["image"] is not None:
            prio = sample_priority(rid)
            bucket = self.by_class.setdefault(key, [])
            limit = PER_CLASS if self.names else UNLABELLED_SAMPLES
            if len(bucket) < limit or prio < bucket[-1][0]:
                im, full = image()
                mask = row.get("mask")
                thumb = self._thumb(im, full, objects, mask["bytes"] if mask else None)
                bucket.append((prio, rid, thumb))
                bucket.sort(key=lambda t: (t[0], t[1]))
                del bucket[limit:]
            row_prio = crop_priority(rid)
            for i, obj in enumerate(objects):
                prio = (row_prio, i)
                bucket = self.crops.setdefault(obj["category"], [])
                if len(bucket) < CROPS_PER_CATEGORY or prio < bucket[-1][0]:
                    crop = self._crop(*image(), obj)
                    if crop is None:
                        continue
                    bucket.append((prio, f"{rid}#{i}", crop))
                    bucket.sort(key=lambda t: (t[0], t[1]))
                    del bucket[CROPS_PER_CATEGORY:]
        if row.get("mask") is not None:
            self.has_masks = True
        if self.stack is None and len(row["focal_stack"]) > 1:
            self.stack = {"planes": [_fit(_open_scaled(p["bytes"], THUMB, f"{where} (focal plane {i})")[0], THUMB)
                                     for i, p in enumerate(row["focal_stack"])],
                          "z_um": row["z_um"], "id": rid}

    def _colour(self, cat: str) -> tuple[int, int, int]:
        i = self.categories.index(cat) if cat in self.categories else sum(map(ord, cat))
        return _COLOURS[i % len(_COLOURS)]

    def _thumb(self, im: Image.Image, full: tuple[int, int], objects: list[dict], mask: bytes | None) -> Image.Image:
        im = _fit(im, THUMB)
        f = im.size[0] / full[0]  # objects are drawn after scaling, in thumbnail pixels
        if mask is not None:
            im = _overlay(im, mask)
        d = ImageDraw.Draw(im)
        for obj in objects:
            c = self._colour(obj["category"])
            if obj.get("polygon"):
                pts = [v * f for v in obj["polygon"]]
                d.line(pts + pts[:2], fill=c, width=1)
            if obj.get("bbox"):
                x, y, w, h = (v * f for v in obj["bbox"])
                d.rectangle([x, y, x + w, y + h], outline=c, width=1)
            if obj.get("point"):
                x, y = (v * f for v in obj["point"])
                d.ellipse([x - 2, y - 2, x + 2, y + 2], outline=c, fill=c)
        return im

    def _crop(self, im: Image.Image, full: tuple[int, int], obj: dict) -> Image.Image | None:
        """The object's neighbourhood (its box, polygon bounds or a 32 px square around its point, plus 20%)."""
        if obj.get("bbox"):
            x, y, w, h = obj["bbox"]
        elif obj.get("polygon"):
            xs, ys = obj["polygon"][::2], obj["polygon"][1::2]
            x, y, w, h = min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)
        elif obj.get("point"):
            x, y, w, h = obj["point"][0] - 16, obj["point"][1] - 16, 32, 32
        else:
            return None
        f = im.size[0] / full[0]
        m = 0.2 * max(w, h, 4)
        box = [round((x - m) * f), round((y - m) * f), round((x + w + m) * f), round((y + h + m) * f)]
        box = [max(0, box[0]), max(0, box[1]), min(im.size[0], box[2]), min(im.size[1], box[3])]
        if box[2] - box[0] < 2 or box[3] - box[1] < 2:
            return None
        return _fit(im.crop(box), CROP)

    # ------------------------------------------------------------------ drawing
    def write(self, folder: Path, statistics: dict[str, Any] | None = None) -> list[str]:
        """Draw every figure that applies into `folder`; returns their paths relative to the build folder
        (`assets/...`), in the order the card shows them. `statistics` is the report's per-split statistics
        ({split: {"labels": {class: n}, "objects": {category: n}}}) for the bar chart."""
        folder.mkdir(parents=True, exist_ok=True)
        written = []
        rows = [(self.titles.get(name, name) if self.names else "random sample" if i == 0 else "",
                 self.by_class[name][i:i + PER_CLASS])
                for name in self._class_order() for i in range(0, len(self.by_class[name]), PER_CLASS)]
        for page in range(0, len(rows), CLASSES_PER_PAGE):
            name = "samples.png" if page == 0 else f"samples-{page // CLASSES_PER_PAGE + 1}.png"
            self._grid(rows[page:page + CLASSES_PER_PAGE]).save(folder / name, compress_level=3)
            written.append(f"assets/{name}")
        if statistics:
            chart = _bar_chart(statistics, self.names, self.titles)
            if chart is not None:
                chart.save(folder / "class-counts.png", compress_level=3)
                written.append("assets/class-counts.png")
        if self.crops:
            self._crop_grid().save(folder / "object-crops.png", compress_level=3)
            written.append("assets/object-crops.png")
        if self.stack:
            self._strip().save(folder / "focal-stack.png", compress_level=3)
            written.append("assets/focal-stack.png")
        return written

    def _class_order(self) -> list[str]:
        order = [n for n in self.names if n in self.by_class]
        return order + [k for k in self.by_class if k not in order]

    def _legend(self, width: int) -> Image.Image | None:
        cats = [c for c in self.categories if c in self.seen_categories]
        cats += sorted(self.seen_categories - set(cats))
        if not cats and not self.has_masks:
            return None
        font, pad = _font(), 4
        entries = [(self._colour(c), c) for c in cats]
        x, lines = pad, [[]]
        for colour, text in entries:  # flow the entries into lines
            w = 16 + int(ImageDraw.Draw(Image.new("RGB", (1, 1))).textlength(text, font=font)) + 14
            if x + w > width and lines[-1]:
                lines.append([])
                x = pad
            lines[-1].append((x, colour, text))
            x += w
        extra = ["masks: source label map overlaid in colour"] if self.has_masks else []
        height = pad + 18 * (len(lines) + len(extra)) + pad
        canvas = Image.new("RGB", (width, height), "white")
        d = ImageDraw.Draw(canvas)
        for r, line in enumerate(lines):
            for x0, colour, text in line:
                yy = pad + r * 18
                d.rectangle([x0, yy + 3, x0 + 11, yy + 14], fill=colour)
                d.text((x0 + 16, yy + 2), text, fill="black", font=font)
        for i, text in enumerate(extra):
            d.text((pad, pad + 18 * (len(lines) + i) + 2), text, fill="black", font=font)
        return canvas

    def _grid(self, rows: list[tuple[str, list[tuple[int, str, Image.Image]]]]) -> Image.Image:
        label_w, pad = 200, 4
        cell = THUMB + pad
        width = label_w + PER_CLASS * cell + pad
        legend = self._legend(width)
        top = legend.size[1] if legend else 0
        canvas = Image.new("RGB", (width, top + len(rows) * cell + pad), "white")
        if legend:
            canvas.paste(legend, (0, 0))
        d = ImageDraw.Draw(canvas)
        font = _font()
        for r, (title, thumbs) in enumerate(rows):
            y = top + pad + r * cell
            d.multiline_text((pad, y + THUMB // 2 - 16), _wrap(title, 28), fill="black", font=font)
            for c, (_, _, thumb) in enumerate(thumbs):
                canvas.paste(thumb, (label_w + c * cell + (THUMB - thumb.size[0]) // 2,
                                     y + (THUMB - thumb.size[1]) // 2))
        return canvas

    def _crop_grid(self) -> Image.Image:
        label_w, pad = 200, 4
        cell = CROP + pad
        cats = [c for c in self.categories if c in self.crops] + sorted(set(self.crops) - set(self.categories))
        canvas = Image.new("RGB", (label_w + CROPS_PER_CATEGORY * cell + pad, len(cats) * cell + pad), "white")
        d = ImageDraw.Draw(canvas)
        font = _font()
        for r, cat in enumerate(cats):
            y = pad + r * cell
            d.rectangle([pad, y + CROP // 2 - 6, pad + 11, y + CROP // 2 + 5], fill=self._colour(cat))
            d.multiline_text((pad + 16, y + CROP // 2 - 8), _wrap(cat, 26), fill="black", font=font)
            for c, (_, _, crop) in enumerate(self.crops[cat]):
                canvas.paste(crop, (label_w + c * cell + (CROP - crop.size[0]) // 2, y + (CROP - crop.size[1]) // 2))
        return canvas

    def _strip(self) -> Image.Image:
        planes, z = self.stack["planes"], self.stack["z_um"]
        pad, font = 4, _font()
        canvas = Image.new("RGB", (len(planes) * (THUMB + pad) + pad, THUMB + 28), "white")
        d = ImageDraw.Draw(canvas)
        for i, thumb in enumerate(planes):
            x = pad + i * (THUMB + pad)
            canvas.paste(thumb, (x, pad))
            label = f"z = {z[i]:+.1f} um" if z else f"plane {i}"  # z_um is null when the spacing is unknown
            d.text((x + 4, THUMB + 8), label, fill="black", font=font)
        return canvas


def _class_title(name: str, path: tuple[str, ...], description: str = "") -> str:
    """`name` with its full name: the hierarchy's leaf where it differs (bone-marrow `BLA: Blast`), else, for
    an abbreviation, the declared description (HiCervix `ECC: Endocervical cell`) unless that only says where
    the class came from (`folder B`, `labels.csv code N`)."""
    leaf = path[-1] if path else name
    if leaf != name:
        return f"{name}: {leaf}"
    abbreviation = name.replace("-", "").isupper() and " " not in name and len(name) <= 6
    provenance = any(w in description.lower() for w in ("folder", "code", "file"))
    return f"{name}: {description}" if abbreviation and description and not provenance else name


def _overlay(im: Image.Image, mask_bytes: bytes) -> Image.Image:
    """The thumbnail with every non-zero value of a label map overlaid in a colour of its own (alpha 0.45)."""
    try:
        mask = images.open_header(mask_bytes, "mask")  # the pixel limit before decoding
        mask.load()
    except Exception:  # a mask that does not decode is reported by the build and validate, not here
        return im
    arr = np.asarray(mask)
    if arr.ndim == 3:  # colour-coded masks: any non-background colour is a label
        arr = (arr[..., :3].astype(np.int64) * np.array([65536, 256, 1])).sum(-1)
    values = np.unique(arr)
    values = values[values != 0]
    if not len(values):
        return im
    index = np.searchsorted(values, arr)
    palette = np.array([(0, 0, 0)] + [_COLOURS[i % len(_COLOURS)] for i in range(len(values))], dtype=np.uint8)
    colours = palette[np.where(arr == 0, 0, index + 1)]
    colour_im = Image.fromarray(colours, "RGB").resize(im.size, Image.Resampling.NEAREST)
    alpha = Image.fromarray(np.where(arr == 0, 0, 115).astype(np.uint8), "L").resize(im.size,
                                                                                     Image.Resampling.NEAREST)
    return Image.composite(colour_im, im, alpha)


def _bar_chart(statistics: dict[str, Any], names: list[str], titles: dict[str, str]) -> Image.Image | None:
    """Horizontal bars of rows per class (else objects per category), stacked by split, with counts."""
    splits = list(statistics)
    key = "labels" if any(statistics[s].get("labels") for s in splits) and names else "objects"
    cats: list[str] = []
    for s in splits:
        for c in statistics[s].get(key, {}):
            if c not in cats:
                cats.append(c)
    if key == "labels":
        cats = [n for n in names if n in cats] + [c for c in cats if c not in names]
    if not cats:
        return None
    counts = {c: [statistics[s].get(key, {}).get(c, 0) for s in splits] for c in cats}
    top = max(sum(v) for v in counts.values()) or 1
    font, pad, row_h, label_w, bar_w = _font(), 6, 18, 240, 420
    header = 22
    canvas = Image.new("RGB", (label_w + bar_w + 90, header + len(cats) * row_h + 2 * pad), "white")
    d = ImageDraw.Draw(canvas)
    x = pad
    d.text((x, 4), "rows per class" if key == "labels" else "objects per category", fill="black", font=font)
    x += 150
    for i, s in enumerate(splits):
        d.rectangle([x, 6, x + 10, 16], fill=_SPLIT_COLOURS[i % len(_SPLIT_COLOURS)])
        d.text((x + 14, 4), s, fill="black", font=font)
        x += 24 + int(d.textlength(s, font=font))
    for r, c in enumerate(cats):
        y = header + pad + r * row_h
        title = titles.get(c, c) if key == "labels" else c
        d.text((pad, y + 2), title if len(title) <= 38 else title[:37] + "…", fill="black", font=font)
        x0 = label_w
        for i, n in enumerate(counts[c]):
            w = max(1, round(bar_w * n / top)) if n else 0  # a non-zero count always shows
            if w:
                d.rectangle([x0, y + 2, x0 + w, y + row_h - 3], fill=_SPLIT_COLOURS[i % len(_SPLIT_COLOURS)])
            x0 += w
        d.text((x0 + 6, y + 2), f"{sum(counts[c]):,}", fill="black", font=font)
    return canvas


def _wrap(text: str, width: int) -> str:
    words, lines, cur = text.split(), [], ""
    for w in words:
        if cur and len(cur) + 1 + len(w) > width:
            lines.append(cur)
            cur = w
        else:
            cur = f"{cur} {w}".strip()
    return "\n".join([*lines, cur][:3])
