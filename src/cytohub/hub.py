"""Publishing a build folder to the Hugging Face Hub (`cytohub push`).

* Validates the folder first and refuses an invalid one; refuses synthetic builds unless allowed; honours the
  corpus's redistribution terms (`forbidden` only to a private repo, `gated` with the Hub's access gate).
* Plans the change against the remote revision by content (sha256 for LFS files, git blob ids for the rest):
  new or changed files are added, stale files under `data/` and `assets/` are deleted, in ONE commit made
  with `parentCommit` set; an unchanged folder makes no commit.
* Transient failures (HTTP 5xx, 409/412/429, dropped connections) are retried with exponential backoff,
  re-planning each time (a commit that went through but whose answer was lost is recognised, not repeated).
  If every attempt fails the repo stays at its previous commit (a commit is atomic) and the error says how
  to resume: run the same command again; blobs already uploaded are not sent again.
* The token comes from `token`, else `HF_TOKEN`, else the stored `hf auth login`; the endpoint from
  `HF_ENDPOINT`, as in the Hub libraries. The token is never printed, logged or written anywhere.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from cytohub import registry
from cytohub.build import REPORT
from cytohub.errors import CytohubError

MANAGED = ("data/", "assets/")  # remote folders that mirror the build folder (stale files there are deleted)
TOP_FILES = ("README.md", "croissant.json", REPORT)
RETRIES = 5
BACKOFF = 0.5  # seconds, doubled after each failed attempt


@dataclass
class PushPlan:
    repo_id: str
    revision: str
    repo_exists: bool
    head: str | None
    add: list[str] = field(default_factory=list)
    delete: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)

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


def local_files(folder: Path) -> list[str]:
    files = [name for name in TOP_FILES if (folder / name).is_file()]
    for sub in MANAGED:
        files += sorted(p.relative_to(folder).as_posix() for p in (folder / sub).rglob("*") if p.is_file())
    return files


def pushed_bytes(folder: Path, name: str, repo_id: str) -> bytes | None:
    """What is uploaded for the build file `name` when it is not the file itself, else None. Only README.md
    differs: its "How to load" names `repo_id` instead of the build's `"ORG/<corpus>"` placeholder
    (`cytohub.card.card_for_repo`: that one replacement, nothing else)."""
    if name != "README.md":
        return None
    from cytohub.card import card_for_repo

    corpus = json.loads((folder / REPORT).read_text(encoding="utf-8"))["builder"]["name"]
    return card_for_repo((folder / name).read_text(encoding="utf-8"), corpus, repo_id).encode("utf-8")


def _git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def check_publishable(folder: Path, private: bool, allow_synthetic: bool) -> dict:
    """The build report, once the folder has passed validation and the publishing rules. Raises otherwise."""
    from cytohub.validate import validate

    if not (folder / REPORT).is_file():
        raise CytohubError(f"{folder}: no {REPORT}; expected a build folder made by `cytohub build`")
    v = validate(folder)
    if not v.ok:
        shown = "\n".join(f"  - {p}" for p in v.problems[:10])
        raise CytohubError(f"{folder} does not validate, so it is not pushed ({len(v.problems)} problem(s)):\n"
                           f"{shown}\nRun `cytohub validate {folder}` for the full list.")
    report = json.loads((folder / REPORT).read_text(encoding="utf-8"))
    if report.get("synthetic") and not allow_synthetic:
        raise CytohubError(f"{folder} was built from synthetic raw data (its card says so); pushing it would "
                           "publish drawn pixels as if they were the corpus. Pass --allow-synthetic if that "
                           "is really what you want (e.g. to test publishing).")
    b = registry.get(report["builder"]["name"])
    if b.redistribution == "forbidden" and not private:
        raise CytohubError(f"the license of {b.name} ({b.license_name or b.license}) does not allow "
                           "redistribution: it may only be pushed to a private repo (--private), for your own use")
    return report


class Publisher:
    def __init__(self, token: str | None = None, sleep: Callable[[float], None] = time.sleep,
                 note: Callable[[str], None] | None = None) -> None:
        from huggingface_hub import HfApi

        self.api = HfApi(token=token)
        self.sleep = sleep
        self.note = note or (lambda msg: None)
        self._sha: dict[tuple[Path, int, int], str] = {}  # (path, size, mtime) -> sha256, kept across re-plans

    def _local_sha256(self, path: Path) -> str:
        st = path.stat()
        key = (path, st.st_size, st.st_mtime_ns)
        if key not in self._sha:  # a push re-plans after creating the repo and on each retry: hash once
            self._sha[key] = _sha256(path)
        return self._sha[key]

    # ------------------------------------------------------------------ planning
    def plan(self, folder: Path, repo_id: str, revision: str) -> PushPlan:
        from huggingface_hub.errors import RepositoryNotFoundError, RevisionNotFoundError

        try:
            info = self.api.repo_info(repo_id, repo_type="dataset", revision=revision)
            head, exists = info.sha, True
            remote = {f.path: f for f in self.api.list_repo_tree(repo_id, repo_type="dataset", revision=head,
                                                                 recursive=True)
                      if hasattr(f, "blob_id")}
        except RepositoryNotFoundError:
            head, exists, remote = None, False, {}
        except RevisionNotFoundError:  # a new branch: compare against the default branch it will start from
            info = self.api.repo_info(repo_id, repo_type="dataset")
            head, exists = None, True
            remote = {f.path: f for f in self.api.list_repo_tree(repo_id, repo_type="dataset", revision=info.sha,
                                                                 recursive=True)
                      if hasattr(f, "blob_id")}
        plan = PushPlan(repo_id, revision, exists, head)
        local = local_files(folder)
        for name in local:
            path = folder / name
            r = remote.get(name)
            same = False
            if r is not None:
                data = pushed_bytes(folder, name, repo_id)
                if r.lfs is not None:
                    same = r.lfs.sha256 == (hashlib.sha256(data).hexdigest() if data is not None
                                            else self._local_sha256(path))
                elif r.size == (len(data) if data is not None else path.stat().st_size):
                    same = r.blob_id == _git_blob_sha1(data if data is not None else path.read_bytes())
            (plan.unchanged if same else plan.add).append(name)
        keep = set(local)
        plan.delete = sorted(p for p in remote if p.startswith(MANAGED) and p not in keep)
        return plan

    # ------------------------------------------------------------------ pushing
    def push(self, folder: Path, repo_id: str, *, private: bool = False, revision: str | None = None,
             message: str | None = None, gated: bool = False) -> PushResult:
        from huggingface_hub import CommitOperationAdd, CommitOperationDelete

        revision = revision or "main"
        url = f"{self.api.endpoint}/datasets/{repo_id}" + ("" if revision == "main" else f"/tree/{revision}")
        last_error: BaseException | None = None
        head_before: str | None = None
        for attempt in range(1, RETRIES + 1):
            try:
                plan = self.plan(folder, repo_id, revision)
                if attempt == 1:
                    head_before = plan.head
                if not plan.repo_exists:
                    self.note(f"creating dataset repo {repo_id}")
                    self.api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
                    if gated:
                        self._gate(repo_id)
                    plan = self.plan(folder, repo_id, revision)
                if plan.head is None and revision != "main":
                    self.note(f"creating branch {revision}")
                    self.api.create_branch(repo_id, repo_type="dataset", branch=revision, exist_ok=True)
                    plan = self.plan(folder, repo_id, revision)
                if plan.empty:
                    return PushResult(plan, plan.head, False, attempt, url)
                ops = [CommitOperationAdd(path_in_repo=p, path_or_fileobj=_payload(folder, p, repo_id))
                       for p in plan.add]
                ops += [CommitOperationDelete(path_in_repo=p) for p in plan.delete]
                self.note(f"uploading {len(plan.add)} file(s), deleting {len(plan.delete)}")
                info = self.api.create_commit(
                    repo_id, ops, repo_type="dataset", revision=revision, parent_commit=plan.head,
                    commit_message=message or _message(folder, plan),
                    commit_description="Built with cytohub; see build-report.json for provenance.")
                return PushResult(plan, info.oid, True, attempt, url)
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

    def _gate(self, repo_id: str) -> None:
        try:
            self.api.update_repo_settings(repo_id, repo_type="dataset", gated="auto")
        except Exception as exc:  # the gate can also be set on the Hub's settings page
            self.note(f"could not enable the access gate ({_describe(exc)}); enable it in the repo settings")


def _payload(folder: Path, name: str, repo_id: str) -> bytes | str:
    data = pushed_bytes(folder, name, repo_id)
    return data if data is not None else str(folder / name)


def _message(folder: Path, plan: PushPlan) -> str:
    report = json.loads((folder / REPORT).read_text(encoding="utf-8"))
    b = report["builder"]
    return (f"cytohub {report['cytohub_version']}: {b['name']} (builder {b['version']}), "
            f"{report['num_rows']} rows")


def _status(exc: BaseException) -> int | None:
    response = getattr(exc, "response", None)
    return getattr(response, "status_code", None)


def _transient(exc: BaseException) -> bool:
    status = _status(exc)
    if status is not None:
        return status >= 500 or status in (408, 409, 412, 429)
    if isinstance(exc, (ConnectionError, TimeoutError, OSError)):
        return True
    return any(cls.__module__.split(".")[0].startswith("httpx") for cls in type(exc).__mro__)


def _describe(exc: BaseException | None) -> str:
    if exc is None:
        return "unknown error"
    status = _status(exc)
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return f"HTTP {status}: {text}" if status else f"{type(exc).__name__}: {text}"
