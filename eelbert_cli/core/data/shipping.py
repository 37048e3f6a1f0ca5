"""Ship a vocabulary with the package: a WordPiece trained on a built-in corpus, written to
eelbert_cli/tokenizers/NAME (tokenizer.json, vocab.txt, provenance.json), so every spec, run and
scratch control of a comparison can name the same vocabulary (``tokenizer: NAME``) offline.

Training is deterministic for a given corpus and ``tokenizers`` version; the sha256 of the result is
recorded so a rebuild can be checked against the shipped file. The command is
``python scripts/ship_tokenizer.py NAME --corpus CORPUS --vocab-size N``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from eelbert_cli.core.data.resources import SHIPPED_TOKENIZERS_DIR, sha256_of
from eelbert_cli.core.files import check_safe_name, replacing


def corpus_source(name: str) -> dict:
    """The spec form of a built-in corpus (tests substitute a text file)."""
    return {"kind": "builtin", "name": name}


def ship_tokenizer(name: str, corpus: str, vocab_size: int) -> Path:
    """Train the vocabulary on ``corpus`` and write it, with its provenance, as built-in ``name``."""
    import tokenizers

    from eelbert_cli.core.data.corpora import iter_documents, parse_corpus
    from eelbert_cli.core.data.vocab_training import train_wordpiece

    check_safe_name(name, "tokenizer name")
    target = SHIPPED_TOKENIZERS_DIR / name
    started = time.perf_counter()
    with replacing(target, directory=True) as partial:
        tokenizer = train_wordpiece(iter_documents(parse_corpus(corpus_source(corpus))), vocab_size, partial)
        record = {
            "made_by": f"python scripts/ship_tokenizer.py {name} --corpus {corpus} --vocab-size {vocab_size}",
            "corpus": corpus_source(corpus),
            "vocab_size": tokenizer.get_vocab_size(),
            "pipeline": "bert-base-uncased's (lower-casing BertNormalizer, BertPreTokenizer, ## continuation pieces)",
            "tokenizers_version": tokenizers.__version__,
            "train_seconds": round(time.perf_counter() - started, 1),
            "tokenizer_json_sha256": sha256_of(partial / "tokenizer.json"),
        }
        (partial / "provenance.json").write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return target
