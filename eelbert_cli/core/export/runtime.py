"""The torch-free runtime: an export directory in, labels and probabilities out.

Needs only numpy, ``tokenizers`` and ``onnxruntime`` (``pip install eelbert[runtime]``); importing
this module imports neither torch nor transformers (tested). At load it rebuilds the word-vector
table: for EELBERT from the hash config and the tokenizer's vocabulary (``model/hashing.py``, the
same numbers as the torch model), for BERT from the shipped ``word_embeddings.npy``.

    from eelbert_cli.core.export.runtime import ExportedModel
    model = ExportedModel.load("exports/uno-rt")
    model.predict(["a gorgeous, witty film", "a dull mess"])   # -> [Prediction(label='fresh', ...), ...]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from eelbert_cli.core.errors import EelbertError
from eelbert_cli.core.files import read_json_object
from eelbert_cli.core.model.hashing import HashConfig, hash_vectors_numpy

EXPORT_FORMAT = 1
EXPORT_FILE = "export.json"


@dataclass(frozen=True)
class Prediction:
    label: str | float  # a class name, or the score of a regression task
    probabilities: dict[str, float] | None  # classification only


def is_export_dir(path: str | Path) -> bool:
    return (Path(path) / EXPORT_FILE).is_file()


def _read_export(directory: Path) -> dict:
    document = read_json_object(directory / EXPORT_FILE,
                                f"{directory} is not an export directory (no {EXPORT_FILE}); make one with `eelbert export`")
    if document.get("format") != EXPORT_FORMAT:
        raise EelbertError(
            f"{directory / EXPORT_FILE} has export format {document.get('format')!r}; "
            f"this eelbert reads format {EXPORT_FORMAT}: export the model again"
        )
    return document


class ExportedModel:
    """An exported model, ready to predict. Batches are padded to their longest example."""

    def __init__(self, directory: Path, document: dict, tokenizer, table: np.ndarray, session) -> None:
        self.directory, self.document, self.tokenizer, self.table, self.session = directory, document, tokenizer, table, session
        self.labels: list[str] = list(document["labels"])
        self.regression = document["type"] == "regression"
        self.pad_id = tokenizer.token_to_id("[PAD]") or 0

    @classmethod
    def load(cls, directory: str | Path) -> ExportedModel:
        import onnxruntime
        from tokenizers import Tokenizer

        directory = Path(directory)
        document = _read_export(directory)
        try:
            tokenizer = Tokenizer.from_file(str(directory / document["tokenizer"]))
            session = onnxruntime.InferenceSession(str(directory / document["model"]), providers=["CPUExecutionProvider"])
        except Exception as error:  # tokenizers and onnxruntime raise their own types
            raise EelbertError(f"could not load the export in {directory} ({type(error).__name__}: {error})") from None
        tokenizer.no_padding()
        tokenizer.enable_truncation(max_length=document["max_seq_len"], strategy="longest_first")
        return cls(directory, document, tokenizer, word_table(directory, document, tokenizer), session)

    def logits(self, texts: Sequence[str], pairs: Sequence[str] | None = None) -> np.ndarray:
        inputs = list(texts) if pairs is None else list(zip(texts, pairs, strict=True))
        encodings = self.tokenizer.encode_batch(inputs, add_special_tokens=True)
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
    if document.get("hash") is not None:
        by_id = {index: token for token, index in tokenizer.get_vocab(with_added_tokens=True).items()}
        vocabulary = [by_id[i] for i in range(max(by_id) + 1)]
        return hash_vectors_numpy(vocabulary, document["hidden"], HashConfig.model_validate(document["hash"]))
    return np.load(directory / document["word_table"], allow_pickle=False).astype(np.float32)
