"""Has a pretrained encoder collapsed? Mean cosine similarity between its output states
(eelbert_cli/core/evaluation/collapse.py says how it is measured).

    python scripts/collapse_probe.py runs/curve-eelbert-tiny-3m/checkpoint eelbert-tiny-pretrained
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from eelbert_cli.core.evaluation.collapse import collapse_probe  # after the repository is on the path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoints", nargs="+", help="checkpoint directories or built-in checkpoint names")
    args = parser.parse_args()
    for checkpoint in args.checkpoints:
        sentences, tokens = collapse_probe(checkpoint)
        print(f"{checkpoint}: mean cosine between sentences' [CLS] states {sentences:.4f}, between all token states {tokens:.4f}")


if __name__ == "__main__":
    main()
