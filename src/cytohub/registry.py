"""Builder discovery through the `cytohub.builders` entry-point group.

An entry point's value may name a module or package (every `Builder` subclass defined there, and in its
non-private submodules, is registered: this is how the built-in `cytohub.builders` package is found) or a
single `Builder` subclass (the simplest way for a third-party package to add a corpus).
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import pkgutil
from functools import cache
from importlib.metadata import entry_points
from types import ModuleType

from cytohub.builder import Builder
from cytohub.errors import CytohubError

GROUP = "cytohub.builders"


def _from_module(mod: ModuleType) -> list[type[Builder]]:
    mods = [mod]
    if hasattr(mod, "__path__"):
        for info in pkgutil.iter_modules(mod.__path__):
            if not info.name.startswith("_"):
                mods.append(importlib.import_module(f"{mod.__name__}.{info.name}"))
    found = []
    for m in mods:
        for _, obj in inspect.getmembers(m, inspect.isclass):
            if issubclass(obj, Builder) and obj is not Builder and obj.__module__ == m.__name__ \
                    and getattr(obj, "name", None):
                found.append(obj)
    return found


@cache
def builders() -> dict[str, type[Builder]]:
    """All registered builders by name, sorted."""
    out: dict[str, type[Builder]] = {}
    eps = list(entry_points(group=GROUP))
    loaded = [ep.load() for ep in eps] or [importlib.import_module("cytohub.builders")]
    for obj in loaded:
        classes = _from_module(obj) if isinstance(obj, ModuleType) else [obj]
        for cls in classes:
            if not (inspect.isclass(cls) and issubclass(cls, Builder)):
                raise TypeError(f"entry point in {GROUP} gave {cls!r}, not a cytohub Builder")
            if cls.name in out and out[cls.name] is not cls:
                raise TypeError(f"two builders are named {cls.name!r}: {out[cls.name]} and {cls}")
            out[cls.name] = cls
    return dict(sorted(out.items()))


def get(name: str) -> Builder:
    """An instance of the builder called `name` (case-insensitive; `_` and `-` are the same)."""
    key = name.strip().lower().replace("_", "-")
    table = {k.replace("_", "-"): v for k, v in builders().items()}
    if key not in table:
        close = difflib.get_close_matches(key, list(table), n=3, cutoff=0.6)
        hint = f"did you mean {' or '.join(repr(c) for c in close)}? " if close else ""
        raise CytohubError(f"unknown corpus {name!r}; {hint}`cytohub list` shows all {len(table)} corpora")
    return table[key]()
