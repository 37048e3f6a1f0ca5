"""The ``eelbert`` command line: thin commands over ``eelbert_cli.core``."""

from __future__ import annotations

import functools
import json
import os
import signal
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Optional

import click
import typer
from rich.console import Console
from rich.text import Text

from eelbert_cli.core.console import configure_logging, is_main_process
from eelbert_cli.core.errors import EelbertError, internal_error_line, write_internal_error_log

app = typer.Typer(
    name="eelbert",
    help="Experiment toolkit for tiny BERT models with dynamic n-gram hash embeddings (EELBERT).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
error_console = Console(stderr=True)

def _print_version(value: bool) -> None:
    if value:
        from eelbert_cli import __version__

        console.print(f"eelbert {__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[bool, typer.Option("--version", is_eager=True, callback=_print_version, help="Print the version and exit.")] = False,
) -> None:
    """Experiment toolkit for tiny BERT models with dynamic n-gram hash embeddings (EELBERT)."""


MAX_INSPECT_DIM = 16384  # the spec's upper bound on hidden; a vocabulary table at 16,384 is already 2 GB
SetOption = Annotated[
    Optional[list[str]],
    typer.Option("--set", help="Override a spec field: dotted.key=value (repeatable), e.g. model.hash.ngram_max=4"),
]


CLI_EXITS = (typer.Exit, typer.Abort, click.exceptions.Exit, click.exceptions.Abort, click.ClickException)


def user_errors(command):
    """Errors a user can act on become one line on stderr and exit code 2, never a traceback; any
    other exception is our bug: one line saying so, exit code 1, the traceback in a log file."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        configure_logging()
        previous = signal.signal(signal.SIGTERM, _interrupt)  # so cleanup runs on SIGTERM as on Ctrl-C
        try:
            return command(*args, **kwargs)
        except EelbertError as error:
            _error_line(str(error))
        except BrokenPipeError:  # `eelbert predict ... | head`: the reader has all it wanted
            _stdout_closed()
        except OSError as error:  # the filesystem said no: a full disk, a read-only or missing directory
            where = f"{error.filename}: " if error.filename else ""
            _error_line(f"{where}{error.strerror or error}")
        except KeyboardInterrupt:
            error_console.print(Text.assemble(("interrupted", "bold red"), ": stopped before finishing; nothing was left half-written"))
            raise typer.Exit(2) from None
        except CLI_EXITS:
            raise
        except Exception as error:  # every command passes here: no bug may end as a bare traceback
            _internal_error(error)
        finally:
            signal.signal(signal.SIGTERM, previous)

    return wrapper


SIGPIPE_EXIT = 128 + 13  # what a Unix tool killed by SIGPIPE exits with (the shell's `| head` case)


def _stdout_closed() -> None:
    """Quietly, as coreutils do: no "error: Broken pipe", and no second error when Python flushes
    stdout at exit (the Python docs' recipe: point stdout at /dev/null)."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    raise typer.Exit(SIGPIPE_EXIT)


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def _error_line(message: str) -> None:
    """One ``error:`` line, user text printed literally (never read as rich markup); exit code 2."""
    error_console.print(Text.assemble(("error:", "bold red"), " ", message), highlight=False, soft_wrap=True)
    raise typer.Exit(2) from None


def _internal_error(error: Exception) -> None:
    """A bug of ours, not the user's input: one line asking for a report, the traceback in a log; exit code 1."""
    from eelbert_cli.core.data.resources import cache_dir

    line = internal_error_line(error, write_internal_error_log(error, cache_dir() / "logs"))
    message = Text.assemble(("internal error:", "bold red"), line.removeprefix("internal error:"))
    error_console.print(message, highlight=False, soft_wrap=True)
    raise typer.Exit(1) from None


def command(name: str):
    """A subcommand whose user errors end as one ``error:`` line and exit code 2, and its bugs as one
    ``internal error:`` line, exit code 1 and a log file."""
    return lambda function: app.command(name)(user_errors(function))


def _quiet_transformers() -> None:
    from transformers.utils import logging

    logging.disable_progress_bar()
    logging.set_verbosity_error()


def _model_dir(path: Path) -> Path:
    """A directory as given, or a built-in model's (a model or int8 export shipped with the toolkit) by name."""
    from eelbert_cli.core.data.resources import BUILTIN_CHECKPOINTS, BUILTIN_EXPORTS, checkpoint_path

    if path.exists():
        return path
    if str(path) in BUILTIN_EXPORTS:
        return BUILTIN_EXPORTS[str(path)]
    return checkpoint_path(str(path)) if str(path) in BUILTIN_CHECKPOINTS else path


def _experiment(spec: Path, overrides: list[str] | None):
    """The validated spec of a command that will train or load models."""
    from eelbert_cli.core.spec import load_spec

    _quiet_transformers()
    return load_spec(spec, overrides or [])


@command("run")
def run_command(spec: Annotated[Path, typer.Argument(help="Experiment spec (YAML).")], overrides: SetOption = None) -> None:
    """Pretrain, fine-tune (finetune and/or glue sections) and size-report in one go; finished stages are skipped."""
    from eelbert_cli.core.pipeline import run_experiment

    experiment = _experiment(spec, overrides)
    stages = run_experiment(experiment, spec, say=lambda line: console.print(line, style="bold", markup=False))
    console.print(", ".join(f"{stage}: {state}" for stage, state in stages.items()))
    _print_run_scores(experiment.run_dir)
    console.print(f"run directory: {experiment.run_dir}  (eelbert report {experiment.run_dir})")


def _print_run_scores(run_dir: Path) -> None:
    """The scores the run holds (this time's or earlier stages'): what a user ran it for."""
    from rich.table import Table

    try:
        document = json.loads((run_dir / "results.json").read_text(encoding="utf-8"))
        tasks = document.get("tasks", {}) if isinstance(document, dict) else {}
    except (OSError, ValueError):
        return  # no fine-tuning stage, or a record `eelbert report` will name
    table = Table(title="scores: dev, mean over seeds of the selected config", title_justify="left")
    for column in ("task", "score", "metrics", "test", "seeds"):
        table.add_column(column)
    for name, entry in tasks.items():
        if not isinstance(entry, dict) or not isinstance(entry.get("score"), int | float):
            continue
        means = entry.get("selected_mean", {})
        dev = ", ".join(f"{metric} {value:.2f}" for split, values in means.items() if split.startswith("validation")
                        for metric, value in values.items())
        test = ", ".join(f"{metric} {value:.2f}" for split, values in means.items() if split.startswith("test")
                         for metric, value in values.items())
        table.add_row(name, f"{entry['score']:.2f}", dev, test or "-", str(len(entry.get("seeds") or [])))
    if table.row_count:
        console.print(table)
    for scores in (document.get("suite", {}), document.get("glue", {})):
        for score in scores.values() if isinstance(scores, dict) else ():
            if isinstance(score, dict) and "text" in score:
                console.print(score["text"], markup=False)


@command("pretrain")
def pretrain_command(
    spec: Annotated[Path, typer.Argument(help="Experiment spec (YAML) with a 'pretrain' section.")],
    resume: Annotated[bool, typer.Option("--resume", help="Continue from the latest checkpoint in the run directory.")] = False,
    stop_after_steps: Annotated[
        Optional[int], typer.Option(min=1, help="Pause with a checkpoint after this many steps (resume later).")
    ] = None,
    overrides: SetOption = None,
) -> None:
    """Masked-LM pretraining; writes a checkpoint transformers' Auto classes load."""
    from eelbert_cli.core.training.pretrain import pretrain

    outcome = pretrain(_experiment(spec, overrides), resume=resume, stop_after_steps=stop_after_steps)
    if outcome.paused_at_step is not None:
        console.print(f"paused at step {outcome.paused_at_step}; checkpoint {outcome.checkpoint}. Continue with --resume.")
        return
    results = outcome.results
    if is_main_process():
        heldout = f"held-out {results['objective']} loss {results['heldout_loss']:.3f}"
        if "heldout_accuracy" in results:
            heldout += f", masked-LM accuracy {results['heldout_accuracy']:.3f}"
        console.print(
            f"pretrained {results['steps']} steps, {results['tokens']:,} tokens at {results['tokens_per_second']:,} tokens/s; "
            f"{heldout}\ncheckpoint: {outcome.checkpoint}"
        )


@command("finetune")
def finetune_command(
    spec: Annotated[Path, typer.Argument(help="Experiment spec (YAML); its 'finetune' section (default: rotten-tomatoes).")],
    overrides: SetOption = None,
) -> None:
    """Fine-tune one task over the spec's grid; select on dev; save the model and results."""
    from eelbert_cli.core.finetuning.stages import run_finetune
    from eelbert_cli.core.reporting.tables import finetune_table

    experiment = _experiment(spec, overrides)
    result = run_finetune(experiment, spec)
    saved = experiment.run_dir / "finetuned" / result.task.name
    console.print(finetune_table(result), f"results: {experiment.run_dir / 'results.json'}   model: {saved}", sep="\n")


@command("glue")
def glue_command(
    spec: Annotated[Path, typer.Argument(help="Experiment spec (YAML); its 'glue' section names tasks and data.")],
    tasks: Annotated[Optional[str], typer.Option(help="Comma-separated subset, e.g. cola,sst2,rte.")] = None,
    data_dir: Annotated[Optional[str], typer.Option(help="glue_data/ directory (or save_to_disk dirs); default: the hub.")] = None,
    overrides: SetOption = None,
) -> None:
    """Fine-tune and score a task suite (GLUE, or glue.suite: offline); print every metric and its average(s)."""
    from eelbert_cli.core.finetuning.stages import run_glue, update_results
    from eelbert_cli.core.reporting.tables import glue_table

    experiment = _experiment(spec, list(overrides or []) + ([f"glue.data_dir={data_dir}"] if data_dir else []))
    names = [t.strip() for t in tasks.split(",") if t.strip()] if tasks else None
    results = run_glue(experiment, names)
    document = update_results(experiment, [])
    suite = experiment.glue.suite if experiment.glue is not None else "glue"
    table, notes = glue_table(results, document["glue"], "GLUE (dev)" if suite == "glue" else f"{suite} suite (dev)")
    console.print(table)
    for note in notes + [f"[bold]{entry['text']}[/]" for entry in document.get("suite", {}).values()]:
        console.print(note)
    console.print(f"results: {experiment.run_dir / 'results.json'}")


@command("baseline")
def baseline_command(
    spec: Annotated[Path, typer.Argument(help="Baseline spec (YAML): baseline: {method: tfidf|fasttext|fasttext-ftz|model2vec}; glue.")],
    tasks: Annotated[Optional[str], typer.Option(help="Comma-separated subset of the spec's tasks, e.g. trec,sms-spam.")] = None,
    overrides: SetOption = None,
) -> None:
    """Train and score a baseline a user would pick instead (TF-IDF, fastText, model2vec) on the same splits; bytes and latency too."""
    from eelbert_cli.core.baselines import load_baseline_spec, run_baseline
    from eelbert_cli.core.reporting.tables import baseline_table

    experiment = load_baseline_spec(spec, overrides)
    names = [t.strip() for t in tasks.split(",") if t.strip()] if tasks else None
    document = run_baseline(experiment, names)
    console.print(baseline_table(document, f"{experiment.baseline.method} baseline (dev mean ± std over seeds; test mean)"))
    for entry in [*document.get("suite", {}).values()]:
        console.print(f"[bold]{entry['text']}[/]")
    console.print(f"results: {experiment.run_dir / 'results.json'}  (eelbert report {experiment.run_dir})")


@command("evaluate")
def evaluate_command(
    checkpoint: Annotated[
        Path, typer.Argument(help="A fine-tuned model directory (e.g. RUN_DIR/finetuned/TASK) or an export directory (eelbert export).")
    ],
    task: Annotated[Optional[str], typer.Option(help="Task name; default: the one saved with the model.")] = None,
    data_dir: Annotated[Optional[str], typer.Option(help="GLUE data directory; default: the hub.")] = None,
    split: Annotated[Optional[str], typer.Option(help="Split to score; default: the task's first dev split.")] = None,
    predictions: Annotated[
        Optional[Path],
        typer.Option(help="Also write predictions here (index<TAB>prediction): a new or regular file, never the data, a link or a device."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Score a fine-tuned checkpoint or its export (fp32/int8) on a split, or write its predictions where labels are hidden."""
    from eelbert_cli.core.evaluation.evaluate import evaluate_checkpoint
    from eelbert_cli.core.files import check_output_file

    checkpoint = _model_dir(checkpoint)
    if predictions is not None:
        check_output_file(predictions, "--predictions", _custom_task_files(checkpoint), (checkpoint,))
    _quiet_transformers()
    result = evaluate_checkpoint(checkpoint, task, data_dir, split, predictions)
    if as_json:
        print(json.dumps(asdict(result), indent=2))
        return
    scores = ", ".join(f"{k} {v:.2f}" for k, v in (result.metrics or {}).items()) or "labels hidden: no metrics"
    console.print(f"{result.task} {result.split} ({result.examples:,} examples): {scores}")
    if result.predictions_file:
        console.print(f"predictions: {result.predictions_file}")


def _custom_task_files(checkpoint: Path) -> tuple[Path, ...]:
    """The data files a fine-tuned custom-task model's task.json names (what evaluate reads)."""
    try:
        saved = json.loads((checkpoint / "task.json").read_text(encoding="utf-8"))
        task = saved.get("custom_task") if isinstance(saved, dict) else None
    except (OSError, ValueError):
        return ()  # evaluate itself says what is wrong with the record
    if not isinstance(task, dict):
        return ()
    return tuple(Path(value) for key, value in task.items() if key in ("train", "validation", "test") and isinstance(value, str))


@command("report")
def report_command(
    run_dirs: Annotated[list[Path], typer.Argument(help="Run directories (runs/<name>) to compare.")],
    output_dir: Annotated[Path, typer.Option("--output-dir", "-o", help="Where report.md/.csv/.json and the PNGs go.")] = Path("report"),
    baseline: Annotated[
        Optional[list[str]],
        typer.Option("--baseline", help="RUN=BASELINE: compare RUN with this run instead of its BERT twin (repeatable)."),
    ] = None,
    keep_records: Annotated[
        bool,
        typer.Option("--keep-records", help="Copy each run's record files (not its checkpoints) to OUTPUT_DIR/runs/ and report from them."),
    ] = False,
) -> None:
    """A paper-style comparison table and plots, built only from the files in run directories."""
    from eelbert_cli.core.reporting.report import build_report, parse_baselines

    report = build_report(run_dirs, output_dir, parse_baselines(baseline), keep_records=keep_records)
    for table in report.tables:
        console.print(table)
    for note in report.notes:
        console.print(note, style="dim")
    for name, why in report.skipped_plots.items():
        console.print(f"{name} plot skipped: {why}", style="dim")
    written = [report.markdown_path, report.csv_path, report.json_path, *report.plots.values()]
    console.print("wrote " + ", ".join(str(p) for p in written))


@command("size-report")
def size_report_command(
    targets: Annotated[list[str], typer.Argument(help="Presets, spec files (.yaml) or checkpoint directories.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON list instead of a table.")] = False,
    overrides: SetOption = None,
) -> None:
    """What each model costs on disk once fine-tuned, and how much smaller it is than its BERT twin."""
    from eelbert_cli.core.manifest import write_manifest
    from eelbert_cli.core.reporting.size import size_report
    from eelbert_cli.core.reporting.tables import SIZE_FOOTNOTE, size_table, write_size_outputs
    from eelbert_cli.core.targets import resolve_target

    _quiet_transformers()
    twin_cache: dict[str, int] = {}
    reports = []
    for target in targets:
        resolved = resolve_target(target, overrides or [])
        report = size_report(resolved.name, resolved.config, twin_cache)
        reports.append(report)
        if resolved.spec is not None:
            write_manifest(resolved.spec)
            write_size_outputs(resolved.spec, report)
    if as_json:
        print(json.dumps([r.as_dict() for r in reports], indent=2))
    else:
        console.print(size_table(reports))
        console.print(SIZE_FOOTNOTE, style="dim")


@command("inspect-embedding")
def inspect_embedding_command(
    words: Annotated[list[str], typer.Argument(help="Words to inspect.")],
    spec: Annotated[Optional[Path], typer.Option(help="Take the hash config and tokenizer from this spec.")] = None,
    top_k: Annotated[int, typer.Option("--top-k", min=1, help="Nearest vocabulary tokens to show.")] = 5,
    kind: Annotated[Optional[str], typer.Option(help="Hash kind: ngram or token.")] = None,
    ngram_min: Annotated[Optional[int], typer.Option(min=1)] = None,
    ngram_max: Annotated[Optional[int], typer.Option(min=1)] = None,
    seed: Annotated[Optional[int], typer.Option(min=0)] = None,
    dim: Annotated[int, typer.Option(min=1, help="Vector size (the model's hidden size).")] = 128,
    tokenizer: Annotated[Optional[str], typer.Option(help="bert-base-uncased, a vocab.txt/tokenizer.json or a directory.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
) -> None:
    """Each word's WordPiece pieces, their n-grams, and the nearest vocabulary tokens by cosine."""
    from eelbert_cli.core.data.tokenization import DEFAULT_TOKENIZER, load_tokenizer, vocabulary_of
    from eelbert_cli.core.model.hashing import HashConfig
    from eelbert_cli.core.model.inspect import NeighbourIndex, inspect_words
    from eelbert_cli.core.reporting.tables import inspection_tables
    from eelbert_cli.core.spec import load_spec

    fields: dict = {}
    tokenizer_source = tokenizer or DEFAULT_TOKENIZER
    if spec is not None:
        experiment = load_spec(spec)
        fields = experiment.model.hash_config.as_dict()
        dim = experiment.model.shape.hidden or dim
        tokenizer_source = tokenizer or experiment.tokenizer
    if dim > MAX_INSPECT_DIM:
        raise EelbertError(f"--dim {dim} is above {MAX_INSPECT_DIM}: the vocabulary table would not fit in memory")
    fields |= {k: v for k, v in dict(kind=kind, ngram_min=ngram_min, ngram_max=ngram_max, seed=seed).items() if v is not None}
    if fields.get("kind") == "learned":
        raise EelbertError("hash kind 'learned' is a trained table; inspect 'ngram' or 'token' (--kind)")
    try:
        config = HashConfig(**fields)
    except ValueError as error:
        raise EelbertError(str(error)) from None
    loaded = load_tokenizer(tokenizer_source)
    index = NeighbourIndex(vocabulary_of(loaded), dim, config)
    results = inspect_words(words, loaded, index, top_k)
    if as_json:
        print(json.dumps([asdict(r) for r in results], indent=2))
        return
    for table in inspection_tables(results, config):
        console.print(table)


@command("export")
def export_command(
    checkpoint: Annotated[Path, typer.Argument(help="A fine-tuned model directory (RUN_DIR/finetuned/TASK).")],
    output_dir: Annotated[
        Path, typer.Option("--output-dir", "-o", help="Export directory: new, empty or an earlier export (replaced as a whole).")
    ],
    quantize: Annotated[Optional[str], typer.Option(help="int8: onnxruntime dynamic quantization of the weights.")] = None,
    max_seq_len: Annotated[
        Optional[int], typer.Option(min=8, help="Longest input the export accepts (default: the fine-tuning length).")
    ] = None,
) -> None:
    """ONNX graph over word vectors (no vocabulary-sized tensor), tokenizer and export.json: all a device needs."""
    if quantize not in (None, "int8"):
        raise EelbertError(f"--quantize {quantize!r}: the one quantization offered is int8")
    from eelbert_cli.core.export.onnx_export import export_model, gzipped_bytes, shipped_bytes

    _quiet_transformers()
    document = export_model(_model_dir(checkpoint), output_dir, quantize, max_seq_len)
    files = shipped_bytes(output_dir)
    console.print(
        f"exported {document['task']} ({'hash ' + document['hash']['kind'] if document['hash'] else 'learned table'}, "
        f"{document['quantized'] or 'fp32'}) to {output_dir}: a device downloads {sum(files.values()):,} B "
        f"({gzipped_bytes(output_dir):,} B gzipped: {', '.join(f'{name} {size:,} B' for name, size in files.items())}); "
        f"fp32 graph vs torch max |diff| {document['fp32_max_abs_difference_vs_torch']:.1e}"
    )


@command("predict")
def predict_command(
    target: Annotated[Path, typer.Argument(help="An export directory (torch-free runtime) or a fine-tuned checkpoint (torch).")],
    texts: Annotated[Optional[list[str]], typer.Argument(help="Texts to label (or use --input).")] = None,
    input_file: Annotated[Optional[Path], typer.Option("--input", help="A .txt (one text per line), .jsonl or .csv file.")] = None,
    output: Annotated[
        Optional[Path],
        typer.Option(help="Write JSON lines here (default: print them): a new or regular file, "
                          "never the input, a symbolic link or a device."),
    ] = None,
    column: Annotated[str, typer.Option(help="Text field of a .jsonl/.csv input.")] = "text",
    pair_column: Annotated[Optional[str], typer.Option(help="Second text field, for sentence-pair tasks.")] = None,
    id_column: Annotated[
        Optional[str], typer.Option(help="Identifier field passed through to each output row (default: 'id' where the file has one).")
    ] = None,
    batch_size: Annotated[int, typer.Option(min=1)] = 32,
) -> None:
    """Label new text: batched, streamed, with progress; bad input writes no partial file. --output
    x.csv writes CSV (a probability column per label), any other name JSON lines."""
    from eelbert_cli.core.data.tasks.record import check_text_inputs
    from eelbert_cli.core.evaluation.predict import (
        Example,
        check_examples,
        load_predictor,
        predict_to_file,
        predicted,
        prediction_line,
        read_examples,
    )

    if bool(texts) == bool(input_file):
        raise EelbertError("give texts on the command line or --input FILE (one of the two)")
    if output is not None:
        from eelbert_cli.core.files import check_output_file

        check_output_file(output, "--output", (input_file,), (_model_dir(target),))
    examples = read_examples(input_file, column, pair_column, id_column) if input_file else [Example(text) for text in texts]
    check_examples(examples, str(input_file or "command line"))
    from eelbert_cli.core.export.runtime import is_export_dir

    target = _model_dir(target)
    if not is_export_dir(target):
        _quiet_transformers()  # the torch path; an export never imports transformers
    predictor = load_predictor(target)
    check_text_inputs(predictor.text_inputs, pair_column is not None, str(target))
    if output is None:
        for example, prediction in predicted(predictor, examples, batch_size):
            print(prediction_line(example.text, example.pair, prediction, example.id))
        _warn_if_truncated(predictor, len(examples))
        return
    from eelbert_cli.core.console import Progress

    with Progress(transient=True) as bar:
        task = bar.task("predict", total=len(examples))
        count = predict_to_file(predictor, examples, output, batch_size, on_batch=task.advance)
    console.print(f"{count:,} predictions: {output}")
    _warn_if_truncated(predictor, len(examples))


def _warn_if_truncated(predictor, total: int) -> None:
    from eelbert_cli.core.evaluation.predict import truncation_warning

    if message := truncation_warning(predictor, total):
        error_console.print(Text.assemble(("warning:", "bold yellow"), " ", message), highlight=False)


@command("init")
def init_command(
    path: Annotated[Path, typer.Argument(help="Where to write the spec (a new .yaml file).")] = Path("experiment.yaml"),
    model: Annotated[str, typer.Option(help="A preset, a built-in model (eelbert list) or a checkpoint directory.")] = (
        "eelbert-tiny-pretrained"),
    task: Annotated[str, typer.Option(help="A built-in or GLUE task name (edit the file for your own data).")] = "rotten-tomatoes",
) -> None:
    """Write a commented experiment spec to start from (it validates as written; nothing is overwritten)."""
    from eelbert_cli.core.data.resources import BUILTIN_CHECKPOINTS
    from eelbert_cli.core.data.tasks import TASK_NAMES
    from eelbert_cli.core.files import write_atomic
    from eelbert_cli.core.spec import load_yaml, spec_template, validate_spec

    if path.suffix not in (".yaml", ".yml"):
        raise EelbertError(f"{path}: a spec is a .yaml file")
    if path.exists() or path.is_symlink():
        raise EelbertError(f"{path} already exists; nothing was written (give another path)")
    if task not in TASK_NAMES:
        raise EelbertError(f"--task {task!r} is not a built-in or GLUE task ({', '.join(TASK_NAMES)}); for your own files, "
                           "edit the finetune.task block the spec shows")
    own_vocabulary = model in BUILTIN_CHECKPOINTS or Path(model).is_dir()
    text = spec_template(path, model, task, None if own_vocabulary else "bert-base-uncased")
    validate_spec(load_yaml(text), source=str(path))  # the template is a spec, not a sketch of one
    write_atomic(path, text)
    console.print(f"wrote {path}; run it with: eelbert run {path}")


@command("list")
def list_command(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
) -> None:
    """What is built in, offline: models (size, recorded scores), tasks, corpora, tokenizers."""
    from rich.table import Table

    from eelbert_cli.core.reporting.catalogue import catalogue

    found = catalogue()
    if as_json:
        print(json.dumps(found.as_dict(), indent=2))
        return

    def size(value: int | None) -> str:
        return "-" if value is None else f"{value / 1e6:.2f} MB"

    tables = [
        ("Models (by name: model:, finetune.teacher, evaluate, export, predict; --json for the commands that made them)",
         ("name", "kind", "weights", "scores", "made by run"),
         [(m.name, m.kind, size(m.weight_bytes), m.scores or "-", m.run or "-") for m in found.models]),
        ("Tasks (finetune.task, glue.tasks; glue: {suite: offline} runs the offline suite)", ("name", "type", "labels", "metrics", "data"),
         [(t.name, t.type, str(t.labels or "-"), t.metrics, ("built in" if t.offline else "GLUE (glue_data/ or the hub)")
           + (", suite" if t.in_offline_suite else "")) for t in found.tasks]),
        ("Pretraining corpora (pretrain.corpus: [{kind: builtin, name: ...}])", ("name", "made of"),
         [(c.name, c.parts) for c in found.corpora]),
        ("Tokenizers (tokenizer:)", ("name", "vocabulary", "file", "origin"),
         [(t.name, f"{t.vocab_size:,}" if t.vocab_size else "-", size(t.bytes), t.origin) for t in found.tokenizers]),
    ]
    for title, columns, rows in tables:
        table = Table(title=title, title_justify="left")
        for index, column in enumerate(columns):
            table.add_column(column, overflow="fold", no_wrap=index == 0)  # a name is typed: never broken
        for row in rows:
            table.add_row(*row)
        console.print(table)
        if title.startswith("Models"):
            console.print(found.baselines_note, markup=False)


def main() -> None:  # pragma: no cover - console-script shim
    app(prog_name="eelbert")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
