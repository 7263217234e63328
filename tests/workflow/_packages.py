"""A real package on ``sys.path`` whose step module imports dangerous things.

``<name>.steps`` defines a few steps and imports ``os``, ``subprocess``, ``importlib``
and ``functools``; ``<name>_lib`` is another package it imports from. Every import of a
module of either package, and every shell command of the tests, leaves a file in the
package's root, so a test can tell what ran.
"""

from __future__ import annotations

import pathlib
import sys
import textwrap
import uuid

__all__ = ("EvilPackage",)

_STEPS = """\
import functools
import importlib
import os
import pathlib
import subprocess
import sys
import threading
from functools import partial
from os import system

from {lib}.agents import Agent, Tool, default_agent, logged

pathlib.Path(r"{root}", __name__ + ".imported").write_text("imported")

SECRET = "s3cret"
shell = functools.partial(os.system)
tool = Tool()
agent = Agent()
worker = threading.Thread(target=os.system, args=("touch {root}/pwned",))


def double(x):
    return x * 2


def _private(x):
    return x


@logged
def wrapped(x):
    return x * 6


@functools.lru_cache
def cached(x):
    return x * 7


def __getattr__(name):
    if not name.startswith("_"):  # the import system asks for __path__ and the like
        pathlib.Path(r"{root}", "getattr.ran").write_text(name)
    raise AttributeError(name)


class Helper:
    call = os.system
    imp = staticmethod(importlib.import_module)

    @staticmethod
    def triple(x):
        return x * 3

    @classmethod
    def quadruple(cls, x):
        return x * 4

    @property
    def runs_code(self):
        pathlib.Path(r"{root}", "property.ran").write_text("ran")

    @classmethod
    @property
    def chained(cls):
        pathlib.Path(r"{root}", "property.ran").write_text("ran")

    class Inner:
        @staticmethod
        def quintuple(x):
            return x * 5
"""

_AGENTS = """\
import functools
import pathlib

pathlib.Path(r"{root}", __name__ + ".imported").write_text("imported")


class Agent:
    async def run(self, prompt):
        return f"agent: {{prompt}}"


class Tool:
    def __call__(self, x):
        return x


default_agent = Agent()


def logged(fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        return fn(*args, **kwargs)

    return wrapper
"""

_ALIAS = """\
import os
import sys

sys.modules[__name__] = os
"""


class EvilPackage:
    """Packages ``<name>`` (steps, an alias of ``os``) and ``<name>_lib`` (agents)."""

    def __init__(self, root: pathlib.Path) -> None:
        self.name = f"abimp_{uuid.uuid4().hex[:12]}"
        self.lib = f"{self.name}_lib"
        self.root = root
        self.sentinel = root / "pwned"
        files = {
            f"{self.name}/__init__.py": "",
            f"{self.name}/steps.py": _STEPS,
            f"{self.name}/alias.py": _ALIAS,
            f"{self.name}/__main__.py": 'open(r"{root}/main.ran", "w").close()\n',
            f"{self.name}_marker.py": 'open(r"{root}/marker.imported", "w").close()\n',
            f"{self.lib}/__init__.py": "",
            f"{self.lib}/agents.py": _AGENTS,
        }
        for path, text in files.items():
            (root / path).parent.mkdir(exist_ok=True)
            (root / path).write_text(textwrap.dedent(text).format(lib=self.lib, root=root))

    def imported(self, module: str = "steps") -> bool:
        """Whether ``<name>.<module>`` was imported."""
        name = f"{self.name}.{module}"
        return (self.root / f"{name}.imported").exists() or name in sys.modules

    def ran(self) -> list[str]:
        """The marks of everything that must never happen, found in the root."""
        marks = ("pwned", "marker.imported", "main.ran", "property.ran", "getattr.ran")
        return [mark for mark in marks if (self.root / mark).exists()]

    def forget(self) -> None:
        """Drop every module of both packages from ``sys.modules``."""
        for module in list(sys.modules):
            if module.startswith(self.name):
                del sys.modules[module]
