"""General distillation: the relation and hidden-state losses, the teacher cache, whole runs (resume, reuse)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from transformers import BertConfig, BertModel
from typer.testing import CliRunner

from eelbert_cli.cli import app
from eelbert_cli.core.errors import EelbertError
from eelbert_cli.core.spec import validate_spec
from eelbert_cli.core.training import general_distillation
from eelbert_cli.core.training.general_distillation import TeacherCache, default_layer_map, relation_kl
from eelbert_cli.core.training.pretrain import pretrain
from tests.conftest import metrics, spec_dict, write_spec

runner = CliRunner()


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("EELBERT_CACHE", str(tmp_path / "cache"))


@pytest.fixture
def teacher_dir(tmp_path, fixture_vocab_path) -> Path:
    """A small random BERT (3 layers, hidden 48) on the fixture vocabulary: a real BertModel checkpoint."""
    vocab = fixture_vocab_path.read_text(encoding="utf-8").splitlines()
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(vocab), hidden_size=48, num_hidden_layers=3, num_attention_heads=4, intermediate_size=96,
                        max_position_embeddings=64)
    directory = tmp_path / "teacher"
    BertModel(config).save_pretrained(directory, safe_serialization=True)
    shutil.copy(fixture_vocab_path, directory / "vocab.txt")
    return directory


def distill_spec(tmp_path, corpus, vocab, teacher, name="run", model=None, **pretrain):
    data = spec_dict(tmp_path, corpus, vocab, **{"objective": "distill", "teacher": str(teacher), **pretrain})
    data["output_dir"] = str(tmp_path / name)
    data["model"] |= {"layers": 2, **(model or {})}
    return validate_spec(data)


def test_relation_loss_is_zero_for_the_same_relations_and_positive_otherwise():
    x = torch.randn(2, 5, 16)
    assert relation_kl(x, x, heads=4).item() == pytest.approx(0.0, abs=1e-6)
    assert relation_kl(torch.randn(2, 5, 8), x, heads=4).item() > 0.01  # widths may differ: relations are L x L
    assert default_layer_map(2, 6) == {1: 3, 2: 6} and default_layer_map(1, 6) == {1: 6}


def test_cache_marks_rows_only_once_written(tmp_path):
    cache = TeacherCache(tmp_path / "c", rows=6, seq_len=3, columns=2)
    assert list(cache.missing(np.array([0, 4, 5]))) == [0, 4, 5]
    cache.write(np.array([4, 0]), np.arange(12, dtype=np.float16).reshape(2, 3, 2))
    again = TeacherCache(tmp_path / "c", rows=6, seq_len=3, columns=2)  # reopened, as by a second student
    assert list(again.missing(np.array([0, 4, 5]))) == [5]
    assert again.read(np.array([0])).flatten().tolist() == list(range(6, 12))


def test_distillation_lowers_its_loss_and_a_second_student_reuses_the_cache(tmp_path, corpus, fixture_vocab_path, teacher_dir, monkeypatch):
    calls = {"rows": 0}
    real = general_distillation.teacher_outputs

    def counted(teacher, input_ids, layout):
        calls["rows"] += len(input_ids)
        return real(teacher, input_ids, layout)

    monkeypatch.setattr(general_distillation, "teacher_outputs", counted)
    first = pretrain(distill_spec(tmp_path, corpus, fixture_vocab_path, teacher_dir, budget={"steps": 30}, lr=1e-2), progress=False)
    losses = [row["loss"] for row in metrics(tmp_path / "run") if "loss" in row]
    assert losses[-1] < 0.7 * losses[0] and "masked_accuracy" not in metrics(tmp_path / "run")[0]
    assert first.results["layer_map"] == {"1": 2, "2": 3} and first.results["relation_layer"] == 3
    assert first.results["pretraining_only_parameters"] == 2 * (32 * 48 + 48)
    assert "heldout_accuracy" not in first.results and np.isfinite(first.results["heldout_loss"])
    labelled = calls["rows"]
    assert labelled > 0
    another_student = {"hidden": 64, "ffn": 128}  # same packed data and teacher
    pretrain(distill_spec(tmp_path, corpus, fixture_vocab_path, teacher_dir, "second", another_student, budget={"steps": 30}, lr=1e-2),
             progress=False)
    assert calls["rows"] == labelled  # every row it needed was already on disk
    cached = list((tmp_path / "cache" / "teacher-outputs").glob("pretrain-*/train/filled.u8"))
    assert len(cached) == 1


def test_distillation_resumes_exactly_with_its_projections_and_live_equals_cached(tmp_path, corpus, fixture_vocab_path, teacher_dir):
    settings = {"objective": "mlm+distill", "distill": {"hidden": 1.0, "relations": 1.0, "mlm": 0.5}}
    straight = distill_spec(tmp_path, corpus, fixture_vocab_path, teacher_dir, name="a", **settings)
    pretrain(straight, progress=False)
    split = distill_spec(tmp_path, corpus, fixture_vocab_path, teacher_dir, name="b", **settings)
    paused = pretrain(split, stop_after_steps=5, progress=False)
    assert (paused.checkpoint / "objective.safetensors").is_file()
    pretrain(split, resume=True, progress=False)
    live = distill_spec(tmp_path, corpus, fixture_vocab_path, teacher_dir, name="c", objective="mlm+distill",
                        distill={**settings["distill"], "cache": False})
    pretrain(live, progress=False)
    a, b, c = (load_file(tmp_path / name / "checkpoint" / "model.safetensors") for name in "abc")
    assert a.keys() == b.keys() == c.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)  # exact resume
    assert all(torch.allclose(a[k], c[k], atol=1e-5) for k in a)  # the cache changes speed, not training
    assert "masked_accuracy" in metrics(tmp_path / "a")[0]


def test_a_teacher_with_another_vocabulary_is_refused(tmp_path, corpus, fixture_vocab_path, teacher_dir):
    (teacher_dir / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "zebra"]) + "\n")
    spec = write_spec(tmp_path, json.loads(distill_spec(tmp_path, corpus, fixture_vocab_path, teacher_dir).model_dump_json()))
    result = runner.invoke(app, ["pretrain", str(spec)])
    assert result.exit_code == 2 and "another vocabulary" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("pretrain_section, message", [
    ({"objective": "distill"}, "needs a teacher"),
    ({"teacher": "all-MiniLM-L6-v2"}, "need objective distill"),
    ({"objective": "distill", "teacher": "t", "distill": {"hidden": 0, "relations": 0}}, "no weight"),
])
def test_distillation_settings_are_checked(pretrain_section, message):
    with pytest.raises(EelbertError, match=message):
        validate_spec({"name": "x", "model": "eelbert-tiny", "pretrain": pretrain_section})


def test_relation_heads_must_divide_both_widths(tmp_path, corpus, fixture_vocab_path, teacher_dir):
    spec = distill_spec(tmp_path, corpus, fixture_vocab_path, teacher_dir, distill={"relation_heads": 5})
    with pytest.raises(EelbertError, match="relation_heads 5"):
        pretrain(spec, progress=False)
