"""Reading run directories: every file a command writes there, as one :class:`RunRow` per run.

Nothing is recomputed: a report must be reproducible from the files alone, and cheap enough to run
while training jobs use the machine. Every file is optional (a run that only fine-tuned has no
pretraining files); what is missing is ``None`` here and explained in the report, never guessed.
The run's ``spec.resolved.yaml`` is validated by the spec schema itself (pure, no models loaded).
"""

from __future__ import annotations

import json
import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from eelbert_cli.core.data.tasks.registry import SUITES
from eelbert_cli.core.errors import EelbertError
from eelbert_cli.core.model.hashing import HashConfig
from eelbert_cli.core.model.presets import PRESETS, Shape
from eelbert_cli.core.spec import ExperimentSpec, load_yaml, validate_spec

SPEC_FILE = "spec.resolved.yaml"
SIZE_FILE = "size_report.json"
PRETRAIN_FILE = "pretrain_results.json"
METRICS_FILE = "metrics.jsonl"
RESULTS_FILE = "results.json"
RUN_FILES = (SPEC_FILE, SIZE_FILE, PRETRAIN_FILE, METRICS_FILE, RESULTS_FILE)

DASH = "–"
_SHAPE_KEYS = ("layers", "hidden", "heads", "ffn")


# ----------------------------------------------------------------------------------------- rows


@dataclass(frozen=True)
class MetricStat:
    """One metric of the selected fine-tuning config: mean and std over seeds (percent)."""

    mean: float
    std: float | None


@dataclass
class TaskResult:
    """One task of ``results.json``; ``splits`` maps split -> metric -> stat (dev and test alike)."""

    name: str
    title: str
    score: float | None  # the task's dev score, what the average is taken over: a suite task's one metric, else the mean of its metrics
    seeds: int | None  # None: results.json did not list them
    splits: dict[str, dict[str, MetricStat]]

    @property
    def dev(self) -> dict[str, MetricStat]:
        return _named_metrics(self.splits, dev=True)

    @property
    def test(self) -> dict[str, MetricStat]:
        return _named_metrics(self.splits, dev=False)


def _is_test(split: str) -> bool:
    return split.startswith("test")


def _named_metrics(splits: dict[str, dict[str, MetricStat]], dev: bool) -> dict[str, MetricStat]:
    """``accuracy`` for a task with one split of the kind, ``accuracy (matched)`` for MNLI's two."""
    chosen = [s for s in splits if _is_test(s) != dev]
    named = {}
    for split in chosen:
        suffix = split.removeprefix("validation").removeprefix("test").lstrip("_")
        for metric, stat in splits[split].items():
            named[metric if len(chosen) == 1 or not suffix else f"{metric} ({suffix})"] = stat
    return named


@dataclass
class RunRow:
    """Everything the report shows about one run directory; ``None`` means the file did not say."""

    label: str
    run_dir: str
    files: list[str]
    model: str  # short description: preset (or checkpoint / custom), embedding kind, shape
    preset: str | None
    checkpoint: str | None
    shape_overridden: bool
    hash_kind: str | None
    layers: int | None
    hidden: int | None
    pretrained: bool
    treatment: str | None  # "none", "pretrained:<budget>", "checkpoint:<path>"; None: unknown (never matched)
    budget: str  # human text: "not pretrained", "pretrained 5 min", ...
    params: int | None = None
    params_word_embedding: int | None = None
    file_bytes: int | None = None
    ratio_vs_bert: float | None = None
    bert_twin: str | None = None
    tasks: dict[str, TaskResult] = field(default_factory=dict)
    heldout_loss: float | None = None
    heldout_accuracy: float | None = None
    tokens_pretrained: int | None = None
    pretrain_steps: int | None = None
    pretrain_complete: bool = False  # pretrain_results.json exists (else tokens come from the log)
    loss_curve: list[tuple[int, float]] = field(default_factory=list)  # (tokens, training loss)
    heldout_points: list[tuple[int, float]] = field(default_factory=list)  # (tokens, held-out loss)
    twin_label: str | None = None
    percent_of_twin: float | None = None
    twin_note: str | None = None

    @property
    def megabytes(self) -> float | None:
        return None if self.file_bytes is None else self.file_bytes / 1e6

    @property
    def task_scores(self) -> dict[str, float]:
        return {name: task.score for name, task in self.tasks.items() if task.score is not None}

    @property
    def average_score(self) -> float | None:
        scores = list(self.task_scores.values())
        return statistics.fmean(scores) if scores else None

    @property
    def seeds_text(self) -> str:
        counts = sorted({task.seeds for task in self.tasks.values() if task.seeds})
        return DASH if not counts else str(counts[0]) if len(counts) == 1 else f"{counts[0]}–{counts[-1]}"


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise EelbertError(f"{path} is not valid JSON ({error}); re-run the command that writes it or remove it") from None


def _read_spec(path: Path) -> ExperimentSpec:
    """The run's own resolved spec, validated by the spec schema (pure: no files, no models)."""
    try:
        data = load_yaml(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        raise EelbertError(f"{path} is not valid YAML ({error})") from None
    if not isinstance(data, dict):
        raise EelbertError(f"{path} should be a YAML mapping (an experiment spec)")
    return validate_spec(data, source=str(path))


def _number(value: Any) -> int | float | None:
    """NaN (an empty held-out set) and non-numbers become None, so JSON output stays valid."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return value


def _read_metrics_log(path: Path) -> tuple[list[tuple[int, float]], list[tuple[int, float]], int | None]:
    """Training and held-out (tokens, loss) points. Unreadable lines are skipped: the log may be
    mid-write while pretraining runs; a resumed run's repeated steps keep their latest row."""
    train: dict[int, tuple[int, float]] = {}
    heldout: dict[int, tuple[int, float]] = {}
    last_tokens = None
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if not isinstance(row, dict) or _number(row.get("tokens")) is None:
            continue
        tokens = int(row["tokens"])
        step = row.get("step", tokens)
        last_tokens = tokens if last_tokens is None else max(last_tokens, tokens)
        if _number(row.get("loss")) is not None:
            train[step] = (tokens, float(row["loss"]))
        elif _number(row.get("heldout_loss")) is not None:
            heldout[step] = (tokens, float(row["heldout_loss"]))
    return sorted(train.values()), sorted(heldout.values()), last_tokens


def _budget_text(budget: Any) -> str:
    if not isinstance(budget, dict) or not budget:
        return "budget unknown"
    parts = []
    for key, value in budget.items():
        if _number(value) is None:
            parts.append(f"{key}={value}")
        elif key == "minutes":
            parts.append(f"{value:g} min")
        elif key == "tokens":
            parts.append(f"{human_count(value)} tokens")
        elif key == "steps":
            parts.append(f"{value:,} steps")
        else:
            parts.append(f"{key}={value}")
    return ", ".join(parts)


def _budget_key(budget: Any) -> str | None:
    """Equal budgets give equal keys whether YAML wrote ``5`` or ``5.0``."""
    if not isinstance(budget, dict) or not budget:
        return None
    return ",".join(f"{k}={float(v)!r}" for k, v in sorted(budget.items()) if _number(v) is not None) or None


def human_count(count: float) -> str:
    for divisor, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(count) >= divisor:
            return f"{count / divisor:.1f}{suffix}"
    return f"{count:g}"


def _treatment(spec: ExperimentSpec | None, has_pretraining_files: bool) -> tuple[bool, str | None, str]:
    """(pretrained, matching key, text). Only runs with equal keys are compared as twins: the same
    pretraining, and the same task distillation (teacher and its settings) if any."""
    pretrained, key, text = _pretraining_treatment(spec, has_pretraining_files)
    distill = spec.finetune.distillation if spec is not None and spec.finetune is not None else None
    if distill is None:
        return pretrained, key, text
    teacher = spec.finetune.teacher
    settings = f"{teacher}:{distill.alpha:g}:{distill.temperature:g}:{distill.augment.model_dump_json()}:{len(distill.unlabelled)}"
    copies = f", x{distill.augment.copies} augmented" if distill.augment.copies else ""
    return pretrained, None if key is None else f"{key}|distilled:{settings}", f"{text}; distilled from {teacher}{copies}"


def _pretraining_treatment(spec: ExperimentSpec | None, has_pretraining_files: bool) -> tuple[bool, str | None, str]:
    start = spec and ((spec.finetune and spec.finetune.checkpoint) or spec.model.checkpoint)
    if start:
        return True, f"checkpoint:{start}", f"from checkpoint {start}"
    if spec is not None and spec.pretrain is not None:
        budget = spec.pretrain.budget.model_dump(exclude_none=True)
        key, text = _budget_key(budget), f"pretrained {_budget_text(budget)}"
        if key is not None and spec.pretrain.objective != "mlm":  # twins are distilled alike, from the same teacher
            key += f"|{spec.pretrain.objective}:{spec.pretrain.teacher}:{spec.pretrain.distillation.model_dump_json()}"
        if spec.pretrain.objective != "mlm":
            text += f", {spec.pretrain.objective} from {spec.pretrain.teacher}"
        return True, None if key is None else f"pretrained:{key}", text
    if has_pretraining_files:  # no spec to say which budget: never matched with anything
        return True, None, "pretrained (budget unknown: no spec.resolved.yaml)"
    if spec is None:
        return False, None, "unknown (no spec.resolved.yaml)"
    return False, "none", "not pretrained"


def suite_metric(task: str) -> str | None:
    """The one metric a suite task puts into its average (sms-spam: MCC, not the mean of its F1 and MCC)."""
    return next((suite.metric(task) for suite in SUITES.values() if task in suite.tasks), None)


def _read_tasks(results: dict) -> dict[str, TaskResult]:
    tasks = {}
    summary = results.get("summary") if isinstance(results.get("summary"), dict) else {}
    raw_tasks = results.get("tasks") if isinstance(results.get("tasks"), dict) else {}
    for name in [*raw_tasks, *(t for t in summary if t not in raw_tasks)]:
        entry = raw_tasks.get(name) if isinstance(raw_tasks.get(name), dict) else {}
        seeds = len(entry.get("seeds") or []) or None
        means, stds = entry.get("selected_mean") or {}, entry.get("selected_std") or {}
        splits: dict[str, dict[str, MetricStat]] = {}
        for split, metrics in means.items():
            for metric, value in (metrics or {}).items():
                if _number(value) is not None:
                    std = _number((stds.get(split) or {}).get(metric))
                    splits.setdefault(split, {})[metric] = MetricStat(float(value), std)
        if not splits and isinstance(summary.get(name), dict):  # older files: dev means only
            splits["validation"] = {m: MetricStat(float(v), None) for m, v in summary[name].items() if _number(v) is not None}
        dev_means = [stat.mean for split, metrics in splits.items() if not _is_test(split) for stat in metrics.values()]
        metric, dev = suite_metric(name), splits.get("validation", {})
        score = dev[metric].mean if metric in dev else _number(entry.get("score"))
        if score is None and dev_means:
            score = statistics.fmean(dev_means)
        tasks[name] = TaskResult(name, entry.get("title") or name, score, seeds, splits)
    return tasks


@dataclass(frozen=True)
class _ModelFacts:
    """What a run's spec says about its model (the size report, when present, says more)."""

    preset: str | None = None
    checkpoint: str | None = None
    shape_overridden: bool = False
    hash: HashConfig | None = None  # None: unknown (no spec) or fixed by a checkpoint
    shape: Shape | None = None
    bert_twin: str | None = None  # the twin size.py would pick: a preset's own, unless reshaped
    ngram_range_given: bool = False  # the spec's hash section names the n-gram range

    @classmethod
    def of(cls, spec: ExperimentSpec | None) -> _ModelFacts:
        if spec is None:
            return cls()
        model = spec.model
        if model.checkpoint is not None:
            return cls(checkpoint=model.checkpoint)
        reshaped = bool(model.model_fields_set & set(_SHAPE_KEYS))
        twin = PRESETS[model.preset].bert_twin if model.preset and not reshaped else None
        given = model.hash is not None and {"ngram_min", "ngram_max"} <= model.hash.model_fields_set
        return cls(model.preset, None, reshaped, model.hash_config, model.shape, twin, given)

    def describe(self, hash_kind: str | None, layers: int | None, hidden: int | None) -> str:
        preset = f"{self.preset}*" if self.preset and self.shape_overridden else self.preset
        base = self.checkpoint and Path(self.checkpoint).name or preset or "custom"
        kind = hash_kind or "?"
        if kind == "ngram" and self.hash is not None and self.ngram_range_given:
            kind = f"ngram {self.hash.ngram_min}-{self.hash.ngram_max}"
        shape = f"{layers}L/{hidden}H" if layers and hidden else ""
        return " · ".join(part for part in (base, kind, shape) if part)


def _read_run_files(run_dir: Path) -> tuple[list[str], ExperimentSpec | None, dict, dict, dict]:
    if not run_dir.is_dir():
        raise EelbertError(f"{run_dir} is not a directory (give run directories, e.g. runs/<name>)")
    present = [name for name in RUN_FILES if (run_dir / name).is_file()]
    if not present:
        raise EelbertError(f"{run_dir} has none of {', '.join(RUN_FILES)}: is it a run directory (runs/<name>)?")
    spec = _read_spec(run_dir / SPEC_FILE) if SPEC_FILE in present else None
    documents = [_read_json(run_dir / name) if name in present else {} for name in (SIZE_FILE, PRETRAIN_FILE, RESULTS_FILE)]
    for name, data in zip((SIZE_FILE, PRETRAIN_FILE, RESULTS_FILE), documents, strict=True):
        if not isinstance(data, dict):
            raise EelbertError(f"{run_dir / name} should hold one JSON object")
    return present, spec, *documents


def load_run(run_dir: Path) -> RunRow:
    """One run directory as a row; raises EelbertError for a path a user has to fix."""
    present, spec, size, pretrain, results = _read_run_files(run_dir)
    try:
        return _row(run_dir, present, spec, size, pretrain, results)
    except (AttributeError, TypeError, KeyError, ValueError) as error:  # valid JSON of the wrong shape
        raise EelbertError(
            f"{run_dir}: one of {', '.join(present)} does not have the shape eelbert writes ({type(error).__name__}: {error}); "
            "re-run the command that wrote it"
        ) from None


def _row(run_dir: Path, present: list[str], spec: ExperimentSpec | None, size: dict, pretrain: dict, results: dict) -> RunRow:
    facts = _ModelFacts.of(spec)
    hash_kind = size.get("hash_kind") or (facts.hash.kind if facts.hash else None)
    layers = size.get("layers") or (facts.shape.layers if facts.shape else None)
    hidden = size.get("hidden") or (facts.shape.hidden if facts.shape else None)

    curve, heldout, log_tokens = _read_metrics_log(run_dir / METRICS_FILE) if METRICS_FILE in present else ([], [], None)
    final_loss, final_tokens = _number(pretrain.get("heldout_loss")), _number(pretrain.get("tokens"))
    if final_loss is not None and final_tokens is not None and all(t != final_tokens for t, _ in heldout):
        heldout = sorted([*heldout, (int(final_tokens), final_loss)])
    pretrained, treatment, budget = _treatment(spec, bool({PRETRAIN_FILE, METRICS_FILE} & set(present)))
    baseline = size.get("baseline")  # `eelbert baseline`: TF-IDF, fastText, model2vec (no transformer, no spec of one)
    if baseline:
        pretrained, treatment, budget = False, None, "baseline (no transformer)"

    return RunRow(
        label=str((spec and spec.name) or results.get("name") or size.get("name") or run_dir.name),
        run_dir=str(run_dir),
        files=present,
        model=str(baseline) if baseline else facts.describe(hash_kind, layers, hidden),
        preset=facts.preset,
        checkpoint=facts.checkpoint,
        shape_overridden=facts.shape_overridden,
        hash_kind=hash_kind,
        layers=layers,
        hidden=hidden,
        pretrained=pretrained,
        treatment=treatment,
        budget=budget,
        params=_number(size.get("params_total")),
        params_word_embedding=_number(size.get("params_word_embedding")),
        file_bytes=_number(size.get("file_bytes")),
        ratio_vs_bert=_number(size.get("ratio_vs_bert")),
        bert_twin=size.get("bert_twin") or facts.bert_twin,
        tasks=_read_tasks(results),
        heldout_loss=final_loss if final_loss is not None else (heldout[-1][1] if heldout else None),
        heldout_accuracy=_number(pretrain.get("heldout_accuracy")),
        tokens_pretrained=int(final_tokens) if final_tokens is not None else log_tokens,
        pretrain_steps=_number(pretrain.get("steps")),
        pretrain_complete=PRETRAIN_FILE in present,
        loss_curve=curve,
        heldout_points=heldout,
    )


def load_runs(run_dirs: list[Path]) -> list[RunRow]:
    """Rows in the order given; a label used twice gets its directory's name (or path) appended, so
    labels stay unique keys for the baseline mapping."""
    if not run_dirs:
        raise EelbertError("give at least one run directory")
    rows = [load_run(Path(d)) for d in dict.fromkeys(Path(d) for d in run_dirs)]
    labels = [row.label for row in rows]
    clashing = [row for row in rows if labels.count(row.label) > 1]
    names = [Path(row.run_dir).name for row in clashing]
    for row in clashing:
        where = Path(row.run_dir).name if len(set(names)) == len(names) else row.run_dir
        row.label = f"{row.label} ({where})"
    return rows
