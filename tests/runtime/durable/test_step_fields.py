"""The step fields of durable runs, ``version`` and ``persist``, in YAML and in Python."""

from __future__ import annotations

import pytest

import agentbridge as ab

from ...workflow._helpers import yaml_workflow


def test_version_and_persist_are_read_from_yaml() -> None:
    workflow = yaml_workflow(
        """\
        name: fields
        steps:
          - {id: a, function: f, version: 3}
          - {id: b, function: f, version: "2024-06", persist: false}
          - {id: c, function: f}
        """
    )
    a, b, c = workflow.steps
    assert (a.version, a.persist) == ("3", True)
    assert (b.version, b.persist) == ("2024-06", False)
    assert (c.version, c.persist) == (None, True)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("version", True, "version must be a string or a whole number, got True"),
        ("version", [1], "version must be a string or a whole number"),
        ("persist", "no", "persist must be true or false, got 'no'"),
    ],
)
def test_bad_values_are_validation_errors(field: str, value: object, message: str) -> None:
    with pytest.raises(ab.WorkflowValidationError, match=message):
        ab.Workflow.from_dict({"name": "w", "steps": [{"id": "a", "function": "f", field: value}]})
