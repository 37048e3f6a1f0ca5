"""eelbert-runtime, the separate distribution in runtime/: what it may import, that it runs a shipped
export with torch, transformers, datasets and pydantic out of reach, and (e2e) that `pip install
./runtime` in a fresh venv pulls none of them and predicts what the toolkit predicts."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import venv
from pathlib import Path

import pytest
import tomllib

REPO = Path(__file__).resolve().parent.parent
RUNTIME = REPO / "runtime"
HEAVY = ("torch", "transformers", "datasets", "pydantic", "eelbert_cli")
POSIX_ONLY = ("fcntl", "termios", "pwd", "grp", "resource", "posix", "tty", "pty")
TEXTS = ["a gorgeous, witty film", "a dull, lifeless mess", "Crème brûlée à l'Élysée 🎬", "[MASK] it was fine"]

pytest.importorskip("onnxruntime")


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_the_runtime_imports_only_the_standard_library_numpy_tokenizers_and_onnxruntime():
    allowed = set(sys.stdlib_module_names) - set(POSIX_ONLY) | {"numpy", "tokenizers", "onnxruntime", "eelbert_runtime"}
    for path in sorted((RUNTIME / "eelbert_runtime").glob("*.py")):
        assert imported_modules(path) <= allowed, (path.name, imported_modules(path) - allowed)


def test_the_runtime_distribution_depends_on_exactly_three_packages():
    project = tomllib.loads((RUNTIME / "pyproject.toml").read_text())["project"]
    assert sorted(d.split(">")[0].split("=")[0] for d in project["dependencies"]) == ["numpy", "onnxruntime", "tokenizers"]


def test_the_toolkit_hashes_with_the_runtime_implementation():
    """One implementation: the toolkit's names are the runtime's objects, not copies."""
    import eelbert_cli.core.model.hashing as toolkit_hashing
    import eelbert_runtime.hashing as runtime_hashing

    for name in ("hash_vectors_numpy", "token_ngrams", "expand_hashes", "hash_ngram", "pool_bags", "ngram_vectors"):
        assert getattr(toolkit_hashing, name) is getattr(runtime_hashing, name)


def test_hash_settings_validation_agrees_with_the_toolkit_schema():
    from eelbert_cli.core.model.hashing import HashConfig
    from eelbert_runtime.hashing import hash_settings_problems

    cases = [{}, {"kind": "token"}, {"kind": "sparkly"}, {"ngram_min": 0}, {"ngram_min": 4, "ngram_max": 2}, {"seed": -1},
             {"seed": 2**64}, {"scale": 0.0}, {"scale": 2}, {"values": "ternary"}, {"pooling": "max"}, {"colour": "red"},
             {"ngram_max": "3"}]
    for case in cases:
        try:
            HashConfig.model_validate(case)
            schema_ok = True
        except ValueError:
            schema_ok = False
        assert (hash_settings_problems(case) == []) == schema_ok, case


@pytest.fixture(scope="module")
def uno_export(tmp_path_factory) -> Path:
    from typer.testing import CliRunner

    from eelbert_cli.cli import app

    target = tmp_path_factory.mktemp("runtime") / "uno-int8"
    result = CliRunner().invoke(app, ["export", "uno-eelbert-sentiment", "-o", str(target), "--quantize", "int8"])
    assert result.exit_code == 0, result.stderr
    return target


def toolkit_predictions(export: Path) -> list[dict]:
    from eelbert_cli.core.export.runtime import ExportedModel

    return [{"label": p.label, "probabilities": p.probabilities} for p in ExportedModel.load(export).predict(TEXTS)]


def assert_same_predictions(lines: list[str], expected: list[dict]) -> None:
    rows = [json.loads(line) for line in lines]
    assert [row["text"] for row in rows] == TEXTS
    for row, want in zip(rows, expected, strict=True):
        assert row["label"] == want["label"]
        assert max(abs(row["probabilities"][k] - v) for k, v in want["probabilities"].items()) < 1e-6


def test_the_runtime_predicts_with_the_heavy_packages_out_of_reach(uno_export):
    """Import blockers stand in for a device without them: any import of torch & co. would fail."""
    blocker = "import sys\n" + "".join(f"sys.modules[{name!r}] = None\n" for name in (*HEAVY, *POSIX_ONLY))
    code = blocker + f"from eelbert_runtime.__main__ import main\nsys.exit(main([{str(uno_export)!r}, *{TEXTS!r}]))\n"
    env = {**os.environ, "PYTHONPATH": str(RUNTIME)}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=RUNTIME)
    assert result.returncode == 0, result.stderr
    assert_same_predictions(result.stdout.splitlines(), toolkit_predictions(uno_export))


@pytest.mark.e2e
def test_a_fresh_venv_with_only_the_runtime_runs_a_shipped_export(uno_export, tmp_path):
    """`pip install ./runtime` from the package registry into an empty venv: no torch, transformers,
    datasets or pydantic arrive, and the export's test vectors and predictions hold there."""
    environment = tmp_path / "venv"
    venv.create(environment, with_pip=True)
    python = environment / "bin" / "python"
    install = subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", str(RUNTIME)],
                             capture_output=True, text=True, timeout=900)
    assert install.returncode == 0, install.stderr[-2000:]
    listed = subprocess.run([str(python), "-m", "pip", "list", "--format=json"], capture_output=True, text=True, check=True)
    installed = {row["name"].lower() for row in json.loads(listed.stdout)}
    assert "eelbert-runtime" in installed and not installed & {"torch", "transformers", "datasets", "pydantic", "eelbert"}
    result = subprocess.run([str(environment / "bin" / "eelbert-runtime"), str(uno_export), *TEXTS],
                            capture_output=True, text=True, cwd=tmp_path)  # cwd away from the checkout: the installed copy runs
    assert result.returncode == 0, result.stderr
    assert_same_predictions(result.stdout.splitlines(), toolkit_predictions(uno_export))
