"""`eelbert predict`: labels for new text from a fine-tuned checkpoint (torch) or an export (runtime).

Input is texts on the command line or a file (``.txt``: one text per line; ``.jsonl`` / ``.csv``:
the ``--column`` field, and ``--pair-column`` for sentence-pair tasks). Output is one JSON object
per text, streamed in batches into a temporary file that replaces ``--output`` only when every
text has been predicted: bad input never leaves a partial file.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator, Sequence
from dataclasses import asdict
from pathlib import Path

from eelbert_cli.core.data.tables import BadLines, DelimitedRecords, jsonl_records
from eelbert_cli.core.errors import EelbertError
from eelbert_cli.core.export.runtime import ExportedModel, Prediction, is_export_dir, predictions_from_logits
from eelbert_cli.core.files import replacing

Example = tuple[str, str | None]


class CheckpointModel:
    """A fine-tuned checkpoint behind the runtime's ``predict`` interface (torch and transformers)."""

    def __init__(self, checkpoint: Path) -> None:
        from eelbert_cli.core.data.tasks.record import check_head_matches, read_task_record
        from eelbert_cli.core.data.tokenization import load_tokenizer
        from eelbert_cli.core.model.modeling import load_model
        from eelbert_cli.core.spec import FinetuneSpec

        record = read_task_record(checkpoint)
        self.model = load_model(checkpoint, "sequence-classification").eval()
        check_head_matches(record, self.model.config.num_labels, checkpoint)
        self.tokenizer = load_tokenizer(checkpoint)
        self.settings = FinetuneSpec(max_seq_len=record.get("max_seq_len", 128), device="cpu")
        self.regression = record.get("type") == "regression"
        self.labels = record.get("labels") or [str(i) for i in range(self.model.config.num_labels)]
        self.max_seq_len: int = self.settings.max_seq_len
        self.truncated = 0  # texts cut to max_seq_len so far (a caller may warn)

    def predict(self, texts: Sequence[str], pairs: Sequence[str] | None = None) -> list[Prediction]:
        from eelbert_cli.core.data.tasks import Split
        from eelbert_cli.core.finetuning.encoding import encode_split, predict_logits

        split = Split("input", tuple(texts), tuple(pairs) if pairs is not None else None, None, tuple(range(len(texts))))
        inputs = list(texts) if pairs is None else list(zip(texts, pairs, strict=True))
        self.truncated += sum(1 for e in self.tokenizer.encode_batch(inputs) if len(e.ids) > self.max_seq_len)
        encoded = encode_split(self.tokenizer, split, self.settings.max_seq_len)
        logits = predict_logits(self.model, encoded, self.settings, self.tokenizer.token_to_id("[PAD]") or 0)
        return predictions_from_logits(logits, self.labels, self.regression)


def load_predictor(target: Path):
    """An export directory runs on the torch-free runtime; a fine-tuned checkpoint on torch."""
    if is_export_dir(target):
        return ExportedModel.load(target)
    if (target / "config.json").is_file():
        return CheckpointModel(target)
    raise EelbertError(f"{target} is neither an export directory (export.json) nor a fine-tuned checkpoint (config.json + task.json)")


def read_examples(path: Path, column: str, pair_column: str | None) -> list[Example]:
    """Every example of an input file, checked before anything is predicted."""
    if not path.is_file():
        raise EelbertError(f"{path}: file not found")
    try:
        text = path.read_bytes().decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as error:
        raise EelbertError(f"{path} is not UTF-8 text (byte {error.start}); re-save it as UTF-8") from None
    suffix = path.suffix.lower()
    if suffix == ".txt":
        if pair_column:
            raise EelbertError("--pair-column needs a .jsonl or .csv input")
        lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")  # line breaks only: U+2028, form feeds stay in a text
        return [(line, None) for line in lines if line.strip()]
    if suffix not in (".jsonl", ".csv"):
        raise EelbertError(f"{path}: unsupported input type {suffix or '(none)'!r}; use .txt, .jsonl or .csv")
    bad = BadLines(path, "error")
    if suffix == ".jsonl":
        records = jsonl_records(text.split("\n"), bad)
    else:
        records = DelimitedRecords(io.StringIO(text, newline=None), bad, ",", csv.QUOTE_MINIMAL)
    examples = []
    for line, record in records:
        for name in filter(None, (column, pair_column)):
            if not isinstance(record.get(name), str):
                raise EelbertError(f"{path}:{line}: no text in column {name!r} (columns: {', '.join(record)})")
        examples.append((record[column], record[pair_column] if pair_column else None))
    return examples


def check_examples(examples: Sequence[Example], where: str) -> None:
    if not examples:
        raise EelbertError(f"{where}: nothing to predict")
    for number, (text, pair) in enumerate(examples, start=1):
        if not text.strip() or (pair is not None and not pair.strip()):
            raise EelbertError(f"{where}: example {number} is empty text")


def batches(examples: Sequence[Example], size: int) -> Iterator[Sequence[Example]]:
    for start in range(0, len(examples), size):
        yield examples[start : start + size]


def truncation_warning(predictor, total: int) -> str | None:
    """What to tell a user whose texts were cut to the model's length (None: none were)."""
    cut = getattr(predictor, "truncated", 0)
    if not cut:
        return None
    return (f"{cut:,} of {total:,} texts were longer than the model's {predictor.max_seq_len} tokens and were cut to them "
            "(their predictions read only the beginning)")


def prediction_line(text: str, pair: str | None, prediction: Prediction) -> str:
    """One JSON line: the text (and its pair), the label and probabilities. U+2028 and U+2029 are
    escaped: valid JSON raw, but line-splitting readers (Python's ``splitlines``) break a row at them."""
    row = {"text": text, **({"text_pair": pair} if pair is not None else {}), **asdict(prediction)}
    return json.dumps(row, ensure_ascii=False).replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def predict_to_file(predictor, examples: Sequence[Example], output: Path, batch_size: int, on_batch=None) -> int:
    """Predictions as JSON lines into ``output``, which appears only once all are written."""
    with replacing(output) as partial, open(partial, "w", encoding="utf-8") as sink:
        for batch in batches(examples, batch_size):
            texts = [text for text, _ in batch]
            pairs = [pair for _, pair in batch] if batch[0][1] is not None else None
            for (text, pair), prediction in zip(batch, predictor.predict(texts, pairs), strict=True):
                sink.write(prediction_line(text, pair, prediction) + "\n")
            if on_batch is not None:
                on_batch(len(batch))
    return len(examples)
