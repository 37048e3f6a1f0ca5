"""`eelbert predict`'s inputs and outputs as a user's pipeline meets them (issue 22): a sentence-pair
model refuses single texts and a single-text model refuses a pair column (task.json and export.json
record how many texts an example has); `--output x.csv` writes CSV with a probability column per
label; an input's `id` column is passed through to every output row. Refusals exit 2 with one
`error:` line and write nothing."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from eelbert_cli.cli import app
from tests.test_bad_inputs import VOCAB, fails_cleanly, pretrain_spec, write

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

runner = CliRunner()
TINY = {"layers": 1, "hidden": 32, "heads": 2, "ffn": 64, "max_positions": 32}
GRID = {"lr": [1e-3], "epochs": [1], "batch_size": [16], "seeds": [0]}


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("EELBERT_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)


def _train(root: Path, name: str, pairs: bool) -> dict[str, Path]:
    header = "first,second,label" if pairs else "text,label"
    rows = [f"{'good fun' if i % 2 else 'bad boring'} movie {i % 5}" + (f",{'yes' if i % 2 else 'no'} thing" if pairs else "")
            + f",{'pos' if i % 2 else 'neg'}" for i in range(40)]
    write(root / f"{name}-train.csv", "\n".join([header, *rows]) + "\n")
    write(root / f"{name}-dev.csv", "\n".join([header, *rows[:10]]) + "\n")
    task = {"name": name, "train": str(root / f"{name}-train.csv"), "validation": str(root / f"{name}-dev.csv"),
            "text_columns": ["first", "second"] if pairs else ["text"], "label_column": "label", "type": "classification",
            "metrics": ["accuracy"]}
    spec = write(root / f"{name}.yaml", {"name": name, "output_dir": str(root / name), "tokenizer": str(VOCAB), "model": TINY,
                                          "finetune": {"task": task, "max_seq_len": 16, "grid": GRID}})
    result = runner.invoke(app, ["finetune", str(spec)])
    assert result.exit_code == 0, result.stderr
    checkpoint = root / name / "finetuned" / name
    result = runner.invoke(app, ["export", str(checkpoint), "-o", str(root / f"{name}-export")])
    assert result.exit_code == 0, result.stderr
    return {"checkpoint": checkpoint, "export": root / f"{name}-export"}


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, dict[str, Path]]:
    """A single-text and a sentence-pair model, each as a checkpoint and an export, made once."""
    root = tmp_path_factory.mktemp("predict-io")
    return {"single": _train(root, "single", pairs=False), "pair": _train(root, "pair", pairs=True)}


def predict(*args) -> list[dict]:
    result = runner.invoke(app, ["predict", *map(str, args)])
    assert result.exit_code == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]


# ------------------------------------------------------------------ single texts vs sentence pairs


def test_task_json_and_export_json_record_how_many_texts_an_example_has(models):
    for kind, inputs in (("single", 1), ("pair", 2)):
        assert json.loads((models[kind]["checkpoint"] / "task.json").read_text())["text_inputs"] == inputs
        assert json.loads((models[kind]["export"] / "export.json").read_text())["text_inputs"] == inputs


@pytest.mark.parametrize("form", ["checkpoint", "export"])
def test_a_pair_model_refuses_single_texts(models, tmp_path, form):
    fails_cleanly(["predict", str(models["pair"][form]), "a good movie"], tmp_path, "was trained on sentence pairs: give the second text")


@pytest.mark.parametrize("form", ["checkpoint", "export"])
def test_a_single_text_model_refuses_a_pair_column(models, tmp_path, form):
    write(tmp_path / "in.jsonl", json.dumps({"text": "good fun", "other": "yes thing"}) + "\n")
    fails_cleanly(["predict", str(models["single"][form]), "--input", "in.jsonl", "--pair-column", "other", "--output", "out.jsonl"],
                  tmp_path, "was trained on single texts: drop --pair-column")
    assert not (tmp_path / "out.jsonl").exists()


@pytest.mark.parametrize("form", ["checkpoint", "export"])
def test_a_pair_model_labels_pairs_and_keeps_both_texts(models, tmp_path, form):
    write(tmp_path / "in.csv", "a,b\ngood fun movie,yes thing\nbad boring movie,no thing\n")
    rows = predict(models["pair"][form], "--input", "in.csv", "--column", "a", "--pair-column", "b")
    assert [(row["text"], row["text_pair"]) for row in rows] == [("good fun movie", "yes thing"), ("bad boring movie", "no thing")]
    assert {row["label"] for row in rows} <= {"neg", "pos"}


def test_an_export_json_with_a_bad_text_inputs_is_refused_as_damaged(models, tmp_path):
    import shutil

    shutil.copytree(models["single"]["export"], tmp_path / "export")
    document = json.loads((tmp_path / "export" / "export.json").read_text())
    write(tmp_path / "export" / "export.json", json.dumps(document | {"text_inputs": 3}))
    fails_cleanly(["predict", "export", "good"], tmp_path, "'text_inputs' must be 1 (single texts) or 2 (sentence pairs), not 3")


def test_a_task_json_with_a_bad_text_inputs_is_refused(models, tmp_path):
    import shutil

    shutil.copytree(models["single"]["checkpoint"], tmp_path / "model")
    record = json.loads((tmp_path / "model" / "task.json").read_text())
    write(tmp_path / "model" / "task.json", json.dumps(record | {"text_inputs": "2"}))
    fails_cleanly(["predict", "model", "good"], tmp_path, "'text_inputs' must be 1 (single texts) or 2 (sentence pairs), not '2'")


def test_a_model_saved_before_text_inputs_was_recorded_still_predicts(models, tmp_path):
    import shutil

    shutil.copytree(models["single"]["export"], tmp_path / "export")
    document = json.loads((tmp_path / "export" / "export.json").read_text())
    del document["text_inputs"]
    write(tmp_path / "export" / "export.json", json.dumps(document))
    assert len(predict(tmp_path / "export", "good fun", "bad")) == 2


# ------------------------------------------------------------------ CSV output and the id column


@pytest.mark.parametrize("form", ["checkpoint", "export"])
def test_output_csv_writes_a_header_an_id_and_a_probability_per_label(models, tmp_path, form):
    write(tmp_path / "in.csv", 'id,text\nr-1,"good fun, really"\n7,bad boring movie\n')
    result = runner.invoke(app, ["predict", str(models["single"][form]), "--input", "in.csv", "--output", "out.csv"])
    assert result.exit_code == 0, result.stderr
    with open(tmp_path / "out.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["id", "text", "label", "prob_neg", "prob_pos"]
    assert [row[:2] for row in rows[1:]] == [["r-1", "good fun, really"], ["7", "bad boring movie"]]
    for row in rows[1:]:
        assert row[2] in ("neg", "pos") and sum(map(float, row[3:])) == pytest.approx(1.0, abs=1e-5)
        assert row[2] == ("neg" if float(row[3]) > float(row[4]) else "pos")


def test_output_csv_of_pairs_has_both_texts(models, tmp_path):
    write(tmp_path / "in.jsonl", json.dumps({"a": "good fun", "b": "yes thing"}) + "\n")
    result = runner.invoke(app, ["predict", str(models["pair"]["export"]), "--input", "in.jsonl", "--column", "a", "--pair-column", "b",
                                 "--output", "out.csv"])
    assert result.exit_code == 0, result.stderr
    with open(tmp_path / "out.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["text", "text_pair", "label", "prob_neg", "prob_pos"] and rows[1][:2] == ["good fun", "yes thing"]


def test_the_id_column_is_passed_through_to_json_lines_first(models, tmp_path):
    write(tmp_path / "in.jsonl", "".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in ((3, "good fun"), (9, "bad"))))
    rows = predict(models["single"]["export"], "--input", "in.jsonl")
    assert [row["id"] for row in rows] == ["3", "9"] and list(rows[0])[:2] == ["id", "text"]


def test_a_named_id_column_is_used(models, tmp_path):
    write(tmp_path / "in.csv", "key,text\nk1,good fun\nk2,bad\n")
    rows = predict(models["single"]["export"], "--input", "in.csv", "--id-column", "key")
    assert [row["id"] for row in rows] == ["k1", "k2"]


def test_a_named_id_column_that_the_file_lacks_is_refused(models, tmp_path):
    write(tmp_path / "in.csv", "text\ngood fun\n")
    fails_cleanly(["predict", str(models["single"]["export"]), "--input", "in.csv", "--id-column", "key", "--output", "out.csv"],
                  tmp_path, "in.csv:2: no id in column 'key'")
    assert not (tmp_path / "out.csv").exists()


def test_a_row_without_the_id_the_first_row_had_is_refused(models, tmp_path):
    write(tmp_path / "in.jsonl", json.dumps({"id": "a", "text": "good"}) + "\n" + json.dumps({"text": "bad"}) + "\n")
    fails_cleanly(["predict", str(models["single"]["export"]), "--input", "in.jsonl", "--output", "out.jsonl"],
                  tmp_path, "in.jsonl:2: no id in column 'id'")
    assert not (tmp_path / "out.jsonl").exists()


def test_an_id_column_for_a_txt_input_is_refused(models, tmp_path):
    write(tmp_path / "in.txt", "good fun\n")
    fails_cleanly(["predict", str(models["single"]["export"]), "--input", "in.txt", "--id-column", "key"], tmp_path,
                  "--id-column needs a .jsonl or .csv input")


# ------------------------------------------------------------------ pretraining teachers and debris


def test_a_missing_pretrain_teacher_is_named_as_the_teacher_and_leaves_no_run_directory(tmp_path):
    spec = pretrain_spec(tmp_path, objective="distill", teacher=str(tmp_path / "no-such-teacher"))
    write(tmp_path / "spec.yaml", spec)
    fails_cleanly(["pretrain", "spec.yaml"], tmp_path, f"pretrain.teacher {tmp_path / 'no-such-teacher'} is neither a built-in checkpoint")
    assert not (tmp_path / "run").exists()


def test_a_refused_run_keeps_a_run_directory_it_did_not_create(tmp_path):
    spec = pretrain_spec(tmp_path, objective="distill", teacher=str(tmp_path / "no-such-teacher"))
    write(tmp_path / "spec.yaml", spec)
    (tmp_path / "run").mkdir()
    fails_cleanly(["pretrain", "spec.yaml"], tmp_path, "is neither a built-in checkpoint")
    assert (tmp_path / "run").is_dir()
