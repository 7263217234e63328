"""A griffe extension that turns the reST markup of agentbridge's docstrings into Markdown.

mkdocstrings' ``sphinx`` docstring style parses the ``:param:`` / ``:raises:`` fields but
leaves inline roles and directives as text. Before a docstring is parsed this rewrites:

* ``:func:`~agentbridge.run_sync``` and the other Python roles into optional
  cross-references (linked when the API reference documents the target, plain code
  otherwise, never a broken-link warning);
* ``:doc:`/routing``` into a link to that page's title;
* ``.. versionadded::``, ``.. versionchanged::`` and ``.. deprecated::`` into one line;
* ``.. note::`` / ``.. warning::`` blocks into admonitions;
* a paragraph ending in ``::`` (reST's literal block marker) into one ending in ``:``.

It also gives an attribute without a docstring the ``#:`` comment lines above it, the
Sphinx convention the package uses for dataclass fields and instance attributes.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Any

import griffe

_ROLE = re.compile(r":(?:py:)?(func|class|exc|meth|attr|data|mod|obj|const):`(~?)([^`]+)`")
_EXPLICIT_TITLE = re.compile(r"(?P<title>[^<]+)<(?P<target>[^>]+)>")
_DOC = re.compile(r":doc:`/?([^`<]+?)`")
_VERSION = re.compile(
    r"^(?P<indent>[ \t]*)\.\. (?P<kind>versionadded|versionchanged|deprecated):: *(?P<version>\S+)"
    r"(?P<text>[^\n]*)$",
    re.MULTILINE,
)
_ADMONITION = re.compile(
    r"^(?P<indent>[ \t]*)\.\. (?P<kind>note|warning|tip|important):: *(?P<first>[^\n]*)\n"
    r"(?P<body>(?:(?P=indent)[ \t]+[^\n]*\n|[ \t]*\n(?=(?P=indent)[ \t]+\S))*)",
    re.MULTILINE,
)
_LITERAL_MARKER = re.compile(r"(?<=\S)::$", re.MULTILINE)
_VERSION_WORDS = {
    "versionadded": "Added in version",
    "versionchanged": "Changed in version",
    "deprecated": "Deprecated since version",
}


def _public_names() -> frozenset[str]:
    import agentbridge

    return frozenset(agentbridge.__all__)


class SphinxRoles(griffe.Extension):
    """Rewrite reST roles and directives in every docstring of the loaded package."""

    def __init__(self) -> None:
        super().__init__()
        self._public = _public_names()

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        """Rewrite ``obj``'s docstring as soon as the object is created."""
        if obj.docstring is not None:
            obj.docstring.value = self.rewrite(obj.docstring.value, obj)

    def on_attribute_instance(self, *, attr: griffe.Attribute, **kwargs: Any) -> None:
        """Use the ``#:`` comment above an attribute as its docstring."""
        if attr.docstring is not None or attr.lineno is None or attr.filepath is None:
            return
        if isinstance(attr.filepath, list):
            return
        lines = _source_lines(attr.filepath)
        comment: list[str] = []
        index = attr.lineno - 2
        while index >= 0 and lines[index].strip().startswith("#:"):
            comment.insert(0, lines[index].strip()[2:].strip())
            index -= 1
        if comment:
            attr.docstring = griffe.Docstring(
                self.rewrite(" ".join(comment), attr), lineno=index + 2, parent=attr
            )

    def rewrite(self, text: str, obj: griffe.Object) -> str:
        """Return ``obj``'s docstring ``text`` with its reST markup replaced by Markdown."""
        text = _ROLE.sub(lambda match: self._role(match, obj), text)
        text = _DOC.sub(_doc, text)
        text = _VERSION.sub(_version, text)
        text = _ADMONITION.sub(_admonition, text)
        return _LITERAL_MARKER.sub(":", text)

    def _role(self, match: re.Match[str], obj: griffe.Object) -> str:
        _, short, target = match.groups()
        explicit = _EXPLICIT_TITLE.fullmatch(target.strip())
        if explicit is not None:  # reST's `title <target>` form
            title, target = explicit["title"].strip(), explicit["target"].strip()
        target = target.strip().removesuffix("()")
        if explicit is None:
            title = target.rsplit(".", 1)[-1] if short else target
        identifier = self._qualify(target, obj)
        return f'<autoref identifier="{identifier}" optional><code>{title}</code></autoref>'

    def _qualify(self, target: str, obj: griffe.Object) -> str:
        """The identifier the API reference documents ``target`` under, as seen from ``obj``.

        Public names are documented as ``agentbridge.NAME``; a bare member name refers to
        a member of the public class the docstring belongs to.
        """
        if target.split(".", 1)[0] in self._public:
            return f"agentbridge.{target}"
        if "." in target:
            return target
        scope: griffe.Object | None = obj
        while scope is not None:
            if scope.is_class and scope.name in self._public:
                return f"agentbridge.{scope.name}.{target}"
            scope = scope.parent
        return target


@cache
def _source_lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


def _doc(match: re.Match[str]) -> str:
    page = match.group(1).strip().strip("/")
    return f'<autoref identifier="{page}" optional>{page}</autoref>'


def _version(match: re.Match[str]) -> str:
    words = _VERSION_WORDS[match["kind"]]
    return f"{match['indent']}*{words} {match['version']}.*{match['text']}"


def _admonition(match: re.Match[str]) -> str:
    indent = match["indent"]
    lines = [match["first"], *match["body"].splitlines()]
    body = "\n".join(
        f"{indent}    {line.strip()}" if line.strip() else "" for line in lines if line is not None
    )
    return f"{indent}!!! {match['kind']}\n{body.rstrip()}\n"
