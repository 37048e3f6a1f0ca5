"""eelbert: an experiment toolkit for tiny BERT models with dynamic n-gram hash embeddings.

Importing the package is free (no torch, no transformers). The core lives in ``eelbert_cli.core``;
any use of a model class, ``build_model`` or ``load_model`` registers the ``eelbert`` model type
with transformers' Auto classes (``import eelbert_cli.core.model.modeling`` does it explicitly).
"""

__version__ = "0.1.0"
