"""Lost work (issue 22): `export -o` replaces only an empty directory or an earlier export, never a
checkpoint, a run directory or the user's files; a directory is replaced by renames, so an
interruption at any moment leaves the old or the new export complete; predict/evaluate outputs are
never the input, a link, a device or a model's own file; `report --keep-records` checks every
record before it copies one. Failures end in exit code 2, one `error:` line, no traceback, and every
file that existed before (in the directory pointed at, too) byte-identical."""

from __future__ import annotations

import errno
import fcntl
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from eelbert_cli.cli import app
from eelbert_cli.core import files
from tests.test_bad_inputs import fails_cleanly, snapshot, write

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

FIXTURES = Path(__file__).parent / "fixtures"
REPO = Path(__file__).resolve().parent.parent
runner = CliRunner()


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("EELBERT_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="module")
def made(tmp_path_factory) -> dict[str, Path]:
    """One tiny fine-tuned custom-task model (its run directory) and one export of it, made once."""
    root = tmp_path_factory.mktemp("lost")
    lines = ["text,label"] + [f"{'good fun' if i % 2 else 'bad boring'} movie {i % 7},{'pos' if i % 2 else 'neg'}" for i in range(40)]
    write(root / "train.csv", "\n".join(lines) + "\n")
    write(root / "dev.csv", "\n".join(lines[:11]) + "\n")
    task = {"name": "toy", "train": str(root / "train.csv"), "validation": str(root / "dev.csv"), "text_columns": ["text"],
            "label_column": "label", "type": "classification", "metrics": ["accuracy"]}
    model = {"layers": 1, "hidden": 32, "heads": 2, "ffn": 64, "max_positions": 32}
    spec = {"name": "run", "output_dir": str(root / "run"), "tokenizer": str(FIXTURES / "vocab.txt"), "model": model,
            "finetune": {"task": task, "max_seq_len": 16, "grid": {"lr": [1e-3], "epochs": [1], "batch_size": [16], "seeds": [0]}}}
    write(root / "spec.yaml", spec)
    result = runner.invoke(app, ["finetune", str(root / "spec.yaml")], env={"EELBERT_CACHE": str(root / "cache")})
    assert result.exit_code == 0, result.stderr
    checkpoint = root / "run" / "finetuned" / "toy"
    result = runner.invoke(app, ["export", str(checkpoint), "-o", str(root / "export")])
    assert result.exit_code == 0, result.stderr
    return {"root": root, "run": root / "run", "checkpoint": checkpoint, "export": root / "export"}


@pytest.fixture
def work(made, tmp_path) -> dict[str, Path]:
    """Private copies (the run directory, with its checkpoint, and the export) under tmp_path."""
    shutil.copytree(made["run"], tmp_path / "run")
    shutil.copytree(made["export"], tmp_path / "export")
    shutil.copy(made["root"] / "dev.csv", tmp_path / "dev.csv")
    return {"run": tmp_path / "run", "checkpoint": tmp_path / "run" / "finetuned" / "toy", "export": tmp_path / "export"}


@pytest.fixture
def fast_export(made, monkeypatch):
    """The ONNX exporter and its check against torch (seconds each) replaced by a copy of the graph
    the fixture exported: what these tests exercise is where an export goes, not how it is made."""
    from eelbert_cli.core.export import onnx_export

    monkeypatch.setattr(onnx_export, "export_onnx",
                        lambda graph, hidden, max_len, path: shutil.copyfile(made["export"] / "model.onnx", path))
    monkeypatch.setattr(onnx_export, "verify", lambda graph, path, hidden, max_len: 0.0)


def debris(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(files.PARTIAL_SUFFIX) or p.name.endswith(files.ASIDE_SUFFIX))


def predicts(export: Path) -> None:
    from eelbert_cli.core.export.runtime import ExportedModel

    assert [p.label in ("neg", "pos") for p in ExportedModel.load(export).predict(["good fun movie", "bad"])] == [True, True]


# ------------------------------------------------------------------------ export: what -o may be
def test_export_onto_the_checkpoint_itself_is_refused(work, tmp_path):
    fails_cleanly(["export", str(work["checkpoint"]), "-o", str(work["checkpoint"])], tmp_path, "is the checkpoint being exported")


def test_export_onto_the_run_directory_is_refused(work, tmp_path):
    fails_cleanly(["export", str(work["checkpoint"]), "-o", str(work["run"])], tmp_path, "holds no earlier export")


def test_export_onto_the_directory_holding_the_checkpoint_is_refused(work, tmp_path):
    fails_cleanly(["export", str(work["checkpoint"]), "-o", str(work["run"] / "finetuned")], tmp_path, "holds no earlier export")


def test_export_onto_a_folder_of_user_files_is_refused(work, tmp_path):
    write(tmp_path / "mine" / "thesis.tex", "\\section{years of work}\n")
    write(tmp_path / "mine" / "data" / "x.bin", b"\x00\x01")
    fails_cleanly(["export", str(work["checkpoint"]), "-o", str(tmp_path / "mine")], tmp_path, "holds no earlier export")


def test_export_onto_an_earlier_export_that_also_holds_a_user_file_is_refused(work, tmp_path):
    write(work["export"] / "notes.md", "do not lose me\n")
    fails_cleanly(["export", str(work["checkpoint"]), "-o", str(work["export"])], tmp_path, "'notes.md', which eelbert did not write")


def test_export_onto_a_file_is_refused(work, tmp_path):
    write(tmp_path / "model.bin", b"weights")
    fails_cleanly(["export", str(work["checkpoint"]), "-o", str(tmp_path / "model.bin")], tmp_path, "is a file")


def test_export_onto_a_symbolic_link_is_refused(work, tmp_path):
    (tmp_path / "link").symlink_to(work["export"])
    fails_cleanly(["export", str(work["checkpoint"]), "-o", str(tmp_path / "link")], tmp_path, "is a symbolic link")
    assert (tmp_path / "link").is_symlink()


def test_export_onto_the_current_directory_is_refused(work, tmp_path, monkeypatch):
    (tmp_path / "empty").mkdir()
    monkeypatch.chdir(tmp_path / "empty")
    fails_cleanly(["export", str(work["checkpoint"]), "-o", "."], tmp_path, "is the current directory")


def test_export_into_a_run_directory_being_written_is_refused(work, tmp_path):
    with open(work["run"] / files.LOCK_FILE, "a+", encoding="utf-8") as held:  # another writer of the run (its own open file)
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        fails_cleanly(["export", str(work["checkpoint"]), "-o", str(work["run"] / "exports" / "toy")], tmp_path, "is being written by")
    assert not (work["run"] / "exports" / "toy").exists()


def test_export_onto_a_directory_of_model_files_without_export_json_is_refused(work, tmp_path):
    write(tmp_path / "theirs" / "model.onnx", b"someone else's graph")
    write(tmp_path / "theirs" / "tokenizer.json", "{}")
    fails_cleanly(["export", str(work["checkpoint"]), "-o", str(tmp_path / "theirs")], tmp_path, "no export.json")


# ------------------------------------------------------------------------ export: what -o may replace
def test_export_into_an_empty_directory_and_over_an_earlier_export(work, tmp_path, fast_export):
    (tmp_path / "fresh").mkdir()
    for target in (tmp_path / "fresh", work["export"]):
        result = runner.invoke(app, ["export", str(work["checkpoint"]), "-o", str(target), "--quantize", "int8"])
        assert result.exit_code == 0, result.stderr
        assert sorted(p.name for p in target.iterdir()) == ["export.json", "model.int8.onnx", "vocab.txt"]
        assert debris(tmp_path) == [] and json.loads((target / "export.json").read_text())["quantized"] == "int8"
        predicts(target)


def test_export_inside_a_run_directory_takes_and_releases_its_lock(work, tmp_path, fast_export):
    (work["run"] / files.LOCK_FILE).write_text("eelbert process 1 (an earlier command)\n")  # a run directory the toolkit has used
    result = runner.invoke(app, ["export", str(work["checkpoint"]), "-o", str(work["run"] / "exports" / "toy")])
    assert result.exit_code == 0, result.stderr
    assert f"eelbert process {os.getpid()}" in (work["run"] / files.LOCK_FILE).read_text()  # it was held by this export
    with open(work["run"] / files.LOCK_FILE, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)  # and is free again
    predicts(work["run"] / "exports" / "toy")


def test_two_exports_into_one_directory_both_succeed(work, tmp_path, fast_export):
    """Another process is mid-export into the same directory: this one waits for it (it never
    shares or deletes the other's temporary directory), then replaces its finished export."""
    code = textwrap.dedent(f"""
        import shutil, sys, time
        from pathlib import Path
        from eelbert_cli.core.files import replacing, sibling_lock
        with sibling_lock(Path({str(tmp_path / "shared")!r})):
            with replacing(Path({str(tmp_path / "shared")!r}), directory=True) as staging:
                print("staging", flush=True)
                time.sleep(2)
                for name in ("export.json", "model.onnx", "vocab.txt"):
                    shutil.copyfile(Path({str(work["export"])!r}) / name, staging / name)
    """)
    other = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env={**os.environ, "PYTHONPATH": str(REPO)})
    assert other.stdout.readline().strip() == "staging"
    result = runner.invoke(app, ["export", str(work["checkpoint"]), "-o", str(tmp_path / "shared"), "--quantize", "int8"])
    assert other.wait(timeout=60) == 0, other.stderr.read()
    assert result.exit_code == 0, result.stderr
    assert ".partial" not in result.stderr and "Traceback" not in result.stderr
    assert (tmp_path / "shared" / "model.int8.onnx").is_file() and debris(tmp_path) == []  # this export came second and stands
    predicts(tmp_path / "shared")


# ------------------------------------------------------------------------ export: interrupted replaces
class RenameSpy:
    """os.rename as files.py sees it (nothing else's), calling ``act`` just before the rename
    numbered ``when`` (1: the old export aside, 2: the new one in)."""

    def __init__(self, monkeypatch, when: int, act) -> None:
        self.count, self.when, self.act = 0, when, act
        module = type(sys)("os_for_files")
        module.__dict__.update(os.__dict__)
        module.rename = self
        monkeypatch.setattr(files, "os", module)

    def __call__(self, source, target):
        self.count += 1
        if self.count == self.when:
            self.act()
        return os.rename(source, target)


def interrupted(result) -> None:
    assert result.exit_code == 2, (result.exit_code, result.stderr, result.exception)
    assert "interrupted" in result.stderr and "Traceback" not in result.stderr


def test_sigterm_between_the_renames_is_held_until_the_new_export_is_complete(work, tmp_path, monkeypatch, fast_export):
    spy = RenameSpy(monkeypatch, 2, lambda: signal.raise_signal(signal.SIGTERM))  # old is aside, new not yet in
    result = runner.invoke(app, ["export", str(work["checkpoint"]), "-o", str(work["export"]), "--quantize", "int8"])
    interrupted(result)
    assert spy.count == 2  # the signal took effect after the swap, not between the renames
    document = json.loads((work["export"] / "export.json").read_text())
    assert document["quantized"] == "int8"
    assert sorted(p.name for p in work["export"].iterdir()) == ["export.json", "model.int8.onnx", "vocab.txt"]
    assert debris(tmp_path) == []
    predicts(work["export"])


def test_sigterm_as_the_old_export_is_moved_aside_leaves_the_new_one_complete(work, tmp_path, monkeypatch, fast_export):
    RenameSpy(monkeypatch, 1, lambda: os.kill(os.getpid(), signal.SIGTERM))
    interrupted(runner.invoke(app, ["export", str(work["checkpoint"]), "-o", str(work["export"]), "--quantize", "int8"]))
    assert (work["export"] / "model.int8.onnx").is_file() and debris(tmp_path) == []
    predicts(work["export"])


def test_an_interrupt_that_is_not_held_back_between_the_renames_puts_the_old_export_back(work, tmp_path, monkeypatch, fast_export):
    """A KeyboardInterrupt raised where no signal could be held back (a bug, another thread): the old export returns."""
    before = snapshot(work["export"])

    def stop():
        raise KeyboardInterrupt

    RenameSpy(monkeypatch, 2, stop)
    interrupted(runner.invoke(app, ["export", str(work["checkpoint"]), "-o", str(work["export"]), "--quantize", "int8"]))
    assert snapshot(work["export"]) == before and debris(tmp_path) == []
    predicts(work["export"])


def test_a_failed_rename_puts_the_old_export_back_and_names_no_temporary_path(work, tmp_path, monkeypatch, fast_export):
    before = snapshot(tmp_path)

    def fail():
        raise OSError(errno.EXDEV, "Invalid cross-device link", str(work["export"]) + files.PARTIAL_SUFFIX)

    RenameSpy(monkeypatch, 2, fail)
    stderr = fails_cleanly(["export", str(work["checkpoint"]), "-o", str(work["export"])], tmp_path, "Invalid cross-device link")
    assert ".partial" not in stderr and snapshot(tmp_path) == before and debris(tmp_path) == []


def test_an_interrupt_while_the_new_export_is_written_leaves_the_old_one(work, tmp_path, monkeypatch, fast_export):
    from eelbert_cli.core.export import onnx_export

    before = snapshot(tmp_path)

    def stop(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(onnx_export, "quantize_int8", stop)
    interrupted(runner.invoke(app, ["export", str(work["checkpoint"]), "-o", str(work["export"]), "--quantize", "int8"]))
    assert snapshot(tmp_path) == before and debris(tmp_path) == []


def test_a_full_disk_while_writing_names_the_export_not_its_temporary_directory(work, tmp_path, monkeypatch, fast_export):
    from eelbert_cli.core.export import onnx_export

    def full(source, target):
        raise OSError(errno.ENOSPC, "No space left on device", str(target))

    monkeypatch.setattr(onnx_export, "quantize_int8", full)
    stderr = fails_cleanly(["export", str(work["checkpoint"]), "-o", str(tmp_path / "new"), "--quantize", "int8"], tmp_path,
                           "No space left on device")
    assert ".partial" not in stderr and str(tmp_path / "new" / "model.int8.onnx") in " ".join(stderr.split())
    assert not (tmp_path / "new").exists() and debris(tmp_path) == []


def test_a_replace_killed_outright_between_the_renames_is_repaired_next_time(tmp_path):
    """SIGKILL cannot be held back: the old version waits aside, and the next replace puts it back first."""
    target = write(tmp_path / "out" / "export.json", "old\n").parent
    os.rename(target, files._aside(target))
    (tmp_path / ("out" + files.PARTIAL_SUFFIX)).mkdir()
    with pytest.raises(RuntimeError), files.replacing(target, directory=True):
        raise RuntimeError("the next writer fails too")
    assert (target / "export.json").read_text() == "old\n" and debris(tmp_path) == []
    with files.replacing(target, directory=True) as staging:
        (staging / "export.json").write_text("new\n")
    assert (target / "export.json").read_text() == "new\n" and debris(tmp_path) == []


def test_signals_held_back_are_delivered_once_after_the_block():
    seen = []
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: seen.append(signum))
    try:
        with files.deferred_signals():
            signal.raise_signal(signal.SIGTERM)
            assert seen == []
        assert seen == [signal.SIGTERM]
    finally:
        signal.signal(signal.SIGTERM, previous)


# ------------------------------------------------------------------------ predict / evaluate outputs
def test_predict_output_that_is_the_input_is_refused(work, tmp_path):
    write(tmp_path / "in.txt", "a good movie\nbad plot\n")
    fails_cleanly(["predict", str(work["export"]), "--input", "in.txt", "--output", "in.txt"], tmp_path, "is the input file")


def test_predict_output_that_is_the_input_by_another_path_is_refused(work, tmp_path):
    write(tmp_path / "data" / "in.txt", "a good movie\nbad plot\n")
    fails_cleanly(["predict", str(work["export"]), "--input", "data/in.txt", "--output", str(tmp_path / "data" / ".." / "data" / "in.txt")],
                  tmp_path, "is the input file")


def test_predict_output_that_is_a_hard_link_to_the_input_is_refused(work, tmp_path):
    write(tmp_path / "in.txt", "a good movie\n")
    os.link(tmp_path / "in.txt", tmp_path / "same.txt")
    fails_cleanly(["predict", str(work["export"]), "--input", "in.txt", "--output", "same.txt"], tmp_path, "is the input file")


def test_predict_output_through_a_symbolic_link_to_the_input_is_refused(work, tmp_path):
    write(tmp_path / "in.txt", "a good movie\n")
    (tmp_path / "alias.txt").symlink_to(tmp_path / "in.txt")
    fails_cleanly(["predict", str(work["export"]), "--input", "alias.txt", "--output", "in.txt"], tmp_path, "is the input file")
    fails_cleanly(["predict", str(work["export"]), "--input", "in.txt", "--output", "alias.txt"], tmp_path, "is a symbolic link")
    assert (tmp_path / "alias.txt").is_symlink()


def test_predict_output_onto_a_symbolic_link_is_refused_and_the_link_kept(work, tmp_path):
    write(tmp_path / "keep.jsonl", "precious\n")
    (tmp_path / "out.jsonl").symlink_to(tmp_path / "keep.jsonl")
    fails_cleanly(["predict", str(work["export"]), "good", "--output", "out.jsonl"], tmp_path, "is a symbolic link")
    assert (tmp_path / "out.jsonl").is_symlink() and (tmp_path / "keep.jsonl").read_text() == "precious\n"


def device_node(tmp_path: Path) -> Path:
    """A character device like /dev/null, but private: a regression replaces this one, never the system's."""
    node = tmp_path / "null"
    try:
        os.mknod(node, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    except PermissionError:
        pytest.skip("creating a device node needs CAP_MKNOD")
    return node


def test_predict_output_onto_a_device_is_refused(work, tmp_path):
    node = device_node(tmp_path)
    fails_cleanly(["predict", str(work["export"]), "good", "--output", str(node)], tmp_path, "not a regular file")
    assert node.is_char_device()


def test_predict_output_onto_a_fifo_is_refused(work, tmp_path):
    os.mkfifo(tmp_path / "pipe")
    fails_cleanly(["predict", str(work["export"]), "good", "--output", "pipe"], tmp_path, "not a regular file")
    assert (tmp_path / "pipe").is_fifo()


def test_predict_output_onto_a_directory_is_refused(work, tmp_path):
    write(tmp_path / "outdir" / "a.txt", "x\n")
    fails_cleanly(["predict", str(work["export"]), "good", "--output", "outdir"], tmp_path, "is a directory")


@pytest.mark.parametrize("name", ["model.onnx", "export.json", "new.jsonl"])
def test_predict_output_inside_the_export_is_refused(work, tmp_path, name):
    fails_cleanly(["predict", str(work["export"]), "good", "--output", str(work["export"] / name)], tmp_path, "inside the model directory")
    assert not (work["export"] / "new.jsonl").exists()


def test_predict_output_over_an_earlier_output_file_is_replaced(work, tmp_path):
    write(tmp_path / "in.txt", "a good movie\nbad plot\n")
    write(tmp_path / "out.jsonl", "old predictions\n")
    result = runner.invoke(app, ["predict", str(work["export"]), "--input", "in.txt", "--output", "out.jsonl"])
    assert result.exit_code == 0, result.stderr
    assert [json.loads(line)["text"] for line in (tmp_path / "out.jsonl").read_text().splitlines()] == ["a good movie", "bad plot"]


@pytest.mark.parametrize("where, expect", [
    ("data", "is the input file"),
    ("device", "not a regular file"),
    ("config", "inside the model directory"),
])
def test_evaluate_predictions_onto_its_data_a_device_or_the_checkpoint_are_refused(made, work, tmp_path, where, expect):
    saved = json.loads((work["checkpoint"] / "task.json").read_text())
    targets = {"data": lambda: saved["custom_task"]["validation"], "device": lambda: str(device_node(tmp_path)),
               "config": lambda: str(work["checkpoint"] / "config.json")}
    target = targets[where]()
    data_before = snapshot(made["root"])
    fails_cleanly(["evaluate", str(work["checkpoint"]), "--predictions", target], tmp_path, expect)
    assert snapshot(made["root"]) == data_before


# ------------------------------------------------------------------------ report --keep-records
def runs_for_report(tmp_path: Path) -> list[Path]:
    from tests.test_report import make_run

    tasks = {"rotten-tomatoes": {"validation": {"accuracy": 80.0}}}
    return [make_run(tmp_path / "runs", name, "uno-eelbert", tasks=tasks) for name in ("a", "b")]


def test_keep_records_never_overwrites_a_kept_copy_with_a_broken_record(tmp_path):
    runs = runs_for_report(tmp_path)
    result = runner.invoke(app, ["report", *map(str, runs), "-o", "out", "--keep-records"])
    assert result.exit_code == 0, result.stderr
    write(runs[1] / "results.json", '{"tasks": [')  # b's record breaks after it was kept
    write(runs[0] / "size_report.json", json.dumps({**json.loads((runs[0] / "size_report.json").read_text()), "params_total": 7}))
    before = snapshot(tmp_path / "out")
    fails_cleanly(["report", *map(str, runs), "-o", "out", "--keep-records"], tmp_path, "is not valid JSON")
    assert snapshot(tmp_path / "out") == before  # neither b's broken record nor a's changed one was copied


def test_keep_records_with_a_broken_record_writes_nothing_at_all(tmp_path):
    runs = runs_for_report(tmp_path)
    write(runs[1] / "spec.resolved.yaml", "name: [b\n")
    fails_cleanly(["report", *map(str, runs), "-o", "out", "--keep-records"], tmp_path, "is not valid YAML")
    assert not (tmp_path / "out").exists()


def test_keep_records_of_a_non_utf8_record_is_one_error_line(tmp_path):
    runs = runs_for_report(tmp_path)
    write(runs[0] / "results.json", b'{"name": "caf\xe9"}')
    fails_cleanly(["report", *map(str, runs), "-o", "out", "--keep-records"], tmp_path, "is not valid JSON")
    assert not (tmp_path / "out").exists()


def test_keep_records_copies_bytes_as_they_are(tmp_path):
    runs = runs_for_report(tmp_path)
    write(runs[0] / "metrics.jsonl", b'{"tokens": 10, "step": 1, "loss": 2.5}\n{"note": "caf\xe9"}\n')  # the report skips that line
    result = runner.invoke(app, ["report", *map(str, runs), "-o", "out", "--keep-records"])
    assert result.exit_code == 0, result.stderr
    for run in runs:
        for record in run.iterdir():
            assert (tmp_path / "out" / "runs" / run.name / record.name).read_bytes() == record.read_bytes()
