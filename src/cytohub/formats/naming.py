"""File and folder names: natural sort order and tolerant name matching.

Publishers spell the same folder many ways (`Superficial-Intermediate`, `superficial_intermediate `,
`im_Superficial Intermediate.zip`), and number files without leading zeros (`img2`, `img10`). These helpers
turn names into comparison keys; they never decide what a name means (a builder's alias table does).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping

_DIGITS = re.compile(r"(\d+)")
_ARCHIVE_SUFFIX = re.compile(r"\.(zip|7z|rar|tar|tgz|tar\.gz|tar\.bz2|tar\.xz)$", re.IGNORECASE)


def natural_key(text: str) -> tuple:
    """Sort key that orders 'img2' before 'img10': digit runs compare as numbers, other runs case-insensitively,
    and the text itself breaks ties ('a02' and 'a2' compare equal as numbers, so 'a02' sorts first), so the
    order is total and deterministic."""
    tokens = tuple((0, int(t), "") if t.isdigit() else (1, 0, t.lower()) for t in _DIGITS.split(text) if t)
    return tokens, text


def key(text: str) -> str:
    """A name as a comparison key: lower case, letters and digits only ('Malignant ' -> 'malignant',
    'Cx22-Pair' -> 'cx22pair')."""
    return re.sub(r"[^a-z0-9]+", "", text.lower())


def letters_key(text: str) -> str:
    """A name as a comparison key of its letters only ('Cx22-Multi-Test' -> 'cxmultitest',
    'non-viable_nucleus' -> 'nonviablenucleus')."""
    return re.sub(r"[^a-z]+", "", text.lower())


def words_key(text: str) -> str:
    """A name as its lower-case words (letter and digit runs) joined by single spaces
    ('Band_neutrophil ' -> 'band neutrophil'); keeps word boundaries for similarity measures."""
    return " ".join(re.findall(r"[a-z0-9]+", text.lower()))


def slug(text: str) -> str:
    """A name as an id part: lower-case letter/digit runs joined by '-' ('High squamous' -> 'high-squamous')."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def folder_name(part: str) -> str:
    """A path part as a folder name: an archive that stands in for a folder (`train.zip` holding the files of
    `train/` at its root) counts as the folder it is named after ('train.zip' -> 'train')."""
    return _ARCHIVE_SUFFIX.sub("", part)


def alias_table(aliases: Mapping[str, Iterable[str]], normalise: Callable[[str], str] = key) -> dict[str, str]:
    """{name: [accepted spellings]} -> {normalised spelling: name}; each name is itself accepted.

    Raises ValueError when two names claim the same normalised spelling (a builder's declaration error)."""
    table: dict[str, str] = {}
    for name, spellings in aliases.items():
        for s in (name, *spellings):
            k = normalise(s)
            if k in table and table[k] != name:
                raise ValueError(f"spelling {s!r} is claimed by {table[k]!r} and {name!r}")
            table[k] = name
    return table
