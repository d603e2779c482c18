"""The manifest of a build folder: path, size and sha256 of every file the build wrote.

The build folder is the unit of trust. The build records every file it wrote in the report
(`build-report.json`, key `manifest`), after writing the card, so the card is covered; the report itself is
not (a file cannot hold its own hash). `validate` recomputes the manifest and fails on a changed, missing or
extra file; `push` uploads exactly the files of the manifest; `build --overwrite` replaces a folder only when
everything in it is listed in its own report's manifest.

Folders are walked without following symbolic links, and a symbolic link is never a file of a build.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cytohub.errors import CytohubError

REPORT = "build-report.json"
_CHUNK = 1 << 20
MAX_LISTED = 20


@dataclass
class FolderScan:
    """What lies in a folder: regular files (relative posix path -> size in bytes), symbolic links, and other
    entries (devices, sockets, FIFOs), each relative to the folder."""

    files: dict[str, int] = field(default_factory=dict)
    symlinks: list[str] = field(default_factory=list)
    other: list[str] = field(default_factory=list)


def scan(folder: Path) -> FolderScan:
    """Every entry under `folder`, walked without following symbolic links (sorted paths)."""
    out = FolderScan()
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=False):
        base = Path(dirpath)
        rel_dir = base.relative_to(folder).as_posix()
        for name in sorted(dirnames):
            if (base / name).is_symlink():
                out.symlinks.append(name if rel_dir == "." else f"{rel_dir}/{name}")
        dirnames[:] = sorted(d for d in dirnames if not (base / d).is_symlink())
        for name in sorted(filenames):
            rel = name if rel_dir == "." else f"{rel_dir}/{name}"
            st = os.lstat(base / name)
            if os.path.islink(base / name):
                out.symlinks.append(rel)
            elif not _is_regular(st.st_mode):
                out.other.append(rel)
            else:
                out.files[rel] = st.st_size
    out.symlinks.sort()
    out.other.sort()
    out.files = dict(sorted(out.files.items()))
    return out


def _is_regular(mode: int) -> bool:
    import stat

    return stat.S_ISREG(mode)


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks (never following a symbolic link: the caller checks)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def hash_files(folder: Path, paths: Iterable[str]) -> dict[str, str]:
    """sha256 of each relative path, hashed on a few threads (hashlib releases the GIL on large reads)."""
    paths = list(paths)
    workers = max(1, min(4, os.cpu_count() or 1, len(paths)))
    with ThreadPoolExecutor(workers) as pool:
        digests = pool.map(lambda p: sha256_file(folder / p), paths)
        return dict(zip(paths, digests, strict=True))


def compute(folder: Path, exclude: Iterable[str] = (REPORT,)) -> list[dict[str, Any]]:
    """The manifest of `folder`: [{"path", "size", "sha256"}] of every regular file (sorted by path), except
    `exclude`. A symbolic link or special file in the folder is an error (the build never writes one)."""
    found = scan(folder)
    if found.symlinks or found.other:
        raise CytohubError(f"{folder}: holds symbolic links or special files ({', '.join(found.symlinks + found.other)}"
                           "); a build folder holds only regular files")
    skip = set(exclude)
    paths = sorted(p for p in found.files if p not in skip)
    digests = hash_files(folder, paths)
    return [{"path": p, "size": found.files[p], "sha256": digests[p]} for p in paths]


@dataclass
class Check:
    """The result of comparing a folder with its manifest. `hashes` holds the sha256 of every file that was
    hashed (all manifest files that exist with the right size), to be reused (e.g. for the upload)."""

    changed: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)
    symlinks: list[str] = field(default_factory=list)
    hashes: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not (self.changed or self.missing or self.extra or self.symlinks)

    def problems(self, folder: Path) -> list[str]:
        """One line per kind of difference, naming up to MAX_LISTED files each."""
        out = []
        for what, paths in (("changed since the build (size or sha256 differs from the manifest)", self.changed),
                            ("listed in the manifest but missing", self.missing),
                            ("not written by the build (not in the manifest)", self.extra),
                            ("symbolic links or special files (never part of a build)", self.symlinks)):
            if paths:
                out.append(f"{folder}: {len(paths)} file(s) {what}: {_listing(paths)}")
        return out


def _listing(paths: list[str]) -> str:
    shown = ", ".join(paths[:MAX_LISTED])
    return shown + (f" and {len(paths) - MAX_LISTED} more" if len(paths) > MAX_LISTED else "")


def entries(report: dict[str, Any]) -> list[dict[str, Any]]:
    """The manifest of a report, checked for shape (a CytohubError if it is absent or malformed)."""
    files = report.get("manifest")
    if not isinstance(files, list) or not files:
        raise CytohubError("the build report has no manifest (key 'manifest'); it was not made by this cytohub "
                           "version or was edited: rebuild the folder")
    for e in files:
        if not (isinstance(e, dict) and isinstance(e.get("path"), str) and isinstance(e.get("size"), int)
                and isinstance(e.get("sha256"), str) and len(e["sha256"]) == 64):
            raise CytohubError(f"the build report's manifest has a malformed entry {e!r}; expected "
                               "{'path', 'size', 'sha256'}")
        p = e["path"]
        if p.startswith("/") or ".." in p.split("/") or p == REPORT:
            raise CytohubError(f"the build report's manifest lists an invalid path {p!r}")
    return files


def verify(folder: Path, manifest: list[dict[str, Any]], *, hash_contents: bool = True,
           ignore_extra: bool = False) -> Check:
    """Compare `folder` with `manifest`: sizes first, then (if `hash_contents`) the sha256 of every file whose
    size matches. The report itself is never an extra file."""
    found = scan(folder)
    check = Check(symlinks=found.symlinks + found.other)
    listed = {e["path"]: e for e in manifest}
    same_size = []
    for path, e in listed.items():
        size = found.files.get(path)
        if size is None:
            check.missing.append(path)
        elif size != e["size"]:
            check.changed.append(path)
        else:
            same_size.append(path)
    if not ignore_extra:
        check.extra = [p for p in found.files if p not in listed and p != REPORT]
    if hash_contents:
        check.hashes = hash_files(folder, same_size)
        check.changed += [p for p in same_size if check.hashes[p] != listed[p]["sha256"]]
    check.changed.sort()
    return check


def read_report(folder: Path) -> dict[str, Any]:
    """The build report of `folder` (a CytohubError naming the file when it is missing or not a report)."""
    path = folder / REPORT
    if path.is_symlink() or not path.is_file():
        raise CytohubError(f"{folder}: no {REPORT}; expected a build folder made by `cytohub build`")
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise CytohubError(f"{path}: not valid JSON ({exc}); expected a cytohub build report") from None
    if not (isinstance(report, dict) and isinstance(report.get("builder"), dict) and "cytohub_version" in report
            and "schema_version" in report):
        raise CytohubError(f"{path}: not a cytohub build report (no cytohub_version, schema_version, builder)")
    return report


def rewrite(folder: Path, report: dict[str, Any], texts: dict[str, str]) -> None:
    """Write regenerated build files (`cytohub card`: the card and croissant.json, from the report) and record
    them in the report's manifest."""
    files = {e["path"]: e for e in entries(report)}
    for name, text in texts.items():
        path = folder / name
        if path.is_symlink():
            raise CytohubError(f"{path} is a symbolic link; a build folder holds only regular files")
        data = text.encode("utf-8")
        path.write_bytes(data)
        files[name] = {"path": name, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    report["manifest"] = [files[p] for p in sorted(files)]
    (folder / REPORT).write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


# ------------------------------------------------------------------------------------------- destinations
def check_replace(out: Path, overwrite: bool) -> None:
    """Refuse an `--out` that must not be written or replaced (`cytohub.output.check_destination` refuses `/`, the
    current folder and the raw data's relatives first): the home folder, and, unless `overwrite`, any existing
    path. With `overwrite`, an existing folder is replaced only if it is a cytohub build folder whose every file
    is in its own report's manifest (or is empty); otherwise the unknown files are listed and nothing is
    touched. Raises CytohubError."""
    if Path(os.path.realpath(out.expanduser())) == Path(os.path.realpath(Path.home())):
        raise CytohubError(f"--out {out}: that is the home folder; choose a new folder, e.g. out/NAME")
    if not (out.exists() or out.is_symlink()):
        return
    if not overwrite:
        raise CytohubError(f"{out} already exists; pass --overwrite to replace it")
    if out.is_symlink() or not out.is_dir():
        raise CytohubError(f"{out} exists and is not a folder; refusing to replace it")
    check_replaceable(out)


def check_replaceable(folder: Path) -> None:
    """Raise unless `folder` is empty or a cytohub build folder holding only files its manifest lists."""
    found = scan(folder)
    if not found.files and not found.symlinks and not found.other:
        return
    try:
        report = read_report(folder)
        listed = {e["path"] for e in entries(report)}
    except CytohubError as exc:
        raise CytohubError(f"{folder} exists and is not a cytohub build folder ({exc}); refusing to replace it. "
                           "Remove it yourself or choose another --out.") from None
    unknown = [p for p in found.files if p not in listed and p != REPORT] + found.symlinks + found.other
    if unknown:
        raise CytohubError(f"{folder} holds {len(unknown)} file(s) the build did not write: {_listing(unknown)}; "
                           "refusing to replace it (they would be deleted). Move them away or choose another --out.")
