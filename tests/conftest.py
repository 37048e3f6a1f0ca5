"""Shared fixtures: a tiny WordPiece vocabulary so unit tests never touch the network."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"
FIXTURE_VOCAB = FIXTURES / "vocab.txt"


@pytest.fixture(scope="session")
def vocabulary() -> list[str]:
    return FIXTURE_VOCAB.read_text(encoding="utf-8").splitlines()


@pytest.fixture(scope="session")
def fixture_vocab_path() -> Path:
    return FIXTURE_VOCAB


PRETRAIN_WORDS = "the cat sat on a mat while dogs played in the house and people watched a good movie about running players".split()


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
