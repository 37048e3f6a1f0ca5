"""An export directory in, labels and probabilities out: numpy, tokenizers and onnxruntime only.

At load it rebuilds the word-vector table: for EELBERT from the hash settings and the vocabulary
(:mod:`eelbert_runtime.hashing`, proven against the export's test vectors), for BERT from the shipped
``word_embeddings.npy``; the tokenizer comes from the compact ``vocab.txt`` and the export's
"wordpiece" settings (format 2) or from a full ``tokenizer.json`` (format 1, or a tokenizer that is
not plain BERT WordPiece). Every damaged field is one :class:`ExportError` naming it.

    from eelbert_runtime import ExportedModel
    model = ExportedModel.load("exports/uno-rt")
    model.predict(["a gorgeous, witty film", "a dull mess"])   # -> [Prediction(label='fresh', ...), ...]
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from eelbert_runtime.hashing import HashSettings, hash_settings_problems, hash_vectors_numpy
from eelbert_runtime.wordpiece import build_tokenizer, read_vocabulary, settings_problems

EXPORT_FORMAT = 2  # 2: the vocabulary as vocab.txt + "wordpiece" settings; 1: tokenizer.json only
READABLE_FORMATS = (1, 2)
EXPORT_FILE = "export.json"


class ExportError(Exception):
    """The export directory is missing, damaged or edited: the message names the file and the field."""


def read_json_object(path: Path, missing: str) -> dict:
    if not path.is_file():
        raise ExportError(missing)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ExportError(f"{path} is unreadable ({error})") from None
    if not isinstance(data, dict):
        raise ExportError(f"{path} should hold a JSON object")
    return data


@dataclass(frozen=True)
class Prediction:
    label: str | float  # a class name, or the score of a regression task
    probabilities: dict[str, float] | None  # classification only


def is_export_dir(path: str | Path) -> bool:
    return (Path(path) / EXPORT_FILE).is_file()


def _read_export(directory: Path) -> dict:
    document = read_json_object(directory / EXPORT_FILE,
                                f"{directory} is not an export directory (no {EXPORT_FILE}); make one with `eelbert export`")
    if document.get("format") not in READABLE_FORMATS:
        raise ExportError(
            f"{directory / EXPORT_FILE} has export format {document.get('format')!r}; "
            f"this runtime reads formats {', '.join(map(str, READABLE_FORMATS))}: export the model again"
        )
    problems = export_problems(document)
    if problems:
        raise ExportError(f"{directory / EXPORT_FILE} is damaged: {'; '.join(problems)}; export the model again")
    return document


def _whole(value: object, least: int) -> bool:
    return type(value) is int and value >= least


def _file_name(value: object) -> bool:
    """A plain file name inside the export directory (no path, no way out of it)."""
    return isinstance(value, str) and value not in ("", ".", "..") and "/" not in value and "\\" not in value


def export_problems(document: dict) -> list[str]:
    """Every way ``export.json`` breaks the format (empty when it is sound). Plain Python on purpose:
    the runtime needs nothing beyond numpy, tokenizers and onnxruntime."""
    problems = []
    kind = document.get("type")
    if kind not in ("classification", "regression"):
        problems.append(f"'type' must be classification or regression, not {kind!r}")
    labels = document.get("labels")
    if not isinstance(labels, list) or not all(isinstance(label, str) and label for label in labels):
        problems.append("'labels' must be a list of non-empty strings")
    elif len(set(labels)) != len(labels) or (kind == "classification" and len(labels) < 2):
        problems.append(f"'labels' must name two or more different classes, not {labels}")
    if not _whole(document.get("max_seq_len"), 2):
        problems.append(f"'max_seq_len' must be a whole number >= 2, not {document.get('max_seq_len')!r}")
    if document.get("text_inputs") not in (None, 1, 2):
        problems.append(f"'text_inputs' must be 1 (single texts) or 2 (sentence pairs), not {document.get('text_inputs')!r}")
    if not _whole(document.get("hidden"), 1):
        problems.append(f"'hidden' must be a whole number >= 1, not {document.get('hidden')!r}")
    for field in ("model", "tokenizer"):
        if not _file_name(document.get(field)):
            problems.append(f"'{field}' must name a file in the export directory, not {document.get(field)!r}")
    hashed, table = document.get("hash"), document.get("word_table")
    if (hashed is None) == (table is None):
        problems.append("exactly one of 'hash' (a hash model) and 'word_table' (a BERT word table) must be set")
    elif hashed is not None and not isinstance(hashed, dict):
        problems.append("'hash' must be an object (the hash settings)")
    elif table is not None and not _file_name(table):
        problems.append(f"'word_table' must name a file in the export directory, not {table!r}")
    wordpiece = document.get("wordpiece")
    if wordpiece is not None:
        problems.extend(settings_problems(wordpiece))
    elif isinstance(document.get("tokenizer"), str) and not document["tokenizer"].endswith(".json"):
        problems.append("a vocabulary file as 'tokenizer' needs the 'wordpiece' settings beside it")
    vectors = document.get("test_vectors", [])
    if not isinstance(vectors, list) or not all(
        isinstance(v, dict) and isinstance(v.get("string"), str) and isinstance(v.get("first_values"), list)
        and all(isinstance(x, int | float) for x in v["first_values"]) for v in vectors
    ):
        problems.append("'test_vectors' must be a list of {string, first_values}")
    elif hashed is not None and not vectors:
        problems.append("a hash model's export must carry 'test_vectors' (how a runtime proves its hash)")
    return problems


class ExportedModel:
    """An exported model, ready to predict. Batches are padded to their longest example."""

    def __init__(self, directory: Path, document: dict, tokenizer, table: np.ndarray, session) -> None:
        self.directory, self.document, self.tokenizer, self.table, self.session = directory, document, tokenizer, table, session
        self.labels: list[str] = list(document["labels"])
        self.regression = document["type"] == "regression"
        self.pad_id = tokenizer.token_to_id((document.get("wordpiece") or {}).get("pad_token", "[PAD]")) or 0
        self.max_seq_len: int = document["max_seq_len"]
        self.text_inputs: int | None = document.get("text_inputs")  # 1 or 2; None: an export made before it was recorded
        self.truncated = 0  # texts cut to max_seq_len so far (a caller may warn)

    @classmethod
    def load(cls, directory: str | Path) -> ExportedModel:
        import onnxruntime
        directory = Path(directory)
        document = _read_export(directory)
        tokenizer = load_tokenizer(directory, document)
        try:
            options = onnxruntime.SessionOptions()
            options.log_severity_level = 3  # errors only: onnxruntime's graph-optimisation warnings are not the user's business
            session = onnxruntime.InferenceSession(str(directory / document["model"]), options, providers=["CPUExecutionProvider"])
        except Exception as error:  # onnxruntime raises its own types
            raise ExportError(f"could not load the export in {directory} ({type(error).__name__}: {error})") from None
        table = word_table(directory, document, tokenizer)
        model = cls(directory, document, tokenizer, table, session)
        model.check_graph()
        return model

    def check_graph(self) -> None:
        """One pass at the full length: the graph must take ``hidden``-wide vectors for ``max_seq_len``
        positions and give one output per label (a hand-edited export.json would otherwise fail on
        long inputs only, or name the wrong labels)."""
        length, hidden = self.document["max_seq_len"], self.document["hidden"]
        feeds = {"inputs_embeds": np.zeros((1, length, hidden), dtype=np.float32), "attention_mask": np.ones((1, length), dtype=np.int64),
                 "token_type_ids": np.zeros((1, length), dtype=np.int64)}
        try:
            logits = self.session.run(None, feeds)[0]
        except Exception as error:  # onnxruntime's own error types
            raise ExportError(
                f"{self.directory / EXPORT_FILE} does not fit its graph (hidden {hidden}, max_seq_len {length}: "
                f"{type(error).__name__}: {str(error)[:200]}); export the model again"
            ) from None
        outputs = 1 if self.regression else len(self.labels)
        if logits.shape != (1, outputs):
            raise ExportError(
                f"{self.directory / EXPORT_FILE} names {outputs} output(s) ({', '.join(self.labels) or 'a score'}) "
                f"but its graph gives {logits.shape[-1]}; export the model again"
            )

    def logits(self, texts: Sequence[str], pairs: Sequence[str] | None = None) -> np.ndarray:
        inputs = list(texts) if pairs is None else list(zip(texts, pairs, strict=True))
        encodings = self.tokenizer.encode_batch(inputs, add_special_tokens=True)
        self.truncated += sum(1 for encoding in encodings if encoding.overflowing)
        width = max(len(e.ids) for e in encodings)
        ids = np.full((len(encodings), width), self.pad_id, dtype=np.int64)
        types = np.zeros_like(ids)
        mask = np.zeros_like(ids)
        for row, encoding in enumerate(encodings):
            ids[row, : len(encoding.ids)] = encoding.ids
            types[row, : len(encoding.ids)] = encoding.type_ids
            mask[row, : len(encoding.ids)] = 1
        feeds = {"inputs_embeds": self.table[ids], "attention_mask": mask, "token_type_ids": types}
        return self.session.run(None, feeds)[0]

    def predict(self, texts: Sequence[str], pairs: Sequence[str] | None = None) -> list[Prediction]:
        if not texts:
            return []
        return predictions_from_logits(self.logits(texts, pairs), self.labels, self.regression)


def predictions_from_logits(logits: np.ndarray, labels: Sequence[str], regression: bool) -> list[Prediction]:
    """Scores for regression; for classification the arg-max label and the softmax over labels."""
    if regression:
        return [Prediction(float(value), None) for value in logits[:, 0]]
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    probabilities = shifted / shifted.sum(axis=1, keepdims=True)
    return [Prediction(labels[int(row.argmax())], {label: float(p) for label, p in zip(labels, row, strict=True)}) for row in probabilities]


def word_table(directory: Path, document: dict, tokenizer) -> np.ndarray:
    """The [vocabulary, hidden] float32 table the graph's word vectors come from."""
    by_id = {index: token for token, index in tokenizer.get_vocab(with_added_tokens=True).items()}
    missing = sorted(set(range(max(by_id) + 1)) - set(by_id)) if by_id else [0]
    if missing:
        raise ExportError(
            f"{directory / document['tokenizer']} has gaps in its vocabulary (no token with id {missing[0]}); export the model again")
    if document.get("hash") is not None:
        config = hash_config(directory, document)
        return hash_vectors_numpy([by_id[i] for i in range(len(by_id))], document["hidden"], config)
    path = directory / document["word_table"]
    try:
        table = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as error:  # missing, cut or not an array file
        raise ExportError(f"{path} is unreadable ({type(error).__name__}: {error}); export the model again") from None
    if table.shape != (len(by_id), document["hidden"]):
        raise ExportError(
            f"{path} holds a {list(table.shape)} table; the tokenizer and export.json need [{len(by_id)}, {document['hidden']}]")
    return table.astype(np.float32)


def load_tokenizer(directory: Path, document: dict):
    """The export's tokenizer, truncating to its length: vocab.txt + settings, or tokenizer.json."""
    from tokenizers import Tokenizer

    path = directory / document["tokenizer"]
    try:
        if document.get("wordpiece") is None:
            tokenizer = Tokenizer.from_file(str(path))
        else:
            tokenizer = build_tokenizer(read_vocabulary(path), document["wordpiece"])
    except ValueError as error:  # ours, naming the line or the token
        raise ExportError(f"{error}; export the model again") from None
    except Exception as error:  # tokenizers raises its own types (a missing or unparsable file)
        raise ExportError(f"could not load the tokenizer {path} ({type(error).__name__}: {error}); export the model again") from None
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length=document["max_seq_len"], strategy="longest_first")
    return tokenizer


def hash_config(directory: Path, document: dict) -> HashSettings:
    """The export's hash settings, proven against its own test vectors: a tampered seed or n-gram range
    would otherwise give confident, wrong predictions."""
    problems = hash_settings_problems(document["hash"])
    if problems:
        raise ExportError(f"{directory / EXPORT_FILE} has invalid hash settings ({'; '.join(problems)}); export the model again")
    config = HashSettings.from_mapping(document["hash"])
    vectors = document["test_vectors"]
    computed = hash_vectors_numpy([vector["string"] for vector in vectors], document["hidden"], config)
    for row, vector in enumerate(vectors):
        expected = np.asarray(vector["first_values"], dtype=np.float32)
        if not np.allclose(computed[row, : len(expected)], expected, rtol=1e-5, atol=1e-6):
            raise ExportError(
                f"{directory / EXPORT_FILE}: the hash settings do not reproduce the export's test vector for {vector['string']!r} "
                "(export.json was edited, or this runtime hashes differently); export the model again"
            )
    return config
