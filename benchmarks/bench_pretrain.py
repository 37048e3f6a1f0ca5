"""Our masked-LM training step vs transformers' BertForMaskedLM step, same shape, batch and machine;
and, with ``--trainer``, the real trainer (``eelbert pretrain`` on the built-in news pack) with
static masking vs Bernoulli masking, each in a fresh process.

transformers' step is what ``run_mlm.py`` trains: logits for every position over the whole
vocabulary, cross-entropy with -100 on unmasked positions. Ours projects only the masked positions.
Both use the same masked batches, AdamW and gradient clipping; tokens/s counts input tokens.

With ``--loops``, the real trainer's two loops on one spec: the host loop (batches made on the CPU
from a torch.Generator, moved to the device) vs the device loop (core/training/device_step.py: data
resident on the device, counter-hash masks, no host sync per step; a CUDA graph on GPUs). On a CPU
the device loop must not be slower; its point is the GPU, where the call of 2026-12-04 measured it
(docs/results/gpu/README.md).

The trainer comparison is the cost of variable shapes: Bernoulli masking changes the number of
masked positions every step, so the trainer serves large allocations from mmap (page faults on every
tensor) to stop heap growth; static masking keeps one shape and the default heap.

    python benchmarks/bench_pretrain.py --json
    python benchmarks/bench_pretrain.py --trainer --json
    python benchmarks/bench_pretrain.py --loops --json
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import subprocess
import sys
import tempfile
import time

import torch
from transformers import BertConfig, BertForMaskedLM

from eelbert_cli.core.data.tokenization import load_tokenizer, vocabulary_of
from eelbert_cli.core.model.config import preset_config
from eelbert_cli.core.model.modeling import build_model
from eelbert_cli.core.training.masking import MaskingVocabulary, mask_tokens
from eelbert_cli.core.training.objectives import MaskedLMObjective


def timed_steps(step, batches, warmup: int) -> float:
    """Tokens per second over the batches after ``warmup`` untimed steps."""
    for inputs, labels in batches[:warmup]:
        step(inputs, labels)
    start = time.perf_counter()
    for inputs, labels in batches[warmup:]:
        step(inputs, labels)
    seconds = time.perf_counter() - start
    return sum(inputs.numel() for inputs, _ in batches[warmup:]) / seconds


def training_step(compute_loss, parameters):
    optimizer = torch.optim.AdamW(parameters, lr=1e-4)

    def step(inputs, labels):
        loss = compute_loss(inputs, labels)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(parameters, 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return step


def ours(preset: str, vocabulary: list[str]):
    model = build_model(preset_config(preset, vocabulary), "masked-lm").train()
    objective = MaskedLMObjective(model)
    return training_step(lambda inputs, labels: objective(inputs, labels)[0], list(model.parameters()))


def transformers_reference(preset: str, vocabulary: list[str]):
    """transformers' own BertForMaskedLM; for eelbert, the same encoder shape with its tied table."""
    ours_config = preset_config(preset, vocabulary)
    config = BertConfig(**{k: v for k, v in ours_config.to_dict().items() if k in BertConfig().to_dict() and k != "model_type"})
    model = BertForMaskedLM(config).train()
    return training_step(lambda inputs, labels: model(input_ids=inputs, labels=labels).loss, list(model.parameters()))


def trainer_child(masking: str, preset: str, batch: int, steps: int, out: str, loop: str = "host") -> None:
    """One fresh process: ``pretrain`` on the news pack for ``steps`` steps; prints its figures as JSON."""
    from eelbert_cli.core.console import configure_logging
    from eelbert_cli.core.spec import validate_spec
    from eelbert_cli.core.training.pretrain import pretrain

    configure_logging(logging.WARNING)
    spec = validate_spec({
        "name": f"bench-{masking}", "output_dir": out, "model": preset, "tokenizer": "bert-base-uncased",
        "pretrain": {"corpus": [{"kind": "builtin", "name": "news"}], "seq_len": 128, "batch_size": batch, "masking": masking,
                     "dropout": 0.0, "lr": 2e-3, "budget": {"steps": steps}, "log_every": steps, "checkpoint_every": 10 * steps,
                     "eval_batches": 1, "loop": loop},
    })
    results = pretrain(spec, progress=False).results
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"tokens_per_second": results["tokens_per_second"], "peak_rss_mb": round(peak_mb)}))


def compare_loops(args) -> dict:
    """Host loop vs device loop, static masking, fresh processes, alternated ``--repeats`` times."""
    figures: dict[str, list[float]] = {"host": [], "device": []}
    for _ in range(args.repeats):
        for loop in ("host", "device"):
            with tempfile.TemporaryDirectory() as out:
                command = [sys.executable, __file__, "--trainer-child", "static", "--loop", loop, "--presets", args.presets[0],
                           "--batch", str(args.batch), "--steps", str(args.steps), "--out", out]
                done = subprocess.run(command, check=True, capture_output=True, text=True)
                figures[loop].append(json.loads(done.stdout.strip().splitlines()[-1])["tokens_per_second"])
    best = {loop: max(values) for loop, values in figures.items()}
    return {"preset": args.presets[0], "batch": args.batch, "seq_len": 128, "steps": args.steps, "torch_threads": torch.get_num_threads(),
            "tokens_per_second": figures, "best": best, "ratio_device_to_host": round(best["device"] / best["host"], 3)}


def compare_trainer(args) -> dict:
    figures = {}
    for masking in ("bernoulli", "static"):
        with tempfile.TemporaryDirectory() as out:
            command = [sys.executable, __file__, "--trainer-child", masking, "--presets", args.presets[0], "--batch", str(args.batch),
                       "--steps", str(args.steps), "--out", out]
            done = subprocess.run(command, check=True, capture_output=True, text=True)
            figures[masking] = json.loads(done.stdout.strip().splitlines()[-1])
    return {
        "preset": args.presets[0], "batch": args.batch, "seq_len": 128, "steps": args.steps, "torch_threads": torch.get_num_threads(),
        "bernoulli_with_mmap_threshold": figures["bernoulli"], "static": figures["static"],
        "ratio": round(figures["static"]["tokens_per_second"] / figures["bernoulli"]["tokens_per_second"], 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--trainer", action="store_true", help="the real trainer: static vs Bernoulli masking, fresh processes")
    parser.add_argument("--loops", action="store_true", help="the real trainer: host loop vs device loop, fresh processes")
    parser.add_argument("--repeats", type=int, default=2, help="--loops: alternating runs per loop (the best counts)")
    parser.add_argument("--loop", default="host", help=argparse.SUPPRESS)
    parser.add_argument("--trainer-child", choices=["static", "bernoulli"], help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--steps", type=int, default=12, help="timed steps per model (after 3 warmup steps)")
    parser.add_argument("--presets", nargs="+", default=["bert-tiny", "eelbert-tiny"])
    args = parser.parse_args()
    if args.trainer_child:
        return trainer_child(args.trainer_child, args.presets[0], args.batch, args.steps, args.out, args.loop)
    if args.loops:
        result = compare_loops(args)
        print(json.dumps(result, indent=2) if args.json else result)
        return
    if args.trainer:
        result = compare_trainer(args)
        print(json.dumps(result, indent=2) if args.json else result)
        return

    vocabulary = vocabulary_of(load_tokenizer())
    masking = MaskingVocabulary.from_tokens(vocabulary)
    generator = torch.Generator().manual_seed(0)
    warmup = 3
    batches = []
    for _ in range(warmup + args.steps):
        ids = torch.randint(999, len(vocabulary), (args.batch, args.seq_len), generator=generator)
        ids[:, 0], ids[:, -1] = vocabulary.index("[CLS]"), vocabulary.index("[SEP]")
        batches.append(mask_tokens(ids, 0.15, masking, generator))

    result: dict = {"batch": args.batch, "seq_len": args.seq_len, "torch_threads": torch.get_num_threads(), "models": {}}
    for preset in args.presets:
        torch.manual_seed(0)
        theirs_tps = timed_steps(transformers_reference(preset, vocabulary), batches, warmup)
        torch.manual_seed(0)
        ours_tps = timed_steps(ours(preset, vocabulary), batches, warmup)
        result["models"][preset] = {
            "tokens_per_second_ours": round(ours_tps),
            "tokens_per_second_hf": round(theirs_tps),
            "ratio": round(ours_tps / theirs_tps, 2),
        }
    result["reference"] = "transformers BertForMaskedLM, logits at every position over the full vocabulary (as run_mlm.py trains)"
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for preset, figures in result["models"].items():
            print(f"{preset:14s} ours {figures['tokens_per_second_ours']:>8,} tok/s   "
                  f"transformers {figures['tokens_per_second_hf']:>8,} tok/s   ratio {figures['ratio']}")


if __name__ == "__main__":
    main()
