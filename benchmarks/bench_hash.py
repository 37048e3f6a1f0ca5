"""How fast is the hash embedding? Vocabulary table build, cache-mode forward, on-the-fly strings.

Each figure is measured side by side with its alternative in one run:
- the table for the whole 30,522-token BERT vocabulary vs a straightforward per-token NumPy loop;
- the cache-mode forward (``HashEmbedding``) vs ``nn.Embedding`` on the same ids.

    python benchmarks/bench_hash.py --json
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import numpy as np
import torch
from torch import nn

from eelbert_cli.core.data.tokenization import load_tokenizer, vocabulary_of
from eelbert_cli.core.model.embedding import HashEmbedding, hash_vectors
from eelbert_cli.core.model.hashing import HashConfig, expand_hashes, hash_ngram, token_ngrams


def best_of(repeats: int, function) -> float:
    """Minimum wall time of ``repeats`` calls: the least noisy estimate on a shared machine."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def naive_table(vocabulary: list[str], dim: int, config: HashConfig) -> np.ndarray:
    """The obvious implementation: every n-gram of every token hashed and expanded on its own."""
    rows = []
    for token in vocabulary:
        grams = token_ngrams(token, config)
        vectors = [expand_hashes(np.array([hash_ngram(g, config.seed)], dtype=np.uint64), dim)[0] for g in grams]
        rows.append(np.mean(vectors, axis=0))
    return np.stack(rows)


def forward_seconds(modules: list[nn.Module], ids: torch.Tensor, iterations: int, rounds: int = 7) -> list[float]:
    """Per-call seconds for each module, rounds interleaved so drift on the machine hits all alike."""
    best = [float("inf")] * len(modules)
    with torch.no_grad():
        for _ in range(rounds):
            for i, module in enumerate(modules):
                best[i] = min(best[i], best_of(1, lambda module=module: [module(ids) for _ in range(iterations)]) / iterations)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--skip-naive", action="store_true", help="skip the slow NumPy baseline (~7 s)")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--seq-len", type=int, default=128)
    args = parser.parse_args()

    vocabulary = vocabulary_of(load_tokenizer())
    config = HashConfig()
    result: dict = {
        "machine": platform.processor() or platform.machine(),
        "torch_threads": torch.get_num_threads(),
        "vocabulary_size": len(vocabulary),
    }
    for dim in (128, 768):
        result[f"table_seconds_d{dim}"] = round(best_of(3, lambda dim=dim: hash_vectors(vocabulary, dim, config)), 4)
    if not args.skip_naive:
        result["naive_numpy_table_seconds_d128"] = round(best_of(1, lambda: naive_table(vocabulary, 128, config)), 3)
        result["table_speedup_vs_naive_d128"] = round(result["naive_numpy_table_seconds_d128"] / result["table_seconds_d128"], 1)

    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(0, len(vocabulary), (args.batch, args.seq_len), generator=generator)
    hashed = HashEmbedding(vocabulary, 128, config)
    hashed.reset_table()
    learned = nn.Embedding(len(vocabulary), 128)
    ours, theirs = forward_seconds([hashed, learned], ids, 200)
    result["forward_seconds_hash_cache"] = ours
    result["forward_seconds_nn_embedding"] = theirs
    result["forward_ratio_vs_nn_embedding"] = round(ours / theirs, 3)

    rng = np.random.default_rng(0)
    words = [vocabulary[i] for i in rng.integers(999, len(vocabulary), size=args.batch * args.seq_len)]
    seconds = best_of(3, lambda: hashed.embed_strings(words))
    result["onthefly_tokens_per_second"] = round(len(words) / seconds)
    result["statistics_note"] = "best of repeated runs; forward ratio = ours / nn.Embedding (1.0 = same speed)"

    if args.json:
        print(json.dumps(result, indent=2))
    else:
        width = max(map(len, result))
        for key, value in result.items():
            print(f"{key:<{width}}  {value}")


if __name__ == "__main__":
    main()
