"""The layout doctor: when a raw download does not have the layout a builder reads, say what was expected and
what was found, in one look.

Every builder declares `expected_layout`, a short sketch of the raw tree it reads (shown by `cytohub info NAME`
and in the engine's "found no rows" error). At a mismatch a builder calls `mismatch(...)` for the message:

    expected class folders NILM, LSIL, ... under images/; found 0001-1000/, 1001-2000/

`found` is what the raw tree actually holds at that level: the first few distinct entries (folders end with
`/`, archives count as folders), truncated with a count of the rest.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cytohub.raw import RawTree

FOUND_LIMIT = 8


def entries_at(paths: Iterable[str], folder: str = "") -> list[str]:
    """The distinct names directly inside `folder` ('' = the raw root) among `/`-separated file paths, sorted
    with sub-folders first; a sub-folder ends with '/'. Paths outside `folder` are ignored."""
    prefix = folder.strip("/") + "/" if folder.strip("/") else ""
    folders, files = set(), set()
    for path in paths:
        if not path.startswith(prefix):
            continue
        rest = path[len(prefix):]
        if "/" in rest:
            folders.add(rest.split("/", 1)[0] + "/")
        elif rest:
            files.add(rest)
    return sorted(folders) + sorted(files)


def found_text(entries: list[str], limit: int = FOUND_LIMIT) -> str:
    """'a/, b/, c.txt' or 'a/, b/, ... (12 more)' or 'nothing'."""
    if not entries:
        return "nothing"
    shown = ", ".join(entries[:limit])
    return shown + (f", ... ({len(entries) - limit} more)" if len(entries) > limit else "")


def listing(raw: RawTree, folder: str = "", limit: int = FOUND_LIMIT) -> str:
    """What the raw tree holds directly inside `folder` (a path relative to the raw root), as `found_text`."""
    return found_text(entries_at((f.path for f in raw.files()), folder), limit)


def found(raw: RawTree, folder: str = "") -> str:
    """'; found <entries>' for the end of a message that already says what was expected: the entries directly
    inside `folder` of the raw tree ('' = its root)."""
    where = f" under {folder.strip('/')}/" if folder.strip("/") else ""
    return f"; found {listing(raw, folder)}{where}"


def mismatch(expected: str, found: str | Iterable[str], under: str = "") -> str:
    """'expected <expected> under <under>/; found <found>': `found` is text, or the names found (truncated).
    `under` names the folder both refer to ('' = the raw root, not mentioned)."""
    where = f" under {under.strip('/')}/" if under.strip("/") else ""
    if not isinstance(found, str):
        found = found_text(list(found))
    return f"expected {expected}{where}; found {found}"


def sketch_text(sketch: str, indent: str = "  ") -> str:
    """A builder's `expected_layout` sketch, dedented and indented by `indent` for display."""
    import textwrap

    return textwrap.indent(textwrap.dedent(sketch).strip("\n"), indent)


def no_rows_message(raw_root: str, corpus: str, sketch: str, raw: RawTree) -> str:
    """The engine's error when a builder yields no rows: what the builder reads, and what is there."""
    return (f"{raw_root}: the {corpus} builder found no rows; is this the right folder? "
            f"Expected raw layout:\n{sketch_text(sketch)}\nFound at the top of the raw data: {listing(raw)}")
