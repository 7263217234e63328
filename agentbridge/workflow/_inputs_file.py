"""A run's inputs read from a file (``agentbridge run --inputs FILE``), as safely as a
workflow: the same YAML reader (safe tags only, no duplicate keys), the same limits."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

from .._exceptions import Problem, WorkflowValidationError
from ._data import DataRefused, copy_data
from ._limits import Budget, LoadLimits

__all__ = ("read_inputs_file",)


def read_inputs_file(
    path: str | os.PathLike[str], *, limits: LoadLimits | None = None
) -> dict[str, Any]:
    """The inputs in the file at ``path``: a mapping of input names to values, in JSON
    (a ``.json`` file) or YAML (anything else), within ``limits``.

    :param limits: the most the file may hold (default: :class:`LoadLimits` ())
    :raises WorkflowValidationError: if the file cannot be read, is malformed, passes a
        limit, or does not hold a mapping with string keys

    .. versionadded:: 0.2
    """
    # The reader brings PyYAML: loaded when a file is read, not when the package is.
    from ._loading import read_file
    from ._yaml import YamlRefused, read_yaml

    source = os.fspath(path)
    budget = Budget(limits)
    text = read_file(source, budget, "the inputs file")
    try:
        if source.endswith(".json"):
            data = copy_data(_json(text), budget)
        else:
            data, _ = read_yaml(text, budget)
    except YamlRefused as exc:
        raise WorkflowValidationError([exc.problem], source=source) from None
    except (DataRefused, ValueError) as exc:
        raise WorkflowValidationError([Problem(str(exc))], source=source) from None
    if not isinstance(data, Mapping) or not all(isinstance(key, str) for key in data):
        raise WorkflowValidationError(
            [Problem("an inputs file holds a mapping of input names to values, such as {n: 3}")],
            source=source,
        )
    return dict(data)


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except RecursionError:
        raise ValueError("invalid JSON: it nests too deeply") from None
    except ValueError as exc:  # json.JSONDecodeError, or an integer too long
        raise ValueError(f"invalid JSON: {exc}") from None
