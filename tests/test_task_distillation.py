"""Task distillation: augmentation, the loss, the teacher's cached labels, an end-to-end student."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from eelbert_cli.cli import app
from eelbert_cli.core.data.tasks import Split, get_task
from eelbert_cli.core.errors import EelbertError
from eelbert_cli.core.finetuning.run import distillation_loss
from eelbert_cli.core.finetuning.task_distillation import MASK_TOKEN, augment_text, augmented_split, embedding_neighbours, split_words
from eelbert_cli.core.spec import AugmentSpec, DistillSpec, FinetuneSpec, validate_spec
from tests.conftest import sentiment_files, spec_file

runner = CliRunner()
BINARY = get_task("sst2")


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("EELBERT_CACHE", str(tmp_path / "cache"))


def test_augmentation_is_deterministic_and_changes_words():
    split = Split("train", ("the film was good and fun to watch", "bad plot"), None, (1, 0), (0, 1))
    settings = AugmentSpec(copies=3, mask=0.3, crop=1.0, seed=4)
    first, again = augmented_split(split, settings), augmented_split(split, settings)
    assert first.text_a == again.text_a and len(first) == 6 and first.labels is None
    assert first.text_a != split.text_a * 3
    long_copies = first.text_a[0::2]
    assert all(len(text.split()) <= 8 for text in long_copies) and any(MASK_TOKEN in text or len(text.split()) < 8 for text in long_copies)
    assert augment_text("one", AugmentSpec(mask=0.0, crop=1.0), np.random.default_rng(0)) == "one"


def test_loss_is_gold_cross_entropy_at_alpha_zero_and_teacher_kl_at_alpha_one():
    torch.manual_seed(0)
    logits, teacher = torch.randn(4, 2), torch.randn(4, 2)
    gold, has_gold = torch.tensor([0, 1, 1, -1]), torch.tensor([True, True, True, False])
    only_gold = distillation_loss(BINARY, logits, gold, has_gold, teacher, DistillSpec(alpha=0.0, temperature=1.0))
    ce = torch.nn.functional.cross_entropy(logits[:3], gold[:3], reduction="sum")
    kl_last = torch.nn.functional.kl_div(logits[3].log_softmax(-1), teacher[3].log_softmax(-1), log_target=True, reduction="sum")
    torch.testing.assert_close(only_gold, (ce + kl_last) / 4)  # the unlabelled example always learns from the teacher
    loss = distillation_loss(BINARY, teacher.clone(), gold, has_gold, teacher, DistillSpec(alpha=1.0))
    assert loss.item() == pytest.approx(0.0, abs=1e-6)


def test_regression_distillation_is_squared_error_to_the_teacher():
    stsb = get_task("stsb")
    logits, teacher = torch.tensor([[1.0], [2.0]]), torch.tensor([[1.5], [2.0]])
    loss = distillation_loss(stsb, logits, torch.tensor([float("nan"), 2.0]), torch.tensor([False, True]), teacher, DistillSpec(alpha=0.5))
    assert loss.item() == pytest.approx((0.25 + 0.0) / 2)


def test_distill_settings_without_a_teacher_are_refused():
    with pytest.raises(EelbertError, match="need a teacher"):
        validate_spec({"name": "x", "model": "bert-tiny", "finetune": {"distill": {"alpha": 0.5}}})


def test_student_learns_from_a_teacher_with_augmented_copies_cached_once(tmp_path):
    task = sentiment_files(tmp_path, rows=240)
    grid = {"lr": [3e-3], "epochs": [4], "batch_size": [16], "seeds": [0]}
    teacher_run = runner.invoke(app, ["finetune", str(spec_file(tmp_path, "teacher", task=task, max_seq_len=32, grid=grid))])
    assert teacher_run.exit_code == 0, teacher_run.stderr
    teacher_score = json.loads((tmp_path / "teacher" / "results.json").read_text())["tasks"]["toy-sentiment"]["score"]
    teacher = tmp_path / "teacher" / "finetuned" / "toy-sentiment"
    distill = {"alpha": 0.5, "temperature": 2.0, "augment": {"copies": 2, "mask": 0.1, "replace": 0.2}}
    student_spec = spec_file(tmp_path, "student", task=task, max_seq_len=32, grid=grid, teacher=str(teacher), distill=distill)
    result = runner.invoke(app, ["finetune", str(student_spec)])
    assert result.exit_code == 0, result.stderr
    entry = json.loads((tmp_path / "student" / "results.json").read_text())["tasks"]["toy-sentiment"]
    assert entry["distillation"]["extra_examples"] == 2 * 240
    assert entry["distillation"]["teacher_dev_score"] == pytest.approx(teacher_score) and teacher_score > 80
    assert entry["score"] > 80
    cache = tmp_path / "cache" / "teacher-outputs" / "toy-sentiment"
    cached = sorted(p.name for p in cache.iterdir())
    assert [name.split("-")[0] for name in cached] == ["extra", "train", "validation"]
    stamps = [p.stat().st_mtime_ns for p in sorted(cache.iterdir())]
    second_student = spec_file(tmp_path, "second-student", task=task, max_seq_len=32, grid=grid, teacher=str(teacher), distill=distill)
    assert runner.invoke(app, ["finetune", str(second_student)]).exit_code == 0  # another student: the same labels, not recomputed
    assert stamps == [p.stat().st_mtime_ns for p in sorted(cache.iterdir())]


class _Vocabulary:
    def __init__(self, tokens):
        self.tokens = tokens

    def get_vocab(self):
        return {token: index for index, token in enumerate(self.tokens)}


def test_embedding_neighbours_are_the_nearest_whole_words_and_replace_words_keeping_punctuation():
    tokens = ["[PAD]", "good", "great", "fine", "bad", "awful", "##ly", "!"]
    table = torch.nn.Embedding(len(tokens), 2)
    with torch.no_grad():
        table.weight.copy_(torch.tensor([[0, 0], [1, 0.1], [1, 0.2], [1, 0.5], [-1, 0.1], [-1, 0.2], [1, 0.15], [0, 1]], dtype=torch.float))
    model = torch.nn.Module()
    model.get_input_embeddings = lambda: table
    found = embedding_neighbours(model, _Vocabulary(tokens), {"good", "bad", "unknown"}, count=2)
    assert found == {"good": ("great", "fine"), "bad": ("awful", "fine")}  # never itself, never a word piece or symbol
    rng = np.random.default_rng(0)
    copies = {augment_text("Good, bad!", AugmentSpec(replace=0.99, mask=0.0, crop=0.0), rng, found) for _ in range(20)}
    assert copies <= {f"{a}, {b}!" for a in ("Good", "great", "fine") for b in ("bad", "awful", "fine")} and len(copies) > 3
    assert split_words(Split("train", ("Good, bad!",), None, (1,), (0,))) == {"good", "bad"}


def test_a_teacher_of_another_task_is_refused(tmp_path):
    task = sentiment_files(tmp_path, rows=40)
    grid = {"lr": [3e-3], "epochs": [1], "batch_size": [16], "seeds": [0]}
    assert runner.invoke(app, ["finetune", str(spec_file(tmp_path, "teacher", task=task, max_seq_len=32, grid=grid))]).exit_code == 0
    teacher = tmp_path / "teacher" / "finetuned" / "toy-sentiment"
    other = {**task, "name": "other-task"}
    spec = spec_file(tmp_path, "student", task=other, max_seq_len=32, grid=grid, teacher=str(teacher))
    result = runner.invoke(app, ["finetune", str(spec)])
    assert result.exit_code == 2 and "fine-tuned on 'toy-sentiment'" in result.stderr


def test_a_task_placeholder_gives_each_task_its_own_teacher(tmp_path):
    """`teacher: runs/T/finetuned/{task}`: one spec distils a whole suite, each task from its own teacher
    (the path is filled in per task, recorded filled in, and a wrong task still names the real path)."""
    task = sentiment_files(tmp_path, rows=40)
    grid = {"lr": [3e-3], "epochs": [1], "batch_size": [16], "seeds": [0]}
    assert runner.invoke(app, ["finetune", str(spec_file(tmp_path, "teacher", task=task, max_seq_len=32, grid=grid))]).exit_code == 0
    placeholder = str(tmp_path / "teacher" / "finetuned" / "{task}")
    student = spec_file(tmp_path, "student", task=task, max_seq_len=32, grid=grid, teacher=placeholder)
    result = runner.invoke(app, ["finetune", str(student)])
    assert result.exit_code == 0, result.stderr
    entry = json.loads((tmp_path / "student" / "results.json").read_text())["tasks"]["toy-sentiment"]
    assert entry["distillation"]["teacher"] == str(tmp_path / "teacher" / "finetuned" / "toy-sentiment")
    other = spec_file(tmp_path, "other", task={**task, "name": "other-task"}, max_seq_len=32, grid=grid, teacher=placeholder)
    result = runner.invoke(app, ["finetune", str(other)])
    assert result.exit_code == 2 and "finetuned/other-task is not a checkpoint directory" in " ".join(result.stderr.split())
    with pytest.raises(ValueError, match="the one placeholder is {task}"):
        FinetuneSpec(teacher="runs/{model}/finetuned/{task}")
