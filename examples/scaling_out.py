"""Scaling out: one workflow, its CPU-bound steps on worker processes, Dask or Ray.

Run it with ``python scaling_out.py`` (Dask, a local cluster of two worker processes;
needs ``agentbridge-runtime[dask]``), ``python scaling_out.py --engine ray`` (a local Ray of two
CPUs; needs ``agentbridge-runtime[ray]``) or ``--engine process`` (a pool of two worker
processes; nothing to install). The workflow only names its runner, ``cpu``: this
script decides what that is, starts it once, runs the workflow twice on it and closes
it.

The two ``crunch`` steps are independent, so they run at once on two workers; ``fetch``
and ``report`` stay in this process (no ``runner:``), and ``report`` reads the crunched
outputs through ``${steps...}`` as usual: outputs come back from the workers.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from typing import Any

import agentbridge as ab

WORKFLOW = """
name: scaling-out
inputs: [n]
steps:
  - id: fetch
    function: fetch
    inputs: {n: "${inputs.n}"}
  - id: left
    function: crunch
    inputs: {numbers: "${steps.fetch.output.left}"}
    runner: cpu
  - id: right
    function: crunch
    inputs: {numbers: "${steps.fetch.output.right}"}
    runner: cpu
  - id: report
    function: report
    inputs: {left: "${steps.left.output}", right: "${steps.right.output}"}
outputs:
  total: "${steps.report.output.total}"
  workers: "${steps.report.output.workers}"
"""


def fetch(n: int) -> dict[str, list[int]]:
    """Split the work in two halves (here: numbers; in life, pages or records)."""
    return {"left": list(range(0, n, 2)), "right": list(range(1, n, 2))}


def crunch(numbers: list[int]) -> dict[str, int]:
    """Pure-Python work that holds the GIL: worth a process of its own."""
    total = sum(i * i % 7 for i in numbers)
    return {"total": total, "pid": os.getpid()}


def report(left: dict[str, int], right: dict[str, int]) -> dict[str, Any]:
    """Combine the halves, back in this process."""
    return {"total": left["total"] + right["total"], "workers": len({left["pid"], right["pid"]})}


def make_runner(engine: str, scratch: str) -> Any:
    """The runner the name ``cpu`` means here."""
    if engine == "dask":
        return ab.DaskRunner(n_workers=2, threads_per_worker=1, local_directory=scratch)
    if engine == "ray":
        return ab.RayRunner(num_cpus=2, temp_dir=scratch)
    return ab.ProcessRunner(max_workers=2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--engine", choices=("dask", "ray", "process"), default="dask")
    parser.add_argument("--n", type=int, default=200_000)
    args = parser.parse_args()
    registry = ab.Registry()
    for fn in (fetch, crunch, report):
        registry.function(fn)
    workflow = ab.Workflow.from_yaml_string(WORKFLOW)
    with tempfile.TemporaryDirectory() as scratch, make_runner(args.engine, scratch) as cpu:
        runtime = ab.Runtime(registry, runners={"cpu": cpu})
        for _ in range(2):  # the same runner, already warm, for every run
            result = runtime.run(workflow, {"n": args.n})
            print(
                f"{args.engine}: total {result.outputs['total']} from "
                f"{result.outputs['workers']} worker processes in {result.duration:.2f} s"
            )


if __name__ == "__main__":
    main()
