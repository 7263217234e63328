"""run_sync from plain threads: results, loop reuse, errors, timeouts, backends."""

from __future__ import annotations

import inspect
import threading
import traceback

import anyio
import anyio.lowlevel
import pytest

import agentbridge as ab

pytestmark = pytest.mark.timeout(30)


async def add(a: int, b: int) -> int:
    await anyio.lowlevel.checkpoint()
    return a + b


async def loop_identity() -> object:
    return anyio.lowlevel.current_token().native_token


def test_coroutine_function_with_args(portal_backend: str) -> None:
    assert ab.run_sync(add, 2, 3, backend=portal_backend) == 5


def test_awaitable_passed_alone(portal_backend: str) -> None:
    assert ab.run_sync(add(4, 5), backend=portal_backend) == 9


def test_uvloop_shorthand_runs_on_uvloop() -> None:
    uvloop = pytest.importorskip("uvloop")

    async def loop_type() -> type:
        import asyncio

        return type(asyncio.get_running_loop())

    assert ab.run_sync(loop_type, backend="uvloop") is uvloop.Loop
    # The shorthand and the explicit option name the same portal.
    same = ab.run_sync(loop_identity, backend="asyncio", backend_options={"use_uvloop": True})
    assert same is ab.run_sync(loop_identity, backend="uvloop")


def test_calls_from_one_thread_reuse_one_loop(portal_backend: str) -> None:
    first = ab.run_sync(loop_identity, backend=portal_backend)
    assert all(ab.run_sync(loop_identity, backend=portal_backend) is first for _ in range(5))


def test_loop_bound_resource_survives_between_calls(portal_backend: str) -> None:
    """A resource created on the portal's loop by one call is usable by the next."""
    holder: dict[str, anyio.Event] = {}

    async def create() -> None:
        holder["event"] = anyio.Event()

    async def use() -> bool:
        holder["event"].set()
        await holder["event"].wait()
        return holder["event"].is_set()

    ab.run_sync(create, backend=portal_backend)
    assert ab.run_sync(use, backend=portal_backend) is True


def test_each_thread_gets_its_own_portal(portal_backend: str) -> None:
    mine = ab.run_sync(loop_identity, backend=portal_backend)
    theirs: list[object] = []
    thread = threading.Thread(
        target=lambda: theirs.append(ab.run_sync(loop_identity, backend=portal_backend))
    )
    thread.start()
    thread.join(10)
    assert theirs
    assert theirs[0] is not mine


def test_exception_keeps_type_and_coroutine_frames(portal_backend: str) -> None:
    async def deep_failure() -> None:
        await anyio.lowlevel.checkpoint()
        raise LookupError("no such agent")

    with pytest.raises(LookupError, match="no such agent") as info:
        ab.run_sync(deep_failure, backend=portal_backend)
    frames = [frame.name for frame in traceback.extract_tb(info.value.__traceback__)]
    assert "deep_failure" in frames
    assert "test_exception_keeps_type_and_coroutine_frames" in frames


class Fatal(BaseException):
    pass


def test_base_exception_crosses_and_portal_survives(portal_backend: str) -> None:
    async def fatal() -> None:
        raise Fatal("stop")

    before = ab.run_sync(loop_identity, backend=portal_backend)
    with pytest.raises(Fatal):
        ab.run_sync(fatal, backend=portal_backend)
    assert ab.run_sync(loop_identity, backend=portal_backend) is before


def test_sync_function_is_refused_with_the_fix_named() -> None:
    def compute(x: int) -> int:
        return x * 2

    with pytest.raises(ab.NotAwaitableError, match=r"compute.*regular function.*to_thread"):
        ab.run_sync(compute, 2)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        ab.run_sync(compute, 2)  # type: ignore[arg-type]


def test_non_callable_and_async_generator_are_refused() -> None:
    async def numbers():  # type: ignore[no-untyped-def]
        yield 1

    with pytest.raises(ab.NotAwaitableError, match="iterate_sync"):
        ab.run_sync(numbers)
    with pytest.raises(ab.NotAwaitableError, match="42"):
        ab.run_sync(42)  # type: ignore[call-overload]


def test_timeout_cancels_runs_cleanup_and_keeps_portal(portal_backend: str) -> None:
    cleaned = threading.Event()

    async def forever() -> None:
        try:
            await anyio.sleep_forever()
        finally:
            cleaned.set()

    before = ab.run_sync(loop_identity, backend=portal_backend)
    with pytest.raises(ab.BridgeTimeoutError) as info:
        ab.run_sync(forever, timeout=0.05, backend=portal_backend)
    assert isinstance(info.value, TimeoutError)
    assert info.value.timeout == pytest.approx(0.05)
    assert info.value.abandoned is False
    assert cleaned.is_set(), "the coroutine's finally block must run before the caller returns"
    assert ab.run_sync(loop_identity, backend=portal_backend) is before


def test_timeout_from_environment(monkeypatch: pytest.MonkeyPatch, portal_backend: str) -> None:
    monkeypatch.setenv("AGENTBRIDGE_SYNC_TIMEOUT", "0.05")
    with pytest.raises(ab.BridgeTimeoutError):
        ab.run_sync(anyio.sleep_forever, backend=portal_backend)


def test_a_coroutine_ignoring_cancellation_is_abandoned_after_the_grace(
    portal_backend: str,
) -> None:
    release = threading.Event()

    async def stubborn() -> None:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(release.wait)

    ab.configure(cancel_grace=0.05)
    try:
        with pytest.raises(ab.BridgeTimeoutError) as info:
            ab.run_sync(stubborn, timeout=0.05, backend=portal_backend)
        assert info.value.abandoned is True
    finally:
        release.set()


def test_user_timeout_error_is_not_mistaken_for_ours(portal_backend: str) -> None:
    async def own_timeout() -> None:
        raise TimeoutError("upstream timed out")

    with pytest.raises(TimeoutError, match="upstream") as info:
        ab.run_sync(own_timeout, timeout=5, backend=portal_backend)
    assert not isinstance(info.value, ab.BridgeTimeoutError)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("AGENTBRIDGE_SYNC_TIMEOUT", "soon"),
        ("AGENTBRIDGE_SYNC_TIMEOUT", "-1"),
        ("AGENTBRIDGE_BACKEND", "curio"),
        ("AGENTBRIDGE_ON_RUNNING_LOOP", "ignore"),
    ],
)
def test_malformed_environment_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)

    async def inside() -> int:
        return ab.run_sync(add, 1, 1)

    def call() -> object:
        if variable == "AGENTBRIDGE_ON_RUNNING_LOOP":
            return anyio.run(inside)
        return ab.run_sync(add, 1, 1)

    with pytest.raises(ab.ConfigurationError, match=variable):
        call()


def test_unknown_backend_lists_the_valid_ones() -> None:
    with pytest.raises(ValueError, match=r"'asyncio', 'trio', 'uvloop'") as info:
        ab.run_sync(add, 1, 1, backend="curio")
    assert isinstance(info.value, ab.ConfigurationError)


@pytest.mark.parametrize(
    "kwargs",
    [{"timeout": "5"}, {"timeout": 0}, {"on_running_loop": "sometimes"}, {"backend": 3}],
)
def test_bad_arguments_are_refused_clearly(kwargs: dict[str, object]) -> None:
    coro = add(1, 1)
    with pytest.raises(ab.ConfigurationError):
        ab.run_sync(coro, **kwargs)  # type: ignore[call-overload]
    # The refused coroutine was closed, so it raises no "never awaited" warning.
    assert coro.cr_frame is None


def test_backend_from_configure_and_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    async def library() -> str:
        import sniffio

        return sniffio.current_async_library()

    monkeypatch.setenv("AGENTBRIDGE_BACKEND", "trio")
    assert ab.run_sync(library) == "trio"
    ab.configure(backend="asyncio")
    assert ab.run_sync(library) == "asyncio"
    assert ab.run_sync(library, backend="trio") == "trio"
    with pytest.raises(ab.ConfigurationError):
        ab.configure(backend="nope")


def test_options_passed_as_none_are_the_defaults() -> None:
    # The options arrive as one mapping: None for each still means "the default", here
    # a configured timeout that cuts the call.
    async def slow() -> None:
        await anyio.sleep(5)

    ab.configure(timeout=0.05)  # reset after each test by the suite's fixture
    with pytest.raises(ab.BridgeTimeoutError):
        ab.run_sync(
            slow,
            timeout=None,
            backend=None,
            backend_options=None,
            on_running_loop=None,
            manager=None,
        )


def test_introspection_shows_the_options_as_keywords() -> None:
    parameters = inspect.signature(ab.run_sync).parameters
    keywords = [name for name, p in parameters.items() if p.kind is p.KEYWORD_ONLY]
    assert keywords == ["timeout", "backend", "backend_options", "on_running_loop", "manager"]
    assert all(parameters[name].default is None for name in keywords)
