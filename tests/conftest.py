"""Shared fixtures: a tiny WordPiece vocabulary so unit tests never touch the network."""

from __future__ import annotations

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


@pytest.fixture(autouse=True)
def hub_answers(monkeypatch):
    """Unit tests fake the hub libraries; the reachability probe (tested on its own) is not asked."""
    import eelbert_cli.core.data.corpora as corpora
    import eelbert_cli.core.data.tasks.glue as glue

    for module in (corpora, glue):
        monkeypatch.setattr(module, "hub_unreachable_reason", lambda: None)
