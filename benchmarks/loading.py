"""Loading benchmarks (issue #8): what reading and validating a workflow file costs.

A chain of steps, each passing the previous step's output on, is written as YAML text
and loaded by ``ab.Workflow.from_yaml_string`` (parse, line numbers, duplicate-key
checks, limits, the model and its validation), side by side with PyYAML's parse of the
same text with its C loader, ``yaml.CSafeLoader`` (which only builds the data). A second
row loads the same number of steps as ten files a tenth the size: loading is linear if
the cost per step does not grow with the file.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from _fixtures import agentbridge_api, require
from _harness import Group, MaxRatio, Row, Runner, Subject, Unavailable

__all__ = ("chain_text", "groups")

#: Target of issue #8: load and validate within 1.5x of the C loader's parse alone.
LOAD_RATIO = 1.5
#: Linear: the cost per step of a file ten times as long at most this much higher.
LINEAR_RATIO = 1.3


def chain_text(steps: int) -> str:
    """A workflow file of ``steps`` steps in a chain, each reading the previous output."""
    lines = ["name: chain", "steps:"]
    for index in range(steps):
        lines += [f"  - id: s{index}", "    function: step"]
        if index:
            lines.append(f'    inputs: {{value: "${{steps.s{index - 1}.output}}"}}')
    return "\n".join(lines) + "\n"


def _loader(load: Callable[[str], object], parts: int = 1) -> Callable[[int], Any]:
    """A subject factory: ``ops`` steps in ``parts`` files, each loaded once per round."""

    @contextmanager
    def factory(ops: int) -> Iterator[Runner]:
        texts = [chain_text(ops // parts)] * parts

        def run() -> float:
            start = time.perf_counter()
            for text in texts:
                load(text)
            return time.perf_counter() - start

        yield run

    return factory


def _agentbridge(text: str) -> object:
    return agentbridge_api("Workflow").from_yaml_string(text)


def _csafe(text: str) -> object:
    yaml = require("yaml")
    return yaml.load(text, Loader=yaml.CSafeLoader)


def _csafe_factory(ops: int) -> Any:
    if not require("yaml").__with_libyaml__:
        raise Unavailable("PyYAML was built without libyaml")
    return _loader(_csafe)(ops)


def groups() -> list[Group]:
    """Every loading group, in report order."""
    return [
        Group(
            "L1. load and validate a workflow file (a chain of steps)",
            subjects=[
                Subject("ab", "ab.Workflow.from_yaml_string", _loader(_agentbridge)),
                Subject("csafe", "yaml.load(CSafeLoader)", _csafe_factory),
                Subject("ab-small", "the same in 10 files", _loader(_agentbridge, parts=10)),
            ],
            rows=[
                Row("ab", "csafe", MaxRatio(LOAD_RATIO)),
                Row("ab", "ab-small", MaxRatio(LINEAR_RATIO)),
            ],
            ops=10_000,
            quick_ops=1_000,
            noun="step",
            note="each round loads one file of that many steps; per-step times",
        )
    ]
