"""`eelbert predict`: labels for new text from a fine-tuned checkpoint (torch) or an export (runtime).

Input is texts on the command line or a file (``.txt``: one text per line; ``.jsonl`` / ``.csv``:
the ``--column`` field, ``--pair-column`` for sentence-pair tasks, and an ``id`` field passed through
to the output when the file has one). Output is one JSON object per text, or a CSV row when
``--output`` ends in ``.csv`` (one probability column per label), streamed in batches into a
temporary file that replaces ``--output`` only when every text has been predicted: bad input never
leaves a partial file.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import NamedTuple

from eelbert_cli.core.data.tables import BadLines, DelimitedRecords, jsonl_records
from eelbert_cli.core.errors import EelbertError
from eelbert_cli.core.export.runtime import ExportedModel, Prediction, is_export_dir, predictions_from_logits
from eelbert_cli.core.files import replacing

DEFAULT_ID_COLUMN = "id"


class Example(NamedTuple):
    text: str
    pair: str | None = None
    id: str | None = None  # the input's own identifier, passed through to the output row


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
        self.text_inputs: int | None = record.get("text_inputs")
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


def read_examples(path: Path, column: str, pair_column: str | None, id_column: str | None = None) -> list[Example]:
    """Every example of an input file, checked before anything is predicted. ``id_column`` None:
    the ``id`` field is passed through where the file has one; named: every row must have it."""
    if not path.is_file():
        raise EelbertError(f"{path}: file not found")
    try:
        text = path.read_bytes().decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as error:
        raise EelbertError(f"{path} is not UTF-8 text (byte {error.start}); re-save it as UTF-8") from None
    suffix = path.suffix.lower()
    if suffix == ".txt":
        if pair_column or id_column:
            raise EelbertError(f"{'--pair-column' if pair_column else '--id-column'} needs a .jsonl or .csv input")
        lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")  # line breaks only: U+2028, form feeds stay in a text
        return [Example(line) for line in lines if line.strip()]
    if suffix not in (".jsonl", ".csv"):
        raise EelbertError(f"{path}: unsupported input type {suffix or '(none)'!r}; use .txt, .jsonl or .csv")
    bad = BadLines(path, "error")
    if suffix == ".jsonl":
        records = jsonl_records(text.split("\n"), bad)
    else:
        records = DelimitedRecords(io.StringIO(text, newline=None), bad, ",", csv.QUOTE_MINIMAL)
    examples: list[Example] = []
    ids = None  # the id column in use, decided by the first row when not named
    for line, record in records:
        for name in filter(None, (column, pair_column)):
            if not isinstance(record.get(name), str):
                raise EelbertError(f"{path}:{line}: no text in column {name!r} (columns: {', '.join(record)})")
        if ids is None:
            ids = id_column or (DEFAULT_ID_COLUMN if DEFAULT_ID_COLUMN in record else "")
        identifier = None
        if ids:
            value = record.get(ids)
            if isinstance(value, bool) or not isinstance(value, str | int) or value == "":
                raise EelbertError(f"{path}:{line}: no id in column {ids!r} (a string or whole number; columns: {', '.join(record)})")
            identifier = str(value)
        examples.append(Example(record[column], record[pair_column] if pair_column else None, identifier))
    return examples


def check_examples(examples: Sequence[Example], where: str) -> None:
    if not examples:
        raise EelbertError(f"{where}: nothing to predict")
    for number, (text, pair, _) in enumerate(examples, start=1):
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


def prediction_line(text: str, pair: str | None, prediction: Prediction, identifier: str | None = None) -> str:
    """One JSON line: the id (where the input had one), the text (and its pair), the label and
    probabilities. U+2028 and U+2029 are escaped: valid JSON raw, but line-splitting readers
    (Python's ``splitlines``) break a row at them."""
    row = {**({"id": identifier} if identifier is not None else {}), "text": text,
           **({"text_pair": pair} if pair is not None else {}), **asdict(prediction)}
    return json.dumps(row, ensure_ascii=False).replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def predicted(predictor, examples: Sequence[Example], batch_size: int) -> Iterator[tuple[Example, Prediction]]:
    """Each example with its prediction, batch by batch (pairs only where the examples have them)."""
    for batch in batches(examples, batch_size):
        pairs = [example.pair for example in batch] if batch[0].pair is not None else None
        yield from zip(batch, predictor.predict([example.text for example in batch], pairs), strict=True)


def csv_header(examples: Sequence[Example], labels: Sequence[str], regression: bool) -> list[str]:
    """id (when the input had one), text, text_pair (pairs), label, then one probability per label
    (``prob_<label>``); a regression's score is its ``label``."""
    first = examples[0]
    return [*(["id"] if first.id is not None else []), "text", *(["text_pair"] if first.pair is not None else []), "label",
            *([] if regression else [f"prob_{label}" for label in labels])]


def csv_row(example: Example, prediction: Prediction) -> list:
    probabilities = list(prediction.probabilities.values()) if prediction.probabilities else []
    return [*([example.id] if example.id is not None else []), example.text, *([example.pair] if example.pair is not None else []),
            prediction.label, *probabilities]


def predict_to_file(predictor, examples: Sequence[Example], output: Path, batch_size: int, on_batch=None) -> int:
    """Predictions into ``output`` (CSV when it ends in ``.csv``, else JSON lines), which appears
    only once all are written."""
    as_csv = output.suffix.lower() == ".csv"
    with replacing(output) as partial, open(partial, "w", encoding="utf-8", newline="") as sink:
        writer = csv.writer(sink) if as_csv else None
        if writer is not None:
            writer.writerow(csv_header(examples, predictor.labels, predictor.regression))
        done = 0
        for example, prediction in predicted(predictor, examples, batch_size):
            if writer is not None:
                writer.writerow(csv_row(example, prediction))
            else:
                sink.write(prediction_line(example.text, example.pair, prediction, example.id) + "\n")
            done += 1
            if on_batch is not None and done % batch_size == 0:
                on_batch(batch_size)
        if on_batch is not None and done % batch_size:
            on_batch(done % batch_size)
    return len(examples)
