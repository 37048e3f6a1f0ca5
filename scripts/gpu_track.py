"""The GPU track in one call: a ~10 s throughput check, then bert-tiny, eelbert-tiny and uno-eelbert
pretrained on the same packed data with the same recipe and token budget, each saving encoders at
1/16, 1/8, 1/4, 1/2 and all of the budget (warmup-stable-decay snapshots), each written to OUT as
one archive when it finishes; then the CUDA proof of the reliability work. No fine-tuning on the GPU:
the encoders come back and the CPU fine-tunes them (``finetune``).

    python scripts/gpu_track.py prepare .gpu --wheels   # here, on the CPU: what the lent machine lacks
    scripts/gpu-run.sh "$OUT"                           # there: the whole job (see ../shared/GPU.md)
    EELBERT_GPU_SMOKE=1 scripts/gpu-run.sh OUT          # the very same steps at CPU size (tests, CI)
    python scripts/gpu_track.py finetune BACK           # here: fine-tune what came back (docs/results/gpu)

The specs are ``experiments/gpu/*.yaml``; the step is the device loop (core/training/device_step.py).
"""

from __future__ import annotations

import argparse
import json
import lzma
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from eelbert_cli.core.files import write_json  # noqa: E402 - after the repository is on the path
from eelbert_cli.core.training.throughput import (  # noqa: E402
    H200_BF16_PEAK_FLOPS,
    model_flops_utilisation,
    read_metrics,
    steady_tokens_per_second,
    training_flops_per_token,
)

# The next lent call's question (docs/results/gpu/README.md): does the hash-vector masked-LM head keep
# transferring past the budgets where the exact-id head stopped? On the CPU, uno-eelbert with it at 100M
# tokens fine-tunes to 70.0 rotten-tomatoes / 72.9 trec (the exact-id twin: 63.6 / 69.6). The exact-id
# eelbert-tiny runs beside them as the control at the same budget, data and call (calls 3 and 5 have
# its curve to 664M and, with 4x hash vectors, 1.3B); `--models` runs any experiments/gpu/ specs.
MODELS = ("eelbert-tiny-hash-vector", "uno-eelbert-hash-vector", "eelbert-tiny")
SPECS = REPO / "experiments" / "gpu"
SNAPSHOT_FRACTIONS = (1 / 16, 1 / 8, 1 / 4, 1 / 2)  # of the budget; the budget itself is the last point
# Planning figures, from the lent calls of 2026-12-04 (docs/results/gpu): the plan is made from them before
# anything runs; a ~5 s check of the uncompiled step guards against a missing or crippled device.
PLANNED_TOKENS_PER_SECOND = 14.4e6  # eelbert-tiny, batch 256 x 128, bf16, the compiled loss inside the CUDA graph (call 6)
UNCOMPILED_TOKENS_PER_SECOND = 6.3e6  # the same step without torch.compile (calls 3 and 5)
# measured compiled: 14.4M, 14.35M, 21.9M tokens/s; a variant spec (eelbert-tiny-hash-x4) runs at its base model's speed
SPEED_RELATIVE_TO_EELBERT_TINY = {"eelbert-tiny": 1.0, "bert-tiny": 1.0, "uno-eelbert": 1.5}
SETUP_SECONDS_PER_MODEL = 6.0  # start, data onto the GPU, held-out evaluation, snapshot saves, archive (2.6 s in call 5)
COMPILE_SECONDS_PER_MODEL = 14.0  # inductor and the graph capture: ~19 s cold (call 6), less with its kernel cache warm
CHECK_STEPS = 200  # the guard: the uncompiled device step, ~1 s of steps plus startup and capture
CHECK_SECONDS_PLANNED = 5.0
PROOF_SECONDS = 130.0  # the CUDA proof at the end of the call (short subprocesses, one torch.compile): 125 s in call 6
MARGIN_SECONDS = 20.0
MAX_TOKENS_PER_MODEL = 2_000_000_000
TOO_SLOW_MFU = 0.01  # far below any plan: stop and report instead of spending the call
ARCHIVE_LIMIT = 14 * 2**20  # the way back takes 16 MiB a file: larger encoder sets travel in fp16
PYDANTIC_WHEELS = ("pydantic==2.14.4", "pydantic_core==2.50.5", "annotated_types==0.8.0", "typing_inspection==0.4.5")


EXTRA_OVERRIDES: list[str] = []  # run --set: for every spec the script loads (the tests point the corpus at a fixture)


def smoke() -> bool:
    return os.environ.get("EELBERT_GPU_SMOKE") == "1"


def spec_overrides(model: str, out: Path, extra: list[str]) -> list[str]:
    """What the script sets on top of the spec: where the run goes, and CPU sizes in the smoke run."""
    overrides = [f"output_dir={out / model}"]
    if smoke():
        overrides += ["pretrain.batch_size=8", "pretrain.device=cpu", "pretrain.loop=device", "pretrain.log_every=2",
                      "pretrain.eval_batches=1"]
    return overrides + EXTRA_OVERRIDES + extra


def load(model: str, out: Path, extra: list[str]):
    from eelbert_cli.core.spec import load_spec

    return load_spec(SPECS / f"{model}.yaml", spec_overrides(model, out, extra))


def model_config(spec):
    from eelbert_cli.core.targets import resolve_model_config

    return resolve_model_config(spec.model, spec.tokenizer)


def planned_tokens_per_step() -> int:
    """The real call's step (the spec as committed: the smoke run's CPU sizes do not change the plan)."""
    from eelbert_cli.core.spec import load_spec

    settings = load_spec(SPECS / "eelbert-tiny.yaml", []).pretrain
    return settings.batch_size * settings.seq_len


def relative_speed(model: str) -> float:
    """A spec's speed relative to eelbert-tiny, by the base model its name starts with."""
    bases = sorted((base for base in SPEED_RELATIVE_TO_EELBERT_TINY if model.startswith(base)), key=len)
    return SPEED_RELATIVE_TO_EELBERT_TINY[bases[-1]] if bases else 1.0


def plan_call(seconds: float, tokens_per_second: float, tokens_per_step: int, elapsed: float = 0.0,
              models: tuple[str, ...] = MODELS, proof: bool = True, compiled: bool = True) -> dict:
    """The call's time split and each model's token budget, from a throughput (planned or measured).
    Every model gets the same budget; snapshot cooldowns add ``cooldown x sum(fractions)`` tokens.
    ``elapsed``: seconds already spent (the check); the margin is slack, not part of the script's time."""
    snapshot_overhead = 0.2 * sum(SNAPSHOT_FRACTIONS)
    proof_seconds = PROOF_SECONDS if proof else 0.0
    per_model = SETUP_SECONDS_PER_MODEL + (COMPILE_SECONDS_PER_MODEL if compiled else 0.0)
    fixed = elapsed + (0 if elapsed else CHECK_SECONDS_PLANNED) + len(models) * per_model
    pretrain_seconds = max(seconds - proof_seconds - fixed - MARGIN_SECONDS, 0.0)
    seconds_per_token = (1 + snapshot_overhead) * sum(1 / (tokens_per_second * relative_speed(m)) for m in models)
    unit = tokens_per_step * 16  # the snapshot points fall on whole steps
    tokens = min(int(pretrain_seconds / seconds_per_token) // unit * unit, MAX_TOKENS_PER_MODEL // unit * unit)
    spent = tokens * seconds_per_token
    return {
        "tokens_per_model": max(tokens, unit),
        "snapshots": [int(tokens * fraction) for fraction in SNAPSHOT_FRACTIONS],
        "pretrain_seconds": round(spent, 1),
        "other_seconds": round(fixed, 1),
        "proof_seconds": proof_seconds,
        "pretrain_fraction": round(spent / max(spent + fixed, 1e-9), 3),  # of the script's wall time, the CUDA proof excluded
        "tokens_per_second": round(tokens_per_second),
        "compiled": compiled,
    }


def check_throughput(work: Path, overrides: tuple[str, ...] = ()) -> dict:
    """A short eelbert-tiny run of the device step (uncompiled unless ``overrides`` say otherwise): steady
    tokens/s and MFU after capture and warmup."""
    from eelbert_cli.core.training.pretrain import pretrain

    steps = 6 if smoke() else CHECK_STEPS
    spec = load("eelbert-tiny", work, [f"output_dir={work / 'check'}", f"pretrain.budget={{steps: {steps}}}", "pretrain.schedule=linear",
                                       "pretrain.log_every=2" if smoke() else "pretrain.log_every=50", *overrides])
    started = time.perf_counter()
    results = pretrain(spec, progress=False).results
    tps = steady_tokens_per_second(read_metrics(spec.run_dir))
    flops = training_flops_per_token(model_config(spec), spec.pretrain.seq_len, spec.pretrain.mask_rate)
    shutil.rmtree(spec.run_dir, ignore_errors=True)
    return {"steady_tokens_per_second": round(tps), "mfu": round(model_flops_utilisation(tps, flops), 4), "device": results["device"],
            "precision": results["precision"], "loop": results["loop"], "cuda_graph": results["cuda_graph"], "steps": steps,
            "wall_seconds": round(time.perf_counter() - started, 1)}


def bring_back(run_dir: Path, out: Path, model: str) -> dict:
    """OUT/<model>.tar.gz: the run's records and its encoders (snapshots and final), one file."""
    from eelbert_cli.core.training.checkpoints import save_encoder

    checkpoints = sorted(run_dir.glob("snapshots/tokens-*"), key=lambda p: int(p.name.split("-")[1]))
    if (run_dir / "checkpoint" / "model.safetensors").is_file():
        checkpoints.append(run_dir / "checkpoint")
    with tempfile.TemporaryDirectory() as scratch:
        staging = Path(scratch) / model
        staging.mkdir()
        for name in ("spec.resolved.yaml", "environment.json", "pretrain_results.json", "metrics.jsonl"):
            if (run_dir / name).is_file():
                shutil.copy(run_dir / name, staging / name)
        dtype = "fp32"
        for fp16 in (False, True):
            shutil.rmtree(staging / "encoders", ignore_errors=True)
            for checkpoint in checkpoints:
                target = staging / "encoders" / ("final" if checkpoint.name == "checkpoint" else checkpoint.name)
                save_encoder(checkpoint, target, fp16=fp16)
                if (checkpoint / "snapshot.json").is_file():
                    shutil.copy(checkpoint / "snapshot.json", target / "snapshot.json")
            dtype = "fp16" if fp16 else "fp32"
            if sum(p.stat().st_size for p in staging.rglob("*") if p.is_file()) < ARCHIVE_LIMIT:
                break
        partial = out / f".{model}.tar.gz.partial"
        with tarfile.open(partial, "w:gz") as archive:
            archive.add(staging, arcname=model)
        os.replace(partial, out / f"{model}.tar.gz")
    return {"encoder_dtype": dtype, "encoders": [p.name for p in checkpoints], "archive_bytes": (out / f"{model}.tar.gz").stat().st_size}


def pretrain_model(model: str, work: Path, out: Path, plan: dict, deadline: float) -> dict:
    """One model's run (stopped at ``deadline`` like a SIGTERM, snapshots kept), archived to OUT."""
    from eelbert_cli.core.errors import EelbertError
    from eelbert_cli.core.training.pretrain import TrainingStopped, pretrain

    started = time.perf_counter()
    spec = load(model, work, [f"pretrain.budget={{tokens: {plan['tokens_per_model']}}}", f"pretrain.snapshots={plan['snapshots']}"])
    record: dict = {"tokens_planned": plan["tokens_per_model"]}
    try:
        results = pretrain(spec, progress=False, deadline=deadline).results
        config = model_config(spec)
        flops = training_flops_per_token(config, spec.pretrain.seq_len, spec.pretrain.mask_rate)
        steady = steady_tokens_per_second(read_metrics(spec.run_dir))
        kept = ("steps", "tokens", "tokens_per_second", "elapsed_seconds", "startup_seconds", "heldout_loss", "heldout_accuracy",
                "precision", "loop", "cuda_graph", "device")
        record |= {key: results.get(key) for key in kept}
        record |= {"steady_tokens_per_second": round(steady), "mfu": round(model_flops_utilisation(steady, flops), 4)}
    except TrainingStopped as stopped:
        record["stopped"] = str(stopped)
    except (EelbertError, RuntimeError) as error:  # one model's failure must not cost the others
        record["error"] = f"{type(error).__name__}: {error}"
    snapshots = (json.loads(p.read_text()) for p in spec.run_dir.glob("snapshots/*/snapshot.json"))
    record["snapshots"] = sorted(snapshots, key=lambda s: s["tokens"])
    record["pretrain_seconds"] = round(record.get("elapsed_seconds") or 0.0, 1)
    record["snapshot_seconds"] = round(sum(s.get("seconds", 0.0) for s in record["snapshots"]), 1)
    record |= bring_back(spec.run_dir, out, model)
    record["wall_seconds"] = round(time.perf_counter() - started, 1)
    return record


def run(out: Path, seconds: float, extra: list[str], proof: bool, models: tuple[str, ...] = MODELS, tokens: int | None = None) -> int:
    from transformers.utils import logging as transformers_logging

    from eelbert_cli.core.console import configure_logging

    configure_logging()
    transformers_logging.set_verbosity_error()
    transformers_logging.disable_progress_bar()
    EXTRA_OVERRIDES.extend(extra)
    started = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="gpu-track-"))
    spec = load("eelbert-tiny", work, [])
    tokens_per_step = spec.pretrain.batch_size * spec.pretrain.seq_len
    compiled = spec.pretrain.compile
    planned_speed = PLANNED_TOKENS_PER_SECOND if compiled else UNCOMPILED_TOKENS_PER_SECOND
    planned = plan_call(seconds, planned_speed, planned_tokens_per_step(), models=models, proof=proof, compiled=compiled)
    summary: dict = {"smoke": smoke(), "seconds_allowed": seconds, "planned": planned, "models": {}}
    print(f"plan: {planned['pretrain_fraction']:.0%} of the script's time in pretraining steps "
          f"({planned['pretrain_seconds']:.0f} of {planned['pretrain_seconds'] + planned['other_seconds']:.0f} s "
          f"at {planned_speed / 1e6:.1f}M tokens/s planned{', compiled' if compiled else ''})", flush=True)

    check = check_throughput(work, ("pretrain.compile=false",))  # a guard, not the plan: compiling here would cost ~15 s
    summary["check"] = check
    write_json(out / "summary.json", summary)
    print(f"check: {check['steady_tokens_per_second']:,} tokens/s steady uncompiled ({check['loop']} loop, CUDA graph "
          f"{check['cuda_graph']}), MFU {check['mfu']:.2%} of {H200_BF16_PEAK_FLOPS / 1e12:.0f} TFLOP/s bf16, "
          f"device {check['device']}, {check['wall_seconds']} s", flush=True)
    if not smoke() and (check["device"] == "cpu" or check["mfu"] < TOO_SLOW_MFU):
        print(f"stopping: {check['device']} at MFU {check['mfu']:.2%} is far below the plan; nothing else was run", flush=True)
        return 2

    elapsed = time.perf_counter() - started
    speed = check["steady_tokens_per_second"] * (PLANNED_TOKENS_PER_SECOND / UNCOMPILED_TOKENS_PER_SECOND if compiled else 1.0)
    plan = plan_call(seconds, speed, tokens_per_step, elapsed, models=models, proof=proof, compiled=compiled)
    if tokens is not None:  # a budget fixed on the command line (to match an earlier call's points); snapshots as usual
        fixed = tokens // (16 * tokens_per_step) * 16 * tokens_per_step
        plan = {**plan, "tokens_per_model": fixed, "snapshots": [int(fixed * f) for f in SNAPSHOT_FRACTIONS], "fixed_on_command_line": True}
    if smoke():
        plan = {**plan, "tokens_per_model": 16 * tokens_per_step, "snapshots": [int(16 * tokens_per_step * f) for f in SNAPSHOT_FRACTIONS]}
    summary["plan"] = plan
    print(f"budget: {plan['tokens_per_model']:,} tokens per model ({plan['tokens_per_model'] // tokens_per_step:,} steps of "
          f"{tokens_per_step:,}), snapshots at {', '.join(f'{s / 1e6:.0f}M' for s in plan['snapshots'])}", flush=True)

    end_of_models = started + seconds - (PROOF_SECONDS if proof else 0.0) - MARGIN_SECONDS
    for index, model in enumerate(models):
        left = end_of_models - time.perf_counter()
        weights = [1 / relative_speed(m) for m in models[index:]]
        share = left * weights[0] / sum(weights)  # what is left, shared with the models still to run by their speed
        deadline = time.monotonic() + max(share - SETUP_SECONDS_PER_MODEL, 1.0)
        record = pretrain_model(model, work, out, plan, deadline)
        summary["models"][model] = record
        summary["elapsed_seconds"] = round(time.perf_counter() - started, 1)
        write_json(out / "summary.json", summary)
        outcome = record.get("error") or record.get("stopped") or f"held-out loss {record['heldout_loss']:.3f}"
        print(f"{model}: {record.get('tokens') or 0:,} tokens at {record.get('steady_tokens_per_second') or 0:,} tok/s steady "
              f"(MFU {record.get('mfu') or 0:.2%}), {len(record['snapshots'])} snapshots, {outcome}; "
              f"{record['wall_seconds']:.0f} s", flush=True)

    models_wall = time.perf_counter() - started
    training = sum(r["pretrain_seconds"] + r["snapshot_seconds"] for r in summary["models"].values())
    summary["measured"] = {"script_seconds_before_proof": round(models_wall, 1), "pretrain_and_snapshot_seconds": round(training, 1),
                           "pretrain_fraction": round(training / max(models_wall, 1e-9), 3)}
    write_json(out / "summary.json", summary)
    print(f"pretraining steps took {summary['measured']['pretrain_fraction']:.0%} of {models_wall:.0f} s", flush=True)
    if proof:
        summary["cuda_proof"] = cuda_proof(work / "proof", min(PROOF_SECONDS, started + seconds - time.perf_counter()))
        write_json(out / "summary.json", summary)
    shutil.rmtree(work, ignore_errors=True)
    summary["elapsed_seconds"] = round(time.perf_counter() - started, 1)
    write_json(out / "summary.json", summary)
    print(f"done in {summary['elapsed_seconds']:.0f} s; {out}/summary.json and one archive per model", flush=True)
    return 0


# ----------------------------------------------------------------------------------- the CUDA proof
def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "eelbert_cli.cli", *args]


PROOF_STEPS = 60  # signalled after 25, checkpoints every 20: the resumed run replays steps 21-60
PROOF_SETTINGS = {"steps": PROOF_STEPS}  # `proof --steps` changes it (the CPU test runs 12)


def proof_overrides(run_dir: Path, loop: str, compile_step: bool) -> list[str]:
    steps = PROOF_SETTINGS["steps"]
    settings = [f"output_dir={run_dir}", f"pretrain.budget={{steps: {steps}}}", "pretrain.batch_size=32",
                f"pretrain.checkpoint_every={steps // 3}", f"pretrain.log_every={max(steps // 12, 1)}", "pretrain.schedule=linear",
                "pretrain.snapshots=[]", f"pretrain.loop={loop}",
                f"pretrain.compile={str(compile_step).lower()}", "pretrain.precision=bf16" if not smoke() else "pretrain.precision=fp32",
                "pretrain.eval_batches=1", "pretrain.dropout=0.1" if loop == "host" else "pretrain.dropout=0.0"]
    if smoke():
        settings += ["pretrain.device=cpu", "pretrain.batch_size=8"]
    return [arg for setting in settings + EXTRA_OVERRIDES for arg in ("--set", setting)]


def interrupted_run_matches(root: Path, loop: str, compile_step: bool, deadline: float) -> dict:
    """The same 60 steps straight, and SIGTERM'd after step 25 then resumed: bit-identical weights?"""
    from safetensors.torch import load_file

    spec = str(SPECS / "eelbert-tiny.yaml")
    straight, split = root / f"{loop}-straight", root / f"{loop}-split"
    timeout = max(deadline - time.monotonic(), 5.0)
    first = subprocess.run(cli("pretrain", spec, *proof_overrides(straight, loop, compile_step)),
                           capture_output=True, text=True, timeout=timeout)
    if first.returncode != 0:
        return {"ok": False, "why": f"straight run exit {first.returncode}: {first.stderr[-600:]}"}
    process = subprocess.Popen(cli("pretrain", spec, *proof_overrides(split, loop, compile_step)), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    signal_after = PROOF_SETTINGS["steps"] * 5 // 12
    while process.poll() is None and not any(r.get("step", 0) >= signal_after for r in read_metrics(split)) and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=max(deadline - time.monotonic(), 5.0))
    stopped_at = max((r.get("step", 0) for r in read_metrics(split)), default=0)
    resumed = subprocess.run(cli("pretrain", spec, "--resume", *proof_overrides(split, loop, compile_step)), capture_output=True, text=True,
                             timeout=max(deadline - time.monotonic(), 5.0))
    if process.returncode != 2 or resumed.returncode != 0:
        return {"ok": False, "why": f"SIGTERM exit {process.returncode} ({stderr.strip()[-300:]}); resume exit {resumed.returncode}: "
                                    f"{resumed.stderr[-400:]}"}
    a = load_file(straight / "checkpoint" / "model.safetensors")
    b = load_file(split / "checkpoint" / "model.safetensors")
    differing = [key for key in a if not (a[key].shape == b[key].shape and bool((a[key] == b[key]).all()))]
    results = json.loads((straight / "pretrain_results.json").read_text())
    max_abs_difference = max((float((a[k].float() - b[k].float()).abs().max()) for k in differing), default=0.0)
    return {"ok": not differing, "signalled_after_step": stopped_at, "sigterm_exit": process.returncode, "bit_identical": not differing,
            "differing_tensors": differing[:5], "max_abs_difference": max_abs_difference,
            "precision": results.get("precision"), "loop": results.get("loop"), "cuda_graph": results.get("cuda_graph"),
            "device": results.get("device")}


def torchrun_one_rank(root: Path, deadline: float) -> dict:
    """A 1-process torchrun: the process group (NCCL on a GPU) and DDP, end to end."""
    run_dir = root / "torchrun"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "1", "-m", "eelbert_cli.cli", "pretrain",
               str(SPECS / "eelbert-tiny.yaml"), *proof_overrides(run_dir, "host", False), "--set", "pretrain.budget={steps: 10}"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=max(deadline - time.monotonic(), 5.0))
    if done.returncode != 0:
        return {"ok": False, "why": f"exit {done.returncode}: {done.stderr[-600:]}"}
    results = json.loads((run_dir / "pretrain_results.json").read_text())
    environment = json.loads((run_dir / "environment.json").read_text()) if (run_dir / "environment.json").is_file() else {}
    return {"ok": results.get("ranks_agree") is True, "world_size": results.get("world_size"), "ranks_agree": results.get("ranks_agree"),
            "device": results.get("device"), "backend": "nccl" if str(results.get("device", "")).startswith("cuda") else "gloo",
            "environment_keys": sorted(environment)[:8]}


PROOF_PARTS = ("torchrun_one_rank", "host_loop_compiled", "device_loop")


def cuda_proof(root: Path, seconds: float, parts: tuple[str, ...] = PROOF_PARTS) -> dict:
    """bf16 + compile + SIGTERM + --resume bit-identical (host loop), the same for the device loop
    (CUDA graph), and a 1-rank torchrun; each step bounded so the call ends in time."""
    root.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    deadline = started + max(seconds, 10.0)
    report: dict = {}
    steps = {"torchrun_one_rank": lambda: torchrun_one_rank(root, deadline),
             "host_loop_compiled": lambda: interrupted_run_matches(root, "host", not smoke(), deadline),
             "device_loop": lambda: interrupted_run_matches(root, "device", False, deadline)}
    for name, work in ((name, steps[name]) for name in parts):
        try:
            report[name] = work()
        except subprocess.TimeoutExpired:
            report[name] = {"ok": False, "why": "out of time"}
        print(f"cuda proof, {name}: {json.dumps(report[name])[:400]}", flush=True)
    report["seconds"] = round(time.monotonic() - started, 1)
    return report


# ----------------------------------------------------------------------------------- on the CPU, after
FINETUNE_SPEC = SPECS / "finetune.yaml"


def encoders_by_priority(back: Path) -> list[tuple[str, str, Path]]:
    """(model, encoder name, directory) for every encoder that came back: each model's final encoder
    first, then the eelbert-tiny snapshots (the transfer question), then the others', largest first."""
    found = []
    for model_dir in sorted(p for p in back.iterdir() if (p / "encoders").is_dir()):
        for encoder in (model_dir / "encoders").iterdir():
            tokens = json.loads((encoder / "snapshot.json").read_text())["tokens"] if (encoder / "snapshot.json").is_file() else None
            found.append((model_dir.name, encoder.name, encoder, tokens))

    def rank(item):
        model, name, _, tokens = item
        return (name != "final", model != "eelbert-tiny", MODELS.index(model) if model in MODELS else 9, -(tokens or 0))

    return [(model, name, path) for model, name, path, _ in sorted(found, key=rank)]


def finetune(back: Path, runs: Path, limit: int | None) -> int:
    """Fine-tune every encoder that came back (``experiments/gpu/finetune.yaml``), most telling first;
    finished runs are skipped, so this resumes across sessions. Reports come from ``eelbert report``."""
    done = 0
    for model, name, encoder in encoders_by_priority(back):
        if limit is not None and done >= limit:
            break
        run_name = f"{back.name}-{model}-{name}"
        command = cli("run", str(FINETUNE_SPEC), "--set", f"model={encoder}", "--set", f"name={run_name}",
                      "--set", f"output_dir={runs / run_name}")
        print(f"fine-tuning {model} {name}: {' '.join(command[2:])}", flush=True)
        subprocess.run(command, check=True)
        done += 1
    return 0


# ----------------------------------------------------------------------------------- the carry
def prepare(directory: Path, wheels: bool) -> None:
    """The carry folder: the packed corpus in an eelbert cache, its token file xz-compressed (~1 byte
    a token: the call takes 64 MiB in all), plus the Python wheels the lent machine lacks."""
    cache = directory / "cache"
    own = Path(os.environ.get("EELBERT_CACHE", Path.home() / ".cache" / "eelbert"))
    from eelbert_cli.core.data.packing import pack_corpus, pack_key
    from eelbert_cli.core.data.tokenization import load_tokenizer

    spec = load("eelbert-tiny", directory / "unused", [])
    settings = spec.pretrain
    tokenizer = load_tokenizer(spec.tokenizer)
    key = pack_key(settings.corpus, tokenizer, settings.seq_len, settings.heldout)
    packed = pack_corpus(settings.corpus, tokenizer, settings.seq_len, settings.heldout, 512)  # in the user's cache (built once)
    target = cache / "packed" / key
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    for item in packed.iterdir():
        if item.name == "tokens.bin":
            with open(item, "rb") as source, lzma.open(target / "tokens.bin.xz", "wb", preset=6) as sink:
                shutil.copyfileobj(source, sink, 16 * 2**20)
        elif item.is_file():
            shutil.copy(item, target / item.name)
    if wheels:
        tags = ("manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64")
        platforms = [arg for tag in tags for arg in ("--platform", tag)]
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--python-version", "3.12",
                        "--implementation", "cp", *platforms, "-d", str(directory / "whl"), *PYDANTIC_WHEELS], check=True)
    size = sum(p.stat().st_size for p in directory.rglob("*") if p.is_file())
    print(f"{directory}: {size / 2**20:.1f} MiB (packed data {key} from {own}); carry it and run scripts/gpu-run.sh there")


def unpack_carry(directory: Path, cache: Path) -> None:
    """On the lent machine: the carried cache with its token files decompressed, in a writable place."""
    shutil.copytree(directory / "cache", cache, dirs_exist_ok=True)
    for compressed in cache.glob("packed/*/tokens.bin.xz"):
        with lzma.open(compressed, "rb") as source, open(compressed.with_suffix(""), "wb") as sink:
            shutil.copyfileobj(source, sink, 16 * 2**20)
        compressed.unlink()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run_parser = commands.add_parser("run", help="the GPU track (EELBERT_GPU_SMOKE=1: at CPU size)")
    run_parser.add_argument("out", type=Path)
    run_parser.add_argument("--seconds", type=float, default=570, help="everything must end within this (a call allows 600)")
    run_parser.add_argument("--no-proof", action="store_true", help="skip the CUDA proof at the end")
    run_parser.add_argument("--tokens", type=int, default=None, help="one budget for every model instead of the planned one")
    variants = sorted(p.stem for p in SPECS.glob("*.yaml") if not p.stem.startswith("_") and p.stem != "finetune")
    run_parser.add_argument("--models", nargs="+", choices=variants, default=list(MODELS),
                            help="specs of experiments/gpu/ to run (default: the two hash-vector models and the exact-id eelbert-tiny)")
    run_parser.add_argument("--set", dest="overrides", action="append", default=[],
                            help="a spec override for every model (dotted.key=value)")
    prepare_parser = commands.add_parser("prepare", help="build the carry folder on the CPU")
    prepare_parser.add_argument("directory", type=Path)
    prepare_parser.add_argument("--wheels", action="store_true", help="also download the pydantic wheels for Python 3.12")
    unpack_parser = commands.add_parser("unpack", help="(gpu-run.sh) decompress the carry into a cache folder")
    unpack_parser.add_argument("directory", type=Path)
    unpack_parser.add_argument("cache", type=Path)
    proof_parser = commands.add_parser("proof", help="only the CUDA proof (resume bit-identical, 1-rank torchrun)")
    proof_parser.add_argument("out", type=Path)
    proof_parser.add_argument("--seconds", type=float, default=PROOF_SECONDS)
    proof_parser.add_argument("--set", dest="overrides", action="append", default=[],
                              help="a spec override for every run (e.g. pretrain.deterministic=true)")
    proof_parser.add_argument("--parts", nargs="+", choices=PROOF_PARTS, default=list(PROOF_PARTS))
    proof_parser.add_argument("--steps", type=int, default=PROOF_STEPS, help="steps per run (signalled after 5/12 of them)")
    check_parser = commands.add_parser("check", help="only the ~10 s throughput check (e.g. --set pretrain.compile=true)")
    check_parser.add_argument("out", type=Path)
    check_parser.add_argument("--set", dest="overrides", action="append", default=[],
                              help="a spec override for the check's eelbert-tiny run")
    finetune_parser = commands.add_parser("finetune", help="fine-tune the encoders a call brought back, on the CPU")
    finetune_parser.add_argument("back", type=Path, help="the folder the archives were extracted into (one folder per model)")
    finetune_parser.add_argument("--runs", type=Path, default=Path("runs"), help="where the fine-tuning runs go")
    finetune_parser.add_argument("--limit", type=int, default=None, help="stop after this many encoders")
    args = parser.parse_args()
    if args.command == "finetune":
        return finetune(args.back, args.runs, args.limit)
    if args.command == "prepare":
        prepare(args.directory, args.wheels)
        return 0
    if args.command == "unpack":
        unpack_carry(args.directory, args.cache)
        return 0
    if args.command == "check":
        EXTRA_OVERRIDES.extend(args.overrides)
        args.out.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix="gpu-check-"))
        report = {"overrides": args.overrides, **check_throughput(work)}
        shutil.rmtree(work, ignore_errors=True)
        write_json(args.out / "check.json", report)
        print(f"throughput check: {json.dumps(report)}", flush=True)
        return 0
    if args.command == "proof":
        PROOF_SETTINGS["steps"] = args.steps
        EXTRA_OVERRIDES.extend(args.overrides)
        report = cuda_proof(args.out, args.seconds, tuple(args.parts))
        write_json(args.out / "proof.json", report)
        return 0 if all(part.get("ok") for part in report.values() if isinstance(part, dict)) else 1
    return run(args.out, args.seconds, args.overrides, proof=not args.no_proof, models=tuple(args.models), tokens=args.tokens)


if __name__ == "__main__":
    sys.exit(main())
