"""Run by tests/test_compat.py with the Python of a compatibility environment (only `datasets` and Pillow,
no cytohub): load each build folder given on the command line with `datasets.load_dataset`, streaming and
not, and print one JSON document summarising what a user gets (every row, decoded), for the test to compare
with the Parquet shards. Standard library + datasets only: this must run on every supported version."""

from __future__ import annotations

import json
import sys


def summary(ds) -> dict:
    out = {}
    for split in sorted(ds):
        part = ds[split]
        names = list(part.features["label"].names)
        rows = []
        for row in part:
            rows.append({
                "id": row["id"],
                "label": names[row["label"]] if row["label"] >= 0 else None,
                "label_path": list(row["label_path"]),
                "harmonized": row["harmonized"],
                "image": list(row["image"].size),
                "focal_stack": [list(p.size) for p in row["focal_stack"]],
                "z_um": None if row["z_um"] is None else [round(z, 4) for z in row["z_um"]],
                "objects": [[o["category"], o["bbox"], o["polygon"], o["point"]] for o in row["objects"]],
                "mask": None if row["mask"] is None else list(row["mask"].size),
                "mpp": None if row["mpp"] is None else round(row["mpp"], 6),
                "group": row["group"],
                "extra": None if row["extra"] is None else json.loads(row["extra"]),
                "source_path": row["source_path"],
            })
        out[split] = {"class_names": names, "rows": rows}
    return out


def main(folders: list[str]) -> None:
    import datasets
    from datasets import load_dataset

    result = {"datasets": datasets.__version__, "builds": {}}
    for folder in folders:
        modes = {}
        for streaming in (False, True):
            modes["streaming" if streaming else "arrow"] = summary(load_dataset(folder, streaming=streaming))
        result["builds"][folder] = modes
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main(sys.argv[1:])
    sys.stdout.flush()
    # End without the interpreter's teardown: with some datasets/pyarrow releases, pyarrow's C++ thread pools
    # abort the process while it is torn down ("terminate called without an active exception") in a small
    # share of runs, after every row has been read and the result printed. What is tested is the result.
    import os

    os._exit(0)
