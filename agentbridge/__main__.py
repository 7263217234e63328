"""``python -m agentbridge``: the same command line as the ``agentbridge`` script."""

from __future__ import annotations

from agentbridge.cli import main

if __name__ == "__main__":
    main()
