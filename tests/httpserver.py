"""A tiny HTTP server on 127.0.0.1 for download tests, with scripted misbehaviour per path.

Behaviours: "ok"; "503x<n>" (503 for the first n requests, then ok); "404"; "short" (always
announces the full Content-Length but closes after half the body, ignoring Range); "drop"
(first request closes after half the body, later requests honour Range).
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class ScriptedServer:
    def __init__(self):
        self.files: dict[str, bytes] = {}
        self.behaviour: dict[str, str] = {}
        self.requests: list[tuple[str, str | None]] = []
        self._count: dict[str, int] = {}
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                path = self.path.lstrip("/")
                rng = self.headers.get("Range")
                server.requests.append((path, rng))
                n = server._count[path] = server._count.get(path, 0) + 1
                mode = server.behaviour.get(path, "ok")
                if path not in server.files or mode == "404":
                    self.send_error(404, "Not Found")
                    return
                data = server.files[path]
                if mode.startswith("503x") and n <= int(mode[4:]):
                    self.send_error(503, "Service Unavailable")
                    return
                start = 0
                if rng and mode != "short" and rng.startswith("bytes="):
                    start = int(rng[6:].split("-")[0])
                body = data[start:]
                self.send_response(206 if start else 200)
                self.send_header("Content-Length", str(len(body)))
                if start:
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                self.send_header("Accept-Ranges", "bytes")
                self.end_headers()
                if mode == "short" or (mode == "drop" and n == 1):
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
