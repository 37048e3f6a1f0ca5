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
    config = json.loads((tmp_path / "run" / "finetuned" / "toy-sentiment" / "config.json").read_text())
    labels = json.loads((tmp_path / "run" / "finetuned" / "toy-sentiment" / "task.json").read_text())["labels"]
    assert config["id2label"] == {str(i): label for i, label in enumerate(labels)}  # pipeline() names labels, not LABEL_0
    assert config["label2id"] == {label: i for i, label in enumerate(labels)}
    from transformers import pipeline

    import eelbert_cli.core.model.modeling  # noqa: F401  (registers the eelbert type with the Auto classes)

    classify = pipeline("text-classification", model=str(tmp_path / "run" / "finetuned" / "toy-sentiment"), device="cpu")
    assert classify("a good fun movie")[0]["label"] in labels
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


# ------------------------------------------------------------------ epochs: auto, and a line per epoch (issue 22)


def test_auto_epochs_give_small_data_enough_steps_and_keep_three_for_large_data():
    from eelbert_cli.core.finetuning.grid import grid_configs
    from eelbert_cli.core.spec import AUTO_EPOCHS_MAX, AUTO_EPOCHS_MIN_STEPS, GridSpec, auto_epochs

    assert auto_epochs(8530, 32) == 3 and auto_epochs(5452, 32) == 3  # rotten-tomatoes, trec: the results as published
    small = auto_epochs(210, 32)  # 7 steps an epoch: 3 epochs were 21 steps
    assert small * 7 >= AUTO_EPOCHS_MIN_STEPS and (small - 1) * 7 < AUTO_EPOCHS_MIN_STEPS
    assert auto_epochs(5, 32) == AUTO_EPOCHS_MAX
    assert [c.epochs for c in grid_configs(GridSpec(batch_size=[16, 32]), 210)] == [auto_epochs(210, 16), auto_epochs(210, 32)]
    explicit = GridSpec(lr=[1e-3, 3e-4], epochs=[5, 2], batch_size=[16, 32])
    assert [(c.lr, c.epochs, c.batch_size) for c in grid_configs(explicit, 210)][:4] == [
        (1e-3, 5, 16), (1e-3, 5, 32), (1e-3, 2, 16), (1e-3, 2, 32)]  # a spec that sets epochs keeps them, in the old order


def test_the_auto_default_fingerprints_as_the_old_default_so_finished_stages_stay_done(tmp_path):
    from eelbert_cli.core.pipeline import fingerprint
    from eelbert_cli.core.spec import load_spec

    base = {"name": "x", "output_dir": str(tmp_path / "x"), "model": "bert-tiny", "finetune": {"task": "rotten-tomatoes"}}
    (tmp_path / "auto.yaml").write_text(yaml.safe_dump(base))
    (tmp_path / "three.yaml").write_text(yaml.safe_dump({**base, "finetune": {"task": "rotten-tomatoes", "grid": {"epochs": [3]}}}))
    (tmp_path / "four.yaml").write_text(yaml.safe_dump({**base, "finetune": {"task": "rotten-tomatoes", "grid": {"epochs": [4]}}}))
    auto, three, four = (fingerprint(load_spec(tmp_path / f"{n}.yaml"), "finetune") for n in ("auto", "three", "four"))
    assert auto == three != four


def test_a_spec_without_epochs_trains_small_data_longer_and_records_the_epochs_it_used(tmp_path):
    task = sentiment_files(tmp_path, rows=40)  # 3 steps an epoch at batch 16
    spec = write_spec(tmp_path, finetune={"task": task, "max_seq_len": 32, "grid": {"lr": [1e-3], "batch_size": [16], "seeds": [0]}})
    result = runner.invoke(app, ["finetune", str(spec)])
    assert result.exit_code == 0, result.stderr
    from eelbert_cli.core.spec import auto_epochs

    entry = json.loads((tmp_path / "run" / "results.json").read_text())["tasks"]["toy-sentiment"]
    assert entry["selected"]["epochs"] == auto_epochs(40, 16) > 3
    lines = [line for line in result.stderr.splitlines() if " epoch " in line and "train loss" in line]
    assert len(lines) == auto_epochs(40, 16), result.stderr
    assert "epoch 1/" in lines[0] and f"epoch {auto_epochs(40, 16)}/{auto_epochs(40, 16)}" in lines[-1]


def test_the_per_epoch_report_changes_no_result(tmp_path):
    """A dev pass after each epoch draws no random numbers: the run is the same with or without it."""
    from eelbert_cli.core.data.tasks import load_custom_task
    from eelbert_cli.core.finetuning.encoding import encode_split
    from eelbert_cli.core.finetuning.run import RunConfig, train_run
    from eelbert_cli.core.model.config import make_config
    from eelbert_cli.core.spec import FinetuneSpec, ModelSpec
    from eelbert_cli.core.targets import ModelSource

    tokenizer = load_tokenizer(FIXTURES / "vocab.txt")
    data = load_custom_task(sentiment_files(tmp_path, rows=48), tmp_path)
    encoded = {name: encode_split(tokenizer, split, 32) for name, split in data.splits.items()}
    shape = ModelSpec.model_validate(TINY_MODEL)
    from eelbert_cli.core.data.tokenization import vocabulary_of

    source = ModelSource("tiny", config=make_config(shape.shape, shape.hash_config, vocabulary_of(tokenizer)))
    settings = FinetuneSpec(max_seq_len=32, device="cpu")
    config = RunConfig(1e-3, 3, 16)
    seen = []
    reported = train_run(source, data.task, encoded, config, 0, settings, 0, on_epoch=lambda *a: seen.append(a))
    plain = train_run(source, data.task, encoded, config, 0, settings, 0)
    assert reported.metrics == plain.metrics
    assert [epoch for epoch, _, _ in seen] == [1, 2, 3] and all(loss > 0 for _, loss, _ in seen)
    assert seen[-1][2] == pytest.approx(plain.score)


def test_fine_tuning_again_keeps_the_earlier_model_and_results_aside_and_says_where(tmp_path):
    import hashlib

    task = sentiment_files(tmp_path, rows=40)
    grid = {"lr": [1e-3], "epochs": [1], "batch_size": [16], "seeds": [0]}
    spec = write_spec(tmp_path, finetune={"task": task, "max_seq_len": 32, "grid": grid})
    first = runner.invoke(app, ["run", str(spec)])
    assert first.exit_code == 0, first.stderr
    model = tmp_path / "run" / "finetuned" / "toy-sentiment"
    before = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in model.iterdir()}
    earlier = json.loads((tmp_path / "run" / "results.json").read_text())["tasks"]["toy-sentiment"]

    again = runner.invoke(app, ["run", str(spec), "--set", "finetune.grid.lr=[3e-3]"])
    assert again.exit_code == 0, again.stderr
    (kept,) = (tmp_path / "run" / "previous").iterdir()
    assert kept.name.startswith("toy-sentiment-") and kept.name in "".join(again.stderr.split())  # the line names where
    assert "this run replaces it" in " ".join(again.stderr.split())
    assert {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in (kept / "finetuned").iterdir()} == before
    assert json.loads((kept / "earlier-results.json").read_text())["results"] == earlier
    now = json.loads((tmp_path / "run" / "results.json").read_text())["tasks"]["toy-sentiment"]
    assert now["selected"]["lr"] == 3e-3 and earlier["selected"]["lr"] == 1e-3

    unchanged = runner.invoke(app, ["run", str(spec), "--set", "finetune.grid.lr=[3e-3]"])  # the same settings: skipped
    assert unchanged.exit_code == 0 and len(list((tmp_path / "run" / "previous").iterdir())) == 1
