"""Train a WordPiece vocabulary on a built-in corpus and ship it as a built-in tokenizer
(eelbert_cli/tokenizers/NAME: tokenizer.json, vocab.txt, provenance.json), so every spec, run and
scratch control of a comparison can name the same vocabulary (``tokenizer: NAME``) offline.

    python scripts/ship_tokenizer.py prose-wordpiece-8k --corpus prose --vocab-size 8192

Training is deterministic for a given corpus and ``tokenizers`` version; the sha256 of the result
is recorded so a rebuild can be checked against the shipped file.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from eelbert_cli.core.data.resources import SHIPPED_TOKENIZERS_DIR, sha256_of  # noqa: E402
from eelbert_cli.core.files import check_safe_name, replacing  # noqa: E402


def corpus_source(name: str) -> dict:
    """The spec form of a built-in corpus (tests substitute a text file)."""
    return {"kind": "builtin", "name": name}


def ship(name: str, corpus: str, vocab_size: int) -> Path:
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("name")
    parser.add_argument("--corpus", default="prose", help="a built-in corpus or mixture name")
    parser.add_argument("--vocab-size", type=int, default=8192)
    args = parser.parse_args()
    print(ship(args.name, args.corpus, args.vocab_size))


if __name__ == "__main__":
    main()
