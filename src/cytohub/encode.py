"""Complete rows of the unified schema -> Arrow record batches, without importing `datasets`.

`datasets` (and the pandas it pulls in) takes about 1.5 s of CPU to import; a build needs only the Arrow
schema of the shards and a way to put rows into it. `storage_schema` spells out the Arrow schema that
`cytohub.schema.arrow_schema(features(class_names))` gives, including the `huggingface` metadata that
`datasets` reads back to the same Features (the test suite checks that both are equal, so the two cannot
drift apart). `encode_rows` turns rows made by `cytohub.rows.RowMaker` into one record batch.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pyarrow as pa

IMAGE_TYPE = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
_FLOATS = pa.list_(pa.float32())
_IMAGE_FEATURE = {"_type": "Image"}


def _value(dtype: str) -> dict[str, str]:
    return {"dtype": dtype, "_type": "Value"}


def _list(feature: dict[str, Any]) -> list[dict[str, Any]]:
    return [feature]  # the portable spelling of List(feature): see cytohub.schema.portable_dict


def storage_schema(class_names: Sequence[str]) -> pa.Schema:
    """The Arrow schema of every shard of a corpus whose image-level classes are `class_names`: the same
    fields, types and `huggingface` metadata (the `datasets` Features, as JSON, in the form every `datasets`
    version reads) as `cytohub.schema.arrow_schema(features(class_names))`."""
    fields = [
        ("id", pa.string(), _value("string")),
        ("image", IMAGE_TYPE, _IMAGE_FEATURE),
        ("focal_stack", pa.list_(IMAGE_TYPE), _list(_IMAGE_FEATURE)),
        ("z_um", _FLOATS, _list(_value("float32"))),
        ("label", pa.int64(), {"names": list(class_names), "_type": "ClassLabel"}),
        ("label_path", pa.list_(pa.string()), _list(_value("string"))),
        ("harmonized", pa.string(), _value("string")),
        ("objects",
         pa.list_(pa.struct([("category", pa.string()), ("bbox", _FLOATS), ("polygon", _FLOATS),
                             ("point", _FLOATS)])),
         _list({"category": _value("string"), "bbox": _list(_value("float32")),
                "polygon": _list(_value("float32")), "point": _list(_value("float32"))})),
        ("mask", IMAGE_TYPE, _IMAGE_FEATURE),
        ("mpp", pa.float32(), _value("float32")),
        ("fov_center_um", _FLOATS, _list(_value("float32"))),
        ("group", pa.struct([("patient_id", pa.string()), ("slide_id", pa.string()), ("fov_id", pa.string())]),
         {"patient_id": _value("string"), "slide_id": _value("string"), "fov_id": _value("string")}),
        ("source_path", pa.string(), _value("string")),
        ("extra", pa.string(), _value("string")),
    ]
    meta = {"huggingface": json.dumps({"info": {"features": {name: feat for name, _, feat in fields}}})}
    return pa.schema([(name, typ) for name, typ, _ in fields], metadata=meta)


def encode_extra(value: Any) -> str | None:
    """The stored text of a row's `extra`: JSON text kept as given, anything else as JSON (keys sorted,
    non-ASCII kept; NumPy scalars as their Python value); None stays null. Raises ValueError for NaN or infinity
    and TypeError for values JSON cannot hold (e.g. bytes)."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            json.loads(value)
            return value
        except ValueError:
            pass
    return json.dumps(value, sort_keys=True, ensure_ascii=False, allow_nan=False, default=_json_default)


def _json_default(value: Any) -> Any:
    item = getattr(value, "item", None)  # NumPy scalars become their Python value
    if callable(item) and getattr(value, "shape", None) == ():
        return item()
    raise TypeError(f"{type(value).__name__} {value!r} cannot be stored in `extra` (not JSON)")


def row_nbytes(row: dict[str, Any]) -> int:
    """An estimate of a complete row's Arrow size in bytes (image bytes, text, coordinates, fixed overhead):
    what shards and row groups are sized by. Deterministic: the same row always gives the same number."""
    n = 256 + len(row["id"]) + len(row["source_path"]) + len(row["extra"] or "")
    for key in ("image", "mask"):
        if row[key] is not None:
            n += len(row[key]["bytes"]) + 16
    for plane in row["focal_stack"]:
        n += len(plane["bytes"]) + 16
    for obj in row["objects"]:
        n += 32 + len(obj["category"]) + 4 * sum(len(obj[k]) for k in ("bbox", "polygon", "point") if obj[k])
    return n


def encode_rows(rows: list[dict[str, Any]], schema: pa.Schema) -> pa.RecordBatch:
    """One record batch of `schema` from complete rows (`extra` already encoded with `encode_extra`)."""
    return pa.RecordBatch.from_pylist(rows, schema=schema)
