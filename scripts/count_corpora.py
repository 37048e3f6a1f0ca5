"""How much text each built-in corpus holds: documents, whitespace words and WordPiece tokens
(bert-base-uncased, [CLS]/[SEP] not counted), as JSON. Fetches what is not cached yet.

    python scripts/count_corpora.py [NAME ...] [--update docs/results/corpora.json]

``--update FILE`` replaces the named corpora's entries in an earlier count and recomputes the total.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from eelbert_cli.core.data.corpora import BUILTIN_CORPORA, builtin_documents
from eelbert_cli.core.data.tokenization import load_tokenizer


def count(name: str, tokenizer, batch_size: int = 256) -> dict:
    started, documents, words, tokens, batch = time.perf_counter(), 0, 0, 0, []

    def flush() -> int:
        return sum(len(encoding.ids) - 2 for encoding in tokenizer.encode_batch(batch)) if batch else 0

    for document in builtin_documents(name):
        documents, words = documents + 1, words + len(document.split())
        batch.append(document)
        if len(batch) == batch_size:
            tokens, batch = tokens + flush(), []
    tokens += flush()
    return {"documents": documents, "words": words, "wordpiece_tokens": tokens, "seconds": round(time.perf_counter() - started, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", metavar="NAME", help=f"any of {', '.join(BUILTIN_CORPORA)} (default: all)")
    parser.add_argument("--update", type=Path, help="merge into this earlier count and write it back")
    args = parser.parse_args()
    if unknown := sorted(set(args.names) - set(BUILTIN_CORPORA)):
        parser.error(f"unknown corpus {', '.join(unknown)}; built-in ones: {', '.join(BUILTIN_CORPORA)}")
    tokenizer = load_tokenizer()
    counts = json.loads(args.update.read_text()) if args.update and args.update.is_file() else {}
    counts.pop("total", None)
    counts |= {name: count(name, tokenizer) for name in (args.names or BUILTIN_CORPORA)}
    counts = {name: counts[name] for name in BUILTIN_CORPORA if name in counts}
    counts["total"] = {key: sum(c[key] for c in counts.values()) for key in ("documents", "words", "wordpiece_tokens")}
    text = json.dumps(counts, indent=2)
    if args.update:
        args.update.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
