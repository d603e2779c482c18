"""A small HTTP file server for the download tests: stdlib, 127.0.0.1, port 0, in a thread.

It serves the files of a folder (`/<relative path>`) with the parts of HTTP a resumable download relies on:
`Range: bytes=N-` / `bytes=N-M` (206 with Content-Range, 416 past the end), a strong `ETag`, and `If-Range`
(a changed file is sent whole, with 200). Each path can be told to misbehave on its next requests, one
fault per request, in order:

* `{"status": 503}`, `{"status": 404}`, `{"status": 429, "retry_after": "3"}`: answer that status;
* `{"drop_after": n}`: announce the whole length, send `n` body bytes, then cut the connection;
* `{"corrupt": True}`: send the right length with wrong bytes (every byte inverted);
* `{"ignore_range": True}`: answer a Range request with the whole file (200);
* `{"replace": b"..."}`: change the file on disk first (a new upstream version, new ETag).

Every request is recorded (`requests`: path and headers), with the body bytes sent per path (`sent`) and
the largest number of requests served at once (`max_concurrent`).
"""

from __future__ import annotations

import contextlib
import hashlib
import socket
import threading
import time
import urllib.parse
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


@dataclass
class SeenRequest:
    path: str
    headers: dict[str, str]


class FileServer:
    def __init__(self, root: Path, delay: float = 0.0) -> None:
        self.root = Path(root)
        self.delay = delay  # seconds to hold each response (to observe concurrency)
        self.requests: list[SeenRequest] = []
        self.sent: dict[str, int] = {}
        self.max_concurrent = 0
        self._active = 0
        self._faults: dict[str, list[dict]] = {}
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ----------------------------------------------------------------- control
    @property
    def url(self) -> str:
        assert self._httpd is not None
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def fail(self, path: str, *faults: dict) -> None:
        """Queue faults for the next requests of `path` (e.g. "/cccid/a.zip"), one per request."""
        with self._lock:
            self._faults.setdefault(path, []).extend(faults)

    def requests_for(self, path: str) -> list[SeenRequest]:
        return [r for r in self.requests if r.path == path]

    def start(self) -> FileServer:
        server = self

        class Handler(_Handler):
            owner = server

        self._httpd = _Server(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> FileServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # ----------------------------------------------------------------- used by the handler
    def _next_fault(self, path: str) -> dict:
        with self._lock:
            queue = self._faults.get(path)
            return queue.pop(0) if queue else {}

    def _count(self, path: str, n: int) -> None:
        with self._lock:
            self.sent[path] = self.sent.get(path, 0) + n


class _Server(ThreadingHTTPServer):
    def handle_error(self, request, client_address) -> None:
        pass  # a connection cut on purpose is not an error worth a traceback


def etag_of(data: bytes) -> str:
    return '"' + hashlib.sha256(data).hexdigest()[:32] + '"'


class _Handler(BaseHTTPRequestHandler):
    owner: FileServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):  # keep test output clean
        pass

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        srv = self.owner
        path = urllib.parse.unquote(urllib.parse.urlsplit(self.path).path)
        with srv._lock:
            srv.requests.append(SeenRequest(path, dict(self.headers.items())))
            srv._active += 1
            srv.max_concurrent = max(srv.max_concurrent, srv._active)
        try:
            self._serve(srv, path)
        finally:
            with srv._lock:
                srv._active -= 1

    def _serve(self, srv: FileServer, path: str) -> None:
        if srv.delay:
            time.sleep(srv.delay)
        fault = srv._next_fault(path)
        file = (srv.root / path.lstrip("/")).resolve()
        if "replace" in fault:
            file.write_bytes(fault["replace"])
        if "status" in fault:
            headers = {"Retry-After": fault["retry_after"]} if "retry_after" in fault else {}
            return self._empty(fault["status"], headers)
        if not file.is_file() or srv.root.resolve() not in file.parents:
            return self._empty(404)
        data = file.read_bytes()
        etag = etag_of(data)
        start, end, status = 0, len(data) - 1, 200
        wanted = self.headers.get("Range")
        if_range = self.headers.get("If-Range")
        if wanted and not fault.get("ignore_range") and (if_range is None or if_range == etag):
            first, _, last = wanted.removeprefix("bytes=").partition("-")
            start = int(first)
            end = min(int(last), len(data) - 1) if last else len(data) - 1
            if start >= len(data):
                return self._empty(416, {"Content-Range": f"bytes */{len(data)}"})
            status = 206
        body = data[start:end + 1]
        if fault.get("corrupt"):
            body = bytes(255 - b for b in body)
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("ETag", etag)
        self.send_header("Accept-Ranges", "bytes")
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{end}/{len(data)}")
        self.end_headers()
        limit = fault.get("drop_after")
        if limit is not None:
            self.wfile.write(body[:limit])
            srv._count(path, min(limit, len(body)))
            self.wfile.flush()
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.wfile.write(body)
        srv._count(path, len(body))

    def _empty(self, status: int, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", "0")
        self.end_headers()
