"""Run options check themselves when made, so no run starts with a bad one."""

from __future__ import annotations

import dataclasses
import math

import pytest

import agentbridge as ab
from agentbridge.runtime._options import RunOptions


def test_the_defaults() -> None:
    options = RunOptions()
    assert (options.timeout, options.max_threads, options.max_concurrency) == (None, None, None)
    assert options.fail_fast is True


def test_valid_values_are_kept_and_timeout_becomes_a_float() -> None:
    options = RunOptions(timeout=2, max_threads=3, max_concurrency=1, fail_fast=False)
    assert options.timeout == 2.0
    assert isinstance(options.timeout, float)
    assert (options.max_threads, options.max_concurrency, options.fail_fast) == (3, 1, False)


def test_options_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        RunOptions().timeout = 1  # type: ignore[misc]


@pytest.mark.parametrize("name", ["max_threads", "max_concurrency"])
@pytest.mark.parametrize("value", [0, -1, 1.5, True, "2"])
def test_a_bad_count_is_refused(name: str, value: object) -> None:
    with pytest.raises(ab.ConfigurationError, match=f"{name} must be a whole number") as caught:
        RunOptions(**{name: value})  # type: ignore[arg-type]
    assert repr(value) in str(caught.value)


@pytest.mark.parametrize("value", [0, -1, True, "1", float("nan")])
def test_a_bad_timeout_is_refused(value: object) -> None:
    with pytest.raises(ab.ConfigurationError, match="timeout must be a positive number"):
        RunOptions(timeout=value)  # type: ignore[arg-type]


def test_a_bad_fail_fast_is_refused() -> None:
    with pytest.raises(ab.ConfigurationError, match="fail_fast must be True or False"):
        RunOptions(fail_fast=1)  # type: ignore[arg-type]


def test_with_timeout_checks_the_new_value_and_keeps_the_others() -> None:
    options = RunOptions(max_threads=2, fail_fast=False)
    assert options.with_timeout(None) is options
    timed = options.with_timeout(0.5)
    assert timed == RunOptions(timeout=0.5, max_threads=2, fail_fast=False)
    assert timed.with_timeout(None).timeout is None
    with pytest.raises(ab.ConfigurationError, match="timeout"):
        options.with_timeout(-2)


def test_an_infinite_or_huge_timeout_is_no_deadline() -> None:
    assert RunOptions(timeout=math.inf).timeout == math.inf
    assert RunOptions(timeout=10**400).timeout == math.inf, "an int beyond any float"
