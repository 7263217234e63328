"""Loading: YAML files, YAML strings and mappings all build the same immutable model."""

from __future__ import annotations

import copy
import dataclasses
import pathlib

import pytest

import agentbridge as ab

from ._helpers import build, shape

TRIAGE = """\
name: triage
inputs: [ticket]
steps:
  - id: fetch
    tool: fetch_ticket
    inputs: {ticket_id: "${inputs.ticket}"}
  - id: classify
    agent: classifier
    inputs: {text: "${steps.fetch.output.body}"}
    timeout: 30
    retries: 2
    retry_delay: 0.5
  - id: store
    function: save_label
    inputs: {label: "${steps.classify.output}"}
    depends_on: [fetch]
outputs:
  label: "${steps.classify.output}"
"""

TRIAGE_DICT = {
    "name": "triage",
    "inputs": ["ticket"],
    "steps": [
        {"id": "fetch", "tool": "fetch_ticket", "inputs": {"ticket_id": "${inputs.ticket}"}},
        {
            "id": "classify",
            "agent": "classifier",
            "inputs": {"text": "${steps.fetch.output.body}"},
            "timeout": 30,
            "retries": 2,
            "retry_delay": 0.5,
        },
        {
            "id": "store",
            "function": "save_label",
            "inputs": {"label": "${steps.classify.output}"},
            "depends_on": ["fetch"],
        },
    ],
    "outputs": {"label": "${steps.classify.output}"},
}


@pytest.fixture
def triage_file(tmp_path: pathlib.Path) -> pathlib.Path:
    path = tmp_path / "triage.yaml"
    path.write_text(TRIAGE, encoding="utf-8")
    return path


def test_yaml_string_builds_the_model() -> None:
    wf = ab.Workflow.from_yaml_string(TRIAGE)

    assert isinstance(wf, ab.Workflow)
    assert wf.name == "triage"
    assert wf.inputs == {"ticket": ab.InputSpec(name="ticket", required=True, default=None)}
    assert isinstance(wf.steps, tuple)
    assert all(isinstance(step, ab.Step) for step in wf.steps)
    assert [step.id for step in wf.steps] == ["fetch", "classify", "store"]
    assert dict(wf.outputs) == {"label": "${steps.classify.output}"}

    fetch, classify, store = wf.steps
    assert (fetch.kind, fetch.target) == ("tool", "fetch_ticket")
    assert (classify.kind, classify.target) == ("agent", "classifier")
    assert (store.kind, store.target) == ("function", "save_label")
    assert dict(fetch.inputs) == {"ticket_id": "${inputs.ticket}"}

    assert (fetch.timeout, fetch.retries, fetch.retry_delay) == (None, 0, 0.0)
    assert (classify.timeout, classify.retries, classify.retry_delay) == (30, 2, 0.5)


def test_depends_on_is_explicit_plus_implied_sorted_and_unique() -> None:
    wf = ab.Workflow.from_yaml_string(TRIAGE)

    assert wf.steps_by_id["fetch"].depends_on == ()
    assert wf.steps_by_id["classify"].depends_on == ("fetch",)
    # "fetch" is explicit, "classify" implied by the expression.
    assert wf.steps_by_id["store"].depends_on == ("classify", "fetch")


def test_steps_by_id_and_lines() -> None:
    wf = ab.Workflow.from_yaml_string(TRIAGE)

    assert set(wf.steps_by_id) == {"fetch", "classify", "store"}
    assert wf.steps_by_id["classify"] is wf.steps[1]
    assert [step.line for step in wf.steps] == [4, 7, 13]


def test_file_and_string_loaders_build_equal_models(triage_file: pathlib.Path) -> None:
    from_path = ab.Workflow.from_yaml(triage_file)
    from_str_path = ab.Workflow.from_yaml(str(triage_file))
    from_text = ab.Workflow.from_yaml_string(TRIAGE, source=str(triage_file))

    assert from_path == from_text
    assert from_str_path == from_path
    assert from_path.source == str(triage_file)
    assert from_text.source == str(triage_file)


def test_mapping_loader_builds_the_same_model() -> None:
    from_text = ab.Workflow.from_yaml_string(TRIAGE)
    from_dict = ab.Workflow.from_dict(TRIAGE_DICT)

    assert shape(from_dict) == shape(from_text)
    assert all(step.line is None for step in from_dict.steps)


def test_named_source_for_strings() -> None:
    wf = ab.Workflow.from_yaml_string(TRIAGE, source="inline.yaml")
    assert wf.source == "inline.yaml"


def test_inputs_as_a_list_are_all_required() -> None:
    wf = build({"id": "a", "function": "f"}, inputs=["x", "y"])
    assert wf.inputs == {
        "x": ab.InputSpec(name="x", required=True, default=None),
        "y": ab.InputSpec(name="y", required=True, default=None),
    }


def test_inputs_as_a_mapping_with_defaults() -> None:
    wf = ab.Workflow.from_yaml_string(
        "name: t\n"
        "inputs:\n"
        "  a: {default: 1}\n"
        "  b: null\n"
        "  c: {}\n"
        "  d: {default: null}\n"
        "  e: {default: [1, 2]}\n"
        "steps:\n"
        "  - id: s\n"
        "    function: f\n"
    )
    assert wf.inputs["a"] == ab.InputSpec(name="a", required=False, default=1)
    assert wf.inputs["b"] == ab.InputSpec(name="b", required=True, default=None)
    assert wf.inputs["c"] == ab.InputSpec(name="c", required=True, default=None)
    assert wf.inputs["d"] == ab.InputSpec(name="d", required=False, default=None)
    assert wf.inputs["e"].default == [1, 2]
    assert not wf.inputs["e"].required


def test_no_inputs_and_no_outputs() -> None:
    wf = build({"id": "a", "function": "f"})
    assert dict(wf.inputs) == {}
    assert dict(wf.outputs) == {}


def test_python_workflows_may_name_the_callable_itself() -> None:
    async def fetch() -> int:
        return 1

    wf = build({"id": "a", "tool": fetch})
    assert wf.steps[0].target is fetch
    assert wf.steps[0].kind == "tool"


def test_models_are_frozen() -> None:
    wf = ab.Workflow.from_yaml_string(TRIAGE)
    step = wf.steps[0]

    with pytest.raises(dataclasses.FrozenInstanceError):
        wf.name = "other"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        step.retries = 5  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        wf.inputs["ticket"].default = 3  # type: ignore[misc]


def test_model_mappings_are_read_only() -> None:
    wf = ab.Workflow.from_yaml_string(TRIAGE)

    with pytest.raises(TypeError):
        wf.inputs["extra"] = ab.InputSpec(name="extra", required=True, default=None)  # type: ignore[index]
    with pytest.raises(TypeError):
        wf.outputs["extra"] = 1  # type: ignore[index]
    with pytest.raises(TypeError):
        wf.steps[0].inputs["extra"] = 1  # type: ignore[index]
    with pytest.raises(TypeError):
        wf.steps_by_id["extra"] = wf.steps[0]  # type: ignore[index]


def test_later_changes_to_the_source_mapping_do_not_leak_in() -> None:
    data = copy.deepcopy(TRIAGE_DICT)
    wf = ab.Workflow.from_dict(data)
    before = shape(wf)

    data["name"] = "changed"
    data["steps"][0]["inputs"]["ticket_id"] = "changed"
    data["steps"][2]["depends_on"].append("classify")
    data["outputs"]["label"] = "changed"

    assert shape(wf) == before
