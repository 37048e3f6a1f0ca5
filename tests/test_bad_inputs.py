"""Bad inputs, interruptions and misuse across the commands: each ends in exit code 2 with one
``error:`` line, no traceback, and every file that existed before left exactly as it was."""

from __future__ import annotations

import hashlib
import json
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from eelbert_cli.cli import app

FIXTURES = Path(__file__).parent / "fixtures"
VOCAB = FIXTURES / "vocab.txt"
TINY_MODEL = {"layers": 1, "hidden": 32, "heads": 2, "ffn": 64, "max_positions": 64}
WORDS = "the cat sat on a mat while dogs played in the house and people watched a good movie".split()
runner = CliRunner()


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("EELBERT_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)


def snapshot(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and "cache" not in p.parts}


def fails_cleanly(args: list[str], root: Path, expect: str) -> str:
    """Run the CLI; it must exit 2 with one `error:` line containing ``expect`` and change no existing file."""
    before = snapshot(root)
    result = runner.invoke(app, args)
    stderr = result.stderr
    assert result.exit_code == 2, (result.exit_code, result.output, stderr, result.exception)
    assert [line for line in stderr.splitlines() if line.startswith("error:")].__len__() == 1, stderr
    assert "Traceback" not in result.output + stderr
    assert expect in " ".join(stderr.split()), stderr
    after = snapshot(root)
    assert {k: v for k, v in after.items() if k in before} == before
    return stderr


def write(path: Path, data) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, bytes):
        path.write_bytes(data)
    else:
        path.write_text(data if isinstance(data, str) else yaml.safe_dump(data), encoding="utf-8")
    return path


def corpus(root: Path) -> Path:
    rng = random.Random(0)
    return write(root / "corpus.txt", "\n\n".join(" ".join(rng.choice(WORDS) for _ in range(30)) for _ in range(60)) + "\n")


def pretrain_spec(root: Path, name: str = "run", **pretrain) -> dict:
    return {
        "name": name, "output_dir": str(root / name), "tokenizer": str(VOCAB), "model": dict(TINY_MODEL),
        "pretrain": {"corpus": [{"kind": "files", "paths": [str(corpus(root))]}], "seq_len": 16, "batch_size": 4, "heldout": 4,
                     "log_every": 2, "checkpoint_every": 2, "budget": {"steps": 6}, **pretrain},
    }


def task_files(root: Path) -> dict:
    lines = ["text,label"] + [f"{'good fun' if i % 2 else 'bad boring'} movie {i},{i % 2}" for i in range(40)]
    write(root / "train.csv", "\n".join(lines) + "\n")
    write(root / "dev.csv", "\n".join(lines[:11]) + "\n")
    return {"name": "toy", "train": "train.csv", "validation": "dev.csv", "text_columns": ["text"], "label_column": "label",
            "type": "classification", "metrics": ["accuracy"]}


def finetune_spec(root: Path, name: str = "ft", **finetune) -> dict:
    grid = {"lr": [1e-3], "epochs": [1], "batch_size": [16], "seeds": [0]}
    return {"name": name, "output_dir": str(root / name), "tokenizer": str(VOCAB), "model": dict(TINY_MODEL),
            "finetune": {"task": task_files(root), "max_seq_len": 32, "grid": grid, **finetune}}


@pytest.fixture(scope="module")
def paused_run(tmp_path_factory) -> Path:
    """A pretraining run paused at step 2 (checkpoint step-00000002), made once and copied per test."""
    root = tmp_path_factory.mktemp("paused")
    spec = write(root / "spec.yaml", pretrain_spec(root))
    result = runner.invoke(app, ["pretrain", str(spec), "--stop-after-steps", "2"], env={"EELBERT_CACHE": str(root / "cache")})
    assert result.exit_code == 0, result.stderr
    return root


@pytest.fixture
def paused(paused_run, tmp_path) -> Path:
    """A private copy of the paused run, its spec pointing at the copy."""
    shutil.copytree(paused_run, tmp_path / "p", ignore=shutil.ignore_patterns("cache"))
    root = tmp_path / "p"
    data = yaml.safe_load((root / "spec.yaml").read_text())
    data["output_dir"] = str(root / "run")  # the corpus stays where the original run read it: it is part of the recipe
    write(root / "spec.yaml", data)
    return root


@pytest.fixture(scope="module")
def finetuned(tmp_path_factory) -> Path:
    """A fine-tuned custom-task model (RUN/finetuned/toy), made once."""
    root = tmp_path_factory.mktemp("finetuned")
    spec = write(root / "spec.yaml", finetune_spec(root))
    result = runner.invoke(app, ["finetune", str(spec)], env={"EELBERT_CACHE": str(root / "cache")})
    assert result.exit_code == 0, result.stderr
    return root


# ----------------------------------------------------------------------------------- specs
SPEC_CASES = [
    ("name: x\nmodel: [eelbert-tiny\n", "not valid YAML"),
    ("name: x\nmodel: eelbert-tiny\ncolour: red\n", "colour: unknown key"),
    ("name: x\nmodel: {preset: eelbert-tiny, hash: {ngram_min: 5, ngram_max: 2}}\n", "must not exceed"),
    ("name: ..\nmodel: eelbert-tiny\n", "not starting with '.'"),
    ("name: .\nmodel: eelbert-tiny\n", "not starting with '.'"),
    ("name: x\nmodel: {preset: eelbert-tiny, max_positions: 100000000}\n", "less than or equal to 65536"),
    ("name: x\nmodel: {preset: eelbert-tiny, hidden: 100000}\n", "less than or equal to 16384"),
    ("name: x\nmodel: eelbert-tinyy\n", "neither a preset"),
    ("name: x\nmodel: eelbert-tiny\nfinetune: {distill: {alpha: 0.5}}\n", "need a teacher"),
    ("name: x\nmodel: eelbert-tiny\npretrain: {seq_len: '128'}\n", "pretrain.seq_len"),
    ("name: x\nmodel: eelbert-tiny\nfinetune: {task: {name: '..', train: a.csv, validation: b.csv, text_columns: [t], label_column: l, "
     "type: classification, metrics: [accuracy]}}\n", "not starting with '.'"),
    ("extends: spec.yaml\nname: x\nmodel: bert-tiny\n", "extends itself"),
    ("- just\n- a list\n", "must be a YAML mapping"),
]


@pytest.mark.parametrize("text, expect", SPEC_CASES, ids=[expect for _, expect in SPEC_CASES])
def test_bad_specs(tmp_path, text, expect):
    spec = write(tmp_path / "spec.yaml", text)
    fails_cleanly(["size-report", str(spec)], tmp_path, expect)


def test_spec_that_is_not_utf8(tmp_path):
    spec = write(tmp_path / "spec.yaml", "name: caf\xe9\nmodel: bert-tiny\n".encode("latin-1"))
    fails_cleanly(["size-report", str(spec)], tmp_path, "not UTF-8")


def test_yaml_text_with_brackets_and_markup_is_printed_literally(tmp_path):
    spec = write(tmp_path / "spec.yaml", "name: x\nmodel: {preset: [/x][bold]\n")
    stderr = fails_cleanly(["size-report", str(spec)], tmp_path, "not valid YAML")
    assert "[/x][bold]" in stderr or "[" in stderr


@pytest.mark.parametrize("args, expect", [
    (["--set", "pretrain.lr"], "dotted.key=value"),
    (["--set", "model.hidden=lots"], "model.hidden"),
    (["--set", "model.nonsense=1"], "model.nonsense"),
])
def test_bad_overrides(tmp_path, args, expect):
    spec = write(tmp_path / "spec.yaml", "name: x\nmodel: eelbert-tiny\n")
    fails_cleanly(["size-report", str(spec), *args], tmp_path, expect)


def test_scientific_notation_without_a_dot_is_a_number(tmp_path):
    spec = write(tmp_path / "spec.yaml", "name: x\nmodel: eelbert-tiny\npretrain: {lr: 1e-3}\n")
    from eelbert_cli.core.spec import load_spec

    assert load_spec(spec).pretrain.lr == 0.001
    assert load_spec(spec, ["pretrain.lr=5e-4"]).pretrain.lr == 0.0005


def test_inspect_embedding_refuses_an_absurd_dimension(tmp_path):
    fails_cleanly(["inspect-embedding", "play", "--dim", "200000", "--tokenizer", str(VOCAB)], tmp_path, "--dim 200000 is above 16384")


# ----------------------------------------------------------------------------------- where outputs go
def test_output_dir_that_is_a_file(tmp_path):
    write(tmp_path / "taken", "a file\n")
    spec = write(tmp_path / "spec.yaml", {**pretrain_spec(tmp_path), "output_dir": str(tmp_path / "taken")})
    fails_cleanly(["pretrain", str(spec)], tmp_path, "taken")


def test_output_dir_under_a_file(tmp_path):
    write(tmp_path / "taken", "a file\n")
    spec = write(tmp_path / "spec.yaml", {**finetune_spec(tmp_path), "output_dir": str(tmp_path / "taken" / "run")})
    fails_cleanly(["finetune", str(spec)], tmp_path, "taken")


def test_output_dir_under_proc(tmp_path):
    spec = write(tmp_path / "spec.yaml", {**finetune_spec(tmp_path), "output_dir": "/proc/eelbert-run"})
    fails_cleanly(["finetune", str(spec)], tmp_path, "/proc/eelbert-run")


# ----------------------------------------------------------------------------------- data
def test_corpus_path_that_matches_nothing(tmp_path):
    data = pretrain_spec(tmp_path)
    data["pretrain"]["corpus"] = [{"kind": "files", "paths": [str(tmp_path / "absent-*.txt")]}]
    fails_cleanly(["pretrain", str(write(tmp_path / "spec.yaml", data))], tmp_path, "matches no file")


def test_corpus_that_is_not_utf8(tmp_path):
    data = pretrain_spec(tmp_path)
    write(tmp_path / "latin.txt", "caf\xe9 au lait et cr\xe8me\n".encode("latin-1"))
    data["pretrain"]["corpus"] = [{"kind": "files", "paths": [str(tmp_path / "latin.txt")]}]
    fails_cleanly(["pretrain", str(write(tmp_path / "spec.yaml", data))], tmp_path, "not UTF-8")


def test_corpus_jsonl_with_a_broken_line(tmp_path):
    data = pretrain_spec(tmp_path)
    write(tmp_path / "docs.jsonl", '{"text": "the cat sat"}\nnot json\n')
    data["pretrain"]["corpus"] = [{"kind": "files", "paths": [str(tmp_path / "docs.jsonl")]}]
    fails_cleanly(["pretrain", str(write(tmp_path / "spec.yaml", data))], tmp_path, "docs.jsonl:2")


def test_tokenizer_that_does_not_exist(tmp_path):
    spec = write(tmp_path / "spec.yaml", {**finetune_spec(tmp_path), "tokenizer": str(tmp_path / "no-vocab.txt")})
    fails_cleanly(["finetune", str(spec)], tmp_path, "no-vocab.txt")


@pytest.mark.parametrize("content, expect", [
    (None, "file not found"),
    ("text,label\ncaf\xe9,1\n".encode("latin-1"), "not UTF-8"),
    ("words,label\na,1\n", "no column 'text'"),
    ("text,label\na,1\nb,0,x\nc,0,y\nd,1\n", "more than 5%"),
])
def test_bad_custom_task_files(tmp_path, content, expect):
    spec = write(tmp_path / "spec.yaml", finetune_spec(tmp_path))
    (tmp_path / "train.csv").unlink()
    if content is not None:
        write(tmp_path / "train.csv", content)
    fails_cleanly(["finetune", str(spec)], tmp_path, expect)


def test_glue_directory_missing_a_file(tmp_path):
    shutil.copytree(FIXTURES / "glue_data" / "RTE", tmp_path / "glue" / "RTE")
    (tmp_path / "glue" / "RTE" / "dev.tsv").unlink()
    spec = write(tmp_path / "spec.yaml", {**finetune_spec(tmp_path), "finetune": {"task": "rte", "data_dir": str(tmp_path / "glue")}})
    fails_cleanly(["finetune", str(spec)], tmp_path, "dev.tsv: file not found")


# ----------------------------------------------------------------------------------- checkpoints
@pytest.mark.parametrize("damage, expect", [
    (lambda d: write(d / "model.safetensors", (d / "model.safetensors").read_bytes()[:100]), "could not load checkpoint"),
    (lambda d: write(d / "config.json", '{"model_type": "eelbert", "hidden_'), "config.json"),
    (lambda d: write(d / "config.json", json.dumps({**json.loads((d / "config.json").read_text()), "model_type": "gpt2"})), "'gpt2'"),
    (lambda d: write(d / "config.json", json.dumps({**json.loads((d / "config.json").read_text()),
                                                    "hash": {"kind": "ngram", "ngram_min": 9, "ngram_max": 2}})),
     "invalid 'hash' entry"),
    (lambda d: (d / "model.safetensors").rename(d / "pytorch_model.bin"), "safetensors"),
    (lambda d: write(d / "config.json", json.dumps({**json.loads((d / "config.json").read_text()), "intermediate_size": 128})),
     "do not match its config.json"),
])
def test_damaged_checkpoints_are_refused_when_fine_tuning_from_them(finetuned, tmp_path, damage, expect):
    checkpoint = tmp_path / "checkpoint"
    shutil.copytree(finetuned / "ft" / "finetuned" / "toy", checkpoint)
    damage(checkpoint)
    spec = write(tmp_path / "spec.yaml", finetune_spec(tmp_path, checkpoint=str(checkpoint)))
    fails_cleanly(["finetune", str(spec)], tmp_path, expect)


def test_evaluate_refuses_a_pretraining_checkpoint(paused, tmp_path):
    pretrained = paused / "run" / "checkpoints" / "step-00000002" / "model"
    fails_cleanly(["evaluate", str(pretrained), "--task", "rte"], tmp_path, "not a fine-tuned classifier")


def test_evaluate_a_custom_task_model_from_its_own_record(finetuned, tmp_path):
    result = runner.invoke(app, ["evaluate", str(finetuned / "ft" / "finetuned" / "toy"), "--json"])
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["task"] == "toy"


def test_evaluate_with_predictions_naming_a_directory(finetuned, tmp_path):
    (tmp_path / "preds").mkdir()
    fails_cleanly(["evaluate", str(finetuned / "ft" / "finetuned" / "toy"), "--predictions", str(tmp_path / "preds")], tmp_path, "preds")


def test_evaluate_with_a_corrupt_task_record(finetuned, tmp_path):
    shutil.copytree(finetuned / "ft" / "finetuned" / "toy", tmp_path / "model")
    write(tmp_path / "model" / "task.json", '{"task": "to')
    fails_cleanly(["evaluate", str(tmp_path / "model")], tmp_path, "task.json is unreadable")


def test_evaluate_something_that_is_not_a_checkpoint(tmp_path):
    fails_cleanly(["evaluate", str(tmp_path / "nothing")], tmp_path, "not a checkpoint directory")


# ----------------------------------------------------------------------------------- runs and resume
def test_pretrain_refuses_a_directory_holding_a_run_without_touching_its_record(paused):
    fails_cleanly(["pretrain", str(paused / "spec.yaml"), "--set", "pretrain.lr=0.5"], paused, "already holds a run")


@pytest.mark.parametrize("override, field", [
    ("pretrain.lr=0.5", "pretrain.lr"),
    ("model.hidden=64", "model.hidden"),
    ("seed=7", "seed"),
    ("pretrain.batch_size=8", "pretrain.batch_size"),
    ("pretrain.budget.steps=20", "pretrain.budget.steps"),
])
def test_resume_with_a_changed_recipe_is_refused_naming_the_field(paused, override, field):
    fails_cleanly(["pretrain", str(paused / "spec.yaml"), "--resume", "--set", override], paused, f"{field} was")


def test_a_checkpoint_from_before_static_masking_resumes_only_with_bernoulli_masking(paused):
    state_file = paused / "run" / "checkpoints" / "step-00000002" / "trainer_state.json"
    state = json.loads(state_file.read_text())
    del state["recipe"]["pretrain"]["masking"]  # as an older eelbert wrote it
    state_file.write_text(json.dumps(state))
    fails_cleanly(["pretrain", str(paused / "spec.yaml"), "--resume"], paused, "pretrain.masking was 'bernoulli'")
    result = runner.invoke(app, ["pretrain", str(paused / "spec.yaml"), "--resume", "--set", "pretrain.masking=bernoulli"])
    assert result.exit_code == 0, result.stderr


def test_run_on_a_paused_run_with_a_changed_recipe_is_refused(paused):
    fails_cleanly(["run", str(paused / "spec.yaml"), "--set", "pretrain.lr=0.5"], paused, "pretrain.lr was")


def test_resume_with_corrupt_optimizer_state(paused):
    write(paused / "run" / "checkpoints" / "step-00000002" / "optimizer.safetensors", b"\x00" * 20)
    fails_cleanly(["pretrain", str(paused / "spec.yaml"), "--resume"], paused, "optimizer state of checkpoint")


def test_resume_with_corrupt_trainer_state(paused):
    write(paused / "run" / "checkpoints" / "step-00000002" / "trainer_state.json", '{"step": 2, "tok')
    fails_cleanly(["pretrain", str(paused / "spec.yaml"), "--resume"], paused, "unreadable")


def test_resume_after_a_torn_metrics_line_continues(paused):
    with open(paused / "run" / "metrics.jsonl", "a") as handle:
        handle.write('{"step": 3, "tok')
    result = runner.invoke(app, ["pretrain", str(paused / "spec.yaml"), "--resume"])
    assert result.exit_code == 0, result.stderr
    steps = [json.loads(line)["step"] for line in (paused / "run" / "metrics.jsonl").read_text().splitlines()]
    assert steps == [2, 4, 6]


def test_run_refuses_a_finished_pretraining_of_another_spec(tmp_path):
    spec = write(tmp_path / "spec.yaml", {**pretrain_spec(tmp_path), "finetune": None})
    assert runner.invoke(app, ["run", str(spec)]).exit_code == 0
    fails_cleanly(["run", str(spec), "--set", "pretrain.lr=0.5"], tmp_path, "finished pretraining run from a different spec")


def test_run_with_an_unreadable_stage_record(tmp_path):
    spec = write(tmp_path / "spec.yaml", finetune_spec(tmp_path))
    write(tmp_path / "ft" / "stages.json", '{"finetune:toy": "ab')
    fails_cleanly(["run", str(spec)], tmp_path, "stages.json is unreadable")


def test_finetune_of_a_spec_that_pretrains_before_it_has(tmp_path):
    spec = write(tmp_path / "spec.yaml", {**pretrain_spec(tmp_path), "finetune": finetune_spec(tmp_path)["finetune"]})
    fails_cleanly(["finetune", str(spec)], tmp_path, "does not exist yet")


def test_a_second_writer_of_a_run_directory_is_refused(tmp_path):
    spec = write(tmp_path / "spec.yaml", finetune_spec(tmp_path))
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from pathlib import Path; from eelbert_cli.core.files import run_directory_lock\n"
        "with run_directory_lock(Path(sys.argv[1])):\n    print('locked', flush=True); time.sleep(60)"), str(tmp_path / "ft")],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        fails_cleanly(["finetune", str(spec)], tmp_path, "is being written by eelbert process")
    finally:
        holder.kill()
        holder.wait()


def test_unreadable_results_are_kept_aside_not_lost(tmp_path):
    spec = write(tmp_path / "spec.yaml", finetune_spec(tmp_path))
    write(tmp_path / "ft" / "results.json", '{"name": "ft", "tas')
    result = runner.invoke(app, ["finetune", str(spec)])
    assert result.exit_code == 0, result.stderr
    kept = list((tmp_path / "ft").glob("results.json.unreadable-*"))
    assert len(kept) == 1 and kept[0].read_text() == '{"name": "ft", "tas'
    assert "toy" in json.loads((tmp_path / "ft" / "results.json").read_text())["tasks"]


# ----------------------------------------------------------------------------------- report
@pytest.mark.parametrize("content, expect", [
    ('{"tasks": {"toy": {"selected_mean": [1, 2]}}}', "does not have the shape"),
    ('{"tasks": ', "not valid JSON"),
    ('[1, 2]', "should hold one JSON object"),
])
def test_report_of_run_files_that_are_damaged(tmp_path, content, expect):
    write(tmp_path / "run" / "results.json", content)
    fails_cleanly(["report", str(tmp_path / "run"), "-o", str(tmp_path / "out")], tmp_path, expect)


def test_report_of_a_path_that_is_not_a_run(tmp_path):
    write(tmp_path / "file.txt", "x")
    fails_cleanly(["report", str(tmp_path / "file.txt"), "-o", str(tmp_path / "out")], tmp_path, "is not a directory")


# ----------------------------------------------------------------------------------- signals
def test_sigterm_while_packing_leaves_no_partial_pack(tmp_path):
    data = pretrain_spec(tmp_path)
    big = "\n\n".join(" ".join(random.Random(i).choice(WORDS) for _ in range(200)) for i in range(20000))
    write(tmp_path / "big.txt", big)
    data["pretrain"]["corpus"] = [{"kind": "files", "paths": [str(tmp_path / "big.txt")]}]
    spec = write(tmp_path / "spec.yaml", data)
    env = {"EELBERT_CACHE": str(tmp_path / "cache"), "PATH": "/usr/bin:/bin"}
    process = subprocess.Popen([sys.executable, "-m", "eelbert_cli.cli", "pretrain", str(spec)], stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.time() + 60
    while time.time() < deadline and not any((tmp_path / "cache" / "packed").glob(".*")):
        time.sleep(0.05)
    process.terminate()
    stderr = process.communicate(timeout=60)[1]
    assert process.returncode == 2 and "Traceback" not in stderr and "interrupted" in stderr
    assert list((tmp_path / "cache" / "packed").iterdir()) == []


def test_an_unreachable_hub_fails_in_seconds_naming_the_offline_alternatives(tmp_path, monkeypatch):
    import eelbert_cli.core.data.corpora as corpora
    import eelbert_cli.core.data.tasks.glue as glue
    from eelbert_cli.core.data.hub import hub_unreachable_reason

    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # the discard port: nothing listens, refused at once
    started = time.time()
    why = hub_unreachable_reason()
    assert why is not None and "127.0.0.1:9" in why and time.time() - started < 5
    for module in (corpora, glue):
        monkeypatch.setattr(module, "hub_unreachable_reason", hub_unreachable_reason)
    spec = write(tmp_path / "spec.yaml", {**finetune_spec(tmp_path), "finetune": {"task": "rte"}})
    fails_cleanly(["finetune", str(spec)], tmp_path, "glue_data/ directory or a save_to_disk directory")
    data = pretrain_spec(tmp_path)
    data["pretrain"]["corpus"] = [{"kind": "hf", "name": "wikitext", "config": "wikitext-2-raw-v1"}]
    fails_cleanly(["pretrain", str(write(tmp_path / "hub.yaml", data))], tmp_path, "kind: files")
    assert time.time() - started < 30
