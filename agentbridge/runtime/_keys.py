"""Input keys: the hash that says a stored step may stand for running it now.

A key is the SHA-256 of the text of the step's target and version, a newline (never in
that text, which is ASCII with escapes), then the text of its evaluated inputs (see
:func:`._json.key_text`), in the order the step declares them: unambiguous. The hash of
the first part is made once per step, when its plan is built, and copied for each key.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

from . import _json

if TYPE_CHECKING:
    from ..workflow import Step

__all__ = ("Prefix", "input_key", "prefix")

#: The hash fed with a step's target and version, ready to be copied.
Prefix = Any  # hashlib's HASH has no public type


def prefix(step: Step) -> Prefix:
    """The hash of the part of ``step``'s keys its inputs do not change."""
    text = _json.key_text([step.target_name, step.version])
    return hashlib.sha256(f"{text}\n".encode())


def input_key(start: Prefix, kwargs: Any) -> str | None:
    """The input key of a step whose :func:`prefix` is ``start``, run with ``kwargs``,
    or ``None`` if they are not JSON."""
    try:
        text = _json.key_text(kwargs)
    except _json.NotJson:
        return None
    # The text is ASCII, so its bytes after the prefix's are those of the whole text.
    digest = start.copy()
    digest.update(text.encode())
    key: str = digest.hexdigest()
    return key
