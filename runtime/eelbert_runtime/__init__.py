"""eelbert-runtime: run an `eelbert export` with numpy, tokenizers and onnxruntime only.

    hashing.py    the EELBERT n-gram hash (numpy): the one implementation, the toolkit imports it
    wordpiece.py  BERT WordPiece from the export's compact vocab.txt and settings
    export.py     the export format, its checks, and ExportedModel (tokenize, hash table, ONNX)
    __main__.py   `eelbert-runtime EXPORT_DIR TEXT...`: JSON lines of predictions
"""

from eelbert_runtime.export import EXPORT_FILE, EXPORT_FORMAT, ExportedModel, ExportError, Prediction, is_export_dir

__version__ = "0.1.0"
__all__ = ["EXPORT_FILE", "EXPORT_FORMAT", "ExportError", "ExportedModel", "Prediction", "is_export_dir"]
