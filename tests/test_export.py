"""`eelbert export` and the torch-free runtime: equal outputs, nothing vocabulary-sized in the graph,
int8, test vectors, `eelbert predict` on both targets, and bad input that writes nothing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from eelbert_cli.cli import app

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

FIXTURES = Path(__file__).parent / "fixtures"
VOCAB_SIZE = len((FIXTURES / "vocab.txt").read_text().splitlines())
runner = CliRunner()
TEXTS = ["a good fun movie", "bad boring plot", "the film", "good"]


def finetune(root: Path, name: str, hash_kind: str, pooling: str = "cls") -> Path:
    lines = ["text,label"] + [f"{'good fun' if i % 2 else 'bad boring'} movie {i % 7},{'pos' if i % 2 else 'neg'}" for i in range(60)]
    (root / "train.csv").write_text("\n".join(lines) + "\n")
    (root / "dev.csv").write_text("\n".join(lines[:21]) + "\n")
    task = {"name": "toy", "train": "train.csv", "validation": "dev.csv", "text_columns": ["text"], "label_column": "label",
            "type": "classification", "metrics": ["accuracy"]}
    model = {"layers": 1, "hidden": 32, "heads": 2, "ffn": 64, "max_positions": 48, "hash": {"kind": hash_kind}}
    spec = {"name": name, "output_dir": str(root / name), "tokenizer": str(FIXTURES / "vocab.txt"), "model": model,
            "finetune": {"task": task, "max_seq_len": 24, "sentence_vector": pooling,
                         "grid": {"lr": [3e-3], "epochs": [3], "batch_size": [16], "seeds": [0]}}}
    path = root / f"{name}.yaml"
    path.write_text(yaml.safe_dump(spec))
    result = runner.invoke(app, ["finetune", str(path)])
    assert result.exit_code == 0, result.stderr
    return root / name / "finetuned" / "toy"


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("export")
    # the two heads: eelbert reads the mean of its token states, bert its [CLS] state
    return {"eelbert": finetune(root, "eel", "ngram", pooling="mean"), "bert": finetune(root, "bert", "learned"), "root": root}


@pytest.fixture(scope="module")
def exported(models) -> dict[str, Path]:
    out = {}
    for kind in ("eelbert", "bert"):
        for quantize in (None, "int8"):
            target = models["root"] / f"export-{kind}-{quantize or 'fp32'}"
            args = ["export", str(models[kind]), "-o", str(target)] + (["--quantize", quantize] if quantize else [])
            result = runner.invoke(app, args)
            assert result.exit_code == 0, result.stderr
            out[f"{kind}-{quantize or 'fp32'}"] = target
    return out


def torch_logits(checkpoint: Path, texts: list[str]) -> np.ndarray:
    from eelbert_cli.core.evaluation.predict import CheckpointModel

    model = CheckpointModel(checkpoint)
    from eelbert_cli.core.data.tasks import Split
    from eelbert_cli.core.finetuning.encoding import encode_split, predict_logits

    split = Split("x", tuple(texts), None, None, tuple(range(len(texts))))
    return predict_logits(model.model, encode_split(model.tokenizer, split, 24), model.settings, 0)


@pytest.mark.parametrize("kind", ["eelbert", "bert"])
def test_runtime_logits_equal_torch_within_1e4(models, exported, kind):
    from eelbert_cli.core.export.runtime import ExportedModel

    runtime = ExportedModel.load(exported[f"{kind}-fp32"])
    pooling = json.loads((models[kind] / "config.json").read_text())["sentence_vector"]
    assert pooling == {"eelbert": "mean", "bert": "cls"}[kind]
    assert np.abs(runtime.logits(TEXTS) - torch_logits(models[kind], TEXTS)).max() < 1e-4
    assert json.loads((exported[f"{kind}-fp32"] / "export.json").read_text())["fp32_max_abs_difference_vs_torch"] < 1e-4


def test_graph_holds_no_vocabulary_sized_tensor_uses_standard_ops_and_trims_positions(exported):
    graph = onnx.load(str(exported["eelbert-fp32"] / "model.onnx"))
    shapes = [tuple(t.dims) for t in graph.graph.initializer]
    assert not any(VOCAB_SIZE in shape for shape in shapes)
    assert (24, 32) in shapes and (48, 32) not in shapes  # position rows trimmed to the fine-tuning length
    assert {node.domain for node in graph.graph.node} <= {"", "ai.onnx"}
    bert_files = {p.name for p in exported["bert-fp32"].iterdir()}
    assert "word_embeddings.npy" in bert_files and "word_embeddings.npy" not in {p.name for p in exported["eelbert-fp32"].iterdir()}


def test_int8_is_smaller_and_agrees_with_fp32(exported):
    from eelbert_cli.core.export.onnx_export import shipped_bytes
    from eelbert_cli.core.export.runtime import ExportedModel

    fp32, int8 = (sum(shipped_bytes(exported[f"eelbert-{q}"]).values()) for q in ("fp32", "int8"))
    assert int8 < 0.75 * fp32  # a toy model: the graph itself is a third of the bytes
    assert "MatMulInteger" in {node.op_type for node in onnx.load(str(exported["eelbert-int8"] / "model.int8.onnx")).graph.node}
    a, b = (ExportedModel.load(exported[f"eelbert-{q}"]).logits(TEXTS) for q in ("fp32", "int8"))
    assert (a.argmax(1) == b.argmax(1)).mean() >= 0.75 and np.abs(a - b).max() < 0.5


def test_test_vectors_are_the_hash_of_their_strings(exported):
    from eelbert_cli.core.model.hashing import HashConfig, hash_vectors_numpy

    document = json.loads((exported["eelbert-fp32"] / "export.json").read_text())
    strings = [v["string"] for v in document["test_vectors"]]
    expected = hash_vectors_numpy(strings, document["hidden"], HashConfig.model_validate(document["hash"]))
    assert np.array_equal(np.array([v["first_values"] for v in document["test_vectors"]], dtype=np.float32), expected[:, :8])


def test_the_runtime_never_imports_torch_or_transformers(exported):
    code = (
        "import sys; from eelbert_cli.core.export.runtime import ExportedModel;"
        f"print(ExportedModel.load({str(exported['eelbert-int8'])!r}).predict(['a good movie'])[0].label);"
        "print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    label, loaded = result.stdout.strip().splitlines()
    assert label in ("neg", "pos") and loaded == "[]"


def test_predict_gives_the_same_labels_from_checkpoint_and_export(models, exported, tmp_path):
    rows = {}
    for name, target in (("torch", models["eelbert"]), ("runtime", exported["eelbert-fp32"])):
        result = runner.invoke(app, ["predict", str(target), *TEXTS])
        assert result.exit_code == 0, result.stderr
        rows[name] = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["label"] for r in rows["torch"]] == [r["label"] for r in rows["runtime"]]
    assert all(abs(sum(r["probabilities"].values()) - 1) < 1e-5 for r in rows["runtime"])


@pytest.mark.parametrize("name, content, extra", [
    ("in.txt", "a good movie\nbad plot\n", []),
    ("in.jsonl", '{"review": "a good movie"}\n{"review": "bad plot"}\n', ["--column", "review"]),
    ("in.csv", "id,text\n1,a good movie\n2,bad plot\n", []),
])
def test_predict_from_files_writes_json_lines(exported, tmp_path, name, content, extra):
    (tmp_path / name).write_text(content)
    result = runner.invoke(app, ["predict", str(exported["eelbert-int8"]), "--input", str(tmp_path / name),
                                 "--output", str(tmp_path / "out.jsonl"), *extra])
    assert result.exit_code == 0, result.stderr
    rows = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [r["text"] for r in rows] == ["a good movie", "bad plot"] and all(r["label"] in ("neg", "pos") for r in rows)


@pytest.mark.parametrize("content, extra, expect", [
    ("a good movie\n   \n".replace("   \n", ""), [], None),
    ('{"text": "ok"}\n{"text": ""}\n', [], "example 2 is empty text"),
    (b"caf\xe9\n", [], "not UTF-8"),
    ('{"review": "x"}\n', [], "no text in column 'text'"),
])
def test_predict_bad_input_writes_no_file(exported, tmp_path, content, extra, expect):
    if expect is None:
        return  # a blank line in a .txt is skipped, not an error (covered above)
    name = "in.txt" if isinstance(content, bytes) else "in.jsonl"
    (tmp_path / name).write_bytes(content if isinstance(content, bytes) else content.encode())
    result = runner.invoke(app, ["predict", str(exported["eelbert-fp32"]), "--input", str(tmp_path / name),
                                 "--output", str(tmp_path / "out.jsonl"), *extra])
    assert result.exit_code == 2 and expect in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "out.jsonl").exists() and not list(tmp_path.glob("out.jsonl*"))


def test_predict_refuses_a_foreign_export_and_a_pretraining_checkpoint(exported, models, tmp_path):
    import shutil

    shutil.copytree(exported["eelbert-fp32"], tmp_path / "old")
    document = json.loads((tmp_path / "old" / "export.json").read_text())
    (tmp_path / "old" / "export.json").write_text(json.dumps({**document, "format": 99}))
    result = runner.invoke(app, ["predict", str(tmp_path / "old"), "hello"])
    assert result.exit_code == 2 and "export format 99" in result.stderr
    shutil.copytree(models["eelbert"], tmp_path / "bare")
    (tmp_path / "bare" / "task.json").unlink()
    result = runner.invoke(app, ["predict", str(tmp_path / "bare"), "hello"])
    assert result.exit_code == 2 and "not a fine-tuned model" in result.stderr
    result = runner.invoke(app, ["export", str(tmp_path / "bare"), "-o", str(tmp_path / "x")])
    assert result.exit_code == 2 and "not a fine-tuned model" in result.stderr and not (tmp_path / "x").exists()


def tampered(exported: dict, kind: str, tmp_path: Path, **changes) -> Path:
    """A copy of an fp32 export whose export.json has ``changes`` merged in (None deletes a key)."""
    import shutil

    target = tmp_path / f"tampered-{kind}"
    shutil.copytree(exported[f"{kind}-fp32"], target)
    document = json.loads((target / "export.json").read_text())
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(document.get(key), dict):
            document[key] = {**document[key], **value}
        elif value is None:
            document[key] = None
        else:
            document[key] = value
    (target / "export.json").write_text(json.dumps(document))
    return target


@pytest.mark.parametrize(("kind", "changes", "message"), [
    ("eelbert", {"hash": {"seed": 7}}, "do not reproduce the export's test vector"),
    ("eelbert", {"hash": {"ngram_max": 5}}, "do not reproduce the export's test vector"),
    ("eelbert", {"hash": {"kind": "sparkly"}}, "invalid hash settings"),
    ("eelbert", {"hash": None}, "exactly one of 'hash'"),
    ("eelbert", {"test_vectors": []}, "must carry 'test_vectors'"),
    ("eelbert", {"labels": ["neg"]}, "two or more different classes"),
    ("eelbert", {"labels": ["neg", "pos", "meh"]}, "names 3 output(s)"),
    ("eelbert", {"max_seq_len": "24"}, "'max_seq_len' must be a whole number"),
    ("eelbert", {"max_seq_len": 200}, "does not fit its graph"),
    ("eelbert", {"hidden": 16}, "does not fit its graph"),
    ("eelbert", {"type": "ranking"}, "'type' must be classification or regression"),
    ("eelbert", {"model": "../elsewhere.onnx"}, "'model' must name a file in the export directory"),
    ("bert", {"word_table": None}, "exactly one of 'hash'"),
    ("eelbert", {"wordpiece": None}, "needs the 'wordpiece' settings"),
    ("eelbert", {"wordpiece": {"lowercase": "yes"}}, "'wordpiece.lowercase' must be bool"),
    ("eelbert", {"wordpiece": {"unk_token": "[NOPE]"}}, "the vocabulary lacks the unk token '[NOPE]'"),
])
def test_a_tampered_export_is_refused_on_load_with_one_message(exported, tmp_path, kind, changes, message):
    """Hand-edited export.json fields: before, a changed hash seed gave confident wrong labels and the
    rest tracebacks (issue 22)."""
    result = runner.invoke(app, ["predict", str(tampered(exported, kind, tmp_path, **changes)), "a good fun movie"])
    assert result.exit_code == 2, (result.stdout, result.exception)
    assert message in " ".join(result.stderr.split()) and "Traceback" not in result.stderr


def test_a_cut_word_table_and_a_vocabulary_gap_are_refused(exported, tmp_path):
    cut = tampered(exported, "bert", tmp_path)
    table = cut / "word_embeddings.npy"
    table.write_bytes(table.read_bytes()[: table.stat().st_size // 2])
    result = runner.invoke(app, ["predict", str(cut), "a good fun movie"])
    assert result.exit_code == 2 and "word_embeddings.npy is unreadable" in " ".join(result.stderr.split())
    repeat = tampered(exported, "eelbert", tmp_path)
    vocabulary = (repeat / "vocab.txt").read_text().splitlines()
    vocabulary[7] = vocabulary[3]
    (repeat / "vocab.txt").write_text("\n".join(vocabulary) + "\n")
    result = runner.invoke(app, ["predict", str(repeat), "a good fun movie"])
    assert result.exit_code == 2 and f"line 8: {vocabulary[3]!r} repeats line 4" in " ".join(result.stderr.split())


def test_an_export_with_a_full_tokenizer_json_loads_and_predicts_alike(models, exported, tmp_path):
    """Format 1 exports (and tokenizers that are not plain BERT WordPiece) ship tokenizer.json instead of
    vocab.txt: the runtime reads both, to the same logits."""
    import shutil

    from eelbert_cli.core.export.runtime import ExportedModel

    old = tampered(exported, "eelbert", tmp_path, format=1, tokenizer="tokenizer.json", wordpiece=None)
    shutil.copyfile(models["eelbert"] / "tokenizer.json", old / "tokenizer.json")
    (old / "vocab.txt").unlink()
    assert np.array_equal(ExportedModel.load(old).logits(TEXTS), ExportedModel.load(exported["eelbert-fp32"]).logits(TEXTS))


def test_export_lengths_outside_what_the_model_holds_are_refused(models, tmp_path):
    for length, message in (("3", "Invalid value for '--max-seq-len'"), ("4096", "an export takes 8 to")):
        result = runner.invoke(app, ["export", str(models["eelbert"]), "-o", str(tmp_path / "out"), "--max-seq-len", length])
        assert result.exit_code == 2 and message in " ".join(result.stderr.split()) and not (tmp_path / "out").exists()


def test_a_txt_input_is_split_at_line_breaks_only(exported, tmp_path):
    """U+2028 (line separator) and form feeds are characters inside a text, not new texts."""
    source = tmp_path / "texts.txt"
    source.write_text("a good\u2028fun movie\nbad\x0cboring plot\r\nthe film\n", encoding="utf-8")
    result = runner.invoke(app, ["predict", str(exported["eelbert-fp32"]), "--input", str(source)])
    assert result.exit_code == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]  # U+2028 is escaped in the JSON: one row a line
    assert [row["text"] for row in rows] == ["a good\u2028fun movie", "bad\x0cboring plot", "the film"]


def test_a_prediction_line_keeps_the_pair_and_is_one_line():
    from eelbert_cli.core.evaluation.predict import prediction_line
    from eelbert_cli.core.export.runtime import Prediction

    line = prediction_line("first\u2028half", "second text", Prediction("pos", {"neg": 0.1, "pos": 0.9}))
    assert len(line.splitlines()) == 1 and "\\u2028" in line
    expected = {"text": "first\u2028half", "text_pair": "second text", "label": "pos", "probabilities": {"neg": 0.1, "pos": 0.9}}
    assert json.loads(line) == expected


@pytest.mark.parametrize("kind", ["export", "checkpoint"])
def test_predict_warns_when_it_cuts_a_long_text(models, exported, kind):
    target = exported["eelbert-fp32"] if kind == "export" else models["eelbert"]
    result = runner.invoke(app, ["predict", str(target), "good " * 200, "a good fun movie"])
    assert result.exit_code == 0, result.stderr
    assert "1 of 2 texts were longer than the model's 24 tokens" in " ".join(result.stderr.split())
    quiet = runner.invoke(app, ["predict", str(target), "a good fun movie"])
    assert quiet.exit_code == 0 and "warning" not in quiet.stderr


def test_evaluate_scores_an_export_like_its_checkpoint(models, exported, tmp_path, monkeypatch):
    from eelbert_cli.core.data.tasks import load_custom_task
    from eelbert_cli.core.evaluation import evaluate

    record = json.loads((models["eelbert"] / "task.json").read_text())
    monkeypatch.setattr(evaluate, "load_task", lambda name, data_dir: load_custom_task(record["custom_task"], Path("/")))
    scores = {}
    for name, target in (("torch", models["eelbert"]), ("fp32", exported["eelbert-fp32"]), ("int8", exported["eelbert-int8"])):
        result = runner.invoke(app, ["evaluate", str(target), "--json", "--predictions", str(tmp_path / f"{name}.tsv")])
        assert result.exit_code == 0, result.stderr
        scores[name] = json.loads(result.stdout)
    assert scores["fp32"]["metrics"] == scores["torch"]["metrics"]
    assert scores["fp32"]["examples"] == scores["torch"]["examples"] == 20
    assert (tmp_path / "fp32.tsv").read_text() == (tmp_path / "torch.tsv").read_text()
    assert abs(scores["int8"]["metrics"]["accuracy"] - scores["torch"]["metrics"]["accuracy"]) <= 10.0  # int8 may flip a couple of the 20


def test_evaluate_refuses_an_export_whose_labels_are_not_the_tasks(exported):
    result = runner.invoke(app, ["evaluate", str(exported["eelbert-int8"]), "--task", "trec"])
    assert result.exit_code == 2
    assert "predicts 2 labels but trec has 6" in result.stderr


def test_suite_int8_writes_a_run_the_suite_report_reads(models, tmp_path, monkeypatch):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
    import suite_int8
    import suite_report

    from eelbert_cli.core.data.tasks import load_custom_task
    from eelbert_cli.core.evaluation import evaluate

    record = json.loads((models["eelbert"] / "task.json").read_text())
    monkeypatch.setattr(evaluate, "load_task", lambda name, data_dir: load_custom_task(record["custom_task"], Path("/")))
    run_dir = models["eelbert"].parent.parent
    document = suite_int8.int8_run(run_dir, tmp_path / "eel-int8")
    toy = document["tasks"]["toy"]
    assert set(toy["selected_mean"]) == {"validation"} and abs(toy["selected_mean"]["validation"]["accuracy"] -
                                                               toy["fp32_same_model"]["validation"]["accuracy"]) <= 10.0
    assert (tmp_path / "eel-int8" / "exports" / "toy" / "model.int8.onnx").is_file()
    row = suite_report.row(tmp_path / "eel-int8")
    assert row["kind"] == "int8 export" and row["name"] == "eel-int8"
    assert row["file_bytes"] == toy["export_bytes"] > 0
