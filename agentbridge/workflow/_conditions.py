"""``when:`` conditions: a small grammar, parsed once when the workflow is built.

The whole grammar (whitespace between the parts is free)::

    condition := ["not"] REF                     truthiness
               | REF ("==" | "!=") LITERAL
               | REF ["not"] "in" "[" [LITERAL ("," LITERAL)*] "]"
    REF       := a ${...} expression, as in inputs (same grammar, same allow-list)
    LITERAL   := 'text' | "text" | an integer | a decimal | true | false | null

Nothing is evaluated as code: there is no ``eval``, and no method of a value runs.
Truthiness and equality are decided by the types of :mod:`builtins` only, read through
their own methods (``str.__eq__``, ``list.__len__``...), so an object's ``__eq__``,
``__bool__`` or ``__len__`` never runs: an object of any other type is true, and
equal to no literal. ``true`` equals only ``True`` (not ``1``), as in JSON.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

from .._exceptions import ExpressionError
from ._expressions import Reference, parse_reference

__all__ = ("Condition", "parse_condition")

Operator = Literal["truthy", "falsy", "==", "!=", "in", "not in"]

_SPACE = re.compile(r"\s*")  # matches everywhere, if only the empty string
_REFERENCE = re.compile(r"\$\{([^}]*)\}")
_OPERATOR = re.compile(r"(==|!=|not\s+in(?![\w])|in(?![\w]))")
_NOT = re.compile(r"not(?![\w])")
_LITERAL = re.compile(
    r"'([^']*)'|\"([^\"]*)\"|(-?\d{1,100}(?:\.\d{1,100})?(?:[eE][-+]?\d{1,3})?)(?![\w.])"
    r"|(true|false|null)(?![\w])"
)
_WORDS: Final = {"true": True, "false": False, "null": None}
_SIZED: Final = (str, list, tuple, dict, set, frozenset, bytes)

GRAMMAR: Final = (
    "write ${...}, not ${...}, or ${...} == / != a literal, or ${...} in / not in "
    "[literal, ...]; a literal is 'text', \"text\", a number, true, false or null"
)


@dataclass(frozen=True)
class Condition:
    """A parsed ``when:`` condition."""

    #: The value it tests.
    reference: Reference
    operator: Operator
    #: The literal of ``==``/``!=``, or the list of ``in``.
    literals: tuple[Any, ...] = ()
    #: What was written.
    text: str = ""

    def holds(self, inputs: Mapping[str, Any], outputs: Mapping[str, Any]) -> bool:
        """Whether the condition is true for the run's inputs and step outputs.

        :raises ExpressionError: if the expression refers to something missing
        """
        value = self.reference.resolve(inputs, outputs)
        operator = self.operator
        if operator == "truthy":
            return truthy(value)
        if operator == "falsy":
            return not truthy(value)
        found = any(equal(value, literal) for literal in self.literals)
        return found if operator in ("==", "in") else not found


def parse_condition(text: str) -> Condition:
    """The condition ``text`` describes.

    :raises ExpressionError: naming what is wrong and the grammar
    """
    position = _skip(text, 0)
    negated = _NOT.match(text, position)
    if negated is not None:
        position = _skip(text, negated.end())
    reference_match = _REFERENCE.match(text, position)
    if reference_match is None:
        raise ExpressionError(
            f"condition {text!r} must start with a ${{...}} expression; {GRAMMAR}"
        )
    reference = parse_reference(reference_match.group(1), reference_match.group(0))
    if reference.root in ("item", "index"):
        raise ExpressionError(
            f"condition {text!r}: {reference.text} is not defined in when:, which decides "
            f"once for the whole step, before its items run"
        )
    position = _skip(text, reference_match.end())
    if position == len(text):
        return Condition(reference, "falsy" if negated else "truthy", (), text)
    operator_match = _OPERATOR.match(text, position)
    if negated is not None or operator_match is None:
        rest = text[position:]
        raise ExpressionError(f"condition {text!r}: cannot read {rest!r}; {GRAMMAR}")
    operator: Operator = " ".join(operator_match.group(1).split())  # type: ignore[assignment]
    position = _skip(text, operator_match.end())
    if operator in ("==", "!="):
        literal, position = _literal(text, position)
        literals: tuple[Any, ...] = (literal,)
    else:
        literals, position = _list(text, position)
    position = _skip(text, position)
    if position != len(text):
        raise ExpressionError(
            f"condition {text!r}: cannot read {text[position:]!r} after the comparison; "
            f"a condition compares one expression (no and/or)"
        )
    return Condition(reference, operator, literals, text)


def _skip(text: str, position: int) -> int:
    """The position after the whitespace at ``position``."""
    match = _SPACE.match(text, position)
    return match.end() if match is not None else position


def _literal(text: str, position: int) -> tuple[Any, int]:
    match = _LITERAL.match(text, position)
    if match is None:
        rest = text[position:] or "nothing"
        raise ExpressionError(
            f"condition {text!r}: expected a literal, got {rest!r}; quote text "
            f"('bug'), and write true, false or null in lower case"
        )
    single, double, number, word = match.groups()
    if number is not None:
        value: Any = float(number) if any(c in number for c in ".eE") else int(number)
    elif word is not None:
        value = _WORDS[word]
    else:
        value = single if single is not None else double
    return value, match.end()


def _list(text: str, position: int) -> tuple[tuple[Any, ...], int]:
    if not text.startswith("[", position):
        raise ExpressionError(f"condition {text!r}: `in` takes a list such as ['a', 'b']")
    position = _skip(text, position + 1)
    items: list[Any] = []
    while not text.startswith("]", position):
        if items:
            if not text.startswith(",", position):
                raise ExpressionError(
                    f"condition {text!r}: separate the list's literals with commas and "
                    f"close it with ]"
                )
            position = _skip(text, position + 1)
        literal, position = _literal(text, position)
        items.append(literal)
        position = _skip(text, position)
    return tuple(items), position + 1


def truthy(value: object) -> bool:
    """Python's truthiness for built-in types, read through their own methods; any
    other object is true."""
    if value is None or value is False:
        return False
    if isinstance(value, bool):
        return True
    if isinstance(value, int):
        return int.__bool__(value)
    if isinstance(value, float):
        return float.__bool__(value)
    for base in _SIZED:
        if isinstance(value, base):
            size: Any = base.__len__
            return bool(size(value) > 0)
    return True


def equal(value: object, literal: object) -> bool:
    """Whether ``value`` equals a literal of the grammar, by built-in types only."""
    if literal is None or isinstance(literal, bool):
        return value is literal
    if isinstance(literal, str):
        return isinstance(value, str) and str.__eq__(value, literal)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    for left, right in ((value, literal), (literal, value)):
        same = (float if isinstance(left, float) else int).__eq__(left, right)  # type: ignore[operator]
        if same is not NotImplemented:
            return bool(same)
    return False
