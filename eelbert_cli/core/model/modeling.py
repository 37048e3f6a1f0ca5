"""BERT and EELBERT: transformers' BERT with exactly one module swapped.

The model classes are transformers' ``BertModel`` / ``BertForMaskedLM`` /
``BertForSequenceClassification`` whose ``embeddings.word_embeddings`` is replaced by a
``HashEmbedding`` (unless the hash kind is ``learned``, which is plain BERT). Importing this module
registers the ``eelbert`` model type with transformers' Auto classes, so
``AutoModel.from_pretrained(dir)`` loads our checkpoints.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch
from huggingface_hub.errors import StrictDataclassError
from safetensors import SafetensorError
from torch import nn
from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForMaskedLM,
    AutoModelForSequenceClassification,
    BertForMaskedLM,
    BertForSequenceClassification,
    BertModel,
)
from transformers.modeling_outputs import SequenceClassifierOutput

from eelbert_cli.core.console import warn_once
from eelbert_cli.core.errors import EelbertError
from eelbert_cli.core.model.config import EelbertConfig, as_eelbert_config
from eelbert_cli.core.model.embedding import HashEmbedding, HashTiedDecoder


def swap_word_embedding(bert: BertModel, config: EelbertConfig) -> None:
    """The EELBERT change, in one line of effect: BERT's word table becomes a hash embedding."""
    if not config.uses_hash_embedding:
        return
    if config.hash_vocabulary is None or len(config.hash_vocabulary) != config.vocab_size:
        raise EelbertError("an EELBERT config needs hash_vocabulary: the token strings of the tokenizer, in id order")
    embedding = HashEmbedding(config.hash_vocabulary, config.hidden_size, config.hash_config)
    embedding.reset_table()  # a no-op on the meta device; from_pretrained rebuilds it after loading
    bert.embeddings.word_embeddings = embedding


def hash_embeddings(model: nn.Module) -> list[HashEmbedding]:
    return [module for module in model.modules() if isinstance(module, HashEmbedding)]


class _EelbertLoading:
    """Shared by the three model classes: our config class, and hash tables rebuilt after loading.

    transformers materialises non-persistent buffers as ``empty_like`` after a meta-device load and
    dispatches re-initialisation to the *inner* BertModel, which does not know our module; so the
    tables are rebuilt here, where it cannot be missed.
    """

    config_class = EelbertConfig

    @classmethod
    def from_pretrained(cls, *args, **kwargs):
        loaded = super().from_pretrained(*args, **kwargs)
        model = loaded[0] if isinstance(loaded, tuple) else loaded
        for embedding in hash_embeddings(model):
            embedding.reset_table()
        return loaded


class EelbertModel(_EelbertLoading, BertModel):
    def __init__(self, config: EelbertConfig, add_pooling_layer: bool = True) -> None:
        super().__init__(config, add_pooling_layer=add_pooling_layer)
        swap_word_embedding(self, config)


def masked_mean(states: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
    """The mean of each sequence's states over its real (unpadded) positions."""
    if attention_mask is None:
        return states.mean(dim=1)
    weights = attention_mask.unsqueeze(-1).to(states.dtype)
    return (states * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1)


class EelbertForSequenceClassification(_EelbertLoading, BertForSequenceClassification):
    """``sentence_vector: mean`` feeds BERT's pooler (dense + tanh) the mean of the token states
    instead of [CLS]'s: masked-LM pretraining without next-sentence prediction never trains [CLS],
    so a pretrained encoder's sentence information may sit in its tokens. Same parameters either way."""

    def __init__(self, config: EelbertConfig) -> None:
        super().__init__(config)
        swap_word_embedding(self.bert, config)

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None, inputs_embeds=None, labels=None,
                **kwargs) -> SequenceClassifierOutput:
        if self.config.sentence_vector == "cls":
            return super().forward(input_ids, attention_mask, token_type_ids, position_ids, inputs_embeds, labels, **kwargs)
        kwargs.pop("return_dict", None)
        outputs = self.bert(input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids, position_ids=position_ids,
                            inputs_embeds=inputs_embeds, return_dict=True, **kwargs)
        pooler = self.bert.pooler
        pooled = pooler.activation(pooler.dense(masked_mean(outputs.last_hidden_state, attention_mask)))
        logits = self.classifier(self.dropout(pooled))
        loss = None if labels is None else self.loss_function(labels, logits, self.config)
        return SequenceClassifierOutput(loss=loss, logits=logits, hidden_states=outputs.hidden_states, attentions=outputs.attentions)


class EelbertForMaskedLM(_EelbertLoading, BertForMaskedLM):
    """MLM head ``tied``: logits over the fixed hash table (no vocabulary x hidden parameters);
    ``untied``: a trainable decoder used only in pretraining. The output bias is always kept.
    ``hash-vector``: a hidden x hidden decoder whose output is compared with the masked token's hash
    vector (``training/objectives.masked_lm_terms``): a target that shares n-grams between similar
    words and never asks for an exact id out of a softmax. ``frequent-ids``: logits over ``mlm_classes``
    classes, the pretraining data's most frequent tokens one each and every rarer token the last
    (``class_of_id``, a buffer set from the data's counts by ``set_frequent_classes``): exact ids where
    they are cheap to predict from context, no decoding of rare ids out of the fixed hash."""

    def __init__(self, config: EelbertConfig) -> None:
        super().__init__(config)
        swap_word_embedding(self.bert, config)
        predictions = self.cls.predictions
        if config.uses_hash_embedding and config.mlm_head == "tied":
            predictions.decoder = HashTiedDecoder(self.bert.embeddings.word_embeddings)
        elif config.mlm_head == "hash-vector":
            predictions.decoder = nn.Linear(config.hidden_size, config.hidden_size)
            predictions.bias = predictions.decoder.bias  # no vocabulary-sized bias: nothing here names an id
        elif config.mlm_head == "frequent-ids":
            predictions.decoder = nn.Linear(config.hidden_size, config.mlm_classes)
            predictions.bias = predictions.decoder.bias
            # until set from the pretraining data: the first ids their own classes (a placeholder)
            predictions.register_buffer("class_of_id", torch.arange(config.vocab_size).clamp(max=config.mlm_classes - 1))
        elif config.mlm_head == "untied":
            decoder = predictions.decoder  # its weight was tied to the (now replaced) input table
            decoder.weight = nn.Parameter(decoder.weight.detach().clone())
        if config.uses_hash_embedding or config.mlm_head == "untied":
            self._tied_weights_keys = {"cls.predictions.decoder.bias": "cls.predictions.bias"}
            self.all_tied_weights_keys = self.get_expanded_tied_weights_keys()
            self.tie_weights()


def frequent_classes(counts: torch.Tensor, classes: int) -> torch.Tensor:
    """id -> class for the frequent-ids head: the ``classes - 1`` most frequent ids (ties by id) get
    classes 0, 1, ... in order of frequency; every other id the last class."""
    order = torch.sort(-counts.double(), stable=True).indices  # stable: ties keep id order
    class_of_id = torch.full((len(counts),), classes - 1, dtype=torch.long)
    kept = order[: classes - 1]
    class_of_id[kept] = torch.arange(len(kept))
    return class_of_id


def set_frequent_classes(model: EelbertForMaskedLM, counts: torch.Tensor) -> None:
    """Point a fresh frequent-ids head at the pretraining data's token counts (ids never seen, e.g. the
    special tokens given count 0, fall in the shared last class unless the vocabulary is tiny)."""
    if len(counts) != model.config.vocab_size:
        raise EelbertError(f"token counts cover {len(counts)} ids but the model's vocabulary has {model.config.vocab_size}")
    buffer = model.cls.predictions.class_of_id
    buffer.copy_(frequent_classes(counts, model.config.mlm_classes).to(buffer.device))


AutoConfig.register(EelbertConfig.model_type, EelbertConfig)
AutoModel.register(EelbertConfig, EelbertModel)
AutoModelForMaskedLM.register(EelbertConfig, EelbertForMaskedLM)
AutoModelForSequenceClassification.register(EelbertConfig, EelbertForSequenceClassification)

TASK_CLASSES = {
    "base": EelbertModel,
    "masked-lm": EelbertForMaskedLM,
    "sequence-classification": EelbertForSequenceClassification,
}


def build_model(config: EelbertConfig, task: str = "base", **config_updates) -> nn.Module:
    """A freshly initialised model for ``task`` ('base', 'masked-lm', 'sequence-classification')."""
    if config_updates:
        config = EelbertConfig.from_dict({**config.to_dict(), **config_updates})
    return TASK_CLASSES[task](config)


def is_checkpoint_dir(path: str | Path) -> bool:
    return Path(path).is_dir() and (Path(path) / "config.json").is_file()


def has_classifier_head(path: Path) -> tuple[bool, list[str]]:
    """Whether ``config.json`` names a trained sequence-classification model (and the names it gives):
    loading any other checkpoint as a classifier gives it a random head."""
    try:
        architectures = json.loads((path / "config.json").read_text(encoding="utf-8")).get("architectures") or []
    except (OSError, json.JSONDecodeError, UnicodeDecodeError, AttributeError) as error:
        raise EelbertError(f"{path / 'config.json'} is not a readable model config ({error})") from None
    names = [str(name) for name in architectures] if isinstance(architectures, list) else []
    return any(name.endswith("ForSequenceClassification") for name in names), names


BERT_LIKE_TYPES = ("bert", "eelbert")
AUTO_CLASSES = {"base": AutoModel, "masked-lm": AutoModelForMaskedLM, "sequence-classification": AutoModelForSequenceClassification}
CLASSIFIER_KEYS = ("classifier.weight", "classifier.bias")

# What a damaged checkpoint raises while loading: a cut or garbled weights file (safetensors), an
# unreadable or missing file (OSError), a config that transformers refuses (strict field validation,
# ValueError). Anything else - a TypeError above all - is a bug of ours and must not be reported as
# the user's broken file: it propagates to the CLI's internal-error handler.
CHECKPOINT_DAMAGE: tuple[type[BaseException], ...] = (SafetensorError, OSError, ValueError, StrictDataclassError)


def checkpoint_model_type(path: str | Path) -> str:
    """The ``model_type`` of a BERT-family checkpoint directory with safetensors weights; anything
    else is one EelbertError naming the directory."""
    path = Path(path)
    if not is_checkpoint_dir(path):
        raise EelbertError(f"{path} is not a checkpoint directory (no config.json)")
    if not any(path.glob("*.safetensors")):
        raise EelbertError(f"{path} has no .safetensors weights; eelbert loads weights only from safetensors")
    try:
        model_type = json.loads((path / "config.json").read_text(encoding="utf-8")).get("model_type")
    except (json.JSONDecodeError, UnicodeDecodeError, AttributeError) as error:
        raise EelbertError(f"{path / 'config.json'} is not a readable model config ({error})") from None
    if model_type not in BERT_LIKE_TYPES:
        raise EelbertError(f"{path} holds a {model_type!r} model; eelbert handles BERT-family checkpoints ({', '.join(BERT_LIKE_TYPES)})")
    return model_type


def _plain_bert_with_our_head(path: Path, config_updates: dict) -> tuple[type, dict]:
    """transformers' BERT head reads [CLS] only; ours is the same model with the sentence-vector
    option, so a plain BERT fine-tuned on the mean of its tokens loads into ours (same weights, config made ours)."""
    config = as_eelbert_config(AutoConfig.from_pretrained(path)).to_dict()
    if "num_labels" in config_updates:  # the task's labels replace the checkpoint's label names
        config = {k: v for k, v in config.items() if k not in ("id2label", "label2id")}
    return EelbertForSequenceClassification, {"config": EelbertConfig.from_dict({**config, **config_updates})}


def _loader(path: Path, model_type: str, task: str, config_updates: dict) -> tuple[type, dict]:
    """The class that loads ``path`` for ``task`` and the keyword arguments it takes.

    ``sentence_vector`` (or its old name ``classifier_pooling``) is a field of our config only:
    transformers' own BERT classes reject it (a TypeError), so for a plain ``bert`` checkpoint it is
    dropped for [CLS] (transformers' head does exactly that) and switches to our head for the mean."""
    if model_type == "eelbert":
        return AUTO_CLASSES[task], config_updates
    ours = ("sentence_vector", "classifier_pooling")
    sentence_vector = next((config_updates[k] for k in ours if k in config_updates), "cls")
    if task == "sequence-classification" and sentence_vector != "cls":
        return _plain_bert_with_our_head(path, config_updates)
    return AUTO_CLASSES[task], {k: v for k, v in config_updates.items() if k not in ours}


def _check_mismatched_shapes(path: Path, mismatched: set[tuple[str, torch.Size, torch.Size]]) -> None:
    """A classifier of another label count is replaced (with a warning); any other tensor whose
    shape differs from what the config builds means weights and config do not belong together."""
    encoder = sorted((key, stored, built) for key, stored, built in mismatched if not key.endswith(CLASSIFIER_KEYS))
    if encoder:
        key, stored, built = encoder[0]
        raise EelbertError(
            f"{path}: the weights do not match its config.json ({len(encoder)} tensors differ, e.g. {key} is "
            f"{tuple(stored)} in the file but {tuple(built)} by the config); it may be corrupt or its config edited"
        )
    for key, stored, built in mismatched:
        if key.endswith("classifier.weight"):
            warn_once(f"{path} has a classifier for {stored[0]} labels and the task has {built[0]}: "
                      "starting a new classifier head (its weights are not used)")


def load_model(path: str | Path, task: str = "base", **config_updates) -> nn.Module:
    """Any of our checkpoints, or any Hugging Face BERT checkpoint directory (weights: safetensors only).

    ``config_updates`` set config fields (``num_labels``, ``sentence_vector``, dropout, ...).
    A damaged checkpoint (a truncated weights file, a corrupt config, another architecture, weights
    of another shape than its config) is one EelbertError naming the directory; a classifier trained
    for another label count is replaced by a new head, with a warning naming both counts."""
    path = Path(path)
    model_type = checkpoint_model_type(path)
    try:
        model_class, arguments = _loader(path, model_type, task, dict(config_updates))
        model, loading = model_class.from_pretrained(  # fp32 whatever the file holds: an fp16 file trained as fp16 collapses
            path, use_safetensors=True, ignore_mismatched_sizes=True, output_loading_info=True, dtype=torch.float32, **arguments
        )
    except CHECKPOINT_DAMAGE as error:
        raise EelbertError(f"could not load checkpoint {path} ({type(error).__name__}: {error}); it may be truncated or corrupt") from None
    _check_mismatched_shapes(path, loading["mismatched_keys"])
    return model


def checkpoint_digest(path: Path):
    """A sha256 seeded with what identifies a checkpoint's weights (file names, sizes, mtimes) and its
    config: the start of cache keys for outputs computed from it (teachers' labels)."""
    digest = hashlib.sha256()
    for weights in sorted(Path(path).glob("*.safetensors")):
        stat = weights.stat()
        digest.update(f"{weights.name}:{stat.st_size}:{stat.st_mtime_ns};".encode())
    digest.update((Path(path) / "config.json").read_bytes())
    return digest


def parameter_count(module: nn.Module, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)
