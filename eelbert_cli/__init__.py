"""eelbert: an experiment toolkit for tiny BERT models with dynamic n-gram hash embeddings.

Importing the package registers the ``eelbert`` model type with transformers' Auto classes.
"""

from eelbert_cli.core import models as _models  # noqa: F401  (registers the Auto classes)

__version__ = "0.1.0"
