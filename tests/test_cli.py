"""The command line: size-report and inspect-embedding, user errors as exit code 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from eelbert_cli.cli import app
from eelbert_cli.core.model.config import preset_config
from eelbert_cli.core.model.modeling import build_model

EXPERIMENTS = Path(__file__).parent.parent / "experiments"
runner = CliRunner()


def run(*args: str):
    return runner.invoke(app, list(args))


def test_spec_error_exits_2_naming_the_yaml_path(tmp_path):
    spec = tmp_path / "bad.yaml"
    spec.write_text("name: x\nmodel: {preset: eelbert-tiny, hash: {ngram_min: 5, ngram_max: 2}}\n")
    result = run("size-report", str(spec))
    assert result.exit_code == 2
    assert "model.hash" in result.stderr and "must not exceed" in result.stderr
    assert "Traceback" not in result.output + result.stderr


_LIGHT_IMPORTS = (
    "import sys, eelbert_cli, eelbert_cli.cli, eelbert_cli.core.model, eelbert_cli.core.reporting.report;"
    "from eelbert_cli.core.spec import load_spec;"
    "from eelbert_cli.core.model.hashing import HashConfig, hash_vectors_numpy;"
    "load_spec(sys.argv[1]); hash_vectors_numpy(['play', '##ing'], 8, HashConfig());"
    "print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))"
)


def test_cli_spec_validation_report_and_hashing_import_no_torch_or_transformers():
    """`eelbert --help`, spec validation, `report` and a deployment runtime's hashing stay cheap."""
    result = subprocess.run([sys.executable, "-c", _LIGHT_IMPORTS, str(EXPERIMENTS / "eelbert-tiny.yaml")],
                            capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_console_script_reports_errors_without_traceback(tmp_path):
    missing = tmp_path / "missing.yaml"
    result = subprocess.run([sys.executable, "-m", "eelbert_cli.cli", "size-report", str(missing)], capture_output=True, text=True)
    assert result.returncode == 2
    assert "does not exist" in result.stderr and "Traceback" not in result.stderr


def test_version_and_python_dash_m_work_without_loading_torch():
    from eelbert_cli import __version__

    result = subprocess.run([sys.executable, "-X", "importtime", "-m", "eelbert_cli", "--version"], capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.strip() == f"eelbert {__version__}"
    assert not any(line.rstrip().endswith("| torch") for line in result.stderr.splitlines())  # -X importtime's list


def test_size_report_of_a_spec_writes_its_run_directory(tmp_path, fixture_vocab_path):
    out = tmp_path / "run"
    result = run(
        "size-report", str(EXPERIMENTS / "eelbert-tiny.yaml"), "--json",
        "--set", f"tokenizer={fixture_vocab_path}", "--set", f"output_dir={out}",
    )
    assert result.exit_code == 0, result.stderr
    [report] = json.loads(result.stdout)
    assert report["params_total"] == 479_104 and report["params_word_embedding"] == 0
    assert report["bert_twin"] == "bert-tiny"
    written = json.loads((out / "size_report.json").read_text())
    assert written["file_bytes"] == report["file_bytes"]
    assert (out / "size_report.md").read_text().startswith("| model")
    assert "ngram_max: 3" in (out / "spec.resolved.yaml").read_text()
    assert "torch" in json.loads((out / "environment.json").read_text())["packages"]


def test_size_report_of_a_checkpoint_directory(tmp_path, vocabulary):
    model = build_model(preset_config("uno-eelbert", vocabulary), "sequence-classification", num_labels=3)
    model.save_pretrained(tmp_path / "ckpt")
    result = run("size-report", str(tmp_path / "ckpt"), "--json")
    assert result.exit_code == 0, result.stderr
    [report] = json.loads(result.stdout)
    assert report["name"] == "ckpt" and report["params_total"] == 280_832 and report["layers"] == 1


@pytest.mark.network
def test_size_report_reproduces_the_paper_ratios():
    """bert-tiny ~17.5 MB; eelbert-tiny ~9x smaller; uno-eelbert <= 1.2 MB and >= 15x smaller."""
    result = run("size-report", "bert-tiny", "eelbert-tiny", "uno-eelbert", "--json")
    assert result.exit_code == 0, result.stderr
    reports = {r["name"]: r for r in json.loads(result.stdout)}
    bert, eel, uno = reports["bert-tiny"], reports["eelbert-tiny"], reports["uno-eelbert"]
    assert bert["params_total"] == 4_385_920 and bert["params_word_embedding"] == 3_906_816
    assert 17.4e6 < bert["file_bytes"] < 17.7e6 and bert["ratio_vs_bert"] == pytest.approx(1.0)
    assert 1.85e6 < eel["file_bytes"] < 2.0e6 and 8.5 < eel["ratio_vs_bert"] < 9.5
    assert uno["file_bytes"] <= 1.2e6 and uno["ratio_vs_bert"] >= 15
    assert uno["fp16_file_bytes"] < 0.51 * uno["file_bytes"] + 20_000  # halves, plus the header


def test_inspect_embedding_shows_pieces_ngrams_and_neighbours(fixture_vocab_path):
    result = run("inspect-embedding", "playing", "unbelievable", "--tokenizer", str(fixture_vocab_path), "--json", "--top-k", "3")
    assert result.exit_code == 0, result.stderr
    playing, unbelievable = json.loads(result.stdout)
    assert [p["piece"] for p in playing["pieces"]] == ["playing"]
    neighbours = [token for token, _ in playing["pieces"][0]["neighbours"]]
    assert len(neighbours) == 3 and "playing" not in neighbours
    assert {"play", "played", "plays", "player"} & set(neighbours)
    assert "^pl" in playing["pieces"][0]["ngrams"]
    assert [p["piece"] for p in unbelievable["pieces"]] == ["un", "##believ", "##able"]
    assert unbelievable["whole_word"]["piece"] == "unbelievable"  # split words also get a whole-word vector


def test_inspect_embedding_table_and_bad_options(fixture_vocab_path):
    result = run("inspect-embedding", "cats", "--tokenizer", str(fixture_vocab_path), "--kind", "token")
    assert result.exit_code == 0 and "kind=token" in result.stdout
    result = run("inspect-embedding", "cats", "--tokenizer", str(fixture_vocab_path), "--ngram-min", "4", "--ngram-max", "2")
    assert result.exit_code == 2 and "must not exceed" in result.stderr
    result = run("inspect-embedding", "cats", "--tokenizer", "/no/such/vocab.txt")
    assert result.exit_code == 2 and "/no/such/vocab.txt" in result.stderr


def test_error_text_is_printed_literally_not_as_markup(tmp_path):
    missing = tmp_path / "odd[/x][bold]name.yaml"
    result = run("size-report", str(missing))
    assert result.exit_code == 2 and f"spec file {missing} does not exist" in result.stderr


def test_list_shows_every_built_in_model_task_corpus_and_tokenizer_with_sizes():
    from eelbert_cli.core.data.resources import shipped_checkpoints, shipped_exports
    from eelbert_cli.core.data.tasks import TASKS

    result = run("list", "--json")
    assert result.exit_code == 0, result.stderr
    found = json.loads(result.stdout)
    models = {m["name"]: m for m in found["models"]}
    assert set(models) == {"all-MiniLM-L6-v2", *shipped_checkpoints(), *shipped_exports()}
    spam, spam_int8 = models["eelbert-tiny-sms-spam"], models["eelbert-tiny-sms-spam-int8"]
    assert spam["scores"].startswith("sms-spam mcc ") and "trec" not in spam["scores"]  # its own task, the suite's metric
    assert spam_int8["kind"] == "int8 export of eelbert-tiny-sms-spam" and spam_int8["weight_bytes"] < 600_000
    uno, sentiment = models["uno-eelbert-pretrained"], models["eelbert-tiny-sentiment"]
    assert uno["weight_bytes"] == (shipped_checkpoints()["uno-eelbert-pretrained"] / "model.safetensors").stat().st_size
    assert "rotten-tomatoes 70.0" in uno["scores"] and "trec" in uno["scores"] and uno["run"] == "curve-uno-eelbert-100m-hash-vector"
    assert "TF-IDF" in found["baselines_note"]  # a smaller baseline beats the shipped models: said where they are listed
    assert sentiment["kind"] == "fine-tuned classifier" and "rotten-tomatoes" in sentiment["scores"]
    tasks = {t["name"]: t for t in found["tasks"]}
    assert set(tasks) == set(TASKS) and tasks["trec"]["labels"] == 6 and tasks["trec"]["in_offline_suite"] and not tasks["sst2"]["offline"]
    assert {"prose", "all", "news"} <= {c["name"] for c in found["corpora"]}
    assert {t["name"] for t in found["tokenizers"]} >= {"bert-base-uncased", "prose-wordpiece-8k"}
    screen = run("list")
    assert screen.exit_code == 0 and "uno-eelbert-pretrained" in screen.stdout and "prose-wordpiece-8k" in screen.stdout
    assert "A baseline still wins the other three tasks" in " ".join(screen.stdout.split())  # where a baseline wins, it says so


def test_size_report_takes_a_built_in_model_by_name_and_writes_nothing_into_the_package():
    from eelbert_cli.core.data.resources import SHIPPED_DIR

    before = sorted(p.name for p in (SHIPPED_DIR / "uno-eelbert-pretrained").iterdir())
    result = run("size-report", "uno-eelbert-pretrained", "--json")
    assert result.exit_code == 0, result.stderr
    [report] = json.loads(result.stdout)
    assert report["name"] == "uno-eelbert-pretrained" and report["params_word_embedding"] == 0 and report["bert_twin"] == "bert-tiny"
    assert sorted(p.name for p in (SHIPPED_DIR / "uno-eelbert-pretrained").iterdir()) == before


def test_a_scalar_for_a_list_field_says_how_to_write_the_list(tmp_path):
    result = run("size-report", str(EXPERIMENTS / "eelbert-tiny.yaml"), "--set", "finetune.grid.epochs=1")
    assert result.exit_code == 2 and "finetune.grid.epochs: Input should be a valid list: write [1]" in result.stderr


def test_predict_into_head_stops_quietly(tmp_path):
    """`eelbert predict ... | head -1`: no "error: Broken pipe", no traceback; exit 141 as a SIGPIPE'd tool."""
    texts = tmp_path / "texts.txt"
    texts.write_text("".join(f"a good film number {i}\n" for i in range(3000)))
    script = f'"{sys.executable}" -m eelbert_cli predict uno-eelbert-sentiment --input "{texts}" | head -1; exit "${{PIPESTATUS[0]}}"'
    result = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=300)
    assert result.returncode == 141 and result.stderr == "" and json.loads(result.stdout)["label"] == "fresh"


def test_init_writes_a_commented_spec_that_validates_and_never_overwrites(tmp_path):
    from eelbert_cli.core.spec import load_spec

    path = tmp_path / "mine.yaml"
    result = run("init", str(path))
    assert result.exit_code == 0, result.stderr
    spec = load_spec(path)
    assert spec.name == "mine" and spec.model.checkpoint is not None and spec.finetune.task == "rotten-tomatoes"
    assert "tokenizer" not in spec.model_fields_set and path.read_text().count("#") > 10  # commented; the model's own vocabulary
    before = path.read_bytes()
    again = run("init", str(path), "--model", "bert-tiny")
    assert again.exit_code == 2 and "already exists" in again.stderr and path.read_bytes() == before
    other = tmp_path / "bert.yaml"
    assert run("init", str(other), "--model", "bert-tiny", "--task", "trec").exit_code == 0
    spec = load_spec(other)
    assert spec.tokenizer == "bert-base-uncased" and spec.finetune.task == "trec"
    refused = run("init", str(tmp_path / "x.yaml"), "--task", "no-such-task")
    assert refused.exit_code == 2 and "is not a built-in or GLUE task" in refused.stderr and not (tmp_path / "x.yaml").exists()
