"""Fine-tuning: encoding and batching, grid selection, custom tasks, GLUE end to end, evaluate, errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from eelbert_cli.cli import app
from eelbert_cli.core.data.tasks import Split
from eelbert_cli.core.data.tokenization import load_tokenizer
from eelbert_cli.core.finetuning.encoding import collate, encode_split, length_grouped_batches
from tests.conftest import FIXTURES, TINY_MODEL, sentiment_files

runner = CliRunner()


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("EELBERT_CACHE", str(tmp_path / "cache"))


def write_spec(tmp_path: Path, **sections) -> Path:
    data = {"name": "ft", "output_dir": str(tmp_path / "run"), "tokenizer": str(FIXTURES / "vocab.txt"), "model": TINY_MODEL, **sections}
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_pairs_are_encoded_with_segments_and_truncated():
    tokenizer = load_tokenizer(FIXTURES / "vocab.txt")
    split = Split("validation", ("the cat " * 20,), ("a dog",), (1,), (0,))
    encoded = encode_split(tokenizer, split, max_seq_len=12)
    ids, types = encoded.input_ids[0], encoded.token_type_ids[0]
    assert len(ids) == 12 and ids[0] == tokenizer.token_to_id("[CLS]") and ids[-1] == tokenizer.token_to_id("[SEP]")
    assert types[-3:] == [1, 1, 1] and types[0] == 0  # "a dog [SEP]" is segment B, kept whole


def test_length_grouped_batches_cover_everything_once_and_group_lengths():
    lengths = np.random.default_rng(0).integers(5, 120, size=1000)
    batches = length_grouped_batches(lengths, 16, np.random.default_rng(1), group=50)
    assert sorted(np.concatenate(batches).tolist()) == list(range(1000))
    padding_grouped = sum(len(b) * lengths[b].max() - lengths[b].sum() for b in batches)
    random_batches = np.array_split(np.random.default_rng(2).permutation(1000), len(batches))
    padding_random = sum(len(b) * lengths[b].max() - lengths[b].sum() for b in random_batches)
    assert padding_grouped < 0.2 * padding_random


def test_dynamic_padding_pads_to_the_batch_longest():
    tokenizer = load_tokenizer(FIXTURES / "vocab.txt")
    encoded = encode_split(tokenizer, Split("train", ("the cat", "the cat sat on a mat"), None, (0, 1), (0, 1)), 64)
    batch = collate(encoded, [0, 1], pad_id=0, device=__import__("torch").device("cpu"))
    assert batch["input_ids"].shape == (2, 8)
    assert batch["attention_mask"].sum(dim=1).tolist() == [4, 8]
    assert batch["input_ids"][0, 4:].tolist() == [0, 0, 0, 0]


def test_custom_task_learns_and_grid_selects_on_dev(tmp_path):
    task = sentiment_files(tmp_path)
    grid = {"lr": [1e-7, 3e-3], "epochs": [4], "batch_size": [16], "seeds": [0, 1]}
    spec = write_spec(tmp_path, finetune={"task": task, "max_seq_len": 64, "grid": grid})
    result = runner.invoke(app, ["finetune", str(spec)])
    assert result.exit_code == 0, result.stderr
    document = json.loads((tmp_path / "run" / "results.json").read_text())
    entry = document["tasks"]["toy-sentiment"]
    assert entry["selected"]["lr"] == 3e-3  # the learning rate that learns wins on dev
    assert document["summary"]["toy-sentiment"]["accuracy"] > 85
    assert [set(c["per_seed"]) for c in entry["configs"]] == [{"0", "1"}, {"0", "1"}]
    assert entry["selected_std"]["validation"]["accuracy"] >= 0
    assert (tmp_path / "run" / "finetuned" / "toy-sentiment" / "model.safetensors").is_file()
    assert "| Toy" not in (tmp_path / "run" / "results.md").read_text()  # custom tasks are titled by name
    assert "toy-sentiment" in (tmp_path / "run" / "results.md").read_text()


def test_glue_subset_on_fixture_files_reports_both_rules_and_writes_submissions(tmp_path):
    spec = write_spec(tmp_path, finetune={"max_seq_len": 64, "grid": {"lr": [1e-3], "epochs": [1], "batch_size": [4], "seeds": [0]}},
                      glue={"data_dir": str(FIXTURES / "glue_data")})
    result = runner.invoke(app, ["glue", str(spec), "--tasks", "cola,stsb,mnli,rte"])
    assert result.exit_code == 0, result.stderr
    assert "leaderboard rule" in result.stdout and "bert-paper rule" in result.stdout and "subset" in result.stdout
    document = json.loads((tmp_path / "run" / "results.json").read_text())
    assert set(document["summary"]) == {"cola", "stsb", "mnli", "rte"}
    assert set(document["summary"]["mnli"]) == {"accuracy_matched", "accuracy_mismatched"}
    assert set(document["summary"]["stsb"]) == {"pearson", "spearman"}
    assert document["glue"]["leaderboard"]["tasks"] == ["cola", "stsb", "mnli", "rte"]
    assert "wnli" in document["glue"]["leaderboard"]["missing"]
    submission = tmp_path / "run" / "submission"
    assert sorted(p.name for p in submission.iterdir()) == ["CoLA.tsv", "MNLI-m.tsv", "MNLI-mm.tsv", "RTE.tsv", "STS-B.tsv"]
    rte = (submission / "RTE.tsv").read_text().splitlines()
    assert rte[0] == "index\tprediction" and rte[1].split("\t")[1] in {"entailment", "not_entailment"}

    evaluation = runner.invoke(app, ["evaluate", str(tmp_path / "run" / "finetuned" / "stsb"),
                                     "--data-dir", str(FIXTURES / "glue_data"), "--json"])
    assert evaluation.exit_code == 0, evaluation.stderr
    scored = json.loads(evaluation.stdout)
    assert scored["task"] == "stsb" and set(scored["metrics"]) == {"pearson", "spearman"}


def test_user_errors_exit_2_with_the_thing_named(tmp_path):
    too_long = write_spec(tmp_path, finetune={"task": sentiment_files(tmp_path), "max_seq_len": 128})
    result = runner.invoke(app, ["finetune", str(too_long)])
    assert result.exit_code == 2 and "max_seq_len 128" in result.stderr
    bad_task = write_spec(tmp_path, finetune={"task": "sst3"})
    result = runner.invoke(app, ["finetune", str(bad_task)])
    assert result.exit_code == 2 and "sst3" in result.stderr and "rotten-tomatoes" in result.stderr
    task = sentiment_files(tmp_path) | {"label_column": "stars"}
    missing_column = write_spec(tmp_path, finetune={"task": task, "max_seq_len": 64})
    result = runner.invoke(app, ["finetune", str(missing_column)])
    assert result.exit_code == 2 and "stars" in result.stderr and "train.csv" in result.stderr
    glue = write_spec(tmp_path, glue={"data_dir": str(FIXTURES / "glue_data")})
    result = runner.invoke(app, ["glue", str(glue), "--tasks", "cola,nope"])
    assert result.exit_code == 2 and "nope" in result.stderr
    result = runner.invoke(app, ["evaluate", str(tmp_path / "nowhere")])
    assert result.exit_code == 2 and "nowhere" in result.stderr


@pytest.mark.network
def test_rotten_tomatoes_from_a_preset(tmp_path, monkeypatch):
    """The built-in offline task, real data, a real preset: learns well above chance in one epoch."""
    monkeypatch.delenv("EELBERT_CACHE")
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump({"name": "rt", "output_dir": str(tmp_path / "run"), "model": "bert-tiny",
                                    "finetune": {"task": "rotten-tomatoes", "max_seq_len": 64,
                                                 "grid": {"lr": [1e-3], "epochs": [1], "batch_size": [64], "seeds": [0]}}}))
    result = runner.invoke(app, ["finetune", str(spec)])
    assert result.exit_code == 0, result.stderr
    document = json.loads((tmp_path / "run" / "results.json").read_text())
    assert document["summary"]["rotten-tomatoes"]["accuracy"] > 60
    assert "test" in document["tasks"]["rotten-tomatoes"]["selected_mean"]  # labelled test split scored too
