"""Run agentbridge's benchmarks and print one table per case.

Usage::

    python benchmarks/run.py                  # everything: about 4 minutes on 2 vCPUs
    python benchmarks/run.py --quick          # smoke run: small sizes, few rounds
    python benchmarks/run.py --only bridge    # or: workflow, imports, loading, runners,
                                              # cli, durable
    python benchmarks/run.py --processes 5    # the spread over 5 processes

Every case is measured side by side with its baselines in interleaved rounds on the
same machine, and reported as medians and ratios; a MISS is a finding, not a failure,
so the exit status is 0 unless a case raised an error (2 for bad arguments).

One process can be lucky or unlucky with where the scheduler places its threads for
its whole life, so ``--processes N`` runs the selection in N fresh processes, one after
the other, and reports for each ratio the median and the min-max of the per-process
medians; the verdict is on the median.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import statistics
import subprocess
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

from agentbridge._distribution import DISTRIBUTION  # noqa: E402

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

SUITES: dict[str, Callable[[], list[Group]]] = {}


def _load_suites() -> None:
    import bridge
    import durable
    import imports
    import loading
    import runners
    import terminal
    import workflow

    SUITES["bridge"] = bridge.groups
    SUITES["workflow"] = workflow.groups
    SUITES["imports"] = imports.groups
    SUITES["loading"] = loading.groups
    SUITES["runners"] = runners.groups
    SUITES["cli"] = terminal.groups
    SUITES["durable"] = durable.groups


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: small sizes and 3 rounds (< 30 s)"
    )
    parser.add_argument(
        "--only",
        choices=("bridge", "workflow", "imports", "loading", "runners", "cli", "durable"),
        action="append",
        help="run one suite",
    )
    parser.add_argument(
        "--rounds", type=int, help="interleaved rounds per case (default 15, quick 3)"
    )
    parser.add_argument("--match", help="only cases whose title contains this text")
    parser.add_argument(
        "--processes", type=int, default=1, help="run in N fresh processes; report the spread"
    )
    parser.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.rounds is not None and args.rounds < 1:
        parser.error("--rounds must be at least 1")
    if args.processes < 1:
        parser.error("--processes must be at least 1")
    return args


def environment() -> str:
    """One line describing where the numbers come from."""
    versions = [f"Python {platform.python_version()}"]
    for distribution in (DISTRIBUTION, "anyio", "trio", "uvloop", "asgiref", "langgraph"):
        try:
            versions.append(f"{distribution} {metadata.version(distribution)}")
        except metadata.PackageNotFoundError:
            versions.append(f"{distribution} -")
    return f"{platform.platform()}, {os.cpu_count()} CPUs; " + ", ".join(versions)


#: The line a child process prints its ratios on, for the parent of ``--processes``.
JSON_PREFIX = "RATIOS-JSON: "


def ratios_of(results: Sequence[GroupResult]) -> list[dict[str, object]]:
    """Every measured row as plain data: group, row labels, ratio, target value."""
    rows: list[dict[str, object]] = []
    for result in results:
        labels = {subject.key: subject.label for subject in result.group.subjects}
        for row in result.rows:
            if row.ratio is None:
                continue
            rows.append(
                {
                    "group": result.group.title,
                    "row": f"{labels[row.row.candidate]} / {labels[row.row.baseline]}",
                    "ratio": row.ratio,
                    "target": None if row.row.target is None else row.row.target.description,
                    "value": row.target_value,
                    "verdict": row.verdict,
                }
            )
    return rows


def spread(argv: Sequence[str], processes: int) -> int:
    """Run this script ``processes`` times in fresh processes; print each ratio's spread."""
    child = [sys.executable, str(Path(__file__).resolve()), *argv, "--json"]
    runs: list[list[dict[str, object]]] = []
    for number in range(processes):
        print(f"--- process {number + 1} of {processes}", flush=True)
        done = subprocess.run(child, capture_output=True, text=True, check=False)
        print(done.stdout.split(JSON_PREFIX)[0], end="", flush=True)
        if done.returncode != 0 or JSON_PREFIX not in done.stdout:
            print(done.stderr, file=sys.stderr)
            return 1
        runs.append(json.loads(done.stdout.split(JSON_PREFIX)[1]))
    print(f"=== spread of the per-process medians over {processes} processes")
    for first in runs[0]:
        same = [
            row
            for run in runs
            for row in run
            if (row["group"], row["row"]) == (first["group"], first["row"])
        ]
        values = [float(str(row["ratio"])) for row in same]
        median = statistics.median(values)
        verdict = ""
        if first["value"] is not None:
            # A target's quantity is not always the ratio (an overhead in us, a time), so
            # the verdict is that of the process whose quantity is the median one.
            middle = statistics.median_low(float(str(row["value"])) for row in same)
            (chosen,) = [row for row in same if row["value"] == middle][:1]
            verdict = f"  {first['target']}: {chosen['verdict']} (median process)"
        print(
            f"{first['group']}\n  {first['row']}: median {median:.3f}x, "
            f"min-max {min(values):.3f}-{max(values):.3f}x{verdict}"
        )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the selected suites; return the process exit status."""
    args = parse_args(argv)
    if args.processes > 1:
        forwarded = list(sys.argv[1:] if argv is None else argv)
        while "--processes" in forwarded:
            index = forwarded.index("--processes")
            del forwarded[index : index + 2]
        forwarded = [arg for arg in forwarded if not arg.startswith("--processes=")]
        return spread(forwarded, args.processes)
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
    if args.json:
        print(JSON_PREFIX + json.dumps(ratios_of(results)))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
