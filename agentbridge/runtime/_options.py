"""The options of a run, checked once, when they are made."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from .._exceptions import ConfigurationError

__all__ = ("RunOptions",)


@dataclass(frozen=True)
class RunOptions:
    """How one run may use time, threads and concurrency.

    Every field is checked when the options are made (``dataclasses.replace`` checks
    again), so a run never starts with a bad one.

    :raises ConfigurationError: for a value outside the ranges below
    """

    #: Seconds before the whole run is cancelled, or ``None`` (or ``math.inf``) for no
    #: limit.
    timeout: float | None = None
    #: Worker threads the run's sync steps may use at once, or ``None`` for the bridge's
    #: thread pool rules.
    max_threads: int | None = None
    #: Steps that may execute at once, or ``None`` for no limit beyond the dependencies.
    max_concurrency: int | None = None
    #: Whether the first failing step stops the run.
    fail_fast: bool = True

    def __post_init__(self) -> None:
        for name in ("max_threads", "max_concurrency"):
            value = getattr(self, name)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or value < 1
            ):
                raise ConfigurationError(
                    f"{name} must be a whole number, 1 or more, or None; got {value!r}"
                )
        if not isinstance(self.fail_fast, bool):
            raise ConfigurationError(f"fail_fast must be True or False, got {self.fail_fast!r}")
        timeout: object = self.timeout
        if timeout is not None:
            if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not timeout > 0:
                raise ConfigurationError(
                    f"timeout must be a positive number of seconds (math.inf for none) or "
                    f"None, got {timeout!r}"
                )
            try:
                seconds = float(timeout)
            except OverflowError:  # an int beyond any float: no deadline in practice
                seconds = math.inf
            object.__setattr__(self, "timeout", seconds)

    def with_timeout(self, timeout: float | None) -> RunOptions:
        """These options with the run's own ``timeout``, checked.

        :raises ConfigurationError: if ``timeout`` is not a positive number or ``None``
        """
        if timeout is None and self.timeout is None:
            return self
        return dataclasses.replace(self, timeout=timeout)
