"""Every kind of model fine-tuning starts from, through the whole CLI chain (issue 20).

{our shipped eelbert checkpoint, our bert preset, a plain Hugging Face BertModel / BertForMaskedLM /
BertForSequenceClassification directory} x {pooling cls, mean} x finetune -> evaluate -> export ->
predict, at a tiny size, in-process. The plain checkpoints are made here with transformers'
``save_pretrained`` (safetensors), as a downloaded BERT would be: the suite used to build only our
own models, so a plain BERT that no longer loaded went unnoticed. Also: the task-distillation chain
from a plain BERT teacher (``make distill``'s shape), a starting classifier of another label count,
and a bug while loading reported as an internal error rather than as a corrupt file.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
import torch
import yaml
from transformers import BertConfig, BertForMaskedLM, BertForSequenceClassification, BertModel
from typer.testing import CliRunner

from eelbert_cli.cli import app
from eelbert_cli.core.console import configure_logging
from eelbert_cli.core.targets import checkpoint_config
from tests.conftest import FIXTURES, sentiment_files

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

VOCAB = FIXTURES / "vocab.txt"
TASK = "toy-sentiment"
TEXTS = ["a good fun movie", "the plot was boring"]
GRID = {"lr": [1e-3], "epochs": [1], "batch_size": [16], "seeds": [0]}
PLAIN_BERT_SHAPE = {"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 64,
                    "max_position_embeddings": 64}
PLAIN_BERT_CLASSES = {"hf-bert-model": BertModel, "hf-bert-masked-lm": BertForMaskedLM, "hf-bert-classifier": BertForSequenceClassification}
PLAIN_CLASSIFIER_LABELS = 3  # trained for another task than the 2-label one here: fine-tuning needs a new head
SOURCES = ("eelbert-checkpoint", "bert-preset", *PLAIN_BERT_CLASSES)
POOLINGS = ("cls", "mean")
runner = CliRunner()


def save_plain_bert(directory: Path, model_class: type, **config_fields) -> Path:
    """A random transformers BERT on the fixture vocabulary, saved as a hub download is (with vocab.txt)."""
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(VOCAB.read_text(encoding="utf-8").splitlines()), **PLAIN_BERT_SHAPE, **config_fields)
    model_class(config).save_pretrained(directory)
    shutil.copy(VOCAB, directory / "vocab.txt")
    assert (directory / "model.safetensors").is_file() and json.loads((directory / "config.json").read_text())["model_type"] == "bert"
    return directory


def model_section(source: str, root: Path) -> str | dict:
    if source == "eelbert-checkpoint":
        return "eelbert-tiny-pretrained"  # the shipped pretrained encoder, by its built-in name (its own tokenizer)
    if source == "bert-preset":
        return "bert-tiny"
    return {"checkpoint": str(root / source)}


def write_spec(root: Path, name: str, model: str | dict, task: dict, **finetune) -> Path:
    data = {"name": name, "output_dir": str(root / name), "model": model,
            "finetune": {"task": task, "max_seq_len": 16, "grid": GRID, **finetune}}
    if model != "eelbert-tiny-pretrained":  # a built-in encoder brings its own vocabulary; naming another is refused
        data["tokenizer"] = str(VOCAB)
    path = root / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def invoke(*args: str):
    result = runner.invoke(app, [str(arg) for arg in args])
    assert result.exit_code == 0, (args, result.stdout, result.stderr)
    return result


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("EELBERT_CACHE", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> tuple[Path, dict]:
    """The tiny task and the three plain transformers checkpoints, made once for the whole matrix."""
    root = tmp_path_factory.mktemp("starting-models")
    task = sentiment_files(root, rows=48)
    for name, model_class in PLAIN_BERT_CLASSES.items():
        labels = {"num_labels": PLAIN_CLASSIFIER_LABELS} if model_class is BertForSequenceClassification else {}
        save_plain_bert(root / name, model_class, **labels)
    return root, task


def json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


@pytest.mark.parametrize("pooling", POOLINGS)
@pytest.mark.parametrize("source", SOURCES)
def test_fine_tune_evaluate_export_and_predict_from_every_kind_of_start(workspace, source, pooling):
    root, task = workspace
    name = f"{source}-{pooling}"
    tuned = invoke("finetune", write_spec(root, name, model_section(source, root), task, sentence_vector=pooling))
    model_dir = root / name / "finetuned" / TASK
    config = json.loads((model_dir / "config.json").read_text())
    plain_cls = source.startswith("hf-") and pooling == "cls"
    assert config["model_type"] == ("bert" if plain_cls else "eelbert")  # transformers' own head reads [CLS]; ours pools
    assert config.get("sentence_vector", "cls") == pooling and checkpoint_config(model_dir).num_labels == 2
    new_heads = tuned.stderr.count("starting a new classifier head")
    assert new_heads == (1 if source == "hf-bert-classifier" else 0), tuned.stderr
    if new_heads:
        assert f"classifier for {PLAIN_CLASSIFIER_LABELS} labels and the task has 2" in " ".join(tuned.stderr.split())

    recorded = json.loads((root / name / "results.json").read_text())["summary"][TASK]
    scored = json.loads(invoke("evaluate", model_dir, "--json").stdout)
    assert scored["task"] == TASK and scored["metrics"]["accuracy"] == pytest.approx(recorded["accuracy"], abs=1e-6)

    exported = root / f"{name}-export"
    invoke("export", model_dir, "-o", exported)
    assert json.loads((exported / "export.json").read_text())["fp32_max_abs_difference_vs_torch"] < 1e-4
    from_export = json_lines(invoke("predict", exported, *TEXTS).stdout)
    from_checkpoint = json_lines(invoke("predict", model_dir, *TEXTS).stdout)
    assert [p["label"] for p in from_export] == [p["label"] for p in from_checkpoint]
    assert {p["label"] for p in from_export} <= {"neg", "pos"}
    for onnx_row, torch_row in zip(from_export, from_checkpoint, strict=True):
        assert onnx_row["probabilities"] == pytest.approx(torch_row["probabilities"], abs=1e-4)


def test_distillation_chain_from_a_plain_bert_teacher(tmp_path):
    """``make distill`` at CI size: the teacher fine-tuned from a plain BERT directory (``eelbert run``,
    as the Makefile does), its labels for the student's training set and augmented copies, the
    student distilled from them, then scored on its own."""
    task = sentiment_files(tmp_path, rows=48)
    teacher_start = save_plain_bert(tmp_path / "plain-bert", BertModel)
    teacher_grid = {**GRID, "lr": [3e-3], "epochs": [10]}  # a teacher must beat chance on dev, or distillation refuses it
    invoke("run", write_spec(tmp_path, "teacher", {"checkpoint": str(teacher_start)}, task, grid=teacher_grid))
    teacher = tmp_path / "teacher" / "finetuned" / TASK
    assert json.loads((teacher / "config.json").read_text())["model_type"] == "bert"
    distill = {"alpha": 0.5, "temperature": 2.0, "augment": {"copies": 1, "mask": 0.1}}
    student_model = {"preset": "eelbert-tiny", "layers": 1, "hidden": 32, "heads": 2, "ffn": 64, "max_positions": 64}
    invoke("run", write_spec(tmp_path, "student", student_model, task, teacher=str(teacher), distill=distill))
    entry = json.loads((tmp_path / "student" / "results.json").read_text())["tasks"][TASK]
    teacher_score = json.loads((tmp_path / "teacher" / "results.json").read_text())["tasks"][TASK]["score"]
    assert entry["distillation"]["extra_examples"] == 48 and entry["distillation"]["teacher_dev_score"] == pytest.approx(teacher_score)
    cached = (tmp_path / "cache" / "teacher-outputs" / TASK).iterdir()
    assert sorted(p.name.split("-")[0] for p in cached) == ["extra", "train", "validation"]
    scored = json.loads(invoke("evaluate", tmp_path / "student" / "finetuned" / TASK, "--json").stdout)
    assert scored["metrics"]["accuracy"] == pytest.approx(entry["selected_mean"]["validation"]["accuracy"], abs=1e-6)


@pytest.mark.parametrize("pooling", POOLINGS)
def test_a_classifier_of_another_label_count_gets_a_new_head_and_keeps_its_encoder(tmp_path, capsys, pooling):
    from safetensors.torch import load_file

    from eelbert_cli.core.model.modeling import load_model

    start = save_plain_bert(tmp_path / "three-way", BertForSequenceClassification, num_labels=3)
    stored = load_file(str(start / "model.safetensors"))
    configure_logging()
    model = load_model(start, "sequence-classification", num_labels=2, sentence_vector=pooling)
    assert model.classifier.weight.shape == (2, 32) and model.config.num_labels == 2
    encoder = "bert.encoder.layer.0.attention.self.query.weight"
    assert torch.equal(model.state_dict()[encoder], stored[encoder])  # only the head is new
    warning = " ".join(capsys.readouterr().err.split())
    assert f"{start} has a classifier for 3 labels and the task has 2: starting a new classifier head" in warning
    same_labels = load_model(start, "sequence-classification", num_labels=3, sentence_vector=pooling)
    assert torch.equal(same_labels.classifier.weight, stored["classifier.weight"])  # a head of the right size is kept
    assert "classifier head" not in capsys.readouterr().err


INTERNAL_ERROR = re.compile(r"^internal error: .* please report it with the traceback in (\S+)$")


def reject_our_keyword(cls, *args, **kwargs):
    """What transformers' BERT head did with our ``classifier_pooling`` (issue 20): a bug of ours, not a bad file."""
    raise TypeError("BertForSequenceClassification.__init__() got an unexpected keyword argument 'classifier_pooling'")


def internal_error_log(result) -> Path:
    """The one ``internal error:`` line's log file, after checking it is the only line and exit code 1."""
    assert result.exit_code == 1, (result.stdout, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in result.output and "corrupt" not in result.stderr, result.stderr
    match = INTERNAL_ERROR.match(lines[0])
    assert match and "bug in eelbert" in lines[0] and "TypeError" in lines[0], lines[0]
    log = Path(match.group(1))
    text = log.read_text()
    assert "Traceback (most recent call last)" in text and "reject_our_keyword" in text and "classifier_pooling" in text
    return log


def test_a_bug_while_loading_is_an_internal_error_with_its_traceback_in_the_run_directory(tmp_path, monkeypatch):
    task = sentiment_files(tmp_path, rows=16)
    start = save_plain_bert(tmp_path / "plain-bert", BertModel)
    monkeypatch.setattr(BertForSequenceClassification, "from_pretrained", classmethod(reject_our_keyword))
    result = runner.invoke(app, ["finetune", str(write_spec(tmp_path, "run", {"checkpoint": str(start)}, task))])
    assert internal_error_log(result).parent == tmp_path / "run"


def test_an_internal_error_outside_a_run_directory_logs_to_the_cache(tmp_path, monkeypatch):
    monkeypatch.setattr(BertForSequenceClassification, "from_pretrained", classmethod(reject_our_keyword))  # our class inherits it
    result = runner.invoke(app, ["predict", "eelbert-tiny-sentiment", "a good movie"])
    assert internal_error_log(result).parent == tmp_path / "cache" / "logs"
