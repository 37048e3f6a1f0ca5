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
