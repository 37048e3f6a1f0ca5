"""What does a frozen encoder know, layer by layer? Linear probes on its states, no fine-tuning.

For each checkpoint and each layer (0 = the embedding output, then every transformer layer), the
sentence vector is the mean of the token states (padding left out) or the [CLS] state; a logistic
regression (full-batch L-BFGS on standardised features, fixed L2, the same for every row) is fit on
the task's training split and scored on its dev split. Where fine-tuning gets worse with more
pretraining, this tells whether the encoder itself lost the information or fine-tuning fails to
use it. Also: the mean cosine between sentence vectors (1.0 = every sentence looks alike) and the
norm of the states.

    python scripts/probe_layers.py runs/gpu-call3/eelbert-tiny/encoders/* --task rotten-tomatoes --json out.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

L2 = 1e-3
MAX_LEN = 64


def sentence_vectors(checkpoint: str, texts: tuple[str, ...]) -> dict[str, torch.Tensor]:
    """{"mean/<layer>": [N, H], "cls/<layer>": [N, H]} for every layer of the encoder."""
    from eelbert_cli.core.data.resources import checkpoint_path
    from eelbert_cli.core.data.tokenization import load_tokenizer
    from eelbert_cli.core.model.modeling import load_model

    path = checkpoint_path(checkpoint)
    tokenizer = load_tokenizer(path)
    tokenizer.enable_truncation(MAX_LEN)
    tokenizer.enable_padding(pad_id=tokenizer.token_to_id("[PAD]"), pad_token="[PAD]")
    model = load_model(path, "base").float().eval()
    vectors: dict[str, list[torch.Tensor]] = {}
    with torch.no_grad():
        for start in range(0, len(texts), 256):
            encodings = tokenizer.encode_batch(list(texts[start : start + 256]))
            ids = torch.tensor([e.ids for e in encodings])
            mask = torch.tensor([e.attention_mask for e in encodings])
            states = model(input_ids=ids, attention_mask=mask, output_hidden_states=True).hidden_states
            weights = mask.unsqueeze(-1).float()
            for layer, hidden in enumerate(states):
                vectors.setdefault(f"mean/{layer}", []).append((hidden * weights).sum(1) / weights.sum(1))
                vectors.setdefault(f"cls/{layer}", []).append(hidden[:, 0])
    return {key: torch.cat(parts) for key, parts in vectors.items()}


def probe_accuracy(train_x: torch.Tensor, train_y: torch.Tensor, dev_x: torch.Tensor, dev_y: torch.Tensor, classes: int) -> float:
    mean, std = train_x.mean(0), train_x.std(0).clamp(min=1e-6)
    train_x, dev_x = (train_x - mean) / std, (dev_x - mean) / std
    torch.manual_seed(0)
    linear = torch.nn.Linear(train_x.shape[1], classes)
    optimizer = torch.optim.LBFGS(linear.parameters(), lr=1.0, max_iter=200, line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(linear(train_x), train_y) + L2 * linear.weight.pow(2).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    with torch.no_grad():
        return float((linear(dev_x).argmax(1) == dev_y).float().mean() * 100)


def mean_cosine(vectors: torch.Tensor, sample: int = 512) -> float:
    unit = torch.nn.functional.normalize(vectors[:sample], dim=-1)
    similarity = unit @ unit.T
    n = similarity.shape[0]
    return float((similarity.sum() - similarity.diagonal().sum()) / (n * n - n))


def probe(checkpoint: str, task_name: str) -> dict:
    from eelbert_cli.core.data.tasks import load_task

    task = load_task(task_name)
    train, dev = task.train, task.evaluation[0]
    names = sorted({str(label) for label in train.labels})
    train_y = torch.tensor([names.index(str(label)) for label in train.labels])
    dev_y = torch.tensor([names.index(str(label)) for label in dev.labels])
    train_vectors, dev_vectors = sentence_vectors(checkpoint, train.text_a), sentence_vectors(checkpoint, dev.text_a)
    rows = {}
    for key in train_vectors:
        rows[key] = {"dev_accuracy": round(probe_accuracy(train_vectors[key], train_y, dev_vectors[key], dev_y, len(names)), 2),
                     "mean_cosine": round(mean_cosine(dev_vectors[key]), 4),
                     "mean_norm": round(float(dev_vectors[key].norm(dim=1).mean()), 2)}
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoints", nargs="+", help="encoder/checkpoint directories or built-in checkpoint names")
    parser.add_argument("--task", default="rotten-tomatoes")
    parser.add_argument("--json", type=Path, help="write every row here")
    args = parser.parse_args()
    from transformers.utils import logging as transformers_logging

    transformers_logging.set_verbosity_error()
    transformers_logging.disable_progress_bar()
    results = {}
    for checkpoint in args.checkpoints:
        results[checkpoint] = probe(checkpoint, args.task)
        best = max(results[checkpoint].items(), key=lambda item: item[1]["dev_accuracy"])
        layers = "  ".join(f"{key} {row['dev_accuracy']:.1f}" for key, row in results[checkpoint].items())
        print(f"{checkpoint}: best {best[0]} {best[1]['dev_accuracy']:.1f} | {layers}", flush=True)
        if args.json:
            args.json.write_text(json.dumps({"task": args.task, "l2": L2, "max_len": MAX_LEN, "probes": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
