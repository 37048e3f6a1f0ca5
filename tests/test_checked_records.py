"""What a fine-tuned checkpoint says about itself is checked before anyone acts on it: task.json's
fields (evaluate, predict, export), a teacher's labels matched by name, a headless or chance-level
teacher refused, a cut teacher cache labelled again (issue 22, "silently wrong" and "tracebacks")."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from safetensors.torch import load_file, save_file
from typer.testing import CliRunner

from eelbert_cli.cli import app
from eelbert_cli.core.data.tasks import load_custom_task
from eelbert_cli.core.data.tasks.record import label_order, task_record_problems
from eelbert_cli.core.errors import EelbertError
from eelbert_cli.core.finetuning.task_distillation import teacher_targets
from eelbert_cli.core.spec import FinetuneSpec
from tests.conftest import sentiment_files, spec_file

runner = CliRunner()
TASK = "toy-sentiment"
GRID = {"lr": [3e-3], "epochs": [4], "batch_size": [16], "seeds": [0]}


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, dict]:
    """One fine-tuned classifier of the toy task (well above chance), shared by the tests: (checkpoint, task)."""
    root = tmp_path_factory.mktemp("teacher")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("EELBERT_CACHE", str(root / "cache"))
        task = sentiment_files(root, rows=240)
        result = runner.invoke(app, ["finetune", str(spec_file(root, "teacher", task=task, max_seq_len=32, grid=GRID))])
        assert result.exit_code == 0, result.stderr
    return root / "teacher" / "finetuned" / TASK, task


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("EELBERT_CACHE", str(tmp_path / "cache"))


def copy_with(checkpoint: Path, target: Path, **record_changes) -> Path:
    shutil.copytree(checkpoint, target)
    record = json.loads((target / "task.json").read_text())
    (target / "task.json").write_text(json.dumps({**record, **record_changes}))
    return target


def swap_classifier_rows(checkpoint: Path) -> None:
    """The same classifier with its two outputs in the other order."""
    weights = load_file(str(checkpoint / "model.safetensors"))
    for key in ("classifier.weight", "classifier.bias"):
        weights[key] = weights[key].flip(0).contiguous()
    save_file(weights, str(checkpoint / "model.safetensors"), metadata={"format": "pt"})


def distil_from(tmp_path: Path, task: dict, teacher: Path):
    spec = spec_file(tmp_path, "student", task=task, max_seq_len=32, grid=GRID, teacher=str(teacher), distill={"alpha": 0.5})
    return runner.invoke(app, ["finetune", str(spec)])


# ----------------------------------------------------------------------------------- task.json
def test_a_sound_record_has_no_problems_and_each_broken_field_is_named():
    sound = {"task": "x", "type": "classification", "labels": ["a", "b"], "max_seq_len": 64}
    assert task_record_problems(sound) == []
    broken = {"labels": [1, 2]}, {"max_seq_len": "64"}, {"max_seq_len": 1}, {"type": "ranking"}, {"task": None}, {"labels": ["a", "a"]}
    for change in broken:
        problems = task_record_problems({**sound, **change})
        assert len(problems) == 1 and f"'{next(iter(change))}'" in problems[0], change
    assert task_record_problems({**sound, "type": "regression", "labels": []}) == []  # a regression has no label names


@pytest.mark.parametrize("command", ["evaluate", "predict", "export"])
@pytest.mark.parametrize("damage", [
    {"labels": [0, 1]}, {"max_seq_len": "long"}, {"type": "ranking"}, {"labels": ["rotten", "fresh", "meh"]},
])
def test_a_damaged_task_record_is_one_message_naming_the_file(trained, tmp_path, command, damage):
    checkpoint = copy_with(trained[0], tmp_path / "damaged", **damage)
    arguments = {"evaluate": [], "predict": ["a good film"], "export": ["-o", str(tmp_path / "export")]}[command]
    result = runner.invoke(app, [command, str(checkpoint), *arguments])
    assert result.exit_code == 2, (result.stdout, result.stderr, result.exception)
    message = " ".join(result.stderr.split())
    assert "task.json" in message and "Traceback" not in message
    assert not (tmp_path / "export").exists()


def test_a_list_valued_task_record_is_refused(trained, tmp_path):
    checkpoint = tmp_path / "listed"
    shutil.copytree(trained[0], checkpoint)
    (checkpoint / "task.json").write_text("[1, 2]")
    result = runner.invoke(app, ["predict", str(checkpoint), "a good film"])
    assert result.exit_code == 2 and "should hold a JSON object" in " ".join(result.stderr.split())


def test_evaluate_matches_labels_by_name(trained, tmp_path):
    original, _ = trained
    reordered = copy_with(original, tmp_path / "reordered", labels=["pos", "neg"])  # the task's ids are sorted: neg, pos
    swap_classifier_rows(reordered)
    scores = [json.loads(runner.invoke(app, ["evaluate", str(path), "--json"]).stdout)["metrics"] for path in (original, reordered)]
    assert scores[0]["accuracy"] > 80 and scores[0] == pytest.approx(scores[1])


# ----------------------------------------------------------------------------------- teachers
def test_label_order_maps_names_and_refuses_other_names():
    assert label_order(["pos", "neg"], ["neg", "pos"], "t") == [1, 0]
    assert label_order(["neg", "pos"], ["neg", "pos"], "t") == [0, 1]
    with pytest.raises(EelbertError, match="must be the same names"):
        label_order(["yes", "no"], ["neg", "pos"], "t")


def test_a_teacher_with_its_labels_in_another_order_teaches_the_same_targets(trained, tmp_path):
    original, task = trained
    reordered = copy_with(original, tmp_path / "reordered", labels=["pos", "neg"])
    swap_classifier_rows(reordered)
    data = load_custom_task(task)
    settings = [FinetuneSpec(teacher=str(path), max_seq_len=32, distill={"alpha": 0.5}) for path in (original, reordered)]
    targets = [teacher_targets(each, data) for each in settings]
    np.testing.assert_allclose(targets[0].train, targets[1].train, atol=1e-5)
    assert targets[0].dev_score == pytest.approx(targets[1].dev_score) and targets[0].dev_score > 80


def test_a_teacher_with_other_label_names_is_refused(trained, tmp_path):
    original, task = trained
    result = distil_from(tmp_path, task, copy_with(original, tmp_path / "renamed", labels=["yes", "no"]))
    assert result.exit_code == 2 and "must be the same names" in " ".join(result.stderr.split())


def test_a_headless_teacher_is_refused(trained, tmp_path):
    from transformers import BertConfig, BertModel

    headless = tmp_path / "encoder-only"
    config = BertConfig(vocab_size=64, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32)
    BertModel(config).save_pretrained(headless)
    result = distil_from(tmp_path, trained[1], headless)
    message = " ".join(result.stderr.split())
    assert result.exit_code == 2 and "has no trained classifier head (architectures: BertModel)" in message


def test_a_teacher_at_chance_is_refused(trained, tmp_path):
    original, task = trained
    constant = tmp_path / "constant"
    shutil.copytree(original, constant)
    weights = load_file(str(constant / "model.safetensors"))
    weights["classifier.weight"] = weights["classifier.weight"] * 0
    weights["classifier.bias"] = weights["classifier.bias"] * 0 + weights["classifier.bias"].new_tensor([1.0, 0.0])  # always "neg"
    save_file(weights, str(constant / "model.safetensors"), metadata={"format": "pt"})
    result = distil_from(tmp_path, task, constant)
    message = " ".join(result.stderr.split())
    assert result.exit_code == 2 and "a teacher at chance teaches nothing" in message and "always answering 'neg'" in message
    assert not (tmp_path / "student" / "finetuned").exists()


def test_a_cut_teacher_cache_is_labelled_again(trained, tmp_path):
    original, task = trained
    data = load_custom_task(task)
    settings = FinetuneSpec(teacher=str(original), max_seq_len=32, distill={"alpha": 0.5})
    first = teacher_targets(settings, data)
    for cached in (tmp_path / "cache" / "teacher-outputs" / TASK).iterdir():
        cached.write_bytes(cached.read_bytes()[:100])
    again = teacher_targets(settings, data)
    np.testing.assert_allclose(first.train, again.train, atol=1e-6)
    np.testing.assert_allclose(first.extra_targets, again.extra_targets, atol=1e-6)


def test_predictions_of_a_built_in_model_go_to_the_working_directory(tmp_path, monkeypatch):
    from eelbert_cli.core.evaluation import evaluate

    shipped = tmp_path / "package" / "checkpoints"
    (shipped / "some-model").mkdir(parents=True)
    monkeypatch.setattr(evaluate, "SHIPPED_DIR", shipped)
    assert evaluate.default_predictions_path(shipped / "some-model", "t-test.tsv") == Path("predictions") / "some-model-t-test.tsv"
    exports = tmp_path / "package" / "exports"  # a built-in int8 export is the package's too
    (exports / "some-model-int8").mkdir(parents=True)
    monkeypatch.setattr(evaluate, "SHIPPED_EXPORTS_DIR", exports)
    assert evaluate.default_predictions_path(exports / "some-model-int8", "t.tsv") == Path("predictions") / "some-model-int8-t.tsv"
    own = tmp_path / "run" / "finetuned" / "t"
    own.mkdir(parents=True)
    assert evaluate.default_predictions_path(own, "t-test.tsv") == own / "predictions" / "t-test.tsv"


def test_a_tokenizer_other_than_the_checkpoints_own_is_refused_not_recorded(trained, tmp_path):
    """--set tokenizer=... on a checkpoint used to be ignored yet recorded as if used."""
    import yaml

    from tests.conftest import FIXTURE_VOCAB

    checkpoint, task = trained
    other = tmp_path / "other-vocab.txt"
    other.write_text("\n".join(FIXTURE_VOCAB.read_text().splitlines()[:-3]) + "\n")  # a different vocabulary
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump({"name": "again", "output_dir": str(tmp_path / "again"), "model": str(checkpoint),
                                    "finetune": {"task": task, "max_seq_len": 32, "grid": GRID}}))
    result = runner.invoke(app, ["finetune", str(spec), "--set", f"tokenizer={other}"])
    assert result.exit_code == 2 and "is not the vocabulary of" in " ".join(result.stderr.split())
    assert not (tmp_path / "again" / "spec.resolved.yaml").exists()
    same = runner.invoke(app, ["finetune", str(spec), "--set", f"tokenizer={FIXTURE_VOCAB}"])  # its own vocabulary: fine
    assert same.exit_code == 0, same.stderr


@pytest.mark.parametrize("change", ["finetune.task.train=missing.csv", "finetune.teacher=no-such-teacher"])
def test_a_refused_finetune_leaves_the_runs_records_byte_identical(trained, tmp_path, change):
    _, task = trained
    spec = spec_file(tmp_path, "kept", task=task, max_seq_len=32, grid={**GRID, "epochs": [1]})
    assert runner.invoke(app, ["finetune", str(spec)]).exit_code == 0
    run = tmp_path / "kept"
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    extra = ["--set", "finetune.distill={alpha: 0.5}"] if "teacher" in change else []
    result = runner.invoke(app, ["finetune", str(spec), "--set", change, *extra])
    assert result.exit_code == 2, (result.stdout, result.stderr)
    assert {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()} == before
