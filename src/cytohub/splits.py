"""Split assignment: official splits as declared, one `train` split, or ratios over groups.

Ratio splits are grouped (no patient, slide or FOV crosses splits: each row's group is its patient id,
else slide id, else FOV id, else its own id), stratified by each group's majority label, and
deterministic for a given seed and input.
"""

from __future__ import annotations

import difflib
import random
import re
from collections.abc import Sequence

import numpy as np

from cytohub.errors import CytohubError

_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


STANDARD = ("train", "validation", "test")  # the split names `datasets` and the Hub know
_ALIASES = {"val": "validation", "valid": "validation", "dev": "validation", "eval": "validation",
            "training": "train", "testing": "test"}


def check_name(name: str, official: Sequence[str] = ()) -> None:
    """A split name must be train, validation, test or one of the corpus's official split names; anything else
    (a typo such as 'valdiation', or 'val') is an error that suggests the closest allowed name."""
    allowed = list(dict.fromkeys([*STANDARD, *official]))
    if name in allowed:
        return
    guess = _ALIASES.get(name.lower()) or next(iter(difflib.get_close_matches(name.lower(), allowed, n=1,
                                                                            cutoff=0.6)), None)
    hint = f"did you mean {guess!r}? " if guess else ""
    raise CytohubError(f"--split: unknown split name {name!r}; {hint}allowed names: {', '.join(allowed)}")


def parse_spec(spec: str, official: Sequence[str] = ()) -> dict[str, float]:
    """'train=0.8,validation=0.1,test=0.1' -> ratios (checked: names as in `check_name`, positive, sum to 1).
    `official` adds the corpus's official split names to the allowed ones."""
    ratios: dict[str, float] = {}
    for part in spec.split(","):
        name, sep, value = part.strip().partition("=")
        if not sep or not _NAME.match(name.strip()):
            raise CytohubError(f"--split {spec!r}: expected NAME=RATIO[,NAME=RATIO...], e.g. "
                               "train=0.8,validation=0.1,test=0.1")
        check_name(name.strip(), official)
        try:
            ratio = float(value)
        except ValueError:
            raise CytohubError(f"--split {spec!r}: {value!r} is not a number") from None
        if not 0 < ratio <= 1 or name.strip() in ratios:
            raise CytohubError(f"--split {spec!r}: each ratio must be in (0, 1] and each name used once")
        ratios[name.strip()] = ratio
    if abs(sum(ratios.values()) - 1) > 1e-6:
        raise CytohubError(f"--split {spec!r}: ratios sum to {sum(ratios.values()):g}, expected 1")
    return ratios


def assign(groups: Sequence[str], labels: Sequence[int], ratios: dict[str, float], seed: int) -> list[str]:
    """The split of each row. Rows are given as parallel sequences of group keys and labels."""
    import pyarrow as pa

    names = list(ratios)
    idx = assign_codes(pa.array(list(groups), pa.string()), np.asarray(labels, dtype=np.int64), ratios, seed)
    return [names[i] for i in idx]


def assign_codes(groups, labels: np.ndarray, ratios: dict[str, float], seed: int,
                 codes: tuple[np.ndarray, int] | None = None) -> np.ndarray:
    """The split of each row as an index into `list(ratios)` (int8 array). `groups` is an Arrow string array
    (or chunked array) of group keys, `labels` an int array, both one entry per row; `codes` may give
    `value_codes(groups)` when it is already known (`groups` is then not read and may be None). Memory is
    a few bytes per row; the result is what `assign` gives for the same rows."""
    codes, n_groups = value_codes(groups) if codes is None else codes
    sizes = np.bincount(codes, minlength=n_groups)
    # majority label of each group: most rows, ties to the smallest label
    lab_values, lab_codes = np.unique(labels, return_inverse=True)
    pair = codes * len(lab_values) + lab_codes
    pairs, counts = np.unique(pair, return_counts=True)
    pg, pl = pairs // len(lab_values), pairs % len(lab_values)
    order = np.lexsort((pl, -counts, pg))  # per group: highest count first, then smallest label
    first = np.ones(len(order), dtype=bool)
    first[1:] = pg[order][1:] != pg[order][:-1]
    majority = np.empty(n_groups, dtype=np.int64)
    majority[pg[order][first]] = lab_values[pl[order][first]]
    # groups in string order (the order of their codes), strata in label order, groups shuffled within each
    # stratum
    by_name = np.arange(n_groups, dtype=np.int64)
    rng = random.Random(seed)
    order_groups: list[np.ndarray] = []
    strata = majority[by_name]
    for label in np.unique(strata):
        members = by_name[strata == label]
        perm = list(range(len(members)))
        rng.shuffle(perm)  # the same permutation `random.shuffle` makes of any list of this length
        order_groups.append(members[perm])
    # systematic allocation: each group goes to the split furthest below its target share of the rows seen
    # so far, so every split's share is right overall and, stratum by stratum, as near as group sizes allow
    names = list(ratios)
    shares = [ratios[n] for n in names]
    filled = [0] * len(names)
    seen = 0
    of_group = np.zeros(n_groups, dtype=np.int8)
    for g in (np.concatenate(order_groups) if order_groups else np.zeros(0, dtype=np.int64)).tolist():
        size = int(sizes[g])
        seen += size
        best = max(range(len(names)), key=lambda k: (shares[k] * seen - filled[k], -k))
        of_group[g] = best
        filled[best] += size
    return of_group[codes]


def value_codes(values) -> tuple[np.ndarray, int]:
    """Number the distinct values of an Arrow string array (or chunked array) in sorting order: (the number of
    each entry, int64; the number of distinct values). Sorts (about 8 bytes per entry plus one sorted copy of
    the values) instead of hashing every value into a table, so a million keys take tens of MB, not hundreds.
    Null sorts last, as one value."""
    import pyarrow as pa
    import pyarrow.compute as pc

    n = len(values)
    if n == 0:
        return np.zeros(0, dtype=np.int64), 0
    order = pc.sort_indices(values)  # nulls last
    ranked = values.take(order)
    if isinstance(ranked, pa.ChunkedArray):
        ranked = ranked.combine_chunks()
    new = np.ones(n, dtype=bool)
    if n > 1:
        same = pc.equal(ranked.slice(1), ranked.slice(0, n - 1))
        both_null = pc.and_(ranked.slice(1).is_null(), ranked.slice(0, n - 1).is_null())
        same = pc.or_kleene(pc.fill_null(same, False), both_null)
        new[1:] = ~np.asarray(same.to_numpy(zero_copy_only=False), dtype=bool)
    del ranked
    ranks = np.cumsum(new) - 1
    codes = np.empty(n, dtype=np.int64)
    codes[np.asarray(order.to_numpy(zero_copy_only=False), dtype=np.int64)] = ranks
    del order
    pa.default_memory_pool().release_unused()  # the sort's buffers go back to the system, not to a cache
    return codes, int(ranks[-1]) + 1
