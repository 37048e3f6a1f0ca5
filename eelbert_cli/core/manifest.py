"""Everything needed to repeat a run, written next to its outputs."""

from __future__ import annotations

import json
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from eelbert_cli.core.files import write_atomic
from eelbert_cli.core.spec import ExperimentSpec, spec_to_yaml

_PACKAGES = ("eelbert", "torch", "transformers", "datasets", "tokenizers", "safetensors", "numpy", "pydantic")


def git_revision() -> str | None:
    try:
        root = Path(__file__).resolve().parents[2]
        result = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain"], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    if result.returncode != 0:
        return None
    return result.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def environment() -> dict:
    versions = {}
    for package in _PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "packages": versions,
        "git_revision": git_revision(),
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
    }


def write_manifest(spec: ExperimentSpec, run_dir: Path | None = None) -> Path:
    """``spec.resolved.yaml`` (every default filled in) and ``environment.json`` in the run directory."""
    run_dir = run_dir or spec.run_dir
    write_atomic(run_dir / "spec.resolved.yaml", spec_to_yaml(spec))
    write_atomic(run_dir / "environment.json", json.dumps(environment(), indent=2) + "\n")
    return run_dir
