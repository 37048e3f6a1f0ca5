"""`eelbert baseline`: TF-IDF, fastText (.bin and .ftz) and model2vec trained and scored on a task's
splits like a transformer (grid x seeds, dev selection, results.json and size_report.json in the
fine-tune shapes), the kept model re-scored from its files, a regression task a method cannot run
recorded as not run, and a bad spec refused with one clear line. Hermetic: tiny tasks written here
(the built-in task loader is replaced), a model2vec made from a 12-word vocabulary (no distillation).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from eelbert_cli.cli import app
from eelbert_cli.core.baselines import methods as baseline_methods
from eelbert_cli.core.baselines import run as baseline_run
from eelbert_cli.core.baselines.methods import METHODS, LinearHead, task_texts
from eelbert_cli.core.baselines.spec import BaselineSpec
from eelbert_cli.core.data.tasks import TASKS, Split, TaskData
from eelbert_cli.core.reporting.runs import load_run
from tests.test_bad_inputs import fails_cleanly, write

pytest.importorskip("sklearn")
runner = CliRunner()
WORDS = {0: ["bad", "boring", "dull", "awful"], 1: ["good", "fun", "great", "lovely"]}
FILLER = ["movie", "film", "plot", "story"]


def _sentences(count: int, offset: int) -> tuple[list[str], list[int]]:
    texts, labels = [], []
    for row in range(offset, offset + count):
        label = row % 2
        words = WORDS[label]
        texts.append(f"a {words[row % 4]} {FILLER[row % 3]} and {words[(row // 4) % 4]} {FILLER[(row + 1) % 4]}")
        labels.append(label)
    return texts, labels


def _split(name: str, count: int, offset: int, regression: bool = False) -> Split:
    texts, labels = _sentences(count, offset)
    values = tuple(float(label) * 2 - 1 + 0.1 * (row % 3) for row, label in enumerate(labels)) if regression else tuple(labels)
    return Split(name, tuple(texts), None, values, tuple(range(count)))


def toy_task(name: str, regression: bool = False) -> TaskData:
    """The built-in task ``name`` (its Task: labels, metrics) with small separable splits."""
    splits = {s: _split(s, n, o, regression) for s, n, o in (("train", 80, 0), ("validation", 24, 100), ("test", 24, 200))}
    return TaskData(TASKS[name], splits, "toy fixture")


@pytest.fixture(autouse=True)
def toy_tasks(tmp_path, monkeypatch):
    monkeypatch.setenv("EELBERT_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(baseline_run, "load_task", lambda name, data_dir=None: toy_task(name, TASKS[name].type == "regression"))


def _spec(tmp_path: Path, method: str, tasks: list[str], **baseline) -> Path:
    data = {"name": f"b-{method}", "output_dir": str(tmp_path / "runs" / f"b-{method}"),
            "baseline": {"method": method, "seeds": [0, 1], **baseline}, "glue": {"suite": "offline", "tasks": tasks}}
    return write(tmp_path / f"{method}.yaml", data)


def test_linear_head_survives_a_fortran_ordered_coef(tmp_path):
    """safetensors.numpy writes an array's raw buffer: a Fortran-ordered coef_ (scikit-learn's
    multinomial one) came back transposed-scrambled until the head made it C-ordered."""
    coef = np.asfortranarray(np.arange(12, dtype=np.float64).reshape(3, 4))
    head = LinearHead(coef, np.zeros(3), regression=False)
    from safetensors.numpy import load_file, save_file

    save_file(head.tensors(), str(tmp_path / "w.safetensors"))
    assert np.array_equal(load_file(str(tmp_path / "w.safetensors"))["coef"], coef.astype(np.float32))


def test_binary_and_multiclass_heads_predict_label_ids():
    binary = LinearHead(np.array([[1.0, -1.0]]), np.array([0.0]), regression=False)
    assert binary.predict(np.array([[2.0, 1.0], [0.0, 3.0]])).tolist() == [1, 0]
    three = LinearHead(np.eye(3), np.zeros(3), regression=False)
    assert three.predict(np.array([[0.0, 0.0, 5.0], [1.0, 0.0, 0.0]])).tolist() == [2, 0]


def test_pairs_become_one_text_for_every_method():
    assert task_texts(["a", "b"], None) == ["a", "b"]
    assert task_texts(["a"], ["b"]) == ["a [SEP] b"]


@pytest.mark.parametrize("method", ["tfidf", "fasttext", "fasttext-ftz"])
def test_a_method_learns_a_separable_task_and_its_files_reproduce_it(tmp_path, method):
    pytest.importorskip("fasttext") if method.startswith("fasttext") else None
    data = toy_task("rotten-tomatoes")
    chosen = METHODS[method]
    settings = {key: values[0] for key, values in chosen.default_grid.items()}
    if method.startswith("fasttext"):
        settings.update({"lr": 0.5, "epoch": 30, "bucket": 1000, **({"cutoff": 1000} if method == "fasttext-ftz" else {})})
    train = data.train
    predictor = chosen.fit(data.task, list(train.text_a), train.labels, settings, seed=0)
    dev = list(data.splits["validation"].text_a)
    expected = np.asarray(data.splits["validation"].labels)
    assert (predictor.predict(dev) == expected).mean() > 0.9
    (tmp_path / "m").mkdir()
    predictor.save(tmp_path / "m")
    assert np.array_equal(chosen.load(tmp_path / "m", data.task).predict(dev), predictor.predict(dev))


def test_tfidf_regression_scores_from_ridge(tmp_path):
    data = toy_task("vader-tweets", regression=True)
    settings = {"analyzer": "word", "C": 10.0, "max_features": 100}
    predictor = METHODS["tfidf"].fit(data.task, list(data.train.text_a), data.train.labels, settings, 0)
    values = predictor.predict(list(data.splits["validation"].text_a))
    assert values.dtype.kind == "f"
    assert np.corrcoef(values, np.asarray(data.splits["validation"].labels))[0, 1] > 0.8


def test_baseline_run_writes_the_fine_tune_shapes_and_a_size_report(tmp_path):
    result = runner.invoke(app, ["baseline", str(_spec(tmp_path, "tfidf", ["rotten-tomatoes", "vader-tweets"], grid={"C": [0.1, 10.0]}))])
    assert result.exit_code == 0, result.output
    run_dir = tmp_path / "runs" / "b-tfidf"
    document = json.loads((run_dir / "results.json").read_text())
    entry = document["tasks"]["rotten-tomatoes"]
    assert len(entry["configs"]) == 2 * 2 and entry["seeds"] == [0, 1]  # analyzer x C, 2 seeds
    assert entry["score"] == max(c["mean_score"] for c in entry["configs"])  # selected on dev
    assert set(entry["selected_mean"]) == {"validation", "test"}
    assert entry["classes"]["splits"]["validation"]["labels"] == list(TASKS["rotten-tomatoes"].labels)
    assert (run_dir / "models" / "rotten-tomatoes" / "weights.safetensors").is_file()
    size = json.loads((run_dir / "size_report.json").read_text())
    assert size["file_bytes"] == max(size["file_bytes_per_task"].values()) == max(e["file_bytes"] for e in document["tasks"].values())
    model_files = (run_dir / "models" / "rotten-tomatoes").iterdir()
    assert size["file_bytes_per_task"]["rotten-tomatoes"] == sum(path.stat().st_size for path in model_files)
    suite = document["suite"]["validation"]
    assert suite["tasks"] == ["rotten-tomatoes", "vader-tweets"] and "sms-spam" in suite["missing"]
    assert suite["numbers"]["vader-tweets"] == pytest.approx(entry_metric(document, "vader-tweets", "spearman"))
    assert "offline suite score" in " ".join(result.output.split())
    row = load_run(run_dir)  # eelbert report reads it like a transformer's run
    assert row.model == "TF-IDF" and row.file_bytes == size["file_bytes"] and set(row.tasks) == {"rotten-tomatoes", "vader-tweets"}


def entry_metric(document: dict, task: str, metric: str) -> float:
    return document["tasks"][task]["selected_mean"]["validation"][metric]


def test_fasttext_records_regression_tasks_as_not_run(tmp_path):
    pytest.importorskip("fasttext")
    spec = _spec(tmp_path, "fasttext", ["rotten-tomatoes", "vader-amazon"], grid={"lr": [0.1], "epoch": [20], "bucket": [1000]})
    result = runner.invoke(app, ["baseline", str(spec)])
    assert result.exit_code == 0, result.output
    document = json.loads((tmp_path / "runs" / "b-fasttext" / "results.json").read_text())
    assert set(document["tasks"]) == {"rotten-tomatoes"}
    assert document["not_applicable"] == {"vader-amazon": "fastText has no regression mode"}
    assert "not run" in result.output and "vader-amazon" in document["suite"]["validation"]["missing"]


def test_a_second_run_of_one_task_keeps_the_others(tmp_path):
    spec = _spec(tmp_path, "tfidf", ["rotten-tomatoes", "trec"], grid={"analyzer": ["word"], "C": [1.0]})
    assert runner.invoke(app, ["baseline", str(spec)]).exit_code == 0
    assert runner.invoke(app, ["baseline", str(spec), "--tasks", "trec", "--set", "baseline.grid.C=[3.0]"]).exit_code == 0
    document = json.loads((tmp_path / "runs" / "b-tfidf" / "results.json").read_text())
    assert document["tasks"]["rotten-tomatoes"]["selected"]["C"] == 1.0 and document["tasks"]["trec"]["selected"]["C"] == 3.0
    assert document["suite"]["validation"]["tasks"] == ["rotten-tomatoes", "trec"]


class _Vocabulary:
    """A model2vec StaticModel over a word-level vocabulary of the toy tasks' words."""

    @staticmethod
    def static():
        model2vec = pytest.importorskip("model2vec")
        from tokenizers import Tokenizer
        from tokenizers.models import WordLevel
        from tokenizers.pre_tokenizers import Whitespace

        words = ["[UNK]", "[PAD]", "a", "and", *FILLER, *WORDS[0], *WORDS[1]]
        tokenizer = Tokenizer(WordLevel({w: i for i, w in enumerate(words)}, unk_token="[UNK]"))
        tokenizer.pre_tokenizer = Whitespace()
        vectors = np.random.default_rng(0).normal(size=(len(words), 8)).astype(np.float32)
        return model2vec.StaticModel(vectors, tokenizer, config={"normalize": False})


def test_model2vec_head_learns_and_its_files_reproduce_it(tmp_path, monkeypatch):
    monkeypatch.setattr(baseline_methods, "static_model_dir", lambda pca_dims, quantize_to: tmp_path / "static-model")
    _Vocabulary.static().save_pretrained(tmp_path / "static-model")
    data = toy_task("rotten-tomatoes")
    method = METHODS["model2vec"]
    predictor = method.fit(data.task, list(data.train.text_a), data.train.labels, {"pca_dims": 8, "quantize_to": "float32", "C": 10.0}, 0)
    dev = list(data.splits["validation"].text_a)
    assert (predictor.predict(dev) == np.asarray(data.splits["validation"].labels)).mean() > 0.9
    (tmp_path / "m").mkdir()
    predictor.save(tmp_path / "m")
    assert not (tmp_path / "m" / "static" / "README.md").exists()  # a model card is not needed to predict, nor counted
    assert np.array_equal(method.load(tmp_path / "m", data.task).predict(dev), predictor.predict(dev))


def test_a_diverging_fasttext_is_one_line(tmp_path, monkeypatch):
    """fastText raises RuntimeError("Encountered NaN.") when training diverges (a high lr)."""
    fasttext = pytest.importorskip("fasttext")

    def diverges(**options):
        raise RuntimeError("Encountered NaN.")

    monkeypatch.setattr(fasttext, "train_supervised", diverges)
    spec = _spec(tmp_path, "fasttext-ftz", ["rotten-tomatoes"], grid={"lr": [0.5], "epoch": [30], "bucket": [1000], "cutoff": [1000]})
    fails_cleanly(["baseline", str(spec)], tmp_path, "a smaller lr usually helps")


def test_unknown_method_is_one_line(tmp_path):
    fails_cleanly(["baseline", str(_spec(tmp_path, "svm", ["trec"]))], tmp_path, "unknown baseline method 'svm'")


def test_unknown_grid_key_names_the_known_ones(tmp_path):
    spec = _spec(tmp_path, "tfidf", ["trec"], grid={"lr": [0.1]})
    fails_cleanly(["baseline", str(spec)], tmp_path, "tfidf has no setting lr; its grid keys: analyzer, C")


def test_an_experiment_spec_is_pointed_to_eelbert_glue(tmp_path):
    spec = write(tmp_path / "x.yaml", {"name": "x", "model": {"preset": "bert-tiny"}, "glue": {"suite": "offline"}})
    fails_cleanly(["baseline", str(spec)], tmp_path, "no 'baseline' section")


def test_a_task_outside_the_spec_is_refused_before_writing(tmp_path):
    fails_cleanly(["baseline", str(_spec(tmp_path, "tfidf", ["trec"])), "--tasks", "sms-spam"], tmp_path, "not in the spec's glue.tasks")
    assert not (tmp_path / "runs").exists()


def test_a_missing_package_says_which_extra_to_install(tmp_path, monkeypatch):
    real_import = __import__

    def without_sklearn(name, *args, **kwargs):
        if name.startswith("sklearn"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr("builtins.__import__", without_sklearn)
    fails_cleanly(["baseline", str(_spec(tmp_path, "tfidf", ["trec"]))], tmp_path, "pip install 'eelbert[baselines]'")
    assert not (tmp_path / "runs").exists()


def test_spec_grid_merges_over_the_method_defaults():
    spec = BaselineSpec.model_validate({"name": "x", "baseline": {"method": "tfidf", "grid": {"C": [2.0]}}, "glue": {"suite": "offline"}})
    assert spec.baseline.configs() == [{"analyzer": analyzer, "C": 2.0, "max_features": 50000} for analyzer in ("word", "char_wb")]
