"""What reading one workflow may cost: :class:`LoadLimits`, and the checks that apply them.

Both loaders, YAML text and Python mappings, count what they read through one
:class:`Budget`, so every limit is checked, and worded, in one place.
"""

from __future__ import annotations

import math
import reprlib
import sys
from dataclasses import dataclass, fields
from typing import Final

from .._exceptions import ConfigurationError

__all__ = ("DEPTH_CEILING", "Budget", "LimitExceeded", "LoadLimits", "quote")

#: The deepest nesting a limit may allow: expressions are compiled and evaluated by
#: recursion, which must stay well inside Python's own recursion limit.
DEPTH_CEILING: Final = 200

# log10(2): the decimal digits per bit of an integer.
_DIGITS_PER_BIT: Final = math.log10(2)


@dataclass(frozen=True)
class LoadLimits:
    """The most one workflow file (or mapping) may hold; larger ones are refused.

    The defaults leave room for any hand-written or generated workflow seen so far, and
    keep the time and memory one load may take bounded: loading is linear in the size
    of what is read, and aliases count as the values they repeat. Pass larger values to
    :meth:`Workflow.from_yaml <agentbridge.Workflow.from_yaml>`,
    :meth:`~agentbridge.Workflow.from_yaml_string`, :meth:`~agentbridge.Workflow.from_dict`
    or :class:`~agentbridge.Runtime` (``limits=LoadLimits(max_steps=50_000)``) to read
    more.

    :raises ConfigurationError: if a limit is not a positive whole number, or
        ``max_depth`` is above 200

    .. versionadded:: 0.1
    """

    #: The size of a workflow file or YAML text, in bytes (UTF-8).
    max_bytes: int = 10 * 1024 * 1024
    #: How many steps a workflow may have.
    max_steps: int = 10_000
    #: How deeply lists and mappings may nest, counting the workflow itself as 1.
    max_depth: int = 50
    #: How many values (scalars, lists, mappings) a workflow may hold in all, counting
    #: each YAML alias or repeated Python object as every value it repeats.
    max_values: int = 1_000_000
    #: The length of any one string, in characters.
    max_string_length: int = 1_000_000
    #: The decimal digits of any one integer (Python's own default limit for
    #: converting text to integers is 4,300).
    max_int_digits: int = 4_300

    def __post_init__(self) -> None:
        for spec in fields(self):
            value = getattr(self, spec.name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigurationError(
                    f"LoadLimits.{spec.name} must be a whole number, 1 or more, got {quote(value)}"
                )
        if self.max_depth > DEPTH_CEILING:
            raise ConfigurationError(
                f"LoadLimits.max_depth can be at most {DEPTH_CEILING}, got {self.max_depth}"
            )


class LimitExceeded(Exception):
    """Raised by :class:`Budget` when what is read passes a limit; carries the message.

    Internal: each loader turns it into a :class:`~agentbridge.Problem` at the line (or
    place) where the limit was passed.
    """


class Budget:
    """What one load has used of its :class:`LoadLimits` so far."""

    __slots__ = ("_int_bits", "limits", "values")

    def __init__(self, limits: LoadLimits | None) -> None:
        if limits is None:
            limits = LoadLimits()
        elif not isinstance(limits, LoadLimits):
            raise ConfigurationError(
                f"limits must be an agentbridge.LoadLimits, got {type(limits).__name__}"
            )
        self.limits = limits
        self.values = 0
        # An integer has at most max_int_digits digits if it has at most this many bits.
        self._int_bits = int(limits.max_int_digits / _DIGITS_PER_BIT)

    def count(self, values: int = 1) -> None:
        """Count ``values`` more values read; raise past ``max_values``."""
        self.values += values
        if self.values > self.limits.max_values:
            raise _exceeded(
                "max_values",
                f"the workflow holds more than {self.limits.max_values:,} values (an alias "
                f"counts as every value it repeats)",
            )

    def depth(self, depth: int) -> None:
        """Check that lists and mappings nested ``depth`` deep are allowed."""
        if depth > self.limits.max_depth:
            raise _exceeded(
                "max_depth", f"lists and mappings nest more than {self.limits.max_depth} deep"
            )

    def string(self, text: str) -> None:
        """Check the length of one string."""
        if len(text) > self.limits.max_string_length:
            raise _exceeded(
                "max_string_length",
                f"a string of {len(text):,} characters is longer than the "
                f"{self.limits.max_string_length:,} allowed",
            )

    def integer_text(self, text: str) -> None:
        """Check the text of an integer before converting it, so no conversion is slow."""
        body = text.lstrip("+-").replace("_", "")
        if body[:2].lower() in ("0x", "0o", "0b") or ":" in body:
            # Binary takes 3.3 characters per decimal digit: longer than 4 is too large
            # whatever the base (the value is checked too), and sexagesimal text costs
            # quadratic time.
            if len(body) > 4 * self.limits.max_int_digits + 8:
                raise self._too_many_digits(f"{len(body):,} characters")
        elif len(body) > self.limits.max_int_digits:
            raise self._too_many_digits(f"{len(body):,} digits")
        elif len(body) > sys.get_int_max_str_digits():
            raise LimitExceeded(
                f"an integer of {len(body):,} digits has more than Python converts "
                f"({sys.get_int_max_str_digits():,}); raise that limit with "
                f"sys.set_int_max_str_digits()"
            )

    def integer(self, value: int) -> None:
        """Check the size of one integer."""
        if value.bit_length() > self._int_bits:
            digits = int(value.bit_length() * _DIGITS_PER_BIT) + 1
            raise self._too_many_digits(f"about {digits:,} digits")

    def _too_many_digits(self, size: str) -> LimitExceeded:
        return _exceeded(
            "max_int_digits",
            f"an integer of {size} has more than the {self.limits.max_int_digits:,} digits allowed",
        )

    def steps(self, count: int) -> None:
        """Check the number of steps."""
        self._at_most("max_steps", count, "the number of steps")

    def size(self, size: int) -> None:
        """Check the size of a file or text, in bytes."""
        self._at_most("max_bytes", size, "the size of the workflow in bytes")

    def _at_most(self, name: str, amount: int, what: str) -> None:
        limit: int = getattr(self.limits, name)
        if amount > limit:
            raise _exceeded(name, f"{what} ({amount:,}) is more than the {limit:,} allowed")


def _exceeded(name: str, problem: str) -> LimitExceeded:
    return LimitExceeded(
        f"{problem}; if this workflow is meant to be this large, raise the limit with "
        f"limits=agentbridge.LoadLimits({name}=...), or --limit {name}=... on the command line"
    )


class _Quoter(reprlib.Repr):
    """``repr`` for messages: short, and safe for any value a workflow may hold."""

    def __init__(self) -> None:
        super().__init__()
        self.maxlevel = 3
        self.maxstring = 80
        self.maxother = 80
        self.maxlong = 40

    def repr_int(self, x: int, level: int) -> str:
        # repr() of an integer of more than 4,300 digits raises ValueError.
        if x.bit_length() > 128:
            return f"an integer of about {int(x.bit_length() * _DIGITS_PER_BIT) + 1:,} digits"
        return repr(x)


_quoter: Final = _Quoter()


def quote(value: object) -> str:
    """``value`` as a message shows it: a short ``repr``, for deep and huge values too."""
    return _quoter.repr(value)
