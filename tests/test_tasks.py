"""Task registry and every data source, on small hand-written files in the official formats."""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from eelbert_cli.core.data.tasks import (
    GLUE_TASKS,
    TASK_NAMES,
    TASKS,
    get_task,
    load_custom_task,
    load_glue_dir,
    load_glue_from_hub,
    load_rotten_tomatoes,
    load_task,
    load_trec,
    parse_custom_task,
    task_data_from_datasets,
    write_submission,
)
from eelbert_cli.core.data.tasks.builtin import ROTTEN_TOMATOES_COUNTS, TREC_COUNTS, _trec_rows, stratified_split
from eelbert_cli.core.data.tasks.registry import GLUE_HUB_DATASET
from eelbert_cli.core.errors import EelbertError

GLUE_DATA = Path(__file__).parent / "fixtures" / "glue_data"


# ---------------------------------------------------------------- registry


def test_registry_names() -> None:
    assert TASK_NAMES == (*GLUE_TASKS, "rotten-tomatoes", "trec", "sms-spam", "vader-tweets", "vader-amazon")
    assert GLUE_TASKS == ("cola", "sst2", "mrpc", "stsb", "qqp", "mnli", "qnli", "rte", "wnli")


@pytest.mark.parametrize(
    ("name", "metrics", "labels", "submission"),
    [
        ("cola", ("mcc",), ("0", "1"), {"test": "CoLA.tsv"}),
        ("sst2", ("accuracy",), ("0", "1"), {"test": "SST-2.tsv"}),
        ("mrpc", ("f1", "accuracy"), ("0", "1"), {"test": "MRPC.tsv"}),
        ("stsb", ("pearson", "spearman"), (), {"test": "STS-B.tsv"}),
        ("qqp", ("f1", "accuracy"), ("0", "1"), {"test": "QQP.tsv"}),
        ("mnli", ("accuracy",), ("entailment", "neutral", "contradiction"),
         {"test_matched": "MNLI-m.tsv", "test_mismatched": "MNLI-mm.tsv"}),
        ("qnli", ("accuracy",), ("entailment", "not_entailment"), {"test": "QNLI.tsv"}),
        ("rte", ("accuracy",), ("entailment", "not_entailment"), {"test": "RTE.tsv"}),
        ("wnli", ("accuracy",), ("0", "1"), {"test": "WNLI.tsv"}),
    ],
)
def test_glue_task_descriptions(name: str, metrics: tuple[str, ...], labels: tuple[str, ...], submission: dict[str, str]) -> None:
    task = TASKS[name]
    assert task.metrics == metrics and task.labels == labels
    assert task.type == ("regression" if name == "stsb" else "classification")
    assert dict(task.submission_files) == submission
    assert task.num_labels == (len(labels) or 1)


def test_mnli_has_two_validation_splits() -> None:
    assert get_task("mnli").eval_splits == ("validation_matched", "validation_mismatched")
    assert get_task("mnli").splits == ("train", "validation_matched", "validation_mismatched", "test_matched", "test_mismatched")


def test_official_spellings_resolve() -> None:
    assert get_task("SST-2").name == "sst2" and get_task("STS-B").name == "stsb" and get_task("Rotten_Tomatoes").name == "rotten-tomatoes"


def test_unknown_task_lists_the_valid_ones() -> None:
    with pytest.raises(EelbertError, match=r"unknown task 'sst-5'; valid tasks: cola, sst2, .*rotten-tomatoes"):
        get_task("sst-5")


# ---------------------------------------------------------------- glue_data/ layout


@pytest.mark.parametrize(
    ("name", "sizes", "first_train"),
    [
        ("cola", {"train": 5, "validation": 3, "test": 3},
         ("Our friends won't buy this analysis, let alone the next one we propose.", None, 1)),
        ("sst2", {"train": 5, "validation": 2, "test": 2}, ("hide new secretions from the parental units ", None, 0)),
        ("mrpc", {"train": 4, "validation": 2, "test": 2},
         ('Amrozi accused his brother , whom he called " the witness " , of deliberately distorting his evidence .',
          'Referring to him as only " the witness " , Amrozi accused his brother of deliberately distorting his evidence .', 1)),
        ("stsb", {"train": 4, "validation": 3, "test": 2}, ("A plane is taking off.", "An air plane is taking off.", 5.0)),
        ("qqp", {"train": 4, "validation": 2, "test": 3},
         ("How is the life of a math student? Could you describe your own experiences?",
          "Which level of prepration is enough for the exam jlpt5?", 0)),
        ("mnli", {"train": 7, "validation_matched": 3, "validation_mismatched": 2, "test_matched": 2, "test_mismatched": 2},
         ("Conceptually cream skimming has two basic dimensions - product and geography.",
          "Product and geography are what make cream skimming work. ", 1)),
        ("qnli", {"train": 3, "validation": 2, "test": 1},
         ("When did the third Digimon series begin?",
          "Unlike the two seasons before it and most of the seasons that followed, Digimon Tamers takes a darker and more realistic "
          "approach to its story.", 1)),
        ("rte", {"train": 3, "validation": 2, "test": 2},
         ("No Weapons of Mass Destruction Found in Iraq Yet.", "Weapons of Mass Destruction Found in Iraq.", 1)),
        ("wnli", {"train": 4, "validation": 2, "test": 1},
         ("I stuck a pin through a carrot. When I pulled the pin out, it had a hole.", "The carrot had a hole.", 1)),
    ],
)
def test_glue_data_layout(name: str, sizes: dict[str, int], first_train: tuple[Any, ...]) -> None:
    data = load_task(name, GLUE_DATA)
    assert {split: len(data.splits[split]) for split in data.splits} == sizes
    assert next(data.train.examples()) == first_train
    assert all(split.labels is None for split in data.test)
    assert data.source.startswith("glue_data")


def test_cola_train_has_no_header_and_quotes_are_plain_characters() -> None:
    data = load_glue_dir("CoLA", GLUE_DATA)
    assert data.train.labels == (1, 1, 0, 1, 0)
    assert data.train.text_a[-1] == 'Day by day the facts are getting murkier "than ever.'
    assert data.test[0].text_a[0] == "Bill whistled past the house."  # test.tsv's header was read as one


def test_sst2_unbalanced_quote_does_not_swallow_lines() -> None:
    train = load_glue_dir("sst2", GLUE_DATA).train
    assert train.text_a[2].startswith('" that loves its characters') and train.labels == (0, 0, 1, 0, 1)


def test_stsb_scores_are_floats() -> None:
    data = load_glue_dir("stsb", GLUE_DATA)
    assert data.train.labels == (5.0, 3.8, 3.8, 2.6) and data.evaluation[0].labels == (5.0, 4.75, 0.5)


def test_qqp_skips_and_counts_malformed_lines() -> None:
    data = load_glue_dir("qqp", GLUE_DATA)
    assert data.train.skipped == 1 and len(data.train) == 4
    assert "Why are African-Americans so beautiful?" not in data.train.text_a
    assert "train 4 (1 malformed line(s) skipped)" in data.summary()
    assert data.test[0].index == (10, 11, 12)  # the official ids, not row numbers


def test_mnli_matched_and_mismatched() -> None:
    data = load_glue_dir("mnli", GLUE_DATA)
    matched, mismatched = data.evaluation
    labels = data.task.labels
    assert (matched.name, mismatched.name) == ("validation_matched", "validation_mismatched")
    assert [labels[i] for i in matched.labels] == ["neutral", "contradiction", "entailment"]
    assert [labels[i] for i in mismatched.labels] == ["contradiction", "contradiction"]
    assert mismatched.text_a[0].startswith("Your contribution helped")
    assert [split.name for split in data.test] == ["test_matched", "test_mismatched"]
    assert data.test[1].index == (100, 101)


def test_task_folder_itself_and_optional_test(tmp_path: Path) -> None:
    assert len(load_glue_dir("rte", GLUE_DATA / "RTE").train) == 3
    shutil.copytree(GLUE_DATA / "RTE", tmp_path / "RTE")
    (tmp_path / "RTE" / "test.tsv").unlink()
    data = load_glue_dir("rte", tmp_path)
    assert list(data.splits) == ["train", "validation"] and data.test == ()


@pytest.fixture
def rte_copy(tmp_path: Path) -> Path:
    folder = tmp_path / "RTE"
    shutil.copytree(GLUE_DATA / "RTE", folder)
    return folder


def test_glue_missing_file(rte_copy: Path) -> None:
    (rte_copy / "dev.tsv").unlink()
    with pytest.raises(EelbertError, match=r"RTE/dev.tsv: file not found; the glue_data layout of RTE has train.tsv, dev.tsv, test.tsv"):
        load_glue_dir("rte", rte_copy.parent)


def test_glue_missing_column(rte_copy: Path) -> None:
    (rte_copy / "train.tsv").write_text("index\tsentence1\tsentence2\tgold\n0\ta\tb\tentailment\n", encoding="utf-8")
    with pytest.raises(EelbertError, match=r"RTE/train.tsv: no column 'label'; columns found: index, sentence1, sentence2, gold"):
        load_glue_dir("rte", rte_copy)


def test_glue_unknown_label(rte_copy: Path) -> None:
    (rte_copy / "dev.tsv").write_text("index\tsentence1\tsentence2\tlabel\n0\ta\tb\tmaybe\n", encoding="utf-8")
    with pytest.raises(EelbertError,
                       match=r"dev.tsv, line 2: label 'maybe' is not among the labels of task rte \(entailment, not_entailment\)"):
        load_glue_dir("rte", rte_copy)


def test_glue_empty_split(rte_copy: Path) -> None:
    (rte_copy / "dev.tsv").write_text("index\tsentence1\tsentence2\tlabel\n", encoding="utf-8")
    with pytest.raises(EelbertError, match=r"dev.tsv: split 'validation' of task 'rte' has no examples"):
        load_glue_dir("rte", rte_copy)


def test_glue_undecodable_bytes(rte_copy: Path) -> None:
    (rte_copy / "train.tsv").write_bytes(b"index\tsentence1\tsentence2\tlabel\n0\tcaf\xe9\tb\tentailment\n")
    with pytest.raises(EelbertError, match=r"RTE/train.tsv is not UTF-8 text: undecodable byte at line 2"):
        load_glue_dir("rte", rte_copy)


def test_glue_test_index_must_be_an_integer(rte_copy: Path) -> None:
    (rte_copy / "test.tsv").write_text("index\tsentence1\tsentence2\nx7\ta\tb\n", encoding="utf-8")
    with pytest.raises(EelbertError, match=r"test.tsv, line 2: index 'x7'"):
        load_glue_dir("rte", rte_copy)


def test_rotten_tomatoes_is_not_a_glue_directory_task() -> None:
    with pytest.raises(EelbertError, match="not a GLUE task"):
        load_glue_dir("rotten-tomatoes", GLUE_DATA)
    with pytest.raises(EelbertError, match="takes no data directory"):
        load_task("rotten-tomatoes", GLUE_DATA)


# ---------------------------------------------------------------- hub column mapping and save_to_disk


def _hub_mnli() -> dict[str, Any]:
    """In-memory splits with nyu-mll/glue's mnli columns (test labels are -1 on the hub)."""
    from datasets import Dataset

    def split(premises: list[str], labels: list[int], start: int = 0) -> Dataset:
        count = len(premises)
        return Dataset.from_dict({"premise": premises, "hypothesis": [p + "?" for p in premises], "label": labels,
                                  "idx": list(range(start, start + count))})

    return {
        "train": split(["a", "b", "c"], [0, 1, 2]),
        "validation_matched": split(["d", "e"], [2, 0]),
        "validation_mismatched": split(["f"], [1]),
        "test_matched": split(["g", "h"], [-1, -1], start=40),
        "test_mismatched": split(["i"], [-1], start=7),
    }


def test_hub_column_mapping() -> None:
    data = task_data_from_datasets(get_task("mnli"), _hub_mnli(), "memory")
    assert list(data.train.examples()) == [("a", "a?", 0), ("b", "b?", 1), ("c", "c?", 2)]
    assert [split.labels for split in data.evaluation] == [(2, 0), (1,)]
    assert data.splits["test_matched"].labels is None and data.splits["test_matched"].index == (40, 41)


def test_hub_regression_labels() -> None:
    from datasets import Dataset

    stsb = {"sentence1": ["x", "y"], "sentence2": ["z", "w"], "idx": [0, 1]}
    splits = {
        "train": Dataset.from_dict({**stsb, "label": [4.5, 1.25]}),
        "validation": Dataset.from_dict({**stsb, "label": [0.0, 5.0]}),
        "test": Dataset.from_dict({**stsb, "label": [-1.0, -1.0]}),
    }
    data = task_data_from_datasets(get_task("stsb"), splits, "memory")
    assert data.train.labels == (4.5, 1.25) and data.test[0].labels is None


def test_hub_missing_column_and_split() -> None:
    from datasets import Dataset

    splits = _hub_mnli()
    splits["validation_mismatched"] = Dataset.from_dict({"sentence1": ["f"], "hypothesis": ["f?"], "label": [1]})
    with pytest.raises(EelbertError,
                       match=r"split 'validation_mismatched': no column 'premise'; columns found: sentence1, hypothesis, label"):
        task_data_from_datasets(get_task("mnli"), splits, "memory")
    del splits["validation_mismatched"]
    with pytest.raises(EelbertError, match=r"needs split 'validation_mismatched'; splits found: train, validation_matched, test_matched"):
        task_data_from_datasets(get_task("mnli"), splits, "memory")


def test_hub_label_out_of_range_and_empty_split() -> None:
    from datasets import Dataset

    splits = _hub_mnli()
    splits["train"] = Dataset.from_dict({"premise": ["a"], "hypothesis": ["b"], "label": [3]})
    with pytest.raises(EelbertError, match=r"split 'train', row 0: label 3 is not a class id of task 'mnli' \(0..2\)"):
        task_data_from_datasets(get_task("mnli"), splits, "memory")
    splits["train"] = Dataset.from_dict({"premise": ["a"], "hypothesis": ["b"], "label": [-1]})  # hidden only in test splits
    with pytest.raises(EelbertError, match=r"label -1 is not a class id"):
        task_data_from_datasets(get_task("mnli"), splits, "memory")
    splits["train"] = Dataset.from_dict({"premise": [], "hypothesis": [], "label": []})
    with pytest.raises(EelbertError, match="split 'train': split of task 'mnli' has no examples"):
        task_data_from_datasets(get_task("mnli"), splits, "memory")


def test_load_glue_from_hub_asks_for_the_task_config(monkeypatch: pytest.MonkeyPatch) -> None:
    import datasets

    calls = []

    def fake_load_dataset(path: str, name: str) -> dict[str, Any]:
        calls.append((path, name))
        return _hub_mnli()

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    data = load_task("MNLI")
    assert calls == [(GLUE_HUB_DATASET, "mnli")] and data.source == "nyu-mll/glue/mnli"


def test_load_glue_from_hub_failure_suggests_local_sources(monkeypatch: pytest.MonkeyPatch) -> None:
    import datasets

    def offline(path: str, name: str) -> None:
        raise ConnectionError("no route to huggingface.co")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    with pytest.raises(EelbertError,
                       match=r"could not load nyu-mll/glue config 'rte'.*ConnectionError.*glue_data/ directory or a save_to_disk"):
        load_glue_from_hub("rte")


def test_save_to_disk_directory(tmp_path: Path) -> None:
    from datasets import ClassLabel, Dataset, DatasetDict, Features, Value

    features = Features({"sentence1": Value("string"), "sentence2": Value("string"),
                         "label": ClassLabel(names=["entailment", "not_entailment"]), "idx": Value("int32")})

    def split(rows: list[tuple[str, str, int]]) -> Dataset:
        columns = {"sentence1": [r[0] for r in rows], "sentence2": [r[1] for r in rows], "label": [r[2] for r in rows],
                   "idx": list(range(len(rows)))}
        return Dataset.from_dict(columns, features=features)

    splits = {"train": split([("p", "q", 1), ("r", "s", 0)]), "validation": split([("t", "u", 0)]), "test": split([("v", "w", -1)])}
    DatasetDict(splits).save_to_disk(str(tmp_path / "rte"))
    data = load_task("rte", tmp_path / "rte")
    assert data.source.startswith("save_to_disk")
    assert list(data.train.examples()) == [("p", "q", 1), ("r", "s", 0)]
    assert data.evaluation[0].labels == (0,) and data.test[0].labels is None


def test_save_to_disk_needs_a_dataset_dict(tmp_path: Path) -> None:
    from eelbert_cli.core.data.tasks import load_glue_saved

    with pytest.raises(EelbertError, match="not a save_to_disk DatasetDict directory"):
        load_glue_saved("rte", tmp_path)


# ---------------------------------------------------------------- custom tasks


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def _spec(**overrides: Any) -> dict[str, Any]:
    spec = {"name": "reviews", "train": "train.csv", "validation": "dev.csv", "text_columns": ["text"], "label_column": "label",
            "type": "classification", "metrics": ["accuracy"]}
    return spec | overrides


def test_custom_csv_pairs_with_string_labels(tmp_path: Path) -> None:
    _write(tmp_path / "train.csv", 'a,b,label\n"hello, world",x,pos\ny,z,neg\nq,"say ""hi""",pos\n')
    _write(tmp_path / "dev.csv", "a,b,label\r\nm,n,neg\r\n")  # Windows line ends
    _write(tmp_path / "test.csv", "a,b\nk,l\no,p\n")
    data = load_custom_task(_spec(text_columns=["a", "b"], test="test.csv", metrics=["accuracy", "f1"]), tmp_path)
    assert data.task.labels == ("neg", "pos")  # sorted, so ids do not depend on row order
    assert list(data.train.examples()) == [("hello, world", "x", 1), ("y", "z", 0), ("q", 'say "hi"', 1)]
    test = data.test[0]
    assert data.evaluation[0].text_b == ("n",) and data.evaluation[0].labels == (0,)
    assert test.labels is None and test.index == (0, 1) and data.task.submission_file("test") == "reviews.tsv"


def test_custom_tsv_numeric_labels_sort_as_numbers(tmp_path: Path) -> None:
    _write(tmp_path / "train.tsv", 'text\tlabel\n"unbalanced\t10\nb\t2\nc\t9\n')
    _write(tmp_path / "dev.tsv", "text\tlabel\nd\t9\n")
    data = load_custom_task(_spec(train="train.tsv", validation="dev.tsv"), tmp_path)
    assert data.task.labels == ("2", "9", "10") and data.train.labels == (2, 0, 1)
    assert data.train.text_a[0] == '"unbalanced' and data.evaluation[0].labels == (1,)


def test_custom_jsonl_regression_with_labelled_test(tmp_path: Path) -> None:
    _write(tmp_path / "train.jsonl", '{"s": "a", "t": "b", "y": 1}\n\n{"s": "c", "t": "d", "y": "2.5"}\n')
    _write(tmp_path / "dev.jsonl", '{"s": "e", "t": "f", "y": 0.5}\n')
    _write(tmp_path / "test.jsonl", '{"s": "g", "t": "h", "y": 4}\n')
    spec = _spec(train="train.jsonl", validation="dev.jsonl", test="test.jsonl", text_columns=["s", "t"], label_column="y",
                 type="regression", metrics=["pearson", "spearman"])
    data = load_custom_task(spec, tmp_path)
    assert data.train.labels == (1.0, 2.5) and data.test[0].labels == (4.0,)
    assert data.task.test_labelled and data.task.submission_files == () and data.task.num_labels == 1


def test_custom_jsonl_integer_labels_are_classes(tmp_path: Path) -> None:
    more = "".join('{"text": "more", "label": 0}\n' for _ in range(20))  # so one bad line stays under the 5% limit
    _write(tmp_path / "train.jsonl", '{"text": "a\u2028z", "label": 1}\r\n{"text": "b", "label": 0}\nnot json\n' + more)
    _write(tmp_path / "dev.jsonl", '{"text": "c", "label": "1"}\n')
    data = load_custom_task(_spec(train="train.jsonl", validation="dev.jsonl"), tmp_path)
    assert data.task.labels == ("0", "1") and data.train.labels[:2] == (1, 0) and data.train.skipped == 1
    assert data.train.text_a[0] == "a\u2028z" and len(data.train) == 22
    assert data.evaluation[0].labels == (1,)


@pytest.mark.parametrize("name, content, line", [
    ("train.jsonl", '{"text": "a", "label": 1}\nnot json\n{"text": "b", "label": 0}\n', 2),
    ("train.csv", "text,label\na,1\nb,0,extra\nc,0\n", 3),
])
def test_custom_files_with_many_malformed_lines_are_refused_not_shrunk(tmp_path: Path, name: str, content: str, line: int) -> None:
    _write(tmp_path / name, content)
    _write(tmp_path / "dev.csv", "text,label\nc,1\n")
    with pytest.raises(EelbertError, match=rf"1 of 3 lines are malformed, the first at line {line} .*more than 5%"):
        load_custom_task(_spec(train=name, validation="dev.csv"), tmp_path)


def test_custom_missing_column_names_file_and_columns(tmp_path: Path) -> None:
    _write(tmp_path / "train.csv", "text,sentiment\na,pos\n")
    _write(tmp_path / "dev.csv", "text,label\nb,pos\n")
    with pytest.raises(EelbertError, match=r"train.csv: no column 'label'; columns found: text, sentiment"):
        load_custom_task(_spec(), tmp_path)


def test_custom_jsonl_record_missing_a_column(tmp_path: Path) -> None:
    _write(tmp_path / "train.jsonl", '{"text": "a", "label": 1}\n{"text": "b"}\n')
    _write(tmp_path / "dev.jsonl", '{"text": "c", "label": 1}\n')
    with pytest.raises(EelbertError, match=r"train.jsonl, line 2: no column 'label'"):
        load_custom_task(_spec(train="train.jsonl", validation="dev.jsonl"), tmp_path)


def test_custom_validation_label_never_seen_in_training(tmp_path: Path) -> None:
    _write(tmp_path / "train.csv", "text,label\na,pos\nb,neg\n")
    _write(tmp_path / "dev.csv", "text,label\nc,pos\nd,neutral\n")
    with pytest.raises(EelbertError,
                       match=r"dev.csv, line 3: label 'neutral' is not among the labels of the training file .*train.csv \(neg, pos\)"):
        load_custom_task(_spec(), tmp_path)


def test_custom_empty_split(tmp_path: Path) -> None:
    _write(tmp_path / "train.csv", "text,label\na,pos\n")
    _write(tmp_path / "dev.csv", "text,label\n")
    with pytest.raises(EelbertError, match=r"dev.csv: split 'validation' of task 'reviews' has no examples"):
        load_custom_task(_spec(), tmp_path)


def test_custom_undecodable_and_missing_files(tmp_path: Path) -> None:
    (tmp_path / "train.csv").write_bytes(b"text,label\n\xff\xfe,pos\n")
    _write(tmp_path / "dev.csv", "text,label\nb,pos\n")
    with pytest.raises(EelbertError, match=r"train.csv is not UTF-8 text"):
        load_custom_task(_spec(), tmp_path)
    with pytest.raises(EelbertError, match=r"nowhere.csv: file not found"):
        load_custom_task(_spec(train="nowhere.csv"), tmp_path)


def test_custom_bad_labels_and_file_types(tmp_path: Path) -> None:
    _write(tmp_path / "train.csv", "text,label\na,pos\nb,neg\nc,meh\n")
    _write(tmp_path / "dev.csv", "text,label\nb,pos\n")
    with pytest.raises(EelbertError, match=r"metric f1 needs exactly two labels .* found 3: meh, neg, pos"):
        load_custom_task(_spec(metrics=["f1"]), tmp_path)
    _write(tmp_path / "train.txt", "a\n")
    with pytest.raises(EelbertError, match=r"unsupported file type '.txt'"):
        load_custom_task(_spec(train="train.txt"), tmp_path)
    _write(tmp_path / "scores.csv", "text,label\na,high\n")
    with pytest.raises(EelbertError, match=r"scores.csv, line 2: regression label 'high'"):
        load_custom_task(_spec(train="scores.csv", type="regression", metrics=["pearson"]), tmp_path)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"metrics": ["pearson"]}, "metrics pearson do not apply to classification"),
        ({"text_columns": ["a", "b", "c"]}, "text_columns: Tuple should have at most 2 items"),
        ({"name": "SST-2"}, "'SST-2' is a built-in task"),
        ({"name": "my task"}, "use only letters"),
        ({"labels": ["a"]}, "labels: Extra inputs are not permitted"),
        ({"type": "ranking"}, "type: Input should be 'classification' or 'regression'"),
    ],
)
def test_custom_spec_validation(override: dict[str, Any], message: str) -> None:
    with pytest.raises(EelbertError, match="invalid custom task") as error:
        parse_custom_task(_spec(**override))
    assert message in str(error.value)


# ---------------------------------------------------------------- submission files


def test_submission_mnli_uses_label_strings_and_official_ids(tmp_path: Path) -> None:
    data = load_glue_dir("mnli", GLUE_DATA)
    matched, mismatched = data.test
    path_m = write_submission(data.task, matched, [0, 2], tmp_path)
    path_mm = write_submission(data.task, mismatched, [1, 1], tmp_path)
    assert path_m.name == "MNLI-m.tsv" and path_m.read_text() == "index\tprediction\n0\tentailment\n1\tcontradiction\n"
    assert path_mm.name == "MNLI-mm.tsv" and path_mm.read_text() == "index\tprediction\n100\tneutral\n101\tneutral\n"


def test_submission_numbers_for_cola_and_stsb(tmp_path: Path) -> None:
    cola = load_glue_dir("cola", GLUE_DATA)
    assert write_submission(cola.task, cola.test[0], [1, 0, 1], tmp_path).read_text() == "index\tprediction\n0\t1\n1\t0\n2\t1\n"
    stsb = load_glue_dir("stsb", GLUE_DATA)
    path = write_submission(stsb.task, stsb.test[0], [3.14159, 0.5], tmp_path)
    assert path.name == "STS-B.tsv" and path.read_text() == "index\tprediction\n0\t3.142\n1\t0.500\n"


def test_submission_errors(tmp_path: Path) -> None:
    rte = load_glue_dir("rte", GLUE_DATA)
    with pytest.raises(EelbertError, match="1 predictions for the 2 examples of rte test"):
        write_submission(rte.task, rte.test[0], [0], tmp_path)
    with pytest.raises(EelbertError, match="no submission file for split 'validation'"):
        write_submission(rte.task, rte.evaluation[0], [0, 1], tmp_path)


# ---------------------------------------------------------------- rotten-tomatoes


def test_stratified_split_is_stratified_and_deterministic() -> None:
    labels = [0, 1, 1, 1] * 25 + [1] * 10  # 25 of class 0, 85 of class 1
    splits = stratified_split(labels, seed=3)
    counts = {name: Counter(labels[row] for row in rows) for name, rows in splits.items()}
    assert counts == {"train": {0: 20, 1: 68}, "validation": {0: 2, 1: 8}, "test": {0: 3, 1: 9}}
    assert sorted(row for rows in splits.values() for row in rows) == list(range(len(labels)))
    assert stratified_split(labels, seed=3) == splits
    assert stratified_split(labels, seed=4)["train"] != splits["train"]
    assert splits["train"] != sorted(splits["train"])  # not in file order


def test_stratified_split_mixes_classes_within_each_split() -> None:
    # ordered by the key that assigned rows to splits, a split would open with a block of one class
    labels = [0, 1] * 1000
    for rows in stratified_split(labels, seed=0).values():
        assert {labels[row] for row in rows[:16]} == {0, 1}


@pytest.mark.network
def test_rotten_tomatoes_split() -> None:
    data = load_rotten_tomatoes()
    counts = {name: (split.labels.count(0), split.labels.count(1)) for name, split in data.splits.items()}
    assert counts == ROTTEN_TOMATOES_COUNTS
    # fresh 7,403 and rotten 5,405: 80/10/10 of each class, rounded down, the rest in test
    assert counts == {"train": (4324, 5922), "validation": (540, 740), "test": (541, 741)}
    assert sum(map(sum, counts.values())) == 12808 and data.test[0].labels is not None
    assert not set(data.train.index) & set(data.test[0].index)
    assert load_rotten_tomatoes().splits == data.splits
    assert len(set(data.evaluation[0].labels[:20])) == 2  # shuffled: both classes early on, not class blocks


def test_trec_split_reads_only_train_5500() -> None:
    data = load_trec()
    counts = {name: tuple(split.labels.count(label) for label in range(6)) for name, split in data.splits.items()}
    assert counts == TREC_COUNTS
    # ABBR 86, DESC 1,162, ENTY 1,250, HUM 1,223, LOC 835, NUM 896: train_5500's coarse classes
    assert tuple(map(sum, zip(*counts.values(), strict=True))) == (86, 1162, 1250, 1223, 835, 896)
    assert data.task.labels == ("ABBR", "DESC", "ENTY", "HUM", "LOC", "NUM") and data.test[0].labels is not None
    assert not set(data.train.index) & set(data.test[0].index) and max(data.train.index) < 5452
    by_line = {row: text for split in data.splits.values() for row, text in zip(split.index, split.text_a, strict=True)}
    assert len(by_line) == 5452 and by_line[0] == "How did serfdom develop in and then leave Russia ?"
    assert load_trec().splits == data.splits


def test_trec_line_format_errors_name_the_line(tmp_path: Path) -> None:
    good = "".join(f"NUM:date When was it {i} ?\n" for i in range(5452))
    (tmp_path / "ok.txt").write_text("HUM:ind Who ?\n" * 3 + good, encoding="utf-8")
    texts, labels, rows = _trec_rows(tmp_path / "ok.txt")
    assert len(texts) == 5452 and texts[0] == "When was it 0 ?" and set(labels) == {5} and rows[-1] == 5451
    (tmp_path / "bad.txt").write_text(good.replace("NUM:date When was it 7 ?", "WHAT:x When was it 7 ?"), encoding="utf-8")
    with pytest.raises(EelbertError, match=r"line 8 of train_5500 is not 'COARSE:fine question'"):
        _trec_rows(tmp_path / "bad.txt")
    (tmp_path / "latin1.txt").write_bytes(good.encode() + "caf\xe9".encode("latin-1"))
    with pytest.raises(EelbertError, match="is not UTF-8"):
        _trec_rows(tmp_path / "latin1.txt")


def test_trec_takes_no_data_directory() -> None:
    with pytest.raises(EelbertError, match="trec is read from a pinned wheel"):
        load_task("trec", GLUE_DATA)
