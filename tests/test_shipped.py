"""Models that ship with the toolkit (eelbert_cli/checkpoints/): each loads offline by name, is small,
says how it was made, and does its job on real sentences; and the script that ships them."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from eelbert_cli.cli import app
from eelbert_cli.core.data import resources
from eelbert_cli.core.data.resources import PROVENANCE_FILE, shipped_checkpoints
from eelbert_cli.core.model.modeling import load_model
from eelbert_cli.core.spec import load_yaml, validate_spec
from tests.test_task_distillation import sentiment_files, spec_file

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
import ship_checkpoint  # noqa: E402

runner = CliRunner()
SHIPPED = shipped_checkpoints()


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_a_shipped_model_is_small_recorded_and_works(name):
    path = SHIPPED[name]
    assert (path / "model.safetensors").stat().st_size <= ship_checkpoint.SIZE_LIMIT
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


def test_the_ship_script_makes_a_model_usable_by_name(tmp_path, monkeypatch):
    monkeypatch.setenv("EELBERT_CACHE", str(tmp_path / "cache"))
    grid = {"lr": [3e-3], "epochs": [2], "batch_size": [16], "seeds": [0]}
    spec = spec_file(tmp_path, "toy-run", task=sentiment_files(tmp_path, rows=80), max_seq_len=32, grid=grid)
    assert runner.invoke(app, ["finetune", str(spec)]).exit_code == 0
    monkeypatch.setattr(ship_checkpoint, "SHIPPED_DIR", tmp_path / "shipped")
    target = ship_checkpoint.ship(tmp_path / "toy-run" / "finetuned" / "toy-sentiment", "toy-model", "pytest", encoder=False)
    record = json.loads((target / PROVENANCE_FILE).read_text())
    assert record["run"] == "toy-run" and record["made_by"] == "pytest" and "toy-sentiment" in record["results"]
    monkeypatch.setitem(resources.BUILTIN_CHECKPOINTS, "toy-model", lambda: target)
    result = runner.invoke(app, ["predict", "toy-model", "the good movie"])
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["label"] in {"pos", "neg"}
    encoder = ship_checkpoint.ship(tmp_path / "toy-run" / "finetuned" / "toy-sentiment", "toy-encoder", "pytest", encoder=True)
    assert not (encoder / "task.json").exists() and type(load_model(encoder, "base")).__name__ == "EelbertModel"
