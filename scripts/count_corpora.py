"""How much text each built-in corpus holds: documents, whitespace words and WordPiece tokens
(bert-base-uncased, [CLS]/[SEP] not counted), as JSON. Fetches what is not cached yet.

    python scripts/count_corpora.py [NAME ...]
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from eelbert_cli.core.data.corpora import BUILTIN_CORPORA, builtin_documents  # noqa: E402
from eelbert_cli.core.data.tokenization import load_tokenizer  # noqa: E402


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
    tokenizer = load_tokenizer()
    counts = {name: count(name, tokenizer) for name in (sys.argv[1:] or BUILTIN_CORPORA)}
    counts["total"] = {key: sum(c[key] for c in counts.values()) for key in ("documents", "words", "wordpiece_tokens")}
    print(json.dumps(counts, indent=2))


if __name__ == "__main__":
    main()
