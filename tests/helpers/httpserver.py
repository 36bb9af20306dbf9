"""A tiny HTTP server on 127.0.0.1 for download tests, with scripted misbehaviour per path.

Behaviours: "ok"; "503x<n>" (503 for the first n requests, then ok); "404"; "short" (always
announces the full Content-Length but closes after half the body, ignoring Range); "drop"
(first request closes after half the body, later requests honour Range); "chunked_drop" (first
request: chunked transfer encoding, closed in the middle of a chunk); "bad_status" (first request
answers a malformed status line); "retry_after" (first request: 503 with ``Retry-After: 1``);
"changes" (first request closes after half the body; then the file is replaced by
``files[path + "#v2"]``, so a resume that does not check If-Range would splice two versions);
"stall" (first request: half the body, then nothing for 3 s with the connection open, a trickle
that stopped).

Every answer carries an ETag (the sha256 of the body) and honours ``If-Range``: a Range request
whose If-Range does not match the current ETag gets the whole file (200). A Range starting at or
beyond the end gets 416 with ``Content-Range: bytes */<size>``.
"""

from __future__ import annotations

import hashlib
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class ScriptedServer:
    def __init__(self):
        self.files: dict[str, bytes] = {}
        self.behaviour: dict[str, str] = {}
        self.requests: list[tuple[str, str | None]] = []
        self.if_range: list[str | None] = []
        self._count: dict[str, int] = {}
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                path = self.path.lstrip("/")
                rng = self.headers.get("Range")
                server.requests.append((path, rng))
                server.if_range.append(self.headers.get("If-Range"))
                n = server._count[path] = server._count.get(path, 0) + 1
                mode = server.behaviour.get(path, "ok")
                if path not in server.files or mode == "404":
                    self.send_error(404, "Not Found")
                    return
                data = server.files[path]
                if mode == "changes" and n > 1:
                    data = server.files[path + "#v2"]
                etag = '"' + hashlib.sha256(data).hexdigest()[:16] + '"'
                if mode.startswith("503x") and n <= int(mode[4:]):
                    self.send_error(503, "Service Unavailable")
                    return
                if mode == "retry_after" and n == 1:
                    self.send_response(503)
                    self.send_header("Retry-After", "1")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if mode == "bad_status" and n == 1:
                    self.wfile.write(b"HTTP/1.1 OK-ish\r\n\r\n")
                    self.close_connection = True
                    return
                start = 0
                if rng and mode != "short" and rng.startswith("bytes="):
                    start = int(rng[6:].split("-")[0])
                    if_range = self.headers.get("If-Range")
                    if if_range is not None and if_range != etag:
                        start = 0
                if start >= len(data) > 0:
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{len(data)}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                body = data[start:]
                self.send_response(206 if start else 200)
                self.send_header("ETag", etag)
                if mode == "chunked_drop" and n == 1:
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    self.wfile.write(f"{len(body):x}\r\n".encode() + body[: len(body) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.send_header("Content-Length", str(len(body)))
                if start:
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                self.send_header("Accept-Ranges", "bytes")
                self.end_headers()
                if mode == "stall" and n == 1:
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    time.sleep(3)
                    self.close_connection = True
                    return
                if mode == "short" or (mode in ("drop", "changes") and n == 1):
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
