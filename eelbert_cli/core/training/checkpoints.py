"""Training checkpoints that survive a kill at any moment: safetensors only, written atomically.

Layout of one checkpoint directory (``checkpoints/step-00000500``):
    model/                 save_pretrained of the masked-LM model (loadable by Auto classes)
    optimizer.safetensors  every optimizer state tensor, keyed "<param index>.<name>"
    trainer_state.json     step, tokens, elapsed time, optimizer hyper-parameters
    objective.safetensors  pretraining-only tensors of the objective (distillation projections), if any

Randomness (data order, masking, dropout) is a pure function of (seed, step, rank), so the step
number is all the RNG state a resume needs.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from eelbert_cli.core.errors import EelbertError
from eelbert_cli.core.files import PARTIAL_SUFFIX, replacing

CHECKPOINT_PREFIX = "step-"
STATE_FILE = "trainer_state.json"
OPTIMIZER_FILE = "optimizer.safetensors"
OBJECTIVE_FILE = "objective.safetensors"  # pretraining-only tensors (distillation projections), when there are any


def checkpoint_name(step: int) -> str:
    return f"{CHECKPOINT_PREFIX}{step:08d}"


def list_checkpoints(root: Path) -> list[Path]:
    """Complete checkpoints, oldest first (a directory without its state file never counts)."""
    if not root.is_dir():
        return []
    found = [
        p for p in root.iterdir()
        if p.name.startswith(CHECKPOINT_PREFIX) and not p.name.endswith(PARTIAL_SUFFIX) and (p / STATE_FILE).is_file()
    ]
    return sorted(found, key=lambda p: p.name)


def latest_checkpoint(root: Path) -> Path | None:
    checkpoints = list_checkpoints(root)
    return checkpoints[-1] if checkpoints else None


def optimizer_tensors(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], list[dict]]:
    state = optimizer.state_dict()
    tensors = {}
    for index, values in state["state"].items():
        for name, value in values.items():
            tensor = value if torch.is_tensor(value) else torch.tensor(value)
            tensors[f"{index}.{name}"] = tensor.detach().cpu().contiguous()
    return tensors, state["param_groups"]


def restore_optimizer(optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], groups: list[dict]) -> None:
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, tensor in tensors.items():
        index, name = key.split(".", 1)
        state.setdefault(int(index), {})[name] = tensor
    optimizer.load_state_dict({"state": state, "param_groups": groups})


def save_checkpoint(root: Path, step: int, model, optimizer: torch.optim.Optimizer, trainer_state: dict, keep: int,
                    extra: dict[str, torch.Tensor] | None = None) -> Path:
    """Written into a temporary sibling, then renamed: a kill mid-write leaves the last one intact."""
    final = root / checkpoint_name(step)
    with replacing(final, directory=True) as partial:
        model.save_pretrained(partial / "model", safe_serialization=True)
        if extra:
            save_file(extra, str(partial / OBJECTIVE_FILE))
        tensors, groups = optimizer_tensors(optimizer)
        save_file(tensors, str(partial / OPTIMIZER_FILE))
        state = {**trainer_state, "step": step, "optimizer_param_groups": groups}
        (partial / STATE_FILE).write_text(json.dumps(state, indent=2) + "\n", encoding="utf-8")
    for old in list_checkpoints(root)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def read_trainer_state(checkpoint: Path) -> dict:
    try:
        state = json.loads((checkpoint / STATE_FILE).read_text(encoding="utf-8"))
        if not isinstance(state, dict) or not {"step", "tokens", "elapsed_seconds"} <= set(state):
            raise ValueError("it lacks step, tokens or elapsed_seconds")
        return state
    except (OSError, ValueError) as error:
        raise EelbertError(f"checkpoint {checkpoint} is unreadable ({error}); delete it to resume from the one before") from None


def load_optimizer_state(checkpoint: Path, optimizer: torch.optim.Optimizer, state: dict) -> None:
    try:
        tensors = load_file(str(checkpoint / OPTIMIZER_FILE))
        restore_optimizer(optimizer, tensors, state["optimizer_param_groups"])
    except Exception as error:  # safetensors and torch raise their own types for a damaged file
        raise EelbertError(
            f"optimizer state of checkpoint {checkpoint} is unreadable ({type(error).__name__}: {error}); "
            "delete that checkpoint directory to resume from the one before"
        ) from None


def load_extra_state(checkpoint: Path) -> dict[str, torch.Tensor]:
    """The objective's pretraining-only tensors ({} when the checkpoint has none)."""
    path = checkpoint / OBJECTIVE_FILE
    if not path.is_file():
        return {}
    try:
        return load_file(str(path))
    except Exception as error:  # safetensors raises its own types for a damaged file
        raise EelbertError(
            f"{path} is unreadable ({type(error).__name__}: {error}); delete that checkpoint to resume from the one before") from None


def save_with_tokenizer(model, tokenizer, directory: Path, extra_files: dict[str, str] | None = None) -> None:
    """A model directory any transformers user can open (weights, config, tokenizer files), written
    into a temporary sibling and renamed into place."""
    from transformers import PreTrainedTokenizerFast

    with replacing(directory, directory=True) as partial:
        model.save_pretrained(partial, safe_serialization=True)
        wrapped = PreTrainedTokenizerFast(
            tokenizer_object=tokenizer, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]"
        )
        wrapped.save_pretrained(partial)
        for name, text in (extra_files or {}).items():
            (partial / name).write_text(text, encoding="utf-8")


def save_encoder(checkpoint: Path, directory: Path, fp16: bool = False) -> None:
    """The encoder a user fine-tunes, out of any checkpoint (no MLM head, no task head, no
    optimizer), with the checkpoint's tokenizer files; ``fp16`` halves it where bytes are scarce."""
    from eelbert_cli.core.model.modeling import load_model

    encoder = load_model(checkpoint, "base")
    if fp16:
        encoder = encoder.to(torch.float16)
    encoder.save_pretrained(directory, safe_serialization=True)
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        if (checkpoint / name).is_file():
            shutil.copy(checkpoint / name, directory / name)
