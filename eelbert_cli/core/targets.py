"""From what a user names to a model: presets, spec files, checkpoint directories.

The spec layer is pure; this is where a spec meets the filesystem (tokenizers, checkpoints) and
transformers. ``size-report``, ``run``'s size stage and fine-tuning all resolve models here, so
they agree on what a spec ships (e.g. its pretraining checkpoint, with its trained vocabulary).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from eelbert_cli.core.data.resources import BUILTIN_CHECKPOINTS, checkpoint_path
from eelbert_cli.core.data.tokenization import DEFAULT_TOKENIZER, load_tokenizer, vocabulary_of
from eelbert_cli.core.errors import EelbertError
from eelbert_cli.core.model.config import EelbertConfig, as_eelbert_config, make_config, preset_config
from eelbert_cli.core.model.modeling import build_model, is_checkpoint_dir, load_model
from eelbert_cli.core.model.presets import PRESETS
from eelbert_cli.core.spec import ExperimentSpec, FinetuneSpec, ModelSpec, load_spec

if TYPE_CHECKING:
    from tokenizers import Tokenizer
    from torch import nn

    from eelbert_cli.core.data.tasks import Task


@dataclass
class ResolvedTarget:
    name: str
    config: EelbertConfig
    spec: ExperimentSpec | None = None


def checkpoint_config(path: str | Path) -> EelbertConfig:
    """The config of a checkpoint directory (ours or any Hugging Face BERT), as an EelbertConfig."""
    from transformers import AutoConfig

    path = Path(path)
    try:
        return as_eelbert_config(AutoConfig.from_pretrained(path))
    except (OSError, ValueError) as error:
        raise EelbertError(f"could not read {path / 'config.json'}: {error}") from None


@dataclass(frozen=True)
class ModelSource:
    """Where fine-tuning starts: a checkpoint directory (ours or any HF BERT) or a fresh config."""

    description: str
    checkpoint: Path | None = None
    config: EelbertConfig | None = None

    @property
    def max_positions(self) -> int:
        if self.checkpoint is None:
            return self.config.max_position_embeddings
        return checkpoint_config(self.checkpoint).max_position_embeddings

    def tokenizer(self, fallback: str, named: bool = False) -> Tokenizer:
        """The checkpoint's own tokenizer where it has one, else ``fallback``. A spec that ``named`` a
        different vocabulary for a checkpoint is refused: it would be recorded but not used (the
        encoder reads text only as it was trained to)."""
        if self.checkpoint is not None and any((self.checkpoint / f).is_file() for f in ("tokenizer.json", "vocab.txt")):
            own = load_tokenizer(self.checkpoint)
            if named and vocabulary_of(load_tokenizer(fallback)) != vocabulary_of(own):
                raise EelbertError(
                    f"tokenizer {fallback!r} is not the vocabulary of {self.checkpoint} (it has its own, {own.get_vocab_size():,} "
                    "tokens): a pretrained model reads text only as it was trained to. Remove tokenizer from the spec "
                    "(or the --set): the checkpoint's is used"
                )
            return own
        return load_tokenizer(fallback)

    def build(self, task: Task, settings: FinetuneSpec) -> nn.Module:
        head = {
            "num_labels": task.num_labels,
            "problem_type": "regression" if task.type == "regression" else "single_label_classification",
            "sentence_vector": settings.sentence_vector,
        }
        if settings.dropout is not None:
            head |= {"hidden_dropout_prob": settings.dropout, "attention_probs_dropout_prob": settings.dropout}
        if self.checkpoint is None:
            return build_model(self.config, "sequence-classification", **head)
        return load_model(self.checkpoint, "sequence-classification", **head)


def checkpoint_source(name_or_path: str) -> ModelSource:
    path = checkpoint_path(name_or_path)
    if not is_checkpoint_dir(path):
        raise EelbertError(f"fine-tuning checkpoint {name_or_path} is not a directory with a config.json")
    return ModelSource(str(name_or_path), checkpoint=path)


def resolve_model_config(model: ModelSpec, tokenizer: str = DEFAULT_TOKENIZER) -> EelbertConfig:
    """The transformers config a spec's ``model`` section describes."""
    if model.checkpoint is not None:
        return checkpoint_config(checkpoint_path(model.checkpoint))
    return make_config(
        model.shape,
        model.hash_config,
        vocabulary_of(load_tokenizer(tokenizer)),
        mlm_head=model.mlm_head,
        mlm_classes=model.mlm_classes,
        # the preset a model derives from, kept while its shape is the preset's (it picks the BERT twin)
        preset=None if model.model_fields_set & {"layers", "hidden", "heads", "ffn"} else model.preset,
        max_position_embeddings=model.max_positions,
        hidden_dropout_prob=model.dropout,
        attention_probs_dropout_prob=model.dropout,
    )


def model_source(spec: ExperimentSpec, require_pretrained: bool = True) -> ModelSource:
    """An explicit fine-tuning checkpoint; else this run's pretraining checkpoint; else the spec's model.

    A spec that pretrains fine-tunes its pretrained encoder: before pretraining has finished that is
    an error (fine-tuning a random init would be reported as "pretrained"), unless
    ``require_pretrained`` is off (sizes do not depend on weights)."""
    finetune = spec.finetune or FinetuneSpec()
    if finetune.checkpoint is not None:
        return checkpoint_source(finetune.checkpoint)
    pretrained = spec.run_dir / "checkpoint"
    if spec.pretrain is not None and is_checkpoint_dir(pretrained):
        return checkpoint_source(str(pretrained))
    if spec.pretrain is not None and require_pretrained:
        raise EelbertError(
            f"{spec.name} pretrains, but its pretrained encoder {pretrained} does not exist yet: run `eelbert pretrain SPEC` "
            "(or `eelbert run SPEC`) first, or set finetune.checkpoint"
        )
    if spec.model.checkpoint is not None:
        return checkpoint_source(spec.model.checkpoint)
    return ModelSource(f"{spec.model.display_name} (random init)", config=resolve_model_config(spec.model, spec.tokenizer))


def shipped_model_config(spec: ExperimentSpec) -> EelbertConfig:
    """The config of the model the spec's fine-tuning starts from, and so ships."""
    source = model_source(spec, require_pretrained=False)
    return checkpoint_config(source.checkpoint) if source.checkpoint is not None else source.config


def resolve_target(target: str, overrides: list[str]) -> ResolvedTarget:
    if target in PRESETS:
        if overrides:
            raise EelbertError("--set applies to spec files; a preset has no spec to override")
        vocabulary = vocabulary_of(load_tokenizer()) if PRESETS[target].hash_kind != "learned" else None
        return ResolvedTarget(target, preset_config(target, vocabulary))
    path = Path(target)
    if path.suffix in (".yaml", ".yml"):
        spec = load_spec(path, overrides)
        return ResolvedTarget(spec.name, shipped_model_config(spec), spec)
    if target in BUILTIN_CHECKPOINTS and not path.exists():
        path = checkpoint_path(target)  # a built-in model by name (eelbert list)
        return ResolvedTarget(target, checkpoint_config(path))
    if is_checkpoint_dir(path):
        return ResolvedTarget(path.name, checkpoint_config(path))
    raise EelbertError(
        f"{target!r} is not a preset ({', '.join(PRESETS)}), a built-in model ({', '.join(BUILTIN_CHECKPOINTS)}), "
        "a spec file (.yaml) or a checkpoint directory"
    )
