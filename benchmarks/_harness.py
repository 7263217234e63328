"""The one timing harness every benchmark case goes through.

A :class:`Group` is a set of :class:`Subject` s measured side by side: each subject is set
up once (its loop thread, portal or compiled graph stays warm), then the harness runs
*rounds*, timing every subject once per round in a rotating order, so slow drift of a
noisy machine (another tenant waking up, CPU frequency) hits candidate and baseline
alike. A :class:`Row` compares two subjects of the group; its ratio and its target are
computed per round from that round's paired timings, and the median over rounds is
reported. Nothing is ever compared with an absolute time measured in another run.

Before the timed rounds the objects alive after set-up and warm-up are frozen out of
the garbage collector (:func:`gc.freeze`), so a collection costs what the workload
allocated rather than what the benchmark process happens to have imported; the
collector itself still runs, as it does in an application.
"""

from __future__ import annotations

import gc
import statistics
import time
import traceback
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Literal, TextIO

__all__ = (
    "REWARM_SECONDS",
    "Group",
    "GroupResult",
    "MaxOverhead",
    "MaxOverheadRatio",
    "MaxRatio",
    "MaxTime",
    "Row",
    "RowResult",
    "Runner",
    "Subject",
    "Target",
    "Unavailable",
    "measure",
    "render",
    "simple_runner",
)

#: Performs the group's ``ops`` operations once and returns the seconds they took. The
#: runner times itself, so it can leave out whatever is not the operation (starting a
#: host loop, spawning worker threads, building a graph).
Runner = Callable[[], float]

#: Given the number of operations per round, sets a subject up and yields its runner;
#: leaving the context tears the subject down.
SubjectFactory = Callable[[int], AbstractContextManager[Runner]]

Unit = Literal["us", "calls/s"]


class Unavailable(Exception):
    """Raised by a subject factory when an optional dependency is missing.

    The subject's rows are reported as SKIP with this message; it is not an error.
    """


@dataclass(frozen=True)
class Subject:
    """One thing being timed: a candidate or a baseline."""

    key: str
    label: str
    factory: SubjectFactory


class Target(ABC):
    """A pass/fail criterion for a :class:`Row`, evaluated on one round's timings."""

    @property
    @abstractmethod
    def description(self) -> str:
        """The target as shown in the table."""

    @abstractmethod
    def value(self, candidate: float, baseline: float, reference: float | None) -> float:
        """The measured quantity for one round (per-operation seconds in, any unit out)."""

    @abstractmethod
    def passes(self, value: float) -> bool:
        """Whether the median measured quantity meets the target."""

    @abstractmethod
    def format(self, value: float) -> str:
        """The measured quantity as shown next to PASS/MISS."""

    @property
    def reference(self) -> str | None:
        """The key of a third subject the target needs (the bare-work floor), if any."""
        return None


@dataclass(frozen=True)
class MaxRatio(Target):
    """Candidate time per operation at most ``limit`` times the baseline's."""

    limit: float

    @property
    def description(self) -> str:
        return f"<= {self.limit:.2f}x"

    def value(self, candidate: float, baseline: float, reference: float | None) -> float:
        return candidate / baseline

    def passes(self, value: float) -> bool:
        return value <= self.limit

    def format(self, value: float) -> str:
        # Three decimals, so a result next to the limit shows which side it is on.
        return f"{value:.3f}x"


@dataclass(frozen=True)
class MaxOverhead(Target):
    """Candidate time per operation above the ``floor`` subject's, below ``limit`` seconds.

    The floor is the same work done as bare as possible (plain awaits, plain
    ``to_thread``), measured in the same rounds, so the difference is the overhead the
    candidate adds per operation.
    """

    limit: float
    floor: str

    @property
    def description(self) -> str:
        return f"overhead < {self.limit * 1e6:g} us"

    @property
    def reference(self) -> str | None:
        return self.floor

    def value(self, candidate: float, baseline: float, reference: float | None) -> float:
        assert reference is not None
        return candidate - reference

    def passes(self, value: float) -> bool:
        return value < self.limit

    def format(self, value: float) -> str:
        return f"{value * 1e6:.1f} us"


@dataclass(frozen=True)
class MaxTime(Target):
    """Candidate time per operation below ``limit`` seconds, whatever the baseline's:
    for work that replaces the baseline's rather than adding to it."""

    limit: float

    @property
    def description(self) -> str:
        return f"< {self.limit * 1e6:g} us"

    def value(self, candidate: float, baseline: float, reference: float | None) -> float:
        return candidate

    def passes(self, value: float) -> bool:
        return value < self.limit

    def format(self, value: float) -> str:
        return f"{value * 1e6:.1f} us"


@dataclass(frozen=True)
class MaxOverheadRatio(Target):
    """Candidate overhead over ``floor`` at most ``limit`` times the baseline's overhead."""

    limit: float
    floor: str

    @property
    def description(self) -> str:
        return f"overhead <= {self.limit:.2f}x"

    @property
    def reference(self) -> str | None:
        return self.floor

    def value(self, candidate: float, baseline: float, reference: float | None) -> float:
        assert reference is not None
        base_overhead = baseline - reference
        if base_overhead <= 0:
            return float("inf")
        return (candidate - reference) / base_overhead

    def passes(self, value: float) -> bool:
        return value <= self.limit

    def format(self, value: float) -> str:
        return f"{value:.3f}x"


@dataclass(frozen=True)
class Row:
    """One line of a group's table: candidate against baseline, with an optional target."""

    candidate: str
    baseline: str
    target: Target | None = None


@dataclass(frozen=True)
class Group:
    """Subjects measured together, and the rows that compare them."""

    title: str
    subjects: Sequence[Subject]
    rows: Sequence[Row]
    ops: int
    quick_ops: int
    unit: Unit = "us"
    noun: str = "call"
    note: str = ""


@dataclass
class RowResult:
    """The medians for one row, or why it could not be measured."""

    row: Row
    candidate: float | None = None
    baseline: float | None = None
    ratio: float | None = None
    target_value: float | None = None
    skipped: str | None = None

    @property
    def verdict(self) -> str:
        """``PASS``/``MISS`` with the measured quantity, ``info``, or ``SKIP``/``ERROR``."""
        if self.skipped is not None:
            return self.skipped
        target = self.row.target
        if target is None or self.target_value is None:
            return "info"
        status = "PASS" if target.passes(self.target_value) else "MISS"
        return f"{status} {target.format(self.target_value)}"


@dataclass
class GroupResult:
    """Everything measured for one group."""

    group: Group
    ops: int
    rounds: int
    rows: list[RowResult] = field(default_factory=list)
    error: str | None = None


#: How long a runner keeps calling, untimed, before it times its ``ops`` calls. A
#: cross-thread hop stays slow for about 50 ms after the caller was idle or busy with
#: something else (the other subject of the round): the threads' caches and the
#: scheduler's placement have to settle again.
REWARM_SECONDS = 0.05


def simple_runner(operation: Callable[[], object], ops: int) -> Runner:
    """A runner that calls ``operation`` ``ops`` times in the calling thread, after
    :data:`REWARM_SECONDS` of untimed calls."""
    loop = range(ops)

    def run() -> float:
        warm_until = time.perf_counter() + REWARM_SECONDS
        while time.perf_counter() < warm_until:
            operation()
        start = time.perf_counter()
        for _ in loop:
            operation()
        return time.perf_counter() - start

    return run


@contextmanager
def _subjects(group: Group, ops: int) -> Iterator[tuple[dict[str, Runner], dict[str, str]]]:
    runners: dict[str, Runner] = {}
    unavailable: dict[str, str] = {}
    with ExitStack() as stack:
        for subject in group.subjects:
            try:
                runners[subject.key] = stack.enter_context(subject.factory(ops))
            except Unavailable as exc:
                unavailable[subject.key] = str(exc)
        yield runners, unavailable


def measure(group: Group, *, rounds: int, quick: bool) -> GroupResult:
    """Run ``group`` for ``rounds`` interleaved rounds and compute its rows."""
    ops = group.quick_ops if quick else group.ops
    result = GroupResult(group, ops, rounds)
    try:
        with _subjects(group, ops) as (runners, unavailable):
            samples = _sample(runners, rounds, ops)
    except Exception:
        result.error = traceback.format_exc()
        result.rows = [RowResult(row, skipped="ERROR") for row in group.rows]
        return result
    for row in group.rows:
        needed = [row.candidate, row.baseline]
        if row.target is not None and row.target.reference is not None:
            needed.append(row.target.reference)
        missing = [key for key in needed if key in unavailable]
        if missing:
            # Still show whichever side was measured: a baseline alone is worth a look.
            result.rows.append(
                RowResult(
                    row,
                    candidate=_median(samples.get(row.candidate)),
                    baseline=_median(samples.get(row.baseline)),
                    skipped=f"SKIP: {unavailable[missing[0]]}",
                )
            )
        else:
            result.rows.append(_row_result(row, samples))
    return result


def _median(values: Sequence[float] | None) -> float | None:
    return None if values is None else statistics.median(values)


def _sample(runners: Mapping[str, Runner], rounds: int, ops: int) -> dict[str, list[float]]:
    """Per-operation seconds of every runner, one sample per round, in rotating order."""
    keys = list(runners)
    for key in keys:  # warm-up round, discarded: first-call costs, caches, lazy imports
        runners[key]()
    samples: dict[str, list[float]] = {key: [] for key in keys}
    # A full collection walks every object alive, mostly imported modules (LangGraph
    # alone adds ~90k), and lands in whichever run happens to trigger it; freezing what
    # exists now leaves the collector only the objects the timed runs create.
    gc.collect()
    gc.freeze()
    try:
        for index in range(rounds):
            shift = index % len(keys)
            order = keys[shift:] + keys[:shift]
            if index % 2:
                order.reverse()
            for key in order:
                gc.collect()
                samples[key].append(runners[key]() / ops)
    finally:
        gc.unfreeze()
    return samples


def _row_result(row: Row, samples: Mapping[str, Sequence[float]]) -> RowResult:
    candidate, baseline = samples[row.candidate], samples[row.baseline]
    ratios = [c / b for c, b in zip(candidate, baseline, strict=True)]
    target_value = None
    if row.target is not None:
        floor_key = row.target.reference
        floor: Sequence[float | None] = (
            samples[floor_key] if floor_key is not None else [None] * len(candidate)
        )
        target_value = statistics.median(
            row.target.value(c, b, f) for c, b, f in zip(candidate, baseline, floor, strict=True)
        )
    return RowResult(
        row,
        candidate=statistics.median(candidate),
        baseline=statistics.median(baseline),
        ratio=statistics.median(ratios),
        target_value=target_value,
    )


HEADERS = ("candidate", "baseline", "cand", "base", "ratio", "target", "result")


def _cells(group_result: GroupResult, row_result: RowResult) -> tuple[str, ...]:
    group = group_result.group
    labels = {subject.key: subject.label for subject in group.subjects}
    row = row_result.row

    def amount(seconds: float | None) -> str:
        if seconds is None:
            return "-"
        if group.unit == "calls/s":
            return f"{1 / seconds:,.0f}/s"
        return f"{seconds * 1e6:,.1f} us"

    return (
        labels[row.candidate],
        labels[row.baseline],
        amount(row_result.candidate),
        amount(row_result.baseline),
        "-" if row_result.ratio is None else f"{row_result.ratio:.2f}x",
        "-" if row.target is None else row.target.description,
        row_result.verdict,
    )


def _heading(result: GroupResult) -> str:
    group = result.group
    per = f"aggregate {group.noun}s/s" if group.unit == "calls/s" else f"us per {group.noun}"
    return f"{group.title}  [{per}; {result.ops} {group.noun}s x {result.rounds} rounds, medians]"


def render(results: Sequence[GroupResult], out: TextIO) -> None:
    """Print one plain-text table per group (plain so it can be pasted into an issue)."""
    for result in results:
        table = [HEADERS, *(_cells(result, row) for row in result.rows)]
        widths = [max(len(line[i]) for line in table) for i in range(len(HEADERS))]
        print(_heading(result), file=out)
        if result.group.note:
            print(f"  {result.group.note}", file=out)
        for number, line in enumerate(table):
            text = "  ".join(
                cell.rjust(width) if 2 <= i < 5 else cell.ljust(width)
                for i, (cell, width) in enumerate(zip(line, widths, strict=True))
            )
            print(f"  {text.rstrip()}", file=out)
            if number == 0:
                print("  " + "  ".join("-" * width for width in widths), file=out)
        if result.error:
            print("  " + result.error.rstrip().replace("\n", "\n  "), file=out)
        print(file=out)
