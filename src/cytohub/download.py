"""Fetching a corpus's official files (`cytohub download`), and checking them before a build.

What a builder declares in `Builder.sources` (see `cytohub.builder.Source`) decides what happens:
* a `direct` source has a public file link: it is fetched into the raw folder under its published name,
  from `url`, else from its `alt_urls` in order (or, with a mirror, from `<mirror>/<corpus>/<file name>`);
* every other source is obtained by hand (a login, an agreement, a request by e-mail): `instructions()`
  says where to go, which files, and the exact folder; `download()` then checks what the user put there.

How a file is transferred (`_Transfer`):
* into `<name>.part`; the final name appears only once the file is complete and verified (fsync, then
  `os.replace`), so a file under its final name is never partial;
* an interrupted transfer resumes with an HTTP Range request. `If-Range` carries the validator of the first
  response (its strong ETag, else Last-Modified), so a file that changed upstream is restarted from zero,
  never spliced; a server that ignores Range (200 instead of 206) restarts it too;
* dropped connections, timeouts, HTTP 408, 429 and 5xx are retried with exponential backoff (Retry-After
  honoured); the attempt count starts again whenever bytes arrive. Other 4xx fail at once (or move on to
  the next official link).

Checksums (`downloads.json`, one per raw folder):
* size, md5 and sha256 declared by the publisher are verified unless `verify=False` (`--no-verify`, for a
  mirror of synthetic data), which is recorded;
* the size and sha256 of every file are recorded on its first download (or first check, for files put
  there by hand), and every later download and build verifies against them (`verify_raw`);
* a mismatch raises `ChecksumMismatchError`, one line naming the file, the expected and the actual value.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import email.utils
import hashlib
import http.client
import json
import os
import random
import shutil
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cytohub import __version__
from cytohub.builder import Builder, Source
from cytohub.errors import CytohubError, DatasetNotFoundError, RawFileError
from cytohub.synth import MARKER

DOWNLOADS = "downloads.json"  # the record of a raw folder
PART = ".part"  # suffix of a file being transferred
LOCK = ".downloads.lock"  # held while `cytohub download` writes to a folder
RECORD_FILES = (DOWNLOADS, LOCK)  # cytohub's own files in a raw folder (not raw data)
DEFAULT_JOBS = 4
RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
_CHUNK = 1 << 20
_SPACE_MARGIN = 64 * 2**20  # free bytes left on the disk after a download
_CHECK_DEPTH = 4  # how deep `check` looks for files put there by hand


class DownloadError(CytohubError):
    """A file could not be fetched: HTTP error, network failure after every retry, or no space left."""


class ChecksumMismatchError(RawFileError):
    """A file's size or checksum differs from the declared or recorded one."""


# ------------------------------------------------------------------------------------------- policy, progress
@dataclass
class RetryPolicy:
    """When and how long to wait before trying again. Delays are in seconds.

    `attempts` failures in a row without a byte of progress end the transfer; the k-th retry waits
    `backoff * 2**(k-1)` (at most `max_backoff`, times a random factor in [0.5, 1]) unless the server sent
    Retry-After, which is honoured up to `max_retry_after`. `sleep` is injectable for tests."""

    attempts: int = 8
    backoff: float = 1.0
    max_backoff: float = 60.0
    max_retry_after: float = 600.0
    timeout: float = 60.0  # socket connect/read timeout
    sleep: Callable[[float], None] = time.sleep

    def delay(self, failures: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return retry_after
        return min(self.max_backoff, self.backoff * 2 ** (failures - 1)) * random.uniform(0.5, 1.0)


class DownloadProgress:
    """Receives progress events (called from worker threads); the base class ignores them."""

    def start(self, name: str, total: int | None, done: int) -> None:
        """A transfer of `name` begins (or restarts) with `done` of `total` bytes already on disk."""

    def advance(self, name: str, nbytes: int) -> None:
        """`nbytes` more bytes of `name` were written."""

    def finish(self, name: str, status: str) -> None:
        """`name` is done: downloaded, resumed, present, found, ..."""

    def note(self, message: str) -> None:
        """A retry or a warning, as one line."""


# ------------------------------------------------------------------------------------------- the record
class Record:
    """`downloads.json` of a raw folder: every file fetched or checked, its size, sha256, origin and URL.

    `files[name]` = {"size", "sha256", "md5" (only when declared), "url" (None for files put there by hand),
    "origin": "downloaded" | "placed by hand", "declared": how the publisher's checksums were checked};
    `partial[name]` = {"url", "validator"} of a transfer in progress (for If-Range)."""

    def __init__(self, folder: Path, corpus: str) -> None:
        self.path = folder / DOWNLOADS
        self.corpus = corpus
        self.files: dict[str, dict[str, Any]] = {}
        self.partial: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        if self.path.is_file():
            try:
                data = json.loads(self.path.read_text(encoding="utf-8"))
                if not isinstance(data, dict) or not isinstance(data.get("files", {}), dict):
                    raise ValueError("expected an object with 'files'")
            except (OSError, ValueError) as exc:
                raise CytohubError(f"{self.path}: not a readable download record ({exc}); expected the file "
                                   "written by `cytohub download` (delete it to start a new record)") from None
            if data.get("corpus") not in (None, corpus):
                raise CytohubError(f"{self.path}: the record of corpus {data.get('corpus')!r}, not {corpus!r}; "
                                   "expected each corpus in its own raw folder")
            self.files = data.get("files", {})
            self.partial = data.get("partial", {})

    @property
    def exists(self) -> bool:
        return self.path.is_file()

    def put(self, name: str, entry: dict[str, Any]) -> None:
        with self._lock:
            self.files[name] = entry
            self.partial.pop(name, None)
            self._save()

    def set_partial(self, name: str, value: dict[str, Any] | None) -> None:
        with self._lock:
            if value is None:
                self.partial.pop(name, None)
            else:
                self.partial[name] = value
            self._save()

    def _save(self) -> None:
        data = {"corpus": self.corpus, "written_by": f"cytohub {__version__}", "files": self.files}
        if self.partial:
            data["partial"] = self.partial
        tmp = self.path.with_name(f".{DOWNLOADS}.tmp-{os.getpid()}-{threading.get_ident()}")
        tmp.write_text(json.dumps(data, indent=1, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")
        os.replace(tmp, self.path)


# ------------------------------------------------------------------------------------------- results
@dataclass
class FileStatus:
    """What happened to one source: `status` is downloaded | resumed | present (already there, verified) |
    found (put there by hand; `path` says under which name) | missing | optional (a direct file the build
    does not need, not fetched) | alternative (absent, but another source of its `one_of` group is there) |
    unnamed (name not published; cannot be checked)."""

    source: Source
    status: str
    path: Path | None = None
    size: int | None = None
    sha256: str | None = None
    url: str | None = None
    files: int | None = None  # for a folder: how many files it holds


@dataclass
class DownloadResult:
    dest: Path
    files: list[FileStatus]
    instructions: str | None = None  # set when something must still be fetched by hand
    unverified: list[str] = field(default_factory=list)  # declared checksums skipped (--no-verify)
    seconds: float = 0.0

    @property
    def complete(self) -> bool:
        return self.instructions is None

    @property
    def bytes_fetched(self) -> int:
        return sum(f.size or 0 for f in self.files if f.status in ("downloaded", "resumed"))


# ------------------------------------------------------------------------------------------- entry points
def download(builder: Builder | type[Builder], dest: str | os.PathLike, *, mirror: str | None = None,
             jobs: int = DEFAULT_JOBS, verify: bool = True, progress: DownloadProgress | None = None,
             retry: RetryPolicy | None = None) -> DownloadResult:
    """Fetch `builder`'s direct sources into the folder `dest` and check the ones obtained by hand.

    With `mirror` (a base URL), every source with a published file name is fetched from
    `<mirror>/<corpus>/<file name>` instead of the publisher; a direct source missing from the mirror is an
    error, a manual one is then checked on disk as usual; a synthetic-data marker on the mirror is fetched
    too, so synthetic data stays marked. At most `jobs` files are transferred at once.
    Raises DownloadError (HTTP errors, network failures after retries, disk space) and
    ChecksumMismatchError (declared or recorded size/checksum differs); the result lists every source and,
    when something is still missing, the numbered instructions to get it."""
    if jobs < 1:
        raise CytohubError(f"--jobs {jobs}: expected at least 1")
    t0 = time.monotonic()
    dest = Path(dest).expanduser()
    if dest.exists() and not dest.is_dir():
        raise CytohubError(f"{dest} is a file; expected a folder to download into")
    dest.mkdir(parents=True, exist_ok=True)
    progress = progress or DownloadProgress()
    retry = retry or RetryPolicy()
    mirror = mirror.rstrip("/") if mirror else None
    if mirror and not mirror.startswith(("https://", "http://")):
        raise CytohubError(f"--mirror {mirror!r}: expected an http(s) URL such as https://data.example.org/cytohub")
    with _folder_lock(dest):
        record = Record(dest, builder.name)
        fetch: list[tuple[Source, list[str], bool]] = []  # (source, urls, missing_ok)
        for s in builder.sources:
            needed = s.direct and s.required  # optional direct files are fetched only from a mirror
            if mirror and s.name_published and _plain_name(s.filename):
                fetch.append((s, [mirror_url(mirror, builder.name, s.filename)], not needed))
            elif needed:
                fetch.append((s, [s.url, *s.alt_urls], False))
        if mirror:
            fetch.append((Source(MARKER, required=False), [mirror_url(mirror, builder.name, MARKER)], True))
        fetched = _run_parallel([(s, urls, ok) for s, urls, ok in fetch], dest, record, verify, progress, retry,
                                jobs)
        statuses = {s.filename: st for s, st in fetched.items() if st is not None and s.filename != MARKER}
        for s in builder.sources:
            if s.filename not in statuses:
                statuses[s.filename] = _check_source(s, dest, record, verify, progress)
                if s.direct and statuses[s.filename].status == "missing":
                    statuses[s.filename].status = "optional"  # not fetched: the build does not need it
    files = [statuses[s.filename] for s in builder.sources]
    for f in files:  # an alternative that is absent while another one of its group is there
        if f.status == "missing" and f.source.one_of and any(
                o.source.one_of == f.source.one_of and o.status not in ("missing", "unnamed") for o in files):
            f.status = "alternative"
    unverified = [] if verify else [f.source.filename for f in files
                                    if f.status in ("downloaded", "resumed", "present", "found")
                                    and (f.source.md5 or f.source.sha256 or f.source.size)]
    missing = _missing(files, dest)
    text = instructions(builder, dest, missing) if missing is not None else None
    return DownloadResult(dest, files, text, unverified, time.monotonic() - t0)


def mirror_url(mirror: str, corpus: str, filename: str) -> str:
    """`<mirror>/<corpus>/<file name>` with the name percent-encoded."""
    return f"{mirror.rstrip('/')}/{urllib.parse.quote(corpus)}/{urllib.parse.quote(filename)}"


def instructions(builder: Builder | type[Builder], dest: str | os.PathLike,
                 missing: list[Source] | None = None) -> str:
    """Numbered instructions to get a corpus's files by hand: where to go, which files, which folder.

    `missing` narrows the list of files to those still missing (default: every source not fetched by
    `cytohub download` itself)."""
    dest = Path(dest).expanduser().absolute()
    manual = [s for s in builder.sources if not s.direct]
    todo = manual if missing is None else missing
    pages = list(dict.fromkeys(s.url for s in todo if s.url)) or [builder.homepage]
    lines = [f"{builder.name}: cytohub cannot fetch {'these files' if builder.direct_sources() else 'this corpus'} "
             "by itself (no public file link it knows of: a login, an agreement, a request, or unpublished file "
             "names); get them by hand:",
             f"  1. Go to {pages[0]}" + "".join(f"\n     or {p}" for p in pages[1:]),
             "  2. Get these files:"]

    def describe(s: Source) -> str:
        if not s.name_published:
            return f"{s.filename}" + (f": {s.description}" if s.description else "") + " (download name not published)"
        extra = [] if s.required or s.one_of else ["optional"]
        if s.size:
            extra.append(f"{s.size:,} bytes")
        return (" or ".join([s.filename, *s.aliases]) + (f" ({', '.join(extra)})" if extra else "")
                + (f": {s.description}" if s.description else ""))

    groups_done = set()
    for s in todo:
        if s.one_of:
            if s.one_of not in groups_done:
                groups_done.add(s.one_of)
                lines.append("     - at least one of:")
                lines += [f"         - {describe(o)}" for o in todo if o.one_of == s.one_of]
            continue
        lines.append(f"     - {describe(s)}")
    lines.append(f"  3. Put them in this folder: {dest}")
    default = _default_dest(builder.name)
    to = "" if default is not None and dest == default else f" --to {dest}"
    raw = "" if to == "" else f" --raw {dest}"
    lines.append(f"  4. Run `cytohub download {builder.name}{to}` again to check them, then "
                 f"`cytohub build {builder.name}{raw}`.")
    lines.append("Publisher's instructions, as cytohub knows them:")
    lines += [f"  {line}" for line in builder.manual_download.strip().splitlines()]
    return "\n".join(lines)


def verify_raw(builder: Builder | type[Builder], raw: str | os.PathLike,
               note: Callable[[str], None] | None = None) -> dict[str, dict[str, Any]]:
    """Check a raw path before a build: every file in its `downloads.json` is present with the recorded size
    and sha256, no declared source is half-downloaded (`.part`), and files named like a source that
    declares a size or checksum match it. `raw` is a folder, or one file of a folder.

    Returns provenance per input path relative to `raw` (the keys of the build report's `inputs`):
    {"url", "origin", "declared"} from the record. Raises ChecksumMismatchError or RawFileError."""
    raw = Path(raw).expanduser()
    note = note or (lambda msg: None)
    if not raw.exists():
        return {}  # RawTree says so, with the expected kinds of raw path
    folder, only = (raw, None) if raw.is_dir() else (raw.parent, raw.name)
    record = Record(folder, builder.name) if (folder / DOWNLOADS).is_file() else None
    if raw.is_dir():
        for s in builder.sources:
            if (raw / (s.filename + PART)).exists() and not (raw / s.filename).exists():
                raise RawFileError(f"{raw / (s.filename + PART)}: an unfinished download; run `cytohub download "
                                   f"{builder.name}` to finish it (or delete the .part file)")
    provenance: dict[str, dict[str, Any]] = {}
    checked = set()
    if record is not None:
        for name, entry in sorted(record.files.items()):
            if only is not None and name != only:
                continue
            path = folder / name
            if not path.is_file():
                raise RawFileError(f"{path}: listed in {record.path.name} ({_origin(entry)}) but missing; run "
                                   f"`cytohub download {builder.name}` to fetch it again")
            note(f"verifying {name}")
            _verify_recorded(path, entry, record)
            checked.add(name)
            key = raw.name if only is not None else name
            provenance[key] = {"url": entry.get("url"), "origin": entry.get("origin"),
                               "declared": entry.get("declared")}
    for s in builder.sources:
        declared = {k: v for k, v in (("size", s.size), ("md5", s.md5), ("sha256", s.sha256)) if v}
        if not declared or s.filename in checked or s.filename.endswith("/"):
            continue
        path = folder / s.filename
        if (only is None or only == s.filename) and path.is_file():
            note(f"verifying {s.filename}")
            size, sha, md5 = _digest(path, md5=bool(s.md5))
            _compare(path, declared, {"size": size, "sha256": sha, "md5": md5}, "published")
            provenance[raw.name if only else s.filename] = {"url": s.url if s.direct else None,
                                                             "origin": "placed by hand",
                                                             "declared": _declared_text(s, True)}
    return provenance


# ------------------------------------------------------------------------------------------- parallel fetch
def _run_parallel(todo: list[tuple[Source, list[str], bool]], dest: Path, record: Record, verify: bool,
                  progress: DownloadProgress, retry: RetryPolicy, jobs: int) -> dict[Source, FileStatus | None]:
    """Run the transfers, at most `jobs` at once; on the first error the others stop at their next chunk
    (their .part files stay, to be resumed) and that error is raised."""
    stop = threading.Event()
    results: dict[Source, FileStatus | None] = {}
    if not todo:
        return results
    pool = ThreadPoolExecutor(max_workers=min(jobs, len(todo)), thread_name_prefix="cytohub-download")
    try:
        futures = {pool.submit(_Transfer(s, urls, dest, record, verify, progress, retry, stop, missing_ok).run): s
                   for s, urls, missing_ok in todo}
        done, _ = wait(futures, return_when=FIRST_EXCEPTION)
        if any(f.exception() for f in done):
            stop.set()
        for fut, s in futures.items():
            try:
                results[s] = fut.result()
            except _Stopped:
                continue
    except BaseException:
        stop.set()
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    return results


class _Stopped(Exception):
    """Another transfer failed: this one stops (its .part stays, to be resumed)."""


class _Refused(Exception):
    """An HTTP status that is not retried (404, 403, ...): the next link is tried."""

    def __init__(self, url: str, code: int, reason: str) -> None:
        super().__init__(f"HTTP {code} {reason} from {url}")
        self.url, self.code = url, code


class _Transfer:
    """One source: verify it if already there, else fetch it from its links in order."""

    def __init__(self, source: Source, urls: list[str], dest: Path, record: Record, verify: bool,
                 progress: DownloadProgress, retry: RetryPolicy, stop: threading.Event, missing_ok: bool) -> None:
        self.s, self.urls, self.record = source, urls, record
        self.final = dest / source.filename
        self.part = dest / (source.filename + PART)
        self.verify, self.progress, self.retry, self.stop = verify, progress, retry, stop
        self.missing_ok = missing_ok
        self.declared = {k: v for k, v in (("size", source.size), ("md5", source.md5), ("sha256", source.sha256))
                         if v and verify}

    def run(self) -> FileStatus | None:
        name = self.s.filename
        if self.final.is_file():
            if self.s.filename == MARKER:
                return None
            entry = self._verify_present("placed by hand" if name not in self.record.files else None)
            self.progress.finish(name, "present")
            return FileStatus(self.s, "present", self.final, entry["size"], entry["sha256"], entry.get("url"))
        refusals: list[_Refused] = []
        for url in self.urls:
            try:
                resumed = self._fetch(url)
            except _Refused as exc:
                refusals.append(exc)
                continue
            entry = self.record.files.get(name, {})
            status = "resumed" if resumed else "downloaded"
            self.progress.finish(name, status)
            return FileStatus(self.s, status, self.final, entry.get("size"), entry.get("sha256"), url)
        if self.missing_ok and all(r.code == 404 for r in refusals):
            return None  # not on the mirror: a manual source is then checked on disk
        last = refusals[-1]
        hint = {401: "it needs a login", 403: "access is refused (a login or an agreement may be needed)",
                404: "the file is not there (moved, or a wrong mirror)", 410: "the file was removed"}
        raise DownloadError(f"{name}: HTTP {last.code} from {last.url}: {hint.get(last.code, 'refused')}"
                            + (f" (also tried {len(refusals) - 1} other link(s))" if len(refusals) > 1 else "")
                            + f"; see `cytohub info {self.record.corpus}` for how to get it by hand")

    # ------------------------------------------------------------------ already there
    def _verify_present(self, origin: str | None) -> dict[str, Any]:
        """Hash the file once; check it against its record, else against the declared values and record it."""
        name = self.s.filename
        entry = self.record.files.get(name)
        size, sha, md5 = _digest(self.final, md5=bool(self.s.md5), progress=(self.progress, f"{name} (verifying)"))
        actual = {"size": size, "sha256": sha, "md5": md5}
        if entry is not None:
            _check_recorded(self.final, entry, actual, self.record)
            if self.declared and (entry.get("declared") or "").startswith("not checked"):
                _compare(self.final, self.declared, actual, "published")
                entry = {**entry, "declared": _declared_text(self.s, True)}
                self.record.put(name, entry)
            return entry
        _compare(self.final, self.declared, actual, "published")
        entry = _entry(self.s, size, sha, md5, None, origin or "placed by hand", self.verify)
        self.record.put(name, entry)
        return entry

    # ------------------------------------------------------------------ the transfer
    def _fetch(self, url: str) -> bool:
        """Transfer `url` into the .part file, resuming it when possible; verify; rename. True if resumed."""
        name = self.s.filename
        partial = self.record.partial.get(name) or {}
        validator = partial.get("validator") if partial.get("url") == url else None
        recorded = self.record.files.get(name) or {}
        # a known checksum catches a splice, so a resume without a validator is safe only with one
        checked = bool(self.declared.get("sha256") or self.declared.get("md5") or recorded.get("sha256"))
        offset = self.part.stat().st_size if self.part.is_file() else 0
        if offset and validator is None and not checked:
            offset = 0  # a .part of unknown origin: never splice it
        limit = self.declared.get("size")
        expected_total = limit or recorded.get("size")
        hashes = _Hashes(self.s.md5 is not None)
        if offset:
            hashes.feed_file(self.part, offset)
        resumed = bool(offset)
        failures = 0
        total: int | None = None
        while True:
            if self.stop.is_set():
                raise _Stopped
            headers = {"User-Agent": f"cytohub/{__version__}", "Accept-Encoding": "identity"}
            if offset and validator is None and not checked:
                offset, resumed = 0, False
            if offset:
                headers["Range"] = f"bytes={offset}-"
                if validator:
                    headers["If-Range"] = validator
            progress_made = False
            try:
                with self._open(url, headers) as resp:
                    if resp.status == 206:
                        start, end, total = _content_range(resp.headers.get("Content-Range"))
                        if start != offset:
                            raise _Restart
                    else:
                        if offset:
                            self.progress.note(f"{name}: the server sent the whole file again; restarting")
                        offset, resumed = 0, False
                        hashes = _Hashes(self.s.md5 is not None)
                        length = resp.headers.get("Content-Length")
                        total = int(length) if length and length.isdigit() else None
                        validator = _validator(resp.headers)
                        self.record.set_partial(name, {"url": url, "validator": validator})
                    if total is not None and expected_total and total != expected_total:
                        raise _SizeMismatch(f"the server has {total} bytes, but the "
                                      + ("published" if limit else f"{DOWNLOADS} recorded") + f" size is "
                                      f"{expected_total}")
                    self._check_space(total, offset)
                    self.progress.start(name, total, offset)
                    with open(self.part, "ab" if offset else "wb") as out:
                        while True:
                            if self.stop.is_set():
                                raise _Stopped
                            chunk = resp.read(_CHUNK)
                            if not chunk:
                                break
                            out.write(chunk)
                            hashes.update(chunk)
                            offset += len(chunk)
                            progress_made = True
                            self.progress.advance(name, len(chunk))
                            if limit and offset > limit:
                                raise _SizeMismatch(f"more than the published {limit} bytes arrived")
                            if total is None and offset % (256 * _CHUNK) < len(chunk):
                                self._check_space(None, offset)
                        out.flush()
                        os.fsync(out.fileno())
                    if total is not None and offset < total:
                        raise http.client.IncompleteRead(b"", total - offset)
                break
            except _Restart:
                offset, resumed, validator = 0, False, None
                failures = self._wait(failures + 1, "the server answered another byte range", None, url)
            except _SizeMismatch as exc:
                self.part.unlink(missing_ok=True)
                self.record.set_partial(name, None)
                raise ChecksumMismatchError(f"{self.final}: {exc} (from {url}; nothing was kept)") from None
            except _RangeDone as done:
                if done.total == offset:
                    break  # the .part already held the whole file
                self.progress.note(f"{name}: the partial file does not fit the server's; restarting")
                offset, resumed, validator = 0, False, None
                continue
            except urllib.error.HTTPError as exc:
                if exc.code not in RETRY_STATUSES:
                    raise _Refused(url, exc.code, exc.reason) from None
                failures = self._wait(failures + 1, f"HTTP {exc.code}", _retry_after(exc.headers, self.retry),
                                      url)
            except (OSError, http.client.HTTPException, ValueError) as exc:
                # dropped connections, resets, timeouts, truncated bodies, malformed responses
                failures = 0 if progress_made else failures
                failures = self._wait(failures + 1, _describe(exc), None, url)
        self._finish(url, hashes, offset)
        return resumed

    def _open(self, url: str, headers: dict[str, str]):
        try:
            req = urllib.request.Request(url, headers=headers)
        except ValueError as exc:
            raise DownloadError(f"{self.s.filename}: {url!r} is not a usable URL ({exc})") from None
        try:
            return urllib.request.urlopen(req, timeout=self.retry.timeout)
        except urllib.error.HTTPError as exc:
            if exc.code == 416 and "Range" in headers:
                _, _, total = _content_range(exc.headers.get("Content-Range"), unsatisfied=True)
                exc.close()
                raise _RangeDone(total) from None
            raise
        except urllib.error.URLError as exc:
            if isinstance(exc.reason, OSError):
                raise exc.reason from None
            raise OSError(str(exc.reason)) from None

    def _wait(self, failures: int, what: str, retry_after: float | None, url: str) -> int:
        if failures > self.retry.attempts:
            raise DownloadError(f"{self.s.filename}: {what} from {url}, {failures - 1} retries failed; run the same "
                                "command again later (what arrived is kept and resumed)")
        delay = self.retry.delay(failures, retry_after)
        self.progress.note(f"{self.s.filename}: {what}; retry {failures} of {self.retry.attempts} in {delay:.0f} s")
        self.retry.sleep(delay)
        return failures

    def _check_space(self, total: int | None, offset: int) -> None:
        free = shutil.disk_usage(self.part.parent).free
        need = (total - offset if total is not None else 0) + _SPACE_MARGIN
        if free < need:
            raise DownloadError(f"{self.final}: needs {need / 1e9:.2f} GB more but only {free / 1e9:.2f} GB is free "
                                f"in {self.part.parent}; free some space or use --to on a larger disk")

    def _finish(self, url: str, hashes: _Hashes, size: int) -> None:
        name = self.s.filename
        actual = {"size": size, "sha256": hashes.sha256.hexdigest(), "md5": hashes.md5_hex()}
        try:
            _compare(self.final, self.declared, actual, "published", url)
            recorded = self.record.files.get(name)
            if recorded is not None:
                _compare(self.final, {"size": recorded.get("size"), "sha256": recorded.get("sha256")}, actual,
                         f"recorded in {DOWNLOADS}", url)
        except ChecksumMismatchError:
            self.part.unlink(missing_ok=True)
            self.record.set_partial(name, None)
            raise
        os.replace(self.part, self.final)
        self.record.put(name, _entry(self.s, size, actual["sha256"], actual["md5"], url, "downloaded", self.verify))


class _SizeMismatch(Exception):
    """The file's size differs from its published or recorded one."""


class _Restart(Exception):
    """The server answered a range we did not ask for: restart from zero."""


class _RangeDone(Exception):
    """HTTP 416 on a resume: the .part holds `total` bytes already, or does not fit the server's file."""

    def __init__(self, total: int | None) -> None:
        super().__init__(total)
        self.total = total


class _Hashes:
    def __init__(self, md5: bool) -> None:
        self.sha256 = hashlib.sha256()
        self.md5 = hashlib.md5(usedforsecurity=False) if md5 else None

    def update(self, data: bytes) -> None:
        self.sha256.update(data)
        if self.md5 is not None:
            self.md5.update(data)

    def feed_file(self, path: Path, nbytes: int) -> None:
        with open(path, "rb") as fh:
            left = nbytes
            while left and (chunk := fh.read(min(_CHUNK, left))):
                self.update(chunk)
                left -= len(chunk)

    def md5_hex(self) -> str | None:
        return self.md5.hexdigest() if self.md5 is not None else None


# ------------------------------------------------------------------------------------------- manual sources
def _check_source(s: Source, dest: Path, record: Record, verify: bool, progress: DownloadProgress) -> FileStatus:
    """Look for a source put in `dest` by hand, under its name or an alias, up to a few folders deep."""
    if not s.name_published:
        return FileStatus(s, "unnamed")
    for path in _find(dest, (s.filename, *s.aliases)):
        if path.is_dir():
            n = size = 0
            for p in path.rglob("*"):
                if p.is_file():
                    n, size = n + 1, size + p.stat().st_size
            progress.finish(s.filename, "found")
            return FileStatus(s, "found", path, size, None, None, files=n)
        rel = path.relative_to(dest).as_posix()
        entry = record.files.get(rel)
        if entry is not None:
            _verify_recorded(path, entry, record, progress=(progress, f"{rel} (verifying)"))
        else:
            declared = {k: v for k, v in (("size", s.size), ("md5", s.md5), ("sha256", s.sha256)) if v and verify}
            size, sha, md5 = _digest(path, md5=bool(s.md5), progress=(progress, f"{rel} (checking)"))
            if path.name == s.filename:  # declared values are those of the published file, not of an alias
                _compare(path, declared, {"size": size, "sha256": sha, "md5": md5}, "published")
            entry = _entry(s, size, sha, md5, None, "placed by hand", verify and path.name == s.filename)
            record.put(rel, entry)
        progress.finish(s.filename, "found")
        return FileStatus(s, "found", path, entry["size"], entry["sha256"])
    return FileStatus(s, "missing")


def _find(dest: Path, names: tuple[str, ...]) -> Iterator[Path]:
    """Entries of `dest` (at most _CHECK_DEPTH levels) named like one of `names` (case-insensitive; a name
    ending with "/" matches folders only, others files only), shallowest first."""
    wanted_files = {n.lower() for n in names if not n.endswith("/")}
    wanted_dirs = {n.rstrip("/").lower() for n in names if n.endswith("/")}
    level = [dest]
    for _ in range(_CHECK_DEPTH):
        nxt = []
        for folder in level:
            try:
                entries = sorted(folder.iterdir())
            except OSError:
                continue
            for p in entries:
                low = p.name.lower()
                if p.is_dir():
                    if low in wanted_dirs:
                        yield p
                    nxt.append(p)
                elif p.is_file() and low in wanted_files:
                    yield p
        level = nxt


def _missing(files: list[FileStatus], dest: Path) -> list[Source] | None:
    """Sources still to get by hand, or None when the folder is ready: it holds something, every required
    named source is there, and at least one source of each `one_of` group."""
    if folder_is_empty(dest):
        return [f.source for f in files if not f.source.direct]
    absent = [f.source for f in files if f.status == "missing"]
    todo = [s for s in absent if s.required and not s.one_of]
    for group in dict.fromkeys(f.source.one_of for f in files if f.source.one_of):
        members = [f for f in files if f.source.one_of == group]
        if all(f.status == "missing" for f in members):
            todo += [f.source for f in members]
    if not todo:
        return None
    return todo + [f.source for f in files if f.status == "unnamed"]


def folder_is_empty(dest: Path) -> bool:
    """True when `dest` holds nothing but cytohub's own files."""
    if not dest.is_dir():
        return True
    return all(p.name in (*RECORD_FILES, MARKER) or p.name.endswith(PART) for p in dest.iterdir())


# ------------------------------------------------------------------------------------------- helpers
def _entry(s: Source, size: int, sha256: str, md5: str | None, url: str | None, origin: str,
           verified: bool) -> dict[str, Any]:
    entry: dict[str, Any] = {"size": size, "sha256": sha256, "url": url, "origin": origin,
                             "declared": _declared_text(s, verified)}
    if md5 is not None:
        entry["md5"] = md5
    return entry


def _declared_text(s: Source, verified: bool) -> str:
    declared = [k for k, v in (("size", s.size), ("md5", s.md5), ("sha256", s.sha256)) if v]
    if not declared:
        return "none published; sha256 recorded on first download"
    if not verified:
        return f"not checked (--no-verify): published {', '.join(declared)}"
    return f"published {', '.join(declared)} verified"


def _origin(entry: dict[str, Any]) -> str:
    return f"downloaded from {entry['url']}" if entry.get("url") else str(entry.get("origin", "recorded"))


def _verify_recorded(path: Path, entry: dict[str, Any], record: Record, progress=None) -> None:
    """Check a file against its entry in the record (size first, without reading it; then sha256)."""
    size = path.stat().st_size
    _check_recorded(path, entry, {"size": size}, record)
    _, sha, _ = _digest(path, md5=False, progress=progress)
    _check_recorded(path, entry, {"size": size, "sha256": sha}, record)


def _check_recorded(path: Path, entry: dict[str, Any], actual: dict[str, Any], record: Record) -> None:
    if entry.get("size") is not None and actual["size"] != entry["size"]:
        raise ChecksumMismatchError(f"{path}: {actual['size']} bytes, but {entry['size']} were recorded in "
                                    f"{record.path.name} ({_origin(entry)}); {_RECORDED_HINT}")
    if entry.get("sha256") and actual.get("sha256") and actual["sha256"] != entry["sha256"]:
        raise ChecksumMismatchError(f"{path}: sha256 {actual['sha256']}, but {entry['sha256']} was recorded in "
                                    f"{record.path.name} ({_origin(entry)}); {_RECORDED_HINT}")


_RECORDED_HINT = ("the file changed since; if you replaced it on purpose, delete its entry from the record "
                  "(or the whole downloads.json) and run `cytohub download` again")


def _compare(path: Path, expected: dict[str, Any], actual: dict[str, Any], what: str, url: str | None = None) -> None:
    """Raise ChecksumMismatchError on the first of size, md5, sha256 that differs (keys absent are skipped)."""
    where = f" (downloaded from {url}; nothing was kept)" if url else ""
    for key in ("size", "md5", "sha256"):
        want = expected.get(key)
        if want is None or actual.get(key) is None:
            continue
        if key == "size" and actual[key] != want:
            raise ChecksumMismatchError(f"{path}: {actual[key]} bytes, but the {what} size is {want}{where}")
        if key != "size" and str(actual[key]).lower() != str(want).lower():
            raise ChecksumMismatchError(f"{path}: {key} {actual[key]} does not match the {what} {want}{where}")


def _digest(path: Path, md5: bool,
            progress: tuple[DownloadProgress, str] | None = None) -> tuple[int, str, str | None]:
    """(size in bytes, sha256 hex, md5 hex or None) of a file, read once in 1 MiB chunks; `progress` is a
    (DownloadProgress, bar name) pair that is told of every chunk."""
    h = _Hashes(md5)
    size = 0
    if progress is not None:
        progress[0].start(progress[1], path.stat().st_size, 0)
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
            size += len(chunk)
            if progress is not None:
                progress[0].advance(progress[1], len(chunk))
    if progress is not None:
        progress[0].finish(progress[1], "verified")
    return size, h.sha256.hexdigest(), h.md5_hex()


def _content_range(value: str | None, unsatisfied: bool = False) -> tuple[int | None, int | None, int | None]:
    """'bytes 10-99/100' -> (10, 99, 100); 'bytes */100' -> (None, None, 100); total '*' -> None."""
    if not value or not value.strip().lower().startswith("bytes"):
        if unsatisfied:
            return None, None, None
        raise ValueError(f"206 response without a valid Content-Range ({value!r})")
    spec = value.strip()[5:].strip()
    span, _, total_text = spec.partition("/")
    total = int(total_text) if total_text.strip().isdigit() else None
    if span.strip() == "*":
        return None, None, total
    first, _, last = span.partition("-")
    return int(first), int(last), total


def _validator(headers) -> str | None:
    """A strong ETag, else Last-Modified: what If-Range may carry (RFC 9110 section 13.1.5)."""
    etag = headers.get("ETag")
    if etag and not etag.startswith("W/"):
        return etag
    return headers.get("Last-Modified")


def _retry_after(headers, policy: RetryPolicy) -> float | None:
    """Seconds to wait from a Retry-After header (seconds or an HTTP date); None if absent or unreadable.
    A wait longer than the policy allows is an error, rather than a silent hang."""
    value = (headers or {}).get("Retry-After") if headers is not None else None
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        seconds = float(value)
    else:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=dt.UTC)
        seconds = max(0.0, (when - dt.datetime.now(dt.UTC)).total_seconds())
    if seconds > policy.max_retry_after:
        raise DownloadError(f"the server asks to wait {seconds:.0f} s before retrying (Retry-After), more than "
                            f"the {policy.max_retry_after:.0f} s cytohub waits; run the same command again later")
    return seconds


def _describe(exc: BaseException) -> str:
    if isinstance(exc, http.client.IncompleteRead):
        return "the connection dropped mid-file"
    if isinstance(exc, TimeoutError):
        return "the connection timed out"
    if isinstance(exc, ConnectionError):
        return f"the connection failed ({type(exc).__name__})"
    return f"{type(exc).__name__}: {exc}"


def _plain_name(name: str) -> bool:
    return bool(name) and "/" not in name and "\\" not in name and name not in (".", "..")


def _default_dest(corpus: str) -> Path | None:
    home = os.environ.get("CYTOHUB_HOME")
    base = Path(home).expanduser() if home else Path.home() / ".cache" / "cytohub"
    return (base / "raw" / corpus).absolute()


@contextlib.contextmanager
def _folder_lock(dest: Path) -> Iterator[None]:
    """One `cytohub download` per folder at a time (an advisory lock, released if the process dies)."""
    path = dest / LOCK
    with open(path, "a+") as fh:
        try:
            import fcntl
        except ImportError:  # no advisory locks on this platform
            fcntl = None
        if fcntl is not None:
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise CytohubError(f"{dest}: another `cytohub download` is writing to this folder; wait for it "
                                   "to finish") from None
        try:
            yield
        finally:
            path.unlink(missing_ok=True)


def require_complete(result: DownloadResult) -> None:
    """Raise DatasetNotFoundError with the instructions when files must still be fetched by hand."""
    if not result.complete:
        raise DatasetNotFoundError(result.instructions or f"{result.dest}: incomplete download")
