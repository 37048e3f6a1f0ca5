"""experiments/: every spec loads, bases live where they are found, the Makefile finds its specs.

A spec extends only an ``_``-file of its own folder or a recipe in ``experiments/_recipes/``: never
another folder's leaf (leaf paths are cited by shipped models and docs/results/, so they stay put and
must stay loadable).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from eelbert_cli.core.spec import load_spec, read_spec_mapping

REPO = Path(__file__).resolve().parent.parent
EXPERIMENTS = REPO / "experiments"
RECIPES = EXPERIMENTS / "_recipes"
ALL_SPECS = sorted(EXPERIMENTS.rglob("*.yaml"))
LEAVES = [p for p in ALL_SPECS if not p.name.startswith("_") and RECIPES not in p.parents]
BASES = [p for p in ALL_SPECS if p not in LEAVES]


def rel(path: Path) -> str:
    return str(path.relative_to(EXPERIMENTS))


def extends_of(path: Path) -> Path | None:
    base = yaml.safe_load(path.read_text(encoding="utf-8")).get("extends")
    return None if base is None else (path.parent / base).resolve()


@pytest.mark.parametrize("path", LEAVES, ids=rel)
def test_every_leaf_spec_loads(path):
    """An experiment spec, or a baseline spec (a `baseline:` section: `eelbert baseline`)."""
    if "baseline" in read_spec_mapping(path):
        from eelbert_cli.core.baselines import load_baseline_spec

        spec = load_baseline_spec(path)
    else:
        spec = load_spec(path)
    assert spec.name == spec.run_dir.name


@pytest.mark.parametrize("path", BASES, ids=rel)
def test_every_base_resolves_and_is_extended(path):
    read_spec_mapping(path)  # its own extends chain resolves
    assert any(extends_of(other) == path.resolve() for other in ALL_SPECS), f"{rel(path)} is extended by no spec"


@pytest.mark.parametrize("path", ALL_SPECS, ids=rel)
def test_a_spec_extends_only_its_own_folders_bases_or_a_recipe(path):
    base = extends_of(path)
    if base is None:
        return
    assert base.is_file(), f"{rel(path)} extends a missing {base}"
    if base.parent == RECIPES.resolve():
        return
    assert base.parent == path.parent.resolve() and base.name.startswith("_"), (
        f"{rel(path)} extends {base.relative_to(EXPERIMENTS.resolve())}: extend an _-file of its own folder "
        "or a recipe in experiments/_recipes/, not another folder's spec"
    )


def test_recipes_are_shared_and_folder_bases_are_not():
    """A recipe is extended from more than one folder (directly or through a folder's base); a
    folder's own _-file only from its folder."""
    users: dict[Path, set[Path]] = {}
    for path in ALL_SPECS:
        base = path
        while (base_of := extends_of(base)) is not None:
            users.setdefault(base_of, set()).add(path.parent.resolve())
            base = base_of
    for recipe in RECIPES.glob("*.yaml"):
        folders = users.get(recipe.resolve(), set()) - {RECIPES.resolve()}
        assert len(folders) >= 2, f"_recipes/{recipe.name} serves only {sorted(map(str, folders))}: keep it in that folder"


def test_every_experiment_folder_has_a_readme():
    folders = {p.parent for p in ALL_SPECS}
    missing = sorted(rel(f) or "." for f in folders if not (f / "README.md").is_file())
    assert not missing, f"experiment folders without README.md: {missing}"


# ---------------------------------------------------------------------------------- the Makefile
def make_commands(target: str) -> list[str]:
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    # `make -n` prints the commands without running them; BIN=bin keeps them short, and install is
    # not a prerequisite worth resolving here.
    out = subprocess.run(["make", "-n", "-W", ".venv/bin/eelbert", target, "BIN=bin"], cwd=REPO,
                         capture_output=True, text=True, check=True).stdout
    return out.splitlines()


def run_specs(commands: list[str]) -> list[str]:
    """The spec paths `eelbert run` is given, in order (loops are expanded by the shell: read them)."""
    specs = []
    for line in commands:
        loop = re.search(r"for \w+ in (.*?); do bin/eelbert run (\S+)", line)
        if loop:
            items, template = loop.group(1).split(), loop.group(2)
            specs += [template.replace("$spec", item).replace("$run", item) for item in items]
        specs += re.findall(r"^bin/eelbert run (\S+)", line)
    return specs


def reported_runs(commands: list[str]) -> list[str]:
    runs = []
    for line in commands:
        if " report " in line:
            runs += re.findall(r"(runs/[\w.-]+)", line.split(" -o ")[0])
    return runs


@pytest.mark.parametrize("target", ["results", "distill", "gdistill", "vocab", "curve", "demo"])
def test_make_targets_run_every_run_they_report(target):
    commands = make_commands(target)
    specs = run_specs(commands)
    assert specs, f"make {target} runs nothing"
    made = {f"runs/{load_spec(REPO / s).name}" for s in specs}
    missing = [r for r in reported_runs(commands) if r not in made]
    assert not missing, f"make {target} reports runs it does not make: {missing}"


@pytest.mark.parametrize("target, folders", [
    ("results", ["tiny", "hash"]), ("distill", ["distill"]), ("gdistill", ["gdistill"]),
    ("vocab", ["vocab"]), ("curve", ["curve", "curve/lr", "curve/pooling"]), ("demo", ["demo"]),
])
def test_make_targets_find_every_leaf_of_their_folders(target, folders):
    specs = {str((REPO / s).resolve()) for s in run_specs(make_commands(target))}
    leaves = {str(p.resolve()) for folder in folders for p in LEAVES if p.parent == EXPERIMENTS / folder}
    assert leaves <= specs, f"make {target} misses {sorted(leaves - specs)}"


def test_make_runs_a_spec_after_the_runs_it_reads():
    """A teacher before its students, a pretraining before the probes that start from its checkpoint."""
    for target in ("distill", "curve", "vocab"):
        specs = run_specs(make_commands(target))
        position = {f"runs/{load_spec(REPO / s).name}": i for i, s in enumerate(specs)}
        for i, spec_path in enumerate(specs):
            spec = load_spec(REPO / spec_path)
            needs = []
            teacher = spec.finetune.teacher if spec.finetune is not None else None
            if teacher:
                needs.append(str(teacher))
            model = read_spec_mapping(REPO / spec_path).get("model")
            if isinstance(model, str) and model.startswith("runs/"):
                needs.append(model)
            for need in needs:
                run = "/".join(Path(need).parts[:2])
                if run in position:
                    assert position[run] < i, f"make {target}: {spec_path} reads {need} but runs before {run}"
