"""The toolkit's door to the torch-free runtime (``runtime/``, the ``eelbert-runtime`` distribution).

The runtime itself — the export format and its checks, the tokenizer from the compact vocabulary,
the hash table, the ONNX session — lives in ``eelbert_runtime`` so that a device installs numpy,
tokenizers and onnxruntime only (tested in a fresh venv). Here its errors become
:class:`EelbertError` (one message, exit code 2), and ``ExportedModel`` stays importable from where
earlier releases had it.

    from eelbert_cli.core.export.runtime import ExportedModel
    model = ExportedModel.load("exports/uno-rt")
    model.predict(["a gorgeous, witty film", "a dull mess"])   # -> [Prediction(label='fresh', ...), ...]
"""

from __future__ import annotations

from pathlib import Path

from eelbert_cli.core.errors import EelbertError
from eelbert_runtime import export as _runtime
from eelbert_runtime.export import (
    EXPORT_FILE,
    EXPORT_FORMAT,
    READABLE_FORMATS,
    ExportError,
    Prediction,
    export_problems,
    is_export_dir,
    predictions_from_logits,
)

__all__ = ["EXPORT_FILE", "EXPORT_FORMAT", "READABLE_FORMATS", "ExportedModel", "Prediction", "export_problems", "is_export_dir",
           "predictions_from_logits"]


class ExportedModel(_runtime.ExportedModel):
    """The runtime's model; a damaged export is the user's to fix, so its error is an EelbertError."""

    @classmethod
    def load(cls, directory: str | Path) -> ExportedModel:
        try:
            return super().load(directory)
        except ExportError as error:
            raise EelbertError(str(error)) from None
