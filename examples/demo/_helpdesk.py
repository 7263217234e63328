"""A stand-in for a remote helpdesk API: a JSON-lines service on a loopback port.

It serves the tickets and customers of ``helpdesk.json``, one request per line, and
answers each after a short delay, as a service across a network would. It runs in
threads of its own, so the demo's steps reach it over real sockets from the run's
event loop, whatever that loop is (asyncio or trio).
"""

from __future__ import annotations

import atexit
import json
import socketserver
import threading
import time
from pathlib import Path
from typing import Any

__all__ = ("address",)

DATA = Path(__file__).with_name("helpdesk.json")
#: The simulated network round trip of one request, in seconds.
LATENCY = 0.4


class _Service(socketserver.ThreadingTCPServer):
    daemon_threads = True

    def __init__(self, data: dict[str, Any]) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.data = data


_lock = threading.Lock()
_server: _Service | None = None


def address() -> tuple[str, int]:
    """The ``(host, port)`` of the service, which starts on first use (loopback only)."""
    global _server
    with _lock:
        if _server is None:
            _server = _start()
        host, port = _server.server_address[:2]
        return str(host), int(port)


class _Handler(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        for line in self.rfile:
            time.sleep(LATENCY)
            assert isinstance(self.server, _Service)
            reply = _answer(json.loads(line), self.server.data)
            self.wfile.write(json.dumps(reply).encode() + b"\n")


def _answer(request: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
    if request.get("get") == "tickets":
        queue, limit = request.get("queue"), int(request.get("limit", 10))
        tickets = [ticket for ticket in data["tickets"] if ticket["queue"] == queue]
        if not tickets:
            return {"error": f"no queue named {queue!r}"}
        return {"data": tickets[:limit]}
    if request.get("get") == "customer":
        customer = data["customers"].get(request.get("id"))
        if customer is None:
            return {"error": f"no customer {request.get('id')!r}"}
        return {"data": {"id": request["id"], **customer}}
    return {"error": f"unknown request {request!r}"}


def _start() -> _Service:
    server = _Service(json.loads(DATA.read_text(encoding="utf-8")))
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    atexit.register(_stop, server)
    return server


def _stop(server: _Service) -> None:
    server.shutdown()
    server.server_close()
