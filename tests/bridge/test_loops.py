"""The loop seam: trio is optional and imported only when used, asyncio only when a loop
of it can exist, and a trio backend asked for without trio names the extra to install.

What a fresh interpreter imports can only be seen from a fresh interpreter, so these
run in child processes; "trio is not installed" is an import blocker set before
agentbridge is imported (``sys.modules["trio"] = None`` makes ``import trio`` fail).
"""

from __future__ import annotations

import json

import pytest

from agentbridge._distribution import install_hint

from ._subproc import run_snippet

NO_TRIO = """
import sys
sys.modules["trio"] = None  # as if trio were not installed
import json
import agentbridge as ab

def attempt(make_call):
    try:
        make_call()
    except ab.ConfigurationError as exc:
        return ["ConfigurationError", str(exc)]
    except BaseException as exc:
        return [type(exc).__name__, str(exc)]
    return ["no error", ""]

async def answer():
    return 42

import os
results = {
    "run_sync": attempt(lambda: ab.run_sync(answer, backend="trio")),
    "configure": attempt(lambda: ab.configure(backend="trio")),
}
os.environ["AGENTBRIDGE_BACKEND"] = "trio"
results["environment"] = attempt(lambda: ab.run_sync(answer))
del os.environ["AGENTBRIDGE_BACKEND"]
results["asyncio still works"] = ab.run_sync(answer)
results["trio imported"] = sys.modules.get("trio") is not None
print(json.dumps(results))
"""


def test_a_trio_backend_without_trio_names_the_extra() -> None:
    outcome = run_snippet(NO_TRIO)
    assert outcome.returncode == 0, outcome.describe()
    results = json.loads(outcome.lines[-1])
    for way in ("run_sync", "configure", "environment"):
        kind, message = results[way]
        assert kind == "ConfigurationError", (way, results[way])
        assert install_hint("trio") in message, (way, message)
        assert "needs the trio package, which is not installed" in message, (way, message)
    assert "AGENTBRIDGE_BACKEND" in results["environment"][1]
    assert results["asyncio still works"] == 42
    assert results["trio imported"] is False


NO_TRIO_WORKER = """
import sys
sys.modules["trio"] = None
import anyio
import agentbridge as ab

async def inner():
    return "back on the host loop"

def blocking():
    ab.check_cancelled()
    return ab.run_sync(inner)

async def main():
    print(await ab.to_thread(blocking))
    print(ab.is_async_context())

anyio.run(main)
"""


def test_asyncio_worker_threads_need_no_trio() -> None:
    """Every loop question has an answer when trio cannot even be imported."""
    outcome = run_snippet(NO_TRIO_WORKER)
    assert outcome.returncode == 0, outcome.describe()
    assert outcome.lines == ["back on the host loop", "True"]


IMPORTS = """
import json, sys

WATCHED = ("asyncio", "trio", "yaml", "agentbridge.runtime")

def loaded():
    return {name: name in sys.modules for name in WATCHED}

import agentbridge as ab
after_import = loaded()
ab.run_sync, ab.to_thread, ab.sync_context
after_bridge = loaded()

async def answer():
    return 1

ab.run_sync(answer)
after_asyncio_call = loaded()
ab.run_sync(answer, backend="trio")
after_trio_call = loaded()
ab.Workflow
after_model = loaded()
print(json.dumps([after_import, after_bridge, after_asyncio_call, after_trio_call, after_model]))
"""


def test_each_library_is_imported_only_when_used() -> None:
    outcome = run_snippet(IMPORTS)
    assert outcome.returncode == 0, outcome.describe()
    after_import, after_bridge, after_asyncio, after_trio, after_model = json.loads(
        outcome.lines[-1]
    )
    nothing = {"asyncio": False, "trio": False, "yaml": False, "agentbridge.runtime": False}
    assert after_import == nothing
    assert after_bridge == nothing
    assert after_asyncio == {**nothing, "asyncio": True}
    assert after_trio == {**nothing, "asyncio": True, "trio": True}
    assert after_model == {**after_trio, "yaml": False}


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_calls_carry_context_into_the_portal_but_not_back(backend: str) -> None:
    """The native scheduler runs each call in a copy of the caller's context."""
    code = """
import contextvars, sys
import agentbridge as ab

var = contextvars.ContextVar("var", default="unset")

async def read_and_write():
    seen = var.get()
    var.set("changed in the portal")
    return seen

var.set("from the caller")
print(ab.run_sync(read_and_write, backend=sys.argv[1]))
print(var.get())
"""
    outcome = run_snippet(code, args=[backend])
    assert outcome.returncode == 0, outcome.describe()
    assert outcome.lines == ["from the caller", "from the caller"]
