"""The name agentbridge is installed under, and the install hints built from it.

The import name is ``agentbridge``; on the package index the distribution is
``agentbridge-runtime``, since the name ``agentbridge`` there belongs to an unrelated
project. Every "install the extra" hint in a message is built here, so they all name
what ``pyproject.toml`` publishes (a test checks the two agree).
"""

from __future__ import annotations

from typing import Final

__all__ = ("DISTRIBUTION", "install_hint")

#: The distribution name: ``pip install agentbridge-runtime``, ``import agentbridge``.
DISTRIBUTION: Final = "agentbridge-runtime"


def install_hint(extra: str) -> str:
    """The command that installs ``extra``: ``pip install 'agentbridge-runtime[trio]'``."""
    return f"pip install '{DISTRIBUTION}[{extra}]'"
