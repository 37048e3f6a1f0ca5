"""`eelbert run`: every stage once, finished stages skipped, changed specs refused."""

from __future__ import annotations

import hashlib
import json

import yaml
from typer.testing import CliRunner

from eelbert_cli.cli import app
from tests.conftest import FIXTURES, TINY_MODEL, sentiment_files

runner = CliRunner()


def test_run_does_every_stage_then_skips_them(tmp_path, monkeypatch):
    monkeypatch.setenv("EELBERT_CACHE", str(tmp_path / "cache"))
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n\n".join("the good movie was fun and the bad film was boring" for _ in range(60)))
    spec = {
        "name": "pipeline", "output_dir": str(tmp_path / "run"), "tokenizer": str(FIXTURES / "vocab.txt"), "model": TINY_MODEL,
        "pretrain": {"corpus": [{"kind": "files", "paths": [str(corpus)]}], "seq_len": 16, "batch_size": 4, "heldout": 2,
                     "budget": {"steps": 4}, "log_every": 2},
        "finetune": {"task": sentiment_files(tmp_path, rows=40), "max_seq_len": 32,
                     "grid": {"lr": [1e-3], "epochs": [1], "batch_size": [8], "seeds": [0]}},
    }
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))

    first = runner.invoke(app, ["run", str(path)])
    assert first.exit_code == 0, first.stderr
    assert "pretrain: ran" in first.stdout and "finetune:toy-sentiment: ran" in first.stdout and "size: ran" in first.stdout
    run = tmp_path / "run"
    results = json.loads((run / "results.json").read_text())
    assert results["tasks"]["toy-sentiment"]["model"].endswith("checkpoint")  # fine-tuned from its own pretraining
    assert json.loads((run / "size_report.json").read_text())["params_word_embedding"] == 0
    score = results["tasks"]["toy-sentiment"]["score"]
    assert "scores: dev" in first.stdout and "toy-sentiment" in first.stdout and f"{score:.2f}" in first.stdout  # what it ran for
    stamp = (run / "pretrain_results.json").stat().st_mtime_ns

    again = runner.invoke(app, ["run", str(path)])
    assert again.exit_code == 0, again.stderr
    assert "pretrain: skipped" in again.stdout and "finetune:toy-sentiment: skipped" in again.stdout
    assert (run / "pretrain_results.json").stat().st_mtime_ns == stamp

    changed = runner.invoke(app, ["run", str(path), "--set", "pretrain.lr=0.01"])
    assert changed.exit_code == 2 and "different spec" in changed.stderr

    refit = runner.invoke(app, ["run", str(path), "--set", "finetune.grid.seeds=[0, 1]"])
    assert refit.exit_code == 0, refit.stderr
    assert "pretrain: skipped" in refit.stdout and "finetune:toy-sentiment: ran" in refit.stdout
    assert json.loads((run / "results.json").read_text())["tasks"]["toy-sentiment"]["seeds"] == [0, 1]


def test_a_stage_started_from_other_weights_under_the_same_name_is_not_done(tmp_path):
    """A newly shipped built-in model, or a checkpoint directory pretrained again, keeps its name: the
    fingerprint of a run starting from it follows the weights, so `eelbert run` does not skip with
    results of the old ones. Runs from presets keep their fingerprints."""
    from eelbert_cli.core.pipeline import fingerprint
    from eelbert_cli.core.spec import validate_spec

    checkpoint = tmp_path / "ckpt"
    checkpoint.mkdir()
    (checkpoint / "model.safetensors").write_bytes(b"weights one")
    spec = validate_spec({"name": "x", "model": {"checkpoint": str(checkpoint)}, "finetune": {"task": "trec"}})
    before = fingerprint(spec, "finetune")
    assert fingerprint(spec, "finetune") == before  # the same weights: still done
    (checkpoint / "model.safetensors").write_bytes(b"weights two")
    assert fingerprint(spec, "finetune") != before
    from eelbert_cli.core.pipeline import starting_weights

    shipped = validate_spec({"name": "x", "model": "uno-eelbert-pretrained", "finetune": {"task": "trec"}})
    assert set(starting_weights(shipped)) == {"model"}  # a built-in model by name: its shipped weights
    preset = validate_spec({"name": "x", "model": "eelbert-tiny"})
    assert starting_weights(preset) == {}
    data = preset.model_dump(mode="json")
    unchanged = hashlib.sha256(json.dumps({key: data.get(key) for key in ("model", "tokenizer", "seed")}, sort_keys=True).encode())
    assert fingerprint(preset) == unchanged.hexdigest()[:16]  # finished preset runs stay done
