"""What a name is: one definition for step ids, input names and the names expressions read.

A name is a Python identifier (:meth:`str.isidentifier`: Unicode letters such as ``αβ``,
``分类`` or ``ñandú`` included), so every id and input a workflow may declare can be
referenced in ``${...}``, and an expression can name nothing a workflow could not
declare. A step id may not be a Python keyword either (``class``, ``if``...).
"""

from __future__ import annotations

import keyword

__all__ = ("NAME_CHARACTERS", "is_name", "is_step_id", "step_id_problem")

#: A regular expression for the characters of a name in an expression; what it matches
#: is then checked with :func:`is_name`. It takes every character but the delimiters of
#: the grammar, so a name is never cut short at a character ``\\w`` does not match (a
#: combining accent, say).
NAME_CHARACTERS = r"[^\s.\[\]'\"${}=!,]+"


def is_name(value: object) -> bool:
    """Whether ``value`` is a name: a str that is a Python identifier."""
    return isinstance(value, str) and value.isidentifier()


def is_step_id(value: object) -> bool:
    """Whether ``value`` can be a step id: a name that is not a Python keyword."""
    return is_name(value) and not keyword.iskeyword(value)  # type: ignore[arg-type]


def step_id_problem(value: str) -> str:
    """Why ``value`` cannot be a step id, and the fix."""
    if keyword.iskeyword(value):
        return (
            f"step id {value!r} is a Python keyword, which cannot be an id; choose "
            f"another, such as {value + '_'!r}"
        )
    return (
        f"step id {value!r} must be an identifier (letters, digits and underscores, not "
        f"starting with a digit), such as fetch_ticket"
    )
