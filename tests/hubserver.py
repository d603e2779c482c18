"""A small Hugging Face Hub-compatible HTTP server for tests (stdlib only).

Point the real ``huggingface_hub`` / ``datasets`` clients at it with ``HF_ENDPOINT=<HubServer.url>`` and
``HF_HUB_DISABLE_XET=1`` (it has no Xet CAS, so uploads must use LFS), both set before those libraries are
imported: tests/conftest.py does it. Wire facts: ../shared/reference/hub-protocol.md.

Supported (``{t}`` = ``models|datasets|spaces``, ``{P}`` = ``""|datasets/|spaces/``, ``{id}`` = ``org/name``):

* ``POST /api/repos/create`` (409 + JSON ``url`` if it exists), ``DELETE|POST /api/repos/delete``,
  ``PUT /api/{t}/{id}/settings`` (``visibility``/``private`` and ``gated``: ``"auto"``, ``"manual"`` or
  ``false``, as ``update_repo_settings`` sends them), ``POST /api/validate-yaml`` (dataset cards checked with
  the Hub's metadata rules, tests/hub_card_rules.py: 400 + ``errors``),
  ``GET /api/whoami-v2`` (a fixed user ``user``), ``GET /api/agent-harnesses`` (empty registry).
* ``GET /api/{t}/{id}`` and ``.../revision/{rev}``: id, sha, private, gated, siblings (with LFS info).
* Upload: ``POST /api/{t}/{id}/preupload/{rev}``; LFS ``POST /{P}{id}.git/info/lfs/objects/batch`` (basic
  transfer: ``PUT`` of the object, then ``POST .../verify``); NDJSON ``POST /api/{t}/{id}/commit/{branch}``
  with ``file``, ``lfsFile``, ``deletedFile``, ``deletedFolder``; a stale ``parentCommit`` gives 412; a new
  dataset README.md that breaks the Hub's metadata rules gives 400 "Invalid metadata in README.md.".
* ``POST|DELETE /api/{t}/{id}/branch/{name}``, ``GET .../refs``, ``GET .../commits/{rev}`` (newest first).
* ``GET /api/{t}/{id}/tree/{rev}[/{path}]`` (``recursive``; ``expand`` adds ``lastCommit``) and the
  form-encoded ``POST .../paths-info/{rev}``.
* ``HEAD|GET /{P}{id}/resolve/{rev}/{path}``: ``X-Repo-Commit``, ``ETag`` (sha256 for LFS files, git blob
  sha1 otherwise), one ``Range`` (206 + ``Content-Range``, 416 past EOF); 404s carry ``X-Error-Code``
  ``RepoNotFound`` / ``RevisionNotFound`` / ``EntryNotFound``.
* Revisions: branch names (or ``refs/heads/<name>``) and 40-hex commit shas, URL-quoted.
* Test helpers: ``inject()`` / ``clear_faults()`` (answer an HTTP status, or ``"drop"`` the connection),
  ``requests``, ``auth_headers``, ``errors``, ``commits()``, ``head()``, ``files()``, ``settings()``,
  ``set_settings()`` (a repo's visibility and gate, as its owner would set them on the website).

Not supported: auth (tokens are recorded, never checked; ``private`` and ``gated`` are stored and reported,
not enforced: every client can read every repo), Xet, pull
requests (``create_pr``, ``refs/pr/*``), tags, ``refs/convert/*``, LFS multipart, pagination (every listing is
one page), ``.gitignore``, the git protocol, ``cardData`` in repo info. Preupload's LFS-or-regular
choice is a heuristic (file extension, size > 10 MiB, NUL bytes), not ``.gitattributes``.

Storage under ``root``: ``blobs/<sha256>`` (content-addressed, shared by all repos) and
``repos/<t>/<org>/<name>/{repo.json,commits/<sha>.json}``; each commit stores a full snapshot of its files.
Like the Hub, a new repo starts with an "initial commit" adding ``.gitattributes``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import shutil
import tempfile
import threading
import time
import traceback
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

try:
    from hub_card_rules import check_card
except ImportError:  # imported by file path (see tests/conftest.py): load the rules next to this file
    import importlib.util as _util

    _spec = _util.spec_from_file_location("hub_card_rules", Path(__file__).with_name("hub_card_rules.py"))
    _rules = _util.module_from_spec(_spec)
    _spec.loader.exec_module(_rules)
    check_card = _rules.check_card

USER = "user"
HEX40 = re.compile(r"[0-9a-f]{40}")
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
LFS_SUFFIXES = (
    ".parquet", ".arrow", ".bin", ".safetensors", ".pt", ".pth", ".ckpt", ".h5", ".npy", ".npz", ".pkl",
    ".pickle", ".onnx", ".zip", ".gz", ".tgz", ".tar", ".zst", ".xz", ".bz2", ".7z", ".png", ".jpg", ".jpeg",
    ".gif", ".bmp", ".tif", ".tiff", ".webp", ".svs", ".ndpi", ".wav", ".mp3", ".flac", ".mp4", ".avi",
)
REGULAR_MAX_SIZE = 10 * 1024 * 1024
GITATTRIBUTES = "".join(f"*{s} filter=lfs diff=lfs merge=lfs -text\n" for s in LFS_SUFFIXES).encode()
REPO_TYPES = {"models": "model", "datasets": "dataset", "spaces": "space", None: "model"}
URL_PREFIX = {"model": "", "dataset": "datasets/", "space": "spaces/"}


class HTTPError(Exception):
    """Raised by request handlers; turned into a JSON error response."""

    def __init__(self, status: int, message: str, code: str | None = None, headers: dict | None = None):
        super().__init__(message)
        self.status, self.message, self.code, self.headers = status, message, code, headers or {}


@dataclass
class Request:
    method: str
    path: str  # percent-encoded, without the query string
    query: dict[str, list[str]]
    headers: Any  # email.message.Message: case-insensitive
    body: bytes

    def json(self) -> dict:
        try:
            obj = json.loads(self.body or b"{}")
        except ValueError as err:
            raise HTTPError(400, f"Invalid JSON body: {err}") from None
        if not isinstance(obj, dict):
            raise HTTPError(400, "Expected a JSON object")
        return obj

    def flag(self, name: str) -> bool:
        return self.query.get(name, ["false"])[-1].lower() in ("1", "true")


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    file: tuple[Path, int, int] | None = None  # (blob, offset, length), streamed instead of `body`


@dataclass
class Fault:
    method: str
    pattern: re.Pattern
    action: int | str
    remaining: int

    def matches(self, method: str, path: str) -> bool:
        return self.method in ("*", method) and self.pattern.search(path) is not None


def json_reply(obj: Any, status: int = 200, headers: dict | None = None) -> Reply:
    body = json.dumps(obj).encode()
    return Reply(status, body, {"Content-Type": "application/json", **(headers or {})})


def git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def lfs_pointer(sha256: str, size: int) -> bytes:
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n".encode()


def _is_private(body: dict) -> bool:
    """create_repo/settings payloads carry `visibility` ("private"/"public"), older clients `private`."""
    return body.get("visibility", "private" if body.get("private") else "public") == "private"


def now_iso() -> str:
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t * 1000) % 1000:03d}Z"


class HubServer:
    """Hub-compatible server on 127.0.0.1 storing repos under `root`. See the module docstring."""

    def __init__(self, root: Path | str):
        self.root = Path(root)
        self.requests: list[tuple[str, str]] = []  # (method, percent-decoded path without query)
        self.auth_headers: list[str] = []  # every Authorization header value received
        self.errors: list[str] = []  # tracebacks of unexpected server-side exceptions (500s)
        self._lock = threading.RLock()
        self._repos: dict[tuple[str, str], dict] = {}
        self._commit_cache: dict[str, dict] = {}
        self._faults: list[Fault] = []
        self._httpd: ThreadingHTTPServer | None = None
        self._routes = self._build_routes()

    # ----------------------------------------------------------------------------------------- lifecycle
    def start(self) -> HubServer:
        if self._httpd is not None:
            raise RuntimeError("HubServer already started")
        (self.root / "blobs").mkdir(parents=True, exist_ok=True)
        (self.root / "repos").mkdir(parents=True, exist_ok=True)
        handler = type("BoundHubHandler", (_Handler,), {"hub": self})
        self._httpd = _QuietHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=self._httpd.serve_forever, name="hubserver", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    @property
    def url(self) -> str:
        assert self._httpd is not None, "HubServer is not started"
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    # ----------------------------------------------------------------------------------------- test helpers
    def inject(self, method: str, path_regex: str, action: int | str, times: int = 1) -> None:
        """Make the next `times` requests matching `method` ("*" = any) and `path_regex` (searched in the
        percent-decoded path) fail with HTTP status `action`, or be dropped without a response ("drop")."""
        if action != "drop" and not (isinstance(action, int) and 100 <= action <= 599):
            raise ValueError(f"action must be an HTTP status or 'drop', got {action!r}")
        with self._lock:
            self._faults.append(Fault(method.upper(), re.compile(path_regex), action, times))

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def commits(self, repo_id: str, revision: str = "main", repo_type: str = "dataset") -> list[dict]:
        """History of `revision`, newest first: dicts with id, title, message, date, authors, parents."""
        with self._lock:
            repo = self._get_repo(repo_type, repo_id)
            return [self._commit_json(c) for c in self._history(self._resolve(repo, revision))]

    def head(self, repo_id: str, revision: str = "main", repo_type: str = "dataset") -> str:
        with self._lock:
            return self._resolve(self._get_repo(repo_type, repo_id), revision)

    def settings(self, repo_id: str, repo_type: str = "dataset") -> dict[str, Any]:
        """{"private": bool, "gated": False | "auto" | "manual"} of a repo."""
        with self._lock:
            repo = self._get_repo(repo_type, repo_id)
            return {"private": repo["private"], "gated": repo.get("gated", False)}

    def set_settings(self, repo_id: str, repo_type: str = "dataset", **settings: Any) -> None:
        """Change `private` and/or `gated` directly (as the owner would on the website)."""
        with self._lock:
            repo = self._get_repo(repo_type, repo_id)
            for key, value in settings.items():
                if key not in ("private", "gated"):
                    raise ValueError(f"unknown repo setting {key!r}")
                repo[key] = value
            self._save_repo(repo)

    def files(self, repo_id: str, revision: str = "main", repo_type: str = "dataset") -> dict[str, bytes]:
        """Contents of every file at `revision`, by path."""
        with self._lock:
            snapshot = self._commit(self._resolve(self._get_repo(repo_type, repo_id), revision))["files"]
        return {p: self._blob(e["sha256"]).read_bytes() for p, e in sorted(snapshot.items())}

    # ----------------------------------------------------------------------------------------- storage
    def _repo_dir(self, rtype: str, repo_id: str) -> Path:
        return self.root / "repos" / f"{rtype}s" / repo_id

    def _blob(self, sha256: str) -> Path:
        return self.root / "blobs" / sha256

    def _store_blob(self, data: bytes) -> str:
        sha = hashlib.sha256(data).hexdigest()
        if not self._blob(sha).exists():
            tmp = self._blob(f"{sha}.{uuid.uuid4().hex}.tmp")
            tmp.write_bytes(data)
            tmp.replace(self._blob(sha))
        return sha

    def _find_repo(self, rtype: str, repo_id: str) -> dict | None:
        key = (rtype, repo_id)
        if key not in self._repos:
            path = self._repo_dir(rtype, repo_id) / "repo.json"
            if not path.exists():
                return None
            self._repos[key] = json.loads(path.read_text())
        return self._repos[key]

    def _get_repo(self, rtype: str, repo_id: str) -> dict:
        repo = self._find_repo(rtype, repo_id)
        if repo is None:
            raise HTTPError(404, f"Repository not found: {rtype} {repo_id}", "RepoNotFound")
        return repo

    def _save_repo(self, repo: dict) -> None:
        path = self._repo_dir(repo["type"], repo["id"]) / "repo.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(repo, indent=1))
        tmp.replace(path)

    def _commit(self, sha: str) -> dict:
        if sha not in self._commit_cache:
            found = list((self.root / "repos").glob(f"*/*/*/commits/{sha}.json"))
            if not found:
                raise KeyError(sha)
            self._commit_cache[sha] = json.loads(found[0].read_text())
        return self._commit_cache[sha]

    def _write_commit(self, repo: dict, parent: str | None, files: dict, title: str, message: str) -> str:
        date = now_iso()
        seed = json.dumps([repo["id"], parent, title, date, uuid.uuid4().hex]).encode()
        sha = hashlib.sha1(seed).hexdigest()
        commit = {"id": sha, "parents": [parent] if parent else [], "title": title, "message": message,
                  "date": date, "authors": [USER], "files": files}
        (self._repo_dir(repo["type"], repo["id"]) / "commits" / f"{sha}.json").write_text(json.dumps(commit))
        self._commit_cache[sha] = commit
        return sha

    def _resolve(self, repo: dict, rev: str) -> str:
        rev = unquote(rev).removeprefix("refs/heads/")
        if rev in repo["branches"]:
            return repo["branches"][rev]
        commits_dir = self._repo_dir(repo["type"], repo["id"]) / "commits"
        if HEX40.fullmatch(rev) and (commits_dir / f"{rev}.json").is_file():
            return rev
        raise HTTPError(404, f"Invalid rev id: {rev}", "RevisionNotFound")

    def _history(self, sha: str) -> list[dict]:
        out = []
        while sha:
            commit = self._commit(sha)
            out.append(commit)
            sha = commit["parents"][0] if commit["parents"] else ""
        return out

    @staticmethod
    def _commit_json(c: dict) -> dict:
        return {"id": c["id"], "title": c["title"], "message": c["message"], "date": c["date"],
                "authors": [{"user": a, "avatar": None} for a in c["authors"]], "parents": list(c["parents"])}

    @staticmethod
    def _file_entry(sha256: str, data: bytes | None, size: int) -> dict:
        """Snapshot entry of a file: regular if its `data` is given, else an LFS file of `size` bytes."""
        if data is not None:
            return {"sha256": sha256, "size": len(data), "lfs": False, "git_oid": git_blob_sha1(data)}
        pointer = lfs_pointer(sha256, size)
        return {"sha256": sha256, "size": size, "lfs": True, "git_oid": git_blob_sha1(pointer),
                "pointer_size": len(pointer)}

    # ----------------------------------------------------------------------------------------- tree helpers
    @staticmethod
    def _under(files: dict, path: str) -> list[str]:
        prefix = path.strip("/") + "/" if path.strip("/") else ""
        return sorted(p for p in files if p.startswith(prefix))

    def _dir_oid(self, files: dict, path: str) -> str:
        h = hashlib.sha1()
        for p in self._under(files, path):
            h.update(f"{p}\0{files[p]['git_oid']}\n".encode())
        return h.hexdigest()

    def _last_commit(self, sha: str, path: str) -> dict:
        """Newest commit (first-parent history) that changed `path` (a file or a folder)."""

        def signature(files: dict) -> list:
            return [(p, files[p]["git_oid"]) for p in [path, *self._under(files, path)] if p in files]

        commit = self._commit(sha)
        while commit["parents"]:
            parent = self._commit(commit["parents"][0])
            if signature(commit["files"]) != signature(parent["files"]):
                break
            commit = parent
        return {"id": commit["id"], "title": commit["title"], "date": commit["date"]}

    def _path_info(self, sha: str, files: dict, path: str, is_dir: bool, expand: bool) -> dict:
        if is_dir:
            info = {"type": "directory", "oid": self._dir_oid(files, path), "path": path}
        else:
            e = files[path]
            info = {"type": "file", "oid": e["git_oid"], "size": e["size"], "path": path}
            if e["lfs"]:
                info["lfs"] = {"oid": e["sha256"], "size": e["size"], "pointerSize": e["pointer_size"]}
        if expand:
            info["lastCommit"] = self._last_commit(sha, path)
        return info

    # ----------------------------------------------------------------------------------------- routing
    def _build_routes(self) -> list[tuple[set[str], re.Pattern, Any]]:
        api = r"^/api/(?P<t>models|datasets|spaces)/(?P<id>[^/]+/[^/]+)"
        web = r"^/(?:(?P<t>datasets|spaces)/)?(?P<id>[^/]+/[^/]+?)"
        git = web + r"\.git/info/lfs/objects"
        table = [
            ("GET", r"^/api/agent-harnesses$", self._agent_harnesses),
            ("GET", r"^/api/whoami-v2$", self._whoami),
            ("POST", r"^/api/repos/create$", self._create_repo),
            ("DELETE POST", r"^/api/repos/delete$", self._delete_repo),
            ("POST", r"^/api/validate-yaml$", self._validate_yaml),
            ("GET", api + r"(?:/revision/(?P<rev>[^/]+))?$", self._repo_info),
            ("PUT", api + r"/settings$", self._settings),
            ("POST", api + r"/preupload/(?P<rev>[^/]+)$", self._preupload),
            ("POST", api + r"/commit/(?P<rev>[^/]+)$", self._create_commit),
            ("POST DELETE", api + r"/branch/(?P<rev>[^/]+)$", self._branch),
            ("GET", api + r"/refs$", self._refs),
            ("GET", api + r"/commits/(?P<rev>[^/]+)$", self._list_commits),
            ("GET", api + r"/tree/(?P<rev>[^/]+)(?:/(?P<path>.*))?$", self._tree),
            ("POST", api + r"/paths-info/(?P<rev>[^/]+)$", self._paths_info),
            ("POST", git + r"/batch$", self._lfs_batch),
            ("PUT", git + r"/(?P<oid>[0-9a-f]{64})$", self._lfs_put),
            ("POST", git + r"/(?P<oid>[0-9a-f]{64})/verify$", self._lfs_verify),
            ("GET HEAD", web + r"/resolve/(?P<rev>[^/]+)/(?P<path>.+)$", self._resolve_file),
        ]
        return [(set(methods.split()), re.compile(rx), fn) for methods, rx, fn in table]

    def handle(self, req: Request) -> Reply | None:
        """Serve one request; None means "drop the connection"."""
        decoded = unquote(req.path)
        auth = req.headers.get("Authorization")
        with self._lock:
            self.requests.append((req.method, decoded))
            if auth:
                self.auth_headers.append(auth)
            fault = next((f for f in self._faults if f.matches(req.method, decoded)), None)
            if fault is not None:
                fault.remaining -= 1
                if fault.remaining <= 0:
                    self._faults.remove(fault)
        if fault is not None:
            if fault.action == "drop":
                return None
            return json_reply({"error": f"Injected failure ({fault.action})"}, int(fault.action))
        try:
            for methods, pattern, fn in self._routes:
                m = pattern.match(req.path)
                if m and req.method in methods:
                    return fn(req, m)
            if any(p.match(req.path) for _, p, _ in self._routes):
                raise HTTPError(405, f"Method {req.method} not allowed on {decoded}")
            raise HTTPError(404, f"No such endpoint: {req.method} {decoded}")
        except HTTPError as err:
            one_line = " ".join(err.message.split())  # a header value cannot hold line breaks
            headers = {**err.headers, "X-Error-Message": one_line.encode("ascii", "replace").decode()}
            if err.code:
                headers["X-Error-Code"] = err.code
            return json_reply({"error": err.message}, err.status, headers)
        except Exception:  # a bug in the server: report it to the client and keep it for the tests
            tb = traceback.format_exc()
            self.errors.append(tb)
            return json_reply({"error": f"Internal test server error:\n{tb}"}, 500)

    def _repo_from_match(self, m: re.Match) -> dict:
        return self._get_repo(REPO_TYPES[m.group("t")], unquote(m.group("id")))

    # ----------------------------------------------------------------------------------------- repos
    def _agent_harnesses(self, req: Request, m: re.Match) -> Reply:
        return json_reply({"standardEnvVars": [], "harnesses": {}})

    def _whoami(self, req: Request, m: re.Match) -> Reply:
        token = {"displayName": "test", "role": "write"}
        return json_reply({"type": "user", "name": USER, "fullname": "Test User", "orgs": [],
                           "auth": {"type": "access_token", "accessToken": token}})

    def _create_repo(self, req: Request, m: re.Match) -> Reply:
        body = req.json()
        rtype = body.get("type") or "model"
        name, org = body.get("name") or "", body.get("organization") or USER
        if rtype not in URL_PREFIX or not NAME_RE.fullmatch(name) or not NAME_RE.fullmatch(org):
            raise HTTPError(400, f"Invalid repo type or name: {rtype} {org}/{name}")
        repo_id = f"{org}/{name}"
        url = f"{self.url}/{URL_PREFIX[rtype]}{repo_id}"
        with self._lock:
            if self._find_repo(rtype, repo_id) is not None:
                return json_reply({"error": f"You already created this {rtype} repo", "url": url}, 409)
            private = _is_private(body)
            repo = {"type": rtype, "id": repo_id, "private": private, "gated": False, "createdAt": now_iso(),
                    "branches": {}}
            (self._repo_dir(rtype, repo_id) / "commits").mkdir(parents=True, exist_ok=True)
            files = {".gitattributes": self._file_entry(self._store_blob(GITATTRIBUTES), GITATTRIBUTES, 0)}
            repo["branches"]["main"] = self._write_commit(repo, None, files, "initial commit", "")
            self._repos[(rtype, repo_id)] = repo
            self._save_repo(repo)
        return json_reply({"url": url, "name": repo_id, "id": uuid.uuid4().hex})

    def _delete_repo(self, req: Request, m: re.Match) -> Reply:
        body = req.json()
        rtype, repo_id = body.get("type") or "model", f"{body.get('organization') or USER}/{body.get('name')}"
        with self._lock:
            self._get_repo(rtype, repo_id)
            shutil.rmtree(self._repo_dir(rtype, repo_id))
            del self._repos[(rtype, repo_id)]
        return json_reply({})

    def _settings(self, req: Request, m: re.Match) -> Reply:
        body = req.json()
        if "gated" in body and body["gated"] not in ("auto", "manual", False):
            raise HTTPError(400, f"Invalid gated value {body['gated']!r}: expected 'auto', 'manual' or false")
        if "visibility" in body and body["visibility"] not in ("private", "public"):
            raise HTTPError(400, f"Invalid visibility {body['visibility']!r}: expected 'private' or 'public'")
        with self._lock:
            repo = self._repo_from_match(m)
            if "visibility" in body or "private" in body:
                repo["private"] = _is_private(body)
            if "gated" in body:
                repo["gated"] = body["gated"]
            self._save_repo(repo)
        return json_reply({})

    def _repo_info(self, req: Request, m: re.Match) -> Reply:
        with self._lock:
            repo = self._repo_from_match(m)
            sha = self._resolve(repo, m.group("rev") or "main")
            commit = self._commit(sha)
        siblings = []
        for path, e in sorted(commit["files"].items()):
            sib = {"rfilename": path, "size": e["size"], "blobId": e["git_oid"]}
            if e["lfs"]:
                sib["lfs"] = {"sha256": e["sha256"], "size": e["size"], "pointerSize": e["pointer_size"]}
            siblings.append(sib)
        return json_reply({
            "_id": hashlib.sha1(repo["id"].encode()).hexdigest()[:24], "id": repo["id"],
            "author": repo["id"].split("/")[0], "sha": sha, "private": repo["private"],
            "gated": repo.get("gated", False),
            "disabled": False, "createdAt": repo["createdAt"], "lastModified": commit["date"], "tags": [],
            "downloads": 0, "likes": 0, "siblings": siblings,
            "usedStorage": sum(e["size"] for e in commit["files"].values()),
        })

    # ----------------------------------------------------------------------------------------- upload
    def _preupload(self, req: Request, m: re.Match) -> Reply:
        if req.flag("create_pr"):
            raise HTTPError(400, "Pull requests are not supported by the test server")
        body = req.json()
        with self._lock:
            repo = self._repo_from_match(m)
            files = self._commit(self._resolve(repo, m.group("rev")))["files"]
        out = []
        for f in body.get("files", []):
            sample = base64.b64decode(f.get("sample") or "")
            path, size = f["path"], int(f["size"])
            lfs = path.lower().endswith(LFS_SUFFIXES) or size > REGULAR_MAX_SIZE or b"\0" in sample
            remote, oid = files.get(path), None
            if remote is not None and remote["lfs"] == lfs:
                oid = remote["sha256"] if lfs else remote["git_oid"]
            mode = "lfs" if lfs else "regular"
            out.append({"path": path, "uploadMode": mode, "shouldIgnore": False, "oid": oid})
        return json_reply({"files": out, "commitOid": None})

    def _lfs_batch(self, req: Request, m: re.Match) -> Reply:
        body = req.json()
        if body.get("operation") != "upload":
            raise HTTPError(400, "Only the 'upload' LFS operation is supported")
        self._repo_from_match(m)
        base = f"{self.url}/{URL_PREFIX[REPO_TYPES[m.group('t')]]}{m.group('id')}.git/info/lfs/objects"
        objects = []
        for obj in body.get("objects", []):
            oid, size = obj.get("oid", ""), obj.get("size")
            if not re.fullmatch(r"[0-9a-f]{64}", oid) or not isinstance(size, int):
                error = {"code": 422, "message": "Invalid oid or size"}
                objects.append({"oid": str(oid), "size": int(size or 0), "error": error})
            elif self._blob(oid).exists() and self._blob(oid).stat().st_size == size:
                objects.append({"oid": oid, "size": size})  # already stored: no actions
            else:
                actions = {"upload": {"href": f"{base}/{oid}"}, "verify": {"href": f"{base}/{oid}/verify"}}
                objects.append({"oid": oid, "size": size, "authenticated": True, "actions": actions})
        return Reply(200, json.dumps({"transfer": "basic", "objects": objects}).encode(),
                     {"Content-Type": "application/vnd.git-lfs+json"})

    def _lfs_put(self, req: Request, m: re.Match) -> Reply:
        oid = m.group("oid")
        if hashlib.sha256(req.body).hexdigest() != oid:
            raise HTTPError(400, f"Uploaded content does not match oid {oid}")
        self._store_blob(req.body)
        return Reply(200, b"", {"ETag": f'"{oid}"'})

    def _lfs_verify(self, req: Request, m: re.Match) -> Reply:
        oid, size = m.group("oid"), req.json().get("size")
        if not self._blob(oid).exists() or (size is not None and self._blob(oid).stat().st_size != size):
            raise HTTPError(404, f"LFS object {oid} not found or wrong size", "EntryNotFound")
        return json_reply({"success": True})

    def _validate_yaml(self, req: Request, m: re.Match) -> Reply:
        """The Hub's README check: 400 with `errors` when a dataset card breaks the metadata rules
        (tests/hub_card_rules.py); other repo types are accepted as they are."""
        body = req.json()
        problems = check_card(str(body.get("content", ""))) if body.get("repoType") == "dataset" else []
        return json_reply({"errors": [{"message": p} for p in problems], "warnings": []}, 400 if problems else 200)

    def _create_commit(self, req: Request, m: re.Match) -> Reply:
        if req.flag("create_pr"):
            raise HTTPError(400, "Pull requests are not supported by the test server")
        try:
            lines = [json.loads(line) for line in req.body.decode().splitlines() if line.strip()]
        except ValueError as err:
            raise HTTPError(400, f"Invalid NDJSON commit payload: {err}") from None
        if not lines or lines[0].get("key") != "header":
            raise HTTPError(400, "The commit payload must start with a header line")
        header = lines[0]["value"]
        branch = unquote(m.group("rev")).removeprefix("refs/heads/")
        with self._lock:
            repo = self._repo_from_match(m)
            if branch not in repo["branches"]:
                raise HTTPError(404, f"Invalid rev id: {branch} (commit to a branch)", "RevisionNotFound")
            head = repo["branches"][branch]
            parent = header.get("parentCommit")
            if parent and parent != head:
                raise HTTPError(412, f"A commit has happened since. Parent {parent} is not the head {head}.")
            files = dict(self._commit(head)["files"])
            for line in lines[1:]:
                self._apply_operation(files, line.get("key"), line.get("value") or {})
            if repo["type"] == "dataset" and "README.md" in files \
                    and files["README.md"] != self._commit(head)["files"].get("README.md"):
                problems = check_card(self._blob(files["README.md"]["sha256"]).read_text("utf-8", "replace"))
                if problems:  # the Hub refuses a commit whose dataset card breaks its metadata rules
                    raise HTTPError(400, "Invalid metadata in README.md.\n" + "\n".join(f"- {p}" for p in problems))
            title, message = header.get("summary") or "Update", header.get("description") or ""
            sha = self._write_commit(repo, head, files, title, message)
            repo["branches"][branch] = sha
            self._save_repo(repo)
        url = f"{self.url}/{URL_PREFIX[repo['type']]}{repo['id']}/commit/{sha}"
        return json_reply({"success": True, "commitOid": sha, "commitUrl": url, "pullRequestUrl": None})

    def _apply_operation(self, files: dict, key: str | None, op: dict) -> None:
        path = str(op.get("path", ""))
        if key in ("file", "lfsFile") and (not path or path.startswith("/") or ".." in path.split("/")):
            raise HTTPError(400, f"Invalid path in commit: {path!r}")
        if key == "file":
            if op.get("encoding", "base64") != "base64":
                raise HTTPError(400, f"Unsupported encoding {op.get('encoding')!r}")
            data = base64.b64decode(op.get("content", ""))
            files[path] = self._file_entry(self._store_blob(data), data, 0)
        elif key == "lfsFile":
            oid = str(op.get("oid", ""))
            if op.get("algo", "sha256") != "sha256" or not self._blob(oid).exists():
                raise HTTPError(400, f"Push rejected: LFS object {oid} of {path!r} was never uploaded")
            size = self._blob(oid).stat().st_size
            if op.get("size") is not None and int(op["size"]) != size:
                raise HTTPError(400, f"LFS object {oid}: size {op['size']} does not match the stored {size}")
            files[path] = self._file_entry(oid, None, size)
        elif key == "deletedFile":
            if files.pop(path, None) is None:
                raise HTTPError(404, f"A file with this name doesn't exist: {path}", "EntryNotFound")
        elif key == "deletedFolder":
            doomed = self._under(files, path)
            if not doomed:
                raise HTTPError(404, f"A folder with this name doesn't exist: {path}", "EntryNotFound")
            for p in doomed:
                del files[p]
        else:
            raise HTTPError(400, f"Unsupported commit operation {key!r}")

    # ----------------------------------------------------------------------------------------- refs, history
    def _branch(self, req: Request, m: re.Match) -> Reply:
        name = unquote(m.group("rev"))
        with self._lock:
            repo = self._repo_from_match(m)
            if req.method == "DELETE":
                if name == "main":
                    raise HTTPError(403, "Cannot delete the main branch")
                if name not in repo["branches"]:
                    raise HTTPError(404, f"Invalid rev id: {name}", "RevisionNotFound")
                del repo["branches"][name]
            else:
                if name in repo["branches"]:
                    raise HTTPError(409, f"Reference already exists: refs/heads/{name}")
                if not re.fullmatch(r"[A-Za-z0-9._-][A-Za-z0-9._/-]*", name) or HEX40.fullmatch(name):
                    raise HTTPError(400, f"Invalid branch name: {name}")
                repo["branches"][name] = self._resolve(repo, req.json().get("startingPoint") or "main")
            self._save_repo(repo)
        return json_reply({})

    def _refs(self, req: Request, m: re.Match) -> Reply:
        with self._lock:
            branches = self._repo_from_match(m)["branches"]
            refs = [{"name": name, "ref": f"refs/heads/{name}", "targetCommit": sha}
                    for name, sha in sorted(branches.items())]
        return json_reply({"branches": refs, "converts": [], "tags": [], "pullRequests": []})

    def _list_commits(self, req: Request, m: re.Match) -> Reply:
        with self._lock:
            history = self._history(self._resolve(self._repo_from_match(m), m.group("rev")))
        return json_reply([self._commit_json(c) for c in history])

    # ----------------------------------------------------------------------------------------- listing
    def _tree(self, req: Request, m: re.Match) -> Reply:
        path = unquote(m.group("path") or "").strip("/")
        expand = req.flag("expand")
        with self._lock:
            sha = self._resolve(self._repo_from_match(m), m.group("rev"))
            files = self._commit(sha)["files"]
            under = self._under(files, path)
            if path and not under:
                raise HTTPError(404, f"Entry not found: {path} is not a folder at {sha}", "EntryNotFound",
                                {"X-Repo-Commit": sha})
            prefix = path + "/" if path else ""
            dirs: set[str] = set()
            out_files = []
            for p in under:
                parts = p[len(prefix):].split("/")
                for i in range(1, len(parts)):  # every folder between `path` and the file
                    dirs.add(prefix + "/".join(parts[:i]))
                if len(parts) == 1 or req.flag("recursive"):
                    out_files.append(p)
            if not req.flag("recursive"):
                dirs = {d for d in dirs if "/" not in d[len(prefix):]}
            entries = [self._path_info(sha, files, d, True, expand) for d in sorted(dirs)]
            entries += [self._path_info(sha, files, p, False, expand) for p in out_files]
        return json_reply(entries)

    def _paths_info(self, req: Request, m: re.Match) -> Reply:
        if "json" in (req.headers.get("Content-Type") or ""):
            body = req.json()
            paths, expand = body.get("paths") or [], bool(body.get("expand"))
        else:  # what the client sends: paths=a&paths=b&expand=false
            form = parse_qs(req.body.decode(), keep_blank_values=True)
            paths, expand = form.get("paths", []), form.get("expand", ["false"])[-1].lower() in ("1", "true")
        with self._lock:
            sha = self._resolve(self._repo_from_match(m), m.group("rev"))
            files = self._commit(sha)["files"]
            out = []
            for p in (p.strip("/") for p in paths):
                if p in files:
                    out.append(self._path_info(sha, files, p, False, expand))
                elif p == "" or self._under(files, p):
                    out.append(self._path_info(sha, files, p, True, expand))
        return json_reply(out)

    # ----------------------------------------------------------------------------------------- download
    def _resolve_file(self, req: Request, m: re.Match) -> Reply:
        path = unquote(m.group("path"))
        with self._lock:
            sha = self._resolve(self._repo_from_match(m), m.group("rev"))
            entry = self._commit(sha)["files"].get(path)
        if entry is None:
            raise HTTPError(404, f"Entry not found: {path}", "EntryNotFound", {"X-Repo-Commit": sha})
        size = entry["size"]
        etag = entry["sha256"] if entry["lfs"] else entry["git_oid"]
        headers = {"X-Repo-Commit": sha, "ETag": f'"{etag}"', "Accept-Ranges": "bytes",
                   "Content-Type": "application/octet-stream"}
        if entry["lfs"]:
            headers.update({"X-Linked-Etag": f'"{etag}"', "X-Linked-Size": str(size)})
        start, end, status = 0, size - 1, 200
        rng = re.fullmatch(r"\s*bytes=(\d*)-(\d*)\s*", req.headers.get("Range") or "")
        if rng and (rng.group(1) or rng.group(2)):
            if rng.group(1):
                start = int(rng.group(1))
                end = min(int(rng.group(2)), size - 1) if rng.group(2) else size - 1
            else:  # suffix range: the last N bytes
                start = max(size - int(rng.group(2)), 0)
            if start >= size or start > end:
                headers["Content-Range"] = f"bytes */{size}"
                raise HTTPError(416, f"Range not satisfiable: {req.headers.get('Range')}", None, headers)
            status = 206
            headers["Content-Range"] = f"bytes {start}-{end}/{size}"
        return Reply(status, headers=headers, file=(self._blob(entry["sha256"]), start, end - start + 1))


class _QuietHTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):  # clients hanging up mid-response are not errors
        pass


class _Handler(BaseHTTPRequestHandler):
    """One instance per *connection*: nothing request-specific may be kept on `self` between requests."""

    protocol_version = "HTTP/1.1"
    hub: HubServer  # set by HubServer.start on a subclass

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _dispatch(self) -> None:
        body = self._read_body()  # always read (drain) the whole body before answering
        url = urlsplit(self.path)
        query = parse_qs(url.query, keep_blank_values=True)
        req = Request(self.command, url.path, query, self.headers, body)
        reply = self.hub.handle(req)
        if reply is None:  # injected "drop": close the connection without a response
            self.close_connection = True
            return
        length = reply.file[2] if reply.file else len(reply.body)
        self.send_response(reply.status)
        for key, value in reply.headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(length))
        self.end_headers()
        if self.command == "HEAD":
            return
        if reply.file is None:
            self.wfile.write(reply.body)
            return
        blob, offset, remaining = reply.file
        with open(blob, "rb") as f:
            f.seek(offset)
            while remaining > 0:
                chunk = f.read(min(remaining, 1 << 20))
                if not chunk:
                    break
                self.wfile.write(chunk)
                remaining -= len(chunk)

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _dispatch


if __name__ == "__main__":  # manual use: python tests/hubserver.py
    server = HubServer(tempfile.mkdtemp(prefix="hubserver-")).start()
    print(f"HF_ENDPOINT={server.url} (Ctrl-C to stop; storage in {server.root})")
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        server.stop()
