"""Publishing a build folder to the Hugging Face Hub (`cytohub push`): exactly the build, where it may go.

* Uploads exactly the build: the files its report's manifest lists (`cytohub.manifest`), plus the report;
  the one change is the card's "How to load", which names the repo instead of the build's `"ORG/<corpus>"`
  placeholder (`cytohub.card.card_for_repo`), applied to the card once it is checked against the manifest.
  Before anything is sent, the folder is compared with the manifest without following symbolic links: a
  symbolic link, a missing file, a file whose size changed, or any file the build did not write (`.env`,
  `.git/`, notes) makes push refuse and list them (`ignore_extra` leaves unknown files out instead).
* Plans the change against the remote revision by content, from one repo-info request (files with their
  metadata, and the repo's settings): the manifest's sha256 against the remote LFS sha256 (no local hashing),
  git blob ids for the small regular files. New or changed files are added, stale
  files under `data/` and `assets/` deleted, in ONE commit made with `parentCommit` set; an unchanged folder
  makes no commit (and is not validated again: nothing new is published).
* When something is to be uploaded, the folder is validated (`cytohub.validate`, default mode) in two stages.
  Before any byte is sent: the manifest (sha256 of every file), card, report, schema, counts and every row's
  small columns; an invalid folder is refused. While the files upload: the readers' view (sampled images
  decoded as `datasets` decodes them, `load_dataset`); the commit is made only if that passes too, so an
  uploaded but refused build is never part of the repo. Every uploaded file is hashed once: the validation's
  sha256, already compared with the manifest, is the LFS oid of the upload (the server checks the bytes
  against it); small files are read once, hashed and sent from memory; with Xet the client hashes while
  uploading and push compares that hash with the manifest before committing. A file changed since the build
  is refused, never published.
* Honours the corpus's redistribution terms on every push, for new and existing repos (a mix of corpora, see
  `cytohub.mix`: the strictest of its sources, `redistribution`): `forbidden` only to a
  private repo (`--private` makes an existing repo private); `gated`: a public repo must have the Hub's access
  gate on (push switches it on, or refuses). Synthetic builds are refused unless allowed.
* Transient failures (HTTP 5xx, 409/412/429, dropped connections) are retried with exponential backoff,
  re-planning each time (a commit that went through but whose answer was lost is recognised, not repeated).
  If every attempt fails the repo stays at its previous commit (a commit is atomic) and the error says how
  to resume: run the same command again; blobs already uploaded are not sent again.
* The token comes from `token`, else `HF_TOKEN`, else the stored `hf auth login`; the endpoint from
  `HF_ENDPOINT`, as in the Hub libraries. The token is never printed, logged or written anywhere.
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cytohub import manifest, registry
from cytohub.errors import CytohubError
from cytohub.manifest import REPORT

MANAGED = ("data/", "assets/")  # remote folders that mirror the build folder (stale files there are deleted)
RETRIES = 5
BACKOFF = 0.5  # seconds, doubled after each failed attempt
IN_MEMORY_BYTES = 16 * 2**20  # files up to this size are read once and sent from memory


@dataclass
class PushPlan:
    repo_id: str
    revision: str
    repo_exists: bool
    head: str | None
    add: list[str] = field(default_factory=list)
    delete: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    private: bool | None = None  # of the existing repo
    gated: Any = None  # of the existing repo: False, "auto" or "manual"

    @property
    def empty(self) -> bool:
        return not self.add and not self.delete


@dataclass
class PushResult:
    plan: PushPlan
    commit: str | None  # the new commit sha, or the unchanged head
    committed: bool
    attempts: int
    url: str
    settings: list[str] = field(default_factory=list)  # repo settings changed by this push


@dataclass
class Build:
    """A build folder checked for publishing: its report, its manifest (path -> entry) and the files to send."""

    folder: Path
    report: dict[str, Any]
    files: dict[str, dict[str, Any]]
    left_out: list[str] = field(default_factory=list)  # unknown files left out (ignore_extra)

    @property
    def paths(self) -> list[str]:
        return [*self.files, REPORT]


def _git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def check_publishable(folder: Path, private: bool, allow_synthetic: bool, ignore_extra: bool = False) -> Build:
    """The build, once its folder holds exactly its manifest's files (sizes checked; symbolic links and unknown
    files refused, or left out with `ignore_extra`) and the publishing rules allow it. Reads no file content
    but the report. Raises CytohubError otherwise."""
    folder = Path(folder)
    report = manifest.read_report(folder)
    files = {e["path"]: e for e in manifest.entries(report)}
    check = manifest.verify(folder, list(files.values()), hash_contents=False)
    if check.symlinks:
        raise CytohubError(f"{folder} holds symbolic links or special files, which push never follows or sends: "
                           f"{manifest._listing(check.symlinks)}. Remove them.")
    if check.extra and not ignore_extra:
        raise CytohubError(f"{folder} holds {len(check.extra)} file(s) the build did not write: "
                           f"{manifest._listing(check.extra)}. Push sends only the build's files: move them away, "
                           "or pass --ignore-extra to leave them out.")
    if check.missing or check.changed:
        raise CytohubError("\n".join(p for p in check.problems(folder) if "missing" in p or "changed" in p)
                           + "\nThe folder is no longer the build: rebuild it (or restore the files) before pushing.")
    if report.get("synthetic") and not allow_synthetic:
        raise CytohubError(f"{folder} was built from synthetic raw data (its card says so); pushing it would "
                           "publish drawn pixels as if they were the corpus. Pass --allow-synthetic if that "
                           "is really what you want (e.g. to test publishing).")
    level, corpora = redistribution(report)
    if level == "forbidden" and not private:
        if report.get("kind") == "mix":
            raise CytohubError(f"this mix holds rows of {', '.join(corpora)}, whose license does not allow "
                               "redistribution: it may only be pushed to a private repo (--private), for your own use")
        b = registry.get(report["builder"]["name"])
        raise CytohubError(f"the license of {b.name} ({b.license_name or b.license}) does not allow "
                           "redistribution: it may only be pushed to a private repo (--private), for your own use")
    return Build(folder, report, files, left_out=check.extra)


Validated = tuple[dict[str, str], Callable[[], None]]


def validate_for_push(build: Build) -> Validated:
    """Validate the folder (default mode) in two stages (`cytohub.validate.validate_in_stages`). Runs the first
    (the folder is the build, byte for byte, and well formed) and returns (sha256 of every manifest file, as
    hashed and compared with the manifest, `finish`); `finish()` runs the second (images decoded as readers
    do, `load_dataset`). Each raises CytohubError if the folder does not validate."""
    # the sha256 of every file (no `datasets` needed) runs while `cytohub.validate` and `datasets` are imported
    hashing = _in_background(lambda: manifest.verify(build.folder, list(build.files.values()),
                                                     ignore_extra=bool(build.left_out)))
    from cytohub.validate import validate_in_stages

    v, readers = validate_in_stages(build.folder, ignore_extra=bool(build.left_out), manifest_check=hashing)
    _refuse_invalid(build, v)
    return v.hashes, lambda: _refuse_invalid(build, readers())


def _refuse_invalid(build: Build, v) -> None:
    if not v.ok:
        shown = "\n".join(f"  - {p}" for p in v.problems[:10])
        raise CytohubError(f"{build.folder} does not validate, so it is not pushed (nothing was committed; "
                           f"{len(v.problems)} problem(s)):\n{shown}\nRun `cytohub validate {build.folder}` for the "
                           "full list.")


def _xet_uploads() -> bool:
    try:
        from huggingface_hub.utils._runtime import is_xet_available
    except ImportError:  # a client without the check: assume Xet (the client then hashes while uploading)
        return True
    return is_xet_available()


def redistribution(report: dict) -> tuple[str, list[str]]:
    """The redistribution rule (`allowed`, `gated` or `forbidden`) of a build folder's report, and the corpora
    that impose it. A build: its corpus's builder's. A mix (`kind: "mix"`, see `cytohub.mix`): the strictest
    among its sources (forbidden > gated > allowed), each source taken as the stricter of what the mix recorded
    and what this cytohub's builder declares now (a corpus unknown here keeps its recorded rule)."""
    from cytohub.builder import REDISTRIBUTION  # least to most strict

    if report.get("kind") != "mix":
        b = registry.get(report["builder"]["name"])
        return b.redistribution, [b.name]
    levels: dict[str, str] = {}
    for s in report.get("sources", []):
        level = s.get("redistribution") if s.get("redistribution") in REDISTRIBUTION else "forbidden"
        with contextlib.suppress(CytohubError):  # a corpus this cytohub does not know keeps its recorded rule
            level = max(level, registry.get(s["corpus"]).redistribution, key=REDISTRIBUTION.index)
        levels[s["corpus"]] = level
    if not levels:
        return "forbidden", []
    top = max(levels.values(), key=REDISTRIBUTION.index)
    return top, sorted(c for c, v in levels.items() if v == top)


class Publisher:
    def __init__(self, token: str | None = None, sleep: Callable[[float], None] = time.sleep,
                 note: Callable[[str], None] | None = None) -> None:
        from huggingface_hub import HfApi

        self.api = HfApi(token=token)
        self.sleep = sleep
        self.note = note or (lambda msg: None)
        self._small: dict[str, bytes] = {}  # small files read once (README.md, the report, ...)

    def _payload(self, build: Build, path: str, repo_id: str) -> bytes:
        """What is uploaded for a small build file: its bytes (`_bytes`), except README.md, whose "How to load"
        names `repo_id` instead of the build's `"ORG/<corpus>"` placeholder (`cytohub.card.card_for_repo`: that
        one replacement, nothing else; the card in the folder, checked against the manifest, is its input)."""
        data = self._bytes(build, path)
        if path != "README.md":
            return data
        from cytohub.card import card_for_repo

        return card_for_repo(data.decode("utf-8"), build.report["builder"]["name"], repo_id).encode("utf-8")

    def _bytes(self, build: Build, path: str) -> bytes:
        """A small file's bytes, read once per push; a file of the manifest must still match it."""
        if path not in self._small:
            data = (build.folder / path).read_bytes()
            e = build.files.get(path)
            if e is not None and (len(data) != e["size"] or hashlib.sha256(data).hexdigest() != e["sha256"]):
                raise CytohubError(f"{build.folder / path} changed since the build (sha256 differs from the "
                                   "manifest); it is not pushed. Rebuild the folder.")
            self._small[path] = data
        return self._small[path]

    # ------------------------------------------------------------------ planning
    def plan(self, build: Build, repo_id: str, revision: str) -> PushPlan:
        from huggingface_hub.errors import RepositoryNotFoundError, RevisionNotFoundError

        # one request: the revision's files (sha256 of LFS files, git blob ids) and the repo's settings
        try:
            info = self.api.repo_info(repo_id, repo_type="dataset", revision=revision, files_metadata=True)
            head, exists = info.sha, True
        except RepositoryNotFoundError:
            head, exists, info = None, False, None
        except RevisionNotFoundError:  # a new branch: compare against the default branch it will start from
            info = self.api.repo_info(repo_id, repo_type="dataset", files_metadata=True)
            head, exists = None, True
        private, gated = (info.private, info.gated) if info is not None else (None, None)
        remote = {f.rfilename: f for f in (info.siblings or [])} if info is not None else {}
        plan = PushPlan(repo_id, revision, exists, head, private=private, gated=gated)
        for name in build.paths:
            r = remote.get(name)
            e = build.files.get(name)
            same = False
            if r is not None and r.size is not None:
                if r.lfs is not None and e is not None:
                    same = r.lfs.sha256 == e["sha256"]
                elif r.lfs is None and r.size <= IN_MEMORY_BYTES:
                    same = r.blob_id == _git_blob_sha1(self._payload(build, name, repo_id))
            (plan.unchanged if same else plan.add).append(name)
        keep = set(build.paths)
        plan.delete = sorted(p for p in remote if p.startswith(MANAGED) and p not in keep)
        return plan

    # ------------------------------------------------------------------ repo settings
    def settings_needed(self, plan: PushPlan, *, private: bool, gated: bool) -> list[str]:
        """The settings an existing repo must change before this push: 'private' (asked with --private, or
        required by a forbidden corpus), 'gate' (a gated corpus in a public repo)."""
        if not plan.repo_exists:
            return []
        out = []
        if private and not plan.private:
            out.append("private")
        if gated and not (private or plan.private) and not plan.gated:
            out.append("gate")
        return out

    def enforce_settings(self, repo_id: str, *, private: bool, gated: bool, plan: PushPlan | None = None) -> list[str]:
        """Make the repo private (when asked) and gated (a gated corpus in a public repo), then read the settings
        back; raises CytohubError (nothing is uploaded) when the repo does not end up as required. The settings
        of an existing repo are taken from `plan` (read with the plan) when given."""
        if plan is not None and plan.repo_exists and not self.settings_needed(plan, private=private, gated=gated):
            return []
        info = self.api.repo_info(repo_id, repo_type="dataset")
        changed = []
        if private and not info.private:
            self.note(f"making {repo_id} private")
            self._update(repo_id, "make the repo private", private=True)
            changed.append("private")
        if gated and not (private or info.private) and not info.gated:
            self.note(f"switching on the access gate of {repo_id}")
            self._update(repo_id, "switch on the access gate", gated="auto")
            changed.append("gate")
        if changed:
            info = self.api.repo_info(repo_id, repo_type="dataset")
        if private and not info.private:
            raise CytohubError(f"{repo_id} is still public after asking the Hub to make it private; nothing was "
                               "uploaded. Make it private in its settings, then push again.")
        if gated and not info.private and not info.gated:
            raise CytohubError(f"{repo_id} is public without the access gate its corpus's license requires; the "
                               "gate could not be switched on, so nothing was uploaded. Switch on access requests "
                               "in the repo settings (or push with --private), then push again.")
        return changed

    def _update(self, repo_id: str, what: str, **settings: Any) -> None:
        try:
            self.api.update_repo_settings(repo_id, repo_type="dataset", **settings)
        except Exception as exc:
            if _transient(exc):
                raise
            raise CytohubError(f"could not {what} for {repo_id} ({_describe(exc)}); nothing was uploaded") from None

    # ------------------------------------------------------------------ pushing
    def push(self, build: Build, repo_id: str, *, private: bool = False, revision: str | None = None,
             message: str | None = None, gated: bool = False,
             validation: Callable[[Build], Validated] = validate_for_push) -> PushResult:
        """Publish `build` (from `check_publishable`) to `repo_id`. `validation(build)` is called only when
        something is to be uploaded, before anything is written remotely: it runs the first stage of validation
        (raising if the folder is not the build or is malformed) and gives the sha256 of the files and the second
        stage, which runs while the files are uploaded; the commit is made only if it passes."""
        from huggingface_hub import CommitOperationDelete

        revision = revision or "main"
        url = f"{self.api.endpoint}/datasets/{repo_id}" + ("" if revision == "main" else f"/tree/{revision}")
        last_error: BaseException | None = None
        head_before: str | None = None
        digests: dict[str, str] | None = None
        finish: Callable[[], None] | None = None
        changed: list[str] = []
        for attempt in range(1, RETRIES + 1):
            try:
                plan = self.plan(build, repo_id, revision)
                if attempt == 1:
                    head_before = plan.head
                if not plan.empty and digests is None:
                    digests, finish = validation(build)  # before anything is written remotely
                if not plan.repo_exists:
                    self.note(f"creating dataset repo {repo_id}")
                    self.api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
                changed += [c for c in self.enforce_settings(repo_id, private=private, gated=gated, plan=plan)
                            if c not in changed]
                if not plan.repo_exists:
                    plan = self.plan(build, repo_id, revision)
                if plan.head is None and revision != "main":
                    self.note(f"creating branch {revision}")
                    self.api.create_branch(repo_id, repo_type="dataset", branch=revision, exist_ok=True)
                    plan = self.plan(build, repo_id, revision)
                if plan.empty:
                    return PushResult(plan, plan.head, False, attempt, url, changed)
                if digests is None:
                    digests, finish = validation(build)
                ops, expected = self._additions(build, plan.add, digests, repo_id)
                self.note(f"uploading {len(plan.add)} file(s), deleting {len(plan.delete)}")
                readers = _in_background(finish) if finish is not None else None
                try:
                    self.api.preupload_lfs_files(repo_id, ops, repo_type="dataset", revision=revision)
                finally:
                    if readers is not None:  # the second stage of validation, run while the bytes travel
                        readers.result()  # raises CytohubError: nothing is committed
                        finish = None
                for op in ops:  # with Xet the client hashed while uploading: the bytes sent are the build's
                    if op.upload_info.sha256.hex() != expected[op.path_in_repo]:
                        raise CytohubError(f"{build.folder / op.path_in_repo} changed since the build (the bytes "
                                           "uploaded do not match the manifest); nothing was committed.")
                deletes = [CommitOperationDelete(path_in_repo=p) for p in plan.delete]
                info = self.api.create_commit(
                    repo_id, [*ops, *deletes], repo_type="dataset", revision=revision, parent_commit=plan.head,
                    commit_message=message or _message(build, plan),
                    commit_description="Built with cytohub; see build-report.json for provenance (sha256 "
                                       f"{hashlib.sha256(self._bytes(build, REPORT)).hexdigest()}).")
                return PushResult(plan, info.oid, True, attempt, url, changed)
            except CytohubError:
                raise
            except Exception as exc:
                if not _transient(exc):
                    raise CytohubError(f"push to {repo_id} failed: {_describe(exc)}") from None
                last_error = exc
                if attempt < RETRIES:
                    wait = BACKOFF * 2 ** (attempt - 1)
                    self.note(f"attempt {attempt} failed ({_describe(exc)}); retrying in {wait:g} s")
                    self.sleep(wait)
        where = f"at its previous commit {head_before[:12]}" if head_before else "without the new commit"
        raise CytohubError(f"push to {repo_id} failed after {RETRIES} attempts ({_describe(last_error)}). "
                           f"The repo is unchanged, {where}. To resume, run the same command again: files "
                           "already uploaded are not sent again.")

    def _additions(self, build: Build, paths: list[str], digests: dict[str, str],
                   repo_id: str) -> tuple[list, dict[str, str]]:
        """Commit operations for `paths`, each file read for its hash at most once: small files from memory,
        large ones from disk with the validated sha256 as their LFS oid (or hashed by Xet while uploading); and
        the sha256 each upload must have."""
        from huggingface_hub import CommitOperationAdd

        xet = _xet_uploads()
        ops, expected = [], {}
        for p in paths:
            e = build.files.get(p)
            if e is None or e["size"] <= IN_MEMORY_BYTES:
                op = CommitOperationAdd(path_in_repo=p, path_or_fileobj=self._payload(build, p, repo_id))
                ops.append(op)
                expected[p] = op.upload_info.sha256.hex()
                continue
            if (build.folder / p).is_symlink():
                raise CytohubError(f"{build.folder / p} became a symbolic link; it is not pushed")
            op = CommitOperationAdd(path_in_repo=p, path_or_fileobj=str(build.folder / p))
            if op.upload_info.size != e["size"]:
                raise CytohubError(f"{build.folder / p} changed since the build (size); it is not pushed")
            if not xet:
                op.upload_info.sha256 = bytes.fromhex(digests.get(p) or e["sha256"])
            ops.append(op)
            expected[p] = e["sha256"]
        return ops, expected


def _in_background(fn: Callable[[], None]):
    from concurrent.futures import ThreadPoolExecutor

    pool = ThreadPoolExecutor(1, thread_name_prefix="cytohub-validate-readers")
    future = pool.submit(fn)
    pool.shutdown(wait=False)
    return future


def _message(build: Build, plan: PushPlan) -> str:
    report = build.report
    b = report["builder"]
    return (f"cytohub {report['cytohub_version']}: {b['name']} (builder {b['version']}), "
            f"{report['num_rows']} rows")


def _status(exc: BaseException) -> int | None:
    response = getattr(exc, "response", None)
    return getattr(response, "status_code", None)


def _root_cause(exc: BaseException) -> BaseException:
    """The innermost error the client wrapped (an upload failure wraps the HTTP error that caused it)."""
    seen = {id(exc)}
    while _status(exc) is None and exc.__cause__ is not None and id(exc.__cause__) not in seen:
        exc = exc.__cause__
        seen.add(id(exc))
    return exc


def _transient(exc: BaseException) -> bool:
    """HTTP 5xx, 408, 409, 412, 429 or a dropped connection, here or in the error it wraps."""
    status = _status(_root_cause(exc))
    if status is not None:
        return status >= 500 or status in (408, 409, 412, 429)
    chain, seen = [], set()
    while exc is not None and id(exc) not in seen:
        chain.append(exc)
        seen.add(id(exc))
        exc = exc.__cause__
    return any(isinstance(e, (ConnectionError, TimeoutError, OSError))
               or any(cls.__module__.split(".")[0].startswith(("httpx", "httpcore")) for cls in type(e).__mro__)
               for e in chain)


def _describe(exc: BaseException | None) -> str:
    if exc is None:
        return "unknown error"
    cause = _root_cause(exc)
    status = _status(cause)
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if cause is not exc:
        inner = str(cause).splitlines()[0] if str(cause) else type(cause).__name__
        text = f"{text} ({inner})"
    return f"HTTP {status}: {text}" if status else f"{type(exc).__name__}: {text}"
