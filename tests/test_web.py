"""The JavaScript runtime (web/) against the Python runtime, and the demo page in a real headless Chromium.

e2e: they need node with web/node_modules (npm ci) and Debian's chromium; `make test-e2e` installs both and
CI runs it. Each fails, rather than skips, when its tools are missing: a skipped check proves nothing."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
WEB = REPO / "web"
pytestmark = pytest.mark.e2e


def require_node() -> str:
    node = shutil.which("node")
    assert node, "node is not installed (Debian: apt-get install nodejs)"
    assert (WEB / "node_modules" / "onnxruntime-web").is_dir(), "web/node_modules is missing: make test-e2e runs npm ci"
    return node


def test_node_test_passes_against_python_answers_with_nothing_skipped(tmp_path):
    node = require_node()
    reference = tmp_path / "reference"
    made = subprocess.run([sys.executable, str(REPO / "scripts" / "web_reference.py"), str(reference)], capture_output=True, text=True)
    assert made.returncode == 0, made.stderr[-3000:]
    result = subprocess.run([node, "--test"], cwd=WEB, capture_output=True, text=True, timeout=600,
                            env={**os.environ, "EELBERT_WEB_REFERENCE": str(reference)})
    assert result.returncode == 0, result.stdout[-4000:]
    summary = dict(line[2:].split(" ", 1) for line in result.stdout.splitlines() if line.startswith("# ") and line[2:].split(" ")[0]
                   in ("tests", "pass", "fail", "skipped"))
    assert summary["fail"] == "0" and summary["skipped"] == "0" and int(summary["pass"]) >= 14, summary
    assert "labels agree on 100.0%" in result.stdout or "labels agree on 99." in result.stdout


def test_the_demo_page_classifies_a_sentence_in_headless_chromium_from_local_files_only(tmp_path):
    node = require_node()
    assert Path(os.environ.get("CHROMIUM", "/usr/bin/chromium")).exists(), "chromium is not installed: make test-e2e installs it"
    demo = tmp_path / "demo"
    demo.mkdir()
    built = subprocess.run([node, str(WEB / "scripts" / "build-demo.mjs"), str(demo)], capture_output=True, text=True)
    assert built.returncode == 0, built.stderr
    exported = subprocess.run([sys.executable, "-m", "eelbert_cli", "export", "uno-eelbert-sentiment", "-o", str(demo / "model"),
                               "--quantize", "int8"], capture_output=True, text=True)
    assert exported.returncode == 0, exported.stderr
    shot = tmp_path / "demo.png"
    result = subprocess.run([node, str(WEB / "e2e" / "demo-page.mjs"), str(shot), "a gorgeous, witty, seductive movie."],
                            capture_output=True, text=True, timeout=300, env={**os.environ, "DEMO_DIR": str(demo)})
    assert result.returncode == 0, (result.stdout[-3000:], result.stderr[-3000:])
    page = json.loads(result.stdout.strip().splitlines()[-1])
    assert page["label"] == "fresh" and len(page["probabilities"]) == 2
    assert page["outside"] == [] and page["consoleErrors"] == []
    assert any(row.startswith("model total (graph + vocabulary + config)") for row in page["downloads"])
    assert shot.stat().st_size > 10_000 and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
