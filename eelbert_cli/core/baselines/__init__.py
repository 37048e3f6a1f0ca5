"""What a user would pick instead of a tiny transformer, trained and scored on the same splits.

    methods.py   TF-IDF + linear model, fastText (.bin, .ftz), model2vec + linear head: fit, save, load
    spec.py      the baseline spec (method, grid, seeds, glue section)
    run.py       grid x seeds per task, dev selection, kept model re-scored from disk, results and bytes
"""

from eelbert_cli.core.baselines.methods import METHODS, get_method
from eelbert_cli.core.baselines.run import run_baseline
from eelbert_cli.core.baselines.spec import BaselineSpec, load_baseline_spec

__all__ = ["METHODS", "BaselineSpec", "get_method", "load_baseline_spec", "run_baseline"]
