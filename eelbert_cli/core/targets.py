"""Turn what a user typed (preset, spec file, checkpoint directory) into a model config."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from eelbert_cli.core.errors import EelbertError
from eelbert_cli.core.models import PRESETS, EelbertConfig, is_checkpoint_dir, preset_config
from eelbert_cli.core.spec import ExperimentSpec, load_spec, resolve_model_config


@dataclass
class ResolvedTarget:
    name: str
    config: EelbertConfig
    spec: ExperimentSpec | None = None


def as_eelbert_config(config) -> EelbertConfig:
    """A plain Hugging Face BertConfig becomes ours with a learned table (same numbers, same weights)."""
    if isinstance(config, EelbertConfig):
        return config
    if getattr(config, "model_type", None) != "bert":
        raise EelbertError(f"checkpoint has model_type {config.model_type!r}; eelbert handles 'bert' and 'eelbert'")
    fields = {k: v for k, v in config.to_dict().items() if k not in ("model_type", "architectures", "transformers_version")}
    return EelbertConfig.from_dict({**fields, "hash_kind": "learned"})


def resolve_target(target: str, overrides: list[str]) -> ResolvedTarget:
    if target in PRESETS:
        if overrides:
            raise EelbertError("--set applies to spec files; a preset has no spec to override")
        return ResolvedTarget(target, preset_config(target))
    path = Path(target)
    if is_checkpoint_dir(path):
        from transformers import AutoConfig

        try:
            config = AutoConfig.from_pretrained(path)
        except (OSError, ValueError) as error:
            raise EelbertError(f"could not read {path / 'config.json'}: {error}") from None
        return ResolvedTarget(path.name, as_eelbert_config(config))
    if path.suffix in (".yaml", ".yml"):
        spec = load_spec(path, overrides)
        return ResolvedTarget(spec.name, as_eelbert_config(resolve_model_config(spec.model, spec.tokenizer)), spec)
    raise EelbertError(
        f"{target!r} is not a preset ({', '.join(PRESETS)}), a spec file (.yaml) or a checkpoint directory"
    )
