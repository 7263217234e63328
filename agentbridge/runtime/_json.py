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

__all__ = ("NotJson", "dump", "key_text", "load")

_SCALARS = frozenset({str, int, bool, type(None)})


class NotJson(Exception):
    """Why a value is not exactly JSON (an internal signal, never raised to users)."""


def _check(value: Any) -> None:
    # Recursive: cheaper than a stack of our own for the small values steps pass; a
    # value nested beyond the recursion limit is refused by dump. Scalars in a list or
    # dict are checked in place: a call each would double the cost of a flat value.
    kind = type(value)
    if kind in _SCALARS:
        return
    if kind is float:
        if not math.isfinite(value):
            raise NotJson(f"it holds the float {value!r}, which JSON cannot represent")
    elif kind is list:
        for item in value:
            if type(item) not in _SCALARS:
                _check(item)
    elif kind is dict:
        for key, item in value.items():
            if type(key) is not str:
                kind_name = type(key).__name__
                raise NotJson(f"it has the {kind_name} key {key!r}; JSON keys are str")
            if type(item) not in _SCALARS:
                _check(item)
    else:
        raise NotJson(f"it holds a {kind.__qualname__}, which is not a JSON type")


# Made once, and without the cycle check: a checked value has no cycle (_check would
# have recursed forever), and json.dumps given any option builds a new encoder per call.
_dumps = json.JSONEncoder(check_circular=False).encode


def dump(value: Any, *, sort_keys: bool = False) -> str:
    """``value`` as JSON text, or :class:`NotJson` saying why it cannot be.

    :raises NotJson: if ``value`` is not exactly JSON, or nests too deep to encode
    """
    try:
        _check(value)
        # Checked, so json.dumps's own fast path is right: no tuple or NaN is left.
        return json.dumps(value, sort_keys=True) if sort_keys else _dumps(value)
    except RecursionError:
        raise NotJson("it nests too deep to encode") from None
    except ValueError as exc:  # an int past sys.get_int_max_str_digits()
        raise NotJson(f"it cannot be written as text ({exc})") from None


def key_text(value: Any) -> str:
    """A text that stands for exactly-JSON ``value`` and nothing else, for hashing: the
    same for equal values of the same types, different for any other.

    It is ``ascii(value)``, a quarter of the cost of its JSON for a small value (json
    builds its encoder on every call): for these types it is a Python literal read
    back as one value only (quotes and escapes are unambiguous, ``1``, ``1.0`` and
    ``True`` differ, floats are written exactly), in the order a dict was built, as
    JSON's is. ``ascii`` rather than ``repr``: it escapes every
    character beyond ASCII, so the text does not depend on the Unicode database of the
    running Python.

    :raises NotJson: if ``value`` is not exactly JSON, nests too deep, or holds an int
        too long to write
    """
    try:
        _check(value)
        return ascii(value)
    except RecursionError:
        raise NotJson("it nests too deep to encode") from None
    except ValueError as exc:
        raise NotJson(f"it cannot be written as text ({exc})") from None


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _finite(text: str) -> float:
    # A literal too large for a float (1e400) reads as inf, which is no JSON value.
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"{text} is too large for a float")
    return value


# Made once: json.loads builds a new decoder on every call given an option.
_DECODER = json.JSONDecoder(parse_constant=_no_constant, parse_float=_finite)


def load(text: object) -> Any:
    """The plain data of JSON ``text``.

    :raises ValueError: if ``text`` is not a ``str`` of strict JSON (no NaN, no
        Infinity)
    """
    if type(text) is not str:
        raise ValueError(f"a {type(text).__name__} where JSON text should be")
    try:
        # What dump writes has no whitespace around it, so raw_decode reads it whole
        # without decode's two regular-expression matches; anything else takes decode,
        # which allows that whitespace and says what is wrong.
        try:
            value, end = _DECODER.raw_decode(text)
        except ValueError:
            end = -1
        return value if end == len(text) else _DECODER.decode(text)
    except RecursionError:
        raise ValueError("JSON nested too deep to read") from None
