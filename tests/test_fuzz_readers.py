"""Schema-based fuzzing of every reader of a user-editable document: the experiment spec, a checkpoint's
task.json and an export's export.json. Documents are real ones with random mutations at random
places (a value replaced by any JSON value, a key dropped, a key added), so the deep validators are
reached, not only the first type check. The contract: a document is accepted, or refused with one
EelbertError — never another exception (a traceback for the user)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eelbert_cli.core.data.tasks.record import check_head_matches, read_task_record
from eelbert_cli.core.errors import EelbertError
from eelbert_cli.core.spec import apply_overrides, load_yaml, read_spec_mapping, validate_spec

EXPERIMENTS = Path(__file__).resolve().parent.parent / "experiments"
SPECS = ["eelbert-tiny.yaml", "gpu/uno-eelbert-hash-x4.yaml", "distill/eelbert-tiny-kd-aug8.yaml", "curve/eelbert-tiny-100m.yaml"]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.floats(allow_nan=True) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)


def paths_of(document, prefix=()) -> list[tuple]:
    """Every key path into nested dicts and lists."""
    found = [prefix]
    if isinstance(document, dict):
        for key, value in document.items():
            found += paths_of(value, (*prefix, key))
    elif isinstance(document, list):
        for index, value in enumerate(document):
            found += paths_of(value, (*prefix, index))
    return found


@st.composite
def mutated(draw, document: dict, rounds: int = 3):
    """``document`` with up to ``rounds`` random edits at random places."""
    document = json.loads(json.dumps(document))
    for _ in range(draw(st.integers(1, rounds))):
        path = draw(st.sampled_from(paths_of(document)))
        if not path:
            continue
        parent = document
        for part in path[:-1]:
            parent = parent[part]
        action = draw(st.sampled_from(["replace", "drop", "add"]))
        if action == "replace":
            parent[path[-1]] = draw(json_values)
        elif action == "drop" and isinstance(parent, dict):
            del parent[path[-1]]
        elif isinstance(parent, dict):
            parent[draw(st.text(min_size=1, max_size=10))] = draw(json_values)
    return document


def resolved(spec: str) -> dict:
    return json.loads(json.dumps(apply_overrides(read_spec_mapping(EXPERIMENTS / spec), [])))


@pytest.mark.parametrize("spec", SPECS)
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_a_mutated_spec_is_accepted_or_refused_with_one_message(spec, data):
    document = data.draw(mutated(resolved(spec)))
    try:
        validate_spec(document, source="fuzz")
    except EelbertError:
        pass


@settings(max_examples=300, deadline=None)
@given(text=st.text(max_size=200))
def test_spec_text_that_is_not_yaml_is_refused_with_one_message(text, tmp_path_factory):
    path = tmp_path_factory.mktemp("spec") / "spec.yaml"
    path.write_text(text, encoding="utf-8")
    try:
        raw = read_spec_mapping(path)
        validate_spec(apply_overrides(raw, []), source=str(path))
    except EelbertError:
        pass


@settings(max_examples=300, deadline=None)
@given(override=st.text(max_size=40))
def test_any_override_is_accepted_or_refused_with_one_message(override):
    try:
        validate_spec(apply_overrides(resolved("eelbert-tiny.yaml"), [override]), source="fuzz")
    except EelbertError:
        pass


SOUND_RECORD = {"task": "rotten-tomatoes", "type": "classification", "labels": ["rotten", "fresh"], "max_seq_len": 64,
                "selected": {"lr": 0.001, "epochs": 3, "batch_size": 32}, "seed": 0}


@settings(max_examples=1500, deadline=None)
@given(data=st.data(), num_labels=st.integers(1, 4))
def test_a_mutated_task_record_is_accepted_or_refused_with_one_message(data, num_labels, tmp_path_factory):
    checkpoint = tmp_path_factory.mktemp("checkpoint")
    document = data.draw(mutated(SOUND_RECORD) | json_values)
    (checkpoint / "task.json").write_text(json.dumps(document), encoding="utf-8")
    try:
        record = read_task_record(checkpoint, required=False)
        check_head_matches(record, num_labels, checkpoint)
    except EelbertError:
        return
    assert isinstance(record, dict)  # what every caller reads with .get


def test_load_yaml_is_the_safe_loader():
    with pytest.raises(yaml.YAMLError):
        load_yaml("!!python/object/apply:os.system ['true']")


# ----------------------------------------------------------------------------------- export.json
onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def shipped_export(tmp_path_factory) -> Path:
    """uno-eelbert-sentiment exported once (int8: the smallest graph, the fastest to load)."""
    from typer.testing import CliRunner

    from eelbert_cli.cli import app

    target = tmp_path_factory.mktemp("export") / "uno"
    result = CliRunner().invoke(app, ["export", "uno-eelbert-sentiment", "-o", str(target), "--quantize", "int8", "--max-seq-len", "32"])
    assert result.exit_code == 0, result.stderr
    return target


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_a_mutated_export_is_refused_with_one_message_or_predicts(shipped_export, tmp_path, data):
    from eelbert_cli.core.export.runtime import ExportedModel

    sound = json.loads((shipped_export / "export.json").read_text())
    copy = tmp_path / "copy"
    if not copy.exists():
        shutil.copytree(shipped_export, copy)
    (copy / "export.json").write_text(json.dumps(data.draw(mutated(sound))), encoding="utf-8")
    try:
        model = ExportedModel.load(copy)
    except EelbertError:
        return
    predictions = model.predict(["a gorgeous, witty film", "a dull mess"])
    assert len(predictions) == 2
