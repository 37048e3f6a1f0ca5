"""Shared fixtures and helpers: a tiny WordPiece vocabulary so unit tests never touch the network, a tiny
model shape, spec files and a learnable toy task. Test modules import helpers from here, not from
each other."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import yaml

FIXTURES = Path(__file__).parent / "fixtures"
FIXTURE_VOCAB = FIXTURES / "vocab.txt"
TINY_MODEL = {"layers": 1, "hidden": 32, "heads": 2, "ffn": 64, "max_positions": 64}


@pytest.fixture(scope="session")
def vocabulary() -> list[str]:
    return FIXTURE_VOCAB.read_text(encoding="utf-8").splitlines()


@pytest.fixture(scope="session")
def fixture_vocab_path() -> Path:
    return FIXTURE_VOCAB


PRETRAIN_WORDS = "the cat sat on a mat while dogs played in the house and people watched a good movie about running players".split()


@pytest.fixture
def private_cache(tmp_path, monkeypatch) -> Path:
    """A cache of the test's own (packed corpora, downloads): modules that pretrain use it for every test."""
    monkeypatch.setenv("EELBERT_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture
def masking(vocabulary):
    from eelbert_cli.core.training.masking import MaskingVocabulary

    return MaskingVocabulary.from_tokens(vocabulary)


@pytest.fixture
def corpus(tmp_path) -> Path:
    """A small pretraining corpus in the fixture vocabulary: 120 documents of 10-40 words."""
    rng = random.Random(0)
    path = tmp_path / "corpus.txt"
    path.write_text("\n\n".join(" ".join(rng.choice(PRETRAIN_WORDS) for _ in range(rng.randint(10, 40))) for _ in range(120)) + "\n")
    return path


@pytest.fixture(autouse=True)
def hub_answers(monkeypatch):
    """Unit tests fake the hub libraries; the reachability probe (tested on its own) is not asked."""
    import eelbert_cli.core.data.corpora as corpora
    import eelbert_cli.core.data.tasks.glue as glue

    for module in (corpora, glue):
        monkeypatch.setattr(module, "hub_unreachable_reason", lambda: None)


# ------------------------------------------------------------------------------------ helpers
def sentiment_files(tmp_path: Path, rows: int = 240) -> dict:
    """A learnable custom task: the label is which family of words a sentence uses."""
    rng = random.Random(0)
    positive, negative = ["good", "great", "fun", "love"], ["bad", "terrible", "boring", "hate"]
    filler = ["the", "movie", "film", "story", "a", "plot"]
    def sentence(words):
        return " ".join(rng.sample(filler, 3) + [rng.choice(words)] + rng.sample(filler, 2))
    for name, count in (("train", rows), ("dev", 60)):
        lines = ["text,sentiment"] + [f"{sentence(positive if i % 2 else negative)},{'pos' if i % 2 else 'neg'}" for i in range(count)]
        (tmp_path / f"{name}.csv").write_text("\n".join(lines) + "\n")
    return {"name": "toy-sentiment", "train": str(tmp_path / "train.csv"), "validation": str(tmp_path / "dev.csv"),
            "text_columns": ["text"], "label_column": "sentiment", "type": "classification", "metrics": ["accuracy", "f1"]}


def spec_file(tmp_path: Path, name: str, **finetune) -> Path:
    """A fine-tuning spec of the tiny model in the fixture vocabulary, run in tmp_path/NAME."""
    data = {"name": name, "output_dir": str(tmp_path / name), "tokenizer": str(FIXTURE_VOCAB), "model": TINY_MODEL, "finetune": finetune}
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def spec_dict(tmp_path: Path, corpus: Path, vocab: Path, **pretrain) -> dict:
    """A pretraining spec of the tiny model (dropout 0.1) on ``corpus``: 12 steps, a checkpoint every 4."""
    return {
        "name": "t",
        "output_dir": str(tmp_path / "run"),
        "tokenizer": str(vocab),
        "model": {**TINY_MODEL, "dropout": 0.1},
        "pretrain": {
            "corpus": [{"kind": "files", "paths": [str(corpus)]}],
            "seq_len": 16, "batch_size": 4, "heldout": 4, "lr": 3e-3, "log_every": 1,
            "checkpoint_every": 4, "budget": {"steps": 12}, **pretrain,
        },
    }


def write_spec(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def metrics(run_dir: Path) -> list[dict]:
    """A run's metrics.jsonl rows."""
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
