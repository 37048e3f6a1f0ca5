"""Models that ship with the toolkit (eelbert_cli/checkpoints/): each loads offline by name, is small,
says how it was made, and does its job on real sentences; and the script that ships them."""

from __future__ import annotations

import importlib.util
import json
import shutil

import pytest
from typer.testing import CliRunner

from eelbert_cli.cli import app
from eelbert_cli.core.data import resources
from eelbert_cli.core.data import shipping as tokenizer_shipping
from eelbert_cli.core.data.resources import PROVENANCE_FILE, sha256_of, shipped_checkpoints, shipped_exports, shipped_tokenizers
from eelbert_cli.core.data.tokenization import load_tokenizer, vocabulary_of
from eelbert_cli.core.errors import EelbertError
from eelbert_cli.core.evaluation.collapse import collapse_probe, mean_off_diagonal_cosine
from eelbert_cli.core.model.modeling import load_model
from eelbert_cli.core.spec import load_yaml, validate_spec
from eelbert_cli.core.training import shipping as checkpoint_shipping
from tests.conftest import sentiment_files, spec_file

runner = CliRunner()
SHIPPED = shipped_checkpoints()
EXPORTS = shipped_exports()


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_a_shipped_model_is_small_recorded_and_works(name):
    path = SHIPPED[name]
    assert (path / "model.safetensors").stat().st_size <= checkpoint_shipping.SIZE_LIMIT
    record = json.loads((path / PROVENANCE_FILE).read_text())
    assert record["made_by"] and validate_spec(load_yaml(record["spec"])).name == record["run"]
    task = path / "task.json"
    model = load_model(path, "sequence-classification" if task.is_file() else "base")
    assert model.config.model_type == "eelbert"
    if task.is_file() and json.loads(task.read_text())["task"] == "rotten-tomatoes":
        result = runner.invoke(app, ["predict", name, "a gorgeous, witty, moving film", "a dull, lifeless, boring mess"])
        assert result.exit_code == 0, result.stderr
        labels = [json.loads(line)["label"] for line in result.stdout.splitlines()]
        assert labels == ["fresh", "rotten"]


@pytest.mark.parametrize("name", sorted(name for name, path in SHIPPED.items() if (path / "task.json").is_file()))
def test_a_shipped_classifier_reproduces_the_dev_score_its_provenance_records(name):
    """The fp32 checkpoint as shipped, scored again: the saved seed's dev metrics of the selected config."""
    path = SHIPPED[name]
    task = json.loads((path / "task.json").read_text())
    entry = json.loads((path / PROVENANCE_FILE).read_text())["results"][task["task"]]
    selected = next(c for c in entry["configs"] if all(c[key] == value for key, value in task["selected"].items()))
    recorded = selected["per_seed"][str(task["seed"])]["validation"]
    result = runner.invoke(app, ["evaluate", name, "--json"])
    assert result.exit_code == 0, result.stderr
    scored = json.loads(result.stdout)
    assert scored["task"] == task["task"] and scored["split"] == "validation"
    assert scored["metrics"] == pytest.approx(recorded, rel=1e-6)  # a correlation's float sums may differ in the 8th digit


@pytest.mark.parametrize("name", sorted(EXPORTS))
def test_a_shipped_int8_export_is_small_and_reproduces_its_recorded_score(name):
    pytest.importorskip("onnxruntime")
    path = EXPORTS[name]
    record = json.loads((path / PROVENANCE_FILE).read_text())
    assert record["exported_from"] in SHIPPED and name == f"{record['exported_from']}-int8"
    assert sum(f.stat().st_size for f in path.iterdir()) < 1_000_000  # what a device downloads: under a megabyte
    (task, entry), = record["results"].items()
    result = runner.invoke(app, ["evaluate", name, "--json"])  # by name, through the torch-free runtime
    assert result.exit_code == 0, result.stderr
    scored = json.loads(result.stdout)
    assert scored["task"] == task and scored["metrics"] == pytest.approx(entry["selected_mean"]["validation"], abs=1e-9)


def test_the_ship_script_makes_a_model_usable_by_name(tmp_path, monkeypatch):
    monkeypatch.setenv("EELBERT_CACHE", str(tmp_path / "cache"))
    grid = {"lr": [3e-3], "epochs": [2], "batch_size": [16], "seeds": [0]}
    spec = spec_file(tmp_path, "toy-run", task=sentiment_files(tmp_path, rows=80), max_seq_len=32, grid=grid)
    assert runner.invoke(app, ["finetune", str(spec)]).exit_code == 0
    monkeypatch.setattr(checkpoint_shipping, "SHIPPED_DIR", tmp_path / "shipped")
    target = checkpoint_shipping.ship_checkpoint(tmp_path / "toy-run" / "finetuned" / "toy-sentiment", "toy-model", "pytest", encoder=False)
    record = json.loads((target / PROVENANCE_FILE).read_text())
    assert record["run"] == "toy-run" and record["made_by"] == "pytest" and "toy-sentiment" in record["results"]
    monkeypatch.setitem(resources.BUILTIN_CHECKPOINTS, "toy-model", lambda: target)
    result = runner.invoke(app, ["predict", "toy-model", "the good movie"])
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["label"] in {"pos", "neg"}
    if importlib.util.find_spec("onnxruntime") and importlib.util.find_spec("onnxscript"):  # the int8 export beside it
        monkeypatch.setattr(checkpoint_shipping, "SHIPPED_EXPORTS_DIR", tmp_path / "exports")
        export = checkpoint_shipping.ship_int8_export(target, "pytest export")
        assert export.name == "toy-model-int8" and (export / "model.int8.onnx").is_file()
        assert json.loads((export / PROVENANCE_FILE).read_text())["exported_from"] == "toy-model"
        result = runner.invoke(app, ["predict", str(export), "the good movie"])
        assert result.exit_code == 0, result.stderr
        assert json.loads(result.stdout)["label"] in {"pos", "neg"}
        with pytest.raises(EelbertError, match="only classifiers have an int8 export"):
            checkpoint_shipping.ship_int8_export(tmp_path, "pytest")
    encoder = checkpoint_shipping.ship_checkpoint(tmp_path / "toy-run" / "finetuned" / "toy-sentiment", "toy-encoder", "pytest",
                                                  encoder=True)
    assert not (encoder / "task.json").exists() and type(load_model(encoder, "base")).__name__ == "EelbertModel"
    snapshot = tmp_path / "toy-run" / "encoders" / "tokens-4096"  # the GPU track's layout: RUN/encoders/SNAPSHOT
    shutil.copytree(tmp_path / "toy-run" / "finetuned" / "toy-sentiment", snapshot)
    (snapshot / "snapshot.json").write_text(json.dumps({"tokens": 4096, "heldout_loss": 5.0}))
    (tmp_path / "toy-run" / "environment.json").write_text(json.dumps({"packages": {"torch": "2.11.0+cu130"}}))
    shipped = checkpoint_shipping.ship_checkpoint(snapshot, "toy-snapshot", "pytest", encoder=True, finetuned=tmp_path / "toy-run",
                                                  note="why it ships")
    record = json.loads((shipped / PROVENANCE_FILE).read_text())
    assert record["run"] == "toy-run" and record["snapshot"]["tokens"] == 4096 and record["note"] == "why it ships"
    assert record["environment"]["packages"]["torch"] == "2.11.0+cu130" and "toy-sentiment" in record["finetuned"]["tasks"]


@pytest.mark.parametrize("name", sorted(shipped_tokenizers()))
def test_a_shipped_tokenizer_has_bert_layout_and_its_recorded_digest(name):
    path = shipped_tokenizers()[name]
    record = json.loads((path.parent / PROVENANCE_FILE).read_text())
    assert sha256_of(path) == record["tokenizer_json_sha256"] and record["made_by"].startswith("python scripts/ship_tokenizer.py")
    tokenizer = load_tokenizer(name)
    vocabulary = vocabulary_of(tokenizer)
    assert len(vocabulary) == record["vocab_size"] and vocabulary[:5] == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    encoding = tokenizer.encode("The film's Unbelievably GOOD!")
    assert encoding.tokens[0] == "[CLS]" and encoding.tokens[-1] == "[SEP]" and "[UNK]" not in encoding.tokens
    assert all(token == token.lower() for token in encoding.tokens[1:-1])
    assert tokenizer.decode(encoding.ids) == "the film ' s unbelievably good!"


def test_a_tokenizer_name_that_is_not_built_in_lists_the_built_in_ones():
    with pytest.raises(EelbertError, match=r"neither a built-in one \(bert-base-uncased.*\) nor an existing file"):
        load_tokenizer("prose-wordpiece-9k")


def test_the_tokenizer_script_ships_a_vocabulary_usable_by_name(tmp_path, monkeypatch):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("the quick brown fox jumps over the lazy dog\n" * 30 + "a fox is quick and brown\n" * 30, encoding="utf-8")
    monkeypatch.setattr(tokenizer_shipping, "SHIPPED_TOKENIZERS_DIR", tmp_path / "tokenizers")
    monkeypatch.setattr(tokenizer_shipping, "corpus_source",
                        lambda name: {"kind": "files", "paths": [str(corpus)], "txt_documents": "lines"})
    target = tokenizer_shipping.ship_tokenizer("toy-wordpiece", "toy", 60)
    monkeypatch.setattr(resources, "SHIPPED_TOKENIZERS_DIR", tmp_path / "tokenizers")
    by_name = vocabulary_of(load_tokenizer("toy-wordpiece"))
    assert by_name == vocabulary_of(load_tokenizer(target)) and len(by_name) <= 60 and "fox" in by_name
    record = json.loads((target / PROVENANCE_FILE).read_text())
    assert record["vocab_size"] == len(vocabulary_of(load_tokenizer(target)))
    assert record["tokenizer_json_sha256"] == sha256_of(target / "tokenizer.json")


def test_the_collapse_probe_tells_one_repeated_state_from_distinct_ones():
    import torch

    assert mean_off_diagonal_cosine(torch.ones(5, 8)) == pytest.approx(1.0)
    assert mean_off_diagonal_cosine(torch.eye(4)) == pytest.approx(0.0)
    sentences, tokens = collapse_probe("eelbert-tiny-pretrained")  # the shipped encoder did not collapse
    assert 0.0 < tokens < 0.5 and 0.0 < sentences < 0.9
