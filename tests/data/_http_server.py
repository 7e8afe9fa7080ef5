"""A small loopback HTTP server for download tests: Range support and injected failures.

Serves ``files`` (URL path -> bytes) on 127.0.0.1 from a daemon thread. ``cut`` holds paths
whose *next* response announces the full length but sends only half of it and closes;
``status`` maps paths to an error code; ``ignore_range`` answers ranges with a full 200.
Every request is logged as ``(path, Range header or None)``. The server shuts itself down
after ``lifetime`` seconds at the latest, so a broken test cannot leave it running.
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):  # keep test output clean
        pass

    def do_GET(self):  # noqa: N802 (http.server's name)
        srv = self.server
        rng = self.headers.get("Range")
        srv.log.append((self.path, rng))
        if self.path in srv.status:
            self.send_error(srv.status[self.path])
            return
        body = srv.files.get(self.path)
        if body is None:
            self.send_error(404)
            return
        start = 0
        if rng and not srv.ignore_range:
            start = int(rng.removeprefix("bytes=").split("-")[0])
            if start >= len(body):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(body)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        payload = body[start:]
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Connection", "close")
        self.end_headers()
        if self.path in srv.cut:
            srv.cut.discard(self.path)
            self.wfile.write(payload[:len(payload) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(payload)


class LoopbackServer:
    def __init__(self, files: dict[str, bytes], lifetime: float = 60.0):
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.httpd.daemon_threads = True
        self.httpd.files = dict(files)
        self.httpd.cut = set()
        self.httpd.status = {}
        self.httpd.ignore_range = False
        self.httpd.log = []
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self._thread = threading.Thread(target=self.httpd.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)
        self._timer = threading.Timer(lifetime, self.stop)
        self._timer.daemon = True

    # the knobs tests turn
    @property
    def files(self):
        return self.httpd.files

    @property
    def cut(self):
        return self.httpd.cut

    @property
    def status(self):
        return self.httpd.status

    @property
    def log(self):
        return self.httpd.log

    def set_ignore_range(self, value: bool) -> None:
        self.httpd.ignore_range = value

    def start(self) -> "LoopbackServer":
        self._thread.start()
        self._timer.start()
        return self

    def stop(self) -> None:
        self._timer.cancel()
        self.httpd.shutdown()
        self.httpd.server_close()
