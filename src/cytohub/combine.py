"""Combining cytohub corpora: give datasets one `label` ClassLabel by class *name* or by harmonized node,
never by index.

Every cytohub build has the same features except the names of its `label` ClassLabel, so
`datasets.concatenate_datasets` needs the same names everywhere first. Casting the column
(`cast_column("label", ClassLabel(names=a + b))`) is wrong: it keeps each row's number and so changes its
class (a Herlev row with number 3 silently becomes the CCCID class 3). These helpers rebuild each row's number
from its class name, or from its `harmonized` node, and check that every row keeps its meaning.

Work on `datasets.Dataset` (the `label` column is replaced without copying the other columns) and on
`datasets.IterableDataset` (mapped lazily, as rows stream); `align_labels` also takes a `DatasetDict` or
`IterableDatasetDict` (each split). `label_path` (the corpus's own hierarchy) and `harmonized` are kept as
they are, so a row's native class is still known after relabelling by harmonized node.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

from datasets import (
    ClassLabel,
    Dataset,
    DatasetDict,
    Features,
    IterableDataset,
    IterableDatasetDict,
    concatenate_datasets,
)

from cytohub.schema import FIELDS
from cytohub.taxonomy import load_taxonomy

Missing = Literal["error", "drop", "unlabel"]
On = Literal["label", "harmonized"]
_MISSING = ("error", "drop", "unlabel")


def align_labels(ds, names: Sequence[str] | None = None, *, on: On = "label",
                 rename: Mapping[str, str] | None = None, depth: int | None = None,
                 trees: Sequence[str] | None = None, missing: Missing = "error"):
    """`ds` with `label` renumbered for the ClassLabel `names`, each row keeping its class.

    * `on="label"`: a row's class is its current class name (`ds.features["label"].names[label]`), after
      `rename` (old name -> new name; several old names may share a new one). `names` defaults to the
      (renamed) current names in their order.
    * `on="harmonized"`: a row's class is its `harmonized` node of cytohub's taxonomy, cut at `depth` of its
      tree when given (1 = the top level, e.g. `HSIL/...` -> `HSIL`; see `Taxonomy.cut`). `names` defaults
      to every node a cut can give, of `trees` (taxonomy tree ids, default all), in taxonomy order, so the
      numbers are the same whatever corpora are combined.
    Rows without a class (label -1) stay at -1. A row whose class is not in `names` (or, for `harmonized`,
    whose node is null) is handled by `missing`: "error" raises ValueError naming the class (for
    `on="label"` when called, since it is known from the features; for `on="harmonized"` when such a row is
    met, i.e. while iterating an IterableDataset), "drop" leaves the row out, "unlabel" sets its label to -1.

    Returns the same kind of object it is given. Raises ValueError for a dataset that is not a cytohub
    build (no ClassLabel `label`, missing cytohub columns), an unknown `on`/`missing`, duplicate `names`
    or, with `missing="error"`, classes that have no place in `names`.
    """
    if isinstance(ds, DatasetDict | IterableDatasetDict):
        return type(ds)({split: align_labels(part, names, on=on, rename=rename, depth=depth, trees=trees,
                                             missing=missing) for split, part in ds.items()})
    if on not in ("label", "harmonized"):
        raise ValueError(f"on must be 'label' or 'harmonized', got {on!r}")
    if missing not in _MISSING:
        raise ValueError(f"missing must be one of {_MISSING}, got {missing!r}")
    feats = _cytohub_features(ds)
    old = list(feats["label"].names)
    if on == "label":
        if depth is not None or trees is not None:
            raise ValueError("depth and trees apply to on='harmonized' only")
        rename = dict(rename or {})
        unknown = set(rename) - set(old)
        if unknown:
            raise ValueError(f"rename names classes the dataset does not have: {sorted(unknown)}; its classes "
                             f"are {old}")
        new_of = [rename.get(n, n) for n in old]
        names = list(dict.fromkeys(new_of)) if names is None else list(names)
        _check_names(names)
        index = {n: i for i, n in enumerate(names)}
        absent = [f"{o!r}" + (f" (renamed {n!r})" if n != o else "") for o, n in zip(old, new_of, strict=True)
                  if n not in index]
        if absent and missing == "error":
            raise ValueError(f"classes {', '.join(absent)} are not among the target names {names}; add them, "
                             "rename them, or pass missing='drop' or 'unlabel'")
        table = [index.get(n, -2) for n in new_of]  # -2: no place in `names`

        def relabel(labels: list[int], harmonized: list[str | None]) -> list[int]:
            return [lab if lab < 0 else table[lab] for lab in labels]
    else:
        if rename is not None:
            raise ValueError("rename applies to on='label' only")
        tax = load_taxonomy()
        names = tax.node_ids(depth, trees) if names is None else list(names)
        _check_names(names)
        index = {n: i for i, n in enumerate(names)}

        def relabel(labels: list[int], harmonized: list[str | None]) -> list[int]:
            out = []
            for lab, node in zip(labels, harmonized, strict=True):
                if node is None:
                    new = -1 if lab < 0 else -2  # a labelled row with no honest node has no class here
                else:
                    if node not in tax.nodes:
                        raise ValueError(f"harmonized value {node!r} is not a node of cytohub's taxonomy")
                    new = index.get(tax.cut(node, depth) if depth else node, -2)
                if new == -2 and missing == "error":
                    what = f"harmonized node {node!r}" if node is not None else "no harmonized node (null)"
                    raise ValueError(f"a row of class {old[lab]!r} has {what}, which is not among the target "
                                     f"names; pass names including it, or missing='drop' or 'unlabel'")
                out.append(new)
            return out

    target = ClassLabel(names=names)
    return _relabel(ds, feats, relabel, target, drop=missing == "drop")


def concat(datasets: Sequence, on: On = "label", names: Sequence[str] | None = None, *,
           depth: int | None = None, trees: Sequence[str] | None = None, missing: Missing = "error"):
    """One dataset of the rows of every cytohub dataset in `datasets` (in that order), with one `label`
    ClassLabel mapped by class name (`on="label"`) or harmonized node (`on="harmonized"`, cut at `depth`).

    For `on="label"`, `names` defaults to the union of the datasets' class names in order of first
    appearance; classes with the same name in two corpora become one class (rename them first with
    `align_labels(ds, rename=...)` where that would be wrong). For `on="harmonized"` see `align_labels`.
    All inputs must be `Dataset`s, or all `IterableDataset`s (pick a split of a `DatasetDict` first); the
    result is of the same kind. Raises ValueError as `align_labels` does, or when `datasets` is empty or
    mixes kinds.
    """
    datasets = list(datasets)
    if not datasets:
        raise ValueError("concat needs at least one dataset")
    if any(isinstance(d, DatasetDict | IterableDatasetDict) for d in datasets):
        raise ValueError("concat takes datasets, not dataset dicts: pick a split, e.g. concat([a['train'], "
                         "b['train']])")
    kinds = {type(d) for d in datasets}
    if not (kinds <= {Dataset} or kinds <= {IterableDataset}):
        raise ValueError(f"concat needs all Dataset or all IterableDataset, got {sorted(k.__name__ for k in kinds)}")
    if on == "label" and names is None:
        names = list(dict.fromkeys(n for d in datasets for n in _cytohub_features(d)["label"].names))
    aligned = [align_labels(d, names, on=on, depth=depth, trees=trees, missing=missing) for d in datasets]
    return concatenate_datasets(aligned)


# ---------------------------------------------------------------------------------------------- internals
def _check_names(names: list[str]) -> None:
    if not names or len(set(names)) != len(names) or not all(isinstance(n, str) and n for n in names):
        raise ValueError(f"names must be distinct non-empty strings, got {names}")


def _cytohub_features(ds) -> Features:
    if not isinstance(ds, Dataset | IterableDataset):
        raise ValueError(f"expected a datasets.Dataset or IterableDataset, got {type(ds).__name__}")
    feats = ds.features
    if feats is None:
        raise ValueError("the dataset's features are unknown; load a cytohub build (its card carries them) or "
                         "pass features= to load_dataset")
    lacking = [k for k in FIELDS if k not in feats]
    if lacking or not isinstance(feats["label"], ClassLabel):
        raise ValueError(f"not a cytohub dataset: {'no columns ' + str(lacking) if lacking else 'label'} "
                         + ("" if lacking else "is not a ClassLabel"))
    return feats


def _relabel(ds, feats: Features, relabel: Callable[[list[int], list[Any]], list[int]], target: ClassLabel,
             drop: bool):
    new_feats = Features({k: (target if k == "label" else v) for k, v in feats.items()})
    if isinstance(ds, IterableDataset):
        if drop:
            ds = ds.filter(lambda labels, harmonized: [lab != -2 for lab in relabel(labels, harmonized)],
                           input_columns=["label", "harmonized"], batched=True)

        def fn(labels, harmonized):
            return {"label": [max(lab, -1) for lab in relabel(labels, harmonized)]}

        return ds.map(fn, input_columns=["label", "harmonized"], batched=True, features=new_feats)
    table = ds.select_columns(["label", "harmonized"]).with_format("arrow")[:]
    labels = relabel(table.column("label").to_pylist(), table.column("harmonized").to_pylist())
    keep = [i for i, lab in enumerate(labels) if lab != -2] if drop else None
    order = list(ds.column_names)
    out = ds.remove_columns("label").add_column("label", [max(lab, -1) for lab in labels], feature=target)
    out = out.select_columns(order)
    return out.select(keep) if keep is not None and len(keep) != len(labels) else out
