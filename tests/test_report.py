"""`eelbert report` core: run directories in, tables/files/plots out; twins matched by pretraining."""

from __future__ import annotations

import csv
import json
import shutil
import statistics
from pathlib import Path

import pytest
import yaml
from rich.console import Console

from eelbert_cli.core.errors import EelbertError
from eelbert_cli.core.reporting.plots import budget_curves
from eelbert_cli.core.reporting.render import screen_tables
from eelbert_cli.core.reporting.report import build_report, parse_baselines
from eelbert_cli.core.reporting.runs import load_run

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
BERT_BYTES = 17_556_000


def make_run(
    root: Path,
    name: str,
    preset: str,
    *,
    budget: dict | None = None,
    kind: str = "ngram",
    params: int = 1_000_000,
    file_bytes: int = 2_000_000,
    ratio: float = 1.0,
    twin: str = "bert-tiny",
    tasks: dict[str, dict[str, dict[str, float]]] | None = None,
    seeds: int = 3,
    files: tuple[str, ...] = ("spec", "size", "results", "pretrain"),
    pretrain_extra: dict | None = None,
) -> Path:
    """A run directory in the formats the other commands write; ``tasks``: task -> split -> metric -> mean."""
    run = root / name
    run.mkdir(parents=True)
    spec = {"name": name, "output_dir": str(run), "model": {"preset": preset, "max_positions": 512, "dropout": 0.1, "mlm_head": "tied"}}
    if budget is not None:
        spec["pretrain"] = {"corpus": [{"kind": "builtin", "name": "news"}], "seq_len": 128, "lr": 0.002, "batch_size": 64,
                            "budget": budget, **(pretrain_extra or {})}
    spec["finetune"] = {"task": "rotten-tomatoes", "grid": {"lr": [0.001], "epochs": [2], "batch_size": [32], "seeds": list(range(seeds))}}
    if "spec" in files:
        (run / "spec.resolved.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    if "size" in files:
        size = {
            "name": name, "hash_kind": kind, "layers": 1 if preset == "uno-eelbert" else 2, "hidden": 128,
            "params_total": params, "params_word_embedding": params // 2, "params_embeddings_other": 1000, "params_encoder": params // 3,
            "params_pooler": 16512, "params_task_head": 258, "params_mlm_pretraining_only": 30000, "file_bytes": file_bytes,
            "fp16_file_bytes": file_bytes // 2, "int8_bytes_estimate": file_bytes // 4, "bert_twin": twin,
            "bert_twin_file_bytes": BERT_BYTES, "ratio_vs_bert": ratio, "file_megabytes": round(file_bytes / 1e6, 3),
        }
        (run / "size_report.json").write_text(json.dumps(size))
    if "results" in files and tasks:
        entries = {}
        for task, by_split in tasks.items():
            dev = [v for split, metrics in by_split.items() if not split.startswith("test") for v in metrics.values()]
            entries[task] = {
                "task": task,
                "title": {"sst2": "SST-2", "mrpc": "MRPC", "mnli": "MNLI", "rotten-tomatoes": "Rotten Tomatoes"}.get(task, task),
                "type": "classification", "seeds": list(range(seeds)), "score": statistics.fmean(dev),
                "selected": {"lr": 0.001, "epochs": 2, "batch_size": 32},
                "selected_mean": by_split,
                "selected_std": {split: {m: 0.5 for m in metrics} for split, metrics in by_split.items()},
            }
        results = {"name": name, "summary": {}, "tasks": entries}
        (run / "results.json").write_text(json.dumps(results))
    if "pretrain" in files and budget is not None:
        lines = [{"step": s, "tokens": s * 8192, "loss": 12.0 - s / 10, "masked_accuracy": 0.1, "lr": 1e-3, "tokens_per_second": 1e4,
                  "elapsed_seconds": s} for s in (10, 20, 30)]
        lines.insert(2, {"step": 20, "tokens": 20 * 8192, "heldout_loss": 10.5, "heldout_accuracy": 0.1, "heldout_masked_tokens": 500})
        (run / "metrics.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines) + '{"step": 40, "tok')  # mid-write
        pretrain = {"steps": 30, "tokens": 30 * 8192, "elapsed_seconds": 30.0, "tokens_per_second": 8192.0, "heldout_loss": 9.25,
                    "heldout_accuracy": 0.2}
        (run / "pretrain_results.json").write_text(json.dumps(pretrain))
    return run


def glue2(sst2: float, f1: float, accuracy: float) -> dict:
    return {"sst2": {"validation": {"accuracy": sst2}}, "mrpc": {"validation": {"f1": f1, "accuracy": accuracy}}}


@pytest.fixture(scope="module")
def paper_runs(tmp_path_factory) -> list[Path]:
    """The paper's comparison: three presets pretrained alike, plus an EELBERT trained from scratch."""
    root = tmp_path_factory.mktemp("runs")
    return [
        make_run(root, "bert-tiny-pt", "bert-tiny", budget={"minutes": 5.0}, kind="learned", params=4_386_178, file_bytes=BERT_BYTES,
                 ratio=1.0, tasks=glue2(80.0, 82.0, 74.0)),
        # budget written as int 5: the same budget as 5.0
        make_run(root, "eelbert-tiny-pt", "eelbert-tiny", budget={"minutes": 5}, params=479_362, file_bytes=1_950_000, ratio=9.0,
                 tasks=glue2(77.0, 80.0, 72.0)),
        make_run(root, "uno-pt", "uno-eelbert", budget={"minutes": 5.0}, params=300_000, file_bytes=1_170_400, ratio=15.0,
                 tasks=glue2(71.0, 76.0, 70.0)),
        make_run(root, "eelbert-tiny-scratch", "eelbert-tiny", params=479_362, file_bytes=1_950_000, ratio=9.0,
                 tasks=glue2(60.0, 70.0, 60.0)),
    ]


@pytest.fixture(scope="module")
def report(paper_runs, tmp_path_factory):
    return build_report(paper_runs, tmp_path_factory.mktemp("out") / "report")


def by_label(report) -> dict:
    return {row.label: row for row in report.rows}


def test_rows_carry_sizes_scores_and_pretraining(report):
    rows = by_label(report)
    assert list(rows) == ["bert-tiny-pt", "eelbert-tiny-pt", "uno-pt", "eelbert-tiny-scratch"]
    eel = rows["eelbert-tiny-pt"]
    assert (eel.params, eel.megabytes, eel.ratio_vs_bert, eel.bert_twin) == (479_362, 1.95, 9.0, "bert-tiny")
    assert eel.hash_kind == "ngram" and eel.layers == 2 and eel.model == "eelbert-tiny · ngram · 2L/128H"
    assert eel.tasks["mrpc"].score == 76.0 and eel.tasks["sst2"].dev["accuracy"].mean == 77.0
    assert eel.tasks["sst2"].dev["accuracy"].std == 0.5 and eel.tasks["sst2"].seeds == 3
    assert eel.average_score == 76.5
    assert rows["bert-tiny-pt"].average_score == 79.0
    assert eel.pretrained and eel.budget == "pretrained 5 min"
    assert eel.tokens_pretrained == 30 * 8192 and eel.heldout_loss == 9.25
    # the truncated last log line is skipped; the held-out row is not a training point; the final held-out loss is added
    assert eel.loss_curve == [(81920, 11.0), (163840, 10.0), (245760, 9.0)]
    assert eel.heldout_points == [(163840, 10.5), (245760, 9.25)]
    scratch = rows["eelbert-tiny-scratch"]
    assert not scratch.pretrained and scratch.budget == "not pretrained" and scratch.tokens_pretrained is None


def test_percent_of_twin_respects_pretraining(report):
    rows = by_label(report)
    assert rows["bert-tiny-pt"].twin_label == "bert-tiny-pt" and rows["bert-tiny-pt"].percent_of_twin == pytest.approx(100.0)
    assert rows["eelbert-tiny-pt"].twin_label == "bert-tiny-pt"
    assert rows["eelbert-tiny-pt"].percent_of_twin == pytest.approx(76.5 / 79.0 * 100)
    assert rows["uno-pt"].percent_of_twin == pytest.approx(72.0 / 79.0 * 100)
    # the only bert-tiny was pretrained: no twin for the from-scratch run, and a note says why
    scratch = rows["eelbert-tiny-scratch"]
    assert scratch.twin_label is None and scratch.percent_of_twin is None
    assert any("eelbert-tiny-scratch" in n and "bert-tiny-pt" in n and "not pretrained" in n for n in report.notes)


def test_twin_found_for_each_treatment_and_budget_must_match(paper_runs, tmp_path):
    scratch_bert = make_run(tmp_path, "bert-tiny-scratch", "bert-tiny", kind="learned", file_bytes=BERT_BYTES,
                            tasks=glue2(50.0, 55.0, 45.0))
    other_budget = make_run(tmp_path, "eelbert-tiny-steps", "eelbert-tiny", budget={"steps": 100}, ratio=9.0, tasks=glue2(70.0, 70.0, 70.0))
    result = build_report([*paper_runs, scratch_bert, other_budget], tmp_path / "out")
    rows = by_label(result)
    assert rows["eelbert-tiny-scratch"].twin_label == "bert-tiny-scratch"
    assert rows["eelbert-tiny-scratch"].percent_of_twin == pytest.approx(62.5 / 50.0 * 100)
    assert rows["eelbert-tiny-pt"].twin_label == "bert-tiny-pt"
    assert rows["eelbert-tiny-steps"].percent_of_twin is None
    assert any(n.startswith("eelbert-tiny-steps: no % of twin") and "100 steps" in n for n in result.notes)


def test_distilled_pretraining_is_twinned_only_with_runs_distilled_alike(tmp_path):
    distill = {"objective": "distill", "teacher": "all-MiniLM-L6-v2"}
    mlm_bert = make_run(tmp_path, "bert-mlm", "bert-tiny", kind="learned", budget={"minutes": 8}, file_bytes=BERT_BYTES,
                        tasks=glue2(70, 70, 70))
    eel = make_run(tmp_path, "eel-distill", "eelbert-tiny", budget={"minutes": 8}, ratio=9.0, tasks=glue2(63, 63, 63),
                   pretrain_extra=distill)
    rows = by_label(build_report([mlm_bert, eel], tmp_path / "out"))
    assert rows["eel-distill"].twin_label is None and "distill from all-MiniLM-L6-v2" in rows["eel-distill"].budget
    bert = make_run(tmp_path, "bert-distill", "bert-tiny", kind="learned", budget={"minutes": 8}, file_bytes=BERT_BYTES,
                    tasks=glue2(70, 70, 70), pretrain_extra=distill)
    assert by_label(build_report([mlm_bert, eel, bert], tmp_path / "out2"))["eel-distill"].twin_label == "bert-distill"


def test_baseline_mapping_overrides_and_is_checked(paper_runs, tmp_path):
    baselines = parse_baselines(["eelbert-tiny-scratch=bert-tiny-pt"])
    assert baselines == {"eelbert-tiny-scratch": "bert-tiny-pt"}
    with pytest.raises(EelbertError, match="expected RUN=BASELINE"):
        parse_baselines(["eelbert-tiny-scratch"])
    result = build_report(paper_runs, tmp_path / "out", baselines=baselines)
    assert by_label(result)["eelbert-tiny-scratch"].percent_of_twin == pytest.approx(62.5 / 79.0 * 100)
    with pytest.raises(EelbertError, match="no-such-run"):
        build_report(paper_runs, tmp_path / "out", baselines={"eelbert-tiny-scratch": "no-such-run"})


def test_percent_uses_the_tasks_both_runs_have(tmp_path):
    bert = make_run(tmp_path, "bert", "bert-tiny", kind="learned", tasks=glue2(80.0, 82.0, 74.0))
    eel = make_run(tmp_path, "eel", "eelbert-tiny", ratio=9.0, tasks={"sst2": {"validation": {"accuracy": 60.0}}})
    result = build_report([bert, eel], tmp_path / "out")
    assert by_label(result)["eel"].percent_of_twin == pytest.approx(60.0 / 80.0 * 100)
    assert any("1 task(s) both have: sst2" in n for n in result.notes)


def test_files_written(report):
    out = report.markdown_path.parent
    assert {p.name for p in out.iterdir()} == {"report.md", "report.csv", "report.json", "score_vs_size.png", "pretrain_loss.png",
                                               "score_vs_tokens.png"}
    assert report.skipped_plots == {}
    curve = report.plots["score_vs_tokens"].read_bytes()  # eelbert-tiny at two budgets (scratch, 5 min)
    assert curve.startswith(PNG_MAGIC) and int.from_bytes(curve[16:20], "big") > int.from_bytes(curve[20:24], "big")
    for name in ("score_vs_size", "pretrain_loss"):
        data = report.plots[name].read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 10_000
        width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
        assert 600 < width < 1200 and 350 < height < 800  # ~7x4.5 in at 120 dpi

    markdown = report.markdown_path.read_text()
    assert markdown == report.markdown
    assert ("| eelbert-tiny-pt | eelbert-tiny · ngram · 2L/128H | pretrained 5 min | 479,362 | 1.95 | 9.0x bert-tiny "
            "| 77.0 | 76.0 | 76.5 | 96.8 | bert-tiny-pt |") in markdown
    assert "| eelbert-tiny-pt | 3 | 77.0 ± 0.5 | 80.0 ± 0.5 | 72.0 ± 0.5 |" in markdown
    assert "## Notes" in markdown and "eelbert-tiny-scratch: no % of twin" in markdown
    assert "![score_vs_size](score_vs_size.png)" in markdown

    with report.csv_path.open() as handle:
        records = {r["label"]: r for r in csv.DictReader(handle)}
    eel = records["eelbert-tiny-pt"]
    assert float(eel["percent_of_twin"]) == pytest.approx(76.5 / 79.0 * 100)
    assert int(eel["params_total"]) == 479_362 and float(eel["ratio_vs_bert"]) == 9.0 and float(eel["average_score"]) == 76.5
    assert float(eel["mrpc.validation.f1.mean"]) == 80.0 and float(eel["mrpc.validation.f1.std"]) == 0.5
    assert records["eelbert-tiny-scratch"]["percent_of_twin"] == ""

    document = json.loads(report.json_path.read_text())
    runs = {r["label"]: r for r in document["runs"]}
    assert runs["uno-pt"]["percent_of_twin"] == pytest.approx(72.0 / 79.0 * 100)
    assert runs["uno-pt"]["twin_label"] == "bert-tiny-pt" and runs["uno-pt"]["megabytes"] == 1.1704
    assert [t["name"] for t in document["tasks"]] == ["sst2", "mrpc"]


def render(table, width: int = 80) -> list[str]:
    console = Console(width=width, record=True, file=open("/dev/null", "w"), color_system=None)
    console.print(table)
    return [line.strip() for line in console.export_text().splitlines()]


def test_screen_table_fits_80_columns(report):
    assert len(report.tables) == 1
    lines = render(report.table)
    assert max(len(line.rstrip()) for line in lines) <= 80
    header = next(line for line in lines if "params" in line).split()
    assert header == ["model", "params", "MB", "smaller", "SST-2", "MRPC", "avg", "%", "twin"]
    eel = next(line for line in lines if line.startswith("eelbert-tiny-pt")).split()
    assert eel == ["eelbert-tiny-pt", "479.4k", "1.95", "9.0x", "77.0", "76.0", "76.5", "96.8"]


def test_many_tasks_move_to_their_own_table(tmp_path):
    names = ["cola", "sst2", "mrpc", "stsb", "qqp", "mnli", "qnli", "rte", "wnli"]
    tasks = {n: {"validation": {"accuracy": 50.0 + i}} for i, n in enumerate(names)}
    tasks["mnli"] = {"validation_matched": {"accuracy": 60.0}, "validation_mismatched": {"accuracy": 62.0}}
    run = make_run(tmp_path, "eelbert-tiny-glue", "eelbert-tiny", ratio=9.0, tasks=tasks)
    rows = [load_run(run)]
    assert rows[0].tasks["mnli"].dev == {
        "accuracy (matched)": rows[0].tasks["mnli"].splits["validation_matched"]["accuracy"],
        "accuracy (mismatched)": rows[0].tasks["mnli"].splits["validation_mismatched"]["accuracy"],
    }
    assert rows[0].tasks["mnli"].score == 61.0
    tables = screen_tables(rows, width=80)
    assert len(tables) == 2
    for table in tables:
        assert max(len(line.rstrip()) for line in render(table)) <= 80
    assert any(line.split()[:2] == ["MNLI", "61.0"] for line in render(tables[1]))


def test_test_split_metrics_are_reported_apart(tmp_path):
    rt = {"rotten-tomatoes": {"validation": {"accuracy": 70.0}, "test": {"accuracy": 68.0}}}
    run = make_run(tmp_path, "eel-rt", "eelbert-tiny", ratio=9.0, tasks=rt)
    result = build_report([run], tmp_path / "out")
    row = result.rows[0]
    assert row.tasks["rotten-tomatoes"].score == 70.0  # dev only; test never selects or averages
    assert row.tasks["rotten-tomatoes"].test["accuracy"].mean == 68.0
    assert "## Test (labelled test splits) metrics" in result.markdown
    assert "| eel-rt | 3 | 68.0 ± 0.5 |" in result.markdown
    with result.csv_path.open() as handle:
        record = next(csv.DictReader(handle))
    assert float(record["rotten-tomatoes.test.accuracy.mean"]) == 68.0


def test_a_suite_task_averages_the_one_metric_the_suite_names(tmp_path):
    """sms-spam reports F1 and MCC; the offline suite averages its MCC only, and so does the report's avg
    (it used to take the mean of both, so report and `glue` disagreed)."""
    tasks = {"sms-spam": {"validation": {"f1": 90.0, "mcc": 80.0}}, "mrpc": {"validation": {"f1": 80.0, "accuracy": 70.0}}}
    run = make_run(tmp_path, "eel-spam", "eelbert-tiny", ratio=9.0, tasks=tasks)
    row = build_report([run], tmp_path / "out").rows[0]
    assert row.tasks["sms-spam"].score == 80.0
    assert row.tasks["mrpc"].score == 75.0  # not a suite task: GLUE's rule, the mean of its metrics
    assert row.average_score == 77.5


def test_partial_run_dirs(tmp_path):
    # pretraining still running: only a log; fine-tuning only: results without spec or size
    in_progress = tmp_path / "pt-running"
    in_progress.mkdir()
    (in_progress / "metrics.jsonl").write_text(
        json.dumps({"step": 10, "tokens": 1000, "loss": 9.0}) + "\n" + json.dumps({"step": 20, "tokens": 2000, "loss": 8.0}) + "\n"
    )
    finetuned = make_run(tmp_path, "ft-only", "eelbert-tiny", tasks=glue2(70.0, 70.0, 70.0), files=("results",))
    result = build_report([in_progress, finetuned], tmp_path / "out")
    rows = by_label(result)
    assert rows["pt-running"].tokens_pretrained == 2000 and rows["pt-running"].pretrained and rows["pt-running"].treatment is None
    assert rows["ft-only"].params is None and rows["ft-only"].average_score == 70.0 and rows["ft-only"].percent_of_twin is None
    assert set(result.plots) == {"pretrain_loss"}
    assert "size_report.json" in result.skipped_plots["score_vs_size"]
    assert not (tmp_path / "out" / "score_vs_size.png").exists()
    assert "ft-only: no % of twin: its BERT twin is unknown" in result.markdown
    assert "missing spec.resolved.yaml" in result.markdown
    json.loads((tmp_path / "out" / "report.json").read_text())  # valid JSON despite the gaps


def test_no_plot_data_at_all(tmp_path):
    run = make_run(tmp_path, "size-only", "eelbert-tiny", files=("spec", "size"))
    result = build_report([run], tmp_path / "out")
    assert result.plots == {} and set(result.skipped_plots) == {"score_vs_size", "pretrain_loss", "score_vs_tokens"}
    assert (tmp_path / "out" / "report.md").is_file() and (tmp_path / "out" / "report.csv").is_file()


def test_kept_records_reproduce_the_report_without_the_run_directories(paper_runs, tmp_path):
    paper_runs = [Path(shutil.copytree(run, tmp_path / "runs" / run.name)) for run in paper_runs]
    checkpoint = paper_runs[0] / "checkpoint"
    checkpoint.mkdir()
    (checkpoint / "model.safetensors").write_bytes(b"weights")
    first = build_report(paper_runs, tmp_path / "out", keep_records=True)
    kept = tmp_path / "out" / "runs"
    assert sorted(p.name for p in kept.iterdir()) == sorted(p.name for p in paper_runs)
    assert not (kept / paper_runs[0].name / "checkpoint").exists()  # records only, never weights
    assert {p.name for p in (kept / "bert-tiny-pt").iterdir()} == {p.name for p in paper_runs[0].iterdir() if p.is_file()}
    assert all(Path(row.run_dir).parent == kept for row in first.rows)  # the report points at the copies
    again = build_report(sorted(kept.iterdir()), tmp_path / "out", keep_records=True)  # re-reported in place
    assert {row.label: row.average_score for row in again.rows} == {row.label: row.average_score for row in first.rows}
    assert {row.label: row.percent_of_twin for row in again.rows} == {row.label: row.percent_of_twin for row in first.rows}


def test_kept_records_refuse_two_runs_of_one_name(paper_runs, tmp_path):
    other = make_run(tmp_path / "elsewhere", paper_runs[0].name, "bert-tiny", tasks=glue2(1.0, 1.0, 1.0))
    with pytest.raises(EelbertError, match=f"two run directories are named {paper_runs[0].name}"):
        build_report([paper_runs[0], other], tmp_path / "out", keep_records=True)
    assert not (tmp_path / "out" / "runs").exists()


def test_budget_curves_group_runs_by_model_in_token_order(report):
    curves = budget_curves(report.rows)
    eelbert = curves["eelbert-tiny · ngram · 2L/128H"]
    assert [row.label for _, row in eelbert] == ["eelbert-tiny-scratch", "eelbert-tiny-pt"]
    assert eelbert[0][0] == 0 and eelbert[1][0] == by_label(report)["eelbert-tiny-pt"].tokens_pretrained > 0
    assert [row.label for _, row in curves["bert-tiny · learned · 2L/128H"]] == ["bert-tiny-pt"]


def test_the_budget_curve_needs_a_model_at_two_budgets(paper_runs, tmp_path):
    result = build_report(paper_runs[:3], tmp_path / "out")  # every model at one budget only
    assert "score_vs_tokens" not in result.plots and not (tmp_path / "out" / "score_vs_tokens.png").exists()
    assert result.skipped_plots["score_vs_tokens"] == "no model was run at two or more pretraining budgets"


def test_bad_paths_raise_user_errors(tmp_path):
    missing = tmp_path / "nope"
    with pytest.raises(EelbertError, match=str(missing)):
        build_report([missing], tmp_path / "out")
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    with pytest.raises(EelbertError, match="not a directory"):
        build_report([a_file], tmp_path / "out")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(EelbertError, match=f"{empty} has none of"):
        build_report([empty], tmp_path / "out")
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "results.json").write_text("{not json")
    with pytest.raises(EelbertError, match="results.json is not valid JSON"):
        build_report([broken], tmp_path / "out")
    with pytest.raises(EelbertError, match="at least one"):
        build_report([], tmp_path / "out")
