"""Task distillation: a teacher fine-tuned on the task labels the training set — and augmented copies
of it, and extra unlabelled in-domain text — once; the student then fits those soft labels as well
as the gold ones (Hinton et al. 2015; Tang et al. 2019 for tiny students).

A hash-embedding student cannot memorise word polarities in a table, so it needs far more examples
than the gold set has; the teacher makes them. Teacher outputs are cached in the user cache under a
key of (teacher weights, texts, max length), so every grid config and seed, every student of a
comparison, and a re-run reuse them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

import numpy as np
import torch

from eelbert_cli.core.console import log
from eelbert_cli.core.data.corpora import iter_documents
from eelbert_cli.core.data.resources import cache_dir, checkpoint_path
from eelbert_cli.core.data.tasks import Split, Task, TaskData
from eelbert_cli.core.data.tasks.record import check_head_matches, label_order, read_task_record
from eelbert_cli.core.data.tokenization import load_tokenizer
from eelbert_cli.core.errors import EelbertError
from eelbert_cli.core.files import replacing
from eelbert_cli.core.finetuning.encoding import encode_split, predict_logits
from eelbert_cli.core.model.modeling import checkpoint_digest, has_classifier_head, is_checkpoint_dir, load_model
from eelbert_cli.core.scoring.metrics import compute_metrics, task_score
from eelbert_cli.core.spec import AugmentSpec, DistillSpec, FinetuneSpec
from eelbert_cli.core.training.runtime import pick_device

MASK_TOKEN = "[MASK]"


@dataclass
class TeacherTargets:
    """What the teacher says: logits for every training example (in order) and for the extra
    examples it labelled (augmented copies and unlabelled text), plus its own dev score."""

    teacher: str
    train: np.ndarray  # [train examples, num_labels] (regression: [n, 1])
    extra: Split  # texts only (labels None)
    extra_targets: np.ndarray
    dev_score: float
    settings: DistillSpec

    def describe(self) -> dict:
        return {
            "teacher": self.teacher,
            "teacher_dev_score": self.dev_score,
            "alpha": self.settings.alpha,
            "temperature": self.settings.temperature,
            "augmented_copies": self.settings.augment.copies,
            "extra_examples": len(self.extra),
        }


# ----------------------------------------------------------------------------------- augmentation
_WORD = re.compile(r"^(\W*)(\w+)(\W*)$")


def augment_text(text: str, settings: AugmentSpec, rng: np.random.Generator, neighbours: Mapping[str, Sequence[str]] | None = None) -> str:
    """With probability ``crop`` keep a random contiguous 60-100% of the words; then replace each
    word by one of its embedding neighbours with probability ``replace`` (punctuation and case of
    the rest kept), else drop it to [MASK] with probability ``mask``. Word-level, so any tokenizer
    sees a natural sentence."""
    words = text.split()
    if not words:
        return text
    if rng.random() < settings.crop and len(words) > 2:
        keep = max(1, int(round(len(words) * rng.uniform(0.6, 1.0))))
        start = int(rng.integers(0, len(words) - keep + 1))
        words = words[start : start + keep]
    out = []
    for word in words:
        draw = rng.random()
        if draw < settings.replace and neighbours and (parts := _WORD.match(word)) and (options := neighbours.get(parts[2].lower())):
            word = parts[1] + options[int(rng.integers(len(options)))] + parts[3]
        elif settings.replace <= draw < settings.replace + settings.mask:
            word = MASK_TOKEN
        out.append(word)
    return " ".join(out)


def augmented_split(split: Split, settings: AugmentSpec, neighbours: Mapping[str, Sequence[str]] | None = None) -> Split:
    """``copies`` augmented versions of every example, deterministic in ``settings.seed``."""
    rng = np.random.default_rng(settings.seed)
    text_a, text_b = [], []
    for _ in range(settings.copies):
        for row, text in enumerate(split.text_a):
            text_a.append(augment_text(text, settings, rng, neighbours))
            if split.text_b is not None:
                text_b.append(augment_text(split.text_b[row], settings, rng, neighbours))
    return Split("augmented", tuple(text_a), tuple(text_b) if split.text_b is not None else None, None, tuple(range(len(text_a))))


def split_words(split: Split) -> set[str]:
    """The lower-cased words (punctuation stripped) that augmentation may replace."""
    texts = split.text_a + (split.text_b or ())
    return {parts[2].lower() for text in texts for word in text.split() if (parts := _WORD.match(word))}


def embedding_neighbours(model, tokenizer, words: set[str], count: int, chunk: int = 2048) -> dict[str, tuple[str, ...]]:
    """Replacement candidates for TinyBERT-style augmentation: for each word that is one whole-word
    token of the teacher's vocabulary, the ``count`` whole-word tokens nearest to it (cosine) in the
    teacher's input embedding table (a hash teacher's computed table: spelling neighbours). Computed
    once per teacher labelling, in chunks; words of several word pieces are left as they are."""
    vocab = tokenizer.get_vocab()
    table = getattr(model.get_input_embeddings(), "weight", None)  # a hash teacher computes its table
    if not isinstance(table, torch.Tensor) or table.shape[0] < len(vocab):
        raise EelbertError("finetune.distill.augment.replace needs a teacher whose input embeddings cover its vocabulary")
    whole = sorted((index, token) for token, index in vocab.items() if token.isalpha() and token.isascii() and len(token) > 1)
    ids = torch.tensor([index for index, _ in whole])
    tokens = [token for _, token in whole]
    row_of = {token: row for row, token in enumerate(tokens)}
    with torch.no_grad():
        vectors = torch.nn.functional.normalize(table.detach().float().cpu()[ids], dim=1)
        queries = sorted(word for word in words if word in row_of)
        found: dict[str, tuple[str, ...]] = {}
        for start in range(0, len(queries), chunk):
            batch = queries[start : start + chunk]
            rows = torch.tensor([row_of[word] for word in batch])
            similarity = vectors[rows] @ vectors.T
            similarity[torch.arange(len(batch)), rows] = -2.0  # never the word itself
            nearest = similarity.topk(count, dim=1).indices
            found.update({word: tuple(tokens[i] for i in picks.tolist()) for word, picks in zip(batch, nearest, strict=True)})
    return found


def unlabelled_split(task: Task, settings: DistillSpec) -> Split:
    if not settings.unlabelled:
        return Split("unlabelled", (), None, None, ())
    if len(task.text_columns) > 1:
        raise EelbertError(f"finetune.distill.unlabelled gives single texts, but {task.name} is a sentence-pair task")
    texts = tuple(islice(iter_documents(settings.unlabelled), settings.max_unlabelled))
    return Split("unlabelled", texts, None, None, tuple(range(len(texts))))


def concatenate(name: str, parts: Sequence[Split]) -> Split:
    pair = any(part.text_b is not None for part in parts if len(part))
    text_a = tuple(text for part in parts for text in part.text_a)
    text_b = tuple(text for part in parts for text in (part.text_b or ())) if pair else None
    return Split(name, text_a, text_b, None, tuple(range(len(text_a))))


# ----------------------------------------------------------------------------------- the teacher
@dataclass
class Teacher:
    path: Path
    model: torch.nn.Module
    tokenizer: object
    to_task: list[int] | None  # the task's label i is the teacher's output to_task[i] (None: the same order)


def load_teacher(name_or_path: str, task: Task) -> Teacher:
    """A fine-tuned classifier of ``task`` (ours or any Hugging Face BERT), with its tokenizer. Its
    labels are matched to the task's by name (a teacher whose names differ would teach wrong labels)."""
    path = checkpoint_path(name_or_path)
    if not is_checkpoint_dir(path):
        raise EelbertError(f"finetune.teacher {name_or_path} is not a checkpoint directory (no config.json)")
    classifier, architectures = has_classifier_head(path)
    if not classifier:
        raise EelbertError(
            f"finetune.teacher {path} has no trained classifier head (architectures: {', '.join(architectures) or 'none'}): "
            f"fine-tune it on {task.name} first (eelbert finetune) and name RUN_DIR/finetuned/{task.name}"
        )
    record = read_task_record(path, required=False)
    if record.get("task") not in (None, task.name):
        raise EelbertError(f"finetune.teacher {path} was fine-tuned on {record['task']!r}, not on {task.name!r}")
    model = load_model(path, "sequence-classification")
    if record:
        check_head_matches(record, model.config.num_labels, path)
    if model.config.num_labels != task.num_labels:
        raise EelbertError(f"finetune.teacher {path} predicts {model.config.num_labels} labels but {task.name} has {task.num_labels}")
    names = record.get("labels") or named_labels(model.config)
    to_task = None
    if task.type == "classification" and names is not None and list(names) != list(task.labels):
        to_task = label_order(names, task.labels, f"finetune.teacher {path}")
    elif task.type == "classification" and names is None:
        log.info("finetune.teacher %s names no labels (no task.json, default id2label): its outputs are taken in %s's order %s",
                 path, task.name, list(task.labels))
    return Teacher(path, model, load_tokenizer(path), to_task)


def named_labels(config) -> list[str] | None:
    """A Hugging Face config's label names, unless they are the LABEL_0, LABEL_1... defaults."""
    id2label = getattr(config, "id2label", None) or {}
    names = [str(id2label.get(i, id2label.get(str(i), ""))) for i in range(config.num_labels)]
    if not all(names) or all(name == f"LABEL_{i}" for i, name in enumerate(names)):
        return None
    return names


def _cache_key(teacher: Path, split: Split, max_seq_len: int) -> str:
    digest = checkpoint_digest(teacher)
    digest.update(f"{max_seq_len};".encode())
    for row, text in enumerate(split.text_a):
        digest.update(text.encode("utf-8") + b"\x00" + (split.text_b[row].encode("utf-8") if split.text_b is not None else b"") + b"\x01")
    return digest.hexdigest()[:20]


def teacher_logits(teacher: Path, model, tokenizer, task: Task, split: Split, settings: FinetuneSpec, cache: Path) -> np.ndarray:
    """The teacher's logits for every example of ``split``, computed once and cached as .npy."""
    if len(split) == 0:
        return np.zeros((0, task.num_labels), dtype=np.float32)
    cached = cache / f"{split.name}-{_cache_key(teacher, split, settings.max_seq_len)}.npy"
    if cached.is_file():
        try:
            logits = np.load(cached, allow_pickle=False)
            if logits.shape == (len(split), 1 if task.type == "regression" else task.num_labels):
                return logits
        except (OSError, ValueError) as error:  # a cut or garbled cache file: label again (the cache is ours)
            log.info("teacher cache %s is unreadable (%s); labelling again", cached, error)
        log.warning("teacher cache %s did not hold %d rows of outputs; labelling again", cached, len(split))
    log.info("teacher %s labels %d %s examples (cached in %s)", teacher.name, len(split), split.name, cache)
    logits = predict_logits(model, encode_split(tokenizer, split, settings.max_seq_len), settings, tokenizer.token_to_id("[PAD]") or 0)
    with replacing(cached) as partial, open(partial, "wb") as handle:
        np.save(handle, logits, allow_pickle=False)
    return logits


def teacher_cache_dir(task: Task) -> Path:
    """Teacher outputs live in the user cache, keyed by content, so the students of a comparison
    (and re-runs) share one labelling."""
    return cache_dir() / "teacher-outputs" / task.name


def teacher_targets(settings: FinetuneSpec, data: TaskData) -> TeacherTargets:
    """Label the training set and the extra examples with the spec's teacher (once, then cached)."""
    cache = teacher_cache_dir(data.task)
    distill = settings.distillation
    teacher = load_teacher(settings.teacher, data.task)
    path, model, tokenizer = teacher.path, teacher.model, teacher.tokenizer
    model.to(pick_device(settings.device, "finetune.device"))
    augment = distill.augment
    neighbours = None
    if augment.copies and augment.replace:
        neighbours = embedding_neighbours(model, tokenizer, split_words(data.train), augment.neighbours)
    extra = concatenate("extra", [augmented_split(data.train, augment, neighbours), unlabelled_split(data.task, distill)])
    def in_task_order(logits: np.ndarray) -> np.ndarray:
        return logits if teacher.to_task is None else logits[:, teacher.to_task]

    train = in_task_order(teacher_logits(path, model, tokenizer, data.task, data.train, settings, cache))
    extra_targets = in_task_order(teacher_logits(path, model, tokenizer, data.task, extra, settings, cache))
    dev = data.evaluation[0]
    dev_logits = in_task_order(teacher_logits(path, model, tokenizer, data.task, dev, settings, cache))
    predictions = dev_logits[:, 0] if data.task.type == "regression" else dev_logits.argmax(axis=1)
    dev_score = task_score(data.task, {dev.name: compute_metrics(data.task, predictions, np.asarray(dev.labels))}, [dev.name])
    refuse_a_teacher_at_chance(path, data, dev, dev_score)
    return TeacherTargets(str(settings.teacher), train, extra, extra_targets, dev_score, distill)


def refuse_a_teacher_at_chance(path: Path, data: TaskData, dev: Split, dev_score: float) -> None:
    """A teacher no better on dev than always answering the training set's commonest label (for
    regression: no positive correlation) teaches nothing, or teaches the wrong labels."""
    if data.task.type == "regression":
        chance, what = 0.0, "no correlation"
    else:
        majority = int(np.bincount(np.asarray(data.train.labels, dtype=np.int64), minlength=data.task.num_labels).argmax())
        constant = np.full(len(dev), majority)
        chance = task_score(data.task, {dev.name: compute_metrics(data.task, constant, np.asarray(dev.labels))}, [dev.name])
        what = f"always answering {data.task.labels[majority]!r}"
    if not dev_score > chance + 1e-9:
        raise EelbertError(
            f"finetune.teacher {path} scores {dev_score:.2f} on {data.task.name} {dev.name}, no better than {what} ({chance:.2f}): "
            "a teacher at chance teaches nothing; check that it was fine-tuned on this task and its labels"
        )
