"""Exactly-JSON values: the only thing a run store holds.

A value is stored only if it is made of ``dict`` (with ``str`` keys), ``list``,
``str``, ``int``, finite ``float``, ``bool`` and ``None``, exactly those types: a tuple
would come back as a list, an ``int`` key as a string, NaN not at all, so a resumed run
would see something else than the first. Strings are written with ``\\u`` escapes for
everything beyond ASCII, so a lone surrogate (common in LLM output) survives the trip.
Reading never makes anything but those types: no hook, no class named in the data.
"""

from __future__ import annotations

import json
import math
from typing import Any

__all__ = ("NotJson", "dump", "load")

_SCALARS = (str, int, bool, type(None))


class NotJson(Exception):
    """Why a value is not exactly JSON (an internal signal, never raised to users)."""


def _check(value: Any) -> None:
    stack = [value]
    while stack:
        item = stack.pop()
        kind = type(item)
        if kind in _SCALARS:
            continue
        if kind is float:
            if not math.isfinite(item):
                raise NotJson(f"it holds the float {item!r}, which JSON cannot represent")
        elif kind is list:
            stack.extend(item)
        elif kind is dict:
            for key in item:
                if type(key) is not str:
                    raise NotJson(f"it has a {type(key).__name__} key {key!r}; JSON keys are str")
            stack.extend(item.values())
        else:
            raise NotJson(f"it holds a {kind.__qualname__}, which is not a JSON type")


def dump(value: Any, *, sort_keys: bool = False) -> str:
    """``value`` as JSON text, or :class:`NotJson` saying why it cannot be.

    :raises NotJson: if ``value`` is not exactly JSON, or nests too deep to encode
    """
    _check(value)
    try:
        return json.dumps(value, allow_nan=False, separators=(",", ":"), sort_keys=sort_keys)
    except RecursionError:
        raise NotJson("it nests too deep to encode") from None


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def load(text: object) -> Any:
    """The plain data of JSON ``text``.

    :raises ValueError: if ``text`` is not a ``str`` of strict JSON (no NaN, no
        Infinity)
    """
    if type(text) is not str:
        raise ValueError(f"a {type(text).__name__} where JSON text should be")
    try:
        return json.loads(text, parse_constant=_no_constant)
    except RecursionError:
        raise ValueError("JSON nested too deep to read") from None
