"""General distillation speed: a student step with the teacher's outputs read from the disk cache vs
with the teacher run live every step, beside the masked-LM step, same student, batch and machine.

The teacher is the built-in all-MiniLM-L6-v2 (offline); the student a preset (default eelbert-tiny).
Losses as ``pretrain.distill`` defaults: hidden states of 2 mapped layers through projections and the
Q/K/V relations of the teacher's last layer. tokens/s counts student input tokens; the cache's
one-off fill (one teacher forward per row, shared by every later student) is timed apart.

    python benchmarks/bench_distill.py --json
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from eelbert_cli.core.data.tokenization import load_tokenizer, vocabulary_of
from eelbert_cli.core.model.config import preset_config
from eelbert_cli.core.model.modeling import build_model
from eelbert_cli.core.spec import GeneralDistillSpec
from eelbert_cli.core.training.general_distillation import DistillationObjective, TeacherCache, load_teacher
from eelbert_cli.core.training.masking import MaskingVocabulary
from eelbert_cli.core.training.objectives import MaskedLMObjective


def tokens_per_second(objective, batches: list[tuple[np.ndarray, torch.Tensor]], warmup: int) -> float:
    optimizer = torch.optim.AdamW([p for p in objective.parameters() if p.requires_grad], lr=1e-4)
    generator = torch.Generator().manual_seed(0)

    def step(rows, tokens):
        loss = objective(**objective.make_batch(tokens, generator, rows, "train")).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    for rows, tokens in batches[:warmup]:
        step(rows, tokens)
    start = time.perf_counter()
    for rows, tokens in batches[warmup:]:
        step(rows, tokens)
    return sum(tokens.numel() for _, tokens in batches[warmup:]) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--preset", default="eelbert-tiny")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--steps", type=int, default=8, help="timed steps per mode (after 2 warmup steps)")
    args = parser.parse_args()
    torch.manual_seed(0)

    vocabulary = vocabulary_of(load_tokenizer())
    masking = MaskingVocabulary.from_tokens(vocabulary)
    teacher_path, teacher = load_teacher("all-MiniLM-L6-v2", vocabulary)
    warmup, generator = 2, torch.Generator().manual_seed(0)
    batches = []
    for index in range(warmup + args.steps):
        ids = torch.randint(999, len(vocabulary), (args.batch, args.seq_len), generator=generator)
        ids[:, 0], ids[:, -1] = vocabulary.index("[CLS]"), vocabulary.index("[SEP]")
        batches.append((np.arange(index * args.batch, (index + 1) * args.batch), ids))

    def student():
        return build_model(preset_config(args.preset, vocabulary), "masked-lm").train()

    results = {"preset": args.preset, "teacher": "all-MiniLM-L6-v2", "batch": args.batch, "seq_len": args.seq_len, "steps": args.steps,
               "threads": torch.get_num_threads()}
    results["mlm_tokens_per_second"] = tokens_per_second(MaskedLMObjective(student(), masking=masking), batches, warmup)
    settings = GeneralDistillSpec()
    live = DistillationObjective(student(), teacher_path, teacher, settings.model_copy(update={"cache": False}), 0.0, masking, 0.15, False)
    results["distill_live_tokens_per_second"] = tokens_per_second(live, batches, warmup)
    with tempfile.TemporaryDirectory() as scratch:
        cached = DistillationObjective(student(), teacher_path, teacher, settings, 0.0, masking, 0.15, False)
        cached.caches["train"] = TeacherCache(Path(scratch), len(batches) * args.batch, args.seq_len, cached.layout.columns)
        start = time.perf_counter()
        for rows, tokens in batches:
            cached.teacher_batch(tokens, rows, "train")  # the one-off fill
        results["cache_fill_tokens_per_second"] = sum(t.numel() for _, t in batches) / (time.perf_counter() - start)
        results["cache_bytes_per_token"] = cached.layout.columns * 2
        results["distill_cached_tokens_per_second"] = tokens_per_second(cached, batches, warmup)
    results["cached_vs_live"] = results["distill_cached_tokens_per_second"] / results["distill_live_tokens_per_second"]
    results["cached_vs_mlm"] = results["distill_cached_tokens_per_second"] / results["mlm_tokens_per_second"]
    if args.json:
        print(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in results.items()}, indent=2))
    else:
        for key, value in results.items():
            print(f"{key:34s} {value:,.2f}" if isinstance(value, float) else f"{key:34s} {value}")


if __name__ == "__main__":
    main()
