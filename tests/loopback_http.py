"""A small HTTP server on 127.0.0.1 for the download tests (imported explicitly).

It serves in-memory files from a thread on an ephemeral port, honours ``Range`` requests, and
can misbehave on purpose: drop the connection half-way through the body on the first N
requests to a path, ignore ``Range``, or always send fewer bytes than it announces. It records
every request, and shuts itself down after ``lifetime`` seconds even if a test forgets to.
"""
from __future__ import annotations

import re
import threading
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_RANGE = re.compile(r"bytes=(\d+)-(\d*)$")


class LoopbackServer:
    """``with LoopbackServer({"/a.zip": data}) as srv: srv.url("/a.zip")``."""

    def __init__(self, files: Mapping[str, bytes], *, drop_first: Mapping[str, int] | None = None,
                 ignore_range: set[str] | None = None, truncate: set[str] | None = None,
                 redirects: Mapping[str, str] | None = None, lifetime: float = 30.0) -> None:
        self.files = dict(files)
        self.drop_first = dict(drop_first or {})
        self.ignore_range = set(ignore_range or ())
        self.truncate = set(truncate or ())
        self.redirects = dict(redirects or {})
        self.lifetime = lifetime
        self.requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            timeout = 10  # a stuck client cannot hold a handler thread forever

            def log_message(self, *args: Any) -> None:  # keep test output quiet
                pass

            def do_GET(self) -> None:
                server._handle(self)

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)
        self._timer = threading.Timer(lifetime, self._httpd.shutdown)
        self._timer.daemon = True

    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def count(self, path: str) -> int:
        return sum(1 for r in self.requests if r["path"] == path)

    def __enter__(self) -> LoopbackServer:
        self._thread.start()
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._timer.cancel()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    # -- request handling --------------------------------------------------------------------
    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        path = h.path.split("?", 1)[0]
        with self._lock:
            self.requests.append({"path": path, "range": h.headers.get("Range")})
            n_before = sum(1 for r in self.requests if r["path"] == path) - 1
        if path in self.redirects:
            h.send_response(302)
            h.send_header("Location", self.redirects[path])
            h.send_header("Content-Length", "0")
            h.end_headers()
            return
        if path not in self.files:
            h.send_error(404, "not found")
            return
        data = self.files[path]
        start, status = 0, 200
        match = _RANGE.match(h.headers.get("Range") or "")
        if match and path not in self.ignore_range:
            start = int(match.group(1))
            if start >= len(data):
                h.send_response(416)
                h.send_header("Content-Range", f"bytes */{len(data)}")
                h.send_header("Content-Length", "0")
                h.end_headers()
                return
            status = 206
        body = data[start:]
        h.send_response(status)
        h.send_header("Content-Type", "application/octet-stream")
        h.send_header("Content-Length", str(len(body)))
        h.send_header("Accept-Ranges", "bytes")
        if status == 206:
            h.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        h.end_headers()
        cut = None
        if n_before < self.drop_first.get(path, 0) or path in self.truncate:
            cut = max(1, len(body) // 2)
        h.wfile.write(body if cut is None else body[:cut])
        h.wfile.flush()
        if cut is not None:
            h.close_connection = True  # the client sees the body end before Content-Length


__all__ = ["LoopbackServer"]
