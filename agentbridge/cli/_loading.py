"""What ``run`` and ``validate`` take from the command line: inputs and modules."""

from __future__ import annotations

import importlib
import json
import os
import reprlib
import sys
from collections.abc import Mapping, Sequence

import click
import yaml

from ._errors import UserError, describe

__all__ = ("import_modules", "merge_inputs", "parse_inputs", "parse_json", "parse_value")

# What a YAML scalar can become; anything else (a date, a list, a mapping) stays a string,
# so ``--input`` never turns text into a structure the user did not ask for.
_SCALAR_TYPES = (str, int, float, bool, type(None))


def parse_value(text: str) -> object:
    """The value of ``--input KEY=TEXT``: ``TEXT`` read as a YAML scalar.

    ``3`` is an int, ``2.5`` a float, ``true`` a bool, ``null`` None, ``hello`` and
    ``'3'`` strings; an empty value is the empty string.

    :raises ValueError: if ``TEXT`` names a YAML type it does not fit (``!!float abc``)
    """
    if not text.strip():
        return text
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    except (ValueError, TypeError, LookupError, AttributeError, RecursionError) as exc:
        # PyYAML's constructors assume text that fits its tag: "!!float abc" is a
        # ValueError, "!!bool maybe" a KeyError, "!!timestamp x" an AttributeError;
        # nesting deeper than the recursion limit a RecursionError.
        raise ValueError(
            f"{reprlib.repr(text)} is not a value YAML can read (a tag it does not fit, a "
            f"number too long, or nesting too deep); quote it to pass it as a string"
        ) from exc
    return value if isinstance(value, _SCALAR_TYPES) else text


def parse_json(text: str) -> object:
    """The value of ``--input-json KEY=TEXT``: ``TEXT`` read as JSON.

    :raises ValueError: if ``TEXT`` is not JSON
    """
    try:
        return json.loads(text)
    except RecursionError:
        raise ValueError("it is not a JSON value: it nests too deeply") from None
    except ValueError as exc:  # json.JSONDecodeError, or an integer too long
        raise ValueError(
            f"{reprlib.repr(text)} is not a JSON value ({exc}); quote the whole of it for "
            f'the shell, such as --input-json \'tags=["a", "b"]\''
        ) from None


def parse_inputs(
    ctx: click.Context, param: click.Parameter, values: Sequence[str]
) -> Mapping[str, object]:
    """The click callback of ``--input`` and ``--input-json``: ``KEY=VALUE`` items into a
    mapping, each value read as a YAML scalar or as JSON."""
    as_json = param.name == "json_inputs"
    option = "--input-json" if as_json else "--input"
    inputs: dict[str, object] = {}
    for item in values:
        key, equals, text = item.partition("=")
        key = key.strip()
        if not equals or not key:
            example = "tags=[1,2]" if as_json else "ticket=42"
            raise click.BadParameter(
                f"{item!r} is not KEY=VALUE; write it like {option} {example}", ctx, param
            )
        if key in inputs:
            raise click.BadParameter(f"input {key!r} is given twice", ctx, param)
        try:
            inputs[key] = parse_json(text) if as_json else parse_value(text)
        except ValueError as exc:
            raise click.BadParameter(f"input {key!r}: {exc}", ctx, param) from exc
    return inputs


def merge_inputs(
    from_file: Mapping[str, object],
    scalars: Mapping[str, object],
    values: Mapping[str, object],
) -> dict[str, object]:
    """The run's inputs: those of ``--inputs FILE``, then ``--input`` and ``--input-json``,
    which override the file's but not each other.

    :raises UserError: for an input given by both ``--input`` and ``--input-json``
    """
    both = sorted(set(scalars) & set(values))
    if both:
        raise UserError(
            f"input {both[0]!r} is given by both --input and --input-json; give it once"
        )
    return {**from_file, **scalars, **values}


def import_modules(names: Sequence[str]) -> None:
    """Import each module of ``--import``, so it registers its steps.

    The current directory comes first on ``sys.path``, as with ``python -m``, so a
    project's own modules import from its root.
    """
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    for name in names:
        _import(name)


def _import(name: str) -> None:
    if name.endswith(".py") or os.sep in name or "/" in name:
        dotted = name.removesuffix(".py").replace(os.sep, ".").replace("/", ".")
        raise UserError(
            f"--import takes a module name, not a file path: try --import {dotted.strip('.')}"
        )
    try:
        importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and (name == exc.name or name.startswith(f"{exc.name}.")):
            raise UserError(
                f"cannot import module {name!r} given to --import: there is no module"
                f" {exc.name!r} in the current directory or on sys.path"
            ) from exc
        raise UserError(f"importing module {name!r} failed: {describe(exc)}") from exc
    except Exception as exc:
        raise UserError(f"importing module {name!r} failed: {describe(exc)}") from exc
