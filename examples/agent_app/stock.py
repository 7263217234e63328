"""A tiny stock service on 127.0.0.1, in a daemon thread: ``GET /stock/ITEM`` is JSON.

It stands for the HTTP API an agent's tool would call. It is started on first use, on a
free port, and lives as long as the process.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

__all__ = ("STOCK", "url")

#: What the service says is in stock.
STOCK = {"widget": 7, "gadget": 0, "gizmo": 42}

_lock = threading.Lock()
_server: ThreadingHTTPServer | None = None


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        item = self.path.rpartition("/")[2]
        known = item in STOCK
        body = json.dumps({"item": item, "count": STOCK.get(item, 0), "known": known})
        self.send_response(200 if known else 404)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the hosts' own logs are what the examples show."""


def url() -> str:
    """The service's base URL, starting it first if needed."""
    global _server
    with _lock:
        if _server is None:
            _server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
            _server.daemon_threads = True
            threading.Thread(target=_server.serve_forever, name="stock", daemon=True).start()
        host, port = _server.server_address[:2]
    return f"http://{host!s}:{port}"
