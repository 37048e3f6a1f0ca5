"""Metric values against hand-computed answers, and the two GLUE-score rules."""

from __future__ import annotations

import math

import pytest

from eelbert_cli.core.data.tasks import get_task
from eelbert_cli.core.errors import EelbertError
from eelbert_cli.core.scoring.glue import BERT_PAPER_TASKS, glue_score
from eelbert_cli.core.scoring.metrics import (
    accuracy,
    average_ranks,
    compute_metrics,
    f1_binary,
    matthews_corrcoef,
    pearson,
    spearman,
    task_score,
)


def test_accuracy() -> None:
    assert accuracy([0, 1, 1, 0], [0, 1, 0, 0]) == 0.75


def test_f1_counts_class_one_as_positive() -> None:
    # tp=2 (rows 0, 4), fp=1 (row 1), fn=1 (row 3): F1 = 2*2 / (2*2 + 1 + 1)
    assert f1_binary([1, 1, 0, 0, 1], [1, 0, 0, 1, 1]) == pytest.approx(2 / 3)
    # the same predictions scored for class 0: tp=1, fp=1, fn=1
    assert f1_binary([1, 1, 0, 0, 1], [1, 0, 0, 1, 1], positive=0) == pytest.approx(0.5)


def test_f1_is_zero_when_the_positive_class_never_occurs() -> None:
    assert f1_binary([0, 0], [0, 0]) == 0.0


def test_mcc_on_a_known_confusion_matrix() -> None:
    # tp=6, tn=3, fp=1, fn=2: (tp*tn - fp*fn) / sqrt((tp+fp)(tp+fn)(tn+fp)(tn+fn)) = 16 / sqrt(7*8*4*5)
    labels = [1] * 6 + [0] * 3 + [0] * 1 + [1] * 2
    predictions = [1] * 6 + [0] * 3 + [1] * 1 + [0] * 2
    assert matthews_corrcoef(predictions, labels) == pytest.approx(16 / math.sqrt(1120))


def test_mcc_extremes() -> None:
    assert matthews_corrcoef([0, 1, 1, 0], [0, 1, 1, 0]) == pytest.approx(1.0)
    assert matthews_corrcoef([1, 0, 0, 1], [0, 1, 1, 0]) == pytest.approx(-1.0)
    assert matthews_corrcoef([1, 1, 1, 1], [0, 1, 1, 0]) == 0.0  # a constant predictor


def test_mcc_three_classes() -> None:
    # confusion (true rows, predicted columns) [[1,1,0],[0,2,0],[1,0,1]]: n=6, correct=4,
    # true counts (2,2,2), predicted counts (2,3,1): (4*6 - 12) / sqrt((36 - 14) * (36 - 12))
    assert matthews_corrcoef([0, 1, 1, 1, 2, 0], [0, 0, 1, 1, 2, 2]) == pytest.approx(12 / math.sqrt(22 * 24))


def test_pearson() -> None:
    # deviations x: -2,-1,0,1,2; y: -2,0,1,0,1 -> 6 / sqrt(10 * 6)
    assert pearson([1, 2, 3, 4, 5], [2, 4, 5, 4, 5]) == pytest.approx(6 / math.sqrt(60))


def test_pearson_of_a_constant_is_zero() -> None:
    assert pearson([3.0, 3.0, 3.0], [1.0, 2.0, 4.0]) == 0.0


def test_average_ranks_share_tied_positions() -> None:
    # sorted: 5 (1), 10 (2), 20 20 20 (positions 3, 4, 5 -> 4 each)
    assert average_ranks([10, 20, 20, 5, 20]).tolist() == [2.0, 4.0, 4.0, 1.0, 4.0]


def test_spearman_with_ties() -> None:
    # ranks y = 1, 2.5, 4.5, 2.5, 4.5; deviations -2,-.5,1.5,-.5,1.5 against -2..2 -> 7 / sqrt(10 * 9)
    assert spearman([1, 2, 3, 4, 5], [2, 4, 5, 4, 5]) == pytest.approx(7 / math.sqrt(90))


def test_spearman_ignores_monotone_transforms() -> None:
    assert spearman([1.0, 2.0, 3.0, 4.0], [1.0, 8.0, 27.0, 64.0]) == pytest.approx(1.0)


def test_metric_inputs_must_match() -> None:
    with pytest.raises(ValueError, match="equally long"):
        accuracy([0, 1], [0, 1, 1])
    with pytest.raises(ValueError):
        accuracy([], [])


def test_compute_metrics_uses_the_task_metrics_in_percent() -> None:
    mrpc = compute_metrics(get_task("mrpc"), [1, 1, 0, 0, 1], [1, 0, 0, 1, 1])
    assert mrpc == pytest.approx({"f1": 200 / 3, "accuracy": 60.0})
    assert compute_metrics(get_task("cola"), [1, 1, 0, 0], [1, 1, 0, 0]) == pytest.approx({"mcc": 100.0})
    stsb = compute_metrics(get_task("stsb"), [1, 2, 3, 4, 5], [2, 4, 5, 4, 5])
    assert stsb == pytest.approx({"pearson": 600 / math.sqrt(60), "spearman": 700 / math.sqrt(90)})


def test_task_score_averages_metrics_and_mnli_splits() -> None:
    mnli = {"validation_matched": {"accuracy": 80.0}, "validation_mismatched": {"accuracy": 83.0}}
    assert task_score(get_task("mnli"), mnli) == pytest.approx(81.5)
    assert task_score(get_task("stsb"), {"validation": {"pearson": 88.0, "spearman": 86.0}}) == pytest.approx(87.0)
    assert task_score(get_task("rotten-tomatoes"), {"test": {"accuracy": 70.0}}, splits=["test"]) == 70.0


def test_task_score_names_what_is_missing() -> None:
    with pytest.raises(EelbertError, match="'accuracy' on split 'validation_mismatched'"):
        task_score(get_task("mnli"), {"validation_matched": {"accuracy": 80.0}})


# BERT-base's published GLUE test results (Devlin et al. 2019, Table 1) where the paper gives them;
# MRPC/QQP accuracy, STS-B Pearson and WNLI are filled in so the leaderboard rule has all nine tasks.
BERT_BASE = {
    "mnli": {"validation_matched": {"accuracy": 84.6}, "validation_mismatched": {"accuracy": 83.4}},
    "qqp": {"validation": {"f1": 71.2, "accuracy": 89.2}},
    "qnli": {"validation": {"accuracy": 90.5}},
    "sst2": {"validation": {"accuracy": 93.5}},
    "cola": {"validation": {"mcc": 52.1}},
    "stsb": {"validation": {"pearson": 87.1, "spearman": 85.8}},
    "mrpc": {"validation": {"f1": 88.9, "accuracy": 84.8}},
    "rte": {"validation": {"accuracy": 66.4}},
    "wnli": {"validation": {"accuracy": 65.1}},
}


def test_bert_paper_rule_reproduces_bert_base() -> None:
    score = glue_score(BERT_BASE, rule="bert-paper")
    # (84.6 + 83.4 + 71.2 + 90.5 + 93.5 + 52.1 + 85.8 + 88.9 + 66.4) / 9 = 716.4 / 9
    assert score.score == pytest.approx(79.6)
    assert len(score.numbers) == 9 and "WNLI" not in score.numbers
    assert score.numbers["QQP F1"] == 71.2 and score.numbers["STS-B Spearman"] == 85.8
    assert score.complete and score.tasks == BERT_PAPER_TASKS and "wnli" not in score.tasks


def test_leaderboard_rule_averages_task_scores() -> None:
    score = glue_score(BERT_BASE, rule="leaderboard")
    # CoLA 52.1, SST-2 93.5, MRPC (88.9+84.8)/2, STS-B (87.1+85.8)/2, QQP (71.2+89.2)/2,
    # MNLI (84.6+83.4)/2, QNLI 90.5, RTE 66.4, WNLI 65.1: 705.1 / 9
    assert score.score == pytest.approx(705.1 / 9)
    assert score.numbers["MRPC"] == pytest.approx(86.85) and score.numbers["MNLI"] == pytest.approx(84.0)
    assert score.complete and len(score.tasks) == 9
    assert "leaderboard rule, percent): 78.3" in score.describe()


def test_subset_reports_the_mean_over_what_ran() -> None:
    results = {"CoLA": {"validation": {"mcc": 50.0}}, "SST-2": {"validation": {"accuracy": 90.0}}}
    score = glue_score(results)
    assert score.score == pytest.approx(70.0)
    assert score.tasks == ("cola", "sst2") and not score.complete
    assert set(score.missing) == {"mrpc", "stsb", "qqp", "mnli", "qnli", "rte", "wnli"}
    assert "subset: cola, sst2" in score.describe()


def test_bert_paper_subset_and_non_glue_tasks() -> None:
    results = {"mnli": BERT_BASE["mnli"], "wnli": BERT_BASE["wnli"], "rotten-tomatoes": {"test": {"accuracy": 99.0}}}
    score = glue_score(results, rule="bert-paper")
    assert score.score == pytest.approx(84.0)
    assert score.tasks == ("mnli",) and "wnli" not in score.missing


def test_glue_score_errors() -> None:
    with pytest.raises(EelbertError, match="no GLUE task results"):
        glue_score({"wnli": BERT_BASE["wnli"]}, rule="bert-paper")
    with pytest.raises(EelbertError, match="unknown GLUE rule"):
        glue_score(BERT_BASE, rule="average")  # type: ignore[arg-type]
