"""The journal of one durable run: what the driver tells it goes to the store in
batches, and what the store holds decides which steps are reused.

The driver's calls are synchronous and cheap (a record appended to a list); one task
writes whatever has gathered in one transaction, as soon as the loop is free, and
renews the lease every third of it when there is nothing to write. A crash can lose
the last batch: those steps run again on resume, which at-least-once allows.
"""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import anyio
import anyio.lowlevel

from .._exceptions import (
    ConfigurationError,
    ExpressionError,
    ResumeError,
    StoreBusyError,
    StoreError,
)
from ..workflow import Step, Workflow
from . import _json
from ._keys import input_key
from ._results import RunStatus, StepResult, StepStatus, WorkflowResult
from ._store import (
    AttemptEnded,
    AttemptStarted,
    ReusableStep,
    RunEnded,
    RunStore,
    StepEnded,
    StoredRun,
    Write,
    maker,
)

if TYPE_CHECKING:
    from ._plan import Plan, StepCall

__all__ = ("Journal",)

_make_result = maker(StepResult)
#: Every field of a reused step's result (a field added to StepResult later gets its
#: default); :meth:`Journal._reused` sets those of its step.
_REUSED = {
    **{
        spec.name: spec.default
        for spec in dataclasses.fields(StepResult)
        if spec.default is not dataclasses.MISSING
    },
    "status": StepStatus.SUCCEEDED,
    "reused": True,
}

#: The least time, in seconds, from one try of a write that found the store busy to
#: the next.
RETRY_PAUSE = 0.05


class Journal:
    """The store's side of one execution of a durable run; made by :meth:`open`."""

    __slots__ = (
        "_closing",
        "_keys",
        "_outputs",
        "_pending",
        "_renewed",
        "_run_scope",
        "_wake",
        "lost",
        "max_output",
        "owner",
        "result",
        "run_id",
        "store",
        "stored",
    )

    def __init__(
        self,
        store: RunStore,
        run_id: str,
        stored: StoredRun | None,
        owner: str,
        outputs: dict[str, Any],
    ) -> None:
        self.store = store
        self.run_id = run_id
        self.owner = owner
        self.stored = stored
        self.max_output = store.max_output
        #: The store failure (a lost lease, a locked file) that stopped the run.
        self.lost: StoreError | None = None
        #: The stored result of a run that had already finished: it is not claimed, and
        #: nothing runs or is written.
        self.result: WorkflowResult | None = None
        self._pending: list[Write] = []
        self._keys: dict[str, str | None] = {}
        #: The stored outputs, read from their JSON once, by step id.
        self._outputs = outputs
        self._wake = anyio.Event()
        self._closing = False
        # When the lease was last renewed (the start of the last write that succeeded),
        # by the monotonic clock: a process frozen past its lease finds out here.
        self._renewed = time.monotonic()
        self._run_scope: anyio.CancelScope | None = None

    @classmethod
    async def open(
        cls,
        store: RunStore,
        run_id: str,
        workflow: Workflow,
        source: str | None,
        inputs: Mapping[str, Any],
    ) -> Journal:
        """Claim run ``run_id`` in ``store``, new or stored; a run that already
        succeeded with every step of ``workflow`` stored is only read, and its stored
        result is the journal's :attr:`result`.

        :raises StoreError: if the inputs are not JSON
        :raises ResumeError: if a stored run of that id has another workflow or inputs
        :raises RunOwnershipError: if another process owns it
        """
        check_run_id(run_id)
        try:
            inputs_json = _json.dump(dict(inputs), sort_keys=True)
        except _json.NotJson as exc:
            raise StoreError(
                f"the inputs of a durable run are stored as JSON, and these are not: {exc}; "
                f"pass JSON values (str, int, float, bool, None, lists, dicts with str keys)"
            ) from None
        owner = uuid.uuid4().hex
        succeeded = False  # a succeeded run is first only read
        while True:
            stored = await store.claim(
                run_id,
                owner,
                workflow=workflow.name,
                source=source,
                inputs=inputs_json,
                succeeded=succeeded,
            )
            if stored is None:
                return cls(store, run_id, None, owner, {})
            claimed = succeeded or stored.status != RunStatus.SUCCEEDED.value
            try:
                outputs = _outputs(stored, workflow.name, inputs_json, run_id)
            except StoreError:
                if claimed:
                    await store.release(run_id, owner)
                raise
            journal = cls(store, run_id, stored, owner, outputs)
            if claimed:
                return journal
            journal.result = journal.stored_result(workflow)
            if journal.result is not None:
                return journal
            succeeded = True  # a step was added since: the run runs, so it is claimed

    def stored_result(self, workflow: Workflow) -> WorkflowResult | None:
        """The stored result if the run succeeded with every step of ``workflow``
        stored, else ``None``."""
        stored = self.stored
        if stored is None or stored.status != RunStatus.SUCCEEDED.value or stored.outputs is None:
            return None
        records, reused = stored.reusable, self._reused
        steps = {}
        for step in workflow.steps:
            record = records.get(step.id)
            if record is None:
                return None
            steps[step.id] = reused(step, record)
        return WorkflowResult(
            workflow.name,
            RunStatus.SUCCEEDED,
            _load(stored.outputs, "the run's outputs", self.run_id),
            steps,
            datetime.fromtimestamp(stored.created_at, timezone.utc),
            stored.duration or 0.0,
            run_id=self.run_id,
        )

    # --- told by the driver, synchronously -----------------------------------------------

    def seed(self, plan: Plan, inputs: Mapping[str, Any]) -> dict[str, StepResult]:
        """The stored results that stand for running their steps, found before the run
        starts: from the roots on, each step whose dependencies are all reused, whose
        condition holds and whose input key matches, by step id, in that order.

        Only stored outputs and the run's inputs are evaluated here, plain JSON data,
        so nothing a step could observe happens twice; the steps after one that runs
        again are decided by :meth:`reuse` as they start.
        """
        stored = self.stored
        if stored is None:
            return {}
        records, outputs, calls, dependents = (
            stored.reusable,
            self._outputs,
            plan.calls,
            plan.dependents,
        )
        reused = self._reused
        seeded: dict[str, StepResult] = {}
        waiting = dict(plan.indegree)
        ready = list(plan.roots)
        # A step is taken only once every step it depends on is reused, and it can name
        # no other step's output: evaluated against every stored output, it sees only
        # reused ones.
        for step_id in ready:  # grows as steps are reused
            record = records.get(step_id)
            if record is None or record.input_key is None:
                continue
            call = calls[step_id]
            step = call.step
            try:
                if step.when is None and step.for_each is None:  # the common case first
                    kwargs: Any = step.evaluate_inputs(inputs, outputs)
                elif step.when is not None and not step.evaluate_condition(inputs, outputs):
                    continue
                elif step.for_each is None:
                    kwargs = step.evaluate_inputs(inputs, outputs)
                else:
                    items = step.evaluate_items(inputs, outputs)
                    kwargs = [
                        step.evaluate_inputs(inputs, outputs, (item, index))
                        for index, item in enumerate(items)
                    ]
            except ExpressionError:
                continue
            if input_key(call.key_prefix, kwargs) != record.input_key:
                continue
            seeded[step_id] = reused(step, record)
            for dependent in dependents[step_id]:
                waiting[dependent] -= 1
                if not waiting[dependent]:
                    ready.append(dependent)
        return seeded

    def reuse(self, call: StepCall, kwargs: Any) -> StepResult | None:
        """The stored result of ``call``'s step if it can stand for running it with
        ``kwargs`` (its inputs now; a list of them for a ``for_each`` step), else
        ``None`` (and the key is kept for its record)."""
        step = call.step
        key = self._keys[step.id] = input_key(call.key_prefix, kwargs)
        stored = self.stored
        if stored is None or key is None:
            return None
        record = stored.reusable.get(step.id)
        if record is None or record.input_key != key:
            return None
        return self._reused(step, record)

    def item(self, call: StepCall, index: int, kwargs: Any) -> tuple[str | None, tuple[Any] | None]:
        """Item ``index`` of ``for_each`` step ``call``, run with ``kwargs``: its input
        key (``None`` if they are not JSON or the step has ``persist: false``: the item
        is then not stored), and its stored output, in a 1-tuple, if a stored record of
        the item can stand for running it (else ``None``)."""
        step = call.step
        if not step.persist:
            return None, None
        key = input_key(call.key_prefix, kwargs)
        stored = self.stored
        if stored is None or key is None:
            return key, None
        item_id = _item_id(step.id, index)
        record = stored.reusable.get(item_id)
        if record is None or record.input_key != key:
            return key, None
        return key, (self._outputs[item_id],)

    def item_ended(self, step: Step, index: int, key: str, result: StepResult) -> None:
        """Store item ``index`` of ``step``, which succeeded with ``result`` run with
        the inputs of ``key``: a record of the step's kind, as step ``ID[INDEX]`` (a
        bracket is in no step id). Nothing is stored if its output cannot be (not JSON,
        too large): the item then runs again."""
        output, _ = self._output(result.output, True)
        if output is not None:
            self._add(_step_ended(_item_id(step.id, index), result, output, key, None))

    def _reused(self, step: Step, record: ReusableStep) -> StepResult:
        started_at = record.started_at
        # A copy of a whole result's fields, five of them set: cheaper than a dict
        # built anew, and the result is made without a merge.
        fields = _REUSED.copy()
        fields["step_id"] = step.id
        fields["kind"] = step.kind
        fields["output"] = self._outputs[step.id]
        fields["attempts"] = record.attempts
        fields["duration"] = record.duration
        if started_at is not None:
            fields["started_at"] = datetime.fromtimestamp(started_at, timezone.utc)
        return _make_result(fields)

    async def check_lease(self) -> None:
        """Before an attempt starts: if the lease may have expired (this process was
        frozen or starved), confirm it with a write first, so a process that lost the
        run starts nothing more; the run is then cancelled."""
        if time.monotonic() - self._renewed < self.store.lease:
            return
        with anyio.CancelScope(shield=True):
            await self._flush_or_stop()
        await anyio.lowlevel.checkpoint()  # where the stopped run is cancelled

    def started(self, step: Step, attempt: int) -> None:
        """An attempt of ``step`` started now."""
        self._add(AttemptStarted(step.id, step.kind, attempt, time.time()))

    def retrying(self, step: Step, error: BaseException) -> None:
        """The current attempt of ``step`` failed with ``error``; another follows."""
        self._add(
            AttemptEnded(step.id, "failed", time.time(), type(error).__qualname__, str(error))
        )

    def ended(self, result: StepResult, persist: bool) -> StepResult:
        """Record how a step ended; the result to report, which says if its output was
        not stored."""
        if result.reused:
            return result
        output = not_stored = None
        if result.status is StepStatus.SUCCEEDED:
            output, not_stored = self._output(result.output, persist)
            if not_stored is not None:
                result = _with_not_stored(result, not_stored)
        self._add(
            _step_ended(result.step_id, result, output, self._keys.get(result.step_id), not_stored)
        )
        return result

    def _output(self, value: Any, persist: bool) -> tuple[str | None, str | None]:
        if not persist:
            return None, "the step has persist: false"
        try:
            text = _json.dump(value)
        except _json.NotJson as exc:
            return None, f"its output is not JSON: {exc}"
        if len(text) > self.max_output:
            return None, (
                f"its output is {len(text)} characters of JSON, more than the store's "
                f"max_output of {self.max_output}"
            )
        return text, None

    def run_ended(self, result: WorkflowResult) -> None:
        """Record how the run ended (written by :meth:`recording` as it ends)."""
        outputs = None
        if result.status is RunStatus.SUCCEEDED:
            try:
                outputs = _json.dump(result.outputs)
            except _json.NotJson:
                outputs = None  # the run is then not "finished": a resume recomputes them
        error = result.error
        self._add(
            RunEnded(
                result.status.value,
                result.duration,
                None if error is None else type(error).__qualname__,
                None if error is None else str(error),
                outputs,
            )
        )

    def _add(self, item: Write) -> None:
        pending = self._pending
        if not pending:  # the writer is woken once per batch: _flush empties both
            self._wake.set()
        pending.append(item)

    # --- the writer task -----------------------------------------------------------------

    async def recording(self, body: Callable[[], Awaitable[WorkflowResult]]) -> WorkflowResult:
        """Await ``body`` (the run) while a task writes what it records; then write the
        rest, even if the run is cancelled.

        :raises StoreError: if the store failed (e.g. :class:`RunOwnershipError`, the
            lease was lost): the run was cancelled then, and nothing more written
        """
        result: WorkflowResult | None = None
        error: Exception | None = None
        try:
            async with anyio.create_task_group() as task_group:
                self._run_scope = task_group.cancel_scope
                task_group.start_soon(self._write_loop)
                try:
                    result = await body()
                except Exception as exc:
                    error = exc
                finally:
                    self._closing = True
                    self._wake.set()
        finally:
            # Nothing pending: the writer wrote the run's end already (say, trying again
            # past a busy store as it came), which let the run go; one more write, even
            # an empty one, would find it owned by no one and report the lease lost.
            if self.lost is None and self._pending:
                with anyio.CancelScope(shield=True):
                    await self._flush_or_stop()
        if self.lost is not None:
            raise self.lost
        if error is not None:
            raise error
        assert result is not None
        return result

    async def _write_loop(self) -> None:
        heartbeat = self.store.lease / 3
        while not self.lost:
            # Closing is checked before the wait too: if the run ended while a write
            # was tried again, its wake-up went to an event that try then replaced.
            if not self._closing:
                with anyio.move_on_after(heartbeat):
                    await self._wake.wait()
            if self._closing:
                return
            # Shielded: a batch taken is written, even if the run is cancelled now.
            with anyio.CancelScope(shield=True):
                await self._flush_or_stop()

    async def _flush_or_stop(self) -> None:
        """Write what is pending; if the store fails, stop the run and write no more.

        A store busy with another process's transaction is tried again, the batch kept,
        for as long as the lease lasts: a write that could end after it might meet
        another owner, so then the run stops as for any other failure.
        """
        while True:
            began = time.monotonic()
            try:
                await self._flush()
                return
            except StoreBusyError as exc:
                now = time.monotonic()
                # The store itself waited before failing, but maybe only a moment (a
                # tiny busy_timeout): the pause keeps the tries from spinning.
                pause = max(0.0, RETRY_PAUSE - (now - began))
                # Another try, as long as this one, must end within the lease.
                if now + pause + (now - began) - self._renewed < self.store.lease:
                    await anyio.sleep(pause)
                    continue
                self._stop(exc)
                return
            except StoreError as exc:
                self._stop(exc)
                return

    def _stop(self, error: StoreError) -> None:
        self.lost = error
        assert self._run_scope is not None
        self._run_scope.cancel()

    async def _flush(self) -> None:
        self._wake = anyio.Event()
        batch, self._pending = self._pending, []
        began = time.monotonic()
        try:
            await self.store.write(self.run_id, self.owner, batch)
        except BaseException:
            self._pending[:0] = batch  # not written: kept, ahead of what came since
            raise
        self._renewed = began


def check_run_id(run_id: object) -> None:
    """Refuse a run id that is not a short printable string.

    :raises ConfigurationError: if it is not
    """
    if not isinstance(run_id, str) or not run_id or len(run_id) > 200 or not run_id.isprintable():
        raise ConfigurationError(
            f"a run id must be a printable string of 1 to 200 characters, got {run_id!r}"
        )


def _outputs(stored: StoredRun, workflow: str, inputs_json: str, run_id: str) -> dict[str, Any]:
    """The stored steps' outputs, read from their JSON, by step id.

    :raises ResumeError: if the stored run has another workflow or inputs
    :raises StoreError: if an output is not JSON
    """
    problem = _changed(stored, workflow, inputs_json)
    if problem is not None:
        raise ResumeError(
            f"run {run_id!r} cannot be resumed: {problem}, so its stored results "
            f"do not belong to this run; resume it as it was, or start a new run "
            f"with another run id"
        )
    outputs = {}
    load = _json.load
    for step_id, record in stored.reusable.items():
        try:
            outputs[step_id] = load(record.output)
        except ValueError:  # said by _load, whose message is made only then
            _load(record.output, f"the output of step {step_id!r}", run_id)
    return outputs


def _changed(stored: StoredRun, workflow: str, inputs_json: str) -> str | None:
    if stored.workflow != workflow:
        return f"it ran workflow {stored.workflow!r}, not {workflow!r}"
    if stored.inputs == inputs_json:
        return None
    try:
        before = _json.load(stored.inputs)
    except ValueError:
        return "its stored inputs are not JSON (the store was modified outside agentbridge)"
    now = _json.load(inputs_json)
    if not isinstance(before, dict):
        return "its stored inputs are not a mapping (the store was modified outside agentbridge)"
    names = sorted({*before, *now} - {n for n in before if n in now and before[n] == now[n]})
    return f"its inputs changed ({', '.join(map(repr, names))} differ from the stored run's)"


def _load(text: str, what: str, run_id: str) -> Any:
    try:
        return _json.load(text)
    except ValueError as exc:
        raise StoreError(
            f"{what} in run {run_id!r} is not JSON as agentbridge writes it ({exc}): the "
            f"store was modified outside agentbridge; start a new run with another run id"
        ) from None


def _step_ended(
    record_id: str, result: StepResult, output: str | None, key: str | None, not_stored: str | None
) -> StepEnded:
    """The record of ``result`` as step ``record_id`` (a step's id, or an item's)."""
    error = result.error
    started_at = result.started_at
    return StepEnded(
        record_id,
        result.kind,
        result.status.value,
        result.attempts,
        output,
        key,
        not_stored,
        None if started_at is None else started_at.timestamp(),
        result.duration,
        None if error is None else type(error).__qualname__,
        None if error is None else str(error),
    )


def _item_id(step_id: str, index: int) -> str:
    """The id of the record of item ``index`` of step ``step_id``."""
    return f"{step_id}[{index}]"


def _with_not_stored(result: StepResult, reason: str) -> StepResult:
    return dataclasses.replace(result, not_stored=reason)
