"""The small text classifiers a user would pick instead of a transformer: TF-IDF with a linear model
(scikit-learn), fastText supervised (``.bin``, and quantized ``.ftz``), and model2vec static
embeddings distilled from the MiniLM with a linear head.

Each method fits a predictor on a task's train split; ``save`` writes everything the predictor needs
into one directory (the bytes the report counts: weights, vocabulary, config), and ``load`` reads a
predictor back from there, so the kept model is scored from the files on disk, not from memory.
No pickle: arrays go to safetensors, vocabularies to JSON, fastText to its own binary format.
"""

from __future__ import annotations

import contextlib
import io
import json
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from safetensors.numpy import load_file, save_file

from eelbert_cli.core.data.resources import cache_dir, checkpoint_path
from eelbert_cli.core.data.tasks import Task
from eelbert_cli.core.errors import EelbertError

CONFIG_FILE = "baseline.json"
WEIGHTS_FILE = "weights.safetensors"
PAIR_SEPARATOR = " [SEP] "  # how a sentence pair becomes one text for a bag-of-words model
EXTRA = "pip install 'eelbert[baselines]'"


def _needs(module: str, method: str) -> Any:
    try:
        return __import__(module, fromlist=["_"])
    except ImportError:
        raise EelbertError(f"the {method} baseline needs the {module.split('.')[0]} package: {EXTRA}") from None


def task_texts(text_a: Sequence[str], text_b: Sequence[str] | None) -> list[str]:
    """One text per example: a pair is joined by a separator (every method sees the same string)."""
    if text_b is None:
        return list(text_a)
    return [f"{a}{PAIR_SEPARATOR}{b}" for a, b in zip(text_a, text_b, strict=True)]


class Predictor(ABC):
    """A fitted baseline: label ids (classification) or scores (regression) for texts."""

    @abstractmethod
    def predict(self, texts: Sequence[str]) -> np.ndarray: ...

    @abstractmethod
    def save(self, directory: Path) -> None: ...


class Method(ABC):
    name: str
    title: str
    default_grid: dict[str, list]
    regression: bool = True  # whether the method can score a regression task at all
    requires: tuple[str, ...] = ("sklearn",)

    def check_available(self) -> None:
        for module in self.requires:
            _needs(module, self.name)

    def not_applicable(self, task: Task) -> str | None:
        """Why this method cannot run ``task`` (shown in the table), or None."""
        if task.type == "regression" and not self.regression:
            return f"{self.title} has no regression mode"
        return None

    @abstractmethod
    def fit(self, task: Task, texts: Sequence[str], labels: Sequence, settings: dict, seed: int) -> Predictor: ...

    @abstractmethod
    def load(self, directory: Path, task: Task) -> Predictor: ...

    def describe(self, settings: dict) -> str:
        return f"{self.title} ({', '.join(f'{key} {value}' for key, value in settings.items())})"


def _write_config(directory: Path, method: str, task: Task, settings: dict, **extra: Any) -> None:
    config = {"method": method, "task": task.name, "type": task.type, "labels": list(task.labels), "settings": settings, **extra}
    (directory / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")


def _read_config(directory: Path) -> dict:
    try:
        return json.loads((directory / CONFIG_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise EelbertError(f"{directory / CONFIG_FILE}: cannot read the baseline's config ({error})") from None


class LinearHead:
    """Logistic regression (classification) or ridge regression, fitted by scikit-learn and kept as
    plain arrays, so prediction is one matrix product and the files hold no pickle."""

    def __init__(self, coef: np.ndarray, intercept: np.ndarray, regression: bool) -> None:
        # C order: scikit-learn's coef_ may be Fortran-ordered, and safetensors writes the raw buffer
        self.coef = np.ascontiguousarray(coef, dtype=np.float32)
        self.intercept, self.regression = np.ascontiguousarray(intercept, dtype=np.float32), regression

    @classmethod
    def fit(cls, features: Any, labels: Sequence, regression: bool, c: float, seed: int) -> LinearHead:
        linear_model = _needs("sklearn.linear_model", "linear-head")
        if regression:
            model = linear_model.Ridge(alpha=1.0 / c, random_state=seed).fit(features, np.asarray(labels, dtype=np.float64))
            return cls(np.atleast_2d(model.coef_), np.atleast_1d(model.intercept_), True)
        model = linear_model.LogisticRegression(C=c, max_iter=3000, random_state=seed).fit(features, np.asarray(labels))
        if not np.array_equal(model.classes_, np.arange(len(model.classes_))):
            raise EelbertError(f"the train split holds labels {model.classes_.tolist()}: a linear head needs every class 0..k-1 in it")
        return cls(model.coef_, model.intercept_, False)

    def predict(self, features: Any) -> np.ndarray:
        scores = np.asarray(features @ self.coef.T) + self.intercept
        if self.regression:
            return scores[:, 0]
        if scores.shape[1] == 1:  # binary logistic regression keeps one weight row
            return (scores[:, 0] > 0).astype(np.int64)
        return scores.argmax(axis=1)

    def tensors(self) -> dict[str, np.ndarray]:
        return {"coef": self.coef, "intercept": self.intercept}


def _read_weights(directory: Path) -> dict[str, np.ndarray]:
    try:
        return load_file(str(directory / WEIGHTS_FILE))
    except Exception as error:  # safetensors raises its own types for a truncated file
        raise EelbertError(f"{directory / WEIGHTS_FILE}: cannot read the baseline's weights ({error})") from None


# --- TF-IDF + logistic/ridge regression -------------------------------------------------------

TFIDF_NGRAMS = {"word": (1, 2), "char_wb": (2, 5)}


class TfidfPredictor(Predictor):
    def __init__(self, vectorizer: Any, head: LinearHead, settings: dict, task: Task) -> None:
        self.vectorizer, self.head, self.settings, self.task = vectorizer, head, settings, task

    def predict(self, texts: Sequence[str]) -> np.ndarray:
        return self.head.predict(self.vectorizer.transform(texts))

    def save(self, directory: Path) -> None:
        terms = sorted(self.vectorizer.vocabulary_, key=self.vectorizer.vocabulary_.get)
        (directory / "vocabulary.json").write_text(json.dumps(terms, ensure_ascii=False), encoding="utf-8")
        idf = np.ascontiguousarray(self.vectorizer.idf_, dtype=np.float32)
        save_file({"idf": idf, **self.head.tensors()}, str(directory / WEIGHTS_FILE))
        _write_config(directory, "tfidf", self.task, self.settings)


class Tfidf(Method):
    name, title = "tfidf", "TF-IDF"
    default_grid = {"analyzer": ["word", "char_wb"], "C": [1.0, 10.0], "max_features": [50000]}

    @staticmethod
    def _vectorizer(settings: dict, vocabulary: dict[str, int] | None = None) -> Any:
        text = _needs("sklearn.feature_extraction.text", "tfidf")
        analyzer = settings["analyzer"]
        if analyzer not in TFIDF_NGRAMS:
            raise EelbertError(f"tfidf analyzer {analyzer!r}: choose one of {', '.join(TFIDF_NGRAMS)}")
        return text.TfidfVectorizer(analyzer=analyzer, ngram_range=TFIDF_NGRAMS[analyzer], sublinear_tf=True,
                                    max_features=None if vocabulary else int(settings["max_features"]), vocabulary=vocabulary)

    def fit(self, task: Task, texts: Sequence[str], labels: Sequence, settings: dict, seed: int) -> Predictor:
        vectorizer = self._vectorizer(settings)
        features = vectorizer.fit_transform(texts)
        vectorizer.idf_ = vectorizer.idf_.astype(np.float32).astype(np.float64)  # as saved: the files reproduce these scores
        head = LinearHead.fit(features, labels, task.type == "regression", float(settings["C"]), seed)
        return TfidfPredictor(vectorizer, head, settings, task)

    def load(self, directory: Path, task: Task) -> Predictor:
        settings = _read_config(directory)["settings"]
        terms = json.loads((directory / "vocabulary.json").read_text(encoding="utf-8"))
        vectorizer = self._vectorizer(settings, {term: index for index, term in enumerate(terms)})
        weights = _read_weights(directory)
        vectorizer.idf_ = weights["idf"].astype(np.float64)
        return TfidfPredictor(vectorizer, LinearHead(weights["coef"], weights["intercept"], task.type == "regression"), settings, task)


# --- fastText supervised ----------------------------------------------------------------------

FASTTEXT_LABEL = "__label__"
FASTTEXT_GRID = {"lr": [0.1, 0.5], "epoch": [25], "wordNgrams": [2], "dim": [50], "minn": [0], "maxn": [0], "bucket": [200000]}


def _fasttext() -> Any:
    fasttext = _needs("fasttext", "fasttext")
    fasttext.FastText.eprint = lambda *args, **kwargs: None  # its load_model prints a warning per call
    return fasttext


def _one_line(text: str) -> str:
    return " ".join(text.split())  # fastText reads one example per line


class FastTextPredictor(Predictor):
    def __init__(self, model: Any, settings: dict, task: Task, file_name: str) -> None:
        self.model, self.settings, self.task, self.file_name = model, settings, task, file_name

    def predict(self, texts: Sequence[str]) -> np.ndarray:
        labels, _ = self.model.predict([_one_line(text) for text in texts], k=1)
        return np.array([int(label[0].removeprefix(FASTTEXT_LABEL)) for label in labels], dtype=np.int64)

    def save(self, directory: Path) -> None:
        self.model.save_model(str(directory / self.file_name))
        _write_config(directory, "fasttext", self.task, self.settings, file=self.file_name)


class FastText(Method):
    """fastText supervised, one thread (deterministic for a seed). ``quantize`` gives the ``.ftz``
    (product-quantized, retrained, vocabulary cut to ``cutoff`` words): fastText's small model."""

    regression = False
    requires = ("fasttext",)

    def __init__(self, quantize: bool = False) -> None:
        self.quantize = quantize
        self.default_grid = {**FASTTEXT_GRID, **({"cutoff": [50000]} if quantize else {})}
        self.name = "fasttext-ftz" if quantize else "fasttext"
        self.title = "fastText .ftz" if quantize else "fastText"

    def fit(self, task: Task, texts: Sequence[str], labels: Sequence, settings: dict, seed: int) -> Predictor:
        fasttext = _fasttext()
        options = {key: value for key, value in settings.items() if key != "cutoff"}
        with tempfile.TemporaryDirectory(prefix="eelbert-fasttext-") as scratch:
            train_file = Path(scratch) / "train.txt"
            lines = (f"{FASTTEXT_LABEL}{int(label)} {_one_line(text)}\n" for text, label in zip(texts, labels, strict=True))
            train_file.write_text("".join(lines), encoding="utf-8")
            try:
                model = fasttext.train_supervised(input=str(train_file), seed=seed, thread=1, verbose=0, **options)
                if self.quantize:
                    model.quantize(input=str(train_file), qnorm=True, retrain=True, cutoff=int(settings["cutoff"]), thread=1)
            except (TypeError, ValueError) as error:
                raise EelbertError(f"fastText refused the settings {settings}: {error}") from None
            except RuntimeError as error:  # "Encountered NaN": the rate is too high for this data
                raise EelbertError(f"fastText failed on {task.name} with {settings} ({error}); a smaller lr usually helps") from None
        return FastTextPredictor(model, settings, task, "model.ftz" if self.quantize else "model.bin")

    def load(self, directory: Path, task: Task) -> Predictor:
        config = _read_config(directory)
        path = directory / config["file"]
        try:
            model = _fasttext().load_model(str(path))
        except ValueError as error:
            raise EelbertError(f"{path}: cannot read the fastText model ({error})") from None
        return FastTextPredictor(model, config["settings"], task, config["file"])


# --- model2vec static embeddings + a linear head ----------------------------------------------

MODEL2VEC_TEACHER = "all-MiniLM-L6-v2"


def static_model_dir(pca_dims: int, quantize_to: str) -> Path:
    """model2vec distilled from the MiniLM (the wheel the toolkit reads offline), once per setting,
    kept in the cache: ~1 minute on 2 cores."""
    directory = cache_dir() / "model2vec" / f"{MODEL2VEC_TEACHER}-pca{pca_dims}-{quantize_to}"
    if (directory / "model.safetensors").is_file():
        return directory
    distill = _needs("model2vec.distill", "model2vec").distill
    from eelbert_cli.core.console import log
    from eelbert_cli.core.files import replacing

    log.info("distilling model2vec from %s (pca_dims %d, %s; once, into %s)", MODEL2VEC_TEACHER, pca_dims, quantize_to, directory)
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):  # its per-token progress bars
        model = distill(model_name=str(checkpoint_path(MODEL2VEC_TEACHER)), pca_dims=pca_dims, quantize_to=quantize_to)
    with replacing(directory, directory=True) as partial:
        model.save_pretrained(partial)
    return directory


def _load_static(directory: Path) -> Any:
    static = _needs("model2vec", "model2vec")
    try:
        return static.StaticModel.from_pretrained(directory, force_download=False)
    except (OSError, ValueError) as error:
        raise EelbertError(f"{directory}: cannot read the model2vec model ({error})") from None


class Model2VecPredictor(Predictor):
    def __init__(self, static: Any, head: LinearHead, settings: dict, task: Task) -> None:
        self.static, self.head, self.settings, self.task = static, head, settings, task

    def predict(self, texts: Sequence[str]) -> np.ndarray:
        return self.head.predict(self.static.encode(list(texts), use_multiprocessing=False))

    def save(self, directory: Path) -> None:
        self.static.save_pretrained(directory / "static")
        (directory / "static" / "README.md").unlink(missing_ok=True)  # a model card: not read to predict, not counted
        save_file(self.head.tensors(), str(directory / WEIGHTS_FILE))
        _write_config(directory, "model2vec", self.task, self.settings, teacher=MODEL2VEC_TEACHER)


class Model2Vec(Method):
    name, title = "model2vec", "model2vec"
    requires = ("model2vec", "sklearn")
    default_grid = {"pca_dims": [256], "quantize_to": ["float16"], "C": [1.0, 10.0]}

    def fit(self, task: Task, texts: Sequence[str], labels: Sequence, settings: dict, seed: int) -> Predictor:
        static = _load_static(static_model_dir(int(settings["pca_dims"]), str(settings["quantize_to"])))
        features = static.encode(list(texts), use_multiprocessing=False)
        head = LinearHead.fit(features, labels, task.type == "regression", float(settings["C"]), seed)
        return Model2VecPredictor(static, head, settings, task)

    def load(self, directory: Path, task: Task) -> Predictor:
        settings = _read_config(directory)["settings"]
        weights = _read_weights(directory)
        head = LinearHead(weights["coef"], weights["intercept"], task.type == "regression")
        return Model2VecPredictor(_load_static(directory / "static"), head, settings, task)


METHODS: dict[str, Method] = {method.name: method for method in (Tfidf(), FastText(), FastText(quantize=True), Model2Vec())}


def get_method(name: str) -> Method:
    if name not in METHODS:
        raise EelbertError(f"unknown baseline method {name!r}; choose one of {', '.join(METHODS)}")
    return METHODS[name]
