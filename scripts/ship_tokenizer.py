"""Train a WordPiece vocabulary on a built-in corpus and ship it as a built-in tokenizer
(eelbert_cli/tokenizers/NAME: tokenizer.json, vocab.txt, provenance.json), so every spec, run and
scratch control of a comparison can name the same vocabulary (``tokenizer: NAME``) offline
(eelbert_cli/core/data/shipping.py).

    python scripts/ship_tokenizer.py prose-wordpiece-8k --corpus prose --vocab-size 8192

Training is deterministic for a given corpus and ``tokenizers`` version; the sha256 of the result
is recorded so a rebuild can be checked against the shipped file.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from eelbert_cli.core.data.shipping import ship_tokenizer  # after the repository is on the path
from eelbert_cli.core.errors import EelbertError


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("name")
    parser.add_argument("--corpus", default="prose", help="a built-in corpus or mixture name")
    parser.add_argument("--vocab-size", type=int, default=8192)
    args = parser.parse_args()
    try:
        print(ship_tokenizer(args.name, args.corpus, args.vocab_size))
    except EelbertError as error:
        raise SystemExit(f"error: {error}") from None


if __name__ == "__main__":
    main()
