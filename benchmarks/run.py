"""Run agentbridge's benchmarks and print one table per case.

Usage::

    python benchmarks/run.py                  # everything: about 2 minutes on 2 vCPUs
    python benchmarks/run.py --quick          # smoke run: small sizes, few rounds
    python benchmarks/run.py --only bridge    # or: --only workflow, --only imports, --only loading

Every case is measured side by side with its baselines in interleaved rounds on the
same machine, and reported as medians and ratios; a MISS is a finding, not a failure,
so the exit status is 0 unless a case raised an error (2 for bad arguments).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # run other than as a script (runpy, python -m)
    sys.path.insert(0, str(HERE))
if importlib.util.find_spec("agentbridge") is None:
    # Running from a checkout without an install: benchmark the checkout.
    sys.path.insert(1, str(HERE.parent))

from _harness import Group, GroupResult, measure, render  # noqa: E402

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

SUITES: dict[str, Callable[[], list[Group]]] = {}


def _load_suites() -> None:
    import bridge
    import imports
    import loading
    import workflow

    SUITES["bridge"] = bridge.groups
    SUITES["workflow"] = workflow.groups
    SUITES["imports"] = imports.groups
    SUITES["loading"] = loading.groups


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: small sizes and 3 rounds (< 30 s)"
    )
    parser.add_argument(
        "--only",
        choices=("bridge", "workflow", "imports", "loading"),
        action="append",
        help="run one suite",
    )
    parser.add_argument(
        "--rounds", type=int, help="interleaved rounds per case (default 15, quick 3)"
    )
    parser.add_argument("--match", help="only cases whose title contains this text")
    args = parser.parse_args(argv)
    if args.rounds is not None and args.rounds < 1:
        parser.error("--rounds must be at least 1")
    return args


def environment() -> str:
    """One line describing where the numbers come from."""
    versions = [f"Python {platform.python_version()}"]
    for distribution in ("agentbridge", "anyio", "trio", "uvloop", "asgiref", "langgraph"):
        try:
            versions.append(f"{distribution} {metadata.version(distribution)}")
        except metadata.PackageNotFoundError:
            versions.append(f"{distribution} -")
    return f"{platform.platform()}, {os.cpu_count()} CPUs; " + ", ".join(versions)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the selected suites; return the process exit status."""
    args = parse_args(argv)
    _load_suites()
    rounds = args.rounds or (3 if args.quick else 15)
    print(environment())
    print(
        "ratio = median over rounds of candidate/baseline, from timings taken side by side;"
        " lower is better\n",
        flush=True,
    )
    began = time.perf_counter()
    results: list[GroupResult] = []
    for name in args.only or list(SUITES):
        for group in SUITES[name]():
            if args.match and args.match not in group.title:
                continue
            result = measure(group, rounds=rounds, quick=args.quick)
            render([result], sys.stdout)
            sys.stdout.flush()
            results.append(result)
    verdicts = [row.verdict for result in results for row in result.rows]
    summary = {word: sum(v.startswith(word) for v in verdicts) for word in ("PASS", "MISS")}
    errors = [result.group.title for result in results if result.error]
    print(
        f"{summary['PASS']} PASS, {summary['MISS']} MISS, {len(errors)} ERROR "
        f"in {time.perf_counter() - began:.0f} s"
    )
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
