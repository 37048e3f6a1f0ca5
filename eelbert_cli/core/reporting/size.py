"""Honest size accounting: what a fine-tuned model ships, measured as the bytes of its safetensors file.

Counts come from the modules, bytes from files actually written; nothing is estimated except int8,
which is stated as one byte per weight (quantisation scales ignored).
"""

from __future__ import annotations

import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

from eelbert_cli.core.model.config import EelbertConfig, learned_twin_config
from eelbert_cli.core.model.modeling import build_model, parameter_count
from eelbert_cli.core.model.presets import PRESETS

# Parameter groups of a BERT-family model, by name prefix inside the encoder (``bert.`` stripped).
_GROUPS = {
    "word_embedding": ("embeddings.word_embeddings.",),
    "embeddings_other": ("embeddings.position_embeddings.", "embeddings.token_type_embeddings.", "embeddings.LayerNorm."),
    "encoder": ("encoder.",),
    "pooler": ("pooler.",),
}
SHIPPED_NUM_LABELS = 2  # a binary classifier stands in for "the model a user ships after fine-tuning"


@dataclass
class SizeReport:
    name: str
    hash_kind: str
    layers: int
    hidden: int
    params_total: int  # the encoder a fine-tuned model keeps: embeddings + encoder + pooler
    params_word_embedding: int
    params_embeddings_other: int
    params_encoder: int
    params_pooler: int
    params_task_head: int
    params_mlm_pretraining_only: int
    file_bytes: int  # safetensors of the fine-tuned (binary classification) model, fp32
    fp16_file_bytes: int
    int8_bytes_estimate: int
    bert_twin: str
    bert_twin_file_bytes: int
    ratio_vs_bert: float

    @property
    def megabytes(self) -> float:
        return self.file_bytes / 1e6

    def as_dict(self) -> dict:
        return asdict(self) | {"file_megabytes": round(self.megabytes, 3)}


def parameter_groups(model: nn.Module) -> dict[str, int]:
    counts = dict.fromkeys(_GROUPS, 0) | {"task_head": 0}
    for name, parameter in model.named_parameters():
        local = name.removeprefix("bert.")
        group = next((g for g, prefixes in _GROUPS.items() if local.startswith(prefixes)), "task_head")
        counts[group] += parameter.numel()
    return counts


def safetensors_bytes(model: nn.Module) -> int:
    with tempfile.TemporaryDirectory() as directory:
        model.save_pretrained(directory, safe_serialization=True)
        return sum(path.stat().st_size for path in Path(directory).glob("*.safetensors"))


def twin_config(config: EelbertConfig) -> tuple[str, EelbertConfig]:
    """The learned-table BERT an EELBERT is compared with (the paper compares UNO with BERT-tiny);
    for a custom shape, the same shape with a learned table."""
    if config.preset not in PRESETS:
        return "bert (same shape)", learned_twin_config(config)
    twin_name = PRESETS[config.preset].bert_twin
    shape = PRESETS[twin_name].shape
    return twin_name, learned_twin_config(
        config,
        preset=twin_name,
        num_hidden_layers=shape.layers,
        hidden_size=shape.hidden,
        num_attention_heads=shape.heads,
        intermediate_size=shape.ffn,
    )


def shipped_model(config: EelbertConfig) -> nn.Module:
    return build_model(config, "sequence-classification", num_labels=SHIPPED_NUM_LABELS)


def size_report(name: str, config: EelbertConfig, _twin_bytes_cache: dict[str, int] | None = None) -> SizeReport:
    cache = _twin_bytes_cache if _twin_bytes_cache is not None else {}
    with torch.device("cpu"):
        shipped = shipped_model(config)
        groups = parameter_groups(shipped)
        base_params = parameter_count(shipped) - groups["task_head"]
        masked_lm = build_model(config, "masked-lm")
        mlm_only = parameter_count(masked_lm) - base_params + groups["pooler"]  # the MLM model has no pooler
        file_bytes = safetensors_bytes(shipped)
        fp16_bytes = safetensors_bytes(shipped.half())
        twin_name, twin = twin_config(config)
        twin_key = twin_name + str(twin.to_json_string(use_diff=True))
        if twin_key not in cache:
            cache[twin_key] = file_bytes if twin.to_dict() == config.to_dict() else safetensors_bytes(shipped_model(twin))
    return SizeReport(
        name=name,
        hash_kind=config.hash_kind,
        layers=config.num_hidden_layers,
        hidden=config.hidden_size,
        params_total=base_params,
        params_word_embedding=groups["word_embedding"],
        params_embeddings_other=groups["embeddings_other"],
        params_encoder=groups["encoder"],
        params_pooler=groups["pooler"],
        params_task_head=groups["task_head"],
        params_mlm_pretraining_only=mlm_only,
        file_bytes=file_bytes,
        fp16_file_bytes=fp16_bytes,
        int8_bytes_estimate=parameter_count(shipped),
        bert_twin=twin_name,
        bert_twin_file_bytes=cache[twin_key],
        ratio_vs_bert=cache[twin_key] / file_bytes,
    )
