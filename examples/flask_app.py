"""Flask on waitress: sync views call the sync ``run_workflow``, from a fixed pool of threads.

Run it from this directory::

    python flask_app.py --port 8080 --threads 4

then ``curl localhost:8080/run/3``. Each server thread that runs a workflow gets its own
portal (an event loop in a helper thread) on its first call and reuses it for every
later request, so a server with N threads holds at most N portals however many requests
it serves; ``/stats`` shows the count. Loop-bound resources a step caches (an
``httpx.AsyncClient``, say) keep working from one request to the next on that thread.

``/fail/widget`` shows a failing step as a 409; ``/park/1`` waits at a gate nobody opens,
to see what Ctrl-C does with a request in flight.
"""

from __future__ import annotations

import argparse
import threading
from typing import Any

from flask import Flask, g, request
from host_steps import FAIL, PARK, PROBE, gate, registry, request_id

import agentbridge as ab

app = Flask(__name__)


@app.before_request
def set_request_id() -> None:
    """Expose the request's ``x-request-id`` header to the steps through a contextvar."""
    g.request_id_token = request_id.set(request.headers.get("x-request-id", "-"))


@app.teardown_request
def reset_request_id(exc: BaseException | None) -> None:
    """Reset the contextvar: waitress reuses its threads (and their context) for new requests."""
    token = g.pop("request_id_token", None)
    if token is not None:
        request_id.reset(token)


@app.get("/run/<int:n>")
def run(n: int) -> dict[str, Any]:
    """Run the ``probe`` workflow with the sync API, as any blocking view would."""
    result = ab.run_workflow(PROBE, {"n": n}, registry=registry)
    return {"view_thread": threading.current_thread().name, "outputs": result.outputs}


@app.get("/fail/<item>")
def fail(item: str) -> dict[str, Any]:
    """Run the ``fail`` workflow, whose step raises the user's ``InventoryError``."""
    return ab.run_workflow(FAIL, {"item": item}, registry=registry).outputs


@app.errorhandler(ab.StepFailedError)
def step_failed(exc: ab.StepFailedError) -> tuple[dict[str, str], int]:
    """Turn a failed step into a 409 that names the step and its exception type."""
    cause = exc.__cause__
    return {"step": exc.step_id, "error": type(cause).__name__, "message": str(cause)}, 409


@app.get("/park/<int:n>")
def park(n: int) -> dict[str, Any]:
    """Run the ``park`` workflow, whose step waits at a gate this app never opens."""
    return ab.run_workflow(PARK, {"n": n}, registry=registry).outputs


@app.get("/stats")
def stats() -> dict[str, Any]:
    """The open portals and live threads of this process, to watch for leaks."""
    names = [thread.name for thread in threading.enumerate()]
    return {
        "open_portals": ab.get_portal_manager().open_portals,
        "threads": len(names),
        "portal_threads": sum(name.startswith("agentbridge-portal-") for name in names),
        "parked": gate.parked,
    }


def main() -> None:
    """Serve the app with waitress on 127.0.0.1."""
    import waitress

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--threads", type=int, default=4)
    args = parser.parse_args()
    waitress.serve(app, host="127.0.0.1", port=args.port, threads=args.threads)


if __name__ == "__main__":
    main()
