"""scripts/suite_report.py: rows kept from an earlier report merge with rows measured now, the Pareto
front, and the marks a reader relies on (fewer seeds, front membership)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))

import suite_report  # noqa: E402

TASKS = ("rotten-tomatoes", "trec", "sms-spam", "vader-tweets", "vader-amazon")


def _row(name: str, file_bytes: int, suite: float | None, classification: float, seeds: int = 3, kind: str = "transformer") -> dict:
    return {"name": name, "run_dir": f"runs/suite-{name}", "kind": kind, "model": name, "file_bytes": file_bytes,
            "latency_ms_batch1": 1.0, "suite_dev": suite, "suite_test": suite, "classification_dev": classification,
            "classification_test": classification, "tasks_dev": dict.fromkeys(TASKS, classification),
            "tasks_test": dict.fromkeys(TASKS, classification), "not_run": {}, "seeds": [seeds]}


def test_merge_replaces_a_kept_row_in_place_and_appends_new_names():
    kept = [_row("a", 1, 70.0, 70.0), _row("b", 2, 60.0, 60.0)]
    measured = [_row("c", 3, 80.0, 80.0, seeds=1), _row("a", 1, 75.0, 75.0)]
    merged = suite_report.merge_rows(kept, measured)
    assert [r["name"] for r in merged] == ["a", "b", "c"]
    assert merged[0]["suite_dev"] == 75.0


def test_pareto_keeps_only_rows_no_smaller_row_beats():
    rows = [_row("small-good", 1_000, 80.0, 80.0), _row("big-worse", 5_000, 79.0, 79.0), _row("big-better", 6_000, 82.0, 82.0),
            _row("no-suite", 500, None, 90.0)]
    assert [r["name"] for r in suite_report.pareto(rows, "suite_dev")] == ["small-good", "big-better"]
    assert [r["name"] for r in suite_report.pareto(rows, "classification_dev")] == ["no-suite"]


def test_markdown_marks_fewer_seeds_the_front_and_the_best():
    table = suite_report.markdown([_row("student", 2_000_000, 81.0, 86.0, seeds=1), _row("tfidf", 1_000_000, 80.0, 85.0, kind="baseline")])
    lines = {line.split(" |")[0].removeprefix("| "): line for line in table.splitlines() if line.startswith("| ") and "---" not in line}
    assert "student (1 seed)†‡" in lines
    assert "tfidf†‡" in lines
    assert "**86.0**" in lines["student (1 seed)†‡"] and "**" not in lines["tfidf†‡"].split("|", 3)[3]  # best per column in bold
    assert table.index("tfidf") < table.index("student (1 seed)")  # sorted by bytes


def _baseline_run(directory: Path, name: str, score: float) -> Path:
    directory.mkdir(parents=True)
    tasks = {task: {"selected_mean": {"validation": {"accuracy": score, "mcc": score, "spearman": score},
                                      "test": {"accuracy": score, "mcc": score, "spearman": score}}, "seeds": [0, 1, 2]}
             for task in TASKS}
    suite = {split: {"score": score, "missing": []} for split in ("validation", "test")}
    (directory / "results.json").write_text(json.dumps({"name": f"suite-{name}", "tasks": tasks, "suite": suite}), encoding="utf-8")
    (directory / "size_report.json").write_text(json.dumps({"baseline": name, "file_bytes": 1234,
                                                            "latency_ms_batch1": {"rotten-tomatoes": 0.5}}), encoding="utf-8")
    return directory


def test_main_keeps_earlier_rows_and_writes_table_json_and_plot(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    out = tmp_path / "report"
    out.mkdir()
    (out / "suite.json").write_text(json.dumps({"rows": [_row("earlier", 6_000_000, 79.0, 83.6)]}), encoding="utf-8")
    run = _baseline_run(tmp_path / "runs" / "suite-new", "new", 90.0)
    assert suite_report.main([str(run), "--keep", str(out / "suite.json"), "-o", str(out)]) == 0
    report = json.loads((out / "suite.json").read_text(encoding="utf-8"))
    assert [r["name"] for r in report["rows"]] == ["earlier", "new"]
    assert report["rows"][1]["suite_dev"] == 90.0 and report["rows"][1]["file_bytes"] == 1234
    assert report["pareto_suite"] == ["new"]
    assert (out / "suite-score-vs-bytes.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "| earlier |" in (out / "suite.md").read_text(encoding="utf-8")
    capsys.readouterr()
