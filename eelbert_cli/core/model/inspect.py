"""What the hash embedding does to words: their WordPiece pieces, n-grams and nearest vocabulary tokens."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from tokenizers import Tokenizer

from eelbert_cli.core.model.embedding import hash_vectors
from eelbert_cli.core.model.hashing import HashConfig, token_ngrams


@dataclass
class PieceNeighbours:
    piece: str
    ngrams: list[str]
    neighbours: list[tuple[str, float]]


@dataclass
class WordInspection:
    word: str
    pieces: list[PieceNeighbours] = field(default_factory=list)
    whole_word: PieceNeighbours | None = None  # the word hashed as one string, in or out of the vocabulary


class NeighbourIndex:
    """Unit-normalised hash vectors of a whole vocabulary, for cosine nearest-neighbour queries."""

    def __init__(self, vocabulary: list[str], dim: int, config: HashConfig) -> None:
        self.vocabulary = vocabulary
        self.dim = dim
        self.config = config
        self.unit_table = F.normalize(hash_vectors(vocabulary, dim, config), dim=1)

    def nearest(self, string: str, k: int) -> list[tuple[str, float]]:
        query = F.normalize(hash_vectors([string], self.dim, self.config), dim=1)[0]
        scores = self.unit_table @ query
        values, indices = torch.topk(scores, min(k + 1, len(self.vocabulary)))
        pairs = [(self.vocabulary[i], float(v)) for v, i in zip(values.tolist(), indices.tolist(), strict=True)]
        return [(token, score) for token, score in pairs if token != string][:k]

    def describe(self, string: str, k: int) -> PieceNeighbours:
        return PieceNeighbours(string, token_ngrams(string, self.config), self.nearest(string, k))


def inspect_words(words: list[str], tokenizer: Tokenizer, index: NeighbourIndex, top_k: int = 5) -> list[WordInspection]:
    results = []
    for word in words:
        pieces = tokenizer.encode(word, add_special_tokens=False).tokens
        inspection = WordInspection(word, [index.describe(piece, top_k) for piece in pieces])
        normalised = tokenizer.normalizer.normalize_str(word) if tokenizer.normalizer else word
        if len(pieces) != 1 or pieces[0] != normalised:
            inspection.whole_word = index.describe(normalised, top_k)
        results.append(inspection)
    return results
