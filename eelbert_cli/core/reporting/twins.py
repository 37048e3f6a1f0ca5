"""Pairing runs with their BERT twin: the run of the preset's learned-table twin, pretrained alike.

"% of twin" — a run's average task score over its twin's — is the paper's accuracy claim in one
number; pairing runs trained differently would make it meaningless, so the rule is strict and
every row left without a twin says why.
"""

from __future__ import annotations

import statistics

from eelbert_cli.core.errors import EelbertError
from eelbert_cli.core.reporting.runs import RunRow


def _is_twin_candidate(row: RunRow, twin_name: str) -> bool:
    """A run *is* the preset ``twin_name``: that preset, not reshaped, with a learned table."""
    return row.preset == twin_name and not row.shape_overridden and row.hash_kind in (None, "learned")


def _percent(row: RunRow, twin: RunRow) -> tuple[float | None, str | None]:
    """Average over the tasks both runs have, so a missing task does not move the ratio."""
    mine, theirs = row.task_scores, twin.task_scores
    common = [t for t in mine if t in theirs]
    if not common:
        return None, f"{row.label}: no % of twin: it shares no scored task with its twin {twin.label}"
    baseline = statistics.fmean(theirs[t] for t in common)
    if baseline <= 0:
        return None, f"{row.label}: no % of twin: twin {twin.label} averages {baseline:.1f} on the shared tasks"
    note = None
    if set(common) != set(mine) or set(common) != set(theirs):
        note = f"{row.label}: % of twin {twin.label} over the {len(common)} task(s) both have: {', '.join(common)}"
    return statistics.fmean(mine[t] for t in common) / baseline * 100, note


def match_twins(rows: list[RunRow], baselines: dict[str, str] | None = None) -> list[str]:
    """Set each row's twin and % of its score; returns footnotes for the rows left without one.

    The twin is the run whose preset is this row's ``bert_twin`` (size_report.json) with the same
    pretraining treatment: both unpretrained, or both pretrained with the same ``pretrain.budget``.
    A run that is its own twin (bert-tiny) is matched with itself: 100%. ``baselines`` (label ->
    baseline label) overrides the rule for the rows it names.
    """
    by_label = {row.label: row for row in rows}
    baselines = dict(baselines or {})
    unknown = [name for pair in baselines.items() for name in pair if name not in by_label]
    if unknown:
        raise EelbertError(f"baseline mapping names unknown run(s) {', '.join(sorted(set(unknown)))}; runs given: {', '.join(by_label)}")
    notes = []
    for row in rows:
        row.twin_label = row.percent_of_twin = row.twin_note = None
        if row.label in baselines:
            twin = by_label[baselines[row.label]]
            note = None
        else:
            twin, note = _find_twin(row, rows)
        found: list[str | None] = [note]
        if twin is not None:
            row.twin_label = twin.label
            row.percent_of_twin, partial = _percent(row, twin) if row.task_scores else (None, None)
            found.append(partial)
        for text in filter(None, found):
            row.twin_note = text if row.twin_note is None else f"{row.twin_note}; {text}"
            notes.append(text)
    return notes


def _find_twin(row: RunRow, rows: list[RunRow]) -> tuple[RunRow | None, str | None]:
    if not row.tasks:
        return None, None  # nothing to compare; the missing results are noted elsewhere
    if row.bert_twin is None:
        return None, f"{row.label}: no % of twin: its BERT twin is unknown (no size_report.json; run `eelbert size-report` on its spec)"
    if row.treatment is None:
        return None, f"{row.label}: no % of twin: its pretraining budget is unknown, so no run is comparable"
    same_model = [r for r in rows if _is_twin_candidate(r, row.bert_twin)]
    same = [r for r in same_model if r.treatment == row.treatment]
    if any(r is row for r in same):
        return row, None
    if not same:
        if not same_model:
            why = f"no {row.bert_twin} run among the runs given"
        else:
            given = ", ".join(r.label for r in same_model)
            why = f"the {row.bert_twin} run(s) given ({given}) were not trained the same way (this run: {row.budget})"
        return None, f"{row.label}: no % of twin: {why}; add one or map a baseline explicitly"
    note = None
    if len(same) > 1:
        note = f"{row.label}: several {row.bert_twin} runs qualify as twin; used the first given, {same[0].label}"
    return same[0], note
